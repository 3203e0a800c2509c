"""Every JSON file tfbsim writes carries a provenance block (issue 22).

The demo's output folder (with a whole campaign in ``bulk/``) is walked in tests/workflows/test_demo.py; here
the command-line outputs that used to go without: ``potential info --json``, ``db list/show/export``, and the
one writer's rules (:func:`tfbsim.structures.io.write_json`).
"""

from __future__ import annotations

import json

from ase.build import bulk

from tfbsim.cli import app
from tfbsim.structures.io import write_json


def _block(path):
    block = json.loads(path.read_text())["provenance"]
    assert block["tfbsim_version"] and "python" in block["versions"] and block["ended_utc"] and block["host"]
    return block


def test_the_writer_stamps_records_without_one_and_keeps_given_ones(tmp_path):
    _block(write_json(tmp_path / "a.json", {"x": 1}))
    given = json.loads(write_json(tmp_path / "b.json", {"x": 1, "provenance": {"seed": 3}}).read_text())
    assert given["provenance"] == {"seed": 3}
    passed = json.loads(write_json(tmp_path / "c.json", {"x": 1}, provenance={"seed": 4}).read_text())
    assert passed["provenance"] == {"seed": 4}
    raw = json.loads(write_json(tmp_path / "d.json", {"Li": -0.3}, provenance=False).read_text())
    assert raw == {"Li": -0.3}
    assert json.loads(write_json(tmp_path / "e.json", [1, 2]).read_text()) == [1, 2]  # not a record


def test_potential_info_and_db_outputs_carry_provenance(tmp_path, cli_runner):
    from tfbsim.workflows.campaigns.resultsdb import ResultsDB

    info = tmp_path / "info.json"
    result = cli_runner.invoke(app, ["potential", "info", "emt", "--json", str(info)])
    assert result.exit_code == 0, result.output
    _block(info)
    db = tmp_path / "results.db"
    ResultsDB(db, create=True).upsert(bulk("Cu", cubic=True), {"task_id": "cu/T300K/r0", "system": "cu",
                                                                 "temperature_k": 300.0, "status": "completed"},
                                      data={"analyses": {"diffusion": {"D_cm2_s": 1e-5}}})
    for argv, path in [(["db", "list", str(db), "--json"], tmp_path / "list.json"),
                       (["db", "show", str(db), "cu/T300K/r0", "--json"], tmp_path / "show.json"),
                       (["db", "export", str(db), "--format", "json", "-o"], tmp_path / "export.json")]:
        result = cli_runner.invoke(app, [*argv, str(path)])
        assert result.exit_code == 0, result.output
        assert _block(path)["input"] == str(db)
