"""The MD engine interface: what :func:`tfbsim.workflows.md.run.run_md` needs from an integrator backend.

The runner owns everything around the dynamics (run directory, trajectory, log, checkpoints, guards,
progress); an engine owns the state and advances it. A GPU-resident batched engine can implement the same
few methods without touching callers:

========================  ======================================================================
``advance(n_steps)``      integrate ``n_steps`` steps, applying the temperature schedule per step
``sample(forces=...)``    the current state and observables (:class:`EngineSample`), ASE units
``get_state()``           everything needed for an exact restart, as named numpy arrays
``set_state(state)``      restore it (bit-identical continuation on the same hardware)
``atoms()``               a copy of the current state as :class:`ase.Atoms`
``after_checkpoint()``    make the potential's cached state equal to a fresh start (so that a run
                          continuing after a checkpoint and one restarted from it stay identical)
========================  ======================================================================

Attributes ``step`` (int), ``time_ps`` (float), ``ndof`` (int: kinetic degrees of freedom, 3 N minus
fixed atoms minus the conserved centre-of-mass momentum) and ``n_atoms`` complete the protocol.

An engine may also have a ``stop`` attribute (a :class:`~tfbsim.workflows.md.signals.StopRequest`): the runner
then hands it its signal flag, and ``advance`` returns early at the first step boundary after SIGTERM/SIGUSR1
(``step`` says how far it got). Engines without one (the batched GPU engine) are stopped by the runner after
``advance`` returns, at the next event step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from ase import Atoms

__all__ = ["MDEngine", "EngineSample", "count_dof"]


@dataclass
class EngineSample:
    """The state of an engine at one step (arrays are copies, in eV, Å, ASE velocity units).

    Attributes
    ----------
    step
        MD step.
    time_ps
        Simulation time (ps).
    positions
        Unwrapped positions (N, 3), Å.
    velocities
        Velocities (N, 3), Å per ASE time unit.
    cell
        Cell vectors as rows (3, 3), Å.
    epot_ev, ekin_ev
        Potential and kinetic energy (eV).
    temperature_k
        Kinetic temperature 2 E_kin / (ndof k_B) (K).
    target_temperature_k
        Thermostat target at this step (K).
    pressure_gpa
        Pressure including the kinetic term (GPa); NaN when the potential gave no stress (non-periodic).
    volume_ang3
        Cell volume (Å³); NaN without a 3-D cell.
    conserved_ev
        The integrator's conserved quantity (eV): total energy (NVE), energy minus heat exchanged (Bussi),
        extended-system energy (Nosé–Hoover, MTK); NaN where none exists (Langevin, Berendsen).
    forces_ev_ang
        Forces (N, 3), eV/Å, without constraint projections; ``None`` unless requested.
    """

    step: int
    time_ps: float
    positions: np.ndarray
    velocities: np.ndarray
    cell: np.ndarray
    epot_ev: float
    ekin_ev: float
    temperature_k: float
    target_temperature_k: float
    pressure_gpa: float
    volume_ang3: float
    conserved_ev: float
    forces_ev_ang: np.ndarray | None = None

    @property
    def etot_ev(self) -> float:
        """Total energy (eV)."""
        return self.epot_ev + self.ekin_ev


@runtime_checkable
class MDEngine(Protocol):
    """What the MD runner calls (see the module docstring)."""

    step: int
    ndof: int
    n_atoms: int

    @property
    def time_ps(self) -> float:
        """Simulation time of the current step (ps)."""
        ...

    def advance(self, n_steps: int) -> None:
        """Integrate ``n_steps`` steps."""
        ...

    def sample(self, *, forces: bool = False) -> EngineSample:
        """Current state and observables."""
        ...

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything needed for an exact restart."""
        ...

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a state from :meth:`get_state`."""
        ...

    def atoms(self) -> Atoms:
        """A copy of the current state."""
        ...

    def after_checkpoint(self) -> None:
        """Drop cached potential state so continuation equals restart."""
        ...


def count_dof(n_atoms: int, n_fixed: int) -> int:
    """Kinetic degrees of freedom: ``3 (N - N_fixed)``, minus 3 for the conserved centre-of-mass momentum
    when no atom is fixed (fixed atoms exert external forces, so total momentum is not conserved)."""
    free = 3 * (n_atoms - n_fixed)
    return free - 3 if n_fixed == 0 else free
