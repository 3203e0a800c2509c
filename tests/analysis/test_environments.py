"""Local-environment classes with known answers: literature crystals, hand-built motifs, thresholds; the
profile helpers (periodic runs, gap filling, axis rules) and the growth-law fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms

from tfbsim.analysis.environments import (
    CLASS_DEFINITIONS,
    CLASS_ELEMENTS,
    CLASSES,
    PHASE_OF_CLASS,
    EnvironmentSettings,
    classify_environments,
)
from tfbsim.analysis.growth import fit_growth
from tfbsim.analysis.zprofile import (
    EMPTY,
    UNKNOWN,
    check_normal_axis,
    fill_states,
    fractional_height,
    n_bins_for,
    periodic_runs,
    run_gap,
)
from tfbsim.errors import AnalysisError, ConfigError, TrajectoryError
from tfbsim.structures.crystals import build_crystal

CRYSTAL_CLASSES = {
    "li": {"Li": "Li_metal"},
    "li2o": {"Li": "Li_ion", "O": "Li2O"},
    "li3n": {"Li": "Li_ion", "N": "Li3N"},
    "li3p": {"Li": "Li_ion", "P": "Li3P"},
    "li2s": {"Li": "Li_ion", "S": "Li2S"},
    "li3po4": {"Li": "Li_ion", "O": "phosphate_O", "P": "phosphate_P"},
    "li3po4-beta": {"Li": "Li_ion", "O": "phosphate_O", "P": "phosphate_P"},
    "li2po2n": {"Li": "Li_ion", "O": "phosphate_O", "N": "lipon_N", "P": "phosphate_P"},
    "licoo2": {"Li": "Li_ion", "O": "oxide_Co", "Co": "Co_oct"},
}


@pytest.mark.parametrize("name", sorted(CRYSTAL_CLASSES))
def test_crystals_have_one_class_per_element(name):
    atoms = build_crystal(name, supercell=(2, 2, 2))
    env = classify_environments(atoms)
    symbols = np.array(atoms.get_chemical_symbols())
    labels = env.label
    for element, cls in CRYSTAL_CLASSES[name].items():
        assert set(labels[symbols == element]) == {cls}, (name, element, set(labels[symbols == element]))
    if name == "li2po2n":  # SD-Li2PO2N: every N bridges two P
        assert set(env.subtype[symbols == "N"]) == {"Nd"}


def _motifs() -> tuple[Atoms, list[str]]:
    """Isolated motifs 9 Å apart in a 45 Å box, with the class of every atom."""
    parts: list[tuple[list[str], list[list[float]], list[str]]] = [
        (["N", "O", "O"], [[0, 0, 0], [1.25, 0, 0], [-0.6, 1.1, 0]], ["NO_x"] * 3),
        (["P", "P", "Li", "Li"], [[0, 0, 0], [2.2, 0, 0], [1.1, 2.4, 0], [1.1, -2.4, 0]],
         ["P_P", "P_P", "Li_ion", "Li_ion"]),
        (["P", "O", "O"], [[0, 0, 0], [1.55, 0, 0], [-0.5, 1.46, 0]], ["reduced_P", "phosphate_O", "phosphate_O"]),
        (["S", "S", "Li", "Li"], [[0, 0, 0], [2.05, 0, 0], [-2.4, 0, 0], [4.45, 0, 0]],
         ["polysulfide_S", "polysulfide_S", "Li_ion", "Li_ion"]),
        (["P", "S", "S", "S", "S"],
         [[0, 0, 0], [1.2, 1.2, 1.2], [-1.2, -1.2, 1.2], [-1.2, 1.2, -1.2], [1.2, -1.2, -1.2]],
         ["phosphate_P"] + ["thiophosphate_S"] * 4),
        (["Co", "O", "O", "O", "O"], [[0, 0, 0], [1.13, 1.13, 1.13], [-1.13, -1.13, 1.13], [-1.13, 1.13, -1.13],
                                      [1.13, -1.13, -1.13]], ["Co_reduced"] + ["oxide_Co"] * 4),
        (["O", "Li", "Li"], [[0, 0, 0], [1.9, 0, 0], [-1.9, 0, 0]], ["Li2O", "Li_ion", "Li_ion"]),
        (["P", "Li", "Li", "Li"], [[0, 0, 0], [2.5, 0, 0], [-1.25, 2.17, 0], [-1.25, -2.17, 0]],
         ["Li3P", "Li_ion", "Li_ion", "Li_ion"]),
        (["N", "Li"], [[0, 0, 0], [2.0, 0, 0]], ["N_other", "Li_ion"]),
        (["O"], [[0, 0, 0]], ["O_other"]),
        (["Ar"], [[0, 0, 0]], ["other"]),
    ]
    symbols, positions, expected = [], [], []
    for k, (sym, pos, cls) in enumerate(parts):
        origin = np.array([5.0 + 9.0 * (k % 4), 5.0 + 9.0 * ((k // 4) % 4), 5.0 + 9.0 * (k // 16)])
        symbols += sym
        positions += [origin + np.asarray(p, float) for p in pos]
        expected += cls
    return Atoms(symbols, positions=positions, cell=[45, 45, 45], pbc=True), expected


def test_hand_built_motifs():
    atoms, expected = _motifs()
    env = classify_environments(atoms)
    assert env.label.tolist() == expected
    assert env.subtype[atoms.get_chemical_symbols().index("P") + 0] == ""  # P_P carries no Qn subtype
    counts = env.counts()
    assert sum(counts.values()) == len(atoms) and counts["phosphate_O"] == 2


def test_thresholds_change_the_classes():
    atoms, expected = _motifs()
    strict = classify_environments(atoms, {"min_li_neighbours": 3})
    changed = {(e, s) for e, s in zip(expected, strict.label) if e != s}
    assert changed == {("Li2O", "O_other")}  # the O with two Li; Li3P's P has three
    no_no = classify_environments(atoms, cutoffs={"N-O": 1.0})
    assert no_no.label[0] == "N_other" and no_no.label[1] == "O_other"


def test_li_metal_rule_needs_anion_poor_li_neighbours():
    """A Li with one anion and four Li neighbours is metal only if those neighbours are anion-poor."""
    li = build_crystal("li", supercell=(3, 3, 3))
    env = classify_environments(li)
    assert set(env.label) == {"Li_metal"}
    centre = np.array([1.5, 1.5, 1.5]) * 3.51
    anion = Atoms("O", positions=[centre + [0, 0, 1.9]])
    one_o = li + anion  # one O on top of a metal atom: that Li has one anion (tolerated), its neighbours none
    env = classify_environments(one_o)
    assert (env.label == "Li_metal").sum() == len(li)
    # dress every Li of the lattice with anions: the same Li now has only ionic Li around it
    ionic = li.copy()
    for p in li.positions:
        ionic += Atoms("OO", positions=[p + [1.9, 0, 0], p + [0, 1.9, 0]])
    env = classify_environments(ionic)
    assert not (env.label == "Li_metal").any()


def test_settings_validation_and_tables():
    assert EnvironmentSettings().cutoffs_ang["Li-Li"] == 3.2
    assert EnvironmentSettings.from_any(None, cutoffs=["Li-Li=3.4"]).cutoffs_ang["Li-Li"] == 3.4
    with pytest.raises(ConfigError):
        EnvironmentSettings(li_metal_min_li=0)
    with pytest.raises(ConfigError):
        EnvironmentSettings(min_li_neighbours=-1)
    with pytest.raises(ConfigError, match="unknown cutoff pair"):
        EnvironmentSettings(cutoffs_ang={"Li-Co": 2.0})
    assert set(CLASS_DEFINITIONS) == set(CLASSES) == set(CLASS_ELEMENTS) == set(PHASE_OF_CLASS)


# ------------------------------------------------------------------------------------ profile helpers
def test_periodic_runs_and_gaps():
    assert periodic_runs(np.array([1, 1, 0, 0, 1, 0, 1, 1], bool)) == [(4, 1), (6, 4)]  # (6, 4) wraps
    assert periodic_runs(np.ones(5, bool)) == [(0, 5)] and periodic_runs(np.zeros(5, bool)) == []
    assert run_gap((6, 4), (4, 1), 8) == 1 and run_gap((0, 2), (2, 3), 8) == 0
    states = np.array([1, UNKNOWN, EMPTY, EMPTY, 0, EMPTY, EMPTY, EMPTY, EMPTY, 0, UNKNOWN, UNKNOWN])
    filled = fill_states(states, max_gap_bins=2)
    assert filled.tolist() == [1, 1, 1, 0, 0, EMPTY, EMPTY, EMPTY, EMPTY, 0, 0, 1]  # 11 is next to 0 (=12)


def test_axis_rules_and_bins():
    cell = np.diag([10.0, 10.0, 20.0])
    assert check_normal_axis(cell, [True] * 3, 2) == (20.0, 100.0)
    with pytest.raises(TrajectoryError, match="not periodic along z"):
        check_normal_axis(cell, [True, True, False], 2)
    tilted = cell.copy()
    tilted[1, 2] = 0.5
    with pytest.raises(TrajectoryError, match="cell vector b"):
        check_normal_axis(tilted, [True] * 3, 2)
    assert n_bins_for(20.0, 0.95) == 21
    with pytest.raises(AnalysisError):
        n_bins_for(20.0, 10.5)
    with pytest.raises(ConfigError):
        n_bins_for(20.0, -1.0)
    mono = cell.copy()
    mono[2] = [3.0, 0.0, 20.0]
    s = fractional_height(np.array([[3.0, 1.0, 25.0], [0.0, 0.0, -5.0], [1.0, 1.0, 0.0]]), mono, 2)
    np.testing.assert_allclose(s, [0.25, 0.75, 0.0])


# ----------------------------------------------------------------------------------------- growth fit
def test_growth_fit_recovers_laws_and_matches_linregress():
    from scipy.stats import linregress

    t = np.linspace(5.0, 100.0, 12)
    noise = np.random.default_rng(7).normal(0.0, 0.3, t.size)
    lin = fit_growth(t, 2.0 + 0.5 * t + noise)
    ref = linregress(t, 2.0 + 0.5 * t + noise)
    assert lin.model == "linear"
    assert lin.rate_ang_ps == pytest.approx(ref.slope) and lin.linear["rate_stderr"] == pytest.approx(ref.stderr)
    par = fit_growth(t, 1.0 + 3.0 * np.sqrt(t) + noise)
    assert par.model == "parabolic" and par.parabolic_k_ang_ps05 == pytest.approx(3.0, rel=0.05)
    np.testing.assert_allclose(par.predict(t), par.parabolic["intercept_ang"] + par.parabolic["rate"] * np.sqrt(t))


def test_growth_fit_edge_cases():
    assert fit_growth([0, 1, 2], [1, 2, 3]).model == "insufficient"
    assert fit_growth([1, 1, 1, 1], [1, 2, 3, 4]).model == "insufficient"
    flat = fit_growth([0, 1, 2, 3], [4.0, 4.0, 4.0, 4.0])
    assert flat.model == "none" and flat.rate_ang_ps == 0.0
    neg = fit_growth([-2, -1, 0, 1], [1.0, 2.0, 3.0, 4.0])
    assert neg.model == "linear" and not neg.parabolic and "negative" in neg.reason
    close = fit_growth([100, 102, 104, 106, 108], [1.0, 2.2, 2.9, 4.1, 5.0])  # sqrt(t) ~ linear in a short window
    assert close.model == "undetermined" and math.isfinite(close.delta_aic)
    assert fit_growth([0, np.nan, 2, 3, 4], [0, 1, 2, 3, 4]).n_points == 4
    with pytest.raises(ConfigError):
        fit_growth([0, 1], [0, 1, 2])
