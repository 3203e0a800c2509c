"""The main job's plumbing on tiny settings with the LJ test potential (the physics run is `make demo`)."""

from __future__ import annotations

import json

import pytest

from tfbsim.cli import app
from tfbsim.errors import ConfigError
from tfbsim.workflows.demo import DemoConfig, demo_config

TINY = """model: lj
n_atoms: 40
quench: {preset: quick, melt_ps: 0.02, quench_rate_k_ps: 50000, anneal_ps: 0.02, prerelax_steps: 20, final_relax_steps: 20}
temperatures_k: [600, 900, 1200]
equilibrate_ps: 0.02
production_ps: 0.1
traj_every: 5
interface_lateral_min_ang: 6.0
interface_thickness_ang: [5.0, 9.0]
interface_anneal_ps: 0.04
"""


def test_presets_and_overrides(tmp_path):
    quick = demo_config("quick")
    full = demo_config("full", model="my.model")
    assert quick.model == "bundled" and len(quick.temperatures_k) >= 3
    assert full.model == "my.model" and full.production_ps > 10 * quick.production_ps
    path = tmp_path / "d.yaml"
    path.write_text("n_atoms: 99\n")
    assert demo_config("quick", file=path, seed=4).n_atoms == 99
    path.write_text("n_atom: 99\n")
    with pytest.raises(ConfigError, match="n_atom"):
        demo_config("quick", file=path)
    with pytest.raises(ConfigError, match="preset"):
        demo_config("huge")
    assert isinstance(quick, DemoConfig)


def test_demo_end_to_end_and_resume(tmp_path, cli_runner):
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(TINY)
    out = tmp_path / "out"
    result = cli_runner.invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1"])
    assert result.exit_code == 0, result.output
    for name in ["report.md", "report.html", "provenance.json", "results/numbers.json", "results/coordination.json",
                 "results/interphase.json", "figures/arrhenius.png", "figures/speciation.png",
                 "figures/interphase.png", "figures/msd_900K.png", "bulk/results.db", "bulk_campaign.yaml",
                 "structures/lipon_quenched.extxyz", "structures/li_lipon_annealed.extxyz",
                 "interface/anneal/traj.h5md"]:
        assert (out / name).exists(), name
    numbers = json.loads((out / "results" / "numbers.json").read_text())
    report = (out / "report.md").read_text()
    assert report.splitlines()[2].startswith("**Model:** `lj`")
    # the report's numbers are the runs' numbers
    diffusion = json.loads(next((out / "bulk" / "tasks").glob("lipon/T900K/r0/analysis/diffusion.json")).read_text())
    d900 = next(p["D_cm2_s"] for p in numbers["D_by_T"] if p["temperature_k"] == 900)
    assert d900 == pytest.approx(diffusion["D_cm2_s"])
    assert f"{d900:.3g}" in report
    # the interface anneal is in the results database next to the bulk runs
    from tfbsim.workflows.resultsdb import ResultsDB

    systems = {row.key_value_pairs["system"] for row in ResultsDB(out / "bulk" / "results.db").db.select()}
    assert systems == {"lipon", "li_lipon_interface"}
    # re-running continues: nothing is recomputed, same numbers
    again = cli_runner.invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "already" in again.output
    assert json.loads((out / "results" / "numbers.json").read_text())["D_by_T"] == numbers["D_by_T"]
