"""The gpu engine's run directories: restart from a checkpoint, batched systems vs lone runs, resume of a
killed batch, a system that trips a guard, MDAnalysis, the CLI (CPU, tiny float64 MACE)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("vesin_torch")

from _gpu_util import lipon_like, md_config  # noqa: E402

from tfbsim.analysis.h5md import read_h5md_frames, read_h5md_info  # noqa: E402
from tfbsim.errors import ConfigError, SimulationUnstable  # noqa: E402
from tfbsim.structures.io import read_json  # noqa: E402
from tfbsim.workflows.md.run import restart_md, run_md  # noqa: E402


@pytest.fixture(scope="module")
def calc64(tiny_mace_path):
    from tfbsim.workflows.potentials.factory import load_potential

    return load_potential(str(tiny_mace_path), device="cpu", dtype="float64")


def _gpu(ensemble="nvt-langevin", **kw):
    return md_config(ensemble, engine="gpu", **kw)


def _crash_after(monkeypatch, n_calls: int) -> None:
    """Make the model raise at its ``n_calls``-th evaluation (a killed job)."""
    from tfbsim.workflows.md.engines.torch_model import TorchMACE

    original = TorchMACE.evaluate
    calls = {"n": 0}

    def evaluate(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= n_calls:
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TorchMACE, "evaluate", evaluate)


def _same_state(a, b) -> bool:
    return np.array_equal(a.positions, b.positions) and np.array_equal(a.get_momenta(), b.get_momenta())


@pytest.mark.parametrize("ensemble", ["nvt-langevin", "nvt-bussi", "nve"])
def test_restart_from_a_checkpoint_is_bit_identical_on_cpu(tmp_path, monkeypatch, calc64, ensemble):
    atoms = lipon_like(seed=13)
    schedule = None if ensemble == "nve" else [[0, 600], [0.02, 400]]
    config = _gpu(ensemble, steps=20, checkpoint_every=10, temperature_schedule=schedule)
    full = run_md(atoms, calc64, config, tmp_path / "full")
    with monkeypatch.context() as m:
        _crash_after(m, 16)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_md(atoms, calc64, config, tmp_path / "split")
    assert read_json(tmp_path / "split" / "summary.json")["status"] == "failed"
    split = restart_md(tmp_path / "split", calc64)  # dispatches on config.yaml's engine: gpu
    assert split.steps_done == full.steps_done == 20
    assert _same_state(full.atoms, split.atoms)
    assert list(read_h5md_info(tmp_path / "split" / "traj.h5md").steps) == [0, 10, 20]
    np.testing.assert_array_equal(split.log["T_k"], full.log["T_k"])
    np.testing.assert_array_equal(split.log["conserved_ev"], full.log["conserved_ev"])
    assert split.summary["restarts"] == 1 and split.summary["engine"]["name"] == "gpu"


def test_restart_refuses_a_changed_config_unless_forced(tmp_path, monkeypatch, calc64):
    config = _gpu(steps=20, checkpoint_every=10)
    with monkeypatch.context() as m:
        _crash_after(m, 16)
        with pytest.raises(RuntimeError):
            run_md(lipon_like(), calc64, config, tmp_path / "run")
    changed = config.model_copy(update={"temperature_k": 900.0})
    with pytest.raises(ConfigError, match="temperature_k"):
        restart_md(tmp_path / "run", calc64, config=changed)
    result = restart_md(tmp_path / "run", calc64, config=changed, force=True)
    assert result.steps_done == 20 and result.summary["forced_changes"][0]["keys"] == ["temperature_k"]


def test_batched_systems_evolve_as_they_would_alone(tmp_path, calc64):
    """Three systems (two compositions and sizes, three temperatures and seeds, different intervals and step
    totals) in one batch: each run directory equals the lone run's to rounding."""
    from tfbsim.workflows.md.batch import run_md_batch

    systems = [lipon_like(seed=21), lipon_like(n_li=6, n_p=2, n_o=8, n_n=1, box=7.0, seed=22), lipon_like(seed=23)]
    configs = [_gpu(temperature_k=600, seed=1, steps=20, traj_every=5),
               _gpu(temperature_k=900, seed=2, steps=15, traj_every=3, log_every=3),
               _gpu(temperature_k=300, seed=3, steps=20, checkpoint_every=8)]
    batched = run_md_batch(systems, calc64, configs, [tmp_path / f"b{i}" for i in range(3)])
    for i, (atoms, config) in enumerate(zip(systems, configs)):
        alone = run_md(atoms, calc64, config, tmp_path / f"a{i}")
        both = batched[i]
        assert both.steps_done == alone.steps_done == config.steps
        assert both.summary["engine"]["batch_size"] == 3 and alone.summary["engine"]["batch_size"] == 1
        np.testing.assert_allclose(both.atoms.positions, alone.atoms.positions, atol=1e-9)
        np.testing.assert_allclose(both.atoms.get_momenta(), alone.atoms.get_momenta(), atol=1e-9)
        assert list(both.log["step"]) == list(alone.log["step"])
        np.testing.assert_allclose(both.log["T_k"], alone.log["T_k"], rtol=1e-9)
        fb, fa = (read_h5md_frames(tmp_path / f"{p}{i}" / "traj.h5md") for p in "ba")
        assert [f.info["step"] for f in fb] == [f.info["step"] for f in fa]
        np.testing.assert_allclose(fb[-1].positions, fa[-1].positions, atol=1e-5)  # float32 trajectory
        assert sorted(p.name for p in (tmp_path / f"b{i}").iterdir()) == sorted(
            p.name for p in (tmp_path / f"a{i}").iterdir())


def test_killed_batch_resumes_each_system_from_its_own_checkpoint(tmp_path, monkeypatch, calc64):
    from tfbsim.workflows.md.batch import run_md_batch

    systems = [lipon_like(seed=31), lipon_like(seed=32)]
    configs = [_gpu(seed=1, steps=20, checkpoint_every=10), _gpu(seed=2, steps=10, checkpoint_every=5)]
    dirs = [tmp_path / "k0", tmp_path / "k1"]
    full = run_md_batch(systems, calc64, configs, [tmp_path / "f0", tmp_path / "f1"])
    with monkeypatch.context() as m:
        _crash_after(m, 15)  # system 1 completes at step 10; system 0 dies after its step-10 checkpoint
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_md_batch(systems, calc64, configs, dirs)
    assert read_json(dirs[0] / "summary.json")["status"] == "failed"
    assert read_json(dirs[1] / "summary.json")["status"] == "completed"
    with pytest.raises(ConfigError, match="already holds an MD run"):
        run_md_batch(systems, calc64, configs, dirs)
    resumed = run_md_batch(systems, calc64, configs, dirs, resume=True)
    assert resumed[0].summary["restarts"] == 1 and resumed[1].summary["restarts"] == 0
    for r, f in zip(resumed, full):
        assert r.steps_done == f.steps_done
        np.testing.assert_allclose(r.atoms.positions, f.atoms.positions, atol=1e-9)


def test_a_system_that_trips_a_guard_leaves_the_batch_and_the_others_finish(tmp_path, calc64):
    from tfbsim.workflows.md.batch import run_md_batch

    systems = [lipon_like(seed=41), lipon_like(seed=42)]
    configs = [_gpu(seed=1, steps=20), _gpu(seed=2, steps=20, guard_t_factor=1.05,
                                           temperature_k=50, initial_temperature_k=3000, guard_every=5,
                                           guard_t_after_ps=0.005)]
    results = run_md_batch(systems, calc64, configs, [tmp_path / "ok", tmp_path / "hot"])
    assert results[0].status == "completed" and results[0].steps_done == 20
    assert isinstance(results[1], SimulationUnstable)
    summary = read_json(tmp_path / "hot" / "summary.json")
    assert summary["status"] == "unstable" and summary["diagnostic"]["guard"] == "temperature"
    assert (tmp_path / "hot" / "last_good.extxyz").exists()


def test_bad_input_in_any_system_writes_nothing(tmp_path, calc64):
    from tfbsim.workflows.md.batch import run_md_batch

    crowded = lipon_like(seed=51)
    crowded.positions[1] = crowded.positions[0] + 0.1
    with pytest.raises(Exception, match="guards"):
        run_md_batch([lipon_like(seed=50), crowded], calc64, _gpu(), [tmp_path / "x0", tmp_path / "x1"])
    assert not (tmp_path / "x0").exists() and not (tmp_path / "x1").exists()
    with pytest.raises(ConfigError, match="same ensemble"):
        run_md_batch([lipon_like(), lipon_like()], calc64, [_gpu("nve"), _gpu("nvt-langevin")])


def test_trajectory_opens_in_mdanalysis_and_matches_the_final_structure(tmp_path, calc64):
    from tfbsim.analysis.h5md import open_universe

    result = run_md(lipon_like(seed=61), calc64, _gpu(steps=20, traj_every=5, traj_precision="float64"),
                    tmp_path / "run")
    universe = open_universe(tmp_path / "run" / "traj.h5md")
    assert universe.trajectory.n_frames == 5 and len(universe.atoms) == len(result.atoms)
    universe.trajectory[-1]
    np.testing.assert_allclose(universe.atoms.positions, result.atoms.positions, atol=1e-4)
    np.testing.assert_allclose(universe.dimensions[:3], result.atoms.cell.lengths(), atol=1e-4)


def test_cli_md_engine_gpu_and_restart(tmp_path, cli_runner, tiny_mace_path):
    from tfbsim.cli import app
    from tfbsim.structures.io import write_structure

    write_structure(tmp_path / "box.extxyz", lipon_like(seed=71))
    args = ["md", str(tmp_path / "box.extxyz"), "-o", str(tmp_path / "run"), "--engine", "gpu", "--model",
            str(tiny_mace_path), "--dtype", "float64", "--device", "cpu", "--steps", "10", "--traj-every", "5",
            "--temperature-k", "400", "--ensemble", "nvt-bussi"]
    out = cli_runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["status"] == "completed" and summary["engine"]["name"] == "gpu"
    assert "engine: gpu" in (tmp_path / "run" / "config.yaml").read_text()
    out = cli_runner.invoke(app, ["md", "--engine", "gpu", "--ensemble", "npt-mtk", str(tmp_path / "box.extxyz"),
                                  "-o", str(tmp_path / "bad"), "--model", str(tiny_mace_path)])
    assert out.exit_code == 2 and "engine 'gpu'" in out.output


def test_verlet_skin_gives_the_same_trajectory_and_restarts_exactly(tmp_path, monkeypatch, calc64):
    """vesin's Verlet skin only caches: the pairs inside the cutoff are the same, so the trajectory agrees to
    rounding, and a checkpoint drops the cache so a restart is still bit-identical."""
    from tfbsim.workflows.md.batch import restart_md_gpu, run_md_gpu

    atoms = lipon_like(seed=101)
    config = _gpu(steps=20, checkpoint_every=10)
    plain = run_md_gpu(atoms, calc64, config, skin_ang=0.0)
    skinned = run_md_gpu(atoms, calc64, config, tmp_path / "full", skin_ang=1.0)
    assert skinned.summary["engine"]["skin_ang"] == 1.0
    np.testing.assert_allclose(skinned.atoms.positions, plain.atoms.positions, atol=1e-9)
    with monkeypatch.context() as m:
        _crash_after(m, 16)
        with pytest.raises(RuntimeError):
            run_md_gpu(atoms, calc64, config, tmp_path / "split", skin_ang=1.0)
    split = restart_md_gpu(tmp_path / "split", calc64, skin_ang=1.0)
    assert _same_state(split.atoms, skinned.atoms)


def test_a_gpu_checkpoint_continues_with_the_ase_engine(tmp_path, calc64):
    """Switching engines on restart (forced: the configuration changed) keeps the state; the ASE engine
    reads the gpu engine's checkpoint keys."""
    config = _gpu("nvt-bussi", steps=10, checkpoint_every=10)
    run_md(lipon_like(seed=111), calc64, config, tmp_path / "run")
    longer = config.model_copy(update={"engine": "ase", "steps": 20})
    with pytest.raises(ConfigError, match="engine"):
        restart_md(tmp_path / "run", calc64, config=longer)
    result = restart_md(tmp_path / "run", calc64, config=longer, force=True)
    assert result.steps_done == 20 and result.summary["status"] == "completed"
    assert list(result.log["step"]) == [0, 5, 10, 15, 20]
    assert np.all(np.isfinite(result.log["conserved_ev"]))


def test_max_batch_atoms_splits_the_systems_into_consecutive_batches(tmp_path, calc64):
    from tfbsim.workflows.md.batch import run_md_batch

    systems = [lipon_like(seed=121), lipon_like(seed=122), lipon_like(seed=123)]
    results = run_md_batch(systems, calc64, _gpu(steps=5), max_batch_atoms=2 * len(systems[0]))
    assert [r.summary["engine"]["batch_size"] for r in results] == [2, 2, 1]
    alone = run_md(systems[2], calc64, _gpu(steps=5))
    np.testing.assert_allclose(results[2].atoms.positions, alone.atoms.positions, atol=1e-12)
