"""Scattering tables: neutron coherent scattering lengths and X-ray atomic form factors (with sources).

Neutrons
--------
Bound coherent scattering lengths ``b`` (fm) of the natural elements, from

    V. F. Sears, "Neutron scattering lengths and cross sections", Neutron News 3(3), 26-37 (1992),
    doi:10.1080/10448639208218770, as tabulated by NIST (https://www.ncnr.nist.gov/resources/n-lengths/).

The values were checked against the copy of the same table shipped by the ``periodictable`` package
(``periodictable/nsf.py``, "bound coherent scattering length"): Li -1.90(3), N 9.36(2), P 5.13(1), S 2.847(1),
Co 2.49(2) fm agree; for O that copy gives 5.805(4) fm, NIST/Sears 5.803 fm (the difference is far below any
effect on a G(r)).

X-rays
------
Atomic form factors of the neutral atoms from the Cromer–Mann analytic approximation

    f0(s) = sum_{i=1..4} a_i exp(-b_i s^2) + c,      s = sin(theta)/lambda = Q / (4 pi)  (Å^-1)

with the coefficients of International Tables for Crystallography Vol. C (ed. A. J. C. Wilson, Kluwer 1992),
Table 6.1.1.4 (pp. 500-502), a reprint of International Tables for X-ray Crystallography Vol. IV (1974),
Table 2.2B (D. T. Cromer & J. B. Mann). Valid for s <= 2 Å^-1 (Q <= 25 Å^-1). Checked against the
machine-readable copy of Table 6.1.1.4 in cctbx (``cctbx/eltbx/xray_scattering/it1992.cpp``). Anomalous
dispersion (f', f'') is neglected.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = [
    "NEUTRON_B_FM",
    "NEUTRON_SOURCE",
    "CROMER_MANN",
    "XRAY_SOURCE",
    "SUPPORTED_ELEMENTS",
    "xray_form_factor",
    "neutron_length_fm",
    "check_elements",
]

#: Bound coherent neutron scattering lengths (fm); natural isotopic abundance.
NEUTRON_B_FM: dict[str, float] = {
    "Li": -1.90,
    "N": 9.36,
    "O": 5.803,
    "P": 5.13,
    "S": 2.847,
    "Co": 2.49,
}
NEUTRON_SOURCE = (
    "V. F. Sears, Neutron News 3(3), 26-37 (1992), doi:10.1080/10448639208218770 (NIST table "
    "https://www.ncnr.nist.gov/resources/n-lengths/)"
)

#: Cromer–Mann coefficients (a1, a2, a3, a4, b1, b2, b3, b4, c) of the neutral atoms; b in Å^2.
CROMER_MANN: dict[str, tuple[float, ...]] = {
    "Li": (1.12820, 0.750800, 0.617500, 0.465300, 3.95460, 1.05240, 85.3905, 168.261, 0.037700),
    "N": (12.2126, 3.13220, 2.01250, 1.16630, 0.005700, 9.89330, 28.9975, 0.582600, -11.529),
    "O": (3.04850, 2.28680, 1.54630, 0.867000, 13.2771, 5.70110, 0.323900, 32.9089, 0.250800),
    "P": (6.43450, 4.17910, 1.78000, 1.49080, 1.90670, 27.1570, 0.526000, 68.1645, 1.11490),
    "S": (6.90530, 5.20340, 1.43790, 1.58630, 1.46790, 22.2151, 0.253600, 56.1720, 0.866900),
    "Co": (12.2841, 7.34090, 4.00340, 2.34880, 4.27910, 0.278400, 13.5359, 71.1692, 1.01180),
}
XRAY_SOURCE = (
    "Cromer-Mann coefficients, International Tables for Crystallography Vol. C (1992), Table 6.1.1.4 "
    "(= Int. Tables for X-ray Crystallography Vol. IV (1974), Table 2.2B); neutral atoms, no anomalous terms"
)

#: Elements both tables cover.
SUPPORTED_ELEMENTS: tuple[str, ...] = tuple(el for el in NEUTRON_B_FM if el in CROMER_MANN)


def check_elements(symbols) -> list[str]:
    """Sorted distinct elements of ``symbols``; raises when one is missing from the scattering tables.

    Raises
    ------
    ConfigError
        An element without a neutron scattering length or X-ray form factor in the tables (named, with the
        supported list).
    """
    elements = sorted(set(np.asarray(symbols).astype(str).tolist()))
    unknown = [el for el in elements if el not in SUPPORTED_ELEMENTS]
    if unknown:
        raise ConfigError(
            f"no scattering data for element(s) {', '.join(unknown)}: the neutron and X-ray tables cover "
            f"{', '.join(SUPPORTED_ELEMENTS)}; add the element to tfbsim/analysis/scattering_tables.py (Sears "
            "1992 length and Cromer-Mann coefficients) or remove those atoms"
        )
    return elements


def neutron_length_fm(element: str) -> float:
    """Bound coherent scattering length (fm) of ``element`` (see :data:`NEUTRON_B_FM`)."""
    check_elements([element])
    return NEUTRON_B_FM[element]


def xray_form_factor(element: str, q_inv_ang) -> np.ndarray:
    """X-ray atomic form factor f0(Q) (electrons) of the neutral atom, Cromer–Mann approximation.

    Parameters
    ----------
    element
        Chemical symbol (one of :data:`SUPPORTED_ELEMENTS`).
    q_inv_ang
        Momentum transfer Q = 4 pi sin(theta) / lambda (Å^-1); scalar or array.

    Returns
    -------
    numpy.ndarray
        f0(Q), same shape as ``q_inv_ang``; f0(0) is close to the atomic number.
    """
    check_elements([element])
    coef = CROMER_MANN[element]
    s2 = (np.asarray(q_inv_ang, dtype=float) / (4.0 * np.pi)) ** 2
    out = np.full_like(s2, coef[8])
    for a, b in zip(coef[:4], coef[4:8]):
        out = out + a * np.exp(-b * s2)
    return out
