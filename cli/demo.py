"""``tfbsim demo``: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import ConfigOpt, _say


# ------------------------------------------------------------------------------------------------- demo
def demo_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output folder (re-running continues it).")] = Path("demo_out"),
    preset: Annotated[str, typer.Option("--preset", help="quick (2-core laptop, <= 15 min) or full (GPU/HPC node).")] = "quick",
    model: Annotated[Optional[str], typer.Option("--model", help="Potential (default: bundled).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of builders and MD.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda[:N].")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="MD runs at a time.")] = None,
    threads_per_task: Annotated[Optional[int], typer.Option("--threads-per-task", help="torch threads per run.")] = None,
    interface_mode: Annotated[Optional[str], typer.Option(
        "--interface-mode", help="deposit (Li atoms arrive on the demo glass; default) or pressed (Li(100)/LiPON "
                                 "anneal).")] = None,
    serial_threads: Annotated[Optional[int], typer.Option(
        "--serial-threads", help="torch threads of the serial stages (melt-quench, analyses, interface); "
                                 "default: every core.")] = None,
    config: ConfigOpt = None,
    fresh: Annotated[Optional[list[str]], typer.Option(
        "--fresh", help="Redo this stage from scratch although --out holds it with other settings "
                        "(bulk, deposit, interface or all; repeatable; bulk redoes deposit too). Without it a changed "
                        "setting is refused.")] = None,
) -> None:
    """The main job: LiPON glass -> Li transport and Arrhenius -> structure -> Li on LiPON interphase -> report."""
    from ..workflows.demo.config import demo_config
    from ..workflows.demo.run import run_demo

    cfg = demo_config(preset, file=config, model=model, seed=seed, device=device, workers=workers,
                      threads_per_task=threads_per_task, interface_mode=interface_mode,
                      serial_threads=serial_threads)
    result = run_demo(out, cfg, say=lambda text: _say(ctx, text), fresh=tuple(fresh or ()))
    n = result.numbers
    fitted = sum(1 for p in n["D_by_T"] if p.get("verdict") == "fitted")
    ea = (f"n/a ({fitted} of {len(n['D_by_T'])} temperatures trusted)" if n["Ea_eV"] is None
          else f"{n['Ea_eV']:.2f} ± {n['Ea_stderr_eV']:.2f} eV")
    sigma = "n/a" if n["sigma_300K_S_cm"] is None else f"{n['sigma_300K_S_cm']:.2g} S/cm"
    _say(ctx, f"done in {result.wall_s / 60:.1f} min: Ea {ea} (expt 0.55), sigma(300 K) {sigma} (expt 2.3e-6); "
              f"Nd {n['N']['Nd']}, Na {n['N']['Na']}, Nt {n['N']['Nt']}; interphase order from Li: "
              f"{' -> '.join(n['interphase_order_from_li']) or 'none'}")
    _say(ctx, f"report: {result.report_md} (and report.html)")
