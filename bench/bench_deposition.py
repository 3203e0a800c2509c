"""Benchmark: Li vapour deposition onto a ~300-atom LiPON glass slab with the bundled model, on one thread.

System: ``lipon_slab("Li2.94PO3.50N0.31", 300)`` (motif builder, 14 × 14 Å² in-plane, 30 Å vacuum), relaxed for
``--relax-steps`` FIRE steps (timed separately). Deposition: ``--count`` Li (default 20) at 0.2 eV, normal
incidence, groups of 4, one group every 100 fs (flux 40 Li/ps), insertion 3 Å above the film top, substrate
Langevin at 300 K, 1 fs steps, 0.1 ps after the last group. Torch and BLAS run on **one thread**
(``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1``): the project's CPU sandboxes share their second core.

The rate is extrapolated to the issue's target (200 Li) at the same flux: the number of steps follows from the
schedule, and the cost of a step grows linearly with the atom count (MACE is local), so the measured seconds
per step at the measured mean atom count are scaled to the mean atom count of the long run.

Usage: ``OMP_NUM_THREADS=1 python bench/bench_deposition.py [--count 20] [--target 200]``; prints a Markdown
section with the machine, its load and the date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="Li atoms deposited in the measured run")
    parser.add_argument("--target", type=int, default=200, help="Li atoms of the extrapolated run")
    parser.add_argument("--substrate-atoms", type=int, default=300)
    parser.add_argument("--relax-steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (≤ free cores)")
    parser.add_argument("--timestep-fs", type=float, default=None, help="MD time step (default: DepositionConfig's)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from tfbsim.workflows.md.relax import relax
    from tfbsim.workflows.potentials.factory import load_potential
    from tfbsim.workflows.protocols.deposition import deposit
    from tfbsim.workflows.protocols.deposition_setup import lipon_slab

    load_before = os.getloadavg()
    calc = load_potential("bundled", device="cpu")
    slab = lipon_slab("Li2.94PO3.50N0.31", args.substrate_atoms, lateral_ang=14.0, vacuum_ang=30.0, seed=1)
    t0 = time.perf_counter()
    z = slab.positions[:, 2]
    slab.set_array("fixed", z <= z.min() + 3.0)
    slab = relax(slab, calc, fmax_ev_ang=0.1, max_steps=args.relax_steps, cell=False).atoms
    slab.calc = None
    relax_s = time.perf_counter() - t0
    cfg = dict(species="Li", count=args.count, group_size=4, energy_ev=0.2, flux_per_ps=40.0, clearance_ang=3.0,
               final_ps=0.1, temperature_k=300.0, seed=1, checkpoint_every=5)
    if args.timestep_fs is not None:
        cfg["timestep_fs"] = args.timestep_fs
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = deposit(slab, calc, cfg, os.path.join(tmp, "run"))
        wall = time.perf_counter() - t0
    s = result.summary
    steps = s["steps_done"]
    n0 = len(slab)
    mean_atoms = n0 + 0.5 * args.count
    per_step = wall / steps
    dt_fs = float(cfg.get("timestep_fs", 1.0))
    per_group = int(round(cfg["group_size"] / cfg["flux_per_ps"] * 1000.0 / dt_fs))  # steps between arrivals
    plan_steps = int(np.ceil(args.target / cfg["group_size"])) * per_group + int(round(cfg["final_ps"] * 1000 / dt_fs))
    long_mean = n0 + 0.5 * args.target
    long_s = plan_steps * per_step * long_mean / mean_atoms
    load_after = os.getloadavg()
    print(f"## Deposition benchmark ({datetime.date.today().isoformat()})\n")
    print(f"Machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} thread(s) used; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"torch {torch.__version__}\n")
    print("| quantity | value |\n|---|---|")
    print(f"| substrate | {n0} atoms LiPON glass, {args.relax_steps} FIRE steps in {relax_s:.0f} s |")
    print(f"| measured run | {s['n_sent']} Li in {steps} steps ({s['time_ps']:.2f} ps) in {wall:.0f} s |")
    print(f"| speed | {steps / wall:.2f} steps/s at {mean_atoms:.0f} atoms (mean), {per_step:.3f} s/step |")
    print(f"| rate | {s['n_sent'] / wall * 3600:.0f} Li per hour at 40 Li/ps |")
    print(f"| sticking | {s['n_joined']} joined, {s['n_reflected']} reflected |")
    print(f"| extrapolated: {args.target} Li | {plan_steps} steps, ~{long_s / 60:.0f} min "
          f"(~{long_s / 3600:.1f} h) on this machine |")


if __name__ == "__main__":
    main()
