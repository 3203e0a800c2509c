"""Conductivity and activation energy from diffusivities: Nernst–Einstein σ and the Arrhenius fit.

Nernst–Einstein
---------------
``σ = n q² D / (k_B T H)`` with ``n`` the carrier number density, ``q = z e``, and the Haven ratio ``H``
(1 = tracer approximation, i.e. uncorrelated ions; glasses typically have 0.3–1). ``n``, ``q``, ``T`` and ``H``
are taken as exact, so the relative error of σ equals that of D.

Arrhenius
---------
``ln D = ln D0 - Ea / (k_B T)`` is fitted by weighted least squares in ``(1/T, ln D)`` with weights
``1 / σ²(ln D)``, ``σ(ln D) = σ(D) / D``. When the scatter exceeds the error bars (χ²/dof > 1) the covariance
is scaled by χ²/dof (Birge ratio) and intervals use Student's t with ``n - 2`` degrees of freedom; otherwise
the normal quantile. D and σ at 300 K come from the fitted line, with a 95 % interval from the parameter
covariance (asymmetric in D because the fit is in ``ln D``). On synthetic 5-temperature sets the Ea interval
covers the truth in 97 % of cases with correct D errors and still in 94 % when the D errors are 2× too small
(the Birge scaling with the t quantile is what keeps it honest; the plain normal interval drops to 68 %). Warnings: fewer than 3 temperatures (no check of
linearity), a significant quadratic term in 1/T (non-Arrhenius curvature), or scatter beyond the error bars.

Which points are fitted (:func:`arrhenius_from_results`)
--------------------------------------------------------
By default only trustworthy points enter the fit: a run whose network formers flowed during the fit window
(``excluded_network_flows``) or whose Li MSD never became diffusive (``bound_not_diffusive``: its D is an
upper bound, not a value) is left out (:mod:`tfbsim.analysis.diffusion_checks`). Every input point keeps its
status and reason in ``ArrheniusFit.points_status``; ``exclude_flagged=False`` fits them all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import constants, stats

from ..errors import AnalysisError

__all__ = [
    "K_B_EV_K",
    "ArrheniusFit",
    "carrier_charge_e",
    "nernst_einstein_sigma_S_cm",
    "fit_arrhenius",
    "arrhenius_from_results",
]

logger = logging.getLogger(__name__)

#: Boltzmann constant (eV K⁻¹).
K_B_EV_K = constants.k / constants.e
_ANG3_TO_CM3 = 1e-24

#: Formal charges (e) of common mobile ions.
_ION_CHARGES_E = {"Li": 1.0, "Na": 1.0, "K": 1.0, "Ag": 1.0, "Cu": 1.0, "H": 1.0, "Mg": 2.0, "Ca": 2.0,
                  "Zn": 2.0, "F": -1.0, "Cl": -1.0, "O": -2.0}


def carrier_charge_e(species: str | None) -> float | None:
    """Formal charge (e) of a mobile ion species, or None when unknown (pass ``charge_e`` then)."""
    if species is None:
        return None
    return _ION_CHARGES_E.get(str(species).strip())


def nernst_einstein_sigma_S_cm(
    D_cm2_s: float,
    *,
    n_carriers: float,
    volume_ang3: float,
    temperature_k: float,
    charge_e: float = 1.0,
    haven_ratio: float = 1.0,
    D_stderr_cm2_s: float | None = None,
) -> tuple[float, float | None]:
    """Nernst–Einstein conductivity ``σ = n q² D / (k_B T H)`` and its standard error (S cm⁻¹).

    Parameters
    ----------
    D_cm2_s
        Tracer diffusion coefficient (cm² s⁻¹).
    n_carriers
        Number of carriers in ``volume_ang3``.
    volume_ang3
        Volume (Å³).
    temperature_k
        Temperature (K).
    charge_e
        Carrier charge (elementary charges).
    haven_ratio
        Haven ratio ``H = D_tracer / D_sigma``.
    D_stderr_cm2_s
        Standard error of D (cm² s⁻¹); propagated linearly.

    Returns
    -------
    sigma_S_cm : float
    sigma_stderr_S_cm : float or None
    """
    if volume_ang3 <= 0 or temperature_k <= 0 or haven_ratio <= 0:
        raise AnalysisError("volume_ang3, temperature_k and haven_ratio must be positive")
    n_cm3 = n_carriers / (volume_ang3 * _ANG3_TO_CM3)
    prefactor = n_cm3 * (charge_e * constants.e) ** 2 / (constants.k * temperature_k * haven_ratio)
    err = None if D_stderr_cm2_s is None else float(prefactor * D_stderr_cm2_s)
    return float(prefactor * D_cm2_s), err


@dataclass(frozen=True)
class ArrheniusFit:
    """Weighted Arrhenius fit of D(T) (every name carries its unit).

    Attributes
    ----------
    Ea_eV, Ea_stderr_eV : float
        Activation energy and its standard error (eV).
    D0_cm2_s : float
        Pre-exponential factor (cm² s⁻¹); ``ln_D0_stderr`` is the error of ``ln D0``.
    temperature_k, D_cm2_s, D_stderr_cm2_s : numpy.ndarray
        The input points.
    dof : int
        ``n_points - 2``.
    chi2_reduced : float or None
        χ²/dof of the weighted fit (None for two points).
    error_scale : float
        Factor applied to the parameter errors (sqrt of χ²/dof when > 1, else 1).
    curvature_sigma : float or None
        |quadratic coefficient| / its error in a fit of ln D vs 1/T with a quadratic term (≥ 3 points).
    target_temperature_k : float
        Temperature of the extrapolation (300 K).
    D_target_cm2_s, D_target_ci95_cm2_s : float, tuple
        Extrapolated D and its 95 % interval (cm² s⁻¹).
    sigma_target_S_cm, sigma_target_ci95_S_cm : float or None, tuple or None
        Extrapolated Nernst–Einstein σ and its 95 % interval (S cm⁻¹); None without the NE prefactor.
    warnings : list of str
    """

    Ea_eV: float
    Ea_stderr_eV: float
    D0_cm2_s: float
    ln_D0_stderr: float
    temperature_k: np.ndarray
    D_cm2_s: np.ndarray
    D_stderr_cm2_s: np.ndarray
    dof: int
    chi2_reduced: float | None
    error_scale: float
    curvature_sigma: float | None
    target_temperature_k: float
    D_target_cm2_s: float
    D_target_ci95_cm2_s: tuple[float, float]
    sigma_target_S_cm: float | None
    sigma_target_ci95_S_cm: tuple[float, float] | None
    covariance: np.ndarray = field(repr=False)  # of (ln D0, slope d lnD / d(1/T) in K)
    quantile: float = field(repr=False, default=1.96)
    sigma_prefactor_S_K_s_cm3: float | None = field(repr=False, default=None)  # σ T / D
    warnings: list = field(default_factory=list)
    points_status: list = field(default_factory=list)  # every input point: status, reason, numbers

    @property
    def Ea_ci95_eV(self) -> tuple[float, float]:
        """95 % interval of Ea (eV), with the quantile used for the intervals (t when errors were scaled)."""
        half = self.quantile * self.Ea_stderr_eV
        return (self.Ea_eV - half, self.Ea_eV + half)

    def D_at_cm2_s(self, temperature_k: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """D on the fitted line at ``temperature_k`` with its 95 % band: ``(D, low, high)`` (cm² s⁻¹)."""
        x = 1.0 / np.asarray(temperature_k, dtype=float)
        y = np.log(self.D0_cm2_s) + self.ln_D_slope_k * x
        var = self.covariance[0, 0] + 2 * x * self.covariance[0, 1] + x * x * self.covariance[1, 1]
        half = self.quantile * np.sqrt(var)
        return np.exp(y), np.exp(y - half), np.exp(y + half)

    @property
    def ln_D_slope_k(self) -> float:
        """Fitted slope d ln D / d(1/T) (K), = -Ea / k_B."""
        return -self.Ea_eV / K_B_EV_K

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``tfbsim analyze arrhenius``."""
        return {
            "Ea_eV": self.Ea_eV,
            "Ea_stderr_eV": self.Ea_stderr_eV,
            "Ea_ci95_eV": list(self.Ea_ci95_eV),
            "D0_cm2_s": self.D0_cm2_s,
            "temperatures_used_k": sorted({float(t) for t in self.temperature_k}),
            "sigma_300K_S_cm": self.sigma_target_S_cm,
            "sigma_300K_ci95_S_cm": None if self.sigma_target_ci95_S_cm is None else list(self.sigma_target_ci95_S_cm),
            "points": [
                {"temperature_k": float(t), "D_cm2_s": float(d), "D_stderr_cm2_s": float(e)}
                for t, d, e in zip(self.temperature_k, self.D_cm2_s, self.D_stderr_cm2_s)
            ],
            "points_status": list(self.points_status),
        }


def _weighted_lstsq(x: np.ndarray, y: np.ndarray, sy: np.ndarray, degree: int):
    """Weighted polynomial fit; returns coefficients (ascending powers), covariance, chi²."""
    design = np.vander(x, degree + 1, increasing=True)
    w = 1.0 / sy
    a = design * w[:, None]
    coef, *_ = np.linalg.lstsq(a, y * w, rcond=None)
    cov = np.linalg.inv(a.T @ a)
    chi2 = float(np.sum(((design @ coef - y) * w) ** 2))
    return coef, cov, chi2


def fit_arrhenius(
    temperature_k: Sequence[float],
    D_cm2_s: Sequence[float],
    D_stderr_cm2_s: Sequence[float],
    *,
    sigma_prefactor_S_K_s_cm3: float | None = None,
    target_temperature_k: float = 300.0,
) -> ArrheniusFit:
    """Weighted Arrhenius fit ``ln D = ln D0 - Ea/(k_B T)`` and extrapolation to ``target_temperature_k``.

    Parameters
    ----------
    temperature_k, D_cm2_s, D_stderr_cm2_s
        Temperatures (K), diffusivities and their standard errors (cm² s⁻¹), one per simulation.
    sigma_prefactor_S_K_s_cm3
        ``σ T / D = n q² / (k_B H)`` of the Nernst–Einstein relation (S K s cm⁻³); with it the conductivity
        at the target temperature is extrapolated too.
    target_temperature_k
        Temperature of the extrapolation (K).

    Raises
    ------
    AnalysisError
        Fewer than two points, non-positive D or errors, or repeated temperatures only.
    """
    t = np.asarray(temperature_k, dtype=float)
    d = np.asarray(D_cm2_s, dtype=float)
    e = np.asarray(D_stderr_cm2_s, dtype=float)
    if not (t.shape == d.shape == e.shape) or t.ndim != 1:
        raise AnalysisError("temperature_k, D_cm2_s and D_stderr_cm2_s must be 1-D sequences of equal length")
    if len(t) < 2 or len(np.unique(t)) < 2:
        raise AnalysisError("an Arrhenius fit needs diffusivities at two or more different temperatures")
    if np.any(t <= 0) or np.any(~np.isfinite(d)) or np.any(d <= 0):
        bad = [f"{ti:g} K" for ti, di in zip(t, d) if not (np.isfinite(di) and di > 0)]
        raise AnalysisError(
            f"D must be positive for a logarithm (not at {', '.join(bad) or 'T <= 0'}); run those temperatures "
            "longer or drop them"
        )
    if np.any(~np.isfinite(e)) or np.any(e <= 0):
        raise AnalysisError("every D needs a positive standard error (D_stderr_cm2_s) for the weighted fit")
    order = np.argsort(t)
    t, d, e = t[order], d[order], e[order]
    warn: list[str] = []
    x, y, sy = 1.0 / t, np.log(d), e / d
    coef, cov, chi2 = _weighted_lstsq(x, y, sy, 1)
    dof = len(t) - 2
    chi2_red = chi2 / dof if dof > 0 else None
    scale = float(np.sqrt(chi2_red)) if chi2_red is not None and chi2_red > 1.0 else 1.0
    cov = cov * scale**2
    quantile = float(stats.t.ppf(0.975, dof)) if scale > 1.0 else float(stats.norm.ppf(0.975))
    curvature = None
    if len(t) < 3:
        warn.append(
            f"only {len(t)} temperatures: the Arrhenius line cannot be checked for curvature; simulate at least 3"
        )
    else:
        qcoef, qcov, _ = _weighted_lstsq(x, y, sy, 2)
        curvature = float(abs(qcoef[2]) / np.sqrt(qcov[2, 2]))
        p_linear = float(stats.chi2.sf(chi2, dof))
        if curvature > 3.0:
            warn.append(
                f"ln D vs 1/T curves (quadratic term {curvature:.1f} σ): non-Arrhenius behaviour; the extrapolation "
                "is unreliable — fit only the lower temperatures or check for a phase change/melting"
            )
        elif p_linear < 0.01:
            warn.append(
                f"the points scatter beyond their error bars (χ²/dof = {chi2_red:.2g}); errors were scaled by "
                f"{scale:.2g}; the D errors may be underestimated"
            )
    for message in warn:
        logger.warning(message)
    ln_d0, slope = float(coef[0]), float(coef[1])
    x0 = 1.0 / target_temperature_k
    y0 = ln_d0 + slope * x0
    sd0 = float(np.sqrt(cov[0, 0] + 2 * x0 * cov[0, 1] + x0 * x0 * cov[1, 1]))
    d_target = float(np.exp(y0))
    d_ci = (float(np.exp(y0 - quantile * sd0)), float(np.exp(y0 + quantile * sd0)))
    sigma, sigma_ci = None, None
    if sigma_prefactor_S_K_s_cm3 is not None:
        factor = sigma_prefactor_S_K_s_cm3 / target_temperature_k
        sigma, sigma_ci = factor * d_target, (factor * d_ci[0], factor * d_ci[1])
    return ArrheniusFit(
        Ea_eV=float(-slope * K_B_EV_K),
        Ea_stderr_eV=float(np.sqrt(cov[1, 1]) * K_B_EV_K),
        D0_cm2_s=float(np.exp(ln_d0)),
        ln_D0_stderr=float(np.sqrt(cov[0, 0])),
        temperature_k=t, D_cm2_s=d, D_stderr_cm2_s=e,
        dof=dof, chi2_reduced=chi2_red, error_scale=scale, curvature_sigma=curvature,
        target_temperature_k=float(target_temperature_k),
        D_target_cm2_s=d_target, D_target_ci95_cm2_s=d_ci,
        sigma_target_S_cm=sigma, sigma_target_ci95_S_cm=sigma_ci,
        covariance=cov, quantile=quantile, sigma_prefactor_S_K_s_cm3=sigma_prefactor_S_K_s_cm3,
        warnings=warn,
    )


def _as_record(result: Any) -> Mapping[str, Any]:
    return result.to_dict() if hasattr(result, "to_dict") else result


def arrhenius_from_results(results: Sequence[Any], *, target_temperature_k: float = 300.0,
                           exclude_flagged: bool = True, diffusive: Any = None, network: Any = None) -> ArrheniusFit:
    """Arrhenius fit of several diffusion results (``DiffusionResults`` or their JSON dicts).

    Each result is classified first (:func:`~tfbsim.analysis.diffusion_checks.classify_diffusion_record`):
    with ``exclude_flagged`` (default) only ``fitted`` points enter the fit, network-flowing runs and
    non-diffusive runs (upper bounds) are left out; every point's status is in ``points_status``.

    The Nernst–Einstein prefactor for σ at ``target_temperature_k`` is taken from the lowest-temperature
    fitted result (``sigma_ne_S_cm · T / D``, i.e. the density, charge and Haven ratio that analysis used);
    without σ in the results, from ``n_atoms / volume_ang3`` and the species' formal charge.

    Parameters
    ----------
    diffusive, network
        :class:`~tfbsim.analysis.diffusion_checks.DiffusiveCriteria` / ``NetworkCriteria`` overriding the
        thresholds (default: the diffusive check with default thresholds, the records' own network verdict).

    Raises
    ------
    AnalysisError
        A record without temperature/D/error, mixed species, or fewer than two temperatures left to fit
        (the message lists every point's status).
    """
    from .diffusion_checks import classify_diffusion_record

    records = [_as_record(r) for r in results]
    if not records:
        raise AnalysisError("no diffusion results given")
    for i, rec in enumerate(records):
        for key in ("temperature_k", "D_cm2_s", "D_stderr_cm2_s"):
            if rec.get(key) is None:
                raise AnalysisError(
                    f"diffusion result #{i + 1} has no {key}; rerun `tfbsim analyze diffusion` with --temperature-k"
                    if key == "temperature_k" else f"diffusion result #{i + 1} has no {key}"
                )
    species = {rec.get("species") for rec in records}
    if len(species) > 1:
        raise AnalysisError(f"the results mix species {sorted(map(str, species))}; fit one species at a time")
    statuses = [classify_diffusion_record(rec, diffusive=diffusive, network=network) for rec in records]
    if exclude_flagged:
        used = [rec for rec, st in zip(records, statuses) if st["status"] == "fitted"]
    else:
        used = records
    if len({float(r["temperature_k"]) for r in used}) < 2:
        listing = "; ".join(f"{st['temperature_k']:g} K {st['status']}" for st in statuses)
        raise AnalysisError(
            f"fewer than two temperatures can be fitted ({listing}); run the non-diffusive temperatures longer, "
            "drop network-flowing ones, or fit all points with exclude_flagged=False (trends only)"
        )
    coldest = min(used, key=lambda r: float(r["temperature_k"]))
    prefactor = None
    if coldest.get("sigma_ne_S_cm") is not None and coldest["D_cm2_s"]:
        prefactor = float(coldest["sigma_ne_S_cm"]) * float(coldest["temperature_k"]) / float(coldest["D_cm2_s"])
    elif coldest.get("volume_ang3") and coldest.get("n_atoms") and carrier_charge_e(coldest.get("species")):
        sigma, _ = nernst_einstein_sigma_S_cm(
            1.0, n_carriers=float(coldest["n_atoms"]), volume_ang3=float(coldest["volume_ang3"]), temperature_k=1.0,
            charge_e=carrier_charge_e(coldest.get("species")), haven_ratio=float(coldest.get("haven_ratio") or 1.0),
        )
        prefactor = sigma
    else:
        logger.warning("no carrier density in the results: σ at %g K is not extrapolated", target_temperature_k)
    fit = fit_arrhenius(
        [r["temperature_k"] for r in used], [r["D_cm2_s"] for r in used],
        [r["D_stderr_cm2_s"] for r in used], sigma_prefactor_S_K_s_cm3=prefactor,
        target_temperature_k=target_temperature_k,
    )
    if not exclude_flagged and any(st["status"] != "fitted" for st in statuses):
        fit.warnings.append("flagged points (network flow / not diffusive) were fitted on request: trends only")
    return replace(fit, points_status=statuses)
