"""Literature and crystal references for LiPON structure, and the measured-vs-reference comparison table.

Every row of :data:`STRUCTURE_REFERENCES` names its source and how the number was obtained (``status``):

- ``verified``: stated in a source we could read (the seed-review extraction in the project's research notes
  ``research/seeds-lipon.md`` / ``research/anchors.md``, or an abstract found with a literature search);
- ``crystal``: computed by tfbsim from the cited crystal structure in :mod:`tfbsim.structures.crystals`
  (mean first-shell distance / coordination number; reproducible with :func:`tfbsim.analysis.neighbours.bonds`);
- ``recalled``: a textbook or literature value from memory, **not checked against the paper** - treat as a
  rough guide until someone reads the primary source;
- DOIs carry their own flag (``doi_status``): ``recalled`` DOIs were not looked up.

The seed reviews give no numeric RDF/PDF peak positions, bond lengths, coordination numbers or Nd/Na
fractions for amorphous LiPON (``research/seeds-lipon.md``, "Important gaps"), so those rows are crystal or
recalled values; a glass is expected to come close to the crystal bond lengths (within ~0.05 Å) and to the
tetrahedral P coordination, not to match them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["STRUCTURE_REFERENCES", "reference_rows", "compare_structure", "nd_na_trend"]

_LACIVITA_2018 = ("Lacivita et al., J. Am. Chem. Soc. 140, 11029 (2018), "
                  "'Resolving the Amorphous Structure of Lipon'")
_LACIVITA_2019 = ("Lacivita et al., Chem. Mater., pp. 2730-2739 (2019, year inferred), "
                  "'Medium-range ordering in ionic glass electrolytes LiPON and LiSiPON'")
_WANG_1995 = ("Wang, Chakoumakos, Sales, Kwak & Bates, J. Solid State Chem. 115, 313 (1995) "
              "(gamma-Li3PO4, neutron Rietveld)")
_SENEVIRATHNE_2013 = "Senevirathne et al., Solid State Ionics 233, 95 (2013) (SD-Li2PO2N)"
_YOU_2021 = "You et al., Acta Phys. Sin. 70, 136801 (2021), via Dai et al. 2022 review (seed 001)"

#: Reference values. ``key`` links a row to a measured quantity (see :func:`compare_structure`).
STRUCTURE_REFERENCES: tuple[dict[str, Any], ...] = (
    {"key": "d_P-O_ang", "quantity": "P-O bond length", "system": "gamma-Li3PO4 crystal (PO4 tetrahedra)",
     "value": 1.540, "unit": "Å", "method": "crystal structure, mean of 4 P-O bonds (1.534-1.547 Å)",
     "source": _WANG_1995, "doi": "10.1006/jssc.1995.1140", "doi_status": "recalled", "status": "crystal"},
    {"key": "d_P-O_ang", "quantity": "P-O bond length", "system": "amorphous LiPON / phosphate glasses",
     "value": 1.54, "unit": "Å", "method": "neutron PDF first peak (typical for PO4 units)",
     "source": "general phosphate-glass literature", "doi": None, "doi_status": None, "status": "recalled"},
    {"key": "d_P-N_ang", "quantity": "P-N bond length (bridging N)", "system": "SD-Li2PO2N crystal (P-N-P chains)",
     "value": 1.619, "unit": "Å", "method": "crystal structure, mean P-N", "source": _SENEVIRATHNE_2013,
     "doi": "10.1016/j.ssi.2012.12.010", "doi_status": "recalled", "status": "crystal"},
    {"key": "d_Li-O_ang", "quantity": "Li-O distance", "system": "gamma-Li3PO4 crystal (LiO4 tetrahedra)",
     "value": 1.965, "unit": "Å", "method": "crystal structure, mean first-shell Li-O (1.913-2.043 Å)",
     "source": _WANG_1995, "doi": "10.1006/jssc.1995.1140", "doi_status": "recalled", "status": "crystal"},
    {"key": "cn_P-O+N", "quantity": "P coordination by O + N",
     "system": "gamma-Li3PO4, SD-Li2PO2N crystals; LiPON", "value": 4.0, "unit": "",
     "method": "crystal structures; LiPON built of phosphate tetrahedra (PO4, PO3N, PO2N2)",
     "source": f"{_WANG_1995}; {_LACIVITA_2018}", "doi": "10.1021/jacs.8b05192", "doi_status": "recalled",
     "status": "crystal"},
    {"key": "cn_Li-O+N", "quantity": "Li coordination by O + N", "system": "gamma-Li3PO4 crystal",
     "value": 4.0, "unit": "", "method": "crystal structure (LiO4)", "source": _WANG_1995,
     "doi": "10.1006/jssc.1995.1140", "doi_status": "recalled", "status": "crystal"},
    {"key": "li_tetrahedral_fraction", "quantity": "fraction of Li in tetrahedral Li[O4]/Li[O3N]/Li[O2N2]",
     "system": "bulk amorphous LiPON (AIMD)", "value": 0.20, "unit": "", "method": "AIMD ('about 20 %')",
     "source": _YOU_2021, "doi": None, "doi_status": None, "status": "verified"},
    {"key": "G_first_peak_ang", "quantity": "first peak of neutron G(r) (P-O)", "system": "sputtered LiPON",
     "value": 1.54, "unit": "Å", "method": "neutron PDF; the first peak is the P-O bond",
     "source": _LACIVITA_2018, "doi": "10.1021/jacs.8b05192", "doi_status": "recalled", "status": "recalled"},
    {"key": "S_first_peak_inv_ang", "quantity": "sharp diffraction peaks in S(Q) (medium-range order)",
     "system": "Li-rich LiPON (neutron)", "value": None, "unit": "Å^-1",
     "method": "two sharp diffraction peaks reported; positions not retrieved", "source": _LACIVITA_2019,
     "doi": None, "doi_status": None, "status": "verified"},
    {"key": "Nt_fraction", "quantity": "Nt (N bonded to 3 P) fraction",
     "system": "amorphous Li2.94PO3.50N0.31 (AIMD + neutron PDF)",
     "value": 0.0, "unit": "", "method": "N found only as Nd (bridging) and Na (apical); no Nt",
     "source": _LACIVITA_2018, "doi": "10.1021/jacs.8b05192", "doi_status": "recalled", "status": "verified"},
    {"key": "nd_na_trend", "quantity": "Nd/Na vs Li content", "system": "LiPON (AIMD)", "value": "decreasing",
     "unit": "", "method": "more Li gives fewer bridging Nd and more apical Na; optimum Li:P = 2.9",
     "source": _LACIVITA_2018, "doi": "10.1021/jacs.8b05192", "doi_status": "recalled", "status": "verified"},
    {"key": "Nd_over_Na", "quantity": "Nd/Na ratio", "system": "amorphous Li2.94PO3.50N0.31", "value": None,
     "unit": "", "method": "numeric fractions not given in the sources read (seed reviews, abstracts)",
     "source": _LACIVITA_2018, "doi": "10.1021/jacs.8b05192", "doi_status": "recalled", "status": "verified"},
    {"key": "angle_O-P-O_deg", "quantity": "O-P-O angle", "system": "regular PO4 tetrahedron", "value": 109.47,
     "unit": "deg", "method": "geometry, arccos(-1/3)", "source": "ideal tetrahedron", "doi": None,
     "doi_status": None, "status": "crystal"},
    {"key": "angle_P-N-P_deg", "quantity": "P-N-P angle", "system": "SD-Li2PO2N crystal", "value": 124.9,
     "unit": "deg", "method": "crystal structure", "source": _SENEVIRATHNE_2013,
     "doi": "10.1016/j.ssi.2012.12.010",
     "doi_status": "recalled", "status": "crystal"},
)


def reference_rows(key: str | None = None) -> list[dict[str, Any]]:
    """Copies of the rows of :data:`STRUCTURE_REFERENCES` (those with ``key`` when given)."""
    return [dict(row) for row in STRUCTURE_REFERENCES if key is None or row["key"] == key]


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def _measured(scattering: Any, angles: Any, speciation: Mapping[str, float] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scattering is not None:
        peaks, cn = _get(scattering, "peaks", {}) or {}, _get(scattering, "cn", {}) or {}
        for pair in ("P-O", "P-N", "Li-O"):
            out[f"d_{pair}_ang"] = peaks.get(f"g_{pair}_first_peak_ang")
        out["G_first_peak_ang"] = peaks.get("G_neutron_first_peak_ang")
        out["S_first_peak_inv_ang"] = peaks.get("S_neutron_first_peak_inv_ang")

        def cn_sum(centre: str, ligands: Sequence[str]) -> float | None:
            values = [cn.get(f"{centre}-{el}") for el in ligands if f"{centre}-{el}" in cn]
            values = [v for v in values if v is not None and math.isfinite(v)]
            return float(sum(values)) if values else None

        out["cn_P-O+N"] = cn_sum("P", ("O", "N"))
        out["cn_Li-O+N"] = cn_sum("Li", ("O", "N"))
    if angles is not None:
        mode = _get(angles, "mode_deg", {}) or {}
        mean = _get(angles, "mean_deg", {}) or {}
        out["angle_O-P-O_deg"] = mean.get("O-P-O")
        out["angle_P-N-P_deg"] = mode.get("P-N-P")
    if speciation is not None:
        nd, na = speciation.get("Nd"), speciation.get("Na")
        out["Nt_fraction"] = speciation.get("Nt")
        if nd is not None and na:
            out["Nd_over_Na"] = float(nd) / float(na)
    return {k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v)
            for k, v in out.items()}


def compare_structure(scattering: Any = None, angles: Any = None,
                      speciation: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """The comparison table: each reference row with the measured value next to it.

    Parameters
    ----------
    scattering
        :class:`~tfbsim.analysis.scattering.ScatteringResults` or its ``to_dict()`` (bond lengths from the first
        peaks of g_PO, g_PN, g_LiO; CNs; first G(r) and S(Q) peaks).
    angles
        :class:`~tfbsim.analysis.bond_angles.BondAngleResults` or its dict (O-P-O mean, P-N-P mode).
    speciation
        Mean N fractions, e.g. ``Coordination(...).results.mean`` (``Nd``, ``Na``, ``Nt``).

    Returns
    -------
    list of dict
        Rows ``quantity, system, measured, reference, unit, difference, status, source, doi, doi_status,
        method``; ``difference`` = measured - reference where both are numbers, else None.
    """
    measured = _measured(scattering, angles, speciation)
    rows = []
    for ref in STRUCTURE_REFERENCES:
        if ref["key"] == "nd_na_trend":
            continue  # needs several compositions: nd_na_trend()
        m = measured.get(ref["key"])
        numeric = isinstance(ref["value"], (int, float)) and m is not None
        rows.append({
            "quantity": ref["quantity"], "system": ref["system"], "measured": m, "reference": ref["value"],
            "unit": ref["unit"], "difference": (float(m) - float(ref["value"])) if numeric else None,
            "status": ref["status"], "source": ref["source"], "doi": ref["doi"], "doi_status": ref["doi_status"],
            "method": ref["method"],
        })
    return rows


def nd_na_trend(li_per_p: Sequence[float], nd_over_na: Sequence[float]) -> dict[str, Any]:
    """Does Nd/Na fall with Li content, as Lacivita et al. (2018) report?

    Parameters
    ----------
    li_per_p
        Li/P ratio of each glass.
    nd_over_na
        Its measured Nd/Na ratio (same order).

    Returns
    -------
    dict
        ``slope`` (least-squares d(Nd/Na)/d(Li/P)), ``spearman`` (rank correlation), ``agrees`` (True when
        the slope is negative, None with fewer than two finite points) and the reference row's source.
    """
    x = np.asarray(li_per_p, dtype=float)
    y = np.asarray(nd_over_na, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    ref = reference_rows("nd_na_trend")[0]
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": None, "spearman": None, "agrees": None, "reference": ref["value"],
                "source": ref["source"]}
    slope = float(np.polyfit(x, y, 1)[0])
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    rho = float(np.corrcoef(rx, ry)[0, 1]) if np.ptp(ry) > 0 else 0.0
    return {"slope": slope, "spearman": rho, "agrees": bool(slope < 0), "reference": ref["value"],
            "source": ref["source"]}
