"""Geometry of the LiPON motif units: rigid tetrahedra grown into chains or closed into rings.

:func:`embed_unit` turns a :class:`~tfbsim.structures.motifs.UnitTopology` into 3-D coordinates: tetrahedra
with the bond lengths of :data:`~tfbsim.structures.motifs.BOND_LENGTH_ANG` and bridging angles of
:data:`~tfbsim.structures.motifs.BRIDGE_ANGLE_DEG`, grown link by link with random torsions (trees) or closed
by a small least-squares fit of bond lengths and angles (rings). No pair inside a unit comes closer than
:data:`~tfbsim.structures.motifs.MIN_DISTANCE_ANG` except the designed P–anion bonds, and no P comes within
:data:`~tfbsim.structures.motifs.MIN_NONBONDED_P_ANION_ANG` of an anion it is not bonded to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import StructureError
from .motifs import (
    BOND_LENGTH_ANG,
    BRIDGE_ANGLE_DEG,
    MIN_DISTANCE_ANG,
    MIN_NONBONDED_P_ANION_ANG,
    ROLE_ELEMENT,
    UnitTopology,
)

__all__ = ["Unit", "embed_unit", "random_rotation"]

_ELEMENT = ROLE_ELEMENT
_TET = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) / math.sqrt(3.0)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random 3×3 rotation matrix (from a normalised Gaussian quaternion)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _perpendicular(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    v -= v.dot(u) * u
    norm = np.linalg.norm(v)
    if norm < 1e-8:  # pragma: no cover - measure-zero draw
        v = np.cross(u, [1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.cross(u, [0.0, 1.0, 0.0])
        norm = np.linalg.norm(v)
    return v / norm


def _tetrahedron(fixed: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Four bond directions of a tetrahedron whose first ``len(fixed)`` (0–2) directions are given."""
    if not fixed:
        rot = random_rotation(rng)
        return [rot @ v for v in _TET]
    u = fixed[0] / np.linalg.norm(fixed[0])
    if len(fixed) == 1:
        # rotate _TET[0] onto u, then spin at random about u
        a = _TET[0]
        v = np.cross(a, u)
        c = float(a.dot(u))
        if c < -1 + 1e-9:
            rot = _axis_angle(_perpendicular(a, rng), math.pi)
        else:
            k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
            rot = np.eye(3) + k + k @ k / (1 + c)
        spin = _axis_angle(u, rng.uniform(0, 2 * math.pi))
        return [u] + [spin @ rot @ t for t in _TET[1:]]
    w = fixed[1] / np.linalg.norm(fixed[1])
    bis = u + w
    bis = bis / np.linalg.norm(bis) if np.linalg.norm(bis) > 1e-8 else _perpendicular(u, rng)
    normal = np.cross(u, w)
    normal = normal / np.linalg.norm(normal) if np.linalg.norm(normal) > 1e-8 else _perpendicular(bis, rng)
    c, s = 1 / math.sqrt(3.0), math.sqrt(2.0 / 3.0)
    return [u, w, -c * bis + s * normal, -c * bis - s * normal]


@dataclass
class Unit:
    """A rigid polyanion (or a single free anion) in local coordinates.

    Attributes
    ----------
    symbols
        Element of each atom.
    roles
        ``P`` or the anion role of each atom.
    positions
        Local Cartesian coordinates (Å), centred on the centroid.
    bonds
        Designed P–anion bonds as local index pairs ``(i_P, i_anion)``.
    """

    symbols: list[str]
    roles: list[str]
    positions: np.ndarray
    bonds: list[tuple[int, int]]

    @property
    def radius_ang(self) -> float:
        """Largest distance of an atom from the centroid (Å)."""
        return float(np.linalg.norm(self.positions, axis=1).max()) if len(self.symbols) else 0.0


def _intra_clash(pos: np.ndarray, symbols: list[str], bonded: set[tuple[int, int]], new: range) -> bool:
    """True when one of the atoms ``new`` is too close to another atom of the unit (designed bonds aside)."""
    if not len(new):
        return False
    idx = np.arange(len(pos))
    for i in new:
        d = np.linalg.norm(pos - pos[i], axis=1)
        for j in idx[d < 3.0]:
            if j == i or (min(i, j), max(i, j)) in bonded:
                continue
            a, b = symbols[i], symbols[j]
            rmin = MIN_DISTANCE_ANG.get((a, b), MIN_DISTANCE_ANG.get((b, a), 2.0))
            if {a, b} in ({"P", "O"}, {"P", "N"}):
                rmin = MIN_NONBONDED_P_ANION_ANG
            if d[j] < rmin:
                return True
    return False


class _Builder:
    """Accumulates atoms of one unit while it is being embedded."""

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.roles: list[str] = []
        self.pos: list[np.ndarray] = []
        self.bonded: set[tuple[int, int]] = set()

    def add(self, role: str, xyz: np.ndarray) -> int:
        self.symbols.append("P" if role == "P" else _ELEMENT[role])
        self.roles.append(role)
        self.pos.append(np.asarray(xyz, dtype=float))
        return len(self.pos) - 1

    def bond(self, i: int, j: int) -> None:
        self.bonded.add((min(i, j), max(i, j)))

    def truncate(self, n: int) -> None:
        del self.symbols[n:], self.roles[n:], self.pos[n:]
        self.bonded = {b for b in self.bonded if b[1] < n}

    def clash(self, start: int) -> bool:
        return _intra_clash(np.array(self.pos), self.symbols, self.bonded, range(start, len(self.pos)))


def _embed_tree(topo: UnitTopology, rng: np.random.Generator, tries: int = 60) -> _Builder:
    """Grow a tree unit tetrahedron by tetrahedron with random torsions, avoiding internal clashes."""
    b = _Builder()
    p_index: dict[int, int] = {}
    anion_of_link: dict[int, int] = {}
    p_index[0] = b.add("P", np.zeros(3))
    queue: list[tuple[int, int | None]] = [(0, None)]  # (P, link it was reached through)
    while queue:
        p, via = queue.pop(0)
        ip = p_index[p]
        links = [li for li, (_, m) in enumerate(topo.links) if p in m and li != via]
        start = len(b.pos)
        for _attempt in range(tries):
            b.truncate(start)
            fixed = [] if via is None else [b.pos[anion_of_link[via]] - b.pos[ip]]
            dirs = _tetrahedron(fixed, rng)[len(fixed):]
            items = [("link", li) for li in links] + [("term", role) for role in topo.terminals[p]]
            if len(items) != len(dirs):  # pragma: no cover - topology invariant
                raise StructureError(f"internal: P {p} has {len(items)} slots for {len(dirs)} directions")
            new_children: list[tuple[int, int, int]] = []
            for (kind, what), u in zip(items, dirs):
                if kind == "term":
                    ia = b.add(what, b.pos[ip] + BOND_LENGTH_ANG[what] * u)
                    b.bond(ip, ia)
                    continue
                role, members = topo.links[what]
                length = BOND_LENGTH_ANG[role]
                ia = b.add(role, b.pos[ip] + length * u)
                b.bond(ip, ia)
                back = -u
                others = [m for m in members if m != p]
                if role == "Nt":
                    axis = _perpendicular(back, rng)
                    out = [_axis_angle(axis, sign * 2 * math.pi / 3) @ back for sign in (1, -1)]
                else:
                    theta = math.radians(BRIDGE_ANGLE_DEG[role])
                    out = [math.cos(theta) * back + math.sin(theta) * _perpendicular(back, rng)]
                for q, w in zip(others, out):
                    iq = b.add("P", b.pos[ia] + length * w)
                    b.bond(iq, ia)
                    new_children.append((q, iq, what, ia))
            if not b.clash(start):
                for q, iq, li, ia in new_children:
                    p_index[q] = iq
                    anion_of_link[li] = ia
                    queue.append((q, li))
                break
        else:
            raise StructureError("could not grow a unit without internal clashes; try another seed")
    return b



def _spring_fit(x0: np.ndarray, pairs: np.ndarray, d0: np.ndarray, hinge: np.ndarray) -> np.ndarray:
    """Least-squares fit of pair distances (``hinge``: only push apart below ``d0``); returns positions."""
    from scipy.optimize import minimize

    n = len(x0)

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        x = flat.reshape(n, 3)
        vec = x[pairs[:, 0]] - x[pairs[:, 1]]
        d = np.linalg.norm(vec, axis=1)
        dev = d - d0
        dev = np.where(hinge & (dev > 0), 0.0, dev)
        grad_pair = (2 * dev / np.maximum(d, 1e-9))[:, None] * vec
        grad = np.zeros_like(x)
        np.add.at(grad, pairs[:, 0], grad_pair)
        np.subtract.at(grad, pairs[:, 1], grad_pair)
        return float(np.sum(dev**2)), grad.ravel()

    res = minimize(fun, x0.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-10})
    return res.x.reshape(n, 3)


def _embed_ring(topo: UnitTopology, rng: np.random.Generator, tries: int = 40, cache: dict | None = None) -> _Builder:
    """Close a ring of ``k`` tetrahedra: fit P and bridging anions to bond lengths and angles, add terminals.

    ``cache`` (a dict owned by the caller) keeps fitted ring skeletons by size and bridge roles.
    """
    k = topo.n_p
    link_role = [role for role, _ in topo.links]
    lengths = np.array([BOND_LENGTH_ANG[r] for r in link_role])
    tet = math.radians(109.4712)
    key = (k, tuple(link_role))
    for _attempt in range(tries):
        if cache is not None and key in cache and _attempt == 0:
            b = _ring_terminals(topo, cache[key], link_role, rng)
            if b is not None:
                return b
        # atoms 0..k-1: P_i; k..2k-1: X_i between P_i and P_{i+1}
        s = np.array([2 * lengths[i] * math.sin(math.radians(BRIDGE_ANGLE_DEG[link_role[i]]) / 2) for i in range(k)])
        radius = s.mean() / (2 * math.sin(math.pi / k))
        phi = 2 * math.pi * np.arange(k) / k
        p0 = np.stack([radius * np.cos(phi), radius * np.sin(phi), np.zeros(k)], axis=1)
        mid = 0.5 * (p0 + np.roll(p0, -1, axis=0))
        out = mid / np.linalg.norm(mid, axis=1)[:, None]
        x0 = np.concatenate([p0, mid + 0.9 * out]) + rng.normal(scale=0.25, size=(2 * k, 3))
        pairs, d0, hinge = [], [], []
        for i in range(k):
            j = (i + 1) % k
            pairs += [(i, k + i), (j, k + i), (i, j)]
            d0 += [lengths[i], lengths[i], s[i]]
            hinge += [False, False, False]
            h = (i - 1) % k  # X_{i-1} and X_i around P_i
            pairs.append((k + h, k + i))
            d0.append(math.sqrt(lengths[h] ** 2 + lengths[i] ** 2 - 2 * lengths[h] * lengths[i] * math.cos(tet)))
            hinge.append(False)
        bonded = {(min(a, b), max(a, b)) for a, b in pairs}
        for a in range(2 * k):
            for c in range(a + 1, 2 * k):
                if (a, c) in bonded:
                    continue
                both_p = a < k and c < k
                both_x = a >= k and c >= k
                pairs.append((a, c))
                d0.append(3.3 if both_p else (2.7 if both_x else MIN_NONBONDED_P_ANION_ANG + 0.3))
                hinge.append(True)
        x = _spring_fit(x0, np.array(pairs), np.array(d0), np.array(hinge))
        bond_err = max(
            abs(np.linalg.norm(x[i] - x[k + i]) - lengths[i]) + abs(np.linalg.norm(x[(i + 1) % k] - x[k + i]) - lengths[i])
            for i in range(k)
        )
        if bond_err > 0.06:
            continue
        b = _ring_terminals(topo, x, link_role, rng)
        if b is not None:
            if cache is not None:
                cache[key] = x
            return b
    raise StructureError(f"could not close a ring of {k} tetrahedra without clashes; try another seed")


def _ring_terminals(topo: UnitTopology, x: np.ndarray, link_role: list[str], rng: np.random.Generator) -> _Builder | None:
    """Ring skeleton ``x`` (P then bridging anions) plus terminal anions; ``None`` on a clash."""
    k = topo.n_p
    b = _Builder()
    for i in range(k):
        b.add("P", x[i])
    for i in range(k):
        ia = b.add(link_role[i], x[k + i])
        b.bond(i, ia)
        b.bond((i + 1) % k, ia)
    for i in range(k):
        fixed = [x[k + (i - 1) % k] - x[i], x[k + i] - x[i]]
        dirs = _tetrahedron(fixed, rng)[2:]
        for role, u in zip(topo.terminals[i], dirs):
            ia = b.add(role, x[i] + BOND_LENGTH_ANG[role] * u)
            b.bond(i, ia)
    return None if b.clash(0) else b


def embed_unit(topo: UnitTopology, rng: np.random.Generator, *, candidates: int = 4, cache: dict | None = None) -> Unit:
    """3-D coordinates of a unit (centred on its centroid); chains keep the most compact of a few tries.

    Parameters
    ----------
    topo
        Connectivity from :func:`design_units`.
    rng
        Seeded generator (torsions, spins, ring starts).
    candidates
        Embeddings tried for chains of ≥ 3 P; the smallest radius of gyration is kept.
    cache
        Optional dict (owned by the caller, e.g. one per box) reusing fitted ring skeletons.
    """
    if topo.ring:
        builds = [_embed_ring(topo, rng, cache=cache)]
    else:
        n_try = candidates if topo.n_p >= 3 else 1
        builds = []
        failures = 0
        while len(builds) < n_try:
            try:
                builds.append(_embed_tree(topo, rng))
            except StructureError:
                failures += 1
                if failures > 50:
                    raise StructureError(
                        f"could not grow a {topo.n_p}-P unit without internal clashes in 50 attempts; try "
                        "another seed"
                    ) from None
    best = None
    for b in builds:
        pos = np.array(b.pos)
        pos = pos - pos.mean(axis=0)
        rg = float(np.sqrt(np.mean(np.sum(pos**2, axis=1))))
        if best is None or rg < best[0]:
            best = (rg, b, pos)
    _, b, pos = best
    bonds = sorted((i, j) if b.symbols[i] == "P" else (j, i) for i, j in b.bonded)
    return Unit(list(b.symbols), list(b.roles), pos, bonds)
