"""One trajectory loader for every analysis.

:class:`Trajectory` gives uniform, streaming access to frames from

- an :class:`ase.Atoms` (one frame) or a list of them,
- any file ASE reads (extxyz, .traj, POSCAR/XDATCAR, ...), streamed with :func:`ase.io.iread`,
- a tfbsim H5MD trajectory (``traj.h5md``; see :mod:`tfbsim.analysis.h5md`), streamed frame by frame,
- an MDAnalysis :class:`~MDAnalysis.core.universe.Universe`.

Only one frame (or the selected atoms of one frame) is held in memory at a time. Time information comes from
the H5MD file, from ``atoms.info["time_ps"]``, from a Universe's timesteps, or from ``dt_fs`` (time between
*stored* frames); analyses that need time raise :class:`TrajectoryError` asking for ``dt_fs`` when none is
available.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import TrajectoryError
from .h5md import is_h5md, iter_h5md_positions, read_h5md_frames, read_h5md_info

__all__ = ["Trajectory", "parse_frames", "TrajectoryLike"]

logger = logging.getLogger(__name__)

TrajectoryLike = Any  # Atoms | Sequence[Atoms] | str | Path | MDAnalysis.Universe | Trajectory


def parse_frames(spec: str | slice | None) -> slice:
    """``"START:STOP:STEP"`` (any part optional, e.g. ``"100:"`` or ``"::10"``) or a slice -> slice."""
    if spec is None:
        return slice(None)
    if isinstance(spec, slice):
        return spec
    parts = str(spec).split(":")
    if len(parts) > 3:
        raise TrajectoryError(f"bad frame selection {spec!r}; use START:STOP:STEP, e.g. 100: or ::10")
    try:
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise TrajectoryError(f"bad frame selection {spec!r}; use integers as START:STOP:STEP") from None
    if len(values) == 1:  # a single index
        i = values[0]
        return slice(i, None if i == -1 else i + 1) if i is not None else slice(None)
    if len(values) == 3 and values[2] is not None and values[2] <= 0:
        raise TrajectoryError(f"bad frame selection {spec!r}; STEP must be positive")
    return slice(*values)


class Trajectory:
    """Uniform read access to a trajectory, one frame at a time.

    Parameters
    ----------
    source
        Atoms, list of Atoms, file path, MDAnalysis Universe, or another :class:`Trajectory`.
    frames
        Frame selection (``slice`` or ``"START:STOP:STEP"``).
    dt_fs
        Time between stored frames (fs); overrides what the source says.
    format
        ASE format name for files ASE cannot guess.

    Attributes
    ----------
    n_atoms : int
    n_frames : int
        Number of *selected* frames.
    symbols : numpy.ndarray of str, shape (n_atoms,)
    regions : numpy.ndarray of str or None
        Per-atom ``region`` labels, when the source has them.
    times_ps : numpy.ndarray or None
        Time of each selected frame (ps).
    unwrapped : bool or None
        True when positions are known to be unwrapped (tfbsim H5MD), None when unknown.
    metadata : dict
        H5MD ``/parameters/tfbsim`` attributes (e.g. ``temperature_k``, ``timestep_fs``, ``provenance``).
    """

    def __init__(
        self,
        source: TrajectoryLike,
        *,
        frames: str | slice | None = None,
        dt_fs: float | None = None,
        format: str | None = None,  # noqa: A002
    ) -> None:
        self._slice = parse_frames(frames)
        self._format = format
        self.metadata: dict[str, Any] = {}
        self.unwrapped: bool | None = None
        self._path: Path | None = None
        self._frames_list: list[Atoms] | None = None
        self._universe = None
        self._h5md = False
        times: np.ndarray | None = None
        if isinstance(source, Trajectory):
            source = source.source
        self.source = source

        if isinstance(source, Atoms):
            self._frames_list = [source]
        elif isinstance(source, (list, tuple)) and all(isinstance(a, Atoms) for a in source):
            if not source:
                raise TrajectoryError("empty list of frames")
            self._frames_list = list(source)
        elif isinstance(source, (str, Path)):
            self._path = Path(source)
            if not self._path.exists():
                raise TrajectoryError(f"{self._path}: no such file; check the path")
            self._h5md = is_h5md(self._path)
        elif type(source).__name__ == "Universe":
            self._universe = source
        else:
            raise TrajectoryError(
                f"cannot read frames from a {type(source).__name__}; pass Atoms, a list of Atoms, a file path or "
                "an MDAnalysis Universe"
            )

        if self._h5md:
            info = read_h5md_info(self._path)
            self._all_ids = np.arange(info.n_frames)[self._slice]
            self.symbols = info.symbols
            self.numbers = info.numbers
            self.regions = info.regions
            self.pbc = info.pbc
            self.metadata = dict(info.metadata)
            self.unwrapped = bool(info.metadata.get("unwrapped", True))
            times = info.times_ps[self._all_ids]
            self.steps: np.ndarray | None = info.steps[self._all_ids]
        elif self._universe is not None:
            u = self._universe
            self._all_ids = np.arange(len(u.trajectory))[self._slice]
            self.symbols = _universe_symbols(u)
            from ase.data import atomic_numbers

            self.numbers = np.array([atomic_numbers.get(s, 0) for s in self.symbols])
            self.regions = None
            self.pbc = np.array([u.dimensions is not None] * 3)
            times = np.array([u.trajectory[i].time for i in self._all_ids], dtype=float) if len(u.trajectory) else None
            u.trajectory[0]
            self.steps = None
        else:
            if self._frames_list is None:
                self._frames_list = None  # streamed from file
                first = self._read_first()
            else:
                first = self._frames_list[0]
            self.symbols = np.array(first.get_chemical_symbols())
            self.numbers = first.numbers.copy()
            self.regions = np.asarray(first.arrays["region"]).astype(str) if "region" in first.arrays else None
            self.pbc = first.pbc.copy()
            n_total = len(self._frames_list) if self._frames_list is not None else self._count_file_frames()
            self._all_ids = np.arange(n_total)[self._slice]
            times = self._info_times(first)
            self.steps = None

        self.n_atoms = len(self.symbols)
        self.n_frames = len(self._all_ids)
        if self.n_frames == 0:
            raise TrajectoryError(f"the frame selection {frames!r} selects no frames (the source has fewer)")
        if dt_fs is not None:
            if dt_fs <= 0:
                raise TrajectoryError(f"dt_fs must be positive, got {dt_fs}")
            times = self._all_ids * dt_fs / 1000.0
        self.times_ps = times

    # ---------------------------------------------------------------------------------------- helpers
    def _read_first(self) -> Atoms:
        from ase.io import read

        try:
            return read(self._path, index=0, format=self._format)
        except Exception as exc:
            raise TrajectoryError(f"{self._path}: cannot be read by ASE ({exc})") from exc

    def _count_file_frames(self) -> int:
        from ase.io import iread

        try:
            return sum(1 for _ in iread(self._path, index=":", format=self._format))
        except Exception as exc:  # ase raises many types on a truncated or corrupt file
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: BaseException) -> TrajectoryError:
        return TrajectoryError(
            f"{self._path}: cannot be read by ASE ({type(exc).__name__}: {exc}); the file is truncated or corrupt, "
            "or not in the format its suffix says (pass format=... / check the file)"
        )

    def _info_times(self, first: Atoms) -> np.ndarray | None:
        """Times from ``info['time_ps']`` of every selected frame, when the first frame has one."""
        if "time_ps" not in first.info:
            return None
        return np.array([a.info.get("time_ps", np.nan) for a in self._iter_atoms_raw()], dtype=float)

    def _iter_atoms_raw(self) -> Iterator[Atoms]:
        if self._frames_list is not None:
            for i in self._all_ids:
                yield self._frames_list[i]
            return
        from ase.io import iread

        wanted = set(int(i) for i in self._all_ids)
        last = int(self._all_ids.max())
        frames = iread(self._path, index=":", format=self._format)
        for i in range(last + 1):
            try:
                atoms = next(frames)
            except StopIteration:
                return
            except Exception as exc:  # a frame that stops half-way, a corrupt line ...
                raise self._unreadable(exc) from exc
            if i in wanted:
                yield atoms

    # ------------------------------------------------------------------------------------------ access
    @property
    def dt_ps(self) -> float | None:
        """Median time between selected frames (ps), or ``None`` without time information."""
        if self.times_ps is None or len(self.times_ps) < 2 or np.isnan(self.times_ps).any():
            return None
        return float(np.median(np.diff(self.times_ps)))

    def require_times(self) -> np.ndarray:
        """Frame times (ps); raises :class:`TrajectoryError` asking for ``dt_fs`` when unknown."""
        if self.times_ps is None or np.isnan(self.times_ps).any():
            raise TrajectoryError(
                "the trajectory carries no time information; pass the time between stored frames with "
                "--dt-fs (dt_fs=...)"
            )
        return self.times_ps

    def iter_frames(self) -> Iterator[Atoms]:
        """Yield the selected frames as ASE Atoms (``info['time_ps']`` set when times are known)."""
        if self._h5md:
            # read in modest blocks so long files stream
            for start in range(0, self.n_frames, 64):
                ids = self._all_ids[start : start + 64]
                yield from self._with_times(read_h5md_frames(self._path, list(ids)), start)
            return
        if self._universe is not None:
            u = self._universe
            to_cell = _CellFromDimensions()
            for k, i in enumerate(self._all_ids):
                ts = u.trajectory[int(i)]
                atoms = Atoms(
                    symbols=list(self.symbols), positions=ts.positions.astype(float),
                    cell=to_cell(ts.dimensions), pbc=self.pbc,
                )
                yield from self._with_times([atoms], k)
            return
        for k, atoms in enumerate(self._iter_atoms_raw()):
            yield from self._with_times([atoms], k)

    def _with_times(self, frames: list[Atoms], offset: int) -> Iterator[Atoms]:
        for k, atoms in enumerate(frames):
            if self.times_ps is not None:
                atoms.info["time_ps"] = float(self.times_ps[offset + k])
            if self.regions is not None and "region" not in atoms.arrays:
                atoms.new_array("region", self.regions.copy())
            yield atoms

    def iter_positions(self, indices: Sequence[int] | np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(positions (n, 3), cell (3, 3))`` of the selected atoms, frame by frame (Å)."""
        idx = None if indices is None else np.asarray(indices, dtype=int)
        if self._h5md:
            yield from iter_h5md_positions(self._path, self._all_ids, idx)
            return
        if self._universe is not None:
            u = self._universe
            to_cell = _CellFromDimensions()
            for i in self._all_ids:
                ts = u.trajectory[int(i)]
                pos = ts.positions if idx is None else ts.positions[idx]
                yield pos.astype(float), to_cell(ts.dimensions)
            return
        for atoms in self._iter_atoms_raw():
            pos = atoms.positions if idx is None else atoms.positions[idx]
            yield np.array(pos, dtype=float), atoms.cell.array.copy()

    def first(self) -> Atoms:
        """The first selected frame."""
        return next(self.iter_frames())

    def subset(self, ids: Sequence[int] | np.ndarray) -> Trajectory:
        """A view of the selected frames ``ids`` (positions in this trajectory's selection), nothing read.

        The view streams only those frames (H5MD and MDAnalysis read them by index; ASE files stop after the
        last one), keeps their times and shares the source, atoms and metadata.

        Raises
        ------
        TrajectoryError
            An index lies outside the selection, or ``ids`` is empty.
        """
        ids = np.asarray(ids, dtype=int)
        if ids.ndim != 1 or ids.size == 0:
            raise TrajectoryError("a frame subset needs at least one frame index")
        if ids.min() < 0 or ids.max() >= self.n_frames:
            raise TrajectoryError(f"frame index out of range for a selection of {self.n_frames} frames")
        view = copy.copy(self)
        view._all_ids = self._all_ids[ids]
        view.n_frames = len(ids)
        view.times_ps = None if self.times_ps is None else np.asarray(self.times_ps)[ids]
        view.steps = None if self.steps is None else np.asarray(self.steps)[ids]
        return view

    def select(self, *, species: str | Sequence[str] | None = None, region: str | None = None) -> np.ndarray:
        """Indices of atoms of the given species and/or region (labels from ``arrays['region']``).

        Raises
        ------
        TrajectoryError
            A region is requested but the trajectory has no region labels, or the region is unknown.
        """
        mask = np.ones(self.n_atoms, dtype=bool)
        if species is not None:
            wanted = [species] if isinstance(species, str) else list(species)
            mask &= np.isin(self.symbols, wanted)
        if region is not None:
            if self.regions is None:
                raise TrajectoryError(
                    f"region {region!r} requested but the trajectory has no per-atom region labels; "
                    "select by a z-window instead"
                )
            known = sorted(set(self.regions.tolist()))
            if region not in known:
                raise TrajectoryError(f"unknown region {region!r}; the trajectory has: {', '.join(known)}")
            mask &= self.regions == region
        return np.flatnonzero(mask)


class _CellFromDimensions:
    """Cell vectors from MDAnalysis dimensions, caching the last box (fixed-box runs convert once)."""

    def __init__(self) -> None:
        self._dims: np.ndarray | None = None
        self._cell = np.zeros((3, 3))

    def __call__(self, dimensions: np.ndarray | None) -> np.ndarray:
        if dimensions is None:
            return np.zeros((3, 3))
        dims = np.asarray(dimensions, dtype=float)
        if self._dims is None or not np.array_equal(self._dims, dims):
            from ase.geometry import cellpar_to_cell

            self._dims, self._cell = dims.copy(), cellpar_to_cell(dims)
        return self._cell.copy()


def _universe_symbols(u: Any) -> np.ndarray:
    atoms = u.atoms
    for attr in ("elements", "types", "names"):
        try:
            values = getattr(atoms, attr)
        except Exception:  # noqa: BLE001 - MDAnalysis raises NoDataError for absent attributes
            continue
        values = np.array([str(v).strip().capitalize() if len(str(v)) <= 2 else str(v) for v in values])
        if len(values) and all(v for v in values):
            return values
    raise TrajectoryError("the Universe has no elements, types or names to tell the species apart")
