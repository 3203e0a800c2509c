"""The MD runner: :func:`run_md` and :func:`restart_md`.

``run_md(atoms, calc, config, run_dir)`` integrates ``config.steps`` steps with the engine of
:mod:`tfbsim.workflows.md.engines` and writes the run directory (:mod:`tfbsim.workflows.md.rundir`):
trajectory frames, log rows, checkpoints and guards happen at their intervals only, so the loop adds
almost nothing to the potential's cost. ``restart_md(run_dir)`` continues a killed run from its last
checkpoint to the *planned* total, bit-identically on the same hardware with a deterministic potential.

Stages chain naturally: ``run_md(previous.atoms, calc, next_config)`` keeps the velocities (leave
``initial_temperature_k=None``) and fixed atoms.

Example
-------
>>> from tfbsim.workflows.md.run import run_md                           # doctest: +SKIP
>>> from tfbsim.workflows.md.config import MDConfig
>>> result = run_md(atoms, calc, MDConfig(ensemble="nvt-nhc", temperature_k=600, steps=10_000), "run1")
>>> result.temperature_mean_k, result.steps_per_s
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError, StructureError
from ..config import dump_yaml, load_config
from ..potentials.factory import load_potential
from ..provenance import provenance, utc_now
from .checkpoint import read_checkpoint
from .config import MDConfig
from .engines.ase_engine import AseEngine
from .guards import check_guards
from .rundir import RunDir
from .runner import MDResult, MDRunner, model_identity, new_summary
from .setup import as_md_config, check_restart, initial_velocities, resolve_potential, validate_start

__all__ = ["run_md", "restart_md", "MDResult", "model_identity"]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- API
def run_md(
    atoms: Atoms,
    calc: Calculator,
    config: MDConfig | dict,
    run_dir: str | Path | None = None,
    *,
    progress: bool = False,
) -> MDResult:
    """Run molecular dynamics and write a run directory.

    Parameters
    ----------
    atoms
        Starting structure (not modified). Momenta are kept when ``config.initial_temperature_k`` is
        ``None``; ``arrays['fixed']`` atoms stay fixed; ``arrays['region']`` goes into the trajectory.
    calc
        ASE calculator from :func:`tfbsim.workflows.potentials.factory.load_potential` (or any ASE calculator).
    config
        :class:`~tfbsim.workflows.md.config.MDConfig` (or a dict validated into one).
    run_dir
        Folder for ``config.yaml``, ``traj.h5md``, ``checkpoint.npz``, ``log.csv``, ``summary.json``,
        ``final.extxyz``; it must not already hold a run (use :func:`restart_md`). ``None``: keep frames
        and log in memory (``MDResult.frames``), no checkpoints.
    progress
        Show a tqdm progress bar (steps/s and temperature).

    Returns
    -------
    MDResult

    Raises
    ------
    ConfigError
        Invalid settings, a run directory that already holds a run, an NPT run without a 3-D cell.
    StructureError
        The starting structure fails the guards (atoms closer than ``guard_min_distance_ang``...).
    PotentialError
        The potential does not cover the structure's elements.
    SimulationUnstable
        A guard tripped during the run (``summary.json`` says which; trajectory kept).
    """
    config = resolve_potential(as_md_config(config), calc)
    if config.engine == "gpu":  # the device-resident engine (workflows/md/batch.py), same run directory
        from .batch import run_md_gpu

        return run_md_gpu(atoms, calc, config, run_dir, progress=progress)
    validate_start(atoms, calc, config)
    rundir = RunDir(run_dir) if run_dir is not None else None
    if rundir is not None and rundir.holds_run():
        raise ConfigError(
            f"{rundir.path} already holds an MD run; continue it with restart_md / `tfbsim md --restart "
            f"{rundir.path}`, or choose a new run directory"
        )
    started = utc_now()
    rng = np.random.default_rng(config.seed)
    work = atoms.copy()
    note = initial_velocities(work, config, rng)
    if config.ensemble == "nvt-bussi" and not np.any(work.get_momenta()):
        raise ConfigError("nvt-bussi rescales velocities and cannot start from rest; set initial_temperature_k > 0")
    engine = AseEngine(work, calc, config, rng=rng)
    sample0 = engine.sample(forces=True)
    reference_t = max(sample0.temperature_k, config.temperature_k)
    diagnostic = check_guards(sample0, config, pbc=work.pbc, symbols=work.get_chemical_symbols(),
                              reference_temperature_k=np.inf)
    if diagnostic is not None:
        raise StructureError(
            f"the starting structure fails the MD guards: {diagnostic['message']}; fix the structure "
            "(or relax it first) before running MD"
        )
    static = work.copy()
    static.set_constraint()
    summary = new_summary(config, calc, work, engine.ndof, note, started)
    summary["reference_t_k"] = reference_t
    if rundir is not None:
        rundir.write_config(dump_yaml(config))
    runner = MDRunner(engine, calc, config, static, rundir, progress=progress, summary=summary,
                     reference_t_k=reference_t)
    return runner.run(fresh=True)


def restart_md(
    run_dir: str | Path,
    calc: Calculator | None = None,
    *,
    force: bool = False,
    config: MDConfig | dict | None = None,
    progress: bool = False,
    extend: bool = False,
) -> MDResult:
    """Continue a run from its checkpoint to the planned total number of steps.

    Trajectory frames and log rows written after the checkpoint are dropped (none is duplicated); on the
    same hardware with a deterministic potential in float64 the continuation is bit-identical to an
    uninterrupted run.

    Parameters
    ----------
    run_dir
        Run directory written by :func:`run_md`.
    calc
        Calculator; ``None`` builds it from the ``potential`` section of ``config.yaml``.
    force
        Continue although ``config.yaml`` (or ``config``) or the model (sha256, dtype) changed since the
        checkpoint, or although the run stopped unstable.
    config
        A new configuration (implies a change: needs ``force``); default: ``config.yaml``.
    progress
        Show a progress bar.
    extend
        Allow one change without ``force``: a larger ``steps`` in ``config`` (continue a finished or
        interrupted run to a longer total; recorded in the summary's ``extensions``). Other changes still
        need ``force``.

    Raises
    ------
    ConfigError
        Changed configuration or model without ``force``; an unstable run without ``force``; a planned
        total below the checkpoint step.
    TrajectoryError
        No (readable) checkpoint in ``run_dir``.
    """
    rundir = RunDir(run_dir)
    if not rundir.path.is_dir():
        raise ConfigError(f"{rundir.path}: no such run directory")
    ckpt = read_checkpoint(rundir.checkpoint)
    file_config = load_config(rundir.config, MDConfig)
    new_config = as_md_config(config) if config is not None else file_config
    if new_config.engine == "gpu":
        from .batch import restart_md_gpu

        if calc is None:
            calc = load_potential(new_config.potential)
        return restart_md_gpu(rundir.path, calc, force=force, config=config, progress=progress, extend=extend)
    if calc is None:
        calc = load_potential(new_config.potential)
    changed, previous = check_restart(rundir, ckpt, new_config, calc, force=force, extend=extend)
    atoms = ckpt.atoms
    if config is not None or changed:
        rundir.write_config(dump_yaml(new_config))
    extended = extend and changed == ["steps"]
    if changed and not extended:
        logger.warning("restart of %s with changed settings (%s) (force)", rundir.path, ", ".join(changed))
    rng = np.random.default_rng(new_config.seed)
    engine = AseEngine(atoms, calc, new_config, rng=rng, state=ckpt.state)
    if "timestep_fs" in changed:
        engine.set_time_origin(ckpt.step, float(ckpt.meta["time_ps"]))
    if "seed" in changed:  # a new seed means new thermostat noise from here on
        rng.bit_generator.state = np.random.default_rng(new_config.seed).bit_generator.state
    static = atoms.copy()
    static.set_constraint()
    started = previous.get("provenance", {}).get("started_utc") or utc_now()
    summary = previous if previous else new_summary(new_config, calc, atoms, engine.ndof, "restart", started)
    extra = {"workflow": "tfbsim.workflows.md.run.run_md", "engine": "ase"}
    if "input" in summary.get("provenance", {}):
        extra["input"] = summary["provenance"]["input"]
    summary["provenance"] = provenance(config=new_config, calc=calc, seed=new_config.seed, started_utc=started,
                                       extra=extra)
    summary["restarts"] = int(summary.get("restarts", 0)) + 1
    summary.pop("diagnostic", None)
    summary.pop("error", None)
    if extended:
        summary.setdefault("extensions", []).append({"from_step": ckpt.step, "steps": new_config.steps})
        logger.info("%s extended from %d to %d steps", rundir.path, ckpt.step, new_config.steps)
    elif changed:
        summary.setdefault("forced_changes", []).append({"step": ckpt.step, "keys": changed})
    reference_t = float(ckpt.meta.get("reference_t_k", new_config.temperature_k))
    runner = MDRunner(engine, calc, new_config, static, rundir, progress=progress, summary=summary,
                     reference_t_k=reference_t, resume_after_step=ckpt.step)
    logger.info("restart %s from step %d of %d", rundir.path, ckpt.step, new_config.steps)
    return runner.run(fresh=False, wall_before=float(previous.get("wall_s", 0.0)))
