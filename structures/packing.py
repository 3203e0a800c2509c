"""Periodic packing of rigid units and single atoms with pair-specific minimum distances.

:class:`Packer` keeps the atoms placed so far and, for each probe element it is asked about, a *clearance
field* on a grid spanning the (possibly triclinic) cell: at each grid point, the smallest ``d − r_min`` over
all placed atoms (``r_min`` from the pair table, capped at :attr:`Packer.cap_ang`). A positive clearance
means an atom of that element fits there; the maximum is the centre of the largest void. Fields are updated
locally when atoms are added, so filling a box costs O(atoms × window) rather than O(atoms × grid).

Overlap tests (:meth:`Packer.fits`) are exact: minimum-image displacements when every perpendicular width
of the cell is at least twice the largest ``r_min``, otherwise all 27 neighbouring images.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["Packer", "cell_widths", "neighbour_pairs", "remove_overlaps"]


def cell_widths(cell: np.ndarray) -> np.ndarray:
    """Perpendicular widths (Å) of a cell: volume divided by the area of each opposite face pair."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])


class Packer:
    """Place atoms in a periodic cell without violating pair minimum distances.

    Parameters
    ----------
    cell
        3×3 cell matrix (rows are lattice vectors, Å).
    elements
        Element symbols that can occur; indices into this list are used internally.
    rmin
        Function ``(a, b) -> Å`` giving the minimum distance of a pair of elements that are not bonded.
    spacing_ang
        Grid spacing of the clearance fields (Å).
    cap_ang
        Clearances above this value are stored as ``cap_ang`` (only the largest voids need ranking).
    """

    def __init__(self, cell: np.ndarray, elements: list[str], rmin, *, spacing_ang: float = 0.5, cap_ang: float = 3.0):
        self.cell = np.asarray(cell, dtype=float)
        self.inv = np.linalg.inv(self.cell)
        self.elements = list(elements)
        self.index = {el: i for i, el in enumerate(self.elements)}
        self.rmin = np.array([[rmin(a, b) for b in self.elements] for a in self.elements])
        self.rmax = float(self.rmin.max())
        self.cap_ang = float(cap_ang)
        widths = cell_widths(self.cell)
        self.min_width = float(widths.min())
        self.safe_min_image = self.min_width >= 2.0 * self.rmax + 0.5
        self.shifts = (
            np.zeros((1, 3))
            if self.safe_min_image
            else np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float) @ self.cell
        )
        self.n_grid = np.maximum(np.ceil(widths / spacing_ang).astype(int), 2)
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in self.n_grid], indexing="ij"), axis=-1).reshape(-1, 3)
        self.grid_frac = (idx + 0.5) / self.n_grid
        self.grid_cart = self.grid_frac @ self.cell
        # offsets (in grid steps) covering a sphere of the update radius around an atom
        radius = self.cap_ang + self.rmax
        steps = widths / self.n_grid
        m = np.ceil(radius / steps).astype(int) + 1
        off = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in m], indexing="ij"), axis=-1).reshape(-1, 3)
        off_cart = (off / self.n_grid) @ self.cell
        keep = np.linalg.norm(off_cart, axis=1) <= radius + np.linalg.norm(self.cell.sum(axis=0) / self.n_grid) + 1e-9
        self._off = off[keep]
        self._off_cart = off_cart[keep]
        self._duplicates = bool(np.any(2 * m + 1 > self.n_grid))
        self.fields: dict[int, np.ndarray] = {}
        self.positions = np.zeros((0, 3))
        self.species = np.zeros(0, dtype=int)

    # ------------------------------------------------------------------------------------------ fields
    def _field(self, probe: str) -> np.ndarray:
        k = self.index[probe]
        if k not in self.fields:
            field = np.full(len(self.grid_cart), self.cap_ang)
            for pos, sp in zip(self.positions, self.species):
                self._update_one(field, k, pos, sp)
            self.fields[k] = field
        return self.fields[k]

    def _update_one(self, field: np.ndarray, probe: int, pos: np.ndarray, sp: int) -> None:
        frac = pos @ self.inv
        frac = frac - np.floor(frac)
        i0 = np.floor(frac * self.n_grid).astype(int)
        base = ((i0 + 0.5) / self.n_grid - frac) @ self.cell
        d = np.linalg.norm(base + self._off_cart, axis=1) - self.rmin[probe, sp]
        flat = np.ravel_multi_index(tuple(((i0 + self._off) % self.n_grid).T), tuple(self.n_grid))
        if self._duplicates:
            np.minimum.at(field, flat, d)
        else:
            field[flat] = np.minimum(field[flat], d)

    def watch(self, *probes: str) -> None:
        """Start maintaining clearance fields for these probe elements."""
        for probe in probes:
            self._field(probe)

    def clearance_field(self, probe: str) -> np.ndarray:
        """Clearance (Å) of a ``probe`` atom at every grid point (see the module docstring)."""
        return self._field(probe)

    def void_candidates(self, probe: str, rng: np.random.Generator, top: int = 32) -> np.ndarray:
        """Cartesian positions of ``top`` grid points with the largest clearance, in random order."""
        field = self._field(probe)
        top = min(top, len(field))
        best = np.argpartition(-field, top - 1)[:top]
        rng.shuffle(best)
        return self.grid_cart[best]

    def largest_void(self, probe: str, noise: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Grid point with the largest clearance for ``probe`` and that clearance (Å).

        ``noise`` (same length as the grid, tiny values) breaks ties reproducibly.
        """
        field = self._field(probe)
        score = field if noise is None else field + noise
        i = int(np.argmax(score))
        return self.grid_cart[i].copy(), float(field[i])

    # ---------------------------------------------------------------------------------------- geometry
    def _neighbour_vectors(self, center: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Displacements (Å) from ``center`` to placed atoms (and images) within ``radius``; their species."""
        if not len(self.positions):
            return np.zeros((0, 3)), np.zeros(0, dtype=int)
        delta = self.positions - center
        frac = delta @ self.inv
        frac -= np.round(frac)
        vec = frac @ self.cell
        if self.safe_min_image:
            keep = np.einsum("ij,ij->i", vec, vec) <= radius * radius
            return vec[keep], self.species[keep]
        allv = (vec[:, None, :] + self.shifts[None, :, :]).reshape(-1, 3)
        sp = np.repeat(self.species, len(self.shifts))
        keep = np.einsum("ij,ij->i", allv, allv) <= radius * radius
        return allv[keep], sp[keep]

    def margins(self, points: np.ndarray, elements: list[str]) -> np.ndarray:
        """Smallest ``d − r_min`` (Å) of each point to the placed atoms (``cap_ang`` if none is near)."""
        points = np.atleast_2d(points)
        out = np.full(len(points), self.cap_ang)
        for n, (x, el) in enumerate(zip(points, elements)):
            vec, sp = self._neighbour_vectors(x, self.cap_ang + self.rmax)
            if len(vec):
                d = np.linalg.norm(vec, axis=1) - self.rmin[self.index[el], sp]
                out[n] = min(out[n], float(d.min()))
        return out

    def overlap(self, points: np.ndarray, elements: list[str]) -> float:
        """Sum of squared overlaps ``max(0, r_min − d)²`` (Å²) of new atoms with the placed ones."""
        points = np.atleast_2d(points)
        center = points.mean(axis=0)
        reach = float(np.linalg.norm(points - center, axis=1).max()) + self.rmax
        vec, sp = self._neighbour_vectors(center, reach)
        if not len(vec):
            return 0.0
        ids = np.array([self.index[e] for e in elements])
        diff = vec[None, :, :] - (points - center)[:, None, :]
        d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        return float(np.sum(np.clip(self.rmin[ids][:, sp] - d, 0.0, None) ** 2))

    def fits(self, points: np.ndarray, elements: list[str], *, self_pairs_rmin: np.ndarray | None = None) -> bool:
        """Whether atoms ``points`` (one rigid group) can be added without any pair below its minimum.

        Parameters
        ----------
        points
            Cartesian positions (Å) of the new atoms (any image).
        elements
            Their elements.
        self_pairs_rmin
            Minimum distances (matrix) between the new atoms and the periodic images of the group (default:
            the packer's pair table). Direct pairs inside the group are trusted (the group is rigid).
        """
        points = np.atleast_2d(points)
        center = points.mean(axis=0)
        reach = float(np.linalg.norm(points - center, axis=1).max()) + self.rmax
        vec, sp = self._neighbour_vectors(center, reach)
        if len(vec):
            ids = np.array([self.index[e] for e in elements])
            local = points - center
            diff = vec[None, :, :] - local[:, None, :]
            d2 = np.einsum("ijk,ijk->ij", diff, diff)
            limit = self.rmin[ids][:, sp]
            if np.any(d2 < limit * limit):
                return False
        if (len(points) > 1 or not self.safe_min_image) and not self._self_image_ok(points, elements, self_pairs_rmin):
            return False
        return True

    def _self_image_ok(self, points: np.ndarray, elements: list[str], rmin_self: np.ndarray | None) -> bool:
        if rmin_self is None:
            ids = np.array([self.index[e] for e in elements])
            rmin_self = self.rmin[ids][:, ids]
        images = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float)
        images = images[np.any(images != 0, axis=1)] @ self.cell
        if self.safe_min_image:
            # a periodic image closer than the direct vector can only come from the wrapped difference
            diff = points[None, :, :] - points[:, None, :]
            frac = diff @ self.inv
            wrapped = (frac - np.round(frac)) @ self.cell
            d_wrapped = np.linalg.norm(wrapped, axis=2)
            d_direct = np.linalg.norm(diff, axis=2)
            closer = d_wrapped < d_direct - 1e-6
            return not np.any(closer & (d_wrapped < rmin_self))
        diff = points[None, :, None, :] - points[:, None, None, :] + images[None, None, :, :]
        d = np.linalg.norm(diff, axis=3)
        return not np.any(d < rmin_self[:, :, None])

    def add(self, points: np.ndarray, elements: list[str]) -> None:
        """Add atoms (wrapped into the cell) and update every maintained clearance field."""
        points = np.atleast_2d(points)
        frac = points @ self.inv
        points = (frac - np.floor(frac)) @ self.cell
        ids = np.array([self.index[e] for e in elements], dtype=int)
        for probe, field in self.fields.items():
            for pos, sp in zip(points, ids):
                self._update_one(field, probe, pos, sp)
        self.positions = np.vstack([self.positions, points])
        self.species = np.concatenate([self.species, ids])

    def random_point(self, rng: np.random.Generator) -> np.ndarray:
        """Uniformly random Cartesian point in the cell."""
        return rng.random(3) @ self.cell


def neighbour_pairs(positions: np.ndarray, cell: np.ndarray, cutoff_ang: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``i < j`` (every periodic image) closer than ``cutoff_ang``.

    Returns ``i``, ``j`` and the Cartesian shift ``s`` such that ``positions[j] − positions[i] + s`` is the
    pair vector; positions may lie outside the cell. Needs every cell width ≥ ``cutoff_ang``.
    """
    from scipy.spatial import cKDTree

    cell = np.asarray(cell, dtype=float)
    widths = cell_widths(cell)
    if widths.min() < cutoff_ang:
        raise ValueError(f"cell widths {widths} below the neighbour cutoff {cutoff_ang} Å")
    frac = positions @ np.linalg.inv(cell)
    base = np.floor(frac)
    fw = frac - base
    pad = cutoff_ang / widths
    idx_list, shift_list = [], []
    for s in itertools.product((-1, 0, 1), repeat=3):
        mask = np.ones(len(fw), dtype=bool)
        for a in range(3):
            if s[a] == 1:
                mask &= fw[:, a] < pad[a]
            elif s[a] == -1:
                mask &= fw[:, a] > 1 - pad[a]
        k = np.flatnonzero(mask)
        idx_list.append(k)
        shift_list.append(np.repeat(np.array(s, dtype=float)[None], len(k), axis=0))
    idx = np.concatenate(idx_list)
    shifts = np.concatenate(shift_list)
    wrapped = fw @ cell
    images = wrapped[idx] + shifts @ cell
    pairs = cKDTree(wrapped).sparse_distance_matrix(cKDTree(images), cutoff_ang, output_type="ndarray")
    i, k = pairs["i"].astype(int), pairs["j"].astype(int)
    j = idx[k]
    keep = i < j
    i, j, k = i[keep], j[keep], k[keep]
    shift = (shifts[k] - base[j] + base[i]) @ cell
    return i, j, shift


def remove_overlaps(
    positions: np.ndarray,
    elements: list[str],
    bodies: np.ndarray,
    cell: np.ndarray,
    rmin,
    *,
    margin_ang: float = 0.05,
    max_iter: int = 4000,
    max_step_ang: float = 0.15,
) -> tuple[np.ndarray, float, int]:
    """Push rigid bodies apart until no pair of atoms from different bodies is closer than ``rmin``.

    Steepest descent on the penalty ``Σ max(0, r_min + margin − d)²`` with rigid-body moves (translation by
    the net force, rotation about the net torque), the standard trick of packing codes.

    Parameters
    ----------
    positions
        Cartesian positions (Å); atoms of one body must be stored unwrapped (direct intra-body vectors).
    elements
        Element of each atom.
    bodies
        Body index of each atom; atoms of a body move together (single atoms: their own body).
    cell
        Cell matrix (Å).
    rmin
        ``(a, b) -> Å`` minimum distance between atoms of different bodies (and periodic self-images).
    margin_ang
        Extra separation aimed for, so that the result clears ``rmin`` itself.
    max_iter
        Iteration limit.
    max_step_ang
        Largest displacement of any atom per iteration (Å).

    Returns
    -------
    positions, worst, iterations
        New positions, the largest remaining violation ``max(r_min − d)`` (≤ 0 on success, Å) and the
        number of iterations used.
    """
    pos = np.array(positions, dtype=float)
    cell = np.asarray(cell, dtype=float)
    names = sorted(set(elements))
    code = np.array([names.index(e) for e in elements])
    table = np.array([[rmin(a, b) for b in names] for a in names])
    bodies = np.asarray(bodies)
    _, body = np.unique(bodies, return_inverse=True)
    n_body = int(body.max()) + 1 if len(body) else 0
    counts = np.bincount(body, minlength=n_body).astype(float)
    skin = 0.6
    cutoff = float(table.max()) + margin_ang + skin
    ref = None
    worst = np.inf
    for it in range(max_iter):
        if ref is None or np.max(np.linalg.norm(pos - ref, axis=1)) > skin / 2:
            i, j, shift = neighbour_pairs(pos, cell, cutoff)
            intra = (body[i] == body[j]) & np.all(np.abs(shift) < 1e-9, axis=1)
            i, j, shift = i[~intra], j[~intra], shift[~intra]
            limit = table[code[i], code[j]]
            ref = pos.copy()
        vec = pos[j] - pos[i] + shift
        d = np.linalg.norm(vec, axis=1)
        worst = float(np.max(limit - d)) if len(d) else -np.inf
        over = limit + margin_ang - d
        active = over > 0
        if worst <= 0 and not np.any(over > margin_ang * 0.5):
            return pos, worst, it
        f = np.zeros_like(pos)
        push = (over[active] / np.maximum(d[active], 1e-6))[:, None] * vec[active]
        np.add.at(f, j[active], push)
        np.subtract.at(f, i[active], push)
        # rigid-body moves
        centre = np.zeros((n_body, 3))
        np.add.at(centre, body, pos)
        centre /= counts[:, None]
        rel = pos - centre[body]
        force = np.zeros((n_body, 3))
        np.add.at(force, body, f)
        torque = np.zeros((n_body, 3))
        np.add.at(torque, body, np.cross(rel, f))
        inertia = np.zeros(n_body)
        np.add.at(inertia, body, np.einsum("ij,ij->i", rel, rel))
        trans = 0.5 * force / counts[:, None]
        omega = 0.5 * torque / np.maximum(inertia, 1e-6)[:, None]
        new = centre[body] + trans[body] + _rotate(rel, omega[body])
        step = np.linalg.norm(new - pos, axis=1).max()
        if step > max_step_ang:
            trans *= max_step_ang / step
            omega *= max_step_ang / step
            new = centre[body] + trans[body] + _rotate(rel, omega[body])
        pos = new
    return pos, worst, max_iter


def _rotate(vectors: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """Rotate each vector by its rotation vector (Rodrigues)."""
    angle = np.linalg.norm(omega, axis=1)
    safe = np.maximum(angle, 1e-12)
    k = omega / safe[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    kv = np.einsum("ij,ij->i", k, vectors)[:, None]
    out = vectors * cos + np.cross(k, vectors) * sin + k * kv * (1 - cos)
    return np.where(angle[:, None] > 1e-12, out, vectors)

