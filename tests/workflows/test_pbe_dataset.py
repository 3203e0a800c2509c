"""The committed PBE dataset is what its card says: every label traceable to a source frame and its split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from ase.io import read

from tfbsim.workflows.training.label import frame_id, read_labelled

DATASETS = Path(__file__).resolve().parents[2] / "workflows" / "training" / "datasets"
DATASET = DATASETS / "pbe-v1"
#: every committed PBE dataset and its basis (pbe-tzv2p: the same frames at TZV2P, v2's fine-tuning set)
BASES = {"pbe-v1": "DZVP-MOLOPT-SR-GTH", "pbe-tzv2p": "TZV2P-MOLOPT-PBE-GTH"}


@pytest.fixture(scope="module", params=sorted(BASES))
def dataset(request):
    folder = DATASETS / request.param
    frames = read(folder / "frames.extxyz", index=":")
    for neb in sorted(folder.glob("neb_*/images.extxyz")):
        frames += read(neb, index=":")
    return folder, {frame_id(a): a for a in frames}


def test_both_datasets_label_the_same_frames_and_paths():
    for name in ("frames.extxyz", "neb_li2po2n/images.extxyz", "neb_li3po4/images.extxyz"):
        assert (DATASETS / "pbe-tzv2p" / name).read_bytes() == (DATASET / name).read_bytes(), name


def test_split_is_fixed_before_labelling_and_holds_out_a_quarter(dataset):
    folder, sources = dataset
    frames = read(folder / "frames.extxyz", index=":")
    by_type: dict[str, Counter] = {}
    for a in frames:
        by_type.setdefault(a.info["config_type"], Counter())[a.info["split"]] += 1
    for ctype, counts in by_type.items():
        assert set(counts) <= {"train", "test"}, ctype
        if sum(counts.values()) >= 4:
            assert counts["test"] >= sum(counts.values()) // 4, (ctype, counts)
    neb = [a for a in sources.values() if str(a.info["config_type"]).startswith("neb_")]
    assert neb and all(a.info["split"] == "test" for a in neb)
    test = sum(a.info["split"] == "test" for a in sources.values())
    assert test >= 25 and len(sources) >= 100


def test_every_label_comes_from_a_source_frame_with_the_same_split(dataset):
    folder, sources = dataset
    labelled = read_labelled(folder / "pbe.extxyz")
    ids = [a.info["frame_id"] for a in labelled]
    assert len(ids) == len(set(ids)), "a frame is labelled twice"
    for a in labelled:
        src = sources[a.info["frame_id"]]  # KeyError: a label without its source frame
        assert frame_id(a) == a.info["frame_id"]
        assert a.info["split"] == src.info["split"] and a.info["config_type"] == src.info["config_type"]
        assert len(a.arrays["REF_forces"]) == len(a) and len(a.info["REF_stress"]) == 6


def test_card_counts_and_settings_match_the_file(dataset):
    folder, _ = dataset
    labelled = read_labelled(folder / "pbe.extxyz")
    card = json.loads((folder / "pbe.extxyz.card.json").read_text())
    assert card["n_frames"] == len(labelled) and card["n_atoms"] == sum(len(a) for a in labelled)
    assert card["frames_per_split"] == dict(Counter(a.info["split"] for a in labelled))
    assert card["frames_per_config_type"] == dict(Counter(a.info["config_type"] for a in labelled))
    settings = card["teacher"]["settings"]  # the level chosen by the cutoff and basis checks (pbe-v1's README)
    assert (settings["functional"], settings["basis"], settings["cutoff_ry"], settings["rel_cutoff_ry"]) == (
        "PBE", BASES[folder.name], 600.0, 60.0)


def test_committed_teacher_set_matches_its_card():
    import gzip

    folder = DATASET.parent / "sevennet-l3i5-v1"
    card = json.loads((folder / "data.extxyz.card.json").read_text())
    with gzip.open(folder / "data.extxyz.gz", "rt") as handle:
        frames = read(handle, index=":", format="extxyz")
    assert card["teacher"]["spec"] == "sevennet:7net-l3i5" and card["n_frames"] == len(frames)
    assert card["atoms_per_element"] == dict(sorted(Counter(s for a in frames for s in a.get_chemical_symbols()).items()))
    assert all("REF_energy" in a.info and "REF_stress" in a.info for a in frames)
