"""Layer-resolved tracer diffusion D(z) across interfaces and slabs, by the atoms' z at the time origin.

:class:`LayerDiffusion` reads the trajectory once and fits one MSD per z-layer with the machinery of
:class:`~tfbsim.analysis.diffusion.DiffusionAnalysis` (:class:`~tfbsim.analysis.diffusion_base.MSDBase`);
:class:`LayerDiffusionResults` holds D, its error and the layer occupancy (``to_dict()``: the JSON record).
Both are also importable from :mod:`tfbsim.analysis.diffusion`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AnalysisError
from .base import AnalysisResults, Progress
from .diffusion_base import MSDBase, wrapped_z
from .diffusion_fit import DiffusionFit
from .trajectory import Trajectory, TrajectoryLike

__all__ = ["LayerDiffusion", "LayerDiffusionResults"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerDiffusionResults(AnalysisResults):
    """Results of :class:`LayerDiffusion`: D resolved by the atoms' z at the time origin.

    Attributes
    ----------
    z_edges_ang : numpy.ndarray, shape (L + 1,)
    z_centres_ang : numpy.ndarray, shape (L,)
    D_cm2_s, D_stderr_cm2_s : numpy.ndarray, shape (L,)
        NaN for layers without enough data.
    D_ci95_cm2_s : numpy.ndarray, shape (L, 2)
    n_atoms : numpy.ndarray of int, shape (L,)
        Atoms with at least one origin in the layer.
    occupancy : numpy.ndarray, shape (L,)
        Mean number of selected atoms in the layer.
    axis : str
    fits : list of DiffusionFit or None
    n_frames : int
        Frames analysed.
    dt_fs : float or None
        Time between the analysed frames (fs).
    frames : numpy.ndarray of int or None
        Indices of the analysed frames in the trajectory's selection.
    """

    z_edges_ang: np.ndarray
    z_centres_ang: np.ndarray
    D_cm2_s: np.ndarray
    D_stderr_cm2_s: np.ndarray
    D_ci95_cm2_s: np.ndarray
    n_atoms: np.ndarray
    occupancy: np.ndarray
    axis: str
    fits: list = field(repr=False, default_factory=list)
    n_frames: int = 0
    dt_fs: float | None = None
    frames: np.ndarray | None = field(repr=False, default=None)

    def _record(self) -> dict[str, Any]:
        """The JSON record (no fit objects)."""
        return {"axis": self.axis, "z_edges_ang": self.z_edges_ang, "z_centres_ang": self.z_centres_ang,
                "D_cm2_s": self.D_cm2_s, "D_stderr_cm2_s": self.D_stderr_cm2_s,
                "D_ci95_cm2_s": self.D_ci95_cm2_s, "n_atoms": self.n_atoms, "occupancy": self.occupancy}


class LayerDiffusion(MSDBase):
    """Layer-resolved diffusivity D(z) (interfaces): one MSD per z-layer, by the atom's z at the time origin.

    Parameters are those of :class:`~tfbsim.analysis.diffusion.DiffusionAnalysis` (default ``axis="xy"``,
    in-plane; no ``z_window_ang``), plus ``z_edges_ang`` (layer boundaries in Å, increasing). The trajectory is
    read once; ``run(start, stop, step)`` selects frames as for the diffusion analysis.

    Attributes
    ----------
    results : LayerDiffusionResults
        After :meth:`run`.
    """

    def __init__(
        self,
        trajectory: TrajectoryLike,
        *,
        z_edges_ang: Sequence[float],
        species: str | Sequence[str] | None = "Li",
        indices: Sequence[int] | None = None,
        region: str | None = None,
        axis: str = "xy",
        frames: str | slice | None = None,
        dt_fs: float | None = None,
        temperature_k: float | None = None,
        fit_start_ps: float | None = None,
        fit_end_ps: float | None = None,
        max_fit_lags: int = 32,
        remove_drift: bool = True,
        drift_reference_indices: Sequence[int] | None = None,
        unwrap: bool | None = None,
    ) -> None:
        edges = np.asarray(z_edges_ang, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise AnalysisError("z_edges_ang must be at least two increasing values (layer boundaries, Å)")
        super().__init__(
            trajectory, species=species, indices=indices, region=region, axis=axis, frames=frames, dt_fs=dt_fs,
            temperature_k=temperature_k, fit_start_ps=fit_start_ps, fit_end_ps=fit_end_ps,
            max_fit_lags=max_fit_lags, remove_drift=remove_drift, drift_reference_indices=drift_reference_indices,
            unwrap=unwrap,
        )
        self.z_edges_ang = edges

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> LayerDiffusionResults:
        """Read the selected frames once, then fit D in each layer."""
        window = self._window(frames)
        loaded = self._load(frames, progress)
        z = wrapped_z(loaded.positions, loaded.cells, np.asarray(frames.pbc, dtype=bool))
        n_layers = len(self.z_edges_ang) - 1
        d = np.full(n_layers, np.nan)
        err = np.full(n_layers, np.nan)
        ci = np.full((n_layers, 2), np.nan)
        n_atoms = np.zeros(n_layers, dtype=int)
        occupancy = np.zeros(n_layers)
        fits: list[DiffusionFit | None] = []
        for layer in range(n_layers):
            lo, hi = self.z_edges_ang[layer], self.z_edges_ang[layer + 1]
            weights = ((z >= lo) & (z < hi)).astype(float)
            occupancy[layer] = weights.sum(axis=1).mean()
            n_atoms[layer] = int(np.count_nonzero(weights.any(axis=0)))
            if n_atoms[layer] == 0:
                fits.append(None)
                continue
            _, _, grid, gs, gc = self._sums(loaded, weights)
            try:
                fit = self._fit(window, grid, gs, gc, self.axis, window.fit_start_ps, window.fit_end_ps)
            except AnalysisError as exc:
                logger.warning("layer %.3g–%.3g Å: no D (%s)", lo, hi, exc)
                fits.append(None)
                continue
            fits.append(fit)
            d[layer], err[layer], ci[layer] = fit.D_cm2_s, fit.D_stderr_cm2_s, fit.D_ci95_cm2_s
        centres = 0.5 * (self.z_edges_ang[1:] + self.z_edges_ang[:-1])
        return LayerDiffusionResults(
            z_edges_ang=self.z_edges_ang, z_centres_ang=centres, D_cm2_s=d, D_stderr_cm2_s=err, D_ci95_cm2_s=ci,
            n_atoms=n_atoms, occupancy=occupancy, axis=self.axis, fits=fits, n_frames=window.n_frames,
            dt_fs=window.dt_ps * 1000.0, frames=ids,
        )
