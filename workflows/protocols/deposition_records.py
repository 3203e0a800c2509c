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
           "hashed_config", "write_arrivals", "truncate_after", "result_from_dir", "LOG_FIELDS", "PER_ATOM_ARRAYS"]

ARRIVAL_FIELDS = ("index", "event", "step", "time_ps", "x_ang", "y_ang", "z_ang", "vx_ang_fs", "vy_ang_fs",
                  "vz_ang_fs", "kinetic_energy_ev", "polar_deg", "azimuth_deg", "status", "join_time_ps",
                  "join_reason")
#: Columns of ``log.csv``.
LOG_FIELDS = ("step", "time_ps", "n_atoms", "n_flying", "n_sent", "n_deposited", "T_substrate_k", "epot_ev",
              "ekin_ev")
#: Per-atom arrays of the running deposition, stored in the checkpoint as ``dep:<name>``.
PER_ATOM_ARRAYS = ("dep_thermo", "dep_flying", "dep_arrival", "dep_arrived_step", "dep_insert_z")

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


def write_arrivals(path: Path, arrivals: list[dict]) -> None:
    """Write ``arrivals.csv`` atomically (floats as ``repr``, so a resumed run reads back the same numbers)."""
    from ...structures.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ARRIVAL_FIELDS)
        writer.writeheader()
        for rec in arrivals:
            writer.writerow({k: ("" if rec.get(k) is None else repr(rec[k]) if isinstance(rec[k], float)
                                 else rec[k]) for k in ARRIVAL_FIELDS})


def truncate_after(run_dir: Path, step: int) -> None:
    """Drop the log rows and snapshots of ``run_dir`` written after ``step`` (a resumed run writes them again)."""
    from ...structures.io import write_structure

    log = run_dir / "log.csv"
    if log.is_file():
        with open(log, newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= step]
        with open(log, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    snaps = run_dir / "snapshots.extxyz"
    if snaps.is_file():
        from ase.io import read

        frames = [f for f in read(snaps, index=":") if int(f.info["step"]) <= step]
        if frames:
            write_structure(snaps, frames)
        else:
            snaps.unlink()


def result_from_dir(run_dir: Path, summary: dict) -> DepositionResult:
    """The :class:`DepositionResult` of a finished run directory (final checkpoint + ``arrivals.csv``)."""
    from ..md.checkpoint import read_checkpoint

    ckpt = read_checkpoint(run_dir / "checkpoint.npz")
    atoms = ckpt.atoms
    for key in PER_ATOM_ARRAYS:
        atoms.new_array(key, np.asarray(ckpt.state[f"dep:{key}"]))
    return DepositionResult(atoms=atoms, arrivals=read_arrivals(run_dir / "arrivals.csv"), summary=summary,
                            run_dir=run_dir)
