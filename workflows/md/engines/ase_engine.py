"""The CPU/GPU single-system engine: ASE integrators (see :mod:`tfbsim.workflows.md.engines.thermostats`).

The engine owns a working copy of the atoms with the calculator attached, the integrator, and the one
seeded :class:`numpy.random.Generator` that feeds the thermostat noise. ``advance`` is a bare loop over
``dyn.step()`` (plus one ``np.interp`` per step during a temperature ramp, and one read of the
:class:`~tfbsim.workflows.md.signals.StopRequest` flag that SIGTERM/SIGUSR1 set): observers, logging and files
are the runner's business, at intervals.
"""

from __future__ import annotations

import json
import logging

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from ase.constraints import FixAtoms, FixCom

from ....errors import ConfigError
from ..config import MDConfig, temperature_at
from ..relax import apply_fixed
from ..signals import StopRequest
from .base import EngineSample, count_dof
from .thermostats import (
    TfbBerendsenNPT,
    TfbBussi,
    TfbInhomogeneousBerendsenNPT,
    TfbIsotropicMTK,
    TfbLangevin,
    TfbMaskedMTK,
    TfbMTK,
    TfbNoseHooverChain,
    TfbVelocityVerlet,
)

__all__ = ["AseEngine", "fixed_mask"]

logger = logging.getLogger(__name__)

#: Integrators that read positions/momenta from the atoms every step: the centre of mass is held by FixCom.
_READS_ATOMS = {"nve", "nvt-langevin", "nvt-bussi", "npt-berendsen"}
_FS_PER_PS = 1000.0


def fixed_mask(atoms: Atoms) -> np.ndarray:
    """Boolean mask of fixed atoms: ``arrays['fixed']`` or, failing that, existing ``FixAtoms`` constraints."""
    if "fixed" in atoms.arrays:
        return np.asarray(atoms.arrays["fixed"], dtype=bool).copy()
    mask = np.zeros(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            mask[constraint.index] = True
    return mask


class AseEngine:
    """MD with ASE integrators on one structure.

    Parameters
    ----------
    atoms
        Working structure, owned by the engine from now on (momenta already set; ``arrays['fixed']``
        honoured). Constraints other than fixed atoms are refused.
    calc
        ASE calculator (deterministic potentials give bit-identical restarts in float64 on CPU).
    config
        The run's :class:`~tfbsim.workflows.md.config.MDConfig`.
    rng
        The run's generator (thermostat noise).
    state
        A state from :meth:`get_state` to continue from (restart); ``None`` starts at step 0.
    """

    name = "ase"
    #: Polled before every step: once requested, :meth:`advance` returns at that step boundary (the runner
    #: replaces it by the request its signal handlers set).
    stop: StopRequest

    def __init__(
        self,
        atoms: Atoms,
        calc: Calculator,
        config: MDConfig,
        *,
        rng: np.random.Generator,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.config = config
        self.rng = rng
        self.stop = StopRequest()
        self._atoms = atoms
        self.n_atoms = len(atoms)
        fixed = fixed_mask(atoms)
        others = [c for c in atoms.constraints if not isinstance(c, (FixAtoms, FixCom))]
        if others:
            raise ConfigError(
                f"MD supports fixed atoms only (arrays['fixed'] or FixAtoms), not {type(others[0]).__name__}; "
                "remove other constraints"
            )
        atoms.arrays["fixed"] = fixed
        apply_fixed(atoms)
        self.n_fixed = int(fixed.sum())
        self.ndof = count_dof(self.n_atoms, self.n_fixed)
        if self.ndof <= 0:
            raise ConfigError("MD needs at least two free atoms (all atoms fixed, or a single atom)")
        if self.n_fixed == 0 and config.ensemble in _READS_ATOMS:
            atoms.set_constraint([*atoms.constraints, FixCom()])
        atoms.calc = calc
        self._calc = calc
        self._dt_ps = config.timestep_fs / _FS_PER_PS
        self.step = 0
        self._step0, self._t0_ps = 0, 0.0
        if state is not None:
            self._restore_particles(state)
            current_t = float(state["current_target_t"])
        else:
            current_t = self.target_temperature_k(0)
        self._current_t = current_t
        self.dyn = self._build(current_t)
        if state is not None:
            self._restore_integrator(state)
        self.dyn.nsteps = self.step

    # ---------------------------------------------------------------------------------------- building
    def _build(self, temperature_k: float):
        c, atoms = self.config, self._atoms
        dt = c.timestep_fs * units.fs
        tdamp = c.tdamp_fs_resolved * units.fs
        pdamp = c.pdamp_fs_resolved * units.fs
        pressure_au = c.pressure_gpa * units.GPa
        if c.ensemble == "nve":
            return TfbVelocityVerlet(atoms, dt)
        if c.ensemble == "nvt-langevin":
            friction = c.friction_ps_inv / (_FS_PER_PS * units.fs)
            return TfbLangevin(atoms, dt, temperature_k=temperature_k, friction=friction, rng=self.rng)
        if c.ensemble == "nvt-bussi":
            return TfbBussi(atoms, dt, temperature_k=temperature_k, taut=tdamp, rng=self.rng)
        if c.ensemble == "nvt-nhc":
            return TfbNoseHooverChain(
                atoms, dt, temperature_k=temperature_k, tdamp=tdamp, ndof=self.ndof, tchain=c.nhc_chain_length
            )
        if c.ensemble == "npt-mtk":
            kwargs = dict(
                temperature_k=temperature_k, pressure_au=pressure_au, tdamp=tdamp, pdamp=pdamp, ndof=self.ndof,
                tchain=c.nhc_chain_length,
            )
            if c.barostat_axes == "isotropic":
                return TfbIsotropicMTK(atoms, dt, **kwargs)
            if c.barostat_axes == "full":
                return TfbMTK(atoms, dt, **kwargs)
            mask = (True, True, True) if c.barostat_axes == "anisotropic" else (False, False, True)
            return TfbMaskedMTK(atoms, dt, mask=mask, **kwargs)
        # npt-berendsen
        kwargs = dict(
            temperature_k=temperature_k, pressure_au=pressure_au, taut=tdamp, taup=pdamp,
            compressibility_au=c.compressibility_per_gpa / units.GPa,
        )
        if c.barostat_axes == "isotropic":
            return TfbBerendsenNPT(atoms, dt, **kwargs)
        mask = (1, 1, 1) if c.barostat_axes == "anisotropic" else (0, 0, 1)
        return TfbInhomogeneousBerendsenNPT(atoms, dt, mask=mask, **kwargs)

    # ------------------------------------------------------------------------------------------- time
    @property
    def time_ps(self) -> float:
        """Simulation time of the current step (ps)."""
        return self._time_at(self.step)

    def _time_at(self, step: int) -> float:
        return self._t0_ps + (step - self._step0) * self._dt_ps

    def target_temperature_k(self, step: int) -> float:
        """Thermostat target for the step starting at ``step`` (K)."""
        schedule = self.config.temperature_schedule
        if schedule is None:
            return float(self.config.temperature_k)
        return temperature_at(schedule, self._time_at(step))

    def set_time_origin(self, step: int, time_ps: float) -> None:
        """Measure time (and the schedule) from ``time_ps`` at ``step`` (used when the time step changes)."""
        self._step0, self._t0_ps = int(step), float(time_ps)

    # ---------------------------------------------------------------------------------------- running
    def advance(self, n_steps: int) -> None:
        """Integrate ``n_steps`` steps (the thermostat target follows the schedule, step by step).

        Returns early, at a step boundary, once :attr:`stop` is requested (``self.step`` then says how far it got).
        """
        dyn = self.dyn
        stop = self.stop
        try:
            if self.config.temperature_schedule is None:
                for _ in range(n_steps):
                    if stop.signum is not None:
                        break
                    dyn.step()
                    self.step += 1
            else:
                for _ in range(n_steps):
                    if stop.signum is not None:
                        break
                    target = self.target_temperature_k(self.step)
                    if target != self._current_t:
                        dyn.set_temperature_k(target)
                        self._current_t = target
                    dyn.step()
                    self.step += 1
        finally:
            dyn.nsteps = self.step

    def sample(self, *, forces: bool = False) -> EngineSample:
        """Current state and observables (see :class:`~tfbsim.workflows.md.engines.base.EngineSample`)."""
        atoms = self._atoms
        epot = float(atoms.get_potential_energy())
        ekin = float(atoms.get_kinetic_energy())
        volume = float(atoms.get_volume()) if atoms.cell.rank == 3 else float("nan")
        pressure = float("nan")
        if atoms.cell.rank == 3:
            try:
                stress = self._calc.get_property("stress", atoms, allow_calculation=False)
            except PropertyNotImplementedError:
                stress = None
            if stress is not None:
                virial_p = -float(np.mean(np.asarray(stress)[:3]))
                pressure = (virial_p + 2.0 * ekin / (3.0 * volume)) / units.GPa
        return EngineSample(
            step=self.step,
            time_ps=self.time_ps,
            positions=atoms.get_positions(),
            velocities=atoms.get_velocities(),
            cell=atoms.cell.array.copy(),
            epot_ev=epot,
            ekin_ev=ekin,
            temperature_k=2.0 * ekin / (self.ndof * units.kB),
            target_temperature_k=self._current_t if self.config.has_thermostat else float(self.config.temperature_k),
            pressure_gpa=pressure,
            volume_ang3=volume,
            conserved_ev=self._conserved(epot + ekin),
            forces_ev_ang=atoms.get_forces(apply_constraint=False) if forces else None,
        )

    def _conserved(self, etot: float) -> float:
        ensemble = self.config.ensemble
        if ensemble == "nve":
            return etot
        if ensemble == "nvt-bussi":
            return etot - float(self.dyn.transferred_energy)
        if ensemble in {"nvt-nhc", "npt-mtk"}:
            try:
                return float(self.dyn.get_conserved_energy())
            except PropertyNotImplementedError:
                return float("nan")
        return float("nan")

    def atoms(self) -> Atoms:
        """A copy of the current state (momenta included, fixed atoms as FixAtoms, no FixCom)."""
        out = self._atoms.copy()
        out.set_constraint([c for c in out.constraints if not isinstance(c, FixCom)])
        apply_fixed(out)
        return out

    def after_checkpoint(self) -> None:
        """Clear the calculator's cache (e.g. EMT's neighbour list) so continuation equals a restart."""
        self._calc.reset()

    # ------------------------------------------------------------------------------------------ state
    def get_state(self) -> dict[str, np.ndarray]:
        """Positions, momenta, cell, step, time origin, thermostat target, RNG and integrator state."""
        atoms = self._atoms
        state: dict[str, np.ndarray] = {
            "positions": atoms.get_positions(),
            "momenta": atoms.get_momenta(),
            "cell": atoms.cell.array.copy(),
            "step": np.array(self.step, dtype=np.int64),
            "time_origin": np.array([self._step0, self._t0_ps], dtype=np.float64),
            "current_target_t": np.array(self._current_t, dtype=np.float64),
            "rng_state": np.array(json.dumps(self.rng.bit_generator.state)),
            "integrator": np.array(self._integrator_key()),
        }
        for key, value in self.dyn.get_state().items():
            state[f"dyn:{key}"] = value
        return state

    def _integrator_key(self) -> str:
        c = self.config
        return f"{c.ensemble}/{c.barostat_axes}" if c.ensemble.startswith("npt") else c.ensemble

    def _restore_particles(self, state: dict[str, np.ndarray]) -> None:
        atoms = self._atoms
        atoms.set_cell(np.asarray(state["cell"], dtype=np.float64), scale_atoms=False)
        atoms.set_positions(np.asarray(state["positions"], dtype=np.float64), apply_constraint=False)
        atoms.set_momenta(np.asarray(state["momenta"], dtype=np.float64), apply_constraint=False)
        self.step = int(state["step"])
        step0, t0 = np.asarray(state["time_origin"], dtype=np.float64)
        self._step0, self._t0_ps = int(step0), float(t0)
        self.rng.bit_generator.state = json.loads(str(state["rng_state"]))

    def _restore_integrator(self, state: dict[str, np.ndarray]) -> None:
        saved = str(state.get("integrator", ""))
        current = self._integrator_key()
        dyn_state = {k[4:]: v for k, v in state.items() if k.startswith("dyn:")}
        if saved != current:
            logger.warning(
                "checkpoint integrator %s differs from %s: thermostat/barostat variables start afresh",
                saved, current,
            )
            return
        self.dyn.set_state(dyn_state)

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a state from :meth:`get_state` (rebuilds the integrator)."""
        self._restore_particles(state)
        self._current_t = float(state["current_target_t"])
        self.dyn = self._build(self._current_t)
        self._restore_integrator(state)
        self.dyn.nsteps = self.step
