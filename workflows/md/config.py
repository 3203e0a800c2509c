"""Configuration of an MD run (:class:`MDConfig`), shared by :func:`tfbsim.workflows.md.run.run_md`, YAML files
and ``tfbsim md --config md.yaml``.

Every number names its unit; values are converted to ASE units once, in the engine. Unknown keys are an
error (:class:`~tfbsim.workflows.config.StrictModel`).

Example ``md.yaml``::

    ensemble: nvt-nhc
    steps: 20000
    timestep_fs: 1.0
    temperature_k: 600
    traj_every: 100
    checkpoint_every: 2000
    seed: 7
    potential: {model: path/to/lipon.model, dtype: float32}

A melt–quench stage uses a piecewise-linear ramp instead of ``temperature_k``::

    ensemble: nvt-bussi
    temperature_schedule: [[0, 2000], [10, 300]]   # [t_ps, T_K] points; T is held after the last one
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..config import StrictModel
from ..potentials.config import PotentialConfig

__all__ = [
    "MDConfig",
    "Ensemble",
    "BarostatAxes",
    "ENSEMBLES",
    "CANONICAL_ENSEMBLES",
    "temperature_at",
]

Ensemble = Literal["nve", "nvt-langevin", "nvt-bussi", "nvt-nhc", "npt-mtk", "npt-berendsen"]
BarostatAxes = Literal["isotropic", "anisotropic", "z", "full"]

#: All ensembles, in documentation order.
ENSEMBLES: tuple[str, ...] = ("nve", "nvt-langevin", "nvt-bussi", "nvt-nhc", "npt-mtk", "npt-berendsen")
#: Ensembles that sample the canonical (NVT) or isothermal-isobaric (NPT) distribution correctly.
CANONICAL_ENSEMBLES: tuple[str, ...] = ("nvt-langevin", "nvt-bussi", "nvt-nhc", "npt-mtk")


class MDConfig(StrictModel):
    """Settings of one MD run (one stage of a protocol).

    Attributes
    ----------
    ensemble
        ``nve`` (velocity Verlet), ``nvt-langevin`` (ASE Langevin, BAOAB-like Vanden-Eijnden–Ciccotti),
        ``nvt-bussi`` (stochastic velocity rescaling), ``nvt-nhc`` (Nosé–Hoover chain), ``npt-mtk``
        (Martyna–Tobias–Klein barostat + Nosé–Hoover chains) or ``npt-berendsen`` (weak coupling:
        equilibration only, it does not sample NPT fluctuations).
    steps
        Planned total number of MD steps of the run (a restart continues to this total).
    timestep_fs
        Integration time step (fs). 1 fs is safe for Li-containing systems up to ~2000 K.
    temperature_k
        Constant target temperature (K) when ``temperature_schedule`` is not given. For ``nve`` it is
        only the reference of the temperature guard.
    temperature_schedule
        Piecewise-linear target temperature: ``[[t0_ps, T0_k], [t1_ps, T1_k], ...]`` with non-decreasing
        times measured from the start of this run; held constant before the first and after the last
        point. Overrides ``temperature_k``. ``None``: constant ``temperature_k``.
    friction_ps_inv
        Langevin friction (1/ps). Small values (≈1/ps) perturb diffusion least.
    tdamp_fs
        Thermostat time constant (fs) of Bussi, Nosé–Hoover chains, MTK and Berendsen. ``None``: 100 ×
        ``timestep_fs``.
    nhc_chain_length
        Number of thermostats in each Nosé–Hoover chain (nvt-nhc, npt-mtk).
    pressure_gpa
        Target pressure (GPa) of the NPT ensembles (1 bar = 1e-4 GPa).
    pdamp_fs
        Barostat time constant (fs). ``None``: 1000 × ``timestep_fs``.
    barostat_axes
        Which cell degrees of freedom the barostat moves: ``isotropic`` (volume only, shape fixed: liquids
        and glasses), ``anisotropic`` (lengths of a, b, c independently, angles fixed), ``z`` (only the c
        vector's length; the in-plane cell a, b stays fixed: films and interfaces on a substrate), ``full``
        (all cell components; crystals only, MTK only).
    compressibility_per_gpa
        Berendsen barostat only: the system's compressibility (1/GPa; ~0.01–0.05 for oxides).
    initial_temperature_k
        Draw Maxwell–Boltzmann velocities at this temperature (K) from the seeded generator, with zero
        total momentum. ``None``: keep the structure's velocities (stage chaining); if it has none and the
        ensemble has a thermostat, velocities are drawn at the target temperature at t = 0 (logged and
        recorded in the summary).
    seed
        Seed of the one :class:`numpy.random.Generator` that feeds the initial velocities and the
        thermostat noise.
    traj_every, log_every, checkpoint_every, guard_every
        Intervals (steps) of trajectory frames, ``log.csv`` rows, checkpoints and stability guards.
    store_velocities, store_forces
        Also store velocities / forces in the trajectory.
    traj_precision
        ``float32`` (half the size; 1e-5 Å resolution at 100 Å) or ``float64`` positions and velocities.
    guard_max_force_ev_ang
        Stop when any atomic force exceeds this (eV/Å).
    guard_min_distance_ang
        Stop when any pair of atoms is closer than this (Å).
    guard_t_factor
        Stop when the temperature exceeds this factor × the target temperature, after
        ``guard_t_after_ps``. ``None`` disables the temperature guard.
    guard_t_after_ps
        Equilibration time (ps) before the temperature guard is active.
    potential
        The potential the CLI builds (``run_md`` itself receives a calculator); its identity (sha256,
        dtype) is checked on restart.
    engine
        ``ase`` (ASE integrators, any potential, every ensemble) or ``gpu`` (the device-resident, batched
        engine of :mod:`tfbsim.workflows.md.engines.gpu_engine`: MACE models only; ``nve``, ``nvt-langevin``
        and ``nvt-bussi``; needs the ``gpu`` extra). Same run directory, checkpoints and guards.
    """

    ensemble: Ensemble = "nvt-langevin"
    steps: int = Field(1000, ge=0)
    timestep_fs: float = Field(1.0, gt=0, le=20)
    temperature_k: float = Field(300.0, gt=0)
    temperature_schedule: list[tuple[float, float]] | None = None
    friction_ps_inv: float = Field(1.0, gt=0)
    tdamp_fs: float | None = Field(None, gt=0)
    nhc_chain_length: int = Field(3, ge=1, le=10)
    pressure_gpa: float = 0.0
    pdamp_fs: float | None = Field(None, gt=0)
    barostat_axes: BarostatAxes = "isotropic"
    compressibility_per_gpa: float = Field(0.02, gt=0)
    initial_temperature_k: float | None = Field(None, ge=0)
    seed: int = Field(0, ge=0)
    traj_every: int = Field(100, ge=1)
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    guard_every: int = Field(10, ge=1)
    store_velocities: bool = False
    store_forces: bool = False
    traj_precision: Literal["float32", "float64"] = "float32"
    guard_max_force_ev_ang: float = Field(50.0, gt=0)
    guard_min_distance_ang: float = Field(0.6, ge=0)
    guard_t_factor: float | None = Field(3.0, gt=1)
    guard_t_after_ps: float = Field(0.5, ge=0)
    potential: PotentialConfig = Field(default_factory=PotentialConfig)
    engine: Literal["ase", "gpu"] = "ase"

    @field_validator("temperature_schedule")
    @classmethod
    def _check_schedule(cls, value: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if value is None:
            return None
        if len(value) == 0:
            raise ValueError("temperature_schedule needs at least one [t_ps, T_k] point (or null)")
        times = np.array([p[0] for p in value], dtype=float)
        temps = np.array([p[1] for p in value], dtype=float)
        if np.any(times < 0) or np.any(np.diff(times) < 0):
            raise ValueError("temperature_schedule times (ps) must be >= 0 and non-decreasing")
        if np.any(temps <= 0) or not np.all(np.isfinite(temps)):
            raise ValueError("temperature_schedule temperatures (K) must be finite and > 0")
        return [(float(t), float(T)) for t, T in value]

    @model_validator(mode="after")
    def _check_combinations(self) -> MDConfig:
        if self.ensemble == "nve" and self.temperature_schedule is not None:
            raise ValueError("nve has no thermostat: a temperature_schedule needs an nvt-* or npt-* ensemble")
        if self.barostat_axes == "full" and self.ensemble == "npt-berendsen":
            raise ValueError("barostat_axes 'full' is only available with npt-mtk; use anisotropic")
        if self.engine == "gpu" and self.ensemble not in ("nve", "nvt-langevin", "nvt-bussi"):
            raise ValueError(f"engine 'gpu' integrates nve, nvt-langevin and nvt-bussi, not {self.ensemble}; "
                             "use engine: ase for Nose-Hoover chains and NPT")
        return self

    # ------------------------------------------------------------------------------------------ derived
    @property
    def tdamp_fs_resolved(self) -> float:
        """Thermostat time constant (fs): ``tdamp_fs`` or 100 × ``timestep_fs``."""
        return float(self.tdamp_fs if self.tdamp_fs is not None else 100.0 * self.timestep_fs)

    @property
    def pdamp_fs_resolved(self) -> float:
        """Barostat time constant (fs): ``pdamp_fs`` or 1000 × ``timestep_fs``."""
        return float(self.pdamp_fs if self.pdamp_fs is not None else 1000.0 * self.timestep_fs)

    @property
    def has_thermostat(self) -> bool:
        """Whether the ensemble controls the temperature."""
        return self.ensemble != "nve"

    def target_temperature_k(self, step: int) -> float:
        """Target temperature (K) for the step that starts at ``step`` (see ``temperature_schedule``)."""
        if self.temperature_schedule is None:
            return float(self.temperature_k)
        return temperature_at(self.temperature_schedule, step * self.timestep_fs * 1e-3)


def temperature_at(schedule: list[tuple[float, float]], t_ps: float) -> float:
    """Piecewise-linear interpolation of ``[[t_ps, T_k], ...]`` at ``t_ps``, held beyond the ends (K)."""
    times = [p[0] for p in schedule]
    temps = [p[1] for p in schedule]
    return float(np.interp(t_ps, times, temps))
