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
