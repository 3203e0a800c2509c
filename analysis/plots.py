"""Figures for the analyses: one function per figure, matplotlib without pyplot (no global backend state).

Every figure function takes the analysis' ``results`` (or the JSON-like dict it writes), returns a
:class:`matplotlib.figure.Figure`, and saves a PNG when ``path`` is given (atomically, like every output).
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..structures.io import atomic_path

__all__ = ["new_figure", "save_figure"]


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (6.4, 4.2), **kwargs):
    """A Figure on an Agg canvas and its axes (``squeeze`` like :func:`matplotlib.pyplot.subplots`)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def save_figure(fig: Figure, path: str | os.PathLike | None, *, dpi: int = 150) -> Path | None:
    """Save ``fig`` as PNG at ``path`` (atomic); no-op when ``path`` is None."""
    if path is None:
        return None
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return Path(path)


# Figure functions of each analysis follow (coordination, diffusion, interphase).


# ---- diffusion (issue 6) ----------------------------------------------------------------------------------
def _get(obj, key, default=None):
    """Attribute or key lookup, so figures take results objects or their JSON dicts."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def plot_msd(results, path: str | os.PathLike | None = None) -> Figure:
    """MSD vs lag (linear and log–log) with the fit window and the fitted line.

    Parameters
    ----------
    results
        :class:`~tfbsim.analysis.diffusion.DiffusionResults` or the dict of ``tfbsim analyze diffusion --json``.
    path
        PNG to write (optional).
    """
    import numpy as np

    fit = _get(results, "fit")
    if fit is not None:
        lag, msd = np.asarray(results.lag_ps), np.asarray(results.msd_ang2)
        d, err = fit.D_cm2_s, fit.D_stderr_cm2_s
        start, end, slope_ll, ndim = fit.fit_start_ps, fit.fit_end_ps, fit.loglog_slope, fit.n_dimensions
        intercept = fit.intercept_ang2
    else:
        lag, msd = np.asarray(results["msd"]["lag_ps"], float), np.asarray(results["msd"]["msd_ang2"], float)
        d, err = results["D_cm2_s"], results["D_stderr_cm2_s"]
        start, end, slope_ll = results["fit_start_ps"], results["fit_end_ps"], results["loglog_slope"]
        ndim = len(results.get("axis", "xyz"))
        window = (lag >= start) & (lag <= end)
        intercept = float(np.mean(msd[window] - 2 * ndim * d * 1e4 * lag[window])) if window.any() else 0.0
    line = 2 * ndim * d * 1e4 * lag + intercept  # D cm²/s -> Å²/ps
    axis = _get(results, "axis", "xyz")
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(9.6, 3.8))
    in_fit = (lag >= start) & (lag <= end)
    for ax in (ax1, ax2):
        ax.axvspan(start, end, color="0.9", label="fit window")
        ax.plot(lag, msd, color="C0", lw=1.2, label=f"MSD ({axis})")
        ax.plot(lag[in_fit], line[in_fit], color="C3", ls="--", lw=1.5, label="GLS fit")
        ax.set_xlabel("lag time (ps)")
    ax1.set_ylabel("MSD (Å²)")
    ax1.set_title(f"D = {d:.3g} ± {err:.2g} cm²/s", fontsize=10)
    ax1.legend(fontsize=8, loc="upper left")
    pos = (lag > 0) & (msd > 0)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    if pos.any():
        ref = lag[pos]
        ax2.plot(ref, msd[pos][len(ref) // 2] * ref / ref[len(ref) // 2], color="0.5", lw=0.8, ls=":",
                 label="slope 1")
    ax2.set_title(f"log–log slope in window: {slope_ll:.2f}", fontsize=10)
    ax2.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)
    return fig


def plot_arrhenius(fit, path: str | os.PathLike | None = None) -> Figure:
    """Arrhenius plot: D (log scale) vs 1000/T with error bars, the fit, its 95 % band and the 300 K point.

    Parameters
    ----------
    fit
        :class:`~tfbsim.analysis.transport.ArrheniusFit` or the dict of ``tfbsim analyze arrhenius --json``.
    path
        PNG to write (optional).
    """
    import numpy as np

    if isinstance(fit, dict):
        pts = fit["points"]
        t = np.array([p["temperature_k"] for p in pts], float)
        d = np.array([p["D_cm2_s"] for p in pts], float)
        e = np.array([p["D_stderr_cm2_s"] for p in pts], float)
        ea, ea_err, d0 = fit["Ea_eV"], fit["Ea_stderr_eV"], fit["D0_cm2_s"]
        sigma, sigma_ci, t_target = fit.get("sigma_300K_S_cm"), fit.get("sigma_300K_ci95_S_cm"), 300.0
        band = None
    else:
        t, d, e = fit.temperature_k, fit.D_cm2_s, fit.D_stderr_cm2_s
        ea, ea_err, d0 = fit.Ea_eV, fit.Ea_stderr_eV, fit.D0_cm2_s
        sigma, sigma_ci, t_target = fit.sigma_target_S_cm, fit.sigma_target_ci95_S_cm, fit.target_temperature_k
        band = fit.D_at_cm2_s
    k_b = 8.617333262e-5  # eV/K
    grid_t = 1.0 / np.linspace(1.0 / t_target, 1.0 / (t.max() * 1.05), 200)
    line = d0 * np.exp(-ea / (k_b * grid_t))
    fig, ax = new_figure()
    ax.set_yscale("log")
    if band is not None:
        _, lo, hi = band(grid_t)
        ax.fill_between(1000 / grid_t, lo, hi, color="C0", alpha=0.2, label="95 % band")
    measured = grid_t >= t.min()
    ax.plot(1000 / grid_t[measured], line[measured], color="C0", label=f"Ea = {ea:.3f} ± {ea_err:.3f} eV")
    ax.plot(1000 / grid_t[~measured], line[~measured], color="C0", ls="--", label="extrapolation")
    ax.errorbar(1000 / t, d, yerr=np.vstack([np.minimum(e, d * 0.999), e]), fmt="o", color="k", ms=4,
                capsize=3, label="MD")
    d_target = d0 * np.exp(-ea / (k_b * t_target))
    ax.plot([1000 / t_target], [d_target], marker="*", color="C3", ms=10, ls="none",
            label=f"{t_target:.0f} K" + (f": σ = {sigma:.2g} S/cm" if sigma is not None else ""))
    if sigma is not None and sigma_ci is not None:
        ax.errorbar([1000 / t_target], [d_target], color="C3", capsize=4,
                    yerr=[[d_target - d_target * sigma_ci[0] / sigma], [d_target * sigma_ci[1] / sigma - d_target]])
        ax.set_title(f"σ({t_target:.0f} K) 95 %: [{sigma_ci[0]:.2g}, {sigma_ci[1]:.2g}] S/cm", fontsize=10)
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("D (cm²/s)")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return fig


def plot_layer_diffusivity(results, path: str | os.PathLike | None = None) -> Figure:
    """D(z) profile with 95 % intervals (:class:`~tfbsim.analysis.diffusion.LayerDiffusionResults` or dict)."""
    import numpy as np

    z = np.asarray(_get(results, "z_centres_ang"), float)
    d = np.asarray(_get(results, "D_cm2_s"), float)
    ci = np.asarray(_get(results, "D_ci95_cm2_s"), float).reshape(-1, 2)
    fig, ax = new_figure()
    ok = np.isfinite(d)
    ax.errorbar(z[ok], d[ok], yerr=[d[ok] - ci[ok, 0], ci[ok, 1] - d[ok]], fmt="o-", capsize=3)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("z at time origin (Å)")
    ax.set_ylabel(f"D ({_get(results, 'axis', '')}) (cm²/s)")
    save_figure(fig, path)
    return fig


__all__ += ["plot_msd", "plot_arrhenius", "plot_layer_diffusivity"]


# ---- coordination (issue 5) -------------------------------------------------------------------------------
def plot_coordination(data, path: str | os.PathLike | None = None) -> Figure:
    """Speciation bars (N, O, P Qn, phosphate clusters, Li polyhedra) and, when present, time series and g(r).

    Parameters
    ----------
    data
        ``Coordination(...).run().results.to_dict()`` (or the JSON file's content, or the results object).
    path
        PNG to write (atomically); nothing is written when None.
    """
    import numpy as np

    if not isinstance(data, dict):  # CoordinationResults, or the run Coordination itself
        data = getattr(data, "results", data).to_dict()
    fig, axes = new_figure(2, 3, figsize=(13.0, 7.0))
    blocks = [
        (axes[0, 0], "N", ("N0", "Na", "Nd", "Nt", "N_over"), "N species"),
        (axes[0, 1], "O", ("O0", "Onb", "Ob", "O_over"), "O species"),
        (axes[0, 2], "P", ("Q0", "Q1", "Q2", "Q3", "Q4", "Q_over"), "P units (Qn)"),
    ]
    for ax, key, classes, title in blocks:
        block = data.get(key, {})
        values = [block.get(c, 0.0) or 0.0 for c in classes]
        errors = [(block.get("std") or {}).get(c, 0.0) or 0.0 for c in classes]
        ax.bar(classes, values, yerr=errors, color="tab:blue", capsize=3)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction")
        ax.set_title(f"{title} (n = {block.get('count', 0)})")
    clusters = data.get("phosphate_clusters", {})
    names = ("monomer", "dimer", "trimer", "larger")
    ax = axes[1, 0]
    poly = dict(list((data.get("Li", {}).get("polyhedra") or {}).items())[:8])
    heights = list(poly.values()) + [clusters.get(n, 0.0) or 0.0 for n in names]
    ax.bar(list(poly) + [f"P {n}" for n in names], heights,
           color=["tab:green"] * len(poly) + ["tab:orange"] * len(names))
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction")
    li_cn = data.get("Li", {}).get("mean_cn", 0.0) or 0.0
    ax.set_title(f"Li polyhedra (mean CN {li_cn:.2f}) | phosphate clusters")
    ax.tick_params(axis="x", labelrotation=45)
    ax = axes[1, 1]
    per_frame = data.get("per_frame", {})
    if data.get("n_frames", 1) > 1:
        raw_times = per_frame.get("time_ps")
        times = [] if raw_times is None else list(raw_times)
        has_times = bool(times) and not any(t is None or t != t for t in times)  # None/NaN: no times
        x = np.asarray(times, dtype=float) if has_times else np.asarray(per_frame.get("frame", []))
        for key in ("Nd", "Na", "Nt", "Ob"):
            y = np.asarray([np.nan if v is None else v for v in per_frame.get(key, [])], dtype=float)
            if len(y) == len(x) and np.isfinite(y).any():
                ax.plot(x, y, label=key)
        ax.set_xlabel("time (ps)" if has_times else "frame")
        ax.set_ylabel("fraction")
        ax.set_title("speciation vs time")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False)
    else:
        ax.set_axis_off()
    ax = axes[1, 2]
    rdf = data.get("rdf")
    if rdf:
        r = np.asarray(rdf["r_ang"], dtype=float)
        for name, g in rdf["g"].items():
            ax.plot(r, np.asarray(g, dtype=float), label=name)
        for name, r_min in (data.get("cutoffs_ang") or {}).items():
            if (data.get("cutoff_source") or {}).get(name) == "rdf":
                ax.axvline(r_min, color="0.6", lw=0.8, ls="--")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.set_title("partial RDFs (dashed: cutoffs from g(r))")
        ax.legend(frameon=False)
    else:
        ax.set_axis_off()
    save_figure(fig, path)
    return fig


__all__ += ["plot_coordination"]
