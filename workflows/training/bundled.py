"""The bundled model, reproducibly: dataset → teacher labels → mace_run_train → evaluation → model card.

:func:`make_bundled` is what ``make model`` (``tfbsim train make-bundled``) runs. Every stage writes its
result into ``work_dir`` and is skipped when that result exists, so an interrupted run resumes:

==============  ===============================================================================
stage           output in ``work_dir``
==============  ===============================================================================
dataset         ``frames/<recipe>.extxyz`` (see :mod:`tfbsim.workflows.training.dataset`)
label           ``data.extxyz`` + ``data.extxyz.card.json`` (teacher labels, resumable); ``e0s.json``
split           ``trainval.extxyz`` / ``test.extxyz`` (test: ~10 % of every config_type, seeded)
train           ``model/`` (mace_run_train output, resumable)
evaluate        ``evaluation.json``, ``parity.png``
checks          ``checks.json`` (MD stability at 1500 K, speed, lattice constants vs teacher)
install         ``<out_dir>/bundled.model``, ``bundled.json`` (file + sha256), ``MODEL_CARD.md``
==============  ===============================================================================
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...errors import ConfigError
from ...structures.io import read_json, write_json
from ..config import StrictModel
from ..potentials.factory import load_potential
from ..potentials.mace_backend import sha256_file
from ..provenance import provenance, utc_now
from .checks import lattice_check, md_speed, md_stability
from .dataset import DatasetConfig, generate_configurations
from .dft_comparison import compare_to_dft
from .evaluate import evaluate_errors, parity_figure
from .finetune import FinetuneConfig, finetune_on_dft, shift_reference
from .label import isolated_atom_energies, label_frames, read_labelled
from .train import TRAIN_PRESETS, TrainConfig, train_model

__all__ = ["BundledConfig", "make_bundled", "write_model_card", "model_card_text", "bundled_config_from_manifest",
           "MODEL_CARD_NOTES"]

logger = logging.getLogger(__name__)


class DftCheckConfig(StrictModel):
    """The model card's comparison against DFT (:func:`~tfbsim.workflows.training.dft_comparison.compare_to_dft`).

    ``compare_with`` names the models shown beside the new one (e.g. ``{"v1": "bundled-v1"}``; a teacher as
    ``sevennet:7net-l3i5``).
    """

    dft_data: Path = Path("workflows/training/datasets/pbe-v1/pbe.extxyz")
    neb_dirs: list[Path] = [Path("workflows/training/datasets/pbe-v1/neb_li3po4"),
                            Path("workflows/training/datasets/pbe-v1/neb_li2po2n")]
    split: str = "test"
    compare_with: dict[str, str] = {"v1": "bundled-v1"}


class BundledConfig(StrictModel):
    """Settings of :func:`make_bundled` (YAML keys are the field names)."""

    teacher: str = "chgnet"  # or sevennet:7net-l3i5 (needs `make sevenn-env`)
    #: Potential that drives the recipes' MD and pre-relaxation paths (``None``: the teacher). A slow teacher
    #: (SevenNet-l3i5: ~50 ms/atom per call on one core) labels the frames a fast sampler visited.
    sampler: str | None = None
    teacher_device: str = "cpu"
    test_fraction: float = 0.1
    seed: int = 0
    dataset: DatasetConfig = DatasetConfig()
    train: TrainConfig = TrainConfig(preset="bundled", name="tfbsim-bundled", r_max_ang=4.5, epochs=45,
                                     batch_size=8, dtype="float32", seed=1, stress_weight=10.0,
                                     pair_repulsion=True, mace_args={"swa_stress_weight": 10.0})
    e0s: Literal["teacher", "average"] = "teacher"  # teacher: the teacher's isolated-atom energies (see TrainConfig)
    #: Teacher-labelled frames made before (``.extxyz`` or ``.extxyz.gz`` beside its ``.card.json``): the dataset
    #: and label stages are skipped (the committed SevenNet-l3i5 set saves ~1.5 h of labelling on 2 cores).
    labelled_data: Path | None = None
    #: Fine-tuning of the distilled model on DFT frames (``None``: the distilled model is the result).
    finetune: FinetuneConfig | None = None
    #: Comparison against held-out DFT frames and Li-hop paths (``None``: skipped).
    dft_check: DftCheckConfig | None = None
    stability_time_ps: float = 10.0
    stability_temperature_k: float = 1500.0
    speed_sizes: list[int] = [200, 1000]


def teacher_calculator(spec: str, *, device: str = "cpu"):
    """The labelling teacher: ``sevennet:<model>`` (its own environment, see :mod:`.sevennet`) or any factory spec."""
    if spec.startswith("sevennet:"):
        from .sevennet import SevennetTeacher

        return SevennetTeacher(spec.split(":", 1)[1], device=device)
    return load_potential(spec, device=device, dtype="float32")


def potential_sampler_record(spec: str) -> dict[str, Any]:
    """Spec and sha256 of the potential that drove the recipes' MD (recorded in the manifest)."""
    calc = load_potential(spec, device="cpu", dtype="float32")
    return {"spec": spec, "sha256": calc.parameters.get("sha256")}


def import_labelled(source: str | os.PathLike, data: Path, *, teacher_spec: str) -> None:
    """Copy (and gunzip) a labelled set and its card to ``data``, refusing one labelled by another teacher."""
    import gzip

    source = Path(source)
    card_path = source.with_name(source.name.removesuffix(".gz") + ".card.json")
    if not card_path.is_file():
        raise ConfigError(f"labelled_data {source}: its card {card_path.name} is missing (it names the teacher)")
    card = read_json(card_path)
    if card.get("teacher", {}).get("spec") != teacher_spec:
        raise ConfigError(f"labelled_data {source} was labelled by {card.get('teacher', {}).get('spec')!r}, not by "
                          f"the teacher {teacher_spec!r}; use its teacher or label the frames again")
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as src, open(data, "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.copyfile(card_path, Path(str(data) + ".card.json"))
    check = read_labelled(data)
    if len(check) != card.get("n_frames"):
        raise ConfigError(f"labelled_data {source}: {len(check)} frames, its card says {card.get('n_frames')}")


def _finetune_record(finetuned: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the manifest keeps of a fine-tuning run: counts, reference fit, E0s, training size and time."""
    if finetuned is None:
        return None
    record = {k: v for k, v in finetuned.items() if k not in ("train", "provenance", "model")}
    record.update(n_train=finetuned["train"]["n_train"], n_valid=finetuned["train"]["n_valid"],
                  wall_s=finetuned["train"]["wall_s"], command=finetuned["train"]["command"])
    return record


def _split_test(data: Path, work: Path, fraction: float, seed: int) -> tuple[Path, Path]:
    from ase.io import write

    trainval, test = work / "trainval.extxyz", work / "test.extxyz"
    if trainval.exists() and test.exists():
        return trainval, test
    frames = read_labelled(data)
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, atoms in enumerate(frames):
        by_type[str(atoms.info.get("config_type"))].append(i)
    rng = np.random.default_rng(seed)
    test_ids: set[int] = set()
    for ids in by_type.values():  # stratified: ~fraction of every config_type with more than two frames
        k = int(round(fraction * len(ids)))
        if k and len(ids) > 2:
            test_ids.update(rng.choice(ids, size=k, replace=False).tolist())
    wanted = max(1, int(round(fraction * len(frames))))
    if len(test_ids) < wanted:  # small types: top up at random so the test set is never empty
        rest = [i for i in range(len(frames)) if i not in test_ids]
        test_ids.update(rng.choice(rest, size=min(wanted - len(test_ids), len(rest) - 1), replace=False).tolist())
    write(trainval, [a for i, a in enumerate(frames) if i not in test_ids], format="extxyz")
    write(test, [a for i, a in enumerate(frames) if i in test_ids], format="extxyz")
    return trainval, test


def make_bundled(
    out_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    config: BundledConfig | None = None,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Build, train, evaluate and install the bundled model (every stage resumable; see module docstring).

    Parameters
    ----------
    out_dir
        Where ``bundled.model``, ``bundled.json`` and ``MODEL_CARD.md`` go (``workflows/potentials/models`` in the repo).
    work_dir
        Scratch folder for the dataset, labels, training and evaluation (keep it to resume).
    config
        Settings; defaults reproduce the shipped model.
    progress
        Progress bars.

    Returns
    -------
    dict
        The metrics written into ``bundled.json`` and the model card.
    """
    config = config or BundledConfig()
    if config.labelled_data is not None and not Path(config.labelled_data).is_file():
        raise ConfigError(f"labelled_data {config.labelled_data}: no such file; give the committed dataset's path "
                          "or leave labelled_data out to label the recipe's frames")
    for key, section in (("finetune", config.finetune), ("dft_check", config.dft_check)):
        if section is not None and not Path(section.dft_data).is_file():  # before any stage runs
            raise ConfigError(f"{key}.dft_data {section.dft_data}: no such file; label DFT frames first "
                              "(`make pbe-data`) or give the path")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    started = utc_now()
    teacher = teacher_calculator(config.teacher, device=config.teacher_device)

    data = work / "data.extxyz"
    if config.labelled_data is not None and not (work / "labelled.done").exists():
        import_labelled(config.labelled_data, data, teacher_spec=teacher.parameters.get("spec", config.teacher))
        (work / "labelled.done").write_text(utc_now())
    if not (work / "labelled.done").exists():
        sampler = teacher if config.sampler is None else load_potential(config.sampler, device=config.teacher_device,
                                                                        dtype="float32")
        frames = generate_configurations(config.dataset, work / "frames", teacher=sampler, progress=progress)
        label_frames(frames, teacher, data, progress=progress)
        (work / "labelled.done").write_text(utc_now())
    trainval, test = _split_test(data, work, config.test_fraction, config.seed)

    train_cfg = config.train
    if config.e0s == "teacher":  # the teacher's dissociation limit (see TrainConfig.e0s)
        e0s_path = work / "e0s.json"
        if not e0s_path.exists():
            elements = sorted(read_json(Path(str(data) + ".card.json"))["atoms_per_element"])
            write_json(e0s_path, isolated_atom_energies(teacher, elements), provenance=False)  # read back as E0s
        train_cfg = train_cfg.model_copy(update={"e0s": read_json(e0s_path)})
    summary_path = work / "model" / "train_summary.json"
    summary = read_json(summary_path) if summary_path.exists() else train_model(trainval, work / "model", train_cfg, progress=progress)
    model_path = Path(summary["model"])
    stage_dir, finetuned = work, None
    if config.finetune is not None:  # from here on, the fine-tuned model; its results go to <work>/finetune/
        stage_dir = work / "finetune"
        finetuned = finetune_on_dft(model_path, trainval, stage_dir, config.finetune, progress=progress)
        model_path = Path(finetuned["model"])
        # the teacher's test frames on the DFT reference (the offsets the fine-tuning applied to its replay)
        from ase.io import write

        offsets = finetuned["reference_fit"]["offsets_ev"]
        test = stage_dir / "test_on_dft_reference.extxyz"
        write(test, [shift_reference(a, offsets) for a in read_labelled(work / "test.extxyz")], format="extxyz")

    eval_path = stage_dir / "evaluation.json"
    if eval_path.exists():
        errors = read_json(eval_path)
    else:
        errors = evaluate_errors(model_path, test, progress=progress)
        parity_figure(errors, stage_dir / "parity.png")
        errors.pop("parity")
        write_json(eval_path, errors)

    dft = None
    if config.dft_check is not None:
        dft_path = stage_dir / "dft_comparison.json"
        chk = config.dft_check
        dft = read_json(dft_path) if dft_path.exists() else None
        if dft is None or dft["data"].get("sha256") != sha256_file(chk.dft_data):  # none yet, or more labels since
            dft = compare_to_dft({"new": str(model_path), **chk.compare_with}, chk.dft_data, list(chk.neb_dirs),
                                 split=chk.split, progress=progress)
            write_json(dft_path, dft)

    checks_path = stage_dir / "checks.json"
    if checks_path.exists():
        checks = read_json(checks_path)
    else:
        model32 = load_potential(str(model_path), device="cpu", dtype="float32")
        checks = {
            "stability": md_stability(model32, temperature_k=config.stability_temperature_k,
                                      time_ps=config.stability_time_ps, progress=progress),
            "speed_steps_per_s": md_speed(model32, sizes=tuple(config.speed_sizes)),
            "lattice": lattice_check(load_potential(str(model_path), device="cpu", dtype="float64"), teacher),
        }
        write_json(checks_path, checks)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "bundled.model"
    shutil.copyfile(model_path, target)
    card_data = read_json(Path(str(data) + ".card.json"))
    manifest = {
        "file": target.name,
        "sha256": sha256_file(target),
        "size_bytes": target.stat().st_size,
        "teacher": card_data.get("teacher"),
        "sampler": None if config.sampler is None else potential_sampler_record(config.sampler),
        "dataset": {k: card_data[k] for k in ("n_frames", "n_atoms", "frames_per_config_type", "atoms_per_element")},
        "train": {k: summary[k] for k in ("n_train", "n_valid", "elements", "wall_s", "command")},
        "test": errors,
        "checks": checks,
        "finetune": _finetune_record(finetuned),
        "dft": dft,
        "provenance": provenance(config=config, seed=config.seed, started_utc=started),
    }
    write_json(out / "bundled.json", manifest)
    write_model_card(out / "MODEL_CARD.md", manifest, config.model_copy(update={"train": train_cfg}))
    return manifest


def _fmt(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


#: Hand-written sections of the card (text with ``{field}`` slots filled from the manifest by :func:`_note_fields`).
MODEL_CARD_NOTES = Path(__file__).resolve().parents[1] / "potentials" / "models" / "MODEL_CARD.notes.md"
#: bcc Li's lattice constant at room temperature (Å; experiment), for the card's Li-metal note.
_LI_EXPERIMENT_A_ANG = 3.51


def bundled_config_from_manifest(manifest: dict[str, Any]) -> BundledConfig:
    """The :class:`BundledConfig` that made a manifest (``bundled.json``), with the E0s the training used.

    The manifest's provenance holds the configuration; with ``e0s: teacher`` the isolated-atom energies were
    passed to mace_run_train, so they are read back from the recorded command (``--E0s {Z: eV}``).
    """
    import ast

    from ase.data import chemical_symbols

    config = BundledConfig.model_validate(manifest["provenance"]["config"])
    command = list(manifest["train"].get("command") or [])
    if "--E0s" in command and command.index("--E0s") + 1 < len(command):
        value = ast.literal_eval(command[command.index("--E0s") + 1])
        if isinstance(value, dict):
            e0s = {chemical_symbols[int(z)]: float(e) for z, e in sorted(value.items(), key=lambda kv: chemical_symbols[int(kv[0])])}
            config = config.model_copy(update={"train": config.train.model_copy(update={"e0s": e0s})})
    return config


def _note_fields(manifest: dict[str, Any], lipon_f: float | None) -> dict[str, Any]:
    """The numbers of the hand-written notes, from the manifest's metrics and checks."""
    per = manifest["test"]["per_config_type"]
    lattice = manifest["checks"]["lattice"]
    speed = manifest["checks"]["speed_steps_per_s"]
    small = next(iter(speed))
    md_t = [per[k] for k in ("md_lipon_300K", "md_lipon_800K", "md_lipon_1300K") if k in per]
    boxes = [per[k]["forces_rmse_mev_ang"] for k in ("lipon_motif", "lipon_random") if k in per]
    li = lattice["li"]
    return {
        "li_model_a": li["model_abc_ang"][0], "li_teacher_a": li["teacher_abc_ang"][0], "li_diff_pct": li["diff_pct"][0],
        "li_expt_a": _LI_EXPERIMENT_A_ANG, "li_vs_expt_pct": 100.0 * (li["model_abc_ang"][0] / _LI_EXPERIMENT_A_ANG - 1),
        "li3p_short_pct": -lattice["li3p"]["diff_pct"][0],
        "md_f_lo": min(v["forces_rmse_mev_ang"] for v in md_t), "md_f_hi": max(v["forces_rmse_mev_ang"] for v in md_t),
        "md_e_lo": min(v["energy_rmse_mev_atom"] for v in md_t), "md_e_hi": max(v["energy_rmse_mev_atom"] for v in md_t),
        "f_2000": per["md_lipon_2000K"]["forces_rmse_mev_ang"], "f_quench": per["md_quench"]["forces_rmse_mev_ang"],
        "f_box_lo": min(boxes), "f_box_hi": max(boxes), "lipon_f": lipon_f,
        "speed_small": speed[small], "speed_small_atoms": small.split("_")[0],
        "epochs": manifest["provenance"]["config"]["train"]["epochs"], "train_h": manifest["train"]["wall_s"] / 3600,
        "li_metal_frames": manifest["dataset"]["frames_per_config_type"].get("li_metal", 0),
        "n_frames": manifest["dataset"]["n_frames"],
    }


def _finetune_section(ft: dict[str, Any] | None, config: BundledConfig) -> list[str]:
    if not ft or config.finetune is None:
        return []
    cfg = config.finetune
    fit = ft["reference_fit"]
    return [
        "## Fine-tuning on DFT",
        f"From the distilled model (mace `--foundation_model`, all its elements kept) on the {ft['n_dft_frames']} "
        f"DFT frames of split `{ft['train_split']}` of `{ft['dft_data']}` (config_weight {cfg.dft_weight:g}; the "
        f"{ft['n_dft_frames_left_out']} other frames never trained on) plus {ft['n_replay_frames']} replayed teacher "
        f"frames; {cfg.train.epochs} epochs, lr {cfg.train.lr:g}, {ft['n_train']} train / {ft['n_valid']} validation "
        f"frames, {ft['wall_s'] / 3600:.2f} h.",
        "Reference energies: the DFT and teacher energies differ by a constant per element, fitted on the DFT "
        "training frames (E_DFT − E_model = Σ n_el ΔE_el): " + ", ".join(
            f"{k} {v:+.3f}" for k, v in fit["offsets_ev"].items()) + f" eV; residual {fit['residual_rmse_mev_atom']:.1f} "
        "meV/atom (what the fine-tuning had to learn). The E0s and the replayed energies were moved by them.",
        "",
    ]


def _dft_section(dft: dict[str, Any] | None) -> list[str]:
    """Markdown of :func:`compare_to_dft`'s record: every model on the held-out DFT frames and the Li-hop paths."""
    if not dft:
        return []
    tg = dft["targets"]
    counts = dft["data"]["frames_per_split"]
    lines = ["## Against PBE (CP2K): held-out DFT frames and Li-hop barriers",
             f"`{dft['data']['file']}`"
             + (f" ({dft['data']['level_of_theory']})" if dft["data"].get("level_of_theory") else "") + ": "
             + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
             + f" frames labelled; compared on split `{dft['data']['split_compared']}` (never trained on), the Li-hop "
             "images left out of the frame metrics (relaxed with v1: its forces there are ~0 by construction). Targets: "
             f"s_Li {tg['s_li'][0]}–{tg['s_li'][1]}, Li force RMSE ≤ {tg['forces_rmse_li_mev_ang']:g} meV/Å, all "
             f"≤ {tg['forces_rmse_mev_ang']:g} meV/Å, barriers within {tg['neb_barrier_abs_diff_ev']} eV.", "",
             "| model | frames | s_Li | s_P | s_O | s_N | F RMSE Li (meV/Å) | F RMSE all (meV/Å) | "
             "E RMSE, offsets fitted (meV/atom) | stress RMSE (GPa) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rec in dft["models"].items():
        f = rec["frames"]
        if f is None:
            lines.append(f"| {name} | 0 | – | – | – | – | – | – | – | – |")
            continue
        sl, fe = f["force_slope_per_element"], f["forces_rmse_mev_ang_per_element"]
        lines.append(f"| {name} | {f['n_frames']} | " + " | ".join(_fmt(sl.get(el), 3) for el in ("Li", "P", "O", "N"))
                     + f" | {_fmt(fe.get('Li'), 0)} | {_fmt(f['forces_rmse_mev_ang'], 0)} | "
                     f"{_fmt(f['energy_rmse_offset_fitted_mev_atom'])} | {_fmt(f['stress_rmse_gpa'], 2)} |")
    lines += ["", "Barriers forward (from the first image) / reverse (from the last); they differ where the end points "
              "do.",
              "", "| path | model | model barrier (eV) | PBE barrier (eV) | model − PBE (eV) |", "|---|---|---|---|---|"]
    for name, rec in dft["models"].items():
        for n in rec["neb"]:
            if n["status"] != "compared":
                lines.append(f"| {n['path']} | {name} | – | PBE labels {n['n_labelled']}/{n['n_images']} images | – |")
            else:
                lines.append(f"| {n['path']} | {name} | {_both(n, 'model')} | {_both(n, 'dft')} | {_both(n, 'diff', '+.3f')} |")
    return lines + [""]


def _both(record: dict[str, Any], which: str, fmt: str = ".3f") -> str:
    """``forward / reverse`` barrier of a Li-hop record (the reverse one only where it was computed)."""
    forward, reverse = record[f"barrier_{which}_ev"], record.get(f"barrier_reverse_{which}_ev")
    return f"{forward:{fmt}}" if reverse is None else f"{forward:{fmt}} / {reverse:{fmt}}"


def write_model_card(path: str | os.PathLike, manifest: dict[str, Any], config: BundledConfig,
                     notes: str | os.PathLike | None = MODEL_CARD_NOTES) -> None:
    """Write MODEL_CARD.md: :func:`model_card_text` of the manifest, atomically."""
    from ...structures.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(model_card_text(manifest, config, notes))


def model_card_text(manifest: dict[str, Any], config: BundledConfig,
                    notes: str | os.PathLike | None = MODEL_CARD_NOTES) -> str:
    """The whole model card: generated sections (metrics, data counts, hyper-parameters, intended use, checks)
    and the hand-written notes (``notes``: markdown with ``{field}`` slots filled from the manifest; a leading
    HTML comment is dropped). ``make model`` and the test that the committed card is reproducible both use it.
    """
    test = manifest["test"]
    checks = manifest["checks"]
    ds = manifest["dataset"]
    tr = config.train
    arch = TRAIN_PRESETS[tr.preset]
    lipon_types = {k: v for k, v in test["per_config_type"].items() if "lipon" in k or "quench" in k or "glass" in k}
    lipon_f = [v["forces_rmse_mev_ang"] for v in lipon_types.values() if v["forces_rmse_mev_ang"] is not None]
    lipon_e = [v["energy_rmse_mev_atom"] for v in lipon_types.values() if v["energy_rmse_mev_atom"] is not None]

    def _rms(values: list[float]) -> float | None:  # pooled over config types (each weighted equally)
        return float(np.sqrt(np.mean(np.square(values)))) if values else None
    lines = [
        "# tfbsim bundled model — MODEL CARD",
        "",
        f"A small MACE model ({tr.preset} preset: {arch['num_interactions']} interactions, {arch['num_channels']} "
        f"channels, L = {arch['max_L']}, correlation {arch['correlation']}, "
        f"r_max {tr.r_max_ang} Å{', ZBL pair repulsion' if tr.pair_repulsion else ''}) distilled from **{manifest['teacher']['spec']}** "
        f"(version {manifest['teacher'].get('version')}) on configurations built by tfbsim itself. "
        f"File `{manifest['file']}`, {manifest['size_bytes'] / 1e6:.2f} MB, sha256 `{manifest['sha256']}`."
        + (f" Then fine-tuned on {manifest['finetune']['n_dft_frames']} DFT frames (below)." if manifest.get("finetune")
           else "")
        + (f" Sampled with `{manifest['sampler']['spec']}` (recipes' MD and relaxation paths), labelled by the teacher."
           if manifest.get("sampler") else ""),
        "",
        "## Intended use and limits",
        "- **Use:** demos, tests, quick screening of Li–P–O–N–S–Co structures and interfaces on a laptop CPU.",
        "- **Limits:** it inherits the teacher's PBE(+U) errors and the systematic *softening* known for universal "
        "potentials (under-estimated barriers → Ea too low, D too high); it was trained on ≤ 120-atom cells and "
        "short MD (300–2000 K). For publication numbers, fine-tune a MACE foundation model on DFT data "
        "(`tfbsim train --foundation-model FILE`).",
        "",
        "## Data",
        f"{ds['n_frames']} frames, {ds['n_atoms']} atoms, labelled with {manifest['teacher']['spec']} "
        f"(sha256 `{str(manifest['teacher'].get('sha256'))[:16]}…`). Frames per config_type:",
        "",
        "| config_type | frames |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in ds["frames_per_config_type"].items()],
        "",
        "## Hyper-parameters",
        f"mace_run_train, {tr.epochs} epochs, batch {tr.batch_size}, lr {tr.lr}, {tr.dtype}, loss weights "
        f"E {tr.energy_weight} / F {tr.forces_weight} / stress {tr.stress_weight}, stage two from 75 %"
        f"{' (' + ', '.join(f'{k} {v}' for k, v in tr.mace_args.items()) + ')' if tr.mace_args else ''}, "
        + ("E0s from the data (average)" if isinstance(tr.e0s, str) else "E0s = the teacher's isolated-atom energies ("
           + ", ".join(f"{k} {v:.3f}" for k, v in tr.e0s.items()) + " eV)")
        + f", seed {tr.seed}; {manifest['train']['n_train']} train / "
        f"{manifest['train']['n_valid']} validation frames; training wall time {manifest['train']['wall_s'] / 3600:.2f} h "
        "on the 2-core CPU of the development sandbox.",
        "",
        "## Metrics (held-out test frames, vs the teacher)",
        *(["(The fine-tuned model is scored against the teacher's test frames with their energies moved onto the DFT "
           "reference by the fitted per-element offsets; forces and stresses are the teacher's.)", ""]
          if manifest.get("finetune") else []),
        f"- all: energy RMSE {_fmt(test['energy_rmse_mev_atom'])} meV/atom, force RMSE "
        f"{_fmt(test['forces_rmse_mev_ang'], 0)} meV/Å, stress RMSE {_fmt(test['stress_rmse_gpa'], 2)} GPa "
        f"({test['n_frames']} frames)",
        f"- amorphous LiPON/glass frames: force RMSE {_fmt(_rms(lipon_f), 0)} meV/Å, energy RMSE "
        f"{_fmt(_rms(lipon_e))} meV/atom (targets: ≤ 100 meV/Å, ≤ 10 meV/atom)",
        "",
        "| config_type | frames | E RMSE (meV/atom) | F RMSE (meV/Å) | stress RMSE (GPa) |",
        "|---|---|---|---|---|",
        *[f"| {k} | {v['n_frames']} | {_fmt(v['energy_rmse_mev_atom'])} | {_fmt(v['forces_rmse_mev_ang'], 0)} | "
          f"{_fmt(v['stress_rmse_gpa'], 2)} |" for k, v in test["per_config_type"].items()],
        "",
        "Force RMSE per element (meV/Å): " + ", ".join(
            f"{el} {_fmt(v, 0)}" for el, v in test["forces_rmse_mev_ang_per_element"].items()),
        "",
        "## Physics checks",
        f"- MD stability: NVT {checks['stability']['temperature_k']:.0f} K, {checks['stability']['time_ps']} ps, "
        f"{checks['stability']['n_atoms']}-atom LiPON box: **{'stable' if checks['stability']['stable'] else 'UNSTABLE'}**"
        + (f" ({checks['stability']['diagnostic']})" if not checks["stability"]["stable"] else
           f" (mean T {checks['stability']['temperature_mean_k']:.0f} K)"),
        "- MD speed (float32, NVT Langevin, 2-core CPU sandbox shared with other jobs): " + ", ".join(
            f"{k.replace('_', ' ')}: {v:.1f} steps/s" for k, v in checks["speed_steps_per_s"].items()),
        f"- Lattice constants after relaxation vs the teacher: max |Δ| {checks['lattice']['max_abs_diff_pct']:.2f} % "
        "(target ≤ 2 %)",
        "",
        "| phase | model a, b, c (Å) | teacher a, b, c (Å) | Δ (%) |",
        "|---|---|---|---|",
        *[f"| {k} | {', '.join(f'{x:.3f}' for x in v['model_abc_ang'])} | "
          f"{', '.join(f'{x:.3f}' for x in v['teacher_abc_ang'])} | {', '.join(f'{x:+.2f}' for x in v['diff_pct'])} |"
          for k, v in checks["lattice"].items() if isinstance(v, dict)],
        "",
        *_finetune_section(manifest.get("finetune"), config),
        *_dft_section(manifest.get("dft")),
        "## Reproduce",
        "`make model` (= `tfbsim train make-bundled --out workflows/potentials/models --work model_work`); every stage "
        "resumes from `model_work/`.",
        "",
    ]
    text = "\n".join(lines)
    if notes is not None and Path(notes).is_file():
        template = Path(notes).read_text()
        if template.startswith("<!--"):
            template = template[template.index("-->") + 3:].lstrip("\n")
        try:
            text += "\n" + template.format_map(_note_fields(manifest, _rms(lipon_f)))
        except (KeyError, ValueError, TypeError, StopIteration) as exc:  # another model's metrics lack a field
            logger.warning("model card: the notes in %s describe the shipped model and need metrics this "
                           "manifest lacks (%s: %s); they are left out", notes, type(exc).__name__, exc)
    return text
