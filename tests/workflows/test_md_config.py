"""MDConfig validation, schedule interpolation, in-memory runs and MDResult."""

from __future__ import annotations

import numpy as np
import pytest
from _md_util import TestEMT, cu_small
from ase import Atoms

from tfbsim.errors import ConfigError
from tfbsim.workflows.config import load_config
from tfbsim.workflows.md.run import run_md
from tfbsim.workflows.md.config import MDConfig, temperature_at


def test_unknown_key_and_bad_values_are_rejected(tmp_path):
    path = tmp_path / "md.yaml"
    path.write_text("ensemble: nvt-nhc\nfriction_ps: 2\n")
    with pytest.raises(ConfigError, match="line 2.*friction_ps.*friction_ps_inv"):
        load_config(path, MDConfig)
    for bad in ({"ensemble": "nvt"}, {"timestep_fs": 0}, {"barostat_axes": "xy"}, {"steps": -1},
                {"temperature_schedule": [[0, 300], [-1, 400]]}, {"temperature_schedule": [[0, 0]]},
                {"ensemble": "nve", "temperature_schedule": [[0, 300]]},
                {"ensemble": "npt-berendsen", "barostat_axes": "full"}):
        with pytest.raises(ConfigError):
            load_config(None, MDConfig, bad)


def test_schedule_interpolation_and_defaults():
    schedule = [(0.0, 2000.0), (10.0, 300.0), (12.0, 300.0)]
    assert temperature_at(schedule, 5.0) == pytest.approx(1150.0)
    assert temperature_at(schedule, -1.0) == 2000.0 and temperature_at(schedule, 99.0) == 300.0
    config = MDConfig(timestep_fs=2.0, temperature_schedule=schedule)
    assert config.target_temperature_k(2500) == pytest.approx(1150.0)  # 5 ps
    assert config.tdamp_fs_resolved == 200.0 and config.pdamp_fs_resolved == 2000.0
    assert MDConfig(temperature_k=450).target_temperature_k(10**6) == 450.0


def test_in_memory_run_returns_frames_and_statistics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    atoms = cu_small()
    atoms.new_array("region", np.array(["a"] * 4 + ["b"] * 4))
    result = run_md(atoms, TestEMT(), {"ensemble": "nvt-langevin", "steps": 30, "traj_every": 10,
                                       "initial_temperature_k": 300, "store_velocities": True, "store_forces": True})
    assert result.run_dir is None and result.traj_path is None and list(tmp_path.iterdir()) == []
    assert [f.info["step"] for f in result.frames] == [0, 10, 20, 30]
    assert list(result.frames[-1].arrays["region"]) == list(atoms.arrays["region"])
    assert np.allclose(result.frames[-1].get_velocities(), result.atoms.get_velocities())
    assert result.frames[-1].arrays["forces"].shape == (8, 3)
    temps = result.log["T_k"][result.log["step"] > 0]
    assert result.temperature_mean_k == pytest.approx(temps.mean()) and result.temperature_std_k > 0
    assert result.etot_mean_ev == pytest.approx(result.log["etot_ev"][1:].mean())
    assert result.atoms.calc is not None and result.atoms.info["md"]["step"] == 30
    assert "provenance" in result.atoms.info and np.isfinite(result.steps_per_s)
    assert atoms.get_momenta().sum() == 0  # the input was not modified


def test_stage_chaining_keeps_velocities_and_fixed_atoms():
    atoms = cu_small()
    atoms.arrays["fixed"] = np.array([True] + [False] * 7)
    melt = run_md(atoms, TestEMT(), MDConfig(ensemble="nvt-langevin", steps=20, initial_temperature_k=800))
    quench = run_md(melt.atoms, TestEMT(), MDConfig(ensemble="nvt-bussi", steps=0,
                                                    temperature_schedule=[[0, 800], [1, 300]]))
    assert np.array_equal(quench.atoms.get_momenta(), melt.atoms.get_momenta())
    assert quench.atoms.arrays["fixed"][0] and quench.summary["initial_velocities"].startswith("kept")


def test_input_validation():
    atoms = cu_small()
    with pytest.raises(ConfigError, match="3-D periodic"):
        slab = atoms.copy()
        slab.pbc = [True, True, False]
        run_md(slab, TestEMT(), MDConfig(ensemble="npt-mtk", steps=1))
    from tfbsim.errors import PotentialError

    with pytest.raises(PotentialError, match="Li"):
        run_md(Atoms("Li2", positions=[[0, 0, 0], [2, 0, 0]], cell=[5] * 3, pbc=True), TestEMT(), MDConfig(steps=1))
