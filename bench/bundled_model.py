"""Benchmark: the bundled model against its teacher (CHGNet) — MD steps per second.

Same process, same relaxed amorphous Li2.94PO3.50N0.31 boxes (motif builder, ~200 and ~1,000 atoms), float32,
NVT Langevin at 300 K, 1 fs, trajectory, log and guards every 10 steps into a temporary run directory
(``run_md``, the production path; the MD loop's rate, start-up excluded). The teacher is the reference: the
ratio is what distillation buys. The issue's target is ≥ 20 steps/s at 200 atoms on 2 CPU cores.

Usage: ``python bench/bundled_model.py [--sizes 200 1000] [--steps 60] [--teacher-steps 6] [--threads 2]``;
prints a Markdown section for BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402  (bench/ is a folder of scripts)

import argparse
import logging
import platform
import tempfile
import time
from pathlib import Path


def _rate(calc, atoms, steps: int) -> float:
    from tfbsim.workflows.md.config import MDConfig
    from tfbsim.workflows.md.run import run_md

    config = MDConfig(ensemble="nvt-langevin", steps=steps, timestep_fs=1.0, temperature_k=300.0, traj_every=10,
                      checkpoint_every=10 * steps, log_every=10, seed=3, initial_temperature_k=300.0,
                      guard_t_factor=10.0)
    run_md(atoms, calc, config.model_copy(update={"steps": 2}))  # warm-up (first-call overheads)
    with tempfile.TemporaryDirectory(prefix="tfbsim-bench-") as tmp:
        return float(run_md(atoms, calc, config, Path(tmp) / "run").steps_per_s)  # the loop, start-up excluded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--steps", type=int, default=60, help="MD steps per bundled-model timing")
    parser.add_argument("--teacher-steps", type=int, default=6, help="MD steps per teacher timing")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch
    from tfbsim.structures.amorphous import build_lipon
    from tfbsim.workflows.md.relax import relax
    from tfbsim.workflows.potentials.factory import load_potential

    torch.set_num_threads(args.threads)
    model = load_potential("bundled", dtype="float32")
    teacher = load_potential("chgnet", dtype="float32")
    rows = []
    for n in args.sizes:
        atoms = build_lipon("Li2.94PO3.50N0.31", n, seed=3)
        atoms = relax(atoms, model, fmax_ev_ang=0.5, max_steps=60, cell=False).atoms
        fast = _rate(model, atoms, args.steps)
        slow = _rate(teacher, atoms, args.teacher_steps)
        rows.append((len(atoms), fast, slow))
    print(f"## Bundled model vs teacher (issue 7)\n\n{machine_line()} "
          f"{args.threads} torch threads. "
          f"`python bench/bundled_model.py`. MD steps/s (run_md, NVT Langevin, float32), same boxes, same run.\n")
    print("| atoms | bundled (steps/s) | CHGNet teacher (steps/s) | speed-up |")
    print("|---|---|---|---|")
    for n, fast, slow in rows:
        print(f"| {n} | {fast:.1f} | {slow:.2f} | **{fast / slow:.0f}x** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
