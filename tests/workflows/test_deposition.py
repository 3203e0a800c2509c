"""Vapour deposition (issue 21): arrival bookkeeping, resume after a kill, refusals, bad inputs, the Li2O control."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import fcc100
from ase.calculators.emt import EMT as _AseEMT
from ase.geometry import find_mic

from tfbsim.errors import ConfigError, PotentialError, RunInterrupted, StructureError
from tfbsim.workflows.potentials.factory import load_potential
from tfbsim.workflows.protocols.deposition import deposit, draw_arrival, read_arrivals
from tfbsim.workflows.protocols.deposition_config import DepositionConfig, thermal_energy_cap

CU_MASS = 63.546


def cu_slab(vacuum: float = 12.0) -> Atoms:
    slab = fcc100("Cu", size=(3, 3, 3), a=3.61, vacuum=vacuum)
    slab.pbc = True
    return slab


def settings(**kw) -> dict:
    base = dict(species="Cu", count=6, group_size=2, energy_ev=1.0, flux_per_ps=20.0, clearance_ang=3.0,
                final_ps=0.05, temperature_k=300.0, seed=5, fix_bottom_ang=1.0, checkpoint_every=1)
    base.update(kw)
    return base


class EMT(_AseEMT):
    """ASE's EMT with the factory's parameters; ``crash_at``: raise at that call, ``term_at``: send SIGTERM."""

    def __init__(self, crash_at=None, term_at=None):
        super().__init__()
        self.parameters.update(load_potential("emt").parameters)
        self.crash_at, self.term_at, self.n_calls = crash_at, term_at, 0

    def calculate(self, *args, **kwargs):
        self.n_calls += 1
        if self.crash_at is not None and self.n_calls >= self.crash_at:
            raise RuntimeError("simulated kill")
        if self.term_at is not None and self.n_calls == self.term_at:
            os.kill(os.getpid(), signal.SIGTERM)
        super().calculate(*args, **kwargs)


def test_arrival_bookkeeping_energy_direction_no_overlap():
    cfg = settings(angle_deg=30.0, azimuth_deg=45.0)
    result = deposit(cu_slab(), EMT(), cfg, None)
    arr = result.arrivals
    assert [a["index"] for a in arr] == list(range(6))
    assert [a["event"] for a in arr] == [0, 0, 1, 1, 2, 2]
    assert [a["step"] for a in arr] == [0, 0, 100, 100, 200, 200]  # 2 atoms / 20 per ps = 100 fs apart
    for a in arr:
        v = np.array([a["vx_ang_fs"], a["vy_ang_fs"], a["vz_ang_fs"]]) / units.fs
        assert 0.5 * CU_MASS * float(v @ v) == pytest.approx(1.0, rel=1e-12)
        assert a["kinetic_energy_ev"] == 1.0
        assert v[2] < 0
        assert math.degrees(math.acos(-v[2] / np.linalg.norm(v))) == pytest.approx(30.0, abs=1e-9)
        assert math.degrees(math.atan2(v[1], v[0])) == pytest.approx(45.0, abs=1e-9)
    snaps = result.snapshots
    assert len(snaps) == 4 and [s.info["n_sent"] for s in snaps] == [0, 2, 4, 6]
    for k in range(3):  # each inserted atom: clearance above the film top, min_insert_distance from every atom
        before = snaps[k]
        top = before.positions[:, 2].max() if k == 0 else None
        for a in (arr[2 * k], arr[2 * k + 1]):
            pos = np.array([a["x_ang"], a["y_ang"], a["z_ang"]])
            _, d = find_mic(before.positions - pos, before.cell, True)
            assert d.min() >= 2.0
            if top is not None:
                assert a["z_ang"] == pytest.approx(top + 3.0)
    assert len(result.atoms) == len(cu_slab()) + 6 - result.summary["n_reflected"]
    assert result.summary["n_sent"] == 6 and result.summary["status"] == "completed"


def test_thermal_energies_follow_the_flux_distribution():
    cfg = DepositionConfig(**settings(energy_distribution="thermal", energy_ev=0.2))
    rng = np.random.default_rng(0)
    draws = np.array([draw_arrival(rng, cfg)[0] for _ in range(20000)])
    assert draws.mean() == pytest.approx(0.2, rel=0.02)  # Gamma(2, E/2): mean E, variance E²/2
    assert draws.var() == pytest.approx(0.2**2 / 2, rel=0.06)
    assert draws.max() <= thermal_energy_cap(0.2)
    fixed = DepositionConfig(**settings())
    assert {draw_arrival(rng, fixed)[0] for _ in range(10)} == {1.0}


def _compare(a, b):
    assert a.arrivals == b.arrivals
    assert np.array_equal(a.atoms.numbers, b.atoms.numbers)
    assert np.array_equal(a.atoms.positions, b.atoms.positions)
    assert np.array_equal(a.atoms.get_momenta(), b.atoms.get_momenta())


def test_resume_after_kill_is_bit_identical(tmp_path):
    ref = deposit(cu_slab(), EMT(), settings(), tmp_path / "ref")
    with pytest.raises(RuntimeError, match="simulated kill"):
        deposit(cu_slab(), EMT(crash_at=180), settings(), tmp_path / "run")  # dies in the 2nd interval
    assert (tmp_path / "run" / "checkpoint.npz").is_file()
    resumed = deposit(cu_slab(), EMT(), settings(), tmp_path / "run")
    _compare(ref, resumed)
    assert read_arrivals(tmp_path / "run" / "arrivals.csv") == read_arrivals(tmp_path / "ref" / "arrivals.csv")
    log_ref = (tmp_path / "ref" / "log.csv").read_text()
    assert (tmp_path / "run" / "log.csv").read_text() == log_ref
    from ase.io import read

    assert len(read(tmp_path / "run" / "snapshots.extxyz", ":")) == len(read(tmp_path / "ref" / "snapshots.extxyz", ":"))
    again = deposit(cu_slab(), EMT(crash_at=1), settings(), tmp_path / "run")  # completed: nothing recomputed
    assert again.arrivals == ref.arrivals


def test_resume_after_sigterm_mid_interval(tmp_path):
    ref = deposit(cu_slab(), EMT(), settings(), tmp_path / "ref")
    with pytest.raises(RunInterrupted):
        deposit(cu_slab(), EMT(term_at=150), settings(), tmp_path / "run")
    resumed = deposit(cu_slab(), EMT(), settings(), tmp_path / "run")
    assert resumed.arrivals == ref.arrivals  # EMT's neighbour list is rebuilt on resume: positions to rounding
    np.testing.assert_allclose(resumed.atoms.positions, ref.atoms.positions, atol=1e-8)


def test_refuses_to_resume_with_other_settings(tmp_path):
    with pytest.raises(RuntimeError):
        deposit(cu_slab(), EMT(crash_at=180), settings(), tmp_path / "run")
    with pytest.raises(ConfigError, match="energy_ev=1.0, now 2.0.*seed=5, now 6"):
        deposit(cu_slab(), EMT(), settings(energy_ev=2.0, seed=6), tmp_path / "run")
    other = cu_slab()
    other.positions[0, 0] += 0.01
    with pytest.raises(ConfigError, match="different substrate"):
        deposit(other, EMT(), settings(), tmp_path / "run")


@pytest.mark.parametrize("case, error, match", [
    ("species", PotentialError, "does not cover element"),
    ("no_vacuum", StructureError, "no free surface"),
    ("too_fast", ConfigError, "max_step_ang"),
    ("too_close", ConfigError, "clearance_ang"),
    ("too_much", ConfigError, "beyond the cell top"),
])
def test_bad_inputs_raise_before_writing(tmp_path, case, error, match):
    slab, cfg = cu_slab(), settings()
    if case == "species":
        cfg["species"] = "Li"
    elif case == "no_vacuum":
        slab = cu_slab(vacuum=0.5)
    elif case == "too_fast":
        cfg["energy_ev"] = 100.0
    elif case == "too_close":
        cfg["clearance_ang"] = 1.0
    else:
        cfg["count"] = 2000
    with pytest.raises(error, match=match):
        deposit(slab, EMT(), cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, match", [
    (["--species", "Li", "--count", "4"], "does not cover"),
    (["--count", "4", "--energy-ev", "100"], "max_step_ang"),
    (["--count", "100000"], "beyond the cell top"),
    (["--count", "4", "--clearance-ang", "0.5"], "clearance_ang"),
    (["--count", "4", "--bogus"], None),
])
def test_cli_bad_inputs_exit_2_one_line_nothing_written(cli_runner, tmp_path, args, match):
    from tfbsim.cli.app import app
    from tfbsim.structures.io import write_structure

    sub = tmp_path / "cu.extxyz"
    write_structure(sub, cu_slab())
    out = tmp_path / "run"
    result = cli_runner.invoke(app, ["deposit", str(sub), "--out", str(out), "--species", "Cu", "--model", "emt",
                                     *args])
    assert result.exit_code == 2
    if match is not None:
        assert result.output.strip().startswith("error:") and match in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    flat = tmp_path / "flat.extxyz"
    write_structure(flat, cu_slab(vacuum=0.5))
    result = cli_runner.invoke(app, ["deposit", str(flat), "--out", str(out), "--species", "Cu", "--count", "2",
                                     "--model", "emt"])
    assert result.exit_code == 2 and "no free surface" in result.output and not out.exists()


@pytest.mark.slow  # ~3 min on a loaded 2-core machine (bundled MACE, 1 thread)
def test_li_on_li2o_control_bundled_model(tmp_path):
    """Inert substrate: no P/N class and no reduced class appear; the deposited Li is metal or ionic, O stays Li2O."""
    pytest.importorskip("mace")
    import torch

    from tfbsim.analysis.deposition_profile import deposition_profile
    from tfbsim.workflows.protocols.deposition_setup import deposition_substrate

    torch.set_num_threads(1)
    slab = deposition_substrate("li2o:111", thickness_ang=4.0, lateral_ang=6.0, vacuum_ang=20.0)
    calc = load_potential("bundled", device="cpu")
    result = deposit(slab, calc, dict(species="Li", count=6, group_size=3, energy_ev=0.2, flux_per_ps=30.0,
                                      clearance_ang=3.0, final_ps=0.05, fix_bottom_ang=1.5, seed=2), tmp_path / "run")
    profile = deposition_profile(tmp_path / "run" / "snapshots.extxyz").to_dict()
    assert profile["pn_classes_present"] == [] and profile["reduced_classes_present"] == []
    last = profile["snapshots"][-1]
    assert set(last["deposit_classes"]) <= {"Li_metal", "Li_ion"}
    assert set(last["class_counts"]) <= {"Li_metal", "Li_ion", "Li2O"}
    assert result.summary["n_sent"] == 6
    assert set(profile["cutoff_sensitivity"]["fractions"]) == {"0", "-0.1", "+0.1"}


def _li_on_li2o() -> Atoms:
    from tfbsim.workflows.protocols.deposition_setup import deposition_substrate

    slab = deposition_substrate("li2o:111", thickness_ang=4.0, lateral_ang=6.0, vacuum_ang=20.0)
    top = slab.positions[:, 2].max()
    film = Atoms("Li4", positions=[[0.5, 0.5, top + 2.0], [2.0, 2.0, top + 2.0], [0.5, 2.0, top + 3.7],
                                   [2.0, 0.5, top + 3.7]], cell=slab.cell, pbc=True)
    film.set_array("region", np.array(["deposit"] * 4))
    atoms = slab + film
    atoms.set_array("dep_arrival", np.r_[np.full(len(slab), -1), np.arange(4)])
    z = atoms.positions[:, 2]
    atoms.set_array("fixed", z <= z.min() + 1.0)
    return atoms


def test_reactive_anneal_schedule_melting_warning_and_series(tmp_path):
    from tfbsim.workflows.protocols.reactive_anneal import reactive_anneal, schedule_points

    assert schedule_points([(1.0, 300.0), (2.0, 600.0)], 0.1) == [(0.0, 300.0), (1.0, 300.0), (1.1, 600.0),
                                                                  (3.0, 600.0)]
    cfg = dict(segments=[[0.02, 20.0], [0.02, 500.0]], ramp_ps=0.005, traj_every=10, checkpoint_every=20)
    result = reactive_anneal(_li_on_li2o(), load_potential("lj"), cfg, tmp_path / "anneal")
    assert result.warnings and "Li melts at 453.7 K" in result.warnings[0]
    p = result.profile
    assert p["x_name"] == "time_ps" and p["x"] == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    assert p["pn_classes_present"] == [] and (tmp_path / "anneal" / "anneal.json").is_file()
    assert result.md.summary["steps_done"] == 40
    again = reactive_anneal(_li_on_li2o(), load_potential("lj"), cfg, tmp_path / "anneal")  # completed: reused
    assert again.profile == p
    with pytest.raises(ConfigError, match="temperature_schedule"):
        reactive_anneal(_li_on_li2o(), load_potential("lj"), {**cfg, "segments": [[0.02, 20.0], [0.02, 600.0]]},
                        tmp_path / "anneal")


def test_cli_anneal_and_bad_segments(cli_runner, tmp_path):
    from tfbsim.cli.app import app
    from tfbsim.structures.io import write_structure

    path = tmp_path / "film.extxyz"
    write_structure(path, _li_on_li2o())
    bad = cli_runner.invoke(app, ["anneal", str(path), "--out", str(tmp_path / "a"), "--segments", "2;300",
                                  "--model", "lj"])
    assert bad.exit_code == 2 and bad.output.startswith("error:") and not (tmp_path / "a").exists()
    ok = cli_runner.invoke(app, ["anneal", str(path), "--out", str(tmp_path / "a"), "--segments", "0.01:20,0.01:300",
                                 "--traj-every", "5", "--model", "lj"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "a" / "anneal.json").is_file()
