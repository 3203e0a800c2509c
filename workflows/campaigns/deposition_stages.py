"""The ``deposit`` and ``anneal`` stages of a campaign (run by :mod:`tfbsim.workflows.campaigns.worker`).

``deposit`` runs :func:`~tfbsim.workflows.protocols.deposition.deposit` and ``anneal``
:func:`~tfbsim.workflows.protocols.reactive_anneal.reactive_anneal` in the stage folder, so they follow those
protocols' rules: a completed stage is reused, an interrupted one continues from its checkpoint, and a folder
made with other settings is refused (:class:`~tfbsim.errors.ConfigError` naming the keys; the worker makes that
the task's failure ``reason``).

The next stage receives the final structure: after a deposition it has more atoms (``region`` ``deposit`` and
``dep_arrival`` ≥ 0 mark the arrived ones; ``fixed`` keeps the substrate's fixed bottom; momenta are kept).

The stage record (in the task's ``summary.json``) holds the run's file (``deposition``/``anneal``: the path
relative to the task folder), the counts and a short interphase result from
:func:`~tfbsim.analysis.deposition_profile.deposition_profile` (``profile``: the full record in
``<stage>/profile.json`` for a deposition, inside ``anneal.json`` for an anneal): the classes of the last
snapshot by layer (``products_by_layer`` for the product classes, ``layer_z_lo_ang`` the layers' lower
bounds), the order in which products appeared and the reduced P/N classes. A deposition whose elements have no
interphase classes (e.g. Cu) still completes: its record says ``profile_error``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ...structures.io import read_json, write_json

__all__ = ["deposit_stage", "anneal_stage", "profile_record", "PROFILE_LAYER_ANG"]

logger = logging.getLogger(__name__)

#: Layer thickness of a deposition stage's interphase profile (Å).
PROFILE_LAYER_ANG = 2.0

#: Per-atom arrays of a deposition's bookkeeping that the next stage does not need.
_INTERNAL = ("dep_thermo", "dep_flying", "dep_arrived_step", "dep_insert_z")


def profile_record(profile: dict) -> dict:
    """The short result of a :func:`~tfbsim.analysis.deposition_profile.deposition_profile` record."""
    from ...analysis.environments import PRODUCT_CLASSES

    last = profile["snapshots"][-1]
    layers = last.get("layer_counts", {})
    return {
        "layer_ang": profile.get("layer_ang"), "layer_z_lo_ang": profile.get("layer_z_lo_ang"),
        "class_counts": last.get("class_counts"), "deposit_classes": last.get("deposit_classes"),
        "products_by_layer": {c: v for c, v in layers.items() if c in PRODUCT_CLASSES},
        "product_order_first": profile.get("product_order_first"),
        "reduced_classes_present": profile.get("reduced_classes_present"),
        "reduced_pn_depth_ang": last.get("reduced_pn_depth_ang"),
    }


def _rel(sdir: Path, name: str) -> str:
    return f"{sdir.name}/{name}"


def _deposit_state(sdir: Path) -> dict:
    """``{"reused": True}`` for a completed deposition, ``{"resumed": True}`` for one with a checkpoint, else ``{}``."""
    path = sdir / "deposition.json"
    try:
        done = path.is_file() and read_json(path).get("status") == "completed"
    except Exception:  # a summary cut by a kill
        done = False
    if done:
        return {"reused": True}
    return {"resumed": True} if (sdir / "checkpoint.npz").is_file() else {}


def deposit_stage(atoms: Atoms, calc: Any, config: dict, sdir: Path) -> tuple[Atoms, dict]:
    """Deposit onto ``atoms`` in ``sdir`` (or continue / reuse the deposition there); returns the film and record.

    Raises
    ------
    ConfigError
        ``sdir`` holds a deposition with other settings, model or substrate (the keys are named); bad settings.
    SimulationUnstable
        A guard tripped, or the film reached the cell top.
    """
    from ..protocols.deposition import deposit

    state = _deposit_state(sdir)
    if state.get("resumed"):
        logger.info("continuing the deposition in %s from its checkpoint", sdir)
    result = deposit(atoms, calc, config, sdir)
    out = result.atoms.copy()
    out.calc = None
    for key in _INTERNAL:
        if key in out.arrays:
            del out.arrays[key]
    s = result.summary
    record: dict[str, Any] = {
        "status": "completed", **state, "deposition": _rel(sdir, "deposition.json"),
        "species": s.get("species"), "n_sent": s.get("n_sent"), "n_joined": s.get("n_joined"),
        "n_reflected": s.get("n_reflected"), "n_flying": s.get("n_flying"),
        "n_deposited": len(out) - len(atoms), "sticking_fraction": s.get("sticking_fraction"),
        "n_atoms_initial": len(atoms), "n_atoms_final": len(out), "time_ps": s.get("time_ps"),
        "wall_s": s.get("wall_s"),
    }
    record.update(_deposition_profile(sdir, config, reuse=bool(state.get("reused"))))
    return out, record


def _deposition_profile(sdir: Path, config: dict, *, reuse: bool) -> dict:
    """The interphase profile of the deposition's snapshots (``profile.json``; an existing one when reused)."""
    from ...analysis.deposition_profile import deposition_profile

    path = sdir / "profile.json"
    try:
        if reuse and path.is_file():
            profile = read_json(path)
        else:
            profile = deposition_profile(sdir / "snapshots.extxyz", species=config.get("species"),
                                         layer_ang=PROFILE_LAYER_ANG).to_dict()
            write_json(path, profile)
        return {"profile": {"path": _rel(sdir, "profile.json"), **profile_record(profile)}}
    except Exception as exc:  # an analysis error does not undo the deposition
        text = " ".join(str(exc).split())[:300]
        logger.warning("%s: no interphase profile: %s", sdir, text)
        return {"profile_error": f"{type(exc).__name__}: {text}"}


def anneal_stage(atoms: Atoms, calc: Any, config: dict, sdir: Path) -> tuple[Atoms, dict]:
    """Run the anneal's schedule on ``atoms`` in ``sdir`` (or continue / reuse it); returns the structure and record.

    The MD of a completed anneal is reused (its profile is classified again from the stored frames).

    Raises
    ------
    ConfigError
        ``sdir`` holds an anneal with another schedule or settings (the MD's keys are named).
    SimulationUnstable
        An MD guard tripped.
    """
    from ..md.resume import RunState, inspect_run_dir
    from ..protocols.reactive_anneal import reactive_anneal

    run_state = inspect_run_dir(sdir / "md")
    state = {RunState.COMPLETED: {"reused": True}, RunState.CHECKPOINT: {"resumed": True}}.get(run_state, {})
    result = reactive_anneal(atoms, calc, config, sdir)
    out = result.atoms.copy()
    out.calc = None
    dep = atoms.arrays.get("dep_arrival")  # the MD checkpoint keeps region and fixed, not the arrival labels
    if dep is not None and len(out) == len(atoms) and "dep_arrival" not in out.arrays:
        out.new_array("dep_arrival", np.asarray(dep).copy())
    md = result.summary.get("md", {})
    record: dict[str, Any] = {
        "status": "completed", **state, "anneal": _rel(sdir, "anneal.json"),
        "schedule": result.summary.get("schedule"), "total_ps": result.summary.get("total_ps"),
        "steps_done": md.get("steps_done"), "temperature_mean_k": md.get("temperature_mean_k"),
        "wall_s": md.get("wall_s"), "warnings": result.warnings,
        "profile": {"path": _rel(sdir, "anneal.json"), **profile_record(result.profile)},
    }
    return out, record
