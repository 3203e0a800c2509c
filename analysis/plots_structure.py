"""Figures of the diffraction-level structure analysis: partial g(r), total G(r), S(Q), bond angles.

Each function takes the results object or its JSON dict (``structure.json`` blocks), returns a
:class:`matplotlib.figure.Figure` (Agg canvas, no pyplot state) and writes a PNG when ``path`` is given.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from .plots import new_figure, save_figure

__all__ = ["plot_partial_rdfs", "plot_total_G", "plot_structure_factor", "plot_bond_angles"]


def _get(obj, key, default=None):
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def plot_partial_rdfs(scattering, path: str | os.PathLike | None = None) -> Figure:
    """Partial g_ab(r) of every element pair, offset vertically for legibility (one curve per pair)."""
    r = _arr(_get(scattering, "r_ang"))
    partial = _get(scattering, "g_partial")
    fig, ax = new_figure(figsize=(6.4, 5.2))
    for k, (name, g) in enumerate(sorted(partial.items())):
        ax.plot(r, _arr(g) + 2.0 * k, lw=1.0, label=f"{name} (+{2 * k})")
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g_ab(r) + offset")
    ax.set_title("Partial pair distribution functions")
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)
    return fig


def plot_total_G(scattering, path: str | os.PathLike | None = None) -> Figure:
    """Total G(r) = 4 pi rho0 r [g(r) - 1] with neutron (Sears) and X-ray (Cromer-Mann, Q = 0) weights."""
    r = _arr(_get(scattering, "r_ang"))
    fig, ax = new_figure()
    ax.plot(r, _arr(_get(scattering, "G_neutron")), lw=1.2, label="neutron")
    ax.plot(r, _arr(_get(scattering, "G_xray")), lw=1.2, label="X-ray (f(0) weights)")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G(r) (Å$^{-2}$)")
    ax.set_title("Total pair distribution function (Faber-Ziman)")
    ax.legend()
    save_figure(fig, path)
    return fig


def plot_structure_factor(scattering, path: str | os.PathLike | None = None) -> Figure:
    """Total S(Q) (neutron and X-ray; Lorch window, Q from 2 pi / r_max)."""
    q = _arr(_get(scattering, "q_inv_ang"))
    fig, ax = new_figure()
    ax.plot(q, _arr(_get(scattering, "S_neutron")), lw=1.2, label="neutron")
    ax.plot(q, _arr(_get(scattering, "S_xray")), lw=1.2, label="X-ray")
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.set_xlabel("Q (Å$^{-1}$)")
    ax.set_ylabel("S(Q)")
    ax.set_title("Total structure factor (Lorch window)")
    ax.legend()
    save_figure(fig, path)
    return fig


def plot_bond_angles(angles, path: str | os.PathLike | None = None) -> Figure:
    """Normalised bond-angle distributions (probability per degree) with their means in the legend."""
    x = _arr(_get(angles, "angle_deg"))
    density = _get(angles, "density")
    mean = _get(angles, "mean_deg")
    fig, ax = new_figure()
    for name, p in density.items():
        p = _arr(p)
        if np.nansum(p) == 0:
            continue
        m = mean.get(name)
        ax.plot(x, p, lw=1.2, label=f"{name} (mean {m:.1f}°)" if m is not None else name)
    ax.set_xlabel("angle (degrees)")
    ax.set_ylabel("probability density (1/degree)")
    ax.set_xlim(60, 180)
    ax.set_title("Bond-angle distributions")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return fig
