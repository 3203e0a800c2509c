"""How the ions move: non-Gaussian parameter α2(t), self van Hove function G_s(r, t), site-to-site hops.

Three :class:`~tfbsim.analysis.base.TrajectoryAnalysis` classes (settings in ``__init__``, ``run()`` returns
``self``, ``results.to_dict()`` is the JSON record) and the array functions behind them, which take unwrapped,
drift-corrected positions ``(n_frames, n_atoms, 3)`` in Å (for a running simulation or tests):

- :func:`non_gaussian_parameter`: ``α2(t) = d <r⁴> / ((d + 2) <r²>²) - 1`` (3-D: ``3<r⁴>/(5<r²>²) - 1``), over
  atoms and time origins. 0 for Gaussian (Brownian or harmonic) motion; a peak marks hopping: most ions rattle
  in their cage while a few have jumped, so the displacement distribution has a long tail.
- :func:`self_van_hove`: ``G_s(r, t) = 1/N <Σ_i δ(r - |Δr_i(t)|)> / (4π r²)``, normalised so that
  ``∫ 4π r² G_s dr = 1``; ``4π r² G_s`` (``p_r_per_ang``) is the distribution of the displacement length.
  Hopping shows as secondary peaks at the site separation (2.5–3.5 Å for Li in oxide glasses).
- :func:`detect_hops`: site-to-site jumps. Each ion's trajectory is smoothed by a moving average over
  ``smooth_ps`` (removes vibrations); the current site is the running mean of the raw positions since the
  ion arrived. A **hop** is registered when the smoothed position is farther than ``hop_distance_ang`` from the
  site and stays farther for ``persistence_ps`` (failed attempts that return are not hops); site centres are
  running means of the raw positions while the ion is there (so hop lengths are site-to-site distances). A hop whose new site lies within ``hop_distance_ang`` of the site before
  the current one is a **back-hop**. Residence times are the intervals between an ion's consecutive hops
  (complete intervals only); the censoring-free estimate of the mean residence time is total observed time ×
  ions / hops (exact for exponential waiting times). Defaults: 1.5 Å (half a Li–Li site separation), 0.2 ps
  (a few Li rattling periods of 0.1–0.2 ps). ``D_hop_cm2_s = <hop length²> × hops / (2 d N T)`` is the D of
  uncorrelated hops; ``D*/D_hop`` is then a tracer correlation factor (< 1 with back-hops).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AnalysisError
from .base import AnalysisResults, Progress
from .diffusion_base import MSDBase
from .diffusion_fit import ANG2_PS_TO_CM2_S
from .trajectory import Trajectory, TrajectoryLike

__all__ = ["non_gaussian_parameter", "self_van_hove", "detect_hops", "NonGaussian", "NonGaussianResults",
           "SelfVanHove", "VanHoveResults", "Hops", "HopResults", "default_lags"]

logger = logging.getLogger(__name__)


def default_lags(n_frames: int, n_lags: int = 40) -> np.ndarray:
    """Log-spaced lags (frames) from 1 to ``n_frames // 2``."""
    top = max(1, n_frames // 2)
    return np.unique(np.round(np.geomspace(1, top, min(n_lags, top))).astype(int))


def _origins(n_frames: int, lag: int, max_origins: int) -> np.ndarray:
    n = n_frames - lag
    return np.unique(np.round(np.linspace(0, n - 1, min(n, max_origins))).astype(int))


def non_gaussian_parameter(positions: np.ndarray, lag_frames: Sequence[int], *,
                           max_origins: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``(α2, <r²> in Å²)`` at ``lag_frames`` over atoms and up to ``max_origins`` time origins per lag."""
    x = np.asarray(positions, dtype=float)
    d = x.shape[2]
    alpha, msd = [], []
    for lag in lag_frames:
        o = _origins(len(x), int(lag), max_origins)
        r2 = np.sum((x[o + int(lag)] - x[o]) ** 2, axis=2)
        m2, m4 = float(r2.mean()), float((r2 * r2).mean())
        alpha.append(d * m4 / ((d + 2) * m2 * m2) - 1.0 if m2 > 0 else np.nan)
        msd.append(m2)
    return np.asarray(alpha), np.asarray(msd)


def self_van_hove(positions: np.ndarray, lag_frames: Sequence[int], *, r_max_ang: float = 10.0,
                  bin_ang: float = 0.1, max_origins: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(r_ang, p_r_per_ang, gs_per_ang3)``: per lag, the density of |Δr| (1/Å) and G_s(r, t) (1/Å³).

    Shapes: ``r_ang (B,)``, the others ``(len(lag_frames), B)``; displacements beyond ``r_max_ang`` are not
    binned (the density then integrates to less than 1).
    """
    x = np.asarray(positions, dtype=float)
    edges = np.arange(0.0, r_max_ang + 0.5 * bin_ang, bin_ang)
    r = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 * np.pi / 3.0 * (edges[1:] ** 3 - edges[:-1] ** 3)
    p_r, gs = [], []
    for lag in lag_frames:
        o = _origins(len(x), int(lag), max_origins)
        dist = np.linalg.norm(x[o + int(lag)] - x[o], axis=2).ravel()
        counts, _ = np.histogram(dist, bins=edges)
        p_r.append(counts / (dist.size * bin_ang))
        gs.append(counts / (dist.size * shell))
    return r, np.asarray(p_r), np.asarray(gs)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` frames along axis 0 (shorter windows at the ends)."""
    if width <= 1:
        return x.copy()
    c = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), x]), axis=0)
    n = len(x)
    lo = np.clip(np.arange(n) - width // 2, 0, n)
    hi = np.clip(np.arange(n) + (width - width // 2), 0, n)
    return (c[hi] - c[lo]) / (hi - lo).reshape((-1,) + (1,) * (x.ndim - 1))


def detect_hops(positions: np.ndarray, dt_ps: float, *, hop_distance_ang: float = 1.5, smooth_ps: float = 0.2,
                persistence_ps: float = 0.2) -> dict[str, Any]:
    """Site-to-site hops of each atom (algorithm in the module docstring).

    Parameters
    ----------
    positions
        Unwrapped positions ``(n_frames, n_atoms, d)`` (Å).
    dt_ps
        Time between frames (ps).

    Returns
    -------
    dict
        ``hops_per_atom`` (n_atoms,), ``hop_frames`` (list of arrays: frame of each hop per atom),
        ``hop_lengths_ang`` (all hops), ``back_hop`` (bool per hop, same order), ``residence_ps`` (complete
        intervals).
    """
    x = np.asarray(positions, dtype=float)
    n_frames, n_atoms, _ = x.shape
    width = max(1, int(round(smooth_ps / dt_ps)))
    persist = max(1, int(round(persistence_ps / dt_ps)))
    s = _smooth(x, width)
    r2 = hop_distance_ang**2
    hops_per_atom = np.zeros(n_atoms, dtype=int)
    hop_frames, lengths, back, residence = [], [], [], []
    for a in range(n_atoms):
        traj, raw = s[:, a], x[:, a]  # smoothed positions decide hops; raw ones make the site means
        total, count = raw[0].copy(), 1
        centre, previous = raw[0].copy(), None
        centres: list[np.ndarray] = []
        frames_a: list[int] = []
        k = 1
        while k < n_frames:
            if np.sum((traj[k] - centre) ** 2) > r2:
                stop = k + persist
                if stop > n_frames:
                    break  # cannot confirm before the end of the run
                if np.all(np.sum((traj[k:stop] - centre) ** 2, axis=1) > r2):
                    total, count = raw[k:stop].sum(axis=0), stop - k
                    new = total / count
                    back.append(previous is not None and float(np.sum((new - previous) ** 2)) <= r2)
                    frames_a.append(k)
                    centres.append(centre)
                    previous, centre = centre, new
                    k = stop
                    continue
                k += 1  # a failed attempt: not part of the site's mean
                continue
            total += raw[k]
            count += 1
            centre = total / count
            k += 1
        centres.append(centre)
        if len(centres) > 1:
            lengths.extend(np.linalg.norm(np.diff(np.asarray(centres), axis=0), axis=1).tolist())
        hops_per_atom[a] = len(frames_a)
        hop_frames.append(np.asarray(frames_a, dtype=int))
        residence.extend(np.diff(frames_a) * dt_ps)
    return {"hops_per_atom": hops_per_atom, "hop_frames": hop_frames, "hop_lengths_ang": np.asarray(lengths),
            "back_hop": np.asarray(back, dtype=bool), "residence_ps": np.asarray(residence, dtype=float)}


# ------------------------------------------------------------------------------------------------- classes
class _Mechanism(MSDBase):
    """Selection, unwrapping and drift removal of :class:`MSDBase`; no fit window needed."""

    def _positions_ang(self, frames: Trajectory, progress: Progress) -> tuple[np.ndarray, float]:
        window = self._window(frames)
        return self._load(frames, progress).positions, window.dt_ps


@dataclass(frozen=True)
class NonGaussianResults(AnalysisResults):
    """α2(t) of :class:`NonGaussian`: ``lag_ps``, ``alpha2``, ``msd_ang2``, peak ``alpha2_max`` at ``t_max_ps``."""

    species: str | None
    n_atoms: int
    lag_ps: np.ndarray
    alpha2: np.ndarray
    msd_ang2: np.ndarray

    @property
    def alpha2_max(self) -> float:
        return float(np.nanmax(self.alpha2)) if np.isfinite(self.alpha2).any() else float("nan")

    @property
    def t_max_ps(self) -> float:
        return float(self.lag_ps[int(np.nanargmax(self.alpha2))]) if np.isfinite(self.alpha2).any() else float("nan")

    def _record(self) -> dict[str, Any]:
        return {"species": self.species, "n_atoms": self.n_atoms, "lag_ps": self.lag_ps, "alpha2": self.alpha2,
                "msd_ang2": self.msd_ang2, "alpha2_max": self.alpha2_max, "alpha2_t_max_ps": self.t_max_ps}


class NonGaussian(_Mechanism):
    """Non-Gaussian parameter α2(t) of a species (``n_lags`` log-spaced lags up to half the run).

    Other parameters: the selection/unwrapping/drift settings of
    :class:`~tfbsim.analysis.diffusion.DiffusionAnalysis`.
    """

    name = "non-Gaussian parameter"

    def __init__(self, trajectory: TrajectoryLike, *, n_lags: int = 40, max_origins: int = 200,
                 **settings: Any) -> None:
        super().__init__(trajectory, **settings)
        if n_lags < 1 or max_origins < 1:
            raise AnalysisError("n_lags and max_origins must be positive")
        self.n_lags, self.max_origins = int(n_lags), int(max_origins)

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> NonGaussianResults:
        x, dt = self._positions_ang(frames, progress)
        lags = default_lags(len(x), self.n_lags)
        alpha, msd = non_gaussian_parameter(x, lags, max_origins=self.max_origins)
        return NonGaussianResults(species=self.species, n_atoms=x.shape[1], lag_ps=lags * dt, alpha2=alpha,
                                  msd_ang2=msd)


@dataclass(frozen=True)
class VanHoveResults(AnalysisResults):
    """G_s(r, t) of :class:`SelfVanHove` at ``lag_ps``: ``p_r_per_ang`` and ``gs_per_ang3``, rows per lag."""

    species: str | None
    r_ang: np.ndarray
    lag_ps: np.ndarray
    p_r_per_ang: np.ndarray
    gs_per_ang3: np.ndarray

    def _record(self) -> dict[str, Any]:
        return {"species": self.species, "r_ang": self.r_ang, "lag_ps": self.lag_ps, "p_r_per_ang": self.p_r_per_ang,
                "gs_per_ang3": self.gs_per_ang3}


class SelfVanHove(_Mechanism):
    """Self part of the van Hove function at a few lags (default 1 %, 5 %, 20 % and 50 % of the run).

    Parameters
    ----------
    lag_ps
        Lags (ps); rounded to whole frames, at least one frame.
    r_max_ang, bin_ang
        Histogram range and bin width (Å).
    """

    name = "self van Hove"

    def __init__(self, trajectory: TrajectoryLike, *, lag_ps: Sequence[float] | None = None, r_max_ang: float = 10.0,
                 bin_ang: float = 0.1, **settings: Any) -> None:
        super().__init__(trajectory, **settings)
        if r_max_ang <= 0 or not 0 < bin_ang < r_max_ang:
            raise AnalysisError("need 0 < bin_ang < r_max_ang (Å)")
        self.lag_ps_setting = None if lag_ps is None else [float(v) for v in lag_ps]
        self.r_max_ang, self.bin_ang = float(r_max_ang), float(bin_ang)

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> VanHoveResults:
        x, dt = self._positions_ang(frames, progress)
        span = (len(x) - 1) * dt
        lag_ps = self.lag_ps_setting or [f * span for f in (0.01, 0.05, 0.2, 0.5)]
        lags = np.unique(np.clip(np.round(np.asarray(lag_ps) / dt).astype(int), 1, len(x) - 1))
        r, p_r, gs = self_van_hove(x, lags, r_max_ang=self.r_max_ang, bin_ang=self.bin_ang)
        return VanHoveResults(species=self.species, r_ang=r, lag_ps=lags * dt, p_r_per_ang=p_r, gs_per_ang3=gs)


@dataclass(frozen=True)
class HopResults(AnalysisResults):
    """Hops of :class:`Hops` (every name carries its unit).

    Attributes
    ----------
    n_hops, n_atoms : int
    duration_ps : float
        Observed time per atom.
    hops_per_atom : numpy.ndarray of int
    hop_rate_per_ps : float
        Hops per atom per ps.
    mean_residence_ps : float
        Total observed time × atoms / hops (censoring-free; inf without hops).
    mean_complete_residence_ps : float
        Mean of complete intervals between consecutive hops (NaN without any).
    back_hop_fraction : float
    mean_hop_length_ang : float
    D_hop_cm2_s : float
        D of uncorrelated hops (cm² s⁻¹).
    """

    species: str | None
    n_atoms: int
    n_hops: int
    duration_ps: float
    n_dimensions: int
    hops_per_atom: np.ndarray = field(repr=False)
    residence_ps: np.ndarray = field(repr=False)
    hop_lengths_ang: np.ndarray = field(repr=False)
    back_hop: np.ndarray = field(repr=False)
    settings: dict = field(default_factory=dict)

    @property
    def hop_rate_per_ps(self) -> float:
        return self.n_hops / (self.n_atoms * self.duration_ps)

    @property
    def mean_residence_ps(self) -> float:
        return self.n_atoms * self.duration_ps / self.n_hops if self.n_hops else float("inf")

    @property
    def mean_complete_residence_ps(self) -> float:
        return float(self.residence_ps.mean()) if self.residence_ps.size else float("nan")

    @property
    def back_hop_fraction(self) -> float:
        return float(self.back_hop.mean()) if self.back_hop.size else float("nan")

    @property
    def mean_hop_length_ang(self) -> float:
        return float(self.hop_lengths_ang.mean()) if self.hop_lengths_ang.size else float("nan")

    @property
    def D_hop_cm2_s(self) -> float:
        if not self.n_hops:
            return 0.0
        msd_rate = float(np.sum(self.hop_lengths_ang**2)) / (self.n_atoms * self.duration_ps)
        return msd_rate / (2 * self.n_dimensions) * ANG2_PS_TO_CM2_S

    def _record(self) -> dict[str, Any]:
        hist, edges = np.histogram(self.residence_ps, bins=20) if self.residence_ps.size else ([], [])
        return {"species": self.species, "n_atoms": self.n_atoms, "n_hops": self.n_hops,
                "duration_ps": self.duration_ps, "hop_rate_per_ps": self.hop_rate_per_ps,
                "mean_residence_ps": self.mean_residence_ps,
                "mean_complete_residence_ps": self.mean_complete_residence_ps,
                "back_hop_fraction": self.back_hop_fraction, "mean_hop_length_ang": self.mean_hop_length_ang,
                "D_hop_cm2_s": self.D_hop_cm2_s, "hops_per_atom": self.hops_per_atom,
                "residence_histogram": {"edges_ps": edges, "counts": hist}, **self.settings}


class Hops(_Mechanism):
    """Site-to-site hops, residence times and back-hops of a species (see the module docstring).

    Parameters
    ----------
    hop_distance_ang
        Distance from the current site that makes a hop (Å; default 1.5, half a Li–Li site separation).
    smooth_ps
        Moving-average window that removes vibrations (ps).
    persistence_ps
        Time the ion must stay away from its site for the hop to count (ps).
    """

    name = "hops"

    def __init__(self, trajectory: TrajectoryLike, *, hop_distance_ang: float = 1.5, smooth_ps: float = 0.2,
                 persistence_ps: float = 0.2, **settings: Any) -> None:
        super().__init__(trajectory, **settings)
        if hop_distance_ang <= 0 or smooth_ps < 0 or persistence_ps < 0:
            raise AnalysisError("hop_distance_ang must be > 0 and smooth_ps, persistence_ps >= 0")
        self.hop_settings = {"hop_distance_ang": float(hop_distance_ang), "smooth_ps": float(smooth_ps),
                             "persistence_ps": float(persistence_ps)}

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> HopResults:
        x, dt = self._positions_ang(frames, progress)
        if self.hop_settings["persistence_ps"] > 0.25 * (len(x) - 1) * dt:
            logger.warning("persistence_ps is more than a quarter of the run: few hops can be confirmed")
        found = detect_hops(x, dt, **self.hop_settings)
        return HopResults(species=self.species, n_atoms=x.shape[1], n_hops=int(found["hops_per_atom"].sum()),
                          duration_ps=(len(x) - 1) * dt, n_dimensions=x.shape[2],
                          hops_per_atom=found["hops_per_atom"], residence_ps=found["residence_ps"],
                          hop_lengths_ang=found["hop_lengths_ang"], back_hop=found["back_hop"],
                          settings=self.hop_settings)
