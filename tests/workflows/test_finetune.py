"""Fine-tuning on DFT frames: reference offsets recovered, the test split never trained on, E0s carried through."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from tfbsim.errors import ConfigError
from tfbsim.workflows.potentials.factory import load_potential
from tfbsim.workflows.training.finetune import FinetuneConfig, finetune_on_dft, fit_reference_offsets, model_e0s
from tfbsim.workflows.training.train import TrainConfig

HIDDEN = {"Li": -190.3, "N": -262.1, "O": -431.7, "P": -175.9}  # "CP2K minus teacher" per element (eV), invented


def _frames(rng, n, calc):
    frames = []
    while len(frames) < n:
        counts = {"Li": rng.integers(3, 10), "P": rng.integers(1, 3), "O": rng.integers(2, 8), "N": rng.integers(0, 3)}
        symbols = [s for s, k in counts.items() for _ in range(k)]
        pos = rng.uniform(0, 7.5, size=(len(symbols), 3))
        atoms = Atoms(symbols, positions=pos, cell=[7.5] * 3, pbc=True)
        if min(atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)]) < 1.4:
            continue
        atoms.calc = calc
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = None
        atoms.info["REF_energy"] = energy
        atoms.arrays["REF_forces"] = forces
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def tiny(tiny_mace_path):
    return load_potential(str(tiny_mace_path), device="cpu", dtype="float64")


def test_offsets_recover_a_hidden_per_element_shift(tiny):
    rng = np.random.default_rng(3)
    frames = _frames(rng, 40, tiny)
    predicted = np.array([f.info["REF_energy"] for f in frames])
    for f in frames:  # the "DFT" energy: the model's plus a per-element constant plus 2 meV/atom noise
        f.info["REF_energy"] += sum(HIDDEN[s] for s in f.get_chemical_symbols()) + rng.normal(0, 0.002) * len(f)
    fit = fit_reference_offsets(frames, predicted)
    assert fit["offsets_ev"] == pytest.approx(HIDDEN, abs=0.03)
    assert 0.5 < fit["residual_rmse_mev_atom"] < 4.0
    same = [Atoms("Li3PO4", positions=rng.uniform(0, 6, (8, 3)), cell=[6] * 3, pbc=True) for _ in range(5)]
    for f in same:
        f.info["REF_energy"] = 0.0
    with pytest.raises(ConfigError, match=r"determine only 1 of the 3 element offsets"):
        fit_reference_offsets(same, np.zeros(5))  # one composition: offsets inseparable


def test_finetune_trains_on_the_train_split_only_and_moves_the_e0s(tmp_path, tiny, tiny_mace_path):
    from ase.io import write

    rng = np.random.default_rng(5)
    dft = _frames(rng, 14, tiny)
    for i, f in enumerate(dft):
        f.info["REF_energy"] += sum(HIDDEN[s] for s in f.get_chemical_symbols())
        f.info["split"] = "test" if i % 4 == 0 else "train"
        f.info["frame_id"] = f"dft{i}"
    write(tmp_path / "dft.extxyz", dft, format="extxyz")
    replay = _frames(rng, 6, tiny)
    for i, f in enumerate(replay):
        f.info["frame_id"] = f"replay{i}"
    write(tmp_path / "replay.extxyz", replay, format="extxyz")
    cfg = FinetuneConfig(dft_data=tmp_path / "dft.extxyz", min_dft_frames=5, replay_frames=4, dft_weight=3.0,
                         train=TrainConfig(preset="tiny", name="ft", epochs=2, r_max_ang=4.5, batch_size=4,
                                           lr=0.001, stage_two=False))
    out = finetune_on_dft(tiny_mace_path, tmp_path / "replay.extxyz", tmp_path / "ft", cfg)
    trained = read(tmp_path / "ft" / "data.extxyz", index=":")
    ids = [a.info["frame_id"] for a in trained]
    assert sorted(i for i in ids if i.startswith("dft")) == sorted(f"dft{i}" for i in range(14) if i % 4)
    assert out["n_dft_frames"] == 10 and out["n_dft_frames_left_out"] == 4 and out["n_replay_frames"] == 4
    assert out["reference_fit"]["offsets_ev"] == pytest.approx(HIDDEN, abs=1e-6)  # noise-free: exact
    by_id = {f.info["frame_id"]: f for f in replay}
    for a in trained:
        if a.info["frame_id"].startswith("replay"):  # replayed teacher energies moved onto the DFT reference
            expected = by_id[a.info["frame_id"]].info["REF_energy"] + sum(HIDDEN[s] for s in a.get_chemical_symbols())
            assert a.info["REF_energy"] == pytest.approx(expected, abs=1e-5) and a.info["config_weight"] == 1.0
        else:
            assert a.info["config_weight"] == 3.0
    base, tuned = model_e0s(tiny_mace_path), model_e0s(out["model"])
    for el in base:
        assert tuned[el] == pytest.approx(base[el] + HIDDEN.get(el, 0.0), abs=1e-4)
    again = finetune_on_dft(tiny_mace_path, tmp_path / "replay.extxyz", tmp_path / "ft", cfg)  # resumes: same model
    assert again["model"] == out["model"] and again["dft_frames_sha1"] == out["dft_frames_sha1"]
    dft[0].info["split"] = "train"  # the DFT set grew: the old fine-tuning is stale, refused with the way out
    write(tmp_path / "dft.extxyz", dft, format="extxyz")
    with pytest.raises(ConfigError, match=r"fine-tuned on 10 DFT frames, but .* now has 11 .* remove"):
        finetune_on_dft(tiny_mace_path, tmp_path / "replay.extxyz", tmp_path / "ft", cfg)
    with pytest.raises(ConfigError, match=r"11 frames of split 'train' are labelled; fine-tuning needs at least 20"):
        finetune_on_dft(tiny_mace_path, None, tmp_path / "ft2", cfg.model_copy(update={"min_dft_frames": 20}))
    assert not (tmp_path / "ft2").exists()


def test_training_frames_weight_dft_and_shift_replay(tiny):
    from tfbsim.workflows.training.finetune import training_frames

    rng = np.random.default_rng(5)
    dft, replay = _frames(rng, 3, tiny), _frames(rng, 6, tiny)
    for a in replay:
        a.info["config_type"] = "md"
    offsets = {"Li": 1.5, "O": -2.0}
    cfg = FinetuneConfig(replay_frames=4, dft_weight=5.0, dft_stress_weight=0.0)
    out = training_frames(dft, replay, offsets, cfg)
    assert len(out) == 7 and all(a.info["config_weight"] == 5.0 for a in out[:3])
    assert all(a.info["config_stress_weight"] == 0.0 for a in out[:3])  # DFT stress left out of the loss
    assert all("config_stress_weight" not in a.info for a in out[3:])  # the replay frames carry the stress
    assert all(a.info["config_type"] == "replay_md" and a.info["config_weight"] == 1.0 for a in out[3:])
    originals = {round(a.info["REF_energy"], 9): a for a in replay}
    for a in out[3:]:  # each replay frame moved onto the DFT reference by its composition
        shift = sum(offsets.get(s, 0.0) for s in a.get_chemical_symbols())
        assert round(a.info["REF_energy"] - shift, 9) in originals
    default = training_frames(dft, replay, offsets, FinetuneConfig(replay_frames=4))
    assert all("config_stress_weight" not in a.info for a in default)  # weight 1: mace's default, not written
    assert [a.info["REF_energy"] for a in default] == [a.info["REF_energy"] for a in out]  # same seeded draw
