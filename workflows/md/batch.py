"""MD with the GPU-resident, batched engine: :func:`run_md_gpu`, :func:`restart_md_gpu`, :func:`run_md_batch`.

``run_md(atoms, calc, config)`` with ``config.engine == "gpu"`` lands here; the run directory, trajectory,
log, checkpoints, restarts and guards are those of :func:`tfbsim.workflows.md.run.run_md` (the same
:class:`~tfbsim.workflows.md.runner.MDRunner` drives a :class:`~tfbsim.workflows.md.engines.gpu_engine.GpuEngine`
instead of the ASE engine).

:func:`run_md_batch` advances several independent systems — temperatures of an Arrhenius sweep, replicas,
compositions — together, one model call per step, each into its own run directory; each directory is what
:func:`run_md_gpu` would have written for that system alone (same files, same checkpoints; the trajectory
equals the lone run's to floating-point rounding, since the neighbour sums run over a different batch).
Every system has its own runner (in a thread) whose ``advance`` waits at a barrier: when all running systems
have asked to advance, the coordinator advances the batch by the smallest request, so each system's events
(frames, log rows, guards, checkpoints) happen at its own intervals. A system that finishes or trips a guard
leaves the batch; the others go on. With ``resume=True`` a batch can be re-run after a kill: completed run
directories are returned as they are, ones with a checkpoint continue from it, the rest start.

Example
-------
>>> from tfbsim.workflows.md.batch import run_md_batch                  # doctest: +SKIP
>>> configs = [MDConfig(engine="gpu", temperature_k=t, steps=100_000, seed=i) for i, t in enumerate(temps)]
>>> results = run_md_batch([glass] * len(temps), calc, configs, [f"T{t:.0f}" for t in temps])
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError, StructureError, TfbsimError
from ..config import dump_yaml, load_config
from ..provenance import provenance, utc_now
from .checkpoint import read_checkpoint
from .config import MDConfig
from .engines.gpu_engine import GpuBatch, GpuEngine, SystemSetup, check_gpu_config
from .engines.torch_model import TorchMACE, import_vesin_torch, require_mace_calculator
from .guards import check_guards
from .run_state import (
    RunState,
    check_completed_run,
    inspect_run_dir,
    remove_dead_run,
    result_from_dir,
    unstable_error,
)
from .rundir import RunDir
from .runner import MDResult, MDRunner, new_summary
from .setup import as_md_config, check_restart, initial_velocities, resolve_potential, validate_start

__all__ = ["run_md_gpu", "restart_md_gpu", "run_md_batch"]

logger = logging.getLogger(__name__)


@dataclass
class _Plan:
    """One system of a batch, validated, before anything is written."""

    setup: SystemSetup
    calc: Any
    rundir: RunDir | None
    started: str
    note: str = ""
    summary: dict | None = None  # restart: the previous summary, updated
    resume_step: int | None = None
    wall_before: float = 0.0
    reference_t_k: float | None = None
    time_origin: tuple[int, float] | None = None
    done: MDResult | TfbsimError | None = None  # resume: a completed run directory, or an unstable one's error
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- plans
def _plan_fresh(atoms: Atoms, calc: Calculator, config: MDConfig | dict, run_dir: Any) -> _Plan:
    import_vesin_torch()
    require_mace_calculator(calc)
    config = resolve_potential(as_md_config(config), calc)
    if config.engine != "gpu":
        config = config.model_copy(update={"engine": "gpu"})
    check_gpu_config(config)
    validate_start(atoms, calc, config)
    rundir = RunDir(run_dir) if run_dir is not None else None
    if rundir is not None and rundir.holds_run():
        raise ConfigError(
            f"{rundir.path} already holds an MD run; continue it with restart_md / `tfbsim md --restart "
            f"{rundir.path}` (or run_md_batch(..., resume=True)), or choose a new run directory"
        )
    work = atoms.copy()
    note = initial_velocities(work, config, np.random.default_rng(config.seed))
    if config.ensemble == "nvt-bussi" and not np.any(work.get_momenta()):
        raise ConfigError("nvt-bussi rescales velocities and cannot start from rest; set initial_temperature_k > 0")
    return _Plan(SystemSetup(work, config), calc, rundir, utc_now(), note=note)


def _plan_restart(run_dir: Any, calc: Calculator, *, force: bool = False,
                  config: MDConfig | dict | None = None, extend: bool = False) -> _Plan:
    """The checks of :func:`tfbsim.workflows.md.run.restart_md`, for the gpu engine."""
    import_vesin_torch()
    require_mace_calculator(calc)
    rundir = RunDir(run_dir)
    if not rundir.path.is_dir():
        raise ConfigError(f"{rundir.path}: no such run directory")
    ckpt = read_checkpoint(rundir.checkpoint)
    new_config = as_md_config(config) if config is not None else load_config(rundir.config, MDConfig)
    if new_config.engine != "gpu":
        raise ConfigError(f"{rundir.path}: config.yaml says engine {new_config.engine}; use restart_md")
    check_gpu_config(new_config)
    changed, previous = check_restart(rundir, ckpt, new_config, calc, force=force, extend=extend)
    atoms = ckpt.atoms
    started = previous.get("provenance", {}).get("started_utc") or utc_now()
    plan = _Plan(SystemSetup(atoms, new_config, ckpt.state), calc, rundir, started, note="restart",
                 summary=previous or None, resume_step=ckpt.step, wall_before=float(previous.get("wall_s", 0.0)),
                 reference_t_k=float(ckpt.meta.get("reference_t_k", new_config.temperature_k)))
    if "timestep_fs" in changed:
        plan.time_origin = (ckpt.step, float(ckpt.meta["time_ps"]))
    plan.extra = {"changed": changed, "write_config": config is not None or bool(changed)}
    return plan


def _plan_resume(atoms: Atoms, calc: Calculator, config: MDConfig | dict, run_dir: Any) -> _Plan:
    """``resume=True``: the rules of :func:`tfbsim.workflows.md.resume.start_or_resume` (without ``force``).

    absent → a fresh start; no_checkpoint → the dead run is removed (after the start is validated), then a
    fresh start; checkpoint → continue with this config (a change raises ConfigError); completed → returned as
    it is after checking config and model (ConfigError on a change); unstable → the system's result is the
    stored :class:`~tfbsim.errors.SimulationUnstable`.
    """
    config = resolve_potential(as_md_config(config), calc)
    if config.engine != "gpu":
        config = config.model_copy(update={"engine": "gpu"})
    rundir = RunDir(run_dir)
    state = inspect_run_dir(rundir.path)
    if state is RunState.CHECKPOINT:
        return _plan_restart(rundir.path, calc, config=config)
    if state is RunState.COMPLETED:
        check_completed_run(rundir, config, calc)
        return _Plan(SystemSetup(atoms, config), calc, rundir, "", done=result_from_dir(rundir, calc))
    if state is RunState.UNSTABLE:
        return _Plan(SystemSetup(atoms, config), calc, rundir, "", done=unstable_error(rundir))
    if state is RunState.NO_CHECKPOINT:
        plan = _plan_fresh(atoms, calc, config, None)  # validated before anything is removed
        remove_dead_run(rundir)
        plan.rundir = rundir
        return plan
    return _plan_fresh(atoms, calc, config, run_dir)


# -------------------------------------------------------------------------------------------- runners
def _engine_info(model: TorchMACE, batch_size: int) -> dict:
    return {"name": "gpu", "device": str(model.device), "cueq": bool(model.cueq), "skin_ang": model.skin_ang,
            "batch_size": int(batch_size)}


def _check_start(plan: _Plan, engine: GpuEngine) -> None:
    """Guards on a fresh start (nothing written yet); sets the temperature guard's reference."""
    if plan.resume_step is not None:
        return
    config = plan.setup.config
    sample0 = engine.sample(forces=True)
    diagnostic = check_guards(sample0, config, pbc=plan.setup.atoms.pbc,
                              symbols=plan.setup.atoms.get_chemical_symbols(), reference_temperature_k=np.inf)
    if diagnostic is not None:
        where = f" ({plan.rundir.path})" if plan.rundir is not None else ""
        raise StructureError(f"the starting structure{where} fails the MD guards: {diagnostic['message']}; fix "
                             "the structure (or relax it first) before running MD")
    plan.reference_t_k = max(sample0.temperature_k, config.temperature_k)


def _runner(plan: _Plan, engine: GpuEngine, model: TorchMACE, batch_size: int, *, progress: bool) -> MDRunner:
    """config.yaml and the summary, then the runner (outputs start here; call :func:`_check_start` first)."""
    config, calc, rundir = plan.setup.config, plan.calc, plan.rundir
    info = _engine_info(model, batch_size)
    reference_t = float(plan.reference_t_k)
    if plan.resume_step is None:
        summary = new_summary(config, calc, plan.setup.atoms, engine.ndof, plan.note, plan.started)
        summary["reference_t_k"] = reference_t
        if rundir is not None:
            rundir.write_config(dump_yaml(config))
    else:
        if plan.time_origin is not None:
            engine.set_time_origin(*plan.time_origin)
        changed = plan.extra.get("changed", [])
        if rundir is not None and plan.extra.get("write_config"):
            rundir.write_config(dump_yaml(config))
        summary = plan.summary or new_summary(config, calc, plan.setup.atoms, engine.ndof, "restart", plan.started)
        extra = {"workflow": "tfbsim.workflows.md.run.run_md"}
        if "input" in summary.get("provenance", {}):
            extra["input"] = summary["provenance"]["input"]
        summary["provenance"] = provenance(config=config, calc=calc, seed=config.seed, started_utc=plan.started,
                                           extra=extra)
        summary["restarts"] = int(summary.get("restarts", 0)) + 1
        summary.pop("diagnostic", None)
        summary.pop("error", None)
        if changed:
            summary.setdefault("forced_changes", []).append({"step": plan.resume_step, "keys": changed})
    summary["provenance"]["engine"] = "gpu"
    summary["engine"] = info
    static = plan.setup.atoms.copy()
    static.set_constraint()
    static.calc = None
    return MDRunner(engine, calc, config, static, rundir, progress=progress, summary=summary,
                    reference_t_k=reference_t, resume_after_step=plan.resume_step)


def _model(calc: Any, cueq: bool | str, skin_ang: float) -> TorchMACE:
    return TorchMACE.from_calculator(calc, cueq=cueq, skin_ang=skin_ang)


def run_md_gpu(
    atoms: Atoms,
    calc: Calculator,
    config: MDConfig | dict,
    run_dir: str | Path | None = None,
    *,
    progress: bool = False,
    cueq: bool | str = "auto",
    skin_ang: float = 0.0,
) -> MDResult:
    """:func:`tfbsim.workflows.md.run.run_md` with the gpu engine (same arguments, outputs and errors).

    Parameters
    ----------
    atoms, calc, config, run_dir, progress
        As for :func:`~tfbsim.workflows.md.run.run_md`; ``calc`` must be a MACE calculator (its model and
        device are used; ``config.engine`` is set to ``gpu``).
    cueq
        Use cuEquivariance: ``"auto"`` (on CUDA when installed), ``True`` or ``False``.
    skin_ang
        Verlet skin of the device neighbour list (Å); 0 rebuilds it every step.
    """
    plan = _plan_fresh(atoms, calc, config, run_dir)
    return _run_single(plan, progress=progress, cueq=cueq, skin_ang=skin_ang)


def restart_md_gpu(
    run_dir: str | Path,
    calc: Calculator,
    *,
    force: bool = False,
    config: MDConfig | dict | None = None,
    progress: bool = False,
    cueq: bool | str = "auto",
    skin_ang: float = 0.0,
    extend: bool = False,
) -> MDResult:
    """:func:`tfbsim.workflows.md.run.restart_md` for a run directory whose ``config.yaml`` says ``engine: gpu``.

    On a CPU with a float64 model the continuation is bit-identical to an uninterrupted run; on a GPU it
    agrees to rounding (CUDA's scatter sums are not ordered).
    """
    plan = _plan_restart(run_dir, calc, force=force, config=config, extend=extend)
    return _run_single(plan, progress=progress, cueq=cueq, skin_ang=skin_ang)


def _run_single(plan: _Plan, *, progress: bool, cueq: bool | str, skin_ang: float) -> MDResult:
    model = _model(plan.calc, cueq, skin_ang)
    batch = GpuBatch([plan.setup], model)
    engine = GpuEngine(batch, 0)
    _check_start(plan, engine)
    runner = _runner(plan, engine, model, 1, progress=progress)
    if plan.resume_step is not None:
        logger.info("restart %s from step %d of %d (gpu engine)", plan.rundir.path, plan.resume_step,
                    plan.setup.config.steps)
    return runner.run(fresh=plan.resume_step is None, wall_before=plan.wall_before)


# ---------------------------------------------------------------------------------------------- batch
class _Lockstep:
    """Barrier between the systems' runner threads and the coordinator that advances the batch."""

    def __init__(self, batch: GpuBatch, alive: list[int]) -> None:
        self.batch = batch
        self.cv = threading.Condition()
        self.alive = set(alive)
        self.pending: dict[int, int] = {}
        self.error: BaseException | None = None

    def request(self, k: int, n_steps: int) -> None:
        """Called by system ``k``'s runner (``GpuEngine.advance``): wait until the batch advanced it."""
        with self.cv:
            self.pending[k] = n_steps
            self.cv.notify_all()
            self.cv.wait_for(lambda: self.pending[k] <= 0 or self.error is not None)
            if self.pending[k] > 0 and self.error is not None:
                raise RuntimeError(f"the batch stopped: {type(self.error).__name__}: {self.error}") from self.error

    def finish(self, k: int) -> None:
        """System ``k``'s runner returned or raised: it leaves the batch."""
        with self.cv:
            self.alive.discard(k)
            self.pending.pop(k, None)
            if self.error is None:
                self.batch.deactivate(k)
            self.cv.notify_all()

    def drive(self, bar: Any = None) -> None:
        """Advance the batch whenever every running system waits for it, until none runs; an error (or an
        interrupt) is handed to every waiting system, whose runner records it, and then raised."""
        try:
            while True:
                with self.cv:
                    self.cv.wait_for(lambda: not self.alive or all(self.pending.get(k, 0) > 0 for k in self.alive))
                    if not self.alive:
                        return
                    n = min(self.pending[k] for k in self.alive)
                self.batch.advance(n)  # every running system waits in request(): the state is ours
                if bar is not None:
                    bar.update(n)
                with self.cv:
                    for k in self.alive:
                        self.pending[k] -= n
                    self.cv.notify_all()
        except BaseException as exc:
            with self.cv:
                self.error = exc
                self.cv.notify_all()
            raise


def run_md_batch(
    systems: list[Atoms],
    calc: Calculator,
    configs: MDConfig | dict | list[MDConfig | dict],
    run_dirs: list[str | Path | None] | None = None,
    *,
    resume: bool = False,
    progress: bool = False,
    cueq: bool | str = "auto",
    skin_ang: float = 0.0,
    max_batch_atoms: int | None = None,
) -> list[MDResult | TfbsimError]:
    """Run several independent systems together on one device, one model call per step.

    Parameters
    ----------
    systems
        Starting structures (not modified); sizes and compositions may differ.
    calc
        One MACE calculator for all (from :func:`~tfbsim.workflows.potentials.factory.load_potential`).
    configs
        One :class:`~tfbsim.workflows.md.config.MDConfig` per system, or one for all. The ensemble must be
        the same; temperatures, schedules, seeds, time steps, step totals and intervals may differ.
    run_dirs
        One run directory per system (``None`` entries keep that system in memory).
    resume
        Re-running a batch after a kill: completed run directories are returned as they are, those with a
        checkpoint continue from it, the others start.
    progress
        One progress bar for the batch.
    cueq, skin_ang
        As for :func:`run_md_gpu`.
    max_batch_atoms
        Split the systems, in order, into consecutive batches of at most this many atoms (each batch runs
        to completion before the next starts); ``None``: one batch. Size it to the GPU's memory
        (TorchSim reports ~10,000 MACE-MPA-0 atoms on an 80 GB H100).

    Returns
    -------
    list
        Per system, its :class:`~tfbsim.workflows.md.runner.MDResult`, or the :class:`~tfbsim.errors.TfbsimError`
        it stopped with (e.g. :class:`~tfbsim.errors.SimulationUnstable`: its run directory says why); the
        other systems are not affected. Errors in the input (any system) raise before anything is written.
    """
    n = len(systems)
    if n == 0:
        raise ConfigError("run_md_batch needs at least one system")
    if not isinstance(configs, list):
        configs = [configs] * n
    run_dirs = list(run_dirs) if run_dirs is not None else [None] * n
    if len(configs) != n or len(run_dirs) != n:
        raise ConfigError(f"{n} systems but {len(configs)} configs and {len(run_dirs)} run directories")
    named = [Path(d).resolve() for d in run_dirs if d is not None]
    if len(set(named)) != len(named):
        raise ConfigError("two systems of the batch share a run directory")
    if max_batch_atoms is not None:
        chunks, current, size = [], [], 0
        for i, atoms in enumerate(systems):
            if current and size + len(atoms) > max_batch_atoms:
                chunks.append(current)
                current, size = [], 0
            current.append(i)
            size += len(atoms)
        chunks.append(current)
        if len(chunks) > 1:
            out: list = []
            for chunk in chunks:
                out += run_md_batch([systems[i] for i in chunk], calc, [configs[i] for i in chunk],
                                    [run_dirs[i] for i in chunk], resume=resume, progress=progress, cueq=cueq,
                                    skin_ang=skin_ang)
            return out
    plans = [
        _plan_resume(a, calc, c, d) if resume and d is not None else _plan_fresh(a, calc, c, d)
        for a, c, d in zip(systems, configs, run_dirs)
    ]
    todo = [i for i, p in enumerate(plans) if p.done is None]
    results: list[MDResult | TfbsimError | None] = [p.done for p in plans]
    if not todo:
        return results  # type: ignore[return-value]
    model = _model(calc, cueq, skin_ang)
    batch = GpuBatch([plans[i].setup for i in todo], model)
    lockstep = _Lockstep(batch, list(range(len(todo))))
    engines = [GpuEngine(batch, k, advance_fn=lockstep.request) for k in range(len(todo))]
    for k, i in enumerate(todo):  # every start is checked before any system writes
        _check_start(plans[i], engines[k])
    runners = [_runner(plans[i], engines[k], model, len(todo), progress=False) for k, i in enumerate(todo)]
    errors: list[BaseException | None] = [None] * len(todo)

    def work(k: int) -> None:
        plan = plans[todo[k]]
        try:
            results[todo[k]] = runners[k].run(fresh=plan.resume_step is None, wall_before=plan.wall_before)
        except BaseException as exc:  # reported per system below
            errors[k] = exc
        finally:
            lockstep.finish(k)

    from tqdm.auto import tqdm

    total = max(plans[i].setup.config.steps - batch.steps[k] for k, i in enumerate(todo))
    threads = [threading.Thread(target=work, args=(k,), name=f"tfbsim-md-{k}", daemon=True)
               for k in range(len(todo))]
    with tqdm(total=total, unit="step", disable=not progress, desc=f"MD batch x{len(todo)}") as bar:
        for t in threads:
            t.start()
        try:
            lockstep.drive(bar)
        finally:
            for t in threads:
                t.join()
    for k, exc in enumerate(errors):
        if exc is None:
            continue
        if isinstance(exc, TfbsimError):
            results[todo[k]] = exc
            logger.warning("batch system %d stopped: %s", todo[k], exc)
        else:
            raise exc
    return results  # type: ignore[return-value]
