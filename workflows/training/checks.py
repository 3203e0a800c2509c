"""Physics checks of a trained potential: MD stability, MD speed, lattice constants against the teacher.

These complement the RMSEs of :mod:`tfbsim.workflows.training.evaluate`: a model with small test errors can
still fail in MD (holes in the data let atoms collapse), be too slow for its purpose, or distort crystals.

- :func:`md_stability` — NVT of an amorphous LiPON box (default ~200 atoms, 1500 K, 10 ps) after a FIRE
  pre-relaxation, with the MD engine's guards on; stable = no guard tripped.
- :func:`md_speed` — MD steps per second (NVT Langevin, float32) at given box sizes, after warm-up.
- :func:`lattice_check` — cell relaxation of the crystal phases with the model and with the teacher;
  relative difference of a, b, c (%).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator

from ...errors import SimulationUnstable
from ..md.config import MDConfig
from ..md.relax import relax
from ..md.run import run_md

__all__ = ["md_stability", "md_speed", "lattice_check"]

logger = logging.getLogger(__name__)


def md_stability(
    calc: Calculator,
    *,
    composition: str = "Li2.94PO3.50N0.31",
    n_atoms: int = 200,
    temperature_k: float = 1500.0,
    time_ps: float = 10.0,
    timestep_fs: float = 1.0,
    seed: int = 7,
    progress: bool = False,
) -> dict[str, Any]:
    """Run NVT at ``temperature_k`` for ``time_ps`` on a pre-relaxed LiPON box; report guards and T.

    Returns
    -------
    dict
        ``stable`` (bool), ``steps_done``, ``time_ps``, ``temperature_mean_k``, ``temperature_std_k``,
        ``diagnostic`` (guard message when unstable), ``wall_s``.
    """
    from ...structures.amorphous import build_lipon

    atoms = build_lipon(composition, n_atoms, seed=seed)
    start = relax(atoms, calc, fmax_ev_ang=0.1, max_steps=300, cell=False).atoms
    steps = int(round(time_ps * 1000.0 / timestep_fs))
    config = MDConfig(ensemble="nvt-langevin", steps=steps, timestep_fs=timestep_fs, temperature_k=temperature_k,
                      friction_ps_inv=5.0, traj_every=max(steps // 50, 1), checkpoint_every=steps,
                      log_every=max(steps // 200, 1), seed=seed, initial_temperature_k=temperature_k)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tfbsim-stability-") as tmp:
        try:
            result = run_md(start, calc, config, Path(tmp) / "run", progress=progress)
        except SimulationUnstable as exc:
            return {"stable": False, "diagnostic": str(exc), "steps_done": exc.diagnostic.get("step"),
                    "time_ps": time_ps, "temperature_k": temperature_k, "n_atoms": len(start),
                    "wall_s": time.perf_counter() - t0}
    return {
        "stable": True,
        "diagnostic": None,
        "steps_done": result.steps_done,
        "time_ps": time_ps,
        "temperature_k": temperature_k,
        "temperature_mean_k": result.temperature_mean_k,
        "temperature_std_k": result.temperature_std_k,
        "n_atoms": len(start),
        "wall_s": time.perf_counter() - t0,
    }


def md_speed(
    calc: Calculator,
    *,
    sizes: tuple[int, ...] = (200, 1000),
    steps: int = 100,
    composition: str = "Li2.94PO3.50N0.31",
    seed: int = 3,
) -> dict[str, float]:
    """MD steps per second (NVT Langevin, 1 fs) at each box size; returns {"<n>_atoms": steps/s}.

    The rate is that of the MD loop (the runner's ``steps_per_s``: trajectory, log and guards every 10 steps
    included; start-up, first evaluation and final files excluded), after a short warm-up run.
    """
    from ...structures.amorphous import build_lipon

    out: dict[str, float] = {}
    for n in sizes:
        atoms = build_lipon(composition, n, seed=seed)
        atoms = relax(atoms, calc, fmax_ev_ang=0.5, max_steps=60, cell=False).atoms
        config = MDConfig(ensemble="nvt-langevin", steps=steps, timestep_fs=1.0, temperature_k=300.0,
                          traj_every=10, checkpoint_every=10 * steps, log_every=10, seed=seed,
                          initial_temperature_k=300.0, guard_t_factor=10.0)
        run_md(atoms, calc, config.model_copy(update={"steps": 5}))
        with tempfile.TemporaryDirectory(prefix="tfbsim-speed-") as tmp:
            result = run_md(atoms, calc, config, Path(tmp) / "run")
        out[f"{len(atoms)}_atoms"] = float(result.steps_per_s)
    return out


def lattice_check(
    calc: Calculator,
    teacher: Calculator,
    *,
    names: tuple[str, ...] = ("li", "li2s", "licoo2", "li3po4", "li3po4-beta", "li2po2n", "li3n", "li2o", "li3p"),
    fmax_ev_ang: float = 0.02,
) -> dict[str, Any]:
    """Relax each crystal (cell + positions) with the model and the teacher; compare a, b, c.

    Returns
    -------
    dict
        ``{name: {"model_abc_ang", "teacher_abc_ang", "diff_pct"}}`` plus ``max_abs_diff_pct``.
    """
    from ...structures.crystals import build_crystal

    out: dict[str, Any] = {}
    worst = 0.0
    for name in names:
        atoms = build_crystal(name)
        model_abc = relax(atoms, calc, fmax_ev_ang=fmax_ev_ang, max_steps=400).atoms.cell.lengths()
        teacher_abc = relax(atoms, teacher, fmax_ev_ang=fmax_ev_ang, max_steps=400).atoms.cell.lengths()
        diff = 100.0 * (model_abc / teacher_abc - 1.0)
        worst = max(worst, float(np.abs(diff).max()))
        out[name] = {"model_abc_ang": model_abc.tolist(), "teacher_abc_ang": teacher_abc.tolist(),
                     "diff_pct": diff.tolist()}
        logger.info("lattice %s: model %s vs teacher %s (%s %%)", name, np.round(model_abc, 3),
                    np.round(teacher_abc, 3), np.round(diff, 2))
    out["max_abs_diff_pct"] = worst
    return out
