"""Figures of the interphase analysis: stacked class-fraction profile along the normal, thickness vs time.

Each function takes the dict of ``Interphase(...).run().results.to_dict()`` (or the JSON file's content, the
:class:`~tfbsim.analysis.interphase_results.InterphaseResults`, or the run
:class:`~tfbsim.analysis.interphase.Interphase` itself), returns a
:class:`matplotlib.figure.Figure` and writes a PNG when ``path`` is given (atomically).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .plots import new_figure, save_figure

__all__ = ["CLASS_COLOURS", "plot_interphase_profile", "plot_interphase_growth", "plot_interphase"]

#: One colour per class: products warm, electrolyte blue, cathode brown, Li grey.
CLASS_COLOURS: dict[str, str] = {
    "Li_metal": "#8c8c8c", "Li_ion": "#dadada",
    "phosphate_O": "#1f77b4", "phosphate_P": "#aec7e8", "lipon_N": "#17becf",
    "oxide_Co": "#8c564b", "Co_oct": "#c49c94", "Co_reduced": "#e377c2",
    "Li2O": "#d62728", "Li3N": "#2ca02c", "Li3P": "#ff7f0e", "reduced_P": "#ffbb78", "P_P": "#bcbd22",
    "NO_x": "#9467bd", "Li2S": "#dbdb8d", "thiophosphate_S": "#98df8a", "polysulfide_S": "#f7b6d2",
    "O_other": "#525252", "N_other": "#525252", "P_other": "#525252", "S_other": "#525252", "other": "#252525",
}  # fmt: skip


def _as_dict(data: Any) -> dict:
    if isinstance(data, dict):
        return data
    if hasattr(data, "results"):  # the analysis itself
        data = data.results
    return data.to_dict() if hasattr(data, "to_dict") else data


def _floats(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _smooth(values: np.ndarray, width_bins: int) -> np.ndarray:
    """Periodic running mean over ``width_bins`` bins (odd; 1 = unchanged)."""
    if width_bins <= 1:
        return values
    half = width_bins // 2
    padded = np.concatenate([values[-half:], values, values[:half]])
    return np.convolve(padded, np.ones(width_bins) / width_bins, mode="valid")


def _draw_profile(ax, data: dict, smooth_ang: float = 2.0) -> None:
    edges = np.asarray(data["bin_edges_ang"], dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = float(edges[1] - edges[0])
    n_smooth = max(1, int(round(smooth_ang / width)))
    n_smooth = min(n_smooth + (1 - n_smooth % 2), len(centres) - (1 - len(centres) % 2))  # odd, <= n_bins
    # atomic planes leave empty bins between them: smooth class and total densities, then take the ratio
    total = np.nansum([_floats(v) for v in data.get("element_density_ang3", {}).values()], axis=0)
    if np.ndim(total) == 0:
        total = np.ones_like(centres)
    fractions = {c: _floats(v) for c, v in data["class_fraction_by_bin"].items()}
    smooth_total = _smooth(total, n_smooth)
    with np.errstate(invalid="ignore", divide="ignore"):
        shown_frac = {c: np.where(smooth_total > 0, _smooth(np.nan_to_num(v) * total, n_smooth) / smooth_total,
                                  0.0) for c, v in fractions.items()}
    shown = [c for c, v in shown_frac.items() if np.nanmax(v, initial=0.0) > 0.005]
    if shown:
        ax.stackplot(centres, *[shown_frac[c] for c in shown], labels=shown, step="mid",
                     colors=[CLASS_COLOURS.get(c, "#7f7f7f") for c in shown], linewidth=0)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"{data.get('axis', 'z')} (Å)")
    smoothing = f" (running mean over {n_smooth * width:.1f} Å)" if n_smooth > 1 else ""
    ax.set_ylabel("class fraction of atoms" + ("\n" + smoothing.strip() if smoothing else ""))
    inter = data.get("interphase", {})
    lo, thick = _floats(inter.get("z_lo_ang", [None]))[-1:], _floats(inter.get("thickness_ang", [0.0]))[-1:]
    if len(lo) and np.isfinite(lo[0]) and thick[0] > 0:
        length = edges[-1]
        start, stop = lo[0], lo[0] + thick[0]
        for a, b in ((start, min(stop, length)), (0.0, stop - length)):
            if b > a:
                ax.axvspan(a, b, facecolor="none", edgecolor="k", hatch="//", lw=0.0, alpha=0.5)
        ax.plot([], [], color="k", lw=0, marker="s", mfc="none", label=f"interphase ({thick[0]:.1f} Å)")
    density = data.get("mass_density_g_cm3")
    if density is not None:
        twin = ax.twinx()
        twin.plot(centres, _smooth(_floats(density), n_smooth), color="k", lw=0.9, drawstyle="steps-mid")
        twin.set_ylabel("mass density (g/cm³)")
        twin.set_ylim(bottom=0)
    order = data.get("product_order_from_li") or []
    title = "products from the Li side: " + " → ".join(order) if order else "class fractions along the normal"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.09, 1.0), frameon=False)


def _draw_growth(ax, data: dict) -> None:
    inter = data.get("interphase", {})
    thick = _floats(inter.get("thickness_ang", []))
    times = _floats(inter.get("time_ps", [None] * len(thick)))
    has_t = len(times) > 0 and np.isfinite(times).all()
    x = times if has_t else np.arange(len(thick), dtype=float)
    ax.plot(x, thick, "o", color="C3", ms=4, label="interphase")
    total = inter.get("total_thickness_ang")
    if total is not None and np.nanmax(np.abs(_floats(total) - thick), initial=0.0) > 0:
        ax.plot(x, _floats(total), "s", color="0.5", ms=3, mfc="none", label="all product runs")
    growth = inter.get("growth") or {}
    if has_t and len(x) > 1:
        grid = np.linspace(max(0.0, x.min()), x.max(), 200)
        for name, style in (("linear", "-"), ("parabolic", "--")):
            fit = growth.get(name) or {}
            if fit:
                arg = grid if name == "linear" else np.sqrt(grid)
                unit = "Å/ps" if name == "linear" else "Å/ps$^{1/2}$"
                ax.plot(grid, fit["intercept_ang"] + fit["rate"] * arg, style, color="k", lw=1.0,
                        label=f"{name}: {fit['rate']:.3g} {unit}")
    ax.set_xlabel("time (ps)" if has_t else "frame")
    ax.set_ylabel("thickness (Å)")
    model = growth.get("model", "")
    note = f" (ΔAIC lin−par = {growth['delta_aic']:.1f})" if growth.get("delta_aic") is not None and \
        np.isfinite(growth.get("delta_aic") or np.nan) else ""
    ax.set_title(f"growth law: {model}{note}" if model else "interphase thickness", fontsize=10)
    ax.legend(fontsize=8, frameon=False)


def plot_interphase_profile(
    data: Any, path: str | os.PathLike | None = None, *, smooth_ang: float = 2.0
) -> Figure:
    """Stacked class fractions along the normal, mass density (right axis) and the interphase (hatched).

    Atomic planes leave empty bins between them, so class and total atom densities are averaged over a running
    window of about ``smooth_ang`` (Å) before their ratio is drawn (0: raw bins).
    """
    data = _as_dict(data)
    fig, ax = new_figure(figsize=(9.0, 4.2))
    _draw_profile(ax, data, smooth_ang)
    save_figure(fig, path)
    return fig


def plot_interphase_growth(data: Any, path: str | os.PathLike | None = None) -> Figure:
    """Interphase thickness vs time with the linear and parabolic fits."""
    data = _as_dict(data)
    fig, ax = new_figure(figsize=(6.0, 4.0))
    _draw_growth(ax, data)
    save_figure(fig, path)
    return fig


def plot_interphase(data: Any, path: str | os.PathLike | None = None, *, smooth_ang: float = 2.0) -> Figure:
    """Profile, and thickness vs time with more than one frame (``tfbsim analyze interphase --plot``)."""
    data = _as_dict(data)
    if len(data.get("interphase", {}).get("thickness_ang", [])) < 2:
        return plot_interphase_profile(data, path, smooth_ang=smooth_ang)
    fig, (top, bottom) = new_figure(2, 1, figsize=(9.0, 7.6), height_ratios=(1.3, 1.0))
    _draw_profile(top, data, smooth_ang)
    _draw_growth(bottom, data)
    save_figure(fig, path)
    return fig
