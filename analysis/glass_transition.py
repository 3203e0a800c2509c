"""Glass transition temperature from a cooling curve: a two-line (hinge) fit of volume or enthalpy vs T.

On cooling, a liquid's volume and enthalpy fall along one straight line and the glass's along a flatter one;
the temperature where the two lines meet is the (fictive, cooling-rate-dependent) glass transition ``Tg``.

Method
------
The model is a continuous broken line with its break at ``Tb``::

    y(T) = a + b (T - Tb)   for T < Tb       (glass)
    y(T) = a + c (T - Tb)   for T >= Tb      (liquid)

For each candidate ``Tb`` on a fine grid between the ``min_points_per_side``-th lowest and highest temperature,
``a, b, c`` follow from linear least squares; ``Tg`` is the ``Tb`` that minimises the total squared residual
``SSR(Tb)`` (the residual profile). Uncertainties:

- the **profile interval**: every ``Tb`` with ``SSR(Tb) <= SSR_min (1 + F_{1, n-4}(level) / (n - 4))`` (the
  likelihood-ratio interval of one non-linear parameter, Seber & Wild, *Nonlinear Regression*, 1989, §5.9);
- the **bootstrap**: the fit repeated on ``n_bootstrap`` resamples of the points (with replacement); its
  standard deviation is ``tg_stderr_k``. Points of one cooling run are correlated, so both are lower bounds;
  repeat quenches (seeds) for the full spread.

A break is only reported when the data need it: the hinge must beat one straight line (F-test, ``p < alpha``)
and a parabola (lower BIC: a smooth curvature is not a transition), and the two slopes must differ by at
least ``min_slope_ratio``. Otherwise ``has_break`` is False and ``reason`` says why.

:func:`bin_cooling_curve` averages a noisy MD log (thousands of rows) into temperature bins first.

Example
-------
>>> import numpy as np
>>> t = np.linspace(300, 1500, 60)
>>> v = np.where(t < 800, 10 + 1e-4 * (t - 800), 10 + 4e-4 * (t - 800))
>>> fit = fit_glass_transition(t, v, quantity="volume_ang3_per_atom")
>>> fit.has_break, round(fit.tg_k)
(True, 800)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["GlassTransitionFit", "fit_glass_transition", "bin_cooling_curve"]


@dataclass(frozen=True)
class GlassTransitionFit:
    """Result of :func:`fit_glass_transition` (temperatures in K; ``quantity`` names the unit of ``y``).

    Attributes
    ----------
    quantity : str
        What was fitted, with its unit (e.g. ``volume_ang3_per_atom``, ``enthalpy_ev_per_atom``).
    has_break : bool
        Whether the data show a break (see the module docstring); ``tg_k`` is ``None`` otherwise.
    reason : str
        One line: the break and its tests, or why there is none.
    tg_k : float or None
        Break temperature minimising the total squared residual (K).
    tg_stderr_k : float or None
        Bootstrap standard deviation of ``tg_k`` (K).
    tg_profile_interval_k : tuple of float or None
        Profile (likelihood-ratio) interval of ``tg_k`` at ``level`` (K).
    tg_best_break_k : float
        The best break even when ``has_break`` is False (K), for diagnostics.
    slope_glass_per_k, slope_liquid_per_k : float
        Slopes of the two lines (unit of ``y`` per K): below and above the break.
    value_at_break : float
        The two lines' common value at the break (unit of ``y``).
    p_value_vs_line : float
        F-test p-value of the hinge against one straight line.
    bic_hinge, bic_line, bic_parabola : float
        Bayesian information criteria of the three models (lower is better).
    n_points : int
    level : float
        Confidence level of the profile interval.
    temperature_k, values : numpy.ndarray
        The fitted points.
    profile_tb_k, profile_ssr : numpy.ndarray
        The residual profile: candidate breaks (K) and their total squared residual.
    """

    quantity: str
    has_break: bool
    reason: str
    tg_k: float | None
    tg_stderr_k: float | None
    tg_profile_interval_k: tuple[float, float] | None
    tg_best_break_k: float
    slope_glass_per_k: float
    slope_liquid_per_k: float
    value_at_break: float
    p_value_vs_line: float
    bic_hinge: float
    bic_line: float
    bic_parabola: float
    n_points: int
    level: float
    temperature_k: np.ndarray = field(repr=False)
    values: np.ndarray = field(repr=False)
    profile_tb_k: np.ndarray = field(repr=False)
    profile_ssr: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the profile and the points are left out)."""
        return {
            "quantity": self.quantity, "has_break": self.has_break, "reason": self.reason, "tg_k": self.tg_k,
            "tg_stderr_k": self.tg_stderr_k,
            "tg_profile_interval_k": list(self.tg_profile_interval_k) if self.tg_profile_interval_k else None,
            "tg_best_break_k": self.tg_best_break_k, "slope_glass_per_k": self.slope_glass_per_k,
            "slope_liquid_per_k": self.slope_liquid_per_k, "value_at_break": self.value_at_break,
            "p_value_vs_line": self.p_value_vs_line, "bic_hinge": self.bic_hinge, "bic_line": self.bic_line,
            "bic_parabola": self.bic_parabola, "n_points": self.n_points, "level": self.level,
            "t_range_k": [float(self.temperature_k.min()), float(self.temperature_k.max())],
        }


def _hinge_ssr(t: np.ndarray, y: np.ndarray, tb: float) -> tuple[float, np.ndarray]:
    """Least-squares hinge with its break at ``tb``: (SSR, [a, b_glass, c_liquid])."""
    d = t - tb
    design = np.column_stack([np.ones_like(t), np.minimum(d, 0.0), np.maximum(d, 0.0)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return float(resid @ resid), coef


def _profile(t: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """SSR of the hinge at every break of ``grid`` at once (batched normal equations, centred for accuracy)."""
    scale = max(float(np.ptp(t)), 1e-12)
    d = (t[None, :] - grid[:, None]) / scale
    x = np.stack([np.ones_like(d), np.minimum(d, 0.0), np.maximum(d, 0.0)], axis=-1)  # (G, n, 3)
    yc = y - y.mean()
    xtx = np.einsum("gni,gnj->gij", x, x)
    xty = np.einsum("gni,n->gi", x, yc)
    coef = np.linalg.solve(xtx + 1e-12 * np.eye(3), xty[..., None])[..., 0]
    resid = yc[None, :] - np.einsum("gni,gi->gn", x, coef)
    return np.einsum("gn,gn->g", resid, resid)


def _poly_ssr(t: np.ndarray, y: np.ndarray, degree: int) -> float:
    x = (t - t.mean()) / max(np.ptp(t), 1e-12)
    coef = np.polyfit(x, y, degree)
    resid = y - np.polyval(coef, x)
    return float(resid @ resid)


def _bic(ssr: float, n: int, k: int) -> float:
    return float(n * np.log(max(ssr, 1e-300) / n) + k * np.log(n))


def _break_grid(t_sorted: np.ndarray, min_side: int, n_grid: int) -> np.ndarray:
    lo, hi = t_sorted[min_side - 1], t_sorted[-min_side]
    return np.linspace(lo, hi, n_grid)


def fit_glass_transition(
    temperature_k: np.ndarray,
    values: np.ndarray,
    *,
    quantity: str = "value",
    min_points_per_side: int = 4,
    n_grid: int = 400,
    n_bootstrap: int = 200,
    level: float = 0.68,
    alpha: float = 0.01,
    min_slope_ratio: float = 1.15,
    seed: int = 0,
) -> GlassTransitionFit:
    """Fit two lines meeting at ``Tg`` to ``values(temperature_k)`` (see the module docstring).

    Parameters
    ----------
    temperature_k
        Temperatures (K) of the points (any order), e.g. bin centres of :func:`bin_cooling_curve`.
    values
        Volume, enthalpy ... at those temperatures (any unit; name it in ``quantity``).
    quantity
        Name (with unit) of ``values``, copied into the result.
    min_points_per_side
        Points each line needs at least (the break is searched between them).
    n_grid
        Candidate breaks on the residual profile.
    n_bootstrap
        Resamples of the points for ``tg_stderr_k`` (0: none).
    level
        Confidence level of the profile interval.
    alpha
        Significance of the F-test of the hinge against one straight line.
    min_slope_ratio
        The steeper slope must exceed the flatter by at least this factor (in absolute value).
    seed
        Seed of the bootstrap.

    Returns
    -------
    GlassTransitionFit

    Raises
    ------
    ValueError
        Fewer than ``2 * min_points_per_side + 1`` finite points, or arrays of different length.
    """
    t = np.asarray(temperature_k, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if t.shape != y.shape:
        raise ValueError(f"temperature_k and values differ in length ({t.size} vs {y.size})")
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    order = np.argsort(t)
    t, y = t[order], y[order]
    n = t.size
    if min_points_per_side < 2 or n < 2 * min_points_per_side + 1:
        raise ValueError(f"a two-line fit needs at least {2 * max(min_points_per_side, 2) + 1} finite points, "
                         f"got {n}")
    grid = _break_grid(t, min_points_per_side, n_grid)
    ssr = _profile(t, y, grid)
    best = int(np.argmin(ssr))
    tb = float(grid[best])
    ssr_hinge, coef = _hinge_ssr(t, y, tb)
    a, b_glass, c_liquid = (float(x) for x in coef)
    ssr_line = _poly_ssr(t, y, 1)
    ssr_parab = _poly_ssr(t, y, 2)
    dof = n - 4
    if ssr_hinge <= 1e-300:
        p_value = 0.0 if ssr_line > 1e-300 else 1.0
    else:
        f_stat = ((ssr_line - ssr_hinge) / 2.0) / (ssr_hinge / dof)
        p_value = float(stats.f.sf(f_stat, 2, dof))
    bic_h, bic_l, bic_p = _bic(ssr_hinge, n, 4), _bic(ssr_line, n, 2), _bic(ssr_parab, n, 3)
    # profile interval (likelihood ratio for one non-linear parameter)
    threshold = ssr[best] * (1.0 + stats.f.ppf(level, 1, dof) / dof)
    inside = grid[ssr <= threshold * (1.0 + 1e-9) + 1e-300]
    interval = (float(inside.min()), float(inside.max()))
    steep, flat = max(abs(b_glass), abs(c_liquid)), min(abs(b_glass), abs(c_liquid))
    ratio = steep / flat if flat > 0 else np.inf
    problems = []
    if p_value >= alpha:
        problems.append(f"one straight line fits as well (F-test p = {p_value:.2g} >= {alpha:g})")
    if bic_p <= bic_h:
        problems.append("a smooth parabola fits as well as two lines (BIC), no sharp break")
    if ratio < min_slope_ratio:
        problems.append(f"the two slopes differ by only {ratio:.2f}x (< {min_slope_ratio:g}x)")
    edge = interval[0] <= grid[0] or interval[1] >= grid[-1]
    if not problems and edge:
        problems.append("the break's profile interval reaches the end of the searched range: extend the cooling "
                        "range")
    has_break = not problems
    stderr = None
    if has_break and n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        coarse = np.linspace(grid[0], grid[-1], min(n_grid, 120))
        draws = []
        for _ in range(n_bootstrap):
            idx = np.sort(rng.integers(0, n, n))
            tt, yy = t[idx], y[idx]
            if np.unique(tt[tt < tb]).size < 2 or np.unique(tt[tt >= tb]).size < 2:
                continue
            draws.append(coarse[int(np.argmin(_profile(tt, yy, coarse)))])
        stderr = float(np.std(draws, ddof=1)) if len(draws) > 2 else None
    if has_break:
        reason = (f"break at {tb:.0f} K (profile interval {interval[0]:.0f}-{interval[1]:.0f} K, F-test p = "
                  f"{p_value:.2g}, slopes {b_glass:.3g} below / {c_liquid:.3g} above per K)")
    else:
        reason = "no glass transition found: " + "; ".join(problems)
    return GlassTransitionFit(
        quantity=quantity, has_break=has_break, reason=reason, tg_k=tb if has_break else None,
        tg_stderr_k=stderr if has_break else None, tg_profile_interval_k=interval if has_break else None,
        tg_best_break_k=tb, slope_glass_per_k=b_glass, slope_liquid_per_k=c_liquid, value_at_break=a,
        p_value_vs_line=p_value, bic_hinge=bic_h, bic_line=bic_l, bic_parabola=bic_p, n_points=n, level=level,
        temperature_k=t, values=y, profile_tb_k=grid, profile_ssr=ssr,
    )


def bin_cooling_curve(
    temperature_k: np.ndarray, values: np.ndarray, *, bin_width_k: float = 25.0, min_count: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average a cooling run's rows into temperature bins.

    Parameters
    ----------
    temperature_k
        Temperature of each row (K): best the thermostat's target (a smooth ramp), not the instantaneous T.
    values
        The quantity of each row (volume, enthalpy ...).
    bin_width_k
        Bin width (K).
    min_count
        Bins with fewer rows are dropped.

    Returns
    -------
    tuple of numpy.ndarray
        Bin mean temperatures (K), bin mean values and the number of rows per bin.
    """
    t = np.asarray(temperature_k, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    if t.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
    index = np.floor((t - t.min()) / bin_width_k).astype(int)
    counts = np.bincount(index)
    sums_t = np.bincount(index, weights=t)
    sums_y = np.bincount(index, weights=y)
    keep = counts >= min_count
    return sums_t[keep] / counts[keep], sums_y[keep] / counts[keep], counts[keep]
