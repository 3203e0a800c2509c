"""Slabs: every facet of issue 3 builds with a reported termination; geometry (normal along z, vacuum, lateral
cell), dipoles recomputed here with formal charges, symmetry cross-checked against pymatgen, errors, CLI."""

from __future__ import annotations

import json
from collections import Counter
from functools import reduce
from math import gcd

import numpy as np
import pytest
from tfbsim.cli import app
from tfbsim.errors import StructureError
from tfbsim.structures.crystals import build_crystal
from tfbsim.structures.io import read_structure
from tfbsim.structures.slab_cell import lateral_widths_ang, repeat_lateral, set_vacuum
from tfbsim.structures.slabs import make_slab, normalise_miller, slab_terminations

CHARGES = {"Li": 1, "Co": 3, "O": -2, "S": -2, "N": -3, "P": 5}
FACETS = [
    ("licoo2", (0, 0, 3)), ("licoo2", (1, 0, 4)), ("licoo2", (1, 1, 0)), ("licoo2", (1, 0, 1)),
    ("li", (1, 0, 0)), ("li", (1, 1, 0)),
    ("li2s", (1, 1, 1)), ("li2s", (1, 1, 0)), ("li2s", (1, 0, 0)),
    ("li3po4", (0, 1, 0)),
    ("li2o", (1, 1, 1)), ("li3n", (0, 0, 1)), ("li3p", (0, 0, 1)),
]


@pytest.fixture(scope="module")
def bulks():
    return {name: build_crystal(name) for name in {n for n, _ in FACETS}}


def _reduced(counter):
    g = reduce(gcd, counter.values())
    return {k: v // g for k, v in counter.items()}


def _dipole(atoms, charges):
    z = atoms.positions[:, 2]
    q = np.array([charges[s] for s in atoms.get_chemical_symbols()])
    return float(np.sum(q * (z - 0.5 * (z.max() + z.min()))))


@pytest.mark.parametrize("name, miller", FACETS, ids=[f"{n}-{''.join(map(str, m))}" for n, m in FACETS])
def test_every_listed_facet_builds_with_a_reported_termination(bulks, name, miller):
    bulk = bulks[name]
    slab, terms = make_slab(bulk, miller, thickness_ang=8.0, vacuum_ang=12.0, return_terminations=True)
    chosen = slab.info["termination"]
    assert len(terms) >= 1 and sum(t.recommended for t in terms) == 1
    assert chosen["recommended"] and chosen["index"] == next(t.index for t in terms if t.recommended)
    # the default is stoichiometric and non-polar for all these facets
    assert chosen["stoichiometric"] and not chosen["polar"]
    assert _reduced(Counter(slab.get_chemical_symbols())) == _reduced(Counter(bulk.get_chemical_symbols()))
    # geometry: a along x, b in xy, c along z, vacuum as asked, atoms inside the cell
    cell = slab.cell[:]
    assert abs(cell[0, 1]) < 1e-8 and abs(cell[0, 2]) < 1e-8 and abs(cell[1, 2]) < 1e-8
    assert np.allclose(cell[2, :2], 0.0)
    z = slab.positions[:, 2]
    assert z.max() - z.min() >= 8.0 - 1e-6
    assert cell[2, 2] - (z.max() - z.min()) == pytest.approx(12.0)
    assert z.min() == pytest.approx(6.0)
    frac = slab.get_scaled_positions(wrap=False)
    assert np.all(frac[:, :2] > -1e-9) and np.all(frac[:, :2] < 1 + 1e-9)
    assert slab.info["thickness_ang"] == pytest.approx(z.max() - z.min())
    assert slab.info["area_ang2"] == pytest.approx(abs(np.linalg.det(cell)) / cell[2, 2])
    assert slab.info["miller"] == list(normalise_miller(miller))
    assert list(slab.arrays["region"]) == [name] * len(slab)
    assert slab.arrays["fixed"].dtype == bool and not slab.arrays["fixed"].any()
    # no atom closer than 1.5 Å to another (no duplicated or overlapping sites)
    from ase.neighborlist import neighbor_list

    assert len(neighbor_list("i", slab, 1.5)) == 0
    # reported dipole per area equals Σ q z recomputed here on the built (repeated) slab
    per_area = _dipole(slab, CHARGES) / slab.info["area_ang2"]
    assert per_area == pytest.approx(chosen["dipole_per_area_e_per_ang"], abs=2e-4)


def test_polar_terminations_and_dipole_values(bulks):
    terms = slab_terminations(bulks["li2o"], (1, 1, 1), thickness_ang=8.0, compensate=False)
    by_top = {(t.top, t.bottom): t for t in terms}
    li_li = by_top[("Li", "Li")]
    assert li_li.symmetric and li_li.stoichiometric and not li_li.polar
    o_li = by_top[("O", "Li")]  # O-Li-Li-O... cut leaving O on top, Li below: polar
    assert o_li.polar and not o_li.symmetric and o_li.net_charge_e == 0
    # LiCoO2 (003) plain cut: Li plane on top, O plane at the bottom -> polar; compensated: half Li on each side
    lco = slab_terminations(bulks["licoo2"], (0, 0, 3), thickness_ang=10.0)
    plain = [t for t in lco if not t.reconstruction]
    comp = [t for t in lco if t.reconstruction]
    assert len(plain) == 1 and plain[0].polar and (plain[0].top, plain[0].bottom) == ("Li", "O")
    assert plain[0].bonds_kept == ["Co-O"] and plain[0].broken_bonds == 0
    assert len(comp) == 1 and comp[0].recommended and comp[0].symmetric and abs(comp[0].dipole_e_ang) < 1e-6
    assert comp[0].area_ang2 == pytest.approx(2 * plain[0].area_ang2)


def test_symmetry_matches_pymatgen(bulks):
    from pymatgen.core.surface import SlabGenerator
    from pymatgen.io.ase import AseAtomsAdaptor

    for name, hkl in [("li2o", (1, 1, 1)), ("li2s", (1, 0, 0)), ("li3p", (0, 0, 1))]:
        ours = slab_terminations(bulks[name], hkl, thickness_ang=8.0, compensate=False)
        gen = SlabGenerator(AseAtomsAdaptor.get_structure(bulks[name]), hkl, 8.0, 10.0, center_slab=True,
                            primitive=True, lll_reduce=True)
        theirs = sorted(gen.get_slabs(), key=lambda s: s.shift)
        assert sorted(t.symmetric for t in ours) == sorted(s.is_symmetric() for s in theirs)


def test_lco_104_cuts_one_co_o_bond_per_surface_co(bulks):
    (term,) = slab_terminations(bulks["licoo2"], (1, 0, 4), thickness_ang=10.0)
    assert term.symmetric and term.stoichiometric and term.bonds_kept == []
    assert term.broken_polyhedra == 2 and term.broken_bonds == 2  # one CoO5 per surface and minimal cell
    # minimal surface cell = primitive volume / d(104); (104) is a lattice plane of the R-centred lattice
    a, c = 2.8156, 14.0542
    d104 = (4 / 3 / a**2 + 16 / c**2) ** -0.5
    v_prim = np.sqrt(3) / 2 * a**2 * c / 3
    assert term.area_ang2 == pytest.approx(v_prim / d104, rel=1e-6)


def test_li3po4_keeps_po4_intact(bulks):
    for t in slab_terminations(bulks["li3po4"], (0, 1, 0), thickness_ang=10.0):
        assert t.bonds_kept == ["P-O"] and t.broken_polyhedra == 0


def test_fix_bottom_lateral_and_vacuum_helpers(bulks):
    slab = make_slab(bulks["li3n"], (0, 0, 1), thickness_ang=8.0, vacuum_ang=10.0, min_lateral_ang=12.0,
                     fix_bottom_ang=2.0)
    z = slab.positions[:, 2] - slab.positions[:, 2].min()
    assert np.array_equal(slab.arrays["fixed"], z <= 2.0 + 1e-9)
    assert 0 < slab.info["n_fixed"] < len(slab)
    assert min(lateral_widths_ang(slab)) >= 12.0
    assert slab.info["orthogonal"]  # hexagonal net -> rectangular supercell
    assert abs(np.dot(slab.cell[0], slab.cell[1])) < 1e-6
    bare = set_vacuum(slab, 0.0)
    assert bare.cell[2, 2] == pytest.approx(bare.info["thickness_ang"])
    assert bare.positions[:, 2].min() == pytest.approx(0)
    again = set_vacuum(bare, 20.0)
    assert again.cell[2, 2] == pytest.approx(slab.info["thickness_ang"] + 20.0)
    assert np.allclose(again.positions - bare.positions, [0, 0, 10.0])
    assert np.array_equal(again.arrays["fixed"], slab.arrays["fixed"])
    big = repeat_lateral(slab, 30.0)
    na, nb = (np.array(big.info["lateral_repeat"]) // np.array(slab.info["lateral_repeat"])).tolist()
    assert len(big) == len(slab) * na * nb and min(lateral_widths_ang(big)) >= 30.0
    assert big.info["area_ang2"] == pytest.approx(slab.info["area_ang2"] * na * nb)
    direct0 = make_slab(bulks["li3n"], (0, 0, 1), thickness_ang=8.0, vacuum_ang=0.0)
    assert direct0.cell[2, 2] == pytest.approx(direct0.info["thickness_ang"])


def test_supercell_bulk_gives_the_same_facet(bulks):
    unit = make_slab(bulks["licoo2"], (1, 0, 4), thickness_ang=8.0, vacuum_ang=10.0)
    sc = make_slab(build_crystal("licoo2", supercell=(2, 1, 1)), (1, 0, 4), thickness_ang=8.0, vacuum_ang=10.0)
    assert sc.info["termination"]["area_ang2"] == pytest.approx(unit.info["termination"]["area_ang2"])
    assert sc.info["thickness_ang"] == pytest.approx(unit.info["thickness_ang"], abs=1e-6)


def test_delithiated_bulk_slab(bulks):
    half = build_crystal("licoo2", supercell=(2, 2, 1), li_fraction=0.5)
    slab = make_slab(half, (0, 0, 3), thickness_ang=10.0, vacuum_ang=10.0)
    counts = Counter(slab.get_chemical_symbols())
    assert counts["Li"] * 2 == counts["Co"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"miller": (0, 0, 0)}, r"\(0 0 0\)"),
        ({"miller": (1, 0, 1, 4)}, "i = -"),
        ({"miller": (1.5, 0, 0)}, "integers"),
        ({"thickness_ang": 0.0}, "thickness_ang"),
        ({"thickness_ang": -3.0}, "thickness_ang"),
        ({"vacuum_ang": -1.0}, "vacuum_ang"),
        ({"min_lateral_ang": 0.0}, "min_lateral_ang"),
        ({"fix_bottom_ang": -1.0}, "fix_bottom_ang"),
    ],
)
def test_bad_input(bulks, kwargs, match):
    args = {"miller": (1, 1, 1), "thickness_ang": 8.0, "vacuum_ang": 10.0, **kwargs}
    with pytest.raises(StructureError, match=match):
        make_slab(bulks["li2s"], args.pop("miller"), **args)


def test_termination_out_of_range_lists_valid_ones(bulks):
    with pytest.raises(StructureError, match=r"termination 7 out of range; valid: 0\.\.1 \(0: top"):
        make_slab(bulks["li2o"], (1, 1, 1), thickness_ang=8.0, vacuum_ang=10.0, termination=7, compensate=False)
    with pytest.raises(StructureError, match="out of range"):
        make_slab(bulks["li2o"], (1, 1, 1), thickness_ang=8.0, vacuum_ang=10.0, termination=-1)


def test_four_index_miller_equals_three_index(bulks):
    assert normalise_miller((1, 0, -1, 4)) == (1, 0, 4)
    assert normalise_miller((0, 0, 3)) == (0, 0, 1)


# ---------------------------------------------------------------------------------------------------- CLI
def test_cli_slab_json(cli_runner, tmp_path):
    xyz, js = tmp_path / "s.extxyz", tmp_path / "s.json"
    result = cli_runner.invoke(app, ["build", "slab", "licoo2", "--miller", "0", "0", "3", "--thickness-ang", "10",
                                     "--vacuum-ang", "15", "--min-lateral-ang", "8", "--fix-bottom-ang", "1.5",
                                     "-o", str(xyz), "--json", str(js)])
    assert result.exit_code == 0, result.output
    data = json.loads(js.read_text())
    for key in ["terminations", "chosen", "area_ang2", "n_atoms", "thickness_ang", "provenance"]:
        assert key in data
    for t in data["terminations"]:
        assert {"index", "stoichiometric", "symmetric", "dipole_e_ang", "area_ang2", "n_layers", "shift"} <= set(t)
    slab = read_structure(xyz)
    assert len(slab) == data["n_atoms"] and slab.arrays["fixed"].sum() == data["n_fixed"] > 0
    assert slab.info["termination"]["index"] == data["chosen"]
    assert np.allclose(slab.cell.lengths()[2], data["thickness_ang"] + 15.0)


def test_cli_slab_from_bulk_file(cli_runner, tmp_path):
    from tfbsim.structures.io import write_structure

    bulk = tmp_path / "lco_half.extxyz"
    write_structure(bulk, build_crystal("licoo2", supercell=(2, 2, 1), li_fraction=0.5))
    out = tmp_path / "slab.extxyz"
    result = cli_runner.invoke(app, ["build", "slab", str(bulk), "--miller", "1", "0", "4", "--thickness-ang", "8",
                                     "--vacuum-ang", "10", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert Counter(read_structure(out).get_chemical_symbols())["Li"] > 0


@pytest.mark.parametrize(
    "args, match",
    [
        (["lipon", "--miller", "1", "0", "0", "--thickness-ang", "8", "--vacuum-ang", "10"], "valid names"),
        (["li", "--miller", "0", "0", "0", "--thickness-ang", "8", "--vacuum-ang", "10"], "(0 0 0)"),
        (["li", "--miller", "1", "0", "0", "--thickness-ang", "0", "--vacuum-ang", "10"], "thickness"),
        (["li", "--miller", "1", "0", "0", "--thickness-ang", "8", "--vacuum-ang", "0"], "vacuum"),
        (["li", "--miller", "1", "0", "0", "--thickness-ang", "8", "--vacuum-ang", "10", "--termination", "3"],
         "valid: 0..0"),
    ],
)
def test_cli_slab_errors_write_nothing(cli_runner, tmp_path, args, match):
    xyz, js = tmp_path / "x.extxyz", tmp_path / "x.json"
    result = cli_runner.invoke(app, ["build", "slab", *args, "-o", str(xyz), "--json", str(js)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith("error:") and match in result.output
    assert not xyz.exists() and not js.exists()
