"""The tfbsim exception hierarchy.

Every error a user can cause derives from :class:`TfbsimError`; its message says what is wrong *and* what to
do about it. The CLI turns a :class:`TfbsimError` into one line ``error: ...`` and exit code 2, a
:class:`SimulationUnstable` into exit code 3, and a :class:`RunInterrupted` (SIGTERM/SIGUSR1: checkpoint written)
into 128 + the signal number. Anything else is a bug (exit code 1, traceback with ``--debug``).

The classes also derive from the closest built-in exception, so ``except ValueError`` keeps working for
callers who do not know tfbsim (the ASE style).
"""

from __future__ import annotations

__all__ = [
    "TfbsimError",
    "ConfigError",
    "StructureError",
    "PotentialError",
    "ModelNotFoundError",
    "TrajectoryError",
    "AnalysisError",
    "SimulationUnstable",
    "RunInterrupted",
]


class TfbsimError(Exception):
    """Base class of every error tfbsim raises on purpose."""


class ConfigError(TfbsimError, ValueError):
    """A configuration value, YAML file or command-line option is invalid."""


class StructureError(TfbsimError, ValueError):
    """A structure cannot be built or is unsuitable (bad formula, overlapping atoms, unknown phase...)."""


class PotentialError(TfbsimError, RuntimeError):
    """A potential cannot be loaded or cannot handle the structure (e.g. missing elements)."""


class ModelNotFoundError(PotentialError, FileNotFoundError):
    """A model file is not where it must be; the message names the file and the folder to place it in."""


class TrajectoryError(TfbsimError, ValueError):
    """A trajectory or structure file cannot be read or lacks what an analysis needs (cell, time step...)."""


class AnalysisError(TfbsimError, ValueError):
    """An analysis was asked for something impossible (empty selection, bins larger than the cell...)."""


class SimulationUnstable(TfbsimError, RuntimeError):
    """An MD guard tripped (non-finite values, huge forces, atoms too close, runaway temperature).

    The trajectory up to the last good frame is kept and ``summary.json`` records ``status: "unstable"``.

    Parameters
    ----------
    message
        Human-readable diagnostic.
    diagnostic
        Machine-readable details (step, which guard, offending values).
    """

    exit_code = 3

    def __init__(self, message: str, diagnostic: dict | None = None) -> None:
        super().__init__(message)
        self.diagnostic = dict(diagnostic or {})


class RunInterrupted(TfbsimError, RuntimeError):
    """An MD run stopped on SIGTERM or SIGUSR1 after writing a checkpoint at the current step.

    ``summary.json`` records ``status: "interrupted"`` and the signal; ``restart_md`` (``tfbsim md --restart``)
    continues the run exactly from that step, and a campaign resumes it with ``tfbsim run``.

    Parameters
    ----------
    message
        Human-readable diagnostic (which signal, which step, how to continue).
    signum
        The signal number (``signal.SIGTERM`` = 15, ``signal.SIGUSR1`` = 10 on Linux).
    step
        The step at which the checkpoint was written.
    run_dir
        The run directory holding the checkpoint (``None`` for an in-memory run).
    """

    def __init__(self, message: str, *, signum: int, step: int, run_dir: str | None = None) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.step = int(step)
        self.run_dir = run_dir

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 128 + the signal number (143 for SIGTERM, 138 for SIGUSR1), the shell's
        convention for a process ended by a signal."""
        return 128 + self.signum
