"""Formula parsing, per-P normalisation, charge balance and integer counts of LiPON compositions."""

from __future__ import annotations

import itertools

import pytest

from tfbsim.errors import StructureError
from tfbsim.structures.composition import (
    FORMAL_CHARGE,
    charge_per_p,
    check_charge,
    format_formula,
    integer_counts,
    minimum_atoms,
    normalise_per_p,
    parse_formula,
)

FORMULAS = ["Li2.94PO3.50N0.31", "Li3.3PO3.9N0.17", "Li3PO4", "Li2PO2N", "LiPO3", "Li2.6PO3.2N0.4"]


def test_parse_formula_decimals_and_implicit_ones():
    assert parse_formula("Li2.94PO3.50N0.31") == pytest.approx({"Li": 2.94, "P": 1.0, "O": 3.5, "N": 0.31})
    assert parse_formula("Li2PO2N") == {"Li": 2.0, "P": 1.0, "O": 2.0, "N": 1.0}
    assert parse_formula(" Li3 P O4 ") == {"Li": 3.0, "P": 1.0, "O": 4.0}
    assert parse_formula("LiPO3Li2") == {"Li": 3.0, "P": 1.0, "O": 3.0}  # repeated elements add up


@pytest.mark.parametrize(
    ("formula", "fragment"),
    [
        ("Xx2PO4", "unknown element 'Xx'"),
        ("Li3po4", "unknown element"),
        ("Li-1PO4", "not positive"),
        ("Li0PO4", "not positive"),
        ("Li3P(O4)", "cannot read"),
        ("", "empty formula"),
    ],
)
def test_parse_formula_rejects_bad_input(formula, fragment):
    with pytest.raises(StructureError, match=fragment.replace("(", r"\(")):
        parse_formula(formula)


def test_normalise_per_p_and_errors():
    assert normalise_per_p("Li5.88P2O7N0.62") == pytest.approx({"Li": 2.94, "P": 1, "O": 3.5, "N": 0.31})
    assert normalise_per_p("Li3PO4")["N"] == 0.0
    with pytest.raises(StructureError, match="has no P"):
        normalise_per_p("Li2O")
    with pytest.raises(StructureError, match="S not supported"):
        normalise_per_p("Li3PO3S")


def test_charge_per_p_hand_computed():
    # x + 5 - 2y - 3z
    assert charge_per_p("Li2.64PO2.81N0.33") == pytest.approx(2.64 + 5 - 2 * 2.81 - 3 * 0.33)
    assert charge_per_p("Li2.64PO2.81N0.33") == pytest.approx(1.03)
    assert charge_per_p("Li3PO4") == pytest.approx(0.0)
    assert charge_per_p("Li2PO2N") == pytest.approx(0.0)
    assert abs(charge_per_p("Li2.94PO3.50N0.31")) <= 0.05


def test_charge_check_message_and_override():
    with pytest.raises(StructureError, match=r"\+1\.03 e per P") as err:
        check_charge("Li2.64PO2.81N0.33")
    assert "--allow-charged" in str(err.value)
    assert check_charge("Li2.64PO2.81N0.33", allow_charged=True) == pytest.approx(1.03)
    with pytest.raises(StructureError, match="not charge balanced"):
        integer_counts("Li2.64PO2.81N0.33", 200)


def _reference_best_error(per_p: dict, n_p: int) -> float:
    """Brute force: smallest sum |count - target| over all neutral integer (Li, O, N) near the target."""
    best = float("inf")
    target = {el: per_p[el] * n_p for el in per_p}
    o_range = range(max(0, int(target["O"]) - 4), int(target["O"]) + 5)
    n_range = range(max(0, int(target["N"]) - 4), int(target["N"]) + 5) if target["N"] else [0]
    for n_o, n_n in itertools.product(o_range, n_range):
        n_li = 2 * n_o + 3 * n_n - 5 * n_p
        if n_li < 0:
            continue
        err = abs(n_li - target["Li"]) + abs(n_o - target["O"]) + abs(n_n - target["N"])
        if target["N"] >= 0.5 and n_n == 0:
            err += 1.0
        best = min(best, err)
    return best


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("n_atoms", [60, 200, 500])
def test_integer_counts_neutral_and_closest(formula, n_atoms):
    result = integer_counts(formula, n_atoms)
    counts = result.counts
    assert sum(FORMAL_CHARGE[el] * n for el, n in counts.items()) == 0  # exact formal charge balance
    assert result.charge_total_e == 0
    per_p = normalise_per_p(formula)
    atoms_per_p = sum(per_p.values())
    assert abs(result.n_atoms - n_atoms) <= atoms_per_p  # one formula unit at most
    own_error = sum(abs(counts[el] - per_p[el] * counts["P"]) for el in ("Li", "O", "N"))
    assert own_error == pytest.approx(_reference_best_error(per_p, counts["P"]))
    for el in ("Li", "P", "O", "N"):
        assert result.achieved_per_p[el] == pytest.approx(counts[el] / counts["P"])
    assert result.target_formula == format_formula(per_p)


def test_integer_counts_exact_for_whole_formula_units():
    r = integer_counts("Li3PO4", 200)
    assert r.counts == {"Li": 75, "P": 25, "O": 100, "N": 0}
    assert r.achieved_formula == "Li3PO4"
    r = integer_counts("Li2PO2N", 300)
    assert r.counts == {"Li": 100, "P": 50, "O": 100, "N": 50}
    assert r.max_deviation_per_p == 0.0
    r = integer_counts("Li2.94PO3.50N0.31", 500)
    assert r.max_deviation_per_p < 0.02
    assert r.target_formula == "Li2.94PO3.5N0.31"


def test_integer_counts_charged_formula_rounds_per_element():
    r = integer_counts("Li2.64PO2.81N0.33", 200, allow_charged=True)
    assert r.charge_total_e == sum(FORMAL_CHARGE[el] * n for el, n in r.counts.items())
    assert r.charge_total_e > 0


def test_too_few_atoms_names_the_minimum():
    assert minimum_atoms("Li3PO4") == 8
    with pytest.raises(StructureError, match="at least 8 atoms"):
        integer_counts("Li3PO4", 7)
    assert integer_counts("Li3PO4", 8).counts == {"Li": 3, "P": 1, "O": 4, "N": 0}
