"""Benchmark: windowed MSD of 200 Li atoms over 10,000 frames — tfbsim vs MDAnalysis ``EinsteinMSD(fft=True)``.

Same data, same process, two inputs:

- ``h5md``: a tfbsim H5MD file (float32 positions, as MD runs write them); tfbsim streams it with
  :class:`~tfbsim.analysis.trajectory.Trajectory`, MDAnalysis reads it with its H5MD reader
  (:func:`tfbsim.analysis.h5md.open_universe`).
- ``memory``: an MDAnalysis ``MemoryReader`` Universe handed to both (isolates the MSD from file reading).

tfbsim runs its full pipeline (selection, unwrap check, centre-of-mass drift removal, FFT MSD over all origins,
GLS fit with jackknife errors); MDAnalysis computes only the MSD (no fit, no drift removal, no unwrapping).
Time: wall clock, best of ``--repeat`` runs. Memory: peak traced allocations (``tracemalloc``; numpy arrays
included, HDF5's internal C buffers not) in a separate pass so tracing does not distort the timing.

Usage: ``python bench/msd.py [--frames 10000] [--atoms 200] [--repeat 2]``; prints a Markdown section.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402  (bench/ is a folder of scripts)

import argparse
import gc
import logging
import platform
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np


def make_h5md(path: Path, n_frames: int, n_atoms: int, rng: np.random.Generator) -> np.ndarray:
    from tfbsim.workflows.md.h5md import H5MDWriter

    box = 20.0
    steps = rng.normal(0.0, np.sqrt(2 * 0.05 * 0.1), size=(n_frames, n_atoms, 3))  # D = 0.05 Å²/ps, 0.1 ps
    positions = rng.random((1, n_atoms, 3)) * box + np.cumsum(steps, axis=0)
    with H5MDWriter(path, np.full(n_atoms, 3), metadata={"temperature_k": 800.0}) as writer:
        for k in range(n_frames):
            writer.append(positions[k], np.eye(3) * box, 100 * k, 0.1 * k)
    return positions


def memory_universe(positions: np.ndarray):
    import MDAnalysis as mda
    from MDAnalysis.coordinates.memory import MemoryReader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe.empty(positions.shape[1], trajectory=False)
        u.add_TopologyAttr("names", ["Li"] * positions.shape[1])
        u.add_TopologyAttr("elements", ["Li"] * positions.shape[1])
        dims = np.tile([20.0, 20.0, 20.0, 90.0, 90.0, 90.0], (len(positions), 1))
        u.load_new(positions.astype(np.float32), format=MemoryReader, dt=0.1, dimensions=dims)
    return u


def run_tfbsim(source):
    from tfbsim.analysis.diffusion import DiffusionAnalysis

    return DiffusionAnalysis(source, species="Li").run().results


def run_mdanalysis(source):
    from MDAnalysis.analysis.msd import EinsteinMSD
    from tfbsim.analysis.h5md import open_universe

    u = open_universe(source) if isinstance(source, (str, Path)) else source
    return EinsteinMSD(u, select="name Li", msd_type="xyz", fft=True).run().results


def timed(fn, source, repeat: int) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn(source)
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_mib(fn, source) -> float:
    gc.collect()
    tracemalloc.start()
    fn(source)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--atoms", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traj.h5md"
        positions = make_h5md(path, args.frames, args.atoms, rng)
        sources = {"h5md": (path, path), "memory": (memory_universe(positions), memory_universe(positions))}
        for name, (ours_src, ref_src) in sources.items():
            t_ours, res = timed(run_tfbsim, ours_src, args.repeat)
            t_ref, ref = timed(run_mdanalysis, ref_src, args.repeat)
            m_ours, m_ref = peak_mib(run_tfbsim, ours_src), peak_mib(run_mdanalysis, ref_src)
            # same MSD? (checked on an untimed run without drift removal, which MDAnalysis does not do)
            from tfbsim.analysis.diffusion import DiffusionAnalysis

            plain = DiffusionAnalysis(ours_src, species="Li", remove_drift=False, unwrap=False).run().results
            rel = np.max(np.abs(plain.msd_ang2[1:] - ref.timeseries[1:]) / ref.timeseries[1:])
            rows.append((name, t_ours, t_ref, m_ours, m_ref, rel, res.D_cm2_s, res.D_stderr_cm2_s))
    print(f"## MSD (bench/msd.py)\n\n{machine_line()} "
          f"{args.frames:,} frames × {args.atoms} Li atoms (random walk, D = 5e-6 cm²/s); "
          f"best of {args.repeat}. tfbsim = full pipeline (read, unwrap check, drift removal, FFT MSD, GLS fit "
          "with jackknife errors); MDAnalysis = `EinsteinMSD(fft=True)` (MSD only). Memory = peak traced "
          "allocations (tracemalloc).\n")
    print("| input | tfbsim (s) | MDAnalysis (s) | speed ratio | tfbsim peak (MiB) | MDAnalysis peak (MiB) "
          "| memory ratio | max rel. MSD diff (no drift removal) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, t_o, t_r, m_o, m_r, rel, d, se in rows:
        print(f"| {name} | {t_o:.2f} | {t_r:.2f} | {t_r / t_o:.1f}× faster | {m_o:.0f} | {m_r:.0f} | "
              f"{m_o / m_r:.2f} | {rel:.1e} |")
    print(f"\nD from the tfbsim run: {rows[0][6]:.3g} ± {rows[0][7]:.2g} cm²/s (true 5e-06).")


if __name__ == "__main__":
    main()
