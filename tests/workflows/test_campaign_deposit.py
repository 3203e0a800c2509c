"""Campaign ``deposit:`` and ``anneal:`` stages (issue 21), in-process with the LJ test potential on a small Li2O
slab: run, reuse, refusal of a changed setting, and load-time validation with file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tfbsim.analysis.h5md import read_h5md_info
from tfbsim.errors import ConfigError
from tfbsim.structures.io import read_json, read_structure, write_json, write_structure
from tfbsim.workflows.campaigns.config import load_campaign
from tfbsim.workflows.campaigns.driver import _conflicts
from tfbsim.workflows.campaigns.resultsdb import ResultsDB, row_from_summary
from tfbsim.workflows.campaigns.tasks import expand_campaign
from tfbsim.workflows.campaigns.worker import run_campaign_task

LOOSE = {"guard_min_distance_ang": 0.1, "guard_max_force_ev_ang": 1.0e4}
DEPOSIT = {"species": "Li", "count": 4, "group_size": 2, "energy_ev": 0.2, "flux_per_ps": 40.0, "clearance_ang": 3.0,
           "final_ps": 0.02, "fix_bottom_ang": 1.0, "checkpoint_every": 1, "seed": 2}
ANNEAL = {"segments": [[0.01, 300.0], [0.01, 400.0]], "ramp_ps": 0.005, "traj_every": 5, "checkpoint_every": 10}
MD = {"ensemble": "nvt-langevin", "steps": 20, "timestep_fs": 1.0, "traj_every": 5, "checkpoint_every": 10,
      "log_every": 5, "guard_t_factor": None, **LOOSE}


@pytest.fixture(scope="module")
def slab_file(tmp_path_factory) -> Path:
    from tfbsim.workflows.protocols.deposition_setup import deposition_substrate

    path = tmp_path_factory.mktemp("slab") / "li2o_111.extxyz"
    write_structure(path, deposition_substrate("li2o:111", thickness_ang=4.0, lateral_ang=6.0, vacuum_ang=20.0))
    return path


def _campaign(folder: Path, slab: Path, *, deposit: dict | None = None, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "name": "dep",
        "potential": {"model": "lj"},
        "structures": [{"name": "li2o", "file": str(slab)}],
        "temperatures_k": [300.0],
        "protocol": [
            {"name": "relax", "relax": {"fmax_ev_ang": 0.01, "max_steps": 3}},
            {"name": "deposit", "deposit": deposit or DEPOSIT},
            {"name": "anneal", "anneal": ANNEAL},
            {"name": "prod", "md": MD},
        ],
        "analyses": {"diffusion": {"species": "Li"}, "arrhenius": None},
    }
    data.update(changes)
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _plan(path: Path):
    cfg = load_campaign(path)
    plan = expand_campaign(cfg)
    for info in plan.structures.values():  # what the driver does before submitting
        Path(info["path"]).parent.mkdir(parents=True, exist_ok=True)
        write_structure(info["path"], read_structure(cfg.structures[0].file))
    return plan


def _mtimes(task_dir: Path) -> dict[str, int]:
    names = ["2_deposit/log.csv", "2_deposit/arrivals.csv", "2_deposit/profile.json", "3_anneal/md/log.csv",
             "4_prod/log.csv"]
    return {n: (task_dir / n).stat().st_mtime_ns for n in names}


def test_deposit_anneal_md_campaign_runs_then_reuses_every_stage(tmp_path, slab_file):
    task = _plan(_campaign(tmp_path / "c", slab_file)).tasks[0]
    dep_cfg = task.spec["stages"][1]["config"]
    assert dep_cfg["temperature_k"] == 300.0 and dep_cfg["potential"]["model"] == "lj"  # task T, campaign model
    summary = run_campaign_task(task.spec)
    assert summary["status"] == "completed", summary.get("reason")
    assert [s["kind"] for s in summary["stages"]] == ["relax", "deposit", "anneal", "md"]
    _, dep, ann, md = summary["stages"]
    n_sub = len(read_structure(slab_file))
    deposition = read_json(task.dir / dep["deposition"])
    assert deposition["status"] == "completed" and dep["n_sent"] == 4
    assert dep["n_deposited"] == 4 - dep["n_reflected"] == dep["n_atoms_final"] - n_sub
    prof = dep["profile"]
    assert (task.dir / prof["path"]).is_file() and prof["class_counts"]  # Li on Li2O: Li_ion / Li2O / Li_metal
    assert set(prof["products_by_layer"]) <= {"Li2O"} and len(prof["layer_z_lo_ang"]) == len(
        next(iter(prof["products_by_layer"].values())))
    assert ann["anneal"] == "3_anneal/anneal.json" and (task.dir / ann["anneal"]).is_file()
    assert ann["steps_done"] == 20 and ann["profile"]["class_counts"]
    # the later stages and the analyses take the grown structure
    n_final = dep["n_atoms_final"]
    assert len(read_h5md_info(task.dir / "3_anneal" / "md" / "traj.h5md").numbers) == n_final
    assert len(read_h5md_info(task.dir / "4_prod" / "traj.h5md").numbers) == n_final
    assert len(read_structure(task.dir / "final.extxyz")) == n_final
    assert summary["analysis_errors"] == [] and summary["D_cm2_s"] is not None and md["steps_done"] == 20
    db = ResultsDB(tmp_path / "results.db", create=True)  # the driver's row: the grown film and the stage records
    kvp, data = row_from_summary(summary, task_id=task.task_id, campaign="dep", system="li2o", temperature_k=300.0,
                                 replica=0, run_dir=str(task.dir))
    db.upsert(read_structure(task.dir / "final.extxyz"), kvp, data)
    _, row_data, row_atoms = db.get(task.task_id)
    assert len(row_atoms) == n_final and row_data["stages"][1]["profile"] == prof

    before = _mtimes(task.dir)
    arrivals = (task.dir / "2_deposit" / "arrivals.csv").read_text()
    again = run_campaign_task(task.spec)
    assert again["status"] == "completed", again.get("reason")
    assert all(s.get("reused") for s in again["stages"]), [(s["name"], s.get("reused")) for s in again["stages"]]
    assert _mtimes(task.dir) == before  # nothing simulated again
    assert (task.dir / "2_deposit" / "arrivals.csv").read_text() == arrivals
    assert again["stages"][1]["profile"] == dep["profile"] and again["D_cm2_s"] == summary["D_cm2_s"]


def test_changed_deposit_setting_is_refused_naming_the_key(tmp_path, slab_file):
    folder = tmp_path / "c"
    task = _plan(_campaign(folder, slab_file, protocol=[{"name": "deposit", "deposit": DEPOSIT},
                                                        {"name": "prod", "md": MD}])).tasks[0]
    assert run_campaign_task(task.spec)["status"] == "completed"
    write_json(task.dir / "task.json", task.spec)  # as the driver records it
    arrivals = (task.dir / "1_deposit" / "arrivals.csv").read_text()
    changed = _plan(_campaign(folder, slab_file, protocol=[
        {"name": "deposit", "deposit": {**DEPOSIT, "energy_ev": 0.3}}, {"name": "prod", "md": MD}]))
    assert _conflicts(changed) == [(task.task_id, task.dir)]  # the driver refuses it (or sets it aside: --force)
    # the worker, handed the changed spec directly: the task fails with the protocol's message, nothing raised
    summary = run_campaign_task(changed.tasks[0].spec)
    assert summary["status"] == "failed"
    assert "ConfigError" in summary["reason"] and "energy_ev=0.2, now 0.3" in summary["reason"]
    assert (task.dir / "1_deposit" / "arrivals.csv").read_text() == arrivals  # the deposition is untouched
    assert read_json(task.dir / "1_deposit" / "deposition.json")["status"] == "completed"


def test_unknown_deposit_or_anneal_key_names_file_line_and_allowed_keys(tmp_path, slab_file):
    path = _campaign(tmp_path, slab_file)
    text = path.read_text()
    for anchor, bad, where, allowed in [("  deposit:\n", "    energy_eV: 0.5\n", "protocol.1.deposit.energy_eV",
                                         "energy_ev"),
                                        ("  anneal:\n", "    segmnts: 1\n", "protocol.2.anneal.segmnts",
                                         "segments")]:
        assert anchor in text
        broken = text.replace(anchor, anchor + bad, 1)
        path.write_text(broken)
        line = broken.splitlines().index(bad.rstrip("\n")) + 1
        with pytest.raises(ConfigError) as info:
            load_campaign(path)
        message = str(info.value)
        assert f"{path}, line {line}" in message and where in message and allowed in message


@pytest.mark.parametrize(("change", "expect"), [
    ({"prepare": [{"deposit": DEPOSIT}]}, "deposit in 'prepare' needs its own temperature_k"),
    ({"protocol": [{"deposit": {**DEPOSIT, "potential": {"model": "emt"}}}]}, "may not set a potential"),
    ({"protocol": [{"deposit": {**DEPOSIT, "thickness_ang": 2.0}}]}, "exactly one target"),
    ({"protocol": [{"deposit": DEPOSIT}]}, "analyses.diffusion reads an md stage"),
    ({"protocol": [{"deposit": DEPOSIT, "anneal": ANNEAL}]}, "exactly one of relax, md, melt_quench, deposit, anneal"),
    ({"protocol": [{"anneal": {**ANNEAL, "segments": []}}, {"md": MD}]}, "at least one"),
])
def test_bad_deposit_stages_fail_at_load_time(tmp_path, slab_file, change, expect):
    with pytest.raises(ConfigError, match=expect):
        load_campaign(_campaign(tmp_path, slab_file, **change))


def test_deposit_only_protocol_and_seeds_per_replica(tmp_path, slab_file):
    cfg = load_campaign(_campaign(tmp_path, slab_file, replicas=2, temperatures_k=[300.0, 400.0],
                                  protocol=[{"deposit": {**DEPOSIT, "temperature_k": 250.0}}, {"anneal": ANNEAL}],
                                  analyses={"diffusion": None, "arrhenius": None}))
    tasks = {t.task_id: t for t in expand_campaign(cfg).tasks}
    stages = tasks["li2o/T400K/r1"].spec["stages"]
    assert [s["kind"] for s in stages] == ["deposit", "anneal"]
    assert stages[0]["config"]["temperature_k"] == 250.0  # given: kept
    assert stages[0]["config"]["seed"] == 2 + 1000 and stages[1]["config"]["seed"] == 1000 + 1
    assert json.dumps(stages)  # JSON-ready for Parsl and task.json


def test_a_reused_relax_stage_hands_on_the_same_structure_as_its_first_run(tmp_path, slab_file):
    """A deposition after a relaxation checks its substrate (sha256 at 1e-6 Å): the relaxation must hand on the
    structure it stored (extxyz rounding), or a resumed task could see "a different substrate"."""
    import numpy as np

    from tfbsim.workflows.campaigns.worker import run_stages
    from tfbsim.workflows.potentials.factory import load_potential

    stages = [{"name": "relax", "kind": "relax", "config": {"fmax_ev_ang": 0.01, "max_steps": 3}}]
    first, records = run_stages(read_structure(slab_file), load_potential("lj"), stages, tmp_path)
    again, records2 = run_stages(read_structure(slab_file), load_potential("lj"), stages, tmp_path)
    assert not records[0].get("reused") and records[0]["steps"] > 0 and records2[0]["reused"]
    assert np.array_equal(first.positions, again.positions)
