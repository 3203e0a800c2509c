"""The potential factory: specs, coverage checks, provenance, and the no-download rule."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from tfbsim.errors import ModelNotFoundError, PotentialError
from tfbsim.workflows.potentials.single_point import evaluate
from tfbsim.workflows.potentials.factory import check_coverage, load_potential, potential_info


def _lipos_box(seed: int = 0) -> Atoms:
    """A small random Li-P-O-N-S-Co box with reasonable spacing."""
    rng = np.random.default_rng(seed)
    symbols = ["Li"] * 6 + ["P", "O", "O", "O", "N", "S", "Co"]
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(3)], float) * 2.1
    pos = grid[rng.permutation(len(grid))[: len(symbols)]] + rng.normal(0, 0.05, (len(symbols), 3))
    return Atoms(symbols, positions=pos, cell=[6.3] * 3, pbc=True)


def test_emt_eval_matches_ase():
    from ase.calculators.emt import EMT

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * 2
    atoms.rattle(0.05, seed=1)
    result = evaluate(atoms, "emt")
    ref = atoms.copy()
    ref.calc = EMT()
    assert result["energy_ev"] == pytest.approx(ref.get_potential_energy(), rel=1e-12)
    assert result["max_force_ev_ang"] == pytest.approx(np.linalg.norm(ref.get_forces(), axis=1).max())
    assert len(result["stress_gpa"]) == 6
    assert result["n_atoms"] == 32
    assert result["provenance"]["model"]["spec"] == "emt"


def test_tiny_mace_loads_and_covers_project_elements(tiny_mace_path):
    calc = load_potential(str(tiny_mace_path), device="cpu", dtype="float64")
    assert set(calc.parameters["elements"]) == {"Li", "N", "O", "P", "S", "Co"}
    assert calc.parameters["r_max_ang"] == pytest.approx(4.5)
    assert len(calc.parameters["sha256"]) == 64
    atoms = _lipos_box()
    result = evaluate(atoms, calc)
    assert np.isfinite(result["energy_ev"])
    # forces are minus the energy gradient: finite-difference check on one coordinate
    work = atoms.copy()
    work.calc = calc
    f = work.get_forces()[0, 0]
    h = 1e-4
    work.positions[0, 0] += h
    e_plus = work.get_potential_energy()
    work.positions[0, 0] -= 2 * h
    e_minus = work.get_potential_energy()
    assert f == pytest.approx(-(e_plus - e_minus) / (2 * h), rel=1e-4, abs=1e-6)


def test_float32_and_float64_agree(tiny_mace_path):
    atoms = _lipos_box(3)
    e64 = evaluate(atoms, str(tiny_mace_path), device="cpu", dtype="float64")["energy_ev"]
    e32 = evaluate(atoms, str(tiny_mace_path), device="cpu", dtype="float32")["energy_ev"]
    assert e32 == pytest.approx(e64, rel=1e-5)


def test_missing_element_is_named(tiny_mace_path):
    calc = load_potential(str(tiny_mace_path), device="cpu")
    with pytest.raises(PotentialError, match="Cu"):
        check_coverage(calc, bulk("Cu"))
    with pytest.raises(PotentialError, match="Li"):
        evaluate(bulk("Li"), "emt")


def test_foundation_model_without_cache_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError) as info:
        load_potential("mace-mp-0:small")
    message = str(info.value)
    assert "20231210mace128L0_energy_epoch249model" in message
    assert str(tmp_path / "mace") in message
    assert not (tmp_path / "mace").exists()  # nothing was downloaded or created


def test_foundation_model_found_in_cache(tmp_path, monkeypatch, tiny_mace_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "mace").mkdir()
    os.link(tiny_mace_path, tmp_path / "mace" / "mace-mpa-0-medium.model")
    calc = load_potential("mace-mpa-0:medium", device="cpu")
    assert calc.parameters["kind"] == "mace-foundation"


def test_unknown_specs_and_options():
    with pytest.raises(ModelNotFoundError, match="neither a file nor a known name"):
        load_potential("/no/such/file.model")
    with pytest.raises(PotentialError, match="unknown foundation model"):
        load_potential("mace-mp-0:huge")
    with pytest.raises(PotentialError, match="dtype"):
        load_potential("emt", dtype="float16")


def test_non_mace_file_is_refused(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(PotentialError, match="not a loadable MACE model"):
        load_potential(str(bad), device="cpu")


def test_weights_only_quirk_is_contained(tiny_mace_path):
    load_potential(str(tiny_mace_path), device="cpu")
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ


def test_mace_root_logger_side_effect_is_contained(tiny_mace_path):
    """mace logs via logging.info(), which would install a root handler (every tfbsim line then prints twice)."""
    import logging

    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    for handler in saved:
        root.removeHandler(handler)
    try:
        load_potential(str(tiny_mace_path), device="cpu")
        assert root.handlers == [] and root.level == level
    finally:
        for handler in saved:
            root.addHandler(handler)


def test_chgnet_eval():
    pytest.importorskip("chgnet")
    atoms = bulk("Li", "bcc", a=3.44, cubic=True)
    result = evaluate(atoms, "chgnet", device="cpu", dtype="float32")
    assert result["energy_per_atom_ev"] == pytest.approx(-1.88, abs=0.05)  # feasibility study: -1.880
    info = potential_info("chgnet")
    assert info["kind"] == "chgnet" and "Co" in info["elements"] and info["n_params"] > 1e5
    json.dumps(info)
