"""Vacancy-hop NEB: end points, a symmetric hop's band, and the reference energies along the same path."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from tfbsim.errors import ConfigError
from tfbsim.workflows.protocols.li_hop_neb import path_energies, run_neb, vacancy_hop


def _cu():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.info["tfbsim_name"] = "cu"
    return atoms


def test_vacancy_hop_end_points_move_one_atom_into_the_vacancy():
    initial, final, info = vacancy_hop(_cu(), supercell=(2, 2, 2), species="Cu")
    assert len(initial) == len(final) == 31
    moved = np.linalg.norm(final.positions - initial.positions, axis=1)
    assert (moved > 1e-9).sum() == 1 and moved.max() == pytest.approx(3.61 / np.sqrt(2))  # fcc nearest neighbour
    assert info["hop_ang"] == pytest.approx(3.61 / np.sqrt(2))


def test_symmetric_hop_band_is_symmetric_and_path_energies_agree():
    initial, final, info = vacancy_hop(_cu(), supercell=(2, 2, 2), species="Cu")
    result = run_neb(initial, final, EMT(), n_images=3, fmax_ev_ang=0.05, info=info)
    e = np.array(result.energies_ev)
    assert result.converged
    assert result.delta_e_ev == pytest.approx(0.0, abs=2e-3)  # equivalent sites
    assert e[2] == pytest.approx(e.max()) and e == pytest.approx(e[::-1], abs=5e-3)  # saddle in the middle
    assert 0.3 < result.barrier_ev < 1.5  # EMT's Cu vacancy barrier is ~0.7 eV-scale, far from 0
    again = path_energies(result.images, EMT())  # the same calculator along the same path: the same barrier
    assert again["barrier_ev"] == pytest.approx(result.barrier_ev, abs=1e-6)


def test_bad_requests_say_what_to_change():
    with pytest.raises(ConfigError, match="neighbour"):
        vacancy_hop(_cu(), supercell=(2, 2, 2), species="Cu", neighbour=99)
    with pytest.raises(ConfigError, match="fewer than two Li"):
        vacancy_hop(_cu(), supercell=(2, 2, 2))
    initial, final, _ = vacancy_hop(_cu(), supercell=(2, 2, 2), species="Cu")
    with pytest.raises(ConfigError, match="interior images"):
        run_neb(initial, final, EMT(), n_images=1)
