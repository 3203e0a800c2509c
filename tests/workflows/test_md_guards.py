"""Each blow-up guard trips on a constructed bad case: status unstable, trajectory kept, SimulationUnstable."""

from __future__ import annotations

import numpy as np
import pytest
from _md_util import TestEMT, cu_cubic, cu_small

from tfbsim.analysis.h5md import read_h5md_frames
from tfbsim.errors import ConfigError, SimulationUnstable, StructureError
from tfbsim.structures.io import read_json, read_structure
from tfbsim.workflows.md.run import restart_md, run_md
from tfbsim.workflows.md.config import MDConfig
from tfbsim.workflows.md.guards import min_pair_distance


def _trip(tmp_path, calc, atoms=None, **overrides):
    config = MDConfig(**{**dict(ensemble="nvt-langevin", steps=200, timestep_fs=4, initial_temperature_k=300,
                                guard_every=10, traj_every=5, log_every=5, checkpoint_every=50), **overrides})
    with pytest.raises(SimulationUnstable) as info:
        run_md(atoms if atoms is not None else cu_small(), calc, config, tmp_path / "run")
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["status"] == "unstable"
    assert summary["diagnostic"] == {k: v for k, v in info.value.diagnostic.items() if k != "run_dir"}
    frames = read_h5md_frames(tmp_path / "run" / "traj.h5md")
    assert frames and all(np.isfinite(f.positions).all() for f in frames)
    good = read_structure(tmp_path / "run" / "last_good.extxyz")
    assert good.info["md"]["step"] < summary["diagnostic"]["step"]
    assert np.isfinite(good.positions).all()
    return info.value, summary


def test_non_finite_forces_trip(tmp_path):
    """NaN forces: the positions go NaN and the potential's neighbour search raises; reported as unstable."""
    exc, summary = _trip(tmp_path, TestEMT(nan_at=40))
    assert exc.diagnostic["guard"] == "non_finite" and "positions" in exc.diagnostic["what"]
    assert exc.exit_code == 3


def test_non_finite_forces_caught_by_the_guard(tmp_path):
    """NaN forces at a guard step are caught before the next integration step."""
    exc, summary = _trip(tmp_path, TestEMT(nan_at=39), guard_every=1)
    assert exc.diagnostic["guard"] == "non_finite" and "forces" in exc.diagnostic["what"]


def test_huge_force_trips(tmp_path):
    exc, summary = _trip(tmp_path, TestEMT(kick_at=40), ensemble="nvt-nhc")
    assert exc.diagnostic["guard"] == "max_force"
    assert exc.diagnostic["atom"] == 0 and exc.diagnostic["value_ev_ang"] > 50
    assert "eV/Å" in str(exc)


def test_close_pair_trips(tmp_path):
    """Hot Cu vibrates below a 2.35 Å guard (nearest neighbours at 2.54 Å)."""
    exc, summary = _trip(tmp_path, TestEMT(), atoms=cu_cubic(2), guard_min_distance_ang=2.35,
                         initial_temperature_k=1500, temperature_k=1500)
    assert exc.diagnostic["guard"] == "min_distance" and exc.diagnostic["value_ang"] < 2.35
    assert exc.diagnostic["step"] > 0


def test_runaway_temperature_trips(tmp_path):
    exc, summary = _trip(tmp_path, TestEMT(), initial_temperature_k=3000, temperature_k=300, guard_t_factor=2.0,
                         guard_t_after_ps=0.02, friction_ps_inv=0.1)
    assert exc.diagnostic["guard"] == "temperature" and exc.diagnostic["value_k"] > 600


def test_temperature_guard_waits_for_equilibration():
    """The same hot start passes when the guard starts after the thermostat has cooled the system."""
    result = run_md(cu_small(), TestEMT(), MDConfig(ensemble="nvt-bussi", steps=150, timestep_fs=4,
                                                    initial_temperature_k=3000, temperature_k=300, tdamp_fs=20,
                                                    guard_t_factor=2.0, guard_t_after_ps=0.4))
    assert result.status == "completed"


def test_unstable_run_is_not_restarted_unchanged(tmp_path):
    _trip(tmp_path, TestEMT(kick_at=40))
    with pytest.raises(ConfigError, match="unstable"):
        restart_md(tmp_path / "run", TestEMT())


def test_bad_starting_structure_is_refused_before_writing(tmp_path):
    atoms = cu_small()
    atoms.positions[1] = atoms.positions[0] + [0.3, 0, 0]
    with pytest.raises(StructureError, match="apart"):
        run_md(atoms, TestEMT(), MDConfig(steps=10), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_min_pair_distance_matches_brute_force_with_unwrapped_positions():
    rng = np.random.default_rng(0)
    cell = np.array([[6.0, 0, 0], [1.0, 7.0, 0], [0.5, 0.3, 5.0]])
    positions = rng.uniform(-10, 20, (30, 3))  # far outside the cell: unwrapped coordinates
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]) @ cell
    frac = np.linalg.solve(cell.T, positions.T).T
    wrapped = (frac % 1.0) @ cell
    best = np.inf
    for a in range(30):
        for b in range(30):
            d = np.linalg.norm(wrapped[b] + shifts - wrapped[a], axis=1)
            if a == b:
                d = d[np.any(shifts != 0, axis=1)]
            best = min(best, d.min())
    found = min_pair_distance(positions, cell, np.array([True] * 3), best + 0.01)
    assert found is not None and found[0] == pytest.approx(best, abs=1e-9)
    assert min_pair_distance(positions, cell, np.array([True] * 3), best - 0.01) is None


@pytest.mark.parametrize("pbc", [[True, True, True], [True, True, False], [False, False, False]])
def test_min_pair_distance_agrees_with_ase_neighbor_list(pbc):
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    rng = np.random.default_rng(1)
    cell = np.array([[9.0, 0, 0], [-3.0, 8.0, 0], [1.0, 1.5, 7.0]])
    positions = rng.uniform(-5, 15, (120, 3))
    for cutoff in (0.3, 0.8, 1.5):
        d_ase = neighbor_list("d", Atoms(positions=positions, cell=cell, pbc=pbc), cutoff)
        found = min_pair_distance(positions, cell, np.array(pbc), cutoff)
        if len(d_ase) == 0:
            assert found is None
        else:
            assert found is not None and found[0] == pytest.approx(d_ase.min(), abs=1e-9)
