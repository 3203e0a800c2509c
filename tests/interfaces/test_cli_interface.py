"""`tfbsim build interface`: one command line per interface, JSON keys, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfbsim.cli import app
from tfbsim.structures.amorphous import build_lipon
from tfbsim.structures.io import read_structure, write_structure

KEYS = {"stack", "lateral_cell_ang", "area_ang2", "interfaces_z_ang", "min_cross_distance_ang", "n_atoms",
        "periodic_sandwich"}
PHASE_KEYS = {"phase", "miller", "termination", "thickness_ang", "n_atoms", "strain_pct", "z_range_ang"}


def _run(cli_runner, tmp_path, *args):
    out, js = tmp_path / "cell.extxyz", tmp_path / "cell.json"
    result = cli_runner.invoke(app, ["build", "interface", *args, "-o", str(out), "--json", str(js)])
    return result, out, js


@pytest.mark.parametrize(
    "args",
    [
        ["--stack", "li:110,lipon", "--thickness-ang", "6,9", "--lateral-min-ang", "7"],
        ["--stack", "lipon,licoo2:003", "--thickness-ang", "9,10", "--lateral-min-ang", "7"],
        ["--stack", "li2s:111,lipon", "--thickness-ang", "7,9", "--lateral-min-ang", "7", "--vacuum-ang", "10"],
        ["--stack", "li,li3n", "--thickness-ang", "5,8", "--lateral-min-ang", "8"],
        ["--stack", "li3po4,lipon", "--thickness-ang", "13,9", "--lateral-min-ang", "7"],
    ],
)
def test_build_interface_cli_writes_structure_and_json(cli_runner, tmp_path, args):
    result, out, js = _run(cli_runner, tmp_path, *args)
    assert result.exit_code == 0, result.output
    report = json.loads(js.read_text())
    assert KEYS <= set(report)
    for entry in report["stack"]:
        assert PHASE_KEYS <= set(entry)
        assert len(entry["strain_pct"]) == 3
    atoms = read_structure(out)
    assert len(atoms) == report["n_atoms"] == sum(e["n_atoms"] for e in report["stack"])
    regions, counts = np.unique(atoms.arrays["region"], return_counts=True)
    assert dict(zip(regions.tolist(), counts.tolist())) == {e["region"]: e["n_atoms"] for e in report["stack"]}
    assert atoms.info["interfaces_z_ang"] == pytest.approx(report["interfaces_z_ang"])
    assert len(report["interfaces_z_ang"]) == (2 if report["periodic_sandwich"] else 1)
    assert report["provenance"]["tfbsim_version"]
    assert "interfaces at z" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack", "li:100,foo"], "unknown phase 'foo' in the stack; valid phases"),
        (["--stack", "li:123,lipon"], "valid facets: 100, 110, 111"),
        (["--stack", "li:100,li3po4:010", "--lateral-min-ang", "10"], "larger lateral size"),
        (["--stack", "li:100,lipon", "--thickness-ang", "2,10"], "less than two layers"),
        (["--stack", "li:100,lipon", "--thickness-ang", "6,10", "--gap-ang", "0.2", "--lateral-min-ang", "7"], "overlap"),
        (["--stack", "li:100,lipon", "--quench-on-substrate", "quick"], "need --model"),
        (["--stack", "li:100,lipon", "--thickness-ang", "6,x"], "must be numbers"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(cli_runner, tmp_path, args, message):
    result, out, js = _run(cli_runner, tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists() and not js.exists()


def test_lipon_from_with_a_mismatching_cell_exits_2(cli_runner, tmp_path):
    glass = build_lipon("Li2.94PO3.50N0.31", 100, lateral_ang=(9.0, 9.0), seed=0)
    write_structure(tmp_path / "glass.extxyz", glass)
    result, out, js = _run(cli_runner, tmp_path, "--stack", "li:100,lipon", "--thickness-ang", "6,10",
                           "--lipon-from", str(tmp_path / "glass.extxyz"))
    assert result.exit_code == 2
    assert "not a supercell" in result.output and "--lateral-ang" in result.output
    assert not out.exists() and not js.exists()
