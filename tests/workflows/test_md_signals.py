"""SIGTERM/SIGUSR1 on a running `tfbsim md`: checkpoint at the signal's step, exit 128 + N, exact continuation.

The bit-identity check uses EMT in ``npt-mtk``: ASE's EMT keeps a neighbour list between calls unless the cell
changes, and a list built at another step changes the last bits of the forces, so at a fixed cell EMT is not a
history-free potential (MACE is). With a barostat the cell moves every step and EMT rebuilds its list every
call, so the continuation must match the uninterrupted run bit for bit; the barostat and thermostat chains also
make it the most demanding checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from _md_util import TestEMT, cu_small

from tfbsim.cli import app
from tfbsim.errors import RunInterrupted
from tfbsim.structures.io import read_json, write_structure
from tfbsim.workflows.md.checkpoint import read_checkpoint
from tfbsim.workflows.md.config import MDConfig
from tfbsim.workflows.md.run import restart_md, run_md
from tfbsim.workflows.md.signals import StopRequest, stop_on_signals

STEPS = 800
ARGS = ["--model", "emt", "--ensemble", "npt-mtk", "--temperature-k", "600", "--pressure-gpa", "0",
        "--steps", str(STEPS), "--timestep-fs", "2", "--log-every", "10", "--traj-every", "50",
        "--checkpoint-every", "1000000", "--seed", "5"]


@pytest.fixture(scope="module")
def structure(tmp_path_factory):
    path = tmp_path_factory.mktemp("signals") / "cu.extxyz"
    write_structure(path, cu_small(seed=4))
    return path


@pytest.fixture(scope="module")
def reference(structure, tmp_path_factory):
    """The uninterrupted run of the same configuration (through the same CLI path, in process)."""
    from typer.testing import CliRunner

    run = tmp_path_factory.mktemp("reference") / "run"
    result = CliRunner().invoke(app, ["--quiet", "md", str(structure), *ARGS, "-o", str(run)])
    assert result.exit_code == 0, result.output
    return run


def _last_logged_step(log) -> int:
    if not log.exists():
        return -1
    lines = log.read_text().splitlines()
    if len(lines) < 2:
        return -1
    first = lines[-1].split(",")[0]  # the last row may be half-written: fall back to the one before
    return int(first) if first.isdigit() else int(lines[-2].split(",")[0]) if len(lines) > 2 else -1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_signal_checkpoints_exits_128_plus_n_and_resumes_bit_identically(tmp_path, structure, reference, signum,
                                                                         cli_runner):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tfbsim.cli", "md", str(structure), *ARGS, "-o", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    sent_after = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        step = _last_logged_step(run / "log.csv")
        if step >= 300:
            proc.send_signal(signum)
            sent_after = step
            break
        time.sleep(0.01)
    out, err = proc.communicate(timeout=120)
    assert sent_after is not None, f"the run ended before the signal: {err.decode()[-2000:]}"
    assert proc.returncode == 128 + signum, err.decode()[-2000:]

    summary = read_json(run / "summary.json")
    ckpt = read_checkpoint(run / "checkpoint.npz")
    name = signal.Signals(signum).name
    assert summary["status"] == "interrupted" and summary["signal"] == name
    # checkpoint_every is far beyond the run: only the signal can have written a checkpoint after step 0
    assert sent_after <= ckpt.step < STEPS and summary["steps_done"] == ckpt.step
    [record] = summary["interruptions"]
    assert record["step"] == ckpt.step and record["signal"] == name
    lines = [line for line in err.decode().splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1 and f"step {ckpt.step} of {STEPS}" in lines[0] and f"--restart {run}" in lines[0]
    assert "Traceback" not in err.decode() and not (run / "final.extxyz").exists()

    resumed = cli_runner.invoke(app, ["--quiet", "md", "--restart", str(run)])
    assert resumed.exit_code == 0, resumed.output
    done, full = read_checkpoint(run / "checkpoint.npz"), read_checkpoint(reference / "checkpoint.npz")
    assert done.step == full.step == STEPS
    for key in ("positions", "momenta", "cell"):
        assert np.array_equal(done.state[key], full.state[key]), key
    assert (run / "log.csv").read_text() == (reference / "log.csv").read_text()
    summary = read_json(run / "summary.json")
    assert summary["status"] == "completed" and summary["restarts"] == 1 and "signal" not in summary
    assert summary["interruptions"][0]["signal"] == name


class SignallingEMT(TestEMT):
    """TestEMT that sends ``signum`` to its own process at its ``at``-th evaluation."""

    __test__ = False

    def __init__(self, at: int, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.at, self.signum = at, signum

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        if self.n_calls == self.at:
            os.kill(os.getpid(), self.signum)


def _config(**kw) -> MDConfig:
    base = dict(ensemble="npt-mtk", steps=120, timestep_fs=2.0, temperature_k=600, initial_temperature_k=600,
                checkpoint_every=1000, log_every=10, traj_every=10, seed=2)
    return MDConfig(**{**base, **kw})


def test_in_process_signal_raises_run_interrupted_and_restores_the_handler(tmp_path):
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        with pytest.raises(RunInterrupted) as info:
            run_md(cu_small(), SignallingEMT(at=37, signum=signal.SIGUSR1), _config(), tmp_path / "run")
        exc = info.value
        assert exc.signum == signal.SIGUSR1 and exc.exit_code == 138 and exc.run_dir == str(tmp_path / "run")
        assert 30 <= exc.step < 40 and read_checkpoint(tmp_path / "run" / "checkpoint.npz").step == exc.step
        assert seen == []  # the run's handler had it ...
        os.kill(os.getpid(), signal.SIGUSR1)
        assert seen == [signal.SIGUSR1]  # ... and ours is back
        result = restart_md(tmp_path / "run", SignallingEMT(at=-1))
        reference = run_md(cu_small(), SignallingEMT(at=-1), _config(), tmp_path / "reference")
        assert np.array_equal(result.atoms.positions, reference.atoms.positions)
        assert np.array_equal(result.atoms.get_momenta(), reference.atoms.get_momenta())
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_in_memory_runs_and_other_threads_install_no_handler():
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        # in memory there is nothing to checkpoint: the signal goes to whatever handler was there
        result = run_md(cu_small(), SignallingEMT(at=20, signum=signal.SIGUSR1), _config(steps=40))
        assert result.status == "completed" and seen == [signal.SIGUSR1]
        installed = []

        def work() -> None:
            with stop_on_signals(StopRequest()) as ok:
                installed.append(ok)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert installed == [False]
        with stop_on_signals(StopRequest()) as ok:
            assert ok and signal.getsignal(signal.SIGUSR1) is not previous
        assert signal.getsignal(signal.SIGUSR1) is not None
        os.kill(os.getpid(), signal.SIGUSR1)
        assert seen == [signal.SIGUSR1] * 2
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_signal_at_the_last_step_lets_the_run_complete(tmp_path):
    """A stop requested in the last step leaves no step to save: the run completes (exit 0 in the CLI)."""
    config = _config(steps=20)
    counting = SignallingEMT(at=-1)
    run_md(cu_small(), counting, config, tmp_path / "count")
    calc = SignallingEMT(at=counting.n_calls)  # the last evaluation: the forces of step 20, inside advance()
    result = run_md(cu_small(), calc, config, tmp_path / "run")
    assert calc.n_calls == counting.n_calls
    assert result.status == "completed" and read_json(tmp_path / "run" / "summary.json")["status"] == "completed"
    early = SignallingEMT(at=counting.n_calls - 1)  # one step earlier: interrupted at step 19
    with pytest.raises(RunInterrupted) as info:
        run_md(cu_small(), early, config, tmp_path / "early")
    assert info.value.step == 19


def test_campaign_unit_interrupted_is_left_resumable_and_re_raised(tmp_path):
    """worker._run_unit: an interrupted stage leaves the unit `interrupted` (not failed) and re-raises."""
    from tfbsim.workflows.campaigns.worker import _run_unit

    folder = tmp_path / "task"
    folder.mkdir()
    spec = {"dir": str(folder), "kind": "task", "task_id": "t1", "spec_hash": "abc", "potential": {"model": "emt"}}

    def body(spec, folder, calc, summary):
        raise RunInterrupted("MD run interrupted by SIGTERM", signum=signal.SIGTERM, step=12, run_dir=str(folder))

    with pytest.raises(RunInterrupted):
        _run_unit(spec, body)
    summary = read_json(folder / "summary.json")
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
    assert "SIGTERM" in summary["reason"] and not (folder / "error.log").exists()


def _signal_at_model_call(monkeypatch, n_call: int, signum: int) -> None:
    """The gpu engine's model sends ``signum`` to this process at its ``n_call``-th evaluation."""
    from tfbsim.workflows.md.engines.torch_model import TorchMACE

    original = TorchMACE.evaluate
    calls = {"n": 0}

    def evaluate(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n_call:
            os.kill(os.getpid(), signum)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TorchMACE, "evaluate", evaluate)


def test_gpu_engine_stops_at_the_next_event_and_batches_ignore_signals(tmp_path, monkeypatch, tiny_mace_path):
    """The gpu engine (CPU, tiny float64 MACE) polls no flag: a single run stops at the next event step with a
    checkpoint and continues exactly; batched runners run in threads and install no handler."""
    pytest.importorskip("vesin_torch")
    from _gpu_util import lipon_like, md_config

    from tfbsim.workflows.md.batch import run_md_batch
    from tfbsim.workflows.potentials.factory import load_potential

    calc = load_potential(str(tiny_mace_path), device="cpu", dtype="float64")
    config = md_config("nvt-langevin", engine="gpu", steps=30, log_every=10, traj_every=10, checkpoint_every=1000)
    full = run_md(lipon_like(seed=13), calc, config, tmp_path / "full")
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        with monkeypatch.context() as m:
            _signal_at_model_call(m, 14, signal.SIGUSR1)  # within steps 10-20
            with pytest.raises(RunInterrupted) as info:
                run_md(lipon_like(seed=13), calc, config, tmp_path / "split")
        assert info.value.step == 20 and read_json(tmp_path / "split" / "summary.json")["status"] == "interrupted"
        resumed = restart_md(tmp_path / "split", calc)
        assert np.array_equal(resumed.atoms.positions, full.atoms.positions)
        assert np.array_equal(resumed.atoms.get_momenta(), full.atoms.get_momenta())
        assert seen == []
        with monkeypatch.context() as m:
            _signal_at_model_call(m, 14, signal.SIGUSR1)
            results = run_md_batch([lipon_like(seed=13)] * 2, calc, config, [tmp_path / "b0", tmp_path / "b1"])
        assert [r.status for r in results] == ["completed", "completed"] and seen == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)
