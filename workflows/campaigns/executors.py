"""Where campaign tasks run: Parsl configurations for this machine's cores and for a Slurm cluster.

Both executors are Parsl's HighThroughputExecutor (HTEX); only the provider differs:

``local``
    :class:`LocalExecutorConfig` (campaign YAML key ``local``): ``workers`` tasks at a time on this
    machine, ``threads_per_task`` threads each (torch intra-op threads of the potential). Parsl's
    LocalProvider starts one worker pool; it dies with the driver (:mod:`tfbsim.workflows.campaigns.parsl_guard`).
``slurm``
    :class:`SlurmSiteConfig` from a site file (``--site SITE.yaml``): Parsl's SlurmProvider submits
    batch jobs ("blocks") to ``partition`` with ``account``, ``walltime``, ``nodes`` per job, ``cores_per_task``
    / ``gpus_per_task`` and ``worker_init`` commands (``module load``, venv activation). Tasks whose job is
    pre-empted or killed are retried (``retries``) and resume from their checkpoints; new jobs are
    submitted as long as tasks are waiting (up to ``max_blocks``).

Example ``site.yaml``::

    partition: standard
    account: myproject
    walltime: "04:00:00"
    nodes: 1
    cores_per_node: 64
    cores_per_task: 8
    max_blocks: 4
    worker_init:
      - module load python/3.11
      - source /work/me/tfbsim/.venv/bin/activate

:func:`check_slurm` runs before anything is submitted or written and says precisely what is wrong: Slurm
commands missing on this machine, the controller unreachable, or an unknown partition.

The driver (``tfbsim run``) stays on the submitting machine for the whole campaign and only submits jobs and
keeps the books: start it inside ``tmux``/``screen`` (or with ``nohup``) on the login node. If it dies, the
workers in the jobs stop after ``heartbeat_threshold_s`` and the same command resumes the campaign.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from ...errors import ConfigError
from ..config import StrictModel, load_config

__all__ = [
    "EXECUTORS",
    "LocalExecutorConfig",
    "SlurmSiteConfig",
    "load_site",
    "check_slurm",
    "parsl_config",
    "retry_cost",
    "SLURM_COMMANDS",
]

logger = logging.getLogger(__name__)

#: Executor names accepted by ``tfbsim run --executor``.
EXECUTORS: tuple[str, ...] = ("local", "slurm")
#: Commands the Slurm provider calls on the submitting machine.
SLURM_COMMANDS: tuple[str, ...] = ("sbatch", "squeue", "scancel", "sinfo")
_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$")
_LABEL = "tfbsim_htex"


class LocalExecutorConfig(StrictModel):
    """Tasks on this machine's cores.

    Attributes
    ----------
    workers
        Tasks that run at the same time (one worker process each).
    threads_per_task
        Threads of each task (the potential's torch intra-op threads); ``workers × threads_per_task``
        should not exceed the number of cores.
    heartbeat_period_s, heartbeat_threshold_s
        Parsl heartbeats between the interchange and the worker pool (s). A pool that hears nothing for
        ``heartbeat_threshold_s`` exits, and the driver starts a new one for the waiting tasks; a killed
        driver stops its pool at once through :mod:`~tfbsim.workflows.campaigns.parsl_guard`, so a long
        threshold costs nothing and keeps a busy machine from losing its pool.
    """

    workers: int = Field(2, ge=1, le=1024)
    threads_per_task: int = Field(1, ge=1, le=1024)
    heartbeat_period_s: int = Field(10, ge=1)
    heartbeat_threshold_s: int = Field(120, ge=2)

    @model_validator(mode="after")
    def _check_heartbeat(self) -> LocalExecutorConfig:
        if self.heartbeat_threshold_s <= self.heartbeat_period_s:
            raise ValueError("heartbeat_threshold_s must exceed heartbeat_period_s")
        return self


class SlurmSiteConfig(StrictModel):
    """A Slurm cluster (``--site SITE.yaml``).

    Attributes
    ----------
    partition
        Partition (queue) to submit to (required).
    account, qos, constraint
        ``--account``, ``--qos``, ``--constraint`` of the jobs (optional).
    walltime
        Time limit of one job, ``HH:MM:SS`` or ``D-HH:MM:SS``. A task that outlives its job is retried in a
        new job and resumes from its last checkpoint.
    nodes
        Nodes per job; each node runs ``tasks_per_node`` tasks.
    max_blocks
        Jobs that may be queued or running at the same time.
    cores_per_node
        Cores requested per node (``--cpus-per-task`` of the job's one Slurm task); default: all
        ``tasks_per_node × cores_per_task``.
    cores_per_task
        Threads of each campaign task.
    gpus_per_task
        GPUs of each campaign task (each worker sees only its own through ``CUDA_VISIBLE_DEVICES``).
    tasks_per_node
        Campaign tasks that run at the same time on one node; default ``cores_per_node // cores_per_task``
        (1 without ``cores_per_node``).
    mem_per_node_gb
        Memory per node (GB), or the partition's default.
    worker_init
        Shell commands run at the start of each job before the workers start (``module load ...``,
        ``source .../activate``); a string or a list of lines.
    scheduler_options
        Extra ``#SBATCH`` lines for the job script.
    python
        Python interpreter on the compute nodes that has tfbsim installed; default: the driver's own
        (right when the venv is on a shared file system).
    exclusive
        Request whole nodes (``--exclusive``).
    retries
        How often a task whose job died (pre-emption, node failure, walltime) is resubmitted.
    heartbeat_period_s, heartbeat_threshold_s
        Parsl heartbeats between the driver and the workers: workers whose driver is silent for the
        threshold stop (s).
    address
        Address of the submitting machine as seen from the compute nodes; default: Parsl tries all of its
        addresses.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    walltime: str = "01:00:00"
    nodes: int = Field(1, ge=1)
    max_blocks: int = Field(1, ge=1)
    cores_per_node: int | None = Field(None, ge=1)
    cores_per_task: int = Field(1, ge=1)
    gpus_per_task: int = Field(0, ge=0)
    tasks_per_node: int | None = Field(None, ge=1)
    mem_per_node_gb: int | None = Field(None, ge=1)
    worker_init: str | list[str] = ""
    scheduler_options: list[str] = Field(default_factory=list)
    python: str | None = None
    exclusive: bool = False
    retries: int = Field(3, ge=0)
    heartbeat_period_s: int = Field(30, ge=1)
    heartbeat_threshold_s: int = Field(120, ge=2)
    address: str | None = None

    @field_validator("walltime")
    @classmethod
    def _check_walltime(cls, value: str) -> str:
        if not _WALLTIME.match(value.strip()):
            raise ValueError("walltime must look like HH:MM:SS or D-HH:MM:SS")
        return value.strip()

    @field_validator("scheduler_options")
    @classmethod
    def _check_options(cls, value: list[str]) -> list[str]:
        bad = [line for line in value if not line.strip().startswith("#SBATCH")]
        if bad:
            raise ValueError(f"each scheduler option is a full '#SBATCH ...' line; not: {bad[0]!r}")
        return value

    @model_validator(mode="after")
    def _check_resources(self) -> SlurmSiteConfig:
        if self.heartbeat_threshold_s <= self.heartbeat_period_s:
            raise ValueError("heartbeat_threshold_s must exceed heartbeat_period_s")
        if self.cores_per_node is not None and self.cores_per_task > self.cores_per_node:
            raise ValueError(f"cores_per_task ({self.cores_per_task}) exceeds cores_per_node ({self.cores_per_node})")
        return self

    # ------------------------------------------------------------------------------------------ derived
    @property
    def workers_per_node(self) -> int:
        """Campaign tasks running at the same time on one node."""
        if self.tasks_per_node is not None:
            return self.tasks_per_node
        if self.cores_per_node is not None:
            return max(1, self.cores_per_node // self.cores_per_task)
        return 1

    @property
    def worker_init_text(self) -> str:
        """``worker_init`` as one shell snippet."""
        return self.worker_init if isinstance(self.worker_init, str) else "\n".join(self.worker_init)


def load_site(path: str | os.PathLike) -> SlurmSiteConfig:
    """Read and validate a Slurm site file (unknown keys and a missing ``partition`` are errors)."""
    site = load_config(path, SlurmSiteConfig)
    if not site.partition:
        raise ConfigError(
            f"{path}: no 'partition': name the Slurm partition to submit to (list them with `sinfo -s`), "
            "e.g. 'partition: standard'"
        )
    return site


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)


def check_slurm(site: SlurmSiteConfig, *, timeout_s: float = 30.0) -> list[str]:
    """Check that jobs can be submitted: Slurm commands present, controller reachable, partition known.

    Returns
    -------
    list of str
        The partitions the controller reports.

    Raises
    ------
    ConfigError
        Naming the missing commands, the unreachable controller (with Slurm's own message) or the unknown
        partition (with the known ones).
    """
    if not site.partition:
        raise ConfigError("the site has no 'partition': name the Slurm partition to submit to")
    missing = [cmd for cmd in SLURM_COMMANDS if shutil.which(cmd) is None]
    if missing:
        raise ConfigError(
            f"Slurm commands missing on this machine: {', '.join(missing)} (not on PATH); run tfbsim on a login "
            "node of the cluster, or load its Slurm module (e.g. `module load slurm`)"
        )
    try:
        out = _run(["sinfo", "--noheader", "--format=%R"], timeout_s)
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"Slurm controller unreachable: `sinfo` got no answer within {timeout_s:.0f} s; check that slurmctld "
            "is running and that SLURM_CONF / slurm.conf point at it"
        ) from None
    if out.returncode != 0:
        said = (out.stderr or out.stdout).strip().splitlines()
        raise ConfigError(
            f"Slurm controller unreachable: `sinfo` failed ({said[-1] if said else f'exit {out.returncode}'}); "
            "check that slurmctld is running and that SLURM_CONF / slurm.conf point at it"
        )
    partitions = sorted({line.strip().rstrip("*") for line in out.stdout.splitlines() if line.strip()})
    if site.partition not in partitions:
        raise ConfigError(
            f"Slurm partition {site.partition!r} does not exist; the controller knows: {', '.join(partitions) or '(none)'}"
        )
    return partitions


# ------------------------------------------------------------------------------------------------ Parsl
def retry_cost(exc: BaseException, task_record: Any) -> float:
    """Parsl ``retry_handler``: retry tasks whose worker or job died, never tasks that raised themselves.

    Campaign tasks catch their own errors and return a status; an exception reaching Parsl means the
    worker process, its node or its batch job went away (pre-emption, walltime, out of memory), which a
    resubmission (resuming from the checkpoint) can fix.
    """
    from parsl.executors.high_throughput.errors import ManagerLost, WorkerLost

    if isinstance(exc, (ManagerLost, WorkerLost)):
        return 1.0
    name = type(exc).__name__
    if name in {"ManagerLost", "WorkerLost", "BadStateException", "ConnectionError"}:
        return 1.0
    return 1e9


def _launch_cmd(python: str, watch_pid: int | None) -> str:
    from parsl.executors.high_throughput.executor import DEFAULT_LAUNCH_CMD

    module = "parsl.executors.high_throughput.process_worker_pool"
    if watch_pid is None:
        runner = f"{python} -m {module}"
    else:
        runner = f"{python} -m tfbsim.workflows.campaigns.parsl_guard --watch-pid {watch_pid} -- {module}"
    return DEFAULT_LAUNCH_CMD.replace("process_worker_pool.py", runner, 1)


def _interchange_cmd() -> list[str]:
    return [sys.executable, "-m", "tfbsim.workflows.campaigns.parsl_guard", "--watch-pid", str(os.getpid()), "--",
            "parsl.executors.high_throughput.interchange"]


def _thread_exports(threads: int) -> str:
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return "\n".join(f"export {name}={threads}" for name in names)


def parsl_config(
    executor: str,
    run_dir: str | os.PathLike,
    *,
    local: LocalExecutorConfig | None = None,
    site: SlurmSiteConfig | None = None,
) -> Any:
    """A :class:`parsl.config.Config` for ``executor`` (``local`` or ``slurm``).

    Parameters
    ----------
    executor
        ``local`` or ``slurm``.
    run_dir
        Parsl's run folder (job scripts, worker logs), normally ``<campaign>/runinfo``.
    local
        Settings of the local executor (default :class:`LocalExecutorConfig`).
    site
        The Slurm site (required for ``slurm``).

    Raises
    ------
    ConfigError
        Unknown executor or ``slurm`` without a site.
    """
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.jobs.error_handlers import windowed_error_handler

    run_dir = str(Path(run_dir).resolve())
    if executor == "local":
        from parsl.providers import LocalProvider

        local = local or LocalExecutorConfig()
        provider = LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1,
                                 worker_init=_thread_exports(local.threads_per_task))
        htex = HighThroughputExecutor(
            label=_LABEL, provider=provider, max_workers_per_node=local.workers,
            cores_per_worker=float(local.threads_per_task), encrypted=False, address="127.0.0.1",
            launch_cmd=_launch_cmd(sys.executable, os.getpid()), interchange_launch_cmd=_interchange_cmd(),
            heartbeat_period=local.heartbeat_period_s, heartbeat_threshold=local.heartbeat_threshold_s,
            poll_period=10, block_error_handler=windowed_error_handler,
        )
        # "simple": a pool that ended while tasks wait (it lost its interchange, or was killed) is replaced
        # at the next strategy pass; with no strategy the waiting tasks would wait for ever. The error
        # handler gives up only when the last three pools all failed (a broken installation).
        return Config(executors=[htex], run_dir=run_dir, strategy="simple", strategy_period=2, max_idletime=60,
                      initialize_logging=False, retries=1, retry_handler=retry_cost)
    if executor == "slurm":
        if site is None:
            raise ConfigError("--executor slurm needs --site SITE.yaml (partition, account, walltime, ...)")
        from parsl.launchers import SingleNodeLauncher, SrunLauncher
        from parsl.providers import SlurmProvider

        per_node = site.workers_per_node
        cores = site.cores_per_node or per_node * site.cores_per_task
        options = list(site.scheduler_options)
        gpus_per_node = site.gpus_per_task * per_node
        provider = SlurmProvider(
            partition=site.partition, account=site.account, qos=site.qos, constraint=site.constraint,
            nodes_per_block=site.nodes, cores_per_node=cores, init_blocks=1, min_blocks=0,
            max_blocks=site.max_blocks, walltime=site.walltime,
            mem_per_node=site.mem_per_node_gb, gpus_per_node=gpus_per_node or None,
            scheduler_options="\n".join(options),
            worker_init="\n".join(filter(None, [site.worker_init_text, _thread_exports(site.cores_per_task)])),
            exclusive=site.exclusive,
            launcher=SrunLauncher() if site.nodes > 1 else SingleNodeLauncher(),
        )
        accelerators: list[str] | tuple = ()
        if site.gpus_per_task:
            k = site.gpus_per_task
            accelerators = [",".join(str(g) for g in range(i * k, (i + 1) * k)) for i in range(per_node)]
        htex = HighThroughputExecutor(
            label=_LABEL, provider=provider, max_workers_per_node=per_node,
            cores_per_worker=float(site.cores_per_task), encrypted=False, address=site.address,
            available_accelerators=accelerators,
            # give up only when the last three jobs all failed (a broken worker_init), not on one lost node
            block_error_handler=windowed_error_handler,
            launch_cmd=_launch_cmd(site.python or sys.executable, None), interchange_launch_cmd=_interchange_cmd(),
            heartbeat_period=site.heartbeat_period_s, heartbeat_threshold=site.heartbeat_threshold_s,
        )
        return Config(executors=[htex], run_dir=run_dir, strategy="htex_auto_scale", strategy_period=2,
                      initialize_logging=False, retries=site.retries, retry_handler=retry_cost, max_idletime=30)
    raise ConfigError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
