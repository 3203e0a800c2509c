"""`tfbsim md` and `tfbsim relax`: run directory, --config, --restart/--force, exit codes 2 and 3."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk

from tfbsim.analysis.h5md import open_universe, read_h5md_info
from tfbsim.cli import app
from tfbsim.structures.io import read_json, read_structure, write_structure

RUN_FILES = {"config.yaml", "traj.h5md", "checkpoint.npz", "log.csv", "summary.json", "final.extxyz"}


@pytest.fixture
def cu_file(tmp_path):
    path = tmp_path / "cu.extxyz"
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    atoms.new_array("region", np.array(["bulk"] * len(atoms)))
    write_structure(path, atoms)
    return path


def _md(cli_runner, *args):
    return cli_runner.invoke(app, ["md", *map(str, args)])


def test_md_writes_a_run_directory(cli_runner, tmp_path, cu_file):
    run = tmp_path / "run"
    result = _md(cli_runner, cu_file, "--model", "emt", "--ensemble", "nvt-bussi", "--temperature-k", 400,
                 "--steps", 40, "--timestep-fs", 4, "--traj-every", 10, "--checkpoint-every", 20, "--seed", 3,
                 "-o", run)
    assert result.exit_code == 0, result.output
    assert "completed: 40 steps of nvt-bussi" in result.output
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    summary = read_json(run / "summary.json")
    assert summary["status"] == "completed" and summary["steps_done"] == 40
    assert summary["provenance"]["model"]["spec"] == "emt" and summary["provenance"]["seed"] == 3
    info = read_h5md_info(run / "traj.h5md")
    assert info.n_frames == 5 and list(info.regions) == ["bulk"] * 8
    assert info.metadata["timestep_fs"] == 4.0
    universe = open_universe(run / "traj.h5md")
    assert universe.trajectory.n_frames == 5 and set(universe.atoms.names) == {"Cu"}
    universe.trajectory.close()
    final = read_structure(run / "final.extxyz")
    assert final.info["md"]["step"] == 40 and final.get_velocities().any()
    header = (run / "log.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["step", "time_ps", "T_k", "epot_ev", "ekin_ev", "etot_ev", "pressure_gpa", "volume_ang3"]


def test_md_config_unknown_key_exits_2_and_writes_nothing(cli_runner, tmp_path, cu_file):
    config = tmp_path / "md.yaml"
    config.write_text("ensemble: nvt-nhc\nsteps: 10\ntemprature_k: 300\n")
    run = tmp_path / "run"
    result = _md(cli_runner, cu_file, "--model", "emt", "--config", config, "-o", run)
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "temprature_k" in result.output and "line 3" in result.output
    assert not run.exists()


def test_md_config_file_and_flag_override(cli_runner, tmp_path, cu_file):
    config = tmp_path / "md.yaml"
    config.write_text("ensemble: nvt-nhc\nsteps: 10\ntemperature_k: 300\ntraj_every: 5\npotential: {model: emt}\n")
    run = tmp_path / "run"
    result = _md(cli_runner, cu_file, "--config", config, "--steps", 20, "-o", run)
    assert result.exit_code == 0, result.output
    summary = read_json(run / "summary.json")
    assert summary["steps_done"] == 20 and summary["ensemble"] == "nvt-nhc"


def test_md_restart_refuses_changes_without_force(cli_runner, tmp_path, cu_file):
    run = tmp_path / "run"
    first = _md(cli_runner, cu_file, "--model", "emt", "--steps", 20, "--checkpoint-every", 10, "--traj-every", 10, "-o", run)
    assert first.exit_code == 0, first.output
    again = _md(cli_runner, "--restart", run)
    assert again.exit_code == 0 and "completed: 20 steps" in again.output
    refused = _md(cli_runner, "--restart", run, "--steps", 30)
    assert refused.exit_code == 2 and "steps" in refused.output and "--force" in refused.output
    forced = _md(cli_runner, "--restart", run, "--steps", 30, "--force")
    assert forced.exit_code == 0, forced.output
    assert read_json(run / "summary.json")["steps_done"] == 30
    assert read_h5md_info(run / "traj.h5md").steps.tolist() == [0, 10, 20, 30]
    reused = _md(cli_runner, cu_file, "--model", "emt", "-o", run)
    assert reused.exit_code == 2 and "--restart" in reused.output
    both = _md(cli_runner, cu_file, "--restart", run)
    assert both.exit_code == 2


def test_md_unstable_exits_3_and_keeps_the_trajectory(cli_runner, tmp_path, cu_file):
    config = tmp_path / "md.yaml"
    config.write_text(
        "ensemble: nvt-langevin\nsteps: 200\ntimestep_fs: 4\ntemperature_k: 300\ninitial_temperature_k: 3000\n"
        "friction_ps_inv: 0.1\nguard_t_factor: 2.0\nguard_t_after_ps: 0.02\ntraj_every: 5\nguard_every: 10\n"
    )
    run = tmp_path / "run"
    result = _md(cli_runner, cu_file, "--model", "emt", "--config", config, "-o", run)
    assert result.exit_code == 3
    errors = [line for line in result.output.splitlines() if "error:" in line]  # (after the progress bar)
    assert len(errors) == 1 and errors[0].startswith("error: MD unstable") and "Traceback" not in result.output
    assert read_json(run / "summary.json")["status"] == "unstable"
    assert read_h5md_info(run / "traj.h5md").n_frames >= 2


def test_relax_cli(cli_runner, tmp_path):
    structure = tmp_path / "cu.extxyz"
    write_structure(structure, bulk("Cu", "fcc", a=3.75, cubic=True))
    out, report = tmp_path / "relaxed.extxyz", tmp_path / "relax.json"
    result = cli_runner.invoke(app, ["relax", str(structure), "--model", "emt", "--fmax-ev-ang", "0.001", "-o", str(out),
                                     "--json", str(report)])
    assert result.exit_code == 0, result.output
    relaxed = read_structure(out)
    assert relaxed.cell.lengths()[0] == pytest.approx(3.59, abs=0.01)
    data = json.loads(report.read_text())
    assert data["converged"] and data["energy_final_ev"] < data["energy_initial_ev"]
    assert relaxed.info["provenance"]["model"]["spec"] == "emt"
    fixed = cli_runner.invoke(app, ["relax", str(structure), "--model", "emt", "--fixed-cell", "-o", str(out)])
    assert fixed.exit_code == 0 and read_structure(out).cell.lengths()[0] == pytest.approx(3.75)
