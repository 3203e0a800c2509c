"""The tfbsim H5MD trajectory layout, and its reader.

tfbsim writes trajectories as H5MD 1.1 (``workflows/md/h5md.py``) in a layout that MDAnalysis'
``H5MDReader`` opens with the box (``mda.Universe("traj.h5md")``), and that this module reads back into ASE
frames without loading the whole file.

Layout
------
::

    /h5md                               version = [1, 1]; author/, creator/ (name = "tfbsim", version)
    /particles/trajectory/
        box/                            dimension = 3, boundary = periodic|none per axis
            edges/value  (F, 3, 3)      cell vectors as rows, Angstrom
        position/value   (F, N, 3)      UNWRAPPED Cartesian positions, Angstrom
        velocity/value   (F, N, 3)      optional, "Angstrom ps-1"
        force/value      (F, N, 3)      optional, "kJ mol-1 Angstrom-1" (an H5MD/MDAnalysis unit; the reader
                                        returns eV/Angstrom)
        */step (F,) int64, */time (F,) float64 "ps"
        species          (N,)           atomic numbers
        region           (N,)           tfbsim extension: per-atom region label (bytes)
    /observables/<name>/{value, step, time}
                                        e.g. temperature_k, potential_energy_ev, kinetic_energy_ev,
                                        total_energy_ev, pressure_gpa, volume_ang3
    /parameters/tfbsim                  attrs: format_version, timestep_fs, temperature_k, unwrapped,
                                        provenance (JSON), config (JSON)

The number of complete frames is ``position/value.shape[0]`` (the writer resizes, fills, then flushes, and
truncates partial frames when a run restarts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import TrajectoryError

__all__ = [
    "H5MD_FORMAT_VERSION",
    "PARTICLES_GROUP",
    "KJ_MOL_PER_EV",
    "H5MDInfo",
    "read_h5md_info",
    "iter_h5md_positions",
    "read_h5md_frames",
    "is_h5md",
    "open_universe",
]

H5MD_FORMAT_VERSION = 1
PARTICLES_GROUP = "trajectory"  # MDAnalysis' n_atoms parser looks here
#: 1 eV/Å in kJ mol⁻¹ Å⁻¹ (forces are stored in an MDAnalysis-recognised unit)
KJ_MOL_PER_EV = 96.48533212331002


@dataclass
class H5MDInfo:
    """Static content of a tfbsim H5MD file (no per-frame arrays except steps and times)."""

    path: Path
    n_frames: int
    n_atoms: int
    numbers: np.ndarray
    symbols: np.ndarray
    regions: np.ndarray | None
    pbc: np.ndarray
    steps: np.ndarray
    times_ps: np.ndarray
    has_velocities: bool
    has_forces: bool
    observables: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dt_ps(self) -> float | None:
        """Time between stored frames (ps), or ``None`` with fewer than two frames."""
        if len(self.times_ps) < 2:
            return None
        return float(np.median(np.diff(self.times_ps)))


@contextmanager
def _readable(path: str | Path) -> Iterator[None]:
    """Turn h5py's errors on a truncated or corrupt file into a :class:`TrajectoryError` naming the file."""
    try:
        yield
    except TrajectoryError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise TrajectoryError(
            f"{path}: the H5MD trajectory cannot be read ({type(exc).__name__}: {exc}); the file is truncated or "
            "corrupt (was its run killed while writing?): restore it, or re-run the MD that wrote it"
        ) from exc


def is_h5md(path: str | Path) -> bool:
    """True if ``path`` is an HDF5 file with an ``h5md`` group.

    Raises
    ------
    TrajectoryError
        The file has the HDF5 signature but cannot be opened (truncated or corrupt).
    """
    import h5py

    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        return False
    with _readable(path), h5py.File(path, "r") as handle:
        return "h5md" in handle


def _open(path: str | Path):
    import h5py

    path = Path(path)
    if not path.is_file():
        raise TrajectoryError(f"{path}: no such file; check the path")
    with _readable(path):
        handle = h5py.File(path, "r")
    if "particles" not in handle or PARTICLES_GROUP not in handle["particles"]:
        handle.close()
        raise TrajectoryError(f"{path}: no /particles/{PARTICLES_GROUP} group; not a tfbsim H5MD trajectory")
    return handle


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_h5md_info(path: str | Path) -> H5MDInfo:
    """Read the static content of a tfbsim H5MD file: atoms, regions, steps, times, metadata."""
    from ase.data import chemical_symbols

    with _readable(path), _open(path) as handle:
        group = handle["particles"][PARTICLES_GROUP]
        if "position" not in group:
            raise TrajectoryError(f"{path}: no position data in the trajectory")
        n_frames = int(group["position/value"].shape[0])
        numbers = np.asarray(group["species"][()], dtype=int)
        regions = None
        if "region" in group:
            regions = np.array([r.decode() if isinstance(r, bytes) else str(r) for r in group["region"][()]])
        boundary = group["box"].attrs.get("boundary", [b"periodic"] * 3)
        pbc = np.array([(b.decode() if isinstance(b, bytes) else str(b)) == "periodic" for b in boundary])
        steps = np.asarray(group["position/step"][:n_frames], dtype=np.int64)
        times = np.asarray(group["position/time"][:n_frames], dtype=float)
        observables = sorted(handle["observables"].keys()) if "observables" in handle else []
        metadata = {}
        if "parameters" in handle and "tfbsim" in handle["parameters"]:
            metadata = {k: _decode_attr(v) for k, v in handle["parameters/tfbsim"].attrs.items()}
        return H5MDInfo(
            path=Path(path),
            n_frames=n_frames,
            n_atoms=len(numbers),
            numbers=numbers,
            symbols=np.array([chemical_symbols[z] for z in numbers]),
            regions=regions,
            pbc=pbc,
            steps=steps,
            times_ps=times,
            has_velocities="velocity" in group,
            has_forces="force" in group,
            observables=observables,
            metadata=metadata,
        )


def iter_h5md_positions(
    path: str | Path,
    frames: slice | np.ndarray | list[int] | None = None,
    indices: np.ndarray | list[int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``(positions (n, 3) Å float64, cell (3, 3) Å)`` for the selected frames and atoms.

    Only the selected atoms of one frame are in memory at a time.
    """
    with _readable(path), _open(path) as handle:
        group = handle["particles"][PARTICLES_GROUP]
        pos = group["position/value"]
        edges = group["box/edges/value"]
        n_frames = pos.shape[0]
        frame_ids = _frame_ids(frames, n_frames)
        sel = None if indices is None else np.asarray(indices, dtype=int)
        sorted_sel, order = None, None
        if sel is not None:
            order = np.argsort(sel)
            sorted_sel = sel[order]
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
        for i in frame_ids:
            if sel is None:
                xyz = pos[i].astype(float)
            else:  # h5py needs increasing indices
                xyz = pos[i, sorted_sel, :].astype(float)[inverse]
            yield xyz, _cell(edges[i])


def _cell(edges: np.ndarray) -> np.ndarray:
    edges = np.asarray(edges, dtype=float)
    return np.diag(edges) if edges.shape == (3,) else edges


def _frame_ids(frames: slice | np.ndarray | list[int] | None, n_frames: int) -> np.ndarray:
    if frames is None:
        return np.arange(n_frames)
    if isinstance(frames, slice):
        return np.arange(n_frames)[frames]
    ids = np.asarray(frames, dtype=int)
    ids = np.where(ids < 0, ids + n_frames, ids)
    if ids.size and (ids.min() < 0 or ids.max() >= n_frames):
        raise TrajectoryError(f"frame index out of range for a trajectory of {n_frames} frames")
    return ids


def read_h5md_frames(path: str | Path, frames: slice | list[int] | None = None) -> list[Atoms]:
    """Read frames as ASE Atoms (unwrapped positions, cell, pbc, velocities/forces if stored).

    ``atoms.info`` holds ``step``, ``time_ps`` and the stored observables; ``arrays["region"]`` the regions.
    """
    info = read_h5md_info(path)
    out: list[Atoms] = []
    with _readable(path), _open(path) as handle:
        group = handle["particles"][PARTICLES_GROUP]
        obs = handle["observables"] if "observables" in handle else {}
        for i in _frame_ids(frames, info.n_frames):
            atoms = Atoms(
                numbers=info.numbers,
                positions=group["position/value"][i].astype(float),
                cell=_cell(group["box/edges/value"][i]),
                pbc=info.pbc,
            )
            if info.has_velocities:
                from ase import units

                vel = group["velocity/value"][i].astype(float)  # Å/ps
                atoms.set_velocities(vel / (1000.0 * units.fs))
            if info.has_forces:
                atoms.arrays["forces"] = group["force/value"][i].astype(float) / KJ_MOL_PER_EV
            if info.regions is not None:
                atoms.new_array("region", info.regions.copy())
            atoms.info["step"] = int(info.steps[i])
            atoms.info["time_ps"] = float(info.times_ps[i])
            for name in info.observables:
                values = obs[name]["value"]
                if i < values.shape[0]:
                    atoms.info[name] = float(values[i])
            out.append(atoms)
    return out


def open_universe(path: str | Path):
    """An MDAnalysis Universe of a tfbsim H5MD file with ``names``/``types``/``elements`` set from species.

    (``mda.Universe("traj.h5md")`` alone also works, with the box, but without species names.)
    """
    import warnings

    import MDAnalysis as mda

    info = read_h5md_info(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        universe = mda.Universe.empty(info.n_atoms, trajectory=False)
        symbols = [str(s) for s in info.symbols]
        universe.add_TopologyAttr("names", symbols)
        universe.add_TopologyAttr("types", symbols)
        universe.add_TopologyAttr("elements", symbols)
        universe.load_new(str(path), format="H5MD")
    return universe
