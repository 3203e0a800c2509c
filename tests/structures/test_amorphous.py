"""Amorphous LiPON builder: stoichiometry, designed speciation (checked by the coordination analysis),
minimum distances (checked with ASE's neighbour list), reproducibility, cells, errors and speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from tfbsim.analysis.coordination import Coordination
from tfbsim.errors import StructureError
from tfbsim.structures.amorphous import MIN_DISTANCE_RANDOM_ANG, build_lipon
from tfbsim.structures.composition import FORMAL_CHARGE
from tfbsim.structures.motif_geometry import embed_unit
from tfbsim.structures.motifs import (
    BOND_LENGTH_ANG,
    MIN_DISTANCE_ANG,
    MIN_NONBONDED_P_ANION_ANG,
    UnitTopology,
    design_anions,
)


def _rmin(table, a, b):
    return table.get((a, b), table.get((b, a)))


def _speciation(atoms):
    return Coordination(atoms).run().results.mean


def _designed(atoms):
    d = atoms.info["speciation_designed"]
    return {**d["N"], **d["P"], **d["O"]}


@pytest.mark.parametrize(
    ("formula", "n_atoms"),
    [("Li2.94PO3.50N0.31", 120), ("Li3.3PO3.9N0.17", 120), ("Li3PO4", 96), ("Li2PO2N", 96), ("LiPO3", 100)],
)
def test_stoichiometry_and_charge_balance(formula, n_atoms):
    atoms = build_lipon(formula, n_atoms, seed=3)
    symbols = atoms.get_chemical_symbols()
    counts = {el: symbols.count(el) for el in ("Li", "P", "O", "N")}
    assert counts == atoms.info["counts"]
    assert sum(FORMAL_CHARGE[el] * n for el, n in counts.items()) == 0
    assert atoms.info["charge_total_e"] == 0
    assert set(atoms.arrays["region"]) == {"lipon"}
    # density is exact by construction: mass / volume
    mass_g = atoms.get_masses().sum() * 1.66053906660e-24
    assert mass_g / (atoms.get_volume() * 1e-24) == pytest.approx(2.4, rel=1e-9)
    assert atoms.info["density_g_cm3"] == pytest.approx(2.4, rel=1e-9)


def test_li2po2n_is_all_bridging_n_and_q2():
    atoms = build_lipon("Li2PO2N", 150, seed=1)
    mean = _speciation(atoms)
    assert mean["Nd"] == 1.0
    assert mean["Q2"] == 1.0
    assert mean["Onb"] == 1.0
    assert mean["P_mean_cn"] == 4.0


def test_li3po4_is_all_monomers():
    atoms = build_lipon("Li3PO4", 160, seed=2)
    mean = _speciation(atoms)
    assert mean["Q0"] == 1.0
    assert mean["monomer"] == 1.0
    assert mean["P_mean_cn"] == 4.0
    assert _designed(atoms)["Q0"] == 1.0


@pytest.mark.parametrize(
    ("formula", "kwargs"),
    [
        ("Li2.94PO3.50N0.31", {}),
        ("Li2.94PO3.50N0.31", {"allow_nt": True}),
        ("Li2.94PO3.50N0.31", {"nd_fraction": 0.0}),
        ("Li3.3PO3.9N0.17", {}),
        ("Li1.2PO3.1", {}),
    ],
)
def test_designed_speciation_reproduced_by_coordination_analysis(formula, kwargs):
    atoms = build_lipon(formula, 200, seed=5, **kwargs)
    mean = _speciation(atoms)
    designed = _designed(atoms)
    for key in ("Na", "Nd", "Nt", "N0", "Q0", "Q1", "Q2", "Q3", "Q4", "Onb", "Ob", "O0"):
        assert mean[key] == pytest.approx(designed[key], abs=1e-12), key
    assert mean["P_mean_cn"] == 4.0
    # the designed numbers follow b = 4 - (y + z): bridging anion bonds per P
    counts = atoms.info["counts"]
    c = atoms.info["speciation_designed"]["counts"]
    budget = max(4 * counts["P"] - counts["O"] - counts["N"], 0)
    assert c["Ob"] + c["Nd"] + 2 * c["Nt"] == budget
    assert c["O0"] + c["N0"] == max(counts["O"] + counts["N"] - 4 * counts["P"], 0)


def test_default_speciation_puts_n_in_bridges_first():
    atoms = build_lipon("Li2.94PO3.50N0.31", 200, seed=0)
    c = atoms.info["speciation_designed"]["counts"]
    counts = atoms.info["counts"]
    budget = 4 * counts["P"] - counts["O"] - counts["N"]
    assert c["Nd"] == min(counts["N"], budget) and c["Ob"] == budget - c["Nd"] and c["Nt"] == 0
    with_nt = build_lipon("Li2.94PO3.50N0.31", 200, seed=0, allow_nt=True)
    assert _speciation(with_nt)["Nt"] > 0


def test_excess_anions_become_free_o():
    atoms = build_lipon("Li3.3PO3.9N0.17", 300, seed=4)
    counts = atoms.info["counts"]
    excess = counts["O"] + counts["N"] - 4 * counts["P"]
    assert excess > 0
    mean = _speciation(atoms)
    assert mean["O0"] * counts["O"] == pytest.approx(excess)
    assert mean["Q0"] == 1.0


@pytest.mark.parametrize("mode", ["motif", "random"])
def test_no_pair_below_its_minimum_distance(mode):
    atoms = build_lipon("Li2.94PO3.50N0.31", 200, seed=7, mode=mode)
    table = MIN_DISTANCE_ANG if mode == "motif" else MIN_DISTANCE_RANDOM_ANG
    i, j, d = neighbor_list("ijd", atoms, 3.5)
    sym = np.array(atoms.get_chemical_symbols())
    for a, b, dist in zip(sym[i], sym[j], d):
        assert dist >= _rmin(table, a, b) - 1e-9, (a, b, dist)
    if mode == "motif":
        # P-anion pairs are either designed bonds (< 1.8 Å) or well outside the bond cutoff
        pa = (sym[i] == "P") & np.isin(sym[j], ["O", "N"])
        assert np.all((d[pa] < 1.8) | (d[pa] >= MIN_NONBONDED_P_ANION_ANG - 1e-9))
    assert atoms.info["min_distance_ang"] == pytest.approx(d.min())


def test_random_mode_has_no_designed_speciation():
    atoms = build_lipon("Li2.94PO3.50N0.31", 120, mode="random", seed=1)
    assert "speciation_designed" not in atoms.info
    assert atoms.info["counts"] == {el: atoms.get_chemical_symbols().count(el) for el in ("Li", "P", "O", "N")}


def test_same_seed_same_structure_other_seed_differs():
    a = build_lipon("Li2.94PO3.50N0.31", 150, seed=11)
    b = build_lipon("Li2.94PO3.50N0.31", 150, seed=11)
    c = build_lipon("Li2.94PO3.50N0.31", 150, seed=12)
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.cell.array, b.cell.array)
    assert not np.allclose(a.positions, c.positions)
    r1 = build_lipon("Li3PO4", 80, seed=3, mode="random")
    r2 = build_lipon("Li3PO4", 80, seed=3, mode="random")
    np.testing.assert_array_equal(r1.positions, r2.positions)


def test_lateral_cells_are_exact():
    atoms = build_lipon("Li2.94PO3.50N0.31", 150, lateral_ang=(10.0, 11.0), seed=0)
    np.testing.assert_allclose(atoms.cell[0], [10.0, 0, 0])
    np.testing.assert_allclose(atoms.cell[1], [0, 11.0, 0])
    assert atoms.info["lateral_fixed"] is True
    lateral = np.array([[9.0, 0.0, 0.0], [4.5, 7.794228634, 0.0]])  # hexagonal substrate cell
    hexa = build_lipon("Li2.94PO3.50N0.31", 150, lateral_cell_ang=lateral, seed=0)
    np.testing.assert_allclose(hexa.cell[:2], lateral)
    c = hexa.cell[2]
    assert abs(c @ lateral[0]) < 1e-9 and abs(c @ lateral[1]) < 1e-9 and c[2] > 0
    assert hexa.info["density_g_cm3"] == pytest.approx(2.4)
    assert _speciation(hexa)["P_mean_cn"] == 4.0


def test_unit_geometry_bond_lengths_and_angles():
    rng = np.random.default_rng(0)
    topo = UnitTopology(3, links=[("Nd", (0, 1)), ("Ob", (1, 2))])
    topo.terminals = [["Onb", "Onb", "Na"], ["Onb", "Onb"], ["Onb", "Onb", "Onb"]]
    unit = embed_unit(topo, rng)
    pos = unit.positions
    for p, x in unit.bonds:
        assert np.linalg.norm(pos[p] - pos[x]) == pytest.approx(BOND_LENGTH_ANG[unit.roles[x]], abs=1e-9)
    for x, role in enumerate(unit.roles):
        partners = [p for p, y in unit.bonds if y == x]
        if len(partners) == 2:
            u, v = pos[partners[0]] - pos[x], pos[partners[1]] - pos[x]
            angle = np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))
            assert (120 <= angle <= 130) if role == "Nd" else (130 <= angle <= 140)
    for p in [k for k, r in enumerate(unit.roles) if r == "P"]:
        ligands = [x for q, x in unit.bonds if q == p]
        assert len(ligands) == 4
        for a, b in [(a, b) for a in ligands for b in ligands if a < b]:
            u, v = pos[a] - pos[p], pos[b] - pos[p]
            assert np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))) == pytest.approx(109.47, abs=1.0)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"composition": "Li3PO4Xx"}, "unknown element"),
        ({"composition": "Li-2PO4"}, "not positive"),
        ({"composition": "Li2O"}, "no P"),
        ({"composition": "Li2.64PO2.81N0.33"}, r"\+1\.03 e per P"),
        ({"density_g_cm3": 0.3}, "outside 0.5"),
        ({"density_g_cm3": 7.0}, "outside 0.5"),
        ({"n_atoms": 5}, "at least 8 atoms"),
        ({"composition": "Li2.94PO3.50N0.31", "nd_fraction": 1.0}, "nd_fraction ≤"),
        ({"composition": "Li0.5PO2.75"}, "cross-linked"),
        ({"mode": "random", "nd_fraction": 0.5}, "motif mode"),
        ({"mode": "glass"}, "mode must be"),
        ({"nt_fraction": 0.2}, "allow_nt"),
    ],
)
def test_bad_input_raises_one_clear_error(kwargs, fragment):
    args = {"composition": "Li3PO4", "n_atoms": 100, **kwargs}
    with pytest.raises(StructureError, match=fragment):
        build_lipon(args.pop("composition"), args.pop("n_atoms"), **args)


def test_500_atom_motif_box_builds_fast():
    start = time.perf_counter()
    atoms = build_lipon("Li2.94PO3.50N0.31", 500, seed=0)
    elapsed = time.perf_counter() - start
    assert len(atoms) == pytest.approx(500, abs=8)
    assert elapsed < 10.0, f"500-atom build took {elapsed:.1f} s"


def test_design_anions_budget_arithmetic():
    d = design_anions(10, 30, 5)  # b = 4 - 3.5 = 0.5 per P -> 5 bridges, all N
    assert d.roles["Nd"] == 5 and d.roles["Ob"] == 0 and d.roles["Na"] == 0
    d = design_anions(10, 30, 5, nd_fraction=0.4)
    assert d.roles["Nd"] == 2 and d.roles["Ob"] == 3 and d.roles["Na"] == 3
    d = design_anions(10, 40, 2)  # 2 excess anions -> free O
    assert d.roles["O0"] == 2 and d.bridging_budget == 0
