"""The SevenNet teacher runs in its own environment (``make sevenn-env``); tfbsim's never imports sevenn."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ase.build import bulk

from tfbsim.errors import ConfigError
from tfbsim.workflows.training import sevennet


def test_missing_environment_says_how_to_create_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TFBSIM_SEVENN_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(ConfigError, match="make sevenn-env"):
        sevennet.SevennetTeacher("7net-l3i5")


def test_main_environment_has_no_sevenn():
    assert "sevenn" not in sys.modules
    with pytest.raises(ImportError):
        import sevenn  # noqa: F401


def _have_env() -> bool:
    try:
        sevennet.sevenn_python()
    except ConfigError:
        return False
    return True


@pytest.mark.skipif(not _have_env(), reason="no SevenNet environment (make sevenn-env)")
def test_worker_labels_a_frame_and_reports_a_bad_model():
    teacher = sevennet.SevennetTeacher("7net-l3i5")
    try:
        atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat(2)
        atoms.positions[0] += [0.1, 0.0, 0.0]
        atoms.calc = teacher
        forces = atoms.get_forces()
        assert np.isfinite(forces).all() and forces[0, 0] < 0  # pushed back towards its site
        assert np.abs(forces.sum(axis=0)).max() < 1e-4
        assert teacher.parameters["version"] == "sevenn 0.13.0"
    finally:
        teacher.close()
    with pytest.raises(ConfigError, match="did not start"):
        sevennet.SevennetTeacher("no-such-model")


def test_bundled_recipe_accepts_a_sevennet_teacher(monkeypatch, tmp_path):
    from tfbsim.workflows.training.bundled import teacher_calculator

    monkeypatch.setenv("TFBSIM_SEVENN_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(ConfigError, match="make sevenn-env"):  # routed to the SevenNet environment, not the factory
        teacher_calculator("sevennet:7net-l3i5")
    assert teacher_calculator("emt").parameters.get("spec") == "emt"
