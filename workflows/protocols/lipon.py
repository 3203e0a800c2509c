"""Amorphous LiPON end to end: build (motif or random) → optional melt–quench → speciation report.

This is the composition behind ``tfbsim build lipon``; it lives in workflows/ because it joins the builder
(:mod:`tfbsim.structures.amorphous`), the protocol (:mod:`tfbsim.workflows.protocols.melt_quench`) and the
speciation report (:mod:`tfbsim.analysis.speciation_report`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...analysis.speciation_report import lipon_speciation
from ...errors import ConfigError
from ..potentials.factory import check_coverage
from ..provenance import provenance, utc_now
from .melt_quench import MeltQuenchConfig, MeltQuenchResult, melt_quench, resolve_melt_quench_config
from .melt_quench import density_g_cm3 as _density

__all__ = ["make_amorphous_lipon", "LiponBuild"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiponBuild:
    """Outcome of :func:`make_amorphous_lipon`.

    Attributes
    ----------
    atoms
        The output structure: the quenched glass, or the built box without a quench.
    initial
        The box as built.
    report
        JSON-ready summary (the ``tfbsim build lipon --json`` schema; see :func:`make_amorphous_lipon`).
    quench
        The melt–quench result, or ``None``.
    """

    atoms: Atoms
    initial: Atoms
    report: dict = field(repr=False)
    quench: MeltQuenchResult | None = None


def make_amorphous_lipon(
    composition: str,
    n_atoms: int,
    *,
    density_g_cm3: float = 2.4,
    mode: str = "motif",
    nd_fraction: float | None = None,
    allow_nt: bool = False,
    nt_fraction: float | None = None,
    lateral_ang: tuple[float, float] | None = None,
    lateral_cell_ang: Any = None,
    seed: int = 0,
    allow_charged: bool = False,
    quench: MeltQuenchConfig | str | dict | None = None,
    calc: Calculator | None = None,
    run_dir: str | Path | None = None,
    progress: bool = False,
    force: bool = False,
    threads: int | None = None,
) -> LiponBuild:
    """Build an amorphous LixPOyNz box, optionally melt–quench it, and report its speciation.

    Parameters
    ----------
    composition, n_atoms, mode, nd_fraction, allow_nt, nt_fraction, lateral_ang, lateral_cell_ang, seed, allow_charged
        As :func:`tfbsim.structures.amorphous.build_lipon`.
    density_g_cm3
        Density of the built box (g/cm³); the quench's NPT anneal then finds the potential's own.
    quench
        ``None``/``"none"`` (no MD), a preset name (``quick``, ``production``), a dict or a
        :class:`~tfbsim.workflows.protocols.melt_quench.MeltQuenchConfig`.
    calc
        Calculator for the quench (required with ``quench``).
    run_dir
        Folder of the melt–quench (checkpoints, trajectories); ``None`` runs it in memory.
    progress
        Progress bars for the MD stages.
    force
        Continue a melt–quench folder whose settings differ.
    threads
        Torch intra-op threads of the melt–quench (restored afterwards); ``None`` leaves torch's setting.

    Returns
    -------
    LiponBuild
        ``report`` keys: ``target_formula``, ``achieved_formula``, ``counts``, ``charge_per_p`` (e/P of the
        target formula), ``n_atoms``, ``mode``, ``seed``, ``density_g_cm3`` and ``cell_ang`` (output structure),
        ``density_initial_g_cm3``, ``min_distance_ang`` (output structure, Å), ``speciation_designed``,
        ``speciation_initial`` and ``speciation_final``
        (:func:`~tfbsim.analysis.speciation_report.lipon_speciation`), ``protocol`` (``None`` or the
        melt–quench summary), ``provenance``.

    Raises
    ------
    StructureError
        Any builder error (formula, charge, density, atom count ...).
    ConfigError
        A quench without a calculator, or invalid melt–quench settings.
    PotentialError
        The potential lacks an element of the composition.
    """
    from ...structures.amorphous import build_lipon, pair_min_distances

    started = utc_now()
    quench_cfg = None
    if quench is not None and not (isinstance(quench, str) and quench == "none"):
        if calc is None:
            raise ConfigError("a melt-quench needs a potential: pass --model SPEC (or calc=...)")
        quench_cfg = resolve_melt_quench_config(quench)
    initial = build_lipon(
        composition, n_atoms, density_g_cm3=density_g_cm3, mode=mode, nd_fraction=nd_fraction,
        allow_nt=allow_nt, nt_fraction=nt_fraction, lateral_ang=lateral_ang, lateral_cell_ang=lateral_cell_ang,
        seed=seed, allow_charged=allow_charged,
    )
    if quench_cfg is not None:
        check_coverage(calc, initial)
    spec_initial = lipon_speciation(initial)
    result = None
    final = initial
    if quench_cfg is not None:
        result = melt_quench(initial, calc, quench_cfg, run_dir, progress=progress, force=force, threads=threads)
        final = result.atoms
        spec_final = lipon_speciation(final)
    else:
        spec_final = spec_initial
    by_pair = pair_min_distances(final)
    info = initial.info
    report: dict[str, Any] = {
        "target_formula": info["target_formula"],
        "achieved_formula": info["achieved_formula"],
        "counts": info["counts"],
        "charge_per_p": info["charge_per_p"],
        "n_atoms": len(final),
        "mode": mode,
        "seed": int(seed),
        "density_g_cm3": _density(final),
        "density_initial_g_cm3": _density(initial),
        "cell_ang": np.asarray(final.cell.array).tolist(),
        "lateral_fixed": bool(info.get("lateral_fixed")),
        "min_distance_ang": min(by_pair.values()) if by_pair else None,
        "min_distance_by_pair_ang": by_pair,
        "speciation_designed": info.get("speciation_designed"),
        "speciation_initial": spec_initial,
        "speciation_final": spec_final,
        "protocol": None,
    }
    if result is not None:
        report["protocol"] = {
            "name": "melt_quench",
            "preset": result.config.preset,
            "run_dir": str(result.run_dir) if result.run_dir else None,
            "total_md_ps": result.config.total_md_ps,
            "density_initial_g_cm3": result.density_initial_g_cm3,
            "density_final_g_cm3": result.density_final_g_cm3,
            "energy_final_ev": result.energy_final_ev,
            "wall_s": result.wall_s,
            "stages": result.stages,
            "glass_transition": result.summary.get("glass_transition"),
            "network": result.summary.get("network"),
            "speciation_steady_before_quench": result.summary.get("speciation_steady_before_quench"),
            "config": result.config.model_dump(mode="json"),
        }
    report["provenance"] = provenance(
        config={"composition": composition, "n_atoms": n_atoms, **info.get("build", {})},
        calc=calc if result is not None else None, seed=seed, started_utc=started,
        extra={"workflow": "tfbsim.workflows.protocols.lipon.make_amorphous_lipon"},
    )
    if result is None:
        final.info["provenance"] = report["provenance"]
    return LiponBuild(atoms=final, initial=initial, report=report, quench=result)
