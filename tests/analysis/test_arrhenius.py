"""Nernst–Einstein σ and the weighted Arrhenius fit: known Ea recovered, calibrated errors, warnings, CLI."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from tfbsim.analysis.transport import arrhenius_from_results, fit_arrhenius, nernst_einstein_sigma_S_cm
from tfbsim.errors import AnalysisError

KB_EV = 8.617333262e-5  # eV/K (CODATA), written out on purpose
EA, D0 = 0.55, 2e-3  # eV, cm²/s (LiPON-like)
TEMPS = np.array([600.0, 700.0, 800.0, 900.0, 1000.0])


def synthetic(rng, rel_err=0.08, temps=TEMPS):
    """D(T) = D0 exp(-Ea/kT) with log-normal scatter of the stated relative error."""
    d_true = D0 * np.exp(-EA / (KB_EV * temps))
    d = d_true * np.exp(rng.normal(0, rel_err, len(temps)))
    return d, rel_err * d


def test_nernst_einstein_by_hand():
    # n = 2e22 cm^-3 (20 carriers in 1000 Å^3), D = 1e-6 cm²/s, T = 600 K: σ = n e² D / (k T)
    sigma, err = nernst_einstein_sigma_S_cm(1e-6, n_carriers=20, volume_ang3=1000.0, temperature_k=600.0,
                                            D_stderr_cm2_s=2e-7)
    assert sigma == pytest.approx(2e22 * 1.602176634e-19**2 * 1e-6 / (1.380649e-23 * 600.0), rel=1e-12)
    assert sigma == pytest.approx(0.061975, rel=1e-4)
    assert err == pytest.approx(0.2 * sigma)
    halved, _ = nernst_einstein_sigma_S_cm(1e-6, n_carriers=20, volume_ang3=1000.0, temperature_k=600.0,
                                           haven_ratio=2.0)
    doubly, _ = nernst_einstein_sigma_S_cm(1e-6, n_carriers=20, volume_ang3=1000.0, temperature_k=600.0,
                                           charge_e=2.0)
    assert halved == pytest.approx(sigma / 2) and doubly == pytest.approx(4 * sigma)


def test_recovers_known_Ea_and_extrapolates(rng):
    d, err = synthetic(rng)
    prefactor = 0.5e5  # σ T / D (S K s cm^-3), any fixed value
    fit = fit_arrhenius(TEMPS, d, err, sigma_prefactor_S_K_s_cm3=prefactor)
    assert abs(fit.Ea_eV - EA) < 3 * fit.Ea_stderr_eV
    assert 0.005 < fit.Ea_stderr_eV < 0.1
    d300_true = D0 * np.exp(-EA / (KB_EV * 300.0))
    lo, hi = fit.D_target_ci95_cm2_s
    assert lo < d300_true < hi and lo < fit.D_target_cm2_s < hi
    assert fit.sigma_target_S_cm == pytest.approx(prefactor * fit.D_target_cm2_s / 300.0)
    slo, shi = fit.sigma_target_ci95_S_cm
    assert slo == pytest.approx(prefactor * lo / 300.0) and shi == pytest.approx(prefactor * hi / 300.0)
    assert not fit.warnings
    data = fit.to_dict()
    assert set(data) == {"Ea_eV", "Ea_stderr_eV", "D0_cm2_s", "sigma_300K_S_cm", "sigma_300K_ci95_S_cm", "points",
                         "Ea_ci95_eV", "temperatures_used_k", "points_status"}
    assert set(data["points"][0]) == {"temperature_k", "D_cm2_s", "D_stderr_cm2_s"}


def test_Ea_interval_coverage(rng):
    """Over many synthetic D(T) sets the Ea 95 % interval and the 300 K interval cover the truth ~95 %."""
    n, hits_ea, hits_300 = 400, 0, 0
    d300_true = D0 * np.exp(-EA / (KB_EV * 300.0))
    for _ in range(n):
        d, err = synthetic(rng)
        fit = fit_arrhenius(TEMPS, d, err)
        hits_ea += abs(fit.Ea_eV - EA) <= fit.quantile * fit.Ea_stderr_eV
        lo, hi = fit.D_target_ci95_cm2_s
        hits_300 += lo <= d300_true <= hi
    assert 0.90 <= hits_ea / n <= 0.99
    assert 0.90 <= hits_300 / n <= 0.99


def test_too_few_temperatures_warn_and_fail(rng, caplog):
    d, err = synthetic(rng, temps=TEMPS[:2])
    with caplog.at_level(logging.WARNING, logger="tfbsim"):
        fit = fit_arrhenius(TEMPS[:2], d, err)
    assert "only 2 temperatures" in caplog.text and fit.warnings and fit.dof == 0
    assert abs(fit.Ea_eV - EA) < 3 * fit.Ea_stderr_eV
    with pytest.raises(AnalysisError, match="two or more"):
        fit_arrhenius([600.0], [1e-6], [1e-7])
    with pytest.raises(AnalysisError, match="positive"):
        fit_arrhenius([600.0, 700.0], [1e-6, -1e-7], [1e-7, 1e-7])


def test_curvature_is_flagged(caplog):
    temps = np.array([500.0, 600.0, 700.0, 800.0, 1000.0, 1200.0])
    # Vogel–Fulcher–Tammann: strongly curved in 1/T
    d = 1e-3 * np.exp(-0.1 / (KB_EV * (temps - 350.0)))
    with caplog.at_level(logging.WARNING, logger="tfbsim"):
        fit = fit_arrhenius(temps, d, 0.03 * d)
    assert fit.curvature_sigma > 3 and "non-Arrhenius" in caplog.text
    straight = fit_arrhenius(temps, D0 * np.exp(-EA / (KB_EV * temps)), 0.03 * D0 * np.exp(-EA / (KB_EV * temps)))
    assert straight.curvature_sigma < 1 and not straight.warnings


def _records(rng):
    d, err = synthetic(rng)
    return [{"species": "Li", "n_atoms": 40, "temperature_k": float(t), "D_cm2_s": float(di),
             "D_stderr_cm2_s": float(ei), "volume_ang3": 2000.0, "haven_ratio": 1.0,
             "sigma_ne_S_cm": nernst_einstein_sigma_S_cm(di, n_carriers=40, volume_ang3=2000.0, temperature_k=t)[0],
             "sigma_ne_stderr_S_cm": None}
            for t, di, ei in zip(TEMPS, d, err)]


def test_from_results_uses_the_ne_prefactor(rng):
    records = _records(rng)
    fit = arrhenius_from_results(records)
    expected, _ = nernst_einstein_sigma_S_cm(fit.D_target_cm2_s, n_carriers=40, volume_ang3=2000.0,
                                             temperature_k=300.0)
    assert fit.sigma_target_S_cm == pytest.approx(expected, rel=1e-9)
    # without sigma in the records, density and charge give the same answer
    for rec in records:
        rec.pop("sigma_ne_S_cm")
    assert arrhenius_from_results(records).sigma_target_S_cm == pytest.approx(expected, rel=1e-9)
    records[0]["temperature_k"] = None
    with pytest.raises(AnalysisError, match="temperature"):
        arrhenius_from_results(records)


def test_cli_arrhenius(tmp_path, rng, cli_runner):
    from tfbsim.cli import app

    paths = []
    for i, rec in enumerate(_records(rng)):
        path = tmp_path / f"d{i}.json"
        path.write_text(json.dumps(rec))
        paths.append(str(path))
    out, png = tmp_path / "arr.json", tmp_path / "arr.png"
    result = cli_runner.invoke(app, ["analyze", "arrhenius", *paths, "--json", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == {"Ea_eV", "Ea_stderr_eV", "D0_cm2_s", "sigma_300K_S_cm", "sigma_300K_ci95_S_cm", "points",
                         "Ea_ci95_eV", "temperatures_used_k", "points_status", "provenance"}
    assert abs(data["Ea_eV"] - EA) < 3 * data["Ea_stderr_eV"]
    lo, hi = data["sigma_300K_ci95_S_cm"]
    assert lo < data["sigma_300K_S_cm"] < hi and len(data["points"]) == 5
    assert png.stat().st_size > 10_000 and "Ea =" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"species": "Li", "D_cm2_s": 1e-6, "D_stderr_cm2_s": 1e-7, "temperature_k": None}))
    out2 = tmp_path / "arr2.json"
    failed = cli_runner.invoke(app, ["analyze", "arrhenius", str(bad), paths[0], "--json", str(out2)])
    assert failed.exit_code == 2 and "temperature" in failed.output and not out2.exists()
