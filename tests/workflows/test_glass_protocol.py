"""Melt–quench for defensible glasses: NPT quench, Tg record, network check with melt extension, threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_protocols import TINY, CrashingLJ

from tfbsim.errors import ConfigError
from tfbsim.structures.amorphous import build_lipon
from tfbsim.structures.io import read_json, read_structure
from tfbsim.workflows.protocols.glass_checks import glass_transition_from_log
from tfbsim.workflows.protocols.melt_quench import MeltQuenchConfig, melt_quench, resolve_melt_quench_config
from tfbsim.workflows.protocols.threads import torch_threads

CHECKED = {**TINY, "traj_every": 2, "quench_ensemble": "npt", "tg_bin_k": 200.0,
           "network_check": {"min_exchanges_per_p": 1.0e6, "max_melt_ps": 0.06}}  # never converges: cap


class ThreadsLJ(CrashingLJ):
    """Records torch's thread count at every evaluation."""

    def __init__(self):
        super().__init__()
        self.threads_seen: set[int] = set()

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        self.threads_seen.add(torch.get_num_threads())
        super().calculate(atoms, properties, system_changes)


@pytest.fixture(scope="module")
def box():
    return build_lipon("Li2.94PO3.50N0.31", 40, seed=2)


def test_glass_preset_and_validation():
    cfg = MeltQuenchConfig(preset="glass")
    assert cfg.quench_rate_k_ps == 10.0 and cfg.network_check.max_melt_ps == 100.0
    quench = cfg.stage_md_config("quench", "isotropic")
    assert quench.ensemble == "npt-berendsen" and quench.temperature_schedule[-1] == (170.0, 300.0)
    assert MeltQuenchConfig(preset="quick").stage_md_config("quench", "isotropic").ensemble == "nvt-bussi"
    with pytest.raises(ConfigError, match="max_melt_ps"):
        resolve_melt_quench_config({"preset": "quick", "network_check": {"max_melt_ps": 0.5}})
    with pytest.raises(ConfigError, match="typo"):
        resolve_melt_quench_config({"preset": "quick", "network_check": {"typo": 1}})


def test_melt_extends_to_its_cap_records_network_and_tg_and_resumes(tmp_path, box):
    rd = tmp_path / "mq"
    calc = ThreadsLJ()
    before = torch.get_num_threads()
    want = 2 if before != 2 else 1
    result = melt_quench(box, calc, CHECKED, rd, threads=want)
    assert calc.threads_seen == {want} and torch.get_num_threads() == before
    summary = read_json(rd / "summary.json")
    network = summary["network"]
    assert network["stopped_by"] == "cap" and [c["time_ps"] for c in network["chunks"]] == pytest.approx(
        [0.02, 0.04, 0.06])
    assert summary["speciation_steady_before_quench"] in (True, False)
    assert network["exchanges_per_p_ps"] >= 0 and "exchanges per P" in network["reason"]
    assert set(network["speciation_start"]) >= {"Nd", "Na", "Ob", "Q1"}
    assert read_json(rd / "2_melt" / "summary.json")["steps_done"] == 60
    assert result.stages[2]["ensemble"] == "npt-berendsen"
    tg = summary["glass_transition"]
    assert {"volume", "enthalpy", "tg_k", "tg_source", "cooling_curve"} <= set(tg)
    info = read_structure(rd / "final.extxyz").info["melt_quench"]
    assert info["quench_ensemble"] == "npt" and "tg_k" in info["glass_transition"]
    assert info["network"]["stopped_by"] == "cap" and "speciation_steady_before_quench" in info
    again = ThreadsLJ()
    melt_quench(box, again, CHECKED, rd)  # everything reused: the melt's verdicts come from extension.json
    assert again.n_calls <= 2
    assert read_json(rd / "summary.json")["network"]["chunks"] == network["chunks"]


def test_tg_from_a_quench_log():
    t = np.repeat(np.linspace(1700, 300, 57), 10)
    rng = np.random.default_rng(0)
    n = 100
    v = n * np.where(t < 900, 12 + 2e-4 * (t - 900), 12 + 9e-4 * (t - 900)) + rng.normal(0, 0.5, t.size)
    e = n * np.where(t < 900, -5 + 3e-4 * (t - 900), -5 + 6e-4 * (t - 900)) + rng.normal(0, 0.05, t.size)
    record = glass_transition_from_log({"target_T_k": t, "volume_ang3": v, "etot_ev": e}, n)
    assert record["tg_source"] == "volume" and abs(record["tg_k"] - 900) < 60
    assert record["enthalpy"]["has_break"] and abs(record["enthalpy"]["tg_k"] - 900) < 80
    nvt = glass_transition_from_log({"target_T_k": t, "volume_ang3": v, "etot_ev": e}, n, with_volume=False)
    assert nvt["tg_source"] == "enthalpy" and "constant-volume" in nvt["volume"]["reason"]


def test_torch_threads_restores():
    before = torch.get_num_threads()
    with torch_threads(1 if before != 1 else 2):
        assert torch.get_num_threads() != before
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
