"""Issue 19/22: diffusive and network checks, flagged Arrhenius fits and arrhenius.json statuses,
collective transport (charge MSD, Haven ratio, kinisi cross-check), mechanism diagnostics, the transport CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms

from tfbsim.analysis.collective import CollectiveTransport, combine_collective
from tfbsim.analysis.diffusion import DiffusionAnalysis
from tfbsim.analysis.diffusion_checks import (DiffusiveCriteria, NetworkCriteria, classify_diffusion_record,
                                              is_diffusive, network_mobility)
from tfbsim.analysis.mechanism import Hops, NonGaussian, SelfVanHove, detect_hops
from tfbsim.analysis.transport import arrhenius_from_results, nernst_einstein_sigma_S_cm
from tfbsim.errors import AnalysisError

BOX = 14.0


def _walk(rng, n_frames, n, d, dt, pairs=False):
    m = n // 2 if pairs else n
    steps = rng.normal(size=(n_frames - 1, m, 3)) * np.sqrt(2.0 * d * dt)
    if pairs:  # two ions always make the same step: collective D doubled, H = 0.5
        steps = np.repeat(steps, 2, axis=1)
    start = rng.random((1, n, 3)) * BOX
    return np.concatenate([start, start + np.cumsum(steps, axis=0)])


def _frames(li, host, *, host_d=0.0, dt=0.1, rng=None, wrap=False):
    """Li walkers + a P/O host (immobile, or diffusing with host_d Å²/ps)."""
    n_host = len(host)
    symbols = ["Li"] * li.shape[1] + ["P"] * (n_host // 4) + ["O"] * (n_host - n_host // 4)
    host_traj = np.repeat(host[None], len(li), axis=0)
    if host_d:
        host_traj = host_traj + np.concatenate([np.zeros((1, n_host, 3)), np.cumsum(
            rng.normal(size=(len(li) - 1, n_host, 3)) * np.sqrt(2 * host_d * dt), axis=0)])
    out = []
    for pos, hpos in zip(li, host_traj):
        atoms = Atoms(symbols, positions=np.vstack([pos, hpos]), cell=[BOX] * 3, pbc=True)
        if wrap:
            atoms.wrap()
        out.append(atoms)
    return out


# ------------------------------------------------------------------------------------------- diffusive check
def test_is_diffusive_slope_and_magnitude():
    t = np.linspace(0, 100, 1001)
    ok = is_diffusive(t, 6 * 1.0 * t + 2.0, fit_start_ps=10, fit_end_ps=50)
    assert ok.diffusive and ok.bound is None and 0.9 < ok.loglog_slope <= 1.0 and ok.msd_end_ang2 == pytest.approx(302)
    short = is_diffusive(t, 6 * 0.05 * t, fit_start_ps=10, fit_end_ps=50)  # linear but only 15 Å²
    assert not short.diffusive and short.bound == "upper" and "Å²" in short.reason
    assert is_diffusive(t, 6 * 0.05 * t, fit_start_ps=10, fit_end_ps=50,
                        criteria=DiffusiveCriteria(min_msd_ang2=10)).diffusive
    caged = is_diffusive(t, 40 * (1 - np.exp(-t / 20)), fit_start_ps=10, fit_end_ps=50)
    assert not caged.diffusive and caged.bound == "upper" and caged.loglog_slope < 0.9
    ballistic = is_diffusive(t, 0.5 * t**2, fit_start_ps=10, fit_end_ps=50)
    assert not ballistic.diffusive and ballistic.bound is None and "super" in ballistic.reason
    with pytest.raises(AnalysisError, match="window"):
        is_diffusive(t, t, fit_start_ps=200, fit_end_ps=300)


def test_network_mobility_rise_threshold():
    t = np.linspace(0, 10, 101)
    plateau = 0.8 * (1 - np.exp(-t / 0.1))
    rigid = network_mobility(t, {"P": plateau, "O": plateau + 0.2}, fit_start_ps=1, fit_end_ps=5)
    assert rigid.network_flows is False and rigid.flowing_species == []
    flowing = network_mobility(t, {"P": plateau, "O": plateau + 0.5 * t}, fit_start_ps=1, fit_end_ps=5)
    assert flowing.network_flows is True and flowing.flowing_species == ["O"]
    assert flowing.per_species["O"]["rise_ang2"] == pytest.approx(2.0, abs=1e-3)
    few = network_mobility(t, {"O": plateau + 0.5 * t}, fit_start_ps=1, fit_end_ps=5, n_atoms_by_species={"O": 2})
    assert few.network_flows is None  # too few atoms to judge
    assert network_mobility(t, {"O": plateau + 0.5 * t}, fit_start_ps=1, fit_end_ps=5,
                            criteria=NetworkCriteria(max_rise_ang2=3.0)).network_flows is False


def test_diffusion_analysis_flags_a_flowing_host(rng):
    li = _walk(rng, 200, 12, 1.0, 0.1)
    host = rng.random((24, 3)) * BOX
    rigid = DiffusionAnalysis(_frames(li, host), dt_fs=100, unwrap=False).run().results
    assert rigid.network.network_flows is False and rigid.diffusive.diffusive
    rec = rigid.to_dict()
    assert rec["network_flows"] is False and rec["diffusive"] is True and set(rec["network"]["msd"]["species"]) == {"P", "O"}
    flowing = DiffusionAnalysis(_frames(li, host, host_d=0.2, rng=rng), dt_fs=100, unwrap=False).run().results
    assert flowing.network.network_flows is True and set(flowing.network.flowing_species) == {"P", "O"}
    assert classify_diffusion_record(flowing.to_dict())["status"] == "excluded_network_flows"
    assert classify_diffusion_record(rec)["status"] == "fitted"
    assert classify_diffusion_record(rec, diffusive=DiffusiveCriteria(min_msd_ang2=1e4))["status"] == "bound_not_diffusive"


# ---------------------------------------------------------------------------------- flagged Arrhenius fits
def _record(t_k, d_cm2_s, *, msd_scale=1.0, flows=False):
    lag = np.linspace(0, 1000, 201)
    d_ang2_ps = d_cm2_s / 1e-4
    return {"species": "Li", "temperature_k": t_k, "D_cm2_s": d_cm2_s, "D_stderr_cm2_s": 0.05 * d_cm2_s,
            "n_atoms": 40, "volume_ang3": 2000.0, "fit_start_ps": 100.0, "fit_end_ps": 500.0,
            "msd": {"lag_ps": lag.tolist(), "msd_ang2": (6 * d_ang2_ps * lag * msd_scale).tolist()},
            "network": {"network_flows": flows, "reason": "network flows: O" if flows else "rigid",
                        "per_species": {"O": {"rise_ang2": 2.0 if flows else 0.1, "judged": True}}}}


def _ea_records(ea=0.5):
    temps = [600.0, 700.0, 800.0, 900.0, 1000.0]
    d = [1e-2 * np.exp(-ea / (8.617333e-5 * t)) for t in temps]
    return temps, d


def test_arrhenius_leaves_out_flagged_points_and_says_which():
    temps, d = _ea_records()
    recs = [_record(t, di) for t, di in zip(temps, d)]
    recs[0]["msd"]["msd_ang2"] = (np.asarray(recs[0]["msd"]["msd_ang2"]) * 0 + 1e-3 * np.linspace(0, 1000, 201)).tolist()
    recs[-1]["network"] = _record(1000, 1)["network"] | {"network_flows": True, "reason": "network flows: O"}
    recs[-1]["D_cm2_s"] *= 5  # a molten point far off the line
    fit = arrhenius_from_results(recs)
    status = {p["temperature_k"]: p["status"] for p in fit.points_status}
    assert status == {600.0: "bound_not_diffusive", 700.0: "fitted", 800.0: "fitted", 900.0: "fitted",
                      1000.0: "excluded_network_flows"}
    assert list(fit.temperature_k) == [700.0, 800.0, 900.0] and fit.Ea_eV == pytest.approx(0.5, abs=1e-6)
    rec = fit.to_dict()
    assert rec["temperatures_used_k"] == [700.0, 800.0, 900.0] and rec["Ea_ci95_eV"][0] <= 0.5 <= rec["Ea_ci95_eV"][1]
    everything = arrhenius_from_results(recs, exclude_flagged=False)
    assert len(everything.temperature_k) == 5 and abs(everything.Ea_eV - 0.5) > 0.01
    with pytest.raises(AnalysisError, match="600 K bound_not_diffusive"):
        arrhenius_from_results(recs[:1] + recs[-1:])


def test_campaign_report_lists_every_temperature_with_status(tmp_path):
    from tfbsim.workflows.campaigns.report import task_table_row, write_report

    temps, d = _ea_records()
    recs = [_record(t, di) for t, di in zip(temps[1:4], d[1:4])] + [_record(1000.0, d[4], flows=True)]
    summaries = {600.0: {"status": "unstable", "reason": "guard tripped: T > 5000 K"},
                 650.0: {"status": "failed", "reason": "OOM"}}
    rows = []
    for t in [600.0, 650.0, *temps[1:]]:
        s = summaries.get(t, {"status": "completed"})
        rows.append(task_table_row(f"g/T{t:g}K/r0", "g", t, 0, s))
    out = write_report(tmp_path, name="c", description="", rows=rows, diffusion={"g": recs}, arrhenius_target_k=300.0)
    data = json.loads((tmp_path / "arrhenius.json").read_text())["g"]
    assert data == json.loads(json.dumps(out["g"], default=str)) or "Ea_eV" in data
    by_t = {e["temperature_k"]: (e["status"], e["reason"]) for e in data["temperatures"]}
    assert by_t[600.0] == ("unstable", "guard tripped: T > 5000 K") and by_t[650.0][0] == "failed"
    assert by_t[1000.0][0] == "excluded_network_flows" and by_t[700.0][0] == "fitted"
    assert data["temperatures_used_k"] == [700.0, 800.0, 900.0] and data["n_points"] == 3
    assert data["Ea_eV"] == pytest.approx(0.5, abs=1e-6) and "unfiltered" in data
    assert data["excluded"] == {"excluded_network_flows": [1000.0], "failed": [650.0], "unstable": [600.0]}
    md = (tmp_path / "summary.md").read_text()
    assert "**excluded_network_flows**" in md and "**unstable**" in md
    assert (tmp_path / "plots" / "arrhenius_all.png").stat().st_size > 1000


# ------------------------------------------------------------------------------------- collective transport
def _collective(rng, pairs, n_frames=2400, n_blocks=20):
    li = _walk(rng, n_frames, 16, 0.1, 0.1, pairs=pairs)
    host = rng.random((20, 3)) * BOX
    return CollectiveTransport(_frames(li, host), dt_fs=100, temperature_k=800.0, n_blocks=n_blocks, unwrap=False,
                               drift_reference_indices=np.arange(16, 36)).run().results


def test_haven_ratio_independent_and_paired_walkers(rng):
    free = _collective(rng, pairs=False)
    lo, hi = free.haven_ratio_ci95
    assert lo < 1.0 < hi and free.D_tracer_cm2_s == pytest.approx(1e-5, rel=0.05)
    pairs = _collective(rng, pairs=True)
    lo, hi = pairs.haven_ratio_ci95
    assert lo < 0.5 < hi and hi < 0.8, pairs.haven_ratio_ci95  # H = 0.5 by construction, and clearly not 1
    assert pairs.D_sigma_cm2_s == pytest.approx(2e-5, rel=0.25)
    assert pairs.sigma_collective_S_cm / pairs.sigma_ne_S_cm == pytest.approx(1 / pairs.haven_ratio, rel=1e-9)
    sigma_ne = nernst_einstein_sigma_S_cm(pairs.D_tracer_cm2_s, n_carriers=16, volume_ang3=BOX**3, temperature_k=800)[0]
    assert pairs.sigma_ne_S_cm == pytest.approx(sigma_ne, rel=1e-9)
    both = combine_collective([free, free])
    assert both.n_blocks == 40 and both.haven_ratio == pytest.approx(free.haven_ratio)
    rec = pairs.to_dict()
    assert json.dumps(rec) and len(rec["blocks"]["D_sigma_cm2_s"]) == 20


def test_collective_sigma_agrees_with_kinisi(rng):
    import scipp as sc
    from kinisi.analyze import ConductivityAnalyzer

    dt, n_frames = 0.1, 300
    li = _walk(rng, n_frames, 16, 0.2, dt)
    frames = _frames(li, rng.random((20, 3)) * BOX, wrap=True)
    ours = CollectiveTransport(frames, dt_fs=dt * 1000, temperature_k=600.0, n_blocks=1, fit_start_ps=3.0,
                               fit_end_ps=15.0, drift_reference_indices=np.arange(16, 36)).run().results
    kin = ConductivityAnalyzer.from_ase(frames, specie="Li", time_step=sc.scalar(dt * 1000, unit="fs"),
                                        step_skip=sc.scalar(1), ionic_charge=sc.scalar(1.0, unit="e"), progress=False)
    kin.conductivity(sc.scalar(3000.0, unit="fs"), sc.scalar(600.0, unit="K"), n_samples=200, n_burn=200, n_thin=1,
                     progress=False, random_state=np.random.RandomState(3))
    s_k = sc.to_unit(kin.sigma, "S/cm").values
    k_mean, k_std = float(np.mean(s_k)), float(np.std(s_k))
    # one collective sample per run: the two estimators (different windows/weights) agree within kinisi's error
    assert abs(ours.sigma_collective_S_cm - k_mean) < 2.5 * k_std, (ours.sigma_collective_S_cm, k_mean, k_std)


# ------------------------------------------------------------------------------------------------ mechanism
def _lattice(rng, n_frames=1200, n=10, residence=60, a=3.0, vib=0.15):
    """Ions on a cubic lattice (spacing a) that jump to a random neighbour every `residence` frames."""
    sites = np.zeros((n_frames, n, 3))
    cur = rng.random((n, 3)) * 20
    prev = [None] * n
    n_back = 0
    for k in range(n_frames):
        if k and k % residence == 0:
            for i in range(n):
                new = cur[i].copy()
                new[rng.integers(3)] += rng.choice([-a, a])
                n_back += prev[i] is not None and np.allclose(new, prev[i])
                prev[i], cur[i] = cur[i].copy(), new
        sites[k] = cur
    return sites + rng.normal(size=sites.shape) * vib, n_back


def test_hops_on_a_lattice_are_counted_exactly(rng):
    x, n_back = _lattice(rng)
    found = detect_hops(x, 0.01)
    assert found["hops_per_atom"].tolist() == [19] * 10 and found["back_hop"].sum() == n_back
    assert np.allclose(found["residence_ps"], 0.6, atol=0.03) and np.allclose(found["hop_lengths_ang"], 3.0, atol=0.25)
    assert abs(found["hop_lengths_ang"].mean() - 3.0) < 0.05
    frames = [Atoms(["Li"] * 10, positions=p, cell=[100] * 3, pbc=True) for p in x]
    res = Hops(frames, dt_fs=10, unwrap=False, remove_drift=False).run().results
    rec = res.to_dict()
    assert rec["n_hops"] == 190 and rec["mean_hop_length_ang"] == pytest.approx(3.0, abs=0.1)
    assert rec["D_hop_cm2_s"] == pytest.approx(190 * 9.0 / (10 * 11.99) / 6 * 1e-4, rel=0.05)
    assert detect_hops(x, 0.01, hop_distance_ang=3.5)["hops_per_atom"].sum() < 190  # farther than a jump: fewer


def test_non_gaussian_and_van_hove(rng):
    brown = _walk(rng, 400, 40, 0.1, 0.1)
    frames = [Atoms(["Li"] * 40, positions=p, cell=[100] * 3, pbc=True) for p in brown]
    ng = NonGaussian(frames, dt_fs=100, unwrap=False, remove_drift=False).run().results
    assert np.all(np.abs(ng.alpha2) < 0.15)  # Gaussian displacements
    x, _ = _lattice(rng)
    hop_frames = [Atoms(["Li"] * 10, positions=p, cell=[100] * 3, pbc=True) for p in x]
    hop = NonGaussian(hop_frames, dt_fs=10, unwrap=False, remove_drift=False).run().results
    assert hop.alpha2_max > 1.0  # a few ions have jumped, most rattle
    vh = SelfVanHove(frames, dt_fs=100, unwrap=False, remove_drift=False, lag_ps=[1.0, 5.0], r_max_ang=15).run().results
    assert np.allclose(vh.p_r_per_ang.sum(axis=1) * 0.1, 1.0, atol=0.01)
    # Gaussian: 4πr²G_s peaks at r = sqrt(2 · 2Dt) (most probable 3-D displacement)
    r_peak = vh.r_ang[np.argmax(vh.p_r_per_ang[1])]
    assert r_peak == pytest.approx(np.sqrt(4 * 0.1 * 5.0), abs=0.25)


# ------------------------------------------------------------------------------------------------------ CLI
def test_cli_transport(tmp_path, rng, cli_runner):
    from ase.io import write

    from tfbsim.cli import app

    x, _ = _lattice(rng, n_frames=600, n=12, residence=60)
    host = rng.random((24, 3)) * BOX
    frames = _frames(x, host, wrap=True)
    traj = tmp_path / "run.extxyz"
    write(traj, frames)
    out = tmp_path / "tr"
    result = cli_runner.invoke(app, ["analyze", "transport", str(traj), "--dt-fs", "10", "--temperature-k", "900",
                                     "--out", str(out), "--min-msd-ang2", "5"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "transport.json").read_text())
    for key in ("D_self_cm2_s", "D_collective_cm2_s", "sigma_ne_S_cm", "sigma_collective_S_cm", "haven_ratio",
                "diffusive", "network_flows", "alpha2_max", "van_hove", "hops", "provenance"):
        assert key in data, key
    assert data["network_flows"] is False and data["hops"]["n_hops"] == 12 * 9
    assert data["provenance"]["config"]["species"] == "Li" and data["provenance"]["tfbsim_version"]
    for png in ("msd", "collective_msd", "alpha2", "van_hove", "residence", "network_msd"):
        assert (out / f"{png}.png").stat().st_size > 5000
    bad = cli_runner.invoke(app, ["analyze", "transport", str(traj), "--dt-fs", "10", "--n-blocks", "0"])
    assert bad.exit_code == 2
