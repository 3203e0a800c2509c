"""The main job (``tfbsim demo``): amorphous LiPON and a Li/LiPON interface, from nothing to a report.

Stages (each resumable: re-running the same command continues where a killed run stopped)
-----------------------------------------------------------------------------------------
1. **glass + transport** — a campaign (``bulk_campaign.yaml`` → ``bulk/``, the same file format users scale up with
   ``tfbsim run``): build ``Li2.94PO3.50N0.31`` with the motif builder, melt–quench it on the chosen model,
   then NVT (Bussi) MD at several temperatures on local cores, tracer diffusion per run and an Arrhenius
   fit → Ea and σ(300 K) with intervals. Results database: ``bulk/results.db``.
   The melt–quench runs first, in this process, on every free core (``serial_threads``; it is serial, so the
   campaign's one-thread workers would leave the other cores idle); the campaign starts from its glass
   (``glass/final.extxyz``). Every temperature is checked (diffusive? network flowing?) and only trusted
   points are fitted (:mod:`tfbsim.analysis.diffusion_checks`).
2. **structure** — neutron and X-ray G(r) and S(Q) of the equilibrated glass (the quench's anneal trajectory)
   with the literature comparison table, and Nd/Na/Nt, bridging O, P Qn and phosphate clusters
   (:mod:`tfbsim.workflows.demo.structure`).
3. **interface** — ``interface_mode: deposit`` (default): Li atoms arrive one group at a time on the demo
   glass opened into a slab, then the products layer by layer; ``pressed``: Li(100)/LiPON from the interface
   builder, relaxed along the normal and annealed in NVT below Li's melting point (453.7 K), then the
   interphase analysis. Either is added to the results database (:mod:`tfbsim.workflows.demo.interface`).
4. **report** — ``report.md`` and ``report.html`` with the figures (PNG), every JSON result, structures,
   trajectories, the database and provenance (:mod:`tfbsim.workflows.demo.report`).

Presets (:data:`~tfbsim.workflows.demo.config.DEMO_PRESETS`)
------------------------------
``quick`` (default; ≤ 15 min on 2 idle cores with the bundled model): 200-atom glass, quick quench
(1000 K/ps, 0.5 ps anneal), 4 temperatures × 1.6 ps after 0.2 ps (2 fs steps; all four are expected to be
upper bounds — too few Li hops for a diffusive MSD — so the quick demo shows the checks and a trend, not an
Ea), a ~200-atom interface annealed 3 ps at 400 K
(2 fs steps). Enough to exercise everything and show trends — not converged numbers (the report says so).

``full`` (a GPU or a 32–64-core HPC node; about a day of MD with a MACE-MP-sized model on one A100/H100, or
with the bundled model ~4–8 h on a 64-core node): 600-atom glass, production quench (100 K/ps), 6
temperatures × 200 ps after 20 ps equilibration, 200 Li deposited at 5 Li/ps (1 fs steps); ``pressed``: a
~1,500-atom interface annealed 100 ps. Use it with
``--model`` pointing at a fine-tuned or foundation MACE file for publishable numbers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...structures.io import read_json, write_json
from .config import (GLASS_DIR, DemoConfig, campaign_dict, demo_config, deposit_config, quench_settings,
                     serial_threads, validate_demo)

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult:
    """Outcome of :func:`run_demo`: the output folder, the report and the headline numbers."""

    out_dir: Path
    report_md: Path
    report_html: Path
    numbers: dict[str, Any]
    wall_s: float


Stage = Callable[[str], None]

# ------------------------------------------------------------------------------------------- stage 1
def _quench_name(cfg: DemoConfig) -> str:
    return cfg.quench if isinstance(cfg.quench, str) else str(cfg.quench.get("preset", "custom"))


def _campaign_yaml(cfg: DemoConfig, bulk: Path) -> Path:
    """Write the bulk campaign as a user-editable YAML file (atomically) and return its path."""
    from ...structures.io import atomic_path

    path = bulk.parent / "bulk_campaign.yaml"
    quench = yaml.safe_dump({"prepare": [{"name": "quench", "melt_quench": quench_settings(cfg)}]},
                            default_flow_style=None, sort_keys=False).strip()
    text = ("# Written by `tfbsim demo`; run it yourself with `tfbsim run` (edit sizes and lengths first).\n"
            f"# It starts from the demo's glass ({GLASS_DIR}/final.extxyz, melt-quenched by the demo on every core);\n"
            "# to let the campaign make the glass itself, replace 'file' by\n"
            f"#   build: {{kind: lipon, composition: {cfg.composition}, n_atoms: {cfg.n_atoms}, seed: {cfg.seed}}}\n"
            "# and add\n" + "".join(f"#   {line}\n" for line in quench.splitlines()))
    with atomic_path(path) as tmp:
        tmp.write_text(text + yaml.safe_dump(campaign_dict(cfg), sort_keys=False))
    return path


def _glass(cfg: DemoConfig, out: Path, calc: Any, say: Stage) -> dict[str, Any]:
    """Build and melt-quench the glass into ``glass/`` on :func:`serial_threads` threads (resumable)."""
    from ...structures.amorphous import build_lipon
    from ..protocols.melt_quench import melt_quench

    threads = serial_threads(cfg)
    gdir = out / GLASS_DIR
    if (gdir / "final.extxyz").exists() and (gdir / "summary.json").exists():
        summary = read_json(gdir / "summary.json")
        if summary.get("status") == "completed":  # reused as it is: the campaign identifies it by its sha256
            say(f"  melt-quench already completed ({GLASS_DIR}/)")
            return {"summary": summary, "threads": threads, "wall_s": summary.get("wall_s")}
    say(f"  melt-quench on {threads} thread(s) ({GLASS_DIR}/)")
    start = build_lipon(cfg.composition, cfg.n_atoms, seed=cfg.seed)
    result = melt_quench(start, calc, quench_settings(cfg), gdir, progress=True, threads=threads)
    return {"summary": result.summary, "threads": threads, "wall_s": result.wall_s}


def _bulk_stage(cfg: DemoConfig, out: Path, calc: Any, say: Stage, timings: dict[str, float]) -> dict[str, Any]:
    from ..campaigns.driver import run_campaign

    t = time.perf_counter()
    glass = _glass(cfg, out, calc, say)
    timings["glass_s"] = time.perf_counter() - t
    t = time.perf_counter()
    path = _campaign_yaml(cfg, out / "bulk")

    def on_event(event: Any) -> None:  # task events, and every 30 s the running MD's stage, step and T
        say("  " + (getattr(event, "message", None) or str(event)))

    result = run_campaign(path, executor="local", on_event=on_event, status_every_s=30.0)
    timings["transport_s"] = time.perf_counter() - t
    tasks = []
    for row in sorted(result.rows, key=lambda r: r["temperature_k"]):
        tasks.append({k: row.get(k) for k in ("task_id", "temperature_k", "status", "D_cm2_s", "D_stderr_cm2_s",
                                              "sigma_ne_S_cm", "sigma_ne_stderr_S_cm", "temperature_mean_k",
                                              "time_ps", "reason")})
    return {"directory": str(result.directory), "database": result.database, "tasks": tasks,
            "arrhenius": result.arrhenius.get("lipon", {}), "counts": result.counts, "glass": glass}


# ------------------------------------------------------------------------------------------------ run
def run_demo(
    out_dir: str | os.PathLike,
    config: DemoConfig | None = None,
    *,
    say: Stage | None = None,
    fresh: tuple[str, ...] = (),
) -> DemoResult:
    """Run the main job (see the module docstring) into ``out_dir``; re-running continues it.

    Every stage's settings are validated, and compared with those that produced what ``out_dir`` already holds
    (:mod:`tfbsim.workflows.demo.stages`), before anything runs or is written.

    Parameters
    ----------
    out_dir
        Output folder (created).
    config
        Settings (default: the ``quick`` preset on the bundled model).
    say
        Called with one line per stage and event (the CLI prints them); default: logging.
    fresh
        Stages to redo from scratch although their stored settings differ (``bulk``, ``deposit``, ``interface``,
        ``all``; ``bulk`` redoes ``deposit`` too, whose substrate is its glass); without it a changed setting
        raises ConfigError naming it.

    Raises
    ------
    ConfigError
        Invalid settings, or settings that differ from the existing stages' (each key named).
    """
    from ..potentials.factory import check_coverage, load_potential
    from ..provenance import provenance, utc_now
    from .stages import check_stages, record_stage

    cfg = config or demo_config("quick")
    say = say or (lambda text: logger.info(text))
    out = Path(out_dir).resolve()
    started, t0 = utc_now(), time.perf_counter()
    # validate every stage, the model (and its elements) and the folder's stored settings before any work
    validate_demo(cfg)
    calc = load_potential(cfg.potential)
    check_coverage(calc, ["Li", "P", "O", "N"])
    stage_settings = check_stages(out, cfg, calc, fresh=tuple(fresh))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "demo_config.json", cfg, provenance=provenance(config=cfg, calc=calc, seed=cfg.seed))

    timings: dict[str, float] = {}
    threads = serial_threads(cfg)
    say(f"[1/4] glass + transport: {cfg.n_atoms}-atom {cfg.composition}, {_quench_name(cfg)} quench on {threads} "
        f"thread(s), NVT at {', '.join(f'{t:g}' for t in cfg.temperatures_k)} K × {cfg.production_ps:g} ps "
        f"({cfg.potential.model})")
    t = time.perf_counter()
    record_stage(out, "bulk", stage_settings["bulk"])
    bulk = _bulk_stage(cfg, out, calc, say, timings)
    say("[2/4] structure: G(r), S(Q) and speciation of the glass")
    t = time.perf_counter()
    from ..protocols.threads import torch_threads
    from .structure import structure_stage

    block = provenance(config=cfg, calc=calc, seed=cfg.seed, started_utc=started)
    with torch_threads(threads):
        structure = structure_stage(out, out / GLASS_DIR, block)
    timings["structure_s"] = time.perf_counter() - t
    from .interface import interface_stage, record_interface

    t = time.perf_counter()
    if cfg.interface_mode == "deposit":
        say(f"[3/4] interface: {deposit_config(cfg).count} Li deposited on the glass slab, products layer by layer")
        record_stage(out, "deposit", stage_settings["deposit"])
    else:
        say("[3/4] interface: pressed Li(100)/LiPON, anneal below Li's melting point, interphase analysis")
        record_stage(out, "interface", stage_settings["interface"])
    interface = interface_stage(cfg, out, calc, say, threads=threads, block=block)
    record_interface(bulk["database"], interface, cfg, out, calc)
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
