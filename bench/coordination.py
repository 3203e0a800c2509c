"""Benchmark: coordination/speciation frames per second on ~1,000-atom frames, and memory vs number of frames.

Compared in the same run against

- ``ase-loops``: a straightforward implementation of the same counts — ASE ``neighbor_list`` with the same
  per-pair cutoffs, then Python loops over atoms and their neighbours for the N/O classes, P CN and Qn, Li
  polyhedra, and a union-find for phosphate clusters (no periodic-wrap detection, i.e. it does less);
- ``ase-nl+numpy``: ASE ``neighbor_list`` followed by our vectorised classification (isolates the cost of
  the neighbour search).

Systems: SD-Li2PO2N 7x3x2 supercell (1,008 atoms, every P in an infinite chain: the worst case of the
cluster search) and a random Li-P-O-N box (1,000 atoms, LiPON density), both with 0.1 Å thermal noise per frame.
Memory: peak traced allocations (tracemalloc) while analysing an H5MD file of 10 and of 100 frames.

Usage: ``python bench/coordination.py [--frames N]``; prints a Markdown section for BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402  (bench/ is a folder of scripts)

import argparse
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list
from tfbsim.analysis.coordination import Coordination
from tfbsim.analysis.neighbours import bonds
from tfbsim.analysis.speciation import classify_bonds, speciation_cutoffs


def li2po2n_frames(n_frames: int, rng: np.random.Generator) -> list[Atoms]:
    from tfbsim.structures.crystals import build_crystal

    base = build_crystal("li2po2n") * (7, 3, 2)
    return [_jitter(base, rng) for _ in range(n_frames)]


def random_frames(n_frames: int, rng: np.random.Generator) -> list[Atoms]:
    symbols = ["Li"] * 380 + ["P"] * 130 + ["O"] * 430 + ["N"] * 60
    length = (1000 * 11.0) ** (1 / 3)  # ~11 Å^3 per atom, about 2.5 g/cm^3 for LiPON
    base = Atoms(symbols, positions=rng.random((1000, 3)) * length, cell=[length] * 3, pbc=True)
    return [_jitter(base, rng) for _ in range(n_frames)]


def _jitter(atoms: Atoms, rng: np.random.Generator) -> Atoms:
    out = atoms.copy()
    out.positions += rng.normal(0.0, 0.1, out.positions.shape)
    return out


def reference_counts(atoms: Atoms, table: dict[str, float]) -> dict:
    """The straightforward version: ASE neighbour list, then plain Python over atoms and neighbours."""
    cut = {}
    for name, value in table.items():
        a, b = name.split("-")
        cut[(atomic_numbers[a], atomic_numbers[b])] = value
    i, j = neighbor_list("ij", atoms, cut)
    sym = atoms.get_chemical_symbols()
    neigh: list[list[int]] = [[] for _ in sym]
    for a, b in zip(i.tolist(), j.tolist()):
        neigh[a].append(b)
    n_p = [sum(1 for b in nb if sym[b] == "P") for nb in neigh]
    n_cls, o_cls, q_cls, poly = {}, {}, {}, {}
    parent = list(range(len(sym)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, s in enumerate(sym):
        if s == "N":
            key = ("N0", "Na", "Nd", "Nt", "N_over")[min(n_p[a], 4)]
            n_cls[key] = n_cls.get(key, 0) + 1
        elif s == "O":
            key = ("O0", "Onb", "Ob", "O_over")[min(n_p[a], 3)]
            o_cls[key] = o_cls.get(key, 0) + 1
        elif s == "P":
            anions = [b for b in neigh[a] if sym[b] in ("O", "N")]
            q = sum(1 for b in anions if n_p[b] >= 2)
            q_cls[q] = q_cls.get(q, 0) + 1
            for b in anions:
                if n_p[b] >= 2:
                    for c in neigh[b]:
                        if sym[c] == "P":
                            parent[find(c)] = find(a)
        elif s == "Li":
            counts = {el: sum(1 for b in neigh[a] if sym[b] == el) for el in ("O", "N", "S")}
            ranked = sorted(counts.items(), key=lambda kv: -kv[1])
            label = "".join(f"{el}{n if n > 1 else ''}" for el, n in ranked if n)
            poly[label] = poly.get(label, 0) + 1
    sizes: dict[int, int] = {}
    for a, s in enumerate(sym):
        if s == "P":
            root = find(a)
            sizes[root] = sizes.get(root, 0) + 1
    return {"N": n_cls, "O": o_cls, "Q": q_cls, "Li": poly, "clusters": sizes}


def ase_numpy_counts(atoms: Atoms, table: dict[str, float]) -> None:
    """ASE neighbour list + our vectorised classification (to isolate the neighbour-search cost)."""
    from tfbsim.analysis.neighbours import BondList

    cut = {(atomic_numbers[n.split("-")[0]], atomic_numbers[n.split("-")[1]]): v for n, v in table.items()}
    i, j, shifts, d = neighbor_list("ijSd", atoms, cut)
    keep = i < j
    bl = BondList(i[keep], j[keep], shifts[keep], d[keep], np.array(atoms.get_chemical_symbols()), {})
    classify_bonds(bl)


def _rate(fn, frames, repeats: int = 3) -> float:
    """Best of ``repeats`` frames-per-second measurements (the sandbox's cores are shared)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn(frames)
        best = max(best, len(frames) / (time.perf_counter() - start))
    return best


def _peak_mib(path: Path) -> float:
    tracemalloc.start()
    Coordination(path).run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="frames per timing (the reference gets a quarter)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    table = speciation_cutoffs()
    lines = [
        "## Coordination / speciation (issue 5)",
        "",
        f"{machine_line()} "
        "`python bench/coordination.py`. Frames per second of the full N/O/P/Li/cluster speciation on "
        "~1,000-atom periodic frames; every rate is the best of 3 and measured in the same run.",
        "",
        "| system | tfbsim `Coordination.run` | tfbsim bonds + classify | ASE nl + numpy classify "
        "| ASE nl + Python loops | speed-up vs loops |",
        "|---|---|---|---|---|---|",
    ]
    for name, maker in (("SD-Li2PO2N 7x3x2 (1,008 atoms, chains)", li2po2n_frames),
                        ("random Li-P-O-N box (1,000 atoms)", random_frames)):
        frames = maker(args.frames, rng)
        ref_frames = frames[: max(2, args.frames // 4)]
        Coordination(frames[:2]).run()  # warm-up (imports)
        ours = _rate(lambda fs: Coordination(fs).run(), frames)
        core = _rate(lambda fs: [classify_bonds(bonds(a, table)) for a in fs], frames)
        mixed = _rate(lambda fs: [ase_numpy_counts(a, table) for a in fs], ref_frames)
        ref = _rate(lambda fs: [reference_counts(a, table) for a in fs], ref_frames)
        lines.append(f"| {name} | {ours:.0f} frames/s | {core:.0f} frames/s | {mixed:.0f} frames/s | "
                     f"{ref:.1f} frames/s | **{ours / ref:.0f}x** |")

    from tfbsim.workflows.md.h5md import H5MDWriter

    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = li2po2n_frames(1, rng)[0]
        for n_frames in (10, 100):
            path = Path(tmp) / f"t{n_frames}.h5md"
            with H5MDWriter(path, base.numbers, precision="float32") as writer:
                for k in range(n_frames):
                    writer.append(_jitter(base, rng).positions, base.cell.array, k, 0.001 * k)
            peaks[n_frames] = _peak_mib(path)
    lines += [
        "",
        f"Memory (peak traced allocations while analysing an H5MD file of 1,008-atom frames): 10 frames "
        f"{peaks[10]:.1f} MiB, 100 frames {peaks[100]:.1f} MiB (flat: only per-frame scalars are kept).",
        "",
        "The reference (ASE `neighbor_list` + Python loops) does less: no periodic-wrap detection for infinite "
        "chains. Column 4 shows where the gain comes from: ASE's `neighbor_list` with per-pair cutoffs alone is "
        "already an order of magnitude slower than the whole tfbsim pass (MDAnalysis' C grid search plus "
        "vectorised bookkeeping); the Python loops add the rest. `Coordination.run` adds frame reading and the "
        "per-frame statistics to column 3.",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
