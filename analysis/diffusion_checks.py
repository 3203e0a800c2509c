"""Can a run's D be trusted? The diffusive check on the carrier MSD and the network-mobility check.

Both checks work on MSD arrays and times, so the campaign worker can call them on a running simulation
(e.g. to extend a run until it is diffusive) as well as on finished analyses;
:func:`~tfbsim.analysis.diffusion.check_transport` runs them
on a trajectory, and :func:`classify_diffusion_record` turns a ``diffusion.json`` record into an Arrhenius
point status.

Diffusive check (:func:`is_diffusive`)
--------------------------------------
A point is *diffusive* when, in the fit window,

1. the log–log slope of the carrier MSD is ``>= min_loglog_slope`` (0.9) and ``<= max_loglog_slope`` (1.2):
   ``MSD ∝ t`` is what ``D = MSD / (2 d t)`` assumes; and
2. the MSD at the end of the window is ``>= min_msd_ang2`` (30 Å²): with Li–Li site distances of 2.5–3 Å in
   oxide/oxynitride glasses one hop adds 6–9 Å², so 30 Å² means about 4 hops per ion on average, some ten
   times the vibrational (cage) plateau of 1–3 Å². Below that, the fitted slope is dominated by the first hop
   of a few ions, the back-and-forth (correlated) hops have not averaged out, and the plateau offset is a large
   part of the MSD. 30–50 Å² is also what the project's protocol study asks for
   (``research/science-turn2.md``).

A point that fails is a **bound**, not a value. In glasses and dense liquids the running diffusivity
``D(t) = (d MSD/dt) / (2 d)`` approaches its long-time value *from above*: the velocity autocorrelation has a
negative (back-scattering) tail, and ions hop back and forth between neighbouring sites before they escape,
so a sub-diffusive MSD (slope < 1, or too few hops to see the back-hops cancel) gives a linear-fit D that
*over-estimates* the long-time D: ``D_fit`` is an **upper bound** (``bound = "upper"``). A super-diffusive
MSD (slope > 1.2: ballistic motion at too short lags, a drift, flow) bounds nothing (``bound = None``).
Caveat: the bound is strict for the running ``MSD/(2 d t)`` and for correlated back-hopping; a slope fitted
inside a flat cage plateau (MSD barely above its vibrational value) can under-estimate instead. Either way
such a point is never fitted; ``bound = "upper"`` is the usual case, not a guarantee.

Network mobility (:func:`network_mobility`)
-------------------------------------------
The network formers (P, O, N by default) must stay put while Li diffuses through them. For each network
species with at least ``min_atoms`` atoms, the **rise** of its MSD across the fit window,
``MSD(fit_end) - MSD(fit_start)``, is compared with ``max_rise_ang2`` (1 Å²): the MSD at the window start
already holds the vibrational plateau (reached within ~0.1–0.3 ps), so the rise is the non-vibrational motion
*during* the Li measurement. 1 Å² is a mean displacement of ~1 Å, two thirds of a P–O bond: the Li sites
were rebuilt while D was measured, and D then belongs to a (partly) molten glass, not to the glass whose
structure is reported. A run exceeding it for any species is flagged ``network_flows = True`` with the
numbers. Caveats: rotations of isolated PO4 units move O by up to ``2 r_PO² ≈ 4.8 Å²`` without flow (the
per-species numbers show whether P, the tetrahedra centres, moved too); the threshold is a property of the
structure (bond length), not tuned to any activation energy. The log–log slope of each network MSD is
reported as a diagnostic (≈ 0 on a plateau, → 1 for a liquid).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import AnalysisError

__all__ = [
    "DiffusiveCriteria", "DiffusiveCheck", "is_diffusive", "NetworkCriteria", "NetworkCheck", "network_mobility",
    "classify_diffusion_record", "POINT_STATUSES", "loglog_slope",
]

logger = logging.getLogger(__name__)

#: Status of one temperature (run) in an Arrhenius fit.
POINT_STATUSES = ("fitted", "excluded_network_flows", "bound_not_diffusive", "failed", "unstable", "not_finished")


@dataclass(frozen=True)
class DiffusiveCriteria:
    """Thresholds of :func:`is_diffusive` (see the module docstring for the reasons behind the defaults)."""

    min_loglog_slope: float = 0.9
    max_loglog_slope: float = 1.2
    min_msd_ang2: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.min_loglog_slope < self.max_loglog_slope:
            raise AnalysisError("DiffusiveCriteria needs 0 < min_loglog_slope < max_loglog_slope")
        if self.min_msd_ang2 < 0:
            raise AnalysisError("DiffusiveCriteria.min_msd_ang2 must be >= 0 (Å²)")


@dataclass(frozen=True)
class DiffusiveCheck:
    """Verdict of :func:`is_diffusive` with its numbers.

    Attributes
    ----------
    diffusive : bool
    loglog_slope : float
        Slope of log MSD vs log t in the fit window.
    msd_end_ang2 : float
        MSD at the end of the fit window (Å²).
    fit_start_ps, fit_end_ps : float
    bound : str or None
        ``"upper"``: not diffusive and D from a linear fit over-estimates the long-time D; ``None`` otherwise.
    reason : str
        One line saying why (and what to do when not diffusive).
    criteria : DiffusiveCriteria
    """

    diffusive: bool
    loglog_slope: float
    msd_end_ang2: float
    fit_start_ps: float
    fit_end_ps: float
    bound: str | None
    reason: str
    criteria: DiffusiveCriteria = field(default_factory=DiffusiveCriteria)

    def to_dict(self) -> dict[str, Any]:
        """JSON record (flat keys with units)."""
        out = {k: v for k, v in asdict(self).items() if k != "criteria"}
        out.update({f"criterion_{k}": v for k, v in asdict(self.criteria).items()})
        return out


def _window(lag_ps: np.ndarray, msd: np.ndarray, start: float, end: float) -> np.ndarray:
    lag_ps = np.asarray(lag_ps, dtype=float)
    tol = 1e-9 * max(float(np.max(lag_ps)) if lag_ps.size else 1.0, 1.0)
    keep = (lag_ps >= start - tol) & (lag_ps <= end + tol) & (lag_ps > 0) & np.isfinite(msd)
    return np.flatnonzero(keep)


def loglog_slope(lag_ps: Sequence[float], msd_ang2: Sequence[float], fit_start_ps: float, fit_end_ps: float) -> float:
    """Least-squares slope of ``log MSD`` vs ``log t`` over ``[fit_start_ps, fit_end_ps]`` (NaN if < 2 points)."""
    t = np.asarray(lag_ps, dtype=float)
    m = np.asarray(msd_ang2, dtype=float)
    idx = _window(t, m, fit_start_ps, fit_end_ps)
    idx = idx[m[idx] > 0]
    if len(idx) < 2:
        return float("nan")
    return float(np.polyfit(np.log(t[idx]), np.log(m[idx]), 1)[0])


def _value_at(lag_ps: np.ndarray, msd: np.ndarray, time_ps: float) -> float:
    ok = np.isfinite(msd)
    return float(np.interp(time_ps, np.asarray(lag_ps, float)[ok], np.asarray(msd, float)[ok]))


def is_diffusive(lag_ps: Sequence[float], msd_ang2: Sequence[float], *, fit_start_ps: float, fit_end_ps: float,
                 criteria: DiffusiveCriteria | None = None) -> DiffusiveCheck:
    """Is the carrier MSD diffusive over the fit window? (slope and magnitude tests of the module docstring).

    Parameters
    ----------
    lag_ps
        Lag times (ps), increasing.
    msd_ang2
        MSD of the carrier species at those lags, summed over the axes analysed (Å²).
    fit_start_ps, fit_end_ps
        The window over which D is (or will be) fitted (ps).
    criteria
        Thresholds (default :class:`DiffusiveCriteria`: slope 0.9–1.2, MSD >= 30 Å²).

    Returns
    -------
    DiffusiveCheck

    Raises
    ------
    AnalysisError
        Arrays of different lengths, or a window holding fewer than two lags.
    """
    criteria = criteria or DiffusiveCriteria()
    t = np.asarray(lag_ps, dtype=float)
    m = np.asarray(msd_ang2, dtype=float)
    if t.shape != m.shape or t.ndim != 1:
        raise AnalysisError("lag_ps and msd_ang2 must be 1-D arrays of equal length")
    if len(_window(t, m, fit_start_ps, fit_end_ps)) < 2:
        raise AnalysisError(f"the window {fit_start_ps:g}–{fit_end_ps:g} ps holds fewer than two lags; widen it")
    slope = loglog_slope(t, m, fit_start_ps, fit_end_ps)
    msd_end = _value_at(t, m, fit_end_ps)
    problems, bound = [], None
    if not np.isfinite(slope) or slope < criteria.min_loglog_slope:
        problems.append(f"sub-diffusive (log–log slope {slope:.2f} < {criteria.min_loglog_slope:g})")
        bound = "upper"
    elif slope > criteria.max_loglog_slope:
        problems.append(f"super-diffusive (log–log slope {slope:.2f} > {criteria.max_loglog_slope:g}: ballistic, "
                        "drift or flow)")
    if msd_end < criteria.min_msd_ang2:
        problems.append(f"MSD {msd_end:.3g} Å² < {criteria.min_msd_ang2:g} Å² at {fit_end_ps:.3g} ps (too few hops)")
        if not problems[0].startswith("super"):
            bound = "upper"
    if problems:
        reason = "; ".join(problems) + ": D is " + (
            "an upper bound on the long-time D" if bound == "upper" else "not a bound") + "; run longer or hotter"
    else:
        reason = f"diffusive: slope {slope:.2f}, MSD {msd_end:.3g} Å² at {fit_end_ps:.3g} ps"
    return DiffusiveCheck(diffusive=not problems, loglog_slope=slope, msd_end_ang2=msd_end,
                          fit_start_ps=float(fit_start_ps), fit_end_ps=float(fit_end_ps), bound=bound, reason=reason,
                          criteria=criteria)


@dataclass(frozen=True)
class NetworkCriteria:
    """Thresholds of :func:`network_mobility` (see the module docstring)."""

    species: tuple[str, ...] = ("P", "O", "N")
    max_rise_ang2: float = 1.0
    min_atoms: int = 3

    def __post_init__(self) -> None:
        if self.max_rise_ang2 <= 0 or self.min_atoms < 1:
            raise AnalysisError("NetworkCriteria needs max_rise_ang2 > 0 (Å²) and min_atoms >= 1")


@dataclass(frozen=True)
class NetworkCheck:
    """Verdict of :func:`network_mobility`.

    Attributes
    ----------
    network_flows : bool or None
        True when a network species' MSD rose by more than ``max_rise_ang2`` over the window; None when no
        network species had enough atoms to judge.
    flowing_species : list of str
    per_species : dict
        ``{species: {n_atoms, msd_start_ang2, msd_end_ang2, rise_ang2, loglog_slope, judged}}``.
    fit_start_ps, fit_end_ps, max_rise_ang2 : float
    reason : str
    """

    network_flows: bool | None
    flowing_species: list
    per_species: dict
    fit_start_ps: float
    fit_end_ps: float
    max_rise_ang2: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON record."""
        return asdict(self)


def network_mobility(lag_ps: Sequence[float], msd_by_species_ang2: Mapping[str, Sequence[float]], *,
                     fit_start_ps: float, fit_end_ps: float,
                     n_atoms_by_species: Mapping[str, int] | None = None,
                     criteria: NetworkCriteria | None = None) -> NetworkCheck:
    """Did the network (P, O, N) flow during the carrier's fit window?

    Parameters
    ----------
    lag_ps
        Lag times (ps) shared by the MSD curves.
    msd_by_species_ang2
        ``{species: MSD (Å², 3-D)}`` of each network species (others are ignored).
    fit_start_ps, fit_end_ps
        The carrier's fit window (ps).
    n_atoms_by_species
        Atoms behind each curve; species with fewer than ``criteria.min_atoms`` are reported, not judged
        (default: every curve is judged).
    criteria
        :class:`NetworkCriteria` (default: P, O, N; rise > 1 Å² flags flow).
    """
    criteria = criteria or NetworkCriteria()
    t = np.asarray(lag_ps, dtype=float)
    per, flowing, judged_any = {}, [], False
    for sp in criteria.species:
        if sp not in msd_by_species_ang2:
            continue
        m = np.asarray(msd_by_species_ang2[sp], dtype=float)
        if m.shape != t.shape:
            raise AnalysisError(f"the MSD of {sp} has {m.shape} values for {t.shape} lags")
        n = None if n_atoms_by_species is None else int(n_atoms_by_species.get(sp, 0))
        start, end = _value_at(t, m, fit_start_ps), _value_at(t, m, fit_end_ps)
        rise = end - start
        judged = n is None or n >= criteria.min_atoms
        per[sp] = {"n_atoms": n, "msd_start_ang2": start, "msd_end_ang2": end, "rise_ang2": rise,
                   "loglog_slope": loglog_slope(t, m, fit_start_ps, fit_end_ps), "judged": judged}
        if judged:
            judged_any = True
            if rise > criteria.max_rise_ang2:
                flowing.append(sp)
    if not judged_any:
        flows, reason = None, "no network species with enough atoms to judge network mobility"
    elif flowing:
        flows = True
        reason = "network flows: " + ", ".join(
            f"{sp} MSD rose {per[sp]['rise_ang2']:.2g} Å²" for sp in flowing) + (
            f" (> {criteria.max_rise_ang2:g} Å²) over {fit_start_ps:.3g}–{fit_end_ps:.3g} ps; the glass relaxed "
            "while D was measured: use this temperature for trends only, or a lower one")
    else:
        flows = False
        reason = "network rigid: " + ", ".join(f"{sp} +{v['rise_ang2']:.2g} Å²" for sp, v in per.items() if v["judged"])
    return NetworkCheck(network_flows=flows, flowing_species=flowing, per_species=per,
                        fit_start_ps=float(fit_start_ps), fit_end_ps=float(fit_end_ps),
                        max_rise_ang2=float(criteria.max_rise_ang2), reason=reason)


def _record_diffusive(record: Mapping[str, Any], criteria: DiffusiveCriteria | None) -> DiffusiveCheck | None:
    msd = record.get("msd") or {}
    start, end = record.get("fit_start_ps"), record.get("fit_end_ps")
    if msd.get("lag_ps") is None or start is None or end is None:
        return None
    t = np.asarray(msd["lag_ps"], dtype=float)
    m = np.asarray([np.nan if v is None else v for v in msd["msd_ang2"]], dtype=float)
    try:
        return is_diffusive(t, m, fit_start_ps=float(start), fit_end_ps=float(end), criteria=criteria)
    except AnalysisError:
        return None


def _record_network(record: Mapping[str, Any], criteria: NetworkCriteria | None) -> dict | None:
    net = record.get("network")
    if not net:
        return None
    curves = net.get("msd") or {}
    if criteria is None or not curves.get("lag_ps"):
        return dict(net)
    msd = {sp: [np.nan if v is None else v for v in vals] for sp, vals in curves.get("species", {}).items()}
    check = network_mobility(curves["lag_ps"], msd, fit_start_ps=float(record["fit_start_ps"]),
                             fit_end_ps=float(record["fit_end_ps"]), n_atoms_by_species=net.get("n_atoms"),
                             criteria=criteria)
    return check.to_dict()


def classify_diffusion_record(record: Mapping[str, Any], *, diffusive: DiffusiveCriteria | None = None,
                              network: NetworkCriteria | None = None) -> dict[str, Any]:
    """Arrhenius status of one diffusion result (a ``diffusion.json`` record or its ``DiffusionResults``).

    The diffusive check is recomputed from the record's MSD with ``diffusive`` (default thresholds when None),
    the network check from its network MSDs when ``network`` is given (else the record's own verdict).

    Returns
    -------
    dict
        ``status`` (``fitted``, ``excluded_network_flows`` or ``bound_not_diffusive``), ``reason``,
        ``temperature_k``, ``D_cm2_s``, ``D_stderr_cm2_s``, ``loglog_slope``, ``msd_end_ang2``,
        ``network_flows``, ``network_max_rise_ang2``, ``bound`` (``"upper"`` or None).
    """
    rec = record.to_dict() if hasattr(record, "to_dict") else record
    check = _record_diffusive(rec, diffusive)
    net = _record_network(rec, network)
    flows = None if net is None else net.get("network_flows")
    rises = [] if net is None else [v.get("rise_ang2") for v in (net.get("per_species") or {}).values()
                                     if v.get("judged") and v.get("rise_ang2") is not None]
    out = {"temperature_k": rec.get("temperature_k"), "D_cm2_s": rec.get("D_cm2_s"),
           "D_stderr_cm2_s": rec.get("D_stderr_cm2_s"),
           "loglog_slope": None if check is None else check.loglog_slope,
           "msd_end_ang2": None if check is None else check.msd_end_ang2,
           "network_flows": flows, "network_max_rise_ang2": max(rises) if rises else None, "bound": None}
    if flows:
        out.update(status="excluded_network_flows", reason=net.get("reason"))
    elif check is not None and not check.diffusive:
        out.update(status="bound_not_diffusive", reason=check.reason, bound=check.bound)
    else:
        note = "" if check is not None else " (no MSD in the record: diffusive check not possible)"
        if net is None:
            note += " (no network MSD in the record: network not checked)"
        out.update(status="fitted", reason=(check.reason if check is not None else "") + note)
    return out
