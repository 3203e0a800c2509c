"""Labelling, training (mace_run_train) and evaluation on a tiny dataset with a random-weight MACE teacher."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones

from tfbsim.errors import ConfigError
from tfbsim.workflows.potentials.factory import load_potential
from tfbsim.workflows.potentials.mace_backend import sha256_file
from tfbsim.workflows.training.evaluate import evaluate_errors, parity_figure
from tfbsim.workflows.training.label import check_labelled, frame_id, label_frames, read_labelled, select_frames
from tfbsim.workflows.training.train import TrainConfig, train_model, training_command


def _frames(n_frames: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    grid = np.array([[a, b, c] for a in range(3) for b in range(3) for c in range(3)], float) * 2.1
    out = []
    for i in range(n_frames):
        pos = grid[rng.permutation(27)[:12]] + rng.normal(0, 0.1, (12, 3))
        atoms = Atoms(["Li"] * 6 + ["P"] * 2 + ["O"] * 3 + ["N"], positions=pos, cell=[6.3] * 3, pbc=True)
        atoms.info["config_type"] = "glass" if i % 2 else "crystal"
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, tiny_mace_path):
    out = tmp_path_factory.mktemp("data") / "data.extxyz"
    teacher = load_potential(str(tiny_mace_path), device="cpu", dtype="float64")
    report = label_frames(_frames(20), teacher, out)
    return out, report, teacher


def test_labels_equal_teacher_and_card(labelled):
    path, report, teacher = labelled
    assert report["n_labelled"] == 20 and report["n_rejected"] == 0
    frames = read_labelled(path)
    atoms = frames[3]
    ref = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
    ref.calc = teacher
    assert atoms.info["REF_energy"] == pytest.approx(ref.get_potential_energy(), rel=1e-10)
    np.testing.assert_allclose(atoms.arrays["REF_forces"], ref.get_forces(), atol=1e-8)
    assert len(atoms.info["REF_stress"]) == 6
    card = json.loads(path.with_name(path.name + ".card.json").read_text())
    assert card["frames_per_config_type"] == {"crystal": 10, "glass": 10}
    assert card["atoms_per_element"]["Li"] == 120 and card["teacher"]["sha256"]


def test_labelling_resumes_and_drops_torn_frame(labelled, tmp_path):
    path, _, teacher = labelled
    copy = tmp_path / "d.extxyz"
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    copy.write_text("".join(lines[: 14 * 5 + 7]))  # 5 complete frames (12 atoms + 2 lines) and a torn sixth
    report = label_frames(_frames(20), teacher, copy)
    assert report["n_skipped"] == 5 and report["n_labelled"] == 15
    ids = [a.info["frame_id"] for a in read_labelled(copy)]
    assert len(ids) == len(set(ids)) == 20
    assert ids[0] == frame_id(_frames(1)[0])


class _SlowLJ(LennardJones):
    """A calculator for any element that takes a while (labellers overlap in time)."""

    def calculate(self, *args, **kwargs):
        time.sleep(0.05)
        super().calculate(*args, **kwargs)


def test_labellers_sharing_one_output_write_each_frame_once(tmp_path):
    """Two labellers on overlapping selections append to one file: each frame once, the card counts all."""
    frames = _frames(20)
    out = tmp_path / "shared.extxyz"
    start = threading.Barrier(2)
    reports = {}

    def run(name, part):
        start.wait()
        reports[name] = label_frames(part, _SlowLJ(), out)

    threads = [threading.Thread(target=run, args=("a", frames[:12])),
               threading.Thread(target=run, args=("b", frames[6:]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [a.info["frame_id"] for a in read_labelled(out)]
    assert sorted(ids) == sorted(frame_id(a) for a in frames)  # all 20, none twice
    assert reports["a"]["n_labelled"] + reports["b"]["n_labelled"] == 20
    card = json.loads(out.with_name(out.name + ".card.json").read_text())
    assert sum(card["frames_per_config_type"].values()) == 20


def test_passes_over_selections_label_each_frame_once_in_the_chosen_order(labelled, tmp_path):
    """``--only`` orders a slow labelling (held-out frames first); the frame hash keeps passes from overlapping."""
    _, _, teacher = labelled
    frames = _frames(8)
    for i, atoms in enumerate(frames):
        atoms.info["split"] = "test" if i % 4 in (1, 2) else "train"
    first = select_frames(frames, ["split=test", "config_type=gl*"])
    assert [frame_id(a) for a in first] == [frame_id(frames[1]), frame_id(frames[5])]
    out = tmp_path / "d.extxyz"
    assert label_frames(first, teacher, out)["n_labelled"] == 2
    report = label_frames(frames, teacher, out)
    assert report["n_skipped"] == 2 and report["n_labelled"] == 6  # frames 2 and 6: test, not glass
    kept = read_labelled(out)
    assert [a.info["split"] for a in kept[:2]] == ["test", "test"]
    assert sorted(a.info["frame_id"] for a in kept) == sorted(frame_id(a) for a in frames)
    with pytest.raises(ConfigError, match="config_type: crystal, glass"):
        select_frames(frames, ["config_type=amorphous"])
    with pytest.raises(ConfigError, match="KEY=GLOB"):
        select_frames(frames, ["split"])


def test_missing_ref_keys_named(tmp_path):
    frames = _frames(2)
    frames[0].info["energy_dft"] = 1.0
    with pytest.raises(ConfigError, match="REF_energy.*energy_dft"):
        check_labelled(frames, "x.extxyz")


def test_train_and_evaluate_end_to_end(labelled, tmp_path):
    path, _, _ = labelled
    cfg = TrainConfig(preset="tiny", epochs=2, r_max_ang=4.0, batch_size=4, seed=3)
    summary = train_model(path, tmp_path / "model", cfg)
    model = summary["model"]
    assert summary["n_train"] == 18 and summary["n_valid"] == 2 and summary["stress_trained"]
    assert (tmp_path / "model" / "train_summary.json").is_file()
    assert summary["compiled_model"] and summary["model_size_bytes"] < 10e6
    errors = evaluate_errors(model, tmp_path / "model" / "valid.extxyz")
    # our evaluation reproduces mace's own validation table (printed to 0.1 meV)
    mace_table = summary["validation"]["valid_Default"]
    assert errors["forces_rmse_mev_ang"] == pytest.approx(mace_table["RMSE F / meV / A"], abs=0.11)
    assert errors["energy_rmse_mev_atom"] == pytest.approx(mace_table["RMSE E / meV / atom"], abs=0.11)
    assert set(errors["forces_rmse_mev_ang_per_element"]) == {"Li", "N", "O", "P"}
    parity_figure(errors, tmp_path / "parity.png")
    assert (tmp_path / "parity.png").stat().st_size > 1000
    compiled = load_potential(summary["compiled_model"], device="cpu", dtype="float64")
    assert set(compiled.parameters["elements"]) == {"Li", "N", "O", "P"}


def test_training_command_options(tmp_path):
    cfg = TrainConfig(preset="small", epochs=10, mace_args={"patience": 5})
    cmd = training_command(cfg, tmp_path / "t", tmp_path / "v", tmp_path, has_stress=False)
    assert cmd[cmd.index("--num_interactions") + 1] == "2" and "--patience" in cmd and "--loss" not in cmd
    with pytest.raises(ConfigError, match="foundation model"):
        training_command(TrainConfig(foundation_model=tmp_path / "nope.model"), tmp_path, tmp_path, tmp_path, has_stress=True)
    assert cmd[cmd.index("--E0s") + 1] == "average"


def test_fixed_e0s_are_passed_by_atomic_number_and_must_cover_the_data(tmp_path):
    cfg = TrainConfig(e0s={"O": -2.76, "Li": -0.48})
    cmd = training_command(cfg, tmp_path / "t", tmp_path / "v", tmp_path, has_stress=True, elements=["Li", "O"])
    assert cmd[cmd.index("--E0s") + 1] == "{3: -0.48, 8: -2.76}"
    with pytest.raises(ConfigError, match="no reference energy for P"):
        training_command(cfg, tmp_path, tmp_path, tmp_path, has_stress=True, elements=["Li", "O", "P"])
    with pytest.raises(ConfigError, match="Xx are not element symbols"):
        training_command(TrainConfig(e0s={"Xx": 1.0}), tmp_path, tmp_path, tmp_path, has_stress=True)


def test_isolated_atom_energies_are_single_atoms_in_a_box():
    from ase import Atoms
    from ase.calculators.emt import EMT

    from tfbsim.workflows.training.label import isolated_atom_energies

    calc = EMT()
    calc.parameters["elements"] = ["Cu", "Al"]
    energies = isolated_atom_energies(calc, ["Cu", "Al"], box_ang=15.0)
    for symbol in ("Cu", "Al"):
        atom = Atoms(symbol, cell=[15.0] * 3, pbc=True)
        atom.calc = EMT()
        assert energies[symbol] == pytest.approx(atom.get_potential_energy(), abs=1e-12)
    dimer = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[15.0] * 3, pbc=True)
    dimer.calc = EMT()
    assert dimer.get_potential_energy() < 2 * energies["Cu"]  # bound relative to the separated atoms


def test_bundled_pipeline_end_to_end(tmp_path, tiny_mace_path, monkeypatch):
    """dataset -> label -> split -> train -> evaluate -> checks -> install, with a tiny teacher and tiny settings."""
    from tfbsim.workflows.training import bundled
    from tfbsim.workflows.training.bundled import BundledConfig, make_bundled
    from tfbsim.workflows.training.dataset import DatasetConfig

    # the tiny random teacher is not stable in MD or relaxation: run the cheap static recipes, and replace the
    # expensive physics checks by quick versions (they are exercised on the real model by `make model`)
    monkeypatch.setattr(bundled, "md_stability", lambda calc, **kw: {"stable": True, "temperature_k": 1500.0,
                                                                      "time_ps": 0.0, "n_atoms": 0, "diagnostic": None,
                                                                      "temperature_mean_k": 0.0})
    monkeypatch.setattr(bundled, "md_speed", lambda calc, sizes: {f"{n}_atoms": 1.0 for n in sizes})
    monkeypatch.setattr(bundled, "lattice_check", lambda calc, teacher: {"max_abs_diff_pct": 0.0})
    cfg = BundledConfig(
        teacher=str(tiny_mace_path),
        dataset=DatasetConfig(recipes=["crystals", "glasses"], crystal_frames=2, lipon_atoms=30, relax_path_steps=[0]),
        train=TrainConfig(preset="tiny", name="b", epochs=2, r_max_ang=4.0, batch_size=8),
        test_fraction=0.2, sampler=str(tiny_mace_path),
    )
    manifest = make_bundled(tmp_path / "out", tmp_path / "work", cfg)
    out = tmp_path / "out"
    assert (out / "bundled.model").is_file() and (out / "MODEL_CARD.md").read_text().startswith("# tfbsim bundled")
    data = json.loads((out / "bundled.json").read_text())
    assert data["sha256"] == manifest["sha256"] and data["dataset"]["n_frames"] > 20
    assert data["sampler"] == {"spec": str(tiny_mace_path), "sha256": sha256_file(tiny_mace_path)}
    assert any(k.startswith("crystal_") for k in data["test"]["per_config_type"])
    # E0s: the teacher's isolated-atom energies, passed to mace and stated in the card
    e0s = json.loads((tmp_path / "work" / "e0s.json").read_text())
    teacher = load_potential(str(tiny_mace_path), device="cpu", dtype="float32")
    lone = Atoms("Li", cell=[20.0] * 3, pbc=True)
    lone.calc = teacher
    assert e0s["Li"] == pytest.approx(lone.get_potential_energy(), abs=1e-6)
    command = data["train"]["command"]
    assert command[command.index("--E0s") + 1].startswith("{3: ")
    card = (out / "MODEL_CARD.md").read_text()
    assert "isolated-atom energies (" in card and f"Li {e0s['Li']:.3f}" in card and "1 interactions, 16 channels" in card
    calc = load_potential(str(out / "bundled.model"), device="cpu")
    assert {"Li", "P", "O", "N"} <= set(calc.parameters["elements"])
    # re-running resumes: nothing is rebuilt (same model, same sha)
    again = make_bundled(tmp_path / "out", tmp_path / "work", cfg)
    assert again["sha256"] == manifest["sha256"]

    # fine-tuning on "DFT" frames (the teacher's labels + a per-element constant), compared against them
    from ase.io import read, write

    from tfbsim.workflows.training.bundled import DftCheckConfig
    from tfbsim.workflows.training.finetune import FinetuneConfig

    hidden = {"Li": -190.0, "Co": -1200.0, "N": -260.0, "O": -430.0, "P": -176.0, "S": -275.0}
    dft = read(tmp_path / "work" / "trainval.extxyz", index=":")[:16]
    for i, a in enumerate(dft):
        a.info["REF_energy"] += sum(hidden[s] for s in a.get_chemical_symbols())
        a.info["split"] = "test" if i % 4 == 1 else "train"
    write(tmp_path / "dft.extxyz", dft, format="extxyz")
    ft_cfg = cfg.model_copy(update={
        "finetune": FinetuneConfig(dft_data=tmp_path / "dft.extxyz", min_dft_frames=5, replay_frames=4,
                                   train=TrainConfig(preset="tiny", name="ft", epochs=1, r_max_ang=4.0, batch_size=4,
                                                     lr=0.001, stage_two=False)),
        "dft_check": DftCheckConfig(dft_data=tmp_path / "dft.extxyz", neb_dirs=[], compare_with={"v1": "bundled-v1"})})
    tuned = make_bundled(tmp_path / "out2", tmp_path / "work", ft_cfg)
    assert tuned["sha256"] != manifest["sha256"] and tuned["finetune"]["n_dft_frames"] == 12
    assert tuned["finetune"]["n_dft_frames_left_out"] == 4 and tuned["finetune"]["n_replay_frames"] == 4
    assert set(tuned["dft"]["models"]) == {"new", "v1"} and tuned["dft"]["models"]["new"]["frames"]["n_frames"] == 4
    with pytest.raises(ConfigError, match=r"dft_check.dft_data .*nope.extxyz: no such file"):
        make_bundled(tmp_path / "out3", tmp_path / "work", ft_cfg.model_copy(update={
            "dft_check": DftCheckConfig(dft_data=tmp_path / "nope.extxyz", neb_dirs=[])}))
    assert not (tmp_path / "out3").exists()
    card = (tmp_path / "out2" / "MODEL_CARD.md").read_text()
    assert "## Fine-tuning on DFT" in card and "## Against PBE" in card and "| v1 | 4 |" in card
    # the teacher's test frames are scored on the DFT reference, where the fine-tuned model's E0s now sit
    shifted = read(tmp_path / "work" / "finetune" / "test_on_dft_reference.extxyz", index=":")
    offsets = tuned["finetune"]["reference_fit"]["offsets_ev"]
    first = read(tmp_path / "work" / "test.extxyz", index=0)
    assert shifted[0].info["REF_energy"] == pytest.approx(
        first.info["REF_energy"] + sum(offsets[s] for s in first.get_chemical_symbols()), abs=1e-5)


def test_the_sampler_drives_the_recipes_and_the_teacher_labels(tmp_path, tiny_mace_path, monkeypatch):
    """With ``sampler`` set, the recipes' MD/relaxations run on it and every label comes from the teacher."""
    from tfbsim.workflows.training import bundled
    from tfbsim.workflows.training.bundled import BundledConfig, make_bundled

    class Stop(Exception):
        pass

    seen = {}

    def fake_generate(config, work_dir, *, teacher, progress):
        seen["recipes"] = teacher.parameters["spec"]
        return []

    def fake_label(frames, teacher, out, *, progress):
        seen["labels"] = teacher.parameters["spec"]
        raise Stop

    monkeypatch.setattr(bundled, "generate_configurations", fake_generate)
    monkeypatch.setattr(bundled, "label_frames", fake_label)
    with pytest.raises(Stop):
        make_bundled(tmp_path / "out", tmp_path / "work", BundledConfig(teacher=str(tiny_mace_path), sampler="bundled-v1"))
    assert seen == {"recipes": "bundled-v1", "labels": str(tiny_mace_path)}
    seen.clear()
    with pytest.raises(Stop):  # no sampler: the teacher does both
        make_bundled(tmp_path / "out", tmp_path / "work", BundledConfig(teacher=str(tiny_mace_path)))
    assert seen == {"recipes": str(tiny_mace_path), "labels": str(tiny_mace_path)}


def test_committed_labelled_data_skips_the_dataset_and_label_stages(tmp_path, tiny_mace_path, monkeypatch):
    import gzip
    import shutil

    from tfbsim.workflows.training import bundled
    from tfbsim.workflows.training.bundled import BundledConfig, make_bundled

    frames = [Atoms("Li2O", positions=[[0, 0, 0], [1.6, 0, 0], [0.8, 1.2, 0.3 * i]], cell=[5] * 3, pbc=True)
              for i in range(6)]
    teacher = load_potential(str(tiny_mace_path), device="cpu", dtype="float32")
    made = tmp_path / "made.extxyz"
    label_frames(frames, teacher, made)
    committed = tmp_path / "committed"
    committed.mkdir()
    with open(made, "rb") as src, gzip.open(committed / "data.extxyz.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.copyfile(str(made) + ".card.json", committed / "data.extxyz.card.json")

    class Stop(Exception):
        pass

    def never(*args, **kwargs):
        raise AssertionError("the dataset/label stage ran although labelled data were given")

    def stop_at_training(data, out_dir, config, *, progress):
        raise Stop(len(read_labelled(data)))

    monkeypatch.setattr(bundled, "generate_configurations", never)
    monkeypatch.setattr(bundled, "label_frames", never)
    monkeypatch.setattr(bundled, "train_model", stop_at_training)
    cfg = BundledConfig(teacher=str(tiny_mace_path), labelled_data=committed / "data.extxyz.gz", test_fraction=0.2)
    with pytest.raises(Stop) as stopped:
        make_bundled(tmp_path / "out", tmp_path / "work", cfg)
    assert stopped.value.args[0] == 5 and len(read_labelled(tmp_path / "work" / "data.extxyz")) == 6  # 1 test frame
    with pytest.raises(ConfigError, match=r"was labelled by .*tiny.model.*not by the teacher 'chgnet'"):
        bundled.import_labelled(committed / "data.extxyz.gz", tmp_path / "x.extxyz", teacher_spec="chgnet")
    with pytest.raises(ConfigError, match=r"labelled_data .*nope.extxyz.gz: no such file"):
        make_bundled(tmp_path / "out", tmp_path / "work2", cfg.model_copy(update={"labelled_data": tmp_path / "nope.extxyz.gz"}))
    assert not (tmp_path / "work2").exists()
