"""Li3PO4 among the interphase products: γ-Li3PO4 is told apart from LiPON (issue 22)."""

from __future__ import annotations

import numpy as np

from tfbsim.analysis.interphase import Interphase, li3po4_phosphorus
from tfbsim.structures.amorphous import build_lipon
from tfbsim.structures.crystals import build_crystal
from tfbsim.structures.io import set_region


def _li3po4_p(atoms):
    ia = Interphase(atoms, axis="z", bin_ang=1.0)
    env = ia.atom_environments(atoms)
    return li3po4_phosphorus(atoms.positions, atoms.cell.array, atoms.pbc, np.array(atoms.get_chemical_symbols()),
                             env, ia.settings.cutoffs_ang)


def test_gamma_li3po4_is_li3po4_and_lipon_glass_is_not():
    gamma = build_crystal("li3po4", supercell=(1, 2, 2))
    n_p = int((np.array(gamma.get_chemical_symbols()) == "P").sum())
    assert len(_li3po4_p(gamma)) == n_p  # every P of the crystal
    for seed in (1, 2, 3):
        glass = build_lipon("Li2.94PO3.50N0.31", 300, seed=seed)
        n_p = int((np.array(glass.get_chemical_symbols()) == "P").sum())
        assert len(_li3po4_p(glass)) <= 0.05 * n_p  # LiPON's PO4 units are LiPON, not Li3PO4


def test_li3po4_formula_units_in_the_census_and_by_region():
    gamma = set_region(build_crystal("li3po4", supercell=(1, 2, 2)), "product")
    glass = set_region(build_lipon("Li2.94PO3.50N0.31", 300, seed=1), "lipon")
    for atoms, expected in ((gamma, 16), (glass, 0)):  # seed 1: no false positive
        data = Interphase(atoms, axis="z", bin_ang=1.0).run().results.to_dict()
        assert data["formula_units"]["Li3PO4"] == expected
        region = set(atoms.arrays["region"]).pop()
        assert data["formula_units_by_region"][region]["Li3PO4"] == expected
