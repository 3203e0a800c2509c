"""Run every CPU benchmark and collect their Markdown sections into ``bench/results.md``.

Each script measures its target as a ratio against a reference in the same run (see BENCHMARKS.md) and prints
its section; this driver runs them one after another (``make bench``), then you paste or diff the sections
into BENCHMARKS.md together with the machine and the date. ``bench/gpu_engine.py`` needs a GPU
(``--device cuda``) and is not run here.

Usage: ``python bench/run_all.py [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU_BENCHMARKS = ["coordination", "msd", "md_overhead", "bundled_model", "lipon_builder", "slabs", "interfaces",
                  "interphase", "campaign"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=CPU_BENCHMARKS, help="run only these benchmarks")
    args = parser.parse_args()
    names = args.only or CPU_BENCHMARKS
    header = (f"# Benchmark run {dt.date.today().isoformat()} on {platform.node()} "
              f"({platform.processor() or platform.machine()}, Python {platform.python_version()})\n")
    sections, failed = [header], []
    for name in names:
        print(f"== {name}", flush=True)
        proc = subprocess.run([sys.executable, str(HERE / f"{name}.py")], capture_output=True, text=True)
        if proc.returncode != 0:
            failed.append(name)
            sections.append(f"## {name}: FAILED\n\n```\n{proc.stderr[-2000:]}\n```\n")
        else:
            sections.append(proc.stdout)
        print(proc.stdout[-1500:], flush=True)
    out = HERE / "results.md"
    out.write_text("\n".join(sections))
    print(f"sections written to {out}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
