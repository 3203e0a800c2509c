"""Partial radial distribution functions g_AB(r) and running coordination numbers.

For a pair A-B in a periodic cell of volume V with N_A and N_B atoms,

    g_AB(r) = V / (N_A * N_B') * h_AB(r) / (4 pi r^2 dr)

where h_AB(r) counts directed A -> B neighbours in the shell [r, r + dr) (each A-B bond once when A != B, twice
when A == B) and N_B' = N_B (A != B) or N_A - 1 (A == B). The running coordination number of B around A is

    n_AB(r) = (1 / N_A) * sum_{r' < r} h_AB(r')  ( = 4 pi rho_B * integral_0^r g_AB(r') r'^2 dr' ),

evaluated at the upper edge of each bin. Both are normalised frame by frame (the volume may change in NPT) and
averaged over frames. Distances come from :func:`tfbsim.analysis.neighbours.bonds`, so every periodic image is
counted, also when ``r_max_ang`` exceeds half the cell.

:func:`first_minimum` locates the first minimum after the first peak, the usual choice of a bond cutoff
(``Coordination(cutoffs="rdf")``).

:class:`RDF` is the analysis class (the contract of :mod:`tfbsim.analysis.base`: settings in ``__init__``,
``run(start, stop, step)`` returns ``self``, typed :class:`RDFResult` in ``results``); :func:`partial_rdf` is
the one-call function and :class:`RDFAccumulator` the frame-by-frame accumulator both use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError, ConfigError, TrajectoryError
from .base import AnalysisResults, Progress, TrajectoryAnalysis
from .neighbours import _as_pbc, _check_cell, _split_pair, bonds, parse_cutoffs
from .trajectory import Trajectory, TrajectoryLike

__all__ = ["RDF", "RDFResult", "RDFAccumulator", "partial_rdf", "first_minimum", "parse_pairs"]

logger = logging.getLogger(__name__)


def parse_pairs(pairs: Iterable[str | tuple[str, str]]) -> list[tuple[str, str]]:
    """``["P-O", ("Li", "N")]`` -> ``[("P", "O"), ("Li", "N")]`` (validated, duplicates dropped).

    Order matters for the coordination number: ``"P-O"`` counts O around P, ``"O-P"`` P around O.
    """
    out: list[tuple[str, str]] = []
    for p in pairs:
        a, b = _split_pair(p) if isinstance(p, str) else (str(p[0]), str(p[1]))
        parse_cutoffs({(a, b): 1.0})  # validates the element symbols
        if (a, b) not in out:
            out.append((a, b))
    if not out:
        raise ConfigError("no RDF pairs given; pass e.g. ['P-O', 'Li-N']")
    return out


@dataclass(frozen=True)
class RDFResult(AnalysisResults):
    """Partial RDFs averaged over frames.

    Attributes
    ----------
    r_ang : numpy.ndarray, shape (n_bins,)
        Bin centres (Å).
    edges_ang : numpy.ndarray, shape (n_bins + 1,)
        Bin edges (Å).
    g : dict[str, numpy.ndarray]
        ``{"P-O": g(r)}`` (dimensionless), one array of shape (n_bins,) per pair.
    cn : dict[str, numpy.ndarray]
        Running coordination number of B around A at the upper bin edges, shape (n_bins,).
    n_frames : int
    pairs : tuple of (str, str)
    """

    r_ang: np.ndarray
    edges_ang: np.ndarray
    g: dict[str, np.ndarray]
    cn: dict[str, np.ndarray]
    n_frames: int
    pairs: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def first_minimum(self, pair: str) -> float | None:
        """First minimum of ``g[pair]`` after its first peak (Å), or None when there is none."""
        return first_minimum(self.r_ang, self.g[pair])

    def cn_at(self, pair: str, r_ang: float) -> float:
        """Running coordination number of ``pair`` at distance ``r_ang`` (Å), linearly interpolated."""
        return float(np.interp(r_ang, self.edges_ang[1:], self.cn[pair]))

    def _record(self) -> dict:
        """``r_ang``, ``g``, ``cn``, ``first_minimum_ang`` (Å or None per pair), ``n_frames``."""
        return {
            "n_frames": self.n_frames,
            "r_ang": self.r_ang,
            "g": dict(self.g),
            "cn": dict(self.cn),
            "first_minimum_ang": {name: self.first_minimum(name) for name in self.g},
        }


class RDFAccumulator:
    """Accumulate partial RDFs frame by frame (memory independent of the number of frames).

    Parameters
    ----------
    symbols
        Chemical symbol of every atom.
    pairs
        Element pairs, e.g. ``["P-O", "Li-N"]``.
    r_max_ang
        Largest distance (Å).
    bin_width_ang
        Histogram bin width (Å).
    """

    def __init__(
        self,
        symbols: Sequence[str],
        pairs: Iterable[str | tuple[str, str]],
        *,
        r_max_ang: float = 5.0,
        bin_width_ang: float = 0.02,
    ) -> None:
        if not (math.isfinite(r_max_ang) and r_max_ang > 0):
            raise ConfigError(f"r_max_ang must be a positive distance in Å, got {r_max_ang!r}")
        if not (math.isfinite(bin_width_ang) and 0 < bin_width_ang < r_max_ang):
            raise ConfigError(f"bin_width_ang must be positive and below r_max_ang, got {bin_width_ang!r}")
        self.symbols = np.asarray(symbols).astype(str)
        self.pairs = parse_pairs(pairs)
        self.names = [f"{a}-{b}" for a, b in self.pairs]
        self.n_bins = int(math.ceil(r_max_ang / bin_width_ang))
        self.edges = np.linspace(0.0, self.n_bins * bin_width_ang, self.n_bins + 1)
        self.r_max = float(self.edges[-1])
        self._shell = 4.0 / 3.0 * np.pi * (self.edges[1:] ** 3 - self.edges[:-1] ** 3)
        self._g = np.zeros((len(self.pairs), self.n_bins))
        self._cn = np.zeros((len(self.pairs), self.n_bins))
        self._n_frames = 0
        self._counts = {el: int((self.symbols == el).sum()) for pair in self.pairs for el in pair}

    def add(self, positions: np.ndarray, cell: np.ndarray | None, pbc: bool | Sequence[bool] = True) -> None:
        """Add one frame (positions and cell in Å); needs a fully periodic cell (the density needs a volume)."""
        pbc_arr = _as_pbc(pbc)
        if not pbc_arr.all():
            raise TrajectoryError(
                "g(r) needs a fully periodic cell to define the density; this frame is not periodic along "
                f"{['x', 'y', 'z'][int(np.argmin(pbc_arr))]}. Give bond cutoffs explicitly instead of 'rdf'"
            )
        cell_arr = _check_cell(cell, pbc_arr)
        volume = abs(float(np.linalg.det(cell_arr)))
        table = {f"{a}-{b}": self.r_max for a, b in self.pairs}
        bl = bonds(positions, table, symbols=self.symbols, cell=cell_arr, pbc=True)
        sa, sb = self.symbols[bl.i], self.symbols[bl.j]
        bins = np.minimum((bl.distances_ang / (self.r_max / self.n_bins)).astype(np.int64), self.n_bins - 1)
        for p, (a, b) in enumerate(self.pairs):
            mask = ((sa == a) & (sb == b)) | ((sa == b) & (sb == a))
            hist = np.bincount(bins[mask], minlength=self.n_bins).astype(float)
            n_a, n_b = self._counts[a], self._counts[b]
            if a == b:
                hist *= 2.0
                n_b = max(n_a - 1, 1)  # one atom per cell: its own images are the only A-A neighbours
            if n_a == 0 or n_b <= 0:
                continue
            self._g[p] += hist * volume / (n_a * n_b * self._shell)
            self._cn[p] += np.cumsum(hist) / n_a
        self._n_frames += 1

    def result(self) -> RDFResult:
        """The frame-averaged :class:`RDFResult`."""
        if self._n_frames == 0:
            raise AnalysisError("no frames were added to the RDF; select at least one frame")
        n = self._n_frames
        centres = 0.5 * (self.edges[1:] + self.edges[:-1])
        return RDFResult(
            r_ang=centres,
            edges_ang=self.edges.copy(),
            g={name: self._g[p] / n for p, name in enumerate(self.names)},
            cn={name: self._cn[p] / n for p, name in enumerate(self.names)},
            n_frames=n,
            pairs=tuple(self.pairs),
        )


class RDF(TrajectoryAnalysis):
    """Partial g(r) and running coordination numbers of element pairs over a trajectory.

    Parameters
    ----------
    trajectory
        Anything :class:`tfbsim.analysis.trajectory.Trajectory` accepts, or a Trajectory.
    pairs
        Element pairs, e.g. ``["P-O", "Li-N"]``; for ``A-B`` the coordination number counts B around A.
    r_max_ang, bin_width_ang
        Range and bin width (Å).
    frames
        Frame selection read from the source (``"START:STOP:STEP"``); ``run()`` selects within it.
    dt_fs
        Time between stored frames (fs) when the source has no times (not needed for g(r)).

    Attributes
    ----------
    results : RDFResult
        After :meth:`run`.

    Raises
    ------
    ConfigError
        No or unknown pairs, a non-positive range or bin width.
    TrajectoryError
        The cell is not periodic along all three axes (the density needs a volume).

    Examples
    --------
    >>> from ase.build import bulk
    >>> rdf = RDF(bulk("Cu", "fcc", a=3.61), ["Cu-Cu"], r_max_ang=3.0).run().results
    >>> round(rdf.cn_at("Cu-Cu", 2.9), 1)
    12.0
    """

    name = "g(r)"

    def __init__(
        self,
        trajectory: TrajectoryLike,
        pairs: Iterable[str | tuple[str, str]],
        *,
        r_max_ang: float = 5.0,
        bin_width_ang: float = 0.02,
        frames: str | slice | None = None,
        dt_fs: float | None = None,
    ) -> None:
        super().__init__(trajectory, frames=frames, dt_fs=dt_fs)
        self.pairs = parse_pairs(pairs)
        self.r_max_ang = float(r_max_ang)
        self.bin_width_ang = float(bin_width_ang)
        # validates the range and bin width
        RDFAccumulator(self._traj.symbols, self.pairs, r_max_ang=self.r_max_ang, bin_width_ang=self.bin_width_ang)
        pbc = _as_pbc(self._traj.pbc)
        if not pbc.all():
            raise TrajectoryError(
                "g(r) needs a fully periodic cell to define the density; this trajectory is not periodic along "
                f"{['x', 'y', 'z'][int(np.argmin(pbc))]}. Give bond cutoffs explicitly instead of 'rdf'"
            )

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> RDFResult:
        acc = RDFAccumulator(frames.symbols, self.pairs, r_max_ang=self.r_max_ang,
                             bin_width_ang=self.bin_width_ang)
        for positions, cell in self._positions(frames, progress):
            acc.add(positions, cell, frames.pbc)
        return acc.result()


def partial_rdf(
    trajectory: TrajectoryLike,
    pairs: Iterable[str | tuple[str, str]],
    *,
    r_max_ang: float = 5.0,
    bin_width_ang: float = 0.02,
    frames: str | slice | None = None,
    progress: Progress = False,
) -> RDFResult:
    """Partial g(r) and running coordination numbers of ``pairs`` over the frames of ``trajectory``.

    ``RDF(trajectory, pairs, ...).run(progress=progress).results`` in one call (see :class:`RDF`).

    Parameters
    ----------
    trajectory
        Anything :class:`tfbsim.analysis.trajectory.Trajectory` accepts.
    pairs
        Element pairs, e.g. ``["P-O", "Li-N"]``; for ``A-B`` the coordination number counts B around A.
    r_max_ang, bin_width_ang
        Range and bin width (Å).
    frames
        Frame selection (``"START:STOP:STEP"``); with a :class:`Trajectory`, applied within its selection.
    progress
        ``True`` for a progress bar, ``"log"`` for lines on the ``tfbsim.progress`` logger.

    Examples
    --------
    >>> from ase.build import bulk
    >>> rdf = partial_rdf(bulk("Cu", "fcc", a=3.61), ["Cu-Cu"], r_max_ang=3.0)
    >>> round(rdf.cn_at("Cu-Cu", 2.9), 1)  # twelve nearest neighbours at 2.55 Å
    12.0
    """
    from .trajectory import parse_frames

    if isinstance(trajectory, Trajectory):
        window = parse_frames(frames)
        analysis = RDF(trajectory, pairs, r_max_ang=r_max_ang, bin_width_ang=bin_width_ang)
        return analysis.run(window.start, window.stop, window.step, progress=progress).results
    analysis = RDF(trajectory, pairs, r_max_ang=r_max_ang, bin_width_ang=bin_width_ang, frames=frames)
    return analysis.run(progress=progress).results


def first_minimum(r_ang: np.ndarray, g: np.ndarray, *, smooth_bins: int = 5,
                  depth: float | None = None) -> float | None:
    """Position (Å) of the first minimum of ``g`` after its first peak.

    ``g`` is smoothed with a ``smooth_bins`` running mean. The first peak is the first local maximum that
    reaches half the global maximum; the minimum is where the curve first rises again after it. When the
    minimum is a flat stretch (g = 0 between crystal shells) its centre is returned. None when ``g`` has no
    peak or never rises again within the range. With ``depth`` (a fraction, e.g. 0.5), a minimum counts only
    once the smoothed curve has fallen to ``depth`` × the peak height: noise on the flank of a sparse partial
    (few pairs, short runs) is then not taken for the end of the first shell.
    """
    g = np.asarray(g, dtype=float)
    r = np.asarray(r_ang, dtype=float)
    if len(g) < 3 or not np.isfinite(g).all() or g.max() <= 0:
        return None
    k = max(1, int(smooth_bins))
    gs = np.convolve(g, np.ones(k) / k, mode="same")
    top = gs.max()
    tol = 1e-9 + 1e-3 * top
    above = np.flatnonzero(gs >= 0.5 * top)
    # first peak: walk uphill from the first bin above half maximum
    p = int(above[0])
    while p + 1 < len(gs) and gs[p + 1] >= gs[p]:
        p += 1
    if depth is not None:
        low = np.flatnonzero(gs[p:] <= depth * gs[p])
        if len(low) == 0:
            return None
        q = p + int(low[0])
        rises = np.flatnonzero(np.diff(gs[q:]) > tol)
        if len(rises) == 0:
            return None
        m = q + int(rises[0])
        flat = np.flatnonzero(gs[q : m + 1] <= gs[m] + tol)
        return float(0.5 * (r[q + int(flat[0])] + r[m]))
    rising = np.flatnonzero(np.diff(gs[p:]) > tol)
    falling_done = np.flatnonzero(np.diff(gs[p:]) < -tol)
    if len(falling_done) == 0:
        return None
    start = p + int(falling_done[0])
    later = rising[rising + p > start]
    if len(later) == 0:
        return None
    m = p + int(later[0])  # last bin before the curve rises again
    floor = gs[m]
    flat = np.flatnonzero(gs[start : m + 1] <= floor + tol)
    lo = start + int(flat[0])
    return float(0.5 * (r[lo] + r[m]))
