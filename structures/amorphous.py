"""Amorphous LiPON (any LixPOyNz, including N-free Li3PO4) boxes, built with their chemistry in mind.

:func:`build_lipon` has two modes:

``motif`` (default)
    Integer, charge-balanced counts (:func:`~tfbsim.structures.composition.integer_counts`); anion roles from
    the bridging budget ``b = 4 − (y + z)`` per P (:func:`~tfbsim.structures.motifs.design_anions`: N
    bridges first unless ``nd_fraction`` says otherwise, Nt only with ``allow_nt``, excess anions as free
    O²⁻/N³⁻); rigid PO4/PO3N/PO2N2 tetrahedra joined into monomers, dimers, chains and rings
    (:mod:`~tfbsim.structures.motifs`, :mod:`~tfbsim.structures.motif_geometry`); units placed with random orientations into the largest voids of the
    box at the target density, free anions with their Li next, then the remaining Li into the largest
    voids. No pair comes closer than :data:`~tfbsim.structures.motifs.MIN_DISTANCE_ANG`, and no P comes
    within :data:`~tfbsim.structures.motifs.MIN_NONBONDED_P_ANION_ANG` of an anion it is not bonded to, so a
    coordination analysis finds exactly the designed speciation (``info["speciation_designed"]``).
``random``
    Every atom at a uniformly random spot that respects :data:`MIN_DISTANCE_RANDOM_ANG` only (the usual
    starting point of melt–quench studies; kept for comparison). Such a box needs a pre-relaxation before MD.

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``: the same arguments give the
same structure, atom for atom.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from ..errors import StructureError
from .composition import LIPON_ELEMENTS, CompositionCounts, integer_counts
from .io import set_region
from .motif_geometry import Unit, embed_unit, random_rotation
from .motifs import MIN_DISTANCE_ANG, MIN_NONBONDED_P_ANION_ANG, UnitTopology, design_anions, design_units
from .packing import Packer, cell_widths, remove_overlaps

__all__ = [
    "build_lipon",
    "lipon_cell",
    "MODES",
    "DENSITY_RANGE_G_CM3",
    "MIN_DISTANCE_RANDOM_ANG",
    "pair_min_distances",
]

logger = logging.getLogger(__name__)

MODES = ("motif", "random")
#: Accepted target densities (g/cm³).
DENSITY_RANGE_G_CM3 = (0.5, 6.0)
#: Pair minimum distances (Å) of the ``random`` mode (bonds may form anywhere above them).
MIN_DISTANCE_RANDOM_ANG: dict[tuple[str, str], float] = {
    ("Li", "Li"): 2.00,
    ("Li", "P"): 2.30,
    ("Li", "O"): 1.70,
    ("Li", "N"): 1.80,
    ("P", "P"): 2.60,
    ("P", "O"): 1.45,
    ("P", "N"): 1.50,
    ("O", "O"): 2.20,
    ("N", "O"): 2.20,
    ("N", "N"): 2.20,
}
_SHELL_LI = {"O0": 2, "N0": 3}  # Li placed right around a free O2- / N3- (Li2O-, Li3N-like)
_SHELL_DISTANCE_ANG = {"O0": 1.95, "N0": 2.05}
_AMU_G = 1.66053906660e-24


def _table(table: dict[tuple[str, str], float]):
    def rmin(a: str, b: str) -> float:
        return table.get((a, b), table.get((b, a), 2.0))

    return rmin


def _nonbonded(a: str, b: str) -> float:
    """Minimum distance between atoms of different units (P–anion pairs are never bonded there)."""
    if {a, b} in ({"P", "O"}, {"P", "N"}):
        return MIN_NONBONDED_P_ANION_ANG
    return _table(MIN_DISTANCE_ANG)(a, b)


class _PackingFailed(Exception):
    pass


# ---------------------------------------------------------------------------------------------- cell
def lipon_cell(
    counts: dict[str, int],
    density_g_cm3: float,
    *,
    lateral_ang: tuple[float, float] | None = None,
    lateral_cell_ang: np.ndarray | None = None,
) -> np.ndarray:
    """Cell (rows a, b, c in Å) holding ``counts`` atoms at ``density_g_cm3``.

    Without lateral constraints the cell is cubic. ``lateral_ang=(a, b)`` fixes orthogonal in-plane vectors
    ``(a, 0, 0)``, ``(0, b, 0)``; ``lateral_cell_ang`` (2×3) fixes arbitrary in-plane vectors (e.g. a
    substrate's hexagonal cell). ``c`` then points along the normal ``a × b`` with the length that gives the
    density.
    """
    lo, hi = DENSITY_RANGE_G_CM3
    if not (isinstance(density_g_cm3, (int, float)) and lo <= density_g_cm3 <= hi):
        raise StructureError(
            f"density {density_g_cm3} g/cm³ is outside {lo}–{hi} g/cm³; amorphous LiPON is about 2.4 g/cm³"
        )
    mass_g = sum(atomic_masses[atomic_numbers[el]] * n for el, n in counts.items()) * _AMU_G
    volume = mass_g / density_g_cm3 / 1e-24  # Å^3
    if lateral_ang is not None and lateral_cell_ang is not None:
        raise StructureError("give either lateral_ang or lateral_cell_ang, not both")
    if lateral_ang is not None:
        try:
            a, b = (float(x) for x in lateral_ang)
        except (TypeError, ValueError):
            raise StructureError(f"lateral_ang must be two lengths (Å), got {lateral_ang!r}") from None
        lateral_cell_ang = np.array([[a, 0.0, 0.0], [0.0, b, 0.0]])
    if lateral_cell_ang is None:
        side = volume ** (1.0 / 3.0)
        return np.diag([side, side, side])
    lat = np.asarray(lateral_cell_ang, dtype=float)
    if lat.shape != (2, 3) or not np.all(np.isfinite(lat)):
        raise StructureError(f"lateral_cell_ang must be a 2×3 array of in-plane vectors (Å), got shape {lat.shape}")
    normal = np.cross(lat[0], lat[1])
    area = float(np.linalg.norm(normal))
    if np.any(np.linalg.norm(lat, axis=1) <= 0) or area < 1e-6 * np.prod(np.linalg.norm(lat, axis=1)):
        raise StructureError("lateral cell vectors must be non-zero and not parallel")
    cell = np.vstack([lat, normal / area * (volume / area)])
    widths = cell_widths(cell)
    if widths.min() < 4.0:
        need = int(math.ceil(sum(counts.values()) * 4.0 / widths.min()))
        raise StructureError(
            f"a {sum(counts.values())}-atom box on this lateral cell is only {widths.min():.1f} Å thick "
            f"(cell widths {', '.join(f'{w:.1f}' for w in widths)} Å); use ≥ {need} atoms or a smaller "
            "lateral cell"
        )
    return cell


# ------------------------------------------------------------------------------------------- packing
def _pack_motif(
    cell: np.ndarray,
    units: list[Unit],
    free_roles: list[str],
    n_li: int,
    rng: np.random.Generator,
    spacing_ang: float,
) -> tuple[list[str], np.ndarray, list[tuple[int, int]], list[int]]:
    """Place units, free anions with their Li, then Li; returns symbols, positions, bonds, body ids.

    Units go to the largest voids with random orientations; when none of the tries fits (dense boxes), the
    try with the smallest overlap is kept and all overlaps are removed at the end by rigid-body moves
    (:func:`~tfbsim.structures.packing.remove_overlaps`).
    """
    packer = Packer(cell, list(LIPON_ELEMENTS), _nonbonded, spacing_ang=spacing_ang)
    packer.watch("O")
    symbols: list[str] = []
    positions: list[np.ndarray] = []
    bonds: list[tuple[int, int]] = []
    body: list[int] = []
    soft = 0
    order = sorted(range(len(units)), key=lambda i: -len(units[i].symbols))
    for u in order:
        unit = units[u]
        best: tuple[float, np.ndarray] | None = None
        centers = packer.void_candidates("O", rng, top=16)
        for center in centers:
            for _ in range(4):
                pts = center + unit.positions @ random_rotation(rng).T
                if packer.fits(pts, unit.symbols):
                    best = (0.0, pts)
                    break
                penalty = packer.overlap(pts, unit.symbols)
                if best is None or penalty < best[0]:
                    best = (penalty, pts)
            if best[0] == 0.0:
                break
        soft += best[0] > 0
        pts = best[1]
        start = len(symbols)
        packer.add(pts, unit.symbols)
        symbols += unit.symbols
        positions += list(pts)
        bonds += [(start + i, start + j) for i, j in unit.bonds]
        body += [u] * len(unit.symbols)
    noise = rng.uniform(0.0, 1e-3, size=len(packer.grid_cart))
    next_body = len(units)
    li_left = n_li
    for role in free_roles:
        element = role[0]
        pos, clearance = packer.largest_void(element, noise)
        soft += clearance < 0
        packer.add(pos[None], [element])
        symbols.append(element)
        positions.append(pos)
        body.append(next_body)
        next_body += 1
        for _ in range(min(_SHELL_LI[role], li_left)):
            dirs = rng.normal(size=(64, 3))
            cands = pos + _SHELL_DISTANCE_ANG[role] * dirs / np.linalg.norm(dirs, axis=1)[:, None]
            margin = packer.margins(cands, ["Li"] * len(cands))
            best_i = int(np.argmax(margin))
            if margin[best_i] < 0:
                break  # the remaining Li go into voids below
            packer.add(cands[best_i][None], ["Li"])
            symbols.append("Li")
            positions.append(cands[best_i])
            body.append(next_body)
            next_body += 1
            li_left -= 1
    packer.fields.pop(packer.index["O"], None)
    packer.watch("Li")
    for _ in range(li_left):
        pos, clearance = packer.largest_void("Li", noise)
        soft += clearance < 0
        packer.add(pos[None], ["Li"])
        symbols.append("Li")
        positions.append(pos)
        body.append(next_body)
        next_body += 1
    xyz = np.array(positions)
    if soft:
        xyz, worst, iterations = remove_overlaps(xyz, symbols, np.array(body), cell, _nonbonded)
        logger.debug("overlap removal: %d soft placements, %d iterations, worst %.3f Å", soft, iterations, worst)
        if worst > 0:
            raise _PackingFailed(f"overlaps of up to {worst:.2f} Å remain after {iterations} rigid-body steps")
    return symbols, xyz, bonds, body


def _pack_random(cell: np.ndarray, counts: dict[str, int], rng: np.random.Generator, spacing_ang: float) -> tuple[list[str], np.ndarray]:
    """Random sequential insertion of single atoms with :data:`MIN_DISTANCE_RANDOM_ANG` only.

    Each atom goes to a uniformly random spot among those where it fits; once the box is jammed, the
    remaining atoms go to the largest voids and the last overlaps are pushed apart.
    """
    packer = Packer(cell, list(LIPON_ELEMENTS), _table(MIN_DISTANCE_RANDOM_ANG), spacing_ang=spacing_ang)
    elements = [el for el in LIPON_ELEMENTS for _ in range(counts[el])]
    rng.shuffle(elements)
    packer.watch(*sorted(set(elements)))
    half_step = 0.5 / packer.n_grid
    positions = []
    soft = 0
    for el in elements:
        field = packer.clearance_field(el)
        valid = np.flatnonzero(field >= 0)
        if len(valid):
            i = int(valid[rng.integers(len(valid))])
            pos = (packer.grid_frac[i] + rng.uniform(-half_step, half_step)) @ cell
            if packer.margins(pos[None], [el])[0] < 0:
                pos = packer.grid_cart[i]
        else:  # jammed: take the largest void, overlaps are removed below
            pos = packer.grid_cart[int(np.argmax(field))]
            soft += 1
        packer.add(pos[None], [el])
        positions.append(pos)
    xyz = np.array(positions)
    if soft:
        xyz, worst, iterations = remove_overlaps(
            xyz, elements, np.arange(len(elements)), cell, _table(MIN_DISTANCE_RANDOM_ANG)
        )
        if worst > 0:
            raise _PackingFailed(f"overlaps of up to {worst:.2f} Å remain after {iterations} steps")
    return list(elements), xyz


# --------------------------------------------------------------------------------------- speciation
def _designed_speciation(topologies: list[UnitTopology], roles: dict[str, int], n_p: int) -> dict:
    q = Counter(unit.bridges_of(p) for unit in topologies for p in range(unit.n_p))
    n_n = roles["Na"] + roles["Nd"] + roles["Nt"] + roles["N0"]
    n_o = roles["Onb"] + roles["Ob"] + roles["O0"]
    return {
        "N": {k: (roles[k] / n_n if n_n else 0.0) for k in ("Na", "Nd", "Nt", "N0")},
        "P": {f"Q{n}": q.get(n, 0) / n_p for n in range(5)},
        "O": {k: (roles[k] / n_o if n_o else 0.0) for k in ("Onb", "Ob", "O0")},
        "counts": {**{k: int(v) for k, v in roles.items()}, **{f"Q{n}": int(q.get(n, 0)) for n in range(5)}},
    }


def pair_min_distances(atoms: Atoms, cutoff_ang: float = 4.0) -> dict[str, float]:
    """Shortest distance (Å) of each element pair ``"A-B"`` (alphabetical) in a periodic structure."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff_ang)
    sym = np.array(atoms.get_chemical_symbols())
    out: dict[str, float] = {}
    for a, b, dist in zip(sym[i], sym[j], d):
        key = "-".join(sorted((a, b)))
        if dist < out.get(key, np.inf):
            out[key] = float(dist)
    return out


def _check_distances(atoms: Atoms, bonds: set[tuple[int, int]] | None, table) -> None:
    """Raise if any pair violates the table (and, in motif mode, a non-designed P–anion contact exists)."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, 3.0)
    sym = np.array(atoms.get_chemical_symbols())
    for a, b, x, y, dist in zip(i, j, sym[i], sym[j], d):
        if a >= b:
            continue
        limit = table(x, y)
        if bonds is not None and {x, y} in ({"P", "O"}, {"P", "N"}) and (a, b) not in bonds and (b, a) not in bonds:
            limit = MIN_NONBONDED_P_ANION_ANG
        if dist < limit - 1e-6:  # pragma: no cover - the packer guarantees this; a failure here is a bug
            raise StructureError(f"internal: atoms {a} ({x}) and {b} ({y}) are {dist:.2f} Å apart (< {limit} Å)")


# -------------------------------------------------------------------------------------------- public
def build_lipon(
    composition: str,
    n_atoms: int,
    *,
    density_g_cm3: float = 2.4,
    mode: str = "motif",
    nd_fraction: float | None = None,
    allow_nt: bool = False,
    nt_fraction: float | None = None,
    lateral_ang: tuple[float, float] | None = None,
    lateral_cell_ang: np.ndarray | None = None,
    seed: int = 0,
    allow_charged: bool = False,
    max_attempts: int = 5,
    grid_spacing_ang: float = 0.5,
) -> Atoms:
    """Build a periodic amorphous LixPOyNz box.

    Parameters
    ----------
    composition
        Formula per P, e.g. ``"Li2.94PO3.50N0.31"``, ``"Li3PO4"``, ``"Li2PO2N"``.
    n_atoms
        Target number of atoms (the achieved number is within a few atoms; see ``info["counts"]``).
    density_g_cm3
        Target density (g/cm³, 0.5–6); the cell volume follows exactly.
    mode
        ``"motif"`` (chemistry-aware, default) or ``"random"`` (minimum distances only).
    nd_fraction
        Share of N that bridges P (Nd, plus Nt when allowed); default: N bridges first. Motif mode only.
    allow_nt
        Permit N bonded to three P (Nt); off by default (2018 AIMD/neutron work found none).
    nt_fraction
        Share of N that is Nt (needs ``allow_nt``); default with ``allow_nt``: as many as fit.
    lateral_ang
        In-plane lengths ``(a, b)`` (Å) of an orthogonal cell; ``c`` follows from the density.
    lateral_cell_ang
        In-plane cell vectors as a 2×3 array (Å), e.g. a substrate's lateral cell (may be non-orthogonal).
    seed
        Seed of the one random generator (same seed, same structure).
    allow_charged
        Build a formula whose formal charge (Li⁺ P⁵⁺ O²⁻ N³⁻) exceeds 0.05 e per P.
    max_attempts
        Fresh packing attempts before giving up.
    grid_spacing_ang
        Spacing of the void-search grid (Å).

    Returns
    -------
    ase.Atoms
        Periodic cell, atoms ordered Li, P, O, N. ``info``: ``tfbsim_name``, ``formula`` (achieved, per P),
        ``target_formula``, ``achieved_formula``, ``counts``, ``charge_per_p`` (target formula, e),
        ``charge_total_e`` (of the box), ``density_g_cm3``, ``speciation_designed`` (motif mode:
        ``{"N": {Na, Nd, Nt, N0}, "P": {Q0..Q4}, "O": {Onb, Ob, O0}}`` fractions plus ``counts``),
        ``min_distance_ang`` (shortest pair), ``min_distance_by_pair_ang``, ``lateral_fixed``, ``build``
        (all arguments). ``arrays["region"] = "lipon"``.

    Raises
    ------
    StructureError
        Unknown element, non-positive amounts, no P, charge imbalance, density outside 0.5–6 g/cm³, too few
        atoms (the message gives the minimum), infeasible ``nd_fraction``/Nt requests, or a box that cannot
        be packed (lower the density or change the seed).
    """
    if mode not in MODES:
        raise StructureError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "random" and (nd_fraction is not None or nt_fraction is not None or allow_nt):
        raise StructureError("nd_fraction, nt_fraction and allow_nt shape the motif mode; drop them for mode='random'")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise StructureError(f"seed must be an integer, got {seed!r}")
    lo, hi = DENSITY_RANGE_G_CM3
    if not isinstance(density_g_cm3, (int, float)) or not (lo <= density_g_cm3 <= hi):
        raise StructureError(
            f"density {density_g_cm3} g/cm³ is outside {lo}–{hi} g/cm³; amorphous LiPON is about 2.4 g/cm³"
        )
    if max_attempts < 1 or grid_spacing_ang <= 0:
        raise StructureError("max_attempts must be ≥ 1 and grid_spacing_ang > 0")
    comp: CompositionCounts = integer_counts(composition, n_atoms, allow_charged=allow_charged)
    counts = comp.counts
    cell = lipon_cell(counts, density_g_cm3, lateral_ang=lateral_ang, lateral_cell_ang=lateral_cell_ang)
    rng = np.random.default_rng(int(seed))
    speciation = None
    bonds: list[tuple[int, int]] = []
    last_error = ""
    if mode == "motif":
        design = design_anions(
            counts["P"], counts["O"], counts["N"], nd_fraction=nd_fraction, allow_nt=allow_nt, nt_fraction=nt_fraction
        )
        topologies = design_units(design, rng)
        ring_cache: dict = {}
        units = [embed_unit(t, rng, cache=ring_cache) for t in topologies]
        free_roles = ["O0"] * design.roles["O0"] + ["N0"] * design.roles["N0"]
        for attempt in range(max_attempts):
            try:
                symbols, positions, bonds, _ = _pack_motif(cell, units, free_roles, counts["Li"], rng, grid_spacing_ang)
                break
            except _PackingFailed as exc:
                last_error = str(exc)
                logger.info("packing attempt %d failed: %s", attempt + 1, exc)
        else:
            raise StructureError(
                f"could not pack {comp.n_atoms} atoms of {comp.achieved_formula} at {density_g_cm3} g/cm³ in "
                f"{max_attempts} attempts ({last_error}); lower the density (the melt–quench restores it), "
                "use more atoms or another seed"
            )
        speciation = _designed_speciation(topologies, design.roles, counts["P"])
    else:
        for attempt in range(max_attempts):
            try:
                symbols, positions = _pack_random(cell, counts, rng, grid_spacing_ang)
                break
            except _PackingFailed as exc:
                last_error = str(exc)
                logger.info("random packing attempt %d failed: %s", attempt + 1, exc)
        else:
            raise StructureError(
                f"could not place {comp.n_atoms} random atoms at {density_g_cm3} g/cm³ in {max_attempts} attempts "
                f"({last_error}); lower the density or use the motif mode"
            )
    # order Li, P, O, N (stable), keeping the designed bonds
    rank = {el: k for k, el in enumerate(LIPON_ELEMENTS)}
    order = np.argsort([rank[s] for s in symbols], kind="stable")
    new_index = np.empty(len(order), dtype=int)
    new_index[order] = np.arange(len(order))
    atoms = Atoms([symbols[k] for k in order], positions=positions[order], cell=cell, pbc=True)
    atoms.wrap()
    bond_set = {(int(new_index[i]), int(new_index[j])) for i, j in bonds} if mode == "motif" else None
    _check_distances(atoms, bond_set, _table(MIN_DISTANCE_ANG if mode == "motif" else MIN_DISTANCE_RANDOM_ANG))
    by_pair = pair_min_distances(atoms)
    volume_cm3 = atoms.get_volume() * 1e-24
    density = float(atoms.get_masses().sum() * _AMU_G / volume_cm3)
    atoms.info.update(
        tfbsim_name="a-" + ("LiPON" if counts["N"] else comp.achieved_formula),
        formula=comp.achieved_formula,
        reference=(
            "tfbsim amorphous builder, mode=" + mode
            + ("; rigid PO4/PO3N/PO2N2 units, b = 4 - (y + z) bridges per P" if mode == "motif" else "")
        ),
        target_formula=comp.target_formula,
        achieved_formula=comp.achieved_formula,
        counts=dict(counts),
        charge_per_p=float(comp.charge_per_p_target),
        charge_total_e=int(comp.charge_total_e),
        density_g_cm3=density,
        min_distance_ang=float(min(by_pair.values())) if by_pair else None,
        min_distance_by_pair_ang=by_pair,
        lateral_fixed=bool(lateral_ang is not None or lateral_cell_ang is not None),
        build={
            "composition": composition,
            "n_atoms": int(n_atoms),
            "density_g_cm3": float(density_g_cm3),
            "mode": mode,
            "nd_fraction": nd_fraction,
            "allow_nt": bool(allow_nt),
            "nt_fraction": nt_fraction,
            "lateral_ang": None if lateral_ang is None else [float(x) for x in lateral_ang],
            "lateral_cell_ang": None if lateral_cell_ang is None else np.asarray(lateral_cell_ang, float).tolist(),
            "seed": int(seed),
            "allow_charged": bool(allow_charged),
        },
    )
    if speciation is not None:
        atoms.info["speciation_designed"] = speciation
    set_region(atoms, "lipon")
    logger.info(
        "built %d-atom %s box (%s mode), %.3f g/cm³, cell %s Å",
        len(atoms), comp.achieved_formula, mode, density, np.round(atoms.cell.lengths(), 2).tolist(),
    )
    return atoms
