"""The demo's interface stage: Li deposited onto the demo glass (default) or a pressed Li(100)/LiPON anneal.

``interface_mode: deposit`` (issue 21): the melt-quenched glass of stage 1 is opened into a slab
(:func:`~tfbsim.workflows.protocols.deposition_setup.open_glass_box`), Li atoms arrive group by group
(:func:`~tfbsim.workflows.protocols.deposition.deposit`, run in ``deposit/``, resumable, changed
settings refused by the protocol itself), and :func:`~tfbsim.analysis.deposition_profile.deposition_profile`
classifies every atom of every snapshot: products layer by layer against the deposited amount.

``interface_mode: pressed``: Li(100)/LiPON from the interface builder, relaxed along the normal, annealed in NVT
below Li's melting point, then :class:`~tfbsim.analysis.interphase.Interphase` (``interface/anneal/``).

Both return the record the report reads (``mode`` tells which) and add one row to the demo's results database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import SimulationUnstable
from ...structures.io import read_json, read_structure, write_json, write_structure

__all__ = ["interface_stage", "record_interface", "LITERATURE_ORDER"]

logger = logging.getLogger(__name__)

Stage = Callable[[str], None]

#: The interphase picture from the Li side for Li on LiPON: the fully reduced products next to the metal, the
#: phosphate further in, then the glass (Schwöbel et al. 2015: in-situ XPS after Li evaporation on LiPON; Sicolo
#: et al. 2017: DFT + XPS/UPS; both via the project's research notes, research/seeds-lipon.md §4a).
LITERATURE_ORDER: tuple[tuple[str, str], ...] = (
    ("Li metal", "the deposit"),
    ("Li2O, Li3N, Li3P", "reduced products (N and P reduced first)"),
    ("Li3PO4", "phosphate, not reduced"),
    ("LiPON", "intact glass"),
)

#: Sources of :data:`LITERATURE_ORDER`.
LITERATURE_SOURCES = ("Schwöbel et al. 2015 (in-situ XPS after Li evaporation on LiPON); Sicolo et al., "
                      "J. Power Sources 354, 124 (2017) (DFT + XPS/UPS: Li2O, Li3N, Li3P and Li3PO4 form)")


def interface_stage(cfg: Any, out: Path, calc: Any, say: Stage, *, threads: int, block: dict) -> dict[str, Any]:
    """Run the stage of ``cfg.interface_mode`` (see the module docstring); returns the report's record."""
    from ..protocols.threads import torch_threads

    with torch_threads(threads):
        if cfg.interface_mode == "deposit":
            return _deposit_stage(cfg, out, calc, say, block)
        return _pressed_stage(cfg, out, calc, say)


# ------------------------------------------------------------------------------------------------ deposit
def _deposit_stage(cfg: Any, out: Path, calc: Any, say: Stage, block: dict) -> dict[str, Any]:
    from ...analysis.deposition_profile import deposition_profile
    from ...analysis.plots_deposition import plot_deposition
    from ..protocols.deposition import deposit
    from ..protocols.deposition_setup import open_glass_box
    from .config import GLASS_DIR, deposit_config

    dcfg = deposit_config(cfg)
    run_dir = out / "deposit"
    glass_path = out / GLASS_DIR / "final.extxyz"
    slab = open_glass_box(upright(read_structure(glass_path)), cfg.deposit_vacuum_ang)
    done = (run_dir / "deposition.json").exists() and read_json(run_dir / "deposition.json").get("status") in (
        "completed", "unstable")
    if done:
        say(f"  deposition already {read_json(run_dir / 'deposition.json').get('status')}")
    else:
        say(f"  depositing {dcfg.count} {dcfg.species} in groups of {dcfg.group_size} at {dcfg.flux_per_ps:g}/ps "
            f"({dcfg.energy_ev:g} eV, substrate {dcfg.temperature_k:g} K) on the {len(slab)}-atom glass slab")
    unstable = None
    try:
        result = deposit(slab, calc, dcfg, run_dir, progress=True)
        summary = result.summary
    except SimulationUnstable as exc:
        say(f"  WARNING: the deposition stopped unstable ({exc}); analysing the snapshots written before it")
        summary = read_json(run_dir / "deposition.json")
        unstable = str(exc)
    profile = deposition_profile(run_dir / "snapshots.extxyz", species=dcfg.species,
                                 layer_ang=cfg.deposit_layer_ang).to_dict()
    write_json(out / "results" / "deposition.json", profile,
               provenance={**block, "input": str(run_dir / "snapshots.extxyz"),
                           "analysis": "tfbsim.analysis.deposition_profile", "layer_ang": cfg.deposit_layer_ang})
    plot_deposition(profile, out / "figures" / "deposition.png")
    final_path = run_dir / "final.extxyz"
    final = read_structure(final_path) if final_path.exists() else read_snapshot_last(run_dir)
    write_structure(out / "structures" / "li_on_lipon_deposited.extxyz", final)
    return {"mode": "deposit", "profile": profile, "summary": summary, "settings": dcfg.model_dump(mode="json"),
            "n_atoms_slab": len(slab), "n_atoms": len(final), "unstable": unstable,
            "layers": layer_table(profile), "literature_order": [list(x) for x in LITERATURE_ORDER],
            "literature_sources": LITERATURE_SOURCES}


def upright(atoms: Any) -> Any:
    """A copy rotated rigidly so that a lies along x and b in the xy plane (the slab form deposition needs).

    The melt–quench's final cell relaxation may leave a slightly sheared box; rotating the whole box (cell and
    atoms together) changes no distance.
    """
    out = atoms.copy()
    rcell, _ = out.cell.standard_form()
    out.set_cell(rcell, scale_atoms=True)
    return out


def read_snapshot_last(run_dir: Path) -> Any:
    """The last snapshot of a deposition that has no ``final.extxyz`` (it stopped unstable)."""
    from ...analysis.deposition_profile import read_snapshots

    return read_snapshots(run_dir / "snapshots.extxyz")[-1]


def layer_table(profile: dict[str, Any], *, snapshot: int = -1) -> list[dict[str, Any]]:
    """Rows of the products table of one snapshot (default the last), top (deposit side) first.

    Each row: ``z_lo_ang``/``z_hi_ang`` relative to the initial glass surface, ``counts`` (atoms per class, only
    classes present), ``main`` (the classes holding at least a quarter of the layer's atoms, largest first) and
    ``change`` (per class, the count minus that of the first snapshot in the same layer; non-zero only). Empty
    layers are left out.
    """
    snap, first = profile["snapshots"][snapshot], profile["snapshots"][0]
    width = float(profile["layer_ang"])
    z_lo = [z - profile["z0_ang"] for z in profile["layer_z_lo_ang"]]
    rows = []
    for k, lo in enumerate(z_lo):
        counts = {c: int(v[k]) for c, v in snap["layer_counts"].items() if v[k]}
        total = sum(counts.values())
        if not total:
            continue
        main = [c for c, n in sorted(counts.items(), key=lambda x: -x[1]) if n >= 0.25 * total]
        classes = set(snap["layer_counts"]) | set(first["layer_counts"])
        change = {c: int(snap["layer_counts"].get(c, [0] * (k + 1))[k]) - int(first["layer_counts"].get(c, [0] * (k + 1))[k])
                  for c in sorted(classes)}
        rows.append({"z_lo_ang": lo, "z_hi_ang": lo + width, "counts": counts, "n_atoms": total, "main": main,
                     "change": {c: n for c, n in change.items() if n}})
    return rows[::-1]


# ------------------------------------------------------------------------------------------------ pressed
def _pressed_stage(cfg: Any, out: Path, calc: Any, say: Stage) -> dict[str, Any]:
    from ...analysis.interphase import Interphase
    from ...analysis.plots_interphase import plot_interphase
    from ..md.resume import RunState, inspect_run_dir, start_or_resume
    from ..protocols.interface_quench import make_interface
    from ..protocols.li_melting import check_li_melting
    from ..provenance import provenance
    from .config import anneal_config

    idir = out / "interface"
    built_path = idir / "built_relaxed.extxyz"
    if built_path.exists():
        atoms = read_structure(built_path)
        build_report = read_json(idir / "build_report.json")
    else:
        say("  building Li(100)/LiPON and relaxing it along the normal")
        build = make_interface("li:100,lipon", relax=True, calc=calc, relax_steps=300, relax_fmax_ev_ang=0.1,
                               thickness_ang=list(cfg.interface_thickness_ang), gap_ang=2.0,
                               lateral_min_ang=cfg.interface_lateral_min_ang, lipon_composition=cfg.composition,
                               seed=cfg.seed)
        atoms = build.atoms
        build_report = build.report
        write_json(idir / "build_report.json", build_report)
        write_structure(built_path, atoms)
    warning = check_li_melting(atoms, [cfg.interface_anneal_k], context="interface anneal")  # logs itself
    md = anneal_config(cfg)
    run_dir = idir / "anneal"
    state = inspect_run_dir(run_dir)
    if state in (RunState.COMPLETED, RunState.UNSTABLE):
        say(f"  anneal already {state.value}")
    elif state is RunState.CHECKPOINT:
        say("  continuing the interrupted anneal from its checkpoint")
    else:
        say(f"  NVT anneal at {cfg.interface_anneal_k:g} K for {cfg.interface_anneal_ps:g} ps ({len(atoms)} atoms)")
    try:  # an unstable anneal (now or before) raises: analyse what was run; the report states it
        start_or_resume(atoms, calc, md, run_dir, progress=True)
    except SimulationUnstable as exc:
        say(f"  WARNING: the anneal stopped unstable ({exc}); analysing the frames written before it")
    data = Interphase(run_dir / "traj.h5md", axis="z", bin_ang=cfg.interface_bin_ang).run().results.to_dict()
    write_json(out / "results" / "interphase.json", data,
               provenance=provenance(config=cfg, calc=calc, seed=cfg.seed,
                                     extra={"input": str(run_dir / "traj.h5md"),
                                            "analysis": "tfbsim.analysis.interphase",
                                            "bin_ang": cfg.interface_bin_ang}))
    plot_interphase(data, out / "figures" / "interphase.png")
    final_path = run_dir / "final.extxyz"
    final = read_structure(final_path if final_path.exists() else run_dir / "last_good.extxyz")
    write_structure(out / "structures" / "li_lipon_annealed.extxyz", final)
    return {"mode": "pressed", "build": build_report, "interphase": data, "n_atoms": len(final),
            "anneal": read_json(run_dir / "summary.json"), "li_melting_warning": warning,
            "literature_order": [list(x) for x in LITERATURE_ORDER], "literature_sources": LITERATURE_SOURCES}


# ------------------------------------------------------------------------------------------------ database
def record_interface(db_target: str, interface: dict[str, Any], cfg: Any, out: Path, calc: Any) -> None:
    """Add the interface run as a row of the demo's results database (only this driver writes)."""
    from ..campaigns.resultsdb import ResultsDB

    common = {"campaign": "demo-lipon", "system": "li_lipon_interface", "replica": 0,
              "model_sha256": str(calc.parameters.get("sha256"))}
    if interface["mode"] == "deposit":
        final = read_structure(out / "structures" / "li_on_lipon_deposited.extxyz")
        summary, profile = interface["summary"], interface["profile"]
        last = profile["snapshots"][-1]
        kv = {**common, "task_id": "li_lipon_interface/deposit", "status": summary.get("status"),
              "temperature_k": interface["settings"]["temperature_k"], "n_deposited": last.get("deposited"),
              "li_per_p": last.get("per_p"), "reduced_pn_new": last.get("reduced_pn_new"),
              **{f"n_{k}": v for k, v in last.get("class_counts", {}).items()}}
        data = {"deposition_profile": {k: profile[k] for k in ("first_appearance", "product_order_first",
                                                                "reduced_classes_present")},
                "summary": {k: summary.get(k) for k in ("status", "n_sent", "n_joined", "n_reflected",
                                                         "sticking_fraction", "time_ps", "steps_per_s")}}
    else:
        final = read_structure(out / "structures" / "li_lipon_annealed.extxyz")
        fu = interface["interphase"].get("formula_units", {})
        thickness = [t for t in interface["interphase"]["interphase"]["thickness_ang"] if t is not None]
        kv = {**common, "task_id": "li_lipon_interface/anneal", "temperature_k": cfg.interface_anneal_k,
              "status": interface["anneal"].get("status"),
              "interphase_thickness_ang": float(thickness[-1]) if len(thickness) else None,
              **{f"fu_{k}": v for k, v in fu.items() if v is not None}}
        data = {"interphase": interface["interphase"]}
    final.info.pop("provenance", None)
    ResultsDB(db_target, create=True).upsert(final, {k: v for k, v in kv.items() if v is not None}, data=data)
