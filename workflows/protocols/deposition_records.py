"""Records of a deposition: :class:`DepositionResult`, the arrivals table (``arrivals.csv``), the draw of one
arrival's energy and azimuth (:func:`draw_arrival`) and the check that a run directory continues with the same
settings (:func:`check_same_deposition`), shared by :mod:`tfbsim.workflows.protocols.deposition` and
its readers."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError
from ..md.runner import model_identity, same_model
from .deposition_config import DepositionConfig, thermal_energy_cap

__all__ = ["DepositionResult", "read_arrivals", "draw_arrival", "ARRIVAL_FIELDS", "check_same_deposition",
           "hashed_config"]

ARRIVAL_FIELDS = ("index", "event", "step", "time_ps", "x_ang", "y_ang", "z_ang", "vx_ang_fs", "vy_ang_fs",
                  "vz_ang_fs", "kinetic_energy_ev", "polar_deg", "azimuth_deg", "status", "join_time_ps",
                  "join_reason")

@dataclass(frozen=True)
class DepositionResult:
    """Outcome of :func:`deposit`.

    Attributes
    ----------
    atoms
        Final structure (momenta, ``region`` with ``deposit`` for arrived atoms, ``fixed``, ``dep_arrival``).
    arrivals
        One dict per atom sent (:data:`ARRIVAL_FIELDS`).
    summary
        The content of ``deposition.json``.
    run_dir
        The run directory (``None`` in memory).
    snapshots
        Snapshots in memory (``run_dir=None`` only; otherwise read ``snapshots.extxyz``).
    """

    atoms: Atoms
    arrivals: list[dict]
    summary: dict = field(repr=False)
    run_dir: Path | None = None
    snapshots: list[Atoms] | None = field(default=None, repr=False)

    @property
    def snapshots_path(self) -> Path | None:
        """``snapshots.extxyz`` of the run directory."""
        return None if self.run_dir is None else self.run_dir / "snapshots.extxyz"


def read_arrivals(path: str | Path) -> list[dict]:
    """Read ``arrivals.csv`` back (numbers as float/int, empty cells as None)."""
    out = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            rec: dict[str, Any] = {}
            for k, v in row.items():
                if k in ("status", "join_reason"):
                    rec[k] = v or None
                elif k in ("index", "event", "step"):
                    rec[k] = int(v)
                else:
                    rec[k] = float(v) if v != "" else None
            out.append(rec)
    return out


def draw_arrival(rng: np.random.Generator, config: DepositionConfig) -> tuple[float, float]:
    """Kinetic energy (eV) and azimuth (rad) of one arriving atom, in the generator's fixed order.

    ``fixed``: ``energy_ev``; ``thermal``: Gamma(shape 2, scale ``energy_ev / 2``) (the energy distribution of the
    flux from a Maxwellian source, mean ``energy_ev``), capped at its 99.9 % quantile. The azimuth is
    ``azimuth_deg`` or uniform in [0, 2π) (drawn even at normal incidence, so the sequence does not depend on the
    angle).
    """
    c = config
    if c.energy_distribution == "thermal":
        energy = float(min(rng.gamma(2.0, c.energy_ev / 2.0), thermal_energy_cap(c.energy_ev)))
    else:
        energy = float(c.energy_ev)
    phi = math.radians(c.azimuth_deg) if c.azimuth_deg is not None else float(rng.uniform(0, 2 * math.pi))
    return energy, phi


def hashed_config(config: DepositionConfig) -> dict:
    """The settings that define a deposition (the potential is compared separately, by model identity)."""
    return config.model_dump(mode="json", exclude={"potential"})


def check_same_deposition(rd: Path, meta: dict, config: DepositionConfig, calc: Calculator, sub_hash: str) -> None:
    """Refuse to continue the deposition in ``rd`` with other settings, another model or another substrate.

    Raises
    ------
    ConfigError
        Naming each changed key with its old and new value (or the model / substrate change).
    """
    saved, new = meta.get("config", {}), hashed_config(config)
    changed = sorted(k for k in set(saved) | set(new) if saved.get(k) != new.get(k))
    problems = [f"{k}={saved.get(k)!r}, now {new.get(k)!r}" for k in changed]
    if not same_model(model_identity(calc), meta.get("model", {})):
        old = meta.get("model", {})
        problems.append(f"model {old.get('spec') or old.get('class')}, now "
                        f"{model_identity(calc).get('spec') or type(calc).__name__}")
    if meta.get("substrate_sha256") != sub_hash:
        problems.append("a different substrate structure")
    if problems:
        raise ConfigError(f"{rd} holds a deposition made with {'; '.join(problems)}; use the same settings to "
                          "continue it, or a new run directory")
