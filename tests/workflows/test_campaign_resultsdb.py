"""The results database: one row per task (replaced, never duplicated), queries, CSV export, `ase db`."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest
from ase.build import bulk

from tfbsim.errors import ConfigError
from tfbsim.workflows.campaigns.resultsdb import LIST_COLUMNS, ResultsDB, row_from_summary


def _row(status="completed", D=2.0e-6, **extra):
    summary = {"status": status, "D_cm2_s": D, "D_stderr_cm2_s": 1.0e-7, "sigma_ne_S_cm": 3.0e-3, "model_sha256": "ab" * 32,
               "steps": 100, "wall_s": 12.5, "stages": [{"name": "prod"}], **extra}
    analyses = {"diffusion": {"D_cm2_s": D, "msd": {"lag_ps": [0.0, 0.1], "msd_ang2": [0.0, 0.5]}},
                "coordination": {"N": {"Nd": 0.25, "Na": 0.75, "Nt": 0.0}, "P": {"mean_cn": 4.0}, "Li": {"mean_cn": 4.2}},
                "interphase": {"interphase": {"thickness_ang": [0.0, 3.5], "front_ang": [1.0, 4.5],
                                              "total_thickness_ang": [0.0, 7.0]}}}
    return row_from_summary(summary, task_id="glass/T800K/r0", campaign="c", system="glass", temperature_k=800.0,
                            replica=0, run_dir="/runs/c/tasks/glass/T800K/r0", analyses=analyses)


def test_rows_are_replaced_not_duplicated_and_keep_the_analyses(tmp_path):
    db = ResultsDB(tmp_path / "results.db", create=True)
    kvp, data = _row(reason=None)
    assert kvp["coord_Nd"] == 0.25 and kvp["coord_Na"] == 0.75 and "reason" not in kvp
    assert (kvp["interphase_thickness_ang"], kvp["interphase_total_thickness_ang"]) == (3.5, 7.0)  # last frame
    numeric = _row(model_sha256="293630e498190131", reason="nan")  # ASE would read these back as floats
    assert (numeric[0]["model_sha256"], numeric[0]["reason"]) == ("'293630e498190131'", "'nan'")
    ResultsDB(tmp_path / "other.db", create=True).upsert(bulk("Li"), *numeric)
    first = db.upsert(bulk("Li", "bcc", a=3.5, cubic=True), kvp, data)
    kvp2, data2 = _row(status="failed", D=None, reason="worker lost")
    second = db.upsert(bulk("Li", "bcc", a=3.5, cubic=True) * (2, 1, 1), kvp2, data2)
    assert first == second and len(db) == 1
    record, stored, atoms = db.get("glass/T800K/r0")
    assert record["status"] == "failed" and record["reason"] == "worker lost"
    assert "D_cm2_s" not in record  # stale keys of the old row are gone
    assert record["formula"] == "Li4" and record["natoms"] == 4 and len(atoms) == 4
    assert stored["analyses"]["coordination"]["N"]["Nd"] == 0.25
    assert db.get(first)[0]["task_id"] == "glass/T800K/r0"


def test_queries_csv_export_and_ase_db_cli(tmp_path):
    db = ResultsDB(tmp_path, create=True)  # a campaign directory means <dir>/results.db
    assert db.url == str(tmp_path / "results.db")
    for t, d in ((700.0, 1.0e-6), (900.0, 4.0e-6)):
        kvp, data = _row(D=d)
        kvp.update(task_id=f"glass/T{t:g}K/r0", temperature_k=t)
        db.upsert(bulk("Li", "bcc", a=3.5), kvp, data)
    hot = db.rows("temperature_k>800")
    assert [r["task_id"] for r in hot] == ["glass/T900K/r0"]
    rows = list(csv.DictReader(io.StringIO(db.export_csv())))
    assert list(rows[0])[: len(LIST_COLUMNS)] == list(LIST_COLUMNS)
    assert [(r["task_id"], float(r["D_cm2_s"])) for r in rows] == [("glass/T700K/r0", 1.0e-6), ("glass/T900K/r0", 4.0e-6)]
    out = subprocess.run([sys.executable, "-m", "ase", "db", str(tmp_path / "results.db"), "status=completed",
                          "-c", "task_id,temperature_k"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "glass/T700K/r0" in out.stdout and "glass/T900K/r0" in out.stdout


def test_missing_database_and_bad_query_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="no results database at"):
        ResultsDB(tmp_path / "nothing.db")
    db = ResultsDB(tmp_path / "r.db", create=True)
    db.upsert(bulk("Li"), _row()[0], {})
    with pytest.raises(ConfigError, match="no row 'nope/T1K/r0'"):
        db.get("nope/T1K/r0")
    with pytest.raises(ConfigError, match="bad database query"):
        db.rows("temperature_k>>3")


def test_a_driver_killed_while_creating_the_database_does_not_brick_the_campaign(tmp_path, caplog):
    """ASE commits each CREATE TABLE on its own: a SIGKILL between them left `systems` without `information`,
    and every later run failed with "no such table: information" (seen in CI)."""
    import sqlite3

    from ase.db.sqlite import init_statements

    path = tmp_path / "results.db"
    db = ResultsDB(path, create=True)  # a new file has its whole schema at once, before any row
    with sqlite3.connect(path) as con:
        tables = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"systems", "information", "keys", "number_key_values"} <= tables and len(db) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["results.db"]  # no temporary file left

    broken = tmp_path / "broken" / "results.db"
    broken.parent.mkdir()
    with sqlite3.connect(broken) as con:  # the state the kill left
        con.execute(init_statements[0])
    with pytest.raises(ConfigError, match="cannot be read .*interrupted creation.*information"):
        ResultsDB(broken).rows()  # a reader says what is wrong and what to do
    with caplog.at_level("WARNING", logger="tfbsim.workflows.campaigns.resultsdb"):
        fixed = ResultsDB(broken, create=True)  # the driver sets it aside and starts a new file
    assert "set aside" in caplog.text
    fixed.upsert(bulk("Li"), _row()[0], {})
    assert [r["task_id"] for r in fixed.rows()] == ["glass/T800K/r0"]
    assert len(list(broken.parent.glob("results.db.unreadable-*"))) == 1

    # a database with rows, or a file that is not SQLite, is never set aside: it may be someone's data
    other = tmp_path / "notes.db"
    other.write_text("these are my notes, not a database\n" * 50)
    with pytest.raises(ConfigError, match="not an SQLite database"):
        ResultsDB(other, create=True)
    assert other.read_text().startswith("these are my notes")
