"""Settings of the vapour-deposition protocol (:class:`DepositionConfig`).

See :mod:`tfbsim.workflows.protocols.deposition` for the protocol. Every number names its unit; unknown keys are
rejected (:class:`~tfbsim.workflows.config.StrictModel`). Example ``deposit.yaml``::

    species: Li
    count: 60                 # or thickness_ang: 5.0 (nominal, at the element's bulk density)
    group_size: 1
    energy_ev: 0.2            # thermal evaporation 0.1-0.3 eV; sputter-like a few eV (then timestep_fs 0.5)
    energy_distribution: fixed
    angle_deg: 0              # polar angle from the surface normal
    flux_per_ps: 2.0          # arriving atoms per ps
    temperature_k: 300        # substrate thermostat
    seed: 1
    potential: {model: bundled}
"""

from __future__ import annotations

from typing import Literal

from ase.data import atomic_numbers, reference_states
from pydantic import Field, field_validator, model_validator

from ..config import StrictModel
from ..potentials.config import PotentialConfig

__all__ = ["DepositionConfig", "bulk_number_density_ang3", "thermal_energy_cap"]

#: Upper quantile at which ``energy_distribution: thermal`` draws are capped (multiple of the mean energy):
#: the 99.9 % quantile of the Gamma(2) flux distribution is 4.62 × its mean.
_THERMAL_CAP = 4.62


def thermal_energy_cap(energy_ev: float) -> float:
    """Largest kinetic energy (eV) drawn for ``energy_distribution: thermal`` with mean ``energy_ev``."""
    return _THERMAL_CAP * float(energy_ev)


def bulk_number_density_ang3(symbol: str) -> float | None:
    """Atoms per Å³ of the element's standard solid (ASE's reference states: bcc, fcc, hcp, diamond), or None."""
    state = reference_states[atomic_numbers[symbol]] if symbol in atomic_numbers else None
    if not state or "a" not in state:
        return None
    a = float(state["a"])
    per_cell = {"bcc": (2, 1.0), "fcc": (4, 1.0), "diamond": (8, 1.0), "sc": (1, 1.0)}
    if state.get("symmetry") in per_cell:
        n, _ = per_cell[state["symmetry"]]
        return n / a**3
    if state.get("symmetry") == "hcp":
        c = float(state.get("c/a", 1.633)) * a
        return 2.0 / (0.5 * 3**0.5 * a * a * c)
    return None


class DepositionConfig(StrictModel):
    """Settings of one deposition run (:func:`~tfbsim.workflows.protocols.deposition.deposit`).

    Attributes
    ----------
    species
        Chemical symbol of the arriving atoms (the model must cover it).
    count
        Number of atoms sent (arrivals, reflected ones included). Exactly one of ``count``/``thickness_ang``.
    thickness_ang
        Nominal thickness (Å) to deposit, as a quartz-crystal monitor counts it: atoms sent = thickness × area ×
        the element's bulk number density (``density_atoms_ang3``).
    density_atoms_ang3
        Bulk number density of the species (atoms/Å³) for ``thickness_ang``; ``None``: from ASE's reference state
        (bcc Li: 0.0470 Å⁻³).
    group_size
        Atoms that arrive together in one event (1: one by one).
    energy_ev
        Kinetic energy of an arriving atom (eV); with ``thermal`` the mean of the flux-weighted Maxwell
        distribution (Gamma with shape 2), capped at 4.62 × the mean (the 99.9 % quantile).
    energy_distribution
        ``fixed`` (every atom ``energy_ev``) or ``thermal``.
    angle_deg
        Polar incidence angle from the surface normal (°; 0 = straight down, < 90).
    azimuth_deg
        Azimuth of the incidence direction in the surface plane (°, from x); ``None``: uniform at random per atom.
    flux_per_ps
        Arriving atoms per ps; events are ``group_size / flux_per_ps`` ps apart.
    temperature_k
        Substrate thermostat target (K).
    thermostat
        ``langevin`` (BAOAB, on the thermostatted atoms only) or ``berendsen`` (velocity rescaling of those atoms).
    friction_ps_inv
        Langevin friction (1/ps) of the thermostatted atoms.
    tau_fs
        Berendsen time constant (fs).
    timestep_fs
        Integration time step (fs).
    fix_bottom_ang
        Substrate atoms within this z distance of the lowest atom are fixed (added to ``arrays['fixed']``) (Å).
    nve_surface_ang
        Substrate atoms within this z distance below the initial top atom are not thermostatted (NVE) (Å); 0: every
        mobile substrate atom is thermostatted.
    clearance_ang
        Height of insertion above the current film top (Å); ``None``: the model's cutoff + 0.5 Å (so an atom
        starts outside the reach of the surface and arrives with ``energy_ev``).
    min_insert_distance_ang
        A drawn insertion point closer than this to any atom (periodic images included) is re-drawn (Å); at
        least ``guard_min_distance_ang``.
    max_insert_tries
        Draws per atom before giving up.
    join_after_ps
        An arriving atom (NVE) joins the thermostatted set once it is below the current film top (the highest
        substrate or joined atom), or at the latest this long after its insertion (ps).
    final_ps
        MD after the last arrival event, beyond the regular interval (ps).
    seed
        Seed of the one generator behind insertion points, energies, azimuths and the Langevin noise.
    log_every, guard_every
        Intervals (steps) of ``log.csv`` rows and of the stability guards.
    snapshot_every, checkpoint_every
        Intervals (arrival events) of snapshots (``snapshots.extxyz``, taken just before an event) and
        checkpoints.
    guard_min_distance_ang, guard_max_force_ev_ang
        The MD guards (:mod:`tfbsim.workflows.md.guards`).
    max_step_ang
        Largest distance an arriving atom may travel in one step at its arrival speed (Å); a faster arrival is
        refused (use a smaller ``timestep_fs``).
    potential
        The potential (recorded from the calculator; compared by identity on resume).
    """

    species: str = "Li"
    count: int | None = Field(None, ge=1)
    thickness_ang: float | None = Field(None, gt=0)
    density_atoms_ang3: float | None = Field(None, gt=0)
    group_size: int = Field(1, ge=1, le=100)
    energy_ev: float = Field(0.2, gt=0, le=200)
    energy_distribution: Literal["fixed", "thermal"] = "fixed"
    angle_deg: float = Field(0.0, ge=0, lt=90)
    azimuth_deg: float | None = None
    flux_per_ps: float = Field(1.0, gt=0)
    temperature_k: float = Field(300.0, gt=0)
    thermostat: Literal["langevin", "berendsen"] = "langevin"
    friction_ps_inv: float = Field(5.0, gt=0)
    tau_fs: float = Field(100.0, gt=0)
    timestep_fs: float = Field(1.0, gt=0, le=5)
    fix_bottom_ang: float = Field(3.0, ge=0)
    nve_surface_ang: float = Field(0.0, ge=0)
    clearance_ang: float | None = Field(None, gt=0)
    min_insert_distance_ang: float = Field(2.0, gt=0)
    max_insert_tries: int = Field(1000, ge=1)
    join_after_ps: float = Field(1.0, gt=0)
    final_ps: float = Field(0.5, ge=0)
    seed: int = Field(0, ge=0)
    log_every: int = Field(10, ge=1)
    guard_every: int = Field(10, ge=1)
    snapshot_every: int = Field(1, ge=1)
    checkpoint_every: int = Field(5, ge=1)
    guard_min_distance_ang: float = Field(0.6, ge=0)
    guard_max_force_ev_ang: float = Field(50.0, gt=0)
    max_step_ang: float = Field(0.1, gt=0)
    potential: PotentialConfig = Field(default_factory=PotentialConfig)

    @field_validator("species")
    @classmethod
    def _check_species(cls, value: str) -> str:
        if value not in atomic_numbers or value == "X":
            raise ValueError(f"{value!r} is not a chemical symbol (e.g. Li)")
        return value

    @model_validator(mode="after")
    def _check_target(self) -> DepositionConfig:
        if (self.count is None) == (self.thickness_ang is None):
            raise ValueError("give exactly one target: count (atoms) or thickness_ang (nominal thickness)")
        if self.min_insert_distance_ang < self.guard_min_distance_ang:
            raise ValueError(f"min_insert_distance_ang {self.min_insert_distance_ang:g} Å is below the guard's "
                             f"guard_min_distance_ang {self.guard_min_distance_ang:g} Å: inserted atoms could trip "
                             "the guard; raise min_insert_distance_ang")
        if self.clearance_ang is not None and self.clearance_ang < self.min_insert_distance_ang:
            raise ValueError(f"clearance_ang {self.clearance_ang:g} Å is below min_insert_distance_ang "
                             f"{self.min_insert_distance_ang:g} Å: atoms would be inserted into the surface; raise "
                             "clearance_ang")
        return self

    # ------------------------------------------------------------------------------------------ derived
    @property
    def interval_ps(self) -> float:
        """Time between two arrival events (ps)."""
        return self.group_size / self.flux_per_ps
