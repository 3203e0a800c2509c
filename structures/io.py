"""Small file helpers shared by every layer: read/write structures and JSON, atomically.

"Atomically" means: the data go to a temporary file in the destination folder, which is renamed onto the
final name only once it is complete. A crash or a failed validation therefore never leaves a half-written
file behind, and an existing file is either the old or the new version, never a mix.

Structures keep tfbsim metadata: ``atoms.info`` dictionaries survive extxyz (ASE stores them as JSON), and
per-atom labels such as ``region`` (str) and ``fixed`` (bool) travel as extxyz columns.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import StructureError, TrajectoryError

__all__ = [
    "atomic_path",
    "read_structure",
    "write_structure",
    "write_json",
    "read_json",
    "to_jsonable",
    "set_region",
]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` that is renamed onto ``path`` on success.

    The temporary name keeps the suffix so that writers choosing the format from it work. On any exception
    the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # like mkstemp, but with the usual permissions (0666 minus the umask), not 0600
        tmp_path = path.parent / f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, Paths, sets and tuples into plain JSON types (recursively).

    Non-finite floats become ``None`` (JSON has no NaN), so every file we write is strict JSON.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):  # pydantic models
        return to_jsonable(obj.model_dump(mode="json"))
    if hasattr(obj, "to_dict"):  # report objects that know their JSON form
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    return obj


def write_json(
    path: str | os.PathLike, data: Any, *, indent: int = 2, provenance: dict | bool | None = None
) -> Path:
    """Write ``data`` as strict JSON to ``path`` atomically and return the path: the one JSON writer.

    Every JSON *record* (a mapping) tfbsim writes carries a ``provenance`` block: a record that arrives without
    one gets the base block of :func:`tfbsim.provenance_base.base_provenance` (tfbsim version, git commit,
    package versions, host, UTC time), so that no output of any layer goes without. Workflows that know more
    (model, seed, resolved configuration) put their own block in ``data["provenance"]`` or pass it here.

    Parameters
    ----------
    path
        Destination (folders are created).
    data
        Anything :func:`to_jsonable` converts.
    indent
        JSON indentation.
    provenance
        ``None`` (default): keep ``data``'s block, else add the base block; a dict: use it as the block;
        ``False``: write ``data`` as it is (pure data files that a program reads back key by key, such as
        a model's isolated-atom energies).
    """
    record = to_jsonable(data)
    if isinstance(record, dict) and provenance is not False:
        if isinstance(provenance, dict):
            record["provenance"] = to_jsonable(provenance)
        elif record.get("provenance") is None:
            from ..provenance_base import base_provenance

            record["provenance"] = base_provenance(extra={"file": Path(path).name})
    text = json.dumps(record, indent=indent, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, raising :class:`TrajectoryError` with the file name when it is missing or bad."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise TrajectoryError(f"{path}: no such file; check the path") from exc
    except json.JSONDecodeError as exc:
        raise TrajectoryError(f"{path}: not valid JSON ({exc}); was it written by tfbsim?") from exc


def _format_for(path: Path, fmt: str | None) -> str | None:
    if fmt:
        return fmt
    suffix = path.suffix.lower()
    if suffix in {"", ".xyz", ".extxyz"}:
        return "extxyz"
    return None  # let ase.io pick from the suffix


def write_structure(
    path: str | os.PathLike,
    atoms: Atoms | list[Atoms],
    *,
    format: str | None = None,  # noqa: A002 - mirrors ase.io.write
    **kwargs: Any,
) -> Path:
    """Write one structure (or a list of frames) atomically; the format follows the suffix (extxyz default).

    Parameters
    ----------
    path
        Destination. ``.xyz``/``.extxyz`` or no suffix give extended XYZ, which keeps ``info`` and
        per-atom ``arrays`` (``region``, ``fixed``); other suffixes go through :func:`ase.io.write`.
    atoms
        Structure or frames to write.
    format
        Force an ASE format name.
    """
    from ase.io import write

    path = Path(path)
    fmt = _format_for(path, format)
    with atomic_path(path) as tmp:
        try:
            write(tmp, atoms, format=fmt, **kwargs)
        except Exception as exc:  # ase raises many types for unsupported formats
            raise StructureError(
                f"cannot write {path.name}: {exc}. Use a suffix ASE knows (e.g. .extxyz, .cif, .vasp)"
            ) from exc
    return path


def read_structure(path: str | os.PathLike, index: int | str = -1, *, format: str | None = None) -> Any:
    """Read a structure (``index=-1``: the last frame) or frames (``index=":"``) from any ASE format.

    Per-atom string labels written by :func:`write_structure` come back as ``str`` arrays.
    """
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise StructureError(f"{path}: no such file; check the path")
    try:
        result = read(path, index=index, format=_format_for(path, format))
    except Exception as exc:
        raise StructureError(f"{path}: cannot be read as a structure ({exc})") from exc
    frames = result if isinstance(result, list) else [result]
    for frame in frames:
        if "region" in frame.arrays and frame.arrays["region"].dtype == object:
            frame.arrays["region"] = frame.arrays["region"].astype(str)
        if "fixed" in frame.arrays:
            frame.arrays["fixed"] = frame.arrays["fixed"].astype(bool)
    return result


def set_region(atoms: Atoms, labels: str | list[str] | np.ndarray) -> Atoms:
    """Set the per-atom ``region`` label (one string for all atoms, or one per atom); returns ``atoms``."""
    if isinstance(labels, str):
        labels = [labels] * len(atoms)
    values = np.asarray(labels, dtype=str)
    if values.shape != (len(atoms),):
        raise StructureError(f"region needs {len(atoms)} labels, got {values.shape}")
    if "region" in atoms.arrays:
        del atoms.arrays["region"]
    width = max((len(v) for v in values), default=1)
    atoms.new_array("region", values.astype(f"<U{max(width, 16)}"))
    return atoms


