"""Held-out metrics against a reference: the per-element force slope (softening) and offset-fitted energies."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from tfbsim.errors import ConfigError
from tfbsim.workflows.training.evaluate import evaluate_errors


def _frames(scale: float, offsets: dict[str, float]):
    rng = np.random.default_rng(0)
    frames = []
    for n_cu in range(0, 9, 2):  # Cu/Ni fcc alloys of different composition
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.symbols[:n_cu] = "Ni"
        atoms.positions += rng.normal(0, 0.08, atoms.positions.shape)
        atoms.calc = EMT()
        e = atoms.get_potential_energy() + sum(offsets[s] for s in atoms.get_chemical_symbols())
        f = atoms.get_forces() / scale  # the reference forces are stiffer: the model is "soft" by `scale`
        atoms.calc = None
        atoms.info.update(REF_energy=e, split="test" if n_cu % 4 == 0 else "train")
        atoms.arrays["REF_forces"] = f
        frames.append(atoms)
    return frames


def test_force_slope_measures_softening_and_offsets_are_fitted_out():
    errors = evaluate_errors("emt", _frames(0.8, {"Cu": 1.5, "Ni": -0.7}))
    assert errors["force_slope_per_element"]["Cu"] == pytest.approx(0.8, rel=1e-6)
    assert errors["force_slope_per_element"]["Ni"] == pytest.approx(0.8, rel=1e-6)
    assert errors["energy_rmse_mev_atom"] > 500  # raw: dominated by the reference shift
    assert errors["energy_rmse_offset_fitted_mev_atom"] == pytest.approx(0.0, abs=1e-6)


def test_split_filter():
    frames = _frames(1.0, {"Cu": 0.0, "Ni": 0.0})
    assert evaluate_errors("emt", frames, split="test")["n_frames"] == 3
    assert evaluate_errors("emt", frames)["force_slope_per_element"]["Cu"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="split"):
        evaluate_errors("emt", frames, split="holdout")
