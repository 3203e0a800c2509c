"""One provenance stamp for ``atoms.info`` and JSON outputs.

A stamp records what is needed to reproduce or audit a result: tfbsim version and git commit, Python and key
package versions, the potential (spec, sha256, dtype, device), the seed, the resolved configuration, and UTC
start/end times. Package versions come from installed metadata, so stamping never imports torch.
"""

from __future__ import annotations

import datetime as _dt
import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from ase import Atoms

__all__ = ["provenance", "stamp", "git_commit", "utc_now", "package_versions"]

_PACKAGES = ("numpy", "ase", "torch", "mace-torch", "pymatgen", "MDAnalysis", "h5py", "chgnet")


def utc_now() -> str:
    """Current UTC time in ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the tfbsim checkout (with ``-dirty`` when modified), or ``None`` outside git."""
    root = Path(__file__).resolve().parents[1]
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


def provenance(
    *,
    config: Any = None,
    calc: Any = None,
    seed: int | None = None,
    started_utc: str | None = None,
    extra: dict | None = None,
) -> dict:
    """Build a provenance block.

    Parameters
    ----------
    config
        The resolved configuration (pydantic model or dict), stored in full.
    calc
        A calculator from :func:`tfbsim.workflows.potentials.factory.load_potential`; its spec, sha256, dtype and
        device are copied from ``calc.parameters``.
    seed
        Random seed of the run, if any.
    started_utc
        Start time; ``ended_utc`` is set to now.
    extra
        Further entries (e.g. the command line).
    """
    from .. import __version__

    block: dict[str, Any] = {
        "tfbsim_version": __version__,
        "git_commit": git_commit(),
        "versions": package_versions(),
        "host": platform.node(),
    }
    if calc is not None:
        params = getattr(calc, "parameters", {}) or {}
        block["model"] = {
            key: params.get(key) for key in ("spec", "kind", "path", "sha256", "dtype", "device")
        }
    if seed is not None:
        block["seed"] = int(seed)
    if config is not None:
        block["config"] = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    block["started_utc"] = started_utc or utc_now()
    block["ended_utc"] = utc_now()
    if extra:
        block.update(extra)
    return block


def stamp(atoms: Atoms, block: dict | None = None, **kwargs: Any) -> Atoms:
    """Store a provenance block in ``atoms.info["provenance"]`` (built from ``kwargs`` if not given)."""
    atoms.info["provenance"] = block if block is not None else provenance(**kwargs)
    return atoms
