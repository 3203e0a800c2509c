"""Physics of the MD engine: NVE drift, canonical temperature and kinetic-energy fluctuations, MTK pressure,
faithful ASE adapters, fixed atoms, temperature ramps, initial velocities."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _md_util import TestEMT, cu_cubic, cu_small
from ase import units
from ase.md.bussi import Bussi
from ase.md.nose_hoover_chain import IsotropicMTKNPT, MaskedMTKNPT, MTKNPT, NoseHooverChainNVT

from tfbsim.workflows.md.run import run_md
from tfbsim.workflows.md.config import MDConfig, temperature_at
from tfbsim.workflows.md.engines.thermostats import TfbBussi, TfbIsotropicMTK, TfbMaskedMTK, TfbMTK, TfbNoseHooverChain

QUIET = dict(traj_every=10**6, checkpoint_every=10**6)


def _with_velocities(atoms, temperature_k=500.0, seed=0):
    rng = np.random.default_rng(seed)
    masses = atoms.get_masses()
    p = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * temperature_k)[:, None]
    p -= masses[:, None] * p.sum(axis=0) / masses.sum()
    atoms.set_momenta(p)
    atoms.calc = TestEMT()
    return atoms


# ------------------------------------------------------------------------------------- adapters vs ASE
@pytest.mark.parametrize(
    "ours,theirs,extra",
    [
        (TfbNoseHooverChain, NoseHooverChainNVT, {}),
        (TfbIsotropicMTK, IsotropicMTKNPT, {"pressure_au": 1.0 * units.GPa, "pdamp": 200 * units.fs}),
        (TfbMTK, MTKNPT, {"pressure_au": 1.0 * units.GPa, "pdamp": 200 * units.fs}),
        (TfbMaskedMTK, MaskedMTKNPT, {"pressure_au": 1.0 * units.GPa, "pdamp": 200 * units.fs, "mask": np.array([False, True, True])}),
    ],
)
def test_adapters_reproduce_ase_with_3n_degrees_of_freedom(ours, theirs, extra):
    """With ndof = 3N our subclasses are ASE's integrators bit for bit (they only change the dof count)."""
    dt, tdamp = 4 * units.fs, 50 * units.fs
    a = _with_velocities(cu_small())
    b = _with_velocities(cu_small())
    ase_dyn = theirs(a, dt, temperature_K=400, tdamp=tdamp, **extra)
    our_extra = dict(extra)
    our_dyn = ours(b, dt, temperature_k=400, tdamp=tdamp, ndof=3 * len(b), **our_extra)
    for _ in range(25):
        ase_dyn.step()
        our_dyn.step()
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell.array, b.cell.array)
    # and ndof = 3N - 3 does change the dynamics (the adapter is not a no-op)
    c = _with_velocities(cu_small())
    other = ours(c, dt, temperature_k=400, tdamp=tdamp, ndof=3 * len(c) - 3, **our_extra)
    for _ in range(25):
        other.step()
    assert not np.allclose(a.positions, c.positions, atol=1e-10)


def test_bussi_adapter_matches_ase_and_retunes():
    a = _with_velocities(cu_small())
    b = _with_velocities(cu_small())
    ase_dyn = Bussi(a, 4 * units.fs, temperature_K=400, taut=50 * units.fs, rng=np.random.default_rng(5))
    ours = TfbBussi(b, 4 * units.fs, temperature_k=400, taut=50 * units.fs, rng=np.random.default_rng(5))
    for _ in range(20):
        ase_dyn.step()
        ours.step()
    assert np.array_equal(a.positions, b.positions)
    ours.set_temperature_k(800)
    assert ours.target_kinetic_energy == pytest.approx(0.5 * 800 * units.kB * ours.ndof)


# --------------------------------------------------------------------------------------------- NVE
def test_nve_energy_is_conserved_with_emt():
    """Velocity Verlet on EMT Cu: |E(t) - E(0)| stays below 2e-4 eV/atom over 1 ps at 2 fs (and the bound is
    tight enough to catch a 15 fs step)."""
    atoms = cu_cubic(2)
    good = run_md(atoms, TestEMT(), MDConfig(ensemble="nve", steps=500, timestep_fs=2, initial_temperature_k=600,
                                             log_every=5, **QUIET))
    drift = np.abs(good.log["etot_ev"] - good.log["etot_ev"][0]).max() / len(atoms)
    assert drift < 2e-4
    assert np.allclose(good.log["conserved_ev"], good.log["etot_ev"])
    bad = run_md(atoms, TestEMT(), MDConfig(ensemble="nve", steps=100, timestep_fs=15, initial_temperature_k=600,
                                            log_every=5, guard_t_factor=None, **QUIET))
    assert np.abs(bad.log["etot_ev"] - bad.log["etot_ev"][0]).max() / len(atoms) > 2e-4


# ---------------------------------------------------------------------------------------- canonical
def _canonical_stats(ensemble, n_cells, steps, seed=3, temperature_k=300.0):
    atoms = cu_cubic(n_cells)
    config = MDConfig(ensemble=ensemble, steps=steps, timestep_fs=5, temperature_k=temperature_k,
                      initial_temperature_k=temperature_k, friction_ps_inv=20, tdamp_fs=50, pdamp_fs=500,
                      log_every=5, guard_every=500, seed=seed, **QUIET)
    result = run_md(atoms, TestEMT(), config)
    keep = result.log["time_ps"] > 1.0
    kinetic = result.log["ekin_ev"][keep]
    ndof = result.summary["ndof"]
    kt = units.kB * temperature_k
    assert ndof == 3 * len(atoms) - 3
    mean_t = result.log["T_k"][keep].mean() / temperature_k
    var_ratio = kinetic.var() / (0.5 * ndof * kt**2)  # canonical: var(K) = (ndof/2) (kT)^2
    return mean_t, var_ratio


@pytest.mark.parametrize("ensemble", ["nvt-langevin", "nvt-bussi", "nvt-nhc"])
def test_thermostats_are_canonical_quick(ensemble):
    """32 atoms, 7.5 ps: <T> within 5 % of the target and var(K) within [0.6, 1.6] of (ndof/2)(kT)^2
    (weak coupling such as Berendsen gives ~0.2, see the slow test)."""
    mean_t, var_ratio = _canonical_stats(ensemble, 2, 1500)
    assert abs(mean_t - 1) < 0.05
    assert 0.6 < var_ratio < 1.6


@pytest.mark.slow
@pytest.mark.parametrize("ensemble", ["nvt-langevin", "nvt-bussi", "nvt-nhc"])
def test_thermostats_are_canonical(ensemble):
    """108 atoms, 50 ps: <T> within 3 %, var(K) within 20 % of canonical."""
    mean_t, var_ratio = _canonical_stats(ensemble, 3, 10000)
    assert abs(mean_t - 1) < 0.03
    assert 0.8 < var_ratio < 1.2


@pytest.mark.slow
def test_berendsen_is_not_canonical():
    """The control that shows the fluctuation test can fail: Berendsen suppresses var(K)."""
    mean_t, var_ratio = _canonical_stats("npt-berendsen", 2, 3000)
    assert abs(mean_t - 1) < 0.05
    assert var_ratio < 0.6


# --------------------------------------------------------------------------------------------- NPT
def test_mtk_mean_pressure_reaches_target_quick():
    """Isotropic MTK at 4 GPa (the NVT pressure of this cell is ~1.7 GPa): <P> within 0.3 GPa, volume shrinks."""
    atoms = cu_cubic(2)
    result = run_md(atoms, TestEMT(), MDConfig(ensemble="npt-mtk", pressure_gpa=4.0, steps=800, timestep_fs=5,
                                               initial_temperature_k=300, tdamp_fs=50, pdamp_fs=200, log_every=5,
                                               **QUIET))
    keep = result.log["time_ps"] > 1.5
    assert result.log["pressure_gpa"][keep].mean() == pytest.approx(4.0, abs=0.3)
    assert result.log["volume_ang3"][keep].mean() < atoms.get_volume() - 2.0
    assert np.isfinite(result.log["conserved_ev"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("axes", ["isotropic", "anisotropic", "full"])
def test_mtk_mean_pressure_reaches_target(axes):
    atoms = cu_cubic(3)
    result = run_md(atoms, TestEMT(), MDConfig(ensemble="npt-mtk", barostat_axes=axes, pressure_gpa=4.0, steps=4000,
                                               timestep_fs=5, initial_temperature_k=300, tdamp_fs=50, pdamp_fs=300,
                                               log_every=5, **QUIET))
    keep = result.log["time_ps"] > 3.0
    assert result.log["pressure_gpa"][keep].mean() == pytest.approx(4.0, abs=0.15)
    assert result.log["T_k"][keep].mean() == pytest.approx(300, rel=0.05)


# ------------------------------------------------------------------------------------- fixed atoms
def _with_fixed_bottom(atoms):
    fixed = atoms.positions[:, 2] < atoms.positions[:, 2].min() + 0.5
    atoms.arrays["fixed"] = fixed
    return atoms, fixed


@pytest.mark.parametrize("ensemble", ["nvt-langevin", "nvt-nhc", "nvt-bussi", "nve"])
def test_fixed_atoms_stay_put(ensemble):
    atoms, fixed = _with_fixed_bottom(cu_cubic(2))
    result = run_md(atoms, TestEMT(), MDConfig(ensemble=ensemble, steps=60, timestep_fs=5, initial_temperature_k=600,
                                               **QUIET))
    assert np.array_equal(result.atoms.positions[fixed], atoms.positions[fixed])
    assert not np.allclose(result.atoms.positions[~fixed], atoms.positions[~fixed])
    assert np.all(result.atoms.get_velocities()[fixed] == 0)
    assert result.summary["ndof"] == 3 * int((~fixed).sum())
    assert result.atoms.arrays["fixed"].tolist() == fixed.tolist()


@pytest.mark.parametrize("ensemble", ["nvt-nhc", pytest.param("npt-mtk", marks=pytest.mark.slow)])
def test_free_atoms_of_a_slab_reach_the_target_temperature(ensemble):
    """ASE's Nosé–Hoover chain alone thermalised this slab's free atoms to ~112 K (bogus momenta of fixed atoms
    in its private arrays); with the adapter they reach the 300 K target."""
    atoms, fixed = _with_fixed_bottom(cu_cubic(2))
    result = run_md(atoms, TestEMT(), MDConfig(ensemble=ensemble, barostat_axes="z", steps=800, timestep_fs=5,
                                               initial_temperature_k=300, tdamp_fs=50, log_every=5, **QUIET))
    assert result.log["T_k"][result.log["time_ps"] > 1.0].mean() == pytest.approx(300, rel=0.1)


def test_z_barostat_keeps_in_plane_cell_and_fixed_fractional_coordinates():
    atoms, fixed = _with_fixed_bottom(cu_cubic(2))
    result = run_md(atoms, TestEMT(), MDConfig(ensemble="npt-mtk", barostat_axes="z", pressure_gpa=5.0, steps=120,
                                               timestep_fs=5, initial_temperature_k=300, pdamp_fs=150, **QUIET))
    final = result.atoms
    assert np.array_equal(final.cell[0], atoms.cell[0]) and np.array_equal(final.cell[1], atoms.cell[1])
    assert abs(final.cell[2, 2] - atoms.cell[2, 2]) > 1e-3
    frac_before = atoms.cell.scaled_positions(atoms.positions)[fixed]
    frac_after = final.cell.scaled_positions(final.positions)[fixed]
    assert np.allclose(frac_before, frac_after, atol=1e-12)


# ------------------------------------------------------------------------------------------ ramps
def test_temperature_schedule_is_followed():
    """A Bussi quench 900 -> 300 K: the target column follows the piecewise-linear schedule, T follows."""
    schedule = [[0.0, 900.0], [1.0, 300.0]]
    result = run_md(cu_cubic(2), TestEMT(), MDConfig(ensemble="nvt-bussi", temperature_schedule=schedule, steps=400,
                                                     timestep_fs=5, tdamp_fs=25, log_every=5, **QUIET))
    log = result.log
    expected = [temperature_at(schedule, (s - 1) * 0.005) if s else 900.0 for s in log["step"]]
    assert np.allclose(log["target_T_k"], expected)
    late = log["time_ps"] > 1.3
    assert log["T_k"][late].mean() == pytest.approx(300, rel=0.15)
    early = (log["time_ps"] > 0.05) & (log["time_ps"] < 0.2)
    assert log["T_k"][early].mean() > 600


def test_nhc_ramp_changes_temperature():
    result = run_md(cu_cubic(2), TestEMT(), MDConfig(ensemble="nvt-nhc", temperature_schedule=[[0, 300], [0.5, 900]],
                                                     steps=300, timestep_fs=5, tdamp_fs=30, log_every=5, **QUIET))
    late = result.log["time_ps"] > 0.9
    assert result.log["T_k"][late].mean() == pytest.approx(900, rel=0.2)


# -------------------------------------------------------------------------------------- velocities
def test_initial_velocities_seeded_zero_momentum_and_kept_when_asked():
    atoms = cu_cubic(2)
    cfg = MDConfig(ensemble="nvt-langevin", steps=0, initial_temperature_k=500, seed=4, **QUIET)
    a = run_md(atoms, TestEMT(), cfg).atoms
    b = run_md(atoms, TestEMT(), cfg).atoms
    c = run_md(atoms, TestEMT(), cfg.model_copy(update={"seed": 5})).atoms
    assert np.array_equal(a.get_momenta(), b.get_momenta()) and not np.allclose(a.get_momenta(), c.get_momenta())
    assert np.allclose(a.get_momenta().sum(axis=0), 0, atol=1e-12)
    assert a.get_temperature() == pytest.approx(500, rel=0.35)
    kept = run_md(a, TestEMT(), cfg.model_copy(update={"initial_temperature_k": None})).atoms
    assert np.allclose(kept.get_momenta(), a.get_momenta(), atol=1e-14)


def test_berendsen_warns_equilibration_only(caplog):
    with caplog.at_level(logging.WARNING, logger="tfbsim"):
        result = run_md(cu_small(), TestEMT(), MDConfig(ensemble="npt-berendsen", steps=5, initial_temperature_k=300,
                                                        **QUIET))
    assert "equilibration only" in caplog.text
    assert result.summary["warnings"]
