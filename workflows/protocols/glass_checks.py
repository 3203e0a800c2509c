"""Checks that make a melt–quench glass defensible: network equilibration of the melt, Tg from the cooling
curve, and the temperature window of transport runs against that Tg.

- :func:`network_verdict` — bond exchange (events per P and per ps) and the speciation's time series over a
  melt trajectory, and whether the speciation reached a steady state (:mod:`.network_adapter`).
- :func:`glass_transition_from_log` — volume and enthalpy per atom vs the thermostat's target temperature of a
  quench's ``log.csv``, binned, then the two-line fit of :mod:`tfbsim.analysis.glass_transition`.
- :func:`check_temperature_window` / :func:`propose_temperature_window` — which transport temperatures lie
  at or above ``Tg − margin`` (there the network itself flows, and the Arrhenius line is not the glass's),
  and a window below it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ..config import StrictModel

__all__ = [
    "NetworkCheckConfig", "network_verdict", "glass_transition_from_log", "preferred_tg",
    "check_temperature_window", "propose_temperature_window", "read_log",
]

logger = logging.getLogger(__name__)

_EV_PER_GPA_ANG3 = 1.0 / 160.21766208


class NetworkCheckConfig(StrictModel):
    """Network equilibration of the melt (the ``network_check`` block of a melt–quench).

    Attributes
    ----------
    min_exchanges_per_p
        Bond-exchange events per P (a P–O/P–N rupture plus a formation is one) the melt must reach: ≥ 1
        means the average P changed a neighbour at least once, so the design's speciation is forgotten.
    max_melt_ps
        Cap of the melt (ps): the melt doubles (resumably) until the network is equilibrated or this is
        reached. ``None``: measure only, never extend.
    tolerance
        Absolute allowance (fraction) on top of the block errors when the middle and last thirds of the melt's
        Nd/Na/Nt/Ob series are compared (:func:`tfbsim.analysis.network_dynamics.speciation_steady_state`).
    hysteresis_ang
        Half-width of the hysteresis band around the P–O/P–N cutoffs (Å): vibrations inside it are not events.
    min_lifetime_fs
        A new bond state must persist this long to count as an event (fs).
    """

    min_exchanges_per_p: float = Field(1.0, ge=0)
    max_melt_ps: float | None = Field(None, gt=0)
    tolerance: float = Field(0.02, gt=0, le=1)
    hysteresis_ang: float = Field(0.15, ge=0, lt=0.9)
    min_lifetime_fs: float = Field(100.0, ge=0)


def network_verdict(trajectory: Any, check: NetworkCheckConfig, *, times_ps: np.ndarray | None = None) -> dict[str, Any]:
    """Bond exchange and speciation steady state of a melt trajectory (H5MD path or frames; ``times_ps``: the
    frame times (ps) when the frames do not carry them).

    Returns
    -------
    dict
        ``converged`` (steady and enough exchanges), ``exchanges_per_p``, ``exchanges_per_p_ps``,
        ``steady`` (the :func:`~.network_adapter.speciation_steady_state` record), ``speciation_start`` and
        ``speciation_end`` (mean fractions of the first and last 10 % of frames), ``n_frames``, ``reason``.
    """
    from .network_adapter import bond_exchange_series, speciation_steady_state

    series = bond_exchange_series(trajectory, times_ps, hysteresis_ang=check.hysteresis_ang,
                                  min_lifetime_fs=check.min_lifetime_fs)
    steady = speciation_steady_state(series["fractions"], tolerance=check.tolerance)
    n = len(series["times_ps"])
    tenth = max(1, n // 10)

    def mean(part: slice) -> dict[str, float | None]:
        out = {}
        for name, values in series["fractions"].items():
            v = float(np.mean(values[part]))
            out[name] = None if np.isnan(v) else v
        return out

    enough = series["exchanges_per_p"] >= check.min_exchanges_per_p
    reasons = [steady["reason"]]
    if not enough:
        reasons.append(f"{series['exchanges_per_p']:.2f} exchanges per P < {check.min_exchanges_per_p:g}")
    return {
        "converged": bool(steady["steady"] and enough), "exchanges_per_p": series["exchanges_per_p"],
        "events": series["events"],
        "exchanges_per_p_ps": series["exchanges_per_p_ps"], "steady": steady,
        "speciation_start": mean(slice(0, tenth)), "speciation_end": mean(slice(n - tenth, n)), "n_frames": n,
        "time_ps": float(series["times_ps"][-1] - series["times_ps"][0]) if n > 1 else 0.0,
        "reason": "; ".join(reasons),
    }


def glass_transition_from_log(log: dict[str, np.ndarray], n_atoms: int, *, pressure_gpa: float = 0.0,
                              with_volume: bool = True, bin_width_k: float = 25.0,
                              min_points_per_side: int = 4, seed: int = 0) -> dict[str, Any]:
    """Tg of a quench from its log: volume (NPT quench only) and enthalpy per atom vs target temperature.

    Parameters
    ----------
    log
        ``log.csv`` columns (``target_T_k``, ``etot_ev``, ``volume_ang3``).
    n_atoms
        Atoms in the box (values are per atom).
    pressure_gpa
        External pressure (GPa) for H = E + pV.
    with_volume
        Fit the volume too (False for a constant-volume quench).
    bin_width_k
        Temperature bins (K) the rows are averaged into.
    min_points_per_side
        Bins each line needs at least.
    seed
        Bootstrap seed.

    Returns
    -------
    dict
        ``volume`` and ``enthalpy`` (fit records or ``{"has_break": False, "reason": ...}``), ``tg_k``,
        ``tg_stderr_k`` and ``tg_source`` (the volume's Tg when it has a break, else the enthalpy's, else
        ``None``), ``bin_width_k``, ``cooling_curve`` (binned T, V/atom, H/atom).
    """
    from ...analysis.glass_transition import bin_cooling_curve, fit_glass_transition

    target = np.asarray(log.get("target_T_k", log.get("T_k")), dtype=float)
    volume = np.asarray(log["volume_ang3"], dtype=float)
    enthalpy = (np.asarray(log["etot_ev"], dtype=float) + pressure_gpa * volume * _EV_PER_GPA_ANG3) / n_atoms
    out: dict[str, Any] = {"bin_width_k": bin_width_k}
    curves = {"enthalpy": ("enthalpy_ev_per_atom", enthalpy)}
    if with_volume:
        curves["volume"] = ("volume_ang3_per_atom", volume / n_atoms)
    binned: dict[str, list] = {}
    for key, (name, values) in curves.items():
        tb, yb, _ = bin_cooling_curve(target, values, bin_width_k=bin_width_k)
        binned["temperature_k"] = tb.tolist()
        binned[name] = yb.tolist()
        try:
            out[key] = fit_glass_transition(tb, yb, quantity=name, min_points_per_side=min_points_per_side,
                                            seed=seed).to_dict()
        except ValueError as exc:
            out[key] = {"has_break": False, "reason": f"no glass transition found: {exc}", "tg_k": None}
    if not with_volume:
        out["volume"] = {"has_break": False, "tg_k": None,
                         "reason": "constant-volume quench: set quench_ensemble: npt for V(T)"}
    out["cooling_curve"] = binned
    out.update(preferred_tg(out))
    return out


def preferred_tg(record: dict[str, Any]) -> dict[str, Any]:
    """``tg_k``, ``tg_stderr_k``, ``tg_source``: the volume's Tg if it has a break, else the enthalpy's."""
    for key in ("volume", "enthalpy"):
        fit = record.get(key) or {}
        if fit.get("has_break"):
            return {"tg_k": fit["tg_k"], "tg_stderr_k": fit.get("tg_stderr_k"), "tg_source": key}
    return {"tg_k": None, "tg_stderr_k": None, "tg_source": None}


def propose_temperature_window(tg_k: float, *, margin_k: float = 100.0, n: int = 5,
                               span_k: float = 400.0) -> list[float]:
    """``n`` temperatures (K) evenly spaced in 1/T from ``Tg − margin − span`` to ``Tg − margin``.

    Rounded to 10 K; the lowest is at least 0.4 Tg.
    """
    high = tg_k - margin_k
    low = max(high - span_k, 0.4 * tg_k)
    if high <= low or n < 2:
        return [round(max(high, low) / 10.0) * 10.0]
    inv = np.linspace(1.0 / low, 1.0 / high, n)
    return sorted({float(round(1.0 / x / 10.0) * 10.0) for x in inv})


def check_temperature_window(temperatures_k: list[float], tg_k: float | None, *, margin_k: float = 100.0,
                             n: int | None = None) -> dict[str, Any]:
    """Flag transport temperatures at or above ``Tg − margin`` and propose a window below.

    Returns
    -------
    dict
        ``tg_k``, ``margin_k``, ``limit_k`` (Tg − margin), ``too_hot_k`` (the flagged temperatures),
        ``ok`` (none flagged, or no Tg known), ``proposed_k`` and ``message``.
    """
    if tg_k is None:
        return {"tg_k": None, "margin_k": margin_k, "limit_k": None, "too_hot_k": [], "ok": True,
                "proposed_k": None, "message": "no glass transition known: the temperature window is unchecked"}
    limit = tg_k - margin_k
    hot = sorted(float(t) for t in temperatures_k if t >= limit)
    proposed = propose_temperature_window(tg_k, margin_k=margin_k, n=n or max(len(temperatures_k), 2))
    if hot:
        message = (f"temperatures {', '.join(f'{t:g}' for t in hot)} K are at or above Tg - margin = {limit:.0f} K "
                   f"(Tg {tg_k:.0f} K): there the network flows and D is not the glass's; e.g. use "
                   f"{', '.join(f'{t:g}' for t in proposed)} K")
    else:
        message = f"all temperatures below Tg - margin = {limit:.0f} K (Tg {tg_k:.0f} K)"
    return {"tg_k": tg_k, "margin_k": margin_k, "limit_k": limit, "too_hot_k": hot, "ok": not hot,
            "proposed_k": proposed, "message": message}


def read_log(run_dir: str | Path) -> dict[str, np.ndarray]:
    """``log.csv`` of an MD run directory as arrays."""
    from ..md.rundir import RunLog

    log = RunLog(None)
    log.rows = RunLog._read(Path(run_dir) / "log.csv")
    return log.arrays()
