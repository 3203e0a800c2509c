"""The event loop around an MD engine (shared by :func:`~tfbsim.workflows.md.run.run_md` and
:func:`~tfbsim.workflows.md.run.restart_md`), and the :class:`MDResult` it returns.

At each event step (multiples of ``guard_every``, ``log_every``, ``traj_every``, ``checkpoint_every``, and
the last step) the runner samples the engine once and, in this order: runs the guards, appends a log row,
writes a trajectory frame, writes a checkpoint (then lets the engine drop cached potential state) and
updates ``summary.json``. Between events the engine integrates without any Python observer.

With ``progress`` the runner logs a line on ``tfbsim.progress`` (:mod:`~tfbsim.workflows.md.progress`) at an
event step at least every 30 s, and one at the end; on a terminal (or in a notebook) a tqdm bar shows as well.

While a run with a run directory runs in the main thread, SIGTERM and SIGUSR1 stop it cleanly
(:mod:`~tfbsim.workflows.md.signals`): the engine stops at the next step boundary, the runner writes a checkpoint
at that step, ``summary.json`` says ``interrupted`` (with the signal), the trajectory is closed, and
:class:`~tfbsim.errors.RunInterrupted` is raised; :func:`~tfbsim.workflows.md.run.restart_md` continues
bit-identically from there. A signal that arrives after the last step lets the run complete.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import RunInterrupted, SimulationUnstable
from ...structures.io import write_structure
from ..config import config_hash
from ..provenance import provenance, utc_now
from .checkpoint import write_checkpoint
from .config import MDConfig
from .engines.ase_engine import fixed_mask
from .engines.base import EngineSample, MDEngine
from .guards import check_finite, check_guards
from .progress import ProgressReporter
from .rundir import H5MDFrames, MemoryFrames, RunDir, RunLog
from .signals import StopRequest, signal_name, stop_on_signals

__all__ = ["MDResult", "MDRunner", "model_identity", "same_model", "hashed_config", "new_summary"]

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
        ``completed`` (unstable, failed and interrupted runs raise instead).
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


def same_model(a: dict, b: dict) -> bool:
    if a.get("sha256") and b.get("sha256"):
        return a["sha256"] == b["sha256"] and a.get("dtype") == b.get("dtype")
    return all(a.get(k) == b.get(k) for k in ("class", "kind", "spec", "sha256", "dtype"))


def hashed_config(config: MDConfig) -> dict:
    """The part of the configuration a restart must not change silently (the potential is checked by
    its identity instead, so moving the model file or switching device is allowed)."""
    return config.model_dump(mode="json", exclude={"potential"})


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
class MDRunner:
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
        self._ckpt_step: int | None = None  # step of the last checkpoint written by this runner
        self._reporter: ProgressReporter | None = None
        self.model = model_identity(calc)
        self.hash = config_hash(hashed_config(config))
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
            "config": hashed_config(self.config),
            "model": self.model,
            "reference_t_k": self.reference_t_k,
            "tfbsim_version": self.summary["provenance"].get("tfbsim_version"),
            "written_utc": utc_now(),
        }
        write_checkpoint(self.rundir.checkpoint, self.static, self.engine.get_state(), meta)
        self._ckpt_step = int(self.engine.step)
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

    def _interrupted(self, signum: int) -> None:
        """Checkpoint at the current step, summary ``interrupted``, close the files, raise RunInterrupted."""
        step, name = int(self.engine.step), signal_name(signum)
        if self.rundir is not None and self._ckpt_step != step:
            self._checkpoint()
        self.summary.setdefault("interruptions", []).append({"step": step, "signal": name, "utc": utc_now()})
        self._write_summary("interrupted", signal=name)
        self._close()
        if self._reporter is not None:
            self._reporter.done(step, note=f"interrupted by {name}")
        if self.rundir is None:
            raise RunInterrupted(f"MD run interrupted by {name} at step {step} of {self.config.steps} (in memory: "
                                 "nothing was saved); run it with a run directory to be able to continue",
                                 signum=signum, step=step)
        where = self.rundir.path
        raise RunInterrupted(
            f"MD run interrupted by {name}: checkpoint written at step {step} of {self.config.steps} in {where}; "
            f"continue it with `tfbsim md --restart {where}` (restart_md), or `tfbsim run` for a campaign task",
            signum=signum, step=step, run_dir=str(where),
        )

    def _atoms_from(self, sample: EngineSample) -> Atoms:
        atoms = self.static.copy()
        atoms.set_cell(sample.cell)
        atoms.set_positions(sample.positions, apply_constraint=False)
        atoms.set_velocities(sample.velocities)
        atoms.info["md"] = {"step": int(sample.step), "time_ps": float(sample.time_ps)}
        return atoms

    # -------------------------------------------------------------------------------------------- loop
    def run(self, *, wall_before: float = 0.0, fresh: bool) -> MDResult:
        """Integrate to ``config.steps`` (``fresh``: write the step-0 events first) and return the result.

        With a run directory, in the main thread, SIGTERM/SIGUSR1 are routed to a stop request for the whole
        call, final writes included (the previous handlers come back afterwards).
        """
        stop = StopRequest()
        handlers = stop_on_signals(stop) if self.rundir is not None else contextlib.nullcontext(False)
        with handlers:
            return self._run(stop, wall_before=wall_before, fresh=fresh)

    def _run(self, stop: StopRequest, *, wall_before: float, fresh: bool) -> MDResult:
        c = self.config
        self.wall_before = wall_before
        self.t_start = self.t_loop = time.perf_counter()
        self.loop_start_step = self.engine.step
        self.summary.pop("signal", None)  # of a previous interruption (the list ``interruptions`` stays)
        if hasattr(self.engine, "stop"):  # engines that poll it stop within a step; others at the next event
            self.engine.stop = stop
        from tqdm.auto import tqdm

        label = f"MD {c.ensemble}" + (f" {self.rundir.path.name}" if self.rundir is not None else "")
        self._reporter = reporter = (ProgressReporter(label, total=c.steps, start_step=self.engine.step)
                                     if self.progress else None)
        show_bar = self.progress and _interactive()
        bar = tqdm(total=c.steps, initial=self.engine.step, unit="step", disable=not show_bar,
                   desc=f"MD {c.ensemble}", dynamic_ncols=True, leave=True)
        last_t: float | None = None
        try:
            with _bar_logging(show_bar):
                if fresh:
                    self._write_summary("running")
                    last_t = self.events(self.engine.step, first=True).temperature_k
                every = (c.log_every, c.traj_every, c.checkpoint_every, c.guard_every)
                while self.engine.step < c.steps:
                    step = self.engine.step
                    nxt = min(min((step // k + 1) * k for k in every), c.steps)
                    self.engine.advance(nxt - step)
                    if self.engine.step == nxt:
                        sample = self.events(nxt)
                        last_t = sample.temperature_k
                        bar.update(nxt - step)
                        if show_bar and nxt % c.log_every == 0:
                            bar.set_postfix_str(f"T={sample.temperature_k:.0f} K", refresh=False)
                        if reporter is not None:
                            reporter.update(nxt, temperature_k=sample.temperature_k)
                    if stop.signum is not None and self.engine.step < c.steps:
                        self._interrupted(stop.signum)
        except (SimulationUnstable, RunInterrupted):
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
        if reporter is not None:
            reporter.done(int(self.engine.step), temperature_k=last_t)
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


def _interactive() -> bool:
    """Whether a tqdm bar is worth drawing: stderr is a terminal, or an IPython kernel (notebook) runs."""
    try:
        return bool(sys.stderr.isatty()) or "ipykernel" in sys.modules
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


def _bar_logging(show_bar: bool) -> contextlib.AbstractContextManager:
    """While a bar is drawn, route the ``tfbsim`` console handler through tqdm so log lines do not tear it."""
    if not show_bar:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm([logging.getLogger("tfbsim")])


def new_summary(config: MDConfig, calc: Calculator, atoms: Atoms, ndof: int, note: str, started: str) -> dict:
    """The initial ``summary.json`` content (status ``running``) with the run's provenance; the input
    structure's own provenance (builder, previous stage) is kept under ``provenance['input']``."""
    extra = {"workflow": "tfbsim.workflows.md.run.run_md", "engine": "ase"}
    if isinstance(atoms.info.get("provenance"), dict):
        extra["input"] = atoms.info["provenance"]
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
        "provenance": provenance(config=config, calc=calc, seed=config.seed, started_utc=started, extra=extra),
    }
