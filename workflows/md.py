"""The MD runner: :func:`run_md` and :func:`restart_md`.

``run_md(atoms, calc, config, run_dir)`` integrates ``config.steps`` steps with the engine of
:mod:`tfbsim.workflows.engines` and writes the run directory (:mod:`tfbsim.workflows.io.rundir`):
trajectory frames, log rows, checkpoints and guards happen at their intervals only, so the loop adds
almost nothing to the potential's cost. ``restart_md(run_dir)`` continues a killed run from its last
checkpoint to the *planned* total, bit-identically on the same hardware with a deterministic potential.

Stages chain naturally: ``run_md(previous.atoms, calc, next_config)`` keeps the velocities (leave
``initial_temperature_k=None``) and fixed atoms.

Example
-------
>>> from tfbsim.workflows.md import run_md                           # doctest: +SKIP
>>> from tfbsim.workflows.md_config import MDConfig
>>> result = run_md(atoms, calc, MDConfig(ensemble="nvt-nhc", temperature_k=600, steps=10_000), "run1")
>>> result.temperature_mean_k, result.steps_per_s
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from ..errors import ConfigError, SimulationUnstable, StructureError
from ..structures.io import write_structure
from .config import config_hash, dump_yaml, load_config, validate_config
from .engines.ase_engine import AseEngine, fixed_mask
from .engines.base import EngineSample, MDEngine, count_dof
from .io.checkpoint import read_checkpoint, write_checkpoint
from .io.rundir import H5MDFrames, MemoryFrames, RunDir, RunLog
from .md_config import MDConfig
from .md_guards import check_finite, check_guards
from .potentials import check_coverage, load_potential
from .provenance import provenance, utc_now

__all__ = ["run_md", "restart_md", "MDResult", "model_identity"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MDResult:
    """Outcome of :func:`run_md` / :func:`restart_md`.

    Attributes
    ----------
    run_dir
        The run directory, or ``None`` for an in-memory run.
    atoms
        Final structure (copy) with velocities, ``fixed``/``region`` arrays, ``info['md']`` (step, time)
        and ``info['provenance']``; the calculator is attached.
    status
        ``completed`` (unstable and failed runs raise instead).
    steps_done
        Steps integrated in total (all segments of a restarted run).
    wall_s
        Wall time of all segments (s).
    steps_per_s
        Speed of the last segment (steps per wall-clock second).
    temperature_mean_k, temperature_std_k
        Mean and standard deviation of the kinetic temperature over the logged steps after step 0 (K).
    etot_mean_ev, etot_std_ev, epot_mean_ev, epot_std_ev
        Same for the total and the potential energy (eV).
    config
        The resolved configuration.
    summary
        The content of ``summary.json``.
    log
        ``log.csv`` columns as arrays (``step``, ``time_ps``, ``T_k``, ``epot_ev``, ...).
    frames
        Trajectory frames (``run_dir=None`` only; otherwise read ``traj.h5md``).
    """

    run_dir: Path | None
    atoms: Atoms
    status: str
    steps_done: int
    wall_s: float
    steps_per_s: float
    temperature_mean_k: float
    temperature_std_k: float
    etot_mean_ev: float
    etot_std_ev: float
    epot_mean_ev: float
    epot_std_ev: float
    config: MDConfig
    summary: dict = field(repr=False)
    log: dict = field(repr=False)
    frames: list[Atoms] | None = field(default=None, repr=False)

    @property
    def traj_path(self) -> Path | None:
        """``traj.h5md`` of the run directory (``None`` in memory)."""
        return None if self.run_dir is None else self.run_dir / "traj.h5md"


# ------------------------------------------------------------------------------------------- helpers
def model_identity(calc: Calculator) -> dict[str, Any]:
    """What identifies a potential for restarts: class, kind, spec, sha256 and dtype."""
    params = getattr(calc, "parameters", None) or {}
    return {
        "class": type(calc).__name__,
        "kind": params.get("kind"),
        "spec": params.get("spec"),
        "sha256": params.get("sha256"),
        "dtype": params.get("dtype"),
    }


def _same_model(a: dict, b: dict) -> bool:
    if a.get("sha256") and b.get("sha256"):
        return a["sha256"] == b["sha256"] and a.get("dtype") == b.get("dtype")
    return all(a.get(k) == b.get(k) for k in ("class", "kind", "spec", "sha256", "dtype"))


def _hashed(config: MDConfig) -> dict:
    """The part of the configuration a restart must not change silently (the potential is checked by
    its identity instead, so moving the model file or switching device is allowed)."""
    return config.model_dump(mode="json", exclude={"potential"})


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


def _stats(log: dict[str, np.ndarray]) -> dict[str, float]:
    rows = log["step"] > 0 if np.any(log["step"] > 0) else np.ones(len(log["step"]), dtype=bool)

    def ms(name: str) -> tuple[float, float]:
        values = log[name][rows]
        values = values[np.isfinite(values)]
        if values.size == 0:
            return float("nan"), float("nan")
        return float(values.mean()), float(values.std())

    out = {}
    for name, key in (("T_k", "temperature"), ("etot_ev", "etot"), ("epot_ev", "epot"), ("pressure_gpa", "pressure"),
                      ("volume_ang3", "volume")):
        unit = {"T_k": "k", "pressure_gpa": "gpa", "volume_ang3": "ang3"}.get(name, "ev")
        mean, std = ms(name)
        out[f"{key}_mean_{unit}"] = mean
        out[f"{key}_std_{unit}"] = std
    return out


# --------------------------------------------------------------------------------------------- runner
class _Runner:
    """The event loop around an engine, shared by fresh runs and restarts."""

    def __init__(
        self,
        engine: MDEngine,
        calc: Calculator,
        config: MDConfig,
        static: Atoms,
        rundir: RunDir | None,
        *,
        progress: bool,
        summary: dict,
        reference_t_k: float,
        resume_after_step: int | None = None,
    ) -> None:
        self.engine, self.calc, self.config, self.static, self.rundir = engine, calc, config, static, rundir
        self.progress = progress
        self.summary = summary
        self.reference_t_k = reference_t_k
        self.symbols = static.get_chemical_symbols()
        self.last_good: EngineSample | None = None
        self.model = model_identity(calc)
        self.hash = config_hash(_hashed(config))
        meta = {
            "timestep_fs": config.timestep_fs,
            "temperature_k": config.temperature_k,
            "ensemble": config.ensemble,
            "config": config.model_dump(mode="json"),
            "provenance": summary["provenance"],
        }
        if rundir is None:
            self.log = RunLog(None)
            self.frames: H5MDFrames | MemoryFrames = MemoryFrames(
                static, store_velocities=config.store_velocities, store_forces=config.store_forces
            )
        else:
            self.log = RunLog(rundir.log, resume_after_step=resume_after_step)
            self.frames = H5MDFrames(
                rundir.traj, static, store_velocities=config.store_velocities, store_forces=config.store_forces,
                precision=config.traj_precision, metadata=meta, resume_after_step=resume_after_step,
            )
            if resume_after_step is not None and self.frames.dropped:
                logger.info("restart: dropped %d trajectory frames written after step %d",
                            self.frames.dropped, resume_after_step)

    # ------------------------------------------------------------------------------------------ events
    def _reference(self, sample: EngineSample) -> float:
        return sample.target_temperature_k if self.config.has_thermostat else self.reference_t_k

    def _checkpoint(self) -> None:
        if self.rundir is None:
            return
        meta = {
            "time_ps": self.engine.time_ps,
            "config_hash": self.hash,
            "config": _hashed(self.config),
            "model": self.model,
            "reference_t_k": self.reference_t_k,
            "tfbsim_version": self.summary["provenance"].get("tfbsim_version"),
            "written_utc": utc_now(),
        }
        write_checkpoint(self.rundir.checkpoint, self.static, self.engine.get_state(), meta)
        self.engine.after_checkpoint()

    def events(self, step: int, *, first: bool = False) -> EngineSample:
        """Guards, log row, frame and checkpoint due at ``step`` (in that order)."""
        c = self.config
        end = step >= c.steps
        do_ckpt = step % c.checkpoint_every == 0 or end
        do_guard = first or do_ckpt or step % c.guard_every == 0
        do_log = first or end or step % c.log_every == 0
        do_traj = step % c.traj_every == 0
        sample = self.engine.sample(forces=do_guard or (do_traj and c.store_forces))
        if do_guard:
            diagnostic = check_guards(
                sample, c, pbc=self.static.pbc, symbols=self.symbols, reference_temperature_k=self._reference(sample)
            )
        else:
            diagnostic = check_finite(sample)
        if diagnostic is not None:
            self._unstable(diagnostic)
        if do_guard:
            self.last_good = sample
        if do_log:
            self.log.append(sample)
        if do_traj:
            self.frames.append(sample)
        if do_ckpt:
            self._checkpoint()
            self._write_summary("running", sample)
        return sample

    # ----------------------------------------------------------------------------------------- summary
    def _write_summary(self, status: str, sample: EngineSample | None = None, **extra: Any) -> dict:
        s = self.summary
        s["status"] = status
        s["steps_done"] = int(self.engine.step)
        s["steps_planned"] = int(self.config.steps)
        s["time_ps"] = float(self.engine.time_ps)
        s["wall_s"] = float(self.wall_before + (time.perf_counter() - self.t_start))
        s["steps_per_s"] = self.speed()
        s["n_frames"] = int(self.frames.n_frames)
        s.update(_stats(self.log.arrays()))
        s["provenance"]["ended_utc"] = utc_now()
        s.update(extra)
        if self.rundir is not None:
            self.rundir.write_summary(s)
        return s

    def speed(self) -> float:
        elapsed = time.perf_counter() - self.t_loop
        steps = self.engine.step - self.loop_start_step
        return float(steps / elapsed) if elapsed > 0 and steps > 0 else float("nan")

    def _close(self) -> None:
        self.log.close()
        self.frames.close()

    def _unstable(self, diagnostic: dict) -> None:
        where = f"{self.rundir.path}" if self.rundir else "memory"
        good = self.last_good
        if self.rundir is not None and good is not None:
            write_structure(self.rundir.last_good, self._atoms_from(good))
            diagnostic["last_good_step"] = int(good.step)
        self._write_summary("unstable", diagnostic=diagnostic)
        self._close()
        message = (
            f"MD unstable at step {diagnostic['step']} (t = {diagnostic['time_ps']:.3f} ps): "
            f"{diagnostic['message']}. Trajectory kept in {where}"
            + (f"; last good state (step {good.step}) in last_good.extxyz" if good and self.rundir else "")
            + ". Try a smaller timestep_fs, check the structure for overlapping atoms, or a potential that "
            "covers this chemistry."
        )
        raise SimulationUnstable(message, {**diagnostic, "run_dir": str(self.rundir.path) if self.rundir else None})

    def _atoms_from(self, sample: EngineSample) -> Atoms:
        atoms = self.static.copy()
        atoms.set_cell(sample.cell)
        atoms.set_positions(sample.positions, apply_constraint=False)
        atoms.set_velocities(sample.velocities)
        atoms.info["md"] = {"step": int(sample.step), "time_ps": float(sample.time_ps)}
        return atoms

    # -------------------------------------------------------------------------------------------- loop
    def run(self, *, wall_before: float = 0.0, fresh: bool) -> MDResult:
        c = self.config
        self.wall_before = wall_before
        self.t_start = self.t_loop = time.perf_counter()
        self.loop_start_step = self.engine.step
        from tqdm.auto import tqdm

        bar = tqdm(total=c.steps, initial=self.engine.step, unit="step", disable=not self.progress,
                   desc=f"MD {c.ensemble}", dynamic_ncols=True, leave=True)
        try:
            if fresh:
                self._write_summary("running")
                self.events(self.engine.step, first=True)
            every = (c.log_every, c.traj_every, c.checkpoint_every, c.guard_every)
            while self.engine.step < c.steps:
                step = self.engine.step
                nxt = min(min((step // k + 1) * k for k in every), c.steps)
                self.engine.advance(nxt - step)
                sample = self.events(nxt)
                bar.update(nxt - step)
                if self.progress and nxt % c.log_every == 0:
                    bar.set_postfix_str(f"T={sample.temperature_k:.0f} K", refresh=False)
        except SimulationUnstable:
            raise
        except Exception as exc:
            state = self.engine.atoms()
            bad = [name for name, value in (("positions", state.positions), ("velocities", state.get_velocities()),
                                            ("cell", state.cell.array)) if not np.all(np.isfinite(value))]
            if bad:  # the potential choked on a state that had already blown up
                self._unstable({
                    "guard": "non_finite", "what": bad, "step": int(self.engine.step),
                    "time_ps": float(self.engine.time_ps),
                    "message": f"non-finite {', '.join(bad)} (the potential then raised {type(exc).__name__}: {exc})",
                })
            self._write_summary("failed", error=f"{type(exc).__name__}: {exc}")
            self._close()
            raise
        except BaseException as exc:  # KeyboardInterrupt: the checkpoint stays valid for a restart
            self._write_summary("failed", error=f"{type(exc).__name__}: interrupted {exc}")
            self._close()
            raise
        finally:
            bar.close()
        final = self.engine.atoms()
        final.info["md"] = {"step": int(self.engine.step), "time_ps": float(self.engine.time_ps),
                            "ensemble": c.ensemble}
        summary = self._write_summary("completed")
        final.info["provenance"] = summary["provenance"]
        if self.rundir is not None:
            write_structure(self.rundir.final, final)
        self._close()
        final.calc = self.calc
        log = self.log.arrays()
        logger.info("MD %s: %d steps, %.1f steps/s, <T> = %.1f K", c.ensemble, self.engine.step,
                    summary["steps_per_s"], summary["temperature_mean_k"])
        return MDResult(
            run_dir=None if self.rundir is None else self.rundir.path,
            atoms=final,
            status="completed",
            steps_done=int(self.engine.step),
            wall_s=summary["wall_s"],
            steps_per_s=summary["steps_per_s"],
            temperature_mean_k=summary["temperature_mean_k"],
            temperature_std_k=summary["temperature_std_k"],
            etot_mean_ev=summary["etot_mean_ev"],
            etot_std_ev=summary["etot_std_ev"],
            epot_mean_ev=summary["epot_mean_ev"],
            epot_std_ev=summary["epot_std_ev"],
            config=c,
            summary=summary,
            log=log,
            frames=self.frames.frames if isinstance(self.frames, MemoryFrames) else None,
        )


def _new_summary(config: MDConfig, calc: Calculator, atoms: Atoms, ndof: int, note: str, started: str) -> dict:
    return {
        "status": "running",
        "ensemble": config.ensemble,
        "n_atoms": len(atoms),
        "n_fixed": int(fixed_mask(atoms).sum()),
        "ndof": int(ndof),
        "formula": atoms.get_chemical_formula(),
        "initial_velocities": note,
        "restarts": 0,
        "warnings": ["npt-berendsen: equilibration only"] if config.ensemble == "npt-berendsen" else [],
        "provenance": provenance(
            config=config, calc=calc, seed=config.seed, started_utc=started,
            extra={"workflow": "tfbsim.workflows.md.run_md", "engine": "ase"},
        ),
    }


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
        ASE calculator from :func:`tfbsim.workflows.potentials.load_potential` (or any ASE calculator).
    config
        :class:`~tfbsim.workflows.md_config.MDConfig` (or a dict validated into one).
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
    summary = _new_summary(config, calc, work, engine.ndof, note, started)
    summary["reference_t_k"] = reference_t
    if rundir is not None:
        rundir.write_config(dump_yaml(config))
    runner = _Runner(engine, calc, config, static, rundir, progress=progress, summary=summary,
                     reference_t_k=reference_t)
    return runner.run(fresh=True)


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
    saved = ckpt.meta.get("config", {})
    changed = sorted(k for k in set(saved) | set(_hashed(new_config))
                     if saved.get(k) != _hashed(new_config).get(k))
    if config_hash(_hashed(new_config)) != ckpt.meta.get("config_hash") and not force:
        raise ConfigError(
            f"{rundir.path}: the configuration changed since the checkpoint ({', '.join(changed) or 'hash'}); "
            "restore it, or pass force=True / --force to continue with the new settings"
        )
    if calc is None:
        p = new_config.potential
        calc = load_potential(p.model, device=p.device, dtype=p.dtype, allow_download=p.allow_download)
    identity = model_identity(calc)
    if not _same_model(identity, ckpt.meta.get("model", {})) and not force:
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
    atoms = ckpt.atoms
    check_coverage(calc, atoms)
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
    summary = previous if previous else _new_summary(new_config, calc, atoms, engine.ndof, "restart", started)
    summary["provenance"] = provenance(
        config=new_config, calc=calc, seed=new_config.seed, started_utc=started,
        extra={"workflow": "tfbsim.workflows.md.run_md", "engine": "ase"},
    )
    summary["restarts"] = int(summary.get("restarts", 0)) + 1
    summary.pop("diagnostic", None)
    summary.pop("error", None)
    if changed:
        summary.setdefault("forced_changes", []).append({"step": ckpt.step, "keys": changed})
    reference_t = float(ckpt.meta.get("reference_t_k", new_config.temperature_k))
    runner = _Runner(engine, calc, new_config, static, rundir, progress=progress, summary=summary,
                     reference_t_k=reference_t, resume_after_step=ckpt.step)
    logger.info("restart %s from step %d of %d", rundir.path, ckpt.step, new_config.steps)
    return runner.run(fresh=False, wall_before=float(previous.get("wall_s", 0.0)))
