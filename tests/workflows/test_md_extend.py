"""start_or_resume(..., extend=True): a longer ``steps`` is the one change allowed without force."""

from __future__ import annotations

import numpy as np
import pytest
from _md_util import TestEMT, cu_small

from tfbsim.analysis.h5md import read_h5md_info
from tfbsim.errors import ConfigError
from tfbsim.workflows.md.config import MDConfig
from tfbsim.workflows.md.resume import start_or_resume
from tfbsim.workflows.md.run import run_md


def _config(**kw) -> MDConfig:
    base = dict(ensemble="nvt-langevin", steps=20, timestep_fs=4.0, temperature_k=350, initial_temperature_k=600,
                checkpoint_every=20, traj_every=5, log_every=5, friction_ps_inv=5.0, seed=11)
    base.update(kw)
    return MDConfig(**base)


def test_completed_run_extends_exactly_and_records_it(tmp_path):
    full = run_md(cu_small(), TestEMT(), _config(steps=40), tmp_path / "full")
    run_md(cu_small(), TestEMT(), _config(), tmp_path / "run")
    result = start_or_resume(cu_small(), TestEMT(), _config(steps=40), tmp_path / "run", extend=True)
    assert result.steps_done == 40 and result.summary["extensions"] == [{"from_step": 20, "steps": 40}]
    assert "forced_changes" not in result.summary
    assert np.array_equal(result.atoms.positions, full.atoms.positions)
    assert list(read_h5md_info(tmp_path / "run" / "traj.h5md").steps) == list(range(0, 41, 5))
    calc = TestEMT()  # the same longer total again: reused, nothing recomputed
    again = start_or_resume(cu_small(), calc, _config(steps=40), tmp_path / "run", extend=True)
    assert again.steps_done == 40 and calc.n_calls == 0
    with pytest.raises(ConfigError, match="extended, not shortened"):
        start_or_resume(cu_small(), TestEMT(), _config(steps=10), tmp_path / "run", extend=True)


def test_extend_refuses_every_other_change(tmp_path):
    run_md(cu_small(), TestEMT(), _config(), tmp_path / "run")
    hotter = _config(steps=40, temperature_k=420.0)
    with pytest.raises(ConfigError, match="temperature_k"):
        start_or_resume(cu_small(), TestEMT(), hotter, tmp_path / "run", extend=True)
    with pytest.raises(ConfigError, match="steps=20, now 40"):  # without extend a longer run is a change
        start_or_resume(cu_small(), TestEMT(), _config(steps=40), tmp_path / "run")


def test_interrupted_run_continues_to_the_longer_total(tmp_path):
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_md(cu_small(), TestEMT(crash_at=32), _config(steps=40), tmp_path / "run")
    with pytest.raises(ConfigError, match="friction_ps_inv"):
        start_or_resume(cu_small(), TestEMT(), _config(steps=60, friction_ps_inv=9.0), tmp_path / "run", extend=True)
    result = start_or_resume(cu_small(), TestEMT(), _config(steps=60), tmp_path / "run", extend=True)
    assert result.steps_done == 60
