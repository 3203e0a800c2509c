"""Local adapters to the convergence measures the protocols act on: network mobility and Li diffusivity.

The protocols (the melt's network check in :mod:`.glass_checks`, the campaign's production extension in
:func:`tfbsim.workflows.protocols.extension.diffusive_verdict`) call only the three functions below; they turn
the analysis layer's results (:mod:`tfbsim.analysis.network_dynamics`, :mod:`tfbsim.analysis.diffusion_checks`)
into the JSON-ready verdicts the protocols record:

:func:`bond_exchange_series`
    P–O/P–N bond events (hysteresis band and persistence); ``exchanges_per_p`` = events / 2 / n_P (a
    rupture plus a formation is one exchange), and the speciation fractions of every frame.
:func:`speciation_steady_state`
    Nd, Na, Nt, Ob: the middle and last thirds of the frames agree within block errors + ``tolerance``.
:func:`is_diffusive`
    Log–log slope of the MSD over the fit window in [``min_loglog_slope``, 1.2] and MSD at the window's
    end ≥ ``min_msd_ang2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bond_exchange_series", "speciation_steady_state", "is_diffusive", "TRACKED_FRACTIONS"]

#: Speciation fractions followed in time (fractions of N, O or P atoms).
TRACKED_FRACTIONS: tuple[str, ...] = ("Nd", "Na", "Nt", "Ob", "Onb", "Q0", "Q1", "Q2", "Q3")


def _fractions(labels: np.ndarray, symbols: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    groups = {"N": ("Nd", "Na", "Nt"), "O": ("Ob", "Onb"), "P": ("Q0", "Q1", "Q2", "Q3")}
    for element, names in groups.items():
        mask = symbols == element
        for name in names:
            out[name] = float(np.mean(labels[mask] == name)) if mask.any() else float("nan")
    return out


def bond_exchange_series(frames: Any, times_ps: np.ndarray | None = None, *, hysteresis_ang: float = 0.15,
                         min_lifetime_fs: float = 100.0, cutoffs: dict | None = None) -> dict[str, Any]:
    """Bond-exchange events and speciation fractions of a trajectory, frame by frame
    (:class:`tfbsim.analysis.network_dynamics.NetworkDynamics`).

    Parameters
    ----------
    frames
        Anything :class:`tfbsim.analysis.trajectory.Trajectory` reads (an H5MD path, a list of Atoms ...).
    times_ps
        Frame times (ps) of frames that do not carry them (equally spaced).
    hysteresis_ang, min_lifetime_fs
        The bond-event criterion (half-width of the hysteresis band, Å; persistence of a new state, fs).
    cutoffs
        Speciation cutoffs (Å) overriding the defaults (``{"P-O": 2.0}``).

    Returns
    -------
    dict
        ``times_ps``, ``events`` (P-O/P-N breaks and forms), ``n_p``, ``exchanges_per_p`` (breaks + forms over
        2 n_P: a rupture plus a formation is one exchange), ``exchanges_per_p_ps`` (its rate),
        ``fractions`` (name → array over frames), ``results`` (the analysis' results).
    """
    from ...analysis.network_dynamics import NetworkDynamics

    dt_fs = None
    if times_ps is not None and len(times_ps) > 1:
        dt_fs = float(np.median(np.diff(np.asarray(times_ps, dtype=float)))) * 1000.0
    res = NetworkDynamics(frames, cutoffs=cutoffs, hysteresis_ang=hysteresis_ang, min_lifetime_fs=min_lifetime_fs,
                          dt_fs=dt_fs).run().results
    total = float(sum(res.events.values())) / 2.0 / max(res.n_P, 1)
    span = float(res.times_ps[-1] - res.times_ps[0]) if len(res.times_ps) > 1 else 0.0
    return {
        "times_ps": np.asarray(res.times_ps, dtype=float), "events": dict(res.events), "n_p": res.n_P,
        "exchanges_per_p": total, "exchanges_per_p_ps": total / span if span > 0 else float("nan"),
        "fractions": {name: np.asarray(res.speciation[name]) for name in TRACKED_FRACTIONS if name in res.speciation},
        "results": res,
    }


def speciation_steady_state(series: dict[str, np.ndarray], *, tolerance: float = 0.02) -> dict[str, Any]:
    """Whether the speciation fractions stopped drifting
    (:func:`tfbsim.analysis.network_dynamics.speciation_steady_state`: middle vs last third of the frames, block
    standard errors; ``tolerance`` is its absolute allowance ``abs_tol``).

    Returns
    -------
    dict
        ``steady`` (bool), ``drift`` (name → last − middle third), ``not_steady`` (names), ``per_key``,
        ``reason``.
    """
    from ...analysis.network_dynamics import speciation_steady_state as _steady
    from ...errors import AnalysisError

    checkable = [k for k in ("Nd", "Na", "Nt", "Ob") if k in series and np.isfinite(series[k]).any()]
    try:
        state = _steady(series, keys=checkable or None, abs_tol=tolerance)
    except AnalysisError as exc:
        return {"steady": False, "drift": {}, "not_steady": [], "per_key": {}, "reason": f"not judged: {exc}"}
    drift = {k: v["difference"] for k, v in state.per_key.items()}
    failing = [k for k, v in state.per_key.items() if not v["steady"]]
    reason = ("speciation steady (middle vs last third)" if state.steady else
              "speciation still drifting: " + ", ".join(f"{n} {drift[n]:+.3f}" for n in failing))
    return {"steady": bool(state.steady), "drift": drift, "not_steady": failing, "per_key": state.per_key,
            "reason": reason}


def is_diffusive(msd_ang2: np.ndarray, lag_ps: np.ndarray, *, fit_start_ps: float, fit_end_ps: float,
                 min_loglog_slope: float = 0.9, min_msd_ang2: float = 30.0) -> dict[str, Any]:
    """Whether an MSD curve is diffusive (:func:`tfbsim.analysis.diffusion_checks.is_diffusive`: log–log slope
    in [``min_loglog_slope``, 1.2] over the fit window and MSD ≥ ``min_msd_ang2`` at its end).

    Returns
    -------
    dict
        ``diffusive`` (bool), ``loglog_slope``, ``msd_end_ang2``, ``reason`` (and the check's other fields).
    """
    from ...analysis.diffusion_checks import DiffusiveCriteria
    from ...analysis.diffusion_checks import is_diffusive as _is_diffusive
    from ...errors import AnalysisError

    criteria = DiffusiveCriteria(min_loglog_slope=min_loglog_slope,
                                 max_loglog_slope=max(1.2, min_loglog_slope + 0.3), min_msd_ang2=min_msd_ang2)
    try:
        return _is_diffusive(lag_ps, msd_ang2, fit_start_ps=fit_start_ps, fit_end_ps=fit_end_ps,
                             criteria=criteria).to_dict()
    except AnalysisError as exc:
        return {"diffusive": False, "loglog_slope": None, "msd_end_ang2": None, "reason": f"not judged: {exc}"}
