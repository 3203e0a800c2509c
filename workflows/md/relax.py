"""Geometry (and cell) relaxation with FIRE and a Fréchet cell filter.

Atoms with ``atoms.arrays["fixed"]`` true are held by a :class:`~ase.constraints.FixAtoms` constraint, here
and in MD (:func:`apply_fixed`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixAtoms

from ...errors import ConfigError, SimulationUnstable, StructureError
from ..potentials.factory import check_coverage
from .guards import check_start_structure, non_finite_message

__all__ = ["relax", "RelaxResult", "apply_fixed"]

logger = logging.getLogger(__name__)

_MASKS = {
    "xyz": [1, 1, 1, 1, 1, 1],  # full cell (Voigt xx yy zz yz xz xy)
    "z": [0, 0, 1, 0, 0, 0],  # only the normal: in-plane cell fixed (interfaces, films on a substrate)
}


def apply_fixed(atoms: Atoms) -> Atoms:
    """Replace ``FixAtoms`` constraints by one built from ``atoms.arrays['fixed']`` (if present); returns atoms."""
    others = [c for c in atoms.constraints if not isinstance(c, FixAtoms)]
    if "fixed" in atoms.arrays and np.any(atoms.arrays["fixed"]):
        others.append(FixAtoms(mask=np.asarray(atoms.arrays["fixed"], dtype=bool)))
    atoms.set_constraint(others)
    return atoms


def _max_norm(forces: np.ndarray) -> float:
    return float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0


@dataclass(frozen=True)
class RelaxResult:
    """Outcome of :func:`relax`.

    Attributes
    ----------
    atoms
        The relaxed structure (a copy; calculator attached).
    converged
        Whether max force (and cell stress) fell below ``fmax_ev_ang``.
    steps
        FIRE steps taken.
    energy_initial_ev, energy_final_ev
        Potential energies before and after (eV).
    max_force_ev_ang
        Largest residual atomic force (eV/Å).
    cell_change_pct
        Relative change of a, b, c (%); zeros when the cell was fixed.
    """

    atoms: Atoms
    converged: bool
    steps: int
    energy_initial_ev: float
    energy_final_ev: float
    max_force_ev_ang: float
    cell_change_pct: tuple[float, float, float]


def relax(
    atoms: Atoms,
    calc: Calculator,
    *,
    fmax_ev_ang: float = 0.05,
    max_steps: int = 500,
    cell: bool = True,
    cell_axes: Literal["xyz", "z"] = "xyz",
    pressure_gpa: float = 0.0,
    max_step_ang: float = 0.2,
    min_distance_ang: float = 0.6,
    progress: bool = False,
) -> RelaxResult:
    """Relax positions (and optionally the cell) with FIRE.

    Atoms tagged ``fixed`` keep their Cartesian positions when the cell is fixed; when the cell relaxes they
    follow its affine deformation (fixed fractional coordinates), as ASE's cell filters do.

    Parameters
    ----------
    atoms
        Structure; not modified (a relaxed copy is returned).
    calc
        Calculator from the potential factory.
    fmax_ev_ang
        Convergence threshold on forces (eV/Å; also applied to the cell's generalised forces).
    max_steps
        Maximum FIRE steps.
    cell
        Relax the cell too (Fréchet cell filter).
    cell_axes
        ``xyz`` for the full cell, ``z`` to relax only along the normal (in-plane cell fixed).
    pressure_gpa
        External hydrostatic pressure for the cell relaxation (GPa).
    max_step_ang
        Largest FIRE displacement per step (Å).
    min_distance_ang
        Refuse a structure with two atoms closer than this (Å; the MD guard's default; 0 disables it):
        potentials are not trained on overlapping atoms, and FIRE would push them apart with meaningless forces.
    progress
        Log progress lines (step, the optimiser's max force, energy, rate) on ``tfbsim.progress`` at most every
        30 s and at the end (:class:`~tfbsim.workflows.md.progress.ProgressReporter`).

    Raises
    ------
    ConfigError
        Bad settings.
    StructureError
        Overlapping atoms, non-finite coordinates, or a potential that returns non-finite energy/forces for the
        starting structure.
    SimulationUnstable
        The energy or forces became non-finite during the relaxation (the diagnostic names the step).
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    if fmax_ev_ang <= 0 or max_steps < 0:
        raise ConfigError("fmax_ev_ang must be > 0 and max_steps >= 0")
    if cell_axes not in _MASKS:
        raise ConfigError(f"cell_axes must be one of {', '.join(_MASKS)}, got {cell_axes!r}")
    check_coverage(calc, atoms)
    check_start_structure(atoms, min_distance_ang=min_distance_ang, what="the structure to relax")
    work = atoms.copy()
    apply_fixed(work)
    work.calc = calc
    e0 = float(work.get_potential_energy())
    problem = non_finite_message(e0, work.get_forces())
    if problem is not None:
        raise StructureError(f"the potential returns {problem} for the structure to relax; check the structure "
                             "and that the potential covers it")
    lengths0 = work.cell.lengths().copy()
    target = work
    if cell:
        if not work.pbc.all():
            raise ConfigError("cell relaxation needs a 3-D periodic structure; use cell=False (--fixed-cell)")
        target = FrechetCellFilter(work, mask=_MASKS[cell_axes], scalar_pressure=pressure_gpa * units.GPa)
    opt = FIRE(target, maxstep=max_step_ang, logfile=None)
    reporter = None
    if progress:
        from .progress import ProgressReporter

        what = f"cell {cell_axes}" if cell else "fixed cell"
        reporter = ProgressReporter(f"relax ({len(work)} atoms, {what})")

        def report() -> None:  # the optimiser's forces and energy are cached: reading them costs nothing
            if reporter.due():
                reporter.update(opt.nsteps, fmax_ev_ang=_max_norm(target.get_forces()),
                                energy_ev=float(work.get_potential_energy()), force=True)

        opt.attach(report, interval=1)

    def guard() -> None:  # FIRE would go on (and report "not converged") on NaN forces
        problem = non_finite_message(float(work.get_potential_energy()), work.get_forces())
        if problem is not None:
            raise SimulationUnstable(f"relaxation unstable at step {opt.nsteps}: {problem}; the potential fails "
                                     "on this geometry (try a smaller max_step_ang or another potential)",
                                     {"guard": "non_finite", "step": int(opt.nsteps), "message": problem})

    opt.attach(guard, interval=1)
    converged = bool(opt.run(fmax=fmax_ev_ang, steps=max_steps))
    forces = work.get_forces()
    fmax = float(np.linalg.norm(forces, axis=1).max()) if len(work) else 0.0
    change = tuple(float(x) for x in 100.0 * (work.cell.lengths() / lengths0 - 1.0)) if cell else (0.0, 0.0, 0.0)
    e1 = float(work.get_potential_energy())
    logger.info("relax: %d steps, E %.4f -> %.4f eV, max|F| %.3f eV/Å, converged=%s", opt.nsteps, e0, e1, fmax, converged)
    if reporter is not None:
        reporter.done(int(opt.nsteps), fmax_ev_ang=fmax, energy_ev=e1,
                      note="converged" if converged else "stopped unconverged")
    return RelaxResult(work, converged, int(opt.nsteps), e0, e1, fmax, change)  # type: ignore[arg-type]
