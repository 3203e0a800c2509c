"""Model-vs-DFT comparison: slopes and barriers on labels whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from tfbsim.workflows.potentials.factory import load_potential
from tfbsim.workflows.training.dft_comparison import compare_to_dft, neb_barrier_comparison
from tfbsim.workflows.training.label import frame_id


def _cell(rng, shift=0.0):
    symbols = ["Li"] * 6 + ["P"] * 2 + ["O"] * 6 + ["N"]
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(2)], dtype=float)[: len(symbols)]
    pos = grid * [2.6, 2.6, 3.5] + rng.normal(0, 0.1, (len(symbols), 3))
    pos[0, 0] += shift
    return Atoms(symbols, positions=pos, cell=[7.8, 7.8, 7.0], pbc=True)


def _label(atoms, calc, *, force_scale=1.0, extra_ev=0.0):
    probe = atoms.copy()
    probe.calc = calc
    atoms = atoms.copy()
    atoms.info["REF_energy"] = probe.get_potential_energy() + 1000.0 + extra_ev  # another reference: +1000 eV
    atoms.arrays["REF_forces"] = probe.get_forces() * force_scale
    atoms.info["frame_id"] = frame_id(atoms)
    return atoms


@pytest.fixture(scope="module")
def tiny(tiny_mace_path):
    return load_potential(str(tiny_mace_path), device="cpu", dtype="float64")


def test_slopes_and_barriers_come_out_as_built(tmp_path, tiny, tiny_mace_path):
    rng = np.random.default_rng(0)
    frames = []
    for i in range(8):  # "DFT" forces 1/0.8 of the model's: every element's slope is 0.8
        atoms = _label(_cell(rng), tiny, force_scale=1.25)
        atoms.info["split"] = "test" if i % 2 else "train"
        frames.append(atoms)
    (tmp_path / "neb").mkdir()  # the images as the labelling reads them (positions rounded by the file)
    write(tmp_path / "neb" / "images.extxyz", [_cell(np.random.default_rng(1), shift=0.2 * k) for k in range(5)])
    images = read(tmp_path / "neb" / "images.extxyz", index=":")
    bump = [0.0, 0.1, 0.3, 0.1, -0.2]  # the DFT profile = the model's + this (asymmetric: the reverse barrier differs)
    labelled = [_label(a, tiny, force_scale=1.25, extra_ev=b) for a, b in zip(images, bump, strict=True)]
    for a in labelled:
        a.info["split"] = "test"
        a.info["config_type"] = "neb_toy"  # barriers only: left out of the frame metrics
    write(tmp_path / "dft.extxyz", frames + labelled, format="extxyz")

    out = compare_to_dft({"tiny": str(tiny_mace_path)}, tmp_path / "dft.extxyz", [tmp_path / "neb"])
    errors = out["models"]["tiny"]["frames"]
    assert out["data"]["frames_per_split"] == {"train": 4, "test": 9} and errors["n_frames"] == 4
    assert out["data"]["n_frames_scored"] == 4 and set(errors["per_config_type"]) == {"unknown"}
    assert all(s == pytest.approx(0.8, abs=1e-5) for s in errors["force_slope_per_element"].values())
    assert errors["energy_rmse_offset_fitted_mev_atom"] is None  # one composition: the offsets are not separable
    neb = out["models"]["tiny"]["neb"][0]
    model = [0.0]
    for a in images[1:]:
        pa, p0 = a.copy(), images[0].copy()
        pa.calc = p0.calc = tiny
        model.append(pa.get_potential_energy() - p0.get_potential_energy())
    dft = [m + b for m, b in zip(model, bump, strict=True)]
    assert neb["status"] == "compared" and neb["barrier_model_ev"] == pytest.approx(max(model), abs=1e-5)
    assert neb["barrier_dft_ev"] == pytest.approx(max(dft), abs=1e-5)
    assert neb["barrier_diff_ev"] == pytest.approx(max(model) - max(dft), abs=1e-5)
    assert neb["barrier_reverse_dft_ev"] == pytest.approx(max(dft) - dft[-1], abs=1e-5)  # from the last image
    assert neb["barrier_reverse_diff_ev"] == pytest.approx(max(model) - model[-1] - max(dft) + dft[-1], abs=1e-5)

    partial = neb_barrier_comparison(str(tiny_mace_path), frames + labelled[:-1], tmp_path / "neb")
    assert partial == {"path": "neb", "n_images": 5, "n_labelled": 4, "status": "incomplete"}


def test_the_card_states_forward_and_reverse_barriers():
    from tfbsim.workflows.training.bundled import _dft_section
    from tfbsim.workflows.training.dft_comparison import DFT_TARGETS

    hop = {"path": "neb_x", "n_images": 3, "n_labelled": 3, "status": "compared", "barrier_model_ev": 0.424,
           "barrier_dft_ev": 0.566, "barrier_diff_ev": -0.142, "barrier_reverse_model_ev": 0.606,
           "barrier_reverse_dft_ev": 0.664, "barrier_reverse_diff_ev": -0.058}
    record = {"data": {"file": "dft.extxyz", "frames_per_split": {"test": 3}, "split_compared": "test"},
              "targets": DFT_TARGETS, "models": {"v2": {"spec": "m.model", "frames": None, "neb": [hop]}}}
    text = "\n".join(_dft_section(record))
    assert "| neb_x | v2 | 0.424 / 0.606 | 0.566 / 0.664 | -0.142 / -0.058 |" in text
    record["data"]["level_of_theory"] = "cp2k:PBE/DZVP-MOLOPT-SR-GTH/GTH-PBE/600Ry/kG"
    assert "`dft.extxyz` (cp2k:PBE/DZVP-MOLOPT-SR-GTH/GTH-PBE/600Ry/kG): 3 test" in "\n".join(_dft_section(record))


def test_a_sevennet_spec_runs_through_its_teacher_and_is_closed(tmp_path, tiny, monkeypatch):
    from ase.calculators.calculator import Calculator, all_changes

    import tfbsim.workflows.training.sevennet as sevennet

    made = []

    class StandIn(Calculator):  # the SevenNet worker, here the tiny model with forces ×0.5
        implemented_properties = ["energy", "forces", "stress"]

        def __init__(self, model, *, device, threads):
            super().__init__()
            self.model, self.closed = model, False
            made.append(self)

        def calculate(self, atoms=None, properties=None, system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            probe = atoms.copy()
            probe.calc = tiny
            self.results = {"energy": probe.get_potential_energy(), "forces": 0.5 * probe.get_forces(),
                            "stress": probe.get_stress()}

        def close(self):
            self.closed = True

    monkeypatch.setattr(sevennet, "SevennetTeacher", StandIn)
    rng = np.random.default_rng(3)
    frames = [_label(_cell(rng), tiny) for _ in range(3)]
    for a in frames:
        a.info["split"] = "test"
    write(tmp_path / "dft.extxyz", frames, format="extxyz")
    (tmp_path / "dft.extxyz.card.json").write_text('{"teacher": {"spec": "cp2k:toy"}}')
    out = compare_to_dft({"teacher": "sevennet:7net-toy"}, tmp_path / "dft.extxyz", [])
    assert out["data"]["level_of_theory"] == "cp2k:toy"  # from the dataset's card
    slopes = out["models"]["teacher"]["frames"]["force_slope_per_element"]
    assert all(s == pytest.approx(0.5, abs=1e-6) for s in slopes.values())  # the stand-in's forces, not the spec's
    assert [m.model for m in made] == ["7net-toy"] and made[0].closed


def test_one_level_of_theory_against_another_on_a_partly_labelled_path(tmp_path, tiny):
    from ase.calculators.calculator import CalculatorError

    from tfbsim.workflows.training.dft_comparison import LabelledFrames

    rng = np.random.default_rng(7)
    write(tmp_path / "frames.extxyz", [_cell(rng) for _ in range(3)])  # as labelling reads them
    frames = read(tmp_path / "frames.extxyz", index=":")
    (tmp_path / "neb").mkdir()
    write(tmp_path / "neb" / "images.extxyz", [_cell(np.random.default_rng(2), shift=0.2 * k) for k in range(5)])
    images = read(tmp_path / "neb" / "images.extxyz", index=":")
    bump_a = [0.0, 0.2, 0.5, 0.3, 0.1]  # level A: the production labels, every image
    bump_b = [0.0, 0.0, 0.4, 0.0, 0.3]  # level B: the expensive check, images 0, 2, 4 only
    a = [_label(f, tiny) for f in frames] + [_label(im, tiny, extra_ev=b) for im, b in zip(images, bump_a, strict=True)]
    b = [_label(f, tiny, force_scale=0.9) for f in frames]
    b += [_label(images[k], tiny, force_scale=0.9, extra_ev=bump_b[k]) for k in (0, 2, 4)]
    for x in a + b:
        x.info["split"] = "test"
    for x in a[3:] + b[3:]:
        x.info["config_type"] = "neb_toy"
    write(tmp_path / "a.extxyz", a, format="extxyz")
    write(tmp_path / "b.extxyz", b, format="extxyz")

    spec = f"labels:{tmp_path / 'a.extxyz'}"
    out = compare_to_dft({"A": spec}, tmp_path / "b.extxyz", [tmp_path / "neb"], partial_paths=True)
    rec = out["models"]["A"]
    assert all(s == pytest.approx(1 / 0.9, abs=1e-6) for s in rec["frames"]["force_slope_per_element"].values())
    neb = rec["neb"][0]
    model = [0.0]
    for im in (images[2], images[4]):
        pa, p0 = im.copy(), images[0].copy()
        pa.calc = p0.calc = tiny
        model.append(pa.get_potential_energy() - p0.get_potential_energy())
    a_rel = [m + bump_a[k] for m, k in zip(model, (0, 2, 4), strict=True)]  # A's energies on the images B holds
    b_rel = [m + bump_b[k] for m, k in zip(model, (0, 2, 4), strict=True)]
    assert neb["status"] == "partial" and neb["images_compared"] == [0, 2, 4]
    assert neb["barrier_model_ev"] == pytest.approx(max(a_rel), abs=1e-5)
    assert neb["barrier_dft_ev"] == pytest.approx(max(b_rel), abs=1e-5)
    assert neb["barrier_reverse_dft_ev"] == pytest.approx(max(b_rel) - b_rel[-1], abs=1e-5)
    complete_only = compare_to_dft({"A": spec}, tmp_path / "b.extxyz", [tmp_path / "neb"])
    assert complete_only["models"]["A"]["neb"][0]["status"] == "incomplete"  # the default wants every image

    write(tmp_path / "b2.extxyz", b[:3] + b[3:5], format="extxyz")  # images 0 and 2: no reverse barrier
    short = neb_barrier_comparison(LabelledFrames(tmp_path / "a.extxyz"), read(tmp_path / "b2.extxyz", index=":"),
                                   tmp_path / "neb", partial=True)
    assert short["images_compared"] == [0, 2] and "barrier_reverse_dft_ev" not in short
    probe = _cell(np.random.default_rng(99))
    probe.calc = LabelledFrames(tmp_path / "b.extxyz")
    with pytest.raises(CalculatorError, match="no labels of this frame"):
        probe.get_potential_energy()
