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

from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError
from .config import MDConfig
from .run import restart_md, run_md
from .run_state import (RunState, check_completed_run, inspect_run_dir, planned_steps, remove_dead_run,
                        result_from_dir, unstable_error)
from .rundir import RunDir
from .runner import MDResult
from .setup import as_md_config, resolve_potential

#: ``RunState`` and ``inspect_run_dir`` are re-exported: callers ask this module what a folder holds and act on it.
__all__ = ["RunState", "inspect_run_dir", "start_or_resume"]

logger = logging.getLogger(__name__)


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
            check_completed_run(rundir, config.model_copy(update={"steps": planned_steps(rundir)}), calc)
            logger.info("%s: completed run extended from %d to %d steps", rundir.path, done, config.steps)
            return restart_md(rundir.path, calc, config=config, progress=progress, extend=True)
        if config.steps > done:
            raise ConfigError(f"{rundir.path}: the completed run has no checkpoint left to extend from; use a new "
                              "run directory")
        if config.steps < done:
            raise ConfigError(f"{rundir.path}: the completed run has {done} steps, more than the {config.steps} "
                              "asked for; a run can be extended, not shortened")
        config = config.model_copy(update={"steps": planned_steps(rundir)})
    check_completed_run(rundir, config, calc)
    logger.info("%s: completed run reused", rundir.path)
    return result_from_dir(rundir, calc)
