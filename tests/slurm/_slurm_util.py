"""slurm.conf for the local test cluster (shared by the fixture and the tests)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

PARTITION = "debug"

SLURM_CONF = """\
ClusterName=tfbsimtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_root}/munge/munge.socket
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=5
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""



def write_slurm_conf(root: Path, *, ctld_port: int, slurmd_port: int, munge_root: Path | None = None) -> Path:
    """A slurm.conf for this host in ``root`` (returned path); the munge socket lives in ``munge_root/munge``."""
    import getpass

    text = SLURM_CONF.format(host=socket.gethostname().split(".")[0], user=getpass.getuser(), root=root,
                             munge_root=munge_root or root,
                             ctld_port=ctld_port, slurmd_port=slurmd_port, cpus=os.cpu_count() or 1,
                             partition=PARTITION)
    path = root / f"slurm-{ctld_port}.conf"
    path.write_text(text)
    return path
