"""A local campaign end to end through Parsl (2 structures × 3 temperatures, tiny MACE): kill the driver
mid-campaign, run the same command again, and check that nothing was lost or repeated."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _campaign_util import write_tiny_campaign
from tfbsim.analysis.h5md import read_h5md_frames, read_h5md_info
from tfbsim.analysis.transport import fit_arrhenius
from tfbsim.cli import app
from tfbsim.errors import TrajectoryError
from tfbsim.structures.io import read_json, read_structure
from tfbsim.workflows.campaigns.config import load_campaign
from tfbsim.workflows.campaigns.resultsdb import ResultsDB
from tfbsim.workflows.campaigns.tasks import expand_campaign
from tfbsim.workflows.campaigns.worker import run_campaign_task


def _json(path: Path) -> dict:
    try:
        return read_json(path)
    except Exception:  # being replaced right now
        return {}


def _interrupted_stage(task_dir: Path) -> Path | None:
    """A stage folder whose MD is under way (checkpoint written, not completed)."""
    for stage in sorted(task_dir.glob("[0-9]_*")):
        if (stage / "checkpoint.npz").exists() and _json(stage / "summary.json").get("status") == "running":
            return stage
    return None


def _leftovers(pid: int, folder: Path) -> list[str]:
    """Processes of a killed driver: its guards, and anything holding a file in the campaign folder."""
    out = subprocess.run(["ps", "-ewwo", "args"], capture_output=True, text=True).stdout.splitlines()
    found = [line for line in out if f"--watch-pid {pid} " in line]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                targets = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
            except OSError:
                continue
            found += [f"pid {proc.name}: {t}" for t in targets if t.startswith(str(folder))]
    return found


def _last_step(path: Path, wait_s: float = 20.0) -> int:
    """Last frame of an interrupted trajectory. A killed worker's HDF5 file lock can outlast the moment its
    process stops being listed in /proc (its descriptors are released while it exits): wait that out, but a
    file still locked after ``wait_s`` means a writer is alive."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return int(read_h5md_info(path).steps.max())
        except TrajectoryError as exc:
            if "unable to lock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _log_steps(path: Path) -> list[int]:
    return [int(row["step"]) for row in csv.DictReader(path.open())]


def test_local_campaign_survives_a_killed_driver(tmp_path, tiny_mace_path, cli_runner):
    yaml_path = write_tiny_campaign(tmp_path / "camp", tiny_mace_path)
    cfg = load_campaign(yaml_path)
    plan = expand_campaign(cfg)
    tasks = {t.task_id: t for t in plan.tasks}
    assert len(tasks) == 6

    # ---- session 1: a driver in its own process, killed with SIGKILL while one task is mid-MD
    log = (tmp_path / "driver1.log").open("w")
    driver = subprocess.Popen([sys.executable, "-m", "tfbsim.cli", "run", str(yaml_path)], stdout=log,
                              stderr=subprocess.STDOUT)
    done: list[str] = []
    interrupted: dict[str, Path] = {}
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            assert driver.poll() is None, "the driver finished before it could be killed:\n" + (tmp_path / "driver1.log").read_text()
            done = [k for k, t in tasks.items() if _json(t.dir / "summary.json").get("status") == "completed"]
            interrupted = {k: s for k, t in tasks.items() if k not in done and (s := _interrupted_stage(t.dir))}
            if done and interrupted:
                break
            time.sleep(0.1)
        else:
            pytest.fail("no moment with a finished and an interrupted task")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        log.close()
    t0 = time.monotonic()
    while _leftovers(driver.pid, cfg.directory) and time.monotonic() - t0 < 20:
        time.sleep(0.2)
    assert _leftovers(driver.pid, cfg.directory) == [], "interchange or workers outlived the killed driver"
    # the state the kill left (the workers died with the driver, so it is frozen now)
    done = [k for k, t in tasks.items() if _json(t.dir / "summary.json").get("status") == "completed"]
    cut = {k: (s, _last_step(s / "traj.h5md")) for k, t in tasks.items()
           if k not in done and (s := _interrupted_stage(t.dir))}
    assert done and cut, "the kill must leave finished and interrupted tasks"
    before = {k: ((tasks[k].dir / "summary.json").read_text(),
                  (tasks[k].dir / "2_production" / "log.csv").stat().st_mtime_ns) for k in done}

    # an uninterrupted reference run of one interrupted task, for the comparison below
    ref_id = next(iter(cut))
    ref_spec = {**tasks[ref_id].spec, "dir": str(tmp_path / "reference"), "threads_per_task": 1}
    assert run_campaign_task(ref_spec)["status"] == "completed"

    # ---- session 2: the same command, in this process
    result = cli_runner.invoke(app, ["run", str(yaml_path)])
    reasons = {k: (_json(t.dir / "summary.json").get("status"), _json(t.dir / "summary.json").get("reason"))
               for k, t in tasks.items()}
    assert result.exit_code == 0, f"{result.output}\n{reasons}"
    assert f"{len(done)} skipped, {6 - len(done)} run now" in result.output
    for k in done:  # finished tasks were not touched
        assert (tasks[k].dir / "summary.json").read_text() == before[k][0]
        assert (tasks[k].dir / "2_production" / "log.csv").stat().st_mtime_ns == before[k][1]
    for k, (stage, _step) in cut.items():  # interrupted MD continued from its checkpoint, no frame twice
        summary = read_json(stage / "summary.json")
        assert summary["status"] == "completed" and summary["restarts"] == 1
        config = tasks[k].spec["stages"][int(stage.name[0]) - 1]["config"]
        assert _log_steps(stage / "log.csv") == list(range(0, config["steps"] + 1, config["log_every"]))
        assert list(read_h5md_info(stage / "traj.h5md").steps) == list(range(0, config["steps"] + 1, config["traj_every"]))
        assert read_json(tasks[k].dir / "summary.json")["sessions"] == 2
    # ... and is the same trajectory an uninterrupted run gives (float64 tiny MACE, seeded Langevin)
    for stage in ("1_equilibrate", "2_production"):
        resumed = read_h5md_frames(tasks[ref_id].dir / stage / "traj.h5md")
        reference = read_h5md_frames(tmp_path / "reference" / stage / "traj.h5md")
        assert len(resumed) == len(reference)
        np.testing.assert_array_equal(np.array([a.positions for a in resumed]),
                                      np.array([a.positions for a in reference]))

    # li3n was prepared (relaxed) once; its three tasks started from the prepared structure
    prep = read_json(cfg.directory / "prepare" / "li3n" / "summary.json")
    assert prep["status"] == "completed" and [s["kind"] for s in prep["stages"]] == ["relax"]
    assert {tasks[f"li3n/T{t}K/r0"].spec["input"] for t in (300, 400, 500)} == {
        str(cfg.directory / "prepare" / "li3n" / "final.extxyz")}

    # ---- results: database, summary table, Arrhenius, plots
    db = ResultsDB(cfg.directory)
    rows = db.rows()
    assert sorted(r["task_id"] for r in rows) == sorted(tasks) and len(db) == 6
    for r in rows:
        summary = read_json(tasks[r["task_id"]].dir / "summary.json")
        assert r["status"] == "completed" and r["D_cm2_s"] == summary["D_cm2_s"] > 0
        assert r["model_sha256"] == summary["model_sha256"] and len(r["model_sha256"]) == 64
        final = read_structure(tasks[r["task_id"]].dir / "final.extxyz")
        assert r["formula"] == final.get_chemical_formula() and r["campaign"] == "tiny"
        assert r["temperature_k"] == tasks[r["task_id"]].temperature_k
    table = list(csv.DictReader((cfg.directory / "summary.csv").open()))
    assert [row["status"] for row in table] == ["completed"] * 6
    arrhenius = read_json(cfg.directory / "arrhenius.json")
    for system in ("li2o", "li3n"):
        mine = sorted((r["temperature_k"], r["D_cm2_s"], r["D_stderr_cm2_s"]) for r in rows if r["system"] == system)
        fit = fit_arrhenius(*zip(*mine))
        # tiny runs are bounds (not diffusive): the unfiltered fit over every completed point is the cross-check
        assert (arrhenius[system].get("unfiltered") or arrhenius[system])["Ea_eV"] == pytest.approx(fit.Ea_eV, rel=1e-9)
        assert (cfg.directory / "plots" / f"arrhenius_{system}.png").stat().st_size > 1000
    md = (cfg.directory / "summary.md").read_text()
    assert "## Arrhenius fits" in md and "li3n/T500K/r0" in md

    # ---- the database commands
    listed = cli_runner.invoke(app, ["db", "list", str(cfg.directory)])
    assert listed.exit_code == 0 and all(k in listed.output for k in tasks) and "6 row(s)" in listed.output
    shown = cli_runner.invoke(app, ["db", "show", str(cfg.directory), "li2o/T400K/r0"])
    assert shown.exit_code == 0 and "D_cm2_s" in shown.output and "analysis: diffusion" in shown.output
    out = tmp_path / "export.csv"
    exported = cli_runner.invoke(app, ["db", "export", str(cfg.directory), "--format", "csv", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    csv_rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {(c["task_id"], float(c["D_cm2_s"])) for c in csv_rows} == {(r["task_id"], r["D_cm2_s"]) for r in rows}

    # ---- a third run has nothing to do
    stamp = (cfg.directory / "tasks" / "li3n" / "T300K" / "r0" / "summary.json").read_text()
    again = cli_runner.invoke(app, ["run", str(yaml_path)])
    assert again.exit_code == 0 and "nothing to run" in again.output and "6 skipped, 0 run now" in again.output
    assert (cfg.directory / "tasks" / "li3n" / "T300K" / "r0" / "summary.json").read_text() == stamp
    status = cli_runner.invoke(app, ["run", str(yaml_path), "--status"])
    assert status.exit_code == 0 and status.output.strip().endswith("6 completed")
    assert all(k in status.output for k in tasks)
    shutil.rmtree(tmp_path / "reference")


def test_cli_run_reports_bad_input_with_exit_2(tmp_path, cli_runner):
    bad = tmp_path / "c.yaml"
    bad.write_text("name: x\nstructures: []\ntemperatures_k: [300]\nprotocol: [{md: {steps: 1}}]\n")
    result = cli_runner.invoke(app, ["run", str(bad)])
    assert result.exit_code == 2 and "structures" in result.output
    result = cli_runner.invoke(app, ["run", str(bad), "--executor", "pbs"])
    assert result.exit_code == 2 and "unknown executor 'pbs'" in result.output
    result = cli_runner.invoke(app, ["db", "list", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no results database" in result.output
    assert not os.path.exists(tmp_path / "x")


def test_status_lines_show_each_running_tasks_md(tmp_path, tiny_mace_path):
    """The driver's periodic status names the running stage, step/plan and temperature of its own tasks only."""
    import json

    from tfbsim.workflows.campaigns.driver import _Driver
    from tfbsim.workflows.md.rundir import LOG_COLUMNS

    cfg = load_campaign(write_tiny_campaign(tmp_path / "c", tiny_mace_path))
    plan = expand_campaign(cfg)
    task = plan.tasks[0]
    driver = _Driver(cfg, plan, db=None, on_event=None, threads=1, status_every_s=0.0)
    driver.pending[object()] = ("task", task)
    assert driver.progress() == []
    stage = task.dir / "2_production"
    stage.mkdir(parents=True)
    (stage / "summary.json").write_text(json.dumps({"status": "running", "steps_planned": 60, "steps_done": 20}))
    row = [30, 0.03, 411.7] + [0.0] * (len(LOG_COLUMNS) - 3)
    (stage / "log.csv").write_text(",".join(LOG_COLUMNS) + "\n" + ",".join(map(str, row)) + "\n")
    assert driver.progress() == [f"{task.task_id} 2_production: step 30/60 (50 %, 412 K)"]
    (task.dir / "summary.json").write_text(json.dumps({"status": "running", "session": "another-driver"}))
    assert driver.progress() == []  # a leftover of another session is not this driver's progress
