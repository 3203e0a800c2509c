"""The part of a provenance stamp that every layer may build: code, packages, host and time.

Why here, at the package root (next to :mod:`tfbsim.errors`)?  The one JSON writer,
:func:`tfbsim.structures.io.write_json`, sits in the bottom layer and is used by all of them (structures,
analysis, workflows, cli). Every JSON file tfbsim writes must carry a ``provenance`` block, so the writer must
be able to build at least this base block itself — without importing :mod:`tfbsim.workflows` (structures and
analysis never import workflows). The block below needs nothing but the standard library and installed package
metadata, so it may live below every layer. :func:`tfbsim.workflows.provenance.provenance` extends it with what
only the workflows know (the potential's spec and sha256, dtype, device, seed, resolved configuration); a
writer that has such a richer block passes it in, and the base block fills in only where none is given.
"""

from __future__ import annotations

import datetime as _dt
import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["utc_now", "git_commit", "package_versions", "base_provenance"]

_PACKAGES = ("numpy", "ase", "torch", "mace-torch", "pymatgen", "MDAnalysis", "h5py", "chgnet")


def utc_now() -> str:
    """Current UTC time in ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the tfbsim checkout (with ``-dirty`` when modified), or ``None`` outside git."""
    root = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of Python and the packages that change numbers (missing ones are omitted)."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def base_provenance(*, started_utc: str | None = None, extra: dict | None = None) -> dict[str, Any]:
    """The base provenance block: tfbsim version, git commit, package versions, host, UTC start/end.

    Parameters
    ----------
    started_utc
        Start time of the work (ISO 8601, UTC); default: now. ``ended_utc`` is always now.
    extra
        Further entries (e.g. ``{"writer": ...}``).

    Returns
    -------
    dict
        JSON-ready block.
    """
    from . import __version__

    block: dict[str, Any] = {
        "tfbsim_version": __version__,
        "git_commit": git_commit(),
        "versions": dict(package_versions()),
        "host": platform.node(),
        "started_utc": started_utc or utc_now(),
        "ended_utc": utc_now(),
    }
    if extra:
        block.update(extra)
    return block
