"""The campaign results database: an ASE database with one row per task.

By default an SQLite file ``results.db`` in the campaign directory; any ASE-db URL works too (e.g.
``postgresql://user:password@host:5432/dbname`` for a shared group database, with ``psycopg2`` installed).
Each row holds the task's final structure (positions, cell, velocities; ``formula`` and ``natoms`` are
ASE's own columns) and the key-value pairs

``task_id`` (``system/T<T>K/r<k>``), ``campaign``, ``system``, ``temperature_k``, ``replica``, ``status``
(completed|unstable|failed), ``reason`` (one line, when not completed), ``model_sha256``, ``D_cm2_s``,
``D_stderr_cm2_s``, ``sigma_ne_S_cm``, ``sigma_ne_stderr_S_cm``, ``species``, ``temperature_mean_k``,
``steps``, ``time_ps``, ``wall_s``, ``run_dir``, and ``coord_Nd``, ``coord_Na``, ``coord_Nt``,
``coord_P_mean_cn``, ``coord_Li_mean_cn`` when the coordination analysis ran, and
``interphase_thickness_ang``, ``interphase_front_ang``, ``interphase_total_thickness_ang`` (last analysed
frame) when the interphase analysis ran;

and as ``data`` the analysis JSON records (``diffusion``, ``coordination``, ``interphase``) and the stage
records. Only the
campaign driver writes (no concurrent SQLite writers); rows are replaced, not duplicated, when a task is
written again. ``ase db results.db`` and ``tfbsim db list|show|export`` read it.

The SQLite file is created with its whole schema at once (built aside, then renamed), and every row can be
re-derived from the task folders: when the driver finds a file left half-created (ASE commits each
``CREATE TABLE`` on its own, so a kill in between leaves some tables only), it sets it aside as
``results.db.unreadable-*`` and rebuilds the rows. A file with rows, or one that is not SQLite, is never set
aside; readers get a :class:`~tfbsim.errors.ConfigError` saying what is wrong.

Example
-------
>>> from tfbsim.workflows.campaigns.resultsdb import ResultsDB                      # doctest: +SKIP
>>> db = ResultsDB("runs/lipon/results.db")
>>> [(r["system"], r["temperature_k"], r["D_cm2_s"]) for r in db.rows(status="completed")]
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import secrets
from pathlib import Path
from typing import Any

from ase import Atoms

from ...errors import ConfigError

__all__ = ["ResultsDB", "resolve_db", "row_from_summary", "LIST_COLUMNS", "DEFAULT_DB_NAME"]

logger = logging.getLogger(__name__)

DEFAULT_DB_NAME = "results.db"
#: Columns of ``tfbsim db list`` and of the CSV export (then every further key).
LIST_COLUMNS = ("id", "task_id", "system", "formula", "natoms", "temperature_k", "replica", "status", "D_cm2_s",
                "D_stderr_cm2_s", "sigma_ne_S_cm", "sigma_ne_stderr_S_cm", "temperature_mean_k", "steps", "time_ps",
                "wall_s", "campaign", "model_sha256", "reason")
_SUMMARY_KEYS = ("status", "reason", "model_sha256", "D_cm2_s", "D_stderr_cm2_s", "sigma_ne_S_cm",
                 "sigma_ne_stderr_S_cm", "species", "temperature_mean_k", "steps", "time_ps", "wall_s")
_COORD_KEYS = {"coord_Nd": ("N", "Nd"), "coord_Na": ("N", "Na"), "coord_Nt": ("N", "Nt"),
               "coord_P_mean_cn": ("P", "mean_cn"), "coord_Li_mean_cn": ("Li", "mean_cn")}


def _is_url(target: str) -> bool:
    return "://" in target


def resolve_db(target: str | os.PathLike) -> str:
    """A database URL or file from a path, URL or campaign directory (``<dir>/results.db``)."""
    text = str(target)
    if _is_url(text):
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / DEFAULT_DB_NAME
    return str(path)


def _looks_numeric(text: str) -> bool:
    """Whether ASE would read ``text`` back as a number or bool (it refuses such strings as values)."""
    from ase.db.core import convert_str_to_int_float_bool_or_str

    return not isinstance(convert_str_to_int_float_bool_or_str(text), str)


def _scalar(value: Any) -> bool | int | float | str | None:
    """A value ASE accepts as key-value pair (finite numbers, strings, bools), or ``None`` to leave it out.

    A string that reads as a number (a hash such as ``1234e567``, a reason such as ``nan``) is quoted with
    ``'`` so that it stays a string.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return f"'{value}'" if _looks_numeric(value) else value
    if isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return int(value) if isinstance(value, int) else number


def row_from_summary(summary: dict, *, task_id: str, campaign: str, system: str, temperature_k: float,
                     replica: int, run_dir: str, analyses: dict | None = None) -> tuple[dict, dict]:
    """Key-value pairs and ``data`` of a task's database row from its ``summary.json`` and analysis records."""
    kvp: dict[str, Any] = {"task_id": task_id, "campaign": campaign, "system": system,
                           "temperature_k": float(temperature_k), "replica": int(replica), "run_dir": run_dir}
    for key in _SUMMARY_KEYS:
        kvp[key] = summary.get(key)
    analyses = analyses or {}
    coord = analyses.get("coordination")
    if coord:
        for key, (block, name) in _COORD_KEYS.items():
            kvp[key] = (coord.get(block) or {}).get(name)
    inter = (analyses.get("interphase") or {}).get("interphase")
    if inter:
        for key in ("thickness_ang", "front_ang", "total_thickness_ang"):
            values = inter.get(key) or []
            kvp[f"interphase_{key}"] = values[-1] if len(values) else None
    kvp = {k: v for k, v in ((k, _scalar(v)) for k, v in kvp.items()) if v is not None}
    data = {"analyses": analyses, "stages": summary.get("stages", []),
            "analysis_errors": summary.get("analysis_errors", [])}
    return kvp, data


def _create_sqlite(path: Path) -> None:
    """Create an empty ASE SQLite database with its full schema, atomically (built aside, then renamed)."""
    import ase.db

    from ...structures.io import atomic_path

    with atomic_path(path) as tmp:
        _ = ase.db.connect(str(tmp), type="db").metadata  # reading the metadata creates and commits the tables


_ASE_TABLES = ("systems", "information", "keys", "species", "text_key_values", "number_key_values")


def _sqlite_problem(path: Path) -> str | None:
    """``None`` when ``path`` is a complete ASE SQLite database, else what is wrong with it (one line).

    A file that is not SQLite, or one whose ASE tables hold rows, is reported as "not an SQLite database"
    or "... with rows" so that the driver never sets aside a database it did not create.
    """
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:  # an empty file: ASE creates the tables
                return None
            missing = [t for t in _ASE_TABLES if t not in tables]
            if not missing:
                return None
            rows = con.execute("SELECT COUNT(*) FROM systems").fetchone()[0] if "systems" in tables else 0
    except sqlite3.DatabaseError as exc:
        return f"not an SQLite database: {exc}"
    if rows:
        return f"not an SQLite database of ASE: tables {', '.join(missing)} missing with rows"
    return f"an interrupted creation: tables {', '.join(missing)} missing"


class ResultsDB:
    """An ASE database of campaign results (see the module docstring).

    Parameters
    ----------
    target
        SQLite file, campaign directory (uses its ``results.db``) or ASE-db URL.
    create
        Create the file when missing (the campaign driver); readers pass ``False`` and get a
        :class:`~tfbsim.errors.ConfigError` for a missing file.
    """

    def __init__(self, target: str | os.PathLike, *, create: bool = False) -> None:
        self.url = resolve_db(target)
        self._db = None
        if _is_url(self.url):
            return
        path = Path(self.url)
        if not path.exists():
            if not create:
                raise ConfigError(f"no results database at {path}; give a campaign directory, a .db file or a URL")
            _create_sqlite(path)
            return
        problem = _sqlite_problem(path)
        if problem is None:
            return
        if not create or problem.startswith("not an SQLite"):
            raise ConfigError(f"the results database {path} cannot be read ({problem}); `tfbsim run <campaign.yaml>` "
                              "rebuilds it from the task folders after you move it away")
        # The kill of a driver while ASE created the tables (each CREATE TABLE commits on its own) leaves a
        # schema without rows; every row is re-derived from the task summaries, so start a new file.
        moved = path.with_name(f"{path.name}.unreadable-{secrets.token_hex(3)}")
        os.replace(path, moved)
        logger.warning("results database %s was unreadable (%s): set aside as %s; its rows are rebuilt from the "
                       "task summaries", path, problem, moved.name)
        _create_sqlite(path)

    @property
    def db(self) -> Any:
        """The underlying :func:`ase.db.connect` object."""
        if self._db is None:
            import ase.db

            try:
                self._db = ase.db.connect(self.url, type="db" if not _is_url(self.url) else "extract_from_name")
            except Exception as exc:  # a bad URL, a missing driver
                raise ConfigError(f"cannot open the results database {self.url}: {exc}") from None
        return self._db

    # ---------------------------------------------------------------------------------------------- write
    def upsert(self, atoms: Atoms, key_value_pairs: dict[str, Any], data: dict | None = None) -> int:
        """Write or replace the row of ``key_value_pairs['task_id']``; returns its id."""
        task_id = key_value_pairs["task_id"]
        atoms = atoms.copy()
        atoms.calc = None
        existing = [row for row in self.db.select(task_id=task_id)]
        if not existing:
            return int(self.db.write(atoms, key_value_pairs=key_value_pairs, data=data or {}))
        row_id = existing[0].id
        with self.db:
            for extra in existing[1:]:
                self.db.delete([extra.id])
            stale = [k for k in existing[0].key_value_pairs if k not in key_value_pairs]
            self.db.update(row_id, atoms=atoms, delete_keys=stale, data=data or {}, **key_value_pairs)
        return int(row_id)

    # ----------------------------------------------------------------------------------------------- read
    @staticmethod
    def _record(row: Any) -> dict[str, Any]:
        return {"id": row.id, "formula": row.formula, "natoms": row.natoms, **row.key_value_pairs}

    def rows(self, selection: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Rows as flat dicts (``id``, ``formula``, ``natoms`` and the key-value pairs), ordered by ``task_id``.

        ``selection`` is an ASE query string (``"status=completed,temperature_k>700"``); ``filters`` are
        equality filters (``system="glass"``).
        """
        try:
            records = [self._record(row) for row in self.db.select(selection, **filters)]
        except Exception as exc:  # a malformed query
            raise ConfigError(f"bad database query {selection!r}: {exc}") from None
        return sorted(records, key=lambda r: (str(r.get("task_id", "")), r["id"]))

    def get(self, key: str | int) -> tuple[dict[str, Any], dict, Atoms]:
        """One row by ``task_id`` or numeric id: (record, data, final structure)."""
        try:
            row = self.db.get(id=int(key)) if str(key).isdigit() else self.db.get(task_id=str(key))
        except KeyError:
            raise ConfigError(f"no row {key!r} in {self.url}; `tfbsim db list` shows the task ids") from None
        return self._record(row), dict(row.data), row.toatoms()

    def export_csv(self, selection: str | None = None, **filters: Any) -> str:
        """All rows as CSV text: the :data:`LIST_COLUMNS` first, then every further key in name order."""
        records = self.rows(selection, **filters)
        extra = sorted({k for r in records for k in r} - set(LIST_COLUMNS))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*LIST_COLUMNS, *extra], lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: record.get(k, "") for k in writer.fieldnames})
        return buffer.getvalue()

    def __len__(self) -> int:
        return int(self.db.count())
