"""Advisory ``flock`` locks on a file, shared by the campaign driver and its task workers.

The kernel releases an ``flock`` when its holder exits or is killed, so a stale lock never blocks a resumed
run. The lock file holds who has it (pid, host, since when), which is what a waiting or refused process
reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..provenance import utc_now

__all__ = ["LockBusy", "file_lock"]

logger = logging.getLogger(__name__)


class LockBusy(RuntimeError):
    """The lock is held by another process (``holder`` says which) and the caller chose not to wait."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder}")
        self.path, self.holder = path, holder


def _try(handle, path: Path) -> bool:
    """Take the lock if free: True when held (or when the file system has no ``flock``), False when busy."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:  # no flock on this file system
        logger.warning("cannot lock %s (%s); continuing without a lock", path, exc)
    return True


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike, *, wait: bool = True, poll_s: float = 0.5, timeout_s: float | None = None
) -> Iterator[None]:
    """Hold the exclusive ``flock`` of ``path`` (created, with its folder) for the ``with`` block.

    Parameters
    ----------
    path
        The lock file.
    wait
        Wait while another process holds it (polling every ``poll_s`` seconds); ``False``: raise
        :class:`LockBusy` at once.
    timeout_s
        Give up waiting after this many seconds (:class:`TimeoutError`); ``None``: wait for ever.

    On file systems without ``flock`` the lock is skipped with a warning.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - closed below
    try:
        if not _try(handle, path):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not wait:
                raise LockBusy(path, holder)
            logger.warning("%s is busy (%s); waiting for it to finish or die", path.parent, holder)
            waited = 0.0
            while not _try(handle, path):
                if timeout_s is not None and waited >= timeout_s:
                    raise TimeoutError(f"{path.parent} stayed locked by {holder} for {timeout_s:g} s")
                time.sleep(poll_s)
                waited += poll_s
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {utc_now()}\n")
        handle.flush()
        yield
    finally:
        handle.close()
