"""Batched integrators on device tensors: velocity Verlet (NVE), Langevin and Bussi (NVT).

The schemes are those of the ASE engine (:mod:`tfbsim.workflows.md.engines.thermostats`), operation for operation, so
that the two engines agree to rounding for the same forces and the same noise:

==================  ==================================================================================
``nve``             ASE ``VelocityVerlet`` with RATTLE-style constraint handling (momenta recomputed from
                    the constrained position update)
``nvt-langevin``    ASE ``Langevin`` — the second-order Vanden-Eijnden–Ciccotti scheme (Gaussian ``xi``,
                    ``eta`` per atom and step; friction and noise in both half kicks, a random position
                    increment ``c5 eta``) with ``fixcm=False`` and the centre of mass held by ``FixCom``
``nvt-bussi``       ASE ``Bussi`` — stochastic velocity rescaling (one Gaussian and one χ² draw per system
                    and step), then a velocity-Verlet step; the heat exchanged is accumulated
==================  ==================================================================================

Constraints are ASE's: fixed atoms keep their positions and carry no momentum (``FixAtoms``); in a system
without fixed atoms the centre of mass of positions and momenta is held (``FixCom``), removing 3 degrees of
freedom. Every system of a batch has its own time step, target temperature, friction and noise generator;
per-system reductions are ``index_add_`` over the atoms' system index.

Notation: ``p`` momenta (amu Å / ASE time), ``m`` masses (amu, shape (N, 1)), ``F`` forces (eV/Å), ``dt``
time step (ASE time units) per atom (N, 1), ``kT`` (eV).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Particles",
    "ForceFn",
    "langevin_coefficients",
    "verlet_step",
    "langevin_step",
    "bussi_alpha",
    "kinetic_energies",
]

#: ``force_fn(positions) -> forces`` evaluates the potential (and caches energies) at new positions.
ForceFn = Callable[[Any], Any]


@dataclass
class Particles:
    """Concatenated particle state of a batch of systems (float64 tensors on one device).

    Attributes
    ----------
    positions, momenta
        (N, 3) unwrapped positions (Å) and momenta (amu Å / ASE time).
    masses
        (N, 1) masses (amu).
    free
        (N, 1) 1.0 for moving atoms, 0.0 for fixed atoms.
    fixed
        (N,) bool, fixed atoms.
    batch
        (N,) int64 system index of each atom.
    fix_com
        (n_systems,) bool: systems whose centre of mass is held (no fixed atoms).
    n_systems
        Number of systems.
    """

    positions: Any
    momenta: Any
    masses: Any
    free: Any
    fixed: Any
    batch: Any
    fix_com: Any
    n_systems: int

    # -------------------------------------------------------------------------------------- reductions
    def per_system(self, values: Any) -> Any:
        """Sum of (N, k) ``values`` over the atoms of each system: (n_systems, k)."""
        out = values.new_zeros((self.n_systems, values.shape[1]))
        return out.index_add_(0, self.batch, values)

    def system_mass(self) -> Any:
        """Total mass of each system (n_systems, 1)."""
        return self.per_system(self.masses)

    # ------------------------------------------------------------------------------------- constraints
    def constrain_positions(self, old: Any, new: Any) -> Any:
        """ASE ``FixAtoms`` / ``FixCom`` ``adjust_positions``: fixed atoms stay at ``old``; systems with
        ``fix_com`` are shifted back so that their centre of mass does not move."""
        torch = _torch()
        new = torch.where(self.fixed[:, None], old, new)
        m_sys = self.system_mass()
        old_com = self.per_system(self.masses * old) / m_sys
        new_com = self.per_system(self.masses * new) / m_sys
        shift = torch.where(self.fix_com[:, None], old_com - new_com, torch.zeros_like(old_com))
        return new + shift[self.batch]

    def constrain_momenta(self, p: Any) -> Any:
        """ASE ``FixAtoms`` / ``FixCom`` ``adjust_momenta``: zero momentum on fixed atoms and, with
        ``fix_com``, zero total momentum."""
        torch = _torch()
        p = p * self.free
        v_com = self.per_system(p) / self.system_mass()
        v_com = torch.where(self.fix_com[:, None], v_com, torch.zeros_like(v_com))
        return p - self.masses * v_com[self.batch]


def _torch() -> Any:
    import torch

    return torch


def kinetic_energies(state: Particles) -> Any:
    """Kinetic energy of each system (n_systems,), eV (ASE's ``0.5 p·v`` over all atoms)."""
    ke = 0.5 * (state.momenta * state.momenta / state.masses).sum(dim=1, keepdim=True)
    return state.per_system(ke)[:, 0]


# ------------------------------------------------------------------------------------------------ NVE
def verlet_step(state: Particles, forces: Any, dt: Any, force_fn: ForceFn) -> Any:
    """One velocity-Verlet step (ASE ``VelocityVerlet`` with constraints); updates ``state`` in place and
    returns the new forces."""
    p = state.momenta + 0.5 * dt * forces
    r = state.positions
    new = state.constrain_positions(r, r + dt * p / state.masses)
    p = (new - r) * state.masses / dt
    state.positions = new
    forces = force_fn(new)
    state.momenta = state.constrain_momenta(p + 0.5 * dt * forces)
    return forces


# -------------------------------------------------------------------------------------------- Langevin
def langevin_coefficients(dt: Any, kT: Any, friction: Any, masses: Any) -> tuple[Any, Any, Any, Any, Any]:
    """ASE ``Langevin.updatevars``: ``c1 … c5`` per atom from per-atom ``dt``, ``kT`` and ``friction``."""
    sigma = (2.0 * kT * friction / masses).sqrt()
    c1 = dt / 2.0 - dt * dt * friction / 8.0
    c2 = dt * friction / 2.0 - dt * dt * friction * friction / 8.0
    c3 = dt.sqrt() * sigma / 2.0 - dt**1.5 * friction * sigma / 8.0
    c5 = dt**1.5 * sigma / (2.0 * math.sqrt(3.0))
    c4 = friction / 2.0 * c5
    return c1, c2, c3, c4, c5


def langevin_step(state: Particles, forces: Any, dt: Any, coefficients: tuple, xi: Any, eta: Any,
                  force_fn: ForceFn) -> Any:
    """One ASE ``Langevin`` step with Gaussian noise ``xi``, ``eta`` (N, 3); returns the new forces."""
    c1, c2, c3, c4, c5 = coefficients
    m = state.masses
    v = state.momenta / m
    rnd_pos = c5 * eta
    rnd_vel = c3 * xi - c4 * eta
    v = v + (c1 * forces / m - c2 * v + rnd_vel)
    x = state.positions
    new = state.constrain_positions(x, x + dt * v + rnd_pos)
    state.positions = new
    v = (new - x - rnd_pos) / dt
    forces = force_fn(new)
    v = v + (c1 * forces / m - c2 * v + rnd_vel)
    state.momenta = state.constrain_momenta(v * m)
    return forces


# ----------------------------------------------------------------------------------------------- Bussi
def bussi_alpha(kinetic: Any, target_kinetic: Any, ndof: Any, exp_term: Any, r1: Any, chi2: Any) -> Any:
    """ASE ``Bussi.calculate_alpha`` (Bussi et al. 2007, eq. A7) per system.

    Parameters
    ----------
    kinetic, target_kinetic
        Current and target (``ndof kT / 2``) kinetic energies (n_systems,), eV.
    ndof
        Degrees of freedom (n_systems,).
    exp_term
        ``exp(-dt / tau)`` (n_systems,).
    r1, chi2
        A standard normal draw and a χ² draw with ``ndof - 1`` degrees of freedom (n_systems,).
    """
    scaling = (1.0 - exp_term) * target_kinetic / kinetic / ndof
    return (exp_term + scaling * (chi2 + r1 * r1) + 2.0 * r1 * (exp_term * scaling).sqrt()).sqrt()
