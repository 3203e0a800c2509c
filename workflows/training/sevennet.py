"""SevenNet as a labelling teacher, run in its own virtual environment.

SevenNet 0.13.0 ships its weights in the wheel (7net-0, 7net-l3i5, 7net-MF-0; MIT) but needs e3nn ≥ 0.5,
which conflicts with mace-torch's e3nn 0.4.4. So it never enters tfbsim's environment: ``make sevenn-env``
creates ``.venv-sevenn`` and :class:`SevennetTeacher` starts one long-lived worker process there
(:mod:`sevennet_worker`, standalone), exchanging one JSON line per frame (species, positions, cell; energy,
forces, stress back). The model loads once per labelling run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ...errors import ConfigError
from .cp2k import LabellingFailed

__all__ = ["SevennetTeacher", "sevenn_python", "SEVENN_MODELS"]

logger = logging.getLogger(__name__)

SEVENN_MODELS = ("7net-0", "7net-l3i5", "7net-mf-ompa", "7net-omat", "sevennet-0", "sevennet-l3i5")
_WORKER = Path(__file__).with_name("sevennet_worker.py")
# Elements of the MPtrj training set that tfbsim uses (the model covers 89; these are the ones checked).
_ELEMENTS = ["Li", "Co", "N", "O", "P", "S", "H", "C", "F", "Si", "Al", "Mg", "Na", "Fe", "Mn", "Ni", "Ti"]


def sevenn_python() -> Path:
    """The SevenNet environment's interpreter: ``$TFBSIM_SEVENN_PYTHON`` or ``<repo>/.venv-sevenn/bin/python``."""
    env = os.environ.get("TFBSIM_SEVENN_PYTHON")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / ".venv-sevenn" / "bin" / "python"
    if not path.exists():
        raise ConfigError(f"the SevenNet environment is missing ({path}); create it with `make sevenn-env` "
                          "or point TFBSIM_SEVENN_PYTHON at a Python with sevenn installed")
    return path


class SevennetTeacher(Calculator):
    """ASE calculator forwarding frames to a SevenNet worker in its own environment.

    Parameters
    ----------
    model
        SevenNet model name (``7net-l3i5``, ``7net-0``, …).
    device
        ``cpu`` or ``cuda``.
    threads
        torch threads of the worker.
    timeout_s
        Time allowed for the worker to start (model load).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: str = "7net-l3i5", *, device: str = "cpu", threads: int = 1,
                 timeout_s: float = 300.0, **kwargs: Any):
        if threads < 1:
            raise ConfigError(f"threads must be ≥ 1, got {threads}")
        python = sevenn_python()
        super().__init__(**kwargs)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONNOUSERSITE="1")
        env.pop("PYTHONPATH", None)
        self._proc = subprocess.Popen([str(python), str(_WORKER), model, device, str(threads)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = self._proc.stdout.readline()
        if not first:
            err = self._proc.stderr.read()[-800:]
            raise ConfigError(f"the SevenNet worker did not start for model {model!r}: {err.strip() or 'no output'}; "
                              f"known names include {', '.join(SEVENN_MODELS)}")
        info = json.loads(first)
        self.parameters.update(spec=f"sevennet:{model}", version=f"sevenn {info.get('sevenn_version')}",
                               device=device, elements=_ELEMENTS, dtype="float32")

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        a = self.atoms
        request = {"numbers": a.numbers.tolist(), "positions": a.positions.tolist(), "cell": a.cell.array.tolist(),
                   "pbc": [bool(p) for p in a.pbc]}
        if self._proc.poll() is not None:
            raise LabellingFailed(f"the SevenNet worker exited ({self._proc.returncode})")
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise LabellingFailed(f"the SevenNet worker died: {self._proc.stderr.read()[-400:].strip()}")
        out = json.loads(line)
        if "error" in out:
            raise LabellingFailed(out["error"])
        self.results = {"energy": out["energy"], "free_energy": out["energy"], "forces": np.asarray(out["forces"])}
        if "stress" in out:
            self.results["stress"] = np.asarray(out["stress"])

    def close(self) -> None:
        """Stop the worker (also at garbage collection)."""
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def __del__(self) -> None:
        self.close()
