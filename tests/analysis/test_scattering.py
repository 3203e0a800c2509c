"""Diffraction-level structure: partial g(r) vs a brute-force reference, crystal distances and CNs, Bragg
peaks vs pymatgen's XRDCalculator, the ideal gas, Faber-Ziman sum rules, limits and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms

from tfbsim.analysis.scattering import Scattering, faber_ziman_weights, max_r_ang, structure_factor
from tfbsim.analysis.scattering_tables import SUPPORTED_ELEMENTS, xray_form_factor
from tfbsim.errors import AnalysisError, ConfigError, TrajectoryError
from tfbsim.structures.crystals import build_crystal


def brute_force_partials(atoms: Atoms, r_max: float, dr: float) -> dict[tuple[str, str], np.ndarray]:
    """Independent reference: every pair by minimum image in an orthorhombic box, plain numpy histograms."""
    pos, lengths = atoms.positions, np.diag(atoms.cell.array)
    sym = np.array(atoms.get_chemical_symbols())
    diff = pos[None, :, :] - pos[:, None, :]
    diff -= lengths * np.round(diff / lengths)
    dist = np.linalg.norm(diff, axis=2)
    edges = np.arange(int(round(r_max / dr)) + 1) * dr
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    volume = atoms.get_volume()
    out = {}
    for a in sorted(set(sym)):
        for b in sorted(set(sym)):
            block = dist[np.ix_(sym == a, sym == b)]
            block = block[block > 0]
            n_a, n_b = (sym == a).sum(), (sym == b).sum() - (a == b)
            out[(a, b)] = np.histogram(block, bins=edges)[0] * volume / (n_a * n_b * shell)
    return out


def test_li2o_partials_match_brute_force_and_antifluorite_cn():
    a = 4.6114
    atoms = build_crystal("li2o") * (3, 3, 3)
    atoms.rattle(0.05, seed=3)
    res = Scattering(atoms, r_max_ang=6.5, dr_ang=0.05, q_max_inv_ang=10).run().results
    ref = brute_force_partials(atoms, 6.5, 0.05)
    for (x, y), g in ref.items():
        name = f"{x}-{y}" if f"{x}-{y}" in res.g_partial else f"{y}-{x}"
        np.testing.assert_allclose(res.g_partial[name], g, atol=1e-9)
    assert res.peaks["g_Li-O_first_peak_ang"] == pytest.approx(a * np.sqrt(3) / 4, abs=0.06)
    assert res.cn["Li-O"] == pytest.approx(4.0)
    assert res.cn["O-Li"] == pytest.approx(8.0)
    assert a * np.sqrt(3) / 4 < res.cn_cutoff_ang["Li-O"] < a * np.sqrt(11) / 4


def test_gamma_li3po4_p_o_bond_and_tetrahedral_cn():
    res = Scattering(build_crystal("li3po4") * (2, 3, 4), dr_ang=0.01, q_max_inv_ang=10).run().results
    assert res.peaks["g_P-O_first_peak_ang"] == pytest.approx(1.54, abs=0.02)
    assert res.cn["P-O"] == pytest.approx(4.0)
    assert res.cn["O-P"] == pytest.approx(1.0)
    assert res.peaks["G_neutron_first_peak_ang"] == pytest.approx(1.54, abs=0.03)  # P-O dominates G_N


def _pymatgen_reflections(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    calc = XRDCalculator(wavelength="CuKa")
    pattern = calc.get_pattern(AseAtomsAdaptor.get_structure(atoms), two_theta_range=(5, 90))
    q = 4 * np.pi * np.sin(np.radians(pattern.x / 2)) / calc.wavelength
    return q, pattern.y


def test_li3po4_structure_factor_peaks_at_bragg_reflections():
    """S_X(Q) of a 2,880-atom supercell peaks where pymatgen's XRD puts the strongest reflections (2θ → Q)."""
    cell = build_crystal("li3po4")
    res = Scattering(cell * (3, 5, 6), dr_ang=0.01, q_max_inv_ang=8).run().results
    q_ref, intensity = _pymatgen_reflections(cell)
    strongest = q_ref[np.argmax(intensity)]
    near = np.abs(q_ref - strongest) < 0.2
    centroid = np.average(q_ref[near], weights=intensity[near])
    resolution = np.pi / res.r_max_ang  # Lorch-broadened peaks cannot resolve reflections closer than this
    assert res.peaks["S_xray_first_peak_inv_ang"] == pytest.approx(centroid, abs=0.03)
    band = (q_ref > 2.2) & (q_ref < 2.7)
    centroid2 = np.average(q_ref[band], weights=intensity[band])
    win = (res.q_inv_ang > 2.2) & (res.q_inv_ang < 2.7)
    assert res.q_inv_ang[win][np.argmax(res.S_xray[win])] == pytest.approx(centroid2, abs=resolution / 2)
    assert res.q_inv_ang[0] == pytest.approx(2 * np.pi / res.r_max_ang)


def test_ideal_gas_partials_tend_to_one_and_S_to_one(rng):
    length = 20.0
    symbols = ["Li"] * 300 + ["P"] * 100 + ["O"] * 350 + ["N"] * 50
    frames = [Atoms(symbols, positions=rng.random((800, 3)) * length, cell=[length] * 3, pbc=True)
              for _ in range(6)]
    res = Scattering(frames, dr_ang=0.1, q_max_inv_ang=12).run().results
    for name in ("Li-O", "P-O", "O-O", "Li-Li"):
        assert res.g_partial[name][20:].mean() == pytest.approx(1.0, abs=0.03), name
    assert res.g_neutron[20:].mean() == pytest.approx(1.0, abs=0.02)
    assert np.abs(res.S_neutron[res.q_inv_ang > 3] - 1).mean() < 0.05
    assert res.density_atoms_ang3 == pytest.approx(800 / length**3)


def test_faber_ziman_sum_rules_and_form_factors():
    elements, conc = ["Li", "N", "O", "P"], [2.94 / 6.75, 0.31 / 6.75, 3.5 / 6.75, 1 / 6.75]
    w_n = faber_ziman_weights(elements, conc, "neutron")
    assert sum(w_n.values()) == pytest.approx(1.0)
    mean_b = 2.94 / 6.75 * -1.90 + 0.31 / 6.75 * 9.36 + 3.5 / 6.75 * 5.803 + 1 / 6.75 * 5.13
    assert w_n[("P", "O")] == pytest.approx((1 / 6.75) * (3.5 / 6.75) * 5.13 * 5.803 / mean_b**2)
    assert w_n[("Li", "O")] < 0  # Li's negative scattering length
    q = np.linspace(0, 20, 41)
    w_x = faber_ziman_weights(elements, conc, "xray", q)
    np.testing.assert_allclose(sum(w_x.values()), 1.0)
    for el, z in zip(SUPPORTED_ELEMENTS, (3, 7, 8, 15, 16, 27)):
        assert xray_form_factor(el, 0.0) == pytest.approx(z, abs=0.02), el
    assert xray_form_factor("O", 10.0) < 0.5 * xray_form_factor("O", 0.0)


def test_structure_factor_of_a_uniform_g_is_one_and_of_a_shell_is_a_sinc():
    r = np.arange(0.005, 10, 0.01)
    q = np.linspace(0.7, 15, 50)
    np.testing.assert_allclose(structure_factor(r, np.ones_like(r), 0.08, q), 1.0)
    g = np.ones_like(r)
    k = 250  # one shell at r0 = 2.505 Å: S(Q) - 1 = 4 pi rho r0^2 dr (g0 - 1) sin(Q r0) / (Q r0) M(r0)
    g[k] = 11.0
    r0 = r[k]
    lorch = np.sin(np.pi * r0 / 10.0) / (np.pi * r0 / 10.0)
    expected = 1 + 4 * np.pi * 0.08 * r0**2 * 0.01 * 10.0 * np.sin(q * r0) / (q * r0) * lorch
    np.testing.assert_allclose(structure_factor(r, g, 0.08, q), expected, rtol=1e-10)


def test_bad_inputs_say_what_to_do():
    li3po4 = build_crystal("li3po4") * (1, 2, 2)
    limit = max_r_ang(li3po4.cell.array)
    with pytest.raises(AnalysisError, match=f"{limit:.3f}"):
        Scattering(li3po4, r_max_ang=limit + 0.5)
    with pytest.raises(AnalysisError, match="2 pi / r_max"):
        Scattering(li3po4, q_min_inv_ang=0.1)
    with pytest.raises(AnalysisError, match="Nyquist"):
        Scattering(li3po4, dr_ang=0.2, q_max_inv_ang=20)
    si = Atoms("SiO2", positions=[[0, 0, 0], [1.6, 0, 0], [0, 1.6, 0]], cell=[8] * 3, pbc=True)
    with pytest.raises(ConfigError, match="Si.*Li, N, O, P, S, Co"):
        Scattering(si)
    with pytest.raises(TrajectoryError, match="periodic box"):
        Scattering(Atoms("PO", positions=[[0, 0, 0], [1.5, 0, 0]]))


def test_cli_structure_writes_json_and_figures(cli_runner, tmp_path):
    from tfbsim.cli import app
    from tfbsim.structures.io import write_structure

    base = build_crystal("li2po2n") * (2, 3, 3)
    frames = []
    for k in range(3):
        a = base.copy()
        a.rattle(0.03, seed=k)
        frames.append(a)
    path = tmp_path / "glass.extxyz"
    write_structure(path, frames)
    out = tmp_path / "out"
    result = cli_runner.invoke(app, ["analyze", "structure", str(path), "--dr-ang", "0.02", "--qmax-inv-ang", "15",
                                     "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "structure.json").read_text())
    assert data["provenance"]["config"]["qmax_inv_ang"] == 15
    assert data["scattering"]["cn"]["P-N"] == pytest.approx(2.0)
    assert data["bond_angles"]["count"]["P-N-P"] > 0
    assert any(row["quantity"] == "P-N bond length (bridging N)" for row in data["comparison"])
    assert sorted(p.name for p in out.glob("*.png")) == ["G_r.png", "S_q.png", "bond_angles.png", "partial_gr.png"]

    bad = tmp_path / "bad"
    for args, text in ((["--rmax-ang", "30"], "half the shortest"), (["--qmax-inv-ang", "500"], "Nyquist")):
        result = cli_runner.invoke(app, ["analyze", "structure", str(path), "--out", str(bad), *args])
        assert result.exit_code == 2 and text in result.output, result.output
        assert not bad.exists()
    nobox = tmp_path / "nobox.xyz"
    write_structure(nobox, Atoms("PO", positions=[[0, 0, 0], [1.5, 0, 0]]))
    result = cli_runner.invoke(app, ["analyze", "structure", str(nobox), "--out", str(bad)])
    assert result.exit_code == 2 and "periodic box" in result.output and not bad.exists()


def test_first_minimum_with_depth_skips_noise_on_the_peak_flank():
    from tfbsim.analysis.rdf import first_minimum

    r = np.arange(0.0, 6.0, 0.02)
    g = 3.0 * np.exp(-((r - 2.0) / 0.3) ** 2) + 1.0 * (r > 3.0)  # a shell, a gap, then the continuum
    g = g + 1.0 * np.exp(-((r - 2.2) / 0.06) ** 2)  # a noise bump on the falling flank, above half the peak
    assert first_minimum(r, g) < 2.15  # the flank "minimum" a short run shows
    assert 2.7 < first_minimum(r, g, depth=0.5) < 3.0  # the real end of the first shell
