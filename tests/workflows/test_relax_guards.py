"""relax refuses overlapping atoms and stops on non-finite energies/forces (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from tfbsim.errors import SimulationUnstable, StructureError
from tfbsim.workflows.md.relax import relax


class _NaNAfter(Calculator):
    """EMT that returns NaN forces from its ``n``-th evaluation on."""

    implemented_properties = ["energy", "forces", "free_energy", "stress"]

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.calls, self.emt = n, 0, EMT()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        work = self.atoms.copy()
        work.calc = self.emt
        self.results = {"energy": work.get_potential_energy(), "free_energy": work.get_potential_energy(),
                        "forces": work.get_forces(), "stress": work.get_stress()}
        if self.calls >= self.n:
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


def _rattled():
    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.1, seed=1)
    return atoms


def test_overlapping_atoms_are_refused():
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [0.05, 0, 0]], cell=[8, 8, 8], pbc=True)
    with pytest.raises(StructureError, match=r"0\.050 Å apart"):
        relax(atoms, EMT(), cell=False)


def test_nan_forces_at_the_start_are_an_error():
    with pytest.raises(StructureError, match="non-finite forces"):
        relax(_rattled(), _NaNAfter(1), cell=False)


def test_nan_forces_during_the_relaxation_stop_it():
    with pytest.raises(SimulationUnstable, match="non-finite forces") as info:
        relax(_rattled(), _NaNAfter(4), cell=False, fmax_ev_ang=1e-6)
    assert info.value.diagnostic["guard"] == "non_finite" and info.value.diagnostic["step"] >= 1


def test_a_healthy_relaxation_still_converges():
    result = relax(_rattled(), EMT(), cell=False, fmax_ev_ang=0.05)
    assert result.converged and result.max_force_ev_ang < 0.05
