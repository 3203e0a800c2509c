"""Configuration loading: unknown keys rejected with file, line and allowed keys; CLI overrides win."""

from __future__ import annotations

import pytest

from tfbsim.errors import ConfigError
from tfbsim.workflows.config import StrictModel, config_hash, load_config
from tfbsim.workflows.potentials.config import PotentialConfig


class Inner(StrictModel):
    temperature_k: float = 300.0


class Outer(StrictModel):
    potential: PotentialConfig = PotentialConfig()
    inner: Inner = Inner()
    steps: int = 10


def test_unknown_key_names_key_line_and_allowed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\ninner:\n  temperature_k: 400\n  temprature: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, Outer)
    message = str(info.value)
    assert "inner.temprature" in message and "line 4" in message and "temperature_k" in message


def test_top_level_unknown_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("stepz: 5\n")
    with pytest.raises(ConfigError, match="unknown key 'stepz'.*potential, steps"):
        load_config(path, Outer)


def test_bad_value_and_bad_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: many\n")
    with pytest.raises(ConfigError, match="line 1.*steps"):
        load_config(path, Outer)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", Outer)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml", Outer)


def test_cli_overrides_win_and_none_is_ignored(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\ninner: {temperature_k: 400}\npotential: {model: emt}\n")
    cfg = load_config(path, Outer, {"steps": 7, "inner": {"temperature_k": None}, "potential": {"dtype": "float64"}})
    assert cfg.steps == 7 and cfg.inner.temperature_k == 400 and cfg.potential.model == "emt"
    assert cfg.potential.dtype == "float64"
    assert config_hash(cfg) == config_hash(Outer.model_validate(cfg.model_dump()))
    assert config_hash(cfg) != config_hash(Outer())
