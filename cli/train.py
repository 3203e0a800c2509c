"""``tfbsim train ...``: datasets, labelling, training, evaluation, the bundled model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import ConfigOpt, DeviceOpt, DtypeOpt, JsonOpt, _quiet, _say, _write_json, potential_from_flags

# ------------------------------------------------------------------------------------------------ train
train_app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="Train or fine-tune a MACE model (mace_run_train); subcommands: dataset, label, evaluate, make-bundled.",
)


@train_app.callback()
def train_cmd(
    ctx: typer.Context,
    data: Annotated[Optional[Path], typer.Option("--data", help="Labelled extxyz (REF_energy/REF_forces/REF_stress).")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Model directory.")] = None,
    valid_fraction: Annotated[Optional[float], typer.Option("--valid-fraction", help="Held-out fraction.")] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help="tiny, small or medium.")] = None,
    foundation_model: Annotated[Optional[Path], typer.Option("--foundation-model", help="Fine-tune this MACE file.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu or cuda.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Maximum epochs.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of split and initialisation.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Train a MACE model on labelled data (re-running resumes from the latest checkpoint)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..errors import ConfigError
    from ..workflows.config import load_config
    from ..workflows.training.train import TrainConfig, train_model

    if data is None or output is None:
        raise ConfigError("training needs --data DATA.extxyz and -o MODEL_DIR (or use a subcommand; see --help)")
    overrides = {"valid_fraction": valid_fraction, "preset": preset, "foundation_model": foundation_model,
                 "device": device, "epochs": epochs, "seed": seed}
    cfg = load_config(config, TrainConfig, overrides)
    summary = train_model(data, output, cfg, progress=not _quiet(ctx))
    val = summary["validation"]
    _say(ctx, f"trained {cfg.preset} model: {summary['model']} ({summary['n_train']} train / {summary['n_valid']} "
              f"valid frames, {summary['wall_s']:.0f} s); final validation: {val.get('valid_Default', val)}")


@train_app.command("label")
def train_label_cmd(
    ctx: typer.Context,
    frames: Annotated[Path, typer.Argument(help="Configurations to label (any ASE format, all frames).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Labelled extxyz (appended; resumable).")],
    method: Annotated[Optional[str], typer.Option(
        "--method", help="teacher (the --teacher potential, default), cp2k (PBE; settings from --cp2k-config), "
                         "or sevennet:<model> (e.g. sevennet:7net-l3i5, run in its own environment).")] = None,
    teacher: Annotated[str, typer.Option("--teacher", help="Potential spec of the teacher (method teacher).")] = "chgnet",
    cp2k_config: Annotated[Optional[Path], typer.Option("--cp2k-config", help="YAML of Cp2kSettings (method cp2k).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Frames labelled at once (method cp2k).")] = 1,
    threads: Annotated[Optional[int], typer.Option("--threads", help="OpenMP threads per CP2K process.")] = None,
    timeout_s: Annotated[Optional[float], typer.Option("--timeout-s", help="Wall-clock limit per frame (s, method cp2k).")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Label frames recorded as failed again.")] = False,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Label only frames whose info matches KEY=GLOB "
                                                      "(repeatable, all must match), e.g. split=test.")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Label configurations (REF_energy, REF_forces, REF_stress) with a teacher potential or with DFT (CP2K)."""
    from ..errors import ConfigError
    from ..structures.io import read_structure
    from ..workflows.training.label import label_frames, select_frames

    method = method or "teacher"
    if method not in ("teacher", "cp2k") and not method.startswith("sevennet:"):
        raise ConfigError(f"--method {method!r}: use teacher, cp2k or sevennet:<model> (e.g. sevennet:7net-l3i5)")
    if workers < 1:
        raise ConfigError(f"--workers must be ≥ 1, got {workers}")
    configs = read_structure(frames, index=":")
    if only:
        configs = select_frames(configs, only)
    if method == "cp2k":
        from ..workflows.config import load_config
        from ..workflows.training.cp2k import Cp2kCalculator, Cp2kSettings

        settings = load_config(cp2k_config, Cp2kSettings, {"threads": threads, "timeout_s": timeout_s})
        calc = (lambda: Cp2kCalculator(settings)) if workers > 1 else Cp2kCalculator(settings)
        name = settings.spec()
    elif method.startswith("sevennet:"):
        from ..workflows.training.sevennet import SevennetTeacher

        calc = SevennetTeacher(method.split(":", 1)[1], device=device if device != "auto" else "cpu",
                               threads=threads or 1)
        name = method
    else:
        from ..workflows.potentials.factory import load_potential

        potential = potential_from_flags(teacher, device, "float64" if teacher in ("emt", "lj") else "float32")
        calc = load_potential(potential)
        name = teacher
    report = label_frames(configs, calc, output, workers=workers, retry_failed=retry_failed,
                          progress=not _quiet(ctx))
    _say(ctx, f"labelled {report['n_labelled']} frames ({report['n_skipped']} already done or recorded failed, "
              f"{report['n_rejected']} rejected, {report['n_failed']} failed) with {name} in "
              f"{report['wall_s']:.0f} s -> {output}")


@train_app.command("cp2k-check")
def train_cp2k_check_cmd(
    ctx: typer.Context,
    frames: Annotated[Path, typer.Argument(help="Structure file; one frame is checked.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSON report.")],
    index: Annotated[int, typer.Option("--index", help="Which frame of the file.")] = 0,
    cp2k_config: Annotated[Optional[Path], typer.Option("--cp2k-config", help="YAML of the production Cp2kSettings.")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="OpenMP threads per CP2K process.")] = None,
    variant: Annotated[Optional[list[str]], typer.Option("--variant", help="Only these variants (repeatable): "
                                                         "cutoff_800Ry, TZV2P, DZVP-UZH.")] = None,
    base_labels: Annotated[Optional[Path], typer.Option("--base-labels", help="Labelled dataset holding the frame "
                                                        "at the production settings: its labels are the base.")] = None,
    models: Annotated[Optional[list[str]], typer.Option("--model", help="Score NAME=SPEC against every level "
                                                        "(repeatable; sevennet:<model> too).")] = None,
) -> None:
    """Basis/cutoff check on one frame: the production CP2K settings against 800 Ry, TZV2P and DZVP-UZH (resumable)."""
    from ..structures.io import read_structure, write_json
    from ..workflows.config import load_config
    from ..workflows.provenance import provenance, utc_now
    from ..workflows.training.cp2k import Cp2kSettings, cp2k_version
    from ..errors import ConfigError
    from ..workflows.training.cp2k_convergence import DEFAULT_VARIANTS, convergence_check, labelled_point

    if output.suffix != ".json":
        raise ConfigError(f"{output}: the report must end in .json")
    unknown = sorted(set(variant or []) - set(DEFAULT_VARIANTS))
    if unknown:
        raise ConfigError(f"--variant {', '.join(unknown)}: unknown; choose from {', '.join(DEFAULT_VARIANTS)}")
    variants = {k: v for k, v in DEFAULT_VARIANTS.items() if not variant or k in variant}
    settings = load_config(cp2k_config, Cp2kSettings, {"threads": threads})
    atoms = read_structure(frames, index=index)
    base_point = labelled_point(atoms, base_labels, settings) if base_labels is not None else None
    started = utc_now()
    named = dict(item.split("=", 1) if "=" in item else (item, item) for item in models or [])
    report = convergence_check(atoms, settings, variants, cache=output.with_suffix(".points"), base_point=base_point,
                               models=named or None)
    if base_labels is not None:
        report["base"]["labels_from"] = str(base_labels)
    report["provenance"] = provenance(config=settings, started_utc=started, extra={"code": cp2k_version(settings),
                                                                                  "frame": f"{frames}@{index}"})
    write_json(output, report)
    for name, row in report["variants"].items():
        _say(ctx, f"{name}: dE {row['energy_diff_mev_atom']:+.1f} meV/atom, dF RMSE {row['forces_rmse_mev_ang']:.0f} "
                  f"meV/Å, s_Li {row['s_li']}")


@train_app.command("dft-frames")
def train_dft_frames_cmd(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("-o", "--output", help="Configurations (extxyz) with info split=train|test.")],
    sampler: Annotated[str, typer.Option("--sampler", help="Potential of the sampling MD (labels come from DFT).")] = "bundled",
    config: ConfigOpt = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of every random choice.")] = None,
    threads: Annotated[int, typer.Option("--threads", help="torch threads of the sampling MD (≤ free cores).")] = 1,
) -> None:
    """Small (≤ ~60 atoms) configurations for DFT labelling: LiPON MD frames, strained boxes, crystals, contacts."""
    from collections import Counter

    from ..workflows.config import load_config
    from ..workflows.potentials.factory import load_potential
    from ..workflows.training.dft_frames import DftFramesConfig, dft_frames

    from ..errors import ConfigError

    cfg = load_config(config, DftFramesConfig, {"seed": seed})
    if output.suffix != ".extxyz":
        raise ConfigError(f"{output}: the frames file must end in .extxyz (it keeps info split/config_type)")
    if threads < 1:
        raise ConfigError(f"--threads must be ≥ 1, got {threads}")
    import torch

    torch.set_num_threads(threads)  # explicit: torch's default (all cores) collapses when another job holds one
    calc = load_potential(potential_from_flags(sampler, "cpu", "float64" if sampler in ("emt", "lj") else "float32"))
    frames = dft_frames(cfg, calc, output)
    counts = Counter(str(a.info.get("split")) for a in frames)
    _say(ctx, f"{len(frames)} configurations ({counts['train']} train, {counts['test']} test) -> {output}")


@train_app.command("dataset")
def train_dataset_cmd(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("-o", "--output", help="Configurations (extxyz) to label next.")],
    work: Annotated[Path, typer.Option("--work", help="Cache folder (one file per recipe; resumable).")] = Path("dataset_work"),
    teacher: Annotated[Optional[str], typer.Option("--teacher", help="Potential for pre-relaxation paths and MD snapshots (omit: static recipes only).")] = None,
    config: ConfigOpt = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of every random choice.")] = None,
) -> None:
    """Generate training configurations from tfbsim's builders (crystals, slabs, glasses, interfaces, teacher MD)."""
    from collections import Counter

    from ..structures.io import write_structure
    from ..workflows.config import load_config
    from ..workflows.potentials.config import PotentialConfig
    from ..workflows.potentials.factory import load_potential
    from ..workflows.training.dataset import DatasetConfig, generate_configurations

    cfg = load_config(config, DatasetConfig, {"seed": seed})
    if teacher is None:
        cfg = cfg.model_copy(update={"recipes": [r for r in cfg.recipes if not r.startswith("md_")]})
    calc = load_potential(PotentialConfig(model=teacher, dtype="float32")) if teacher else None
    frames = generate_configurations(cfg, work, teacher=calc, progress=not _quiet(ctx))
    write_structure(output, frames)
    counts = Counter(str(a.info.get("config_type")) for a in frames)
    _say(ctx, f"{len(frames)} configurations in {len(counts)} config_types -> {output}")


@train_app.command("make-bundled")
def train_make_bundled_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where bundled.model, bundled.json and MODEL_CARD.md go.")] = Path("workflows/potentials/models"),
    work: Annotated[Path, typer.Option("--work", help="Scratch folder; keep it to resume.")] = Path("model_work"),
    config: ConfigOpt = None,
) -> None:
    """Re-create the bundled model: dataset -> teacher labels -> training -> evaluation -> model card."""
    from ..workflows.config import load_config
    from ..workflows.training.bundled import BundledConfig, make_bundled

    cfg = load_config(config, BundledConfig)
    manifest = make_bundled(out, work, cfg, progress=not _quiet(ctx))
    test = manifest["test"]
    _say(ctx, f"bundled model {manifest['sha256'][:12]} in {out}: test E RMSE {test['energy_rmse_mev_atom']:.1f} "
              f"meV/atom, F RMSE {test['forces_rmse_mev_ang']:.0f} meV/Å; see {out}/MODEL_CARD.md")


@train_app.command("evaluate")
def train_evaluate_cmd(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model file (or spec).")],
    data: Annotated[Path, typer.Option("--data", help="Held-out labelled extxyz.")],
    json_out: JsonOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Folder for parity plots.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Only frames with info split=this (e.g. test).")] = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float64",
) -> None:
    """Energy/force/stress RMSEs per config_type and element, with parity plots."""
    from ..workflows.training.evaluate import evaluate_errors, parity_figure

    errors = evaluate_errors(model, data, device=device, dtype=dtype, split=split, progress=not _quiet(ctx))
    if plot is not None:
        parity_figure(errors, Path(plot) / "parity.png")
    errors.pop("parity")
    _write_json(json_out, errors)
    _say(ctx, f"{errors['n_frames']} frames: E RMSE {errors['energy_rmse_mev_atom']:.1f} meV/atom, "
              f"F RMSE {errors['forces_rmse_mev_ang']:.0f} meV/Å")


def _barrier_line(n: dict) -> str:
    """One Li-hop record of ``compare-dft`` as text."""
    if n["status"] == "incomplete":
        return f"{n['path']}: PBE {n['n_labelled']}/{n['n_images']}"
    rev = "barrier_reverse_model_ev" in n
    model = f"{n['barrier_model_ev']:.3f}" + (f"/{n['barrier_reverse_model_ev']:.3f}" if rev else "")
    dft = f"{n['barrier_dft_ev']:.3f}" + (f"/{n['barrier_reverse_dft_ev']:.3f}" if rev else "")
    images = f", images {n['images_compared']}" if n["status"] == "partial" else ""
    return f"{n['path']} {model} vs PBE {dft} eV ({'forward/reverse' if rev else 'forward'}{images})"


@train_app.command("compare-dft")
def train_compare_dft_cmd(
    ctx: typer.Context,
    models: Annotated[list[str], typer.Argument(help="Models as NAME=SPEC (or SPEC), e.g. v2=model.model v1=bundled-v1.")],
    data: Annotated[Path, typer.Option("--data", help="Labelled DFT extxyz with info split.")] = Path(
        "workflows/training/datasets/pbe-v1/pbe.extxyz"),
    neb: Annotated[Optional[list[Path]], typer.Option("--neb", help="Li-hop folder with images.extxyz (repeatable).")] = None,
    split: Annotated[str, typer.Option("--split", help="Frames compared (never trained on).")] = "test",
    partial_paths: Annotated[bool, typer.Option("--partial-paths", help="Compare a Li-hop path on its labelled "
                                                "images when only some are (first image required).")] = False,
    json_out: JsonOpt = None,
) -> None:
    """Models against held-out DFT frames (s_X, force/energy/stress RMSE) and Li-hop barriers on the same images.

    A model is a factory spec, ``sevennet:<model>`` or ``labels:<file>`` (another level of theory's labels of the
    same frames).
    """
    from ..errors import ConfigError
    from ..workflows.training.dft_comparison import compare_to_dft

    named = {}
    for item in models:
        name, _, spec = item.partition("=") if "=" in item else (item, "", item)
        if not name or not spec or name in named:
            raise ConfigError(f"model {item!r}: give NAME=SPEC with a unique name (e.g. v1=bundled-v1)")
        named[name] = spec
    if not data.is_file():
        raise ConfigError(f"--data {data}: no such file; label frames with `make pbe-data` or give the path")
    for d in neb or []:
        if not (d / "images.extxyz").is_file():
            raise ConfigError(f"--neb {d}: no images.extxyz there; make the path with `tfbsim neb`")
    for name, spec in named.items():
        if spec.startswith("labels:") and not Path(spec.split(":", 1)[1]).is_file():
            raise ConfigError(f"model {name}={spec}: no such labelled file")
    result = compare_to_dft(named, data, list(neb or []), split=split, partial_paths=partial_paths,
                            progress=not _quiet(ctx))
    _write_json(json_out, result)
    for name, rec in result["models"].items():
        f = rec["frames"]
        barriers = "; ".join(_barrier_line(n) for n in rec["neb"])
        line = (f"{name}: no {split} frames" if f is None else
                f"{name}: {f['n_frames']} {split} frames, s_Li {f['force_slope_per_element'].get('Li', float('nan')):.3f}, "
                f"F RMSE {f['forces_rmse_mev_ang']:.0f} meV/Å (Li {f['forces_rmse_mev_ang_per_element'].get('Li', float('nan')):.0f})")
        _say(ctx, line + (f"; {barriers}" if barriers else ""))
