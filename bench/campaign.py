"""Benchmark: what running a campaign through Parsl costs over calling the task function in a loop.

The tiny test campaign (Li2O built, Li3N from a file; 3 temperatures; a random-weight tiny MACE in float64;
``--steps`` production steps per task), three ways in the same process and run:

- ``loop``: :func:`tfbsim.workflows.campaigns.worker.run_campaign_task` for every task, one after the other,
  in this process (no Parsl, no database, no report) — the reference;
- ``parsl 1 worker`` and ``parsl 2 workers``: :func:`tfbsim.workflows.campaigns.driver.run_campaign` with the local
  HighThroughputExecutor (interchange and worker start-up, per-worker imports, database writes, Arrhenius
  fits, summary and plots included);
- ``re-run``: the same command once everything is finished (all tasks skipped; what a user waits for when
  re-running a finished campaign).

Usage: ``python bench/campaign.py [--steps 150]``; prints a Markdown section for BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402  (bench/ is a folder of scripts)

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path


def _write_campaign(folder: Path, model: Path, steps: int, workers: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _campaign_util import write_tiny_campaign

    return write_tiny_campaign(folder, model, production_steps=steps, workers=workers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()

    from tfbsim.workflows.campaigns.config import load_campaign
    from tfbsim.workflows.campaigns.driver import run_campaign
    from tfbsim.workflows.campaigns.tasks import expand_campaign
    from tfbsim.workflows.campaigns.worker import run_campaign_prepare, run_campaign_task
    from tfbsim.workflows.potentials.mace_backend import build_random_mace, import_mace

    root = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    torch = import_mace().torch
    model = root / "tiny.model"
    torch.save(build_random_mace(["Li", "N", "O", "P", "S", "Co"], preset="tiny", r_max_ang=4.5, seed=1,
                                 dtype="float64"), model)
    times: dict[str, float] = {}

    # reference: the plain function in a loop (structures and preparation as the driver would make them)
    path = _write_campaign(root / "loop", model, args.steps, 1)
    cfg = load_campaign(path)
    plan = expand_campaign(cfg)
    from tfbsim.structures.io import write_structure
    from tfbsim.workflows.campaigns.driver import _prepare_structures

    t0 = time.perf_counter()
    for key, atoms in _prepare_structures(plan, cfg).items():
        write_structure(plan.structures[key]["path"], atoms)
    for unit in plan.preps:
        assert run_campaign_prepare({**unit.spec, "threads_per_task": 1})["status"] == "completed"
    for task in plan.tasks:
        assert run_campaign_task({**task.spec, "threads_per_task": 1})["status"] == "completed"
    times["loop"] = time.perf_counter() - t0

    for workers in (1, 2):
        path = _write_campaign(root / f"parsl{workers}", model, args.steps, workers)
        t0 = time.perf_counter()
        result = run_campaign(path)
        times[f"parsl {workers} worker{'s' if workers > 1 else ''}"] = time.perf_counter() - t0
        assert result.ok
    t0 = time.perf_counter()
    result = run_campaign(path)
    times["re-run (all skipped)"] = time.perf_counter() - t0
    assert result.skipped == 6 and result.submitted == 0

    ref = times["loop"]
    print("## Campaign overhead (issue 10)\n")
    print(f"{machine_line()} "
          f"`python bench/campaign.py --steps {args.steps}`. The tiny test campaign "
          f"(6 tasks: Li2O 12 atoms, Li3N 16 atoms, 3 temperatures, 20 + {args.steps} MD steps each, tiny MACE "
          "float64, diffusion analysis per task), in one run: the task function in a loop in this process "
          "(reference) vs `run_campaign` through Parsl's local HighThroughputExecutor (start-up, worker imports, "
          "database, Arrhenius fits, summary and plots included).\n")
    print("| way | wall (s) | vs loop |")
    print("|---|---:|---:|")
    for name, value in times.items():
        print(f"| {name} | {value:.1f} | {value / ref:.2f}× |")


if __name__ == "__main__":
    main()
