"""FIRE relaxation: recovers the EMT lattice constant; fixed atoms stay; z-only cell relaxation keeps a, b."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from tfbsim.errors import ConfigError
from tfbsim.workflows.potentials.factory import load_potential
from tfbsim.workflows.md.relax import relax


def _emt_lattice_constant() -> float:
    """Independent reference: minimise E(a) of fcc Cu with EMT by a parabola through a fine scan."""
    a_values = np.linspace(3.55, 3.65, 21)
    energies = []
    for a in a_values:
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
    c = np.polyfit(a_values, energies, 2)
    return -c[1] / (2 * c[0])


def test_cell_relaxation_finds_emt_lattice_constant():
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    result = relax(atoms, load_potential("emt"), fmax_ev_ang=1e-4, max_steps=500)
    assert result.converged
    a = result.atoms.cell.lengths()[0]
    assert a == pytest.approx(_emt_lattice_constant(), abs=2e-3)
    assert result.cell_change_pct[0] == pytest.approx(100 * (a / 3.7 - 1), abs=1e-6)
    assert result.energy_final_ev < result.energy_initial_ev
    assert atoms.cell.lengths()[0] == pytest.approx(3.7)  # input untouched


def test_fixed_atoms_stay_and_z_only_keeps_lateral_cell():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=3)
    fixed = np.zeros(len(atoms), bool)
    fixed[:4] = True
    atoms.arrays["fixed"] = fixed
    atoms.set_cell(atoms.cell * [1.0, 1.0, 1.05], scale_atoms=True)
    result = relax(atoms, load_potential("emt"), fmax_ev_ang=0.01, cell_axes="z", max_steps=300)
    # with a cell filter, fixed atoms follow the cell's affine deformation: fixed *fractional* coordinates
    np.testing.assert_allclose(result.atoms.get_scaled_positions()[:4], atoms.get_scaled_positions()[:4], atol=1e-9)
    assert not np.allclose(result.atoms.get_scaled_positions()[4:], atoms.get_scaled_positions()[4:])
    np.testing.assert_allclose(result.atoms.cell.lengths()[:2], atoms.cell.lengths()[:2])
    assert result.atoms.cell.lengths()[2] < atoms.cell.lengths()[2]
    # fixed cell: fixed atoms keep their Cartesian positions
    still = relax(atoms, load_potential("emt"), fmax_ev_ang=0.01, cell=False, max_steps=100)
    np.testing.assert_allclose(still.atoms.positions[:4], atoms.positions[:4])


def test_bad_settings():
    with pytest.raises(ConfigError):
        relax(bulk("Cu"), load_potential("emt"), fmax_ev_ang=0)
