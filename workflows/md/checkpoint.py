"""MD checkpoints: one self-contained ``checkpoint.npz`` per run directory, replaced atomically.

A checkpoint holds everything an exact restart needs, in float64 and without pickles:

- the structure: atomic numbers, masses, pbc, ``region``/``fixed`` labels and ``atoms.info`` (JSON);
- the engine state (:meth:`~tfbsim.workflows.md.engines.base.MDEngine.get_state`): positions, momenta, cell,
  step, time origin, current thermostat target, the generator's ``bit_generator.state`` (JSON) and every
  thermostat/barostat variable (keys ``dyn:*``);
- ``meta`` (JSON): format version, config hash, model identity (sha256, dtype), tfbsim version, time.

Writing goes to a temporary file in the same folder, which is fsync'ed and renamed over the old checkpoint
(and the folder fsync'ed), so a kill at any moment leaves either the previous or the new checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ...errors import TrajectoryError
from ...structures.io import atomic_path, to_jsonable

__all__ = ["CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "Checkpoint", "write_checkpoint", "read_checkpoint"]

CHECKPOINT_NAME = "checkpoint.npz"
CHECKPOINT_FORMAT = 1
_STATIC = ("numbers", "masses", "pbc", "region", "fixed", "info_json")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back: the structure at the checkpoint step, the engine state and metadata.

    Attributes
    ----------
    atoms
        Structure with positions, momenta and cell of the checkpoint step (``region``/``fixed`` arrays and
        ``info`` restored).
    state
        Engine state, to pass to ``set_state`` / the engine constructor.
    meta
        ``format``, ``step``, ``time_ps``, ``config_hash``, ``model`` (identity dict), ``tfbsim_version``,
        ``written_utc``.
    """

    atoms: Atoms
    state: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def step(self) -> int:
        """MD step of the checkpoint."""
        return int(self.state["step"])


def _static_arrays(atoms: Atoms) -> dict[str, np.ndarray]:
    n = len(atoms)
    region = atoms.arrays.get("region")
    fixed = atoms.arrays.get("fixed")
    info = {k: v for k, v in atoms.info.items()}
    return {
        "numbers": np.asarray(atoms.numbers, dtype=np.int64),
        "masses": np.asarray(atoms.get_masses(), dtype=np.float64),
        "pbc": np.asarray(atoms.pbc, dtype=bool),
        "region": np.asarray(region, dtype=str) if region is not None else np.array([], dtype=str),
        "fixed": np.asarray(fixed, dtype=bool) if fixed is not None else np.zeros(n, dtype=bool),
        "info_json": np.array(json.dumps(to_jsonable(info))),
    }


def write_checkpoint(path: str | os.PathLike, atoms: Atoms, state: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``checkpoint.npz`` atomically (temp file + fsync + rename + folder fsync).

    Parameters
    ----------
    path
        Destination file.
    atoms
        The run's structure (for numbers, masses, pbc, labels, info; positions come from ``state``).
    state
        Engine state (names must not start with ``static:`` or equal ``meta``).
    meta
        JSON-serialisable metadata (config hash, model identity, ...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {f"static:{k}": v for k, v in _static_arrays(atoms).items()}
    payload.update(state)
    full_meta = {"format": CHECKPOINT_FORMAT, "step": int(state["step"]), **meta}
    payload["meta"] = np.array(json.dumps(to_jsonable(full_meta)))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **payload)
        handle.flush()
        os.fsync(handle.fileno())
    try:  # make the rename durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass
    return path


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`write_checkpoint`.

    Raises
    ------
    TrajectoryError
        The file is missing, unreadable, or of an unknown format (the message says what to do).
    """
    path = Path(path)
    if not path.is_file():
        raise TrajectoryError(f"{path}: no checkpoint; this run directory cannot be restarted (start a new run)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise TrajectoryError(f"{path}: unreadable checkpoint ({exc}); start a new run") from exc
    try:
        meta = json.loads(str(arrays.pop("meta")))
        static = {k: arrays.pop(f"static:{k}") for k in _STATIC}
    except KeyError as exc:
        raise TrajectoryError(f"{path}: not a tfbsim checkpoint (missing {exc})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise TrajectoryError(
            f"{path}: checkpoint format {meta.get('format')} is not {CHECKPOINT_FORMAT}; restart it with the "
            f"tfbsim version that wrote it ({meta.get('tfbsim_version')})"
        )
    atoms = Atoms(numbers=static["numbers"], positions=arrays["positions"], cell=arrays["cell"], pbc=static["pbc"])
    if not np.array_equal(atoms.get_masses(), static["masses"]):  # custom masses only (e.g. isotopes)
        atoms.set_masses(static["masses"])
    atoms.set_momenta(arrays["momenta"], apply_constraint=False)
    if static["region"].size:
        atoms.new_array("region", np.asarray(static["region"], dtype=str))
    atoms.new_array("fixed", np.asarray(static["fixed"], dtype=bool))
    atoms.info.update(json.loads(str(static["info_json"])))
    return Checkpoint(atoms=atoms, state=arrays, meta=meta)
