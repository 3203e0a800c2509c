"""Literature crystals of a LiPON thin-film cell, built offline from space group + Wyckoff positions.

The phases are the electrodes (bcc Li, LiCoO2, Li2S), the electrolyte's crystalline relatives
(γ- and β-Li3PO4, SD-Li2PO2N) and the products of Li/LiPON reduction (Li2O, Li3N, Li3P). Their data and
references live in :mod:`tfbsim.structures.crystal_data`; :func:`build_crystal` expands them with
``pymatgen.core.Structure.from_spacegroup`` and returns an :class:`ase.Atoms` carrying its metadata.

LixCoO2 (``li_fraction``) removes Li from a supercell of LiCoO2, either in whole rows (``ordered``; x = 1/2
gives alternating Li/vacancy rows as in the Li0.5CoO2 superstructure of Reimers & Dahn, J. Electrochem. Soc.
139, 2091 (1992)) or at random (``random``, seeded). Co oxidation is implicit in a machine-learned potential.

Examples
--------
>>> from tfbsim.structures.crystals import build_crystal
>>> lco = build_crystal("licoo2", supercell=(2, 2, 1), li_fraction=0.5)
>>> lco.info["li_fraction"], lco.info["spacegroup"]
(0.5, 'P2/m')
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import StructureError
from .crystal_data import CRYSTALS, CrystalSpec
from .io import set_region

__all__ = [
    "build_crystal",
    "list_crystals",
    "get_crystal_spec",
    "crystal_summary",
    "density_g_cm3",
    "detect_spacegroup",
    "LI_FRACTION_RANGE",
    "ORDERINGS",
]

logger = logging.getLogger(__name__)

#: Allowed range of x in LixCoO2 (the layered structure is kept; below 1/2 it degrades in reality).
LI_FRACTION_RANGE = (0.5, 1.0)
#: Ways to remove Li for ``li_fraction``.
ORDERINGS = ("ordered", "random")

_LI_KEYS = ("li_fraction", "li_fraction_requested", "li_ordering", "li_vacancies")
_AMU_PER_ANG3_TO_G_CM3 = 1.66053906660  # 1 amu/Å³ in g/cm³

_ALIASES = {
    "gamma-li3po4": "li3po4",
    "li3po4-gamma": "li3po4",
    "beta-li3po4": "li3po4-beta",
    "lco": "licoo2",
    "lipon-crystal": "li2po2n",
    "sd-li2po2n": "li2po2n",
}


def get_crystal_spec(name: str) -> CrystalSpec:
    """Return the :class:`~tfbsim.structures.crystal_data.CrystalSpec` of ``name`` (case-insensitive).

    Raises
    ------
    StructureError
        Unknown name; the message lists the valid ones.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CRYSTALS:
        raise StructureError(
            f"unknown crystal {name!r}; valid names: {', '.join(CRYSTALS)} (see `tfbsim build list`)"
        )
    return CRYSTALS[key]


def density_g_cm3(atoms: Atoms) -> float:
    """Mass density of a periodic structure (g/cm³) from its atomic masses and cell volume."""
    volume = abs(float(atoms.get_volume()))
    if volume <= 0:
        raise StructureError("density needs a cell with non-zero volume")
    return float(atoms.get_masses().sum()) / volume * _AMU_PER_ANG3_TO_G_CM3


def _unit_cell(spec: CrystalSpec) -> Atoms:
    """Conventional cell from space group + Wyckoff positions (pymatgen), as ASE Atoms."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    lattice = Lattice.from_parameters(*spec.lattice_abc_ang, *spec.lattice_angles_deg)
    species = [site[0] for site in spec.sites]
    coords = [site[2] for site in spec.sites]
    structure = Structure.from_spacegroup(spec.spacegroup, lattice, species, coords, tol=1e-4)
    # Merge any duplicates created by coordinates sitting within rounding of a special position.
    structure.merge_sites(tol=0.05, mode="delete")
    atoms = AseAtomsAdaptor.get_atoms(structure)
    order = np.argsort(atoms.numbers, kind="stable")  # group species: Li first for all phases here
    atoms = atoms[order]
    atoms.wrap()
    return atoms


def detect_spacegroup(atoms: Atoms, symprec: float = 1e-3) -> tuple[str, int]:
    """International symbol and number of the space group spglib finds (``symprec`` in Å)."""
    import spglib

    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    data = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if data is None:  # pragma: no cover - spglib failure on a valid cell is a bug
        return "P1", 1
    return str(data.international), int(data.number)


def _check_supercell(supercell: Sequence[int]) -> tuple[int, int, int]:
    try:
        values = tuple(int(n) for n in supercell)
    except (TypeError, ValueError):
        raise StructureError(f"supercell must be three positive integers, got {supercell!r}") from None
    not_int = any(float(n) != float(m) for n, m in zip(values, supercell, strict=True))
    if len(values) != 3 or any(n < 1 for n in values) or not_int:
        raise StructureError(f"supercell must be three positive integers (e.g. 2 2 1), got {tuple(supercell)!r}")
    return values  # type: ignore[return-value]


def _closest_count(n_total: int, x_target: float, x_tol: float, what: str, hint: str) -> int:
    """Number of Li (or rows) to remove so that x is closest to the target and inside the allowed range."""
    lo, hi = LI_FRACTION_RANGE
    best = None
    for k in range(n_total + 1):
        x = 1.0 - k / n_total
        if x < lo - 1e-12 or x > hi + 1e-12:
            continue
        key = (abs(x - x_target), k)  # ties: remove fewer
        if best is None or key < best[0]:
            best = (key, k)
    if best is None or best[0][0] > x_tol + 1e-12:
        closest = "none" if best is None else f"{1.0 - best[1] / n_total:.3f}"
        raise StructureError(
            f"cannot reach x = {x_target:g} with {n_total} {what} (closest allowed x: {closest}); {hint}"
        )
    return best[1]


def _li_layers_and_rows(
    atoms: Atoms, li_idx: np.ndarray, supercell: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Layer (along c) and row (along b, rows run along a) index of each Li in a LiCoO2 hexagonal supercell."""
    frac = atoms.get_scaled_positions()[li_idx]
    n_layers = 3 * supercell[2]  # three Li layers per hexagonal cell (O3 stacking)
    layer = np.rint(frac[:, 2] * n_layers).astype(int) % n_layers
    # Within a layer, the rhombohedral centring shifts the Li net by (2/3, 1/3) per layer; remove that shift.
    shift_b = (layer % 3) / 3.0 / supercell[1]
    row = np.rint((frac[:, 1] - shift_b) * supercell[1]).astype(int) % supercell[1]
    return layer, row


def _spread(k: int, n: int) -> np.ndarray:
    """Boolean mask of length n with k True entries spread as evenly as possible (Bresenham)."""
    idx = np.arange(n)
    return ((idx + 1) * k // n - idx * k // n) == 1


def _delithiate(
    atoms: Atoms,
    li_fraction: float,
    *,
    ordering: str,
    seed: int | None,
    supercell: tuple[int, int, int],
    x_tol: float,
) -> tuple[Atoms, dict[str, Any]]:
    li_idx = np.flatnonzero(atoms.numbers == 3)
    n_li = len(li_idx)
    if ordering == "ordered":
        layer, row = _li_layers_and_rows(atoms, li_idx, supercell)
        n_layers, n_rows = 3 * supercell[2], supercell[1]
        total_rows = n_layers * n_rows
        k = _closest_count(
            total_rows,
            li_fraction,
            x_tol,
            "Li rows",
            "ordered delithiation removes whole Li rows; use a larger b repeat, e.g. --supercell 2 2 1 for "
            "x = 0.5, or --ordering random",
        )
        per_layer = np.diff(np.concatenate([[0], (np.arange(1, n_layers + 1) * k) // n_layers]))
        remove_mask = np.zeros(n_li, dtype=bool)
        for ell in range(n_layers):
            rows_out = np.flatnonzero(_spread(int(per_layer[ell]), n_rows))
            remove_mask |= (layer == ell) & np.isin(row, rows_out)
        remove = li_idx[remove_mask]
        if len(remove) != k * supercell[0]:  # pragma: no cover - guards the geometry bookkeeping
            raise StructureError("internal error: Li row bookkeeping failed; please report it")
    else:
        k = _closest_count(
            n_li, li_fraction, x_tol, "Li sites", "use a larger supercell (e.g. --supercell 2 2 1)"
        )
        rng = np.random.default_rng(0 if seed is None else seed)
        remove = np.sort(rng.choice(li_idx, size=k, replace=False)) if k else np.array([], dtype=int)
    keep = np.ones(len(atoms), dtype=bool)
    keep[remove] = False
    out = atoms[keep]
    x_achieved = (n_li - len(remove)) / n_li
    if abs(x_achieved - li_fraction) > 1e-9:
        logger.warning("LixCoO2: requested x = %g, achieved x = %.4f in this supercell", li_fraction, x_achieved)
    meta = {
        "li_fraction": float(x_achieved),
        "li_fraction_requested": float(li_fraction),
        "li_ordering": ordering,
        "li_vacancies": int(len(remove)),
    }
    if ordering == "random":
        meta["seed"] = 0 if seed is None else int(seed)
    return out, meta


def build_crystal(
    name: str,
    *,
    supercell: Sequence[int] = (1, 1, 1),
    li_fraction: float | None = None,
    ordering: str = "ordered",
    seed: int | None = None,
    x_tol: float = 0.05,
) -> Atoms:
    """Build a literature crystal (conventional cell, optionally repeated and delithiated).

    Parameters
    ----------
    name
        One of :func:`list_crystals` names: ``li``, ``li2s``, ``licoo2``, ``li3po4`` (γ), ``li3po4-beta``,
        ``li2po2n``, ``li3n``, ``li2o``, ``li3p`` (case-insensitive).
    supercell
        Repeats of the conventional cell along a, b, c (positive integers).
    li_fraction
        x in LixCoO2, 0.5 ≤ x ≤ 1 (only for ``licoo2``). The achieved x (whole atoms) is in
        ``info["li_fraction"]``; it must be within ``x_tol`` of the request.
    ordering
        ``ordered``: remove whole Li rows (running along a), spread evenly over rows and layers; x = 1/2 with
        an even b repeat gives alternating Li/vacancy rows. ``random``: remove random Li (seeded).
    seed
        Seed of the random removal (``None`` means 0, so builds are reproducible).
    x_tol
        Largest accepted difference between requested and achievable x.

    Returns
    -------
    ase.Atoms
        Periodic structure. ``info``: ``tfbsim_name``, ``formula``, ``phase``, ``spacegroup``,
        ``spacegroup_number``, ``reference``, ``lattice_abc_ang`` and ``lattice_angles_deg`` (of the
        conventional unit cell), ``supercell``, ``density_g_cm3``, ``provenance``; for LixCoO2 also
        ``li_fraction``, ``li_fraction_requested``, ``li_ordering``, ``li_vacancies``, ``parent_spacegroup``.
        ``arrays["region"]`` is the phase name for every atom.

    Raises
    ------
    StructureError
        Unknown name, bad supercell, ``li_fraction`` outside [0.5, 1] or on a phase without removable Li,
        unknown ordering, or an x the supercell cannot reach.
    """
    from .. import __version__

    spec = get_crystal_spec(name)
    cells = _check_supercell(supercell)
    if li_fraction is not None:
        if not spec.delithiable:
            hosts = ", ".join(s.name for s in CRYSTALS.values() if s.delithiable)
            raise StructureError(
                f"li_fraction applies to phases with a redox-active host ({hosts}); "
                f"{spec.name} has no Li sites that can be removed charge-neutrally"
            )
        try:
            x = float(li_fraction)
        except (TypeError, ValueError):
            raise StructureError(f"li_fraction must be a number in [0.5, 1], got {li_fraction!r}") from None
        lo, hi = LI_FRACTION_RANGE
        if not (math.isfinite(x) and lo <= x <= hi):
            raise StructureError(
                f"li_fraction must be in [{lo}, {hi}] (LixCoO2 stays layered there), got {li_fraction!r}"
            )
        if ordering not in ORDERINGS:
            raise StructureError(f"ordering must be one of {', '.join(ORDERINGS)}, got {ordering!r}")
    unit = _unit_cell(spec)
    atoms = unit.repeat(cells) if cells != (1, 1, 1) else unit
    meta: dict[str, Any] = {}
    if li_fraction is not None and float(li_fraction) < 1.0:
        atoms, meta = _delithiate(
            atoms, float(li_fraction), ordering=ordering, seed=seed, supercell=cells, x_tol=x_tol
        )
    elif li_fraction is not None:
        meta = {"li_fraction": 1.0, "li_fraction_requested": 1.0, "li_ordering": ordering, "li_vacancies": 0}

    atoms.info.clear()
    atoms.info.update(
        {
            "tfbsim_name": spec.name,
            "phase": spec.phase,
            "formula": spec.formula,
            "spacegroup": spec.spacegroup.replace("_", ""),
            "spacegroup_number": spec.spacegroup_number,
            "reference": spec.reference,
            "lattice_abc_ang": [float(v) for v in spec.lattice_abc_ang],
            "lattice_angles_deg": [float(v) for v in spec.lattice_angles_deg],
            "supercell": list(cells),
        }
    )
    if meta:
        sg_symbol, sg_number = detect_spacegroup(atoms)
        x = meta["li_fraction"]
        atoms.info.update(meta)
        atoms.info["formula"] = f"Li{x:.4g}CoO2" if x < 1 else spec.formula
        atoms.info["parent_spacegroup"] = atoms.info["spacegroup"]
        atoms.info["spacegroup"], atoms.info["spacegroup_number"] = sg_symbol, sg_number
        atoms.info["note"] = spec.notes
    atoms.info["density_g_cm3"] = density_g_cm3(atoms)
    atoms.info["provenance"] = {
        "builder": "tfbsim.structures.crystals.build_crystal",
        "tfbsim_version": __version__,
        "parameters": {
            "name": spec.name,
            "supercell": list(cells),
            "li_fraction": None if li_fraction is None else float(li_fraction),
            "ordering": ordering if li_fraction is not None else None,
            "seed": meta.get("seed"),
        },
    }
    set_region(atoms, spec.name)
    logger.info("built %s: %d atoms, %s", spec.name, len(atoms), atoms.get_chemical_formula())
    return atoms


def crystal_summary(atoms: Atoms) -> dict[str, Any]:
    """JSON-ready description of a built (or relaxed) crystal: lattice of the unit cell from the actual cell.

    ``lattice_abc_ang`` is the cell divided by ``info["supercell"]``, so it tracks a relaxation.
    """
    cells = np.asarray(atoms.info.get("supercell", (1, 1, 1)), dtype=float)
    lengths = atoms.cell.lengths() / cells
    angles = atoms.cell.angles()
    return {
        "name": atoms.info.get("tfbsim_name"),
        "phase": atoms.info.get("phase"),
        "formula": atoms.info.get("formula", atoms.get_chemical_formula(empirical=True)),
        "composition": atoms.get_chemical_formula(),
        "spacegroup": atoms.info.get("spacegroup"),
        "spacegroup_number": atoms.info.get("spacegroup_number"),
        "lattice_abc_ang": [round(float(v), 6) for v in lengths],
        "lattice_angles_deg": [round(float(v), 6) for v in angles],
        "supercell": [int(v) for v in cells],
        "density_g_cm3": density_g_cm3(atoms),
        "n_atoms": len(atoms),
        "reference": atoms.info.get("reference"),
        **{k: atoms.info[k] for k in _LI_KEYS if k in atoms.info},
    }


def list_crystals() -> list[dict[str, Any]]:
    """Every phase :func:`build_crystal` knows: name, phase, formula, space group, lattice, density, reference."""
    out = []
    for spec in CRYSTALS.values():
        unit = _unit_cell(spec)
        out.append(
            {
                "name": spec.name,
                "phase": spec.phase,
                "formula": spec.formula,
                "spacegroup": spec.spacegroup.replace("_", ""),
                "spacegroup_number": spec.spacegroup_number,
                "lattice_abc_ang": list(spec.lattice_abc_ang),
                "lattice_angles_deg": list(spec.lattice_angles_deg),
                "density_g_cm3": density_g_cm3(unit),
                "n_atoms_cell": len(unit),
                "li_fraction_supported": spec.delithiable,
                "reference": spec.reference,
            }
        )
    return out
