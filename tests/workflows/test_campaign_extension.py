"""Campaign production that runs until diffusive (chunks, cap, resume) and the Tg window check."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ase.build import bulk

from tfbsim.errors import ConfigError
from tfbsim.structures.io import read_json, read_structure, write_structure
from tfbsim.workflows.campaigns.config import load_campaign
from tfbsim.workflows.campaigns.tasks import expand_campaign
from tfbsim.workflows.campaigns.worker import run_campaign_task
from tfbsim.workflows.protocols.glass_checks import check_temperature_window, propose_temperature_window

MD = {"ensemble": "nvt-langevin", "timestep_fs": 2.0, "log_every": 5, "checkpoint_every": 20, "friction_ps_inv": 2.0,
      "traj_every": 4}


def _plan(tmp_path: Path, until: dict | None, tg_k_in_glass: float | None = None, **changes):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=3)
    if tg_k_in_glass is not None:
        atoms.info["melt_quench"] = {"glass_transition": {"tg_k": tg_k_in_glass, "tg_source": "volume"}}
    write_structure(tmp_path / "cu.extxyz", atoms)
    prod = {"name": "prod", "md": {**MD, "steps": 40}}
    if until is not None:
        prod["until_diffusive"] = until
    data = {"name": "ext", "potential": {"model": "emt"}, "structures": [{"name": "cu", "file": "cu.extxyz"}],
            "temperatures_k": [1200.0], "protocol": [prod], "analyses": {"diffusion": {"species": "Cu"},
                                                                         "arrhenius": None}}
    data.update(changes)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = expand_campaign(load_campaign(path))
    for info in plan.structures.values():
        Path(info["path"]).parent.mkdir(parents=True, exist_ok=True)
        write_structure(info["path"], read_structure(tmp_path / "cu.extxyz"))
    return plan


def test_production_extends_to_the_cap_and_says_so_then_resumes_without_rework(tmp_path):
    until = {"species": "Cu", "max_production_ps": 0.24, "min_msd_ang2": 1.0e6}  # never diffusive enough
    task = _plan(tmp_path, until).tasks[0]
    summary = run_campaign_task(task.spec)
    assert summary["status"] == "completed", summary.get("reason")
    ext = summary["extension"]["prod"]
    assert summary["diffusive"] is False and ext["stopped_by"] == "cap"
    assert [c["time_ps"] for c in ext["chunks"]] == pytest.approx([0.08, 0.16, 0.24])
    assert "cap of 0.24 ps stopped the run" in ext["note"] and "MSD" in ext["chunks"][-1]["reason"]
    run = read_json(task.dir / "1_prod" / "summary.json")
    assert run["steps_done"] == 120 and [e["steps"] for e in run["extensions"]] == [80, 120]
    assert read_json(task.dir / "1_prod" / "extension.json")["stopped_by"] == "cap"
    again = run_campaign_task(task.spec)  # resumed: nothing left to run, same verdict
    assert again["extension"]["prod"]["chunks"] == ext["chunks"]
    assert read_json(task.dir / "1_prod" / "summary.json")["steps_done"] == 120


def test_production_stops_at_the_first_diffusive_chunk(tmp_path):
    until = {"species": "Cu", "max_production_ps": 1.0, "min_msd_ang2": 0.0, "min_loglog_slope": 0.01}
    summary = run_campaign_task(_plan(tmp_path, until).tasks[0].spec)
    ext = summary["extension"]["prod"]
    assert summary["diffusive"] is True and ext["stopped_by"] == "converged"
    assert [c["diffusive"] for c in ext["chunks"]] == [False] * (len(ext["chunks"]) - 1) + [True]  # no more
    assert ext["time_ps"] < 1.0 and "note" not in ext


def test_until_diffusive_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="below the stage's own length"):
        _plan(tmp_path, {"species": "Cu", "max_production_ps": 0.01})
    with pytest.raises(ConfigError, match="until_diffusive belongs to protocol stages"):
        _plan(tmp_path, None, prepare=[{"md": {**MD, "steps": 4, "temperature_k": 300},
                                        "until_diffusive": {"max_production_ps": 1.0}}])


def test_task_above_tg_minus_margin_is_flagged(tmp_path):
    summary = run_campaign_task(_plan(tmp_path, None, tg_k_in_glass=1250.0).tasks[0].spec)
    check = summary["tg_check"]
    assert check["tg_k"] == 1250.0 and check["tg_source"] == "melt-quench cooling curve"
    assert check["below_tg_margin"] is False and check["too_hot_k"] == [1200.0]
    assert max(check["proposed_k"]) <= 1150.0


def test_window_check_and_proposal():
    ok = check_temperature_window([600, 700], 900.0, margin_k=100)
    assert ok["ok"] and ok["too_hot_k"] == []
    hot = check_temperature_window([700, 800, 900], 900.0, margin_k=100)
    assert hot["too_hot_k"] == [800.0, 900.0] and "Tg - margin = 800 K" in hot["message"]
    window = propose_temperature_window(900.0, margin_k=100, n=4)
    assert len(window) == 4 and max(window) == 800.0 and min(window) >= 400.0
    assert check_temperature_window([1500], None)["ok"]
