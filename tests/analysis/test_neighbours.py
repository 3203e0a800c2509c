"""Periodic neighbour search: analytic lattices, images across boundaries, cross-check with ASE neighbor_list."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list

from tfbsim.analysis.neighbours import (
    DEFAULT_BOND_CUTOFFS_ANG,
    bonds,
    find_pairs,
    neighbour_counts,
    pair_label,
    parse_cutoffs,
)
from tfbsim.errors import ConfigError, TrajectoryError


def _directed_set(pairs):
    src = np.concatenate([pairs.i, pairs.j])
    dst = np.concatenate([pairs.j, pairs.i])
    sh = np.concatenate([pairs.shifts, -pairs.shifts])
    return set(zip(src.tolist(), dst.tolist(), map(tuple, sh.tolist())))


@pytest.mark.parametrize(
    "cell, pbc, n, cutoff",
    [
        (np.diag([12.0, 11.0, 13.0]), True, 200, 3.0),
        (np.array([[10.0, 0, 0], [3.0, 9.0, 0], [2.0, -4.0, 11.0]]), True, 200, 3.0),  # triclinic
        (np.array([[10.0, 0, 0], [7.0, 10.0, 0], [-6.0, 5.0, 12.0]]), True, 150, 2.8),  # strongly skewed
        (np.array([[4.0, 0, 0], [1.5, 3.5, 0], [0.5, 0.7, 3.9]]), True, 6, 3.5),  # cutoff > half the cell
        (np.array([[10.0, 0, 0], [3.0, 9.0, 0], [2.0, -4.0, 11.0]]), (True, True, False), 150, 3.0),  # slab
        (np.array([[10.0, 0, 0], [3.0, 9.0, 0], [2.0, -4.0, 11.0]]), (False, True, False), 100, 3.0),  # wire
        (np.zeros((3, 3)), False, 100, 3.0),  # isolated cluster
    ],
)
def test_find_pairs_matches_ase_with_shifts(cell, pbc, n, cutoff):
    rng = np.random.default_rng(7)
    span = cell if np.abs(cell).sum() else np.eye(3) * 10.0
    positions = rng.random((n, 3)) @ span + rng.normal(0.0, 3.0, (n, 3))  # partly outside the cell
    atoms = Atoms(f"H{n}", positions=positions, cell=cell, pbc=pbc)
    pairs = find_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    i, j, shifts, d = neighbor_list("ijSd", atoms, cutoff)
    assert _directed_set(pairs) == set(zip(i.tolist(), j.tolist(), map(tuple, shifts.tolist())))
    assert np.sort(np.repeat(pairs.distances_ang, 2)) == pytest.approx(np.sort(d), abs=1e-9)
    vec = atoms.positions[pairs.j] + pairs.shifts @ atoms.cell.array - atoms.positions[pairs.i]
    assert np.linalg.norm(vec, axis=1) == pytest.approx(pairs.distances_ang, abs=1e-9)


def test_simple_cubic_bonds_to_its_own_images():
    atoms = Atoms("Li", cell=[2.5, 2.5, 2.5], pbc=True)
    pairs = find_pairs(atoms.positions, atoms.cell.array, True, 2.6)
    assert len(pairs) == 3  # +x, +y, +z (the -x, -y, -z images are the same bonds seen backwards)
    assert (pairs.i == 0).all() and (pairs.j == 0).all()
    assert bonds(atoms, {"Li-Li": 2.6}).counts().tolist() == [6]
    assert bonds(atoms, {"Li-Li": 3.6}).counts().tolist() == [18]  # + 12 face diagonals at 3.54 Å


def test_rocksalt_and_fluorite_counts():
    nacl = bulk("NaCl", "rocksalt", a=5.64) * (2, 2, 2)
    counts = neighbour_counts(nacl, {"Na-Cl": 3.0}, ["Na", "Cl"])
    na = nacl.symbols == "Na"
    assert (counts["Cl"][na] == 6).all() and (counts["Cl"][~na] == 0).all()
    assert (counts["Na"][~na] == 6).all()
    li2o = bulk("OLi2", "fluorite", a=4.61)  # anti-fluorite, primitive cell: every bond is to an image
    c = bonds(li2o, {"Li-O": 2.3}).counts_by_element(["Li", "O"])
    assert c["O"].tolist() == [0, 4, 4] and c["Li"].tolist() == [8, 0, 0]


def test_bond_across_the_cell_boundary():
    atoms = Atoms("PO", positions=[[0.3, 5.0, 5.0], [9.2, 5.0, 5.0]], cell=[10.0, 10.0, 10.0], pbc=True)
    b = bonds(atoms, {"P-O": 2.0})
    assert len(b) == 1 and b.distances_ang[0] == pytest.approx(1.1)
    assert b.vectors_ang(atoms.positions, atoms.cell.array)[0] == pytest.approx([-1.1, 0.0, 0.0])
    atoms.pbc = False
    assert len(bonds(atoms, {"P-O": 2.0})) == 0
    atoms.pbc = (False, True, True)  # the boundary crossed is not periodic
    assert len(bonds(atoms, {"P-O": 2.0})) == 0


def test_counts_match_ase_on_random_lipon_box():
    rng = np.random.default_rng(3)
    symbols = ["Li"] * 200 + ["P"] * 60 + ["O"] * 200 + ["N"] * 40
    cell = np.array([[17.0, 0.0, 0.0], [2.0, 16.5, 0.0], [-1.5, 1.0, 18.0]])
    atoms = Atoms(symbols, positions=rng.random((500, 3)) @ cell, cell=cell, pbc=True)
    b = bonds(atoms)  # the full default table
    ours = b.count_matrix(["Li", "P", "O", "N"])
    table = {(atomic_numbers[a], atomic_numbers[c]): v for (a, c), v in parse_cutoffs(DEFAULT_BOND_CUTOFFS_ANG).items()}
    i, j = neighbor_list("ij", atoms, table)
    ref = np.zeros_like(ours)
    col = {"Li": 0, "P": 1, "O": 2, "N": 3}
    sym = atoms.get_chemical_symbols()
    for a, c in zip(i, j):  # the straightforward reference
        ref[a, col[sym[c]]] += 1
    assert ours.sum() > 1000  # the test exercises many bonds
    np.testing.assert_array_equal(ours, ref)


def test_between_orients_pairs():
    atoms = Atoms("OPO", positions=[[0, 0, 0], [1.5, 0, 0], [3.0, 0, 0]], cell=[20, 20, 20], pbc=True)
    po = bonds(atoms, {"P-O": 2.0}).between("P", "O")
    assert po.i.tolist() == [1, 1] and sorted(po.j.tolist()) == [0, 2]


def test_parse_cutoffs_and_labels():
    assert parse_cutoffs(["P-N=2.1", "O-Li=2.5"]) == {("N", "P"): 2.1, ("Li", "O"): 2.5}
    assert parse_cutoffs({("P", "O"): 2, "O-P": 2.0}) == {("O", "P"): 2.0}
    assert pair_label("O", "P") == "P-O" and pair_label("Zr", "Al") == "Al-Zr"
    with pytest.raises(ConfigError, match="unknown element"):
        parse_cutoffs({"P-Xx": 2.0})
    with pytest.raises(ConfigError, match="positive"):
        parse_cutoffs({"P-O": -1.0})
    with pytest.raises(ConfigError, match="positive"):
        parse_cutoffs({"P-O": float("nan")})
    with pytest.raises(ConfigError, match="twice"):
        parse_cutoffs({"P-O": 2.0, "O-P": 2.1})
    with pytest.raises(ConfigError, match="PAIR=ANGSTROM"):
        parse_cutoffs(["P-O:2.0"])


def test_bad_input():
    atoms = Atoms("PO", positions=[[0, 0, 0], [1.5, 0, 0]], pbc=True)  # periodic but no cell
    with pytest.raises(TrajectoryError, match="needs a cell"):
        bonds(atoms, {"P-O": 2.0})
    with pytest.raises(TrajectoryError, match="needs a cell"):
        bonds(np.zeros((2, 3)), {"P-O": 2.0}, symbols=["P", "O"], pbc=True)
    with pytest.raises(ConfigError, match="symbols"):
        bonds(np.zeros((2, 3)), {"P-O": 2.0})
    with pytest.raises(ConfigError, match="one symbol per atom"):
        bonds(np.zeros((2, 3)), {"P-O": 2.0}, symbols=["P"])
    with pytest.raises(ConfigError, match="positive"):
        find_pairs(np.zeros((2, 3)), None, False, 0.0)
    with pytest.raises(TrajectoryError, match="NaN"):
        find_pairs(np.full((2, 3), np.nan), None, False, 1.0)
    # elements absent from the frame: no bonds, not a crash
    li = bulk("Li", "bcc", a=3.5)
    assert len(bonds(li, {"P-O": 2.0})) == 0
    assert bonds(li, {"P-O": 2.0}).counts("O").tolist() == [0]
