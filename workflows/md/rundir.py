"""The MD run directory, and the in-memory stand-in used when ``run_dir=None``.

Layout (one run per folder)::

    config.yaml        the resolved MDConfig (edit it and restart with --force to change a run)
    traj.h5md          trajectory (H5MD, layout in tfbsim.analysis.h5md), flushed after every frame
    checkpoint.npz     latest checkpoint (tfbsim.workflows.md.checkpoint), replaced atomically
    log.csv            step, time_ps, T_k, epot_ev, ekin_ev, etot_ev, pressure_gpa, volume_ang3,
                       target_T_k, conserved_ev — one line-buffered row every log_every steps
    summary.json       status (running|completed|unstable|failed), steps, timings, means/stds, provenance
    final.extxyz       final structure with velocities (completed runs)
    last_good.extxyz   last state that passed the guards (unstable runs)
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ...errors import TrajectoryError
from ...structures.io import atomic_path, read_json, write_json
from .engines.base import EngineSample

__all__ = ["RunDir", "RunLog", "MemoryFrames", "H5MDFrames", "LOG_COLUMNS", "TRAJ_OBSERVABLES", "run_progress"]

LOG_COLUMNS = (
    "step", "time_ps", "T_k", "epot_ev", "ekin_ev", "etot_ev", "pressure_gpa", "volume_ang3", "target_T_k",
    "conserved_ev",
)
#: Per-frame observables stored in the trajectory (names documented in tfbsim.analysis.h5md).
TRAJ_OBSERVABLES = (
    "temperature_k", "potential_energy_ev", "kinetic_energy_ev", "total_energy_ev", "pressure_gpa", "volume_ang3",
)


class RunDir:
    """Paths and small files of one MD run directory."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.traj = self.path / "traj.h5md"
        self.checkpoint = self.path / "checkpoint.npz"
        self.log = self.path / "log.csv"
        self.summary = self.path / "summary.json"
        self.final = self.path / "final.extxyz"
        self.last_good = self.path / "last_good.extxyz"

    def holds_run(self) -> bool:
        """Whether the folder already contains (part of) a run."""
        return any(p.exists() for p in (self.summary, self.checkpoint, self.traj, self.log))

    def write_config(self, text: str) -> None:
        """Write ``config.yaml`` atomically."""
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.config) as tmp:
            tmp.write_text(text)

    def write_summary(self, data: dict[str, Any]) -> None:
        """Write ``summary.json`` atomically."""
        write_json(self.summary, data)

    def read_summary(self) -> dict[str, Any]:
        """``summary.json``, or an empty dict when the run died before writing it."""
        return read_json(self.summary) if self.summary.exists() else {}


def _last_log_row(path: Path) -> tuple[float, ...] | None:
    """The last complete row of a ``log.csv`` (read from its tail; None when there is none yet)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 4096, 0))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        fields = line.split(",")
        if len(fields) == len(LOG_COLUMNS):
            try:
                return tuple(float(f) for f in fields)
            except ValueError:
                continue  # the header, or a line being written
    return None


def run_progress(folder: str | os.PathLike) -> dict[str, Any] | None:
    """Where the MD run now running under ``folder`` (at any depth, e.g. a task's stages) stands.

    Reads only small files that the runner keeps current: ``summary.json`` (status, planned steps) and the tail
    of the line-buffered ``log.csv``; safe to call from another process while the run goes on.

    Returns
    -------
    dict or None
        ``stage`` (the run folder relative to ``folder``; ``"."`` for ``folder`` itself), ``step``,
        ``steps_planned`` and ``temperature_k`` (of the last log row; None before the first) of the most recently
        updated running run; None when nothing under ``folder`` is running.
    """
    root = Path(folder)
    running = []
    for path in root.rglob("summary.json"):
        try:
            summary = read_json(path)
            mtime = path.stat().st_mtime
        except (OSError, TrajectoryError):
            continue  # being replaced right now
        if summary.get("status") == "running" and "steps_planned" in summary:
            running.append((mtime, path.parent, summary))
    if not running:
        return None
    _, run, summary = max(running, key=lambda item: item[0])
    row = _last_log_row(run / "log.csv")
    return {"stage": str(run.relative_to(root)), "step": int(row[0]) if row else int(summary.get("steps_done", 0)),
            "steps_planned": int(summary["steps_planned"]), "temperature_k": float(row[2]) if row else None}


class RunLog:
    """The ``log.csv`` rows, kept in memory and (with a path) appended line-buffered to the file.

    Parameters
    ----------
    path
        CSV file, or ``None`` to keep rows in memory only.
    resume_after_step
        Restart: keep the rows of an existing file with ``step <= resume_after_step`` (rewritten
        atomically) and append after them.
    """

    def __init__(self, path: str | os.PathLike | None, *, resume_after_step: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.rows: list[tuple[float, ...]] = []
        self._handle: io.TextIOBase | None = None
        if self.path is None:
            return
        if resume_after_step is not None and self.path.exists():
            self.rows = [r for r in self._read(self.path) if r[0] <= resume_after_step]
            with atomic_path(self.path) as tmp:
                tmp.write_text(self._header() + "".join(self._line(r) for r in self.rows))
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(self._header())
        self._handle = open(self.path, "a", buffering=1)  # noqa: SIM115 - closed in close()

    @staticmethod
    def _header() -> str:
        return ",".join(LOG_COLUMNS) + "\n"

    @staticmethod
    def _line(row: tuple[float, ...]) -> str:
        return f"{int(row[0])}," + ",".join(repr(float(v)) for v in row[1:]) + "\n"

    @staticmethod
    def _read(path: Path) -> list[tuple[float, ...]]:
        rows = []
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(header) != LOG_COLUMNS:
                raise TrajectoryError(f"{path}: not a tfbsim MD log (header {header})")
            for fields in reader:
                if len(fields) != len(LOG_COLUMNS):
                    continue  # a partial last line from a killed run
                try:
                    rows.append((int(fields[0]), *(float(f) for f in fields[1:])))
                except ValueError:
                    continue
        return rows

    def append(self, sample: EngineSample) -> None:
        """Add the row of one sample."""
        row = (
            sample.step, sample.time_ps, sample.temperature_k, sample.epot_ev, sample.ekin_ev, sample.etot_ev,
            sample.pressure_gpa, sample.volume_ang3, sample.target_temperature_k, sample.conserved_ev,
        )
        self.rows.append(row)
        if self._handle is not None:
            self._handle.write(self._line(row))

    def arrays(self) -> dict[str, np.ndarray]:
        """Columns as arrays (``step`` as int64)."""
        data = np.array(self.rows, dtype=float).reshape(-1, len(LOG_COLUMNS))
        out = {name: data[:, i] for i, name in enumerate(LOG_COLUMNS)}
        out["step"] = out["step"].astype(np.int64)
        return out

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _observables(sample: EngineSample) -> dict[str, float]:
    return {
        "temperature_k": sample.temperature_k,
        "potential_energy_ev": sample.epot_ev,
        "kinetic_energy_ev": sample.ekin_ev,
        "total_energy_ev": sample.etot_ev,
        "pressure_gpa": sample.pressure_gpa,
        "volume_ang3": sample.volume_ang3,
    }


class H5MDFrames:
    """Trajectory frames into ``traj.h5md`` (new file, or continued after a checkpoint on restart)."""

    def __init__(
        self,
        path: Path,
        atoms: Atoms,
        *,
        store_velocities: bool,
        store_forces: bool,
        precision: str,
        metadata: dict[str, Any],
        resume_after_step: int | None = None,
    ) -> None:
        from .h5md import H5MDWriter

        regions = atoms.arrays.get("region")
        self.store_forces = store_forces
        resume = resume_after_step is not None and path.exists()
        self.writer = H5MDWriter(
            path,
            atoms.numbers,
            pbc=atoms.pbc,
            regions=regions,
            velocities=store_velocities,
            forces=store_forces,
            observables=TRAJ_OBSERVABLES,
            metadata=metadata,
            precision=precision,
            append=resume,
        )
        self.dropped = 0
        if resume:
            self.dropped = self.writer.truncate_after_step(int(resume_after_step))  # type: ignore[arg-type]
            self.writer.set_metadata(**metadata)

    def append(self, sample: EngineSample) -> None:
        """Write one frame (flushed)."""
        self.writer.append(
            sample.positions,
            sample.cell,
            sample.step,
            sample.time_ps,
            velocities=sample.velocities,
            forces_ev_ang=sample.forces_ev_ang,
            observables=_observables(sample),
        )

    @property
    def n_frames(self) -> int:
        """Frames in the file."""
        return self.writer.n_frames

    def close(self) -> None:
        """Close the file."""
        self.writer.close()


class MemoryFrames:
    """Trajectory frames kept as a list of :class:`ase.Atoms` (``run_dir=None``)."""

    def __init__(self, atoms: Atoms, *, store_velocities: bool, store_forces: bool) -> None:
        self.numbers = atoms.numbers.copy()
        self.pbc = atoms.pbc.copy()
        self.regions = atoms.arrays.get("region")
        self.store_velocities = store_velocities
        self.store_forces = store_forces
        self.frames: list[Atoms] = []

    def append(self, sample: EngineSample) -> None:
        """Keep one frame."""
        frame = Atoms(numbers=self.numbers, positions=sample.positions, cell=sample.cell, pbc=self.pbc)
        if self.store_velocities:
            frame.set_velocities(sample.velocities)
        if self.store_forces and sample.forces_ev_ang is not None:
            frame.arrays["forces"] = np.asarray(sample.forces_ev_ang, dtype=float)
        if self.regions is not None:
            frame.new_array("region", np.asarray(self.regions).copy())
        frame.info.update(step=int(sample.step), time_ps=float(sample.time_ps), **_observables(sample))
        self.frames.append(frame)

    @property
    def n_frames(self) -> int:
        """Frames kept."""
        return len(self.frames)

    def close(self) -> None:
        """Nothing to close."""
