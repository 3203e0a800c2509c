"""Diffusion: FFT MSD, unwrapping, drift, GLS + jackknife D, cross-checks with MDAnalysis and kinisi, CLI.

Synthetic trajectories are Gaussian random walks with a known D per axis: ``<Δx²> = 2 D_x t``.
"""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest
from ase import Atoms

from tfbsim.analysis.diffusion import DiffusionAnalysis, LayerDiffusion
from tfbsim.analysis.diffusion_fit import brownian_msd_covariance
from tfbsim.analysis.msd import msd_sums
from tfbsim.analysis.trajectory import Trajectory
from tfbsim.errors import AnalysisError, TrajectoryError

TO_CM2_S = 1e-4  # Å²/ps -> cm²/s (independent of the library constant on purpose)
BOX = 12.0


def walk(rng, n_frames, n_li, d_axes_ang2_ps, dt_ps):
    """Unwrapped Gaussian random walks, shape (F, n, 3), starting uniformly in the box."""
    d_axes = np.broadcast_to(np.asarray(d_axes_ang2_ps, float), (3,))
    steps = rng.normal(size=(n_frames - 1, n_li, 3)) * np.sqrt(2.0 * d_axes * dt_ps)
    start = rng.random((1, n_li, 3)) * BOX
    return np.concatenate([start, start + np.cumsum(steps, axis=0)])


def frames_from(li, rng, *, wrap, n_host=60, drift_ang_ps=None, dt_ps=0.1, regions=None):
    """Atoms frames: the Li walkers plus an immobile heavy host (P, O); optional drift of everything."""
    host = rng.random((n_host, 3)) * BOX
    symbols = ["Li"] * li.shape[1] + ["P"] * (n_host // 3) + ["O"] * (n_host - n_host // 3)
    out = []
    for k, pos in enumerate(li):
        all_pos = np.vstack([pos, host])
        if drift_ang_ps is not None:
            all_pos = all_pos + np.asarray(drift_ang_ps) * k * dt_ps
        atoms = Atoms(symbols, positions=all_pos, cell=[BOX, BOX, BOX], pbc=True)
        if regions is not None:
            atoms.new_array("region", np.asarray(regions))
        if wrap:
            atoms.wrap()
        out.append(atoms)
    return out


def within(value, truth, stderr, n_sigma=3.0):
    return abs(value - truth) <= n_sigma * stderr


# ----------------------------------------------------------------------------------------------- kernels
def test_msd_sums_equal_brute_force(rng):
    x = np.cumsum(rng.normal(size=(41, 5, 3)), axis=0) + 30.0
    h = (rng.random((41, 5)) > 0.3).astype(float)
    for weights in (None, h):
        sums, counts = msd_sums(x, weights)
        hh = np.ones((41, 5)) if weights is None else weights
        for m in (0, 1, 7, 40):
            sq = (x[m:] - x[: 41 - m]) ** 2
            np.testing.assert_allclose(sums[m], (hh[: 41 - m, :, None] * sq).sum(0), rtol=1e-10, atol=1e-9)
            np.testing.assert_allclose(counts[m], hh[: 41 - m].sum(0))


def test_brownian_covariance_exact():
    n_frames, lags = 19, np.array([1, 2, 5, 9, 10, 17, 18])
    brute = np.zeros((len(lags), len(lags)))
    for i, m in enumerate(lags):
        for j, n in enumerate(lags):
            total = sum(max(0, min(a + m, b + n) - max(a, b)) ** 2 for a in range(n_frames - m)
                        for b in range(n_frames - n))
            brute[i, j] = 2.0 * total / ((n_frames - m) * (n_frames - n))
    np.testing.assert_allclose(brownian_msd_covariance(lags, n_frames), brute, rtol=1e-12)


def test_constant_velocity_msd_is_v2_t2():
    v = np.array([0.3, -0.2, 0.1])  # Å/ps
    frames = [Atoms("Li2", positions=[[1, 1, 1], [5, 5, 5]], cell=[50] * 3, pbc=True) for _ in range(30)]
    for k, atoms in enumerate(frames):
        atoms.positions += v * k * 0.5
    res = DiffusionAnalysis(frames, dt_fs=500.0, remove_drift=False).run().results
    np.testing.assert_allclose(res.msd_ang2, (v @ v) * res.lag_ps**2, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(res.msd_components_ang2[:, 2], v[2] ** 2 * res.lag_ps**2, rtol=1e-9, atol=1e-10)


# ------------------------------------------------------------------------------------------ recovery of D
def test_isotropic_D_wrapped_equals_unwrapped_and_is_recovered(rng):
    d_true, dt = 0.08, 0.1
    li = walk(rng, 300, 40, d_true, dt)
    seed = int(rng.integers(1 << 30))
    wrapped = frames_from(li, np.random.default_rng(seed), wrap=True)
    unwrapped = frames_from(li, np.random.default_rng(seed), wrap=False)
    a = DiffusionAnalysis(wrapped, dt_fs=dt * 1000).run().results
    b = DiffusionAnalysis(unwrapped, dt_fs=dt * 1000).run().results
    assert a.unwrapped_jumps > 10  # the walkers did cross the box
    np.testing.assert_allclose(a.msd_ang2, b.msd_ang2, rtol=1e-9, atol=1e-9)
    assert within(a.D_cm2_s, d_true * TO_CM2_S, a.D_stderr_cm2_s)
    lo, hi = a.fit.D_ci95_cm2_s
    assert lo < a.D_cm2_s < hi and a.fit.dof == 39 and a.n_atoms == 40
    # the error bar is neither vacuous nor overconfident: close to the ideal random-walk error
    assert 0.5 < a.D_stderr_cm2_s / a.fit.D_model_stderr_cm2_s < 2.0
    assert a.D_stderr_cm2_s < 0.25 * a.D_cm2_s
    assert 0.8 < a.fit.loglog_slope < 1.2


def test_wrapped_input_is_reported(rng, caplog):
    li = walk(rng, 100, 10, 0.2, 0.1)
    with caplog.at_level(logging.WARNING, logger="tfbsim"):
        DiffusionAnalysis(frames_from(li, rng, wrap=True), dt_fs=100).run()
    assert "unwrapped" in caplog.text and "boundary crossings" in caplog.text


def test_anisotropic_D_per_axis(rng):
    d_axes, dt = np.array([0.20, 0.08, 0.01]), 0.1
    li = walk(rng, 400, 50, d_axes, dt)
    analysis = DiffusionAnalysis(frames_from(li, rng, wrap=True), dt_fs=dt * 1000, axis="xyz").run()
    expected = {"x": d_axes[0], "y": d_axes[1], "z": d_axes[2], "xy": d_axes[:2].mean(), "xyz": d_axes.mean()}
    for axis, d_true in expected.items():
        fit = analysis.fit(axis=axis)
        assert within(fit.D_cm2_s, d_true * TO_CM2_S, fit.D_stderr_cm2_s), (axis, fit.D_cm2_s, d_true)
    # z is resolved from x: their intervals do not overlap
    assert analysis.fit(axis="z").D_ci95_cm2_s[1] < analysis.fit(axis="x").D_ci95_cm2_s[0]
    assert analysis.fit(axis="z").n_dimensions == 1 and analysis.fit(axis="xy").n_dimensions == 2


def test_drift_is_removed(rng):
    d_true, dt = 0.05, 0.1
    li = walk(rng, 300, 30, d_true, dt)
    seed = int(rng.integers(1 << 30))
    drifting = frames_from(li, np.random.default_rng(seed), wrap=True, drift_ang_ps=[0.4, -0.3, 0.2], dt_ps=dt)
    res = DiffusionAnalysis(drifting, dt_fs=dt * 1000).run().results
    assert within(res.D_cm2_s, d_true * TO_CM2_S, res.D_stderr_cm2_s)
    raw = DiffusionAnalysis(drifting, dt_fs=dt * 1000, remove_drift=False).run().results
    assert raw.D_cm2_s > res.fit.D_ci95_cm2_s[1]  # drift left in inflates D
    # drift measured on the host only gives the same answer
    host = np.arange(30, 90)
    ref = DiffusionAnalysis(drifting, dt_fs=dt * 1000, drift_reference_indices=host).run().results
    assert within(ref.D_cm2_s, d_true * TO_CM2_S, ref.D_stderr_cm2_s)


# ------------------------------------------------------------------------------------- independent libraries
def _memory_universe(positions, dt_ps, symbols):
    import MDAnalysis as mda
    from MDAnalysis.coordinates.memory import MemoryReader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe.empty(positions.shape[1], trajectory=False)
        u.add_TopologyAttr("names", symbols)
        u.add_TopologyAttr("elements", symbols)
        dims = np.tile([BOX * 10, BOX * 10, BOX * 10, 90, 90, 90], (len(positions), 1))
        u.load_new(positions.astype(np.float32), format=MemoryReader, dt=dt_ps, dimensions=dims)
    return u


@pytest.mark.parametrize("axis", ["xyz", "xy", "z"])
def test_msd_equals_mdanalysis_einstein_fft(rng, axis):
    from MDAnalysis.analysis.msd import EinsteinMSD

    li = walk(rng, 250, 12, [0.1, 0.05, 0.02], 0.1)
    host = np.repeat((rng.random((1, 6, 3)) * BOX), len(li), axis=0)
    u = _memory_universe(np.concatenate([li, host], axis=1), 0.1, ["Li"] * 12 + ["O"] * 6)
    ref = EinsteinMSD(u, select="name Li", msd_type=axis, fft=True).run()
    ours = DiffusionAnalysis.from_universe(u, axis=axis, remove_drift=False, unwrap=False).run().results
    np.testing.assert_allclose(ours.lag_ps, ref.results.delta_t_values, rtol=1e-6)
    np.testing.assert_allclose(ours.msd_ang2[1:], ref.results.timeseries[1:], rtol=1e-6)


def test_D_agrees_with_kinisi(rng):
    import scipp as sc
    from kinisi.analyze import DiffusionAnalyzer

    d_true, dt, n_frames = 0.1, 0.1, 160
    li = walk(rng, n_frames, 24, d_true, dt)
    frames = frames_from(li, rng, wrap=True, dt_ps=dt)
    ours = DiffusionAnalysis(frames, dt_fs=dt * 1000, fit_start_ps=1.6).run().results
    kin = DiffusionAnalyzer.from_ase(frames, specie="Li", time_step=sc.scalar(dt * 1000, unit="fs"),
                                     step_skip=sc.scalar(1), progress=False)
    kin.diffusion(sc.scalar(1.6, unit="ps"), n_samples=300, n_burn=300, n_thin=1, progress=False,
                  random_state=np.random.RandomState(1))
    d_k = sc.to_unit(kin.D, "cm^2/s").values
    k_mean, k_std = float(np.mean(d_k)), float(np.std(d_k))
    combined = np.hypot(ours.D_stderr_cm2_s, k_std)
    assert abs(ours.D_cm2_s - k_mean) < combined, (ours.D_cm2_s, k_mean, combined)
    # both estimate the same uncertainty (within a factor of 2), and both cover the truth at 3 sigma
    assert 0.5 < ours.D_stderr_cm2_s / k_std < 2.0
    assert within(k_mean, d_true * TO_CM2_S, k_std) and within(ours.D_cm2_s, d_true * TO_CM2_S, ours.D_stderr_cm2_s)


# ------------------------------------------------------------------------------------------ regions, layers
def _two_layer_walk(rng, n_frames=300, n_per_layer=30, d_low=0.15, d_high=0.03, dt=0.1):
    """In-plane walkers: bottom half (z < 6) with d_low, top half with d_high; z stays fixed."""
    li = np.concatenate([walk(rng, n_frames, n_per_layer, [d_low, d_low, 0.0], dt),
                         walk(rng, n_frames, n_per_layer, [d_high, d_high, 0.0], dt)], axis=1)
    li[:, :n_per_layer, 2] = 1.0 + 4.0 * rng.random(n_per_layer)
    li[:, n_per_layer:, 2] = 7.0 + 4.0 * rng.random(n_per_layer)
    regions = ["bottom"] * n_per_layer + ["top"] * n_per_layer + ["host"] * 60
    return li, regions


def test_region_z_window_and_layer_profile(rng):
    dt = 0.1
    li, regions = _two_layer_walk(rng)
    frames = frames_from(li, rng, wrap=True, regions=regions, dt_ps=dt)
    by_region = DiffusionAnalysis(frames, dt_fs=100, region="bottom", axis="xy").run().results
    by_window = DiffusionAnalysis(frames, dt_fs=100, z_window_ang=(0.0, 6.0), axis="xy").run().results
    assert by_region.n_atoms == 30 and by_window.n_atoms == 30
    np.testing.assert_allclose(by_window.D_cm2_s, by_region.D_cm2_s, rtol=1e-9)
    assert within(by_region.D_cm2_s, 0.15 * TO_CM2_S, by_region.D_stderr_cm2_s)
    layers = LayerDiffusion(frames, dt_fs=100, z_edges_ang=[0.0, 6.0, 12.0]).run().results
    assert within(layers.D_cm2_s[0], 0.15 * TO_CM2_S, layers.D_stderr_cm2_s[0])
    assert within(layers.D_cm2_s[1], 0.03 * TO_CM2_S, layers.D_stderr_cm2_s[1])
    assert layers.D_ci95_cm2_s[1, 1] < layers.D_ci95_cm2_s[0, 0]
    np.testing.assert_allclose(layers.occupancy, [30, 30])
    # z-window volume: area × thickness, carriers = mean occupancy
    assert by_window.volume_ang3 == pytest.approx(BOX * BOX * 6.0)


# --------------------------------------------------------------------------------------- inputs, contract
def test_h5md_time_and_temperature(tmp_path, rng):
    from tfbsim.workflows.md.h5md import H5MDWriter

    dt, d_true = 0.05, 0.1
    li = walk(rng, 200, 20, d_true, dt)
    host = rng.random((40, 3)) * BOX
    numbers = np.array([3] * 20 + [8] * 40)
    path = tmp_path / "traj.h5md"
    with H5MDWriter(path, numbers, metadata={"temperature_k": 700.0, "timestep_fs": 1.0},
                    precision="float64") as writer:
        for k, pos in enumerate(li):
            writer.append(np.vstack([pos, host]), np.eye(3) * BOX, 50 * k, dt * k)
    res = DiffusionAnalysis.from_file(path).run().results
    assert res.temperature_k == 700.0 and res.dt_fs == pytest.approx(50.0) and res.unwrapped_jumps == 0
    assert within(res.D_cm2_s, d_true * TO_CM2_S, res.D_stderr_cm2_s)
    # Nernst–Einstein by hand: n e² D / (k T), n = 20 / box volume
    n_cm3 = 20 / (BOX**3 * 1e-24)
    expected = n_cm3 * (1.602176634e-19) ** 2 * res.D_cm2_s / (1.380649e-23 * 700.0)
    assert res.sigma_ne_S_cm == pytest.approx(expected, rel=1e-9)
    assert res.sigma_ne_stderr_S_cm == pytest.approx(expected * res.D_stderr_cm2_s / res.D_cm2_s, rel=1e-9)


def test_contract_and_errors(tmp_path, rng):
    from ase.io import write

    li = walk(rng, 20, 4, 0.1, 0.1)
    frames = frames_from(li, rng, wrap=True, n_host=6)
    analysis = DiffusionAnalysis(frames, dt_fs=100)
    with pytest.raises(AnalysisError, match="run\\(\\)"):
        analysis.results
    assert analysis.run() is analysis
    path = tmp_path / "t.extxyz"
    write(path, frames)
    with pytest.raises(TrajectoryError, match="--dt-fs"):
        DiffusionAnalysis(path)
    with pytest.raises(AnalysisError, match="no atoms"):
        DiffusionAnalysis(frames, dt_fs=100, species="Na")
    with pytest.raises(AnalysisError, match="axis"):
        DiffusionAnalysis(frames, dt_fs=100, axis="w")
    with pytest.raises(AnalysisError, match="exceeds"):
        DiffusionAnalysis(frames, dt_fs=100, fit_end_ps=50.0)
    assert DiffusionAnalysis(Trajectory(path, dt_fs=100)).n_frames == 20


ISSUE_KEYS = {"species", "n_atoms", "temperature_k", "dt_fs", "n_frames", "axis", "D_cm2_s", "D_stderr_cm2_s",
              "fit_start_ps", "fit_end_ps", "loglog_slope", "msd", "volume_ang3", "sigma_ne_S_cm",
              "sigma_ne_stderr_S_cm", "haven_ratio"}
#: Issue 19: the trust checks (diffusive MSD, rigid network) and the interval travel with every record.
TRUST_KEYS = {"D_ci95_cm2_s", "diffusive", "diffusive_check", "network_flows", "network"}


def test_cli_diffusion(tmp_path, rng, cli_runner):
    from ase.io import write

    from tfbsim.cli import app

    li = walk(rng, 120, 16, 0.1, 0.1)
    traj = tmp_path / "traj.extxyz"
    write(traj, frames_from(li, rng, wrap=True))
    out, png = tmp_path / "d.json", tmp_path / "msd.png"
    missing = cli_runner.invoke(app, ["analyze", "diffusion", str(traj), "--json", str(out)])
    assert missing.exit_code == 2 and "--dt-fs" in missing.output and not out.exists()
    result = cli_runner.invoke(app, ["analyze", "diffusion", str(traj), "--dt-fs", "100", "--temperature-k",
                                     "800", "--axis", "xy", "--json", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == ISSUE_KEYS | TRUST_KEYS | {"provenance"}
    assert data["axis"] == "xy" and data["n_atoms"] == 16 and data["temperature_k"] == 800.0
    assert set(data["msd"]) == {"lag_ps", "msd_ang2"} and len(data["msd"]["lag_ps"]) == 120
    assert data["sigma_ne_S_cm"] > 0 and data["volume_ang3"] == pytest.approx(BOX**3)
    assert png.stat().st_size > 10_000
    assert "D =" in result.output


# ----------------------------------------------------------------------------------------- calibration
@pytest.mark.slow
def test_interval_coverage_calibration():
    """Over independent walks through the full pipeline (wrapped, drifting, host), the 95 % interval covers D."""
    rng = np.random.default_rng(2026)
    d_axes, dt, n_walks = np.array([0.1, 0.1, 0.04]), 0.1, 500
    hits = {"xyz": 0, "z": 0}
    for _ in range(n_walks):
        li = walk(rng, 200, 20, d_axes, dt)
        frames = frames_from(li, rng, wrap=True, n_host=90, drift_ang_ps=rng.normal(0, 0.2, 3), dt_ps=dt)
        analysis = DiffusionAnalysis(frames, dt_fs=dt * 1000).run()
        for axis, truth in (("xyz", d_axes.mean()), ("z", d_axes[2])):
            lo, hi = analysis.fit(axis=axis).D_ci95_cm2_s
            hits[axis] += lo <= truth * TO_CM2_S <= hi
    coverage = {axis: round(n / n_walks, 3) for axis, n in hits.items()}
    print(f"95 % interval coverage over {n_walks} walks: {coverage}")
    for value in coverage.values():
        assert 0.90 <= value <= 0.99
