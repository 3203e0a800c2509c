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
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from ...errors import ConfigError, StructureError
from ..config import config_hash, dump_yaml, load_config, validate_config
from .engines.ase_engine import AseEngine, fixed_mask
from .engines.base import count_dof
from .checkpoint import read_checkpoint
from .rundir import RunDir
from .config import MDConfig
from .guards import check_guards
from .runner import MDResult, MDRunner, hashed_config, model_identity, new_summary, same_model
from ..potentials.factory import check_coverage, load_potential
from ..provenance import provenance, utc_now

__all__ = ["run_md", "restart_md", "MDResult", "model_identity"]

logger = logging.getLogger(__name__)


def _as_config(config: MDConfig | dict) -> MDConfig:
    if isinstance(config, MDConfig):
        return config
    if isinstance(config, dict):
        return validate_config(MDConfig, config)
    raise ConfigError(f"config must be an MDConfig or a dict, not {type(config).__name__}")


_FACTORY_KINDS = {"mace-file", "bundled", "mace-foundation", "chgnet", "emt", "lj"}


def _resolve_potential(config: MDConfig, calc: Calculator) -> MDConfig:
    """Record the calculator actually used in ``config.potential`` (if it came from the potential factory),
    so that ``config.yaml`` describes the run and ``restart_md`` can rebuild it."""
    params = getattr(calc, "parameters", None) or {}
    if params.get("kind") not in _FACTORY_KINDS or not params.get("spec"):
        return config
    potential = config.potential.model_copy(
        update={"model": str(params["spec"]), "dtype": params.get("dtype") or config.potential.dtype,
                "device": params.get("device") or config.potential.device}
    )
    return config.model_copy(update={"potential": potential})


def _validate(atoms: Atoms, calc: Calculator, config: MDConfig) -> None:
    if len(atoms) < 2:
        raise StructureError("MD needs at least two atoms")
    if config.ensemble.startswith("npt") and (not atoms.pbc.all() or atoms.cell.rank != 3):
        raise ConfigError(f"{config.ensemble} needs a 3-D periodic cell; use an nvt-* ensemble for this structure")
    n_fixed = int(fixed_mask(atoms).sum())
    if count_dof(len(atoms), n_fixed) <= 0:
        raise ConfigError("every atom is fixed: nothing to integrate")
    check_coverage(calc, atoms)
    if config.ensemble == "npt-berendsen":
        logger.warning(
            "npt-berendsen is for equilibration only: it does not sample the NPT ensemble (volume and "
            "temperature fluctuations are suppressed); use npt-mtk for production"
        )


def _initial_velocities(atoms: Atoms, config: MDConfig, rng: np.random.Generator) -> str:
    """Set momenta (Maxwell–Boltzmann or kept), zero for fixed atoms, zero total momentum; returns a note."""
    fixed = fixed_mask(atoms)
    free = ~fixed
    masses = atoms.get_masses()
    momenta = atoms.get_momenta() if atoms.has("momenta") else np.zeros((len(atoms), 3))
    draw_t = config.initial_temperature_k
    note = "kept the structure's velocities"
    if draw_t is None and config.has_thermostat and not np.any(momenta[free]):
        draw_t = config.target_temperature_k(0)
        note = f"structure had no velocities: Maxwell-Boltzmann at the target {draw_t:g} K"
        logger.info(note)
    elif draw_t is not None:
        note = f"Maxwell-Boltzmann at {draw_t:g} K (seed {config.seed})"
    if draw_t is not None:
        momenta = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * draw_t)[:, None]
    momenta[fixed] = 0.0
    if not fixed.any():  # zero total momentum (with fixed atoms it is not conserved anyway)
        momenta -= masses[:, None] * (momenta.sum(axis=0) / masses.sum())
    atoms.set_momenta(momenta, apply_constraint=False)
    return note


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
    config = _resolve_potential(_as_config(config), calc)
    if config.engine == "gpu":  # the device-resident engine (workflows/md/batch.py), same run directory
        from .batch import run_md_gpu

        return run_md_gpu(atoms, calc, config, run_dir, progress=progress)
    _validate(atoms, calc, config)
    rundir = RunDir(run_dir) if run_dir is not None else None
    if rundir is not None and rundir.holds_run():
        raise ConfigError(
            f"{rundir.path} already holds an MD run; continue it with restart_md / `tfbsim md --restart "
            f"{rundir.path}`, or choose a new run directory"
        )
    started = utc_now()
    rng = np.random.default_rng(config.seed)
    work = atoms.copy()
    note = _initial_velocities(work, config, rng)
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


def _check_restart(
    rundir: RunDir, ckpt: Any, new_config: MDConfig, calc: Calculator, *, force: bool
) -> tuple[list[str], dict]:
    """Refuse a restart unless ``force``: changed settings or model, an unstable run, a checkpoint past the end.

    Returns the changed config keys and the previous summary.
    """
    saved = ckpt.meta.get("config", {})
    hashed = hashed_config(new_config)
    changed = sorted(k for k in set(saved) | set(hashed) if saved.get(k) != hashed.get(k))
    if config_hash(hashed) != ckpt.meta.get("config_hash") and not force:
        raise ConfigError(
            f"{rundir.path}: the configuration changed since the checkpoint ({', '.join(changed) or 'hash'}); "
            "restore it, or pass force=True / --force to continue with the new settings"
        )
    identity = model_identity(calc)
    if not same_model(identity, ckpt.meta.get("model", {})) and not force:
        old = ckpt.meta.get("model", {})
        raise ConfigError(
            f"{rundir.path}: the potential differs from the run's (now {identity.get('spec') or identity['class']}"
            f" sha256 {str(identity.get('sha256'))[:12]} {identity.get('dtype')}, was "
            f"{old.get('spec') or old.get('class')} sha256 {str(old.get('sha256'))[:12]} {old.get('dtype')}); "
            "use the same model, or pass force=True / --force"
        )
    previous = rundir.read_summary()
    if previous.get("status") == "unstable" and not force:
        raise ConfigError(
            f"{rundir.path}: the run stopped unstable at step {previous.get('diagnostic', {}).get('step')}; "
            "restarting unchanged would repeat it. Change config.yaml (e.g. a smaller timestep_fs) and "
            "restart with --force"
        )
    if ckpt.step > new_config.steps:
        raise ConfigError(f"{rundir.path}: checkpoint at step {ckpt.step} is beyond the planned {new_config.steps}")
    check_coverage(calc, ckpt.atoms)
    return changed, previous


def restart_md(
    run_dir: str | Path,
    calc: Calculator | None = None,
    *,
    force: bool = False,
    config: MDConfig | dict | None = None,
    progress: bool = False,
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
    new_config = _as_config(config) if config is not None else file_config
    if new_config.engine == "gpu":
        from .batch import restart_md_gpu

        if calc is None:
            p = new_config.potential
            calc = load_potential(p.model, device=p.device, dtype=p.dtype, allow_download=p.allow_download)
        return restart_md_gpu(rundir.path, calc, force=force, config=config, progress=progress)
    if calc is None:
        p = new_config.potential
        calc = load_potential(p.model, device=p.device, dtype=p.dtype, allow_download=p.allow_download)
    changed, previous = _check_restart(rundir, ckpt, new_config, calc, force=force)
    atoms = ckpt.atoms
    if config is not None or changed:
        rundir.write_config(dump_yaml(new_config))
    if changed:
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
    if changed:
        summary.setdefault("forced_changes", []).append({"step": ckpt.step, "keys": changed})
    reference_t = float(ckpt.meta.get("reference_t_k", new_config.temperature_k))
    runner = MDRunner(engine, calc, new_config, static, rundir, progress=progress, summary=summary,
                     reference_t_k=reference_t, resume_after_step=ckpt.step)
    logger.info("restart %s from step %d of %d", rundir.path, ckpt.step, new_config.steps)
    return runner.run(fresh=False, wall_before=float(previous.get("wall_s", 0.0)))
