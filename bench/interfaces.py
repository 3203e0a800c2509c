"""Benchmark: interface building (issue 8) — the ~1,500-atom Li/LiPON/LCO cell and the ZSL search.

1. ``build_interface("li:100,lipon,licoo2:104", thickness 12/20/15 Å, lateral ≥ 16 Å, 15 Å vacuum)`` against the
   reference of building its glass alone (``build_lipon`` with the same atom count on the same lateral cell),
   in the same run: the ratio says what slab cutting, lattice matching and stacking add to the glass build.
2. The ZSL search of Li (100) on Li2O (111): tfbsim's NumPy comparison of the pymatgen transformation sets
   against pymatgen's own ``ZSLGenerator`` loop (pure Python without numba), same tolerances, same run.

Usage: ``python bench/interfaces.py [--repeats 2] [--max-area-ang2 300]``; prints a Markdown section.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402  (bench/ is a folder of scripts)

import argparse
import platform
import time

import numpy as np
from tfbsim.interfaces.builder import build_interface
from tfbsim.interfaces.matching import _zsl_candidates, strain_pct
from tfbsim.structures.amorphous import build_lipon
from tfbsim.structures.crystals import build_crystal
from tfbsim.structures.slabs import make_slab


def _best(fn, repeats: int):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _pymatgen_zsl(film, substrate, max_strain, max_area):
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator

    tol = max_strain / 100
    gen = ZSLGenerator(max_area_ratio_tol=(1 + tol) ** 2 - 1 + 1e-3, max_area=max_area, max_length_tol=tol,
                       max_angle_tol=tol, bidirectional=True)
    keys = set()
    pad = np.zeros((2, 1))
    for m in gen(np.hstack([film, pad]), np.hstack([substrate, pad])):
        fs, ss = np.asarray(m.film_sl_vectors)[:, :2], np.asarray(m.substrate_sl_vectors)[:, :2]
        if np.linalg.det(fs) * np.linalg.det(ss) < 0:
            continue
        if np.linalg.det(fs) < 0:
            fs, ss = fs[::-1], ss[::-1]
        if strain_pct(fs, ss)[1] <= max_strain:
            keys.add(round(abs(np.linalg.det(ss)), 3))
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-area-ang2", type=float, default=300.0)
    args = parser.parse_args()

    t_cell, (atoms, report) = _best(lambda: build_interface(
        "li:100,lipon,licoo2:104", thickness_ang=[12.0, 20.0, 15.0], lateral_min_ang=16.0, vacuum_ang=15.0), args.repeats)
    glass = next(e for e in report["stack"] if e["region"] == "lipon")
    t_glass, _ = _best(lambda: build_lipon("Li2.94PO3.50N0.31", glass["n_atoms"],
                                           lateral_cell_ang=np.array(report["lateral_cell_ang"]), seed=1), args.repeats)

    def base(name, hkl):
        slab = make_slab(build_crystal(name), hkl, thickness_ang=6.0, vacuum_ang=0.0, orthogonal=False)
        return np.asarray(slab.cell[:2, :2])

    film, substrate = base("li", (1, 0, 0)), base("li2o", (1, 1, 1))
    t_ours, ours = _best(lambda: _zsl_candidates(film, substrate, 5.0, args.max_area_ang2), args.repeats)
    t_pmg, theirs = _best(lambda: _pymatgen_zsl(film, substrate, 5.0, args.max_area_ang2), 1)
    same = {round(c["area"], 3) for c in ours} == theirs

    print("## Interfaces (issue 8)\n")
    print(f"{machine_line()} "
          f"`python bench/interfaces.py` (best of {args.repeats}; pymatgen loop run once).\n")
    print("| task | tfbsim (s) | reference (s) | ratio |")
    print("|---|---|---|---|")
    print(f"| Li(100)/LiPON/LCO(104) cell, {len(atoms)} atoms ({glass['n_atoms']} glass), lateral "
          f"{report['lateral_widths_ang'][0]:.1f} Å, vacuum 15 Å | {t_cell:.2f} | glass alone {t_glass:.2f} | "
          f"{t_cell / t_glass:.1f}x the glass build |")
    print(f"| ZSL Li(100) on Li2O(111), 5 %, ≤ {args.max_area_ang2:.0f} Å² ({len(ours)} distinct lattices, "
          f"same as pymatgen: {same}) | {t_ours:.2f} | pymatgen loop {t_pmg:.2f} | **{t_pmg / t_ours:.0f}x** faster |")
    strained = [e for e in report["stack"] if e["max_strain_pct"] > 0]
    regions = ", ".join(f"{e['region']} {e['n_atoms']}" for e in report["stack"])
    components = ", ".join(f"{v:+.2f}" for v in strained[0]["strain_pct"])
    print(f"\nThe cell: {regions} atoms; strain carried by {strained[0]['region']} ({components} % exx eyy exy); "
          f"min cross-interface distance {report['min_cross_distance_ang']:.2f} Å.")


if __name__ == "__main__":
    main()
