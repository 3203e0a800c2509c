"""Rigid phosphate/phosphonitride units for the LiPON motif builder: speciation design, topology, geometry.

Chemistry (per P in LixPOyNz, P four-coordinated by O/N)
---------------------------------------------------------
Every P carries four anions. With ``A = y + z`` anions per P, ``b = 4 − A`` anions per P must be shared
between P atoms (bridging): ``b = 0`` (Li3PO4) gives isolated tetrahedra, ``b = 1`` (Li2PO2N, LiPO3) gives
fully bridged Q² chains/rings. When ``A > 4`` the ``A − 4`` excess anions per P cannot sit on P and become
free O²⁻/N³⁻ among the Li (O0/N0). Anion roles:

``Onb``/``Na``  terminal (one P); ``Ob``/``Nd`` bridging (two P); ``Nt`` three P; ``O0``/``N0`` no P.

A bridging budget ``E = 4·n_P − n_anions`` is filled by ``Nd + Ob + 2·Nt = E`` (an Nt replaces two bridges).
By default N bridges first (Nd), then O (:func:`design_anions`). The bridges are arranged into connected
units (:func:`design_units`): a forest needs ``n_P − E`` units — monomers and dimers for ``b`` small, equal
chains up to :data:`MAX_CHAIN_P` P, and rings (``E = n_P``, all Q²; 3-rings like trimetaphosphimate) when
needed. ``b > 1`` (cross-linked Q³ networks) is outside the motif builder (use the random mode).

Geometry (:func:`embed_unit`): rigid tetrahedra with the bond lengths of :data:`BOND_LENGTH_ANG`, bridging
angles of :data:`BRIDGE_ANGLE_DEG`, grown link by link with random torsions (trees) or closed by a small
least-squares fit (rings); no pair inside a unit comes closer than :data:`MIN_DISTANCE_ANG` except the
designed P–anion bonds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import StructureError

__all__ = [
    "BOND_LENGTH_ANG",
    "BRIDGE_ANGLE_DEG",
    "MIN_DISTANCE_ANG",
    "MIN_NONBONDED_P_ANION_ANG",
    "MAX_CHAIN_P",
    "AnionDesign",
    "UnitTopology",
    "Unit",
    "design_anions",
    "design_units",
    "embed_unit",
    "random_rotation",
]

logger = logging.getLogger(__name__)

#: P–anion bond length by anion role (Å): P–O(nb) 1.54, P–O(b) 1.61 (P2O7), P–N 1.62–1.72.
BOND_LENGTH_ANG: dict[str, float] = {"Onb": 1.54, "Ob": 1.61, "Na": 1.62, "Nd": 1.65, "Nt": 1.72}
#: P–X–P angle of bridging anions (degrees); Nt is trigonal planar.
BRIDGE_ANGLE_DEG: dict[str, float] = {"Ob": 135.0, "Nd": 125.0, "Nt": 120.0}
#: Smallest accepted distance (Å) of any pair of atoms the builder places, by element pair.
#: P–O/P–N entries apply to designed bonds; other P–anion pairs must exceed
#: :data:`MIN_NONBONDED_P_ANION_ANG` so that no extra P–anion contact is created.
MIN_DISTANCE_ANG: dict[tuple[str, str], float] = {
    ("Li", "Li"): 2.20,
    ("Li", "P"): 2.50,
    ("Li", "O"): 1.80,
    ("Li", "N"): 1.90,
    ("P", "P"): 2.75,
    ("P", "O"): 1.45,
    ("P", "N"): 1.50,
    ("O", "O"): 2.30,
    ("N", "O"): 2.35,
    ("N", "N"): 2.40,
}
#: Smallest distance (Å) between a P and an anion that is not bonded to it by design.
MIN_NONBONDED_P_ANION_ANG = 2.50
#: Longest chain (in P) the designer builds before it switches the excess to rings.
MAX_CHAIN_P = 6

_ELEMENT = {"Onb": "O", "Ob": "O", "O0": "O", "Na": "N", "Nd": "N", "Nt": "N", "N0": "N"}
_TET = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) / math.sqrt(3.0)


# --------------------------------------------------------------------------------------- speciation
@dataclass(frozen=True)
class AnionDesign:
    """How many anions of each role a box gets (whole numbers) and the bridging budget.

    Attributes
    ----------
    n_p
        Number of P.
    roles
        Counts of ``Onb, Ob, O0, Na, Nd, Nt, N0``.
    bridging_budget
        ``E = 4·n_P − n_anions`` (≥ 0): bridges needed, an Nt counting twice.
    """

    n_p: int
    roles: dict[str, int]
    bridging_budget: int

    @property
    def b_per_p(self) -> float:
        """Bridging anion budget per P, ``4 − (y + z)`` (0 when anions are in excess)."""
        return self.bridging_budget / self.n_p


def design_anions(
    n_p: int,
    n_o: int,
    n_n: int,
    *,
    nd_fraction: float | None = None,
    allow_nt: bool = False,
    nt_fraction: float | None = None,
) -> AnionDesign:
    """Split the O and N of a box into roles (terminal, bridging, Nt, free).

    Parameters
    ----------
    n_p, n_o, n_n
        Atom counts.
    nd_fraction
        Share of N that bridges (Nd plus Nt). Default: N bridges first — as many N bridge as the budget
        ``E = 4·n_P − n_O − n_N`` allows, the remaining bridges are O.
    allow_nt
        Permit three-coordinated N (Nt). Without ``nt_fraction`` as many Nt as possible are made (each uses
        two bridges of the budget and forms its own three-P unit, so at most ``n_P − E``), except in fully
        bridged boxes (``E = n_P``) where Nt cannot be placed.
    nt_fraction
        Share of N that is Nt (needs ``allow_nt``).

    Raises
    ------
    StructureError
        Fractions outside [0, 1], Nt without ``allow_nt``, or a request the budget cannot meet.
    """
    for name, value in (("nd_fraction", nd_fraction), ("nt_fraction", nt_fraction)):
        if value is not None and not (0.0 <= value <= 1.0):
            raise StructureError(f"{name} must be between 0 and 1, got {value}")
    if nt_fraction and not allow_nt:
        raise StructureError("nt_fraction > 0 needs allow_nt=True (--allow-nt): Nt is off by default")
    n_anions = n_o + n_n
    budget = 4 * n_p - n_anions
    roles = dict.fromkeys(("Onb", "Ob", "O0", "Na", "Nd", "Nt", "N0"), 0)
    if budget <= 0:
        free = -budget
        if nd_fraction or nt_fraction:
            raise StructureError(
                f"no anion can bridge: {n_anions} anions for {n_p} P is ≥ 4 per P (y + z ≥ 4), so every anion "
                "on P is terminal; leave nd_fraction/nt_fraction unset"
            )
        roles["O0"] = min(free, n_o)  # excess anions become Li2O-like O first, then Li3N-like N
        roles["N0"] = free - roles["O0"]
        roles["Onb"] = n_o - roles["O0"]
        roles["Na"] = n_n - roles["N0"]
        return AnionDesign(n_p, roles, 0)
    ring_only = budget >= n_p
    if nd_fraction is None:
        if allow_nt and nt_fraction is None:
            n_t = 0 if ring_only else min(n_n, budget // 2, n_p - budget)
        else:
            n_t = int(round((nt_fraction or 0.0) * n_n))
        n_d = min(n_n - n_t, budget - 2 * n_t)
    else:
        bridging_n = int(round(nd_fraction * n_n))
        if nt_fraction is not None:
            n_t = int(round(nt_fraction * n_n))
        elif allow_nt and not ring_only:
            n_t = min(bridging_n, budget // 2, n_p - budget)
        else:
            n_t = 0
        n_d = bridging_n - n_t
    if n_t > 0 and ring_only:
        raise StructureError(
            "Nt cannot be placed when every P is bridged (4 − (y + z) ≥ 1 per P): the motif builder closes "
            "such boxes into rings of Q2 units; drop nt_fraction or use mode='random'"
        )
    if n_d < 0 or n_d + 2 * n_t > budget or n_d + n_t > n_n:
        max_frac = min(n_n, budget) / n_n if n_n else 0.0
        raise StructureError(
            f"{n_d + n_t} bridging N ({n_d} Nd, {n_t} Nt) do not fit: the composition leaves {budget} bridging "
            f"positions for {n_p} P (b = {budget / n_p:.2f} per P; an Nt takes two). Use nd_fraction ≤ "
            f"{max_frac:.2f} or fewer Nt"
        )
    n_ob = budget - n_d - 2 * n_t
    if n_ob > n_o:
        raise StructureError(
            f"{n_ob} bridging O needed but the box has only {n_o} O; raise nd_fraction so that N bridges"
        )
    roles.update(Nd=n_d, Nt=n_t, Na=n_n - n_d - n_t, Ob=n_ob, Onb=n_o - n_ob)
    if budget > n_p:
        raise StructureError(
            f"b = 4 − (y + z) = {budget / n_p:.2f} bridging anions per P needs a cross-linked network (Q3, Q4), "
            "which the motif builder does not make (it builds monomers, dimers, chains and rings, b ≤ 1); "
            "use mode='random' followed by a melt–quench"
        )
    return AnionDesign(n_p, roles, budget)


# ----------------------------------------------------------------------------------------- topology
@dataclass
class UnitTopology:
    """Connectivity of one polyanion.

    Attributes
    ----------
    n_p
        P atoms in the unit (local indices ``0..n_p-1``).
    links
        Bridges: ``(role, (p, q))`` for Ob/Nd, ``(role, (p, q, r))`` for Nt.
    terminals
        Terminal anion roles of each P (``Onb``/``Na``).
    ring
        True for a ring (links form one cycle in P order), else a tree.
    """

    n_p: int
    links: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    terminals: list[list[str]] = field(default_factory=list)
    ring: bool = False

    def bridges_of(self, p: int) -> int:
        """Number of bridging anions on P ``p`` (its Qⁿ)."""
        return sum(1 for _, members in self.links if p in members)


def _split_even(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def _ring_sizes(n: int) -> list[int]:
    """Split ``n`` ≥ 3 P into rings of 3 (plus one ring of 4 or 5 for the remainder)."""
    if n < 3:
        raise StructureError(f"cannot close {n} P into rings (a ring needs ≥ 3 P)")
    threes, rest = divmod(n, 3)
    sizes = [3] * threes
    if rest == 1:
        sizes[-1] = 4
    elif rest == 2:
        if threes >= 2:
            sizes[-1] = 4
            sizes[-2] = 4
        else:
            sizes = [5]
    return sizes


def design_units(design: AnionDesign, rng: np.random.Generator) -> list[UnitTopology]:
    """Arrange the designed bridges into units (monomers, dimers, chains, rings) with their terminals.

    A forest of ``n_P − E`` units of nearly equal size is used while those stay ≤ :data:`MAX_CHAIN_P` P;
    otherwise ``n_P − E`` chains of :data:`MAX_CHAIN_P` P are kept and the rest of the P is closed into
    rings. Each Nt makes its own unit (three Q¹ P around the N). Which bridges are N or O, and which P get
    the terminal N (spread one per P first), is drawn from ``rng``.
    """
    n_p, roles, budget = design.n_p, design.roles, design.bridging_budget
    n_t = roles["Nt"]
    if n_t > n_p - budget:
        raise StructureError(
            f"{n_t} Nt do not fit: each Nt joins three P into its own unit, and the composition allows only "
            f"{n_p - budget} units; use fewer Nt (nt_fraction)"
        )
    # Nt stars (three Q1 P around one N) first, then the rest of P and bridges as chains and rings
    rest_p, rest_budget = n_p - 3 * n_t, budget - 2 * n_t
    n_chains = rest_p - rest_budget
    if n_chains > 0 and math.ceil(rest_p / n_chains) <= MAX_CHAIN_P:
        chain_sizes, ring_sizes = _split_even(rest_p, n_chains), []
    else:
        chain_sizes = [MAX_CHAIN_P] * n_chains if n_chains > 0 else []
        rest = rest_p - sum(chain_sizes)
        while 0 < rest < 3 and chain_sizes:  # shorten chains until the ring remainder can close
            longest = int(np.argmax(chain_sizes))
            chain_sizes[longest] -= 1
            rest += 1
        ring_sizes = _ring_sizes(rest) if rest else []
    n_two = sum(s - 1 for s in chain_sizes) + sum(ring_sizes)
    if n_two != roles["Nd"] + roles["Ob"]:  # pragma: no cover - arithmetic invariant
        raise StructureError(f"internal: {n_two} two-fold bridges designed, {roles['Nd'] + roles['Ob']} expected")
    bridge_roles = ["Nd"] * roles["Nd"] + ["Ob"] * roles["Ob"]
    rng.shuffle(bridge_roles)
    units: list[UnitTopology] = []
    for _ in range(n_t):
        units.append(UnitTopology(3, links=[("Nt", (0, 1, 2))]))
    k = 0
    for size in chain_sizes:
        unit = UnitTopology(size)
        for i in range(size - 1):
            unit.links.append((bridge_roles[k], (i, i + 1)))
            k += 1
        units.append(unit)
    for size in ring_sizes:
        unit = UnitTopology(size, ring=True)
        for i in range(size):
            unit.links.append((bridge_roles[k], (i, (i + 1) % size)))
            k += 1
        units.append(unit)
    # terminals: Na spread over the P with the fewest N, ties at random
    na_left = roles["Na"]
    n_on_p = {}
    for u, unit in enumerate(units):
        unit.terminals = [[] for _ in range(unit.n_p)]
        for p in range(unit.n_p):
            n_on_p[(u, p)] = sum(1 for role, m in unit.links if p in m and role in ("Nd", "Nt"))
    free_slots = {key: 4 - units[key[0]].bridges_of(key[1]) for key in n_on_p}
    while na_left:
        candidates = [key for key, s in free_slots.items() if s > 0]
        if not candidates:  # pragma: no cover - counts guarantee room
            raise StructureError("internal: no terminal slot left for Na")
        low = min(n_on_p[key] for key in candidates)
        ties = [key for key in candidates if n_on_p[key] == low]
        key = ties[int(rng.integers(len(ties)))]
        units[key[0]].terminals[key[1]].append("Na")
        n_on_p[key] += 1
        free_slots[key] -= 1
        na_left -= 1
    n_onb = 0
    for key, s in free_slots.items():
        units[key[0]].terminals[key[1]].extend(["Onb"] * s)
        n_onb += s
    if n_onb != roles["Onb"]:  # pragma: no cover - arithmetic invariant
        raise StructureError(f"internal: {n_onb} terminal O designed, {roles['Onb']} expected")
    for unit in units:
        for term in unit.terminals:
            rng.shuffle(term)
    return units


# ----------------------------------------------------------------------------------------- geometry
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


def _free_anion(role: str) -> Unit:
    return Unit([_ELEMENT[role]], [role], np.zeros((1, 3)), [])


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
