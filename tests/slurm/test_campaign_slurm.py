"""The tiny campaign through a real Slurm cluster (SlurmProvider → sbatch → Parsl workers in the job),
with its first job cancelled mid-campaign (a pre-emption): the tasks are retried in a new job and resume."""

from __future__ import annotations

import csv
import os
import subprocess
import threading
import time

import pytest
import yaml
from _campaign_util import write_tiny_campaign
from _slurm_util import write_slurm_conf

from tfbsim.analysis.h5md import read_h5md_info
from tfbsim.analysis.transport import fit_arrhenius
from tfbsim.errors import ConfigError
from tfbsim.structures.io import read_json
from tfbsim.workflows.campaigns.driver import run_campaign
from tfbsim.workflows.campaigns.config import load_campaign
from tfbsim.workflows.campaigns.tasks import expand_campaign
from tfbsim.workflows.campaigns.executors import check_slurm, load_site
from tfbsim.workflows.campaigns.resultsdb import ResultsDB

pytestmark = pytest.mark.slurm


def _site(tmp_path, partition, **extra):
    data = {"partition": partition, "walltime": "00:10:00", "cores_per_node": os.cpu_count() or 1,
            "cores_per_task": 1, "tasks_per_node": 2, "heartbeat_period_s": 2, "heartbeat_threshold_s": 8,
            "retries": 2, **extra}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _json(path):
    try:
        return read_json(path)
    except Exception:
        return {}


def test_campaign_runs_through_slurm_and_survives_a_cancelled_job(slurm_cluster, tmp_path, tiny_mace_path,
                                                                  monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster["conf"]))
    campaign = write_tiny_campaign(tmp_path / "camp", tiny_mace_path)
    plan = expand_campaign(load_campaign(campaign))
    events, box = [], {}

    def drive():
        try:
            box["result"] = run_campaign(campaign, executor="slurm", site=_site(tmp_path, slurm_cluster["partition"]),
                                         on_event=events.append, status_every_s=5)
        except BaseException as exc:  # reported below
            box["error"] = exc

    thread = threading.Thread(target=drive)
    thread.start()
    cancelled = None
    deadline = time.monotonic() + 240
    while cancelled is None and thread.is_alive() and time.monotonic() < deadline:
        for task in plan.tasks:
            summary = _json(task.dir / "summary.json")
            stages = [s for s in sorted(task.dir.glob("[0-9]_*")) if (s / "checkpoint.npz").exists()
                      and _json(s / "summary.json").get("status") == "running"]
            if summary.get("status") == "running" and summary.get("slurm_job_id") and stages:
                cancelled = (summary["slurm_job_id"], task, stages[0])
                subprocess.run(["scancel", summary["slurm_job_id"]], check=True, timeout=30)
                break
        time.sleep(0.1)
    thread.join(timeout=300)
    assert not thread.is_alive(), "the campaign did not finish"
    assert "error" not in box, box.get("error")
    result = box["result"]
    assert cancelled is not None, "no moment to cancel the job"
    assert result.ok and result.counts == {"completed": 6}, [e.message for e in events]

    job, task, stage = cancelled
    jobs = {_json(t.dir / "summary.json")["slurm_job_id"] for t in plan.tasks}
    assert None not in jobs and len(jobs - {job}) >= 1  # retried tasks ran in a new job
    summary = read_json(stage / "summary.json")  # the cancelled MD resumed from its checkpoint
    assert summary["status"] == "completed" and summary["restarts"] >= 1
    config = task.spec["stages"][int(stage.name[0]) - 1]["config"]
    steps = [int(r["step"]) for r in csv.DictReader((stage / "log.csv").open())]
    assert steps == list(range(0, config["steps"] + 1, config["log_every"]))
    assert list(read_h5md_info(stage / "traj.h5md").steps) == list(range(0, config["steps"] + 1, config["traj_every"]))

    scripts = [p for p in (result.directory / "runinfo").rglob("parsl.*block-*") if p.suffix not in (".stdout", ".stderr")]
    assert len(scripts) >= 2 and "#SBATCH --partition=debug" in scripts[0].read_text()
    rows = ResultsDB(result.directory).rows()
    assert len(rows) == 6 and all(r["status"] == "completed" and r["D_cm2_s"] > 0 for r in rows)
    assert set(result.arrhenius) == {"li2o", "li3n"}
    for system, fit in result.arrhenius.items():
        # tiny runs are bounds (not diffusive): no headline fit, but every task listed with its status, and the
        # unfiltered fit over every completed point (trends only) equals an independent fit of the table's D
        assert len(fit["temperatures"]) == 3 and all(e["status"] for e in fit["temperatures"])
        mine = sorted((r["temperature_k"], r["D_cm2_s"], r["D_stderr_cm2_s"]) for r in rows if r["system"] == system)
        expected = fit_arrhenius(*zip(*mine)).Ea_eV
        assert (fit.get("unfiltered") or fit)["Ea_eV"] == pytest.approx(expected, rel=1e-9)
    assert (result.directory / "summary.md").exists()


def test_unknown_partition_and_unreachable_controller_are_named(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster["conf"]))
    assert slurm_cluster["partition"] in check_slurm(load_site(_site(tmp_path, slurm_cluster["partition"])))
    with pytest.raises(ConfigError, match=r"partition 'gpu-huge' does not exist; the controller knows: debug"):
        check_slurm(load_site(_site(tmp_path, "gpu-huge")))
    # the same cluster seen through a slurm.conf whose controller port nobody listens on
    root = tmp_path / "elsewhere"
    root.mkdir()
    conf = write_slurm_conf(root, ctld_port=9, slurmd_port=10, munge_root=slurm_cluster["root"])
    monkeypatch.setenv("SLURM_CONF", str(conf))
    with pytest.raises(ConfigError, match=r"Slurm controller unreachable: `sinfo` failed \(.*(contact|connect).*\)"):
        check_slurm(load_site(_site(tmp_path, "debug")))
