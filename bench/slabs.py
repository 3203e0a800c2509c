"""Benchmark: termination enumeration of the 13 facets of issue 3, tfbsim vs the plain pymatgen route.

tfbsim = ``slab_terminations`` (primitive-cell cut, own vacuum-gap centring, formal-charge dipoles, spglib
symmetry, broken-polyhedra count, Tasker-III compensation). Reference = what one would write with pymatgen
directly: ``SlabGenerator(conventional bulk, center_slab=True, primitive=True, lll_reduce=True).get_slabs()`` and
``Slab.is_symmetric()`` for each slab (no dipoles, no compensation). Both run in the same process on the same
bulk cells; times are the best of ``--repeats``.

Usage: ``python bench/slabs.py [--thickness-ang 12] [--repeats 2]``; prints a Markdown section for BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402  (bench/ is a folder of scripts)

import argparse
import platform
import time
from functools import partial

import numpy as np
from tfbsim.structures.crystals import build_crystal
from tfbsim.structures.slabs import slab_terminations

FACETS = [
    ("licoo2", (0, 0, 3)), ("licoo2", (1, 0, 4)), ("licoo2", (1, 1, 0)), ("licoo2", (1, 0, 1)),
    ("li", (1, 0, 0)), ("li", (1, 1, 0)),
    ("li2s", (1, 1, 1)), ("li2s", (1, 1, 0)), ("li2s", (1, 0, 0)),
    ("li3po4", (0, 1, 0)), ("li2o", (1, 1, 1)), ("li3n", (0, 0, 1)), ("li3p", (0, 0, 1)),
]


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _pymatgen(bulk, hkl, thickness):
    from pymatgen.core.surface import SlabGenerator
    from pymatgen.io.ase import AseAtomsAdaptor

    gen = SlabGenerator(AseAtomsAdaptor.get_structure(bulk), hkl, thickness, 10.0, center_slab=True,
                        primitive=True, lll_reduce=True)
    slabs = gen.get_slabs()
    return [(s, s.is_symmetric()) for s in slabs]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser()
    parser.add_argument("--thickness-ang", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    rows, t_ours, t_ref = [], 0.0, 0.0
    for name, hkl in FACETS:
        bulk = build_crystal(name)
        t1, terms = _best(partial(slab_terminations, bulk, hkl, thickness_ang=args.thickness_ang), args.repeats)
        t2, ref = _best(partial(_pymatgen, bulk, hkl, args.thickness_ang), args.repeats)
        t_ours, t_ref = t_ours + t1, t_ref + t2
        rec = next(t for t in terms if t.recommended)
        ref_area = min(float(s.surface_area) for s, _ in ref)
        ref_good = any(sym for _, sym in ref)
        rows.append(
            f"| {name} ({''.join(map(str, hkl))}) | {t1:.2f} | {t2:.2f} | {t2 / t1:.1f}x | {len(terms)} | "
            f"{len(ref)} | "
            f"{'sym+stoich' if rec.symmetric and rec.stoichiometric else 'other'}"
            f"{' (compensated)' if rec.reconstruction else ''} | {'yes' if ref_good else 'no'} | "
            f"{rec.area_ang2:.1f} | {ref_area:.1f} |"
        )
    head = (
        "## Slab terminations (issue 3)\n\n"
        f"{machine_line()} "
        f"`python bench/slabs.py` (thickness {args.thickness_ang:g} Å, best of {args.repeats}). Time to enumerate "
        "and characterise every termination of a facet: tfbsim `slab_terminations` vs the plain pymatgen route "
        "(`SlabGenerator(..., center_slab=True, primitive=True).get_slabs()` + `Slab.is_symmetric()`), same run, "
        "same bulk cells. 'symmetric found' says whether the plain route offers any symmetric slab; areas are the "
        "smallest surface cell each route returns (Å²).\n\n"
        "| facet | tfbsim (s) | pymatgen (s) | speed ratio | tfbsim terminations | pymatgen terminations | "
        "tfbsim default | pymatgen: symmetric found | tfbsim area | pymatgen area |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    foot = (
        f"\nTotal: tfbsim {t_ours:.1f} s, pymatgen {t_ref:.1f} s (**{t_ref / t_ours:.1f}x**). The gain comes from "
        "cutting the primitive cell (LiCoO2's hexagonal cell holds three formula units per layer) and from "
        "replacing pymatgen's neighbour-list slab centring by a vacuum-gap unwrap; tfbsim does more per "
        "termination (dipole, spglib symmetry, polyhedra, Tasker-III compensation).\n"
    )
    return head + "\n".join(rows) + "\n" + foot


if __name__ == "__main__":
    print(main())
