"""Termination reports of slab cuts: stoichiometry, symmetry, dipole, broken polyhedra; Tasker-III compensation.

:class:`Termination` is the report :func:`tfbsim.structures.slabs.slab_terminations` lists for every cut of a
facet. :func:`analyse` computes it for a slab in standard orientation (c ∥ z, lowest atom at z = 0), with formal
charges from :func:`charges_for` and the polyhedron coordination from :func:`coordination`; :func:`preference`
orders the reports (the smallest key is the recommended one). :func:`compensate_polar` makes a stoichiometric
polar slab non-polar by moving half of an outer atomic plane to the other surface (Tasker III).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms

from .crystal_data import CRYSTALS, FORMAL_CHARGES
from .slab_cell import area_ang2, is_z_symmetric, place, planes

__all__ = ["Termination"]

logger = logging.getLogger(__name__)

#: Polyhedron formers and their ligand cut-offs (Å) for the broken-polyhedra count.
_FORMERS = {"P": (("O", "N"), 1.9), "Co": (("O",), 2.3)}
_POLAR_TOL_E_ANG = 0.05


@dataclass(frozen=True)
class Termination:
    """One termination of a facet (all lengths in Å, charges in e).

    Attributes
    ----------
    index
        Position in the list returned by :func:`~tfbsim.structures.slabs.slab_terminations` (pass it as
        ``termination``).
    shift
        pymatgen's termination shift (fraction of the oriented cell along the normal).
    stoichiometric
        Slab composition equals the bulk's (reduced formula).
    symmetric
        A symmetry operation of the slab swaps top and bottom (spglib, 0.1 Å tolerance).
    polar
        ``|dipole_e_ang| > 0.05`` e·Å.
    dipole_e_ang
        Σ qᵢ (zᵢ − z_mid) with formal charges (e·Å) for the minimal lateral cell.
    dipole_per_area_e_per_ang
        ``dipole_e_ang / area_ang2`` (e/Å), comparable across cells.
    net_charge_e
        Σ qᵢ (non-zero for non-stoichiometric ionic slabs).
    area_ang2
        Lateral area of the minimal cell (Å²).
    n_layers
        Atomic planes along the normal (atoms within 0.2 Å grouped).
    n_atoms
        Atoms in the minimal cell.
    thickness_ang
        Distance between the outermost atom centres.
    formula
        Slab composition.
    top, bottom
        Composition of the outermost atomic plane on each side.
    broken_polyhedra
        PO4/PO2N2 or CoO6 units that lost ligands compared with the bulk.
    broken_bonds
        Ligands those units lost in total (P–O/N, Co–O bonds cut by the surface).
    bonds_kept
        Bond types that no termination was allowed to cut (empty: none could be kept).
    reconstruction
        Empty for a plain cut; otherwise how the termination was compensated (Tasker III).
    recommended
        The termination :func:`~tfbsim.structures.slabs.make_slab` picks by default.
    """

    index: int
    shift: float
    stoichiometric: bool
    symmetric: bool
    polar: bool
    dipole_e_ang: float
    dipole_per_area_e_per_ang: float
    net_charge_e: float
    area_ang2: float
    n_layers: int
    n_atoms: int
    thickness_ang: float
    formula: str
    top: str
    bottom: str
    broken_polyhedra: int
    broken_bonds: int
    bonds_kept: list[str]
    reconstruction: str = ""
    recommended: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)


# ------------------------------------------------------------------------------------------- helpers
def charges_for(bulk: Atoms) -> dict[str, float]:
    """Formal charge (e) of each element of ``bulk`` (phase oxidation states, else defaults; 0 if unknown)."""
    spec = CRYSTALS.get(str(bulk.info.get("tfbsim_name", "")))
    charges = dict(FORMAL_CHARGES)
    if spec is not None:
        charges.update(spec.oxidation_states)
    elements = set(bulk.get_chemical_symbols())
    total = sum(charges.get(s, 0) for s in bulk.get_chemical_symbols())
    if spec is None and (not elements <= set(charges) or total != 0):
        logger.info("no formal charges for %s; dipoles are reported as 0", sorted(elements))
        return {s: 0.0 for s in elements}
    return {s: float(charges.get(s, 0)) for s in elements}


def _formula(symbols: Sequence[str]) -> str:
    return Atoms(list(symbols)).get_chemical_formula(mode="hill")


def coordination(atoms: Atoms, pbc: Sequence[bool]) -> dict[str, np.ndarray]:
    """Ligands of each polyhedron former (P, Co) within its cut-off, per former element (one count per atom)."""
    from ase.neighborlist import neighbor_list

    work = atoms.copy()
    work.pbc = pbc
    symbols = np.array(work.get_chemical_symbols())
    out: dict[str, np.ndarray] = {}
    for former, (ligands, cutoff) in _FORMERS.items():
        idx = np.flatnonzero(symbols == former)
        if len(idx) == 0:
            continue
        i, j = neighbor_list("ij", work, cutoff)
        mask = np.isin(symbols[j], ligands)
        counts = np.bincount(i[mask], minlength=len(work))
        out[former] = counts[idx]
    return out


# ------------------------------------------------------------------------------------------- reports
def analyse(
    atoms: Atoms,
    *,
    index: int,
    shift: float,
    charges: dict[str, float],
    bulk_comp,
    bulk_cn: dict[str, int],
    kept: dict,
    reconstruction: str = "",
) -> Termination:
    """Termination report of a slab (lowest atom at z = 0, c ∥ z)."""
    from pymatgen.core import Composition

    z = atoms.positions[:, 2]
    symbols = np.array(atoms.get_chemical_symbols())
    dipole = _dipole(atoms, charges)
    layers = planes(z)
    cn = coordination(place(atoms, 10.0), (True, True, False))
    deficit = {k: np.clip(bulk_cn.get(k, 0) - v, 0, None) for k, v in cn.items()}
    area = area_ang2(atoms)
    q = float(sum(charges.get(s, 0.0) for s in symbols))
    return Termination(
        index=index,
        shift=round(float(shift), 6),
        stoichiometric=bool(Composition(atoms.get_chemical_formula()).reduced_composition.almost_equals(bulk_comp)),
        symmetric=is_z_symmetric(atoms),
        polar=abs(dipole) > _POLAR_TOL_E_ANG,
        dipole_e_ang=round(dipole, 6),
        dipole_per_area_e_per_ang=round(dipole / area, 8),
        net_charge_e=round(q, 6),
        area_ang2=round(area, 6),
        n_layers=len(layers),
        n_atoms=len(atoms),
        thickness_ang=round(float(z.max() - z.min()), 6),
        formula=atoms.get_chemical_formula(mode="hill"),
        top=_formula(symbols[layers[-1]]),
        bottom=_formula(symbols[layers[0]]),
        broken_polyhedra=int(sum(np.count_nonzero(v) for v in deficit.values())),
        broken_bonds=int(sum(v.sum() for v in deficit.values())),
        bonds_kept=sorted(f"{a}-{b}" for a, b in kept),
        reconstruction=reconstruction,
    )


def _dipole(atoms: Atoms, charges: dict[str, float]) -> float:
    """Σ qᵢ (zᵢ − z_mid) with formal charges (e·Å); z_mid is the middle of the atom-centre extent."""
    z = atoms.positions[:, 2]
    q = np.array([charges.get(s, 0.0) for s in atoms.get_chemical_symbols()])
    return float(np.sum(q * (z - 0.5 * (z.max() + z.min()))))


def preference(t: Termination) -> tuple:
    """Sort key: symmetric+stoichiometric first, then stoichiometric, few cut bonds, small dipole."""
    return (
        not (t.symmetric and t.stoichiometric),
        not t.stoichiometric,
        t.broken_bonds,
        round(abs(t.dipole_per_area_e_per_ang), 4),
        not t.symmetric,
        t.n_atoms,
        t.index,
    )


# ------------------------------------------------------------------------------------- compensation
def _same_site(atoms: Atoms, points: np.ndarray, numbers: np.ndarray, tol: float = 0.05) -> bool:
    """Whether every point coincides (modulo the in-plane lattice) with an atom of the same species."""
    inv = np.linalg.inv(np.asarray(atoms.cell[:]))
    for point, number in zip(points, numbers, strict=True):
        same = atoms.positions[atoms.numbers == number]
        frac = (same - point) @ inv
        frac[:, :2] -= np.rint(frac[:, :2])
        if np.min(np.linalg.norm(frac @ atoms.cell[:], axis=1)) > tol:
            return False
    return True


def _repeat_vector(atoms: Atoms, d_ang: float, tol: float = 0.05) -> np.ndarray | None:
    """Bulk translation T (z component = repeat distance d) that maps the slab's upper part onto itself."""
    z = atoms.positions[:, 2]
    top = int(np.argmax(z))
    upper = z >= z.min() + d_ang - tol
    for j in np.flatnonzero((atoms.numbers == atoms.numbers[top]) & (np.abs(z[top] - z - d_ang) < tol)):
        vec = atoms.positions[top] - atoms.positions[j]
        if _same_site(atoms, atoms.positions[upper] - vec, atoms.numbers[upper], tol):
            return vec
    return None


def _too_close(atoms: Atoms, moved: list[int], min_dist_ang: float = 1.0) -> bool:
    """Whether a moved atom sits closer than ``min_dist_ang`` to any other atom (in-plane periodic)."""
    from ase.geometry import get_distances

    others = np.setdiff1d(np.arange(len(atoms)), moved)
    _, dist = get_distances(
        atoms.positions[moved], atoms.positions[others], cell=atoms.cell, pbc=[True, True, False]
    )
    return bool(dist.min() < min_dist_ang) if dist.size else False


_LATERAL_OPTIONS = ((1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (1, 3), (4, 1), (1, 4))


def compensate_polar(atoms: Atoms, d_ang: float, charges: dict[str, float]) -> tuple[Atoms, str] | None:
    """Tasker-III compensation of a polar stoichiometric slab: move half of an outer plane to the other side.

    The moved atoms go to the positions the bulk would have there (translation by the repeat vector), so
    the composition stays stoichiometric. Tried for lateral cells up to 4× the minimal one; the first with a
    vanishing dipole wins (symmetric solutions preferred). Returns ``None`` if nothing cancels the dipole.
    """
    vec = _repeat_vector(atoms, d_ang)
    if vec is None:
        return None
    z = atoms.positions[:, 2]
    n_repeats = int(np.floor((z.max() - z.min()) / vec[2] + 1e-6)) + 1  # top plane -> just below the bottom
    for m1, m2 in _LATERAL_OPTIONS:
        sup = atoms.repeat((m1, m2, 1)) if (m1, m2) != (1, 1) else atoms.copy()
        layers = planes(sup.positions[:, 2])
        found: list[tuple[tuple[bool, int, float], Atoms, str]] = []
        for side, plane, shift in (("top", layers[-1], -n_repeats * vec), ("bottom", layers[0], n_repeats * vec)):
            if len(plane) % 2:
                continue
            for combo in itertools.islice(itertools.combinations(plane.tolist(), len(plane) // 2), 400):
                trial = sup.copy()
                trial.positions[list(combo)] += shift
                dip = _dipole(trial, charges)
                if abs(dip) > _POLAR_TOL_E_ANG or _too_close(trial, list(combo)):
                    continue
                trial.positions[:, 2] -= trial.positions[:, 2].min()
                sym = is_z_symmetric(trial)
                label = (
                    f"half of the {side} plane ({_formula(sup.get_chemical_symbols()[i] for i in plane)}) moved "
                    f"to the other surface (Tasker III), lateral cell {m1}x{m2}"
                )
                n_species = len({sup.numbers[i] for i in combo})  # moving one species is the usual Tasker fix
                found.append(((not sym, n_species, round(abs(dip), 3)), trial, label))
                if sym:
                    break
        if found:
            _, best, label = min(found, key=lambda f: f[0])
            return best, label
    return None
