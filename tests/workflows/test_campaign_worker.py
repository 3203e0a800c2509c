"""The worker side of campaigns, in-process with EMT: stages, reuse, analysis-only re-runs, errors, the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk

from tfbsim.analysis.diffusion import DiffusionAnalysis
from tfbsim.structures.io import read_json, read_structure, write_structure
from tfbsim.workflows.campaigns.driver import _task_done
from tfbsim.workflows.campaigns.config import load_campaign
from tfbsim.workflows.campaigns.tasks import expand_campaign
from tfbsim.workflows.campaigns.worker import run_campaign_prepare, run_campaign_task, task_lock

MD = {"ensemble": "nvt-langevin", "timestep_fs": 2.0, "log_every": 5, "checkpoint_every": 20, "friction_ps_inv": 2.0}


def _campaign(tmp_path: Path, **changes) -> Path:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=3)
    write_structure(tmp_path / "cu.extxyz", atoms)
    data = {
        "name": "emt",
        "potential": {"model": "emt"},
        "structures": [{"name": "cu", "file": "cu.extxyz"}],
        "temperatures_k": [1200.0],
        "protocol": [{"name": "eq", "md": {**MD, "steps": 20, "traj_every": 10}},
                     {"name": "prod", "md": {**MD, "steps": 80, "traj_every": 4}}],
        "analyses": {"diffusion": {"species": "Cu"}, "arrhenius": None, "coordination": {},
                     "interphase": {"bin_ang": 2.0}},
    }
    data.update(changes)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _task(tmp_path: Path, **changes):
    cfg = load_campaign(_campaign(tmp_path, **changes))
    plan = expand_campaign(cfg)
    for info in plan.structures.values():  # what the driver does before submitting
        Path(info["path"]).parent.mkdir(parents=True, exist_ok=True)
        write_structure(info["path"], read_structure(tmp_path / "cu.extxyz"))
    return plan


def test_task_runs_stages_then_reuses_them_and_reruns_only_changed_analyses(tmp_path):
    plan = _task(tmp_path)
    task = plan.tasks[0]
    summary = run_campaign_task(task.spec)
    assert summary["status"] == "completed", summary.get("reason")
    assert [s["name"] for s in summary["stages"]] == ["eq", "prod"]
    assert (task.dir / "1_eq" / "traj.h5md").exists() and (task.dir / "2_prod" / "checkpoint.npz").exists()
    assert read_json(task.dir / "summary.json")["status"] == "completed" and summary["steps"] == 100
    # D in the summary is the diffusion analysis of the production trajectory (independent recomputation)
    ref = DiffusionAnalysis(task.dir / "2_prod" / "traj.h5md", species="Cu").run().results
    assert summary["D_cm2_s"] == pytest.approx(ref.D_cm2_s, rel=1e-12) and summary["D_cm2_s"] > 0
    assert read_json(task.dir / "analysis" / "diffusion.json")["n_frames"] == 21
    assert (task.dir / "analysis" / "coordination.json").exists() and (task.dir / "analysis" / "msd.png").exists()
    # an analysis that cannot apply is reported without failing the task (Cu has no interphase classes)
    assert len(summary["analysis_errors"]) == 1 and summary["analysis_errors"][0].startswith("interphase: AnalysisError")
    final = read_structure(task.dir / "final.extxyz")
    assert final.info["task_id"] == task.task_id and final.info["temperature_k"] == 1200.0
    assert _task_done(task) is not None  # the driver would skip it

    log_mtime = (task.dir / "2_prod" / "log.csv").stat().st_mtime_ns
    again = run_campaign_task(task.spec)
    assert again["status"] == "completed" and again["sessions"] == 2
    assert all(s.get("reused") for s in again["stages"])
    assert (task.dir / "2_prod" / "log.csv").stat().st_mtime_ns == log_mtime  # MD not repeated
    assert again["D_cm2_s"] == summary["D_cm2_s"]

    # a new fit window: same simulation (spec_hash), new analysis (analysis_hash) -> only D changes
    plan2 = _task(tmp_path, analyses={"diffusion": {"species": "Cu", "fit_start_ps": 0.024, "fit_end_ps": 0.12},
                                      "arrhenius": None})
    task2 = plan2.tasks[0]
    assert task2.spec_hash == task.spec_hash and task2.analysis_hash != task.analysis_hash
    assert _task_done(task2) is None  # the driver resubmits it
    third = run_campaign_task(task2.spec)
    assert (task.dir / "2_prod" / "log.csv").stat().st_mtime_ns == log_mtime
    d = read_json(task.dir / "analysis" / "diffusion.json")
    assert (d["fit_start_ps"], d["fit_end_ps"]) == (0.024, 0.12)
    assert third["D_cm2_s"] != summary["D_cm2_s"]


def test_failures_are_reported_not_raised(tmp_path):
    plan = _task(tmp_path)
    task = plan.tasks[0]
    li = bulk("Li", "bcc", a=3.5, cubic=True) * 2
    write_structure(task.spec["input"], li)  # EMT has no Li
    summary = run_campaign_task(task.spec)
    assert summary["status"] == "failed" and "Li" in summary["reason"] and "PotentialError" in summary["reason"]
    assert "Traceback" in (task.dir / "error.log").read_text()
    assert _task_done(task) is None  # failed tasks are retried by the next run

    dep = {"status": "failed", "key": "cu", "reason": "MD unstable"}
    summary = run_campaign_task(task.spec, dep)
    assert summary["status"] == "failed" and summary["reason"] == "preparation cu failed: MD unstable"


def test_unstable_task_is_final_until_its_settings_change(tmp_path):
    plan = _task(tmp_path, protocol=[{"name": "prod", "md": {**MD, "steps": 400, "traj_every": 10,
                                                             "guard_min_distance_ang": 2.4}}])
    task = plan.tasks[0]
    summary = run_campaign_task(task.spec)
    assert summary["status"] == "unstable" and summary["reason"].startswith("SimulationUnstable: MD unstable at step")
    step = summary["diagnostic"]["step"]
    assert _task_done(task)["status"] == "unstable"  # the driver skips it and reports it
    again = run_campaign_task(task.spec)  # even when forced through, it does not integrate again
    assert again["status"] == "unstable" and read_json(task.dir / "1_prod" / "summary.json")["steps_done"] == step


def test_prepare_relax_and_melt_quench_stages_then_reuse(tmp_path):
    mq = {"preset": "quick", "timestep_fs": 2.0, "melt_k": 1500.0, "melt_ps": 0.01, "quench_rate_k_ps": 1.0e5,
          "final_k": 300.0, "anneal_ps": 0.0, "prerelax_steps": 5, "final_relax_steps": 5}
    plan = _task(tmp_path, prepare=[{"name": "relax", "relax": {"fmax_ev_ang": 0.05, "max_steps": 50}},
                                    {"name": "mq", "melt_quench": mq}])
    unit = plan.preps[0]
    assert plan.tasks[0].spec["input"] == str(unit.output_path)
    summary = run_campaign_prepare(unit.spec)
    assert summary["status"] == "completed", summary.get("reason")
    relax = read_json(unit.dir / "1_relax" / "summary.json")
    assert relax["energy_final_ev"] < relax["energy_initial_ev"] and relax["max_force_ev_ang"] < 0.05
    assert (unit.dir / "2_mq" / "protocol.yaml").exists() and unit.output_path.exists()
    assert summary["stages"][1]["density_final_g_cm3"] > 0
    again = run_campaign_prepare(unit.spec)
    assert again["status"] == "completed" and all(s.get("reused") for s in again["stages"][:1])
    np.testing.assert_allclose(read_structure(unit.output_path).positions,
                               read_structure(unit.dir / "2_mq" / "final.extxyz").positions)


def test_task_lock_waits_for_the_holder_and_survives_its_death(tmp_path):
    folder = tmp_path / "task"
    folder.mkdir()
    hold = ("import fcntl, sys, time; h = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(float(sys.argv[2]))")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(folder / ".lock"), "1.5"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    t_locked = time.monotonic()
    with pytest.raises(TimeoutError, match="stayed locked"):
        with task_lock(folder, timeout_s=0.3, poll_s=0.1):
            pass
    with task_lock(folder, poll_s=0.05):
        # only once the holder let go: it held the lock for 1.5 s after saying so (the kernel releases the lock
        # while the process exits, slightly before it can be reaped, so compare times rather than poll())
        assert time.monotonic() - t_locked > 1.2
    assert time.monotonic() - t_locked < 10
    holder.wait(timeout=10)

    killed = subprocess.Popen([sys.executable, "-c", hold, str(folder / ".lock"), "60"], stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == "locked"
    killed.kill()  # SIGKILL: the kernel releases the lock
    killed.wait()
    with task_lock(folder, timeout_s=2.0):
        assert f"pid {os.getpid()}" in (folder / ".lock").read_text()
