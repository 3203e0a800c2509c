"""Partial g(r) and running coordination numbers: lattices with known shells, ideal gas, first minimum."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from tfbsim.analysis.rdf import RDFAccumulator, first_minimum, partial_rdf
from tfbsim.errors import ConfigError, TrajectoryError


def test_fcc_shells_primitive_cell():
    """fcc Cu in its 1-atom primitive cell: 12 neighbours at a/sqrt2, 6 more at a (all periodic images)."""
    rdf = partial_rdf(bulk("Cu", "fcc", a=3.61), ["Cu-Cu"], r_max_ang=4.0, bin_width_ang=0.01)
    assert rdf.cn_at("Cu-Cu", 2.4) == 0.0
    assert rdf.cn_at("Cu-Cu", 3.0) == pytest.approx(12.0)
    assert rdf.cn_at("Cu-Cu", 3.8) == pytest.approx(18.0)
    assert rdf.r_ang[np.argmax(rdf.g["Cu-Cu"])] == pytest.approx(3.61 / np.sqrt(2), abs=0.01)


def test_antifluorite_directional_cn_and_first_minimum():
    a = 4.61
    rdf = partial_rdf(bulk("OLi2", "fluorite", a=a), ["Li-O", "O-Li"], r_max_ang=5.0)
    assert rdf.cn_at("Li-O", 2.5) == pytest.approx(4.0)  # O around Li
    assert rdf.cn_at("O-Li", 2.5) == pytest.approx(8.0)  # Li around O
    r_min = rdf.first_minimum("Li-O")
    assert a * np.sqrt(3) / 4 < r_min < a * np.sqrt(11) / 4


def test_ideal_gas_tends_to_one(rng):
    frames = [Atoms("Li300O300", positions=rng.random((600, 3)) * 18.0, cell=[18.0] * 3, pbc=True) for _ in range(4)]
    rdf = partial_rdf(frames, ["Li-O", "O-O"], r_max_ang=6.0, bin_width_ang=0.2)
    assert rdf.g["Li-O"][5:].mean() == pytest.approx(1.0, abs=0.03)
    assert rdf.g["O-O"][5:].mean() == pytest.approx(1.0, abs=0.03)
    density = 300 / 18.0**3
    assert rdf.cn_at("Li-O", 5.0) == pytest.approx(density * 4 / 3 * np.pi * 5.0**3, rel=0.05)
    assert rdf.n_frames == 4


def test_first_minimum_of_an_analytic_curve():
    r = np.linspace(0.01, 6.0, 600)
    g = np.exp(-((r - 2.0) ** 2) / 0.02) * 5 + 1.0 - np.exp(-((r - 3.0) ** 2) / 0.2) * 0.6
    g[r < 1.5] = 0.0
    assert first_minimum(r, g) == pytest.approx(3.0, abs=0.05)
    assert first_minimum(r, np.zeros_like(r)) is None
    assert first_minimum(r, np.exp(-r)) is None  # no rise after the peak


def test_bad_input(tmp_path):
    with pytest.raises(ConfigError):
        RDFAccumulator(["P", "O"], ["P-O"], r_max_ang=-1.0)
    with pytest.raises(ConfigError):
        RDFAccumulator(["P", "O"], ["P-O"], r_max_ang=4.0, bin_width_ang=5.0)
    with pytest.raises(ConfigError, match="unknown element"):
        RDFAccumulator(["P", "O"], ["P-Qq"])
    slab = Atoms("PO", positions=[[0, 0, 0], [1.5, 0, 0]], cell=[10, 10, 10], pbc=(True, True, False))
    with pytest.raises(TrajectoryError, match="fully periodic"):
        partial_rdf(slab, ["P-O"])
    # an element that is absent: zeros, not a crash
    rdf = partial_rdf(bulk("Cu", "fcc", a=3.61), ["Cu-O"], r_max_ang=3.0)
    assert not rdf.g["Cu-O"].any() and not rdf.cn["Cu-O"].any()
