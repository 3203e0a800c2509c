"""start_or_resume: one rule per run-directory state (absent, no_checkpoint, checkpoint, completed, unstable),
the force paths, and run_md_batch(..., resume=True) following the same rules."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _md_util import TestEMT, cu_small

from tfbsim.analysis.h5md import read_h5md_info
from tfbsim.errors import ConfigError, SimulationUnstable
from tfbsim.structures.io import read_json, write_json
from tfbsim.workflows.md.config import MDConfig
from tfbsim.workflows.md.resume import RunState, inspect_run_dir, start_or_resume
from tfbsim.workflows.md.run import run_md


def _config(**kw) -> MDConfig:
    base = dict(ensemble="nvt-langevin", steps=40, timestep_fs=4.0, temperature_k=350, initial_temperature_k=600,
                checkpoint_every=20, traj_every=5, log_every=5, friction_ps_inv=5.0, seed=11)
    base.update(kw)
    return MDConfig(**base)


def _same_state(a, b) -> bool:
    return (np.array_equal(a.positions, b.positions) and np.array_equal(a.get_momenta(), b.get_momenta())
            and np.array_equal(a.cell.array, b.cell.array))


def _interrupted(path, config, crash_at=32):
    """A run killed after its step-20 checkpoint (summary says 'failed')."""
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_md(cu_small(), TestEMT(crash_at=crash_at), config, path)
    return path


def _dead(path, config):
    """A run that died before its first checkpoint (the checkpoint file never written)."""
    _interrupted(path, config)
    (path / "checkpoint.npz").unlink()
    return path


def _unstable(path, config):
    with pytest.raises(SimulationUnstable):
        run_md(cu_small(), TestEMT(nan_at=30), config, path)
    return path


def test_inspect_run_dir_names_each_state(tmp_path):
    config = _config()
    assert inspect_run_dir(tmp_path / "nothing") == "absent"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a run")
    assert inspect_run_dir(tmp_path / "empty") is RunState.ABSENT
    assert inspect_run_dir(_dead(tmp_path / "dead", config)) is RunState.NO_CHECKPOINT
    assert inspect_run_dir(_interrupted(tmp_path / "cut", config)) is RunState.CHECKPOINT
    run_md(cu_small(), TestEMT(), config, tmp_path / "done")
    assert inspect_run_dir(tmp_path / "done") is RunState.COMPLETED
    assert inspect_run_dir(_unstable(tmp_path / "bad", config)) is RunState.UNSTABLE
    # a run still going (summary 'running') with a checkpoint is resumable
    summary = read_json(tmp_path / "cut" / "summary.json")
    assert summary["status"] == "failed"
    write_json(tmp_path / "cut" / "summary.json", {**summary, "status": "running"})
    assert inspect_run_dir(tmp_path / "cut") is RunState.CHECKPOINT


def test_absent_starts_a_fresh_run(tmp_path):
    config = _config()
    direct = run_md(cu_small(), TestEMT(), config, tmp_path / "direct")
    result = start_or_resume(cu_small(), TestEMT(), config.model_dump(), tmp_path / "run")
    assert result.steps_done == 40 and result.summary["restarts"] == 0
    assert _same_state(result.atoms, direct.atoms)
    memory = start_or_resume(cu_small(), TestEMT(), config, None)  # no run directory: in memory
    assert memory.run_dir is None and memory.steps_done == 40 and len(memory.frames) == 9


def test_no_checkpoint_removes_the_dead_run_with_a_warning_and_starts_again(tmp_path, caplog):
    config = _config()
    direct = run_md(cu_small(), TestEMT(), config, tmp_path / "direct")
    dead = _dead(tmp_path / "run", config)
    (dead / "stale.txt").write_text("left by the dead run")
    with caplog.at_level(logging.WARNING, logger="tfbsim.workflows.md.resume"):
        result = start_or_resume(cu_small(), TestEMT(), config, dead)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and str(dead) in r.getMessage()]
    assert len(warnings) == 1 and "first checkpoint" in warnings[0].getMessage()
    assert not (dead / "stale.txt").exists()
    assert result.summary["restarts"] == 0 and _same_state(result.atoms, direct.atoms)


def test_checkpoint_continues_bit_identically(tmp_path):
    """float64 EMT, Langevin noise and all: killed after step 20 and resumed == one uninterrupted run."""
    config = _config()
    full = run_md(cu_small(), TestEMT(), config, tmp_path / "full")
    split = _interrupted(tmp_path / "split", config)
    result = start_or_resume(cu_small(seed=99), TestEMT(), config, split)  # atoms unused: the checkpoint's state
    assert result.steps_done == 40 and result.summary["restarts"] == 1
    assert _same_state(result.atoms, full.atoms)
    assert list(result.log["step"]) == list(full.log["step"])
    assert np.array_equal(result.log["T_k"], full.log["T_k"])
    assert list(read_h5md_info(split / "traj.h5md").steps) == list(range(0, 41, 5))


def test_checkpoint_with_a_changed_config_raises_unless_forced(tmp_path):
    config = _config()
    split = _interrupted(tmp_path / "split", config)
    changed = config.model_copy(update={"friction_ps_inv": 9.0})
    with pytest.raises(ConfigError, match="friction_ps_inv"):
        start_or_resume(cu_small(), TestEMT(), changed, split)
    assert read_json(split / "summary.json")["status"] == "failed"  # nothing was run
    result = start_or_resume(cu_small(), TestEMT(), changed, split, force=True)
    assert result.steps_done == 40 and result.summary["forced_changes"][0]["keys"] == ["friction_ps_inv"]
    assert "friction_ps_inv: 9.0" in (split / "config.yaml").read_text()


def test_completed_run_is_reused_without_recomputation(tmp_path):
    config = _config()
    first = run_md(cu_small(), TestEMT(), config, tmp_path / "run")
    calc = TestEMT()
    again = start_or_resume(cu_small(), calc, config, tmp_path / "run")
    assert calc.n_calls == 0
    assert again.status == "completed" and again.steps_done == 40 and again.atoms.calc is calc
    assert _same_state(again.atoms, first.atoms)  # the checkpoint's exact final state
    assert again.atoms.info["md"]["step"] == 40 and "provenance" in again.atoms.info
    assert np.array_equal(again.log["T_k"], first.log["T_k"]) and again.log["step"].dtype == np.int64
    assert again.temperature_mean_k == first.temperature_mean_k and again.summary["restarts"] == 0
    assert read_h5md_info(tmp_path / "run" / "traj.h5md").n_frames == 9


def test_completed_run_with_a_changed_config_or_model_raises_naming_it(tmp_path):
    from tfbsim.workflows.potentials.factory import load_potential

    config = _config(steps=20)
    run_md(cu_small(), TestEMT(), config, tmp_path / "run")
    hotter = config.model_copy(update={"temperature_k": 420.0})
    with pytest.raises(ConfigError, match=r"completed run was made with temperature_k=350.0, now 420.0.*force=True"):
        start_or_resume(cu_small(), TestEMT(), hotter, tmp_path / "run")
    with pytest.raises(ConfigError, match="completed run was made with model test-emt.*now lj"):
        start_or_resume(cu_small(), load_potential("lj"), config, tmp_path / "run")


def test_completed_run_with_force_continues_from_its_final_checkpoint(tmp_path):
    """force: the completed 20-step run goes on to 40 steps, exactly as a 40-step run would have."""
    config = _config(steps=20)
    full = run_md(cu_small(), TestEMT(), config.model_copy(update={"steps": 40}), tmp_path / "full")
    run_md(cu_small(), TestEMT(), config, tmp_path / "run")
    longer = config.model_copy(update={"steps": 40})
    with pytest.raises(ConfigError, match="steps=20, now 40"):
        start_or_resume(cu_small(), TestEMT(), longer, tmp_path / "run")
    result = start_or_resume(cu_small(), TestEMT(), longer, tmp_path / "run", force=True)
    assert result.steps_done == 40 and result.summary["forced_changes"][0]["keys"] == ["steps"]
    assert _same_state(result.atoms, full.atoms)


def test_unstable_run_raises_with_the_stored_diagnostic_unless_forced(tmp_path):
    config = _config()
    bad = _unstable(tmp_path / "bad", config)
    stored = read_json(bad / "summary.json")["diagnostic"]
    calc = TestEMT()
    with pytest.raises(SimulationUnstable, match=r"MD unstable at step .*summary.json.*force=True") as info:
        start_or_resume(cu_small(), calc, config, bad)
    assert calc.n_calls == 0
    assert info.value.diagnostic["guard"] == stored["guard"] and info.value.diagnostic["step"] == stored["step"]
    assert info.value.diagnostic["run_dir"] == str(bad)
    result = start_or_resume(cu_small(), TestEMT(), config, bad, force=True)  # from the last checkpoint
    assert result.steps_done == 40 and result.summary["restarts"] == 1
    assert read_json(bad / "summary.json")["status"] == "completed"


def test_unstable_run_without_a_checkpoint_starts_again_only_when_forced(tmp_path):
    config = _config()
    direct = run_md(cu_small(), TestEMT(), config, tmp_path / "direct")
    bad = _unstable(tmp_path / "bad", config)
    (bad / "checkpoint.npz").unlink()
    with pytest.raises(SimulationUnstable):
        start_or_resume(cu_small(), TestEMT(), config, bad)
    result = start_or_resume(cu_small(), TestEMT(), config, bad, force=True)
    assert result.summary["restarts"] == 0 and _same_state(result.atoms, direct.atoms)


# ------------------------------------------------------------------------ run_md_batch(resume=True)
@pytest.fixture(scope="module")
def calc64(tiny_mace_path):
    pytest.importorskip("vesin_torch")
    from tfbsim.workflows.potentials.factory import load_potential

    return load_potential(str(tiny_mace_path), device="cpu", dtype="float64")


def test_batch_resume_follows_the_same_rules(tmp_path, calc64):
    """Completed → reused; changed config → ConfigError; unstable → its error as the result; dead → restarted."""
    from _gpu_util import lipon_like, md_config

    from tfbsim.workflows.md.batch import run_md_batch

    systems = [lipon_like(seed=61), lipon_like(seed=62)]
    configs = [md_config("nvt-langevin", engine="gpu", steps=10, seed=1, checkpoint_every=5),
               md_config("nvt-langevin", engine="gpu", steps=10, seed=2, checkpoint_every=5)]
    dirs = [tmp_path / "a", tmp_path / "b"]
    first = run_md_batch(systems, calc64, configs, dirs)
    again = run_md_batch(systems, calc64, configs, dirs, resume=True)
    assert [r.summary["restarts"] for r in again] == [0, 0]
    assert all(_same_state(r.atoms, f.atoms) for r, f in zip(again, first))
    changed = [configs[0].model_copy(update={"temperature_k": 700.0}), configs[1]]
    with pytest.raises(ConfigError, match="temperature_k=600.0, now 700.0"):
        run_md_batch(systems, calc64, changed, dirs, resume=True)
    # system 0: marked unstable; system 1: died before its first checkpoint
    summary = read_json(dirs[0] / "summary.json")
    summary.update(status="unstable", diagnostic={"guard": "temperature", "step": 5, "message": "too hot"})
    write_json(dirs[0] / "summary.json", summary)
    (dirs[1] / "checkpoint.npz").unlink()
    (dirs[1] / "final.extxyz").unlink()
    out = run_md_batch(systems, calc64, configs, dirs, resume=True)
    assert isinstance(out[0], SimulationUnstable) and out[0].diagnostic["guard"] == "temperature"
    assert out[1].summary["restarts"] == 0 and out[1].steps_done == 10
    np.testing.assert_allclose(out[1].atoms.positions, first[1].atoms.positions, atol=1e-9)
