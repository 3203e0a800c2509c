"""Speciation with known answers: crystals, hand-built motifs, periodic images, trajectories, bad input, CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list

from tfbsim.analysis.coordination import Coordination, frame_statistics
from tfbsim.analysis.speciation import classify_atoms, polyhedron_label, speciation_cutoffs
from tfbsim.analysis.trajectory import Trajectory
from tfbsim.errors import AnalysisError, ConfigError, TrajectoryError
from tfbsim.structures.io import write_structure

BOX = 30.0
P_O, P_N = 1.55, 1.68


# ------------------------------------------------------------------------------------------ motif builders
def _tetra(u: np.ndarray) -> list[np.ndarray]:
    """Three unit vectors at the tetrahedral angle from ``u``, spread evenly around it."""
    u = u / np.linalg.norm(u)
    a = np.cross(u, [0.0, 0.0, 1.0] if abs(u[2]) < 0.9 else [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(u, a)
    cos_t, sin_t = -1.0 / 3.0, np.sqrt(8.0 / 9.0)
    return [cos_t * u + sin_t * (np.cos(p) * a + np.sin(p) * b) for p in (0.0, 2 * np.pi / 3, 4 * np.pi / 3)]


def _capped_p(p: np.ndarray, toward: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Three terminal O on the P at ``p`` whose fourth ligand lies along ``toward``."""
    return ["O"] * 3, [p + P_O * v for v in _tetra(toward - p)]


def _bridge(center: np.ndarray, anion: str, length: float, angle_deg: float, n_p: int = 2):
    """``n_p`` PO3 groups on one anion (bridging ``n_p`` = 2 at ``angle_deg``; 3: planar star; 1: apical)."""
    symbols, positions = [anion], [center]
    if n_p == 1:
        dirs = [np.array([1.0, 0.0, 0.0])]
    elif n_p == 2:
        h = np.radians(angle_deg / 2)
        dirs = [np.array([-np.sin(h), -np.cos(h), 0.0]), np.array([np.sin(h), -np.cos(h), 0.0])]
    else:
        dirs = [np.array([np.cos(t), np.sin(t), 0.0]) for t in np.arange(n_p) * 2 * np.pi / n_p]
    for d in dirs:
        p = center + length * d
        s, x = _capped_p(p, center)
        symbols += ["P", *s]
        positions += [p, *x]
    return symbols, positions


MOTIFS = {  # name: (builder, expected label of every atom in build order)
    "P2O7": (lambda c: _bridge(c, "O", 1.60, 130.0), ["Ob"] + ["Q1", "Onb", "Onb", "Onb"] * 2),
    "PNP": (lambda c: _bridge(c, "N", P_N, 120.0), ["Nd"] + ["Q1", "Onb", "Onb", "Onb"] * 2),
    "PO3N": (lambda c: _bridge(c, "N", 1.60, 0.0, n_p=1), ["Na", "Q0", "Onb", "Onb", "Onb"]),
    "P3N": (lambda c: _bridge(c, "N", 1.75, 0.0, n_p=3), ["Nt"] + ["Q1", "Onb", "Onb", "Onb"] * 3),
}


def motif_atoms(*names: str, offset: np.ndarray | None = None) -> Atoms:
    """Motifs 9 Å apart in a periodic 30 Å box (``offset`` shifts everything, then positions are wrapped)."""
    symbols, positions = [], []
    for k, name in enumerate(names):
        s, x = MOTIFS[name][0](np.array([6.0 + 9.0 * (k % 3), 6.0 + 9.0 * (k // 3), 15.0]))
        symbols += s
        positions += x
    atoms = Atoms(symbols, positions=positions, cell=[BOX] * 3, pbc=True)
    if offset is not None:
        atoms.positions += offset
        atoms.wrap()
    return atoms


# ------------------------------------------------------------------------------------------ motifs
@pytest.mark.parametrize("name", list(MOTIFS))
def test_motif_labels(name):
    atoms = motif_atoms(name)
    assert classify_atoms(atoms).label.tolist() == MOTIFS[name][1]


@pytest.mark.parametrize("name", list(MOTIFS))
def test_motif_across_cell_boundary(name):
    """The same motif split by the periodic boundary (anion at the corner of the cell) gives the same labels."""
    atoms = motif_atoms(name, offset=-np.array([6.0, 6.0, 15.0]) + 0.05)
    classes = classify_atoms(atoms)
    assert classes.label.tolist() == MOTIFS[name][1]
    assert (classes.bonds.shifts != 0).any()  # some bonds really go through the boundary


def test_all_motifs_together():
    atoms = motif_atoms("P2O7", "PNP", "PO3N", "P3N")
    d = Coordination(atoms).run().results.to_dict()
    assert d["N"]["count"] == 3 and d["O"]["count"] == 25 and d["P"]["count"] == 8
    for key in ("Na", "Nd", "Nt"):
        assert d["N"][key] == pytest.approx(1 / 3)
    assert d["N"]["N0"] == 0.0 and d["N"]["N_over"] == 0.0
    assert d["O"]["Ob"] == pytest.approx(1 / 25) and d["O"]["Onb"] == pytest.approx(24 / 25)
    assert d["P"]["Q0"] == pytest.approx(1 / 8) and d["P"]["Q1"] == pytest.approx(7 / 8)
    assert d["P"]["mean_cn"] == pytest.approx(4.0) and d["P"]["undercoordinated"] == 0.0
    clusters = d["phosphate_clusters"]
    assert (clusters["monomer"], clusters["dimer"], clusters["trimer"], clusters["larger"]) == pytest.approx(
        (1 / 8, 4 / 8, 3 / 8, 0.0))


def test_cutoff_override_changes_classes():
    atoms = motif_atoms("PNP")
    # P-N 1.68 Å: a 1.6 Å cutoff breaks both bonds -> N0 and two undercoordinated Q0 phosphorus
    d = Coordination(atoms, cutoffs={"P-N": 1.6}).run().results.to_dict()
    assert d["N"]["N0"] == 1.0
    assert d["P"]["Q0"] == 1.0 and d["P"]["undercoordinated"] == 1.0 and d["P"]["mean_cn"] == 3.0
    assert d["cutoffs_ang"]["P-N"] == 1.6 and d["cutoff_source"]["P-N"] == "user"


def test_infinite_chain_is_larger_not_dimer():
    """A P-O-P-O chain through the periodic boundary: 2 P per cell, but an infinite cluster."""
    chain = Atoms("POPO", positions=[[0, 5, 5], [1.5, 5, 5], [3, 5, 5], [4.5, 5, 5]], cell=[6, 10, 10], pbc=True)
    c = classify_atoms(chain)
    assert c.label.tolist() == ["Q2", "Ob", "Q2", "Ob"]
    assert c.cluster_infinite[[0, 2]].all() and c.cluster_class()[[0, 2]].tolist() == ["larger", "larger"]
    # the same atoms as an isolated cluster: a dimer with one terminal O
    c = classify_atoms(chain, pbc=False)
    assert c.label.tolist() == ["Q1", "Ob", "Q1", "Onb"] and c.cluster_class()[0] == "dimer"
    # a finite ring (two P sharing two O) has a loop but does not wrap
    ring = Atoms("POPO", positions=[[5, 5, 5], [6.1, 6.1, 5], [7.2, 5, 5], [6.1, 3.9, 5]], cell=[20] * 3, pbc=True)
    c = classify_atoms(ring)
    assert c.label.tolist() == ["Q2", "Ob", "Q2", "Ob"] and not c.cluster_infinite.any()
    assert c.cluster_class()[0] == "dimer"


def test_polyhedron_labels():
    assert polyhedron_label({"O": 4}) == "O4"
    assert polyhedron_label((3, 1, 0)) == "O3N"
    assert polyhedron_label((2, 2, 0)) == "O2N2"
    assert polyhedron_label((1, 3, 0)) == "N3O"
    assert polyhedron_label((0, 0, 4)) == "S4"
    assert polyhedron_label((0, 0, 0)) == "none"


def test_counts_match_ase_neighbor_list_on_random_box():
    rng = np.random.default_rng(11)
    symbols = ["Li"] * 200 + ["P"] * 60 + ["O"] * 200 + ["N"] * 40
    cell = np.array([[17.0, 0.0, 0.0], [1.0, 17.0, 0.0], [0.5, -1.0, 17.5]])
    atoms = Atoms(symbols, positions=rng.random((500, 3)) @ cell, cell=cell, pbc=True)
    classes = classify_atoms(atoms)
    table = {(atomic_numbers[a], atomic_numbers[b]): v
             for a, b, v in ((*name.split("-"), v) for name, v in speciation_cutoffs().items())}
    i, j = neighbor_list("ij", atoms, table)
    sym = np.array(symbols)
    for el in ("P", "O", "N", "Li"):
        ref = np.bincount(i[sym[j] == el], minlength=len(atoms))
        np.testing.assert_array_equal(classes.neighbours[el], ref)
    n_p = np.bincount(i[sym[j] == "P"], minlength=len(atoms))
    ref_n = np.array(["N0", "Na", "Nd", "Nt", "N_over"])[np.minimum(n_p, 4)]
    assert (classes.label[sym == "N"] == ref_n[sym == "N"]).all()
    assert len(set(classes.label[sym == "N"])) >= 2  # the random box produces several classes


# ------------------------------------------------------------------------------------------ crystals
def test_li3n_all_n0():
    li3n = Atoms("NLi3", scaled_positions=[[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]],
                 cell=Atoms(cell=[3.648, 3.648, 3.875, 90, 90, 120]).cell, pbc=True)  # alpha-Li3N, P6/mmm
    d = Coordination(li3n * (2, 2, 2)).run().results.to_dict()
    assert d["N"]["N0"] == 1.0 and d["N"]["count"] == 8
    assert d["Li"]["polyhedra"] == pytest.approx({"N3": 2 / 3, "N2": 1 / 3})
    assert d["Li"]["cn_by_element"]["N"] == pytest.approx(8 / 3)
    assert d["P"]["count"] == 0 and d["O"]["count"] == 0


def test_li2o_all_o0():
    from ase.build import bulk

    d = Coordination(bulk("OLi2", "fluorite", a=4.61, cubic=True)).run().results.to_dict()
    assert d["O"]["O0"] == 1.0 and d["O"]["count"] == 4
    assert d["Li"]["polyhedra"] == {"O4": 1.0} and d["Li"]["mean_cn"] == 4.0
    assert d["N"] == {"N0": 0.0, "Na": 0.0, "Nd": 0.0, "Nt": 0.0, "N_over": 0.0, "count": 0,
                      "std": {"N0": 0.0, "Na": 0.0, "Nd": 0.0, "Nt": 0.0, "N_over": 0.0}}


def _crystal(name):
    crystals = pytest.importorskip(
        "tfbsim.structures.crystals", reason="tfbsim.structures.crystals.build_crystal (issue 2) not available yet")
    return crystals.build_crystal(name)


def test_li2po2n_all_nd_q2_chains():
    d = Coordination(_crystal("li2po2n")).run().results.to_dict()
    assert d["N"]["Nd"] == 1.0 and d["N"]["count"] > 0
    assert d["P"]["Q2"] == 1.0 and d["P"]["mean_cn"] == 4.0
    assert d["O"]["Onb"] == 1.0
    assert d["phosphate_clusters"]["larger"] == 1.0 and d["phosphate_clusters"]["infinite"] == 1.0


def test_gamma_li3po4_all_onb_q0_monomers():
    d = Coordination(_crystal("li3po4")).run().results.to_dict()
    assert d["O"]["Onb"] == 1.0 and d["P"]["Q0"] == 1.0 and d["P"]["mean_cn"] == 4.0
    assert d["phosphate_clusters"]["monomer"] == 1.0
    assert d["Li"]["polyhedra"] == {"O4": 1.0}  # LiO4 tetrahedra


# ------------------------------------------------------------------------------------------ selections
def test_region_and_z_window():
    atoms = motif_atoms("PNP", "PO3N")  # PNP centred at x = 6, PO3N at x = 15
    n_pnp = len(MOTIFS["PNP"][1])
    atoms.new_array("region", np.array(["glass"] * n_pnp + ["other"] * (len(atoms) - n_pnp)))
    assert Coordination(atoms, region="glass").run().results.to_dict()["N"]["Nd"] == 1.0
    assert Coordination(atoms, region="other").run().results.to_dict()["N"]["Na"] == 1.0
    atoms.rotate(90, "y", center=(15, 15, 15))  # now x -> z: PNP near z = 24, PO3N near z = 15
    d = Coordination(atoms, z_window_ang=(20.0, 30.0)).run().results.to_dict()
    assert d["N"]["Nd"] == 1.0 and d["N"]["count"] == 1 and d["P"]["count"] == 2
    with pytest.raises(TrajectoryError, match="unknown region"):
        Coordination(atoms, region="nope")
    with pytest.raises(ConfigError, match="z_min < z_max"):
        Coordination(atoms, z_window_ang=(5.0, 1.0))


def test_time_series_mean_and_std():
    frames = []
    for k in range(3):
        atoms = motif_atoms("PNP")
        if k == 1:  # pull one PO3 group away from N: Nd -> Na, both P Q1 -> Q0
            atoms.positions[5:] += [3.0, 0.0, 0.0]
        atoms.info["time_ps"] = 0.5 * k
        frames.append(atoms)
    c = Coordination(frames).run()
    np.testing.assert_allclose(c.results.timeseries["Nd"], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(c.results.timeseries["Na"], [0.0, 1.0, 0.0])
    assert c.results.mean["Nd"] == pytest.approx(2 / 3) and c.results.std["Nd"] == pytest.approx(np.sqrt(2) / 3)
    d = c.results.to_dict()
    assert d["per_frame"]["time_ps"] == pytest.approx([0.0, 0.5, 1.0])
    assert d["N"]["std"]["Nd"] == pytest.approx(np.sqrt(2) / 3)
    assert d["P"]["Q0"] == pytest.approx(1 / 3)
    # run(start, stop, step) selects within the frames
    assert Coordination(frames).run(1, 2).results.mean["Na"] == 1.0
    assert Coordination(frames).run(step=2).results.n_frames == 2


def test_h5md_universe_and_extxyz_sources_agree(tmp_path):
    from tfbsim.analysis.h5md import open_universe
    from tfbsim.workflows.md.h5md import H5MDWriter

    rng = np.random.default_rng(2)
    base = motif_atoms("P2O7", "PNP", "P3N")
    frames = []
    for k in range(4):
        atoms = base.copy()
        atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
        frames.append(atoms)
    path = tmp_path / "traj.h5md"
    with H5MDWriter(path, base.numbers, precision="float64", metadata={"timestep_fs": 1.0}) as writer:
        for k, atoms in enumerate(frames):
            writer.append(atoms.positions, atoms.cell.array, 10 * k, 0.01 * k)
    write_structure(tmp_path / "traj.extxyz", frames)
    ref = Coordination(frames).run().results.mean
    for source in (path, tmp_path / "traj.extxyz"):
        assert Coordination(source).run().results.mean == pytest.approx(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        universe = open_universe(path)
    assert Coordination(universe).run().results.mean == pytest.approx(ref)
    assert Coordination(path).run().results.times_ps == pytest.approx([0.0, 0.01, 0.02, 0.03])


# ------------------------------------------------------------------------------------------ rdf cutoffs
def test_rdf_cutoffs_on_li2o():
    from ase.build import bulk

    c = Coordination(bulk("OLi2", "fluorite", a=4.61, cubic=True), cutoffs="rdf", rdf_pairs=["O-Li"]).run()
    # first Li-O shell at a*sqrt(3)/4 = 2.00 Å, second at a*sqrt(11)/4 = 3.82 Å: the minimum lies between
    assert 2.05 < c.results.cutoffs_ang["Li-O"] < 3.8
    assert c.results.cutoff_source["Li-O"] == "rdf" and c.results.cutoff_source["P-O"] == "default"
    assert c.results.rdf.cn_at("O-Li", 2.5) == pytest.approx(8.0)
    assert c.results.li_polyhedra == {"O4": 1.0}
    assert "rdf" in c.results.to_dict()


# ------------------------------------------------------------------------------------------ bad input
def test_bad_input():
    atoms = motif_atoms("PNP")
    with pytest.raises(AnalysisError, match="call run"):
        Coordination(atoms).results
    with pytest.raises(ConfigError, match="unknown cutoff pair"):
        Coordination(atoms, cutoffs={"Co-Co": 2.0})
    with pytest.raises(ConfigError, match="unknown element"):
        Coordination(atoms, cutoffs={"P-Xx": 2.0})
    with pytest.raises(ConfigError, match="positive"):
        Coordination(atoms, cutoffs={"P-N": -1.0})
    with pytest.raises(ConfigError, match="'default', 'rdf'"):
        Coordination(atoms, cutoffs="magic")
    with pytest.raises(AnalysisError, match="selects none"):
        Coordination(atoms).run(start=3)
    with pytest.raises(TrajectoryError, match="selects no frames"):
        Coordination(atoms, frames="5:")
    no_cell = Atoms("PO", positions=[[0, 0, 0], [1.5, 0, 0]])
    with pytest.raises(TrajectoryError, match="no periodic cell"):
        Coordination(no_cell)
    assert Coordination(no_cell, pbc=False).run().results.mean["Onb"] == 1.0  # explicit isolated cluster
    with pytest.raises(TrajectoryError, match="needs a cell"):
        Coordination(Atoms("PO", positions=[[0, 0, 0], [1.5, 0, 0]], pbc=True))
    with pytest.raises(ConfigError, match="fully periodic"):
        Coordination(Atoms("PO", positions=[[0, 0, 0], [1.5, 0, 0]], cell=[10, 10, 10], pbc=(1, 1, 0)),
                     cutoffs="rdf")


def test_atom_classes_and_frame_statistics():
    atoms = motif_atoms("P2O7")
    c = Coordination(atoms, cutoffs={"P-O": 1.58})  # the 1.60 Å bridge bonds break: two PO3 units + O0
    classes = c.atom_classes(atoms)
    assert classes.label[0] == "O0" and classes.indices("Q0").tolist() == [1, 5]
    scalars, polyhedra = frame_statistics(classes)
    assert scalars["P_undercoordinated"] == 1.0 and scalars["monomer"] == 1.0 and polyhedra == {}


# ------------------------------------------------------------------------------------------ CLI
def test_cli_json_schema_and_plot(tmp_path, cli_runner):
    from tfbsim.cli import app

    atoms = motif_atoms("PNP", "PO3N")
    atoms += Atoms("Li", positions=[[20.0, 20.0, 20.0]])
    src = tmp_path / "s.extxyz"
    write_structure(src, atoms)
    out, png = tmp_path / "c.json", tmp_path / "c.png"
    res = cli_runner.invoke(app, ["analyze", "coordination", str(src), "--json", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "Nd 0.50" in res.output and "Na 0.50" in res.output
    data = json.loads(out.read_text())
    assert {"n_frames", "cutoffs_ang", "N", "O", "P", "Li", "phosphate_clusters", "per_frame", "provenance"} <= set(data)
    assert data["N"]["Nd"] == 0.5 and data["N"]["count"] == 2
    assert {"Q0", "Q1", "Q2", "Q3", "Q4", "mean_cn", "undercoordinated", "count"} <= set(data["P"])
    assert {"mean_cn", "polyhedra", "count"} <= set(data["Li"]) and data["Li"]["polyhedra"] == {"none": 1.0}
    assert {"monomer", "dimer", "trimer", "larger"} <= set(data["phosphate_clusters"])
    assert {"time_ps", "Nd", "Na", "Nt", "Ob"} <= set(data["per_frame"])
    assert png.stat().st_size > 1000
    res = cli_runner.invoke(app, ["analyze", "coordination", str(src), "--cutoff", "P-N=1.0", "--json", str(out)])
    assert res.exit_code == 0 and json.loads(out.read_text())["N"]["N0"] == 1.0


@pytest.mark.parametrize("args, message", [
    (["--cutoff", "P-Q=2"], "unknown element"),
    (["--cutoff", "P-N=-2"], "positive"),
    (["--cutoff", "P-P=2"], "unknown cutoff pair"),
    (["--frames", "5:"], "selects no frames"),
    (["--cutoffs", "best"], "--cutoffs"),
])
def test_cli_bad_input_exit_2_and_no_output(tmp_path, cli_runner, args, message):
    from tfbsim.cli import app

    src = tmp_path / "s.extxyz"
    write_structure(src, motif_atoms("PNP"))
    out = tmp_path / "c.json"
    res = cli_runner.invoke(app, ["analyze", "coordination", str(src), "--json", str(out), *args])
    assert res.exit_code == 2 and message in res.output
    assert not out.exists()


def test_cli_file_without_cell(tmp_path, cli_runner):
    from tfbsim.cli import app

    src = tmp_path / "m.xyz"
    src.write_text("2\n\nP 0 0 0\nN 1.6 0 0\n")
    res = cli_runner.invoke(app, ["analyze", "coordination", str(src)])
    assert res.exit_code == 2 and "no periodic cell" in res.output
    res = cli_runner.invoke(app, ["analyze", "coordination", str(src), "--no-pbc"])
    assert res.exit_code == 0 and "Na 1.00" in res.output


def test_trajectory_object_is_accepted():
    traj = Trajectory([motif_atoms("P3N")] * 2)
    assert Coordination(traj).run().results.mean["Nt"] == 1.0


def test_plot_from_results_and_from_json(tmp_path):
    from tfbsim.analysis.plots import plot_coordination
    from tfbsim.structures.io import read_json, write_json

    frames = []
    for k in range(3):
        atoms = motif_atoms("PNP", "PO3N")
        if k == 1:
            atoms.positions[5:9] += [3.0, 0.0, 0.0]
        atoms.info["time_ps"] = 0.2 * k
        frames.append(atoms)
    data = Coordination(frames, rdf_pairs=["P-O"]).run().results.to_dict()
    write_json(tmp_path / "c.json", data)
    for source in (data, read_json(tmp_path / "c.json")):
        fig = plot_coordination(source, tmp_path / "c.png")
        series = fig.axes[4]
        nd = next(line for line in series.get_lines() if line.get_label() == "Nd")
        assert list(nd.get_xdata()) == pytest.approx([0.0, 0.2, 0.4])
        assert list(nd.get_ydata()) == pytest.approx([0.5, 0.0, 0.5])
        assert (tmp_path / "c.png").stat().st_size > 1000
