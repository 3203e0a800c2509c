"""Progress lines of long stages on the `tfbsim.progress` logger: MD runs, relaxations, the CLI and --quiet."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest
from _md_util import TestEMT, cu_small
from ase.build import bulk

from tfbsim.cli import app
from tfbsim.structures.io import write_structure
from tfbsim.workflows.md import progress as progress_module
from tfbsim.workflows.md.config import MDConfig
from tfbsim.workflows.md.progress import ProgressReporter, default_interval_s, format_duration
from tfbsim.workflows.md.relax import relax
from tfbsim.workflows.md.run import run_md

MD_LINE = re.compile(r"^MD nvt-bussi run: step (\d+)/60 \(\d+\.\d%\), T \d+ K, [\d.e+]+ steps/s, ETA \d+s$")


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tfbsim.progress"]


@pytest.fixture
def every_event(monkeypatch):
    """A progress line at every opportunity."""
    monkeypatch.setenv("TFBSIM_PROGRESS_S", "0")


def test_md_run_reports_step_temperature_rate_and_eta(tmp_path, caplog, every_event):
    config = MDConfig(ensemble="nvt-bussi", steps=60, timestep_fs=2.0, temperature_k=300, initial_temperature_k=300,
                      log_every=10, traj_every=30, checkpoint_every=30, seed=1)
    with caplog.at_level(logging.INFO, logger="tfbsim.progress"):
        run_md(cu_small(), TestEMT(), config, tmp_path / "run", progress=True)
    lines = _lines(caplog)
    periodic = [line for line in lines if "ETA" in line]
    assert [int(MD_LINE.match(line).group(1)) for line in periodic] == [10, 20, 30, 40, 50, 60], lines
    assert re.match(r"^MD nvt-bussi run: done at step 60/60 after \d+s, [\d.e+]+ steps/s, T \d+ K$",
                    lines[-1])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tfbsim.progress"):
        run_md(cu_small(), TestEMT(), config, tmp_path / "quiet")  # progress=False: nothing
    assert _lines(caplog) == []


def test_md_progress_is_throttled(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("TFBSIM_PROGRESS_S", "3600")
    config = MDConfig(ensemble="nve", steps=40, timestep_fs=2.0, initial_temperature_k=300, log_every=5, seed=1)
    with caplog.at_level(logging.INFO, logger="tfbsim.progress"):
        run_md(cu_small(), TestEMT(), config, progress=True)
    lines = _lines(caplog)
    assert len(lines) == 1 and lines[0].startswith("MD nve: done at step 40/40")


def test_relax_reports_step_max_force_and_energy(caplog, every_event):
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True) * 2
    atoms.rattle(0.05, seed=3)
    with caplog.at_level(logging.INFO, logger="tfbsim.progress"):
        result = relax(atoms, TestEMT(), fmax_ev_ang=0.01, cell=True, progress=True)
    lines = _lines(caplog)
    pattern = re.compile(r"^relax \(32 atoms, cell xyz\): step (\d+), max\|F\| [\d.]+ eV/Å, E -?[\d.]+ eV")
    steps = [int(pattern.match(line).group(1)) for line in lines[:-1]]
    assert steps == list(range(0, result.steps + 1)), lines[:3]  # the observer runs at the start and each step
    assert lines[-1].startswith(f"relax (32 atoms, cell xyz): converged at step {result.steps} after ")
    assert f"max|F| {result.max_force_ev_ang:.3f} eV/Å" in lines[-1]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tfbsim.progress"):
        relax(atoms, TestEMT(), fmax_ev_ang=0.01, cell=False, max_steps=3)
    assert _lines(caplog) == []


def test_cli_shows_progress_by_default_and_quiet_hides_it(cli_runner, tmp_path, every_event):
    structure = tmp_path / "cu.extxyz"
    write_structure(structure, cu_small())
    md = ["md", str(structure), "--model", "emt", "--ensemble", "nve", "--steps", "30", "--timestep-fs", "2",
          "--log-every", "10"]
    shown = cli_runner.invoke(app, [*md, "-o", str(tmp_path / "a")])
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if line.startswith("INFO tfbsim.progress: MD nve a: ")]
    assert len(lines) == 4 and "step 30/30" in lines[-2] and "done at step 30/30" in lines[-1]
    quiet = cli_runner.invoke(app, ["--quiet", *md, "-o", str(tmp_path / "b")])
    assert quiet.exit_code == 0 and quiet.output == ""
    relax_args = ["relax", str(structure), "--model", "emt", "--fixed-cell", "-o", str(tmp_path / "r.extxyz")]
    shown = cli_runner.invoke(app, relax_args)
    assert shown.exit_code == 0
    assert "INFO tfbsim.progress: relax (8 atoms, fixed cell): converged at step" in shown.output
    quiet = cli_runner.invoke(app, ["--quiet", *relax_args])
    assert quiet.exit_code == 0 and "tfbsim.progress" not in quiet.output


def test_reporter_interval_eta_and_durations(monkeypatch, caplog):
    assert [format_duration(s) for s in (0.4, 42, 250, 7500, float("nan"))] == ["0s", "42s", "4m10s", "2h05m", "?"]
    monkeypatch.delenv("TFBSIM_PROGRESS_S", raising=False)
    assert default_interval_s() == progress_module.DEFAULT_INTERVAL_S == 30.0
    monkeypatch.setenv("TFBSIM_PROGRESS_S", "soon")
    with caplog.at_level(logging.WARNING, logger="tfbsim.workflows.md.progress"):
        assert default_interval_s() == 30.0
    assert "TFBSIM_PROGRESS_S" in caplog.text
    clock = iter([100.0, 110.0, 131.0, 131.0, 131.0])  # start, two due() checks, the rate, the line's time
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    reporter = ProgressReporter("MD nve", total=1000, start_step=100, interval_s=30)
    with caplog.at_level(logging.INFO, logger="tfbsim.progress"):
        assert not reporter.update(200)  # 10 s after the start: not yet
        assert reporter.update(410, temperature_k=612.4)  # 31 s: 310 steps at 10 steps/s, 590 to go
    assert _lines(caplog)[-1] == "MD nve: step 410/1000 (41.0%), T 612 K, 10 steps/s, ETA 59s"
