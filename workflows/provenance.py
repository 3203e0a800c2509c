"""One provenance stamp for ``atoms.info`` and JSON outputs.

A stamp records what is needed to reproduce or audit a result: tfbsim version and git commit, Python and key
package versions, the potential (spec, sha256, dtype, device), the seed, the resolved configuration, and UTC
start/end times. Package versions come from installed metadata, so stamping never imports torch.

The base block (code, packages, host, times) is :func:`tfbsim.provenance_base.base_provenance`, which the one
JSON writer (:func:`tfbsim.structures.io.write_json`) adds to any record that arrives without a block; this
module adds what only the workflows know (model, seed, resolved configuration).
"""

from __future__ import annotations

from typing import Any

from ase import Atoms

from ..provenance_base import base_provenance, git_commit, package_versions, utc_now

__all__ = ["provenance", "stamp", "git_commit", "utc_now", "package_versions"]


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
    block = base_provenance(started_utc=started_utc)
    if calc is not None:
        params = getattr(calc, "parameters", {}) or {}
        block["model"] = {
            key: params.get(key) for key in ("spec", "kind", "path", "sha256", "dtype", "device")
        }
    if seed is not None:
        block["seed"] = int(seed)
    if config is not None:
        block["config"] = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    block["ended_utc"] = utc_now()  # keep started/ended last, as before
    block["started_utc"] = block.pop("started_utc")
    block["ended_utc"] = block.pop("ended_utc")
    if extra:
        block.update(extra)
    return block


def stamp(atoms: Atoms, block: dict | None = None, **kwargs: Any) -> Atoms:
    """Store a provenance block in ``atoms.info["provenance"]`` (built from ``kwargs`` if not given)."""
    atoms.info["provenance"] = block if block is not None else provenance(**kwargs)
    return atoms
