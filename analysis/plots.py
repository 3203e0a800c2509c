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


# ---- coordination (issue 5) -------------------------------------------------------------------------------
def plot_coordination(data, path: str | os.PathLike | None = None) -> Figure:
    """Speciation bars (N, O, P Qn, phosphate clusters, Li polyhedra) and, when present, time series and g(r).

    Parameters
    ----------
    data
        :meth:`tfbsim.analysis.coordination.Coordination.to_dict` output (or the JSON file's content).
    path
        PNG to write (atomically); nothing is written when None.
    """
    import numpy as np

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
