"""Bond-angle distributions: ideal tetrahedron, periodic wrap, crystal vs ASE get_angles, normalisation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from tfbsim.analysis.bond_angles import BondAngles, parse_triplets
from tfbsim.errors import ConfigError
from tfbsim.structures.crystals import build_crystal

TETRA = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)


def po4(centre, rotation=None, pbc=True) -> Atoms:
    vecs = 1.54 * (TETRA if rotation is None else rotation.apply(TETRA))
    return Atoms("PO4", positions=np.vstack([centre, centre + vecs]), cell=[10.0] * 3, pbc=pbc)


def test_ideal_tetrahedron_gives_109_47_also_across_the_boundary():
    rot = Rotation.random(random_state=7)
    for atoms in (po4(np.array([5.0, 5.0, 5.0])), po4(np.array([0.2, 9.9, 0.1]), rot)):
        atoms.wrap()
        res = BondAngles(atoms, triplets=["O-P-O"], bin_width_deg=0.5).run().results
        assert res.count["O-P-O"] == 6
        assert res.mean_deg["O-P-O"] == pytest.approx(np.degrees(np.arccos(-1 / 3)), abs=1e-6)
        assert res.mode_deg["O-P-O"] == pytest.approx(109.25, abs=0.3)
        assert res.std_deg["O-P-O"] == pytest.approx(0.0, abs=1e-4)


def test_li2po2n_angles_match_ase_get_angles_and_are_normalised():
    atoms = build_crystal("li2po2n") * (2, 2, 2)
    atoms.rattle(0.05, seed=1)
    res = BondAngles(atoms, bin_width_deg=0.5).run().results
    # independent reference: ASE neighbour list + get_angles (minimum image) over every P or N centre
    from ase.neighborlist import neighbor_list

    i, j = neighbor_list("ij", atoms, {("P", "O"): 2.0, ("P", "N"): 2.0})
    sym = np.array(atoms.get_chemical_symbols())
    ref = {"O-P-O": [], "P-N-P": [], "N-P-O": []}
    for centre in np.unique(i):
        neigh = j[i == centre]
        for a, c in itertools.combinations(neigh, 2):
            key = {("O", "P", "O"): "O-P-O", ("P", "N", "P"): "P-N-P", ("N", "P", "O"): "N-P-O",
                   ("O", "P", "N"): "N-P-O"}.get((sym[a], sym[centre], sym[c]))
            if key:
                ref[key].append(atoms.get_angle(a, centre, c, mic=True))
    for key, values in ref.items():
        assert res.count[key] == len(values) > 0, key
        assert res.mean_deg[key] == pytest.approx(np.mean(values), abs=1e-6), key
        assert np.sum(res.density[key]) * 0.5 == pytest.approx(1.0)
    assert res.count["P-O-P"] == 0 and np.isnan(res.mean_deg["P-O-P"])
    assert 115 < res.mode_deg["P-N-P"] < 135  # chains of corner-sharing tetrahedra
    assert res.cutoffs_ang == {"P-O": 2.0, "P-N": 2.0}


def test_bad_triplet_is_one_clear_error():
    with pytest.raises(ConfigError, match="END-CENTRE-END"):
        parse_triplets(["O-P"])
    with pytest.raises(ConfigError, match="unknown element"):
        parse_triplets(["O-Xx-O"])
