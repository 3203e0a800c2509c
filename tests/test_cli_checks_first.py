"""Output paths are checked before any work (issue 22): a bad suffix or an impossible path fails at once."""

from __future__ import annotations

import pytest
from ase.build import bulk

from tfbsim.cli import app
from tfbsim.structures.io import write_structure


def _no_work(*args, **kwargs):
    raise AssertionError("the work started before the output path was checked")


@pytest.mark.parametrize("target, argv", [
    ("tfbsim.structures.crystals.build_crystal", ["build", "crystal", "li2o", "-o", "{d}/x.notaformat"]),
    ("tfbsim.structures.slabs.make_slab", ["build", "slab", "li2o", "--miller", "1", "0", "0", "--thickness-ang", "8",
                                           "--vacuum-ang", "10", "-o", "{d}/x.notaformat"]),
    ("tfbsim.workflows.md.relax.relax", ["relax", "{d}/cu.extxyz", "--model", "emt", "-o", "{d}/x.notaformat"]),
    ("tfbsim.workflows.md.relax.relax", ["relax", "{d}/cu.extxyz", "--model", "emt", "-o", "{d}/x.extxyz",
                                         "--json", "{d}/cu.extxyz/r.json"]),
])
def test_output_checked_before_the_work(tmp_path, cli_runner, monkeypatch, target, argv):
    write_structure(tmp_path / "cu.extxyz", bulk("Cu", cubic=True))
    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(f"{module}.{name}", _no_work)
    result = cli_runner.invoke(app, [a.format(d=tmp_path) for a in argv])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and ("notaformat" in result.output or "is a file" in result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cu.extxyz"]


def test_md_into_an_existing_file_is_bad_input(tmp_path, cli_runner):
    write_structure(tmp_path / "cu.extxyz", bulk("Cu", cubic=True))
    (tmp_path / "taken").write_text("x")
    result = cli_runner.invoke(app, ["md", str(tmp_path / "cu.extxyz"), "--model", "emt", "--steps", "2",
                                     "-o", str(tmp_path / "taken")])
    assert result.exit_code == 2 and "existing file" in result.output, result.output
    assert (tmp_path / "taken").read_text() == "x"
