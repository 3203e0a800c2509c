"""Glass transition from a cooling curve: two-line fit, its uncertainty, and the no-break case."""

from __future__ import annotations

import numpy as np
import pytest

from tfbsim.analysis.glass_transition import bin_cooling_curve, fit_glass_transition


def _two_lines(t, tg, glass=2e-4, liquid=8e-4, v0=12.0):
    return np.where(t < tg, v0 + glass * (t - tg), v0 + liquid * (t - tg))


@pytest.mark.parametrize("tg", [650.0, 900.0, 1150.0])
def test_known_tg_recovered_within_its_uncertainty(tg):
    rng = np.random.default_rng(3)
    t = np.linspace(300, 1700, 57)
    v = _two_lines(t, tg) + rng.normal(0, 0.01, t.size)
    fit = fit_glass_transition(t, v, quantity="volume_ang3_per_atom", n_bootstrap=100)
    assert fit.has_break, fit.reason
    assert abs(fit.tg_k - tg) < 60
    lo, hi = fit.tg_profile_interval_k
    assert lo - 3 * fit.tg_stderr_k <= tg <= hi + 3 * fit.tg_stderr_k
    assert 0 < fit.tg_stderr_k < 150
    assert fit.slope_glass_per_k == pytest.approx(2e-4, rel=0.3)
    assert fit.slope_liquid_per_k == pytest.approx(8e-4, rel=0.15)
    record = fit.to_dict()
    assert record["tg_k"] == fit.tg_k and record["has_break"] is True


def test_noise_free_hinge_is_exact():
    t = np.linspace(300, 1500, 49)
    fit = fit_glass_transition(t, _two_lines(t, 875.0), n_bootstrap=0)
    assert fit.tg_k == pytest.approx(875.0, abs=4)


@pytest.mark.parametrize("shape", ["line", "parabola"])
def test_no_break_is_said(shape):
    rng = np.random.default_rng(5)
    t = np.linspace(300, 1500, 49)
    y = 10 + 5e-4 * t if shape == "line" else 10 + 1e-7 * (t - 300) ** 2
    fit = fit_glass_transition(t, y + rng.normal(0, 0.005, t.size))
    assert not fit.has_break
    assert fit.tg_k is None and fit.tg_stderr_k is None
    assert fit.reason.startswith("no glass transition found")


def test_too_few_points_and_binning():
    with pytest.raises(ValueError, match="at least"):
        fit_glass_transition(np.arange(6.0), np.arange(6.0))
    t = np.repeat(np.arange(300.0, 400.0, 10.0), 4)
    tb, yb, n = bin_cooling_curve(t, 2 * t, bin_width_k=20.0)
    assert np.allclose(yb, 2 * tb) and n.sum() == t.size
