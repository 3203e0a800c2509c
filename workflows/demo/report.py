"""The demo's report: ``report.md`` (and ``report.html``) from the results the demo just produced.

Every number in the report is read from the JSON results of the current run; the reference values it is
compared with (experiment and literature) are constants of this module with their sources.
"""

from __future__ import annotations

import logging
import math
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


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def collect_figures(out: Path, bulk: dict[str, Any]) -> list[Path]:
    """Copy the campaign's figures (MSD per temperature, Arrhenius) into ``out/figures``."""
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
    arr = directory / "plots" / "arrhenius_lipon.png"
    if arr.exists():
        shutil.copyfile(arr, figures / "arrhenius.png")
        copied.append(figures / "arrhenius.png")
    return copied


def _headline(bulk: dict, structure: dict, interface: dict) -> dict[str, Any]:
    arr = bulk.get("arrhenius") or {}
    inter = interface["interphase"]
    thick = [t for t in inter["interphase"]["thickness_ang"] if t is not None]
    return {
        "Ea_eV": arr.get("Ea_eV"),
        "Ea_stderr_eV": arr.get("Ea_stderr_eV"),
        "sigma_300K_S_cm": arr.get("sigma_300K_S_cm"),
        "sigma_300K_ci95_S_cm": arr.get("sigma_300K_ci95_S_cm"),
        "arrhenius_error": arr.get("error"),
        "arrhenius_warnings": arr.get("warnings", []),
        "D_by_T": [{"temperature_k": t["temperature_k"], "D_cm2_s": t["D_cm2_s"], "D_stderr_cm2_s": t["D_stderr_cm2_s"],
                    "status": t["status"]} for t in bulk["tasks"]],
        "N": {k: structure["N"].get(k) for k in ("Na", "Nd", "Nt", "N0")},
        "O_bridging": structure["O"].get("Ob"),
        "P_Q": {k: structure["P"].get(k) for k in ("Q0", "Q1", "Q2", "Q3", "Q4")},
        "P_fourfold_fraction": None if structure["P"].get("undercoordinated") is None
        else 1.0 - structure["P"]["undercoordinated"],
        "interphase_order_from_li": inter["product_order_from_li"],
        "interphase_thickness_ang": float(thick[-1]) if len(thick) else None,
        "formula_units": inter["formula_units"],
    }


def _markdown(cfg: Any, calc: Any, bulk: dict, structure: dict, interface: dict, numbers: dict, timings: dict) -> str:
    p = calc.parameters
    temps = ", ".join(f"{t:g}" for t in cfg.temperatures_k)
    quench = cfg.quench if isinstance(cfg.quench, str) else cfg.quench.get("preset", "custom")
    lines = [
        "# tfbsim demo report",
        "",
        f"**Model:** `{p.get('spec')}` ({p.get('kind')}, sha256 `{str(p.get('sha256'))[:16]}…`, {p.get('dtype')}, "
        f"{p.get('device')}). **Runs:** {cfg.n_atoms}-atom {cfg.composition} glass ({quench} melt–quench); "
        f"NVT at {temps} K for {cfg.production_ps:g} ps each after {cfg.equilibrate_ps:g} ps equilibration "
        f"(time step {cfg.timestep_fs:g} fs); Li(100)/LiPON interface ({interface['n_atoms']} atoms) annealed "
        f"{cfg.interface_anneal_ps:g} ps at {cfg.interface_anneal_k:g} K. Wall time {timings['total_s'] / 60:.1f} min.",
        "",
        "**Caveats — read before quoting any number.** These are short runs on a small cell with a small "
        "potential distilled from a universal one (CHGNet for the bundled model): it inherits PBE(+U) errors and "
        "the softening of universal potentials (barriers too low → Ea too low, D too high). The temperatures are "
        "far above room temperature (the glass may be partly molten in the hottest runs), σ(300 K) is an "
        "Arrhenius extrapolation over ~1000 K, the Nernst–Einstein conductivity assumes a Haven ratio of 1, and "
        f"the {quench} quench is orders of magnitude faster than experiment. Use `--preset full` with a "
        "fine-tuned or foundation MACE model for publishable numbers; re-run with another `--seed` to see the "
        "spread.",
        "",
        "## 1. Li transport in bulk LiPON",
        "",
        "| T (K) | status | D (cm²/s) | σ_NE (S/cm) | ⟨T⟩ (K) | t (ps) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for t in bulk["tasks"]:
        lines.append(f"| {t['temperature_k']:g} | {t['status']} | {_fmt(t['D_cm2_s'])} ± {_fmt(t['D_stderr_cm2_s'], '.2g')} "
                     f"| {_fmt(t['sigma_ne_S_cm'])} ± {_fmt(t['sigma_ne_stderr_S_cm'], '.2g')} | "
                     f"{_fmt(t['temperature_mean_k'], '.0f')} | {_fmt(t['time_ps'], '.3g')} |")
    exp = EXPERIMENT
    if numbers["Ea_eV"] is not None:
        ci = numbers["sigma_300K_ci95_S_cm"] or [None, None]
        ratio = numbers["sigma_300K_S_cm"] / exp["sigma_300K_S_cm"] if numbers["sigma_300K_S_cm"] else None
        lines += [
            "",
            f"**Arrhenius fit:** Ea = {numbers['Ea_eV']:.3f} ± {numbers['Ea_stderr_eV']:.3f} eV "
            f"(experiment {exp['Ea_eV']} eV); σ(300 K) = {_fmt(numbers['sigma_300K_S_cm'])} S/cm, 95 % interval "
            f"[{_fmt(ci[0])}, {_fmt(ci[1])}] (experiment {exp['sigma_300K_S_cm']:.1e} S/cm; ratio {_fmt(ratio, '.2g')})."
            + (f" Fit warnings: {'; '.join(numbers['arrhenius_warnings'])}." if numbers["arrhenius_warnings"] else ""),
        ]
    else:
        lines += ["", f"**Arrhenius fit not available:** {numbers['arrhenius_error']}"]
    lines += ["", "![Arrhenius](figures/arrhenius.png)", ""]
    lines += [f"![MSD {t['temperature_k']:g} K](figures/msd_{t['temperature_k']:g}K.png)" for t in bulk["tasks"]]
    n, q = numbers["N"], numbers["P_Q"]
    lines += [
        "",
        "## 2. Structure of the quenched glass",
        "",
        f"N: Nd {_fmt(n['Nd'], '.2f')}, Na {_fmt(n['Na'], '.2f')}, Nt {_fmt(n['Nt'], '.2f')}, N0 {_fmt(n['N0'], '.2f')} "
        f"(of {structure['N'].get('count')} N); bridging O (Ob) {_fmt(numbers['O_bridging'], '.3f')}; "
        f"P four-coordinated {_fmt(numbers['P_fourfold_fraction'], '.2f')}; Qn: "
        + ", ".join(f"{k} {_fmt(v, '.2f')}" for k, v in q.items())
        + "; phosphate clusters: " + ", ".join(f"{k} {_fmt(v, '.2f')}" for k, v in structure.get("phosphate_clusters", {}).items()
                                                if not isinstance(v, dict)) + ".",
        "",
        f"Literature picture: {exp['structure']}."
        + (" Here Nt is present above 5 % — a sign of the quick quench or of the potential."
           if (n["Nt"] or 0) > 0.05 else " Consistent on Nt (≤ 5 %)."),
        "",
        "![speciation](figures/speciation.png)",
        "",
        "## 3. Li(100)/LiPON interface",
        "",
    ]
    inter = interface["interphase"]
    unstable = None
    if interface["anneal"].get("status") == "unstable":
        unstable = interface["anneal"].get("diagnostic", {}).get("message", "see interface/anneal/summary.json")
    order = " → ".join(numbers["interphase_order_from_li"]) or "no product classes above the threshold"
    fu = ", ".join(f"{k} {_fmt(v, '.3g')}" for k, v in numbers["formula_units"].items())
    lines += [
        f"Products from the Li side: **{order}**; interphase thickness (last frame) "
        f"{_fmt(numbers['interphase_thickness_ang'], '.3g')} Å; formula-unit equivalents (last frame): {fu}.",
        "",
        *([f"**The anneal stopped unstable** ({unstable}); the analysis covers the frames written before it.", ""]
          if unstable else []),
        f"Expected: {exp['interphase']}. A few ps at {cfg.interface_anneal_k:g} K can only show the first "
        "reactions at the contact; see the interphase JSON for classes per bin and the growth fit "
        f"(model: {inter['interphase']['growth'].get('model')}).",
        "",
        "![interphase](figures/interphase.png)",
        "",
        "## Files",
        "",
        "- `results/`: `coordination.json`, `interphase.json`, `numbers.json`; per-temperature diffusion JSON in "
        "`bulk/tasks/lipon/T*/r0/analysis/`; `bulk/arrhenius.json`, `bulk/summary.md`",
        "- `structures/`: quenched glass and annealed interface (extxyz); trajectories (H5MD): "
        "`bulk/tasks/lipon/T*/r0/production/traj.h5md`, `interface/anneal/traj.h5md`",
        "- results database: `bulk/results.db` (`tfbsim db list bulk`, `ase db bulk/results.db`)",
        "- `bulk_campaign.yaml`: the bulk part as a campaign file to scale up with `tfbsim run`",
        "- `provenance.json`, `demo_config.json`",
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
                  timings: dict, provenance_block: dict) -> dict[str, Any]:
    """Write ``results/numbers.json``, ``report.md`` and ``report.html``; returns the headline numbers."""
    numbers = _headline(bulk, structure, interface)
    write_json(out / "results" / "numbers.json", {**numbers, "timings_s": timings, "provenance": provenance_block})
    text = _markdown(cfg, calc, bulk, structure, interface, numbers, timings)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(text)
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(_html(text))
    return numbers

