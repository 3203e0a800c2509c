"""build_interface: regions, composition, strain, interfaces, distances, glass on the substrate's cell, errors."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from tfbsim.errors import StructureError
from tfbsim.interfaces.builder import build_interface, repeat_distance_ang
from tfbsim.interfaces.stacking import min_cross_distance_ang
from tfbsim.structures.amorphous import build_lipon
from tfbsim.structures.crystals import build_crystal
from tfbsim.structures.io import write_structure
from tfbsim.structures.slabs import make_slab

COMPOSITION = "Li2.94PO3.50N0.31"


@pytest.fixture(scope="module")
def li_lipon():
    return build_interface("li:100,lipon", thickness_ang=[6.0, 10.0], lateral_min_ang=8.0, seed=3)


@pytest.fixture(scope="module")
def full_cell():
    return build_interface("li:100,lipon,licoo2:104", thickness_ang=[5.0, 10.0, 6.0], lateral_min_ang=8.0,
                           vacuum_ang=12.0, seed=1)


def _region_counts(atoms, region):
    return Counter(np.array(atoms.get_chemical_symbols())[atoms.arrays["region"] == region].tolist())


def test_repeat_distance_is_the_lattice_plane_spacing():
    assert repeat_distance_ang(build_crystal("li"), (1, 0, 0)) == pytest.approx(3.51 / 2)  # bcc: (200) planes
    assert repeat_distance_ang(build_crystal("licoo2"), (0, 0, 1)) == pytest.approx(14.0542 / 3)  # O3 stacking
    assert repeat_distance_ang(build_crystal("li2s"), (1, 1, 1)) == pytest.approx(5.708 / np.sqrt(3))


def test_region_counts_and_composition_match_independent_builds(li_lipon):
    """Li region = the slab (built again here) times the lateral supercell (pymatgen); LiPON region = the glass
    built again with the same counts, seed and cell; the total is their sum."""
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms, report = li_lipon
    li_entry, glass_entry = report["stack"]
    slab = make_slab(build_crystal("li"), (1, 0, 0), thickness_ang=6.0, vacuum_ang=0.0, orthogonal=False)
    m = np.array(li_entry["supercell_matrix"])
    structure = AseAtomsAdaptor.get_structure(slab)
    structure.make_supercell([[m[0, 0], m[0, 1], 0], [m[1, 0], m[1, 1], 0], [0, 0, 1]])
    expected_li = Counter({str(el): int(n) for el, n in structure.composition.items()})
    assert _region_counts(atoms, "li") == expected_li
    assert li_entry["n_atoms"] == sum(expected_li.values())
    glass = build_lipon(COMPOSITION, glass_entry["n_atoms"], lateral_cell_ang=np.array(report["lateral_cell_ang"]),
                        seed=3 + 1)
    expected_glass = Counter(glass.get_chemical_symbols())
    assert _region_counts(atoms, "lipon") == expected_glass
    assert Counter(atoms.get_chemical_symbols()) == expected_li + expected_glass
    assert report["composition"] == dict(expected_li + expected_glass)
    # charge-neutral glass (Li+ P5+ O2- N3-)
    c = expected_glass
    assert c["Li"] + 5 * c["P"] - 2 * c["O"] - 3 * c["N"] == 0


def test_periodic_sandwich_has_two_interfaces_at_the_reported_z(li_lipon):
    atoms, report = li_lipon
    assert report["periodic_sandwich"] and len(report["interfaces_z_ang"]) == 2
    assert atoms.info["interfaces_z_ang"] == report["interfaces_z_ang"]
    z = atoms.positions[:, 2]
    height = atoms.cell[2, 2]
    regions = atoms.arrays["region"]
    gap = report["gap_ang"]
    for iface in report["interfaces"]:
        dz = (z - iface["z_ang"] + height / 2) % height - height / 2  # periodic signed distance
        assert np.abs(dz).min() >= gap / 2 - 1e-6  # the plane lies in an empty gap
        below, above = np.argmax(np.where(dz < 0, dz, -np.inf)), np.argmin(np.where(dz > 0, dz, np.inf))
        assert regions[below] == iface["lower"] and regions[above] == iface["upper"]
    assert {(f["lower"], f["upper"]) for f in report["interfaces"]} == {("li", "lipon"), ("lipon", "li")}
    assert not atoms.arrays["fixed"].any()


def test_no_cross_interface_pair_below_its_minimum(li_lipon, full_cell):
    for atoms, report in (li_lipon, full_cell):
        i, j, d = neighbor_list("ijd", atoms, 5.0)
        regions = atoms.arrays["region"]
        symbols = np.array(atoms.get_chemical_symbols())
        cross = regions[i] != regions[j]
        limits = np.array([min_cross_distance_ang(a, b) for a, b in zip(symbols[i][cross], symbols[j][cross])])
        assert np.all(d[cross] >= limits)
        assert d[cross].min() == pytest.approx(report["min_cross_distance_ang"])
        assert d[cross].min() >= report["gap_ang"] - 1e-9  # the gap is along z, so no pair is closer


def test_glass_sits_on_the_unstrained_substrate_cell(li_lipon):
    """The substrate keeps bulk bcc Li (nearest neighbours a√3/2), the glass was built for exactly the stack's
    in-plane cell (its box density is the target), and the in-plane cell is the slab's supercell."""
    atoms, report = li_lipon
    li = atoms[atoms.arrays["region"] == "li"]
    _, d = neighbor_list("id", li, 3.2)
    assert d.min() == pytest.approx(3.51 * np.sqrt(3) / 2, abs=1e-6)
    assert report["stack"][0]["strain_pct"] == [0.0, 0.0, 0.0]
    slab = make_slab(build_crystal("li"), (1, 0, 0), thickness_ang=6.0, vacuum_ang=0.0, orthogonal=False)
    natural = np.array(report["stack"][0]["supercell_matrix"]) @ slab.cell[:2, :2]
    lateral = np.array(report["lateral_cell_ang"])[:, :2]
    assert np.allclose(np.linalg.norm(lateral, axis=1), np.linalg.norm(natural, axis=1), atol=1e-9)
    assert np.dot(*lateral) == pytest.approx(np.dot(*natural), abs=1e-9)
    assert np.allclose(atoms.cell[:2, :2], lateral)
    glass = atoms[atoms.arrays["region"] == "lipon"]
    volume_cm3 = report["area_ang2"] * report["stack"][1]["thickness_ang"] * 1e-24
    assert glass.get_masses().sum() * 1.66053906660e-24 / volume_cm3 == pytest.approx(2.4, rel=1e-6)
    # phosphate units are whole: every P keeps four O/N within 2 Å across the stacked cell
    i, _ = neighbor_list("ij", atoms, {("P", "O"): 1.95, ("P", "N"): 2.05})
    p = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == "P")
    assert np.all(np.bincount(i, minlength=len(atoms))[p] == 4)


def test_full_cell_three_regions_in_order_with_fixed_bottom(full_cell):
    atoms, report = full_cell
    assert [e["region"] for e in report["stack"]] == ["li", "lipon", "licoo2"]
    ranges = [e["z_range_ang"] for e in report["stack"]]
    assert ranges[0][1] < ranges[1][0] and ranges[1][1] < ranges[2][0]
    assert not report["periodic_sandwich"] and len(report["interfaces_z_ang"]) == 2
    assert ranges[0][1] < report["interfaces_z_ang"][0] < ranges[1][0] < ranges[1][1] < report["interfaces_z_ang"][1]
    assert ranges[0][0] == pytest.approx(6.0) and atoms.cell[2, 2] - ranges[2][1] == pytest.approx(6.0)
    fixed = atoms.arrays["fixed"]
    assert fixed.any() and set(atoms.arrays["region"][fixed]) == {"li"}
    assert atoms.positions[fixed, 2].max() <= ranges[0][0] + 3.0 + 1e-9
    # Li (the soft phase) carries the strain; the report agrees with scipy's polar decomposition
    from scipy.linalg import polar

    li_entry, lco_entry = report["stack"][0], report["stack"][2]
    assert lco_entry["max_strain_pct"] == 0.0 and 0.0 < li_entry["max_strain_pct"] <= 5.0
    assert report["lateral"]["reference_phase"] == "licoo2" and report["lateral"]["strained_phases"] == ["li"]
    slab = make_slab(build_crystal("li"), (1, 0, 0), thickness_ang=5.0, vacuum_ang=0.0, orthogonal=False)
    natural = np.array(li_entry["supercell_matrix"]) @ slab.cell[:2, :2]
    lateral = np.array(report["lateral_cell_ang"])[:, :2]
    _, v = polar(np.linalg.solve(natural, lateral).T, side="left")
    eps = 100 * (v - np.eye(2))
    assert li_entry["strain_pct"] == pytest.approx([eps[0, 0], eps[1, 1], eps[0, 1]], abs=1e-9)


def test_lateral_shift_moves_the_upper_phase():
    kwargs = dict(thickness_ang=[4.0, 9.0], lateral_min_ang=7.0, seed=5)
    plain, _ = build_interface("li:100,lipon", **kwargs)
    shifted, report = build_interface("li:100,lipon", shift_ang=(1.0, 0.5), **kwargs)
    glass = plain.arrays["region"] == "lipon"
    delta = shifted.positions[glass] - plain.positions[glass]
    frac = np.linalg.solve(plain.cell[:].T, (delta - [1.0, 0.5, 0.0]).T).T
    assert np.allclose(frac - np.rint(frac), 0.0, atol=1e-9)
    assert np.allclose(shifted.positions[~glass], plain.positions[~glass])
    assert report["lateral_shift_ang"] == [[1.0, 0.5]]


def test_lipon_from_file(tmp_path, li_lipon):
    _, report = li_lipon
    a, b = np.linalg.norm(np.array(report["lateral_cell_ang"]), axis=1)
    glass = build_lipon(COMPOSITION, 120, lateral_ang=(b, a), seed=9)  # a and b swapped: a rotated supercell
    path = tmp_path / "glass.extxyz"
    write_structure(path, glass)
    atoms, rep = build_interface("li:100,lipon", thickness_ang=[6.0, 10.0], lipon_from=path)
    assert rep["stack"][1]["n_atoms"] == len(glass)
    assert _region_counts(atoms, "lipon") == Counter(glass.get_chemical_symbols())
    assert rep["lateral"]["method"] == "lipon_from"
    assert rep["area_ang2"] == pytest.approx(a * b)
    wrong = build_lipon(COMPOSITION, 120, lateral_ang=(9.0, 9.0), seed=9)
    write_structure(tmp_path / "wrong.extxyz", wrong)
    with pytest.raises(StructureError, match="not a supercell.*--lateral-ang"):
        build_interface("li:100,lipon", thickness_ang=[6.0, 10.0], lipon_from=tmp_path / "wrong.extxyz")


def test_lipon_from_file_in_a_full_cell(tmp_path, full_cell):
    """A glass built on the lateral cell a full cell reports is accepted for that full cell (ZSL path)."""
    _, report = full_cell
    glass = build_lipon(COMPOSITION, 110, lateral_cell_ang=np.array(report["lateral_cell_ang"]), seed=4)
    write_structure(tmp_path / "glass.extxyz", glass)
    atoms, rep = build_interface("li:100,lipon,licoo2:104", thickness_ang=[5.0, 10.0, 6.0], lateral_min_ang=8.0,
                                 vacuum_ang=12.0, lipon_from=tmp_path / "glass.extxyz")
    assert np.allclose(rep["lateral_cell_ang"], report["lateral_cell_ang"], atol=1e-6)
    assert rep["stack"][0]["strain_pct"] == pytest.approx(report["stack"][0]["strain_pct"])
    assert _region_counts(atoms, "lipon") == Counter(glass.get_chemical_symbols())


def test_lixcoo2_substrate_keeps_its_li_fraction():
    atoms, report = build_interface("lipon,licoo2:104:x=0.5", thickness_ang=[9.0, 6.0], lateral_min_ang=8.0)
    counts = _region_counts(atoms, "licoo2")
    assert counts["Li"] / counts["Co"] == pytest.approx(0.5)
    assert report["stack"][1]["li_fraction"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("stack", "kwargs", "message"),
    [
        ("li:100,lipon", {"thickness_ang": [3.0, 10.0]}, "less than two layers"),
        ("li:100,lipon", {"thickness_ang": [6.0, 5.0]}, "two layers of phosphate units"),
        ("li:100,lipon", {"thickness_ang": [6.0, 10.0], "gap_ang": 0.2, "lateral_min_ang": 7.0}, "overlap"),
        ("li:100,li3po4:010", {"lateral_min_ang": 10.0}, "larger lateral size"),
        ("li:100,li3po4:010", {"lateral_min_ang": 10.0, "strained_phase": "li2s"}, "not a crystal of this stack"),
        ("li:100,lipon", {"lateral_min_ang": -3.0}, "lateral_min_ang"),
        ("li:100,lipon", {"vacuum_ang": 0.0}, "vacuum_ang"),
        ("li:100,li2o", {"lipon_from": "x.extxyz"}, "needs a glass phase"),
    ],
)
def test_bad_input_gives_one_clear_error(stack, kwargs, message):
    with pytest.raises(StructureError, match=message):
        build_interface(stack, **kwargs)


@pytest.mark.slow
def test_1500_atom_full_cell_builds_in_under_a_minute():
    start = time.perf_counter()
    atoms, report = build_interface("li:100,lipon,licoo2:104", thickness_ang=[12.0, 20.0, 15.0],
                                    lateral_min_ang=16.0, vacuum_ang=15.0)
    wall = time.perf_counter() - start
    print(f"\n{len(atoms)}-atom Li/LiPON/LCO cell built in {wall:.1f} s")
    assert 1300 <= len(atoms) <= 1700
    assert wall < 60.0
    assert [e["region"] for e in report["stack"]] == ["li", "lipon", "licoo2"]
