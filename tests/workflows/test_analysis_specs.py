"""Typed analysis specs: one validation for the campaign file, the worker and ``tfbsim analyze``."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from tfbsim.analysis.coordination import Coordination
from tfbsim.analysis.diffusion import DiffusionAnalysis
from tfbsim.analysis.interphase import Interphase
from tfbsim.errors import ConfigError
from tfbsim.workflows.campaigns.config import (
    ANALYSIS_SPECS,
    CoordinationSpec,
    DiffusionSpec,
    InterphaseSpec,
    task_analysis_specs,
)


def _frames(n: int = 12):
    base = bulk("OLi2", "fluorite", a=4.61, cubic=True) * (2, 2, 2)
    rng = np.random.default_rng(1)
    li = np.flatnonzero(base.numbers == 3)
    out = []
    for k in range(n):
        atoms = base.copy()
        atoms.positions[li] += rng.normal(0.0, 0.1 * np.sqrt(k + 1), (len(li), 3))
        atoms.info["time_ps"] = 0.1 * k
        out.append(atoms)
    return out


@pytest.mark.parametrize("spec, analysis", [
    (DiffusionSpec(frames="2:", axis="xy", fit_end_ps=0.8), lambda t: DiffusionAnalysis(t, frames="2:", axis="xy",
                                                                                        fit_end_ps=0.8)),
    (CoordinationSpec(cutoffs={"Li-O": 2.3}, frames="::3", rdf_pairs=["Li-O"]),
     lambda t: Coordination(t, cutoffs={"Li-O": 2.3}, frames="::3", rdf_pairs=["Li-O"])),
    (InterphaseSpec(bin_ang=1.5, threshold=0.4), lambda t: Interphase(t, bin_ang=1.5, threshold=0.4)),
])
def test_spec_builds_the_analysis_with_its_settings(spec, analysis):
    frames = _frames()
    built = spec.build(frames)
    assert type(built) is type(analysis(frames))
    assert built.run().results.to_dict() == analysis(frames).run().results.to_dict()


def test_specs_travel_as_json_and_are_revalidated():
    specs = {"diffusion": DiffusionSpec(species="Li", stage="prod", z_window_ang=(1.0, 5.0)),
             "coordination": CoordinationSpec(cutoffs="rdf", stage="prod"),
             "interphase": InterphaseSpec(axis="x", product_classes=["Li2O"], stage="prod")}
    shipped = {key: spec.model_dump(mode="json") for key, spec in specs.items()}
    back = task_analysis_specs(shipped)
    assert back == specs and all(type(back[k]) is ANALYSIS_SPECS[k] for k in specs)
    with pytest.raises(ConfigError, match="unknown per-task analyses"):
        task_analysis_specs({"msd": {}})
    with pytest.raises(ConfigError, match="analyses.diffusion"):
        task_analysis_specs({"diffusion": {"species": "Li", "colour": "red"}})


@pytest.mark.parametrize("model, data, message", [
    (DiffusionSpec, {"frames": "1:2:3:4"}, "START:STOP:STEP"),
    (DiffusionSpec, {"dt_fs": -1.0}, "greater than 0"),
    (CoordinationSpec, {"cutoffs": "best"}, "cutoffs"),
    (InterphaseSpec, {"axis": "w"}, "axis"),
])
def test_bad_specs_are_refused_before_any_frame_is_read(model, data, message):
    from tfbsim.workflows.config import validate_config

    with pytest.raises(ConfigError, match=message):
        validate_config(model, data)


def test_campaign_ships_typed_specs_with_the_stage(tmp_path):
    import yaml

    from tfbsim.structures.io import write_structure
    from tfbsim.workflows.campaigns.config import load_campaign
    from tfbsim.workflows.campaigns.tasks import expand_campaign

    write_structure(tmp_path / "cu.extxyz", bulk("Cu", "fcc", a=3.6, cubic=True))
    md = {"ensemble": "nvt-langevin", "timestep_fs": 2.0, "steps": 10, "friction_ps_inv": 2.0}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "c", "potential": {"model": "emt"}, "structures": [{"name": "cu", "file": "cu.extxyz"}],
        "temperatures_k": [300.0], "protocol": [{"name": "eq", "md": md}, {"name": "prod", "md": md}],
        "analyses": {"diffusion": {"species": "Cu", "stage": "eq"}, "arrhenius": None,
                     "coordination": {"cutoffs": {"Li-O": "rdf"}}},
    }))
    task = expand_campaign(load_campaign(tmp_path / "c.yaml")).tasks[0]
    specs = task_analysis_specs(task.spec["analyses"])
    assert specs["diffusion"].stage == "eq" and specs["coordination"].stage == "prod"
    assert specs["coordination"].cutoffs == {"Li-O": "rdf"} and "interphase" not in specs
