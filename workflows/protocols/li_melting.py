"""Warn before MD melts a Li-metal electrode: Li melts at 453.7 K (180.5 °C).

A Li/LiPON cell run at 500–600 K to speed up Li diffusion in the glass turns its Li electrode into a liquid
(and a machine-learned potential may not notice). :func:`check_li_melting` is the one check; call it wherever
MD temperatures are known — ``tfbsim build interface --quench-on-substrate`` does so for every MD stage of
the quench (:mod:`tfbsim.workflows.protocols.interface_quench`), and an MD driver should do so before a run on any
structure that has region labels.

A region counts as Li metal when all its atoms are Li (``arrays["region"]``; a structure without regions is
checked as a whole). Fixed atoms (``arrays["fixed"]``) cannot melt, so a region whose atoms are all fixed is
reported at INFO level only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from ase import Atoms

__all__ = ["LI_MELTING_K", "LI_WARNING_K", "li_metal_regions", "check_li_melting"]

logger = logging.getLogger(__name__)

#: Melting point of Li metal (K), 180.5 °C (CRC Handbook of Chemistry and Physics).
LI_MELTING_K = 453.7
#: MD temperatures above this (K) get a warning when a mobile Li-metal region is present (23 K margin for
#: the thermostat's fluctuations and the potential's error on the melting point).
LI_WARNING_K = 430.0


def li_metal_regions(atoms: Atoms) -> dict[str, dict[str, int]]:
    """Regions made only of Li: ``{region: {"n_atoms": ..., "n_mobile": ...}}`` (``"all"`` without regions)."""
    symbols = np.array(atoms.get_chemical_symbols())
    fixed = np.asarray(atoms.arrays.get("fixed", np.zeros(len(atoms), dtype=bool)), dtype=bool)
    if "region" in atoms.arrays:
        regions = np.asarray(atoms.arrays["region"]).astype(str)
    else:
        regions = np.full(len(atoms), "all")
    out: dict[str, dict[str, int]] = {}
    for region in dict.fromkeys(regions.tolist()):
        mask = regions == region
        if mask.sum() >= 2 and np.all(symbols[mask] == "Li"):
            out[str(region)] = {"n_atoms": int(mask.sum()), "n_mobile": int((mask & ~fixed).sum())}
    return out


def check_li_melting(atoms: Atoms, temperatures_k: float | Iterable[float], *, context: str = "MD") -> str | None:
    """Warn when MD above :data:`LI_WARNING_K` (430 K) is requested on a structure with mobile Li metal.

    Parameters
    ----------
    atoms
        The structure the MD will run on (``region`` and ``fixed`` arrays are used if present).
    temperatures_k
        Every target temperature of the run (K), e.g. the melt, anneal and final temperatures.
    context
        Name of the run in the message (e.g. ``"melt-quench stage melt"``).

    Returns
    -------
    str or None
        The warning (also logged at WARNING level), or ``None`` when there is nothing to warn about.
    """
    temps = [float(temperatures_k)] if np.isscalar(temperatures_k) else [float(t) for t in temperatures_k]
    if not temps:
        return None
    hottest = max(temps)
    if hottest <= LI_WARNING_K:
        return None
    regions = li_metal_regions(atoms)
    mobile = {r: v for r, v in regions.items() if v["n_mobile"] > 0}
    if not mobile:
        if regions:
            logger.info("%s at %.0f K: Li-metal region(s) %s are fixed and cannot melt", context, hottest,
                        ", ".join(regions))
        return None
    names = ", ".join(f"{r} ({v['n_mobile']} mobile Li)" for r, v in mobile.items())
    message = (
        f"{context} at {hottest:.0f} K with Li metal present ({names}): Li melts at {LI_MELTING_K} K, so above "
        f"{LI_WARNING_K:.0f} K the electrode becomes liquid; stay below {LI_WARNING_K:.0f} K, or fix the Li "
        "region (arrays['fixed']) for the hot stages"
    )
    logger.warning(message)
    return message
