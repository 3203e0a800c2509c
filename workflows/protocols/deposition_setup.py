"""Substrates for vapour deposition and the checks made before any atom arrives.

:func:`deposition_substrate` builds the substrates of issue 21 from names (``lipon``, ``li2o:111``,
``li2s:111``, ``licoo2:104``, or any structure file); :func:`plan_deposition` validates a substrate, a
calculator and a :class:`~tfbsim.workflows.protocols.deposition_config.DepositionConfig` together and returns
the :class:`DepositionPlan` (number of atoms and events, steps, insertion clearance), raising before anything is
written:

- the species (and the substrate's elements) must be covered by the model (:func:`check_coverage`);
- the substrate must be a slab: in-plane cell vectors without a z component, and a vacuum gap above its top atom
  (the structure is shifted along z so that the largest gap lies above the top atom);
- the arrival speed must not carry an atom more than ``max_step_ang`` per step, and the insertion clearance
  must exceed the insertion-overlap distance, which must exceed the guard's minimum distance;
- the target (nominal thickness, or count converted to one) plus the clearance must fit below the cell top.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.data import atomic_masses, atomic_numbers

from ...errors import ConfigError, StructureError
from ..potentials.factory import check_coverage
from .deposition_config import DepositionConfig, bulk_number_density_ang3, thermal_energy_cap

__all__ = ["DepositionPlan", "plan_deposition", "prepare_substrate", "deposition_substrate", "lipon_slab",
           "open_glass_box", "substrate_hash"]

logger = logging.getLogger(__name__)

#: Room kept between the highest planned insertion point and the periodic image of the substrate bottom (Å).
HEADROOM_ANG = 3.0


@dataclass(frozen=True)
class DepositionPlan:
    """What a deposition will do (JSON-ready with :meth:`to_dict`).

    Attributes
    ----------
    n_atoms, n_events
        Atoms to send and arrival events (``ceil(n_atoms / group_size)``; the last event may be smaller).
    interval_steps, final_steps, total_steps
        Steps between events, after the last event's interval, and in total.
    clearance_ang
        Insertion height above the current film top (Å).
    nominal_thickness_ang
        The target as a thickness at the bulk density (Å).
    density_atoms_ang3
        Bulk number density used (Å⁻³).
    area_ang2
        In-plane cell area (Å²).
    top_z_ang, bottom_z_ang, cell_top_ang
        Substrate top and bottom atom and the periodic image of the bottom (bottom + c) (Å), after the shift.
    z_shift_ang
        Shift applied along z so that the vacuum lies above the top atom (Å).
    speed_ang_fs, step_ang
        Largest arrival speed (Å/fs) and the distance it covers in one step (Å).
    """

    n_atoms: int
    n_events: int
    interval_steps: int
    final_steps: int
    total_steps: int
    clearance_ang: float
    nominal_thickness_ang: float
    density_atoms_ang3: float
    area_ang2: float
    top_z_ang: float
    bottom_z_ang: float
    cell_top_ang: float
    z_shift_ang: float
    speed_ang_fs: float
    step_ang: float

    def to_dict(self) -> dict:
        return asdict(self)


def substrate_hash(atoms: Atoms) -> str:
    """sha256 of a substrate's numbers, positions (1e-6 Å) and cell: a resume must use the same substrate."""
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(atoms.positions, dtype=float), 6).tobytes())
    h.update(np.round(np.asarray(atoms.cell[:], dtype=float), 6).tobytes())
    return h.hexdigest()


def _largest_gap_shift(atoms: Atoms) -> tuple[float, float]:
    """(shift along z that puts the largest z gap above the top atom, that gap) (Å)."""
    c = float(atoms.cell[2, 2])
    z = np.sort(np.mod(atoms.positions[:, 2], c))
    gaps = np.append(np.diff(z), z[0] + c - z[-1])
    k = int(np.argmax(gaps))
    if k == len(z) - 1:  # the largest gap already straddles the cell boundary
        return 0.0, float(gaps[k])
    return float(-z[k + 1] + 0.5 * min(gaps[k], 2.0)), float(gaps[k])


def prepare_substrate(substrate: Atoms, config: DepositionConfig) -> tuple[Atoms, float]:
    """Copy of the substrate ready for deposition, and the z shift applied (Å).

    The copy has the largest vacuum gap above its top atom (shifted along z and wrapped), ``arrays['region']``
    (``substrate`` where missing), ``arrays['fixed']`` with the bottom ``fix_bottom_ang`` added, no calculator
    and no constraints; momenta are kept.

    Raises
    ------
    StructureError
        Fewer than two atoms, no 3-D cell, in-plane cell vectors with a z component, or a non-periodic plane.
    """
    if len(substrate) < 2:
        raise StructureError("the substrate needs at least two atoms")
    cell = np.asarray(substrate.cell[:], dtype=float)
    if substrate.cell.rank < 3:
        raise StructureError("the substrate needs a 3-D cell (a slab with vacuum along z)")
    if abs(cell[0, 2]) > 1e-6 or abs(cell[1, 2]) > 1e-6 or cell[2, 2] <= 0:
        raise StructureError("the substrate's in-plane cell vectors a, b must lie in the xy plane and c point up "
                             "(+z): build it with make_slab / build_interface, or rotate it so the surface normal is z")
    if not (substrate.pbc[0] and substrate.pbc[1]):
        raise StructureError("the substrate must be periodic in x and y (a slab); set atoms.pbc = True")
    work = substrate.copy()
    work.calc = None
    work.set_constraint()
    shift, _ = _largest_gap_shift(work)
    if shift:
        work.positions[:, 2] += shift
    work.pbc = True
    work.wrap()
    if "region" not in work.arrays:
        work.new_array("region", np.array(["substrate"] * len(work)))
    fixed = np.asarray(work.arrays.get("fixed", np.zeros(len(work), bool)), dtype=bool).copy()
    z = work.positions[:, 2]
    if config.fix_bottom_ang > 0:
        fixed |= z <= z.min() + config.fix_bottom_ang
    if "fixed" in work.arrays:
        del work.arrays["fixed"]
    work.new_array("fixed", fixed)
    return work, shift


def plan_deposition(substrate: Atoms, calc: Calculator, config: DepositionConfig) -> tuple[Atoms, DepositionPlan]:
    """Validate everything (module docstring) and return the prepared substrate and the plan.

    Raises
    ------
    ConfigError
        An arrival faster than ``max_step_ang`` per step, a flux so high that events are less than a step apart,
        a target that does not fit below the cell top, an unknown bulk density for ``thickness_ang``.
    StructureError
        No slab, or no vacuum gap above the top atom.
    PotentialError
        The model does not cover the species or a substrate element.
    """
    c = config
    check_coverage(calc, sorted(set(substrate.get_chemical_symbols()) | {c.species}))
    work, shift = prepare_substrate(substrate, c)
    z = work.positions[:, 2]
    top, bottom = float(z.max()), float(z.min())
    cell_top = bottom + float(work.cell[2, 2])
    gap = cell_top - top
    r_max = (getattr(calc, "parameters", {}) or {}).get("r_max_ang")
    clearance = float(c.clearance_ang if c.clearance_ang is not None else (float(r_max) + 0.5 if r_max else 6.0))
    clearance = max(clearance, c.min_insert_distance_ang)
    if gap < clearance + HEADROOM_ANG:
        raise StructureError(
            f"the substrate has no free surface along z: {gap:.2f} Å between its top atom and the periodic image of "
            f"its bottom, less than the insertion clearance {clearance:.2f} Å + {HEADROOM_ANG:g} Å; add vacuum "
            "(e.g. set_vacuum(slab, 30) or `tfbsim build slab --vacuum-ang 30`)"
        )
    if int((~work.arrays["fixed"]).sum()) < 1:
        raise ConfigError(f"fix_bottom_ang {c.fix_bottom_ang:g} Å fixes every substrate atom; lower it")
    density = c.density_atoms_ang3 or bulk_number_density_ang3(c.species)
    area = float(abs(np.linalg.det(work.cell[:2, :2])))
    if c.count is not None:
        n_atoms = int(c.count)
        nominal = n_atoms / (area * density) if density else float("nan")
    else:
        if not density:
            raise ConfigError(f"no bulk density known for {c.species}: set density_atoms_ang3 (atoms/Å³) or give "
                              "count instead of thickness_ang")
        n_atoms = max(1, int(round(c.thickness_ang * area * density)))
        nominal = float(c.thickness_ang)
    needed = (nominal if math.isfinite(nominal) else 0.0) + clearance + HEADROOM_ANG
    if top + needed > cell_top:
        raise ConfigError(
            f"the target ({n_atoms} {c.species}, {nominal:.2f} Å nominal) plus the insertion clearance "
            f"{clearance:.2f} Å and {HEADROOM_ANG:g} Å headroom reaches z = {top + needed:.2f} Å, beyond the cell "
            f"top {cell_top:.2f} Å ({gap:.2f} Å of vacuum): deposit less, or add vacuum"
        )
    mass = float(atomic_masses[atomic_numbers[c.species]])
    e_max = thermal_energy_cap(c.energy_ev) if c.energy_distribution == "thermal" else float(c.energy_ev)
    speed = math.sqrt(2.0 * e_max / mass) * units.fs  # Å/fs
    step_ang = speed * c.timestep_fs
    if step_ang > c.max_step_ang:
        raise ConfigError(
            f"an arriving {c.species} at {e_max:.3g} eV moves {step_ang:.3f} Å per {c.timestep_fs:g} fs step, more "
            f"than max_step_ang {c.max_step_ang:g} Å: atoms could jump into each other (closer than the guard's "
            f"{c.guard_min_distance_ang:g} Å); use timestep_fs <= {c.max_step_ang / speed:.2f}, or a lower energy_ev"
        )
    interval = int(round(c.interval_ps * 1000.0 / c.timestep_fs))
    if interval < 1:
        raise ConfigError(f"flux_per_ps {c.flux_per_ps:g} puts events {c.interval_ps * 1000:.3g} fs apart, less "
                          f"than one {c.timestep_fs:g} fs step; lower the flux or raise group_size")
    n_events = int(math.ceil(n_atoms / c.group_size))
    final = int(round(c.final_ps * 1000.0 / c.timestep_fs))
    plan = DepositionPlan(
        n_atoms=n_atoms, n_events=n_events, interval_steps=interval, final_steps=final,
        total_steps=n_events * interval + final, clearance_ang=clearance, nominal_thickness_ang=float(nominal),
        density_atoms_ang3=float(density or float("nan")), area_ang2=area, top_z_ang=top, bottom_z_ang=bottom,
        cell_top_ang=cell_top, z_shift_ang=shift, speed_ang_fs=speed, step_ang=step_ang,
    )
    return work, plan


# ---------------------------------------------------------------------------------------------- builders
def lipon_slab(composition: str = "Li2.94PO3.50N0.31", n_atoms: int = 250, *, lateral_ang: float = 14.0,
               vacuum_ang: float = 30.0, density_g_cm3: float = 2.4, seed: int = 0) -> Atoms:
    """A LiPON glass slab: the motif builder's periodic box opened along z, whole phosphate units kept.

    Each O and N is moved to the z image of its nearest P (so tetrahedra cut by the box boundary stay whole; P–X–P
    bridges across it open up), then ``vacuum_ang`` is added above the top atom.

    Parameters
    ----------
    composition, n_atoms, density_g_cm3, seed
        As :func:`~tfbsim.structures.amorphous.build_lipon`.
    lateral_ang
        In-plane edge of the square cell (Å).
    vacuum_ang
        Vacuum above the glass (Å).
    """
    from ...structures.amorphous import build_lipon

    glass = build_lipon(composition, n_atoms, lateral_ang=(lateral_ang, lateral_ang), density_g_cm3=density_g_cm3,
                        seed=seed)
    return open_glass_box(glass, vacuum_ang)


def open_glass_box(glass: Atoms, vacuum_ang: float = 30.0) -> Atoms:
    """A periodic glass box (e.g. a melt-quenched LiPON) opened along z into a slab with ``vacuum_ang`` above it.

    Each O and N is moved to the z image of its nearest P (tetrahedra cut by the box boundary stay whole; P–X–P
    bridges across it open up); ``arrays['region']`` becomes ``lipon`` and the momenta are dropped.
    """
    glass = glass.copy()
    glass.calc = None
    glass.set_constraint()
    glass.wrap()
    c = float(glass.cell[2, 2])
    symbols = np.array(glass.get_chemical_symbols())
    p_idx = np.flatnonzero(symbols == "P")
    pos = glass.positions
    for i in np.flatnonzero(np.isin(symbols, ["O", "N"])) if p_idx.size else []:
        frac = np.linalg.solve(glass.cell[:].T, (pos[p_idx] - pos[i]).T).T
        frac -= np.round(frac)
        near = int(np.argmin(np.linalg.norm(frac @ glass.cell[:], axis=1)))
        pos[i, 2] += round((pos[p_idx[near], 2] - pos[i, 2] - (frac @ glass.cell[:])[near, 2]) / c) * c
    glass.positions = pos
    z = glass.positions[:, 2]
    glass.positions[:, 2] -= z.min() - 1.0
    glass.set_cell([glass.cell[0], glass.cell[1], [0.0, 0.0, float(z.max() - z.min()) + 1.0 + vacuum_ang]])
    glass.set_array("region", np.array(["lipon"] * len(glass)))
    glass.set_momenta(np.zeros((len(glass), 3)), apply_constraint=False)
    glass.info.update(kind="slab", vacuum_ang=float(vacuum_ang))
    return glass


def deposition_substrate(spec: str | Path | Atoms, *, n_atoms: int = 250, thickness_ang: float = 10.0,
                         lateral_ang: float = 12.0, vacuum_ang: float = 30.0, seed: int = 0) -> Atoms:
    """A substrate from a name or a file.

    Parameters
    ----------
    spec
        ``lipon`` or ``lipon:COMPOSITION`` (:func:`lipon_slab` with ``n_atoms``), ``CRYSTAL:HKL`` such as
        ``li2o:111``, ``li2s:111``, ``licoo2:104`` (:func:`~tfbsim.structures.slabs.make_slab` with
        ``thickness_ang``), a structure file, or an Atoms (returned as a copy).
    n_atoms, thickness_ang, lateral_ang, vacuum_ang, seed
        Sizes (Å) of a built substrate.

    Raises
    ------
    StructureError
        An unknown name, facet or file.
    """
    if isinstance(spec, Atoms):
        return spec.copy()
    text = str(spec)
    if Path(text).is_file():
        from ...structures.io import read_structure

        return read_structure(text)
    name, _, rest = text.partition(":")
    if name.lower() == "lipon":
        return lipon_slab(rest or "Li2.94PO3.50N0.31", n_atoms, lateral_ang=lateral_ang, vacuum_ang=vacuum_ang,
                          seed=seed)
    from ...structures.crystals import build_crystal
    from ...structures.slabs import make_slab

    digits = [int(d) for d in re.findall(r"-?\d", rest)]
    if len(digits) != 3 or not re.fullmatch(r"(-?\d){3}", rest):
        raise StructureError(f"substrate {text!r}: give a structure file, 'lipon[:COMPOSITION]' or CRYSTAL:HKL "
                             "such as li2o:111, li2s:111, licoo2:104")
    return make_slab(build_crystal(name), digits, thickness_ang=thickness_ang, vacuum_ang=vacuum_ang,
                     min_lateral_ang=lateral_ang)
