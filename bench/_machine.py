"""The run's machine and date, and the writer of BENCHMARKS.md's sections (shared by every bench script).

Every number in BENCHMARKS.md comes from a script in this folder that ran on the machine its section names:
:func:`machine_line` says which (platform, CPU model, logical CPUs, load average at the start, Python, UTC
date and time), and :func:`write_section` replaces the script's section of BENCHMARKS.md (between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; appended when absent), so a table is never edited by
hand and never outlives the run that produced it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

__all__ = ["machine_line", "cpu_model", "write_section", "BENCHMARKS_MD"]

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_line() -> str:
    """``Machine: <platform>, <CPU>, <n> logical CPUs (load a/b/c), Python x.y.z; run <UTC date time>.``"""
    try:
        load = "load {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())
    except OSError:
        load = "load unknown"
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} logical CPUs ({load} at the start), "
            f"Python {platform.python_version()}; run {now}.")


def write_section(name: str, text: str, path: Path = BENCHMARKS_MD) -> Path:
    """Put ``text`` (a Markdown section) into ``path`` as the section of benchmark ``name``.

    Parameters
    ----------
    name
        The script's name (``msd`` for ``bench/msd.py``).
    text
        The section, as the script printed it.
    path
        BENCHMARKS.md.
    """
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), flags=re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:  # a section written before the markers existed: same heading, up to the next "## " heading
        heading = text.strip().splitlines()[0]
        old = re.compile(r"^" + re.escape(heading) + r"\n.*?(?=^## |\Z)", flags=re.S | re.M)
        if heading.startswith("## ") and old.search(current):
            updated = old.sub(lambda _: block + "\n\n", current, count=1)
        else:
            updated = current.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(updated)
    os.replace(tmp, path)
    return path
