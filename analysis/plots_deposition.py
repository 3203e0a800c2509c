"""Figures of :func:`tfbsim.analysis.deposition_profile.deposition_profile`.

Each function takes the profile's ``to_dict()`` record (or the :class:`DepositionProfile`), returns a
:class:`matplotlib.figure.Figure` and writes a PNG when ``path`` is given (atomically).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .environments import PRODUCT_CLASSES
from .plots import new_figure, save_figure
from .plots_interphase import CLASS_COLOURS

__all__ = ["plot_deposition_series", "plot_deposition_layers", "plot_deposition"]


def _as_dict(data: Any) -> dict:
    return data.to_dict() if hasattr(data, "to_dict") else dict(data)


def _draw_series(ax, data: dict) -> None:
    snaps = data["snapshots"]
    x = np.array([s["per_p"] if s["per_p"] is not None else s["x"] for s in snaps], dtype=float)
    xlabel = f"deposited {data['species']} per P" if snaps[0]["per_p"] is not None else data["x_name"]
    shown = [c for c in (*PRODUCT_CLASSES, "Li_metal") if any(s["class_counts"].get(c, 0) for s in snaps)]
    for c in shown:
        y = [s["class_counts"].get(c, 0) for s in snaps]
        ax.plot(x, y, marker="o", ms=3, color=CLASS_COLOURS.get(c, "k"), label=c)
    dep_any = False
    for c, colour in (("Li_metal", "#4d4d4d"), ("Li_ion", "#9e9e9e")):
        y = [s["deposit_classes"].get(c, 0) for s in snaps]
        if any(y):
            dep_any = True
            ax.plot(x, y, ls="--", color=colour, label=f"{c} (deposited atoms)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("atoms in class")
    if shown or dep_any:
        ax.legend(fontsize=7, ncol=2)
    ax.set_title("interphase classes during deposition", fontsize=9)


def _draw_layers(ax, data: dict, snapshot: int) -> None:
    snap = data["snapshots"][snapshot]
    z_lo = np.asarray(data["layer_z_lo_ang"], dtype=float) - data["z0_ang"]
    width = float(data["layer_ang"])
    left = np.zeros(len(z_lo))
    for c, counts in snap["layer_counts"].items():
        counts = np.asarray(counts, dtype=float)
        ax.barh(z_lo + 0.5 * width, counts, height=0.9 * width, left=left, color=CLASS_COLOURS.get(c, "k"), label=c)
        left += counts
    ax.axhline(0.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("atoms per layer")
    ax.set_ylabel("z - initial surface (Å)")
    ax.legend(fontsize=6, ncol=2, loc="lower right")
    ax.set_title(f"layers after {snap['deposited']} deposited atoms", fontsize=9)


def plot_deposition_series(data: Any, path: str | os.PathLike | None = None) -> Figure:
    """Product classes (and Li metal) against the deposited amount."""
    fig, ax = new_figure()
    _draw_series(ax, _as_dict(data))
    save_figure(fig, path)
    return fig


def plot_deposition_layers(data: Any, path: str | os.PathLike | None = None, *, snapshot: int = -1) -> Figure:
    """Classes per layer (stacked) of one snapshot (default the last)."""
    fig, ax = new_figure(figsize=(5.2, 5.6))
    _draw_layers(ax, _as_dict(data), snapshot)
    save_figure(fig, path)
    return fig


def plot_deposition(data: Any, path: str | os.PathLike | None = None) -> Figure:
    """Both panels: the series and the last snapshot's layers."""
    data = _as_dict(data)
    fig, axes = new_figure(1, 2, figsize=(11.0, 4.6))
    _draw_series(axes[0], data)
    _draw_layers(axes[1], data, -1)
    save_figure(fig, path)
    return fig
