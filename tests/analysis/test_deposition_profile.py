"""The interphase profile of a deposition (analysis/deposition_profile.py) on hand-made snapshots."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from tfbsim.analysis.deposition_profile import REDUCED_PN_CLASSES, deposition_profile
from tfbsim.errors import AnalysisError
from tfbsim.structures.crystals import build_crystal
from tfbsim.structures.slabs import make_slab


def _with_deposit(substrate: Atoms, extra: Atoms | None, n_deposited: int) -> Atoms:
    frame = substrate.copy()
    frame.set_array("dep_arrival", np.full(len(frame), -1))
    if extra is not None:
        add = extra.copy()
        add.set_array("dep_arrival", np.arange(len(add)))
        for name in list(frame.arrays):
            if name not in add.arrays and name not in ("numbers", "positions"):
                add.set_array(name, np.zeros(len(add), dtype=frame.arrays[name].dtype))
        frame.extend(add)
    frame.info["n_deposited"] = n_deposited
    return frame


def _li_film(slab: Atoms, layers: int = 2) -> Atoms:
    """bcc Li planes (a = 3.5 Å) laid over the slab's lateral cell, 2.2 Å above its top."""
    a = 3.5
    cell = slab.cell.array
    nx, ny = int(np.linalg.norm(cell[0]) // a), int(np.linalg.norm(cell[1]) // a)
    top = slab.positions[:, 2].max() + 2.2
    pos = []
    for k in range(2 * layers):
        off = 0.5 * a * (k % 2)
        for i in range(nx):
            for j in range(ny):
                pos.append([off + i * a, off + j * a, top + 0.5 * a * k])
    return Atoms("Li" * len(pos), positions=pos, cell=slab.cell, pbc=True)


def li2o_slab() -> Atoms:
    return make_slab(build_crystal("li2o"), (1, 1, 1), thickness_ang=5.0, vacuum_ang=25.0, min_lateral_ang=9.0)


def test_li_on_li2o_control_has_no_pn_or_reduced_class():
    slab = li2o_slab()
    film = _li_film(slab)
    frames = [_with_deposit(slab, None, 0), _with_deposit(slab, film, len(film))]
    p = deposition_profile(frames, layer_ang=2.0).to_dict()
    assert p["pn_classes_present"] == [] and p["reduced_classes_present"] == []
    last = p["snapshots"][-1]
    assert last["deposit_classes"].get("Li_metal", 0) > 0.5 * len(film)
    assert set(last["class_counts"]) <= {"Li_metal", "Li_ion", "Li2O"}
    assert last["per_p"] is None and last["deposited"] == len(film)
    assert last["reduced_pn_depth_ang"] is None
    # layers: the Li metal sits in the layers above z0, the Li2O below
    z_lo = np.asarray(p["layer_z_lo_ang"]) - p["z0_ang"]
    metal = np.asarray(last["layer_counts"]["Li_metal"])
    assert metal[z_lo < -2.0].sum() == 0 and metal[z_lo >= 0].sum() == metal.sum()


def test_reduction_is_found_with_depth_first_appearance_and_per_p():
    slab = make_slab(build_crystal("li3po4"), (0, 1, 0), thickness_ang=8.0, vacuum_ang=25.0, min_lateral_ang=9.0)
    symbols = np.array(slab.get_chemical_symbols())
    z0 = slab.positions[:, 2].max()
    # reduce the highest P: move three of its O away along +z (its ligands drop to 1 -> reduced_P)
    p_idx = np.flatnonzero(symbols == "P")
    top_p = p_idx[np.argmax(slab.positions[p_idx, 2])]
    d = np.linalg.norm(slab.get_distances(top_p, np.flatnonzero(symbols == "O"), mic=True)[:, None], axis=1)
    o_near = np.flatnonzero(symbols == "O")[np.argsort(d)[:3]]
    reduced = slab.copy()
    reduced.positions[o_near, 2] += 3.0
    film = _li_film(slab, layers=1)
    frames = [_with_deposit(slab, None, 0), _with_deposit(slab, film[:4], 4), _with_deposit(reduced, film, len(film))]
    p = deposition_profile(frames).to_dict()
    assert "reduced_P" in p["first_appearance"] and p["first_appearance"]["reduced_P"]["snapshot"] == 2
    assert p["product_order_first"][0] in ("reduced_P", "Li2O")
    last = p["snapshots"][-1]
    assert last["reduced_pn_new"] >= 1
    assert last["reduced_pn_depth_ang"] == pytest.approx(z0 - slab.positions[top_p, 2], abs=1e-9)
    assert last["per_p"] == pytest.approx(len(film) / len(p_idx))
    assert "reduced_P" in p["reduced_classes_present"] and set(REDUCED_PN_CLASSES) >= set(p["reduced_classes_present"])
    sens = p["cutoff_sensitivity"]
    assert sens["delta_ang"] == [-0.1, 0.1]
    for fr in sens["fractions"].values():
        assert sum(fr.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in sens["max_abs_change"].values())


def test_bad_snapshots_are_refused(tmp_path):
    slab = li2o_slab()
    other = slab.copy()
    del other[0]
    with pytest.raises(AnalysisError, match="substrate atoms differ"):
        deposition_profile([_with_deposit(slab, None, 0), _with_deposit(other, None, 0)])
    with pytest.raises(AnalysisError, match="no snapshots"):
        deposition_profile([])
    with pytest.raises(AnalysisError, match="layer_ang"):
        deposition_profile([_with_deposit(slab, None, 0)], layer_ang=0)
    assert bulk("Cu") is not None


def test_plot_writes_png(tmp_path):
    from tfbsim.analysis.plots_deposition import plot_deposition

    slab = li2o_slab()
    film = _li_film(slab)
    p = deposition_profile([_with_deposit(slab, None, 0), _with_deposit(slab, film, len(film))])
    plot_deposition(p, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
