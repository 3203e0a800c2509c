"""Small shared pieces of the MD tests: test calculators and structures."""

from __future__ import annotations

import time

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT


class TestEMT(EMT):
    """EMT that can crash at its n-th evaluation (a stand-in for a killed job), be slow, or go bad.

    Parameters
    ----------
    crash_at
        Raise ``RuntimeError`` at this evaluation (1-based).
    sleep_s
        Sleep this long in every evaluation (to make a subprocess slow enough to kill).
    nan_at, kick_at
        From this evaluation on, return NaN forces / add a 500 eV/Å force on atom 0.
    """

    __test__ = False  # not a pytest class
    implemented_properties = EMT.implemented_properties

    def __init__(self, crash_at=None, sleep_s=0.0, nan_at=None, kick_at=None):
        super().__init__()
        self.crash_at, self.sleep_s, self.nan_at, self.kick_at = crash_at, sleep_s, nan_at, kick_at
        self.n_calls = 0
        self.parameters.update(elements=["Cu", "Al", "Ni", "Ag", "Au", "Pd", "Pt"], spec="test-emt", kind="test")

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        from ase.calculators.calculator import all_changes

        self.n_calls += 1
        if self.crash_at is not None and self.n_calls >= self.crash_at:
            raise RuntimeError("simulated crash")
        if self.sleep_s:
            time.sleep(self.sleep_s)
        super().calculate(atoms, list(properties), all_changes if system_changes is None else system_changes)
        if self.nan_at is not None and self.n_calls >= self.nan_at:
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)
        if self.kick_at is not None and self.n_calls >= self.kick_at:
            forces = self.results["forces"].copy()
            forces[0] += 500.0
            self.results["forces"] = forces


def cu_small(seed: int = 1) -> Atoms:
    """8-atom fcc Cu (2×2×2 primitive cells), rattled."""
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    atoms.rattle(0.05, seed=seed)
    return atoms


def cu_cubic(n: int = 2) -> Atoms:
    """Conventional fcc Cu, n×n×n (32 atoms for n = 2) at the EMT lattice constant."""
    return bulk("Cu", "fcc", a=3.59, cubic=True) * n
