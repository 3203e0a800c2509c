"""The demo's resumable stages and the settings that produced them.

``tfbsim demo`` continues an output folder that a killed run left behind. Continuing is only honest while the
settings are those that produced what is already there: a folder annealed at 350 K must not be reported as the
420 K anneal the user now asks for. Before any work starts, :func:`check_stages` therefore compares, for each
resumable stage, the settings that determine it (:data:`STAGE_KEYS`, plus the model's identity) with the record
the first run stored in ``stages/<stage>.json``:

- no record and no output → the stage starts afresh (its record is written before its first file);
- the same settings → the stage continues (or is reused when it finished);
- other settings → :class:`~tfbsim.errors.ConfigError` naming every differing key with its old and new value,
  unless the user asked to redo that stage (``tfbsim demo --fresh STAGE``): then its outputs are removed first;
- output but no record (a folder from an older tfbsim) → refused as well: its settings cannot be checked.

Only the stages the configuration runs are compared (:func:`active_stages`: ``bulk``, and ``deposit`` or
``interface`` after ``interface_mode``), so a folder can hold both interface modes. Settings that do not change a
stage's results (``workers``, ``threads_per_task``, ``serial_threads``, ``interface_bin_ang`` and
``deposit_layer_ang``, which only re-bin analyses that run on every call, and the potential's device) are not
compared. The deposition's settings are stored resolved (the demo's defaults with the user's keys), and the
bulk record carries the folder ``layout`` (2: the melt–quench in ``glass/``, outside the campaign), so a folder
of an older demo is refused rather than mixed.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...structures.io import read_json, to_jsonable, write_json

__all__ = ["STAGE_KEYS", "STAGE_PATHS", "stage_settings", "check_stages", "record_stage", "active_stages"]

logger = logging.getLogger(__name__)

#: DemoConfig fields that determine each resumable stage's results.
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "bulk": ("composition", "n_atoms", "quench", "temperatures_k", "timestep_fs", "equilibrate_ps",
             "production_ps", "traj_every", "seed"),
    "interface": ("composition", "seed", "interface_lateral_min_ang", "interface_thickness_ang",
                  "interface_anneal_k", "interface_anneal_ps", "interface_timestep_fs"),
    "deposit": ("composition", "n_atoms", "quench", "seed", "deposit", "deposit_vacuum_ang"),
}

#: Folder layout of the bulk stage (2: melt–quench in ``glass/``, the campaign starting from its glass).
BULK_LAYOUT = 2

#: Outputs of each stage, relative to the demo folder (removed by ``--fresh STAGE``).
STAGE_PATHS: dict[str, tuple[str, ...]] = {
    "bulk": ("glass", "bulk", "bulk_campaign.yaml"),
    "interface": ("interface",),
    "deposit": ("deposit",),
}


#: Stages built on another stage's output, redone with it (the deposition's substrate is the bulk stage's glass).
DEPENDS_ON: dict[str, str] = {"deposit": "bulk"}


def active_stages(cfg: Any) -> tuple[str, ...]:
    """The resumable stages ``cfg`` runs: ``bulk`` and the interface stage of its ``interface_mode``."""
    return ("bulk", "deposit" if getattr(cfg, "interface_mode", "pressed") == "deposit" else "interface")


def _record_path(out: Path, stage: str) -> Path:
    return out / "stages" / f"{stage}.json"


def stage_settings(cfg: Any, stage: str, calc: Any = None) -> dict[str, Any]:
    """The settings of ``cfg`` (a :class:`~tfbsim.workflows.demo.config.DemoConfig`) that determine ``stage``.

    Parameters
    ----------
    cfg
        The demo configuration.
    stage
        ``bulk``, ``interface`` (pressed) or ``deposit``.
    calc
        The loaded calculator; its sha256 identifies the model file (``None``: the spec alone).

    Returns
    -------
    dict
        JSON-ready ``{key: value}``, with ``model`` (spec), ``dtype`` and ``model_sha256``.
    """
    settings = {key: getattr(cfg, key) for key in STAGE_KEYS[stage]}
    if stage == "deposit":
        from .config import DEMO_DEPOSIT

        settings["deposit"] = {**DEMO_DEPOSIT, **cfg.deposit}
    if stage == "bulk":
        settings["layout"] = BULK_LAYOUT
    params = getattr(calc, "parameters", None) or {}
    settings.update(model=cfg.potential.model, dtype=cfg.potential.dtype, model_sha256=params.get("sha256"))
    return to_jsonable(settings)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{key} {old.get(key)!r} -> now {new.get(key)!r}" for key in sorted(set(old) | set(new))
            if key != "provenance" and old.get(key) != new.get(key)]


def check_stages(out: Path, cfg: Any, calc: Any, *, fresh: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Compare every stage's stored settings with ``cfg``; refuse or (``fresh``) clear changed stages.

    Nothing is written or removed unless every stage passes; only then are the stages named in ``fresh``
    removed (the settings records are written by :func:`record_stage` when a stage starts).

    Parameters
    ----------
    out
        The demo's output folder (it need not exist).
    cfg
        The demo configuration.
    calc
        The loaded calculator (model identity).
    fresh
        Stages to redo from scratch (``all`` for every stage).

    Returns
    -------
    dict
        ``{stage: settings}`` of the active stages (:func:`active_stages`) to pass to :func:`record_stage`.

    Raises
    ------
    ConfigError
        A stage's outputs were produced with other settings (each differing key is named with its old and
        new value), or have no settings record, and the stage is not in ``fresh``; an unknown stage name.
    """
    unknown = sorted(set(fresh) - set(STAGE_KEYS) - {"all"})
    if unknown:
        raise ConfigError(f"--fresh {', '.join(unknown)}: unknown stage; choose from {', '.join(STAGE_KEYS)}, all")
    redo = set(STAGE_KEYS) if "all" in fresh else set(fresh)
    redo |= {stage for stage, base in DEPENDS_ON.items() if base in redo}
    wanted = {stage: stage_settings(cfg, stage, calc) for stage in active_stages(cfg)}
    problems = []
    for stage, settings in wanted.items():
        if stage in redo:
            continue
        record = _record_path(out, stage)
        outputs = [out / p for p in STAGE_PATHS[stage] if (out / p).exists()]
        if record.exists():
            diffs = _differences(read_json(record), settings)
            if diffs:
                problems.append((stage, f"the {stage} stage in {out} was made with other settings: "
                                        f"{'; '.join(diffs)}"))
        elif outputs:
            problems.append((stage, f"{outputs[0]} holds results without a settings record (an older tfbsim?), "
                                    "so they cannot be checked against these settings"))
    if problems:
        stages = sorted({stage for stage, _ in problems})
        raise ConfigError(
            "; ".join(text for _, text in problems) + ". Restore the settings, use another --out, or pass "
            + " ".join(f"--fresh {s}" for s in stages) + " to redo that stage from scratch"
        )
    for stage in sorted(redo):
        for rel in (*STAGE_PATHS[stage], f"stages/{stage}.json"):
            path = out / rel
            if path.is_dir():
                logger.warning("--fresh %s: removing %s", stage, path)
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    return wanted


def record_stage(out: Path, stage: str, settings: dict[str, Any]) -> None:
    """Store the settings of ``stage`` (before its first output is written; unchanged records are kept)."""
    path = _record_path(out, stage)
    if not path.exists():
        write_json(path, settings)
