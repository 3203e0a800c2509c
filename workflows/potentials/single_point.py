"""Single-point evaluation of a structure with a potential (``tfbsim potential eval``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from ..provenance import provenance, utc_now
from .config import PotentialConfig
from .factory import check_coverage, load_potential

__all__ = ["evaluate"]


def evaluate(
    atoms: Atoms,
    model: str | PotentialConfig | Mapping[str, Any] | Calculator,
    *,
    device: str | None = None,
    dtype: str | None = None,
    allow_download: bool | None = None,
) -> dict[str, Any]:
    """Energy, forces and (for periodic cells) stress of ``atoms``.

    Parameters
    ----------
    atoms
        Structure; not modified.
    model
        Potential spec or :class:`~tfbsim.workflows.potentials.config.PotentialConfig` for
        :func:`~tfbsim.workflows.potentials.factory.load_potential`, or a calculator from it.
    device, dtype, allow_download
        Passed to the factory when ``model`` is a spec string (defaults ``auto``, ``float64``, no download);
        with a configuration, set them in it.

    Returns
    -------
    dict
        ``energy_ev``, ``energy_per_atom_ev``, ``max_force_ev_ang``, ``stress_gpa`` (Voigt xx yy zz yz xz xy,
        ``None`` without a 3-D periodic cell), ``n_atoms``, ``elements``, ``provenance``.
    """
    started = utc_now()
    if isinstance(model, Calculator):
        calc = model
    elif isinstance(model, str):
        calc = load_potential(model, device=device, dtype=dtype or "float64", allow_download=allow_download)
    else:
        calc = load_potential(model, device=device, dtype=dtype, allow_download=allow_download)
    check_coverage(calc, atoms)
    work = atoms.copy()
    work.calc = calc
    energy = float(work.get_potential_energy())
    forces = work.get_forces()
    stress = None
    if work.pbc.all() and work.cell.rank == 3:
        stress = (work.get_stress(voigt=True) / units.GPa).tolist()
    return {
        "energy_ev": energy,
        "energy_per_atom_ev": energy / len(work),
        "max_force_ev_ang": float(np.linalg.norm(forces, axis=1).max()) if len(work) else 0.0,
        "stress_gpa": stress,
        "n_atoms": len(work),
        "elements": sorted(set(work.get_chemical_symbols())),
        "provenance": provenance(calc=calc, started_utc=started),
    }
