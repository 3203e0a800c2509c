"""CLI conventions: version, help, JSON outputs, one-line errors with exit code 2, nothing written on failure."""

from __future__ import annotations

import json

from ase.build import bulk

from tfbsim.cli import app
from tfbsim.structures.io import write_structure


def test_version_and_help(cli_runner):
    result = cli_runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "tfbsim" in result.output
    for group in ["build", "analyze", "potential", "db"]:
        assert cli_runner.invoke(app, [group, "--help"]).exit_code == 0


def test_potential_info_json(cli_runner, tmp_path, tiny_mace_path):
    out = tmp_path / "info.json"
    result = cli_runner.invoke(app, ["potential", "info", str(tiny_mace_path), "--json", str(out)])
    assert result.exit_code == 0, result.output
    info = json.loads(out.read_text())
    assert {"spec", "kind", "elements", "r_max_ang", "n_params", "sha256", "dtype"} <= set(info)
    assert info["kind"] == "mace-file" and info["n_params"] > 1000


def test_potential_eval_json(cli_runner, tmp_path):
    structure = tmp_path / "cu.extxyz"
    write_structure(structure, bulk("Cu", cubic=True))
    out = tmp_path / "eval.json"
    result = cli_runner.invoke(app, ["potential", "eval", str(structure), "--model", "emt", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for key in ["energy_ev", "energy_per_atom_ev", "max_force_ev_ang", "stress_gpa", "n_atoms", "elements", "provenance"]:
        assert key in data
    assert data["n_atoms"] == 4 and len(data["stress_gpa"]) == 6
    assert data["provenance"]["tfbsim_version"]


def test_errors_are_one_line_exit_2_and_write_nothing(cli_runner, tmp_path):
    structure = tmp_path / "li.extxyz"
    write_structure(structure, bulk("Li"))
    out = tmp_path / "eval.json"
    result = cli_runner.invoke(app, ["potential", "eval", str(structure), "--model", "emt", "--json", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and "Li" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    missing = cli_runner.invoke(app, ["potential", "eval", str(tmp_path / "nope.xyz"), "--model", "emt"])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_debug_shows_traceback(cli_runner, tmp_path):
    result = cli_runner.invoke(app, ["--debug", "potential", "info", "no-such-model"])
    assert result.exit_code == 2
    assert "Traceback" in result.output
