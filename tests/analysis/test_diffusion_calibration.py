"""Fast calibration check of the diffusion error bars (issue 22).

Many small Brownian systems with a known D go through the whole :class:`DiffusionAnalysis` pipeline; the
z-scores ``ln(D_hat / D_true) / (se / D_hat)`` must spread like the Student-t the interval assumes. A standard
error off by 1.5× in either direction moves the spread to ~0.7 or ~1.6 and fails; the statistic's own sampling
noise with 300 systems is ~±0.05.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy import stats

from tfbsim.analysis.diffusion import DiffusionAnalysis

N_SYSTEMS, N_ATOMS, N_FRAMES, D_TRUE, DT_PS = 300, 12, 80, 0.1, 0.1  # Å²/ps, ps


def _z_scores(seed: int = 2024) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = []
    for _ in range(N_SYSTEMS):
        steps = rng.normal(size=(N_FRAMES - 1, N_ATOMS, 3)) * np.sqrt(2.0 * D_TRUE * DT_PS)
        pos = np.concatenate([np.zeros((1, N_ATOMS, 3)), np.cumsum(steps, axis=0)])
        frames = [Atoms(["Li"] * N_ATOMS, positions=p, cell=[200.0] * 3, pbc=True) for p in pos]
        fit = DiffusionAnalysis(frames, dt_fs=DT_PS * 1000, unwrap=False, remove_drift=False,
                                network_species=None).run().results.fit
        d = fit.D_cm2_s / 1e-4
        z.append(np.log(d / D_TRUE) * d / (fit.D_stderr_cm2_s / 1e-4))
    return np.asarray(z)


def test_standard_error_is_calibrated_within_a_factor_below_1_5():
    z = _z_scores()
    expected = float(stats.t.std(N_ATOMS - 1))  # the interval's own assumption: Student-t, N-1 dof
    spread = float(np.std(z)) / expected
    # robust second look: interquartile range against the t distribution's
    iqr = float(np.subtract(*np.percentile(z, [75, 25]))) / float(np.subtract(*stats.t.ppf([0.75, 0.25], N_ATOMS - 1)))
    coverage = float(np.mean(np.abs(z) <= stats.t.ppf(0.975, N_ATOMS - 1)))
    assert 0.82 < spread < 1.22, (spread, iqr, coverage)
    assert 0.80 < iqr < 1.25, (spread, iqr, coverage)
    assert 0.91 < coverage < 0.985, (spread, iqr, coverage)
