"""The demo's report: ``report.md`` (and ``report.html``) from the results the demo just produced.

Every number in the report is read from the JSON results of the current run; the reference values it is
compared with (experiment and literature) are constants of this module with their sources.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from ...structures.io import atomic_path, write_json

__all__ = ["collect_figures", "write_reports", "EXPERIMENT"]

logger = logging.getLogger(__name__)

#: Reference numbers quoted in the report (see ../shared research notes: seeds-lipon.md, anchors.md B1–B3).
EXPERIMENT = {
    "sigma_300K_S_cm": 2.3e-6,  # sputtered LiPON, Bates/Yu/Dudney (via the seed reviews)
    "Ea_eV": 0.55,  # Yu et al. 1997 (via the seed reviews)
    "structure": "Nd (P–N–P) and apical Na present, Nt absent (Lacivita et al., JACS 140, 11029 (2018)); "
                 "mostly isolated PO4/PO3N tetrahedra and P2O7-type dimers at Li/P ≈ 3",
    "interphase": "Li ∥ Li2O ∥ Li3N ∥ Li3P ∥ Li3PO4 ∥ LiPON (DFT interface energetics, Wang et al. 2024/2025; "
                  "XPS: Li2O, Li3N, Li3P, Li3PO4); measured thickness < 30–80 nm after long contact",
}


def collect_figures(out: Path, bulk: dict[str, Any]) -> list[Path]:
    """Copy the campaign's MSD figures into ``out/figures`` and draw ``arrhenius.png`` from every temperature.

    The Arrhenius figure is drawn whatever the verdicts: fitted points filled (with the line when there is a
    fit), non-diffusive points as open ▽ (upper bounds), network-flowing points as × — so a demo without a
    trusted fit still shows what it measured.
    """
    from ...analysis.plots_campaign import plot_campaign_arrhenius

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    copied = []
    directory = Path(bulk["directory"])
    for task in bulk["tasks"]:
        src = directory / "tasks" / task["task_id"] / "analysis" / "msd.png"
        if src.exists():
            dst = figures / f"msd_{task['temperature_k']:g}K.png"
            shutil.copyfile(src, dst)
            copied.append(dst)
    arr = bulk.get("arrhenius") or {}
    points = [e for e in arr.get("temperatures", []) if e.get("D_cm2_s") is not None]
    if not points:  # no verdicts (e.g. no Arrhenius analysis): the completed tasks, drawn plain
        points = [{k: t.get(k) for k in ("temperature_k", "D_cm2_s", "D_stderr_cm2_s")} for t in bulk["tasks"]
                  if t.get("D_cm2_s") is not None]
    if points:
        fits = {"lipon": arr} if arr.get("Ea_eV") is not None and arr.get("D0_cm2_s") is not None else {}
        plot_campaign_arrhenius({"lipon": points}, fits, figures / "arrhenius.png")
        copied.append(figures / "arrhenius.png")
    return copied


def _interface_numbers(interface: dict) -> dict[str, Any]:
    if interface["mode"] == "deposit":
        prof = interface["profile"]
        last = prof["snapshots"][-1]
        return {"interface_mode": "deposit", "interphase_order_from_li": prof["product_order_first"],
                "deposited": last.get("deposited"), "deposited_per_p": last.get("per_p"),
                "class_counts": last.get("class_counts"), "reduced_classes": prof["reduced_classes_present"],
                "layers": interface["layers"], "interphase_thickness_ang": None, "formula_units": {}}
    inter = interface["interphase"]
    thick = [t for t in inter["interphase"]["thickness_ang"] if t is not None]
    return {"interface_mode": "pressed", "interphase_order_from_li": inter["product_order_from_li"],
            "interphase_thickness_ang": float(thick[-1]) if len(thick) else None,
            "formula_units": inter["formula_units"]}


def _headline(bulk: dict, structure: dict, interface: dict) -> dict[str, Any]:
    arr = bulk.get("arrhenius") or {}
    verdicts = {float(e["temperature_k"]): e for e in arr.get("temperatures", [])}
    peaks = structure.get("scattering_summary", {}).get("peaks", {})
    return {
        "Ea_eV": arr.get("Ea_eV"),
        "Ea_stderr_eV": arr.get("Ea_stderr_eV"),
        "sigma_300K_S_cm": arr.get("sigma_300K_S_cm"),
        "sigma_300K_ci95_S_cm": arr.get("sigma_300K_ci95_S_cm"),
        "arrhenius_error": arr.get("error"),
        "arrhenius_warnings": arr.get("warnings", []),
        "arrhenius_unfiltered": arr.get("unfiltered"),
        "D_by_T": [{"temperature_k": t["temperature_k"], "D_cm2_s": t["D_cm2_s"], "D_stderr_cm2_s": t["D_stderr_cm2_s"],
                    "status": t["status"], "verdict": verdicts.get(float(t["temperature_k"]), {}).get("status"),
                    "reason": verdicts.get(float(t["temperature_k"]), {}).get("reason")} for t in bulk["tasks"]],
        "N": {k: structure["N"].get(k) for k in ("Na", "Nd", "Nt", "N0")},
        "O_bridging": structure["O"].get("Ob"),
        "P_Q": {k: structure["P"].get(k) for k in ("Q0", "Q1", "Q2", "Q3", "Q4")},
        "P_fourfold_fraction": None if structure["P"].get("undercoordinated") is None
        else 1.0 - structure["P"]["undercoordinated"],
        "structure_peaks": {k: peaks.get(k) for k in ("G_neutron_first_peak_ang", "G_xray_first_peak_ang",
                                                     "S_neutron_main_peak_inv_ang", "S_xray_main_peak_inv_ang")},
        "speciation_steady_before_quench": structure.get("scattering_summary", {}).get("quench", {}).get(
            "speciation_steady_before_quench"),
        **_interface_numbers(interface),
    }


def _markdown(cfg: Any, calc: Any, bulk: dict, structure: dict, interface: dict, numbers: dict, timings: dict,
              validation: list[str]) -> str:
    from .report_sections import interface_section, structure_section, transport_section

    p = calc.parameters
    temps = ", ".join(f"{t:g}" for t in cfg.temperatures_k)
    quench = cfg.quench if isinstance(cfg.quench, str) else cfg.quench.get("preset", "custom")
    if interface["mode"] == "deposit":
        s = interface["settings"]
        inter = (f"{s['count']} {s['species']} deposited on the glass slab ({interface['n_atoms_slab']} atoms) at "
                 f"{s['flux_per_ps']:g}/ps, {s['energy_ev']:g} eV, substrate {s['temperature_k']:g} K")
    else:
        inter = (f"pressed Li(100)/LiPON interface ({interface['n_atoms']} atoms) annealed {cfg.interface_anneal_ps:g} "
                 f"ps at {cfg.interface_anneal_k:g} K")
    threads = (bulk.get("glass") or {}).get("threads")
    lines = [
        "# tfbsim demo report",
        "",
        f"**Model:** `{p.get('spec')}` ({p.get('kind')}, sha256 `{str(p.get('sha256'))[:16]}…`, {p.get('dtype')}, "
        f"{p.get('device')}). **Runs:** {cfg.n_atoms}-atom {cfg.composition} glass ({quench} melt–quench on "
        f"{threads} thread(s)); NVT at {temps} K for {cfg.production_ps:g} ps each after {cfg.equilibrate_ps:g} ps "
        f"equilibration (time step {cfg.timestep_fs:g} fs); {inter}. Wall time {timings['total_s'] / 60:.1f} min.",
        "",
        "**Caveats — read before quoting any number.** These are short runs on a small cell with a small "
        "potential distilled from a universal one (CHGNet for the bundled model): it inherits PBE(+U) errors and "
        "the softening of universal potentials (barriers too low → Ea too low, D too high). The temperatures are "
        "far above room temperature (the glass may be partly molten in the hottest runs), a few ps are too short "
        "for most Li to hop enough times for a diffusive MSD (such points are upper bounds, not values), σ(300 K) "
        "is an Arrhenius extrapolation over ~1000 K, the Nernst–Einstein conductivity assumes a Haven ratio of 1, "
        f"and the {quench} quench is orders of magnitude faster than experiment. The validation campaign "
        "(examples/validation/) is where trusted transport numbers come from; use `--preset full` with a "
        "fine-tuned or foundation MACE model for publishable numbers; re-run with another `--seed` to see the "
        "spread.",
        "",
        *transport_section(bulk, numbers, EXPERIMENT),
        "",
        *validation,
        "",
        *structure_section(structure, numbers, EXPERIMENT),
        *interface_section(cfg, interface, numbers, EXPERIMENT),
        "## Files",
        "",
        "- `results/`: `numbers.json`, `structure.json` (G(r), S(Q), literature table), `coordination.json`, "
        + ("`deposition.json`" if interface["mode"] == "deposit" else "`interphase.json`")
        + "; per-temperature diffusion JSON in `bulk/tasks/lipon/T*/r0/analysis/`; `bulk/arrhenius.json` (every "
        "temperature's verdict), `bulk/summary.md`",
        "- `structures/`: quenched glass and the final interface (extxyz); trajectories (H5MD): "
        "`bulk/tasks/lipon/T*/r0/production/traj.h5md`, `glass/*_anneal/traj.h5md`, "
        + ("`deposit/snapshots.extxyz`" if interface["mode"] == "deposit" else "`interface/anneal/traj.h5md`"),
        "- results database: `bulk/results.db` (`tfbsim db list bulk`, `ase db bulk/results.db`)",
        "- `bulk_campaign.yaml`: the bulk part as a campaign file to scale up with `tfbsim run`",
        "- `provenance.json`, `demo_config.json`, `stages/*.json` (the settings of each resumable stage)",
        "",
        "Stage wall times: " + ", ".join(f"{k.replace('_s', '')} {v / 60:.1f} min" for k, v in timings.items()),
        "",
    ]
    return "\n".join(lines)


def _html(markdown_text: str) -> str:
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;line-height:1.45}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.2rem .5rem}img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>tfbsim demo report</title><style>{style}</style></head><body>{body}</body></html>\n"


def write_reports(out: Path, cfg: Any, calc: Any, *, bulk: dict, structure: dict, interface: dict,
                  timings: dict, provenance_block: dict, validation_results: Path | None = None) -> dict[str, Any]:
    """Write ``results/numbers.json``, ``report.md`` and ``report.html``; returns the headline numbers.

    ``validation_results``: the folder of the validation campaign's committed result (default
    :data:`~tfbsim.workflows.demo.report_sections.VALIDATION_RESULTS`).
    """
    from .report_sections import validation_section

    numbers = _headline(bulk, structure, interface)
    validation, numbers["validation"] = validation_section(validation_results)
    write_json(out / "results" / "numbers.json", {**numbers, "timings_s": timings, "provenance": provenance_block})
    text = _markdown(cfg, calc, bulk, structure, interface, numbers, timings, validation)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(text)
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(_html(text))
    return numbers

