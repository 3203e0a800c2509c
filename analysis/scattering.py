r"""Diffraction-level structure: partial g_ab(r), neutron/X-ray total G(r), S(Q), coordination numbers, peaks.

Definitions (Faber–Ziman formalism; lengths in Å, Q in Å^-1)
------------------------------------------------------------
For elements a, b with concentrations c_a = N_a/N, total number density rho_0 = N/V and partial densities
rho_b = N_b/V, the partial pair distribution functions are

    g_ab(r) = V / (N_a N_b') * h_ab(r) / (4 pi r^2 dr),      N_b' = N_b (a != b), N_a - 1 (a == b),

with h_ab(r) the number of directed a -> b neighbours in [r, r + dr) of one frame (every periodic image
counts), normalised frame by frame and averaged over frames. The Faber–Ziman partial structure factors are

    S_ab(Q) = 1 + rho_0 \int_0^{r_max} 4 pi r^2 [g_ab(r) - 1] sin(Qr)/(Qr) M(r) dr,

with the **Lorch modification function** M(r) = sin(pi r / r_max) / (pi r / r_max), a window that damps the
truncation ripples of the finite r range (at the cost of broadening peaks by ~ 2 pi / r_max). The totals are
weighted sums

    g_tot(r) = sum_ab w_ab g_ab(r),   S_tot(Q) = sum_ab w_ab(Q) S_ab(Q),   G(r) = 4 pi rho_0 r [g_tot(r) - 1],

over *ordered* pairs (a, b), with weights that sum to 1 (the sum rule the tests check):

- **neutron**: w_ab = c_a c_b b_a b_b / (sum_a c_a b_a)^2 with the coherent lengths b of
  :data:`~tfbsim.analysis.scattering_tables.NEUTRON_B_FM` (Sears 1992); Q-independent, so G_N(r) is exact;
- **X-ray**: w_ab(Q) = c_a c_b f_a(Q) f_b(Q) / (sum_a c_a f_a(Q))^2 with Cromer–Mann form factors
  (:func:`~tfbsim.analysis.scattering_tables.xray_form_factor`). S_X(Q) uses the Q-dependent weights; the
  X-ray G_X(r) uses the weights at Q = 0 (f_a(0) ~ Z_a), the usual approximation for r-space comparisons.

Limits
------
``r_max`` may not exceed half the shortest perpendicular width of the box (beyond it g(r) counts the same
pair through two images unevenly and the density normalisation breaks), checked for every frame;
``Q_min = 2 pi / r_max`` (lower Q is not resolved by a box of that size) and ``Q_max <= pi / dr`` (the Nyquist
limit of the r grid). Coordination numbers integrate g_ab up to a cut-off (default: the first minimum of
g_ab after its first peak, :func:`tfbsim.analysis.rdf.first_minimum`): n_ab(r_c) = 4 pi rho_b
\int_0^{r_c} g_ab r^2 dr counts b around a.

Pairs come from :func:`tfbsim.analysis.neighbours.find_pairs` (MDAnalysis' C grid search, any cell shape),
histogrammed for all element pairs at once with one ``numpy.bincount``: no Python loop over atoms or pairs.
Memory does not grow with the number of frames (one histogram per element pair).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AnalysisError, ConfigError, TrajectoryError
from .base import AnalysisResults, Progress, TrajectoryAnalysis
from .neighbours import _as_pbc, _check_cell, _split_pair, find_pairs, pair_label
from .rdf import first_minimum
from .scattering_tables import NEUTRON_B_FM, NEUTRON_SOURCE, XRAY_SOURCE, check_elements, xray_form_factor
from .trajectory import Trajectory, TrajectoryLike

__all__ = [
    "Scattering",
    "ScatteringResults",
    "PairHistogram",
    "max_r_ang",
    "pair_distances",
    "faber_ziman_weights",
    "structure_factor",
    "first_peak",
]

logger = logging.getLogger(__name__)

DEFAULT_R_MAX_CAP_ANG = 20.0


def max_r_ang(cell: np.ndarray) -> float:
    """Half the shortest perpendicular width of the cell (Å): the largest r_max a g(r) may use."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(float(np.linalg.det(cell)))
    widths = [volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    return 0.5 * min(widths)


def _box_of(cell: Any, pbc: Any) -> np.ndarray:
    """The (3, 3) periodic box of a frame; raises TrajectoryError without one."""
    pbc_arr = _as_pbc(pbc)
    cell_arr = None if cell is None else np.asarray(cell, dtype=float)
    if not pbc_arr.all() or cell_arr is None or abs(np.linalg.det(_check_cell(cell_arr, pbc_arr))) < 1e-9:
        raise TrajectoryError(
            "diffraction analysis needs a periodic box (pbc along x, y and z and a 3x3 cell) to define the "
            "density; this trajectory has none: add the cell (extxyz Lattice=..., pbc=\"T T T\") or analyse a "
            "periodic MD trajectory"
        )
    return _check_cell(cell_arr, pbc_arr)


def pair_distances(positions: np.ndarray, box: np.ndarray,
                   r_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair ``i < j`` closer than ``r_max`` (minimum image; ``r_max`` <= half the box width): (i, j, d).

    Orthorhombic boxes use :class:`scipy.spatial.cKDTree` with ``boxsize`` (periodic k-d tree); other boxes
    use :func:`tfbsim.analysis.neighbours.find_pairs` (MDAnalysis' grid search, any cell shape).
    """
    pos = np.asarray(positions, dtype=float)
    if not np.isfinite(pos).all():
        raise TrajectoryError("positions contain NaN or inf; the frame is corrupt (check the MD run)")
    lengths = np.diag(box)
    if np.abs(box - np.diag(lengths)).max() <= 1e-9 * lengths.max() and (lengths > 0).all():
        from scipy.spatial import cKDTree

        wrapped = pos - np.floor(pos / lengths) * lengths
        wrapped[wrapped >= lengths] = 0.0  # rounding of tiny negatives
        tree = cKDTree(wrapped, boxsize=lengths)
        sdm = tree.sparse_distance_matrix(tree, r_max, output_type="ndarray")
        keep = (sdm["i"] < sdm["j"]) & (sdm["v"] < r_max)
        return sdm["i"][keep].astype(np.int64), sdm["j"][keep].astype(np.int64), sdm["v"][keep]
    found = find_pairs(pos, box, True, r_max)
    keep = found.distances_ang < r_max
    return found.i[keep], found.j[keep], found.distances_ang[keep]


class PairHistogram:
    """Accumulate every partial g_ab(r) frame by frame (memory independent of the number of frames).

    Parameters
    ----------
    symbols
        Chemical symbol of every atom (elements must be in the scattering tables).
    r_max_ang, dr_ang
        Range and bin width (Å); ``r_max_ang`` is checked against each frame's box (:func:`max_r_ang`).
    """

    def __init__(self, symbols, *, r_max_ang: float, dr_ang: float = 0.02) -> None:
        if not (math.isfinite(dr_ang) and dr_ang > 0):
            raise ConfigError(f"dr_ang must be a positive bin width in Å, got {dr_ang!r}")
        if not (math.isfinite(r_max_ang) and r_max_ang > 2 * dr_ang):
            raise ConfigError(
                f"r_max_ang must be a distance in Å above two bins ({2 * dr_ang:g}), got {r_max_ang!r}"
            )
        self.symbols = np.asarray(symbols).astype(str)
        self.elements = check_elements(self.symbols)
        self.codes = np.searchsorted(self.elements, self.symbols)
        self.counts = np.bincount(self.codes, minlength=len(self.elements))
        self.n_bins = int(math.floor(r_max_ang / dr_ang + 1e-9))
        self.dr = float(dr_ang)
        self.edges = np.arange(self.n_bins + 1) * self.dr
        self.r_max = float(self.edges[-1])
        self._shell = 4.0 / 3.0 * np.pi * (self.edges[1:] ** 3 - self.edges[:-1] ** 3)
        ne = len(self.elements)
        self.pairs = [(a, b) for a in range(ne) for b in range(a, ne)]
        self._tri = np.full((ne, ne), -1, dtype=np.int64)
        for k, (a, b) in enumerate(self.pairs):
            self._tri[a, b] = self._tri[b, a] = k
        self._g = np.zeros((len(self.pairs), self.n_bins))
        self._inv_volume = 0.0
        self.n_frames = 0

    def add(self, positions: np.ndarray, cell: np.ndarray, pbc: Any = True, *, frame: int | None = None) -> None:
        """Add one frame (Å); raises AnalysisError when ``r_max`` exceeds half the frame's box width."""
        box = _box_of(cell, pbc)
        limit = max_r_ang(box)
        if self.r_max > limit + 1e-9:
            where = "" if frame is None else f" (frame {frame})"
            raise AnalysisError(
                f"r_max {self.r_max:.3f} Å exceeds half the shortest perpendicular box width{where}, "
                f"{limit:.3f} Å: use r_max <= {limit:.3f} Å (and Q_min >= 2 pi / r_max) or a bigger box"
            )
        volume = abs(float(np.linalg.det(box)))
        i, j, d = pair_distances(positions, box, self.r_max)
        k = self._tri[self.codes[i], self.codes[j]]
        bins = np.minimum((d / self.dr).astype(np.int64), self.n_bins - 1)
        hist = np.bincount(k * self.n_bins + bins, minlength=len(self.pairs) * self.n_bins).astype(float)
        hist = hist.reshape(len(self.pairs), self.n_bins)
        for p, (a, b) in enumerate(self.pairs):  # one vector operation per element pair
            n_a, n_b = self.counts[a], self.counts[b]
            if a == b:
                hist[p] *= 2.0
                n_b = n_a - 1
            if n_a > 0 and n_b > 0:
                self._g[p] += hist[p] * volume / (n_a * n_b * self._shell)
        self._inv_volume += 1.0 / volume
        self.n_frames += 1

    def partials(self) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray], float]:
        """``(r centres, {(a, b): g_ab}, mean number density rho_0 (Å^-3))`` over the frames added."""
        if self.n_frames == 0:
            raise AnalysisError("no frames were added to the pair histogram; select at least one frame")
        centres = 0.5 * (self.edges[1:] + self.edges[:-1])
        g = {(self.elements[a], self.elements[b]): self._g[p] / self.n_frames
             for p, (a, b) in enumerate(self.pairs)}
        rho = len(self.symbols) * self._inv_volume / self.n_frames
        return centres, g, rho


def faber_ziman_weights(elements, concentrations, kind: str = "neutron", q_inv_ang=None) -> dict:
    """Faber–Ziman weights of every *ordered* element pair; they sum to 1 (at every Q for X-rays).

    Parameters
    ----------
    elements
        Element symbols.
    concentrations
        Atomic fractions c_a (same order), summing to 1.
    kind
        ``"neutron"`` (Sears lengths; scalars) or ``"xray"`` (Cromer–Mann f(Q); arrays over ``q_inv_ang``).
    q_inv_ang
        Q values (Å^-1) for X-ray weights; ``None`` means Q = 0.

    Returns
    -------
    dict
        ``{(a, b): w_ab}``, floats (neutron) or arrays shaped like ``q_inv_ang`` (X-ray).
    """
    elements = list(elements)
    check_elements(elements)
    c = np.asarray(concentrations, dtype=float)
    if kind == "neutron":
        amp = [np.asarray(NEUTRON_B_FM[el]) for el in elements]
    elif kind == "xray":
        q = np.asarray(0.0 if q_inv_ang is None else q_inv_ang, dtype=float)
        amp = [xray_form_factor(el, q) for el in elements]
    else:
        raise ConfigError(f"kind must be 'neutron' or 'xray', got {kind!r}")
    mean = sum(ci * fi for ci, fi in zip(c, amp))
    if np.any(np.abs(mean) < 1e-12):
        raise AnalysisError("the mean scattering amplitude is zero for this composition; no total can be formed")
    return {(a, b): c[i] * c[j] * amp[i] * amp[j] / mean**2
            for i, a in enumerate(elements) for j, b in enumerate(elements)}


def structure_factor(r_ang: np.ndarray, g: np.ndarray, rho0: float, q_inv_ang: np.ndarray, *,
                     r_max_ang: float | None = None, window: str = "lorch") -> np.ndarray:
    """S(Q) = 1 + rho_0 * int 4 pi r^2 [g(r) - 1] sin(Qr)/(Qr) M(r) dr over bin centres ``r_ang``.

    Parameters
    ----------
    r_ang, g
        Bin centres (Å, uniform spacing) and a (partial or total) g(r); ``g`` may be shaped (..., n_r).
    rho0
        Total number density (Å^-3) (Faber–Ziman partials use the total density).
    q_inv_ang
        Q values (Å^-1).
    r_max_ang
        Upper integration limit of the window (default: the last bin's upper edge).
    window
        ``"lorch"`` (M(r) = sin(pi r/r_max)/(pi r/r_max)) or ``"none"``.
    """
    r = np.asarray(r_ang, dtype=float)
    dr = float(r[1] - r[0])
    r_top = float(r[-1] + 0.5 * dr) if r_max_ang is None else float(r_max_ang)
    if window == "lorch":
        m = np.sinc(r / r_top)
    elif window == "none":
        m = np.ones_like(r)
    else:
        raise ConfigError(f"window must be 'lorch' or 'none', got {window!r}")
    q = np.asarray(q_inv_ang, dtype=float)
    kernel = 4.0 * np.pi * rho0 * dr * (r**2 * m)[None, :] * np.sinc(np.outer(q, r) / np.pi)
    return 1.0 + (np.asarray(g, dtype=float) - 1.0) @ kernel.T


def first_peak(x: np.ndarray, y: np.ndarray, *, baseline: float = 0.0, fraction: float = 0.5,
               smooth_bins: int = 3) -> float | None:
    """Position of the first local maximum of ``y - baseline`` that reaches ``fraction`` of its maximum.

    ``y`` is smoothed with a ``smooth_bins`` running mean first; None when ``y`` never exceeds the baseline.
    """
    y = np.asarray(y, dtype=float) - baseline
    if len(y) < 3 or not np.isfinite(y).all() or y.max() <= 0:
        return None
    k = max(1, int(smooth_bins))
    ys = np.convolve(y, np.ones(k) / k, mode="same")
    above = np.flatnonzero(ys >= fraction * ys.max())
    p = int(above[0])
    while p + 1 < len(ys) and ys[p + 1] >= ys[p]:
        p += 1
    return float(np.asarray(x, dtype=float)[p])


@dataclass(frozen=True)
class ScatteringResults(AnalysisResults):
    """Partial and total pair distribution functions, structure factors, coordination numbers and peaks.

    Attributes
    ----------
    n_frames : int
    elements : tuple of str
    concentrations : dict[str, float]
        Atomic fractions c_a.
    density_atoms_ang3 : float
        Mean total number density rho_0 (Å^-3).
    r_ang : numpy.ndarray
        Bin centres (Å); ``dr_ang``, ``r_max_ang`` the bin width and range.
    g_partial : dict[str, numpy.ndarray]
        g_ab(r) per unordered pair (``"P-O"``, ``"Li-Li"``, ...), dimensionless.
    cn : dict[str, float]
        Coordination number of B around A (``"P-O"``: O around P) within ``cn_cutoff_ang`` (every ordered
        pair; NaN when no cut-off was found).
    cn_cutoff_ang : dict[str, float]
        Cut-off per unordered pair (Å): the first minimum of g_ab, or the user's value.
    neutron_weights, xray_weights_q0 : dict[str, float]
        Faber–Ziman weights per ordered pair (``"P-O"`` and ``"O-P"`` both listed); each set sums to 1.
    g_neutron, G_neutron, g_xray, G_xray : numpy.ndarray
        Total g(r) and G(r) = 4 pi rho_0 r [g(r) - 1] (Å^-2) with neutron and (Q = 0) X-ray weights.
    q_inv_ang : numpy.ndarray
        Q grid (Å^-1) from Q_min = 2 pi / r_max to Q_max.
    S_partial : dict[str, numpy.ndarray]
        Faber–Ziman S_ab(Q) per unordered pair (Lorch window).
    S_neutron, S_xray : numpy.ndarray
        Total S(Q) with neutron and Q-dependent X-ray weights.
    peaks : dict[str, float or None]
        First-peak positions: ``G_neutron_first_peak_ang``, ``G_xray_first_peak_ang``,
        ``S_neutron_first_peak_inv_ang``, ``S_xray_first_peak_inv_ang`` (first maximum reaching half the
        largest excess over the baseline 0 for G, 1 for S), ``S_*_main_peak_inv_ang`` (highest maximum) and
        ``g_<pair>_first_peak_ang`` (first maximum of each partial).
    """

    n_frames: int
    elements: tuple[str, ...]
    concentrations: dict[str, float]
    density_atoms_ang3: float
    r_ang: np.ndarray = field(repr=False)
    dr_ang: float
    r_max_ang: float
    g_partial: dict[str, np.ndarray] = field(repr=False)
    cn: dict[str, float] = field(repr=False)
    cn_cutoff_ang: dict[str, float] = field(repr=False)
    neutron_weights: dict[str, float] = field(repr=False)
    xray_weights_q0: dict[str, float] = field(repr=False)
    g_neutron: np.ndarray = field(repr=False)
    G_neutron: np.ndarray = field(repr=False)
    g_xray: np.ndarray = field(repr=False)
    G_xray: np.ndarray = field(repr=False)
    q_inv_ang: np.ndarray = field(repr=False)
    S_partial: dict[str, np.ndarray] = field(repr=False)
    S_neutron: np.ndarray = field(repr=False)
    S_xray: np.ndarray = field(repr=False)
    peaks: dict[str, float | None] = field(repr=False)

    def _record(self) -> dict[str, Any]:
        """Everything above under the attribute names, plus ``window``, ``q_min_inv_ang`` and sources."""
        return {
            "n_frames": self.n_frames,
            "elements": list(self.elements),
            "concentrations": dict(self.concentrations),
            "density_atoms_ang3": self.density_atoms_ang3,
            "r_max_ang": self.r_max_ang,
            "dr_ang": self.dr_ang,
            "q_min_inv_ang": float(self.q_inv_ang[0]),
            "q_max_inv_ang": float(self.q_inv_ang[-1]),
            "window": "Lorch: M(r) = sin(pi r/r_max)/(pi r/r_max)",
            "formalism": "Faber-Ziman; G(r) = 4 pi rho0 r [g(r) - 1]",
            "sources": {"neutron": NEUTRON_SOURCE, "xray": XRAY_SOURCE},
            "cn": dict(self.cn),
            "cn_cutoff_ang": dict(self.cn_cutoff_ang),
            "peaks": dict(self.peaks),
            "neutron_weights": dict(self.neutron_weights),
            "xray_weights_q0": dict(self.xray_weights_q0),
            "r_ang": self.r_ang,
            "g_partial": dict(self.g_partial),
            "g_neutron": self.g_neutron,
            "G_neutron": self.G_neutron,
            "g_xray": self.g_xray,
            "G_xray": self.G_xray,
            "q_inv_ang": self.q_inv_ang,
            "S_partial": dict(self.S_partial),
            "S_neutron": self.S_neutron,
            "S_xray": self.S_xray,
        }


class Scattering(TrajectoryAnalysis):
    """Partial g_ab(r), neutron and X-ray G(r) and S(Q), coordination numbers and first peaks over frames.

    Parameters
    ----------
    trajectory
        Anything :class:`~tfbsim.analysis.trajectory.Trajectory` accepts; must have a periodic box.
    r_max_ang
        Range of g(r) (Å); default min(half the shortest perpendicular box width of the first frame, 20 Å).
    dr_ang
        Bin width (Å).
    q_max_inv_ang
        Largest Q of S(Q) (Å^-1), at most pi / dr_ang.
    dq_inv_ang
        Q spacing (Å^-1).
    q_min_inv_ang
        Smallest Q (Å^-1); default and lower limit 2 pi / r_max.
    cn_cutoffs_ang
        Coordination cut-offs per pair (``{"P-O": 2.0}``, Å); other pairs use the first minimum of g_ab.
    frames, dt_fs
        As for every analysis (:class:`~tfbsim.analysis.base.TrajectoryAnalysis`).

    Raises
    ------
    ConfigError
        An element missing from the scattering tables (named, with the supported list), bad numbers.
    AnalysisError
        r_max beyond half the box width, Q_min below 2 pi / r_max or Q_max above pi / dr (limits stated).
    TrajectoryError
        A trajectory without a periodic box.

    Examples
    --------
    >>> s = Scattering("traj.h5md", dr_ang=0.02, q_max_inv_ang=20).run(step=10).results  # doctest: +SKIP
    >>> s.peaks["G_neutron_first_peak_ang"], s.cn["P-O"]                                 # doctest: +SKIP
    """

    name = "scattering"

    def __init__(self, trajectory: TrajectoryLike, *, r_max_ang: float | None = None, dr_ang: float = 0.02,
                 q_max_inv_ang: float = 20.0, dq_inv_ang: float = 0.02, q_min_inv_ang: float | None = None,
                 cn_cutoffs_ang: Mapping[str, float] | None = None, frames: str | slice | None = None,
                 dt_fs: float | None = None) -> None:
        super().__init__(trajectory, frames=frames, dt_fs=dt_fs)
        traj = self._traj
        self.elements = check_elements(traj.symbols)
        _, cell = next(traj.iter_positions())
        limit = max_r_ang(_box_of(cell, traj.pbc))
        if r_max_ang is None:
            r_max_ang = min(limit, DEFAULT_R_MAX_CAP_ANG)
        r_max_ang = float(r_max_ang)
        if r_max_ang > limit + 1e-9:
            raise AnalysisError(
                f"r_max {r_max_ang:g} Å exceeds half the shortest perpendicular box width, {limit:.3f} Å: use "
                f"--rmax-ang <= {limit:.3f} (Q_min is then 2 pi / r_max = {2 * np.pi / limit:.3f} Å^-1) or a "
                "bigger box"
            )
        self._hist_args = {"r_max_ang": r_max_ang, "dr_ang": float(dr_ang)}
        probe = PairHistogram(traj.symbols, **self._hist_args)  # validates r_max and dr
        self.r_max_ang, self.dr_ang = probe.r_max, probe.dr
        q_lo = 2.0 * np.pi / self.r_max_ang
        q_min = q_lo if q_min_inv_ang is None else float(q_min_inv_ang)
        if q_min < q_lo - 1e-9:
            raise AnalysisError(
                f"Q_min {q_min:g} Å^-1 is below 2 pi / r_max = {q_lo:.3f} Å^-1, the lowest Q a box with r_max "
                f"{self.r_max_ang:.2f} Å resolves: raise Q_min or use a bigger box"
            )
        q_nyq = np.pi / self.dr_ang
        if not (math.isfinite(q_max_inv_ang) and q_min < q_max_inv_ang <= q_nyq + 1e-9):
            raise AnalysisError(
                f"Q_max {q_max_inv_ang!r} Å^-1 must lie between Q_min {q_min:.3f} and pi / dr = "
                f"{q_nyq:.1f} Å^-1 "
                "(the Nyquist limit of the r grid): lower --qmax-inv-ang or use a finer --dr-ang"
            )
        if not (math.isfinite(dq_inv_ang) and 0 < dq_inv_ang < q_max_inv_ang - q_min):
            raise ConfigError(f"dq_inv_ang must be a positive Q step below the Q range, got {dq_inv_ang!r}")
        self.q = np.arange(q_min, float(q_max_inv_ang) + 0.5 * dq_inv_ang, dq_inv_ang)
        self.cn_cutoffs = {}
        for name, value in (cn_cutoffs_ang or {}).items():
            a, b = _split_pair(name)
            if a not in self.elements or b not in self.elements:
                raise ConfigError(
                    f"cut-off pair {name!r}: the trajectory has the elements {', '.join(self.elements)}"
                )
            if not (math.isfinite(float(value)) and 0 < float(value) <= self.r_max_ang):
                raise ConfigError(f"cut-off for {name} must be a distance in (0, r_max = {self.r_max_ang:g}] Å")
            self.cn_cutoffs[frozenset((a, b))] = float(value)

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> ScatteringResults:
        hist = PairHistogram(frames.symbols, **self._hist_args)
        for k, (positions, cell) in enumerate(self._positions(frames, progress)):
            hist.add(positions, cell, frames.pbc, frame=int(ids[k]))
        return _results(hist, self.q, self.cn_cutoffs)


def _results(hist: PairHistogram, q: np.ndarray, cn_cutoffs: Mapping) -> ScatteringResults:
    r, g_pairs, rho0 = hist.partials()
    elements = hist.elements
    n = len(hist.symbols)
    conc = {el: float(hist.counts[e]) / n for e, el in enumerate(elements)}
    c = [conc[el] for el in elements]
    g_full = {**g_pairs, **{(b, a): v for (a, b), v in g_pairs.items()}}
    w_n = faber_ziman_weights(elements, c, "neutron")
    w_x0 = faber_ziman_weights(elements, c, "xray")
    w_xq = faber_ziman_weights(elements, c, "xray", q)
    g_n = sum(w_n[k] * g_full[k] for k in w_n)
    g_x = sum(w_x0[k] * g_full[k] for k in w_x0)
    S_pairs = {k: structure_factor(r, v, rho0, q, r_max_ang=hist.r_max) for k, v in g_pairs.items()}
    S_full = {**S_pairs, **{(b, a): v for (a, b), v in S_pairs.items()}}
    s_n = sum(w_n[k] * S_full[k] for k in w_n)
    s_x = sum(w_xq[k] * S_full[k] for k in w_xq)
    G_n, G_x = 4 * np.pi * rho0 * r * (g_n - 1), 4 * np.pi * rho0 * r * (g_x - 1)

    cn, cutoffs, peaks = {}, {}, {}
    volume_inv = rho0 / n
    for (a, b), g in g_pairs.items():
        name = pair_label(a, b)
        rc = cn_cutoffs.get(frozenset((a, b)))
        # smooth over ~0.1 Å whatever the bin width, and require the curve to have fallen to half the peak: a
        # sparse partial (8 N atoms) or a short run otherwise shows a 'minimum' on the flank of the first peak
        if rc is None:
            rc = first_minimum(r, g, smooth_bins=max(5, int(round(0.1 / hist.dr))), depth=0.5)
        cutoffs[name] = math.nan if rc is None else float(rc)
        running = np.cumsum(g * 4.0 / 3.0 * np.pi * (hist.edges[1:] ** 3 - hist.edges[:-1] ** 3))
        for x, y in ((a, b), (b, a)):
            n_y = hist.counts[elements.index(y)] - (1 if x == y else 0)
            value = math.nan if rc is None else float(np.interp(rc, hist.edges[1:], running) * n_y * volume_inv)
            cn[f"{x}-{y}"] = value
        peaks[f"g_{name}_first_peak_ang"] = first_peak(r, g, baseline=0.0)
    peaks["G_neutron_first_peak_ang"] = first_peak(r, G_n)
    peaks["G_xray_first_peak_ang"] = first_peak(r, G_x)
    for label, s in (("neutron", s_n), ("xray", s_x)):
        peaks[f"S_{label}_first_peak_inv_ang"] = first_peak(q, s, baseline=1.0)
        peaks[f"S_{label}_main_peak_inv_ang"] = float(q[int(np.argmax(s))])

    def named(d: Mapping) -> dict:
        return {f"{a}-{b}": v for (a, b), v in d.items()}

    return ScatteringResults(
        n_frames=hist.n_frames, elements=tuple(elements), concentrations=conc, density_atoms_ang3=float(rho0),
        r_ang=r, dr_ang=hist.dr, r_max_ang=hist.r_max,
        g_partial={pair_label(a, b): v for (a, b), v in g_pairs.items()}, cn=cn, cn_cutoff_ang=cutoffs,
        neutron_weights={k: float(v) for k, v in named(w_n).items()},
        xray_weights_q0={k: float(v) for k, v in named(w_x0).items()},
        g_neutron=g_n, G_neutron=G_n, g_xray=g_x, G_xray=G_x, q_inv_ang=q,
        S_partial={pair_label(a, b): v for (a, b), v in S_pairs.items()}, S_neutron=s_n, S_xray=s_x, peaks=peaks,
    )
