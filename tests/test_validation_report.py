"""The validation report script: experimental D line, honest progress report, verdict against targets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tfbsim.structures.io import write_json

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "validation" / "make_report.py"


def _module():
    spec = importlib.util.spec_from_file_location("make_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_experimental_line_matches_the_research_note():
    m = _module()  # science-turn2.md: 1.4e-5, 4.9e-5, 1.2e-4, 2.3e-4 cm²/s at 900/1100/1300/1500 K
    for t, d in ((900, 1.4e-5), (1100, 4.9e-5), (1300, 1.2e-4), (1500, 2.3e-4)):
        assert m.experimental_d_cm2_s(t) == pytest.approx(d, rel=0.05)


def test_unfinished_campaign_reports_progress_not_a_fit(tmp_path):
    m = _module()
    (tmp_path / "summary.csv").write_text("task,status\nlipon/T700K/r0,completed\nlipon/T800K/r0,pending\n")
    record = m.build_report(tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "not complete" in text and record["verdict"]["complete"] is False
    assert record["verdict"]["Ea_within_target"] is None


def test_verdict_against_targets(tmp_path):
    m = _module()
    (tmp_path / "summary.csv").write_text("task,status\na,completed\nb,completed\n")
    write_json(tmp_path / "arrhenius.json", {"lipon": {"Ea_eV": 0.30, "Ea_stderr_eV": 0.03, "sigma_300K_S_cm": 1e-3,
                                                       "temperatures": [{"temperature_k": 700, "status": "fitted",
                                                                         "D_cm2_s": 1e-6}]}})
    record = m.build_report(tmp_path, tmp_path / "out")
    assert record["verdict"] == {"complete": True, "Ea_within_target": False, "sigma_within_target": False}
    assert "| 700 |" in (tmp_path / "out" / "report.md").read_text()
