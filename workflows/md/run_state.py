"""What an MD run directory holds, and reading or refusing what it holds (the states of
:func:`~tfbsim.workflows.md.resume.start_or_resume`).

:func:`inspect_run_dir` classifies a folder (:class:`RunState`); :func:`check_completed_run` refuses to reuse a
completed run made with other settings or another model; :func:`result_from_dir` reads a completed run back as an
:class:`~tfbsim.workflows.md.runner.MDResult`; :func:`unstable_error` and :func:`remove_dead_run` handle the
``unstable`` and ``no_checkpoint`` states. Nothing here starts MD.
"""

from __future__ import annotations

import logging
import os
import shutil
from enum import Enum
from pathlib import Path
from typing import Any

from ase.calculators.calculator import Calculator

from ...errors import ConfigError, SimulationUnstable
from ..config import load_config
from .checkpoint import read_checkpoint
from .config import MDConfig
from .rundir import RunDir, RunLog
from .runner import MDResult, hashed_config, model_identity, same_model

__all__ = [
    "RunState", "inspect_run_dir", "planned_steps", "result_from_dir", "check_completed_run", "unstable_error",
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


def planned_steps(rundir: RunDir) -> int:
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
