"""Figures of the transport-mechanism analyses: tracer vs charge MSD, α2(t), G_s(r, t), residence times,
and the network-former MSDs of the flow check. Each takes the JSON record (``to_dict()``) of its analysis."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from .plots import new_figure, save_figure

__all__ = ["plot_collective_msd", "plot_non_gaussian", "plot_van_hove", "plot_residence", "plot_network_msd"]


def plot_collective_msd(record: Mapping, path: str | os.PathLike | None = None) -> Figure:
    """Tracer MSD and charge MSD (``1/N <|ΣΔr|²>``) vs lag, with D*, D_σ and H in the title."""
    msd = record["msd"]
    fig, ax = new_figure()
    t = np.asarray(msd["lag_ps"], float)
    ax.plot(t, np.asarray(msd["tracer_ang2"], float), label="tracer ⟨Δr²⟩")
    ax.plot(t, np.asarray(msd["collective_ang2"], float), label="charge ⟨|ΣΔr|²⟩/N", alpha=0.8)
    ax.axvspan(record["fit_start_ps"], record["fit_end_ps"], color="0.9", label="fit window (per block)")
    h, ci = record.get("haven_ratio"), record.get("haven_ratio_ci95")
    title = f"H = {h:.2f}" if h is not None else "H: –"
    if ci:
        title += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    ax.set_title(f"{title}; {record.get('n_blocks')} blocks", fontsize=9)
    ax.set_xlabel("lag (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return fig


def plot_non_gaussian(record: Mapping, path: str | os.PathLike | None = None) -> Figure:
    """α2(t) on a logarithmic time axis."""
    fig, ax = new_figure()
    ax.semilogx(record["lag_ps"], [np.nan if v is None else v for v in record["alpha2"]], "o-", ms=3)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel("lag (ps)")
    ax.set_ylabel("α₂(t)")
    ax.set_title(f"{record.get('species')}: non-Gaussian parameter", fontsize=9)
    save_figure(fig, path)
    return fig


def plot_van_hove(record: Mapping, path: str | os.PathLike | None = None) -> Figure:
    """4π r² G_s(r, t) (the distribution of |Δr|) at each lag."""
    fig, ax = new_figure()
    r = np.asarray(record["r_ang"], float)
    for lag, p in zip(record["lag_ps"], record["p_r_per_ang"]):
        ax.plot(r, np.asarray(p, float), label=f"{lag:.3g} ps")
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("4πr² G_s(r, t) (1/Å)")
    ax.legend(fontsize=8, title="lag")
    save_figure(fig, path)
    return fig


def plot_residence(record: Mapping, path: str | os.PathLike | None = None) -> Figure:
    """Histogram of the residence times between consecutive hops."""
    fig, ax = new_figure()
    hist = record.get("residence_histogram") or {}
    edges, counts = hist.get("edges_ps") or [], hist.get("counts") or []
    if len(counts):
        ax.stairs(counts, edges, fill=True, alpha=0.6)
    ax.set_xlabel("residence time (ps)")
    ax.set_ylabel("count")
    ax.set_title(f"{record.get('n_hops')} hops; mean residence {record.get('mean_residence_ps') or float('nan'):.3g} ps; "
                 f"back-hops {record.get('back_hop_fraction') or float('nan'):.2f}", fontsize=9)
    save_figure(fig, path)
    return fig


def plot_network_msd(record: Mapping, path: str | os.PathLike | None = None) -> Figure:
    """MSD of each network former (the ``network`` block of a diffusion record) with the fit window."""
    fig, ax = new_figure()
    net = record.get("network") or {}
    curves = net.get("msd") or {}
    for sp, m in (curves.get("species") or {}).items():
        ax.plot(curves["lag_ps"], [np.nan if v is None else v for v in m], label=sp)
    if net:
        ax.axvspan(net["fit_start_ps"], net["fit_end_ps"], color="0.92")
        ax.set_title(("network FLOWS" if net.get("network_flows") else "network rigid")
                     + f" (rise limit {net.get('max_rise_ang2')} Å²)", fontsize=9)
    ax.set_xlabel("lag (ps)")
    ax.set_ylabel("MSD (Å²)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    save_figure(fig, path)
    return fig
