"""The main job's plumbing on tiny settings with the LJ test potential (the physics run is `make demo`)."""

from __future__ import annotations

import json

import pytest

from tfbsim.cli import app
from tfbsim.errors import ConfigError
from tfbsim.workflows.demo.run import DemoConfig, demo_config

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
    assert quick.potential.model == "bundled" and len(quick.temperatures_k) >= 3
    assert full.potential.model == "my.model" and full.production_ps > 10 * quick.production_ps
    path = tmp_path / "d.yaml"
    path.write_text("n_atoms: 99\n")
    assert demo_config("quick", file=path, seed=4).n_atoms == 99
    path.write_text("n_atom: 99\n")
    with pytest.raises(ConfigError, match="n_atom"):
        demo_config("quick", file=path)
    with pytest.raises(ConfigError, match="preset"):
        demo_config("huge")
    assert isinstance(quick, DemoConfig)


@pytest.fixture(scope="module")
def seed0_demo(tmp_path_factory):
    """The tiny demo, seed 0: (config file, output folder)."""
    from typer.testing import CliRunner

    tmp = tmp_path_factory.mktemp("demo")
    cfg = tmp / "demo.yaml"
    cfg.write_text(TINY)
    out = tmp / "out"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1"])
    assert result.exit_code == 0, result.output
    return cfg, out


def test_demo_end_to_end_and_resume(seed0_demo, cli_runner):
    cfg, out = seed0_demo
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
    from tfbsim.workflows.campaigns.resultsdb import ResultsDB

    systems = {row.key_value_pairs["system"] for row in ResultsDB(out / "bulk" / "results.db").db.select()}
    assert systems == {"lipon", "li_lipon_interface"}
    # re-running continues: nothing is recomputed, same numbers
    again = cli_runner.invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "already" in again.output
    assert json.loads((out / "results" / "numbers.json").read_text())["D_by_T"] == numbers["D_by_T"]


def test_another_seed_gives_other_numbers_and_an_unstable_anneal_is_reported(seed0_demo, tmp_path, cli_runner):
    """The report's numbers come from this run (seed 1 differs from seed 0); an interface anneal that trips the
    MD guards (here: LJ at 300,000 K) is analysed up to the failure and flagged, and the demo still finishes."""
    cfg0, out0 = seed0_demo
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(TINY + "interface_anneal_k: 300000\n")
    out = tmp_path / "out"
    result = cli_runner.invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "stopped unstable" in result.output
    numbers0 = json.loads((out0 / "results" / "numbers.json").read_text())
    numbers1 = json.loads((out / "results" / "numbers.json").read_text())
    d0 = [p["D_cm2_s"] for p in numbers0["D_by_T"]]
    d1 = [p["D_cm2_s"] for p in numbers1["D_by_T"]]
    assert len(d0) == len(d1) == 3 and all(a != pytest.approx(b, rel=1e-6) for a, b in zip(d0, d1))
    report = (out / "report.md").read_text()
    assert "The anneal stopped unstable" in report
    assert json.loads((out / "interface" / "anneal" / "summary.json").read_text())["status"] == "unstable"
    assert (out / "structures" / "li_lipon_annealed.extxyz").exists() and (out / "figures" / "interphase.png").exists()
    # re-running does not retry the failed anneal
    again = cli_runner.invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1", "--seed", "1"])
    assert again.exit_code == 0, again.output
    assert "anneal already unstable" in again.output
