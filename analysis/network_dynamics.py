"""Network dynamics of a phosphate glass: P-O/P-N bond exchange rates and the speciation as a time series.

Bond events (hysteresis + persistence)
--------------------------------------
A bond between a P and an anion X (O or N) changes state only on a clear crossing of the cut-off:

1. **hysteresis**: with the nominal cut-off c (the speciation cut-off, 2.0 Å by default) and a half-width
   ``delta`` (``hysteresis_ang``, 0.15 Å), a bond *forms* when d < c - delta and *breaks* when d > c + delta;
   inside the band [c - delta, c + delta] it keeps its previous state (in the first frame: d < c);
2. **persistence**: the new state must then hold for ``min_lifetime_fs`` (100 fs by default; at least one
   stored frame): n = max(1, ceil(min_lifetime_fs / dt)) consecutive frames. A break that is undone sooner
   (an atom vibrating across the band) is not counted, nor is its re-formation.

An event is counted in the frame where it is confirmed. Rates are events per P atom per ps over the analysed
time span (``breaks``, ``forms`` and their sum, for P-O and P-N separately). The state is kept only for pairs
that are bonded, in the band or changing, so memory does not grow with the run length (apart from the per-frame
time series). A pair is identified by its two atoms (periodic images are not told apart).

Speciation time series
----------------------
Per frame, with the plain speciation cut-offs (:func:`tfbsim.analysis.speciation.classify_bonds`,
:func:`tfbsim.analysis.coordination.frame_statistics`): fractions ``N0/Na/Nd/Nt/N_over``, ``O0/Onb/Ob/O_over``
and ``Q0 ... Q4/Q_over``. :func:`speciation_steady_state` tells whether they have stopped drifting.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AnalysisError, ConfigError
from .base import AnalysisResults, Progress, TrajectoryAnalysis
from .coordination import frame_statistics
from .neighbours import BondList, bonds
from .speciation import N_CLASSES, O_CLASSES, Q_CLASSES, classify_bonds, speciation_cutoffs
from .trajectory import Trajectory, TrajectoryLike

__all__ = [
    "NetworkDynamics", "NetworkDynamicsResults", "BondEventTracker", "SteadyState", "speciation_steady_state",
]

logger = logging.getLogger(__name__)

SPECIATION_KEYS: tuple[str, ...] = (*N_CLASSES, *O_CLASSES, *Q_CLASSES)
STEADY_KEYS: tuple[str, ...] = ("Nd", "Na", "Nt", "Ob")


# ------------------------------------------------------------------------------------------ steady state
@dataclass(frozen=True)
class SteadyState:
    """Outcome of :func:`speciation_steady_state`.

    Attributes
    ----------
    steady : bool
        True when every checked quantity is steady.
    per_key : dict[str, dict[str, float]]
        Per quantity: ``mean_middle``, ``stderr_middle``, ``mean_last``, ``stderr_last``, ``difference``
        (last - middle), ``threshold`` and ``steady`` (bool).
    n_blocks : int
        Blocks per third used for the standard errors.
    """

    steady: bool
    per_key: dict[str, dict[str, Any]]
    n_blocks: int

    def to_dict(self) -> dict[str, Any]:
        """JSON record: ``steady``, ``n_blocks`` and ``per_key``."""
        return {"steady": self.steady, "n_blocks": self.n_blocks, "per_key": self.per_key}


def _block_mean_err(x: np.ndarray, n_blocks: int) -> tuple[float, float]:
    blocks = np.array_split(x, n_blocks)
    means = np.array([b.mean() for b in blocks])
    return float(x.mean()), float(means.std(ddof=1) / math.sqrt(len(means))) if len(means) > 1 else 0.0


def speciation_steady_state(series: Mapping[str, Sequence[float]] | Sequence[float], *,
                            keys: Sequence[str] | None = STEADY_KEYS, n_blocks: int = 5, n_sigma: float = 2.0,
                            abs_tol: float = 0.01) -> SteadyState:
    """Has a time series (e.g. the Nd/Na/Nt/Ob fractions during a melt) stopped drifting?

    The frames are split into thirds; the first third is discarded as transient. The middle and the last third
    are each cut into ``n_blocks`` contiguous blocks whose means give a block-averaged standard error (blocks
    absorb the time correlation of neighbouring frames). A quantity is steady when

        |mean_last - mean_middle| <= n_sigma * sqrt(stderr_middle^2 + stderr_last^2) + abs_tol.

    Parameters
    ----------
    series
        ``{name: values per frame}`` (e.g. ``NetworkDynamicsResults.speciation``) or one sequence of values.
        Frames should be equally spaced in time. NaN values (an element absent) are ignored.
    keys
        Names to check (default Nd, Na, Nt, Ob; those absent from ``series`` are skipped); ``None`` checks all.
    n_blocks
        Blocks per third (reduced to the frames available, at least 2 per third).
    n_sigma
        Allowed difference in combined standard errors.
    abs_tol
        Allowed absolute difference on top (fractions: 0.01 = one percentage point), so that a perfectly
        constant series with a tiny jump is not called drifting.

    Returns
    -------
    SteadyState
        ``.steady`` (bool) and the numbers per quantity.

    Raises
    ------
    AnalysisError
        Fewer than 6 frames (two per third), or no quantity to check.

    Examples
    --------
    >>> import numpy as np
    >>> speciation_steady_state({"Nd": np.full(30, 0.4)}).steady
    True
    >>> speciation_steady_state({"Nd": np.linspace(0.2, 0.8, 30)}).steady
    False
    """
    data = {"value": series} if not isinstance(series, Mapping) else dict(series)
    names = list(data) if keys is None else [k for k in keys if k in data]
    if not names:
        raise AnalysisError(f"no quantity to check: the series has {', '.join(map(str, data)) or 'nothing'}")
    per_key: dict[str, dict[str, Any]] = {}
    used_blocks = n_blocks
    for name in names:
        x = np.asarray(data[name], dtype=float)
        x = x[np.isfinite(x)]
        if len(x) == 0:  # the element is absent (e.g. no N): nothing to check
            continue
        third = len(x) // 3
        if third < 2:
            raise AnalysisError(
                f"{name}: {len(x)} frames are too few for a steady-state check (need 6 or more: two per third); "
                "store frames more often or run longer"
            )
        used_blocks = max(2, min(int(n_blocks), third))
        mid, last = x[third:2 * third], x[len(x) - third:]
        m_mid, e_mid = _block_mean_err(mid, used_blocks)
        m_last, e_last = _block_mean_err(last, used_blocks)
        threshold = n_sigma * math.hypot(e_mid, e_last) + abs_tol
        diff = m_last - m_mid
        per_key[name] = {"mean_middle": m_mid, "stderr_middle": e_mid, "mean_last": m_last, "stderr_last": e_last,
                         "difference": diff, "threshold": threshold, "steady": bool(abs(diff) <= threshold)}
    if not per_key:
        raise AnalysisError(f"{', '.join(names)}: no finite values to check (is the element absent?)")
    return SteadyState(all(v["steady"] for v in per_key.values()), per_key, used_blocks)


# ------------------------------------------------------------------------------------------ bond events
class BondEventTracker:
    """Streaming hysteresis + persistence state machine over P-X pairs (see the module docstring).

    Parameters
    ----------
    n_atoms
        Atoms per frame (pair keys are ``p * n_atoms + x``).
    persist_frames
        Consecutive frames a new state must hold before it counts.
    """

    def __init__(self, n_atoms: int, persist_frames: int) -> None:
        self.n_atoms = int(n_atoms)
        self.persist = max(1, int(persist_frames))
        self.keys = np.zeros(0, np.int64)
        self.kind = np.zeros(0, np.int64)
        self.confirmed = np.zeros(0, bool)
        self.raw = np.zeros(0, bool)
        self.count = np.zeros(0, np.int64)
        self.started = False

    def update(self, keys: np.ndarray, kind: np.ndarray, d: np.ndarray, r_in: np.ndarray, r_out: np.ndarray,
               r_mid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed one frame: pairs ``keys`` (kind index per pair) at distances ``d``; per-kind r_in/r_out/r_mid.

        Returns the numbers of ``(breaks, forms)`` confirmed in this frame per kind.
        """
        order = np.argsort(keys)
        keys, kind, d = keys[order], kind[order], d[order]
        all_keys = np.union1d(self.keys, keys)
        old = np.searchsorted(all_keys, self.keys)
        new = np.searchsorted(all_keys, keys)
        n = len(all_keys)
        knd = np.zeros(n, np.int64)
        knd[old], knd[new] = self.kind, kind
        conf, raw, cnt = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, np.int64)
        conf[old], raw[old], cnt[old] = self.confirmed, self.raw, self.count
        dist = np.full(n, np.inf)
        dist[new] = d
        n_kinds = len(r_in)
        if not self.started:
            raw = dist < r_mid[knd]
            conf = raw.copy()
            self.started = True
            breaks = forms = np.zeros(n_kinds, np.int64)
        else:
            raw = np.where(dist < r_in[knd], True, np.where(dist > r_out[knd], False, raw))
            differs = raw != conf
            cnt = np.where(differs, cnt + 1, 0)
            flip = cnt >= self.persist
            breaks = np.bincount(knd[flip & conf], minlength=n_kinds)
            forms = np.bincount(knd[flip & ~conf], minlength=n_kinds)
            conf = np.where(flip, raw, conf)
            cnt[flip] = 0
        live = conf | raw | (cnt > 0) | np.isfinite(dist)
        self.keys, self.kind = all_keys[live], knd[live]
        self.confirmed, self.raw, self.count = conf[live], raw[live], cnt[live]
        return breaks, forms


@dataclass(frozen=True)
class NetworkDynamicsResults(AnalysisResults):
    """Bond exchange and speciation over time.

    Attributes
    ----------
    n_frames : int
    times_ps : numpy.ndarray
        Time of each analysed frame (ps).
    n_P : int
    cutoffs_ang, hysteresis_ang, min_lifetime_fs, persist_frames
        The bond criterion (see the module docstring).
    events : dict[str, int]
        ``P-O_breaks``, ``P-O_forms``, ``P-N_breaks``, ``P-N_forms`` over the run.
    rates_per_P_per_ps : dict[str, float]
        The same divided by n_P and the time span, plus ``P-O_total``, ``P-N_total`` (NaN for one frame).
    events_per_frame : dict[str, numpy.ndarray]
        Events confirmed in each frame (same keys as ``events``).
    speciation : dict[str, numpy.ndarray]
        Per-frame fractions ``N0 ... N_over``, ``O0 ... O_over``, ``Q0 ... Q_over`` (NaN when absent).
    steady_state : SteadyState or None
        :func:`speciation_steady_state` of Nd, Na, Nt, Ob (None with fewer than 6 frames).
    """

    n_frames: int
    times_ps: np.ndarray = field(repr=False)
    n_P: int
    cutoffs_ang: dict[str, float]
    hysteresis_ang: float
    min_lifetime_fs: float
    persist_frames: int
    events: dict[str, int]
    rates_per_P_per_ps: dict[str, float]
    events_per_frame: dict[str, np.ndarray] = field(repr=False)
    speciation: dict[str, np.ndarray] = field(repr=False)
    steady_state: SteadyState | None = None

    def _record(self) -> dict[str, Any]:
        """Everything above under the attribute names."""
        return {
            "n_frames": self.n_frames, "n_P": self.n_P, "cutoffs_ang": dict(self.cutoffs_ang),
            "hysteresis_ang": self.hysteresis_ang, "min_lifetime_fs": self.min_lifetime_fs,
            "persist_frames": self.persist_frames, "events": dict(self.events),
            "rates_per_P_per_ps": dict(self.rates_per_P_per_ps),
            "steady_state": None if self.steady_state is None else self.steady_state.to_dict(),
            "times_ps": self.times_ps, "events_per_frame": dict(self.events_per_frame),
            "speciation": dict(self.speciation),
        }


class NetworkDynamics(TrajectoryAnalysis):
    """P-O/P-N bond breaking and forming rates and the speciation time series of a trajectory.

    Parameters
    ----------
    trajectory
        Anything :class:`~tfbsim.analysis.trajectory.Trajectory` accepts; needs frame times (H5MD, or
        ``dt_fs``).
    cutoffs
        Bond cut-offs (Å) overriding the speciation defaults (``{"P-O": 2.0, "P-N": 2.0}``); they are the
        nominal cut-offs c of both the speciation and the bond events.
    hysteresis_ang
        Half-width delta of the hysteresis band (Å): form below c - delta, break above c + delta.
    min_lifetime_fs
        How long a new bond state must persist to count (fs); at least one stored frame.
    frames, dt_fs
        As for every analysis.

    Examples
    --------
    >>> nd = NetworkDynamics("melt/traj.h5md").run().results          # doctest: +SKIP
    >>> nd.rates_per_P_per_ps["P-O_total"], nd.steady_state.steady     # doctest: +SKIP
    """

    name = "network dynamics"

    def __init__(self, trajectory: TrajectoryLike, *, cutoffs: Mapping | None = None, hysteresis_ang: float = 0.15,
                 min_lifetime_fs: float = 100.0, frames: str | slice | None = None,
                 dt_fs: float | None = None) -> None:
        super().__init__(trajectory, frames=frames, dt_fs=dt_fs)
        self.cutoffs_ang = speciation_cutoffs(cutoffs)
        if not (math.isfinite(hysteresis_ang) and 0 <= hysteresis_ang < min(self.cutoffs_ang["P-O"],
                                                                            self.cutoffs_ang["P-N"]) / 2):
            raise ConfigError(
                f"hysteresis_ang must be >= 0 and well below the P-O/P-N cut-offs, got {hysteresis_ang!r}"
            )
        if not (math.isfinite(min_lifetime_fs) and min_lifetime_fs >= 0):
            raise ConfigError(f"min_lifetime_fs must be a non-negative time in fs, got {min_lifetime_fs!r}")
        self.hysteresis_ang = float(hysteresis_ang)
        self.min_lifetime_fs = float(min_lifetime_fs)
        self._traj.require_times()

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> NetworkDynamicsResults:
        times = np.asarray(frames.require_times(), dtype=float)
        dt_ps = float(np.median(np.diff(times))) if len(times) > 1 else math.nan
        persist = 1
        if math.isfinite(dt_ps) and dt_ps > 0:
            persist = max(1, math.ceil(self.min_lifetime_fs / 1000.0 / dt_ps - 1e-9))
        sym = frames.symbols
        kinds = ("O", "N")
        nominal = np.array([self.cutoffs_ang["P-O"], self.cutoffs_ang["P-N"]])
        r_in, r_out = nominal - self.hysteresis_ang, nominal + self.hysteresis_ang
        search = dict(self.cutoffs_ang)
        search["P-O"], search["P-N"] = float(r_out[0]), float(r_out[1])
        tracker = BondEventTracker(len(sym), persist)
        names = [f"P-{x}_{e}" for x in kinds for e in ("breaks", "forms")]
        per_frame = {k: [] for k in names}
        spec = {k: [] for k in SPECIATION_KEYS}
        pbc = np.asarray(frames.pbc, dtype=bool)
        is_p = sym == "P"
        for positions, cell in self._positions(frames, progress):
            cell_arg = cell if pbc.any() else None
            bl = bonds(positions, search, symbols=sym, cell=cell_arg, pbc=pbc)
            si, sj = sym[bl.i], sym[bl.j]
            p_first = is_p[bl.i]
            p_idx, x_idx = np.where(p_first, bl.i, bl.j), np.where(p_first, bl.j, bl.i)
            x_el = np.where(p_first, sj, si)
            px = (si == "P") ^ (sj == "P")
            px &= np.isin(x_el, kinds)
            kind = (x_el[px] == "N").astype(np.int64)
            breaks, forms = tracker.update(p_idx[px] * len(sym) + x_idx[px], kind, bl.distances_ang[px],
                                           r_in, r_out, nominal)
            for k, x in enumerate(kinds):
                per_frame[f"P-{x}_breaks"].append(int(breaks[k]))
                per_frame[f"P-{x}_forms"].append(int(forms[k]))
            scalars, _ = frame_statistics(classify_bonds(_nominal_bonds(bl, self.cutoffs_ang)))
            for k in SPECIATION_KEYS:
                spec[k].append(scalars[k])
        n_p = int(is_p.sum())
        span = float(times[-1] - times[0]) if len(times) > 1 else math.nan
        events = {k: int(sum(v)) for k, v in per_frame.items()}
        rates = {k: (v / (n_p * span) if n_p and span > 0 else math.nan) for k, v in events.items()}
        for x in kinds:
            rates[f"P-{x}_total"] = rates[f"P-{x}_breaks"] + rates[f"P-{x}_forms"]
        speciation = {k: np.asarray(v, dtype=float) for k, v in spec.items()}
        checkable = [k for k in STEADY_KEYS if np.isfinite(speciation[k]).any()]
        steady = speciation_steady_state(speciation, keys=checkable) if len(ids) >= 6 and checkable else None
        return NetworkDynamicsResults(
            n_frames=len(ids), times_ps=times, n_P=n_p,
            cutoffs_ang={"P-O": float(nominal[0]), "P-N": float(nominal[1])},
            hysteresis_ang=self.hysteresis_ang, min_lifetime_fs=self.min_lifetime_fs, persist_frames=persist,
            events=events, rates_per_P_per_ps=rates,
            events_per_frame={k: np.asarray(v) for k, v in per_frame.items()},
            speciation=speciation, steady_state=steady,
        )


def _nominal_bonds(bl: BondList, cutoffs: Mapping[str, float]) -> BondList:
    """The bonds of ``bl`` within the nominal cut-offs (``bl`` was searched with wider P-O/P-N cut-offs)."""
    from .neighbours import parse_cutoffs

    table = parse_cutoffs(cutoffs)
    elements = np.array(sorted({el for key in table for el in key}))
    lut = {el: k for k, el in enumerate(elements.tolist())}
    pos = np.minimum(np.searchsorted(elements, bl.symbols), len(elements) - 1)
    codes = np.where(elements[pos] == bl.symbols, pos, -1)
    cut = np.full((len(elements), len(elements)), -1.0)
    for (a, b), v in table.items():
        cut[lut[a], lut[b]] = cut[lut[b], lut[a]] = v
    ci, cj = codes[bl.i], codes[bl.j]
    ok = (ci >= 0) & (cj >= 0)
    keep = np.zeros(len(bl), bool)
    keep[ok] = bl.distances_ang[ok] <= cut[ci[ok], cj[ok]]
    return BondList(bl.i[keep], bl.j[keep], bl.shifts[keep], bl.distances_ang[keep], bl.symbols, table)
