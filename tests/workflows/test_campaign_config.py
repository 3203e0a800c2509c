"""Campaign files, task expansion, sites and bad input: every error says what is wrong (no MD runs here)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tfbsim.errors import ConfigError
from tfbsim.structures.io import read_json
from tfbsim.workflows.campaigns.driver import _conflicts, _set_aside, run_campaign
from tfbsim.workflows.campaigns.config import load_campaign
from tfbsim.workflows.campaigns.tasks import expand_campaign
from tfbsim.workflows.campaigns.executors import check_slurm, load_site, parsl_config

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _base(tmp_path: Path, **changes) -> dict:
    model = tmp_path / "fake.model"
    model.write_bytes(b"not really a model, only hashed here")
    data = {
        "name": "c1",
        "potential": {"model": "fake.model", "dtype": "float64"},
        "structures": [{"name": "li2o", "build": {"kind": "crystal", "phase": "li2o"}}],
        "temperatures_k": [600, 800],
        "replicas": 2,
        "protocol": [{"name": "eq", "md": {"steps": 10}}, {"name": "prod", "md": {"steps": 20, "seed": 5}}],
    }
    data.update(changes)
    return data


def test_example_campaign_and_site_load_and_expand():
    cfg = load_campaign(ROOT / "examples" / "campaign.yaml")
    plan = expand_campaign(cfg)
    assert len(plan.tasks) == len(cfg.structures) * len(cfg.temperatures_k) * cfg.replicas == 16
    stages = {u.key: [s["name"] for s in u.spec["stages"]] for u in plan.preps}
    assert stages == {"lipon": ["prerelax", "quench"], "li3po4": ["relax"]}  # per-structure prepare wins
    site = load_site(ROOT / "examples" / "site_slurm.yaml")
    assert site.partition == "standard" and site.workers_per_node == 8
    provider = parsl_config("slurm", ROOT / "runs" / "never-created", site=site).executors[0].provider
    assert provider.partition == "standard" and provider.account == "myproject" and provider.walltime == "04:00:00"
    assert "source /work/me/tfbsim/.venv/bin/activate" in provider.worker_init
    assert "OMP_NUM_THREADS=8" in provider.worker_init


def test_unknown_nested_key_names_file_line_and_key(tmp_path):
    data = _base(tmp_path)
    path = _write(tmp_path / "c.yaml", data)
    text = path.read_text().replace("steps: 20", "steps: 20\n    temprature_k: 5")
    path.write_text(text)
    line = text.splitlines().index("    temprature_k: 5") + 1
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    message = str(info.value)
    assert f"{path}, line {line}" in message and "protocol.1.md.temprature_k" in message
    assert "temperature_k" in message  # the allowed keys are listed


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"protocol": [{"md": {"steps": 5, "temperature_k": 300}}]}, "runs at the task temperatures"),
        ({"protocol": [{"relax": {}}]}, "at least one md stage"),
        ({"protocol": [{"md": {"steps": 5}}, {"md": {"steps": 5}}]}, "distinct names"),
        ({"protocol": [{"melt_quench": {"preset": "quick"}}, {"md": {}}]}, "belongs in 'prepare'"),
        ({"protocol": [{"md": {"steps": 5}, "relax": {}}]}, "exactly one of relax, md, melt_quench"),
        ({"protocol": [{"md": {"steps": 5, "potential": {"model": "emt"}}}]}, "may not set a potential"),
        ({"prepare": [{"md": {"steps": 5}}]}, "needs its own temperature_k"),
        ({"temperatures_k": [600, 600]}, "distinct"),
        ({"structures": [{"name": "a", "file": "x.xyz", "build": {"kind": "crystal", "phase": "li2o"}}]},
         "exactly one of 'file' or 'build'"),
        ({"structures": [{"name": "a/b", "build": {"kind": "crystal", "phase": "li2o"}}]}, "letters, digits"),
        ({"structures": [{"name": "1e5", "build": {"kind": "crystal", "phase": "li2o"}}]}, "start with a letter"),
        ({"analyses": {"diffusion": {"stage": "nope"}}}, "not an md stage"),
        ({"analyses": {"diffusion": None}}, "arrhenius analysis needs the diffusion"),
    ],
)
def test_bad_campaigns_fail_with_a_clear_message(tmp_path, change, expect):
    path = _write(tmp_path / "c.yaml", _base(tmp_path, **change))
    with pytest.raises(ConfigError, match=expect):
        load_campaign(path)


def test_missing_structure_file_is_named(tmp_path):
    path = _write(tmp_path / "c.yaml", _base(tmp_path, structures=[{"name": "a", "file": "missing.extxyz"}]))
    with pytest.raises(ConfigError, match=r"structure 'a': file missing.extxyz not found"):
        load_campaign(path)


def test_expansion_seeds_temperatures_and_identities(tmp_path):
    cfg = load_campaign(_write(tmp_path / "c.yaml", _base(tmp_path, seed=100)))
    plan = expand_campaign(cfg)
    assert [t.task_id for t in plan.tasks] == ["li2o/T600K/r0", "li2o/T600K/r1", "li2o/T800K/r0", "li2o/T800K/r1"]
    t = {x.task_id: x for x in plan.tasks}
    eq, prod = t["li2o/T800K/r1"].spec["stages"]
    assert eq["config"]["temperature_k"] == prod["config"]["temperature_k"] == 800.0
    assert eq["config"]["initial_temperature_k"] == 800.0 and prod["config"]["initial_temperature_k"] is None
    assert eq["config"]["seed"] == 100 + 1000 * 1 + 0 and prod["config"]["seed"] == 100 + 5 + 1000 * 1 + 1
    assert eq["config"]["potential"]["model"] == str(tmp_path / "fake.model")
    seeds = {(x.temperature_k, x.replica): x.spec["stages"][0]["config"]["seed"] for x in plan.tasks}
    assert seeds[(600.0, 0)] == seeds[(800.0, 0)] != seeds[(600.0, 1)]
    assert t["li2o/T800K/r1"].dir == cfg.directory / "tasks" / "li2o" / "T800K" / "r1"
    assert len({x.spec_hash for x in plan.tasks}) == 4 and len({x.analysis_hash for x in plan.tasks}) == 1

    # the model's identity is its content, not its path or device
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(tmp_path / "fake.model", other / "copy.model")
    moved = load_campaign(_write(tmp_path / "c2.yaml", _base(tmp_path, seed=100, potential={
        "model": str(other / "copy.model"), "dtype": "float64", "device": "cuda"})))
    assert [x.spec_hash for x in expand_campaign(moved).tasks] == [x.spec_hash for x in plan.tasks]
    (other / "copy.model").write_bytes(b"retrained")
    assert expand_campaign(moved).tasks[0].spec_hash != plan.tasks[0].spec_hash
    # analysis settings change only the analysis hash
    changed = load_campaign(_write(tmp_path / "c3.yaml", _base(tmp_path, seed=100, analyses={
        "diffusion": {"fit_start_ps": 0.01}})))
    new = expand_campaign(changed).tasks[0]
    assert new.spec_hash == plan.tasks[0].spec_hash and new.analysis_hash != plan.tasks[0].analysis_hash


def test_site_without_partition_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match=r"no 'partition': name the Slurm partition"):
        load_site(_write(tmp_path / "s.yaml", {"account": "x"}))
    with pytest.raises(ConfigError, match="walltime must look like HH:MM:SS"):
        load_site(_write(tmp_path / "s.yaml", {"partition": "p", "walltime": "4h"}))
    with pytest.raises(ConfigError, match=r"line 2: unknown key 'partion'"):
        load_site(_write(tmp_path / "s.yaml", {"partition": "p", "partion": "q"}))


def test_missing_slurm_commands_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no sbatch, squeue, scancel, sinfo
    site = load_site(_write(tmp_path / "s.yaml", {"partition": "p"}))
    with pytest.raises(ConfigError, match=r"Slurm commands missing on this machine: sbatch, squeue, scancel, sinfo"):
        check_slurm(site)


def test_executor_and_site_errors_come_before_any_output(tmp_path):
    path = _write(tmp_path / "c.yaml", _base(tmp_path))
    directory = tmp_path / "c1"
    with pytest.raises(ConfigError, match=r"unknown executor 'pbs'; choose one of: local, slurm"):
        run_campaign(path, executor="pbs")
    with pytest.raises(ConfigError, match="needs --site"):
        run_campaign(path, executor="slurm")
    with pytest.raises(ConfigError, match="--site is for --executor slurm"):
        run_campaign(path, site=tmp_path / "s.yaml")
    assert not directory.exists()


def test_directory_of_another_campaign_is_refused(tmp_path):
    path = _write(tmp_path / "c.yaml", _base(tmp_path, directory="shared"))
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "campaign.json").write_text('{"name": "someone-else"}')
    with pytest.raises(ConfigError, match=r"created by campaign 'someone-else', not 'c1'.*--force"):
        run_campaign(path)
    (tmp_path / "shared" / "campaign.json").unlink()
    (tmp_path / "shared" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a campaign directory"):
        run_campaign(path)
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["notes.txt"]  # nothing written


def test_changed_task_settings_are_refused_then_set_aside(tmp_path):
    path = _write(tmp_path / "c.yaml", _base(tmp_path))
    cfg = load_campaign(path)
    plan = expand_campaign(cfg)
    task = plan.tasks[1]
    task.dir.mkdir(parents=True)
    (task.dir / "task.json").write_text('{"spec_hash": "an-older-protocol"}')
    (cfg.directory / "campaign.json").write_text('{"name": "c1"}')
    with pytest.raises(ConfigError, match=r"1 task folder\(s\) hold runs with other settings \(li2o/T600K/r1\)"):
        run_campaign(path)
    conflicts = _conflicts(plan)
    assert conflicts == [(task.task_id, task.dir)]
    moved = _set_aside(cfg.directory, task.dir)
    assert not task.dir.exists() and (moved / "task.json").exists()
    assert moved.relative_to(cfg.directory).parts[0] == "attic" and moved.parts[-3:] == ("li2o", "T600K", "r1")


def test_parsl_guard_kills_its_child_when_the_watched_process_dies(tmp_path):
    marker = "61.23456789"
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    guard = subprocess.Popen([sys.executable, "-m", "tfbsim.workflows.campaigns.parsl_guard", "--watch-pid", str(parent.pid),
                              "--", "timeit", "-n", "1", "-r", "1", f"import time; time.sleep({marker})"])
    try:
        def children() -> list[str]:
            lines = subprocess.run(["ps", "-ewwo", "args"], capture_output=True, text=True).stdout.splitlines()
            return [line for line in lines if marker in line and "parsl_guard" not in line]

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not children():
            time.sleep(0.1)
        assert children(), "the guarded child did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert guard.wait(timeout=10) == 137
        time.sleep(0.2)
        assert children() == []
    finally:
        if guard.poll() is None:
            guard.terminate()  # forwarded to the child's process group
            guard.wait(timeout=10)
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_second_driver_on_the_same_campaign_is_refused(tmp_path):
    path = _write(tmp_path / "c.yaml", _base(tmp_path))
    directory = tmp_path / "c1"
    directory.mkdir()
    (directory / "campaign.json").write_text('{"name": "c1"}')
    hold = ("import fcntl, sys, time; h = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX); "
            "h.write('pid 4242 on login1 since today'); h.flush(); print('locked', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(directory / ".driver.lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=r"being run by another tfbsim driver \(pid 4242 on login1"):
            run_campaign(path)
        assert read_json(directory / "campaign.json") == {"name": "c1"}  # untouched
    finally:
        holder.kill()
        holder.wait()
