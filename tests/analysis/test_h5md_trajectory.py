"""The H5MD layout: writer -> tfbsim reader and MDAnalysis; the Trajectory loader over every source."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk

from tfbsim.analysis.h5md import open_universe, read_h5md_frames, read_h5md_info
from tfbsim.analysis.trajectory import Trajectory, parse_frames
from tfbsim.errors import TrajectoryError
from tfbsim.structures.io import write_structure
from tfbsim.workflows.md.h5md import H5MDWriter


@pytest.fixture
def h5md_file(tmp_path, rng):
    atoms = bulk("Cu", cubic=True) * 2
    path = tmp_path / "traj.h5md"
    regions = np.array(["a"] * 16 + ["bb"] * 16)
    positions = []
    with H5MDWriter(path, atoms.numbers, regions=regions, forces=True, observables=["temperature_k"],
                    metadata={"timestep_fs": 2.0, "temperature_k": 300.0}, precision="float64") as writer:
        for i in range(6):
            pos = atoms.positions + rng.normal(0, 0.1, atoms.positions.shape) + i
            positions.append(pos)
            writer.append(pos, atoms.cell[:] * (1 + 0.01 * i), 5 * i, 0.01 * i,
                          forces_ev_ang=np.full((32, 3), 0.5), observables={"temperature_k": 300.0 + i})
    return path, np.array(positions), atoms


def test_roundtrip_tfbsim_reader(h5md_file):
    path, positions, atoms = h5md_file
    info = read_h5md_info(path)
    assert info.n_frames == 6 and info.n_atoms == 32
    assert info.dt_ps == pytest.approx(0.01)
    assert info.metadata["temperature_k"] == 300.0
    frames = read_h5md_frames(path, [0, 5])
    np.testing.assert_allclose(frames[1].positions, positions[5])
    np.testing.assert_allclose(frames[1].arrays["forces"], 0.5, rtol=1e-6)
    assert frames[1].info["temperature_k"] == 305.0 and frames[1].info["step"] == 25
    assert list(frames[0].arrays["region"][[0, 31]]) == ["a", "bb"]


def test_mdanalysis_reads_box_and_positions(h5md_file):
    import MDAnalysis as mda

    path, positions, atoms = h5md_file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(str(path))
    assert len(u.trajectory) == 6
    u.trajectory[3]
    np.testing.assert_allclose(u.atoms.positions, positions[3], atol=1e-4)
    np.testing.assert_allclose(u.dimensions[:3], atoms.cell.lengths() * 1.03, rtol=1e-6)
    assert u.trajectory.ts.time == pytest.approx(0.03)
    named = open_universe(path)
    assert set(named.atoms.names) == {"Cu"}


def test_trajectory_sources_agree(h5md_file, tmp_path):
    path, positions, _ = h5md_file
    frames = read_h5md_frames(path)
    xyz = tmp_path / "t.extxyz"
    write_structure(xyz, frames)
    sources = [Trajectory(path, frames="1::2"), Trajectory(frames, frames="1::2"), Trajectory(xyz, frames="1::2"),
               Trajectory(open_universe(path), frames="1::2")]
    for traj in sources:
        assert traj.n_frames == 3
        np.testing.assert_allclose(traj.times_ps, [0.01, 0.03, 0.05], atol=1e-6)
        got = np.array([p for p, _ in traj.iter_positions([2, 0])])
        np.testing.assert_allclose(got, positions[1::2][:, [2, 0]], atol=1e-4)
    assert list(sources[0].select(region="bb")) == list(range(16, 32))
    with pytest.raises(TrajectoryError, match="unknown region"):
        sources[0].select(region="zz")


def test_time_required_and_frame_parsing():
    traj = Trajectory([bulk("Cu")] * 4)
    with pytest.raises(TrajectoryError, match="--dt-fs"):
        traj.require_times()
    assert Trajectory([bulk("Cu")] * 4, dt_fs=5).require_times()[-1] == pytest.approx(0.015)
    assert parse_frames("10:") == slice(10, None) and parse_frames("::5") == slice(None, None, 5)
    with pytest.raises(TrajectoryError):
        parse_frames("a:b")
    with pytest.raises(TrajectoryError, match="no frames"):
        Trajectory([bulk("Cu")] * 4, frames="10:")
