"""Stack phase blocks along z: gaps, vacuum or periodic sandwich, lateral shifts, region tags, distance checks.

Every block shares the final in-plane cell (a ∥ x, b in the xy plane) and has its atoms from z = 0 up. The
first block sits at the bottom. Two geometries:

periodic sandwich (``vacuum_ang=None``)
    The first block starts at z = gap/2 and the cell is ``gap/2`` taller than the top block, so the
    periodic image of the bottom block faces the top block across a second gap: an N-phase stack has N
    interfaces, the one across the cell boundary at z = 0. Nothing is fixed unless ``fix_bottom_ang`` says so.
slab + vacuum (``vacuum_ang=V``)
    The first block starts at z = V/2, the top block ends V/2 below the cell top; N − 1 interfaces; the
    bottom ``fix_bottom_ang`` (default 3 Å) of the first block are tagged ``fixed``.

The gap is the z distance between the outermost atom planes of neighbouring blocks, and interfaces are
reported in the middle of each gap (``info["interfaces_z_ang"]``). Every pair of atoms from different phases
is checked against :func:`min_cross_distance_ang` (three quarters of the sum of covalent radii, at least
1.2 Å): the gap guarantees it along z, but a small gap or a lateral shift can put atoms on top of each
other, which raises :class:`~tfbsim.errors.StructureError`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from ..errors import StructureError

__all__ = [
    "Block",
    "stack_blocks",
    "min_cross_distance_ang",
    "cross_distances",
    "whole_units_along_c",
    "check_geometry",
    "DEFAULT_FIX_BOTTOM_ANG",
]

logger = logging.getLogger(__name__)

#: Thickness of the fixed bottom layer of a slab + vacuum cell when none is given (Å).
DEFAULT_FIX_BOTTOM_ANG = 3.0
_OVERLAP_FACTOR = 0.75
_OVERLAP_FLOOR_ANG = 1.2
#: Bonds that hold a glass's structural units together (Å): P–O and P–N.
_UNIT_BONDS_ANG = {("P", "O"): 1.95, ("P", "N"): 2.05}


def min_cross_distance_ang(a: str, b: str) -> float:
    """Smallest allowed distance (Å) between atoms of elements ``a`` and ``b`` of different phases.

    ``max(0.75 (r_a + r_b), 1.2 Å)`` with ASE's covalent radii (Cordero et al. 2008): e.g. Li–O 1.46 Å,
    Li–Li 1.92 Å, Co–O 1.44 Å — well below any bond, so only genuinely overlapping atoms are refused.
    """
    ra = covalent_radii[atomic_numbers[a]]
    rb = covalent_radii[atomic_numbers[b]]
    return max(_OVERLAP_FACTOR * (ra + rb), _OVERLAP_FLOOR_ANG)


@dataclass
class Block:
    """One phase ready to stack.

    Attributes
    ----------
    atoms
        Atoms in the final in-plane cell (a ∥ x), lowest atom at z = 0; ``arrays["fixed"]`` optional.
    region
        Region label of its atoms.
    kind
        ``crystal`` or ``glass``.
    report
        Phase entry of the JSON report (filled in further by :func:`stack_blocks`).
    """

    atoms: Atoms
    region: str
    kind: str
    report: dict[str, Any] = field(default_factory=dict)


def whole_units_along_c(atoms: Atoms, bonds_ang: dict[tuple[str, str], float] | None = None) -> tuple[Atoms, dict]:
    """Make bonded units (P–O/P–N clusters) whole along c and put each unit's centre in [0, 1) of c.

    A periodic glass box wraps phosphate units across its c boundary; stacked on a crystal, the two halves
    would end up on opposite sides of the glass. Units that percolate along c (an infinite network) cannot
    be made whole; they keep their wrapped positions and are counted in ``n_percolating_atoms``.

    Returns
    -------
    (Atoms, dict)
        Copy with unwrapped z (lowest atom shifted to z = 0, c must be ⟂ a, b) and
        ``{"n_units": ..., "n_percolating_atoms": ...}``.
    """
    from ase.neighborlist import neighbor_list
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    bonds = bonds_ang or _UNIT_BONDS_ANG
    work = atoms.copy()
    work.wrap()
    symbols = set(work.get_chemical_symbols())
    cutoffs = {k: v for k, v in bonds.items() if set(k) <= symbols}
    n = len(work)
    frac = work.get_scaled_positions(wrap=True)
    if cutoffs:
        i, j, shifts = neighbor_list("ijS", work, cutoffs)
    else:
        i = j = np.zeros(0, dtype=int)
        shifts = np.zeros((0, 3), dtype=int)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    n_comp, labels = connected_components(graph, directed=False)
    image = np.zeros(n, dtype=int)
    done = np.zeros(n, dtype=bool)
    percolating = np.zeros(n, dtype=bool)
    neighbours: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for a, b, s in zip(i, j, shifts[:, 2]):
        neighbours[a].append((int(b), int(s)))
    for start in range(n):
        if done[start]:
            continue
        done[start] = True
        queue = [start]
        members = [start]
        conflict = False
        while queue:
            a = queue.pop()
            for b, s in neighbours[a]:
                want = image[a] + s
                if not done[b]:
                    done[b] = True
                    image[b] = want
                    queue.append(b)
                    members.append(b)
                elif image[b] != want:
                    conflict = True
        idx = np.array(members)
        if conflict:
            image[idx] = 0
            percolating[idx] = True
            continue
        centre = float(np.mean(frac[idx, 2] + image[idx]))
        image[idx] -= int(math.floor(centre))
    frac[:, 2] += image
    work.set_scaled_positions(frac)
    work.positions[:, 2] -= work.positions[:, 2].min()
    if percolating.any():
        logger.warning(
            "%d glass atoms belong to units that percolate along c; they were cut at the box boundary",
            int(percolating.sum()),
        )
    return work, {"n_units": int(n_comp), "n_percolating_atoms": int(percolating.sum())}


def cross_distances(atoms: Atoms, cutoff_ang: float = 4.0) -> dict[str, Any]:
    """Shortest distances between atoms of different regions (periodic images included).

    Returns
    -------
    dict
        ``min_ang`` (overall, ``None`` if no pair within ``cutoff_ang``), ``by_regions`` {"A|B": Å},
        ``violations`` (pairs closer than :func:`min_cross_distance_ang`, worst first, at most 10 listed:
        ``{"i", "j", "elements", "regions", "distance_ang", "minimum_ang"}``), ``n_violations``.
    """
    from ase.neighborlist import neighbor_list

    regions = np.asarray(atoms.arrays["region"]).astype(str)
    i, j, d = neighbor_list("ijd", atoms, cutoff_ang)
    keep = (regions[i] != regions[j]) & (i < j)
    i, j, d = i[keep], j[keep], d[keep]
    symbols = np.array(atoms.get_chemical_symbols())
    by_regions: dict[str, float] = {}
    for a, b, dist in zip(regions[i], regions[j], d):
        key = "|".join(sorted((str(a), str(b))))
        if dist < by_regions.get(key, np.inf):
            by_regions[key] = float(dist)
    table = {}
    limits = np.empty(len(d))
    for k, (x, y) in enumerate(zip(symbols[i], symbols[j])):
        pair = (x, y) if x <= y else (y, x)
        if pair not in table:
            table[pair] = min_cross_distance_ang(*pair)
        limits[k] = table[pair]
    bad = np.flatnonzero(d < limits - 1e-9)
    bad = bad[np.argsort(d[bad] - limits[bad])]
    violations = [
        {
            "i": int(i[k]), "j": int(j[k]), "elements": [str(symbols[i[k]]), str(symbols[j[k]])],
            "regions": [str(regions[i[k]]), str(regions[j[k]])], "distance_ang": float(d[k]),
            "minimum_ang": float(limits[k]),
        }
        for k in bad[:10]
    ]
    return {
        "min_ang": float(d.min()) if len(d) else None,
        "by_regions": by_regions,
        "violations": violations,
        "n_violations": int(len(bad)),
    }


def _shift_list(shift_ang, n_interfaces: int) -> list[np.ndarray]:
    if shift_ang is None:
        return [np.zeros(2)] * n_interfaces
    try:
        arr = np.asarray(shift_ang, dtype=float)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape == (2,) and np.all(np.isfinite(arr)):
        return [arr] + [np.zeros(2)] * (n_interfaces - 1)
    if arr.ndim == 2 and arr.shape[1] == 2 and len(arr) == n_interfaces and np.all(np.isfinite(arr)):
        return [row for row in arr]
    raise StructureError(
        f"lateral shift must be one (dx, dy) pair in Å (first interface) or one pair per interface "
        f"({n_interfaces}), got {shift_ang!r}"
    )


def check_geometry(gap_ang: float, vacuum_ang: float | None, shift_ang: Any, fix_bottom_ang: float | None,
                   n_blocks: int) -> tuple[list[np.ndarray], float]:
    """Validate the stacking settings (before any work); returns the per-interface shifts and the fixed depth.

    Raises
    ------
    StructureError
        Negative gap, vacuum not > 0, malformed shift, negative fixed depth.
    """
    gap_ok = isinstance(gap_ang, (int, float)) and math.isfinite(gap_ang) and gap_ang >= 0
    if isinstance(gap_ang, bool) or not gap_ok:
        raise StructureError(f"gap_ang must be a length ≥ 0 Å, got {gap_ang!r}")
    periodic = vacuum_ang is None
    if not periodic and (isinstance(vacuum_ang, bool) or not (
            isinstance(vacuum_ang, (int, float)) and math.isfinite(vacuum_ang) and vacuum_ang > 0)):
        raise StructureError(f"vacuum_ang must be > 0 Å (or None for a periodic sandwich), got {vacuum_ang!r}")
    shifts = _shift_list(shift_ang, n_blocks - 1)
    if fix_bottom_ang is None:
        fix_bottom_ang = 0.0 if periodic else DEFAULT_FIX_BOTTOM_ANG
    if isinstance(fix_bottom_ang, bool) or not (
            isinstance(fix_bottom_ang, (int, float)) and math.isfinite(fix_bottom_ang) and fix_bottom_ang >= 0):
        raise StructureError(f"fix_bottom_ang must be ≥ 0 Å, got {fix_bottom_ang!r}")
    return shifts, float(fix_bottom_ang)


def stack_blocks(
    blocks: Sequence[Block],
    *,
    gap_ang: float = 2.0,
    vacuum_ang: float | None = None,
    shift_ang: Any = None,
    fix_bottom_ang: float | None = None,
    check: bool = True,
) -> tuple[Atoms, dict[str, Any]]:
    """Stack blocks bottom to top into one cell with region tags (see the module docstring).

    Parameters
    ----------
    blocks
        Phases bottom to top, all in the same in-plane cell.
    gap_ang
        z distance between the outermost atom planes of neighbouring phases (Å, ≥ 0).
    vacuum_ang
        ``None``: periodic sandwich; otherwise the vacuum above the top phase plus below the bottom one (Å).
    shift_ang
        In-plane shift (dx, dy) in Å of everything above the first interface, or one pair per interface
        between blocks (each moves everything above it).
    fix_bottom_ang
        Tag the first block's atoms within this distance of its lowest atom as fixed (Å). Default: 3 Å with
        vacuum, none for a periodic sandwich.
    check
        Refuse pairs of atoms from different phases closer than :func:`min_cross_distance_ang`.

    Returns
    -------
    (Atoms, dict)
        The cell (``arrays["region"]``, ``arrays["fixed"]``, ``info["interfaces_z_ang"]``,
        ``info["phase_z_ranges_ang"]``) and a geometry report: ``interfaces`` (z, lower, upper phase),
        ``interfaces_z_ang``, ``z_ranges_ang``, ``cross_distances`` (:func:`cross_distances`),
        ``periodic_sandwich``, ``cell_ang``.

    Raises
    ------
    StructureError
        Inconsistent in-plane cells, bad gap/vacuum/shift, or overlapping atoms across an interface.
    """
    if len(blocks) < 2:
        raise StructureError("stacking needs at least two phases")
    shifts, fix_bottom_ang = check_geometry(gap_ang, vacuum_ang, shift_ang, fix_bottom_ang, len(blocks))
    periodic = vacuum_ang is None
    lateral = np.asarray(blocks[0].atoms.cell[:2], dtype=float)
    for block in blocks[1:]:
        if not np.allclose(block.atoms.cell[:2], lateral, atol=1e-6):
            raise StructureError(
                f"phase {block.region} has another in-plane cell than {blocks[0].region}; all phases must share it"
            )

    z_cursor = gap_ang / 2.0 if periodic else float(vacuum_ang) / 2.0
    symbols: list[str] = []
    positions: list[np.ndarray] = []
    regions: list[str] = []
    fixed: list[np.ndarray] = []
    z_ranges: dict[str, list[float]] = {}
    tops: list[float] = []
    bottoms: list[float] = []
    offset = np.zeros(3)
    for k, block in enumerate(blocks):
        pos = block.atoms.positions.copy()
        pos[:, 2] -= pos[:, 2].min()
        if k > 0:
            offset[:2] += shifts[k - 1]
        pos += [offset[0], offset[1], z_cursor]
        blk_fixed = np.asarray(block.atoms.arrays.get("fixed", np.zeros(len(pos), dtype=bool)), dtype=bool).copy()
        if k == 0 and fix_bottom_ang > 0:
            blk_fixed |= pos[:, 2] - pos[:, 2].min() <= fix_bottom_ang + 1e-9
        symbols += block.atoms.get_chemical_symbols()
        positions.append(pos)
        regions += [block.region] * len(pos)
        fixed.append(blk_fixed)
        bottoms.append(float(pos[:, 2].min()))
        tops.append(float(pos[:, 2].max()))
        z_ranges[block.region] = [bottoms[-1], tops[-1]]
        z_cursor = tops[-1] + gap_ang
    height = tops[-1] + (gap_ang / 2.0 if periodic else float(vacuum_ang) / 2.0)
    cell = np.vstack([lateral, [0.0, 0.0, height]])
    atoms = Atoms(symbols, positions=np.vstack(positions), cell=cell, pbc=True)
    atoms.wrap(pbc=[True, True, False])
    atoms.new_array("region", np.array(regions, dtype=object).astype(str))
    atoms.new_array("fixed", np.concatenate(fixed))
    interfaces = [
        {"z_ang": 0.5 * (tops[k] + bottoms[k + 1]), "lower": blocks[k].region, "upper": blocks[k + 1].region}
        for k in range(len(blocks) - 1)
    ]
    if periodic:
        interfaces.insert(0, {"z_ang": 0.0, "lower": blocks[-1].region, "upper": blocks[0].region,
                              "across_cell_boundary": True})
    cutoff = max(4.0, gap_ang + 2.5)
    distances = cross_distances(atoms, cutoff)
    for iface in interfaces:
        key = "|".join(sorted((iface["lower"], iface["upper"])))
        iface["min_distance_ang"] = distances["by_regions"].get(key)
    if check and distances["n_violations"]:
        worst = distances["violations"][0]
        raise StructureError(
            f"{distances['n_violations']} pairs of atoms overlap across interfaces after stacking: the worst, "
            f"{worst['elements'][0]} ({worst['regions'][0]}) and {worst['elements'][1]} ({worst['regions'][1]}), "
            f"are {worst['distance_ang']:.2f} Å apart (minimum {worst['minimum_ang']:.2f} Å); increase the gap "
            f"(now {gap_ang:g} Å, e.g. --gap-ang 2) or change the lateral shift"
        )
    if periodic and len(blocks) > 2 and blocks[0].kind == "crystal" and blocks[-1].kind == "crystal":
        logger.warning(
            "periodic sandwich: %s touches %s across the cell boundary (a short circuit for a full cell); "
            "give a vacuum (e.g. --vacuum-ang 15) for a cell with two free surfaces",
            blocks[-1].region, blocks[0].region,
        )
    atoms.info["interfaces_z_ang"] = [float(f["z_ang"]) for f in interfaces]
    atoms.info["phase_z_ranges_ang"] = z_ranges
    atoms.info["periodic_sandwich"] = bool(periodic)
    report = {
        "interfaces": interfaces,
        "interfaces_z_ang": atoms.info["interfaces_z_ang"],
        "z_ranges_ang": z_ranges,
        "cross_distances": distances,
        "periodic_sandwich": bool(periodic),
        "cell_ang": cell.tolist(),
        "gap_ang": float(gap_ang),
        "vacuum_ang": None if periodic else float(vacuum_ang),
        "fix_bottom_ang": float(fix_bottom_ang),
        "n_fixed": int(atoms.arrays["fixed"].sum()),
        "lateral_shift_ang": [s.tolist() for s in shifts],
    }
    return atoms, report
