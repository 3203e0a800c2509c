"""Settings of the melt–quench protocol (:class:`MeltQuenchConfig`) and its presets.

See :mod:`tfbsim.workflows.protocols.melt_quench` for the stages and the literature behind the preset rates. YAML files
hold any subset of the keys; ``preset`` decides the defaults of the others::

    preset: quick
    melt_k: 2500
    md_options: {guard_max_force_ev_ang: 80}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ...errors import ConfigError
from ..config import StrictModel, load_config, validate_config
from ..potentials.config import PotentialConfig
from ..md.config import MDConfig
from .glass_checks import NetworkCheckConfig

__all__ = ["MeltQuenchConfig", "MELT_QUENCH_PRESETS", "STAGES", "MD_STAGES", "resolve_melt_quench_config"]

#: Preset values; any key can be overridden (see the module docstring for the sources of the rates).
MELT_QUENCH_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "timestep_fs": 2.0,
        "melt_ps": 1.0,
        "quench_rate_k_ps": 1000.0,
        "anneal_ps": 1.0,
        "prerelax_steps": 200,
        "final_relax_steps": 200,
        "pdamp_fs": 200.0,
        "traj_every": 25,
        "log_every": 10,
        "checkpoint_every": 250,
    },
    "production": {
        "timestep_fs": 1.0,
        "melt_ps": 10.0,
        "quench_rate_k_ps": 100.0,
        "anneal_ps": 20.0,
        "prerelax_steps": 500,
        "final_relax_steps": 1000,
        "pdamp_fs": 1000.0,
        "traj_every": 100,
        "log_every": 50,
        "checkpoint_every": 1000,
    },
    # a glass one can defend: network equilibrated in the melt (measured, extended up to 100 ps), quench
    # at 10 K/ps under the barostat (V(T) and H(T) give Tg), 50 ps NPT anneal
    "glass": {
        "timestep_fs": 1.0,
        "melt_ps": 20.0,
        "quench_rate_k_ps": 10.0,
        "quench_ensemble": "npt",
        "anneal_ps": 50.0,
        "prerelax_steps": 500,
        "final_relax_steps": 1000,
        "pdamp_fs": 1000.0,
        "traj_every": 100,
        "log_every": 50,
        "checkpoint_every": 2000,
        "network_check": {"min_exchanges_per_p": 1.0, "max_melt_ps": 100.0},
    },
}
#: Stage names in order (stage folders are ``1_prerelax`` ... ``5_relax``).
STAGES: tuple[str, ...] = ("prerelax", "melt", "quench", "anneal", "relax")
#: The stages that run MD (the others are FIRE relaxations).
MD_STAGES: tuple[str, ...] = ("melt", "quench", "anneal")
#: MDConfig keys the protocol sets itself (not allowed in ``md_options``).
_PROTOCOL_MD_KEYS = {
    "ensemble", "steps", "timestep_fs", "temperature_k", "temperature_schedule", "initial_temperature_k", "seed",
    "barostat_axes", "pressure_gpa", "tdamp_fs", "pdamp_fs", "traj_every", "log_every", "checkpoint_every",
    "potential",
}


class MeltQuenchConfig(StrictModel):
    """Settings of :func:`melt_quench` (YAML: any subset of these keys, ``preset`` first).

    Attributes
    ----------
    preset
        ``quick``, ``production`` or ``glass``: the defaults of the keys not given (:data:`MELT_QUENCH_PRESETS`).
    timestep_fs
        MD time step (fs) of all MD stages.
    melt_k
        Melt temperature (K); 2000 K melts Li phosphates and LiPON within ps.
    melt_ps
        NVT time at ``melt_k`` (ps); 0 skips the melt.
    quench_rate_k_ps
        Linear cooling rate from ``melt_k`` to ``final_k`` (K/ps); the quench lasts
        ``(melt_k − final_k) / quench_rate_k_ps``.
    final_k
        Anneal temperature (K) at the end of the quench.
    anneal_ps
        NPT time at ``final_k`` (ps); 0 skips the anneal.
    pressure_gpa
        Anneal pressure (GPa).
    thermostat
        Ensemble of the melt, and of the quench with ``quench_ensemble: nvt`` (``nvt-bussi``, ``nvt-langevin``
        or ``nvt-nhc``).
    barostat
        Ensemble of the anneal, and of the quench with ``quench_ensemble: npt``: ``npt-berendsen`` (fast
        density relaxation; default) or ``npt-mtk``.
    quench_ensemble
        ``nvt`` (the quench keeps the melt's volume; only H(T) for Tg) or ``npt`` (the volume follows the
        potential's equation of state at ``pressure_gpa`` while cooling: V(T) and H(T) for Tg, and the glass
        comes out at its own density).
    glass_transition
        Estimate Tg from the quench's cooling curve (volume and enthalpy per atom vs the target temperature,
        two-line fit of :mod:`tfbsim.analysis.glass_transition`); recorded in ``summary.json`` and the glass's
        ``info["melt_quench"]``.
    tg_bin_k
        Temperature bins (K) of the cooling curve.
    network_check
        Measure (and with ``max_melt_ps`` extend) the melt until its P–O/P–N network is equilibrated
        (:class:`~tfbsim.workflows.protocols.glass_checks.NetworkCheckConfig`): bond-exchange events per P and
        per ps and the speciation's time series; ``None``: not measured. Needs ``traj_every`` small enough
        for ≥ 20 frames in the melt.
    cell_axes
        Cell degrees of freedom of anneal and final relax: ``auto`` (``z`` when the structure's
        ``info["lateral_fixed"]`` is set, else ``isotropic``), ``isotropic``, ``anisotropic`` or ``z`` (in-plane
        cell fixed: films on a substrate).
    tdamp_fs, pdamp_fs
        Thermostat and barostat time constants (fs); ``None``: the MD defaults (100 and 1000 time steps).
    prerelax_fmax_ev_ang, prerelax_steps
        Pre-relaxation (fixed cell) force threshold (eV/Å) and step limit.
    final_relax_fmax_ev_ang, final_relax_steps, final_relax_cell
        Final relaxation threshold (eV/Å), step limit and whether the cell relaxes too.
    traj_every, log_every, checkpoint_every
        Intervals (MD steps) of trajectory frames, log rows and checkpoints in every MD stage.
    seed
        Seed of the melt; the quench and anneal use ``seed + 1`` and ``seed + 2``.
    md_options
        Further :class:`~tfbsim.workflows.md.config.MDConfig` settings for every MD stage (guards,
        ``friction_ps_inv``, ``store_velocities`` ...); keys the protocol sets itself are refused.
    potential
        The potential (used by the CLI and :func:`restart_melt_quench`; :func:`melt_quench` receives a
        calculator).
    """

    preset: Literal["quick", "production", "glass"] = "production"
    timestep_fs: float = Field(1.0, gt=0, le=5)
    melt_k: float = Field(2000.0, gt=0)
    melt_ps: float = Field(10.0, ge=0)
    quench_rate_k_ps: float = Field(100.0, gt=0)
    final_k: float = Field(300.0, gt=0)
    anneal_ps: float = Field(20.0, ge=0)
    pressure_gpa: float = 0.0
    thermostat: Literal["nvt-bussi", "nvt-langevin", "nvt-nhc"] = "nvt-bussi"
    barostat: Literal["npt-berendsen", "npt-mtk"] = "npt-berendsen"
    quench_ensemble: Literal["nvt", "npt"] = "nvt"
    glass_transition: bool = True
    tg_bin_k: float = Field(25.0, gt=0)
    network_check: NetworkCheckConfig | None = None
    cell_axes: Literal["auto", "isotropic", "anisotropic", "z"] = "auto"
    tdamp_fs: float | None = Field(None, gt=0)
    pdamp_fs: float | None = Field(1000.0, gt=0)
    prerelax_fmax_ev_ang: float = Field(0.2, gt=0)
    prerelax_steps: int = Field(500, ge=0)
    final_relax_fmax_ev_ang: float = Field(0.05, gt=0)
    final_relax_steps: int = Field(1000, ge=0)
    final_relax_cell: bool = True
    traj_every: int = Field(100, ge=1)
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    seed: int = Field(0, ge=0)
    md_options: dict[str, Any] = Field(default_factory=dict)
    potential: PotentialConfig = Field(default_factory=PotentialConfig)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", "production")
        if preset not in MELT_QUENCH_PRESETS:
            return data  # the Literal check reports it
        return {**MELT_QUENCH_PRESETS[preset], **data}

    @field_validator("md_options")
    @classmethod
    def _check_md_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(set(value) & _PROTOCOL_MD_KEYS)
        if taken:
            raise ValueError(f"md_options may not set {', '.join(taken)}: the protocol sets them (use its own keys)")
        from pydantic import ValidationError

        try:
            MDConfig(**value)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"md_options are not valid MDConfig settings ({problems})") from None
        return value

    @model_validator(mode="after")
    def _check_temperatures(self) -> MeltQuenchConfig:
        if self.melt_ps > 0 and self.melt_k <= self.final_k:
            raise ValueError(f"melt_k ({self.melt_k} K) must exceed final_k ({self.final_k} K)")
        check = self.network_check
        if check is not None and check.max_melt_ps is not None and check.max_melt_ps < self.melt_ps:
            raise ValueError(f"network_check.max_melt_ps ({check.max_melt_ps} ps) is below melt_ps ({self.melt_ps} ps)")
        return self

    # ------------------------------------------------------------------------------------------ derived
    def steps(self, duration_ps: float) -> int:
        """MD steps covering ``duration_ps`` (ps)."""
        return int(round(duration_ps * 1000.0 / self.timestep_fs))

    @property
    def quench_ps(self) -> float:
        """Duration of the linear quench (ps)."""
        return max(self.melt_k - self.final_k, 0.0) / self.quench_rate_k_ps

    @property
    def total_md_ps(self) -> float:
        """Simulated time of melt, quench and anneal (ps)."""
        return self.melt_ps + self.quench_ps + self.anneal_ps

    def stage_md_config(self, stage: str, axes: str) -> MDConfig:
        """The :class:`MDConfig` of one MD stage (``melt``, ``quench`` or ``anneal``)."""
        common = {
            "timestep_fs": self.timestep_fs,
            "tdamp_fs": self.tdamp_fs,
            "traj_every": self.traj_every,
            "log_every": self.log_every,
            "checkpoint_every": self.checkpoint_every,
            **self.md_options,
        }
        if stage == "melt":
            return MDConfig(ensemble=self.thermostat, steps=self.steps(self.melt_ps), temperature_k=self.melt_k,
                            initial_temperature_k=self.melt_k, seed=self.seed, **common)
        if stage == "quench":
            start_k = self.melt_k if self.melt_ps > 0 else self.final_k
            schedule = [(0.0, start_k), (self.quench_ps, self.final_k)]
            ensemble = {} if self.quench_ensemble == "nvt" else {
                "ensemble": self.barostat, "pressure_gpa": self.pressure_gpa, "barostat_axes": axes,
                "pdamp_fs": self.pdamp_fs}
            return MDConfig(**{"ensemble": self.thermostat, **ensemble}, steps=self.steps(self.quench_ps),
                            temperature_k=self.final_k, temperature_schedule=schedule, seed=self.seed + 1,
                            initial_temperature_k=None if self.melt_ps > 0 else start_k, **common)
        if stage == "anneal":
            return MDConfig(ensemble=self.barostat, steps=self.steps(self.anneal_ps), temperature_k=self.final_k,
                            pressure_gpa=self.pressure_gpa, barostat_axes=axes, pdamp_fs=self.pdamp_fs,
                            seed=self.seed + 2, **common)
        raise ConfigError(f"{stage!r} is not an MD stage (melt, quench, anneal)")


def resolve_melt_quench_config(
    config: MeltQuenchConfig | str | dict | None = None,
    *,
    yaml_path: str | Path | None = None,
    overrides: dict | None = None,
) -> MeltQuenchConfig:
    """A :class:`MeltQuenchConfig` from a preset name, a dict or config object, a YAML file and overrides.

    Precedence: ``overrides`` (entries that are not ``None``) > YAML file > ``config``. A preset name means
    ``{"preset": name}``; the ``preset`` of the highest-precedence source that names one supplies the
    defaults of the keys that no source sets (a :class:`MeltQuenchConfig` object counts as setting all).
    """
    if isinstance(config, MeltQuenchConfig):
        if yaml_path is None and not overrides:
            return config
        data: dict = config.model_dump(mode="json")
    elif isinstance(config, str):
        if config not in MELT_QUENCH_PRESETS:
            raise ConfigError(f"unknown melt-quench preset {config!r}; use {', '.join(MELT_QUENCH_PRESETS)}")
        data = {"preset": config}
    elif isinstance(config, dict):
        data = dict(config)
    elif config is None:
        data = {}
    else:
        raise ConfigError(f"config must be a preset name, dict or MeltQuenchConfig, not {type(config).__name__}")
    source = "melt-quench configuration"
    if yaml_path is not None:
        import yaml

        load_config(yaml_path, MeltQuenchConfig)  # the file alone must be valid (errors name file and line)
        data.update(yaml.safe_load(Path(yaml_path).read_text()) or {})
        source = str(yaml_path)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate_config(MeltQuenchConfig, data, source=source)
