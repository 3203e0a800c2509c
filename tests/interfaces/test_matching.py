"""Lateral cells: ZSL matching and strain against hand calculations, pymatgen and scipy; near-square supercells."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfbsim.errors import StructureError
from tfbsim.interfaces.matching import (
    _zsl_candidates,
    find_supercell_matrix,
    lateral_supercell,
    lateral_widths_ang,
    match_lattices,
    strain_pct,
)
from tfbsim.structures.crystals import build_crystal
from tfbsim.structures.slabs import make_slab


def _base(name: str, miller) -> np.ndarray:
    slab = make_slab(build_crystal(name), miller, thickness_ang=6.0, vacuum_ang=0.0, orthogonal=False)
    return np.asarray(slab.cell[:2, :2])


def test_strain_of_li100_on_li2o100_is_the_hand_value():
    """bcc Li (100) (square, a = 3.51 Å) on Li2O (100) (square, a/√2 = 4.6114/√2 Å): only the 1×1 cell fits
    in 15 Å², so exx = eyy = (3.2608/3.51 − 1) = −7.10 %, exy = 0; Li (the film) carries it."""
    li, li2o = _base("li", (1, 0, 0)), _base("li2o", (1, 0, 0))
    match = match_lattices(li, li2o, max_strain_pct=8.0, lateral_min_ang=1.0, max_area_ang2=15.0)
    expected = (4.6114 / math.sqrt(2.0) / 3.51 - 1.0) * 100.0
    assert expected == pytest.approx(-7.1004, abs=1e-3)
    exx, eyy, exy = match.strain_pct
    assert exx == pytest.approx(expected, abs=1e-6)
    assert eyy == pytest.approx(expected, abs=1e-6)
    assert exy == pytest.approx(0.0, abs=1e-9)
    assert match.max_strain_pct == pytest.approx(abs(expected), abs=1e-6)
    assert abs(round(np.linalg.det(match.film_matrix))) == 1
    # the same pair at the default 5 % limit has no 1x1 match: the search must go to a larger cell
    wider = match_lattices(li, li2o, max_strain_pct=5.0, lateral_min_ang=10.0)
    assert wider.max_strain_pct <= 5.0 + 1e-9 and wider.match_area_ang2 > 12.0


def test_strain_components_hand_and_scipy_polar():
    """Rectangular 3 × 4 Å film on a 3.1 × 3.9 Å cell: exx = 3.333 %, eyy = −2.5 %; a sheared/rotated target
    against scipy's polar decomposition (independent of our eigen-decomposition)."""
    from scipy.linalg import polar

    (exx, eyy, exy), principal = strain_pct([[3.0, 0.0], [0.0, 4.0]], [[3.1, 0.0], [0.0, 3.9]])
    assert (exx, eyy, exy) == pytest.approx((100 / 30, -2.5, 0.0), abs=1e-9)
    assert principal == pytest.approx(100 / 30, abs=1e-9)
    film = np.array([[3.0, 0.2], [0.5, 4.0]])
    theta = 0.3
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    d_true = np.array([[1.02, 0.01], [0.03, 0.97]])
    target = (rot @ d_true @ film.T).T  # target rows s_i = R D f_i
    (exx, eyy, exy), principal = strain_pct(film, target)
    _, v = polar(rot @ d_true, side="left")  # R D = V U
    eps = v - np.eye(2)
    assert (exx, eyy, exy) == pytest.approx((100 * eps[0, 0], 100 * eps[1, 1], 100 * eps[0, 1]), abs=1e-9)
    assert principal == pytest.approx(100 * np.max(np.abs(np.linalg.eigvalsh(eps))), abs=1e-9)
    # a pure rotation is no strain
    assert strain_pct(film, (rot @ film.T).T)[1] == pytest.approx(0.0, abs=1e-9)


def test_vectorised_zsl_finds_what_pymatgen_finds():
    """Our NumPy comparison must reproduce pymatgen's ZSLGenerator matches (distinct coincidence lattices)."""
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator

    film, substrate = _base("li", (1, 0, 0)), _base("li2o", (1, 0, 0))
    max_strain, max_area = 5.0, 110.0
    ours = _zsl_candidates(film, substrate, max_strain, max_area)
    tol = max_strain / 100
    gen = ZSLGenerator(max_area_ratio_tol=(1 + tol) ** 2 - 1 + 1e-3, max_area=max_area, max_length_tol=tol,
                       max_angle_tol=tol, bidirectional=True)
    def key(vectors):
        return (round(abs(np.linalg.det(vectors)), 3), *sorted(np.round(np.linalg.norm(vectors, axis=1), 3)))

    theirs = set()
    for m in gen(np.hstack([film, np.zeros((2, 1))]), np.hstack([substrate, np.zeros((2, 1))])):
        fs = np.asarray(m.film_sl_vectors)[:, :2]
        ss = np.asarray(m.substrate_sl_vectors)[:, :2]
        if np.linalg.det(fs) * np.linalg.det(ss) < 0 or strain_pct(*((fs, ss) if np.linalg.det(fs) > 0
                                                                       else (fs[::-1], ss[::-1])))[1] > max_strain:
            continue
        theirs.add(key(ss))
    assert theirs, "pymatgen found no match: the comparison would be empty"
    assert {key(c["ms"] @ substrate) for c in ours} == theirs


def test_match_without_solution_suggests_a_larger_lateral_size():
    with pytest.raises(StructureError, match="--lateral-min-ang"):
        match_lattices(_base("li", (1, 0, 0)), _base("li3po4", (0, 1, 0)), max_strain_pct=5.0, lateral_min_ang=10.0)


def test_lateral_supercell_square_and_hexagonal():
    # square 3.51 Å, 10 Å: 3 × 3 (a rotated sqrt(10) cell is wider but larger)
    cell = lateral_supercell([[3.51, 0.0], [0.0, 3.51]], 10.0)
    assert sorted(np.abs(cell.matrix).ravel().tolist()) == [0, 0, 3, 3]
    assert cell.area_ang2 == pytest.approx(9 * 3.51**2)
    assert cell.orthogonal
    # hexagonal 2.8156 Å (LiCoO2 basal plane): widths ≥ 12 Å, and no supercell of smaller area reaches them
    a = 2.8156
    hexagonal = np.array([[a, 0.0], [-a / 2, a * math.sqrt(3) / 2]])
    cell = lateral_supercell(hexagonal, 12.0)
    assert min(cell.widths_ang) >= 12.0 - 1e-9
    assert 60.0 - 1e-6 <= cell.gamma_deg <= 120.0 + 1e-6
    best = np.inf
    rng = range(-8, 9)
    for m in ((p, q, r, s) for p in rng for q in rng for r in rng for s in rng):
        det = m[0] * m[3] - m[1] * m[2]
        if det <= 0:
            continue
        vec = np.array([[m[0], m[1]], [m[2], m[3]]]) @ hexagonal
        if min(lateral_widths_ang(vec)) >= 12.0 - 1e-9:
            best = min(best, det * abs(np.linalg.det(hexagonal)))
    assert cell.area_ang2 <= best * 1.15 + 1e-9  # the shape preference may trade up to 15 % of area
    with pytest.raises(StructureError, match="lateral_min_ang"):
        lateral_supercell(hexagonal, -1.0)


def test_find_supercell_matrix_recognises_a_rotated_supercell():
    base = np.array([[2.816, 0.0], [0.0, 5.702]])
    m = np.array([[2, 1], [-1, 3]])
    theta = 0.7
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    target = (rot @ (m @ base).T).T
    found = find_supercell_matrix(base, target)
    assert found is not None
    got = found @ base
    assert np.allclose(np.linalg.norm(got, axis=1), np.linalg.norm(target, axis=1), atol=1e-9)
    assert np.dot(*got) == pytest.approx(np.dot(*target), abs=1e-9)
    assert find_supercell_matrix(base, [[9.0, 0.0], [0.0, 9.0]]) is None
