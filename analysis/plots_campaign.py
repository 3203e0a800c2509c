"""Campaign figures: diffusivities of every system against 1000/T, with their Arrhenius lines."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from .plots import new_figure, save_figure

__all__ = ["plot_campaign_arrhenius"]


def plot_campaign_arrhenius(
    points: Mapping[str, Sequence[Mapping]],
    fits: Mapping[str, Mapping] | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """D (log scale) vs 1000/T for several systems, with error bars and, where fitted, the Arrhenius line.

    Parameters
    ----------
    points
        ``{system: [{"temperature_k", "D_cm2_s", "D_stderr_cm2_s", "status"}, ...]}`` (one entry per task;
        ``status`` as in ``arrhenius.json``: ``fitted`` points are filled, ``bound_not_diffusive`` points are
        drawn as upper bounds (open marker, arrow down), ``excluded_network_flows`` points as crosses; without
        ``status`` every point is drawn filled).
    fits
        ``{system: {"Ea_eV", "Ea_stderr_eV", "D0_cm2_s"}}`` (the ``to_dict()`` of an
        :class:`~tfbsim.analysis.transport.ArrheniusFit`); systems without a fit get markers only.
    path
        PNG to write (optional).
    """
    import numpy as np

    k_b = 8.617333262e-5  # eV/K
    fits = fits or {}
    fig, ax = new_figure()
    ax.set_yscale("log")
    for i, (system, pts) in enumerate(sorted(points.items())):
        valid = [p for p in pts if p.get("D_cm2_s") is not None and p["D_cm2_s"] > 0]
        good = [p for p in valid if p.get("status", "fitted") == "fitted"]
        color = f"C{i % 10}"
        bounds = [p for p in valid if p.get("status") == "bound_not_diffusive"]
        flows = [p for p in valid if p.get("status") == "excluded_network_flows"]
        if bounds:
            tb = np.array([p["temperature_k"] for p in bounds], float)
            db = np.array([p["D_cm2_s"] for p in bounds], float)
            ax.vlines(1000 / tb, 0.4 * db, db, colors=color, alpha=0.6)  # "somewhere below": an upper bound
            ax.plot(1000 / tb, db, "v", mfc="none", mec=color, ms=7, label=f"{system}: upper bound (not diffusive)")
        if flows:
            tf = np.array([p["temperature_k"] for p in flows], float)
            ax.plot(1000 / tf, [p["D_cm2_s"] for p in flows], "x", color=color, ms=7,
                    label=f"{system}: excluded (network flows)")
        if not good:
            continue
        t = np.array([p["temperature_k"] for p in good], float)
        d = np.array([p["D_cm2_s"] for p in good], float)
        e = np.array([p.get("D_stderr_cm2_s") or 0.0 for p in good], float)
        fit = fits.get(system)
        label = system
        if fit:
            grid = np.linspace(t.min(), t.max(), 50)
            ax.plot(1000 / grid, fit["D0_cm2_s"] * np.exp(-fit["Ea_eV"] / (k_b * grid)), color=color, lw=1)
            label += f" (Ea = {fit['Ea_eV']:.2f} ± {fit['Ea_stderr_eV']:.2f} eV)"
        ax.errorbar(1000 / t, d, yerr=np.vstack([np.minimum(e, d * 0.999), e]), fmt="o", ms=4, capsize=3,
                    color=color, label=label)
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("D (cm²/s)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    save_figure(fig, path)
    return fig
