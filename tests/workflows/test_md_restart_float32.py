"""Restart bit-identity in float32 with the bundled model, as the demo runs (issue 22).

The float64 case with a tiny random MACE is in test_md_restart.py; here the bundled model in float32 on a
24-atom LiPON-like box, NVT Bussi as in the demo: a run that crashes after its checkpoint and is continued with
``restart_md`` ends in exactly the state (positions, momenta, trajectory frames) of the uninterrupted run, on one
CPU thread. (Across different hardware or thread counts float32 sums may round differently: the claim is for the
same machine and settings.)
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from tfbsim.analysis.h5md import read_h5md_frames
from tfbsim.workflows.md.config import MDConfig
from tfbsim.workflows.md.run import restart_md, run_md


@pytest.fixture
def one_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _box() -> Atoms:
    rng = np.random.default_rng(5)
    symbols = ["Li"] * 9 + ["P"] * 3 + ["O"] * 10 + ["N"] * 2
    positions: list[np.ndarray] = []
    while len(positions) < len(symbols):  # random packing, min distance 1.9 Å, 7.5 Å box
        trial = rng.uniform(0, 7.5, 3)
        if all(np.linalg.norm((trial - p + 3.75) % 7.5 - 3.75) > 1.9 for p in positions):
            positions.append(trial)
    return Atoms(symbols, positions=positions, cell=[7.5] * 3, pbc=True)


def test_bundled_float32_restart_is_bit_identical(tmp_path, one_thread):
    from tfbsim.workflows.potentials.factory import load_potential

    def calc():
        return load_potential("bundled", device="cpu", dtype="float32")

    atoms = _box()
    config = MDConfig(ensemble="nvt-bussi", steps=20, timestep_fs=1.0, temperature_k=600, initial_temperature_k=600,
                      tdamp_fs=50.0, checkpoint_every=10, traj_every=5, log_every=5, seed=7,
                      guard_max_force_ev_ang=1e4, guard_min_distance_ang=0.3)
    full = run_md(atoms, calc(), config, tmp_path / "full")
    assert full.config.potential.dtype == "float32"
    crashing = calc()
    calls = {"n": 0}
    original = crashing.calculate

    def calculate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 15:  # after the checkpoint at step 10
            raise RuntimeError("simulated crash")
        return original(*args, **kwargs)

    crashing.calculate = calculate
    with pytest.raises(RuntimeError):
        run_md(atoms, crashing, config, tmp_path / "split")
    split = restart_md(tmp_path / "split")  # the calculator is rebuilt from config.yaml: bundled, float32
    assert split.config.potential.dtype == "float32" and split.steps_done == full.steps_done == 20
    assert np.array_equal(full.atoms.positions, split.atoms.positions)
    assert np.array_equal(full.atoms.get_momenta(), split.atoms.get_momenta())
    a, b = read_h5md_frames(tmp_path / "full" / "traj.h5md"), read_h5md_frames(tmp_path / "split" / "traj.h5md")
    assert len(a) == len(b) == 5 and all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
