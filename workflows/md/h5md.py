"""Incremental H5MD trajectory writer (layout documented in :mod:`tfbsim.analysis.h5md`).

Frames are appended one at a time and the file is flushed after each, so a run killed with SIGKILL leaves a
file that opens with every frame up to the last flush. On restart the writer re-opens the file in append mode
and drops frames written after the checkpoint (:meth:`H5MDWriter.truncate_after_step`), so no frame is
duplicated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ...analysis.h5md import H5MD_FORMAT_VERSION, KJ_MOL_PER_EV, PARTICLES_GROUP
from ...errors import TrajectoryError

__all__ = ["H5MDWriter"]



def _velocity_factor() -> float:
    """ASE velocity (Å per ASE time unit) -> Å/ps."""
    from ase import units

    return 1000.0 * units.fs


class H5MDWriter:
    """Append frames to a tfbsim H5MD file.

    Parameters
    ----------
    path
        Output file (``traj.h5md``).
    numbers
        Atomic numbers (N,).
    pbc
        Periodicity per axis.
    regions
        Per-atom region labels, stored as ``/particles/trajectory/region``.
    velocities, forces
        Also store velocities (Å/ps) / forces (stored in kJ mol⁻¹ Å⁻¹, given in eV/Å).
    observables
        Names of per-frame scalars (e.g. ``temperature_k``).
    metadata
        Stored as attributes of ``/parameters/tfbsim`` (dicts and lists as JSON).
    precision
        ``float32`` (default; half the size, ~1e-5 Å at 100 Å) or ``float64`` for positions and velocities.
    append
        Open an existing file to continue it (restart); the atoms must match.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        numbers: np.ndarray,
        *,
        pbc: np.ndarray | list[bool] = (True, True, True),
        regions: np.ndarray | list[str] | None = None,
        velocities: bool = False,
        forces: bool = False,
        observables: tuple[str, ...] | list[str] = (),
        metadata: dict[str, Any] | None = None,
        precision: str = "float32",
        append: bool = False,
    ) -> None:
        import h5py

        self.path = Path(path)
        self.numbers = np.asarray(numbers, dtype=np.int32)
        self.n_atoms = len(self.numbers)
        self._dtype = np.float32 if precision == "float32" else np.float64
        self._observables = list(observables)
        if append and self.path.exists():
            try:
                self._file = h5py.File(self.path, "a")
            except OSError as exc:
                raise TrajectoryError(
                    f"{self.path}: cannot open for appending ({exc}); close other programs (or MDAnalysis "
                    "Universes in this process) that have the file open, then retry"
                ) from exc
            group = self._file["particles"][PARTICLES_GROUP]
            stored = np.asarray(group["species"][()])
            if not np.array_equal(stored, self.numbers):
                self._file.close()
                raise TrajectoryError(f"{self.path}: stored atoms differ from the run's atoms; cannot append")
            self._velocities = "velocity" in group
            self._forces = "force" in group
            self._observables = sorted(self._file["observables"].keys()) if "observables" in self._file else []
            self._cache_handles()
            self._repair_lengths()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(self.path, "w")
            self._velocities = velocities
            self._forces = forces
            self._create(pbc, regions, metadata or {})
        self._file.flush()
        self._cache_handles()

    def _cache_handles(self) -> None:
        """Dataset handles in write order (h5py path lookups cost ~0.1 ms each): the step/time clocks (shared
        by hard links in files this writer creates, one pair per series in older files), then the values,
        position last — it defines the frame count readers see, so a kill in the middle of an append never
        exposes a frame whose box or observables are missing."""
        series = self._all_series()
        series.append(series.pop(1))
        clocks: list = []
        for s in series:
            for key in ("step", "time"):
                if not any(s[key] == known for known in clocks):
                    clocks.append(s[key])
        self._clocks = [(ds, ds.dtype.kind == "i") for ds in clocks]
        self._values = [s["value"] for s in series]
        self._position = self._values[-1]

    # ------------------------------------------------------------------------------------------- layout
    def _series(self, parent, name: str, shape: tuple[int, ...], dtype, unit: str | None, clock=None):
        """A time series group; ``clock`` (another series group) shares its step/time by hard links, which
        H5MD allows and which halves the datasets to grow per frame."""
        grp = parent.create_group(name)
        value = grp.create_dataset(
            "value", shape=(0, *shape), maxshape=(None, *shape), chunks=(1, *shape) if shape else (1024,), dtype=dtype
        )
        if unit:
            value.attrs["unit"] = unit
        if clock is not None:
            grp["step"] = clock["step"]
            grp["time"] = clock["time"]
            return grp
        grp.create_dataset("step", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.int64)
        time = grp.create_dataset("time", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.float64)
        time.attrs["unit"] = "ps"
        return grp

    def _create(self, pbc, regions, metadata: dict) -> None:
        f = self._file
        h5md = f.create_group("h5md")
        h5md.attrs["version"] = np.array([1, 1])
        h5md.create_group("author").attrs["name"] = os.environ.get("USER", "tfbsim user")
        creator = h5md.create_group("creator")
        creator.attrs["name"] = "tfbsim"
        creator.attrs["version"] = __version__
        group = f.create_group("particles").create_group(PARTICLES_GROUP)
        box = group.create_group("box")
        box.attrs["dimension"] = 3
        box.attrs["boundary"] = np.array([b"periodic" if p else b"none" for p in pbc])
        clock = self._series(group, "position", (self.n_atoms, 3), self._dtype, "Angstrom")
        self._series(box, "edges", (3, 3), np.float64, "Angstrom", clock)
        if self._velocities:
            self._series(group, "velocity", (self.n_atoms, 3), self._dtype, "Angstrom ps-1", clock)
        if self._forces:
            self._series(group, "force", (self.n_atoms, 3), np.float32, "kJ mol-1 Angstrom-1", clock)
        group.create_dataset("species", data=self.numbers)
        if regions is not None:
            labels = np.asarray(regions, dtype=str)
            if labels.shape != (self.n_atoms,):
                raise TrajectoryError(f"regions must have {self.n_atoms} labels, got {labels.shape}")
            group.create_dataset("region", data=np.char.encode(labels, "utf-8"))
        if self._observables:
            obs = f.create_group("observables")
            for name in self._observables:
                self._series(obs, name, (), np.float64, None, clock)
        params = f.create_group("parameters").create_group("tfbsim")
        params.attrs["format_version"] = H5MD_FORMAT_VERSION
        params.attrs["unwrapped"] = True
        for key, value in metadata.items():
            params.attrs[key] = self._attr(value)

    @staticmethod
    def _attr(value: Any) -> Any:
        if isinstance(value, (dict, list, tuple)):
            from ...structures.io import to_jsonable

            return json.dumps(to_jsonable(value))
        if value is None:
            return "null"
        return value

    def set_metadata(self, **metadata: Any) -> None:
        """Add or replace attributes of ``/parameters/tfbsim`` (flushed)."""
        params = self._file["parameters/tfbsim"]
        for key, value in metadata.items():
            params.attrs[key] = self._attr(value)
        self._file.flush()

    # ------------------------------------------------------------------------------------------- frames
    def _all_series(self) -> list:
        group = self._file["particles"][PARTICLES_GROUP]
        series = [group["box/edges"], group["position"]]
        if self._velocities:
            series.append(group["velocity"])
        if self._forces:
            series.append(group["force"])
        series += [self._file["observables"][name] for name in self._observables]
        return series

    @property
    def n_frames(self) -> int:
        """Number of complete frames in the file."""
        return int(self._position.shape[0])

    @property
    def last_step(self) -> int | None:
        """MD step of the last stored frame."""
        n = self.n_frames
        return int(self._file["particles"][PARTICLES_GROUP]["position/step"][n - 1]) if n else None

    def append(
        self,
        positions: np.ndarray,
        cell: np.ndarray,
        step: int,
        time_ps: float,
        *,
        velocities: np.ndarray | None = None,
        forces_ev_ang: np.ndarray | None = None,
        observables: dict[str, float] | None = None,
    ) -> None:
        """Append one frame and flush.

        Parameters
        ----------
        positions
            Unwrapped positions (N, 3), Å.
        cell
            Cell vectors as rows (3, 3), Å.
        step, time_ps
            MD step and time (ps).
        velocities
            ASE velocities (Å per ASE time unit); stored as Å/ps.
        forces_ev_ang
            Forces, eV/Å.
        observables
            Values for the observables declared at creation (missing ones stored as NaN).
        """
        n = self.n_frames
        obs = observables or {}
        values: list[np.ndarray | float] = [np.asarray(cell, float), np.asarray(positions)]
        if self._velocities:
            if velocities is None:
                raise TrajectoryError("this trajectory stores velocities; pass velocities=")
            values.append(np.asarray(velocities) * _velocity_factor())
        if self._forces:
            if forces_ev_ang is None:
                raise TrajectoryError("this trajectory stores forces; pass forces_ev_ang=")
            values.append(np.asarray(forces_ev_ang) * KJ_MOL_PER_EV)
        values += [float(obs.get(name, np.nan)) for name in self._observables]
        # the position series defines the number of frames readers see: it is grown last (see
        # _cache_handles), so that a kill in the middle of this loop never exposes a frame whose box or
        # observables are missing
        values.append(values.pop(1))
        for clock, is_step in self._clocks:
            clock.resize(n + 1, axis=0)
            clock[n] = int(step) if is_step else float(time_ps)
        for value_ds, value in zip(self._values, values, strict=True):
            value_ds.resize(n + 1, axis=0)
            value_ds[n] = value
        self._file.flush()

    def truncate_after_step(self, step: int) -> int:
        """Drop frames with MD step > ``step`` (restart from a checkpoint); returns frames dropped."""
        steps = self._file["particles"][PARTICLES_GROUP]["position/step"][()]
        keep = int(np.searchsorted(steps, step, side="right"))
        dropped = len(steps) - keep
        if dropped:
            self._resize_all(keep)
        return dropped

    def _repair_lengths(self) -> None:
        """After a crash, make every series as long as the shortest one (drop a partial last frame)."""
        lengths = [min(s[k].shape[0] for k in ("value", "step", "time")) for s in self._all_series()]
        if lengths and len(set(lengths + [self.n_frames])) > 1:
            self._resize_all(min(lengths))

    def _resize_all(self, n: int) -> None:
        for series in self._all_series():
            for key in ("value", "step", "time"):
                series[key].resize(n, axis=0)
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._file and self._file.id.valid:
            self._file.flush()
            self._file.close()

    def __enter__(self) -> H5MDWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
