"""Sections of the demo's report: transport (with every temperature's verdict), the validation campaign's
committed result, structure (G(r)/S(Q), literature table, speciation) and the interface (deposition layers or
the pressed anneal).

Each function returns Markdown lines built only from the records the demo wrote in this run (and, for the
validation quote, from the committed files under ``examples/validation/results/``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from ...structures.io import read_json

__all__ = ["transport_section", "validation_section", "structure_section", "interface_section",
           "VALIDATION_RESULTS", "STATUS_TEXT", "fmt"]

logger = logging.getLogger(__name__)

#: The validation campaign's committed results (``arrhenius.json``, ``report.md``), quoted beside the quick numbers.
VALIDATION_RESULTS = Path(__file__).resolve().parents[2] / "examples" / "validation" / "results"

#: What each Arrhenius point status means, in the report's words.
STATUS_TEXT = {
    "fitted": "fitted",
    "bound_not_diffusive": "not diffusive (no bound)",
    "bound_not_diffusive/upper": "upper bound (MSD not diffusive yet)",
    "excluded_network_flows": "excluded (the P–O/N network flows: a melt, not the glass)",
    "failed": "failed",
    "unstable": "unstable (MD guard tripped)",
    "not_finished": "not finished",
}


def fmt(value: Any, spec: str = ".3g") -> str:
    """A number for the report (``n/a`` for None and non-finite values)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


# ----------------------------------------------------------------------------------------------- transport
def transport_section(bulk: dict, numbers: dict, experiment: dict) -> list[str]:
    """Per-temperature table with the trust verdict, the fit (or why there is none) and the unfiltered trend."""
    arr = bulk.get("arrhenius") or {}
    verdicts = {float(e["temperature_k"]): e for e in arr.get("temperatures", [])}
    lines = ["## 1. Li transport in bulk LiPON", "",
             "Every temperature is checked before it may enter the fit: the Li MSD must be diffusive (log–log slope "
             "0.9–1.2 and ≥ 30 Å² at the end of the fit window, else D is only an upper bound) and the P/O/N network "
             "must not flow (else the point belongs to a melt) — `tfbsim.analysis.diffusion_checks`.", "",
             "| T (K) | verdict | D (cm²/s) | σ_NE (S/cm) | ⟨T⟩ (K) | t (ps) | MSD slope | MSD end (Å²) | why |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for t in bulk["tasks"]:
        v = verdicts.get(float(t["temperature_k"]), {})
        status = v.get("status") or t["status"]
        if v.get("bound"):
            status = f"{status}/{v['bound']}"
        lines.append(
            f"| {t['temperature_k']:g} | {STATUS_TEXT.get(status, status)} | {fmt(t['D_cm2_s'])} ± "
            f"{fmt(t['D_stderr_cm2_s'], '.2g')} | {fmt(t['sigma_ne_S_cm'])} ± {fmt(t['sigma_ne_stderr_S_cm'], '.2g')} "
            f"| {fmt(t['temperature_mean_k'], '.0f')} | {fmt(t['time_ps'], '.3g')} | {fmt(v.get('loglog_slope'), '.2f')} "
            f"| {fmt(v.get('msd_end_ang2'), '.3g')} | {(v.get('reason') or t.get('reason') or '').replace('|', '/')} |")
    fitted = [e["temperature_k"] for e in arr.get("temperatures", []) if e.get("status") == "fitted"]
    if numbers["Ea_eV"] is not None:
        ci = numbers["sigma_300K_ci95_S_cm"] or [None, None]
        ratio = numbers["sigma_300K_S_cm"] / experiment["sigma_300K_S_cm"] if numbers["sigma_300K_S_cm"] else None
        lines += ["", f"**Arrhenius fit** over the fitted points ({', '.join(f'{t:g}' for t in fitted)} K): "
                      f"Ea = {numbers['Ea_eV']:.3f} ± {numbers['Ea_stderr_eV']:.3f} eV (experiment "
                      f"{experiment['Ea_eV']} eV); σ(300 K) = {fmt(numbers['sigma_300K_S_cm'])} S/cm, 95 % interval "
                      f"[{fmt(ci[0])}, {fmt(ci[1])}] (experiment {experiment['sigma_300K_S_cm']:.1e} S/cm; ratio "
                      f"{fmt(ratio, '.2g')})."
                  + (f" Fit warnings: {'; '.join(numbers['arrhenius_warnings'])}." if numbers["arrhenius_warnings"]
                     else "")]
    else:
        lines += ["", f"**No Arrhenius fit:** {numbers['arrhenius_error'] or 'no trusted points'} "
                      f"({len(fitted)} of {len(bulk['tasks'])} temperatures passed the checks). This quick demo "
                      "reports no activation energy rather than one from points that are bounds or melts."]
    unf = numbers.get("arrhenius_unfiltered") or {}
    if unf.get("Ea_eV") is not None:
        lines += ["", f"*Unfiltered trend (every completed point, bounds and flowing networks included — a trend, not "
                      f"a result):* Ea ≈ {unf['Ea_eV']:.2f} ± {fmt(unf.get('Ea_stderr_eV'), '.2f')} eV, "
                      f"σ(300 K) ≈ {fmt(unf.get('sigma_300K_S_cm'), '.2g')} S/cm."]
    lines += ["", "![Arrhenius: filled = fitted, open ▽ = not diffusive (an upper bound where the table says so), × = network flows]"
                  "(figures/arrhenius.png)", ""]
    lines += [f"![MSD {t['temperature_k']:g} K](figures/msd_{t['temperature_k']:g}K.png)" for t in bulk["tasks"]]
    return lines


def _fits_of(data: Any) -> dict[str, dict]:
    if isinstance(data, dict) and ("Ea_eV" in data or "error" in data):
        return {"": data}
    return {k: v for k, v in (data or {}).items() if isinstance(v, dict) and ("Ea_eV" in v or "error" in v)}


def validation_section(results: Path | None = None) -> tuple[list[str], dict[str, Any]]:
    """Quote the validation campaign's committed result (``arrhenius.json``) or say that it is not there.

    Returns the Markdown lines and a JSON-ready record (``available``, ``fits``, ``path``).
    """
    results = Path(results) if results is not None else VALIDATION_RESULTS
    path = results / "arrhenius.json"
    head = ["### Beside the validation campaign", ""]
    if not path.exists():
        return head + ["Validation campaign not yet run/complete — see examples/validation/ (its committed result "
                       "will appear here: two independent glasses, 700–1000 K below Tg, runs extended until "
                       "diffusive)."], {"available": False, "path": str(path)}
    try:
        fits = _fits_of(read_json(path))
    except Exception as exc:  # a broken committed file must not stop the demo's report
        logger.warning("cannot read %s: %s", path, exc)
        return head + [f"Validation campaign result unreadable ({path}: {exc}) — see examples/validation/."], \
            {"available": False, "path": str(path), "error": str(exc)}
    label = "examples/validation/results/arrhenius.json" if results == VALIDATION_RESULTS else str(path)
    lines = head + [f"The validation campaign's committed result (`{label}`: long runs below Tg, two glasses) next "
                    "to this demo's quick numbers:", ""]
    record: dict[str, Any] = {"available": True, "path": str(path), "fits": {}}
    for system, f in fits.items():
        name = f"{system}: " if system else ""
        used = f.get("temperatures_used_k") or [e["temperature_k"] for e in f.get("temperatures", [])
                                                 if e.get("status") == "fitted"]
        if f.get("Ea_eV") is None:
            lines.append(f"- {name}no fit — {f.get('error', 'no trusted points')} (not complete; see examples/validation/)")
        else:
            lines.append(f"- {name}Ea = {f['Ea_eV']:.3f} ± {fmt(f.get('Ea_stderr_eV'), '.3f')} eV, σ(300 K) = "
                         f"{fmt(f.get('sigma_300K_S_cm'), '.3g')} S/cm, from "
                         f"{', '.join(f'{t:g}' for t in sorted(set(used)))} K")
        record["fits"][system or "fit"] = {k: f.get(k) for k in ("Ea_eV", "Ea_stderr_eV", "sigma_300K_S_cm", "error")}
    if (results / "report.md").exists():
        lines += ["", "Its full report: `examples/validation/results/report.md`."]
    return lines, record


# ----------------------------------------------------------------------------------------------- structure
def structure_section(structure: dict, numbers: dict, experiment: dict) -> list[str]:
    """G(r)/S(Q) peaks with the literature table, the speciation and how the glass was made."""
    n, q = numbers["N"], numbers["P_Q"]
    info = structure.get("scattering_summary", {})
    quench = info.get("quench", {})
    peaks = info.get("peaks", {})
    src = info.get("source", {})
    steady = quench.get("speciation_steady_before_quench")
    if not quench.get("network_check"):
        how = ("The speciation below comes from a quick quench: the melt's network was **not** checked for a steady "
               "state before quenching (no `network_check` in the quick preset), so Nd/Na/Nt and Qn are those of "
               "a fast quench from a melt of unknown equilibration — not an emergent, converged structure.")
    elif steady:
        how = "The melt's network reached a steady speciation before the quench (`network_check`)."
    else:
        how = ("The melt's network did **not** reach a steady speciation before the quench (`network_check` ran "
               "out of time): read the speciation as quench-dependent.")
    lines = ["## 2. Structure of the glass", "",
             f"Glass: {quench.get('preset')} melt–quench ({fmt(quench.get('total_md_ps'), '.3g')} ps of MD, quench "
             f"{fmt(quench.get('quench_rate_k_ps'), '.3g')} K/ps), density {fmt(quench.get('density_final_g_cm3'), '.3f')}"
             f" g/cm³. {how}", "",
             f"Pair distribution and structure factor from {src.get('what', 'the glass')} ({src.get('n_frames')} "
             f"frame(s); r ≤ {fmt(info.get('r_max_ang'), '.2f')} Å, so Q ≥ {fmt(info.get('q_min_inv_ang'), '.2f')} Å⁻¹"
             "): first peak of the neutron G(r) "
             f"{fmt(peaks.get('G_neutron_first_peak_ang'), '.3f')} Å, X-ray G(r) {fmt(peaks.get('G_xray_first_peak_ang'), '.3f')}"
             f" Å; S(Q) main peak {fmt(peaks.get('S_neutron_main_peak_inv_ang'), '.2f')} Å⁻¹ (neutron), "
             f"{fmt(peaks.get('S_xray_main_peak_inv_ang'), '.2f')} Å⁻¹ (X-ray).", "",
             "| quantity | reference system | this glass | reference | status | source |", "|---|---|---:|---:|---|---|"]
    for row in info.get("comparison", []):
        if row["measured"] is None and row["reference"] is None:
            continue
        lines.append(f"| {row['quantity']} | {row['system']} | {fmt(row['measured'])} | {fmt(row['reference'])} "
                     f"{row['unit']} | {row['status']} | {row['source']} |")
    lines += ["", "Status `crystal`: computed from the cited crystal; `recalled`: not checked against the paper; "
                  "`verified`: stated in a source we read (`tfbsim.analysis.structure_reference`).", "",
              "![G(r)](figures/G_r.png) ![S(Q)](figures/S_q.png)", "",
              f"N: Nd {fmt(n['Nd'], '.2f')}, Na {fmt(n['Na'], '.2f')}, Nt {fmt(n['Nt'], '.2f')}, N0 {fmt(n['N0'], '.2f')} "
              f"(of {structure['N'].get('count')} N); bridging O (Ob) {fmt(numbers['O_bridging'], '.3f')}; "
              f"P four-coordinated {fmt(numbers['P_fourfold_fraction'], '.2f')}; Qn: "
              + ", ".join(f"{k} {fmt(v, '.2f')}" for k, v in q.items())
              + "; phosphate clusters: " + ", ".join(f"{k} {fmt(v, '.2f')}" for k, v in
                                                     structure.get("phosphate_clusters", {}).items()
                                                     if not isinstance(v, dict)) + ".", "",
              f"Literature picture: {experiment['structure']}."
              + (" Here Nt is present above 5 % — a sign of the quick quench or of the potential."
                 if (n["Nt"] or 0) > 0.05 else " Consistent on Nt (≤ 5 %)."),
              "", "![speciation](figures/speciation.png)", ""]
    return lines


# ----------------------------------------------------------------------------------------------- interface
def interface_section(cfg: Any, interface: dict, numbers: dict, experiment: dict) -> list[str]:
    """The deposition's layers beside the literature order, or the pressed anneal's interphase."""
    if interface["mode"] == "deposit":
        return _deposit_section(interface)
    return _pressed_section(cfg, interface, numbers, experiment)


def _deposit_section(interface: dict) -> list[str]:
    s, summ, prof = interface["settings"], interface["summary"], interface["profile"]
    last = prof["snapshots"][-1]
    lines = ["## 3. Li deposited onto the glass", "",
             f"{summ.get('n_sent')} {s['species']} atoms sent onto the {interface['n_atoms_slab']}-atom glass slab "
             f"(the stage-1 glass opened along z): {summ.get('n_joined')} joined, {summ.get('n_reflected')} "
             f"reflected; {fmt(last.get('per_p'), '.2f')} {s['species']} per P at the end, "
             f"{fmt(summ.get('time_ps'), '.3g')} ps of MD ({summ.get('status')}).", "",
             "**Settings that can force or suppress a product:** arrival energy "
             f"{s['energy_ev']:g} eV ({s['energy_distribution']}, incidence {s['angle_deg']:g}°), flux "
             f"{s['flux_per_ps']:g} atoms/ps in groups of {s['group_size']} (orders of magnitude above evaporation "
             f"fluxes: no time to relax between arrivals), substrate {s['temperature_k']:g} K ({s['thermostat']} "
             f"thermostat), time step {s['timestep_fs']:g} fs, insertion {fmt(s['clearance_ang'], '.3g')} Å above the "
             f"film, {s['final_ps']:g} ps after the last arrival; layers {prof['layer_ang']:g} Å.", "",
             *([f"**The deposition stopped unstable** ({interface['unstable']}); the analysis covers the snapshots "
                "written before it.", ""] if interface.get("unstable") else []),
             "Layers of the last snapshot, the deposit side first (classes of "
             "`tfbsim.analysis.environments`; the pristine glass already holds some product-like local environments, "
             "so the last column — the change against the snapshot before the first arrival — is what the "
             "deposition did):", "",
             "| layer z (Å, 0 = initial glass surface) | atoms | main classes | all classes | change vs. before |",
             "|---|---:|---|---|---|"]
    for row in interface["layers"]:
        change = ", ".join(f"{c} {n:+d}" for c, n in sorted(row.get("change", {}).items(), key=lambda x: -abs(x[1])))
        lines.append(f"| {row['z_lo_ang']:+.1f} to {row['z_hi_ang']:+.1f} | {row['n_atoms']} | {', '.join(row['main'])} "
                     f"| {', '.join(f'{c} {n}' for c, n in sorted(row['counts'].items(), key=lambda x: -x[1]))} "
                     f"| {change or '–'} |")
    order = ", ".join(prof["product_order_first"]) or "none"
    reduced = ", ".join(prof["reduced_classes_present"]) or "none"
    lines += ["", "Literature order from the Li side (" + interface["literature_sources"] + "):", "",
              "| from the Li side | literature | meaning |", "|---:|---|---|"]
    lines += [f"| {i + 1} | {name} | {meaning} |" for i, (name, meaning) in enumerate(interface["literature_order"])]
    lines += ["", f"Products in the order they first appeared: **{order}**; reduced P/N classes in the last snapshot: "
                  f"{reduced} ({last.get('reduced_pn_new')} substrate P/N newly reduced, deepest "
                  f"{fmt(last.get('reduced_pn_depth_ang'), '.3g')} Å below the surface); Li metal on top of the products: "
                  f"{last.get('li_metal_on_top')}. A ~1 ps deposition at this flux shows the first contact "
                  "reactions at most; the layered interphase of the experiments forms over far longer times.", "",
              "![deposition](figures/deposition.png)", ""]
    return lines


def _pressed_section(cfg: Any, interface: dict, numbers: dict, experiment: dict) -> list[str]:
    inter = interface["interphase"]
    unstable = None
    if interface["anneal"].get("status") == "unstable":
        unstable = interface["anneal"].get("diagnostic", {}).get("message", "see interface/anneal/summary.json")
    order = " → ".join(numbers["interphase_order_from_li"]) or "no product classes above the threshold"
    fu = ", ".join(f"{k} {fmt(v, '.3g')}" for k, v in numbers["formula_units"].items())
    return [
        "## 3. Li(100)/LiPON interface (pressed)", "",
        f"Products from the Li side: **{order}**; interphase thickness (last frame) "
        f"{fmt(numbers['interphase_thickness_ang'], '.3g')} Å; formula-unit equivalents (last frame): {fu}.", "",
        *([f"**The anneal stopped unstable** ({unstable}); the analysis covers the frames written before it.", ""]
          if unstable else []),
        f"Expected: {experiment['interphase']}. A few ps at {cfg.interface_anneal_k:g} K can only show the first "
        "reactions at the contact; see the interphase JSON for classes per bin and the growth fit "
        f"(model: {inter['interphase']['growth'].get('model')}).", "",
        "![interphase](figures/interphase.png)", "",
    ]
