"""Bond exchange with hysteresis + persistence (synthetic trajectories), speciation series, steady state."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from tfbsim.analysis.network_dynamics import NetworkDynamics, speciation_steady_state
from tfbsim.errors import AnalysisError
from tfbsim.structures.crystals import build_crystal

DT_PS = 0.02


def p_o_trajectory(distances) -> list[Atoms]:
    """One P and one O along x (across the periodic boundary: P near the box edge), one frame per distance."""
    frames = []
    for k, d in enumerate(distances):
        atoms = Atoms("PO", positions=[[11.5, 5, 5], [11.5 + d, 5, 5]], cell=[12.0] * 3, pbc=True)
        atoms.wrap()
        atoms.info["time_ps"] = DT_PS * k
        frames.append(atoms)
    return frames


def test_a_bond_that_breaks_once_counts_one_event():
    d = np.r_[np.full(30, 1.55), np.linspace(1.55, 3.5, 5), np.full(25, 3.5)]
    res = NetworkDynamics(p_o_trajectory(d)).run().results
    assert res.events == {"P-O_breaks": 1, "P-O_forms": 0, "P-N_breaks": 0, "P-N_forms": 0}
    span = DT_PS * (len(d) - 1)
    assert res.rates_per_P_per_ps["P-O_total"] == pytest.approx(1 / span)
    assert res.persist_frames == 5  # 100 fs at 20 fs per frame
    assert res.speciation["Q0"][0] == 1.0


def test_vibration_across_the_cutoff_counts_nothing():
    n = 80
    # 1) oscillation across the nominal 2.0 Å cut-off, inside the hysteresis band: hysteresis alone suffices
    inside = 2.0 + 0.12 * np.sin(np.arange(n) * 2.1)
    assert sum(NetworkDynamics(p_o_trajectory(inside), min_lifetime_fs=0).run().results.events.values()) == 0
    # 2) brief excursions far beyond the band (2 frames = 40 fs < 100 fs): the persistence criterion removes them
    spikes = np.full(n, 1.6)
    for start in range(10, n - 5, 12):
        spikes[start:start + 2] = 2.6
    assert sum(NetworkDynamics(p_o_trajectory(spikes)).run().results.events.values()) == 0
    # ... and without persistence each excursion would be a break and a re-formation
    naive = NetworkDynamics(p_o_trajectory(spikes), min_lifetime_fs=0).run().results.events
    assert naive["P-O_breaks"] == naive["P-O_forms"] == 6


def test_break_and_reform_count_both():
    d = np.r_[np.full(20, 1.55), np.full(20, 3.0), np.full(20, 1.6)]
    res = NetworkDynamics(p_o_trajectory(d)).run().results
    assert res.events["P-O_breaks"] == 1 and res.events["P-O_forms"] == 1
    assert res.events_per_frame["P-O_breaks"].tolist().index(1) == 20 + 5 - 1  # confirmed after 5 frames


def test_speciation_series_of_li2po2n_chains():
    base = build_crystal("li2po2n") * (1, 2, 2)
    frames = []
    for k in range(8):
        atoms = base.copy()
        atoms.rattle(0.03, seed=k)
        frames.append(atoms)
    res = NetworkDynamics(frames, dt_fs=50).run().results
    np.testing.assert_allclose(res.speciation["Nd"], 1.0)
    np.testing.assert_allclose(res.speciation["Q2"], 1.0)
    assert sum(res.events.values()) == 0
    assert res.steady_state is not None and res.steady_state.steady


def test_steady_state_check(rng):
    flat = 0.4 + 0.01 * rng.standard_normal(60)
    assert speciation_steady_state({"Nd": flat, "Na": 1 - flat}).steady
    drift = np.linspace(0.2, 0.6, 60) + 0.01 * rng.standard_normal(60)
    check = speciation_steady_state({"Nd": drift, "Na": 1 - flat})
    assert not check.steady
    assert check.per_key["Na"]["steady"] and not check.per_key["Nd"]["steady"]
    assert check.per_key["Nd"]["difference"] == pytest.approx(0.4 / 3, abs=0.02)
    with pytest.raises(AnalysisError, match="too few"):
        speciation_steady_state({"Nd": [0.1, 0.2, 0.3]})
