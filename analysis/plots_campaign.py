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
        ``{system: [{"temperature_k", "D_cm2_s", "D_stderr_cm2_s"}, ...]}`` (one entry per task).
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
        good = [p for p in pts if p.get("D_cm2_s") is not None and p["D_cm2_s"] > 0]
        if not good:
            continue
        t = np.array([p["temperature_k"] for p in good], float)
        d = np.array([p["D_cm2_s"] for p in good], float)
        e = np.array([p.get("D_stderr_cm2_s") or 0.0 for p in good], float)
        color = f"C{i % 10}"
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
