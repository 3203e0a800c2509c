"""Melt–quench protocol (presets, YAML, stages, run folder, restarts) and the `tfbsim build lipon` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.calculators.lj import LennardJones

from tfbsim.cli import app
from tfbsim.errors import ConfigError, SimulationUnstable
from tfbsim.structures.amorphous import build_lipon
from tfbsim.structures.io import read_json, read_structure
from tfbsim.workflows.potentials.factory import load_potential
from tfbsim.workflows.protocols.melt_quench import (
    MELT_QUENCH_PRESETS,
    MeltQuenchConfig,
    density_g_cm3,
    melt_quench,
    resolve_melt_quench_config,
    restart_melt_quench,
)

# a few MD steps per stage: the mechanics, not the physics
TINY = {
    "preset": "quick", "timestep_fs": 1.0, "melt_ps": 0.02, "quench_rate_k_ps": 1700 / 0.02, "anneal_ps": 0.02,
    "prerelax_steps": 5, "final_relax_steps": 4, "traj_every": 5, "log_every": 5, "checkpoint_every": 10,
}


class CrashingLJ(LennardJones):
    """The factory's test LJ that raises at its n-th evaluation (a stand-in for a killed job)."""

    def __init__(self, crash_at: int | None = None):
        super().__init__(sigma=2.0, epsilon=0.01, rc=6.0, smooth=True)
        self.parameters.update({k: v for k, v in load_potential("lj").parameters.items()
                                if k not in ("sigma", "epsilon", "rc", "smooth")})
        self.crash_at = crash_at
        self.n_calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        from ase.calculators.calculator import all_changes

        self.n_calls += 1
        if self.crash_at is not None and self.n_calls >= self.crash_at:
            raise RuntimeError("simulated crash")
        super().calculate(atoms, properties, all_changes if system_changes is None else system_changes)


class KickLJ(CrashingLJ):
    """LJ whose forces blow up from the n-th evaluation on (trips the MD force guard)."""

    def __init__(self, kick_at: int):
        super().__init__()
        self.kick_at = kick_at

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        super().calculate(atoms, properties, system_changes)
        if self.n_calls >= self.kick_at:
            forces = self.results["forces"].copy()
            forces[0] += 500.0
            self.results["forces"] = forces


@pytest.fixture(scope="module")
def box():
    return build_lipon("Li2.94PO3.50N0.31", 40, seed=2)


@pytest.fixture(scope="module")
def reference(box, tmp_path_factory):
    """One uninterrupted protocol run in a folder, shared by the tests that only read it."""
    rd = tmp_path_factory.mktemp("reference") / "mq"
    return melt_quench(box, CrashingLJ(), TINY, rd), rd


# ------------------------------------------------------------------------------------------------ config
def test_presets_rates_and_stage_configs():
    quick = MeltQuenchConfig(preset="quick")
    prod = MeltQuenchConfig()
    assert prod.preset == "production" and prod.quench_rate_k_ps == 100.0 and prod.timestep_fs == 1.0
    assert quick.quench_rate_k_ps == MELT_QUENCH_PRESETS["quick"]["quench_rate_k_ps"] == 1000.0
    assert quick.quench_ps == pytest.approx((2000 - 300) / 1000)
    assert quick.total_md_ps == pytest.approx(1.0 + 1.7 + 1.0)  # "a few ps"
    assert 30 <= prod.total_md_ps <= 100  # "tens of ps"
    melt = quick.stage_md_config("melt", "isotropic")
    assert melt.ensemble == "nvt-bussi" and melt.steps == 500 and melt.initial_temperature_k == 2000
    q = quick.stage_md_config("quench", "isotropic")
    assert q.temperature_schedule == [(0.0, 2000.0), (pytest.approx(1.7), 300.0)]
    assert q.steps == 850 and q.initial_temperature_k is None  # keeps the melt's velocities
    assert q.target_temperature_k(425) == pytest.approx(1150.0)  # halfway down the linear ramp
    a = quick.stage_md_config("anneal", "z")
    assert a.ensemble == "npt-berendsen" and a.barostat_axes == "z" and a.temperature_k == 300
    assert MeltQuenchConfig(preset="quick", melt_ps=3.0).melt_ps == 3.0  # keys override the preset


def test_yaml_overrides_and_errors(tmp_path):
    path = tmp_path / "mq.yaml"
    path.write_text("preset: quick\nmelt_k: 2500\nmd_options: {guard_max_force_ev_ang: 80}\n")
    cfg = resolve_melt_quench_config(None, yaml_path=path, overrides={"seed": 4})
    assert (cfg.melt_k, cfg.timestep_fs, cfg.seed) == (2500, 2.0, 4)
    assert cfg.stage_md_config("melt", "isotropic").guard_max_force_ev_ang == 80
    cli = resolve_melt_quench_config(None, yaml_path=path, overrides={"preset": "production"})
    assert cli.timestep_fs == 1.0 and cli.melt_k == 2500  # the flag's preset fills keys the file leaves out
    path.write_text("preset: quick\nmelt_temp: 2500\n")
    with pytest.raises(ConfigError, match=r"mq.yaml, line 2: unknown key 'melt_temp'.*melt_k"):
        resolve_melt_quench_config(None, yaml_path=path)
    with pytest.raises(ConfigError, match="md_options may not set steps"):
        resolve_melt_quench_config({"md_options": {"steps": 5}})
    with pytest.raises(ValueError, match="not valid MDConfig"):
        MeltQuenchConfig(md_options={"guard_bogus": 1})
    with pytest.raises(ValueError, match="must exceed final_k"):
        MeltQuenchConfig(melt_k=250)
    with pytest.raises(ConfigError, match="unknown melt-quench preset"):
        resolve_melt_quench_config("slow")


# ----------------------------------------------------------------------------------------------- stages
def test_melt_quench_stages_and_run_folder(box, reference):
    result, rd = reference
    assert [s["name"] for s in result.stages] == ["prerelax", "melt", "quench", "anneal", "relax"]
    assert all(s["status"] == "completed" for s in result.stages)
    for name in ("protocol.yaml", "initial.extxyz", "summary.json", "final.extxyz", "2_melt/traj.h5md",
                 "3_quench/checkpoint.npz", "4_anneal/log.csv", "5_relax/final.extxyz"):
        assert (rd / name).exists(), name
    summary = read_json(rd / "summary.json")
    assert summary["status"] == "completed" and summary["provenance"]["config"]["melt_ps"] == 0.02
    # the quench log follows the linear ramp from melt_k to final_k
    log = np.genfromtxt(rd / "3_quench" / "log.csv", delimiter=",", names=True)
    step_ps = 1e-3  # each row holds the target of the step that ended there (the first row: t = 0)
    expected = np.interp(np.maximum(log["time_ps"] - step_ps, 0.0), [0.0, 0.02], [2000.0, 300.0])
    np.testing.assert_allclose(log["target_T_k"], expected, rtol=1e-9)
    assert log["time_ps"][-1] == pytest.approx(0.02) and log["target_T_k"][0] == 2000.0
    # the anneal changed the volume (isotropic barostat), the result keeps the builder's metadata
    final = result.atoms
    assert result.density_final_g_cm3 == pytest.approx(density_g_cm3(final))
    assert result.density_final_g_cm3 != pytest.approx(2.4, abs=1e-4)
    assert final.info["counts"] == box.info["counts"] and "speciation_designed" not in final.info
    assert set(final.arrays["region"]) == {"lipon"}
    on_disk = read_structure(rd / "final.extxyz")
    np.testing.assert_allclose(on_disk.positions, final.positions, atol=1e-6)
    # a completed folder is returned as is (every stage reused)
    again = melt_quench(box, CrashingLJ(), TINY, rd)
    assert all(s.get("reused") for s in again.stages)
    np.testing.assert_allclose(again.atoms.positions, final.positions, atol=1e-12)


def test_interrupted_protocol_resumes_exactly(tmp_path, box, reference):
    reference = reference[0]
    rd = tmp_path / "crash"
    with pytest.raises(RuntimeError, match="simulated crash"):
        melt_quench(box, CrashingLJ(crash_at=40), TINY, rd)  # dies inside the quench
    assert read_json(rd / "summary.json")["status"] == "failed"
    resumed = restart_melt_quench(rd, CrashingLJ())
    assert any(s.get("reused") for s in resumed.stages)
    np.testing.assert_allclose(resumed.atoms.positions, reference.atoms.positions, atol=1e-9)
    np.testing.assert_allclose(resumed.atoms.cell.array, reference.atoms.cell.array, atol=1e-9)
    assert read_json(rd / "summary.json")["sessions"] == 2


def test_folder_with_other_settings_or_structure_is_refused(tmp_path, box, reference):
    rd = reference[1]
    with pytest.raises(ConfigError, match="other settings.*melt_k"):
        melt_quench(box, CrashingLJ(), {**TINY, "melt_k": 2200}, rd)
    other = build_lipon("Li2.94PO3.50N0.31", 40, seed=3)
    with pytest.raises(ConfigError, match="another structure"):
        melt_quench(other, CrashingLJ(), TINY, rd)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a melt-quench folder"):
        melt_quench(box, CrashingLJ(), TINY, tmp_path / "junk")


def test_lateral_cell_stays_fixed(tmp_path):
    film = build_lipon("Li3PO4", 48, lateral_ang=(8.0, 8.5), seed=1)
    result = melt_quench(film, CrashingLJ(), TINY)
    assert result.summary["cell_axes"] == "z"
    np.testing.assert_array_equal(result.atoms.cell[0], film.cell[0])
    np.testing.assert_array_equal(result.atoms.cell[1], film.cell[1])
    assert result.atoms.cell[2, 2] != pytest.approx(film.cell[2, 2], abs=1e-4)


def test_unstable_stage_is_reported(tmp_path, box):
    with pytest.raises(SimulationUnstable):
        melt_quench(box, KickLJ(kick_at=15), TINY, tmp_path / "mq")
    summary = read_json(tmp_path / "mq" / "summary.json")
    assert summary["status"] == "unstable" and summary["stages"][-1]["status"] == "unstable"


# ------------------------------------------------------------------------------------------------- CLI
def test_cli_build_lipon_writes_structure_and_json(tmp_path, cli_runner):
    out, js = tmp_path / "lipon.extxyz", tmp_path / "lipon.json"
    res = cli_runner.invoke(app, ["build", "lipon", "--composition", "Li2PO2N", "--atoms", "60", "-o", str(out),
                                  "--json", str(js), "--seed", "3"])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    for key in ("target_formula", "achieved_formula", "counts", "charge_per_p", "density_g_cm3", "cell_ang",
                "min_distance_ang", "speciation_initial", "speciation_final", "protocol"):
        assert key in data, key
    assert data["protocol"] is None
    assert data["speciation_initial"]["N"]["Nd"] == 1.0 and data["speciation_initial"]["P"]["Q2"] == 1.0
    atoms = read_structure(out)
    assert len(atoms) == data["n_atoms"] == sum(data["counts"].values())
    assert set(atoms.arrays["region"]) == {"lipon"}


def test_cli_quench_quick_end_to_end_with_tiny_mace(tmp_path, cli_runner, tiny_mace_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("timestep_fs: 1.0\nmelt_ps: 0.004\nquench_rate_k_ps: 425000\nanneal_ps: 0.004\n"
                   "prerelax_steps: 3\nfinal_relax_steps: 3\ntraj_every: 2\nlog_every: 2\ncheckpoint_every: 4\n")
    out, js = tmp_path / "q.extxyz", tmp_path / "q.json"
    res = cli_runner.invoke(app, ["--quiet", "build", "lipon", "--composition", "Li2.94PO3.50N0.31", "--atoms", "30",
                                  "-o", str(out), "--json", str(js), "--quench", "quick", "--model",
                                  str(tiny_mace_path), "--dtype", "float64", "--device", "cpu", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert data["protocol"]["preset"] == "quick"
    assert [s["status"] for s in data["protocol"]["stages"]] == ["completed"] * 5
    assert data["protocol"]["stages"][1]["steps"] == 4
    assert data["speciation_final"]["P"]["mean_cn"] is not None
    run_dir = tmp_path / "q_quench"
    assert read_json(run_dir / "summary.json")["status"] == "completed"
    assert read_structure(out).info["melt_quench"]["preset"] == "quick"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--composition", "Li3PO4", "--atoms", "50", "--quench", "quick"], "--quench needs --model"),
        (["--composition", "Li3PXx4", "--atoms", "50"], "unknown element"),
        (["--composition", "Li3PO-4", "--atoms", "50"], "not positive"),
        (["--composition", "Li3O4", "--atoms", "50"], "no P"),
        (["--composition", "Li2.64PO2.81N0.33", "--atoms", "50"], "+1.03 e per P"),
        (["--composition", "Li3PO4", "--atoms", "50", "--density-g-cm3", "9"], "outside 0.5"),
        (["--composition", "Li3PO4", "--atoms", "5"], "at least 8 atoms"),
        (["--composition", "Li3PO4", "--atoms", "50", "--quench", "quick", "--model", "emt"], "Li"),
        (["--composition", "Li3PO4", "--atoms", "50", "--mode", "crystal"], "mode must be"),
    ],
)
def test_cli_bad_input_one_error_nothing_written(tmp_path, cli_runner, args, fragment):
    out = tmp_path / "bad.extxyz"
    res = cli_runner.invoke(app, ["build", "lipon", *args, "-o", str(out), "--json", str(tmp_path / "bad.json")])
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and fragment in res.output
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ slow
@pytest.mark.slow
def test_chgnet_quick_quench_keeps_p_tetrahedral(tmp_path):
    """Quick quench of ~200 atoms of Li2.94PO3.50N0.31 with CHGNet (tens of minutes on 2 CPU cores)."""
    from tfbsim.workflows.protocols.lipon import make_amorphous_lipon

    calc = load_potential("chgnet", device="cpu", dtype="float32")
    built = make_amorphous_lipon("Li2.94PO3.50N0.31", 200, seed=0, quench="quick", calc=calc,
                                 run_dir=tmp_path / "mq", progress=False)
    rep = built.report
    n, p = rep["speciation_final"]["N"], rep["speciation_final"]["P"]
    print(f"\nCHGNet quick quench: density {rep['density_initial_g_cm3']:.3f} -> {rep['density_g_cm3']:.3f} g/cm3; "
          f"P four-coordinated {p['four_coordinated']:.3f}; Nd {n['Nd']:.3f} Na {n['Na']:.3f} Nt {n['Nt']:.3f} "
          f"N0 {n['N0']:.3f}; Q {[round(p[f'Q{k}'], 3) for k in range(5)]}; wall {rep['protocol']['wall_s']:.0f} s")
    (tmp_path.parent / "chgnet_quick_quench.json").write_text(json.dumps(rep, default=str, indent=1))
    assert p["four_coordinated"] >= 0.90
    assert abs(rep["density_g_cm3"] / 2.4 - 1) <= 0.15
