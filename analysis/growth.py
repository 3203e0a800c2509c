"""Growth law of a layer: thickness vs time, linear (reaction-limited) against parabolic (diffusion-limited).

Two two-parameter models are fitted by ordinary least squares to the thickness ``L(t)`` of a layer:

- ``linear``:    ``L = L0 + r t``        (interface-reaction control; ``r`` in Å/ps),
- ``parabolic``: ``L = L0 + k sqrt(t)``  (transport through the growing layer controls; ``k`` in Å/ps^0.5;
  the parabolic rate constant of ``L² ∝ k_p t`` is ``k_p = k²`` when ``L0 = 0``).

Times are those of the trajectory (t = 0 at the start of the run, when the phases first touch), so the
parabolic model needs t ≥ 0. Both models have the same number of parameters, so the Akaike information
criterion ``AIC = n ln(RSS / n) + 2 p`` compares their residual sums directly; the preferred model is the one
with the lower AIC by more than ``aic_margin`` (2, the usual "substantial support" threshold of Burnham &
Anderson), otherwise ``undetermined``. A layer whose thickness never changes gives ``none``; fewer than
``min_points`` usable frames (or a zero time span) give ``insufficient`` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import ConfigError

__all__ = ["GrowthFit", "fit_growth", "MODELS"]

MODELS = ("linear", "parabolic")
_RSS_FLOOR = 1e-12  # Å² per point: a perfect fit still has a finite AIC


@dataclass(frozen=True)
class GrowthFit:
    """Linear and parabolic fits of thickness vs time and the preferred model.

    Attributes
    ----------
    model : str
        ``linear``, ``parabolic``, ``undetermined`` (ΔAIC within the margin), ``none`` (no change) or
        ``insufficient`` (too few frames or no time span; see ``reason``).
    n_points : int
        Frames used (finite time and thickness).
    time_span_ps : float
    linear, parabolic : dict
        ``intercept_ang``, ``rate`` (Å/ps for linear, Å/ps^0.5 for parabolic), ``rate_stderr``, ``rss_ang2``,
        ``aic``, ``r2``; empty when not fitted.
    delta_aic : float
        AIC(linear) − AIC(parabolic): negative favours linear, positive parabolic (NaN when not both fitted).
    reason : str
        Why the model is ``insufficient``/``none``/``undetermined`` (empty otherwise).
    """

    model: str
    n_points: int
    time_span_ps: float
    linear: dict = field(default_factory=dict)
    parabolic: dict = field(default_factory=dict)
    delta_aic: float = math.nan
    reason: str = ""

    @property
    def rate_ang_ps(self) -> float:
        """Linear growth rate (Å/ps), NaN when not fitted."""
        return float(self.linear.get("rate", math.nan))

    @property
    def parabolic_k_ang_ps05(self) -> float:
        """Parabolic coefficient k (Å/ps^0.5), NaN when not fitted."""
        return float(self.parabolic.get("rate", math.nan))

    def predict(self, times_ps: np.ndarray, model: str | None = None) -> np.ndarray:
        """Thickness (Å) of a fitted model at ``times_ps`` (default: the preferred one, else linear)."""
        name = model or (self.model if self.model in MODELS else "linear")
        fit = getattr(self, name) if name in MODELS else {}
        t = np.asarray(times_ps, dtype=float)
        if not fit:
            return np.full(t.shape, np.nan)
        x = t if name == "linear" else np.sqrt(np.clip(t, 0.0, None))
        return fit["intercept_ang"] + fit["rate"] * x

    def to_dict(self) -> dict:
        """JSON-ready dict (units in the keys of the nested fits: Å, ps)."""
        out = asdict(self)
        out["linear_units"] = "intercept Å, rate Å/ps"
        out["parabolic_units"] = "intercept Å, rate Å/ps^0.5"
        return out


def _ols(x: np.ndarray, y: np.ndarray) -> dict:
    a = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    n = len(y)
    rss = float(resid @ resid)
    dof = max(n - 2, 1)
    sxx = float(((x - x.mean()) ** 2).sum())
    stderr = math.sqrt(rss / dof / sxx) if sxx > 0 else math.nan
    tss = float(((y - y.mean()) ** 2).sum())
    return {
        "intercept_ang": float(coef[0]),
        "rate": float(coef[1]),
        "rate_stderr": stderr,
        "rss_ang2": rss,
        "aic": n * math.log(max(rss / n, _RSS_FLOOR)) + 2 * 2,
        "r2": 1.0 - rss / tss if tss > 0 else math.nan,
    }


def fit_growth(times_ps, thickness_ang, *, min_points: int = 4, aic_margin: float = 2.0) -> GrowthFit:
    """Fit ``L = L0 + r t`` and ``L = L0 + k sqrt(t)`` and choose between them (see the module docstring).

    Parameters
    ----------
    times_ps
        Frame times (ps); NaN entries (and their thickness) are skipped.
    thickness_ang
        Layer thickness per frame (Å).
    min_points
        Fewest usable frames for a fit (≥ 3).
    aic_margin
        ΔAIC needed to prefer one model.

    Returns
    -------
    GrowthFit
    """
    if min_points < 3:
        raise ConfigError(f"min_points must be at least 3 for a two-parameter fit, got {min_points}")
    t = np.asarray(times_ps, dtype=float).reshape(-1)
    y = np.asarray(thickness_ang, dtype=float).reshape(-1)
    if t.shape != y.shape:
        raise ConfigError(f"{len(t)} times for {len(y)} thicknesses; give one time per frame")
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    n = len(t)
    span = float(t.max() - t.min()) if n else 0.0
    if n < min_points or span <= 0:
        why = (f"{n} frame(s) with a time and a thickness; a growth fit needs at least {min_points} spread in time"
               if n < min_points else "all frames have the same time")
        return GrowthFit("insufficient", n, span, reason=why)
    if float(np.ptp(y)) == 0.0:
        flat = {"intercept_ang": float(y[0]), "rate": 0.0, "rate_stderr": 0.0, "rss_ang2": 0.0,
                "aic": math.nan, "r2": math.nan}
        return GrowthFit("none", n, span, linear=dict(flat), reason="the thickness does not change")
    linear = _ols(t, y)
    if t.min() < 0:
        return GrowthFit("linear", n, span, linear=linear,
                         reason="negative times: the parabolic law (t >= 0 from first contact) was not fitted")
    parabolic = _ols(np.sqrt(t), y)
    delta = linear["aic"] - parabolic["aic"]
    if delta < -aic_margin:
        model, why = "linear", ""
    elif delta > aic_margin:
        model, why = "parabolic", ""
    else:
        model = "undetermined"
        why = f"|ΔAIC| = {abs(delta):.2f} <= {aic_margin}: the data do not tell the laws apart"
    return GrowthFit(model, n, span, linear=linear, parabolic=parabolic, delta_aic=float(delta), reason=why)
