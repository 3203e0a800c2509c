"""Run a Python module as a child that dies with a watched process (Parsl's interchange and local workers).

Parsl's HighThroughputExecutor starts an *interchange* process next to the driver and (locally) a worker
pool in its own process group. When the driver is killed hard (SIGKILL, a closed terminal), neither notices
at once: the interchange lives on and the workers keep running their task until a heartbeat times out. A
worker left running would still be writing into a task's run directory while the re-run driver resumes
the same task. This wrapper closes that gap on one machine::

    python -m tfbsim.workflows.campaigns.parsl_guard --watch-pid PID -- MODULE [ARGS...]

runs ``python -m MODULE ARGS`` in a new session (standard input, output and error are inherited), checks
once per second that process ``PID`` (with the same start time) still exists, and kills the child's whole
process group when it is gone; SIGTERM/SIGINT to the wrapper are forwarded the same way. The wrapper exits
with the child's exit status. On a cluster the driver's PID is not visible from the compute nodes: there the
workers stop through Parsl's heartbeat, and the per-task lock of :mod:`tfbsim.workflows.campaigns.tasks` keeps
a late worker and a resumed task from writing at the same time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["process_start_time", "main"]


def process_start_time(pid: int) -> str | None:
    """Start time of ``pid`` (clock ticks since boot, from ``/proc``), or ``None`` when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "unknown"
        return "unknown"
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] in ("Z", "X"):  # a zombie has exited already (its parent has not reaped it yet)
        return None
    return fields[19] if len(fields) > 19 else "unknown"


def _alive(pid: int, started: str | None) -> bool:
    now = process_start_time(pid)
    return now is not None and (started in (None, "unknown") or now == started)


def _kill_group(child: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring); returns the child's exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[0] != "--watch-pid" or args[2] != "--":
        sys.stderr.write("usage: python -m tfbsim.workflows.campaigns.parsl_guard --watch-pid PID -- MODULE [ARGS...]\n")
        return 2
    pid = int(args[1])
    started = process_start_time(pid)
    if started is None:
        return 1  # the driver is already gone: do not start anything
    child = subprocess.Popen([sys.executable, "-m", *args[3:]], start_new_session=True)

    def forward(signum, _frame):  # noqa: ANN001 - signal handler signature
        _kill_group(child, signal.SIGTERM)
        time.sleep(1.0)
        _kill_group(child, signal.SIGKILL)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            return child.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        if not _alive(pid, started):
            _kill_group(child, signal.SIGKILL)
            child.wait()
            return 137


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    sys.exit(main())
