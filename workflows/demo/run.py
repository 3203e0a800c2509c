"""The main job (``tfbsim demo``): amorphous LiPON and a Li/LiPON interface, from nothing to a report.

Stages (each resumable: re-running the same command continues where a killed run stopped)
-----------------------------------------------------------------------------------------
1. **glass + transport** — a campaign (``bulk_campaign.yaml`` → ``bulk/``, the same file format users scale up with
   ``tfbsim run``): build ``Li2.94PO3.50N0.31`` with the motif builder, melt–quench it on the chosen model,
   then NVT (Bussi) MD at several temperatures on local cores, tracer diffusion per run and an Arrhenius
   fit → Ea and σ(300 K) with intervals. Results database: ``bulk/results.db``.
2. **structure** — Nd/Na/Nt, bridging O, P Qn and phosphate clusters of the quenched glass.
3. **interface** — Li(100)/LiPON from the interface builder, relaxed along the normal, annealed in NVT below
   Li's melting point (453.7 K), then the interphase analysis (classes by layer, order from the Li side,
   thickness). The anneal is added to the results database.
4. **report** — ``report.md`` and ``report.html`` with the figures (PNG), every JSON result, structures,
   trajectories, the database and provenance (:mod:`tfbsim.workflows.demo.report`).

Presets (:data:`DEMO_PRESETS`)
------------------------------
``quick`` (default; ≤ 15 min on a 2-core laptop with the bundled model): 200-atom glass, quick quench
(3.7 ps at 1000 K/ps), 4 temperatures × 3 ps (2 fs steps), a ~200-atom interface annealed 3 ps at 400 K
(2 fs steps). Enough to exercise everything and show trends — not converged numbers (the report says so).

``full`` (a GPU or a 32–64-core HPC node; about a day of MD with a MACE-MP-sized model on one A100/H100, or
with the bundled model ~4–8 h on a 64-core node): 600-atom glass, production quench (100 K/ps), 6
temperatures × 200 ps after 20 ps equilibration, a ~1,500-atom interface annealed 100 ps. Use it with
``--model`` pointing at a fine-tuned or foundation MACE file for publishable numbers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from ...errors import ConfigError, SimulationUnstable
from ...structures.io import read_json, read_structure, write_json, write_structure
from ..config import StrictModel, validate_config
from ..potentials.config import PotentialConfig

__all__ = ["DemoConfig", "DEMO_PRESETS", "DemoResult", "run_demo", "demo_config"]

logger = logging.getLogger(__name__)


#: Top-level keys of a demo file that stand for ``potential.<key>`` (the demo's file keys before ``potential:``).
_POTENTIAL_SHORTHANDS = ("model", "device", "dtype")


class DemoConfig(StrictModel):
    """Settings of :func:`run_demo` (from a preset; any field can be overridden).

    The potential is a :class:`~tfbsim.workflows.potentials.config.PotentialConfig` under ``potential:``, carried
    unchanged into the bulk campaign's YAML and into the factory. ``model``, ``device`` and ``dtype`` at the top
    level of a demo file (or as :func:`demo_config` keywords, as the ``tfbsim demo --model/--device`` flags pass
    them) remain accepted as shorthands for ``potential.model`` etc.; the resolved configuration holds only
    ``potential``. Giving the same setting both ways in one file is a :class:`~tfbsim.errors.ConfigError`.
    """

    preset: Literal["quick", "full", "custom"] = "quick"
    potential: PotentialConfig = Field(default_factory=PotentialConfig)
    seed: int = 0
    composition: str = "Li2.94PO3.50N0.31"
    n_atoms: int = 200
    quench: str | dict[str, Any] = "quick"
    temperatures_k: list[float] = [900.0, 1100.0, 1300.0, 1500.0]
    timestep_fs: float = 2.0
    equilibrate_ps: float = 0.4
    production_ps: float = 3.0
    traj_every: int = 10
    workers: int = 2
    threads_per_task: int = 1
    interface_lateral_min_ang: float = 10.0
    interface_thickness_ang: tuple[float, float] = (9.0, 12.0)
    interface_anneal_k: float = 400.0
    interface_anneal_ps: float = 3.0
    interface_timestep_fs: float = 2.0
    interface_bin_ang: float = 1.0

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
        data.update(load_config(file, DemoConfig).model_dump(exclude_unset=True))
    given = {k: v for k, v in overrides.items() if v is not None}
    potential = {k: given.pop(k) for k in _POTENTIAL_SHORTHANDS if k in given}
    if potential:
        section = given.pop("potential", None) or data.get("potential") or {}
        if isinstance(section, PotentialConfig):
            section = section.model_dump(exclude_unset=True)
        data["potential"] = {**section, **potential}
    data.update(given)
    return validate_config(DemoConfig, data, source=str(file) if file else "demo settings")


@dataclass(frozen=True)
class DemoResult:
    """Outcome of :func:`run_demo`: the output folder, the report and the headline numbers."""

    out_dir: Path
    report_md: Path
    report_html: Path
    numbers: dict[str, Any]
    wall_s: float


Stage = Callable[[str], None]


def _steps(ps: float, timestep_fs: float) -> int:
    return max(1, int(round(ps * 1000.0 / timestep_fs)))


# ------------------------------------------------------------------------------------------- stage 1
def _quench_settings(cfg: DemoConfig) -> dict[str, Any]:
    settings = {"preset": cfg.quench} if isinstance(cfg.quench, str) else dict(cfg.quench)
    return {"seed": cfg.seed, **settings}


def _quench_name(cfg: DemoConfig) -> str:
    return cfg.quench if isinstance(cfg.quench, str) else str(cfg.quench.get("preset", "custom"))


def _campaign_yaml(cfg: DemoConfig, bulk: Path) -> Path:
    """Write the bulk campaign (glass + transport) as a user-editable YAML file."""
    equil = _steps(cfg.equilibrate_ps, cfg.timestep_fs)
    prod = _steps(cfg.production_ps, cfg.timestep_fs)
    campaign = {
        "name": "demo-lipon",
        "description": f"tfbsim demo ({cfg.preset}): amorphous {cfg.composition}, Li tracer diffusion vs T.",
        "directory": "bulk",
        "potential": cfg.potential.model_dump(mode="json"),
        "structures": [{"name": "lipon", "build": {"kind": "lipon", "composition": cfg.composition,
                                                   "n_atoms": cfg.n_atoms, "seed": cfg.seed}}],
        "temperatures_k": list(cfg.temperatures_k),
        "replicas": 1,
        "seed": cfg.seed,
        "prepare": [{"name": "quench", "melt_quench": _quench_settings(cfg)}],
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
    path = bulk.parent / "bulk_campaign.yaml"
    bulk.parent.mkdir(parents=True, exist_ok=True)
    text = "# Written by `tfbsim demo`; run it yourself with `tfbsim run` (edit sizes and lengths first).\n"
    path.write_text(text + yaml.safe_dump(campaign, sort_keys=False))
    return path


def _bulk_stage(cfg: DemoConfig, out: Path, say: Stage) -> dict[str, Any]:
    from ..campaigns.driver import run_campaign

    path = _campaign_yaml(cfg, out / "bulk")

    def on_event(event: Any) -> None:  # task events, and every 30 s the running MD's stage, step and T
        say("  " + (getattr(event, "message", None) or str(event)))

    result = run_campaign(path, executor="local", on_event=on_event, status_every_s=30.0)
    tasks = []
    for row in sorted(result.rows, key=lambda r: r["temperature_k"]):
        tasks.append({k: row.get(k) for k in ("task_id", "temperature_k", "status", "D_cm2_s", "D_stderr_cm2_s",
                                              "sigma_ne_S_cm", "sigma_ne_stderr_S_cm", "temperature_mean_k",
                                              "time_ps", "reason")})
    return {"directory": str(result.directory), "database": result.database, "tasks": tasks,
            "arrhenius": result.arrhenius.get("lipon", {}), "counts": result.counts}


# ------------------------------------------------------------------------------------------- stage 2
def _structure_stage(out: Path) -> dict[str, Any]:
    from ...analysis.coordination import Coordination
    from ...analysis.plots import plot_coordination

    glass_path = out / "bulk" / "prepare" / "lipon" / "final.extxyz"
    glass = read_structure(glass_path)
    write_structure(out / "structures" / "lipon_quenched.extxyz", glass)
    data = Coordination(glass).run().results.to_dict()
    write_json(out / "results" / "coordination.json", data)
    plot_coordination(data, out / "figures" / "speciation.png")
    return data


# ------------------------------------------------------------------------------------------- stage 3
def _interface_stage(cfg: DemoConfig, out: Path, calc: Any, say: Stage) -> dict[str, Any]:
    from ...analysis.interphase import Interphase
    from ...analysis.plots_interphase import plot_interphase
    from ..md.config import MDConfig
    from ..md.resume import RunState, inspect_run_dir, start_or_resume
    from ..protocols.interface_quench import make_interface
    from ..protocols.li_melting import check_li_melting

    idir = out / "interface"
    built_path = idir / "built_relaxed.extxyz"
    if built_path.exists():
        atoms = read_structure(built_path)
        build_report = read_json(idir / "build_report.json")
    else:
        say("  building Li(100)/LiPON and relaxing it along the normal")
        build = make_interface("li:100,lipon", relax=True, calc=calc, relax_steps=300, relax_fmax_ev_ang=0.1,
                               thickness_ang=list(cfg.interface_thickness_ang), gap_ang=2.0,
                               lateral_min_ang=cfg.interface_lateral_min_ang, lipon_composition=cfg.composition,
                               seed=cfg.seed)
        atoms = build.atoms
        build_report = build.report
        write_json(idir / "build_report.json", build_report)
        write_structure(built_path, atoms)
    warning = check_li_melting(atoms, [cfg.interface_anneal_k], context="interface anneal")  # logs itself
    steps = _steps(cfg.interface_anneal_ps, cfg.interface_timestep_fs)
    md = MDConfig(ensemble="nvt-bussi", steps=steps, timestep_fs=cfg.interface_timestep_fs,
                  temperature_k=cfg.interface_anneal_k, tdamp_fs=100.0, initial_temperature_k=cfg.interface_anneal_k,
                  traj_every=max(steps // 60, 1), checkpoint_every=500, seed=cfg.seed)
    run_dir = idir / "anneal"
    summary_path = run_dir / "summary.json"
    state = inspect_run_dir(run_dir)
    if state in (RunState.COMPLETED, RunState.UNSTABLE):
        say(f"  anneal already {state.value}")
    elif state is RunState.CHECKPOINT:
        say("  continuing the interrupted anneal from its checkpoint")
    else:
        say(f"  NVT anneal at {cfg.interface_anneal_k:g} K for {cfg.interface_anneal_ps:g} ps ({len(atoms)} atoms)")
    try:  # an unstable anneal (now or before) raises: analyse what was run; the report states it
        start_or_resume(atoms, calc, md, run_dir, progress=True)
    except SimulationUnstable as exc:
        say(f"  WARNING: the anneal stopped unstable ({exc}); analysing the frames written before it")
    data = Interphase(run_dir / "traj.h5md", axis="z", bin_ang=cfg.interface_bin_ang).run().results.to_dict()
    write_json(out / "results" / "interphase.json", data)
    plot_interphase(data, out / "figures" / "interphase.png")
    final_path = run_dir / "final.extxyz"
    final = read_structure(final_path if final_path.exists() else run_dir / "last_good.extxyz")
    write_structure(out / "structures" / "li_lipon_annealed.extxyz", final)
    return {"build": build_report, "interphase": data, "n_atoms": len(final),
            "anneal": read_json(summary_path), "li_melting_warning": warning}


def _record_interface(db_target: str, interface: dict[str, Any], cfg: DemoConfig, out: Path, calc: Any) -> None:
    """Add the interface anneal as a row of the demo's results database (only this driver writes)."""
    from ..campaigns.resultsdb import ResultsDB

    final = read_structure(out / "structures" / "li_lipon_annealed.extxyz")
    final.info.pop("provenance", None)
    fu = interface["interphase"].get("formula_units", {})
    thickness = [t for t in interface["interphase"]["interphase"]["thickness_ang"] if t is not None]
    kv = {"campaign": "demo-lipon", "system": "li_lipon_interface", "task_id": "li_lipon_interface/anneal",
          "temperature_k": cfg.interface_anneal_k, "replica": 0, "status": interface["anneal"].get("status"),
          "model_sha256": str(calc.parameters.get("sha256")),
          "interphase_thickness_ang": float(thickness[-1]) if len(thickness) else None,
          **{f"fu_{k}": v for k, v in fu.items() if v is not None}}
    ResultsDB(db_target, create=True).upsert(final, {k: v for k, v in kv.items() if v is not None},
                                             data={"interphase": interface["interphase"]})


# ------------------------------------------------------------------------------------------------ run
def run_demo(
    out_dir: str | os.PathLike,
    config: DemoConfig | None = None,
    *,
    say: Stage | None = None,
) -> DemoResult:
    """Run the main job (see the module docstring) into ``out_dir``; re-running continues it.

    Parameters
    ----------
    out_dir
        Output folder (created).
    config
        Settings (default: the ``quick`` preset on the bundled model).
    say
        Called with one line per stage and event (the CLI prints them); default: logging.
    """
    from ..potentials.factory import check_coverage, load_potential
    from ..provenance import provenance, utc_now

    cfg = config or demo_config("quick")
    say = say or (lambda text: logger.info(text))
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started, t0 = utc_now(), time.perf_counter()
    # validate the model (and its elements) before any work is started
    calc = load_potential(cfg.potential)
    check_coverage(calc, ["Li", "P", "O", "N"])
    write_json(out / "demo_config.json", cfg)

    timings: dict[str, float] = {}
    say(f"[1/4] glass + transport: {cfg.n_atoms}-atom {cfg.composition}, {_quench_name(cfg)} quench, NVT at "
        f"{', '.join(f'{t:g}' for t in cfg.temperatures_k)} K × {cfg.production_ps:g} ps ({cfg.potential.model})")
    t = time.perf_counter()
    bulk = _bulk_stage(cfg, out, say)
    timings["glass_transport_s"] = time.perf_counter() - t
    say("[2/4] structure: speciation of the quenched glass")
    t = time.perf_counter()
    structure = _structure_stage(out)
    timings["structure_s"] = time.perf_counter() - t
    say("[3/4] interface: Li(100)/LiPON, anneal below Li's melting point, interphase analysis")
    t = time.perf_counter()
    interface = _interface_stage(cfg, out, calc, say)
    _record_interface(bulk["database"], interface, cfg, out, calc)
    timings["interface_s"] = time.perf_counter() - t
    say("[4/4] report")
    from .report import collect_figures, write_reports

    collect_figures(out, bulk)
    block = provenance(config=cfg, calc=calc, seed=cfg.seed, started_utc=started)
    wall = time.perf_counter() - t0
    numbers = write_reports(out, cfg, calc, bulk=bulk, structure=structure, interface=interface,
                            timings={**timings, "total_s": wall}, provenance_block=block)
    write_json(out / "provenance.json", block)
    return DemoResult(out, out / "report.md", out / "report.html", numbers, wall)
