"""Settings of ``tfbsim demo``: :class:`DemoConfig`, its presets, and the stage settings derived from it.

Everything here is checked before the demo runs or writes anything (:func:`validate_demo`); the stages
(:mod:`~tfbsim.workflows.demo.run`, :mod:`~tfbsim.workflows.demo.interface`, :mod:`~tfbsim.workflows.demo.stages`)
read their settings from these functions.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ...errors import ConfigError
from ..config import StrictModel, validate_config
from ..potentials.config import PotentialConfig

__all__ = ["DemoConfig", "DEMO_PRESETS", "DEMO_DEPOSIT", "GLASS_DIR", "demo_config", "anneal_config",
           "deposit_config", "serial_threads", "validate_demo", "campaign_dict", "quench_settings", "steps_of"]


#: Deposition settings of the quick demo (any :class:`~tfbsim.workflows.protocols.deposition_config.DepositionConfig`
#: key can be overridden under ``deposit:``). 24 Li on the ~200-atom glass is ~0.9 Li per P in ~1 ps of MD.
DEMO_DEPOSIT: dict[str, Any] = {
    "species": "Li", "count": 24, "group_size": 4, "flux_per_ps": 20.0, "energy_ev": 0.2,
    "energy_distribution": "fixed", "temperature_k": 300.0, "timestep_fs": 2.0, "clearance_ang": 3.0,
    "final_ps": 0.4, "snapshot_every": 1, "checkpoint_every": 2,
}

#: Top-level keys of a demo file that stand for ``potential.<key>`` (the demo's file keys before ``potential:``).
_POTENTIAL_SHORTHANDS = ("model", "device", "dtype")


class DemoConfig(StrictModel):
    """Settings of :func:`run_demo` (from a preset; any field can be overridden).

    The potential is a :class:`~tfbsim.workflows.potentials.config.PotentialConfig` under ``potential:``, carried
    unchanged into the bulk campaign's YAML and into the factory. ``serial_threads`` are the torch threads of
    the serial stages (melt–quench, analyses, deposition; default: every core this process may use);
    ``interface_mode`` picks the interface stage (``deposit`` or ``pressed``); ``deposit`` holds
    :class:`~tfbsim.workflows.protocols.deposition_config.DepositionConfig` keys over :data:`DEMO_DEPOSIT`
    (``seed`` and ``potential`` come from the demo), ``deposit_vacuum_ang`` the vacuum above the glass slab and
    ``deposit_layer_ang`` the layer thickness of the products table. ``model``, ``device`` and ``dtype`` at the top
    level of a demo file (or as :func:`demo_config` keywords, as the ``tfbsim demo --model/--device`` flags pass
    them) remain accepted as shorthands for ``potential.model`` etc.; the resolved configuration holds only
    ``potential``. Giving the same setting both ways in one file is a :class:`~tfbsim.errors.ConfigError`.
    """

    preset: Literal["quick", "full", "custom"] = "quick"
    potential: PotentialConfig = Field(default_factory=PotentialConfig)
    seed: int = Field(0, ge=0)
    composition: str = "Li2.94PO3.50N0.31"
    n_atoms: int = Field(200, ge=1)
    quench: str | dict[str, Any] = Field(default_factory=lambda: {"preset": "quick", "anneal_ps": 0.5})
    temperatures_k: list[float] = Field([900.0, 1100.0, 1300.0, 1500.0], min_length=1)
    timestep_fs: float = Field(2.0, gt=0)
    equilibrate_ps: float = Field(0.2, ge=0)
    production_ps: float = Field(1.6, gt=0)
    traj_every: int = Field(10, ge=1)
    workers: int = Field(2, ge=1)
    threads_per_task: int = Field(1, ge=1)
    serial_threads: int | None = Field(None, ge=1)
    interface_mode: Literal["deposit", "pressed"] = "deposit"
    deposit: dict[str, Any] = Field(default_factory=dict)
    deposit_vacuum_ang: float = Field(30.0, gt=0)
    deposit_layer_ang: float = Field(2.0, gt=0)
    interface_lateral_min_ang: float = Field(10.0, gt=0)
    interface_thickness_ang: tuple[float, float] = (9.0, 12.0)
    interface_anneal_k: float = Field(400.0, gt=0)
    interface_anneal_ps: float = Field(3.0, gt=0)
    interface_timestep_fs: float = Field(2.0, gt=0)
    interface_bin_ang: float = Field(1.0, gt=0)

    @field_validator("temperatures_k")
    @classmethod
    def _positive_temperatures(cls, value: list[float]) -> list[float]:
        bad = [t for t in value if not t > 0]
        if bad:
            raise ValueError(f"temperatures must be positive kelvin, got {bad}")
        return value

    @field_validator("interface_thickness_ang")
    @classmethod
    def _positive_thickness(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(v > 0 for v in value):
            raise ValueError(f"thicknesses (Li, LiPON) must be positive Å, got {list(value)}")
        return value

    @field_validator("composition")
    @classmethod
    def _charge_balanced(cls, value: str) -> str:
        from ...structures.composition import check_charge

        try:
            check_charge(value)
        except Exception as exc:  # StructureError: say it in this key's terms
            raise ValueError(str(exc).replace(" or pass allow_charged=True / --allow-charged to build it anyway",
                                              "")) from None
        return value

    @field_validator("quench")
    @classmethod
    def _valid_quench(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        """A preset name or melt-quench settings; checked here so that errors name the demo's file."""
        from ..protocols.melt_quench import MeltQuenchConfig

        settings = {"preset": value} if isinstance(value, str) else dict(value)
        try:
            MeltQuenchConfig.model_validate(settings)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "preset"
                if err["type"] == "extra_forbidden":
                    allowed = ", ".join(sorted(MeltQuenchConfig.model_fields))
                    problems.append(f"unknown key {where!r} (allowed: {allowed})")
                else:
                    problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
            raise ValueError("; ".join(problems)) from None
        return value

    @field_validator("deposit")
    @classmethod
    def _valid_deposit(cls, value: dict[str, Any]) -> dict[str, Any]:
        """DepositionConfig keys over the demo's defaults; checked here so that errors name the demo's file."""
        from ..protocols.deposition_config import DepositionConfig

        bad = sorted(set(value) & {"seed", "potential"})
        if bad:
            raise ValueError(f"{', '.join(bad)} come(s) from the demo's own 'seed'/'potential'; remove them here")
        try:
            DepositionConfig.model_validate({**DEMO_DEPOSIT, **value})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                if err["type"] == "extra_forbidden":
                    allowed = ", ".join(sorted(set(DepositionConfig.model_fields) - {"seed", "potential"}))
                    problems.append(f"unknown key {where!r} (allowed: {allowed})")
                else:
                    problems.append(f"{where or 'deposit'}: {err['msg']} (got {err.get('input')!r})")
            raise ValueError("; ".join(problems)) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _fold_potential_shorthands(cls, data: Any) -> Any:
        """Move top-level ``model``/``device``/``dtype`` into ``potential`` (refusing one setting given twice)."""
        if not isinstance(data, dict) or not any(k in data for k in _POTENTIAL_SHORTHANDS):
            return data
        data = dict(data)
        section = data.get("potential", {})
        if isinstance(section, PotentialConfig):
            section = section.model_dump(exclude_unset=True)
        if not isinstance(section, dict):
            return data  # pydantic reports the bad 'potential' value
        section = dict(section)
        for key in _POTENTIAL_SHORTHANDS:
            if key not in data:
                continue
            value = data.pop(key)
            if key in section and section[key] != value:
                raise ValueError(
                    f"'{key}' is given at the top level ({value!r}) and as potential.{key} ({section[key]!r}); "
                    f"keep one (the top-level '{key}' is a shorthand for potential.{key})"
                )
            section[key] = value
        data["potential"] = section
        return data


DEMO_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    "full": {
        "n_atoms": 600, "quench": "production", "temperatures_k": [700.0, 800.0, 900.0, 1000.0, 1100.0, 1200.0],
        "timestep_fs": 1.0, "equilibrate_ps": 20.0, "production_ps": 200.0, "traj_every": 100,
        "workers": 6, "threads_per_task": 8, "interface_lateral_min_ang": 20.0,
        "interface_thickness_ang": (20.0, 30.0), "interface_anneal_ps": 100.0, "interface_timestep_fs": 1.0,
        "deposit": {"count": 200, "flux_per_ps": 5.0, "timestep_fs": 1.0, "final_ps": 5.0, "checkpoint_every": 5},
    },
}


def demo_config(preset: str = "quick", *, file: str | os.PathLike | None = None, **overrides: Any) -> DemoConfig:
    """A :class:`DemoConfig`: the preset's values, then those of a YAML ``file``, then ``overrides`` (not None).

    ``model``, ``device`` and ``dtype`` overrides (the CLI flags) replace those entries of the potential only.
    """
    from ..config import load_config

    if preset not in DEMO_PRESETS:
        raise ConfigError(f"unknown demo preset {preset!r}; choose one of {', '.join(DEMO_PRESETS)}")
    data: dict[str, Any] = {"preset": preset, **DEMO_PRESETS[preset]}
    if file is not None:
        from_file = load_config(file, DemoConfig).model_dump(exclude_unset=True)
        if "deposit" in from_file:  # deposition keys add to the preset's instead of replacing them all
            from_file["deposit"] = {**data.get("deposit", {}), **from_file["deposit"]}
        data.update(from_file)
    given = {k: v for k, v in overrides.items() if v is not None}
    potential = {k: given.pop(k) for k in _POTENTIAL_SHORTHANDS if k in given}
    if potential:
        section = given.pop("potential", None) or data.get("potential") or {}
        if isinstance(section, PotentialConfig):
            section = section.model_dump(exclude_unset=True)
        data["potential"] = {**section, **potential}
    data.update(given)
    return validate_config(DemoConfig, data, source=str(file) if file else "demo settings")


#: The melt–quench's folder in the demo's output (its ``final.extxyz`` is the campaign's structure).
GLASS_DIR = "glass"


def steps_of(ps: float, timestep_fs: float) -> int:
    return max(1, int(round(ps * 1000.0 / timestep_fs)))


def quench_settings(cfg: DemoConfig) -> dict[str, Any]:
    settings = {"preset": cfg.quench} if isinstance(cfg.quench, str) else dict(cfg.quench)
    return {"seed": cfg.seed, **settings}


def campaign_dict(cfg: DemoConfig) -> dict[str, Any]:
    """The bulk campaign (transport on the demo's glass) of ``cfg`` as the mapping ``bulk_campaign.yaml`` holds.

    The glass is the demo's melt–quench (``glass/final.extxyz``, made before the campaign on every free core);
    ``bulk_campaign.yaml``'s comment gives the ``prepare`` stanza that makes the campaign build it itself.
    """
    equil = steps_of(cfg.equilibrate_ps, cfg.timestep_fs)
    prod = steps_of(cfg.production_ps, cfg.timestep_fs)
    campaign = {
        "name": "demo-lipon",
        "description": f"tfbsim demo ({cfg.preset}): amorphous {cfg.composition}, Li tracer diffusion vs T.",
        "directory": "bulk",
        "potential": cfg.potential.model_dump(mode="json"),
        "structures": [{"name": "lipon", "file": f"{GLASS_DIR}/final.extxyz"}],
        "temperatures_k": list(cfg.temperatures_k),
        "replicas": 1,
        "seed": cfg.seed,
        "protocol": [
            {"name": "equilibrate", "md": {"ensemble": "nvt-bussi", "steps": equil, "timestep_fs": cfg.timestep_fs,
                                           "tdamp_fs": 50.0, "traj_every": max(equil, 1), "checkpoint_every": 500}},
            {"name": "production", "md": {"ensemble": "nvt-bussi", "steps": prod, "timestep_fs": cfg.timestep_fs,
                                          "tdamp_fs": 100.0, "traj_every": cfg.traj_every,
                                          "checkpoint_every": 500}},
        ],
        "analyses": {"diffusion": {"species": "Li", "stage": "production"},
                     "arrhenius": {"target_temperature_k": 300.0}},
        "local": {"workers": cfg.workers, "threads_per_task": cfg.threads_per_task},
    }
    return campaign


def anneal_config(cfg: DemoConfig) -> Any:
    """The interface anneal's :class:`~tfbsim.workflows.md.config.MDConfig` (ConfigError when invalid)."""
    from ..md.config import MDConfig

    steps = steps_of(cfg.interface_anneal_ps, cfg.interface_timestep_fs)
    settings = {"ensemble": "nvt-bussi", "steps": steps, "timestep_fs": cfg.interface_timestep_fs,
                "temperature_k": cfg.interface_anneal_k, "tdamp_fs": 100.0,
                "initial_temperature_k": cfg.interface_anneal_k, "traj_every": max(steps // 60, 1),
                "checkpoint_every": 500, "seed": cfg.seed}
    return validate_config(MDConfig, settings, source="the demo's interface anneal (interface_* settings)")


def deposit_config(cfg: DemoConfig) -> Any:
    """The deposition's :class:`~tfbsim.workflows.protocols.deposition_config.DepositionConfig` (ConfigError)."""
    from ..protocols.deposition_config import DepositionConfig

    settings = {**DEMO_DEPOSIT, **cfg.deposit, "seed": cfg.seed}
    return validate_config(DepositionConfig, settings, source="the demo's deposition (deposit: settings)")


def serial_threads(cfg: DemoConfig) -> int:
    """Torch threads of the serial stages: ``cfg.serial_threads`` or every core this process may run on."""
    if cfg.serial_threads:
        return int(cfg.serial_threads)
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def validate_demo(cfg: DemoConfig) -> None:
    """Check every stage's settings before anything runs or is written.

    The bulk campaign is validated as :func:`~tfbsim.workflows.campaigns.config.load_campaign` would validate
    ``bulk_campaign.yaml``, the pressed interface's anneal as its :class:`~tfbsim.workflows.md.config.MDConfig`,
    the deposition as its :class:`~tfbsim.workflows.protocols.deposition_config.DepositionConfig` (both, whatever
    ``interface_mode`` is, so that switching mode later cannot fail), and the glass's composition and size by the
    builder's own rules (integer, charge-balanced counts).

    Raises
    ------
    ConfigError
        Naming the demo setting at fault.
    StructureError
        The composition cannot be built with ``n_atoms`` atoms.
    """
    from ...structures.composition import integer_counts
    from ..campaigns.config import CampaignConfig

    campaign = campaign_dict(cfg)
    campaign["structures"] = [{"name": "lipon", "build": {"kind": "lipon", "composition": cfg.composition,
                                                          "n_atoms": cfg.n_atoms, "seed": cfg.seed}}]  # no file yet
    validate_config(CampaignConfig, campaign, source="the demo's bulk campaign (from its settings)")
    anneal_config(cfg)
    deposit_config(cfg)
    integer_counts(cfg.composition, cfg.n_atoms)
