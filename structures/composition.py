"""Chemical formulas of LiPON-type glasses: parsing, per-P normalisation, integer counts, charge balance.

A LiPON composition is written per phosphorus, ``LixPOyNz`` (e.g. ``Li2.94PO3.50N0.31``, ``Li3PO4``,
``Li2PO2N``). Formal charges Li⁺, P⁵⁺, O²⁻, N³⁻ give the charge per P ``x + 5 − 2y − 3z``; a glass formula
should be neutral within :data:`CHARGE_TOLERANCE_E` (0.05 e per P).

:func:`integer_counts` turns a formula and a target atom count into whole numbers of atoms that are exactly
charge neutral (when the formula is) and as close as possible to the formula, and reports the achieved
formula next to the target one.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import StructureError

__all__ = [
    "FORMAL_CHARGE",
    "CHARGE_TOLERANCE_E",
    "LIPON_ELEMENTS",
    "parse_formula",
    "normalise_per_p",
    "charge_per_p",
    "check_charge",
    "format_formula",
    "integer_counts",
    "CompositionCounts",
    "minimum_atoms",
]

logger = logging.getLogger(__name__)

#: Formal oxidation states used for the charge balance of LiPON glasses.
FORMAL_CHARGE: dict[str, int] = {"Li": 1, "P": 5, "O": -2, "N": -3}
#: Largest accepted |formal charge| per P (e) of a "neutral" formula.
CHARGE_TOLERANCE_E = 0.05
#: Elements of the LiPON family, in the order formulas are written.
LIPON_ELEMENTS: tuple[str, ...] = ("Li", "P", "O", "N")

_TOKEN = re.compile(r"([A-Z][a-z]?)((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)?")
_BAD_AMOUNT = re.compile(r"([A-Z][a-z]?)\s*([-+]\s*\d*\.?\d*)")


def _known_elements() -> set[str]:
    from ase.data import chemical_symbols

    return set(chemical_symbols[1:])


def parse_formula(formula: str) -> dict[str, float]:
    """Parse a chemical formula with decimal amounts into ``{element: amount}``.

    Parameters
    ----------
    formula
        E.g. ``"Li2.94PO3.50N0.31"``, ``"Li3PO4"``, ``"Li2PO2N"``. A missing amount means 1; repeated
        elements are summed. Whitespace is ignored.

    Returns
    -------
    dict
        Amounts in the order of first appearance.

    Raises
    ------
    StructureError
        Empty formula, characters that are not element symbols and numbers, unknown element symbols, or
        amounts that are zero or negative.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise StructureError("empty formula; give one such as Li2.94PO3.50N0.31")
    text = re.sub(r"\s+", "", formula)
    bad = _BAD_AMOUNT.search(text)
    if bad:
        raise StructureError(
            f"formula {formula!r}: amount {bad.group(2)!r} of {bad.group(1)} is not positive; "
            "every amount must be > 0 (leave an element out instead of giving it 0)"
        )
    known = _known_elements()
    out: dict[str, float] = {}
    pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() != pos:
            break
        pos = match.end()
        symbol, amount_text = match.group(1), match.group(2)
        if symbol not in known:
            raise StructureError(
                f"formula {formula!r}: unknown element {symbol!r}; element symbols start with a capital "
                "letter (e.g. Li, P, O, N)"
            )
        amount = 1.0 if amount_text is None else float(amount_text)
        if not math.isfinite(amount) or amount <= 0:
            raise StructureError(
                f"formula {formula!r}: amount {amount_text!r} of {symbol} is not positive; every amount must "
                "be > 0 (leave an element out instead of giving it 0)"
            )
        out[symbol] = out.get(symbol, 0.0) + amount
    if pos != len(text):
        rest = text[pos:]
        if re.match(r"[a-z]", rest):
            raise StructureError(
                f"formula {formula!r}: unknown element {rest[:2]!r}; element symbols start with a capital "
                "letter (e.g. Li, P, O, N)"
            )
        raise StructureError(
            f"formula {formula!r}: cannot read {rest!r}; write element symbols followed by positive amounts, "
            "e.g. Li2.94PO3.50N0.31"
        )
    return out


def _as_amounts(composition: str | Mapping[str, float]) -> dict[str, float]:
    if isinstance(composition, str):
        return parse_formula(composition)
    amounts = {str(k): float(v) for k, v in composition.items()}
    known = _known_elements()
    for symbol, value in amounts.items():
        if symbol not in known:
            raise StructureError(f"unknown element {symbol!r} in composition {amounts}")
        if not math.isfinite(value) or value < 0:
            raise StructureError(f"amount of {symbol} must be >= 0, got {value}")
    return {symbol: value for symbol, value in amounts.items() if value > 0}


def normalise_per_p(composition: str | Mapping[str, float], *, elements: tuple[str, ...] | None = None) -> dict[str, float]:
    """Amounts per phosphorus atom, ``{"Li": x, "P": 1, "O": y, "N": z}`` (absent elements → 0).

    Parameters
    ----------
    composition
        Formula string or ``{element: amount}``.
    elements
        Allowed elements (default: :data:`LIPON_ELEMENTS`); others raise.

    Raises
    ------
    StructureError
        No phosphorus, or an element outside ``elements``.
    """
    allowed = LIPON_ELEMENTS if elements is None else elements
    amounts = _as_amounts(composition)
    extra = [el for el in amounts if el not in allowed]
    if extra:
        raise StructureError(
            f"composition {format_formula(amounts)}: element(s) {', '.join(extra)} not supported here; a LiPON "
            f"glass contains only {', '.join(allowed)}"
        )
    p = amounts.get("P", 0.0)
    if p <= 0:
        raise StructureError(
            f"composition {format_formula(amounts)} has no P; LiPON formulas are written per phosphorus "
            "(LixPOyNz, e.g. Li2.94PO3.50N0.31)"
        )
    return {el: amounts.get(el, 0.0) / p for el in allowed}


def charge_per_p(composition: str | Mapping[str, float]) -> float:
    """Formal charge per P (e) with Li⁺, P⁵⁺, O²⁻, N³⁻: ``x + 5 − 2y − 3z``."""
    per_p = normalise_per_p(composition)
    return float(sum(FORMAL_CHARGE[el] * per_p[el] for el in LIPON_ELEMENTS))


def check_charge(composition: str | Mapping[str, float], *, allow_charged: bool = False) -> float:
    """Return the formal charge per P, raising when it exceeds :data:`CHARGE_TOLERANCE_E` (unless allowed).

    Raises
    ------
    StructureError
        ``|charge| > 0.05 e/P`` and not ``allow_charged``; the message gives the imbalance and how to fix it.
    """
    q = charge_per_p(composition)
    if abs(q) > CHARGE_TOLERANCE_E and not allow_charged:
        per_p = normalise_per_p(composition)
        fix_li = per_p["Li"] - q
        hint = (
            f"e.g. Li{_num(fix_li)}PO{_num(per_p['O'])}" + (f"N{_num(per_p['N'])}" if per_p["N"] else "")
            if fix_li > 0
            else "add O or N, or remove Li"
        )
        raise StructureError(
            f"composition {format_formula(per_p)} is not charge balanced: formal charge {q:+.2f} e per P "
            f"(Li+ P5+ O2- N3-; x + 5 - 2y - 3z must be within ±{CHARGE_TOLERANCE_E}). Correct the formula "
            f"({hint}) or pass allow_charged=True / --allow-charged to build it anyway"
        )
    return q


def _num(value: float, digits: int = 2) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def format_formula(amounts: Mapping[str, float], *, digits: int = 2, order: tuple[str, ...] = LIPON_ELEMENTS) -> str:
    """Write ``{element: amount}`` as a formula (``Li2.94PO3.5N0.31``); amounts of 1 and 0 are left out."""
    keys = [el for el in order if el in amounts] + [el for el in amounts if el not in order]
    parts = []
    for el in keys:
        value = float(amounts[el])
        text = _num(value, digits)
        if text == "0":
            continue
        parts.append(el if text == "1" else f"{el}{text}")
    return "".join(parts)


def minimum_atoms(composition: str | Mapping[str, float]) -> int:
    """Fewest atoms of a box holding one P with its share of Li, O and N (rounded up)."""
    per_p = normalise_per_p(composition)
    return max(int(math.ceil(sum(per_p.values()) - 1e-9)), 2)


@dataclass(frozen=True)
class CompositionCounts:
    """Integer atom counts for a target composition (result of :func:`integer_counts`).

    Attributes
    ----------
    counts
        ``{"Li": n, "P": n, "O": n, "N": n}`` (whole atoms).
    n_atoms
        Total number of atoms (may differ slightly from the requested count: see ``n_atoms_requested``).
    n_atoms_requested
        The count that was asked for.
    target_per_p, achieved_per_p
        Amounts per P of the target formula and of the integer counts.
    target_formula, achieved_formula
        The same as formulas (``Li2.94PO3.5N0.31``).
    charge_per_p_target
        Formal charge per P of the target formula (e).
    charge_total_e
        Formal charge of the integer counts (e); 0 unless the target is charged.
    max_deviation_per_p
        Largest |achieved − target| amount per P over the elements.
    """

    counts: dict[str, int]
    n_atoms: int
    n_atoms_requested: int
    target_per_p: dict[str, float]
    achieved_per_p: dict[str, float]
    target_formula: str
    achieved_formula: str
    charge_per_p_target: float
    charge_total_e: int
    max_deviation_per_p: float
    notes: list[str] = field(default_factory=list)

    @property
    def n_p(self) -> int:
        """Number of P atoms."""
        return self.counts["P"]

    def as_dict(self) -> dict:
        """Plain-JSON view."""
        return {
            "counts": dict(self.counts),
            "n_atoms": self.n_atoms,
            "n_atoms_requested": self.n_atoms_requested,
            "target_formula": self.target_formula,
            "achieved_formula": self.achieved_formula,
            "target_per_p": dict(self.target_per_p),
            "achieved_per_p": dict(self.achieved_per_p),
            "charge_per_p_target": self.charge_per_p_target,
            "charge_total_e": self.charge_total_e,
            "max_deviation_per_p": self.max_deviation_per_p,
        }


def _best_counts_for(n_p: int, per_p: dict[str, float], neutral: bool) -> tuple[float, dict[str, int]] | None:
    """Closest integer counts for ``n_p`` P atoms; exactly neutral when ``neutral``.

    Score: sum over Li, O, N of |count − target count| (atoms), ties broken towards the smaller total
    deviation of the charge-determining Li count.
    """
    target = {el: per_p[el] * n_p for el in LIPON_ELEMENTS}
    if not neutral:
        counts = {el: int(round(target[el])) for el in LIPON_ELEMENTS}
        counts["P"] = n_p
        score = sum(abs(counts[el] - target[el]) for el in ("Li", "O", "N"))
        return score, counts
    best: tuple[tuple, dict[str, int]] | None = None

    def span(value: float) -> range:
        if value == 0:
            return range(0, 1)  # an element absent from the formula stays absent
        lo = max(int(math.floor(value)) - 2, 0)
        return range(lo, int(math.ceil(value)) + 3)

    for n_n in span(target["N"]):
        for n_o in span(target["O"]):
            n_li = 2 * n_o + 3 * n_n - 5 * n_p
            if n_li < 0 or (target["Li"] == 0 and n_li != 0):
                continue
            score = abs(n_li - target["Li"]) + abs(n_o - target["O"]) + abs(n_n - target["N"])
            # keep an element that the formula has (e.g. a little N) whenever the box can hold one
            if target["N"] >= 0.5 and n_n == 0:
                score += 1.0
            key = (round(score, 9), round(abs(n_n - target["N"]), 9), n_o, n_n)
            if best is None or key < best[0]:
                best = (key, {"Li": n_li, "P": n_p, "O": n_o, "N": n_n})
    return None if best is None else (best[0][0], best[1])


def integer_counts(
    composition: str | Mapping[str, float],
    n_atoms: int,
    *,
    allow_charged: bool = False,
) -> CompositionCounts:
    """Whole numbers of Li, P, O, N atoms for about ``n_atoms`` atoms of a LixPOyNz glass.

    The number of P is chosen among ⌊n/atoms-per-P⌋ and ⌈n/atoms-per-P⌉ (at least one); for each, O and N
    are rounded to neighbouring integers and Li follows from exact formal charge balance (Li⁺ P⁵⁺ O²⁻ N³⁻),
    keeping the counts closest to the formula (sum of |count − target| in atoms). The candidate with the
    smaller per-P deviation wins, ties going to the total closest to ``n_atoms``. A charged formula (only
    with ``allow_charged``) is rounded element by element instead.

    Parameters
    ----------
    composition
        Formula such as ``"Li2.94PO3.50N0.31"`` or ``{element: amount}``.
    n_atoms
        Target number of atoms.
    allow_charged
        Accept a formula whose formal charge exceeds 0.05 e per P.

    Raises
    ------
    StructureError
        Bad formula, charge imbalance, or ``n_atoms`` below :func:`minimum_atoms`.
    """
    per_p = normalise_per_p(composition)
    q = check_charge(per_p, allow_charged=allow_charged)
    neutral = abs(q) <= CHARGE_TOLERANCE_E
    n_min = minimum_atoms(per_p)
    if not isinstance(n_atoms, (int,)) or isinstance(n_atoms, bool):
        try:
            n_atoms = int(n_atoms)
        except (TypeError, ValueError):
            raise StructureError(f"number of atoms must be an integer, got {n_atoms!r}") from None
    if n_atoms < n_min:
        raise StructureError(
            f"{n_atoms} atoms is too few for {format_formula(per_p)}: one P with its Li, O and N needs at least "
            f"{n_min} atoms (ask for ≥ {n_min}; a glass model needs a few hundred)"
        )
    atoms_per_p = sum(per_p.values())
    ideal = n_atoms / atoms_per_p
    candidates = sorted({max(1, int(math.floor(ideal))), max(1, int(math.ceil(ideal)))})
    best = None
    for n_p in candidates:
        found = _best_counts_for(n_p, per_p, neutral)
        if found is None:
            continue
        _, counts = found
        deviation = max(abs(counts[el] / n_p - per_p[el]) for el in LIPON_ELEMENTS)
        key = (round(deviation, 9), abs(sum(counts.values()) - n_atoms))
        if best is None or key < best[0]:
            best = (key, counts, deviation)
    if best is None:  # pragma: no cover - a neutral formula always has a solution
        raise StructureError(f"no charge-balanced integer counts for {format_formula(per_p)} near {n_atoms} atoms")
    _, counts, deviation = best
    n_p = counts["P"]
    achieved = {el: counts[el] / n_p for el in LIPON_ELEMENTS}
    charge = sum(FORMAL_CHARGE[el] * counts[el] for el in LIPON_ELEMENTS)
    notes = []
    for el in ("N", "O", "Li"):
        if per_p[el] > 0 and counts[el] == 0:
            notes.append(f"the box is too small to hold any {el} (target {per_p[el]:.2f} per P); use more atoms")
    if deviation > 0.1:
        notes.append(
            f"integer counts deviate by up to {deviation:.2f} per P from {format_formula(per_p)}; use more atoms "
            "for a closer composition"
        )
    for note in notes:
        logger.warning(note)
    return CompositionCounts(
        counts=counts,
        n_atoms=int(sum(counts.values())),
        n_atoms_requested=int(n_atoms),
        target_per_p=per_p,
        achieved_per_p=achieved,
        target_formula=format_formula(per_p),
        achieved_formula=format_formula(achieved),
        charge_per_p_target=q,
        charge_total_e=int(charge),
        max_deviation_per_p=float(deviation),
        notes=notes,
    )
