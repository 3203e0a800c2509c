"""Benchmark tables carry the run's machine and date, and are written by the scripts (issue 22)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from _machine import machine_line, write_section  # noqa: E402

SCRIPTS = ["coordination", "msd", "md_overhead", "bundled_model", "lipon_builder", "slabs", "interfaces",
           "interphase", "campaign"]


def test_no_script_prints_a_fixed_date_and_all_state_the_machine():
    for name in SCRIPTS:
        text = (BENCH / f"{name}.py").read_text()
        assert not re.search(r"date 20\d\d-\d\d-\d\d", text), name
        assert "machine_line()" in text, name


def test_machine_line_names_platform_cpu_and_date():
    line = machine_line()
    assert line.startswith("Machine: ") and "logical CPUs" in line and re.search(r"run 20\d\d-\d\d-\d\d", line)


def test_write_section_replaces_its_own_section_only(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## MSD (bench/msd.py)\n\nold numbers\n\n## Other\n\nkeep\n")
    write_section("msd", "## MSD (bench/msd.py)\n\nnew 1\n", path)
    write_section("msd", "## MSD (bench/msd.py)\n\nnew 2\n", path)
    text = path.read_text()
    assert "old numbers" not in text and "new 1" not in text and text.count("new 2") == 1
    assert "## Other\n\nkeep" in text and text.count("<!-- bench:msd -->") == 1
