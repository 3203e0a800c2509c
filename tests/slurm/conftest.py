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


def _kill_pidfile(path: Path) -> None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(20):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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
        for pidfile in pidfiles:
            _kill_pidfile(pidfile)
        shutil.rmtree(root, ignore_errors=True)
