"""Benchmark: partial g(r) + neutron/X-ray G(r) and S(Q) on a 1,000-atom, 100-frame trajectory.

System: a 1,000-atom Li2.94PO3.50N0.31 motif glass from tfbsim's builder (``build_lipon``), 100 frames made by
independent Gaussian displacements (0.1 Å) of every atom; the frames are kept **in memory** (a list of Atoms)
for the timings, and written to a tfbsim **H5MD** file (the project's ``H5MDWriter``) for the memory test.

Compared in the same run:

- ``tfbsim``: ``Scattering(frames, dr_ang=0.02, q_max_inv_ang=20).run()`` over all 100 frames (periodic k-d
  tree pairs, one ``bincount`` for all element pairs, S(Q) by one matrix product per pair);
- ``ASE nl + numpy``: ASE ``neighbor_list`` pairs, one ``numpy.histogram`` per element pair, the same S(Q);
- ``double loop``: the plain reference - a Python double loop over atom pairs with a NumPy minimum-image
  distance and a per-pair histogram increment, then S(Q) with a Python loop over Q. It is timed on a
  **subset** (the first 150 atoms of 2 frames) and **extrapolated** to 1,000 atoms x 100 frames by the number
  of pairs (n (n - 1) / 2) and frames; the S(Q) part is timed in full once per frame.

Memory: peak traced allocations (tracemalloc) of ``Scattering(h5md).run()`` for 20 and 100 frames.
Usage: ``python bench/bench_structure.py [--frames 100]``; prints a Markdown section.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from ase import Atoms

from tfbsim.analysis.scattering import Scattering, max_r_ang, structure_factor

DR, QMAX = 0.02, 20.0


def make_frames(n_frames: int, rng: np.random.Generator) -> list[Atoms]:
    from tfbsim.structures.amorphous import build_lipon

    base = build_lipon("Li2.94PO3.50N0.31", 1000, seed=1)
    frames = []
    for _ in range(n_frames):
        atoms = base.copy()
        atoms.positions += rng.normal(0.0, 0.1, atoms.positions.shape)
        frames.append(atoms)
    return frames


def _sq_grid(r_max: float) -> np.ndarray:
    return np.arange(2 * np.pi / r_max, QMAX + 0.5 * 0.02, 0.02)


def ase_numpy(frames: list[Atoms], r_max: float) -> None:
    from ase.neighborlist import neighbor_list

    edges = np.arange(int(r_max / DR) + 1) * DR
    r = 0.5 * (edges[1:] + edges[:-1])
    q = _sq_grid(r_max)
    sym = np.array(frames[0].get_chemical_symbols())
    elements = sorted(set(sym))
    acc = {}
    for atoms in frames:
        i, j, d = neighbor_list("ijd", atoms, r_max)
        for a in elements:
            for b in elements:
                m = (sym[i] == a) & (sym[j] == b)
                acc[(a, b)] = acc.get((a, b), 0) + np.histogram(d[m], bins=edges)[0]
    rho = len(sym) / frames[0].get_volume()
    for h in acc.values():
        structure_factor(r, 1.0 + 0 * h, rho, q)


def double_loop(atoms: Atoms, n_sub: int, r_max: float) -> float:
    """Seconds for the pair loop over the first ``n_sub`` atoms (the reference's dominant cost)."""
    pos = atoms.positions[:n_sub]
    sym = atoms.get_chemical_symbols()[:n_sub]
    lengths = np.diag(atoms.cell.array)
    n_bins = int(np.ceil(r_max / DR)) + 1
    hist: dict[tuple[str, str], np.ndarray] = {}
    start = time.perf_counter()
    for i in range(n_sub):
        for j in range(i + 1, n_sub):
            d = pos[j] - pos[i]
            d -= lengths * np.round(d / lengths)
            dist = float(np.sqrt(d @ d))
            if dist < r_max:
                key = (sym[i], sym[j]) if sym[i] <= sym[j] else (sym[j], sym[i])
                hist.setdefault(key, np.zeros(n_bins))[int(dist / DR)] += 1
    return time.perf_counter() - start


def loop_sq(r_max: float, n_pairs: int) -> float:
    """Seconds for S(Q) of ``n_pairs`` partials with a Python loop over Q (NumPy over r)."""
    r = np.arange(0.5 * DR, r_max, DR)
    g = np.ones_like(r)
    start = time.perf_counter()
    for _ in range(n_pairs):
        for qv in _sq_grid(r_max):
            np.sum(r**2 * (g - 1) * np.sin(qv * r) / (qv * r) * np.sinc(r / r_max)) * DR
    return time.perf_counter() - start


def _peak_mib(path: Path) -> float:
    tracemalloc.start()
    Scattering(path, dr_ang=DR, q_max_inv_ang=QMAX).run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--subset-atoms", type=int, default=150)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    frames = make_frames(args.frames, rng)
    n = len(frames[0])
    r_max = min(max_r_ang(frames[0].cell.array), 20.0)
    Scattering(frames[:1], dr_ang=DR, q_max_inv_ang=QMAX).run()  # warm-up (imports)

    start = time.perf_counter()
    res = Scattering(frames, dr_ang=DR, q_max_inv_ang=QMAX).run().results
    t_ours = time.perf_counter() - start
    n_ase = max(2, args.frames // 20)
    start = time.perf_counter()
    ase_numpy(frames[:n_ase], r_max)
    t_ase = (time.perf_counter() - start) * args.frames / n_ase
    m = args.subset_atoms
    t_sub = min(double_loop(frames[k], m, r_max) for k in range(2))
    n_pairs_el = len(res.g_partial)
    t_loop = (t_sub * (n * (n - 1)) / (m * (m - 1)) + loop_sq(r_max, n_pairs_el) / args.frames) * args.frames

    peaks = {}
    from tfbsim.workflows.md.h5md import H5MDWriter

    with tempfile.TemporaryDirectory() as tmp:
        for n_frames in (20, 100):
            path = Path(tmp) / f"t{n_frames}.h5md"
            with H5MDWriter(path, frames[0].numbers, precision="float32") as writer:
                for k in range(n_frames):
                    atoms = frames[k % len(frames)]
                    writer.append(atoms.positions, atoms.cell.array, k, 0.01 * k)
            peaks[n_frames] = _peak_mib(path)

    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "## Diffraction-level structure: g_ab(r), G(r), S(Q) (issue 20)",
        "",
        f"Machine: {platform.platform()}, {_cpu()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}; date {now}. `python bench/bench_structure.py`. {n}-atom "
        f"Li2.94PO3.50N0.31 builder glass, {args.frames} frames of 0.1 Å random displacements (in memory); "
        f"r_max {res.r_max_ang:.2f} Å (half the box), dr {DR} Å, Q {res.q_inv_ang[0]:.2f}-{QMAX:g} Å^-1, "
        f"{n_pairs_el} element pairs, neutron + X-ray totals.",
        "",
        "| implementation | time for all frames | per frame | speed-up of tfbsim |",
        "|---|---|---|---|",
        f"| tfbsim `Scattering.run` | {t_ours:.2f} s | {1000 * t_ours / args.frames:.0f} ms | 1x |",
        f"| ASE `neighbor_list` + numpy histograms (timed on {n_ase} frames, scaled) | {t_ase:.1f} s | "
        f"{1000 * t_ase / args.frames:.0f} ms | **{t_ase / t_ours:.0f}x** |",
        f"| Python double loop + numpy (timed on {m} atoms x 2 frames, extrapolated by pairs) | {t_loop:.0f} s | "
        f"{t_loop / args.frames:.1f} s | **{t_loop / t_ours:.0f}x** |",
        "",
        f"Memory (peak traced allocations of `Scattering(traj.h5md).run()`): 20 frames {peaks[20]:.1f} MiB, "
        f"100 frames {peaks[100]:.1f} MiB (flat: one histogram per element pair is kept).",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
