"""``tfbsim analyze ...``: coordination, diffusion, Arrhenius, interphase."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import DtFsOpt, FitEndOpt, FitStartOpt, FramesOpt, JsonOpt, PlotOpt, TemperatureOpt, _say, _write_json, sub_app

analyze_app = sub_app("Analyse structures and trajectories (coordination, diffusion, interphase).")


def _spec(model: type, flags: dict):
    """The campaign's analysis spec built from the command's flags (shared validation and defaults)."""
    from ..workflows.config import validate_config

    return validate_config(model, flags, source="command-line options")


def _cutoff_mapping(items: list[str] | None) -> dict[str, str]:
    """``["P-N=2.1", "P-O=rdf"]`` -> ``{"P-N": "2.1", "P-O": "rdf"}`` (values checked by the analysis)."""
    from ..errors import ConfigError

    out: dict[str, str] = {}
    for text in items or []:
        name, sep, value = str(text).partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"bad cutoff {text!r}; write PAIR=ANGSTROM, e.g. P-N=2.1, or PAIR=rdf")
        name, value = name.strip(), value.strip()
        value = "rdf" if value.lower() == "rdf" else value
        if out.get(name, value) != value:
            raise ConfigError(f"cutoff for {name} given twice ({out[name]} and {value}); give it once")
        out[name] = value
    return out


def _speciation_pairs() -> tuple[str, ...]:
    from ..analysis.speciation import SPECIATION_PAIRS

    return tuple(SPECIATION_PAIRS)


# ---- coordination (issue 5) -------------------------------------------------------------------------------
@analyze_app.command("coordination")
def analyze_coordination_cmd(
    ctx: typer.Context,
    structure: Annotated[Path, typer.Argument(help="Structure or trajectory: tfbsim H5MD or any ASE-readable file.")],
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frame selection START:STOP:STEP.")] = None,
    region: Annotated[Optional[str], typer.Option("--region", help="Only atoms with this region label.")] = None,
    z_window_ang: Annotated[
        Optional[tuple[float, float]],
        typer.Option("--z-window-ang", help="Only atoms with z in [LO, HI) Å (after wrapping), frame by frame."),
    ] = None,
    cutoff: Annotated[
        Optional[list[str]],
        typer.Option("--cutoff", help="Bond cutoff PAIR=Å (e.g. P-N=2.1) or PAIR=rdf; repeatable. Pairs: "
                                      "P-O, P-N, Li-O, Li-N, Li-S."),
    ] = None,
    cutoffs: Annotated[
        str, typer.Option("--cutoffs", help="default, or rdf: cutoffs from the first minimum of each partial g(r).")
    ] = "default",
    rdf: Annotated[
        Optional[list[str]], typer.Option("--rdf", help="Also compute g(r) and running CN of this pair (e.g. P-O).")
    ] = None,
    rdf_r_max_ang: Annotated[float, typer.Option("--rdf-r-max-ang", help="RDF range (Å).")] = 5.0,
    dt_fs: Annotated[
        Optional[float], typer.Option("--dt-fs", help="Time between stored frames (fs), if the file has no times.")
    ] = None,
    no_pbc: Annotated[
        bool, typer.Option("--no-pbc", help="Analyse as an isolated cluster (no periodic images).")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress", help="Show progress bars.")] = False,
    json_out: JsonOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the figure to this PNG file.")] = None,
) -> None:
    """N (N0/Na/Nd/Nt), O (O0/Onb/Ob), P (Qn, CN), phosphate clusters and Li polyhedra, averaged over frames."""
    from ..analysis.plots import plot_coordination, save_figure
    from ..errors import ConfigError
    from ..workflows.campaigns.config import CoordinationSpec
    from ..workflows.provenance import provenance, utc_now

    started = utc_now()
    if cutoffs not in ("default", "rdf"):
        raise ConfigError(f"--cutoffs must be 'default' or 'rdf', got {cutoffs!r}")
    per_pair = _cutoff_mapping(cutoff)
    if cutoffs == "rdf":
        per_pair = {**{p: "rdf" for p in _speciation_pairs()}, **per_pair}
    spec = _spec(CoordinationSpec, {
        "frames": frames, "region": region, "z_window_ang": z_window_ang, "cutoffs": per_pair or None,
        "dt_fs": dt_fs, "pbc": False if no_pbc else None, "rdf_pairs": rdf or None, "rdf_r_max_ang": rdf_r_max_ang,
    })
    data = spec.build(str(structure)).run(progress=progress).results.to_dict()
    settings = spec.model_dump(mode="json", exclude={"stage"})
    fig = plot_coordination(data) if plot is not None else None
    data["provenance"] = provenance(config=settings, started_utc=started, extra={"input": str(structure)})
    _write_json(json_out, data)
    if fig is not None:
        save_figure(fig, plot)

    def nonzero(block: dict, keys: tuple[str, ...]) -> str:
        return " ".join(f"{k} {block[k]:.2f}" for k in keys if block.get(k)) or "-"

    n, o, p, li = data["N"], data["O"], data["P"], data["Li"]
    poly = " ".join(f"{k} {v:.2f}" for k, v in list(li["polyhedra"].items())[:3]) or "-"
    _say(ctx, f"{data['n_frames']} frame(s); cutoffs (Å): "
              + ", ".join(f"{k} {v:.2f}" for k, v in data["cutoffs_ang"].items()))
    _say(ctx, f"N ({n['count']}): {nonzero(n, ('N0', 'Na', 'Nd', 'Nt', 'N_over'))} | "
              f"O ({o['count']}): {nonzero(o, ('O0', 'Onb', 'Ob', 'O_over'))} | "
              f"P ({p['count']}): {nonzero(p, ('Q0', 'Q1', 'Q2', 'Q3', 'Q4', 'Q_over'))}, CN {p['mean_cn']:.2f} | "
              f"Li ({li['count']}): CN {li['mean_cn']:.2f}, {poly}")


# ---- diffusion (issue 6) ----------------------------------------------------------------------------------


@analyze_app.command("diffusion")
def analyze_diffusion_cmd(
    ctx: typer.Context,
    traj: Annotated[Path, typer.Argument(help="Trajectory: tfbsim H5MD or any ASE-readable file.")],
    species: Annotated[str, typer.Option("--species", help="Element whose diffusion is analysed.")] = "Li",
    axis: Annotated[str, typer.Option("--axis", help="MSD axes: xyz, xy (in-plane), z (normal), x, y.")] = "xyz",
    region: Annotated[Optional[str], typer.Option("--region", help="Only atoms with this region label.")] = None,
    z_window_ang: Annotated[
        Optional[tuple[float, float]],
        typer.Option("--z-window-ang", help="Only time origins with the atom's z in [LO, HI) Å."),
    ] = None,
    dt_fs: DtFsOpt = None,
    temperature_k: TemperatureOpt = None,
    fit_start_ps: FitStartOpt = None,
    fit_end_ps: FitEndOpt = None,
    frames: FramesOpt = None,
    haven_ratio: Annotated[float, typer.Option("--haven-ratio", help="Haven ratio H for σ (1: tracer).")] = 1.0,
    volume_ang3: Annotated[
        Optional[float], typer.Option("--volume-ang3", help="Volume holding the carriers (Å³); default: cell.")
    ] = None,
    no_drift: Annotated[
        bool, typer.Option("--no-drift-correction", help="Keep the centre-of-mass drift.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress", help="Show progress bars.")] = False,
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Li (or any species) MSD, D ± error (GLS + jackknife over atoms) and Nernst–Einstein σ."""
    from ..analysis.plots import plot_msd, save_figure
    from ..workflows.campaigns.config import DiffusionSpec
    from ..workflows.provenance import provenance, utc_now

    started = utc_now()
    spec = _spec(DiffusionSpec, {
        "species": species, "axis": axis, "region": region, "z_window_ang": z_window_ang, "dt_fs": dt_fs,
        "temperature_k": temperature_k, "fit_start_ps": fit_start_ps, "fit_end_ps": fit_end_ps, "frames": frames,
        "haven_ratio": haven_ratio, "volume_ang3": volume_ang3, "remove_drift": not no_drift,
    })
    settings = spec.model_dump(mode="json", exclude={"stage"})
    res = spec.build(str(traj)).run(progress=progress).results
    fig = plot_msd(res) if plot is not None else None
    data = res.to_dict()
    data["provenance"] = provenance(config=settings, started_utc=started, extra={"input": str(traj)})
    _write_json(json_out, data)
    if fig is not None:
        save_figure(fig, plot)
    lo, hi = res.fit.D_ci95_cm2_s
    sigma = "" if res.sigma_ne_S_cm is None else (
        f"; σ_NE = {res.sigma_ne_S_cm:.3g} ± {res.sigma_ne_stderr_S_cm:.2g} S/cm at {res.temperature_k:g} K")
    _say(ctx, f"{res.species} ({res.n_atoms} atoms, {res.n_frames} frames, axis {res.axis}): D = {res.D_cm2_s:.4g} "
              f"± {res.D_stderr_cm2_s:.2g} cm²/s (95 %: {lo:.3g}–{hi:.3g}); fit {res.fit.fit_start_ps:.3g}–"
              f"{res.fit.fit_end_ps:.3g} ps, log–log slope {res.fit.loglog_slope:.2f}{sigma}")


@analyze_app.command("arrhenius")
def analyze_arrhenius_cmd(
    ctx: typer.Context,
    results: Annotated[list[Path], typer.Argument(help="JSON files of `tfbsim analyze diffusion` (one per T).")],
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Weighted Arrhenius fit of D(T): Ea ± error, D0, σ(300 K) with a 95 % interval."""
    from ..analysis.plots import plot_arrhenius, save_figure
    from ..analysis.transport import arrhenius_from_results
    from ..structures.io import read_json
    from ..workflows.provenance import provenance, utc_now

    started = utc_now()
    fit = arrhenius_from_results([read_json(path) for path in results])
    fig = plot_arrhenius(fit) if plot is not None else None
    data = fit.to_dict()
    data["provenance"] = provenance(started_utc=started, extra={"inputs": [str(p) for p in results]})
    _write_json(json_out, data)
    if fig is not None:
        save_figure(fig, plot)
    sigma = "" if fit.sigma_target_S_cm is None else (
        f"; σ(300 K) = {fit.sigma_target_S_cm:.3g} S/cm (95 %: {fit.sigma_target_ci95_S_cm[0]:.2g}–"
        f"{fit.sigma_target_ci95_S_cm[1]:.2g})")
    _say(ctx, f"{len(fit.temperature_k)} temperatures: Ea = {fit.Ea_eV:.3f} ± {fit.Ea_stderr_eV:.3f} eV, "
              f"D0 = {fit.D0_cm2_s:.3g} cm²/s{sigma}")


# ---- interphase (issue 9) ---------------------------------------------------------------------------------
@analyze_app.command("interphase")
def analyze_interphase_cmd(
    ctx: typer.Context,
    traj: Annotated[Path, typer.Argument(help="Interface trajectory or structure: tfbsim H5MD or any ASE-readable file.")],
    axis: Annotated[str, typer.Option("--axis", help="Interface normal: x, y or z (periodic, normal to the in-plane cell vectors).")] = "z",
    bin_ang: Annotated[float, typer.Option("--bin-ang", help="Bin width along the normal (Å).")] = 1.0,
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frame selection START:STOP:STEP (the averaging window).")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Product fraction of a bin's atoms (Li_ion excluded) that makes it interphase.")] = 0.5,
    product: Annotated[
        Optional[list[str]], typer.Option("--product", help="Product class marking the interphase (repeatable; default: "
                                                            "Li2O Li3N Li3P reduced_P P_P polysulfide_S thiophosphate_S NO_x Co_reduced).")
    ] = None,
    cutoff: Annotated[
        Optional[list[str]], typer.Option("--cutoff", help="Bond cutoff override PAIR=Å (e.g. Li-Li=3.3); repeatable.")
    ] = None,
    max_gap_ang: Annotated[float, typer.Option("--max-gap-ang", help="Empty stretches up to this length are bridged (Å).")] = 3.0,
    dt_fs: Annotated[
        Optional[float], typer.Option("--dt-fs", help="Time between stored frames (fs), if the file has no times.")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress", help="Show a progress bar.")] = False,
    json_out: JsonOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the profile (and thickness vs time) figure to this PNG.")] = None,
) -> None:
    """Interphase composition along the normal: classes per bin, census, extent, growth and product order."""
    from ..analysis.plots_interphase import plot_interphase
    from ..workflows.campaigns.config import InterphaseSpec
    from ..workflows.provenance import provenance, utc_now

    started = utc_now()
    spec = _spec(InterphaseSpec, {
        "axis": axis, "bin_ang": bin_ang, "frames": frames, "threshold": threshold, "dt_fs": dt_fs,
        "product_classes": product or None, "cutoffs": _cutoff_mapping(cutoff) or None, "max_gap_ang": max_gap_ang,
    })
    settings = spec.model_dump(mode="json", exclude={"stage"})
    analysis = spec.build(str(traj)).run(progress=progress)
    data = analysis.results.to_dict()
    fig = plot_interphase(data) if plot is not None else None
    data["provenance"] = provenance(config=settings, started_utc=started, extra={"input": str(traj)})
    _write_json(json_out, data)
    if fig is not None:
        from ..analysis.plots import save_figure

        save_figure(fig, plot)
    r = analysis.results
    inter = r.interphase
    fu = ", ".join(f"{k} {v}" for k, v in r.formula_units.items() if v) or "none"
    _say(ctx, f"{r.n_frames} frame(s), {r.n_bins} bins of {r.bin_width_ang:.2f} Å along {r.axis}; formula units "
              f"(last frame): {fu}")
    thick = float(inter["thickness_ang"][-1])
    if thick > 0:
        _say(ctx, f"interphase {thick:.1f} Å ({r.axis} {inter['z_lo_ang'][-1]:.1f}–{inter['z_hi_ang'][-1]:.1f} Å), "
                  f"front at {inter['front_ang'][-1]:.1f} Å; all product runs {inter['total_thickness_ang'][-1]:.1f} Å")
    else:
        _say(ctx, f"no interphase: no bin has >= {threshold:g} of its atoms (Li_ion excluded) in product classes")
    if r.product_order_from_li:
        _say(ctx, "products from the Li side: " + " -> ".join(r.product_order_from_li))
    g = inter["growth"]
    if g.model in ("linear", "parabolic", "undetermined"):
        _say(ctx, f"growth: {g.model}; linear {g.rate_ang_ps:.3g} Å/ps, parabolic {g.parabolic_k_ang_ps05:.3g} "
                  f"Å/ps^0.5 (ΔAIC lin-par {g.delta_aic:.1f})")

from .structure import analyze_structure_cmd  # noqa: E402  (issue 20: diffraction-level structure)
analyze_app.command("structure")(analyze_structure_cmd)

from .mechanism import transport_cmd as _transport_cmd  # noqa: E402  (issue 19: `tfbsim analyze transport`)
analyze_app.command("transport")(_transport_cmd)
