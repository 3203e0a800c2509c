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
    teacher: Annotated[str, typer.Option("--teacher", help="Potential spec of the teacher.")] = "chgnet",
    device: DeviceOpt = "auto",
) -> None:
    """Label configurations with a teacher potential (REF_energy, REF_forces, REF_stress)."""
    from ..structures.io import read_structure
    from ..workflows.potentials.factory import load_potential
    from ..workflows.training.label import label_frames

    potential = potential_from_flags(teacher, device, "float64" if teacher in ("emt", "lj") else "float32")
    configs = read_structure(frames, index=":")
    calc = load_potential(potential)
    report = label_frames(configs, calc, output, progress=not _quiet(ctx))
    _say(ctx, f"labelled {report['n_labelled']} frames ({report['n_skipped']} already done, {report['n_rejected']} "
              f"rejected) with {teacher} in {report['wall_s']:.0f} s -> {output}")


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
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float64",
) -> None:
    """Energy/force/stress RMSEs per config_type and element, with parity plots."""
    from ..workflows.training.evaluate import evaluate_errors, parity_figure

    errors = evaluate_errors(model, data, device=device, dtype=dtype, progress=not _quiet(ctx))
    if plot is not None:
        parity_figure(errors, Path(plot) / "parity.png")
    errors.pop("parity")
    _write_json(json_out, errors)
    _say(ctx, f"{errors['n_frames']} frames: E RMSE {errors['energy_rmse_mev_atom']:.1f} meV/atom, "
              f"F RMSE {errors['forces_rmse_mev_ang']:.0f} meV/Å")
