"""Benchmark of the amorphous LiPON builder: motif mode vs random packing (the usual peer route), same run.

For each box size: wall time of ``build_lipon(mode="motif")`` and ``build_lipon(mode="random")`` (best of
``--repeats``), and the quality of the starting structure by the coordination analysis: fraction of P with
four O/N neighbours and the N speciation (Nd/Na) against the designed one.

Usage: ``python bench/lipon_builder.py [--repeats 2] [--sizes 200 500 1000]``; prints a Markdown section for
BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402  (bench/ is a folder of scripts)

import argparse
import datetime as _dt
import platform
import time

from tfbsim.analysis.coordination import Coordination
from tfbsim.structures.amorphous import build_lipon

COMPOSITIONS = ("Li2.94PO3.50N0.31", "Li2PO2N")


def _best(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _quality(atoms) -> tuple[float, float, float]:
    mean = Coordination(atoms).run().results.mean
    four = 1.0 - mean["P_undercoordinated"] - mean["P_overcoordinated"]
    return four, mean["Nd"], mean["Na"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000])
    args = parser.parse_args(argv)
    rows = []
    for comp in COMPOSITIONS:
        for n in args.sizes:
            t_motif, motif = _best(lambda: build_lipon(comp, n, seed=1), args.repeats)
            t_random, rand = _best(lambda: build_lipon(comp, n, seed=1, mode="random"), args.repeats)
            q_m, q_r = _quality(motif), _quality(rand)
            designed = motif.info["speciation_designed"]["N"]
            rows.append(
                f"| {comp} | {len(motif)} | {t_motif:.2f} | {t_random:.2f} | {t_random / t_motif:.1f}x | "
                f"{q_m[0]:.2f} / {q_r[0]:.2f} | {q_m[1]:.2f} / {q_r[1]:.2f} (designed {designed['Nd']:.2f}) | "
                f"{q_m[2]:.2f} / {q_r[2]:.2f} |"
            )
    text = "\n".join([
        "## Amorphous LiPON builder (issue 13)",
        "",
        f"{machine_line()} "
        f"`python bench/lipon_builder.py` (best of {args.repeats}, density 2.4 g/cm³, seed 1). Motif mode "
        "(rigid PO4/PO3N/PO2N2 units, void-guided placement, rigid-body overlap removal, Li into the largest "
        "voids) against random packing with minimum distances only (the route of peer generators), same run. "
        "Quality columns: motif / random, from `Coordination` with default cutoffs.",
        "",
        "| composition | atoms | motif (s) | random (s) | motif speed ratio | P four-coordinated | Nd | Na |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    print(text)
    return text


if __name__ == "__main__":
    main()
