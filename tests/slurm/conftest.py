"""A single-node Slurm cluster on localhost for the ``slurm`` tests (Debian's slurmctld, slurmd, munge).

The fixture writes a munge key and a ``slurm.conf`` (free ports, every state/spool/log/pid file in a
private temporary folder, proctrack/linuxproc and task/none so no cgroups are needed) and starts munged,
slurmctld and slurmd; it waits for the node to be idle and stops all three afterwards. Tests skip cleanly
when the binaries are missing or when not running as root (slurmd needs it); ``.ci/run`` installs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from _slurm_util import PARTITION, write_slurm_conf

DAEMONS = {"munged": ("/usr/sbin/munged",), "slurmctld": ("/usr/sbin/slurmctld",), "slurmd": ("/usr/sbin/slurmd",)}
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo")

def _binary(name: str) -> str | None:
    for candidate in (*DAEMONS.get(name, ()), shutil.which(name)):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(pidfiles: list[Path]) -> None:
    """SIGTERM every daemon of the pid files, then SIGKILL those still alive after 2 s."""
    pids = []
    for path in pidfiles:
        try:
            pids.append(int(path.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 0.0)):
        alive = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if _exists(pid)]
        pids = alive


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def slurm_binaries():
    """Paths of the Slurm and munge binaries; skips when any is missing or when not root."""
    found = {name: _binary(name) for name in (*DAEMONS, *CLIENTS)}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        pytest.skip(f"Slurm/munge binaries missing ({', '.join(missing)}); `.ci/run` installs slurmctld slurmd "
                    "slurm-client munge")
    if os.geteuid() != 0:
        pytest.skip("the local Slurm test cluster needs root (slurmd)")
    return found


@pytest.fixture(scope="session")
def slurm_cluster(slurm_binaries):
    """Start munged + slurmctld + slurmd on localhost; yields ``{"conf", "partition", "root"}``."""
    root = Path(tempfile.mkdtemp(prefix="tfbslurm-", dir="/tmp"))
    for sub in ("state", "spool", "log", "munge"):
        (root / sub).mkdir()
    root.chmod(0o755)
    (root / "munge").chmod(0o755)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = write_slurm_conf(root, ctld_port=_free_port(), slurmd_port=_free_port())
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pidfiles = [root / "slurmd.pid", root / "slurmctld.pid", root / "munge" / "munged.pid"]
    try:
        m = root / "munge"
        subprocess.run([slurm_binaries["munged"], f"--key-file={key}", f"--socket={m}/munge.socket",
                        f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log", f"--seed-file={m}/munge.seed"],
                       check=True, env=env, capture_output=True, timeout=30)
        subprocess.run([slurm_binaries["slurmctld"], "-f", str(conf)], check=True, env=env, capture_output=True,
                       timeout=30)
        subprocess.run([slurm_binaries["slurmd"], "-f", str(conf)], check=True, env=env, capture_output=True,
                       timeout=30)
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            out = subprocess.run([slurm_binaries["sinfo"], "--noheader", "--format=%T"], env=env,
                                 capture_output=True, text=True, timeout=30)
            state = (out.stdout or out.stderr).strip()
            if out.returncode == 0 and state.startswith("idle"):
                break
            time.sleep(0.5)
        else:
            logs = "\n".join(p.read_text()[-2000:] for p in (root / "log").glob("*.log"))
            pytest.fail(f"the local Slurm cluster did not come up (sinfo: {state!r}); logs:\n{logs}")
        yield {"conf": conf, "partition": PARTITION, "root": root}
    finally:
        subprocess.run([slurm_binaries["scancel"], "--user", str(os.getuid())], env=env, capture_output=True,
                       timeout=30, check=False)
        _stop(pidfiles)
        shutil.rmtree(root, ignore_errors=True)
