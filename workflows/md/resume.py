"""Start, resume or reuse an MD run directory: one rule per state, shared by every caller.

:func:`inspect_run_dir` says what a run directory holds (:class:`RunState`); :func:`start_or_resume` then does
the one thing that state calls for. The campaign worker's MD stages, the melt-quench stages, the demo's
interface anneal and ``run_md_batch(..., resume=True)`` all follow these rules:

=================  ==================================================  ==========================================
state              what the folder holds                               ``start_or_resume``
=================  ==================================================  ==========================================
``absent``         no folder, or a folder without a run                ``run_md`` (a fresh start)
                   (:meth:`RunDir.holds_run` is False)
``no_checkpoint``  a run that died before its first checkpoint         removes the run directory (WARNING log
                                                                       line naming it), then ``run_md``
``checkpoint``     an interrupted run (``summary.json`` says           ``restart_md`` with the caller's config: a
                   ``running``, ``interrupted`` or ``failed``) with a  changed config or model raises
                   checkpoint                                          ConfigError naming the keys (``force``:
                                                                       continue with the new settings)
``completed``      a finished run (``summary.json`` says               the result read from the folder (the
                   ``completed``; checkpoint or ``final.extxyz``)      checkpoint's exact final state), nothing
                                                                       recomputed; a changed config or model
                                                                       raises ConfigError naming the keys
                                                                       (``force``: ``restart_md`` from the final
                                                                       checkpoint with the new settings)
``unstable``       a run stopped by a guard (``summary.json`` says     raises SimulationUnstable with the stored
                   ``unstable``)                                       diagnostic (``force``: ``restart_md`` from
                                                                       the last checkpoint, meant after changing
                                                                       the settings)
=================  ==================================================  ==========================================

``extend=True`` allows one change without ``force``: a larger ``steps`` (an interrupted run continues to the new
total, a completed run continues from its final checkpoint); it is how protocols run "until converged".

The caller's configuration is compared with the run's as :func:`~tfbsim.workflows.md.run.restart_md` does: the
settings without the ``potential`` section (:func:`~tfbsim.workflows.md.runner.hashed_config`), and the model
by its identity (sha256 and dtype, or class/kind/spec); the caller's config first records the calculator in
``config.potential`` as ``run_md`` does, so like is compared with like.

Example
-------
>>> from tfbsim.workflows.md.resume import start_or_resume              # doctest: +SKIP
>>> result = start_or_resume(atoms, calc, MDConfig(temperature_k=600, steps=10_000), "run1")  # re-run after a kill
"""

from __future__ import annotations

import logging
import os
import shutil
from enum import Enum
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError, SimulationUnstable
from ..config import load_config
from .checkpoint import read_checkpoint
from .config import MDConfig
from .run import restart_md, run_md
from .rundir import RunDir, RunLog
from .runner import MDResult, hashed_config, model_identity, same_model
from .setup import as_md_config, resolve_potential

__all__ = [
    "RunState", "inspect_run_dir", "start_or_resume", "result_from_dir", "check_completed_run", "unstable_error",
    "remove_dead_run",
]

logger = logging.getLogger(__name__)


class RunState(str, Enum):
    """What a run directory holds (compares equal to its string value)."""

    ABSENT = "absent"
    NO_CHECKPOINT = "no_checkpoint"
    CHECKPOINT = "checkpoint"
    COMPLETED = "completed"
    UNSTABLE = "unstable"


def inspect_run_dir(run_dir: str | os.PathLike) -> RunState:
    """Classify a run directory (see the table in the module docstring).

    Parameters
    ----------
    run_dir
        The folder (it need not exist).

    Returns
    -------
    RunState
        ``absent``, ``no_checkpoint``, ``checkpoint``, ``completed`` or ``unstable``. A ``summary.json`` that
        says ``running`` or ``failed`` is ``checkpoint`` when a checkpoint exists, ``no_checkpoint`` otherwise.
    """
    rundir = RunDir(run_dir)
    if not rundir.path.is_dir() or not rundir.holds_run():
        return RunState.ABSENT
    status = rundir.read_summary().get("status")
    has_checkpoint = rundir.checkpoint.is_file()
    if status == "completed" and (has_checkpoint or rundir.final.is_file()):
        return RunState.COMPLETED
    if status == "unstable":
        return RunState.UNSTABLE
    return RunState.CHECKPOINT if has_checkpoint else RunState.NO_CHECKPOINT


def start_or_resume(
    atoms: Atoms,
    calc: Calculator,
    config: MDConfig | dict,
    run_dir: str | os.PathLike | None,
    *,
    force: bool = False,
    progress: bool = False,
    extend: bool = False,
) -> MDResult:
    """Start the MD run in ``run_dir``, continue it from its checkpoint, or return it when it is done.

    Parameters
    ----------
    atoms
        Starting structure (used only when the run starts afresh; not modified).
    calc
        ASE calculator (as for :func:`~tfbsim.workflows.md.run.run_md`).
    config
        The run's :class:`~tfbsim.workflows.md.config.MDConfig` (or a dict); compared with the settings of an
        existing run.
    run_dir
        Run directory; ``None`` runs in memory (always a fresh start).
    force
        Continue an existing run although the configuration or model changed, or although it stopped unstable
        (``restart_md(force=True)``; for a completed run: from its final checkpoint with the new settings).
    progress
        Show a progress bar.
    extend
        Allow a larger ``config.steps`` than the existing run's (the only change allowed without ``force``): an
        interrupted run continues to the new total, a completed one continues from its final checkpoint (the
        trajectory and log grow; ``summary.json`` records ``extensions``). A smaller total than a completed
        run's is refused.

    Returns
    -------
    MDResult
        Of the new, continued or (``completed``) reused run; a reused run's ``atoms`` are the checkpoint's exact
        final state with ``calc`` attached.

    Raises
    ------
    ConfigError
        The configuration or model differs from the existing run's (without ``force``); invalid settings.
    SimulationUnstable
        The existing run stopped unstable (without ``force``), or a guard trips now.
    """
    config = resolve_potential(as_md_config(config), calc)
    if run_dir is None:
        return run_md(atoms, calc, config, None, progress=progress)
    rundir = RunDir(run_dir)
    state = inspect_run_dir(rundir.path)
    if state is RunState.ABSENT:
        return run_md(atoms, calc, config, rundir.path, progress=progress)
    unstable_without_checkpoint = state is RunState.UNSTABLE and not rundir.checkpoint.is_file()
    if state is RunState.NO_CHECKPOINT or (force and unstable_without_checkpoint):
        remove_dead_run(rundir)
        return run_md(atoms, calc, config, rundir.path, progress=progress)
    if state is RunState.CHECKPOINT or force:
        if state is not RunState.CHECKPOINT:
            logger.warning("%s: %s run continued from its last checkpoint with the given settings (force)",
                           rundir.path, state.value)
        return restart_md(rundir.path, calc, config=config, force=force, progress=progress, extend=extend)
    if state is RunState.UNSTABLE:
        raise unstable_error(rundir)
    if extend:
        done = int(rundir.read_summary().get("steps_done", 0))
        if config.steps > done and rundir.checkpoint.is_file():
            check_completed_run(rundir, config.model_copy(update={"steps": _planned_steps(rundir)}), calc)
            logger.info("%s: completed run extended from %d to %d steps", rundir.path, done, config.steps)
            return restart_md(rundir.path, calc, config=config, progress=progress, extend=True)
        if config.steps > done:
            raise ConfigError(f"{rundir.path}: the completed run has no checkpoint left to extend from; use a new "
                              "run directory")
        if config.steps < done:
            raise ConfigError(f"{rundir.path}: the completed run has {done} steps, more than the {config.steps} "
                              "asked for; a run can be extended, not shortened")
        config = config.model_copy(update={"steps": _planned_steps(rundir)})
    check_completed_run(rundir, config, calc)
    logger.info("%s: completed run reused", rundir.path)
    return result_from_dir(rundir, calc)


# ------------------------------------------------------------------------------------ state helpers
def _planned_steps(rundir: RunDir) -> int:
    """The planned total of the run in ``rundir`` (its checkpoint's config, else ``config.yaml``)."""
    if rundir.checkpoint.is_file():
        saved = read_checkpoint(rundir.checkpoint).meta.get("config", {})
        if "steps" in saved:
            return int(saved["steps"])
    return int(load_config(rundir.config, MDConfig).steps)


def remove_dead_run(rundir: RunDir) -> None:
    """Delete a run directory that holds nothing resumable (a run that died before its first checkpoint)."""
    logger.warning("%s holds a run that stopped before its first checkpoint (nothing to resume); removing the "
                   "folder and starting the run again", rundir.path)
    shutil.rmtree(rundir.path)


def unstable_error(rundir: RunDir) -> SimulationUnstable:
    """The :class:`SimulationUnstable` of a run directory whose ``summary.json`` says ``unstable``."""
    diagnostic = dict(rundir.read_summary().get("diagnostic") or {})
    diagnostic.setdefault("run_dir", str(rundir.path))
    return SimulationUnstable(
        f"MD unstable at step {diagnostic.get('step')} in {rundir.path}: "
        f"{diagnostic.get('message', 'no diagnostic recorded')} (see {rundir.summary}). To go on, change the "
        "settings (e.g. a smaller timestep_fs) and pass force=True / --force to continue from the last "
        "checkpoint, or use a new run directory",
        diagnostic,
    )


def _format(value: Any) -> str:
    return "unset" if value is None else str(value)


def check_completed_run(rundir: RunDir, config: MDConfig, calc: Calculator) -> None:
    """Refuse to reuse a completed run made with other settings or another model.

    Parameters
    ----------
    rundir
        A ``completed`` run directory.
    config
        The caller's configuration, already passed through
        :func:`~tfbsim.workflows.md.setup.resolve_potential` (only the part outside ``potential`` is compared).
    calc
        The caller's calculator (compared by :func:`~tfbsim.workflows.md.runner.model_identity`).

    Raises
    ------
    ConfigError
        Naming each changed key with its old and new value, or the changed model.
    """
    if rundir.checkpoint.is_file():
        meta = read_checkpoint(rundir.checkpoint).meta
        saved, old_model = meta.get("config", {}), meta.get("model", {})
    else:  # only final.extxyz left: config.yaml and the summary's provenance describe the run
        saved = hashed_config(load_config(rundir.config, MDConfig))
        recorded = rundir.read_summary().get("provenance", {}).get("model") or {}
        old_model = {"class": type(calc).__name__, **recorded}
    new = hashed_config(config)
    changed = sorted(k for k in set(saved) | set(new) if saved.get(k) != new.get(k))
    problems = [f"{k}={_format(saved.get(k))}, now {_format(new.get(k))}" for k in changed]
    identity = model_identity(calc)
    if not same_model(identity, old_model):
        problems.append(
            f"model {old_model.get('spec') or old_model.get('class')} "
            f"(sha256 {str(old_model.get('sha256'))[:12]}, {old_model.get('dtype')}), "
            f"now {identity.get('spec') or identity['class']} "
            f"(sha256 {str(identity.get('sha256'))[:12]}, {identity.get('dtype')})"
        )
    if problems:
        raise ConfigError(
            f"{rundir.path}: the completed run was made with {'; '.join(problems)}; use a new run directory, or "
            "force=True to continue from its final checkpoint with the new settings"
        )


def result_from_dir(rundir: RunDir, calc: Calculator | None = None) -> MDResult:
    """The :class:`~tfbsim.workflows.md.runner.MDResult` of a completed run directory, read from its files.

    ``atoms`` is the checkpoint's exact final state (float64, with momenta; ``final.extxyz`` when the checkpoint
    is missing) with ``info['md']`` and ``info['provenance']`` as a fresh run sets them, and ``calc`` attached.
    """
    summary = rundir.read_summary()
    config = load_config(rundir.config, MDConfig)
    if rundir.checkpoint.is_file():
        ckpt = read_checkpoint(rundir.checkpoint)
        atoms = ckpt.atoms
        atoms.info["md"] = {"step": ckpt.step, "time_ps": float(ckpt.meta.get("time_ps", summary.get("time_ps"))),
                            "ensemble": config.ensemble}
        if "provenance" in summary:
            atoms.info["provenance"] = summary["provenance"]
    else:
        from ...structures.io import read_structure

        atoms = read_structure(rundir.final)
    atoms.calc = calc
    log = RunLog(None)
    log.rows = RunLog._read(rundir.log) if rundir.log.is_file() else []
    return MDResult(
        run_dir=Path(rundir.path), atoms=atoms, status="completed",
        steps_done=int(summary["steps_done"]), wall_s=float(summary["wall_s"]),
        steps_per_s=float(summary["steps_per_s"]), temperature_mean_k=summary["temperature_mean_k"],
        temperature_std_k=summary["temperature_std_k"], etot_mean_ev=summary["etot_mean_ev"],
        etot_std_ev=summary["etot_std_ev"], epot_mean_ev=summary["epot_mean_ev"],
        epot_std_ev=summary["epot_std_ev"], config=config, summary=summary, log=log.arrays(),
    )
