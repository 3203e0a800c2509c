"""The local executor replaces a worker pool that ended while tasks still wait.

Parsl's worker pool exits normally (status 0) when it hears nothing from its interchange for the heartbeat
threshold, which a heavily loaded machine can cause. Without a scaling strategy no new pool is started and
the waiting tasks wait for ever (a campaign that hangs instead of finishing). Here the interchange is frozen
(SIGSTOP) past a short threshold so that the pool leaves; the next task must still run, in a new pool.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from tfbsim.workflows.campaigns.executors import LocalExecutorConfig, parsl_config


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def test_a_pool_that_left_is_replaced_and_waiting_tasks_run(tmp_path):
    from parsl import python_app
    from parsl.dataflow.dflow import DataFlowKernel

    local = LocalExecutorConfig(workers=1, heartbeat_period_s=1, heartbeat_threshold_s=3)
    cfg = parsl_config("local", tmp_path / "runinfo", local=local)
    dfk = DataFlowKernel(cfg)
    try:
        app = python_app(os.getpid, executors=[cfg.executors[0].label], data_flow_kernel=dfk)
        first = app().result(timeout=120)
        htex = dfk.executors[cfg.executors[0].label]
        interchange = _children(htex.interchange_proc.pid)  # the guard's child is the interchange itself
        assert len(interchange) == 1
        os.kill(interchange[0], signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and os.path.exists(f"/proc/{first}"):
                time.sleep(0.5)
        finally:
            os.kill(interchange[0], signal.SIGCONT)
        assert not os.path.exists(f"/proc/{first}"), "the pool did not leave when its interchange went silent"
        try:
            second = app().result(timeout=120)
        except TimeoutError:
            pytest.fail("a task submitted after the pool left never ran: no new pool was started")
        assert second != first
    finally:
        dfk.cleanup()
