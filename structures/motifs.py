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

Geometry (:func:`tfbsim.structures.motif_geometry.embed_unit`): rigid tetrahedra with the bond lengths of :data:`BOND_LENGTH_ANG`, bridging
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
    "ROLE_ELEMENT",
    "AnionDesign",
    "UnitTopology",
    "design_anions",
    "design_units",
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

#: Element of each anion role.
ROLE_ELEMENT: dict[str, str] = {"Onb": "O", "Ob": "O", "O0": "O", "Na": "N", "Nd": "N", "Nt": "N", "N0": "N"}


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
