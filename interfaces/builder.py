"""``build_interface``: electrode/electrolyte interfaces and full thin-film cells as one periodic cell.

The stack is written bottom to top, e.g. ``"li:100,lipon,licoo2:104"`` (see :mod:`tfbsim.interfaces.phases`).
What happens:

1. Each crystal phase is cut with :func:`tfbsim.structures.slabs.make_slab` (bare slab, minimal in-plane cell,
   recommended or chosen termination); a phase thinner than two repeat layers of its facet is refused.
2. The lateral cell (:mod:`tfbsim.interfaces.matching`): with one crystal, its near-square supercell of at
   least ``lateral_min_ang``; with two or more, a ZSL coincidence cell: one reference crystal keeps its
   lattice, the others carry the strain (default: Li metal, by far the softest phase, else every crystal
   above the lowest non-Li one). The glass is built on exactly that cell (no strain) with
   :func:`tfbsim.structures.amorphous.build_lipon`, or read from ``lipon_from`` (a box whose in-plane cell
   is a supercell of the stack's lattice, e.g. a glass quenched with ``tfbsim build lipon --lateral-ang``).
3. The phases are stacked (:mod:`tfbsim.interfaces.stacking`): periodic sandwich or slab + vacuum, gaps,
   optional lateral shift, region tags, fixed bottom layers, cross-interface distance check.

This is a pure builder (no potential, no MD). Melt–quench on the substrate and relaxation along the normal
are composed in :mod:`tfbsim.workflows.protocols.interface_quench`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import StructureError
from .matching import (
    LatticeMatch,
    find_supercell_matrix,
    lateral_supercell,
    lateral_widths_ang,
    match_lattices,
    strain_pct,
)
from .phases import (
    DEFAULT_CRYSTAL_THICKNESS_ANG,
    DEFAULT_GLASS_THICKNESS_ANG,
    DEFAULT_LIPON_COMPOSITION,
    PhaseSpec,
    parse_stack,
)
from .stacking import Block, check_geometry, stack_blocks, whole_units_along_c

__all__ = ["build_interface", "repeat_distance_ang", "glass_layer_ang"]

logger = logging.getLogger(__name__)

_AVOGADRO = 6.02214076e23
_AMU_G = 1.66053906660e-24


# ------------------------------------------------------------------------------------------ crystals
def repeat_distance_ang(bulk: Atoms, miller: Sequence[int]) -> float:
    """Repeat distance (Å) of a crystal along the normal of ``miller``: the spacing of its lattice planes.

    Computed in the primitive lattice (so bcc Li (100) gives a/2 and LiCoO2 (003) gives c/3): the shortest
    primitive reciprocal-lattice vector along the conventional (hkl) normal has length 1/d.
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = AseAtomsAdaptor.get_structure(bulk)
    prim = structure.get_primitive_structure(tolerance=0.01)
    conv = np.asarray(structure.lattice.matrix)
    g = np.asarray(miller, dtype=float) @ np.linalg.inv(conv).T  # conventional reciprocal (no 2π)
    p = np.asarray(prim.lattice.matrix)
    h = p @ g  # indices in the primitive reciprocal basis (a'_i · G)
    for scale in range(1, 49):
        cand = h * scale
        if np.allclose(cand, np.rint(cand), atol=1e-4):
            ints = np.rint(cand).astype(int)
            gcd = math.gcd(*[abs(int(v)) for v in ints])
            ints = ints // gcd
            g_prim = ints @ np.linalg.inv(p).T
            return 1.0 / float(np.linalg.norm(g_prim))
    return 1.0 / float(np.linalg.norm(g))  # pragma: no cover - irrational orientation cannot happen


def _crystal_slab(phase: PhaseSpec, seed: int) -> tuple[Atoms, dict]:
    from ..structures.crystals import build_crystal
    from ..structures.slabs import make_slab

    parent = build_crystal(phase.name)
    d_ang = repeat_distance_ang(parent, phase.miller)
    minimum = 2.0 * d_ang
    thickness = phase.thickness_ang
    if thickness is None:
        thickness = max(DEFAULT_CRYSTAL_THICKNESS_ANG, minimum + 0.01)
    elif thickness < minimum - 1e-9:
        raise StructureError(
            f"{phase.region} ({phase.facet_label}) is {thickness:g} Å thick, less than two layers "
            f"(2 × {d_ang:.2f} Å = {minimum:.2f} Å); give at least {math.ceil(minimum * 10) / 10:g} Å"
        )
    if phase.li_fraction is not None:
        bulk = build_crystal(phase.name, supercell=(2, 2, 1), li_fraction=phase.li_fraction,
                             ordering=phase.ordering, seed=seed)
    else:
        bulk = parent
    slab = make_slab(bulk, phase.miller, thickness_ang=float(thickness), vacuum_ang=0.0,
                     termination=phase.termination, orthogonal=False)
    meta = {
        "repeat_ang": d_ang,
        "thickness_requested_ang": float(thickness),
        "termination": {k: slab.info["termination"][k] for k in (
            "index", "top", "bottom", "stoichiometric", "symmetric", "polar", "dipole_e_ang", "reconstruction")},
        "n_planes": int(slab.info["n_layers"]),
        "reference": bulk.info.get("reference"),
        "li_fraction": bulk.info.get("li_fraction"),
    }
    return slab, meta


def _supercell_atoms(slab: Atoms, matrix: np.ndarray, cell2: np.ndarray) -> Atoms:
    """Lateral supercell ``matrix`` of a bare slab, mapped onto the in-plane cell ``cell2`` (2×2, Å).

    Fractional in-plane coordinates of the supercell are kept (this applies the rotation and the strain);
    z is unchanged.
    """
    base = np.asarray(slab.cell[:2, :2], dtype=float)
    m = np.asarray(matrix, dtype=float)
    corners = np.array([[0, 0], m[0], m[1], m[0] + m[1]])
    lo = np.floor(corners.min(axis=0)).astype(int) - 1
    hi = np.ceil(corners.max(axis=0)).astype(int) + 1
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    shifts = np.stack([ii.ravel(), jj.ravel()], axis=1) @ base
    xy = slab.positions[:, :2]
    new_inv = np.linalg.inv(m @ base)
    symbols = np.array(slab.get_chemical_symbols())
    frac_all = ((xy[None, :, :] + shifts[:, None, :]) @ new_inv).reshape(-1, 2)
    z_all = np.tile(slab.positions[:, 2], len(shifts))
    sym_all = np.tile(symbols, len(shifts))
    fixed_all = np.tile(np.asarray(slab.arrays.get("fixed", np.zeros(len(slab), bool)), bool), len(shifts))
    eps = 1e-7
    keep = np.all((frac_all >= -eps) & (frac_all < 1.0 - eps), axis=1)
    n_expected = len(slab) * round(abs(np.linalg.det(m)))
    if keep.sum() != n_expected:  # pragma: no cover - guards the lattice bookkeeping
        raise StructureError(f"internal error: lateral supercell has {keep.sum()} atoms, expected {n_expected}")
    frac = np.clip(frac_all[keep], 0.0, None)
    pos = np.column_stack([frac @ cell2, z_all[keep]])
    out = Atoms(list(sym_all[keep]), positions=pos, cell=np.vstack([np.column_stack([cell2, [0, 0]]),
                                                                      [0, 0, float(slab.cell[2, 2])]]), pbc=True)
    out.new_array("fixed", fixed_all[keep])
    return out


# ---------------------------------------------------------------------------------------------- glass
def glass_layer_ang(composition: str, density_g_cm3: float) -> float:
    """Mean spacing of phosphate units (Å), (volume per P)^(1/3), at ``density_g_cm3``."""
    from ase.data import atomic_masses, atomic_numbers

    from ..structures.composition import normalise_per_p

    per_p = normalise_per_p(composition)
    mass = sum(atomic_masses[atomic_numbers[el]] * n for el, n in per_p.items())
    return (mass / density_g_cm3 / _AVOGADRO * 1e24) ** (1.0 / 3.0)


def _glass_n_atoms(composition: str, density_g_cm3: float, area_ang2: float, thickness_ang: float) -> int:
    from ase.data import atomic_masses, atomic_numbers

    from ..structures.composition import normalise_per_p

    per_p = normalise_per_p(composition)
    mass = sum(atomic_masses[atomic_numbers[el]] * n for el, n in per_p.items())
    atoms_per_p = sum(per_p.values())
    n_p = density_g_cm3 * area_ang2 * thickness_ang * 1e-24 * _AVOGADRO / mass
    return max(int(round(n_p * atoms_per_p)), 1)


def _check_glass_thickness(region: str, thickness: float, layer: float, hint: str) -> None:
    if thickness < 2.0 * layer - 1e-9:
        raise StructureError(
            f"{region} is {thickness:.2f} Å thick, less than two layers of phosphate units "
            f"(2 × {layer:.2f} Å = {2 * layer:.2f} Å); {hint}"
        )


def _read_glass(path: str | Path) -> Atoms:
    from ..structures.io import read_structure
    from ..structures.slab_cell import standardise

    atoms = read_structure(Path(path))
    cell = np.asarray(atoms.cell[:], dtype=float)
    if len(atoms) == 0 or not np.all(atoms.pbc) or atoms.cell.rank != 3:
        raise StructureError(f"{path}: the glass must be a 3-D periodic box (e.g. from `tfbsim build lipon`)")
    atoms = standardise(atoms)
    cell = np.asarray(atoms.cell[:], dtype=float)
    c = cell[2]
    if np.linalg.norm(c[:2]) > 1e-3 * np.linalg.norm(c) or c[2] <= 0:
        raise StructureError(
            f"{path}: the glass's c axis is not perpendicular to its a, b plane; build it with a fixed lateral "
            "cell (`tfbsim build lipon --lateral-ang A B`) and quench with the in-plane cell fixed"
        )
    return atoms


def _glass_block(phase: PhaseSpec, cell2: np.ndarray, *, composition: str, density_g_cm3: float, mode: str,
                 seed: int, source: Atoms | None, source_path: str | None) -> Block:
    from ..structures.amorphous import build_lipon

    area = abs(float(np.linalg.det(cell2)))
    if source is None:
        layer = glass_layer_ang(composition, density_g_cm3)
        thickness = phase.thickness_ang if phase.thickness_ang is not None else DEFAULT_GLASS_THICKNESS_ANG
        _check_glass_thickness(phase.region, thickness, layer, f"give at least {math.ceil(20 * layer) / 10:g} Å")
        n_atoms = _glass_n_atoms(composition, density_g_cm3, area, thickness)
        glass = build_lipon(composition, n_atoms, density_g_cm3=density_g_cm3, mode=mode,
                            lateral_cell_ang=np.column_stack([cell2, [0.0, 0.0]]), seed=seed)
        info = {"composition": glass.info.get("achieved_formula"),
                "target_formula": glass.info.get("target_formula"),
                "density_g_cm3": glass.info.get("density_g_cm3"), "mode": mode, "seed": seed, "source": "built"}
    else:
        frac = source.get_scaled_positions(wrap=True)
        height = float(source.cell[2, 2])
        glass = Atoms(source.get_chemical_symbols(), pbc=True,
                      cell=np.vstack([np.column_stack([cell2, [0.0, 0.0]]), [0.0, 0.0, height]]))
        glass.set_scaled_positions(frac)
        volume_cm3 = abs(float(np.linalg.det(source.cell[:]))) * 1e-24
        density = float(source.get_masses().sum()) * _AMU_G / volume_cm3
        formula = source.get_chemical_formula(empirical=True)
        if "P" in source.symbols and set(source.get_chemical_symbols()) <= {"Li", "P", "O", "N"}:
            layer = glass_layer_ang(formula, density)
            _check_glass_thickness(phase.region, height, layer, "use a thicker glass box")
        info = {"composition": formula, "source": str(source_path), "density_g_cm3": density}
    whole, units = whole_units_along_c(glass)
    block = Atoms(whole.get_chemical_symbols(), positions=whole.positions, cell=whole.cell, pbc=True)
    report = {"thickness_ang": float(glass.cell[2, 2]), "glass": {**info, **units}}
    if phase.thickness_ang is not None and source is not None:
        logger.warning("%s: the thickness given (%g Å) is ignored; the --lipon-from box is %.2f Å high",
                       phase.region, phase.thickness_ang, height)
    return Block(atoms=block, region=phase.region, kind="glass", report=report)


# -------------------------------------------------------------------------------------------- lateral
def _reference(crystals: list[PhaseSpec], strained_phase: str | None) -> PhaseSpec:
    if strained_phase is not None:
        names = {p.region for p in crystals} | {p.name for p in crystals}
        if strained_phase not in names:
            raise StructureError(
                f"strained_phase {strained_phase!r} is not a crystal of this stack; choose one of "
                f"{', '.join(sorted({p.region for p in crystals}))}"
            )
        if len(crystals) < 2:
            raise StructureError("strained_phase needs two crystal phases (one keeps its lattice)")
        return next(p for p in crystals if strained_phase not in (p.region, p.name))
    return next((p for p in crystals if p.name != "li"), crystals[0])


def _match_chain(
    crystals: list[PhaseSpec], base: dict[str, np.ndarray], ref: PhaseSpec, *, lateral_min_ang: float,
    max_strain_pct: float, max_area_ang2: float | None,
) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Match every other crystal onto the reference (the last match repeated to ``lateral_min_ang``)."""
    total = {ref.region: np.eye(2, dtype=int)}
    cell = base[ref.region]
    matches: list[LatticeMatch] = []
    others = [p for p in crystals if p.region != ref.region]
    for k, film in enumerate(others):
        last = k == len(others) - 1
        match = match_lattices(base[film.region], cell, max_strain_pct=max_strain_pct,
                               lateral_min_ang=lateral_min_ang if last else 1e-3, max_area_ang2=max_area_ang2,
                               film_name=f"{film.region} ({film.facet_label})",
                               substrate_name=f"{ref.region} ({ref.facet_label})")
        matches.append(match)
        for region in total:
            total[region] = match.substrate_matrix @ total[region]
        total[film.region] = match.film_matrix
        cell = match.substrate_matrix @ cell
    if not others:  # one crystal: its near-square supercell
        m = lateral_supercell(cell, lateral_min_ang).matrix
        total[ref.region] = m
        cell = m @ cell
    info = {"reference_phase": ref.region, "strained_phases": [p.region for p in others],
            "method": "zsl" if others else "supercell", "matches": [m.to_dict() for m in matches]}
    return total, cell, info


def _plan_lateral(crystals: list[PhaseSpec], slabs: dict[str, Atoms], *, lateral_min_ang: float,
                  max_strain_pct: float, max_area_ang2: float | None, strained_phase: str | None,
                  file_cell: np.ndarray | None) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Integer supercell matrix of every crystal and the common in-plane cell (2×2, reference frame).

    With a glass file, its in-plane cell must be a supercell of the cell this stack gets at
    ``lateral_min_ang`` (what a run without the file reports) or, failing that, of the smallest coincidence cell.
    """
    ref = _reference(crystals, strained_phase)
    base = {p.region: np.asarray(slabs[p.region].cell[:2, :2], dtype=float) for p in crystals}
    kwargs = {"max_strain_pct": max_strain_pct, "max_area_ang2": max_area_ang2}
    total, cell, info = _match_chain(crystals, base, ref, lateral_min_ang=lateral_min_ang, **kwargs)
    if file_cell is None:
        return total, cell, info
    m = find_supercell_matrix(cell, file_cell)
    if m is None:
        if len(crystals) > 1:  # the smallest coincidence cell (no repetition) may still fit
            total_c, cell_c, info_c = _match_chain(crystals, base, ref, lateral_min_ang=1e-3, **kwargs)
        else:
            total_c, cell_c, info_c = {ref.region: np.eye(2, dtype=int)}, base[ref.region], dict(info)
        m = find_supercell_matrix(cell_c, file_cell)
        if m is None:
            a, b = np.linalg.norm(cell, axis=1)
            orthogonal = abs(float(np.dot(*cell))) < 1e-6 * a * b
            lateral = np.column_stack([_standard_frame(cell), [0.0, 0.0]])
            hint = (f"`tfbsim build lipon --lateral-ang {a:.4f} {b:.4f}`" if orthogonal else
                    f"build_lipon(..., lateral_cell_ang={np.round(lateral, 4).tolist()})")
            fa, fb = np.linalg.norm(file_cell, axis=1)
            gamma = math.degrees(math.acos(float(np.dot(*file_cell)) / (fa * fb)))
            raise StructureError(
                f"the in-plane cell of the --lipon-from glass (a = {fa:.4f} Å, b = {fb:.4f} Å, "
                f"γ = {gamma:.2f}°) is not a supercell of this stack's lateral lattice; build the glass on the "
                f"stack's cell, e.g. {hint} (its cell at --lateral-min-ang {lateral_min_ang:g})"
            )
        total, cell, info = total_c, cell_c, info_c
    info = {**info, "method": "lipon_from"}
    return {region: m @ t for region, t in total.items()}, m @ cell, info


def _standard_frame(cell2: np.ndarray) -> np.ndarray:
    """The in-plane cell rotated so that a ∥ x (b then has y > 0 for a right-handed cell)."""
    angle = math.atan2(cell2[0, 1], cell2[0, 0])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # rotation by -angle
    out = cell2 @ rot.T
    out[np.abs(out) < 1e-12] = 0.0
    return out


# --------------------------------------------------------------------------------------------- public
def build_interface(
    stack: str | Sequence[str | PhaseSpec],
    *,
    thickness_ang: float | Sequence[float] | dict[str, float] | None = None,
    lateral_min_ang: float = 10.0,
    lipon_composition: str = DEFAULT_LIPON_COMPOSITION,
    lipon_from: str | Path | Atoms | None = None,
    lipon_density_g_cm3: float = 2.4,
    lipon_mode: str = "motif",
    gap_ang: float = 2.0,
    vacuum_ang: float | None = None,
    max_strain_pct: float = 5.0,
    max_area_ang2: float | None = None,
    strained_phase: str | None = None,
    shift_ang: Any = None,
    fix_bottom_ang: float | None = None,
    seed: int = 0,
) -> tuple[Atoms, dict[str, Any]]:
    """Build an interface or a full cell, bottom to top, with region tags and a strain/geometry report.

    Parameters
    ----------
    stack
        ``"li:100,lipon,licoo2:104"``, ``"lipon,licoo2:003:x=0.5"``, ``"li/li2o:111"`` ... (bottom to top; see
        :mod:`tfbsim.interfaces.phases`) or a list of tokens.
    thickness_ang
        Phase thicknesses (Å): one value, one per phase, or ``{phase: value}``. Defaults: crystals 12 Å (at
        least two repeat layers), glass 15 Å. Crystal slabs come out at least this thick (whole layers);
        a glass box has exactly this height at ``lipon_density_g_cm3``.
    lateral_min_ang
        Minimum in-plane width of the cell in both directions (Å).
    lipon_composition
        Formula per P of a built glass (default Li2.94PO3.50N0.31).
    lipon_from
        A glass structure (file or Atoms) to use instead of building one; its in-plane cell must be a
        supercell of the stack's lateral lattice (it then defines the lateral cell), its c ⟂ a, b.
    lipon_density_g_cm3
        Density of a built glass (g/cm³).
    lipon_mode
        ``motif`` or ``random`` (see :func:`~tfbsim.structures.amorphous.build_lipon`).
    gap_ang
        z distance between the outermost atoms of neighbouring phases (Å).
    vacuum_ang
        ``None``: periodic sandwich (two interfaces for two phases); a number: slab + vacuum (Å) with the
        bottom ``fix_bottom_ang`` fixed.
    max_strain_pct
        Largest principal in-plane strain of a crystal matched to another (%).
    max_area_ang2
        Largest coincidence-cell area of the ZSL search (Å²); default ``max(2 lateral_min_ang², 150)``.
    strained_phase
        Crystal that carries the lattice-match strain (default: Li metal if present, else every crystal but
        the lowest).
    shift_ang
        In-plane shift (dx, dy) of everything above the first interface (Å), or one pair per interface.
    fix_bottom_ang
        Fixed bottom layer thickness (Å); default 3 Å with vacuum, none for a periodic sandwich.
    seed
        Seed of the glass build (glass k uses ``seed + k``) and of random delithiation.

    Returns
    -------
    (ase.Atoms, dict)
        The cell — ``arrays["region"]`` (phase region label), ``arrays["fixed"]``; ``info``:
        ``tfbsim_name``, ``kind`` = ``"interface"``, ``formula``, ``reference``, ``interfaces_z_ang``,
        ``phase_z_ranges_ang``, ``periodic_sandwich``, ``interface`` (the report without geometry lists),
        ``provenance`` — and the report: ``stack`` (per phase: ``phase``, ``region``, ``kind``, ``miller``,
        ``termination``, ``thickness_ang``, ``n_atoms``, ``formula``, ``strain_pct`` [exx, eyy, exy],
        ``max_strain_pct``, ``z_range_ang``, ``supercell_matrix``), ``lateral_cell_ang``, ``area_ang2``,
        ``interfaces_z_ang``, ``interfaces``, ``min_cross_distance_ang``, ``n_atoms``, ``periodic_sandwich``,
        ``lateral`` (method, reference/strained phases, ZSL matches), ``composition``, ``build_wall_s``.

    Raises
    ------
    StructureError
        Unknown phase or facet (valid ones listed), a phase thinner than two layers, no lattice match within
        ``max_strain_pct`` (suggests a larger lateral size), a ``lipon_from`` glass whose in-plane cell does not
        fit the stack, or overlapping atoms after stacking.
    """
    from .. import __version__

    t0 = time.perf_counter()
    for label, value in (("lateral_min_ang", lateral_min_ang), ("lipon_density_g_cm3", lipon_density_g_cm3)):
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise StructureError(f"{label} must be a positive number, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise StructureError(f"seed must be an integer, got {seed!r}")
    phases = parse_stack(stack, thickness_ang)
    check_geometry(gap_ang, vacuum_ang, shift_ang, fix_bottom_ang, len(phases))
    crystals = [p for p in phases if not p.is_glass]
    glasses = [p for p in phases if p.is_glass]
    strain_ok = isinstance(max_strain_pct, (int, float)) and 0 < max_strain_pct <= 25
    if isinstance(max_strain_pct, bool) or not strain_ok:
        raise StructureError(f"max_strain_pct must be in (0, 25] %, got {max_strain_pct!r}")
    if glasses and lipon_from is None:
        from ..structures.amorphous import MODES
        from ..structures.composition import check_charge

        check_charge(lipon_composition)  # a bad formula fails here, before any slab is cut
        if lipon_mode not in MODES:
            raise StructureError(f"lipon_mode must be one of {', '.join(MODES)}, got {lipon_mode!r}")
    source = None
    source_path = None
    if lipon_from is not None:
        if not glasses:
            raise StructureError("lipon_from (--lipon-from) needs a glass phase (lipon) in the stack")
        source = lipon_from if isinstance(lipon_from, Atoms) else _read_glass(lipon_from)
        source_path = "<Atoms>" if isinstance(lipon_from, Atoms) else str(lipon_from)
    slabs: dict[str, Atoms] = {}
    metas: dict[str, dict] = {}
    for phase in crystals:
        slabs[phase.region], metas[phase.region] = _crystal_slab(phase, seed)
    file_cell = None if source is None else np.asarray(source.cell[:2, :2], dtype=float)
    matrices, cell_ref, lateral = _plan_lateral(
        crystals, slabs, lateral_min_ang=float(lateral_min_ang), max_strain_pct=max_strain_pct,
        max_area_ang2=max_area_ang2, strained_phase=strained_phase, file_cell=file_cell)
    cell2 = _standard_frame(cell_ref)  # a glass read from lipon_from adopts the substrate's cell exactly
    blocks: list[Block] = []
    for k, phase in enumerate(phases):
        if phase.is_glass:
            block = _glass_block(phase, cell2, composition=lipon_composition, density_g_cm3=lipon_density_g_cm3,
                                 mode=lipon_mode, seed=int(seed) + k, source=source, source_path=source_path)
            block.report.update(phase="lipon", miller=None, facet=None, termination=None,
                                strain_pct=[0.0, 0.0, 0.0], max_strain_pct=0.0, supercell_matrix=None)
        else:
            slab = slabs[phase.region]
            atoms = _supercell_atoms(slab, matrices[phase.region], cell2)
            natural = matrices[phase.region] @ np.asarray(slab.cell[:2, :2], dtype=float)
            components, principal = strain_pct(natural, cell2)
            meta = metas[phase.region]
            block = Block(atoms=atoms, region=phase.region, kind="crystal", report={
                "phase": phase.name, "miller": list(phase.miller), "facet": phase.facet_label,
                "termination": meta["termination"], "thickness_ang": float(np.ptp(atoms.positions[:, 2])),
                "thickness_requested_ang": meta["thickness_requested_ang"], "repeat_ang": meta["repeat_ang"],
                "n_planes": meta["n_planes"], "strain_pct": list(components), "max_strain_pct": principal,
                "supercell_matrix": matrices[phase.region].astype(int).tolist(),
                "li_fraction": meta["li_fraction"],
                "reference": meta["reference"]})
        blocks.append(block)
    atoms, geometry = stack_blocks(blocks, gap_ang=gap_ang, vacuum_ang=vacuum_ang, shift_ang=shift_ang,
                                   fix_bottom_ang=fix_bottom_ang)
    regions = np.asarray(atoms.arrays["region"])
    entries = []
    for block in blocks:
        mask = regions == block.region
        sub = atoms[mask]
        entry = {"phase": block.report.get("phase"), "region": block.region, "kind": block.kind,
                 **{k: v for k, v in block.report.items() if k != "phase"},
                 "n_atoms": int(mask.sum()), "formula": sub.get_chemical_formula(mode="hill"),
                 "z_range_ang": geometry["z_ranges_ang"][block.region]}
        entries.append(entry)
    lateral_cell = np.column_stack([cell2, [0.0, 0.0]])
    counts: dict[str, int] = {}
    for s in atoms.get_chemical_symbols():
        counts[s] = counts.get(s, 0) + 1
    report: dict[str, Any] = {
        "stack": entries,
        "lateral_cell_ang": lateral_cell.tolist(),
        "area_ang2": abs(float(np.linalg.det(cell2))),
        "lateral_widths_ang": list(lateral_widths_ang(cell2)),
        "interfaces_z_ang": geometry["interfaces_z_ang"],
        "interfaces": geometry["interfaces"],
        "min_cross_distance_ang": geometry["cross_distances"]["min_ang"],
        "min_cross_distance_by_regions_ang": geometry["cross_distances"]["by_regions"],
        "n_atoms": len(atoms),
        "periodic_sandwich": geometry["periodic_sandwich"],
        "cell_ang": geometry["cell_ang"],
        "gap_ang": geometry["gap_ang"],
        "vacuum_ang": geometry["vacuum_ang"],
        "n_fixed": geometry["n_fixed"],
        "lateral_shift_ang": geometry["lateral_shift_ang"],
        "lateral": {**lateral, "lateral_min_ang": float(lateral_min_ang), "max_strain_pct": float(max_strain_pct)},
        "composition": counts,
        "formula": atoms.get_chemical_formula(mode="hill"),
    }
    params = {
        "stack": [p.region + (f":{p.facet_label}" if p.facet_label else "") for p in phases],
        "thickness_ang": thickness_ang if not isinstance(thickness_ang, np.ndarray) else thickness_ang.tolist(),
        "lateral_min_ang": lateral_min_ang, "lipon_composition": lipon_composition,
        "lipon_from": source_path, "lipon_density_g_cm3": lipon_density_g_cm3, "lipon_mode": lipon_mode,
        "gap_ang": gap_ang, "vacuum_ang": vacuum_ang, "max_strain_pct": max_strain_pct,
        "max_area_ang2": max_area_ang2, "strained_phase": strained_phase, "shift_ang": shift_ang,
        "fix_bottom_ang": fix_bottom_ang, "seed": int(seed),
    }
    atoms.info.update({
        "tfbsim_name": "/".join(p.region for p in phases),
        "kind": "interface",
        "formula": report["formula"],
        "reference": {b.region: b.report.get("reference") for b in blocks if b.report.get("reference")},
        "interface": {k: report[k] for k in ("lateral_cell_ang", "area_ang2", "n_atoms", "periodic_sandwich")}
        | {"stack": [{k: e[k] for k in ("region", "kind", "miller", "strain_pct", "n_atoms")} for e in entries]},
        "provenance": {"builder": "tfbsim.interfaces.builder.build_interface", "tfbsim_version": __version__,
                       "parameters": params},
    })
    report["build_wall_s"] = time.perf_counter() - t0
    logger.info("interface %s: %d atoms, area %.1f Å², interfaces at %s Å (%.1f s)", atoms.info["tfbsim_name"],
                len(atoms), report["area_ang2"], np.round(report["interfaces_z_ang"], 2).tolist(),
                report["build_wall_s"])
    return atoms, report
