"""Benchmark: overhead of the MD engine over the bare potential — ``run_md`` steps vs energy+force calls.

A LiPON-like box (Li:P:O:N ≈ 2.9:1:3.3:0.46, 2.4 g/cm³, random packing with 1.6 Å minimum distance) of ~200
and ~1000 atoms, a randomly initialised "small" MACE (``build_random_mace``, float32), the same process:

- ``bare``: ``n`` energy+force evaluations (``calc.reset()`` before each, so nothing is cached);
- ``md``: ``run_md`` NVT (``--ensemble``, default Langevin) for ``n`` steps into a run directory with the
  production settings of the issue: trajectory every 10 steps, log every 10, guards every 10, checkpoint
  every 1000 (one checkpoint at step 0 and one at the end, as in any run).

Reported: seconds per evaluation / per step (best of ``--repeat``, bare and MD interleaved); the ratio MD/bare
of the loop (``steps_per_s`` excludes the start) against the separate bare timing; and, robust to load
changes on a shared machine, the wall time of the whole ``run_md`` call (start-up, first evaluation,
checkpoints and final files included) divided by the time spent inside the potential during that same run.
Goal: ratio ≤ 1.10. Because CPU MACE is slow, the
ratio alone says little about fast GPU potentials, so the same runs are repeated with a zero-cost
calculator: the difference MD − bare is the engine's own time per step (integrator, thermostat, sampling,
files, guards), which adds to any potential's cost.

Usage: ``python bench/md_overhead.py [--atoms 200 1000] [--steps 100] [--repeat 2] [--device cpu]``; prints a
Markdown section for BENCHMARKS.md.
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

import numpy as np

RATIO = {"Li": 2.9, "P": 1.0, "O": 3.3, "N": 0.46}
MASS = {"Li": 6.94, "P": 30.97, "O": 16.00, "N": 14.01}


def lipon_box(n_target: int, seed: int = 0, density_g_cm3: float = 2.4, min_dist_ang: float = 1.6):
    """Random LiPON-like box of about ``n_target`` atoms (cubic, periodic)."""
    from ase import Atoms

    total = sum(RATIO.values())
    counts = {el: max(1, round(n_target * r / total)) for el, r in RATIO.items()}
    symbols = [el for el, n in counts.items() for _ in range(n)]
    mass_g = sum(MASS[s] for s in symbols) / 6.02214076e23
    length = (mass_g / density_g_cm3 * 1e24) ** (1 / 3)
    rng = np.random.default_rng(seed)
    positions = np.empty((0, 3))
    for _ in symbols:
        for _attempt in range(10_000):
            trial = rng.uniform(0, length, 3)
            d = positions - trial
            d -= length * np.round(d / length)
            if len(d) == 0 or np.min(np.einsum("ij,ij->i", d, d)) > min_dist_ang**2:
                positions = np.vstack([positions, trial])
                break
        else:
            raise RuntimeError("could not pack the box; lower the density")
    order = rng.permutation(len(symbols))
    return Atoms([symbols[i] for i in order], positions=positions[order], cell=[length] * 3, pbc=True)


class NullCalculator:
    """Zero energy, forces and stress at no cost: ``run_md`` with it measures the engine's own time per step."""

    @staticmethod
    def make():
        from ase.calculators.calculator import Calculator, all_changes

        class _Null(Calculator):
            implemented_properties = ["energy", "free_energy", "forces", "stress"]

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                n = len(self.atoms)
                self.results = {"energy": 0.0, "free_energy": 0.0, "forces": np.zeros((n, 3)),
                                "stress": np.zeros(6)}

        return _Null()


def bare_seconds(atoms, calc, n: int) -> float:
    atoms = atoms.copy()
    atoms.calc = calc
    for _ in range(3):  # warm-up (graph construction, allocator)
        calc.reset()
        atoms.get_forces()
    start = time.perf_counter()
    for _ in range(n):
        calc.reset()
        atoms.get_potential_energy()
        atoms.get_forces()
    return (time.perf_counter() - start) / n


class TimedCalculator:
    """Wraps ``calc.calculate`` to add up the time spent in the potential (and count the calls)."""

    def __init__(self, calc) -> None:
        self.calc, self.seconds, self.calls = calc, 0.0, 0
        self._original = calc.calculate
        calc.calculate = self._timed

    def _timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._original(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    def restore(self) -> None:
        self.calc.calculate = self._original


def md_seconds(atoms, calc, n: int, ensemble: str, folder: Path, min_dist_ang: float = 0.3) -> dict[str, float]:
    """One ``run_md``: seconds per step of the loop and of the whole call, and seconds per potential call
    measured inside the same run (so that load changes on a shared machine cancel in the ratio)."""
    from tfbsim.workflows.md.config import MDConfig
    from tfbsim.workflows.md.run import run_md

    config = MDConfig(ensemble=ensemble, steps=n, timestep_fs=0.5, temperature_k=300, initial_temperature_k=300,
                      traj_every=10, log_every=10, guard_every=10, checkpoint_every=1000,
                      guard_max_force_ev_ang=1e4, guard_min_distance_ang=min_dist_ang, guard_t_factor=None)
    timer = TimedCalculator(calc)
    try:
        start = time.perf_counter()
        result = run_md(atoms, calc, config, folder)
        total = time.perf_counter() - start
    finally:
        timer.restore()
    per_call = timer.seconds / max(timer.calls, 1)
    return {"loop": 1.0 / result.steps_per_s, "total": total / n, "per_call": per_call,
            "in_run_ratio": total / timer.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ensemble", default="nvt-langevin")
    parser.add_argument("--preset", default="small")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from tfbsim.workflows.potentials.factory import load_potential
    from tfbsim.workflows.potentials.mace_backend import build_random_mace, import_mace

    torch = import_mace().torch
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "small.model"
        torch.save(build_random_mace(list(RATIO), preset=args.preset, r_max_ang=5.0, seed=0, dtype="float32"),
                   model_path)
        calc = load_potential(str(model_path), device=args.device, dtype="float32")
        for n_atoms in args.atoms:
            atoms = lipon_box(n_atoms)
            bare, md = [], []
            for k in range(args.repeat):
                bare.append(bare_seconds(atoms, calc, args.steps))
                md.append(md_seconds(atoms, calc, args.steps, args.ensemble, Path(tmp) / f"run-{n_atoms}-{k}"))
            b = min(bare)
            m = min(r["loop"] for r in md)
            t = min(r["total"] for r in md)
            in_run = min(r["in_run_ratio"] for r in md)
            null = NullCalculator.make()
            null_bare = min(bare_seconds(atoms, null, args.steps) for _ in range(args.repeat))
            # free flight: atoms may pass close to each other, so the distance guard runs with a tiny cutoff
            null_md = min(md_seconds(atoms, null, args.steps, args.ensemble, Path(tmp) / f"null-{n_atoms}-{k}",
                                     min_dist_ang=0.01)["loop"] for k in range(args.repeat))
            engine_us = (null_md - null_bare) * 1e6
            rows.append((len(atoms), b, m, t, m / b, in_run, engine_us))
            print(f"{len(atoms)} atoms: bare {b * 1e3:.1f} ms/eval, MD loop {m * 1e3:.1f} ms/step, whole run "
                  f"{t * 1e3:.1f} ms/step; MD/bare {m / b:.3f} (separate runs), {in_run:.3f} (whole run_md / time "
                  f"in the potential, same run); engine {engine_us:.0f} µs/step with a zero-cost potential",
                  flush=True)
    print()
    print("## MD engine overhead (issue 4)\n")
    print(f"{machine_line()} Device {args.device}, torch threads "
          f"{torch.get_num_threads()}. Random `{args.preset}` MACE (float32), "
          f"LiPON-like box, {args.ensemble}, {args.steps} steps, traj/log/guards every 10, checkpoint every 1000; "
          f"best of {args.repeat}. Command: `python bench/md_overhead.py`.\n")
    print("| atoms | bare E+F (ms/eval) | MD loop (ms/step) | whole run_md (ms/step) | MD/bare (separate runs) "
          "| MD/bare (same run) | engine alone (µs/step) |")
    print("|---|---|---|---|---|---|---|")
    for n, b, m, t, r1, r2, e in rows:
        print(f"| {n} | {b * 1e3:.1f} | {m * 1e3:.1f} | {t * 1e3:.1f} | {r1:.3f} | {r2:.3f} | {e:.0f} |")


if __name__ == "__main__":
    main()
