"""A reactive anneal of a built interface (or a deposited film): a user temperature schedule, then the interphase
classes layer by layer against time.

The schedule is a list of segments ``[(duration_ps, T_K), ...]`` held one after the other, joined by linear
ramps of ``ramp_ps`` at the start of each new segment. It runs as one MD run
(:func:`~tfbsim.workflows.md.resume.start_or_resume`: checkpoints, resume after a kill, refusal of changed
settings) with ``MDConfig.temperature_schedule``. Before any MD, :func:`~tfbsim.workflows.protocols.li_melting.
check_li_melting` warns when a mobile Li-metal region (a region made only of Li, e.g. the ``deposit`` of a Li
deposition or the ``li`` of an interface) would see more than 430 K: segments above Li's melting point (453.7 K)
are allowed — a molten Li reacts faster, which is sometimes the point — but the warning lands in the result.

Afterwards the trajectory frames are classified with
:func:`tfbsim.analysis.deposition_profile.deposition_profile` (``x`` = time in ps), so the anneal's time series
has the same layers, classes, reduction depth and cutoff sensitivity as a deposition's series. With a run
directory, ``anneal.json`` holds the schedule, the MD summary, the warnings, the profile and provenance.

Example
-------
>>> cfg = ReactiveAnnealConfig(segments=[(2.0, 300.0), (5.0, 600.0), (2.0, 300.0)])  # doctest: +SKIP
>>> result = reactive_anneal(atoms, calc, cfg, "runs/anneal")                        # doctest: +SKIP
>>> result.profile["product_order_first"], result.warnings                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import Field, field_validator

from ..config import StrictModel, validate_config
from ..potentials.factory import check_coverage
from ..provenance import provenance, utc_now
from .li_melting import check_li_melting

__all__ = ["ReactiveAnnealConfig", "ReactiveAnnealResult", "reactive_anneal", "schedule_points"]

logger = logging.getLogger(__name__)


class ReactiveAnnealConfig(StrictModel):
    """Settings of :func:`reactive_anneal`.

    Attributes
    ----------
    segments
        ``[[duration_ps, T_K], ...]``: temperatures held one after the other.
    ramp_ps
        Linear ramp from one segment's temperature to the next, at the start of the next segment (ps).
    ensemble
        ``nvt-langevin``, ``nvt-bussi`` or ``nvt-nhc``.
    timestep_fs, friction_ps_inv, seed
        As :class:`~tfbsim.workflows.md.config.MDConfig`.
    traj_every, checkpoint_every
        Intervals (steps) of trajectory frames (the analysed snapshots) and checkpoints.
    layer_ang
        Layer thickness of the interphase series (Å).
    """

    segments: list[tuple[float, float]]
    ramp_ps: float = Field(0.1, gt=0)
    ensemble: Literal["nvt-langevin", "nvt-bussi", "nvt-nhc"] = "nvt-langevin"
    timestep_fs: float = Field(1.0, gt=0, le=5)
    friction_ps_inv: float = Field(1.0, gt=0)
    seed: int = Field(0, ge=0)
    traj_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    layer_ang: float = Field(2.0, gt=0)

    @field_validator("segments")
    @classmethod
    def _check_segments(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if not value:
            raise ValueError("segments needs at least one [duration_ps, T_K] pair")
        for d, t in value:
            if not (d > 0 and t > 0):
                raise ValueError(f"each segment needs duration_ps > 0 and T_K > 0, got [{d}, {t}]")
        return [(float(d), float(t)) for d, t in value]

    @property
    def total_ps(self) -> float:
        """Length of the schedule (ps)."""
        return float(sum(d for d, _ in self.segments))


def schedule_points(segments: list[tuple[float, float]], ramp_ps: float) -> list[tuple[float, float]]:
    """``MDConfig.temperature_schedule`` points ``[(t_ps, T_K), ...]`` of held segments joined by ramps."""
    points: list[tuple[float, float]] = []
    t = 0.0
    for k, (duration, temp) in enumerate(segments):
        if k == 0:
            points.append((0.0, temp))
        else:
            points.append((t + min(ramp_ps, 0.5 * duration), temp))
        t += duration
        points.append((t, temp))
    return points


@dataclass(frozen=True)
class ReactiveAnnealResult:
    """Outcome of :func:`reactive_anneal`: final ``atoms``, the MD ``md`` result, the interphase ``profile``
    (``DepositionProfile.to_dict()`` with x = time in ps), ``warnings`` and the ``summary`` (``anneal.json``)."""

    atoms: Atoms
    md: object = field(repr=False)
    profile: dict = field(repr=False)
    warnings: list[str]
    summary: dict = field(repr=False)


def reactive_anneal(
    atoms: Atoms,
    calc: Calculator,
    config: ReactiveAnnealConfig | dict,
    run_dir: str | Path | None = None,
    *,
    progress: bool = False,
) -> ReactiveAnnealResult:
    """Run the temperature schedule on ``atoms`` and classify the interphase frame by frame (module docstring).

    Parameters
    ----------
    atoms
        The interface or deposited film (``fixed``/``region`` arrays are honoured; momenta kept if present).
    calc
        ASE calculator.
    config
        :class:`ReactiveAnnealConfig` or a dict.
    run_dir
        Folder of the MD run (``md/``) and ``anneal.json``; ``None``: in memory. Calling again resumes.
    progress
        Progress lines on ``tfbsim.progress``.

    Raises
    ------
    ConfigError, PotentialError
        Bad settings; the model lacks an element; a run directory made with other settings.
    SimulationUnstable
        An MD guard tripped.
    """
    from ...analysis.deposition_profile import deposition_profile
    from ..md.config import MDConfig
    from ..md.resume import start_or_resume

    cfg = config if isinstance(config, ReactiveAnnealConfig) else validate_config(ReactiveAnnealConfig, dict(config))
    check_coverage(calc, atoms)
    started = utc_now()
    temps = [t for _, t in cfg.segments]
    warnings = []
    msg = check_li_melting(atoms, temps, context="reactive anneal")
    if msg:
        warnings.append(msg)
    steps = int(round(cfg.total_ps * 1000.0 / cfg.timestep_fs))
    has_v = bool(np.any(atoms.get_momenta()))
    md_cfg = MDConfig(
        ensemble=cfg.ensemble, steps=steps, timestep_fs=cfg.timestep_fs, temperature_k=temps[0],
        temperature_schedule=schedule_points(cfg.segments, cfg.ramp_ps), friction_ps_inv=cfg.friction_ps_inv,
        initial_temperature_k=None if has_v else temps[0], seed=cfg.seed, traj_every=cfg.traj_every,
        checkpoint_every=cfg.checkpoint_every, guard_t_factor=None,
    )
    rd = Path(run_dir) if run_dir is not None else None
    md = start_or_resume(atoms, calc, md_cfg, None if rd is None else rd / "md", progress=progress)
    frames = _frames(md, atoms)
    times = [float(f.info.get("time_ps", k * cfg.traj_every * cfg.timestep_fs / 1000.0)) for k, f in enumerate(frames)]
    profile = deposition_profile(frames, x_name="time_ps", x_values=times, layer_ang=cfg.layer_ang).to_dict()
    summary = {
        "schedule": [list(s) for s in cfg.segments], "temperature_schedule": md_cfg.temperature_schedule,
        "total_ps": cfg.total_ps, "steps": steps, "warnings": warnings,
        "md": {k: md.summary.get(k) for k in ("status", "steps_done", "wall_s", "steps_per_s", "temperature_mean_k")},
        "profile": profile,
        "provenance": provenance(config=cfg, calc=calc, seed=cfg.seed, started_utc=started,
                                 extra={"workflow": "tfbsim.workflows.protocols.reactive_anneal.reactive_anneal"}),
    }
    if rd is not None:
        from ...structures.io import write_json

        write_json(rd / "anneal.json", summary)
    return ReactiveAnnealResult(atoms=md.atoms, md=md, profile=profile, warnings=warnings, summary=summary)


def _frames(md, template: Atoms) -> list[Atoms]:
    """The run's frames as Atoms carrying the template's ``dep_arrival`` labels (substrate vs deposit)."""
    if md.frames is not None:
        frames = [f.copy() for f in md.frames]
    else:
        from ...analysis.trajectory import Trajectory

        frames = list(Trajectory(md.traj_path).iter_frames())
    dep = template.arrays.get("dep_arrival")
    for f in frames:
        f.pbc = template.pbc
        if dep is not None and "dep_arrival" not in f.arrays:
            f.new_array("dep_arrival", np.asarray(dep).copy())
    return frames
