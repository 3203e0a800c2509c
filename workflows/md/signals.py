"""SIGTERM/SIGUSR1 → a stop request that the MD runner turns into a checkpoint and a clean exit.

Slurm sends SIGTERM when a job reaches its walltime (or the signal chosen with ``--signal``, e.g.
``--signal=USR1@120``) and SIGKILL some seconds later. While an :class:`~tfbsim.workflows.md.runner.MDRunner`
with a run directory runs in the main thread, :func:`stop_on_signals` replaces the handlers of those signals by
one that only records the signal in a :class:`StopRequest`; the engine stops at the next step boundary, the
runner writes a checkpoint at that step, ``summary.json`` says ``interrupted``, and
:class:`~tfbsim.errors.RunInterrupted` is raised (the CLI exits with 128 + the signal number). The previous
handlers are always restored when the run ends. Outside the main thread (Parsl thread executors, the batched
GPU runners) Python cannot install handlers, and none is installed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["StopRequest", "stop_on_signals", "STOP_SIGNALS", "signal_name"]

#: The signals that stop a run cleanly (SIGINT keeps Python's KeyboardInterrupt).
STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGUSR1)


def signal_name(signum: int) -> str:
    """``15`` → ``"SIGTERM"`` (``"signal N"`` for numbers the platform does not name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopRequest:
    """A flag the signal handler sets and the engine polls once per step (an attribute read: no overhead).

    Attributes
    ----------
    signum
        The signal that asked to stop, or ``None``.
    """

    __slots__ = ("signum",)

    def __init__(self) -> None:
        self.signum: int | None = None

    def request(self, signum: int) -> None:
        """Ask the run to stop (the first signal wins)."""
        if self.signum is None:
            self.signum = int(signum)

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signum is not None


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest, signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[bool]:
    """Route ``signals`` to ``stop`` for the duration of the block; yields whether handlers were installed.

    The handler only sets the flag (no I/O, no locks: safe at any point of the main thread). Nothing is
    installed outside the main thread; the previous handlers come back on exit, whatever happens.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return

    def handler(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
        stop.request(signum)

    previous: dict[int, object] = {}
    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, handler)
        yield True
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
