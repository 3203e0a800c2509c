"""The typed PotentialConfig: accepted by the factory, recorded by the calculator, carried into run directories."""

from __future__ import annotations

import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT

from tfbsim.errors import ConfigError
from tfbsim.workflows.md.config import MDConfig
from tfbsim.workflows.md.run import restart_md, run_md
from tfbsim.workflows.potentials.config import PotentialConfig, as_potential_config
from tfbsim.workflows.potentials.factory import load_potential, potential_config_of, resolve_device


def test_potential_config_is_one_class_everywhere():
    import tfbsim
    from tfbsim.workflows.campaigns.config import CampaignConfig
    from tfbsim.workflows.demo.config import DemoConfig

    assert PotentialConfig is tfbsim.PotentialConfig
    for model in (MDConfig, CampaignConfig, DemoConfig):
        assert model.model_fields["potential"].annotation is PotentialConfig


def test_load_from_config_and_dict():
    calc = load_potential(PotentialConfig(model="emt", device="cpu", dtype="float64"))
    assert calc.parameters["kind"] == "emt"
    calc = load_potential({"model": "lj", "device": "cpu"})
    assert calc.parameters["kind"] == "lj"
    with pytest.raises(ConfigError, match="unknown key 'modle'"):
        load_potential({"modle": "lj"})
    with pytest.raises(ConfigError, match="dtype"):
        load_potential({"model": "lj", "dtype": "float16"})


@pytest.mark.parametrize("model", ["emt", "lj"])
def test_round_trip_test_potentials(model):
    cfg = PotentialConfig(model=model, device="cpu", dtype="float64")
    assert potential_config_of(load_potential(cfg)) == cfg
    # the config records what was used: EMT/LJ are float64 and on the CPU whatever was asked
    assert potential_config_of(load_potential(model)) == cfg


def test_round_trip_mace_file_resolves_device(tiny_mace_path):
    cfg = PotentialConfig(model=str(tiny_mace_path), device="auto", dtype="float64")
    recorded = potential_config_of(load_potential(cfg))
    assert recorded == cfg.model_copy(update={"device": resolve_device("auto")})
    assert potential_config_of(load_potential(recorded)) == recorded


def test_round_trip_bundled_model():
    cfg = PotentialConfig(model="bundled", device="cpu", dtype="float32")
    calc = load_potential(cfg)
    assert potential_config_of(calc) == cfg
    assert calc.parameters["kind"] == "bundled"


def test_foreign_calculator_has_no_config():
    assert potential_config_of(EMT()) is None


def test_config_plus_keywords_is_refused():
    cfg = PotentialConfig(model="emt")
    for keywords in ({"device": "cpu"}, {"dtype": "float64"}, {"allow_download": False}):
        with pytest.raises(ConfigError, match="either a PotentialConfig"):
            load_potential(cfg, **keywords)
    with pytest.raises(ConfigError, match="not both"):
        load_potential({"model": "emt"}, device="cpu")
    with pytest.raises(ConfigError, match="PotentialConfig"):
        as_potential_config(["emt"])


def _md_config(**kw) -> MDConfig:
    base = dict(ensemble="nvt-langevin", steps=20, timestep_fs=2.0, temperature_k=300, initial_temperature_k=300,
                checkpoint_every=10, traj_every=5, log_every=5, seed=3)
    base.update(kw)
    return MDConfig(**base)


def test_run_md_records_the_potential_and_restart_rebuilds_it(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * 2
    # the config names another model on purpose: config.yaml must describe the calculator actually used
    config = _md_config(potential={"model": "lj", "device": "auto"})
    calc = load_potential("emt")
    full = run_md(atoms, calc, config, tmp_path / "full")
    saved = yaml.safe_load((tmp_path / "full" / "config.yaml").read_text())["potential"]
    assert saved == potential_config_of(calc).model_dump(mode="json")
    assert saved == {"model": "emt", "device": "cpu", "dtype": "float64", "allow_download": False}
    assert full.config.potential == potential_config_of(calc)

    # a run killed after its step-10 checkpoint, continued with no calculator given: rebuilt from config.yaml
    crashing = load_potential("emt")
    original, calls = crashing.calculate, {"n": 0}

    def calculate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 12:
            raise RuntimeError("simulated crash")
        return original(*args, **kwargs)

    crashing.calculate = calculate
    with pytest.raises(RuntimeError):
        run_md(atoms, crashing, config, tmp_path / "split")
    split = restart_md(tmp_path / "split")
    assert split.steps_done == full.steps_done
    assert (split.atoms.positions == full.atoms.positions).all()
    assert yaml.safe_load((tmp_path / "split" / "config.yaml").read_text())["potential"]["model"] == "emt"


def test_foreign_calculator_leaves_the_config(tmp_path):
    from _md_util import TestEMT

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * 2
    config = _md_config(steps=4, potential={"model": "lj", "device": "cpu"})
    run_md(atoms, TestEMT(), config, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["potential"]
    assert saved == {"model": "lj", "device": "cpu", "dtype": "float32", "allow_download": False}


def test_worker_validates_the_task_potential():
    from tfbsim.workflows.campaigns.worker import _load_calc

    calc = _load_calc({"model": "emt", "device": "cpu", "dtype": "float64", "allow_download": False})
    assert potential_config_of(calc) == PotentialConfig(model="emt", device="cpu", dtype="float64")
    with pytest.raises(ConfigError, match="task's potential"):
        _load_calc({"model": "emt", "precision": "float64"})


def test_demo_config_carries_the_potential(tmp_path):
    from tfbsim.workflows.demo.config import demo_config
    from tfbsim.workflows.demo.run import _campaign_yaml

    path = tmp_path / "demo.yaml"
    path.write_text("model: lj\ndtype: float64\n")  # the shorthand file keys
    cfg = demo_config("quick", file=path, device="cpu")
    assert cfg.potential == PotentialConfig(model="lj", device="cpu", dtype="float64")
    path.write_text("potential: {model: lj, allow_download: true}\n")
    cfg = demo_config("quick", file=path, model="emt")  # the --model flag overrides the file
    assert cfg.potential == PotentialConfig(model="emt", allow_download=True)
    campaign = yaml.safe_load(_campaign_yaml(cfg, tmp_path / "out" / "bulk").read_text())
    assert campaign["potential"] == cfg.potential.model_dump(mode="json")
    path.write_text("model: emt\npotential: {model: lj}\n")
    with pytest.raises(ConfigError, match="shorthand for potential.model"):
        demo_config("quick", file=path)


def test_cli_potential_flags_are_validated(tmp_path, cli_runner):
    from tfbsim.cli import app

    structure = tmp_path / "cu.extxyz"
    bulk("Cu", "fcc", a=3.6).write(structure)
    result = cli_runner.invoke(app, ["potential", "eval", str(structure), "--model", "emt", "--dtype", "float16"])
    assert result.exit_code == 2 and "dtype" in result.output
    result = cli_runner.invoke(app, ["potential", "eval", str(structure), "--model", "emt", "--device", "cpu"])
    assert result.exit_code == 0, result.output
