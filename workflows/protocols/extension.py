"""Run an MD stage until a criterion holds: extend it in chunks, resumably, within a cap.

:func:`run_until_converged` runs the stage's planned ``steps``, asks ``criterion(run_dir)`` for a verdict
(``{"converged": bool, ...}``), and while it says no and the cap allows, multiplies the planned total by
``growth`` and continues the *same* run directory from its final checkpoint
(:func:`~tfbsim.workflows.md.resume.start_or_resume` with ``extend=True``: the trajectory grows, every other
setting is checked unchanged). Each chunk and the final verdict go to ``extension.json`` in the run directory,
written atomically after each chunk; a killed loop re-run with the same arguments continues the chunk it was
in (the run directory's planned total says which) and does not repeat finished ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from ...structures.io import read_json, write_json
from ..md.config import MDConfig

__all__ = ["run_until_converged", "diffusive_verdict", "EXTENSION_FILE"]

logger = logging.getLogger(__name__)

#: Record of the chunks in the run directory.
EXTENSION_FILE = "extension.json"


def _planned_steps(run_dir: Path) -> int | None:
    from ..md.checkpoint import read_checkpoint
    from ..md.rundir import RunDir

    rundir = RunDir(run_dir)
    if not rundir.checkpoint.is_file():
        return None
    saved = read_checkpoint(rundir.checkpoint).meta.get("config", {})
    return int(saved["steps"]) if "steps" in saved else None


def run_until_converged(
    atoms: Atoms,
    calc: Calculator,
    config: MDConfig,
    run_dir: str | Path,
    criterion: Callable[[Path], dict[str, Any]],
    *,
    max_steps: int,
    growth: float = 2.0,
    what: str = "criterion",
    progress: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Run ``config`` in ``run_dir``, then extend it until ``criterion`` converges or ``max_steps`` is reached.

    Parameters
    ----------
    atoms, calc, config
        As :func:`~tfbsim.workflows.md.resume.start_or_resume`; ``config.steps`` is the first chunk's total.
    run_dir
        The stage's run directory (required: extension continues from its checkpoints).
    criterion
        Called with ``run_dir`` after each chunk; returns a JSON-ready dict with a bool ``converged``.
    max_steps
        Cap of the total (steps); the loop stops there even when not converged.
    growth
        Factor of the planned total from one chunk to the next (> 1).
    what
        Name of the criterion in log lines.
    progress
        Progress bars.

    Returns
    -------
    tuple
        The last :class:`~tfbsim.workflows.md.runner.MDResult` and the record (also ``extension.json``):
        ``chunks`` (``steps``, ``time_ps``, ``verdict`` each), ``converged``, ``stopped_by`` (``converged``
        or ``cap``), ``max_steps``, ``steps``, ``time_ps``, ``verdict``.
    """
    from ..md.resume import start_or_resume

    if growth <= 1:
        raise ValueError(f"growth must exceed 1, got {growth}")
    rd = Path(run_dir)
    path = rd / EXTENSION_FILE
    record: dict[str, Any] = read_json(path) if path.is_file() else {}
    chunks: list[dict] = list(record.get("chunks", []))
    max_steps = max(int(max_steps), int(config.steps))
    steps = max(int(config.steps), _planned_steps(rd) or 0)
    dt_ps = config.timestep_fs * 1e-3
    while True:
        result = start_or_resume(atoms, calc, config.model_copy(update={"steps": steps}), rd, extend=True,
                                 progress=progress)
        cached = next((c for c in chunks if c["steps"] == steps and c.get("verdict") is not None), None)
        verdict = cached["verdict"] if cached else criterion(rd)
        if cached is None:
            chunks.append({"steps": steps, "time_ps": steps * dt_ps, "verdict": verdict})
        converged = bool(verdict.get("converged"))
        stopped = "converged" if converged else ("cap" if steps >= max_steps else None)
        record = {"what": what, "chunks": chunks, "converged": converged, "stopped_by": stopped,
                  "max_steps": max_steps, "max_time_ps": max_steps * dt_ps, "steps": steps,
                  "time_ps": steps * dt_ps, "verdict": verdict}
        write_json(path, record)
        if stopped is not None:
            break
        following = min(max_steps, int(math.ceil(steps * growth)))
        logger.info("%s: %s not reached after %.1f ps (%s); extending to %.1f ps", rd, what, steps * dt_ps,
                    verdict.get("reason", ""), following * dt_ps)
        steps = following
    if stopped == "cap":
        logger.warning("%s: the cap of %g ps stopped the run before %s was reached (%s)", rd, max_steps * dt_ps,
                       what, verdict.get("reason", ""))
    return result, record


def diffusive_verdict(trajectory: Any, *, species: str = "Li", min_loglog_slope: float = 0.9,
                      min_msd_ang2: float = 30.0, fit_start_ps: float | None = None,
                      fit_end_ps: float | None = None) -> dict[str, Any]:
    """Whether ``species`` diffuses in ``trajectory`` (the criterion of a production run's extension).

    The MSD and fit window come from :class:`tfbsim.analysis.diffusion.DiffusionAnalysis`; the verdict from
    :func:`~tfbsim.workflows.protocols.network_adapter.is_diffusive`.

    Returns
    -------
    dict
        ``converged`` (= diffusive), ``diffusive``, ``loglog_slope``, ``msd_end_ang2``, ``D_cm2_s``,
        ``fit_start_ps``, ``fit_end_ps``, ``reason``.
    """
    from ...analysis.diffusion import DiffusionAnalysis
    from .network_adapter import is_diffusive

    results = DiffusionAnalysis(trajectory, species=species, fit_start_ps=fit_start_ps,
                                fit_end_ps=fit_end_ps).run().results
    fit = results.fit
    verdict = is_diffusive(results.msd_ang2, results.lag_ps, fit_start_ps=fit.fit_start_ps,
                           fit_end_ps=fit.fit_end_ps, min_loglog_slope=min_loglog_slope, min_msd_ang2=min_msd_ang2)
    return {"converged": bool(verdict["diffusive"]), **verdict, "species": species, "D_cm2_s": fit.D_cm2_s,
            "fit_start_ps": fit.fit_start_ps, "fit_end_ps": fit.fit_end_ps}
