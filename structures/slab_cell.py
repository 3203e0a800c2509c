"""Cell geometry of slabs: orientation (normal along z), lateral reduction/orthogonalisation, vacuum, repeats.

Public helpers for the interface builders:

- :func:`set_vacuum` — change the vacuum of a slab (``vacuum_ang=0``: bare slab, cell height = thickness);
- :func:`repeat_lateral` — repeat a slab in-plane until both lateral widths reach a minimum;
- :func:`lateral_widths_ang` — perpendicular in-plane widths (the minimum-image limit of a slab cell).

All functions expect (and return) slabs with a ∥ x, b in the xy plane and c ∥ z, as made by
:func:`tfbsim.structures.slabs.make_slab`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..errors import StructureError

__all__ = ["set_vacuum", "repeat_lateral", "lateral_widths_ang", "is_z_symmetric"]

PLANE_TOL_ANG = 0.2  # atoms closer than this along z form one atomic plane


def check_lengths(thickness_ang: float, vacuum_ang: float | None = None) -> None:
    """Raise :class:`StructureError` unless thickness > 0 and (if given) vacuum ≥ 0 (Å)."""
    if isinstance(thickness_ang, bool) or not (
        isinstance(thickness_ang, (int, float)) and math.isfinite(thickness_ang) and thickness_ang > 0
    ):
        raise StructureError(f"thickness_ang must be a positive length in Å (e.g. 12), got {thickness_ang!r}")
    if vacuum_ang is not None and (
        isinstance(vacuum_ang, bool)
        or not (isinstance(vacuum_ang, (int, float)) and math.isfinite(vacuum_ang) and vacuum_ang >= 0)
    ):
        raise StructureError(
            f"vacuum_ang must be >= 0 Å (e.g. 15; 0 gives a bare slab for stacking), got {vacuum_ang!r}"
        )


def standardise(atoms: Atoms) -> Atoms:
    """Copy rotated so that a ∥ x, b in the xy plane (right-handed: a and b swapped if needed)."""
    cell = np.asarray(atoms.cell[:])
    if np.dot(np.cross(cell[0], cell[1]), cell[2]) < 0:
        atoms = atoms.copy()
        atoms.set_cell(cell[[1, 0, 2]], scale_atoms=False)
        cell = np.asarray(atoms.cell[:])
    e1 = cell[0] / np.linalg.norm(cell[0])
    e3 = np.cross(cell[0], cell[1])
    e3 /= np.linalg.norm(e3)
    rot = np.vstack([e1, np.cross(e3, e1), e3])
    new_cell = cell @ rot.T
    new_cell[np.abs(new_cell) < 1e-10] = 0.0
    out = atoms.copy()
    out.set_cell(new_cell, scale_atoms=False)
    out.positions = atoms.positions @ rot.T
    return out


def gauss_reduce(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer 2×2 matrix M (det +1) such that M @ [a, b] is Gauss-reduced (|a| ≤ |b|, |a·b| ≤ |a|²/2)."""
    m = np.eye(2, dtype=int)
    vecs = np.array([a, b], dtype=float)
    for _ in range(100):
        if np.dot(vecs[1], vecs[1]) < np.dot(vecs[0], vecs[0]) - 1e-12:
            vecs = vecs[[1, 0]]
            m = m[[1, 0]]
        q = int(np.rint(np.dot(vecs[0], vecs[1]) / np.dot(vecs[0], vecs[0])))
        if q == 0:
            break
        vecs[1] -= q * vecs[0]
        m[1] -= q * m[0]
    if round(np.linalg.det(m)) < 0:
        m[1] *= -1
    return m


def orthogonal_supercell(a: np.ndarray, b: np.ndarray, max_multiplier: int) -> np.ndarray | None:
    """Smallest-area integer matrix (1 ≤ det ≤ max_multiplier) giving perpendicular in-plane vectors."""
    best: tuple[tuple[float, ...], np.ndarray] | None = None
    for m11, m12, m21, m22 in itertools.product(range(-4, 5), repeat=4):
        det = m11 * m22 - m12 * m21
        if det < 1 or det > max_multiplier:
            continue
        u, v = m11 * a + m12 * b, m21 * a + m22 * b
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        if abs(np.dot(u, v)) > 1e-5 * nu * nv:
            continue
        key = (det, round(max(nu, nv), 6), round(nu + nv, 6), m11 < 0, m22 < 0)
        if best is None or key < best[0]:
            best = (key, np.array([[m11, m12], [m21, m22]]))
    return None if best is None else best[1]


def lateral_transform(atoms: Atoms, orthogonal: bool, max_multiplier: int) -> tuple[Atoms, bool]:
    """Gauss-reduce the in-plane cell, then make it rectangular if a small supercell allows."""
    from ase.build import make_supercell

    cell = np.asarray(atoms.cell[:])
    m2 = gauss_reduce(cell[0, :2], cell[1, :2])
    if orthogonal:
        reduced = m2 @ cell[:2, :2]
        mo = orthogonal_supercell(reduced[0], reduced[1], max_multiplier)
        if mo is not None:
            m2 = mo @ m2
    p = np.eye(3, dtype=int)
    p[:2, :2] = m2
    if not np.array_equal(p, np.eye(3, dtype=int)):
        atoms = make_supercell(atoms, p, wrap=True)
    atoms = standardise(atoms)
    atoms.wrap(pbc=[True, True, False])
    c = atoms.cell[:]
    is_orth = abs(np.dot(c[0], c[1])) < 1e-6 * np.linalg.norm(c[0]) * np.linalg.norm(c[1])
    return atoms, bool(is_orth)


def area_ang2(atoms: Atoms) -> float:
    """In-plane cell area |a × b| (Å²)."""
    return float(np.linalg.norm(np.cross(atoms.cell[0], atoms.cell[1])))


def lateral_widths_ang(atoms: Atoms) -> tuple[float, float]:
    """Perpendicular widths of the in-plane cell (distance between opposite edges, Å): across b, across a."""
    area = area_ang2(atoms)
    return area / float(np.linalg.norm(atoms.cell[1])), area / float(np.linalg.norm(atoms.cell[0]))


def planes(z: np.ndarray) -> list[np.ndarray]:
    """Indices of the atoms in each atomic plane (gap > 0.2 Å along z starts a new one), bottom to top."""
    order = np.argsort(z, kind="stable")
    groups: list[list[int]] = [[int(order[0])]]
    for i in order[1:]:
        if z[i] - z[groups[-1][-1]] > PLANE_TOL_ANG:
            groups.append([])
        groups[-1].append(int(i))
    return [np.array(g) for g in groups]


def place(atoms: Atoms, vacuum_ang: float) -> Atoms:
    """Copy with the lowest atom at z = vacuum/2 and cell height thickness + vacuum (c ∥ z)."""
    z = atoms.positions[:, 2]
    zmin, zmax = float(z.min()), float(z.max())
    out = atoms.copy()
    out.positions[:, 2] += vacuum_ang / 2.0 - zmin
    cell = np.asarray(out.cell[:]).copy()
    cell[2] = [0.0, 0.0, max((zmax - zmin) + vacuum_ang, 1e-3)]
    out.set_cell(cell, scale_atoms=False)
    out.wrap(pbc=[True, True, False])
    return out


def is_z_symmetric(atoms: Atoms, symprec: float = 0.1) -> bool:
    """Whether a slab (c ⟂ surface) has a symmetry operation that swaps its two surfaces (spglib)."""
    import spglib

    work = place(atoms, 10.0)
    sym = spglib.get_symmetry((work.cell[:], work.get_scaled_positions(), work.numbers), symprec=symprec)
    if sym is None:  # pragma: no cover
        return False
    return bool(any(int(r[2, 2]) == -1 for r in sym["rotations"]))


def repeat_to(atoms: Atoms, min_lateral_ang: float) -> tuple[Atoms, list[int]]:
    """Repeat (na, nb, 1) so both perpendicular widths are ≥ ``min_lateral_ang``."""
    wa, wb = lateral_widths_ang(atoms)
    na = max(1, math.ceil(min_lateral_ang / wa - 1e-9))
    nb = max(1, math.ceil(min_lateral_ang / wb - 1e-9))
    return (atoms.repeat((na, nb, 1)) if (na, nb) != (1, 1) else atoms.copy()), [na, nb]


def _check_slab_cell(slab: Atoms, what: str) -> None:
    cell = np.asarray(slab.cell[:])
    if np.any(np.abs(cell[2, :2]) > 1e-6) or np.any(np.abs(cell[:2, 2]) > 1e-6) or len(slab) == 0:
        raise StructureError(
            f"{what} needs a slab with its normal along z and c perpendicular to it (make_slab output)"
        )


def repeat_lateral(slab: Atoms, min_lateral_ang: float) -> Atoms:
    """Repeat a slab in-plane until both lateral widths are ≥ ``min_lateral_ang`` (Å); updates ``info``.

    Per-atom arrays (``region``, ``fixed``) are repeated with the atoms. ``info["lateral_repeat"]``
    accumulates the repeats.
    """
    _check_slab_cell(slab, "repeat_lateral")
    if isinstance(min_lateral_ang, bool) or not (
        isinstance(min_lateral_ang, (int, float)) and math.isfinite(min_lateral_ang) and min_lateral_ang > 0
    ):
        raise StructureError(f"min_lateral_ang must be a positive length in Å, got {min_lateral_ang!r}")
    out, (na, nb) = repeat_to(slab, float(min_lateral_ang))
    out.info = dict(slab.info)
    out.info["area_ang2"] = area_ang2(out)
    prev: Sequence[int] = slab.info.get("lateral_repeat", [1, 1])
    out.info["lateral_repeat"] = [int(prev[0]) * na, int(prev[1]) * nb]
    if "formula" in out.info:
        out.info["formula"] = out.get_chemical_formula(mode="hill")
    if "fixed" in out.arrays:
        out.info["n_fixed"] = int(np.sum(out.arrays["fixed"]))
    return out


def set_vacuum(slab: Atoms, vacuum_ang: float) -> Atoms:
    """Copy of a slab with a new vacuum (Å); atoms start at z = vacuum/2.

    ``vacuum_ang=0`` gives the bare slab (atoms from z = 0, cell height = ``info["thickness_ang"]``) that the
    interface builders stack with their own gaps; it is not a sensible periodic structure on its own.
    """
    _check_slab_cell(slab, "set_vacuum")
    check_lengths(1.0, vacuum_ang)
    out = place(slab, float(vacuum_ang))
    out.info = dict(slab.info)
    z = out.positions[:, 2]
    out.info["vacuum_ang"] = float(vacuum_ang)
    out.info["surface_z_ang"] = [float(z.min()), float(z.max())]
    out.info["thickness_ang"] = float(z.max() - z.min())
    return out
