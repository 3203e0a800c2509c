"""The main job's plumbing on tiny settings with the LJ test potential (the physics run is `make demo`)."""

from __future__ import annotations

import json

import pytest

from tfbsim.cli import app
from tfbsim.errors import ConfigError
from tfbsim.workflows.demo.config import DemoConfig, demo_config

TINY_BASE = """model: lj
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
#: The tiny deposition (the default interface mode): 4 Li in groups of 2 on the 40-atom glass slab.
TINY_DEPOSIT = "deposit: {count: 4, group_size: 2, final_ps: 0.02, timestep_fs: 1.0}\n"
TINY = TINY_BASE + TINY_DEPOSIT


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
    # the interface deposits by default; the pressed anneal stays available; serial stages use every core
    from tfbsim.workflows.demo.config import deposit_config, serial_threads

    assert quick.interface_mode == "deposit" and demo_config("quick", interface_mode="pressed").interface_mode == "pressed"
    assert deposit_config(quick).count >= 16 and serial_threads(quick) >= 1
    assert serial_threads(demo_config("quick", serial_threads=3)) == 3
    path.write_text("deposit: {count: 50}\n")  # a file's deposition keys add to the preset's
    full = demo_config("full", file=path)
    assert deposit_config(full).count == 50 and deposit_config(full).flux_per_ps == 5.0


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
    """Deposit mode (the default): every output exists; the report's numbers are the runs' numbers; with no
    trusted temperature the report says so per temperature, still draws the Arrhenius figure, and labels the
    unfiltered trend as such; the structure section has G(r)/S(Q) and says the quench was not checked for a
    steady network; re-running continues without recomputing."""
    cfg, out = seed0_demo
    for name in ["report.md", "report.html", "provenance.json", "results/numbers.json", "results/coordination.json",
                 "results/structure.json", "results/deposition.json", "figures/arrhenius.png",
                 "figures/speciation.png", "figures/G_r.png", "figures/S_q.png", "figures/deposition.png",
                 "figures/msd_900K.png", "bulk/results.db", "bulk_campaign.yaml", "glass/final.extxyz",
                 "structures/lipon_quenched.extxyz", "structures/li_on_lipon_deposited.extxyz",
                 "deposit/snapshots.extxyz", "stages/bulk.json", "stages/deposit.json"]:
        assert (out / name).exists(), name
    assert not (out / "interface").exists()  # the pressed anneal is an option, not run by default
    numbers = json.loads((out / "results" / "numbers.json").read_text())
    report = (out / "report.md").read_text()
    assert report.splitlines()[2].startswith("**Model:** `lj`")
    # the report's numbers are the runs' numbers
    diffusion = json.loads(next((out / "bulk" / "tasks").glob("lipon/T900K/r0/analysis/diffusion.json")).read_text())
    d900 = next(p["D_cm2_s"] for p in numbers["D_by_T"] if p["temperature_k"] == 900)
    assert d900 == pytest.approx(diffusion["D_cm2_s"])
    assert f"{d900:.3g}" in report
    # honest no-fit path: 0.1-ps LJ runs are never diffusive -> no Ea, every temperature's verdict and reason
    arrhenius = json.loads((out / "bulk" / "arrhenius.json").read_text())["lipon"]
    assert [e["status"] for e in arrhenius["temperatures"]] == ["bound_not_diffusive"] * 3
    assert numbers["Ea_eV"] is None and numbers["sigma_300K_S_cm"] is None
    assert [p["verdict"] for p in numbers["D_by_T"]] == ["bound_not_diffusive"] * 3
    assert "**No Arrhenius fit:**" in report and "0 of 3 temperatures passed the checks" in report
    for entry in arrhenius["temperatures"]:
        row = next(x for x in report.splitlines() if x.startswith(f"| {entry['temperature_k']:g} |"))
        assert "not diffusive" in row and entry["reason"].split(";")[0] in row
    assert "Unfiltered trend" in report and "a trend, not a result" in report
    assert "**Arrhenius fit**" not in report
    # the transport caveat and the validation campaign (absent in the test checkout's default location is fine:
    # the quote itself is tested below)
    assert "### Beside the validation campaign" in report
    # structure: G(r)/S(Q) of the glass with provenance, the literature table, the quench caveat
    structure = json.loads((out / "results" / "structure.json").read_text())
    assert structure["provenance"]["model"]["spec"] == "lj"
    assert structure["quench"]["network_check"] is False and structure["quench"]["speciation_steady_before_quench"] is None
    assert structure["scattering"]["n_frames"] >= 1 and structure["comparison"]
    g_peak = structure["peaks"]["G_neutron_first_peak_ang"]
    assert f"{g_peak:.3f}" in report and "![G(r)](figures/G_r.png)" in report
    assert "was **not** checked for a steady state" in report
    # deposition: layers of the last snapshot with the literature order beside and the forcing settings stated
    deposition = json.loads((out / "results" / "deposition.json").read_text())
    assert deposition["snapshots"][-1]["deposited"] >= 1 and deposition["provenance"]["model"]["spec"] == "lj"
    assert numbers["interface_mode"] == "deposit" and numbers["layers"]
    assert "## 3. Li deposited onto the glass" in report and "| 2 | Li2O, Li3N, Li3P |" in report
    assert "arrival energy 0.2 eV" in report and "flux 20 atoms/ps" in report and "substrate 300 K" in report
    top = numbers["layers"][0]
    assert f"| {top['z_lo_ang']:+.1f} to {top['z_hi_ang']:+.1f} | {top['n_atoms']} |" in report
    # the interface run is in the results database next to the bulk runs
    from tfbsim.workflows.campaigns.resultsdb import ResultsDB

    rows = list(ResultsDB(out / "bulk" / "results.db").db.select())
    assert {row.key_value_pairs["system"] for row in rows} == {"lipon", "li_lipon_interface"}
    assert any(row.key_value_pairs["task_id"] == "li_lipon_interface/deposit" for row in rows)
    # re-running continues: nothing is recomputed, same numbers
    again = cli_runner.invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "melt-quench already completed" in again.output and "deposition already completed" in again.output
    assert json.loads((out / "results" / "numbers.json").read_text())["D_by_T"] == numbers["D_by_T"]


def test_validation_quote_absent_and_present(seed0_demo, tmp_path, monkeypatch, cli_runner):
    """The report quotes the validation campaign's committed result when it exists, and says that it is not
    there otherwise."""
    import shutil

    from tfbsim.workflows.demo import report_sections

    cfg, out0 = seed0_demo
    lines, record = report_sections.validation_section(tmp_path / "nothing")
    assert record["available"] is False
    assert "validation campaign not yet run/complete — see examples/validation/" in " ".join(lines).lower()
    results = tmp_path / "validation" / "results"
    results.mkdir(parents=True)
    (results / "arrhenius.json").write_text(json.dumps({"lipon": {
        "Ea_eV": 0.5123, "Ea_stderr_eV": 0.0311, "sigma_300K_S_cm": 1.7e-6,
        "temperatures": [{"temperature_k": t, "status": "fitted"} for t in (700.0, 800.0, 900.0, 1000.0)]}}))
    (results / "report.md").write_text("# validation\n")
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    monkeypatch.setattr(report_sections, "VALIDATION_RESULTS", results)
    again = cli_runner.invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1"])
    assert again.exit_code == 0, again.output
    report = (out / "report.md").read_text()
    assert "Ea = 0.512 ± 0.031 eV" in report and "1.7e-06 S/cm" in report and "700, 800, 900, 1000 K" in report
    assert "not yet run" not in report
    numbers = json.loads((out / "results" / "numbers.json").read_text())
    assert numbers["validation"]["available"] is True and numbers["validation"]["fits"]["lipon"]["Ea_eV"] == 0.5123


def test_pressed_mode_another_seed_and_an_unstable_anneal_is_reported(seed0_demo, tmp_path, cli_runner):
    """``interface_mode: pressed`` keeps the Li(100)/LiPON anneal. The report's numbers come from this run (seed 1
    differs from seed 0); an interface anneal that trips the MD guards (here: LJ at 300,000 K) is analysed up to
    the failure and flagged, and the demo still finishes; a changed anneal setting is then refused."""
    cfg0, out0 = seed0_demo
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(TINY + "interface_mode: pressed\ninterface_anneal_k: 300000\n")
    out = tmp_path / "out"
    args = ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1", "--seed", "1"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "stopped unstable" in result.output
    numbers0 = json.loads((out0 / "results" / "numbers.json").read_text())
    numbers1 = json.loads((out / "results" / "numbers.json").read_text())
    d0 = [p["D_cm2_s"] for p in numbers0["D_by_T"]]
    d1 = [p["D_cm2_s"] for p in numbers1["D_by_T"]]
    assert len(d0) == len(d1) == 3 and all(a != pytest.approx(b, rel=1e-6) for a, b in zip(d0, d1))
    report = (out / "report.md").read_text()
    assert "The anneal stopped unstable" in report and "## 3. Li(100)/LiPON interface (pressed)" in report
    assert numbers1["interface_mode"] == "pressed" and not (out / "deposit").exists()
    assert json.loads((out / "interface" / "anneal" / "summary.json").read_text())["status"] == "unstable"
    assert (out / "structures" / "li_lipon_annealed.extxyz").exists() and (out / "figures" / "interphase.png").exists()
    assert (out / "results" / "interphase.json").exists() and (out / "stages" / "interface.json").exists()
    # re-running does not retry the failed anneal
    again = cli_runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "anneal already unstable" in again.output
    # a changed anneal setting is refused before any work
    cfg.write_text(TINY + "interface_mode: pressed\ninterface_anneal_k: 420\n")
    refused = cli_runner.invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert "interface_anneal_k 300000.0 -> now 420.0" in refused.output and "--fresh interface" in refused.output


# ---------------------------------------------------------------------------------- issue 22: reliability
@pytest.mark.parametrize("line, names", [
    ("interface_anneal_k: -350\n", "interface_anneal_k"),
    ("composition: Li9PO4\n", "charge balanced"),
    ("temperatures_k: [-300, 900]\n", "temperatures_k"),
    ("quench: {preset: quick, melt_kk: 2000}\n", "unknown key 'melt_kk'"),
    ("interface_anneal_ps: 0\n", "interface_anneal_ps"),
    ("interface_mode: glued\n", "interface_mode"),
    ("deposit: {count: 0}\n", "count"),
    ("deposit: {cout: 4}\n", "unknown key 'cout'"),
    ("deposit: {seed: 4}\n", "seed"),
])
def test_bad_settings_fail_before_anything_runs_or_is_written(tmp_path, cli_runner, line, names):
    """Every stage's settings are validated up front: exit 2, one error line naming the user's file, no files."""
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(TINY_BASE + line)
    out = tmp_path / "out"
    result = cli_runner.invoke(app, ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1"])
    assert result.exit_code == 2, result.output
    errors = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and names in errors[0] and str(cfg) in errors[0], result.output
    assert "bulk_campaign.yaml" not in errors[0]
    assert not out.exists()


def test_changed_settings_are_refused_or_redone_on_request(seed0_demo, tmp_path, cli_runner):
    """A folder made with other settings is never relabelled: a changed deposition setting is refused, naming the
    key, before any work; ``--fresh deposit`` redoes that stage only; a stage without a settings record is
    refused too."""
    import shutil

    cfg0, out0 = seed0_demo
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(TINY_BASE + "deposit: {count: 6, group_size: 2, final_ps: 0.02, timestep_fs: 1.0}\n")
    args = ["demo", "--out", str(out), "--config", str(cfg), "--workers", "1"]
    refused = cli_runner.invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert "the deposit stage" in refused.output and "'count': 4" in refused.output and "'count': 6" in refused.output
    assert "--fresh deposit" in refused.output
    assert "[1/4]" not in refused.output  # nothing ran
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before  # nothing written
    redone = cli_runner.invoke(app, [*args, "--fresh", "deposit"])
    assert redone.exit_code == 0, redone.output
    summary = json.loads((out / "deposit" / "deposition.json").read_text())
    assert summary["n_sent"] == 6
    assert json.loads((out / "stages" / "deposit.json").read_text())["deposit"]["count"] == 6
    # the bulk stage was continued (reused), not redone
    assert "melt-quench already completed" in redone.output
    assert (out / "glass" / "final.extxyz").stat().st_mtime_ns == before[out / "glass" / "final.extxyz"]
    (out / "stages" / "bulk.json").unlink()
    legacy = cli_runner.invoke(app, args)
    assert legacy.exit_code == 2 and "without a settings record" in legacy.output, legacy.output


def test_every_json_output_carries_provenance(seed0_demo):
    """The demo folder (which holds a whole campaign in bulk/) has no JSON file without a provenance block;
    the analysis results carry the model and the configuration."""
    _, out = seed0_demo
    files = sorted(out.rglob("*.json"))
    assert len(files) > 20
    missing = [str(p.relative_to(out)) for p in files
               if not isinstance(json.loads(p.read_text()).get("provenance"), dict)]
    assert missing == []
    for name in ["results/coordination.json", "results/structure.json", "results/deposition.json"]:
        block = json.loads((out / name).read_text())["provenance"]
        assert block["model"]["spec"] == "lj" and block["config"]["n_atoms"] == 40 and block["tfbsim_version"]
    diffusion = sorted(out.glob("bulk/tasks/*/*/*/analysis/diffusion.json"))
    assert len(diffusion) == 3
    for path in [out / "bulk" / "arrhenius.json", *diffusion]:
        block = json.loads(path.read_text())["provenance"]
        assert block["tfbsim_version"] and "numpy" in block["versions"] and block["ended_utc"]
