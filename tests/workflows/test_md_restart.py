"""Checkpoint/restart: bit-identical continuation for every ensemble, a real SIGKILL, truncation, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _md_util import TestEMT, cu_small

from tfbsim.analysis.h5md import read_h5md_frames, read_h5md_info
from tfbsim.errors import ConfigError, TrajectoryError
from tfbsim.structures.io import read_json
from tfbsim.workflows.md.run import restart_md, run_md
from tfbsim.workflows.md.config import MDConfig

ENSEMBLES = [
    ("nve", "isotropic"),
    ("nvt-langevin", "isotropic"),
    ("nvt-bussi", "isotropic"),
    ("nvt-nhc", "isotropic"),
    ("npt-mtk", "isotropic"),
    ("npt-mtk", "anisotropic"),
    ("npt-mtk", "z"),
    ("npt-mtk", "full"),
    ("npt-berendsen", "isotropic"),
    ("npt-berendsen", "z"),
]


def _config(ensemble="nvt-langevin", axes="isotropic", **kw) -> MDConfig:
    base = dict(
        ensemble=ensemble, barostat_axes=axes, steps=40, timestep_fs=4.0, initial_temperature_k=600,
        temperature_schedule=None if ensemble == "nve" else [[0, 600], [0.16, 300]],
        checkpoint_every=20, traj_every=5, log_every=5, tdamp_fs=40, pdamp_fs=200, seed=11,
    )
    base.update(kw)
    return MDConfig(**base)


def _same_state(a, b) -> bool:
    return (
        np.array_equal(a.positions, b.positions)
        and np.array_equal(a.get_momenta(), b.get_momenta())
        and np.array_equal(a.cell.array, b.cell.array)
    )


@pytest.mark.parametrize("ensemble,axes", ENSEMBLES)
def test_restart_is_bit_identical(tmp_path, ensemble, axes):
    """One 40-step run == a run killed after its step-20 checkpoint and restarted (temperature ramp included)."""
    atoms = cu_small()
    config = _config(ensemble, axes)
    full = run_md(atoms, TestEMT(), config, tmp_path / "full")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_md(atoms, TestEMT(crash_at=32), config, tmp_path / "split")
    assert read_json(tmp_path / "split" / "summary.json")["status"] == "failed"
    split = restart_md(tmp_path / "split", TestEMT())
    assert split.steps_done == full.steps_done == 40
    assert _same_state(full.atoms, split.atoms)
    # frames and log rows after the checkpoint were dropped, none duplicated
    info = read_h5md_info(tmp_path / "split" / "traj.h5md")
    assert list(info.steps) == list(range(0, 41, 5))
    assert list(split.log["step"]) == list(full.log["step"])
    assert np.array_equal(split.log["T_k"], full.log["T_k"])
    assert split.summary["restarts"] == 1 and split.summary["status"] == "completed"


def test_restart_detects_a_wrong_continuation(tmp_path):
    """The bit-identity check can fail: a restart with another seed diverges (Langevin noise)."""
    atoms = cu_small()
    config = _config("nvt-langevin")
    full = run_md(atoms, TestEMT(), config, tmp_path / "full")
    with pytest.raises(RuntimeError):
        run_md(atoms, TestEMT(crash_at=32), config, tmp_path / "split")
    other = config.model_copy(update={"seed": 12})
    split = restart_md(tmp_path / "split", TestEMT(), force=True, config=other)
    assert not _same_state(full.atoms, split.atoms)


@pytest.fixture
def one_torch_thread():
    """On the shared 2-core machine two OpenMP threads spin against other processes: a 24-atom tiny-MACE call
    took 0.69 s with 2 threads and 0.010 s with 1. Restored afterwards."""
    from tfbsim.workflows.potentials.mace_backend import import_mace

    torch = import_mace().torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_restart_with_tiny_mace_float64_is_bit_identical(tmp_path, tiny_mace_path, one_torch_thread):
    from tfbsim.workflows.potentials.factory import load_potential

    rng = np.random.default_rng(3)
    symbols = ["Li"] * 9 + ["P"] * 3 + ["O"] * 10 + ["N"] * 2
    from ase import Atoms

    positions = []
    while len(positions) < len(symbols):  # random packing, min distance 1.9 Å, 7.5 Å box
        trial = rng.uniform(0, 7.5, 3)
        if all(np.linalg.norm((trial - p + 3.75) % 7.5 - 3.75) > 1.9 for p in positions):
            positions.append(trial)
    atoms = Atoms(symbols, positions=positions, cell=[7.5] * 3, pbc=True)
    config = MDConfig(ensemble="nvt-nhc", steps=20, timestep_fs=0.5, temperature_k=300, initial_temperature_k=300,
                      checkpoint_every=10, traj_every=5, log_every=5, guard_max_force_ev_ang=1e4,
                      guard_min_distance_ang=0.3)

    def calc():
        return load_potential(str(tiny_mace_path), device="cpu", dtype="float64")

    full = run_md(atoms, calc(), config, tmp_path / "full")
    crashing = calc()
    calls = {"n": 0}
    original = crashing.calculate

    def calculate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 16:
            raise RuntimeError("simulated crash")
        return original(*args, **kwargs)

    crashing.calculate = calculate
    with pytest.raises(RuntimeError):
        run_md(atoms, crashing, config, tmp_path / "split")
    split = restart_md(tmp_path / "split")  # calculator rebuilt from config.yaml's potential section
    assert _same_state(full.atoms, split.atoms)


def test_sigkill_leaves_a_readable_trajectory_and_restarts_exactly(tmp_path):
    """A real SIGKILL of a subprocess: H5MD opens (tfbsim reader and MDAnalysis), the restart is exact."""
    import MDAnalysis as mda

    run_dir = tmp_path / "run"
    config = _config("nvt-langevin", steps=400, checkpoint_every=50, traj_every=5, log_every=5,
                     temperature_schedule=None, temperature_k=500)
    (tmp_path / "config.json").write_text(config.model_dump_json())
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from _md_util import TestEMT, cu_small
        from tfbsim.workflows.md.run import run_md
        from tfbsim.workflows.md.config import MDConfig
        config = MDConfig.model_validate_json(open({str(tmp_path / 'config.json')!r}).read())
        run_md(cu_small(), TestEMT(sleep_s=0.003), config, {str(run_dir)!r})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    log = run_dir / "log.csv"
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists():
            lines = log.read_text().splitlines()
            if len(lines) > 1 and lines[-1].split(",")[0].isdigit() and int(lines[-1].split(",")[0]) >= 120:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = int(lines[-1].split(",")[0])
                break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert killed_at is not None, f"subprocess ended before the kill: {proc.stderr.read().decode()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    assert read_json(run_dir / "summary.json")["status"] == "running"
    frames = read_h5md_frames(run_dir / "traj.h5md")
    steps = [f.info["step"] for f in frames]
    assert len(frames) >= killed_at // 5 and steps == list(range(0, 5 * len(frames), 5))
    universe = mda.Universe(str(run_dir / "traj.h5md"))
    assert universe.trajectory.n_frames == len(frames)
    assert universe.dimensions[0] == pytest.approx(frames[0].cell.lengths()[0], rel=1e-5)
    universe.trajectory.close()  # HDF5 refuses a writer while this process still reads the file

    resumed = restart_md(run_dir, TestEMT())
    reference = run_md(cu_small(), TestEMT(), config, tmp_path / "reference")
    assert _same_state(resumed.atoms, reference.atoms)
    assert read_h5md_info(run_dir / "traj.h5md").steps.tolist() == list(range(0, 401, 5))
    universe = mda.Universe(str(run_dir / "traj.h5md"))
    assert universe.trajectory.n_frames == 81
    universe.trajectory.close()


def test_restart_refuses_changed_config_or_model_unless_forced(tmp_path):
    from tfbsim.workflows.potentials.factory import load_potential

    atoms = cu_small()
    config = _config("nvt-bussi", steps=60, checkpoint_every=20)
    with pytest.raises(RuntimeError):
        run_md(atoms, TestEMT(crash_at=30), config, tmp_path / "run")
    text = (tmp_path / "run" / "config.yaml").read_text()
    (tmp_path / "run" / "config.yaml").write_text(text.replace("friction_ps_inv: 1.0", "friction_ps_inv: 2.0"))
    with pytest.raises(ConfigError, match="friction_ps_inv"):
        restart_md(tmp_path / "run", TestEMT())
    (tmp_path / "run" / "config.yaml").write_text(text)
    with pytest.raises(ConfigError, match="potential differs"):
        restart_md(tmp_path / "run", load_potential("lj"))
    (tmp_path / "run" / "config.yaml").write_text(text.replace("steps: 60", "steps: 80"))
    result = restart_md(tmp_path / "run", TestEMT(), force=True)
    assert result.steps_done == 80
    assert result.summary["forced_changes"][0]["keys"] == ["steps"]


def test_completed_run_restart_is_a_no_op_and_run_dir_is_not_reused(tmp_path):
    atoms = cu_small()
    config = _config("nve", steps=20, checkpoint_every=10, traj_every=10)
    first = run_md(atoms, TestEMT(), config, tmp_path / "run")
    again = restart_md(tmp_path / "run", TestEMT())
    assert again.steps_done == 20 and _same_state(first.atoms, again.atoms)
    assert read_h5md_info(tmp_path / "run" / "traj.h5md").n_frames == 3
    with pytest.raises(ConfigError, match="already holds"):
        run_md(atoms, TestEMT(), config, tmp_path / "run")
    with pytest.raises(TrajectoryError, match="no checkpoint"):
        (tmp_path / "empty").mkdir()
        restart_md(tmp_path / "empty", TestEMT())


def test_partial_frame_of_a_killed_writer_is_invisible_and_repaired(tmp_path):
    """Simulate a kill in the middle of an append: every series but the positions already grown."""
    import h5py

    from tfbsim.workflows.md.h5md import H5MDWriter

    config = _config("nvt-langevin", steps=20, checkpoint_every=10, traj_every=5)
    run_md(cu_small(), TestEMT(), config, tmp_path / "run")
    path = tmp_path / "run" / "traj.h5md"
    with h5py.File(path, "a") as handle:
        traj = handle["particles/trajectory"]
        assert traj["box/edges/step"] == traj["position/step"]  # shared clock (hard links)
        for name in ("box/edges/value", "position/step", "position/time"):
            traj[name].resize(traj[name].shape[0] + 1, axis=0)
        obs = handle["observables/temperature_k/value"]
        obs.resize(obs.shape[0] + 1, axis=0)
    assert [f.info["step"] for f in read_h5md_frames(path)] == [0, 5, 10, 15, 20]
    import MDAnalysis as mda

    universe = mda.Universe(str(path))
    assert universe.trajectory.n_frames == 5
    universe.trajectory.close()
    writer = H5MDWriter(path, cu_small().numbers, append=True)
    assert writer.n_frames == 5 and writer.last_step == 20
    writer.close()
    with h5py.File(path, "r") as handle:
        assert handle["particles/trajectory/box/edges/value"].shape[0] == 5
        assert handle["particles/trajectory/position/step"].shape[0] == 5


def test_run_progress_reads_a_running_stage(tmp_path):
    """What the campaign driver shows for a running task: the stage, the last complete log row, the plan."""
    import json

    from tfbsim.workflows.md.rundir import run_progress

    task = tmp_path / "task"
    assert run_progress(task) is None
    run_md(cu_small(), TestEMT(), _config(steps=40), task / "1_equilibrate")  # completed: not running
    assert run_progress(task) is None
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_md(cu_small(), TestEMT(crash_at=24), _config(steps=40), task / "2_production")
    stage = task / "2_production"
    summary = json.loads((stage / "summary.json").read_text())
    summary["status"] = "running"  # what a SIGKILLed or still running run shows
    (stage / "summary.json").write_text(json.dumps(summary))
    with open(stage / "log.csv", "a") as handle:
        handle.write("25,0.1,61")  # a row being written
    rows = (stage / "log.csv").read_text().splitlines()
    last = rows[-2].split(",")
    where = run_progress(task)
    assert where == {"stage": "2_production", "step": int(last[0]), "steps_planned": 40,
                     "temperature_k": pytest.approx(float(last[2]))}
    assert 0 < where["step"] < 40
