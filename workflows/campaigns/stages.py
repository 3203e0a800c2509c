"""Stage specs of a campaign file (``prepare:`` and ``protocol:`` entries): one kind per stage.

Kinds (:data:`STAGE_KINDS`): ``relax`` (:class:`RelaxStage`), ``md`` (:class:`~tfbsim.workflows.md.config.MDConfig`),
``melt_quench`` (:class:`~tfbsim.workflows.protocols.melt_quench.MeltQuenchConfig`), ``deposit``
(:class:`~tfbsim.workflows.protocols.deposition_config.DepositionConfig`) and ``anneal``
(:class:`~tfbsim.workflows.protocols.reactive_anneal.ReactiveAnnealConfig`). The rules that involve the whole
campaign (temperatures, analyses) are in :mod:`tfbsim.workflows.campaigns.config`, which re-exports these names.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..config import StrictModel
from ..md.config import MDConfig
from ..protocols.deposition_config import DepositionConfig
from ..protocols.melt_quench import MeltQuenchConfig
from ..protocols.reactive_anneal import ReactiveAnnealConfig

__all__ = ["STAGE_KINDS", "StageSpec", "RelaxStage", "UntilDiffusiveSpec", "check_prepare", "check_stages",
           "check_name"]

#: The stage kinds, in the order of the ``exactly one of`` message.
STAGE_KINDS: tuple[str, ...] = ("relax", "md", "melt_quench", "deposit", "anneal")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]*$")

def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{what} {value!r} must start with a letter and hold only letters, digits and _ . + - "
                         "(it names folders and database values)")
    return value


# ---------------------------------------------------------------------------------------------- stages
class RelaxStage(StrictModel):
    """Settings of a relaxation stage (:func:`tfbsim.workflows.md.relax.relax`)."""

    fmax_ev_ang: float = Field(0.05, gt=0)
    max_steps: int = Field(500, ge=0)
    cell: bool = False
    cell_axes: Literal["xyz", "z"] = "xyz"
    pressure_gpa: float = 0.0


class UntilDiffusiveSpec(StrictModel):
    """Extend an MD stage until a species diffuses (``until_diffusive`` of a protocol ``md`` stage).

    Attributes
    ----------
    max_production_ps
        Cap of the stage's length (ps); the verdict says when the cap stopped it first.
    species
        The diffusing species.
    min_loglog_slope
        Smallest slope of log MSD vs log t over the fit window (1: diffusive, < 1: sub-diffusive).
    min_msd_ang2
        Smallest MSD (Å²) at the end of the fit window (several hops: ≥ 30 Å² for Li).
    fit_start_ps, fit_end_ps
        The fit window (ps); default: the diffusion analysis' own.
    growth
        Factor of the planned steps from one chunk to the next.
    """

    max_production_ps: float = Field(gt=0)
    species: str = "Li"
    min_loglog_slope: float = Field(0.9, gt=0)
    min_msd_ang2: float = Field(30.0, ge=0)
    fit_start_ps: float | None = Field(None, ge=0)
    fit_end_ps: float | None = Field(None, gt=0)
    growth: float = Field(2.0, gt=1, le=10)


class StageSpec(StrictModel):
    """One stage: exactly one of :data:`STAGE_KINDS`, with an optional ``name``; an ``md`` stage of the protocol
    may add ``until_diffusive``.

    ``deposit`` and ``anneal`` take the keys of their protocol's config; the potential is the campaign's. A
    ``deposit`` in ``protocol`` without ``temperature_k`` keeps its substrate at the task's temperature; in
    ``prepare`` it needs its own ``temperature_k``.
    """

    name: str | None = None
    relax: RelaxStage | None = None
    md: MDConfig | None = None
    melt_quench: MeltQuenchConfig | None = None
    deposit: DepositionConfig | None = None
    anneal: ReactiveAnnealConfig | None = None
    until_diffusive: UntilDiffusiveSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "stage name")

    @model_validator(mode="after")
    def _one_kind(self) -> StageSpec:
        given = [k for k in STAGE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a stage has exactly one of {', '.join(STAGE_KINDS)} (got {', '.join(given) or 'none'})")
        block = getattr(self, given[0])
        if "potential" in block.model_fields_set:
            raise ValueError("stages may not set a potential: give it once, in the top-level 'potential'")
        if self.until_diffusive is not None and given[0] != "md":
            raise ValueError("until_diffusive belongs to an md stage")
        if self.until_diffusive is not None and self.md.steps * self.md.timestep_fs * 1e-3 > \
                self.until_diffusive.max_production_ps:
            raise ValueError(f"until_diffusive.max_production_ps ({self.until_diffusive.max_production_ps} ps) is "
                             "below the stage's own length (steps × timestep_fs)")
        return self

    @property
    def kind(self) -> str:
        """One of :data:`STAGE_KINDS`."""
        return next(k for k in STAGE_KINDS if getattr(self, k) is not None)

    @property
    def label(self) -> str:
        """The stage's name (default: its kind)."""
        return self.name or self.kind


def check_prepare(stages: list[StageSpec]) -> list[StageSpec]:
    """The rules of ``prepare`` stages (no ``until_diffusive``; MD and deposition at their own temperature)."""
    for stage in stages:
        if stage.until_diffusive is not None:
            raise ValueError(f"prepare stage {stage.label!r}: until_diffusive belongs to protocol stages")
        if stage.kind == "md" and not ({"temperature_k", "temperature_schedule"} & stage.md.model_fields_set):
            raise ValueError(f"prepare stage {stage.label!r}: MD in 'prepare' needs its own temperature_k")
        if stage.kind == "deposit" and "temperature_k" not in stage.deposit.model_fields_set:
            raise ValueError(f"prepare stage {stage.label!r}: a deposit in 'prepare' needs its own temperature_k")
    return check_stages(stages, "prepare")


def check_stages(stages: list[StageSpec], where: str) -> list[StageSpec]:
    """Distinct stage labels (they name the stage folders)."""
    labels = [s.label for s in stages]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(f"{where} stages need distinct names (repeated: {', '.join(dupes)}); add 'name:' to them")
    return stages
