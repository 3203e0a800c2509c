"""Quench on substrate, relaxation along the normal, the Li-melting warning, and the CLI steps that need a potential."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from tfbsim.cli import app
from tfbsim.errors import ConfigError
from tfbsim.interfaces.builder import build_interface
from tfbsim.structures.io import set_region
from tfbsim.workflows.protocols.interface_quench import inner_layers, quench_on_substrate, relax_interface
from tfbsim.workflows.protocols.li_melting import LI_MELTING_K, check_li_melting, li_metal_regions
from tfbsim.workflows.potentials.factory import load_potential

# a few MD steps per stage: the mechanics, not the physics
TINY = {
    "preset": "quick", "timestep_fs": 1.0, "melt_ps": 0.02, "final_k": 500.0, "quench_rate_k_ps": 1500 / 0.02,
    "anneal_ps": 0.02, "prerelax_steps": 10, "final_relax_steps": 10, "traj_every": 5, "log_every": 5,
    "checkpoint_every": 10,
}


def _li_with_glass() -> Atoms:
    li = bulk("Li", "bcc", a=3.51, cubic=True).repeat((2, 2, 2))
    other = Atoms("PO4", positions=[[0, 0, 0], [1.5, 0, 0], [0, 1.5, 0], [0, 0, 1.5], [1, 1, 1]])
    atoms = li + other
    set_region(atoms, ["li"] * len(li) + ["lipon"] * len(other))
    return atoms


def test_li_melting_warning():
    atoms = _li_with_glass()
    assert set(li_metal_regions(atoms)) == {"li"}
    message = check_li_melting(atoms, [300.0, 500.0], context="test MD")
    assert message is not None and str(LI_MELTING_K) in message and "li (16 mobile Li)" in message
    assert check_li_melting(atoms, 425.0) is None
    atoms.new_array("fixed", atoms.arrays["region"] == "li")
    assert check_li_melting(atoms, 2000.0) is None  # a fixed electrode cannot melt
    plain = bulk("Li", "bcc", a=3.51, cubic=True).repeat((2, 1, 1))  # no regions: checked as a whole
    assert check_li_melting(plain, 600.0) is not None
    glass_only = Atoms("Li3PO4", positions=np.random.default_rng(0).uniform(0, 5, (8, 3)), cell=[6, 6, 6], pbc=True)
    assert check_li_melting(glass_only, 2000.0) is None


def test_quench_on_substrate_fixes_the_substrate_then_its_inner_layers():
    atoms, _ = build_interface("li:100,lipon", thickness_ang=[7.0, 9.0], lateral_min_ang=7.0, seed=2)
    calc = load_potential("lj")
    crystal = atoms.arrays["region"] == "li"
    inner = inner_layers(atoms, crystal, atoms.info["interfaces_z_ang"], 1.5, periodic=True)
    assert 0 < inner.sum() < crystal.sum()
    result = quench_on_substrate(atoms, calc, TINY, mobile_depth_ang=1.5)
    final, summary = result.atoms, result.summary
    deposit, anneal = summary["steps"]
    assert deposit["n_fixed"] == crystal.sum() and anneal["n_fixed"] == inner.sum()
    assert anneal["barostat"] is True
    assert np.allclose(final.cell[:2], atoms.cell[:2])  # the substrate's in-plane cell is kept
    assert np.allclose(final.positions[inner, :2], atoms.positions[inner, :2])  # inner layers never moved in-plane
    assert not np.allclose(final.positions[~crystal], atoms.positions[~crystal])  # the glass did
    assert list(final.arrays["region"]) == list(atoms.arrays["region"])
    assert not final.arrays["fixed"].any()  # the builder's tags come back
    assert len(summary["warnings"]) == 1 and "500 K" in summary["warnings"][0]  # final_k 500 K with mobile Li
    assert summary["glass_regions"] == ["lipon"]
    with pytest.raises(ConfigError, match="no glass region"):
        quench_on_substrate(atoms[atoms.arrays["region"] == "li"], calc, TINY)


def test_relax_interface_keeps_the_in_plane_cell_and_fixed_atoms():
    calc = load_potential("lj")
    slab, _ = build_interface("li:100,lipon", thickness_ang=[7.0, 9.0], lateral_min_ang=7.0, vacuum_ang=8.0)
    relaxed, summary = relax_interface(slab, calc, fmax_ev_ang=0.1, max_steps=15)
    fixed = slab.arrays["fixed"]
    assert fixed.any() and np.allclose(relaxed.positions[fixed], slab.positions[fixed])
    assert np.allclose(relaxed.cell[:], slab.cell[:]) and summary["cell_axes"] == "fixed"
    sandwich, _ = build_interface("li:100,lipon", thickness_ang=[7.0, 9.0], lateral_min_ang=7.0)
    relaxed, summary = relax_interface(sandwich, calc, fmax_ev_ang=0.1, max_steps=15)
    assert np.allclose(relaxed.cell[:2], sandwich.cell[:2])
    assert relaxed.cell[2, 2] != pytest.approx(sandwich.cell[2, 2], abs=1e-6)
    assert summary["cell_axes"] == "z" and summary["energy_final_ev"] < summary["energy_initial_ev"]


def test_cli_relax_and_quench_on_substrate(cli_runner, tmp_path):
    import yaml

    out, js = tmp_path / "relaxed.extxyz", tmp_path / "relaxed.json"
    base = ["build", "interface", "--stack", "li:100,lipon", "--thickness-ang", "7,9", "--lateral-min-ang", "7"]
    result = cli_runner.invoke(app, [*base, "--relax", "--model", "lj", "--relax-steps", "5", "-o", str(out),
                                     "--json", str(js)])
    assert result.exit_code == 0, result.output
    report = json.loads(js.read_text())
    assert report["relax"]["steps"] <= 5 and report["provenance"]["model"]["spec"] == "lj"
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in TINY.items() if k != "preset"} | {"final_k": 300.0}))
    out, js = tmp_path / "quenched.extxyz", tmp_path / "quenched.json"
    result = cli_runner.invoke(app, [*base, "--quench-on-substrate", "quick", "--model", "lj", "--config", str(config),
                                     "-o", str(out), "--json", str(js)])
    assert result.exit_code == 0, result.output
    report = json.loads(js.read_text())
    steps = report["quench_on_substrate"]["steps"]
    assert [s["name"] for s in steps] == ["deposit", "anneal"] and report["warnings"] == []
    run_dir = tmp_path / "quenched_quench"
    assert (run_dir / "1_deposit" / "summary.json").exists() and (run_dir / "2_anneal" / "final.extxyz").exists()
    assert "as_built" in report and out.exists()
