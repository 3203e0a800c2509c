"""N/P/O speciation of one structure in the nested form the build reports use.

``{"N": {Na, Nd, Nt, N0}, "P": {Q0..Q4, mean_cn, four_coordinated}, "O": {Onb, Ob, O0}}`` from the
coordination analysis' default bond cutoffs; used by ``tfbsim build lipon`` to report the speciation of the
box as built and after the quench.
"""

from __future__ import annotations

import math

from ase import Atoms

from .coordination import Coordination

__all__ = ["lipon_speciation"]


def lipon_speciation(atoms: Atoms, cutoffs: dict | None = None) -> dict[str, dict[str, float | None]]:
    """N, P and O speciation fractions of one structure (default bond cutoffs of the coordination analysis).

    Returns
    -------
    dict
        ``{"N": {Na, Nd, Nt, N0}, "P": {Q0..Q4, mean_cn, four_coordinated}, "O": {Onb, Ob, O0}}``;
        fractions of the N, P, O atoms (``None`` when the element is absent).
    """
    mean = Coordination(atoms, cutoffs=cutoffs).run().results.mean

    def val(key: str) -> float | None:
        value = float(mean[key])
        return None if math.isnan(value) else value

    four = None
    if val("P_undercoordinated") is not None:
        four = 1.0 - float(mean["P_undercoordinated"]) - float(mean["P_overcoordinated"])
    return {
        "N": {k: val(k) for k in ("Na", "Nd", "Nt", "N0")},
        "P": {**{f"Q{n}": val(f"Q{n}") for n in range(5)}, "mean_cn": val("P_mean_cn"), "four_coordinated": four},
        "O": {k: val(k) for k in ("Onb", "Ob", "O0")},
    }
