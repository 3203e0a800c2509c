"""Interphase analysis with known answers: a six-block Li/LiPON reference stack, a synthetic growing layer
(linear and √t), periodic wrap, a sandwich with two interfaces, an MDAnalysis cross-check, bad input, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _interphase_models import (
    A_ANG,
    block_boundaries,
    growth_frame,
    growth_trajectory,
    reference_stack,
)
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from tfbsim.analysis.environments import CLASSES
from tfbsim.analysis.interphase import Interphase
from tfbsim.errors import AnalysisError, ConfigError, TrajectoryError
from tfbsim.structures.io import write_structure

ISSUE_KEYS = ("axis", "bin_edges_ang", "element_density_ang3", "class_fraction_by_bin", "class_counts",
              "formula_units", "interphase", "product_order_from_li", "definitions")
# block -> {element: class its atoms must have}
OWN_CLASS = {
    "li": {"Li": "Li_metal"},
    "li2o": {"O": "Li2O"},
    "li3n": {"N": "Li3N"},
    "li3p": {"P": "Li3P"},
    "li3po4": {"O": "phosphate_O", "P": "phosphate_P"},
    "lipon": {"O": "phosphate_O", "N": "lipon_N", "P": "phosphate_P"},
}
# boundary k of block_boundaries() lies between these layer phases (li3po4|lipon share "phosphate")
BOUNDARY_PHASES = {0: ("Li_metal", "Li2O"), 1: ("Li2O", "Li3N"), 2: ("Li3N", "Li3P"), 3: ("Li3P", "phosphate"),
                   5: ("phosphate", "Li_metal")}


def _pdist(a: float, b: float, length: float) -> float:
    d = (a - b) % length
    return min(d, length - d)


@pytest.fixture(scope="module")
def stack() -> Atoms:
    return reference_stack(seed=0)


@pytest.fixture(scope="module")
def stack_result(stack):
    return Interphase(stack, bin_ang=1.0).run().results


# ------------------------------------------------------------------------------------ reference stack
def test_stack_blocks_classified_as_their_own_class(stack, stack_result):
    by_region = stack_result.class_counts_by_region
    regions = stack.arrays["region"]
    symbols = np.array(stack.get_chemical_symbols())
    for block, wanted in OWN_CLASS.items():
        for element, cls in wanted.items():
            n_el = int(((regions == block) & (symbols == element)).sum())
            assert n_el > 0
            share = by_region[block].get(cls, 0) / n_el
            assert share >= 0.9, (block, element, cls, share, by_region[block])
    # formula units = anions of each product block (one anion per formula unit)
    n = {b: int(((regions == b) & (symbols == el)).sum()) for b, el in
         (("li2o", "O"), ("li3n", "N"), ("li3p", "P"), ("li3po4", "P"))}
    fu = dict(stack_result.formula_units)
    li3po4 = fu.pop("Li3PO4")
    assert fu == {"Li2O": n["li2o"], "Li3N": n["li3n"], "Li3P": n["li3p"], "Li2S": 0}
    # γ-Li3PO4 told from LiPON: most of the 24 P of the thin Li3PO4 block (edge units may fail), none elsewhere
    assert stack_result.formula_units_by_region["li3po4"]["Li3PO4"] == li3po4 >= 0.6 * n["li3po4"]
    assert sum(stack_result.class_counts.values()) == len(stack)
    assert set(stack_result.subtype_counts["lipon_N"]) <= {"Na", "Nd", "Nt"}


def test_stack_boundaries_within_one_bin(stack, stack_result):
    length = stack.cell[2, 2]
    width = stack_result.bin_width_ang
    layers = stack_result.layers
    expected = block_boundaries(stack)
    for k, (below, above) in BOUNDARY_PHASES.items():
        found = [lay["z_hi_ang"] % length for lay, nxt in zip(layers, layers[1:] + layers[:1])
                 if lay["phase"] == below and nxt["phase"] == above]
        assert len(found) == 1, (k, below, above, layers)
        assert _pdist(found[0], expected[k], length) <= width, (below, above, found[0], expected[k])
    assert [lay["phase"] for lay in layers if lay["phase"] != "Li_metal"] == ["Li2O", "Li3N", "Li3P", "phosphate"]


def test_stack_product_order_and_extent(stack, stack_result):
    assert stack_result.product_order_from_li == ["Li2O", "Li3N", "Li3P"]
    assert stack_result.product_side == "+z"
    length = stack.cell[2, 2]
    width = stack_result.bin_width_ang
    expected = block_boundaries(stack)
    inter = stack_result.interphase
    assert _pdist(inter["z_lo_ang"][0], expected[0], length) <= width        # Li | Li2O
    assert _pdist(inter["z_hi_ang"][0], expected[3], length) <= width        # Li3P | Li3PO4
    assert inter["front_ang"][0] == pytest.approx(inter["z_hi_ang"][0] % length)
    assert abs(inter["thickness_ang"][0] - (expected[3] - expected[0])) <= 2 * width
    assert inter["n_segments"][0] == 1
    assert inter["growth"].model == "insufficient"


def test_profiles_sum_rules(stack, stack_result):
    r = stack_result
    fractions = np.array([r.class_fraction_by_bin[c] for c in CLASSES])
    occupied = r.class_counts_per_frame[0].sum(axis=0) > 0
    np.testing.assert_allclose(fractions.sum(axis=0)[occupied], 1.0)
    assert np.all(fractions[:, ~occupied] == 0)
    volume = r.area_ang2[0] * r.cell_length_ang[0] / r.n_bins
    symbols = np.array(stack.get_chemical_symbols())
    for el, density in r.element_density_ang3.items():
        assert density.sum() * volume == pytest.approx((symbols == el).sum())
    mass_g = sum(atomic_masses[atomic_numbers[s]] for s in symbols) / 6.02214076e23
    assert r.mass_density_g_cm3.sum() * volume * 1e-24 == pytest.approx(mass_g, rel=1e-6)


def test_mass_density_matches_mdanalysis_lineardensity(stack, stack_result):
    import MDAnalysis as mda
    from MDAnalysis.analysis.lineardensity import LinearDensity

    u = mda.Universe.empty(len(stack), trajectory=True)
    u.add_TopologyAttr("masses", [atomic_masses[n] for n in stack.numbers])
    u.add_TopologyAttr("charges", np.zeros(len(stack)))
    u.atoms.positions = stack.positions
    u.dimensions = [*stack.cell.lengths(), 90, 90, 90]
    n = stack_result.n_bins
    ld = LinearDensity(u.atoms, binsize=stack.cell[2, 2] / n * (1 - 1e-9)).run()
    assert len(ld.results.z.mass_density) == n
    np.testing.assert_allclose(stack_result.mass_density_g_cm3, ld.results.z.mass_density, rtol=1e-5, atol=1e-9)


def test_wrap_across_the_cell_boundary(stack, stack_result):
    """Shift the stack so that the Li2O block straddles z = 0 (positions left unwrapped, as in an MD
    trajectory, some atoms a whole cell away): same picture, moved."""
    length = stack.cell[2, 2]
    blocks = dict((name, (lo, hi)) for name, lo, hi in stack.info["blocks"])
    shift = -0.5 * sum(blocks["li2o"])
    moved = stack.copy()
    moved.positions[:, 2] += shift
    jumps = np.random.default_rng(5).integers(-1, 2, len(moved))
    moved.positions += np.outer(jumps, moved.cell[2])
    assert (moved.positions[:, 2] < 0).sum() > 50 and (moved.positions[:, 2] > length).sum() > 50
    r = Interphase(moved, bin_ang=1.0).run().results
    width = r.bin_width_ang
    assert r.product_order_from_li == ["Li2O", "Li3N", "Li3P"]
    ref = stack_result.interphase
    assert abs(r.interphase["thickness_ang"][0] - ref["thickness_ang"][0]) <= width
    assert _pdist(r.interphase["z_lo_ang"][0], ref["z_lo_ang"][0] + shift, length) <= width
    lo, hi, thick = (r.interphase[key][0] for key in ("z_lo_ang", "z_hi_ang", "thickness_ang"))
    assert hi == pytest.approx(lo + thick)
    assert r.formula_units == stack_result.formula_units
    li2o = [lay for lay in r.layers if lay["phase"] == "Li2O"]
    assert len(li2o) == 1 and li2o[0]["z_hi_ang"] > length  # one layer through the boundary, not two halves


# ----------------------------------------------------------------------------------------- growth
@pytest.mark.parametrize("law", ["linear", "parabolic"])
def test_growth_law_is_recovered(law):
    ks = np.arange(1, 9)
    times = 10.0 * ks if law == "linear" else 2.0 * ks**2  # thickness k·a grows as t or as sqrt(t)
    frames = growth_trajectory(ks, times, seed=1)
    r = Interphase(frames, bin_ang=1.0).run().results
    inter = r.interphase
    width = r.bin_width_ang
    for frame, lo, hi, front in zip(frames, inter["z_lo_ang"], inter["z_hi_ang"], inter["front_ang"]):
        z_lo, z_hi = frame.info["product_z_ang"]
        assert abs(lo - z_lo) <= width and abs(hi - z_hi) <= width
        assert front == pytest.approx(hi)  # the front is the edge away from the metal
    growth = inter["growth"]
    assert growth.model == law, growth
    if law == "linear":
        assert growth.rate_ang_ps == pytest.approx(A_ANG / 10.0, rel=0.1)
        assert growth.delta_aic < -2
    else:
        assert growth.parabolic_k_ang_ps05 == pytest.approx(A_ANG / np.sqrt(2.0), rel=0.1)
        assert growth.delta_aic > 2
    assert r.product_order_from_li[0] == "Li2O"
    assert r.formula_units["Li2O"] == 4 * 4 * ks[-1] and r.formula_units["Li3P"] == 4 * ks[-1]


def test_sandwich_with_two_interfaces():
    frame = growth_frame(3, both_sides=True, rng=np.random.default_rng(2))
    r = Interphase(frame, bin_ang=1.0).run().results
    inter = r.interphase
    assert inter["n_segments"][0] == 2
    single = Interphase(growth_frame(3, rng=np.random.default_rng(2)), bin_ang=1.0).run().results.interphase
    assert abs(inter["thickness_ang"][0] - single["thickness_ang"][0]) <= r.bin_width_ang
    assert inter["total_thickness_ang"][0] == pytest.approx(2 * inter["thickness_ang"][0], abs=2 * r.bin_width_ang)


def test_no_interphase_and_frame_window():
    frames = growth_trajectory([0, 0, 2, 4], [0.0, 1.0, 2.0, 3.0], seed=3)
    ia = Interphase(frames, bin_ang=1.0)
    r = ia.run(stop=2).results
    assert np.all(r.interphase["thickness_ang"] == 0) and np.all(np.isnan(r.interphase["z_lo_ang"]))
    assert r.product_order_from_li == [] and r.formula_units["Li2O"] == 0
    r = ia.run(start=2).results
    assert list(r.frames) == [2, 3] and r.interphase["growth"].model == "insufficient"
    assert r.class_fraction_per_frame.shape == (2, len(CLASSES), r.n_bins)


# -------------------------------------------------------------------------------------- bad input
def test_bad_input_errors():
    frame = growth_frame(2)
    slab = frame.copy()
    slab.pbc = (True, True, False)
    with pytest.raises(TrajectoryError, match="not periodic along z"):
        Interphase(slab)
    tilted = frame.copy()
    cell = tilted.cell.array.copy()
    cell[0, 2] = 1.5  # a has a z component: z-planes are not lattice planes
    tilted.set_cell(cell)
    with pytest.raises(TrajectoryError, match="component of 1.5 Å along z"):
        Interphase(tilted)
    mono = frame.copy()
    cell = mono.cell.array.copy()
    cell[2, 0] = 2.0  # a tilted stacking vector is fine for z, not for x
    mono.set_cell(cell)
    Interphase(mono, axis="z")
    with pytest.raises(TrajectoryError, match="along x"):
        Interphase(mono, axis="x")
    with pytest.raises(AnalysisError, match="larger than half the cell"):
        Interphase(frame, bin_ang=frame.cell[2, 2])
    with pytest.raises(AnalysisError, match="none of the elements"):
        Interphase(Atoms("Ar2", positions=[[0, 0, 0], [2, 2, 2]], cell=[8, 8, 8], pbc=True))
    with pytest.raises(ConfigError):
        Interphase(frame, axis="w")
    with pytest.raises(ConfigError):
        Interphase(frame, threshold=0.0)
    with pytest.raises(ConfigError, match="unknown product class"):
        Interphase(frame, product_classes=["Li4O"])
    with pytest.raises(ConfigError, match="unknown cutoff pair"):
        Interphase(frame, cutoffs={"Co-Co": 2.5})
    with pytest.raises(ConfigError, match="unknown environment threshold"):
        Interphase(frame, thresholds={"li_min": 3})
    ia = Interphase(frame)
    with pytest.raises(AnalysisError, match="call run"):
        ia.results
    with pytest.raises(AnalysisError, match="selects none"):
        ia.run(start=5)


def test_cell_change_mid_run_is_caught():
    good = growth_frame(1)
    bad = good.copy()
    cell = bad.cell.array.copy()
    cell[1, 2] = 0.8
    bad.set_cell(cell)
    with pytest.raises(TrajectoryError, match="frame 1"):
        Interphase([good, bad]).run()


# -------------------------------------------------------------------------------------------- CLI
def test_cli_json_and_plot(tmp_path, cli_runner):
    from tfbsim.cli import app

    frames = growth_trajectory(np.arange(1, 6), 10.0 * np.arange(1, 6), seed=4)
    traj = tmp_path / "traj.extxyz"
    write_structure(traj, frames)
    out, png = tmp_path / "ip.json", tmp_path / "ip.png"
    res = cli_runner.invoke(app, ["analyze", "interphase", str(traj), "--bin-ang", "1.0", "--json", str(out),
                                  "--plot", str(png)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert all(key in data for key in ISSUE_KEYS)
    assert set(data["interphase"]) >= {"time_ps", "thickness_ang", "z_lo_ang", "z_hi_ang"}
    assert data["interphase"]["time_ps"] == pytest.approx([10, 20, 30, 40, 50])
    assert data["interphase"]["growth"]["model"] == "linear"
    assert set(data["formula_units"]) == {"Li2O", "Li3N", "Li3P", "Li2S", "Li3PO4"}
    assert set(data["class_fraction_by_bin"]) == set(CLASSES)
    assert len(data["bin_edges_ang"]) == len(data["element_density_ang3"]["O"]) + 1
    assert "Li2O" in data["definitions"]["classes"] and data["provenance"]
    assert png.stat().st_size > 10_000 and "growth: linear" in res.output
    bad = cli_runner.invoke(app, ["analyze", "interphase", str(traj), "--bin-ang", "500", "--json",
                                  str(tmp_path / "no.json")])
    assert bad.exit_code == 2 and "error:" in bad.output and not (tmp_path / "no.json").exists()


def test_plot_functions(tmp_path, stack_result, stack):
    from tfbsim.analysis.plots_interphase import plot_interphase_growth, plot_interphase_profile

    data = Interphase(stack).run().results.to_dict()
    fig = plot_interphase_profile(data, tmp_path / "p.png")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"Li2O", "Li3N", "Li3P", "Li_metal"} <= set(labels)
    assert (tmp_path / "p.png").exists()
    plot_interphase_growth(data, tmp_path / "g.png")
    assert (tmp_path / "g.png").exists()


def test_tfbsim_h5md_trajectory_with_unwrapped_positions(tmp_path):
    """The project's own trajectory format: times and regions from the file, positions unwrapped."""
    from tfbsim.workflows.md.h5md import H5MDWriter

    ks = np.arange(1, 7)
    frames = growth_trajectory(ks, 5.0 * ks, seed=6)
    path = tmp_path / "traj.h5md"
    jumps = np.random.default_rng(6).integers(-1, 2, len(frames[0]))
    with H5MDWriter(path, frames[0].numbers, regions=frames[0].arrays["region"], precision="float64") as writer:
        for step, frame in enumerate(frames):
            unwrapped = frame.positions + np.outer(jumps, frame.cell[2])
            writer.append(unwrapped, frame.cell.array, step, frame.info["time_ps"])
    r = Interphase(str(path)).run().results
    ref = Interphase(frames).run().results
    np.testing.assert_allclose(r.times_ps, 5.0 * ks)
    np.testing.assert_allclose(r.interphase["thickness_ang"], ref.interphase["thickness_ang"])
    assert r.class_counts_by_region == ref.class_counts_by_region
    assert r.interphase["growth"].model == "linear"


def test_product_atom_dissolved_in_metal_is_not_an_interphase():
    frame = growth_frame(0)
    spacing = frame.cell[0, 0] / 3
    dissolved = frame + Atoms("O", positions=[[0.5 * spacing, 0.5 * spacing, spacing]])  # in a Li plane
    r = Interphase(dissolved).run().results
    assert r.class_counts["Li2O"] == 1 and r.interphase["n_product_sites"][0] == 1
    assert r.interphase["thickness_ang"][0] == 0 and r.li_metal is not None
    low = Interphase(dissolved, threshold=0.05).run().results  # a low threshold counts it
    assert low.interphase["thickness_ang"][0] > 0
