"""Glass on a substrate: melt–quench only the glass of a built interface, then anneal/relax it in place.

Composes :func:`tfbsim.interfaces.builder.build_interface` outputs with the melt–quench protocol
(:func:`tfbsim.workflows.protocols.melt_quench.melt_quench`) the way a sputtered film forms on a cold substrate:

1. ``1_deposit`` — every crystal atom is fixed; the glass is pre-relaxed, melted at ``melt_k``, quenched
   to ``final_k`` and relaxed (fixed cell) against the rigid substrate (no anneal in this step).
2. ``2_anneal`` — the crystals' surface layers (within ``mobile_depth_ang`` of an interface) are released,
   their inner layers stay fixed, and the whole cell is pre-relaxed, annealed at ``final_k`` (NPT, only c
   moves: the glass finds its density along the normal while the in-plane cell stays the substrate's) and relaxed
   (positions + c). With vacuum (no periodic sandwich) there is no barostat: step 2 is a relaxation at fixed
   cell, and the builder's fixed bottom layers stay fixed.

Both steps are ordinary melt–quench folders inside ``run_dir`` (checkpoints, restart by calling again).
Before any MD, :func:`tfbsim.workflows.protocols.li_melting.check_li_melting` warns when a mobile Li-metal region would
see more than 430 K (in step 1 the Li is fixed, so only ``final_k`` matters).

:func:`relax_interface` is the ``--relax`` step: fixed in-plane cell, positions and c relaxed (periodic
sandwich) or positions only (vacuum).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError
from ..potentials.factory import check_coverage
from .li_melting import check_li_melting
from .melt_quench import MeltQuenchConfig, melt_quench, resolve_melt_quench_config

__all__ = [
    "make_interface",
    "InterfaceBuild",
    "quench_on_substrate",
    "relax_interface",
    "InterfaceQuenchResult",
    "glass_regions",
    "inner_layers",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InterfaceQuenchResult:
    """Outcome of :func:`quench_on_substrate`.

    Attributes
    ----------
    atoms
        Final structure (regions, the original ``fixed`` tags and ``info`` kept; ``info["quench_on_substrate"]``
        holds the summary).
    summary
        ``preset``, ``glass_regions``, ``mobile_depth_ang``, ``periodic_sandwich``, ``steps`` (one record per
        step: name, n_fixed, melt–quench summary), ``warnings``, ``run_dir``, ``density_glass_g_cm3``.
    """

    atoms: Atoms
    summary: dict[str, Any] = field(repr=False)


def glass_regions(atoms: Atoms) -> list[str]:
    """Region labels of the amorphous phases (from ``info["interface"]``, else regions named ``lipon*``)."""
    stack = (atoms.info.get("interface") or {}).get("stack")
    if stack:
        return [e["region"] for e in stack if e.get("kind") == "glass"]
    regions = np.asarray(atoms.arrays.get("region", [])).astype(str)
    return sorted({r for r in regions.tolist() if r.startswith("lipon")})


def inner_layers(atoms: Atoms, crystal_mask: np.ndarray, interfaces_z_ang: list[float], depth_ang: float,
                 periodic: bool) -> np.ndarray:
    """Crystal atoms farther than ``depth_ang`` (along z) from every interface plane."""
    z = atoms.positions[:, 2]
    if not interfaces_z_ang:
        return crystal_mask.copy()
    dz = np.abs(z[:, None] - np.asarray(interfaces_z_ang, dtype=float)[None, :])
    if periodic:
        height = float(atoms.cell[2, 2])
        dz = np.minimum(dz, height - dz)
    return crystal_mask & (dz.min(axis=1) > depth_ang)


def _glass_density(atoms: Atoms, glass: np.ndarray) -> float | None:
    if not glass.any():
        return None
    z = atoms.positions[glass, 2]
    area = float(np.linalg.norm(np.cross(atoms.cell[0], atoms.cell[1])))
    volume_cm3 = area * float(z.max() - z.min()) * 1e-24
    return float(atoms.get_masses()[glass].sum() * 1.66053906660e-24 / volume_cm3) if volume_cm3 > 0 else None


def quench_on_substrate(
    atoms: Atoms,
    calc: Calculator,
    config: MeltQuenchConfig | str | dict = "quick",
    run_dir: str | Path | None = None,
    *,
    mobile_depth_ang: float = 4.0,
    progress: bool = False,
    force: bool = False,
) -> InterfaceQuenchResult:
    """Melt–quench the glass of an interface on its fixed substrate, then anneal and relax (module docstring).

    Parameters
    ----------
    atoms
        Output of :func:`~tfbsim.interfaces.builder.build_interface` (``region`` array, ``interfaces_z_ang``).
    calc
        Calculator from :func:`~tfbsim.workflows.potentials.factory.load_potential`.
    config
        Melt–quench preset name, dict or :class:`~tfbsim.workflows.protocols.melt_quench.MeltQuenchConfig`; its
        ``melt_*``/``quench_*`` settings drive step 1, ``anneal_ps``/``final_relax_*`` step 2.
    run_dir
        Folder for the two melt–quench runs (``1_deposit``, ``2_anneal``); ``None`` runs in memory.
    mobile_depth_ang
        Crystal atoms within this z distance of an interface move in step 2 (Å).
    progress, force
        As :func:`~tfbsim.workflows.protocols.melt_quench.melt_quench`.

    Raises
    ------
    ConfigError
        No glass region, or no region labels at all.
    PotentialError
        The potential lacks an element of the structure.
    SimulationUnstable
        An MD guard tripped.
    """
    if "region" not in atoms.arrays:
        raise ConfigError("quench on substrate needs region labels (arrays['region']): build with build_interface")
    glasses = glass_regions(atoms)
    regions = np.asarray(atoms.arrays["region"]).astype(str)
    glass = np.isin(regions, glasses)
    if not glass.any():
        raise ConfigError(f"no glass region to quench (regions: {', '.join(sorted(set(regions.tolist())))})")
    if not mobile_depth_ang >= 0:
        raise ConfigError(f"mobile_depth_ang must be >= 0 Å, got {mobile_depth_ang!r}")
    cfg = resolve_melt_quench_config(config)
    check_coverage(calc, atoms)
    periodic = bool(atoms.info.get("periodic_sandwich", True))
    original_fixed = np.asarray(atoms.arrays.get("fixed", np.zeros(len(atoms), bool)), dtype=bool)
    rd = Path(run_dir) if run_dir is not None else None
    warnings: list[str] = []

    # step 1: glass melts and quenches against a rigid substrate
    deposit = atoms.copy()
    deposit.calc = None
    deposit.set_constraint()
    deposit.arrays["fixed"] = original_fixed | ~glass
    deposit.info["lateral_fixed"] = True
    cfg1 = MeltQuenchConfig(**{**cfg.model_dump(), "anneal_ps": 0.0, "final_relax_cell": False, "cell_axes": "z"})
    for label, temps in (("deposit (melt/quench)", [cfg1.melt_k, cfg1.final_k]),):
        msg = check_li_melting(deposit, temps, context=f"quench on substrate: {label}")
        if msg:
            warnings.append(msg)
    logger.info("quench on substrate: step 1, %d glass atoms mobile, %d fixed",
                int((~deposit.arrays["fixed"]).sum()), int(deposit.arrays["fixed"].sum()))
    first = melt_quench(deposit, calc, cfg1, None if rd is None else rd / "1_deposit", progress=progress,
                        force=force)

    # step 2: release the crystals' surface layers; anneal (periodic) and relax
    anneal = first.atoms.copy()
    anneal.calc = None
    anneal.set_constraint()
    crystal = ~glass
    inner = inner_layers(anneal, crystal, list(atoms.info.get("interfaces_z_ang", [])), mobile_depth_ang, periodic)
    anneal.arrays["fixed"] = original_fixed | (inner if periodic else np.zeros(len(anneal), bool))
    updates: dict[str, Any] = {"melt_ps": 0.0, "melt_k": cfg.final_k}
    if periodic:
        updates.update(cell_axes="z")
    else:
        updates.update(anneal_ps=0.0, final_relax_cell=False, cell_axes="z")
    cfg2 = MeltQuenchConfig(**{**cfg.model_dump(), **updates})
    msg = check_li_melting(anneal, [cfg2.final_k], context="quench on substrate: anneal")
    if msg:
        warnings.append(msg)
    second = melt_quench(anneal, calc, cfg2, None if rd is None else rd / "2_anneal", progress=progress,
                         force=force)

    final = second.atoms.copy()
    final.calc = None
    final.set_constraint()
    final.arrays["fixed"] = original_fixed.copy()
    final.info = dict(atoms.info)
    steps = [
        {"name": "deposit", "n_fixed": int(deposit.arrays["fixed"].sum()), "status": first.summary.get("status"),
         "total_md_ps": cfg1.total_md_ps, "stages": first.stages, "wall_s": first.wall_s},
        {"name": "anneal", "n_fixed": int(anneal.arrays["fixed"].sum()), "status": second.summary.get("status"),
         "total_md_ps": cfg2.total_md_ps, "stages": second.stages, "wall_s": second.wall_s,
         "barostat": bool(periodic and cfg2.anneal_ps > 0)},
    ]
    summary = {
        "preset": cfg.preset,
        "config": cfg.model_dump(mode="json"),
        "glass_regions": glasses,
        "mobile_depth_ang": float(mobile_depth_ang),
        "periodic_sandwich": periodic,
        "steps": steps,
        "warnings": warnings,
        "run_dir": str(rd) if rd is not None else None,
        "energy_final_ev": second.energy_final_ev,
        "cell_c_initial_ang": float(atoms.cell[2, 2]),
        "cell_c_final_ang": float(final.cell[2, 2]),
        "density_glass_initial_g_cm3": _glass_density(atoms, glass),
        "density_glass_final_g_cm3": _glass_density(final, glass),
        "wall_s": first.wall_s + second.wall_s,
    }
    final.info["quench_on_substrate"] = {k: summary[k] for k in (
        "preset", "glass_regions", "mobile_depth_ang", "run_dir", "cell_c_final_ang", "density_glass_final_g_cm3")}
    _update_interfaces(final, atoms)
    return InterfaceQuenchResult(atoms=final, summary=summary)


def _update_interfaces(final: Atoms, initial: Atoms) -> None:
    """Move ``interfaces_z_ang`` and ``phase_z_ranges_ang`` with the structure (c may have changed)."""
    regions = np.asarray(final.arrays["region"]).astype(str)
    z = final.positions[:, 2]
    if "phase_z_ranges_ang" in initial.info:
        final.info["phase_z_ranges_ang"] = {
            r: [float(z[regions == r].min()), float(z[regions == r].max())]
            for r in initial.info["phase_z_ranges_ang"] if np.any(regions == r)
        }
    old = initial.info.get("interfaces_z_ang")
    if old:
        scale = float(final.cell[2, 2]) / float(initial.cell[2, 2])
        final.info["interfaces_z_ang"] = [float(v) * scale for v in old]


def relax_interface(
    atoms: Atoms, calc: Calculator, *, fmax_ev_ang: float = 0.05, max_steps: int = 500, progress: bool = True
) -> tuple[Atoms, dict]:
    """Relax an interface with its in-plane cell fixed: positions and c (periodic sandwich) or positions only.

    Fixed atoms (``arrays["fixed"]``) stay in place. Returns the relaxed structure (no calculator attached,
    ``info`` kept, ``info["relax"]`` added) and a summary dict. With ``progress`` (default: such relaxations
    of a few hundred atoms take minutes) the step, max force and energy are logged on ``tfbsim.progress`` at
    INFO every 30 s and at the end; the CLI shows them unless ``--quiet``, a library caller only when it
    enables that logger.
    """
    from ..md.relax import relax

    periodic = bool(atoms.info.get("periodic_sandwich", True))
    result = relax(atoms, calc, fmax_ev_ang=fmax_ev_ang, max_steps=max_steps, cell=periodic, cell_axes="z",
                   progress=progress)
    out = result.atoms.copy()
    out.calc = None
    out.set_constraint()
    out.info = dict(atoms.info)
    summary = {
        "converged": result.converged, "steps": result.steps, "energy_initial_ev": result.energy_initial_ev,
        "energy_final_ev": result.energy_final_ev, "max_force_ev_ang": result.max_force_ev_ang,
        "cell_change_pct": list(result.cell_change_pct), "cell_axes": "z" if periodic else "fixed",
        "fmax_ev_ang": fmax_ev_ang,
    }
    out.info["relax"] = summary
    _update_interfaces(out, atoms)
    if not result.converged:
        residual = (f"max|F| = {result.max_force_ev_ang:.3f} eV/Å" if result.max_force_ev_ang > fmax_ev_ang else
                    f"atomic forces converged (max|F| = {result.max_force_ev_ang:.3f} eV/Å) but the stress along the "
                    "normal has not")
        logger.warning("interface relaxation stopped after %d steps (fmax %.3g eV/Å): %s; raise max_steps to go on",
                       result.steps, fmax_ev_ang, residual)
    return out, summary


@dataclass(frozen=True)
class InterfaceBuild:
    """Outcome of :func:`make_interface`.

    Attributes
    ----------
    atoms
        The final structure (built, quenched and/or relaxed), provenance stamped.
    initial
        The structure as built.
    report
        JSON-ready report: the builder's (:func:`tfbsim.interfaces.builder.build_interface`) with geometry
        updated after a quench/relax, plus ``quench_on_substrate``, ``relax``, ``warnings``, ``provenance``.
    """

    atoms: Atoms
    initial: Atoms
    report: dict = field(repr=False)


def make_interface(
    stack: Any,
    *,
    quench: MeltQuenchConfig | str | dict | None = None,
    relax: bool = False,
    calc: Calculator | None = None,
    run_dir: str | Path | None = None,
    mobile_depth_ang: float = 4.0,
    relax_fmax_ev_ang: float = 0.05,
    relax_steps: int = 500,
    progress: bool = False,
    force: bool = False,
    **build_kwargs: Any,
) -> InterfaceBuild:
    """Build an interface (:func:`~tfbsim.interfaces.builder.build_interface`), optionally quench the glass on
    the substrate (:func:`quench_on_substrate`) and relax along the normal (:func:`relax_interface`).

    Parameters
    ----------
    stack, build_kwargs
        Passed to :func:`~tfbsim.interfaces.builder.build_interface`.
    quench
        ``None`` (no MD), a melt–quench preset name, dict or config.
    relax
        Relax with the in-plane cell fixed after building (and quenching).
    calc
        Calculator for the quench and relaxation (required for either).
    run_dir
        Folder of the quench runs (``None``: in memory).
    mobile_depth_ang, progress, force
        As :func:`quench_on_substrate`.
    relax_fmax_ev_ang, relax_steps
        Force threshold (eV/Å) and step limit of the relaxation.

    Raises
    ------
    ConfigError
        A quench or relaxation without a calculator, invalid melt–quench settings, or a quench without glass.
    StructureError
        Any builder error (nothing is run then).
    """
    from ...interfaces.builder import build_interface
    from ...interfaces.phases import parse_stack
    from ...interfaces.stacking import cross_distances
    from ..provenance import provenance, utc_now

    started = utc_now()
    quench_cfg = None
    if quench is not None and not (isinstance(quench, str) and quench == "none"):
        quench_cfg = resolve_melt_quench_config(quench)
    if (quench_cfg is not None or relax) and calc is None:
        raise ConfigError("a quench or relaxation needs a potential: pass --model SPEC (or calc=...)")
    if quench_cfg is not None and not any(p.is_glass for p in parse_stack(stack)):
        raise ConfigError("--quench-on-substrate needs a glass phase (lipon) in the stack")
    initial, report = build_interface(stack, **build_kwargs)
    if calc is not None and (quench_cfg is not None or relax):
        check_coverage(calc, initial)
    atoms = initial
    warnings: list[str] = []
    report = dict(report)
    if quench_cfg is not None:
        result = quench_on_substrate(atoms, calc, quench_cfg, run_dir, mobile_depth_ang=mobile_depth_ang,
                                     progress=progress, force=force)
        atoms = result.atoms
        warnings += result.summary["warnings"]
        report["quench_on_substrate"] = result.summary
    if relax:
        atoms, summary = relax_interface(atoms, calc, fmax_ev_ang=relax_fmax_ev_ang, max_steps=relax_steps)
        report["relax"] = summary
    if atoms is not initial:
        regions = np.asarray(atoms.arrays["region"]).astype(str)
        for entry in report["stack"]:
            z = atoms.positions[regions == entry["region"], 2]
            entry["z_range_ang"] = [float(z.min()), float(z.max())]
        distances = cross_distances(atoms)
        report["interfaces_z_ang"] = list(atoms.info.get("interfaces_z_ang", report["interfaces_z_ang"]))
        report["min_cross_distance_ang"] = distances["min_ang"]
        report["min_cross_distance_by_regions_ang"] = distances["by_regions"]
        report["cell_ang"] = np.asarray(atoms.cell[:]).tolist()
        report["as_built"] = {"interfaces_z_ang": initial.info["interfaces_z_ang"],
                              "cell_ang": np.asarray(initial.cell[:]).tolist()}
    report["warnings"] = warnings
    settings = {"stack": stack if isinstance(stack, str) else [str(s) for s in stack], **build_kwargs,
                "quench": None if quench_cfg is None else quench_cfg.model_dump(mode="json"), "relax": relax,
                "relax_fmax_ev_ang": relax_fmax_ev_ang if relax else None, "mobile_depth_ang": mobile_depth_ang}
    block = provenance(config=settings, calc=calc if (quench_cfg is not None or relax) else None,
                       seed=build_kwargs.get("seed", 0), started_utc=started,
                       extra={"workflow": "tfbsim.workflows.protocols.interface_quench.make_interface",
                              "builder": initial.info.get("provenance")})
    atoms.info["provenance"] = block
    report["provenance"] = block
    return InterfaceBuild(atoms=atoms, initial=initial, report=report)
