"""Run every CPU benchmark and write their Markdown sections into BENCHMARKS.md.

Each script measures its target as a ratio against a reference in the same run and prints its section, which
starts with the run's machine and date (:func:`_machine.machine_line`); this driver runs them one after another
(``make bench``) and replaces each script's section of BENCHMARKS.md (:func:`_machine.write_section`), so no
table is edited by hand. ``--no-write`` only collects them in ``bench/results.md``. ``bench/gpu_engine.py``
needs a GPU (``--device cuda``) and is not run here.

Usage: ``python bench/run_all.py [--only NAME ...] [--no-write]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine_line, write_section  # noqa: E402  (bench/ is a folder of scripts)

CPU_BENCHMARKS = ["coordination", "msd", "md_overhead", "bundled_model", "lipon_builder", "slabs", "interfaces",
                  "interphase", "campaign", "bench_structure", "bench_deposition"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=CPU_BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone (bench/results.md only)")
    args = parser.parse_args()
    names = args.only or CPU_BENCHMARKS
    header = f"# Benchmark run\n\n{machine_line()}\n"
    sections, failed = [header], []
    for name in names:
        print(f"== {name}", flush=True)
        proc = subprocess.run([sys.executable, str(HERE / f"{name}.py")], capture_output=True, text=True)
        if proc.returncode != 0:
            failed.append(name)
            sections.append(f"## {name}: FAILED\n\n```\n{proc.stderr[-2000:]}\n```\n")
        else:
            sections.append(proc.stdout)
            if not args.no_write:
                write_section(name, proc.stdout)
        print(proc.stdout[-1500:], flush=True)
    out = HERE / "results.md"
    out.write_text("\n".join(sections))
    print(f"sections written to {out}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
