"""Slabs of the literature crystals: enumerate terminations, report their polarity, build one with z as normal.

:func:`slab_terminations` lists every distinct termination pymatgen's ``SlabGenerator`` finds for a facet
(keeping P–O/P–N and Co–O polyhedra intact where the facet allows) with what matters for an interface model:
stoichiometric?, symmetric?, dipole along the normal (e·Å, formal charges), area, atomic planes, broken
polyhedra. Stoichiometric but polar terminations are also offered in a Tasker-III compensated form (half of
an outer atomic plane moved to the other surface), which is how LiCoO2 (003), Li2S (100) or Li3N (001) become
non-polar. :func:`make_slab` builds the preferred one (symmetric + stoichiometric, else stoichiometric with the
smallest dipole, ...) or the one you name, as an :class:`ase.Atoms` with:

- the surface normal along z, the cell's c axis perpendicular to the surface, a along x;
- the lateral cell Gauss-reduced and, where a small supercell (≤ ``max_orthogonal_multiplier`` × area)
  allows, rectangular; optionally repeated to ``min_lateral_ang``;
- atoms from ``z = vacuum_ang/2`` to ``vacuum_ang/2 + thickness_ang`` and cell height
  ``thickness_ang + vacuum_ang``.

Bare slabs for stacking
-----------------------
``vacuum_ang=0`` gives the bare slab: atoms from z = 0 to ``info["thickness_ang"]`` and a cell exactly that
tall. It is meant for the interface builders, which add their own gaps; it is *not* a sensible periodic
structure on its own (top and bottom planes of neighbouring images coincide). :func:`set_vacuum` changes the
vacuum of any slab afterwards and :func:`repeat_lateral` repeats a slab to a minimum lateral size.

Miller indices refer to the conventional cell of the phase (hexagonal cell for LiCoO2, Li3N, Li3P; four-index
``h k i l`` is accepted). ``info["supercell"]`` of a repeated bulk is taken into account.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..errors import StructureError
from .io import set_region
from .slab_cell import (
    area_ang2,
    check_lengths,
    lateral_transform,
    place,
    repeat_lateral,
    repeat_to,
    set_vacuum,
    standardise,
)
from .terminations import Termination, analyse, charges_for, compensate_polar, coordination, preference

__all__ = ["Termination", "slab_terminations", "make_slab", "set_vacuum", "repeat_lateral", "normalise_miller"]

logger = logging.getLogger(__name__)

#: Bonds that must not be cut, tried in order (first set that leaves at least one termination wins).
_BOND_SETS: tuple[dict[tuple[str, str], float], ...] = (
    {("P", "O"): 1.8, ("P", "N"): 1.9, ("Co", "O"): 2.2},
    {("P", "O"): 1.8, ("P", "N"): 1.9},
    {},
)


# ----------------------------------------------------------------------------------------- validation
def normalise_miller(miller: Sequence[int]) -> tuple[int, int, int]:
    """Validate Miller indices (3 integers, or 4 as h k i l with i = −(h+k)); divide by their gcd.

    Raises
    ------
    StructureError
        Not integers, wrong length, inconsistent ``i``, or all zero.
    """
    try:
        values = [int(v) for v in miller]
    except (TypeError, ValueError):
        raise StructureError(f"Miller indices must be integers, e.g. 1 0 4; got {miller!r}") from None
    if any(float(v) != float(w) for v, w in zip(values, miller, strict=True)):
        raise StructureError(f"Miller indices must be integers, e.g. 1 0 4; got {tuple(miller)!r}")
    if len(values) == 4:
        h, k, i, l = values  # noqa: E741 - crystallographic name
        if i != -(h + k):
            raise StructureError(f"four-index Miller-Bravais (h k i l) needs i = -(h+k); got {tuple(values)}")
        values = [h, k, l]
    if len(values) != 3:
        raise StructureError(f"Miller indices need 3 integers (or 4 as h k i l); got {tuple(values)}")
    if not any(values):
        raise StructureError("Miller indices (0 0 0) do not define a plane; give e.g. 1 0 4")
    g = math.gcd(*[abs(v) for v in values])
    return tuple(v // g for v in values)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------- helpers
def _to_pymatgen(atoms: Atoms):
    from pymatgen.core import Lattice, Structure

    lattice = Lattice(np.asarray(atoms.cell[:]))
    return Structure(lattice, atoms.get_chemical_symbols(), atoms.get_scaled_positions())


def _miller_in_cell(bulk: Atoms, hkl: tuple[int, int, int]) -> tuple[int, int, int]:
    """Miller indices of the unit-cell plane ``hkl`` in the basis of a repeated bulk (info['supercell'])."""
    cells = bulk.info.get("supercell")
    if cells is None:
        return hkl
    scaled = [int(h) * int(n) for h, n in zip(hkl, cells, strict=True)]
    g = math.gcd(*[abs(v) for v in scaled])
    return tuple(v // g for v in scaled)  # type: ignore[return-value]


def _primitive_with_miller(structure, hkl: tuple[int, int, int]):
    """Primitive cell of ``structure`` and the Miller indices of plane ``hkl`` in its basis.

    With primitive vectors a'_i = Σ_j P_ij a_j, the plane's indices are h'_i = Σ_j P_ij h_j (scaled to the
    smallest integers). Cutting from the primitive cell gives the smallest surface cell (e.g. LiCoO2 (110)).
    """
    prim = structure.get_primitive_structure(tolerance=0.01)
    if len(prim) == len(structure):
        return structure, hkl
    p = np.asarray(prim.lattice.matrix) @ np.linalg.inv(np.asarray(structure.lattice.matrix))
    h = p @ np.asarray(hkl, dtype=float)
    for scale in range(1, 25):
        cand = h * scale
        if np.allclose(cand, np.rint(cand), atol=1e-4):
            ints = np.rint(cand).astype(int)
            g = math.gcd(*[abs(int(v)) for v in ints])
            return prim, tuple(int(v) // g for v in ints)
    logger.debug("primitive Miller indices not rational for %s; using the given cell", hkl)  # pragma: no cover
    return structure, hkl  # pragma: no cover


# ----------------------------------------------------------------------------------------- enumerate
def _generate(structure, hkl: tuple[int, int, int], size_ang: float, elements: set[str], symmetrize: bool):
    """Pymatgen slabs of ``hkl`` with at least ``size_ang`` of repeat units; keeps polyhedra where possible."""
    from pymatgen.core.surface import SlabGenerator

    gen = SlabGenerator(
        structure,
        hkl,
        min_slab_size=size_ang,
        min_vacuum_size=10.0,
        lll_reduce=True,
        center_slab=False,  # pymatgen's centring is slow (neighbour lists); _slab_atoms unwraps by the vacuum gap
        primitive=True,
        max_normal_search=max(abs(v) for v in hkl),
        reorient_lattice=True,
    )
    for bonds in _BOND_SETS:
        bonds = {k: v for k, v in bonds.items() if set(k) <= elements}
        slabs = gen.get_slabs(bonds=bonds or None, symmetrize=symmetrize, ftol=0.1, tol=0.1)
        if slabs:
            return slabs, bonds
    raise StructureError(f"no termination found for {hkl}; try another facet")  # pragma: no cover


def _slab_atoms(slab) -> Atoms:
    """ASE copy of a pymatgen slab: c ⟂ surface along z, a along x, atoms contiguous from z = 0."""
    ortho = slab.get_orthogonal_c_slab()
    frac = np.array(ortho.frac_coords, dtype=float) % 1.0
    zs = np.sort(frac[:, 2])
    gaps = np.diff(np.concatenate([zs, [zs[0] + 1.0]]))
    start = zs[(int(np.argmax(gaps)) + 1) % len(zs)]  # first atom above the widest (vacuum) gap
    frac[:, 2] = (frac[:, 2] - start) % 1.0
    atoms = Atoms(
        [site.specie.symbol for site in ortho],
        scaled_positions=frac,
        cell=np.asarray(ortho.lattice.matrix),
        pbc=True,
    )
    atoms = standardise(atoms)
    atoms.wrap(pbc=[True, True, False])
    atoms.positions[:, 2] -= atoms.positions[:, 2].min()
    return atoms


@dataclass
class _Candidate:
    report: Termination
    atoms: Atoms  # standard orientation, lowest atom at z = 0


def _enumerate(
    bulk: Atoms, miller: Sequence[int], thickness_ang: float, symmetrize: bool, compensate: bool
) -> list[_Candidate]:
    from pymatgen.core import Composition

    hkl = normalise_miller(miller)
    check_lengths(thickness_ang)
    if len(bulk) == 0 or not np.all(bulk.pbc) or abs(bulk.get_volume()) < 1e-6:
        raise StructureError("bulk must be a 3-D periodic crystal (e.g. from build_crystal)")
    structure, hkl_prim = _primitive_with_miller(_to_pymatgen(bulk), _miller_in_cell(bulk, hkl))
    elements = set(bulk.get_chemical_symbols())
    size = float(thickness_ang)
    for _ in range(4):  # SlabGenerator counts repeat units; grow until the atom extent reaches thickness_ang
        slabs, kept = _generate(structure, hkl_prim, size, elements, symmetrize)
        slabs = sorted(slabs, key=lambda s: float(s.shift))
        slab_atoms = [_slab_atoms(sl) for sl in slabs]
        extent = min(float(np.ptp(a.positions[:, 2])) for a in slab_atoms)
        if extent >= thickness_ang - 1e-6:
            break
        ouc = np.asarray(slabs[0].oriented_unit_cell.lattice.matrix)
        d_ouc = abs(float(np.linalg.det(ouc))) / float(np.linalg.norm(np.cross(ouc[0], ouc[1])))
        size += d_ouc * math.ceil((float(thickness_ang) - extent) / d_ouc - 1e-9)  # whole repeat units only
    context = {
        "charges": charges_for(bulk),
        "bulk_comp": Composition(bulk.get_chemical_formula()).reduced_composition,
        "bulk_cn": {k: int(v.min()) for k, v in coordination(bulk, (True, True, True)).items()},
        "kept": kept,
    }
    candidates: list[_Candidate] = []
    repeat_d: list[float] = []
    for slab, atoms in zip(slabs, slab_atoms, strict=True):
        report = analyse(atoms, index=len(candidates), shift=slab.shift, **context)
        candidates.append(_Candidate(report, atoms))
        ouc = np.asarray(slab.oriented_unit_cell.lattice.matrix)
        repeat_d.append(abs(float(np.linalg.det(ouc))) / float(np.linalg.norm(np.cross(ouc[0], ouc[1]))))
    if compensate:
        for cand, d_ang in list(zip(candidates, repeat_d, strict=True)):
            if not (cand.report.stoichiometric and cand.report.polar):
                continue
            result = compensate_polar(cand.atoms, d_ang, context["charges"])
            if result is not None:
                atoms, label = result
                report = analyse(
                    atoms, index=len(candidates), shift=cand.report.shift, reconstruction=label, **context
                )
                candidates.append(_Candidate(report, atoms))
    best = min(candidates, key=lambda c: preference(c.report))
    best.report = Termination(**{**best.report.to_dict(), "recommended": True})
    return candidates


# -------------------------------------------------------------------------------------------- public
def slab_terminations(
    bulk: Atoms,
    miller: Sequence[int],
    *,
    thickness_ang: float,
    symmetrize: bool = False,
    compensate: bool = True,
) -> list[Termination]:
    """List the distinct terminations of a facet with their stoichiometry, symmetry and dipole.

    Parameters
    ----------
    bulk
        Periodic crystal, e.g. from :func:`~tfbsim.structures.crystals.build_crystal` (conventional cell).
    miller
        Facet (h k l) of the conventional cell (or h k i l).
    thickness_ang
        Minimum slab thickness (Å); the reports give the actual one.
    symmetrize
        Also make both surfaces equivalent by removing atoms (pymatgen ``symmetrize``; usually
        non-stoichiometric).
    compensate
        For each stoichiometric polar termination, also offer its Tasker-III compensated version (half of an
        outer plane moved to the other surface, possibly in a 2–4× lateral cell), listed after the plain ones
        with a ``reconstruction`` note.

    Returns
    -------
    list of Termination
        Plain terminations ordered by pymatgen shift, then compensated ones; exactly one has
        ``recommended=True``. ``to_dict()`` gives JSON.
    """
    return [c.report for c in _enumerate(bulk, miller, thickness_ang, symmetrize, compensate)]


def make_slab(
    bulk: Atoms,
    miller: Sequence[int],
    *,
    thickness_ang: float,
    vacuum_ang: float,
    termination: int | None = None,
    min_lateral_ang: float | None = None,
    fix_bottom_ang: float | None = None,
    orthogonal: bool = True,
    max_orthogonal_multiplier: int = 4,
    symmetrize: bool = False,
    compensate: bool = True,
    return_terminations: bool = False,
) -> Atoms | tuple[Atoms, list[Termination]]:
    """Cut a slab with the surface normal along z.

    Parameters
    ----------
    bulk
        Periodic crystal (conventional cell), e.g. from ``build_crystal``.
    miller
        Facet (h k l) of the conventional cell, e.g. ``(1, 0, 4)`` for LiCoO2 (104).
    thickness_ang
        Minimum slab thickness (Å); ``info["thickness_ang"]`` holds the actual distance between the outermost
        atom centres.
    vacuum_ang
        Vacuum between periodic images along z (Å); 0 gives the bare slab for stacking (see module docs).
    termination
        Index from :func:`slab_terminations`; ``None`` picks the recommended one.
    min_lateral_ang
        Repeat laterally until both in-plane widths are at least this (Å).
    fix_bottom_ang
        Tag atoms within this distance of the lowest atom as ``fixed`` (for a FixAtoms constraint).
    orthogonal
        Make the lateral cell rectangular when a supercell of at most ``max_orthogonal_multiplier`` times the
        minimal area allows; otherwise the Gauss-reduced cell is kept (``info["orthogonal"]`` says which).
    max_orthogonal_multiplier
        Largest area multiplier accepted for a rectangular cell.
    symmetrize, compensate
        Passed to :func:`slab_terminations`.
    return_terminations
        Also return the list of all terminations (saves enumerating twice).

    Returns
    -------
    ase.Atoms
        ``info``: ``tfbsim_name`` (the phase), ``kind`` = ``"slab"``, ``formula``, ``reference``, ``miller``,
        ``termination`` (the chosen :class:`Termination` as a dict), ``n_terminations``, ``area_ang2``,
        ``thickness_ang``, ``n_layers``, ``vacuum_ang``, ``surface_z_ang`` ([bottom, top] atom z),
        ``lateral_repeat``, ``orthogonal``, ``n_fixed``, ``provenance``. ``arrays``: ``region`` (phase name),
        ``fixed`` (bool).

    Raises
    ------
    StructureError
        Bad Miller indices, thickness ≤ 0, vacuum < 0, termination out of range (the message lists them).
    """
    from .. import __version__

    check_lengths(thickness_ang, vacuum_ang)
    for label, value, low in (("min_lateral_ang", min_lateral_ang, 0.0), ("fix_bottom_ang", fix_bottom_ang, None)):
        if value is None:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or (value <= 0 if low is not None else value < 0):
            kind = "positive" if low is not None else "non-negative"
            raise StructureError(f"{label} must be a {kind} length in Å, got {value!r}")
    candidates = _enumerate(bulk, miller, thickness_ang, symmetrize, compensate)
    if termination is None:
        chosen = next(c for c in candidates if c.report.recommended)
    elif (
        isinstance(termination, (bool, np.bool_))
        or not isinstance(termination, (int, np.integer))
        or not 0 <= int(termination) < len(candidates)
    ):
        listing = "; ".join(
            f"{c.report.index}: top {c.report.top}/bottom {c.report.bottom}"
            f"{', stoichiometric' if c.report.stoichiometric else ''}{', symmetric' if c.report.symmetric else ''}"
            f"{', compensated' if c.report.reconstruction else ''}"
            for c in candidates
        )
        raise StructureError(
            f"termination {termination!r} out of range; valid: 0..{len(candidates) - 1} ({listing})"
        )
    else:
        chosen = candidates[int(termination)]
    atoms, is_orth = lateral_transform(chosen.atoms, orthogonal, max_orthogonal_multiplier)
    repeat = [1, 1]
    if min_lateral_ang is not None:
        atoms, repeat = repeat_to(atoms, float(min_lateral_ang))
    atoms = place(atoms, float(vacuum_ang))
    z = atoms.positions[:, 2]
    zmin, zmax = float(z.min()), float(z.max())
    name = str(bulk.info.get("tfbsim_name") or bulk.get_chemical_formula(empirical=True))
    fixed = np.zeros(len(atoms), dtype=bool)
    if fix_bottom_ang is not None:
        fixed = (z - zmin) <= float(fix_bottom_ang) + 1e-9
    hkl = normalise_miller(miller)
    atoms.info.clear()
    atoms.info.update(
        {
            "tfbsim_name": name,
            "kind": "slab",
            "formula": atoms.get_chemical_formula(mode="hill"),
            "reference": bulk.info.get("reference"),
            "miller": list(hkl),
            "termination": chosen.report.to_dict(),
            "n_terminations": len(candidates),
            "area_ang2": area_ang2(atoms),
            "thickness_ang": zmax - zmin,
            "n_layers": chosen.report.n_layers,
            "vacuum_ang": float(vacuum_ang),
            "surface_z_ang": [zmin, zmax],
            "lateral_repeat": list(repeat),
            "orthogonal": is_orth,
            "n_fixed": int(fixed.sum()),
            "provenance": {
                "builder": "tfbsim.structures.slabs.make_slab",
                "tfbsim_version": __version__,
                "parameters": {
                    "bulk": name,
                    "miller": list(hkl),
                    "thickness_ang": float(thickness_ang),
                    "vacuum_ang": float(vacuum_ang),
                    "termination": chosen.report.index,
                    "min_lateral_ang": min_lateral_ang,
                    "fix_bottom_ang": fix_bottom_ang,
                    "orthogonal": orthogonal,
                    "symmetrize": symmetrize,
                    "compensate": compensate,
                },
            },
        }
    )
    set_region(atoms, name)
    atoms.new_array("fixed", fixed)
    logger.info(
        "slab %s (%s) termination %d: %d atoms, %.1f Å thick, area %.1f Å²",
        name, " ".join(map(str, hkl)), chosen.report.index, len(atoms), zmax - zmin, area_ang2(atoms),
    )
    if return_terminations:
        return atoms, [c.report for c in candidates]
    return atoms
