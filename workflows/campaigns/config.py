"""The campaign file: structures × temperatures × replicas, a protocol, a potential and the analyses.

Every key is checked (:class:`~tfbsim.workflows.config.StrictModel`): an unknown or misspelt key fails with
the file, the line and the keys allowed there. Paths are relative to the campaign file.

Example ``campaign.yaml``::

    name: lipon-arrhenius              # identifies the campaign (and its directory)
    directory: runs/lipon-arrhenius    # default: <folder of this file>/<name>
    potential: {model: models/lipon.model, dtype: float32}
    structures:
      - name: glass
        build: {kind: lipon, composition: Li2.94PO3.50N0.31, n_atoms: 300, seed: 1}
      - name: li3po4
        file: structures/li3po4_relaxed.extxyz
    temperatures_k: [700, 800, 900, 1000]
    replicas: 2
    prepare:                           # once per structure (shared by all temperatures)
      - melt_quench: {preset: production}
    protocol:                          # per task; MD stages run at the task's temperature
      - name: equilibrate
        md: {ensemble: nvt-bussi, steps: 20000, timestep_fs: 1.0}
      - name: production
        md: {ensemble: nvt-nhc, steps: 200000, traj_every: 100}
    analyses:
      diffusion: {species: Li}         # per task, on the last MD stage (or `stage: NAME`)
      arrhenius: {target_temperature_k: 300}
      coordination: {frames: "::10"}   # per task (off unless given)
      interphase: {axis: z}            # per task, for interfaces (off unless given)
    local: {workers: 4, threads_per_task: 2}

Stages
------
Each entry of ``prepare`` and ``protocol`` has an optional ``name`` and exactly one of

``relax``        :func:`tfbsim.workflows.md.relax.relax` settings (``fmax_ev_ang``, ``max_steps``, ``cell``, ...).
``md``           :class:`~tfbsim.workflows.md.config.MDConfig` settings. In ``protocol`` the temperature is the
                 task's (``temperature_k``/``temperature_schedule`` may not be given) and the first MD stage
                 draws velocities at it unless ``initial_temperature_k`` is set; in ``prepare`` MD stages need
                 their own ``temperature_k``. The seed of MD stage ``k`` of replica ``r`` is
                 ``seed + md.seed + 1000 r + k`` (replicas differ in their velocities and noise).
``melt_quench``  :class:`~tfbsim.workflows.protocols.melt_quench.MeltQuenchConfig` settings (``preset`` plus any key);
                 ``prepare`` only.
``deposit``      :class:`~tfbsim.workflows.protocols.deposition_config.DepositionConfig` settings (vapour deposition
                 onto the slab; the structure leaves with more atoms). In ``protocol`` the substrate is held at
                 the task's temperature unless ``temperature_k`` is given; in ``prepare`` it must be given.
``anneal``       :class:`~tfbsim.workflows.protocols.reactive_anneal.ReactiveAnnealConfig` settings (``segments``
                 ``[[ps, K], ...]`` plus any key).

Seeds of ``deposit``/``anneal`` stages follow the MD rule. Both stages resume and refuse changed settings like
their protocols, and record in the task's ``summary.json`` their files (``deposition.json``/``anneal.json``) and
the interphase profile's result (classes by layer, ``<stage>/profile.json``)::

      - name: deposit
        deposit: {species: Li, count: 40, energy_ev: 0.2, flux_per_ps: 5, group_size: 4}
      - name: anneal
        anneal: {segments: [[10, 400], [10, 600]]}

An ``md`` stage of ``protocol`` may also carry ``until_diffusive`` (:class:`UntilDiffusiveSpec`): the stage
then extends itself (doubling its steps, resumably, up to ``max_production_ps``) until the species' MSD is
diffusive; every chunk and the verdict go to the task's ``summary.json`` (``extension``) and the stage's
``extension.json``::

      - name: production
        md: {ensemble: nvt-nhc, steps: 50000, traj_every: 100}
        until_diffusive: {max_production_ps: 1000, min_msd_ang2: 30, min_loglog_slope: 0.9}

``tg_check`` compares the task temperatures with the glass transition of the prepared glass (the melt–quench's
cooling-curve Tg, or a given ``tg_k``): temperatures at or above ``Tg − margin_k`` are flagged in the task's
summary (``tg_check``) and logged with a proposed window below Tg.

The potential is given once, at the top; stages may not set their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ...errors import ConfigError
from ..config import StrictModel, load_config
from ..potentials.config import PotentialConfig
from .executors import LocalExecutorConfig
from .stages import STAGE_KINDS, RelaxStage, StageSpec, UntilDiffusiveSpec
from .stages import check_name as _check_name
from .stages import check_prepare as _check_prepare
from .stages import check_stages as _check_stages

__all__ = [
    "CampaignConfig",
    "StructureSpec",
    "CrystalRecipe",
    "LiponRecipe",
    "StageSpec",
    "STAGE_KINDS",
    "RelaxStage",
    "AnalysesConfig",
    "AnalysisSpec",
    "ANALYSIS_SPECS",
    "task_analysis_specs",
    "DiffusionSpec",
    "CoordinationSpec",
    "InterphaseSpec",
    "PER_TASK_ANALYSES",
    "ArrheniusSpec",
    "UntilDiffusiveSpec",
    "TgCheckSpec",
    "load_campaign",
]

#: Analyses that run in each task (on one MD stage's trajectory).
PER_TASK_ANALYSES: tuple[str, ...] = ("diffusion", "coordination", "interphase")
_NAMED_MODELS = ("bundled", "emt", "lj", "chgnet")


# ------------------------------------------------------------------------------------------ structures
class CrystalRecipe(StrictModel):
    """A literature crystal (:func:`tfbsim.structures.crystals.build_crystal`)."""

    kind: Literal["crystal"]
    phase: str
    supercell: tuple[int, int, int] = (1, 1, 1)
    li_fraction: float | None = None
    ordering: Literal["ordered", "random"] = "ordered"
    seed: int = Field(0, ge=0)


class LiponRecipe(StrictModel):
    """An amorphous LixPOyNz box (:func:`tfbsim.structures.amorphous.build_lipon`)."""

    kind: Literal["lipon"]
    composition: str
    n_atoms: int = Field(ge=2)
    density_g_cm3: float = Field(2.4, gt=0)
    mode: Literal["motif", "random"] = "motif"
    nd_fraction: float | None = None
    allow_nt: bool = False
    nt_fraction: float | None = None
    lateral_ang: tuple[float, float] | None = None
    seed: int = Field(0, ge=0)


Recipe = Annotated[CrystalRecipe | LiponRecipe, Field(discriminator="kind")]


class TgCheckSpec(StrictModel):
    """The task temperatures against the glass transition (``tg_check``; see the module docstring).

    Attributes
    ----------
    margin_k
        Temperatures at or above ``Tg − margin_k`` are flagged (K).
    tg_k
        A known Tg (K); default: the prepared glass's cooling-curve Tg (``info["melt_quench"]``).
    """

    margin_k: float = Field(100.0, ge=0)
    tg_k: float | None = Field(None, gt=0)


class StructureSpec(StrictModel):
    """One system of the campaign: a structure ``file`` or a builder recipe ``build`` (exactly one).

    ``prepare`` (optional) replaces the campaign's ``prepare`` stages for this structure (``[]``: none), e.g.
    a melt–quench for a glass but only a relaxation for a crystal.
    """

    name: str
    file: Path | None = None
    build: Recipe | None = None
    prepare: list[StageSpec] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "structure name")

    @model_validator(mode="after")
    def _one_source(self) -> StructureSpec:
        if (self.file is None) == (self.build is None):
            raise ValueError(f"structure {self.name!r}: give exactly one of 'file' or 'build'")
        if self.prepare is not None:
            _check_prepare(self.prepare)
        return self


# -------------------------------------------------------------------------------------------- analyses
class AnalysisSpec(StrictModel):
    """Settings shared by the per-task analysis specs; :meth:`build` makes the analysis of a trajectory.

    The same specs serve the campaign (``analyses:`` of the campaign file, shipped to the workers as
    ``model_dump(mode="json")`` and re-validated there with :func:`task_analysis_specs`) and ``tfbsim analyze``
    (built from its flags), so both share validation and defaults.
    """

    stage: str | None = None
    frames: str | None = None
    dt_fs: float | None = Field(None, gt=0)

    @field_validator("frames")
    @classmethod
    def _frames(cls, value: str | None) -> str | None:
        if value is not None:
            from ...analysis.trajectory import parse_frames

            try:
                parse_frames(value)
            except ValueError as exc:  # TrajectoryError: a bad START:STOP:STEP
                raise ValueError(str(exc)) from None
        return value

    def build(self, trajectory: Any) -> Any:
        """The analysis of ``trajectory`` (path, Atoms, frames, Universe or Trajectory) with these settings."""
        raise NotImplementedError


class DiffusionSpec(AnalysisSpec):
    """Tracer diffusion per task (:class:`tfbsim.analysis.diffusion.DiffusionAnalysis`)."""

    species: str = "Li"
    axis: str = "xyz"
    fit_start_ps: float | None = Field(None, ge=0)
    fit_end_ps: float | None = Field(None, gt=0)
    haven_ratio: float = Field(1.0, gt=0)
    region: str | None = None
    z_window_ang: tuple[float, float] | None = None
    temperature_k: float | None = Field(None, gt=0)
    volume_ang3: float | None = Field(None, gt=0)
    remove_drift: bool = True

    def build(self, trajectory: Any) -> Any:
        """A :class:`~tfbsim.analysis.diffusion.DiffusionAnalysis` of ``trajectory``."""
        from ...analysis.diffusion import DiffusionAnalysis

        return DiffusionAnalysis(
            trajectory, species=self.species, axis=self.axis, region=self.region, z_window_ang=self.z_window_ang,
            frames=self.frames, dt_fs=self.dt_fs, temperature_k=self.temperature_k, fit_start_ps=self.fit_start_ps,
            fit_end_ps=self.fit_end_ps, haven_ratio=self.haven_ratio, volume_ang3=self.volume_ang3,
            remove_drift=self.remove_drift,
        )


class CoordinationSpec(AnalysisSpec):
    """Coordination/speciation per task (:class:`tfbsim.analysis.coordination.Coordination`).

    ``cutoffs``: ``default``, ``rdf`` (every pair from its g(r)) or per pair Å or ``rdf`` (``{P-N: 2.1}``).
    """

    cutoffs: dict[str, float | Literal["rdf"]] | Literal["default", "rdf"] | None = None
    region: str | None = None
    z_window_ang: tuple[float, float] | None = None
    pbc: bool | None = None
    rdf_pairs: list[str] | None = None
    rdf_r_max_ang: float = Field(5.0, gt=0)
    rdf_bin_width_ang: float = Field(0.02, gt=0)

    def build(self, trajectory: Any) -> Any:
        """A :class:`~tfbsim.analysis.coordination.Coordination` of ``trajectory``."""
        from ...analysis.coordination import Coordination

        return Coordination(
            trajectory, cutoffs=self.cutoffs, region=self.region, z_window_ang=self.z_window_ang,
            frames=self.frames, dt_fs=self.dt_fs, pbc=self.pbc, rdf_pairs=self.rdf_pairs,
            rdf_r_max_ang=self.rdf_r_max_ang, rdf_bin_width_ang=self.rdf_bin_width_ang,
        )


class InterphaseSpec(AnalysisSpec):
    """Interphase composition and growth per task (:class:`tfbsim.analysis.interphase.Interphase`)."""

    axis: Literal["x", "y", "z"] = "z"
    bin_ang: float = Field(1.0, gt=0)
    threshold: float = Field(0.5, gt=0, le=1)
    product_classes: list[str] | None = None
    cutoffs: dict[str, float] | None = None
    max_gap_ang: float = Field(3.0, ge=0)

    def build(self, trajectory: Any) -> Any:
        """An :class:`~tfbsim.analysis.interphase.Interphase` of ``trajectory``."""
        from ...analysis.interphase import Interphase

        return Interphase(
            trajectory, axis=self.axis, bin_ang=self.bin_ang, frames=self.frames, dt_fs=self.dt_fs,
            cutoffs=self.cutoffs, product_classes=self.product_classes, threshold=self.threshold,
            max_gap_ang=self.max_gap_ang,
        )


#: Spec model of each per-task analysis.
ANALYSIS_SPECS: dict[str, type[AnalysisSpec]] = {
    "diffusion": DiffusionSpec, "coordination": CoordinationSpec, "interphase": InterphaseSpec,
}


def task_analysis_specs(data: dict[str, Any]) -> dict[str, AnalysisSpec]:
    """Re-validate a task's ``analyses`` (``{name: spec.model_dump(mode="json")}``) into the typed specs.

    Raises
    ------
    ConfigError
        An unknown analysis name or invalid settings.
    """
    from ..config import validate_config

    unknown = sorted(set(data) - set(ANALYSIS_SPECS))
    if unknown:
        raise ConfigError(f"unknown per-task analyses {', '.join(unknown)}; known: {', '.join(ANALYSIS_SPECS)}")
    return {key: validate_config(ANALYSIS_SPECS[key], value, source=f"analyses.{key}")
            for key, value in data.items()}


class ArrheniusSpec(StrictModel):
    """Arrhenius fit of D(T) per system (:func:`tfbsim.analysis.transport.arrhenius_from_results`)."""

    target_temperature_k: float = Field(300.0, gt=0)


class AnalysesConfig(StrictModel):
    """Analyses: ``diffusion`` and ``arrhenius`` by default, ``coordination`` and ``interphase`` when given
    (``{}`` for the defaults); ``null`` disables."""

    diffusion: DiffusionSpec | None = Field(default_factory=DiffusionSpec)
    arrhenius: ArrheniusSpec | None = Field(default_factory=ArrheniusSpec)
    coordination: CoordinationSpec | None = None
    interphase: InterphaseSpec | None = None

    @model_validator(mode="after")
    def _arrhenius_needs_diffusion(self) -> AnalysesConfig:
        if self.arrhenius is not None and self.diffusion is None:
            raise ValueError("the arrhenius analysis needs the diffusion analysis (set arrhenius: null or add diffusion)")
        return self


# -------------------------------------------------------------------------------------------- campaign
class CampaignConfig(StrictModel):
    """A campaign (see the module docstring for the file format).

    Attributes
    ----------
    name
        Identifies the campaign; a directory created by a campaign of another name is refused.
    description
        Free text, copied into the summary.
    directory
        Campaign directory (relative to the campaign file); default ``<its folder>/<name>``.
    database
        ASE database: a file path (SQLite, relative to the campaign file) or URL
        (``postgresql://user:pw@host/db``); default ``<directory>/results.db``.
    potential
        The one potential of every stage (model spec, device, dtype).
    structures
        The systems (distinct names).
    temperatures_k
        Temperatures of the protocol's MD stages (K), one task each.
    replicas
        Independent repetitions per structure and temperature (different seeds).
    seed
        Base seed (see the stage rules in the module docstring).
    prepare
        Stages run once per structure before the tasks (or once per replica with ``prepare_per_replica``);
        a structure's own ``prepare`` replaces them.
    prepare_per_replica
        Prepare every replica separately (independent glasses: builder and melt–quench seeds + replica).
    protocol
        Stages of every task; at least one ``md`` stage.
    analyses
        Per-task and per-system analyses.
    tg_check
        Task temperatures against the glass transition (:class:`TgCheckSpec`).
    local
        Settings of ``--executor local``.
    """

    name: str
    description: str = ""
    directory: Path | None = None
    database: str | None = None
    potential: PotentialConfig = Field(default_factory=PotentialConfig)
    structures: list[StructureSpec] = Field(min_length=1)
    temperatures_k: list[float] = Field(min_length=1)
    replicas: int = Field(1, ge=1, le=1000)
    seed: int = Field(0, ge=0)
    prepare: list[StageSpec] = Field(default_factory=list)
    prepare_per_replica: bool = False
    protocol: list[StageSpec] = Field(min_length=1)
    analyses: AnalysesConfig = Field(default_factory=AnalysesConfig)
    tg_check: TgCheckSpec = Field(default_factory=TgCheckSpec)
    local: LocalExecutorConfig = Field(default_factory=LocalExecutorConfig)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "campaign name")

    @field_validator("temperatures_k")
    @classmethod
    def _temperatures(cls, value: list[float]) -> list[float]:
        if any(t <= 0 for t in value):
            raise ValueError("temperatures must be > 0 K")
        if len(set(value)) != len(value):
            raise ValueError("temperatures must be distinct (use replicas for repeats)")
        return [float(t) for t in value]

    @field_validator("structures")
    @classmethod
    def _structures(cls, value: list[StructureSpec]) -> list[StructureSpec]:
        names = [s.name for s in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"structure names must be distinct (repeated: {', '.join(dupes)})")
        return value

    @field_validator("prepare")
    @classmethod
    def _prepare(cls, value: list[StageSpec]) -> list[StageSpec]:
        return _check_prepare(value)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: list[StageSpec]) -> list[StageSpec]:
        for stage in value:
            if stage.kind == "melt_quench":
                raise ValueError(f"protocol stage {stage.label!r}: melt_quench belongs in 'prepare' (once per structure)")
            if stage.kind == "md":
                fixed = sorted({"temperature_k", "temperature_schedule"} & stage.md.model_fields_set)
                if fixed:
                    raise ValueError(
                        f"protocol stage {stage.label!r} sets {', '.join(fixed)}: protocol MD runs at the task "
                        "temperatures (temperatures_k)"
                    )
        if not any(s.kind in ("md", "deposit", "anneal") for s in value):
            raise ValueError("the protocol needs at least one md stage (or a deposit or anneal stage)")
        return _check_stages(value, "protocol")

    @model_validator(mode="after")
    def _analysis_stages(self) -> CampaignConfig:
        md_labels = [s.label for s in self.protocol if s.kind == "md"]
        for key in PER_TASK_ANALYSES:
            spec = getattr(self.analyses, key)
            if spec is not None and not md_labels:
                raise ValueError(f"analyses.{key} reads an md stage and the protocol has none: add an md stage or "
                                 f"set {key}: null" + (" and arrhenius: null" if key == "diffusion" else ""))
            if spec is not None and spec.stage is not None and spec.stage not in md_labels:
                raise ValueError(f"analyses.{key}.stage {spec.stage!r} is not an md stage of the protocol "
                                 f"({', '.join(md_labels)})")
        return self

    # ------------------------------------------------------------------------------------------ derived
    def analysis_stage(self, key: str) -> str:
        """The protocol stage an analysis reads (its ``stage`` or the last MD stage)."""
        spec = getattr(self.analyses, key)
        if spec is not None and spec.stage is not None:
            return spec.stage
        return [s.label for s in self.protocol if s.kind == "md"][-1]


def _resolve_model(model: str, base: Path) -> str:
    """A relative model file path, resolved against the campaign file's folder when it exists there."""
    if model in _NAMED_MODELS or ":" in model and not Path(model).exists():
        return model
    path = Path(model).expanduser()
    if not path.is_absolute() and (base / path).exists():
        return str((base / path).resolve())
    return str(path.resolve()) if path.exists() else model


def load_campaign(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> CampaignConfig:
    """Read and validate a campaign file; relative paths become absolute (relative to the file).

    Raises
    ------
    ConfigError
        Unknown keys, bad values, missing structure files (file, line and key are named).
    """
    path = Path(path)
    cfg = load_config(path, CampaignConfig, overrides)
    base = path.resolve().parent
    directory = cfg.directory if cfg.directory is not None else Path(cfg.name)
    directory = directory.expanduser()
    updates: dict[str, Any] = {"directory": (base / directory).resolve() if not directory.is_absolute() else directory}
    if cfg.database is not None and "://" not in cfg.database:
        db = Path(cfg.database).expanduser()
        updates["database"] = str((base / db).resolve() if not db.is_absolute() else db)
    structures = []
    for spec in cfg.structures:
        if spec.file is not None:
            file = spec.file.expanduser()
            file = (base / file).resolve() if not file.is_absolute() else file
            if not file.is_file():
                raise ConfigError(f"{path}: structure {spec.name!r}: file {spec.file} not found (looked for {file})")
            spec = spec.model_copy(update={"file": file})
        structures.append(spec)
    updates["structures"] = structures
    updates["potential"] = cfg.potential.model_copy(update={"model": _resolve_model(cfg.potential.model, base)})
    return cfg.model_copy(update=updates)
