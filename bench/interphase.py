"""Benchmark: interphase analysis frames per second on a ~3,000-atom Li/LiPON stack, and memory vs frames.

System: the six-block reference stack of the tests (Li | Li2O | Li3N | Li3P | γ-Li3PO4 | amorphous LiPON,
``tests/analysis/_interphase_models.py``) repeated 2 × 2 in-plane (3,068 atoms, 26 × 27.8 × 62 Å), with 0.1 Å
thermal noise per frame, 1 Å bins.

Compared in the same run against

- ``Coordination.run`` on the same frames (the speciation pass alone: neighbour search + N/O/P/Li classes);
- ``ase-loops``: a straightforward implementation of the same classes and profiles — ASE ``neighbor_list``
  with the same per-pair cutoffs, Python loops over atoms for the class rules, ``numpy.histogram`` per class
  (no speciation subtypes, no Li-metal second pass, no extent/layers/order, i.e. it does less).

Memory: peak traced allocations (tracemalloc) while analysing an H5MD file of 10 and of 100 frames.

Usage: ``python bench/interphase.py [--frames N]``; prints a Markdown section for BENCHMARKS.md.
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
import tracemalloc
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analysis"))

from _interphase_models import reference_stack  # noqa: E402
from tfbsim.analysis.coordination import Coordination  # noqa: E402
from tfbsim.analysis.environments import CLASSES, ENVIRONMENT_CUTOFFS_ANG  # noqa: E402
from tfbsim.analysis.interphase import Interphase  # noqa: E402


def frames(n: int, rng: np.random.Generator) -> list[Atoms]:
    base = reference_stack(seed=0).repeat((2, 2, 1))
    out = []
    for _ in range(n):
        a = base.copy()
        a.positions += rng.normal(0.0, 0.1, a.positions.shape)
        out.append(a)
    return out


def ase_loops(atoms: Atoms, n_bins: int) -> np.ndarray:
    """Naive reference: ASE neighbour list, per-atom Python rules, one histogram per class."""
    cut = {}
    for name, value in ENVIRONMENT_CUTOFFS_ANG.items():
        a, b = name.split("-")
        cut[(a, b)] = cut[(b, a)] = value
    i, j = neighbor_list("ij", atoms, cut)
    sym = atoms.get_chemical_symbols()
    nb = [dict() for _ in sym]
    for a, b in zip(i, j):
        nb[a][sym[b]] = nb[a].get(sym[b], 0) + 1
    labels = []
    for s, n in zip(sym, nb):
        li = n.get("Li", 0)
        if s == "Li":
            anions = sum(n.get(x, 0) for x in ("O", "N", "S", "P"))
            labels.append("Li_metal" if anions <= 1 and li >= 4 else "Li_ion")
        elif s == "O":
            labels.append("phosphate_O" if n.get("P") else "oxide_Co" if n.get("Co") else "NO_x" if n.get("N")
                          else "Li2O" if li >= 2 else "O_other")
        elif s == "N":
            labels.append("lipon_N" if n.get("P") else "NO_x" if n.get("O") else "Li3N" if li >= 2 else "N_other")
        elif s == "P":
            lig = n.get("O", 0) + n.get("N", 0) + n.get("S", 0)
            labels.append("phosphate_P" if lig >= 4 else "P_P" if n.get("P") else "reduced_P" if lig
                          else "Li3P" if li >= 2 else "P_other")
        else:
            labels.append("other")
    z = atoms.get_scaled_positions(wrap=True)[:, 2]
    labels = np.array(labels)
    return np.array([np.histogram(z[labels == c], bins=n_bins, range=(0, 1))[0] for c in CLASSES])


def rate(fn, n: int, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def peak_memory_mib(path: Path, n: int) -> float:
    tracemalloc.start()
    Interphase(str(path), frames=f":{n}").run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = frames(args.frames, rng)
    n_atoms = len(data[0])
    n_bins = Interphase(data[0]).n_bins
    r_ip = rate(lambda: Interphase(data).run(), len(data))
    r_co = rate(lambda: Coordination(data).run(), len(data))
    r_ase = rate(lambda: [ase_loops(a, n_bins) for a in data], len(data), repeat=1)

    from tfbsim.workflows.md.h5md import H5MDWriter

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traj.h5md"
        base = data[0]
        with H5MDWriter(path, base.numbers, regions=base.arrays["region"]) as writer:
            for k in range(100):
                noisy = base.positions + rng.normal(0, 0.1, base.positions.shape)
                writer.append(noisy, base.cell.array, k, 0.1 * k)
        mem10, mem100 = peak_memory_mib(path, 10), peak_memory_mib(path, 100)

    print("## Interphase composition (issue 9)\n")
    print(f"{machine_line()} "
          f"`python bench/interphase.py --frames {args.frames}`. Reference stack 2x2 in-plane ({n_atoms:,} atoms, "
          f"{n_bins} bins of 1 Å), 0.1 Å noise per frame; rates are the best of 3, all in the same run.\n")
    print("| tfbsim `Interphase.run` | tfbsim `Coordination.run` (same frames) "
          "| ASE nl + Python loops + histograms | speed-up vs loops |")
    print("|---|---|---|---|")
    print(f"| {r_ip:.1f} frames/s | {r_co:.1f} frames/s | {r_ase:.2f} frames/s | **{r_ip / r_ase:.0f}x** |\n")
    print(f"Interphase costs {r_co / r_ip:.2f}x a speciation pass (its neighbour search also covers Li-Li 3.2 Å, "
          "the largest cutoff). Memory (peak traced allocations, H5MD input): "
          f"10 frames {mem10:.1f} MiB, 100 frames {mem100:.1f} MiB (per-frame class counts per bin are kept: "
          "n_frames x 22 classes x n_bins int32).")


if __name__ == "__main__":
    main()
