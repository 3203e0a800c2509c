"""The ``tfbsim`` command line: a thin Typer layer over the library.

Each command parses its options, loads and validates configuration, calls one library function, writes the
requested files (atomically, only after success) and prints a short summary. Heavy imports happen inside the
commands so that ``tfbsim --help`` is fast.

Conventions (all commands)
--------------------------
- Structures are written with ``-o/--output PATH`` (format from the suffix, extxyz by default).
- Machine-readable results go to ``--json PATH``; a short human summary goes to stdout.
- ``--config FILE.yaml`` where a command has many settings; CLI flags override the file; unknown keys fail.
- Exit codes: 0 ok; 2 bad input or configuration (one line ``error: ...``, nothing written); 3 simulation
  unstable (guard tripped, trajectory kept); 1 anything unexpected (a bug: traceback with ``--debug``).
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import SimulationUnstable, TfbsimError

logger = logging.getLogger("tfbsim")


# ----------------------------------------------------------------------------------------- plumbing
def configure_logging(verbosity: int = 0, *, quiet: bool = False) -> None:
    """Install one stderr handler on the ``tfbsim`` logger (CLI and notebooks; library code never does).

    Parameters
    ----------
    verbosity
        0: warnings and above, 1: info, 2+: debug.
    quiet
        Errors only.
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    pkg_logger = logging.getLogger("tfbsim")
    for handler in list(pkg_logger.handlers):
        if getattr(handler, "_tfbsim", False):
            pkg_logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._tfbsim = True  # type: ignore[attr-defined]
    pkg_logger.addHandler(handler)
    pkg_logger.setLevel(level)


class _Group(TyperGroup):
    """Root group that maps exceptions to the documented exit codes."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SimulationUnstable as exc:
            _report(ctx, exc)
            raise typer.Exit(3) from None
        except TfbsimError as exc:
            _report(ctx, exc)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so, with the traceback on request
            if _is_cli_signal(exc):
                raise
            if ctx.meta.get("tfbsim_debug"):
                traceback.print_exc()
            else:
                typer.echo(
                    f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback and "
                    "please report it)",
                    err=True,
                )
            raise typer.Exit(1) from None


def _is_cli_signal(exc: BaseException) -> bool:
    """Exit/Abort/usage errors of typer or click: let the framework handle them."""
    module = type(exc).__module__
    return isinstance(exc, (typer.Exit, typer.Abort)) or module.startswith(("click", "typer"))


def _report(ctx: typer.Context, exc: BaseException) -> None:
    if ctx.meta.get("tfbsim_debug"):
        traceback.print_exc()
    typer.echo(f"error: {exc}", err=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tfbsim {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="tfbsim: build, simulate and analyse thin-film battery interfaces (LiPON, Li, LiCoO2, Li2S).",
)


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only errors on stderr.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """tfbsim command line."""
    ctx.meta["tfbsim_debug"] = debug
    ctx.meta["tfbsim_quiet"] = quiet
    configure_logging(verbose, quiet=quiet)


def _sub(name: str, help_text: str) -> typer.Typer:
    sub = typer.Typer(no_args_is_help=True, add_completion=False, help=help_text)
    app.add_typer(sub, name=name)
    return sub


build_app = _sub("build", "Build crystals, slabs, amorphous LiPON and interfaces.")
analyze_app = _sub("analyze", "Analyse structures and trajectories (coordination, diffusion, interphase).")
potential_app = _sub("potential", "Inspect and evaluate potentials.")
db_app = _sub("db", "Query a campaign's results database.")

# Shared option types --------------------------------------------------------------------------------------
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write machine-readable results to this file.")]
OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="Output structure file (format from suffix; extxyz default).")]
ModelOpt = Annotated[str, typer.Option("--model", help="Potential: MACE file, bundled, mace-mp-0:small, chgnet, emt, lj.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda[:N].")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="float32 or float64.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML file with settings; CLI flags override it.")]
AllowDownloadOpt = Annotated[
    bool, typer.Option("--allow-download", help="Allow downloading a named MACE foundation model into the mace cache.")
]


def _write_json(path: Path | None, data: dict) -> None:
    if path is not None:
        from .structures.io import write_json

        write_json(path, data)


def _quiet(ctx: typer.Context) -> bool:
    return bool(ctx.find_root().meta.get("tfbsim_quiet"))


def _say(ctx: typer.Context, text: str) -> None:
    """Print the human summary unless --quiet."""
    if not _quiet(ctx):
        typer.echo(text)


# -------------------------------------------------------------------------------------------- potential
@potential_app.command("info")
def potential_info_cmd(
    ctx: typer.Context,
    spec: Annotated[str, typer.Argument(help="Model spec (file path or name).")],
    json_out: JsonOpt = None,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    allow_download: AllowDownloadOpt = False,
) -> None:
    """Describe a potential: kind, elements, cutoff, parameters, sha256."""
    from .workflows.potentials import potential_info

    info = potential_info(spec, device=device, dtype=dtype, allow_download=allow_download)
    _write_json(json_out, info)
    _say(
        ctx,
        f"{info['spec']} ({info['kind']}): {len(info['elements'])} elements, r_max {info['r_max_ang']} Å, "
        f"{info['n_params']} parameters, {info['dtype']}, sha256 {str(info['sha256'])[:12]}",
    )


@potential_app.command("eval")
def potential_eval_cmd(
    ctx: typer.Context,
    structure: Annotated[Path, typer.Argument(help="Structure file (any ASE format).")],
    model: ModelOpt = "bundled",
    json_out: JsonOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float64",
    allow_download: AllowDownloadOpt = False,
) -> None:
    """Energy, forces and stress of a structure with a potential."""
    from .structures.io import read_structure
    from .workflows.evaluate import evaluate

    atoms = read_structure(structure)
    result = evaluate(atoms, model, device=device, dtype=dtype, allow_download=allow_download)
    _write_json(json_out, result)
    _say(
        ctx,
        f"{result['n_atoms']} atoms: E = {result['energy_ev']:.6f} eV ({result['energy_per_atom_ev']:.6f} eV/atom), "
        f"max |F| = {result['max_force_ev_ang']:.4f} eV/Å",
    )


# ------------------------------------------------------------------------------------------------ train
train_app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="Train or fine-tune a MACE model (mace_run_train); subcommands: dataset, label, evaluate, make-bundled.",
)
app.add_typer(train_app, name="train")


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
    from .errors import ConfigError
    from .workflows.config import load_config
    from .workflows.training.train import TrainConfig, train_model

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
    from .structures.io import read_structure
    from .workflows.potentials import load_potential
    from .workflows.training.label import label_frames

    configs = read_structure(frames, index=":")
    calc = load_potential(teacher, device=device, dtype="float64" if teacher in ("emt", "lj") else "float32")
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

    from .structures.io import write_structure
    from .workflows.config import load_config
    from .workflows.potentials import load_potential
    from .workflows.training.dataset import DatasetConfig, generate_configurations

    cfg = load_config(config, DatasetConfig, {"seed": seed})
    if teacher is None:
        cfg = cfg.model_copy(update={"recipes": [r for r in cfg.recipes if not r.startswith("md_")]})
    calc = load_potential(teacher, dtype="float32") if teacher else None
    frames = generate_configurations(cfg, work, teacher=calc, progress=not _quiet(ctx))
    write_structure(output, frames)
    counts = Counter(str(a.info.get("config_type")) for a in frames)
    _say(ctx, f"{len(frames)} configurations in {len(counts)} config_types -> {output}")


@train_app.command("make-bundled")
def train_make_bundled_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where bundled.model, bundled.json and MODEL_CARD.md go.")] = Path("workflows/models"),
    work: Annotated[Path, typer.Option("--work", help="Scratch folder; keep it to resume.")] = Path("model_work"),
    config: ConfigOpt = None,
) -> None:
    """Re-create the bundled model: dataset -> teacher labels -> training -> evaluation -> model card."""
    from .workflows.config import load_config
    from .workflows.training.bundled import BundledConfig, make_bundled

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
    from .workflows.training.evaluate import evaluate_errors, parity_figure

    errors = evaluate_errors(model, data, device=device, dtype=dtype, progress=not _quiet(ctx))
    if plot is not None:
        parity_figure(errors, Path(plot) / "parity.png")
    errors.pop("parity")
    _write_json(json_out, errors)
    _say(ctx, f"{errors['n_frames']} frames: E RMSE {errors['energy_rmse_mev_atom']:.1f} meV/atom, "
              f"F RMSE {errors['forces_rmse_mev_ang']:.0f} meV/Å")


# ---- diffusion (issue 6) ----------------------------------------------------------------------------------
PlotOpt = Annotated[Optional[Path], typer.Option("--plot", help="Write the figure to this PNG file.")]


@analyze_app.command("diffusion")
def analyze_diffusion_cmd(
    ctx: typer.Context,
    traj: Annotated[Path, typer.Argument(help="Trajectory: tfbsim H5MD or any ASE-readable file.")],
    species: Annotated[str, typer.Option("--species", help="Element whose diffusion is analysed.")] = "Li",
    axis: Annotated[str, typer.Option("--axis", help="MSD axes: xyz, xy (in-plane), z (normal), x, y.")] = "xyz",
    region: Annotated[Optional[str], typer.Option("--region", help="Only atoms with this region label.")] = None,
    z_window_ang: Annotated[
        Optional[tuple[float, float]],
        typer.Option("--z-window-ang", help="Only time origins with the atom's z in [LO, HI) Å."),
    ] = None,
    dt_fs: Annotated[
        Optional[float], typer.Option("--dt-fs", help="Time between stored frames (fs), if the file has no times.")
    ] = None,
    temperature_k: Annotated[
        Optional[float], typer.Option("--temperature-k", help="Temperature (K); default from H5MD metadata.")
    ] = None,
    fit_start_ps: Annotated[
        Optional[float], typer.Option("--fit-start-ps", help="Fit window start (ps); default 10 % of the run.")
    ] = None,
    fit_end_ps: Annotated[
        Optional[float], typer.Option("--fit-end-ps", help="Fit window end (ps); default 50 % of the run.")
    ] = None,
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frame selection START:STOP:STEP.")] = None,
    haven_ratio: Annotated[float, typer.Option("--haven-ratio", help="Haven ratio H for σ (1: tracer).")] = 1.0,
    volume_ang3: Annotated[
        Optional[float], typer.Option("--volume-ang3", help="Volume holding the carriers (Å³); default: cell.")
    ] = None,
    no_drift: Annotated[
        bool, typer.Option("--no-drift-correction", help="Keep the centre-of-mass drift.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress", help="Show progress bars.")] = False,
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Li (or any species) MSD, D ± error (GLS + jackknife over atoms) and Nernst–Einstein σ."""
    from .analysis.diffusion import DiffusionAnalysis
    from .analysis.plots import plot_msd, save_figure
    from .workflows.provenance import provenance, utc_now

    started = utc_now()
    settings = {
        "species": species, "axis": axis, "region": region, "z_window_ang": z_window_ang, "dt_fs": dt_fs,
        "temperature_k": temperature_k, "fit_start_ps": fit_start_ps, "fit_end_ps": fit_end_ps, "frames": frames,
        "haven_ratio": haven_ratio, "volume_ang3": volume_ang3, "remove_drift": not no_drift,
    }
    analysis = DiffusionAnalysis(str(traj), **settings)
    res = analysis.run(progress=progress).results
    fig = plot_msd(res) if plot is not None else None
    data = res.to_dict()
    data["provenance"] = provenance(config=settings, started_utc=started, extra={"input": str(traj)})
    _write_json(json_out, data)
    if fig is not None:
        save_figure(fig, plot)
    lo, hi = res.fit.D_ci95_cm2_s
    sigma = "" if res.sigma_ne_S_cm is None else (
        f"; σ_NE = {res.sigma_ne_S_cm:.3g} ± {res.sigma_ne_stderr_S_cm:.2g} S/cm at {res.temperature_k:g} K")
    _say(ctx, f"{res.species} ({res.n_atoms} atoms, {res.n_frames} frames, axis {res.axis}): D = {res.D_cm2_s:.4g} "
              f"± {res.D_stderr_cm2_s:.2g} cm²/s (95 %: {lo:.3g}–{hi:.3g}); fit {res.fit.fit_start_ps:.3g}–"
              f"{res.fit.fit_end_ps:.3g} ps, log–log slope {res.fit.loglog_slope:.2f}{sigma}")


@analyze_app.command("arrhenius")
def analyze_arrhenius_cmd(
    ctx: typer.Context,
    results: Annotated[list[Path], typer.Argument(help="JSON files of `tfbsim analyze diffusion` (one per T).")],
    json_out: JsonOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Weighted Arrhenius fit of D(T): Ea ± error, D0, σ(300 K) with a 95 % interval."""
    from .analysis.plots import plot_arrhenius, save_figure
    from .analysis.transport import arrhenius_from_results
    from .structures.io import read_json
    from .workflows.provenance import provenance, utc_now

    started = utc_now()
    fit = arrhenius_from_results([read_json(path) for path in results])
    fig = plot_arrhenius(fit) if plot is not None else None
    data = fit.to_dict()
    data["provenance"] = provenance(started_utc=started, extra={"inputs": [str(p) for p in results]})
    _write_json(json_out, data)
    if fig is not None:
        save_figure(fig, plot)
    sigma = "" if fit.sigma_target_S_cm is None else (
        f"; σ(300 K) = {fit.sigma_target_S_cm:.3g} S/cm (95 %: {fit.sigma_target_ci95_S_cm[0]:.2g}–"
        f"{fit.sigma_target_ci95_S_cm[1]:.2g})")
    _say(ctx, f"{len(fit.temperature_k)} temperatures: Ea = {fit.Ea_eV:.3f} ± {fit.Ea_stderr_eV:.3f} eV, "
              f"D0 = {fit.D0_cm2_s:.3g} cm²/s{sigma}")


# ---- md & relax (issue 4) ----------------------------------------------------------------------------------
@app.command("md")
def md_cmd(
    ctx: typer.Context,
    structure: Annotated[Optional[Path], typer.Argument(help="Starting structure (any ASE format); not with --restart.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Run directory (must not hold a run).")] = None,
    restart: Annotated[Optional[Path], typer.Option("--restart", help="Continue RUN_DIR from its checkpoint to the planned total.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Restart although config/model changed or the run was unstable.")] = False,
    config: ConfigOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Potential: MACE file, bundled, mace-mp-0:small, chgnet, emt, lj.")] = None,
    ensemble: Annotated[Optional[str], typer.Option("--ensemble", help="nve, nvt-langevin, nvt-bussi, nvt-nhc, npt-mtk, npt-berendsen.")] = None,
    temperature_k: Annotated[Optional[float], typer.Option("--temperature-k", help="Target temperature (K).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Planned total number of steps.")] = None,
    timestep_fs: Annotated[Optional[float], typer.Option("--timestep-fs", help="Time step (fs).")] = None,
    pressure_gpa: Annotated[Optional[float], typer.Option("--pressure-gpa", help="Target pressure of npt-* (GPa).")] = None,
    barostat_axes: Annotated[Optional[str], typer.Option("--barostat-axes", help="isotropic, anisotropic, z or full.")] = None,
    traj_every: Annotated[Optional[int], typer.Option("--traj-every", help="Trajectory frame interval (steps).")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="Checkpoint interval (steps).")] = None,
    log_every: Annotated[Optional[int], typer.Option("--log-every", help="log.csv interval (steps).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of velocities and thermostat noise.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda[:N].")] = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help="float32 or float64.")] = None,
    allow_download: Annotated[Optional[bool], typer.Option("--allow-download", help="Allow downloading a named MACE foundation model.")] = None,
    engine: Annotated[Optional[str], typer.Option("--engine", help="ase (any potential, every ensemble) or gpu (device-resident MACE engine: nve, nvt-langevin, nvt-bussi; pip install 'tfbsim[gpu]').")] = None,
) -> None:
    """Molecular dynamics into a run directory (trajectory, log, checkpoints, summary); --restart continues one."""
    from .errors import ConfigError
    from .workflows.config import load_config
    from .workflows.md_config import MDConfig

    overrides = {
        "ensemble": ensemble, "temperature_k": temperature_k, "steps": steps, "timestep_fs": timestep_fs,
        "pressure_gpa": pressure_gpa, "barostat_axes": barostat_axes, "traj_every": traj_every,
        "checkpoint_every": checkpoint_every, "log_every": log_every, "seed": seed, "engine": engine,
    }
    potential = {"model": model, "device": device, "dtype": dtype, "allow_download": allow_download}
    given = any(v is not None for v in [*overrides.values(), *potential.values()])
    overrides["potential"] = {k: v for k, v in potential.items() if v is not None}
    if restart is not None:
        if structure is not None or output is not None:
            raise ConfigError("--restart RUN_DIR continues a run in place: give no STRUCTURE and no -o")
        from .workflows.md import restart_md

        base = config if config is not None else restart / "config.yaml"
        new_cfg = load_config(base, MDConfig, overrides) if (given or config is not None) else None
        result = restart_md(restart, force=force, config=new_cfg, progress=not _quiet(ctx))
    else:
        if structure is None or output is None:
            raise ConfigError("md needs STRUCTURE and -o RUN_DIR (or --restart RUN_DIR); see tfbsim md --help")
        from .structures.io import read_structure
        from .workflows.md import run_md
        from .workflows.potentials import load_potential

        cfg = load_config(config, MDConfig, overrides)
        atoms = read_structure(structure)
        p = cfg.potential
        calc = load_potential(p.model, device=p.device, dtype=p.dtype, allow_download=p.allow_download)
        result = run_md(atoms, calc, cfg, output, progress=not _quiet(ctx))
    _say(
        ctx,
        f"{result.status}: {result.steps_done} steps of {result.config.ensemble} ({result.steps_per_s:.1f} steps/s, "
        f"{result.wall_s:.0f} s); <T> = {result.temperature_mean_k:.1f} ± {result.temperature_std_k:.1f} K, "
        f"<Etot> = {result.etot_mean_ev:.4f} eV -> {result.run_dir}/",
    )


@app.command("relax")
def relax_cmd(
    ctx: typer.Context,
    structure: Annotated[Path, typer.Argument(help="Structure file (any ASE format).")],
    output: OutputOpt,
    model: ModelOpt = "bundled",
    fmax_ev_ang: Annotated[float, typer.Option("--fmax-ev-ang", help="Force convergence threshold (eV/Å).")] = 0.05,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Maximum FIRE steps.")] = 500,
    fixed_cell: Annotated[bool, typer.Option("--fixed-cell", help="Relax positions only.")] = False,
    cell_axes: Annotated[str, typer.Option("--cell-axes", help="xyz (full cell) or z (in-plane cell fixed).")] = "xyz",
    pressure_gpa: Annotated[float, typer.Option("--pressure-gpa", help="External pressure for the cell (GPa).")] = 0.0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float64",
    allow_download: AllowDownloadOpt = False,
    json_out: JsonOpt = None,
) -> None:
    """Relax positions (and the cell) with FIRE; fixed atoms (arrays['fixed']) stay put."""
    from .structures.io import read_structure, write_structure
    from .workflows.potentials import load_potential
    from .workflows.provenance import provenance, stamp, utc_now
    from .workflows.relax import relax

    started = utc_now()
    atoms = read_structure(structure)
    calc = load_potential(model, device=device, dtype=dtype, allow_download=allow_download)
    result = relax(atoms, calc, fmax_ev_ang=fmax_ev_ang, max_steps=max_steps, cell=not fixed_cell,
                   cell_axes=cell_axes, pressure_gpa=pressure_gpa)  # type: ignore[arg-type]
    settings = {"fmax_ev_ang": fmax_ev_ang, "max_steps": max_steps, "cell": not fixed_cell, "cell_axes": cell_axes,
                "pressure_gpa": pressure_gpa}
    block = provenance(config=settings, calc=calc, started_utc=started, extra={"workflow": "tfbsim.workflows.relax.relax",
                                                                              "source": str(structure)})
    final = result.atoms.copy()
    stamp(final, block)
    write_structure(output, final)
    report = {
        "converged": result.converged, "steps": result.steps, "energy_initial_ev": result.energy_initial_ev,
        "energy_final_ev": result.energy_final_ev, "max_force_ev_ang": result.max_force_ev_ang,
        "cell_change_pct": list(result.cell_change_pct), "n_atoms": len(final), "output": str(output),
        "provenance": block,
    }
    _write_json(json_out, report)
    if not result.converged:
        logger.warning("relax did not converge in %d steps (max |F| %.3f eV/Å > %g); the last structure was written",
                       result.steps, result.max_force_ev_ang, fmax_ev_ang)
    _say(ctx, f"{'converged' if result.converged else 'NOT converged'} in {result.steps} steps: E {result.energy_initial_ev:.4f} "
              f"-> {result.energy_final_ev:.4f} eV, max |F| {result.max_force_ev_ang:.4f} eV/Å -> {output}")


# ---- coordination (issue 5) -------------------------------------------------------------------------------
@analyze_app.command("coordination")
def analyze_coordination_cmd(
    ctx: typer.Context,
    structure: Annotated[Path, typer.Argument(help="Structure or trajectory: tfbsim H5MD or any ASE-readable file.")],
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frame selection START:STOP:STEP.")] = None,
    region: Annotated[Optional[str], typer.Option("--region", help="Only atoms with this region label.")] = None,
    z_window_ang: Annotated[
        Optional[tuple[float, float]],
        typer.Option("--z-window-ang", help="Only atoms with z in [LO, HI) Å (after wrapping), frame by frame."),
    ] = None,
    cutoff: Annotated[
        Optional[list[str]],
        typer.Option("--cutoff", help="Bond cutoff PAIR=Å (e.g. P-N=2.1) or PAIR=rdf; repeatable. Pairs: "
                                      "P-O, P-N, Li-O, Li-N, Li-S."),
    ] = None,
    cutoffs: Annotated[
        str, typer.Option("--cutoffs", help="default, or rdf: cutoffs from the first minimum of each partial g(r).")
    ] = "default",
    rdf: Annotated[
        Optional[list[str]], typer.Option("--rdf", help="Also compute g(r) and running CN of this pair (e.g. P-O).")
    ] = None,
    rdf_r_max_ang: Annotated[float, typer.Option("--rdf-r-max-ang", help="RDF range (Å).")] = 5.0,
    dt_fs: Annotated[
        Optional[float], typer.Option("--dt-fs", help="Time between stored frames (fs), if the file has no times.")
    ] = None,
    no_pbc: Annotated[
        bool, typer.Option("--no-pbc", help="Analyse as an isolated cluster (no periodic images).")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress", help="Show progress bars.")] = False,
    json_out: JsonOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the figure to this PNG file.")] = None,
) -> None:
    """N (N0/Na/Nd/Nt), O (O0/Onb/Ob), P (Qn, CN), phosphate clusters and Li polyhedra, averaged over frames."""
    from .analysis.coordination import Coordination
    from .analysis.plots import plot_coordination, save_figure
    from .analysis.speciation import SPECIATION_PAIRS
    from .errors import ConfigError
    from .workflows.provenance import provenance, utc_now

    started = utc_now()
    if cutoffs not in ("default", "rdf"):
        raise ConfigError(f"--cutoffs must be 'default' or 'rdf', got {cutoffs!r}")
    cutoff_setting = [*(f"{p}=rdf" for p in SPECIATION_PAIRS if cutoffs == "rdf"), *(cutoff or [])]
    settings = {
        "frames": frames, "region": region, "z_window_ang": z_window_ang, "cutoffs": cutoff_setting or None,
        "dt_fs": dt_fs, "pbc": False if no_pbc else None, "rdf_pairs": rdf or None, "rdf_r_max_ang": rdf_r_max_ang,
    }
    data = Coordination(str(structure), **settings).run(progress=progress).to_dict()
    fig = plot_coordination(data) if plot is not None else None
    data["provenance"] = provenance(config=settings, started_utc=started, extra={"input": str(structure)})
    _write_json(json_out, data)
    if fig is not None:
        save_figure(fig, plot)

    def nonzero(block: dict, keys: tuple[str, ...]) -> str:
        return " ".join(f"{k} {block[k]:.2f}" for k in keys if block.get(k)) or "-"

    n, o, p, li = data["N"], data["O"], data["P"], data["Li"]
    poly = " ".join(f"{k} {v:.2f}" for k, v in list(li["polyhedra"].items())[:3]) or "-"
    _say(ctx, f"{data['n_frames']} frame(s); cutoffs (Å): "
              + ", ".join(f"{k} {v:.2f}" for k, v in data["cutoffs_ang"].items()))
    _say(ctx, f"N ({n['count']}): {nonzero(n, ('N0', 'Na', 'Nd', 'Nt', 'N_over'))} | "
              f"O ({o['count']}): {nonzero(o, ('O0', 'Onb', 'Ob', 'O_over'))} | "
              f"P ({p['count']}): {nonzero(p, ('Q0', 'Q1', 'Q2', 'Q3', 'Q4', 'Q_over'))}, CN {p['mean_cn']:.2f} | "
              f"Li ({li['count']}): CN {li['mean_cn']:.2f}, {poly}")


# ---- crystals & slabs (issue 3) ----------------------------------------------------------------------------
@build_app.command("list")
def build_list_cmd(ctx: typer.Context, json_out: JsonOpt = None) -> None:
    """List the literature crystals (name, space group, phase, reference)."""
    from .structures.crystals import list_crystals
    from .workflows.provenance import provenance

    rows = list_crystals()
    _write_json(json_out, {"crystals": rows, "provenance": provenance(extra={"command": "build list"})})
    for row in rows:
        _say(ctx, f"{row['name']:<12} {row['spacegroup']:<8} {row['density_g_cm3']:.3f} g/cm3  {row['phase']}")
        _say(ctx, f"{'':<12} {row['reference']}")


@build_app.command("crystal")
def build_crystal_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Crystal name (see `tfbsim build list`).")],
    output: OutputOpt,
    supercell: Annotated[tuple[int, int, int], typer.Option("--supercell", help="Repeats A B C of the conventional cell.")] = (1, 1, 1),
    li_fraction: Annotated[Optional[float], typer.Option("--li-fraction", help="x in LixCoO2 (0.5 <= x <= 1; licoo2 only).")] = None,
    ordering: Annotated[Optional[str], typer.Option("--ordering", help="ordered (whole Li rows) or random; with --li-fraction.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of --ordering random.")] = None,
    do_relax: Annotated[bool, typer.Option("--relax", help="Relax cell and positions with --model and report lattice changes.")] = False,
    model: Annotated[Optional[str], typer.Option("--model", help="Potential for --relax: MACE file, bundled, mace-mp-0:small, chgnet, emt, lj.")] = None,
    fmax_ev_ang: Annotated[float, typer.Option("--fmax-ev-ang", help="Force threshold of --relax (eV/Å).")] = 0.02,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Maximum FIRE steps of --relax.")] = 500,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float64",
    allow_download: AllowDownloadOpt = False,
    json_out: JsonOpt = None,
) -> None:
    """Build a literature crystal (optionally LixCoO2, optionally relaxed) and write it."""
    from .errors import ConfigError
    from .structures.crystals import build_crystal, crystal_summary, detect_spacegroup
    from .structures.io import write_structure
    from .workflows.provenance import provenance, stamp, utc_now

    started = utc_now()
    if do_relax and not model:
        raise ConfigError("--relax needs --model SPEC (e.g. --model mace-mp-0:small or a MACE file)")
    if model and not do_relax:
        raise ConfigError("--model is only used with --relax; add --relax or drop --model")
    if li_fraction is None and (ordering is not None or seed is not None):
        raise ConfigError("--ordering and --seed only apply with --li-fraction X")
    atoms = build_crystal(name, supercell=supercell, li_fraction=li_fraction, ordering=ordering or "ordered", seed=seed)
    report = crystal_summary(atoms)
    builder = atoms.info.get("provenance", {})
    calc = None
    if do_relax:
        from .workflows.potentials import load_potential
        from .workflows.relax import relax

        calc = load_potential(str(model), device=device, dtype=dtype, allow_download=allow_download)
        result = relax(atoms, calc, fmax_ev_ang=fmax_ev_ang, max_steps=max_steps, cell=True)
        atoms = result.atoms.copy()
        relaxed = crystal_summary(atoms)
        before, after = report, relaxed
        lengths = zip(before["lattice_abc_ang"], after["lattice_abc_ang"], strict=True)
        angles = zip(before["lattice_angles_deg"], after["lattice_angles_deg"], strict=True)
        change = [100.0 * (x1 / x0 - 1.0) for x0, x1 in lengths]
        sg = detect_spacegroup(atoms, symprec=1e-3)
        atoms.info["relaxed_lattice_abc_ang"] = after["lattice_abc_ang"]
        atoms.info["density_g_cm3"] = after["density_g_cm3"]
        report = {
            **after,
            "reference_lattice_abc_ang": before["lattice_abc_ang"],
            "reference_lattice_angles_deg": before["lattice_angles_deg"],
            "reference_density_g_cm3": before["density_g_cm3"],
            "relax": {
                "model": model,
                "converged": result.converged,
                "steps": result.steps,
                "energy_initial_ev": result.energy_initial_ev,
                "energy_final_ev": result.energy_final_ev,
                "max_force_ev_ang": result.max_force_ev_ang,
                "lattice_change_pct": change,
                "angle_change_deg": [a1 - a0 for a0, a1 in angles],
                "density_change_pct": 100.0 * (after["density_g_cm3"] / before["density_g_cm3"] - 1.0),
                "spacegroup_after": sg[0],
                "spacegroup_number_after": sg[1],
            },
        }
    settings = {"name": name, "supercell": list(supercell), "li_fraction": li_fraction, "ordering": ordering,
                "seed": seed, "relax": do_relax, "fmax_ev_ang": fmax_ev_ang if do_relax else None,
                "max_steps": max_steps if do_relax else None}
    block = provenance(config=settings, calc=calc, seed=seed, started_utc=started,
                       extra={"command": "build crystal", "builder": builder})
    stamp(atoms, block)
    write_structure(output, atoms)
    report = {**report, "output": str(output), "provenance": block}
    _write_json(json_out, report)
    a, b, c = report["lattice_abc_ang"]
    extra = f", x = {report['li_fraction']:.4g} ({report['li_ordering']})" if "li_fraction" in report else ""
    _say(ctx, f"{report['name']} {report['spacegroup']}: {report['n_atoms']} atoms, a b c = {a:.4f} {b:.4f} {c:.4f} Å, "
              f"{report['density_g_cm3']:.3f} g/cm3{extra} -> {output}")
    if do_relax:
        r = report["relax"]
        pct = " ".join(f"{x:+.2f}%" for x in r["lattice_change_pct"])
        _say(ctx, f"relaxed with {model} ({'converged' if r['converged'] else 'NOT converged'}, {r['steps']} steps): "
                  f"a b c change {pct}, density {r['density_change_pct']:+.2f}%, space group {r['spacegroup_after']}")


@build_app.command("slab")
def build_slab_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Crystal name (see `tfbsim build list`) or a bulk structure file.")],
    output: OutputOpt,
    miller: Annotated[tuple[int, int, int], typer.Option("--miller", help="Facet H K L of the conventional cell.")],
    thickness_ang: Annotated[float, typer.Option("--thickness-ang", help="Minimum slab thickness (Å).")],
    vacuum_ang: Annotated[float, typer.Option("--vacuum-ang", help="Vacuum between periodic images (Å, > 0).")],
    termination: Annotated[Optional[int], typer.Option("--termination", help="Termination index (default: the recommended one).")] = None,
    min_lateral_ang: Annotated[Optional[float], typer.Option("--min-lateral-ang", help="Repeat in-plane to at least this width (Å).")] = None,
    fix_bottom_ang: Annotated[Optional[float], typer.Option("--fix-bottom-ang", help="Tag atoms this close to the bottom as fixed (Å).")] = None,
    symmetrize: Annotated[bool, typer.Option("--symmetrize", help="Also offer symmetric non-stoichiometric terminations.")] = False,
    no_compensate: Annotated[bool, typer.Option("--no-compensate", help="Do not offer Tasker-III compensated terminations.")] = False,
    keep_oblique: Annotated[bool, typer.Option("--keep-oblique", help="Keep the reduced (non-rectangular) lateral cell.")] = False,
    json_out: JsonOpt = None,
) -> None:
    """Cut a slab (normal along z) with a reported termination; --json lists every termination."""
    from .errors import ConfigError
    from .structures.crystal_data import CRYSTALS
    from .structures.crystals import build_crystal
    from .structures.io import read_structure, write_structure
    from .structures.slabs import make_slab
    from .workflows.provenance import provenance, stamp, utc_now

    started = utc_now()
    if not vacuum_ang > 0:
        raise ConfigError(f"--vacuum-ang must be > 0 Å for a slab file, got {vacuum_ang} (for a bare slab to stack, "
                          "use make_slab(..., vacuum_ang=0) in Python)")
    if not thickness_ang > 0:
        raise ConfigError(f"--thickness-ang must be > 0 Å, got {thickness_ang}")
    key = name.strip().lower()
    if key in CRYSTALS:
        bulk = build_crystal(key)
    elif Path(name).exists() or "/" in name or Path(name).suffix:
        bulk = read_structure(Path(name))  # a bulk file, e.g. LixCoO2 from `build crystal`
    else:
        bulk = build_crystal(key)  # unknown name: the error lists the valid ones
    slab, terms = make_slab(bulk, miller, thickness_ang=thickness_ang, vacuum_ang=vacuum_ang, termination=termination,
                            min_lateral_ang=min_lateral_ang, fix_bottom_ang=fix_bottom_ang, orthogonal=not keep_oblique,
                            symmetrize=symmetrize, compensate=not no_compensate, return_terminations=True)
    settings = {"name": name, "miller": list(miller), "thickness_ang": thickness_ang, "vacuum_ang": vacuum_ang,
                "termination": termination, "min_lateral_ang": min_lateral_ang, "fix_bottom_ang": fix_bottom_ang,
                "symmetrize": symmetrize, "compensate": not no_compensate, "orthogonal": not keep_oblique}
    block = provenance(config=settings, started_utc=started,
                       extra={"command": "build slab", "builder": slab.info.get("provenance", {})})
    stamp(slab, block)
    write_structure(output, slab)
    chosen = slab.info["termination"]
    report = {
        "name": slab.info["tfbsim_name"], "miller": slab.info["miller"], "formula": slab.info["formula"],
        "terminations": [t.to_dict() for t in terms], "chosen": chosen["index"], "termination": chosen,
        "area_ang2": slab.info["area_ang2"], "n_atoms": len(slab), "thickness_ang": slab.info["thickness_ang"],
        "vacuum_ang": slab.info["vacuum_ang"], "cell_abc_ang": [float(v) for v in slab.cell.lengths()],
        "orthogonal": slab.info["orthogonal"], "lateral_repeat": slab.info["lateral_repeat"],
        "n_fixed": slab.info["n_fixed"], "output": str(output), "provenance": block,
    }
    _write_json(json_out, report)
    for t in terms:
        flags = ", ".join(f for f, on in (("stoichiometric", t.stoichiometric), ("symmetric", t.symmetric),
                                          ("polar", t.polar), ("compensated", bool(t.reconstruction))) if on)
        mark = "*" if t.index == chosen["index"] else " "
        _say(ctx, f"{mark}{t.index}: top {t.top} / bottom {t.bottom}; {flags or 'non-stoichiometric'}; dipole "
                  f"{t.dipole_e_ang:.3f} e·Å; {t.n_layers} planes; {t.broken_bonds} cut bonds")
    _say(ctx, f"{report['name']} ({' '.join(map(str, report['miller']))}) termination {report['chosen']}: "
              f"{report['n_atoms']} atoms, {report['thickness_ang']:.2f} Å thick, area {report['area_ang2']:.1f} Å2 -> {output}")


# ---- amorphous LiPON (issue 13) ---------------------------------------------------------------------------
def _check_structure_suffix(path: Path) -> None:
    """Fail before any work when ASE cannot write the output's format."""
    from ase.io.formats import filetype, ioformats

    from .errors import ConfigError

    if path.suffix.lower() in {"", ".xyz", ".extxyz"}:
        return
    try:
        fmt = filetype(str(path), read=False)
        if not ioformats[fmt].can_write:
            raise KeyError(fmt)
    except Exception:
        raise ConfigError(f"cannot write {path.name}: use a suffix ASE writes (e.g. .extxyz, .cif, .vasp)") from None


@build_app.command("lipon")
def build_lipon_cmd(
    ctx: typer.Context,
    composition: Annotated[str, typer.Option("--composition", help="Formula per P, e.g. Li2.94PO3.50N0.31, Li3PO4, Li2PO2N.")],
    n_atoms: Annotated[int, typer.Option("--atoms", help="Target number of atoms (the achieved count is reported).")],
    output: OutputOpt,
    density_g_cm3: Annotated[float, typer.Option("--density-g-cm3", help="Density of the built box (g/cm3, 0.5-6).")] = 2.4,
    mode: Annotated[str, typer.Option("--mode", help="motif (chemistry-aware) or random (minimum distances only).")] = "motif",
    nd_fraction: Annotated[Optional[float], typer.Option("--nd-fraction", help="Share of N that bridges P (default: N bridges first).")] = None,
    nt_fraction: Annotated[Optional[float], typer.Option("--nt-fraction", help="Share of N bonded to three P (needs --allow-nt).")] = None,
    allow_nt: Annotated[bool, typer.Option("--allow-nt", help="Allow N bonded to three P (Nt).")] = False,
    allow_charged: Annotated[bool, typer.Option("--allow-charged", help="Build a formula that is not charge balanced.")] = False,
    lateral_ang: Annotated[
        Optional[tuple[float, float]], typer.Option("--lateral-ang", help="Fixed in-plane cell lengths A B (Å); c from the density.")
    ] = None,
    quench: Annotated[str, typer.Option("--quench", help="Melt-quench after building: none, quick or production.")] = "none",
    model: Annotated[Optional[str], typer.Option("--model", help="Potential for --quench: MACE file, bundled, mace-mp-0:small, chgnet.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML with melt-quench settings (preset and any keys); flags override it.")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Melt-quench folder (default: OUTPUT stem + _quench); an existing one is continued.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Continue a melt-quench folder whose settings differ.")] = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    allow_download: AllowDownloadOpt = False,
    json_out: JsonOpt = None,
) -> None:
    """Amorphous LixPOyNz (or Li3PO4) box: motif or random build, optional melt-quench, speciation report."""
    from .errors import ConfigError
    from .structures.io import write_structure
    from .workflows.lipon import make_amorphous_lipon
    from .workflows.protocols import MeltQuenchConfig, resolve_melt_quench_config

    if quench not in ("none", "quick", "production"):
        raise ConfigError(f"--quench must be none, quick or production, got {quench!r}")
    if quench == "none" and config is not None:
        raise ConfigError("--config holds melt-quench settings: add --quench quick|production")
    if quench != "none" and not model:
        raise ConfigError("--quench needs --model SPEC (e.g. --model chgnet, --model mace-mp-0:small or a MACE file)")
    _check_structure_suffix(output)
    calc = None
    quench_cfg: MeltQuenchConfig | None = None
    if quench != "none":
        from .workflows.potentials import load_potential

        overrides = {"preset": quench, "seed": seed,
                     "potential": {"model": model, "device": device, "dtype": dtype, "allow_download": allow_download}}
        quench_cfg = resolve_melt_quench_config(None, yaml_path=config, overrides=overrides)
        calc = load_potential(str(model), device=device, dtype=dtype, allow_download=allow_download)
        if run_dir is None:
            run_dir = output.with_name(output.stem + "_quench")
    built = make_amorphous_lipon(
        composition, n_atoms, density_g_cm3=density_g_cm3, mode=mode, nd_fraction=nd_fraction,
        allow_nt=allow_nt, nt_fraction=nt_fraction, lateral_ang=lateral_ang, seed=seed, allow_charged=allow_charged,
        quench=quench_cfg, calc=calc, run_dir=run_dir, progress=quench != "none" and not _quiet(ctx), force=force,
    )
    write_structure(output, built.atoms)
    report = {**built.report, "output": str(output)}
    _write_json(json_out, report)
    r = report
    n = r["speciation_final"]["N"]
    p = r["speciation_final"]["P"]
    n_text = "no N" if n["Nd"] is None else f"Nd {n['Nd']:.2f} Na {n['Na']:.2f} Nt {n['Nt']:.2f} N0 {n['N0']:.2f}"
    q_text = " ".join(f"Q{k} {p[f'Q{k}']:.2f}" for k in range(5) if p[f"Q{k}"])
    _say(ctx, f"{r['achieved_formula']} (target {r['target_formula']}, {r['charge_per_p']:+.2f} e/P): {r['n_atoms']} atoms, "
              f"{r['density_g_cm3']:.3f} g/cm3, {r['mode']} mode, seed {r['seed']} -> {output}")
    if r["protocol"] is not None:
        pr = r["protocol"]
        _say(ctx, f"melt-quench {pr['preset']} ({pr['total_md_ps']:.1f} ps MD, {pr['wall_s']:.0f} s): density "
                  f"{pr['density_initial_g_cm3']:.3f} -> {pr['density_final_g_cm3']:.3f} g/cm3; run folder {pr['run_dir']}")
    _say(ctx, f"speciation: {n_text}; {q_text}; P four-coordinated {p['four_coordinated']:.2f}")


# ---- interphase (issue 9) ---------------------------------------------------------------------------------
@analyze_app.command("interphase")
def analyze_interphase_cmd(
    ctx: typer.Context,
    traj: Annotated[Path, typer.Argument(help="Interface trajectory or structure: tfbsim H5MD or any ASE-readable file.")],
    axis: Annotated[str, typer.Option("--axis", help="Interface normal: x, y or z (periodic, normal to the in-plane cell vectors).")] = "z",
    bin_ang: Annotated[float, typer.Option("--bin-ang", help="Bin width along the normal (Å).")] = 1.0,
    frames: Annotated[Optional[str], typer.Option("--frames", help="Frame selection START:STOP:STEP (the averaging window).")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Product fraction of a bin's atoms (Li_ion excluded) that makes it interphase.")] = 0.5,
    product: Annotated[
        Optional[list[str]], typer.Option("--product", help="Product class marking the interphase (repeatable; default: "
                                                            "Li2O Li3N Li3P reduced_P P_P polysulfide_S thiophosphate_S NO_x Co_reduced).")
    ] = None,
    cutoff: Annotated[
        Optional[list[str]], typer.Option("--cutoff", help="Bond cutoff override PAIR=Å (e.g. Li-Li=3.3); repeatable.")
    ] = None,
    max_gap_ang: Annotated[float, typer.Option("--max-gap-ang", help="Empty stretches up to this length are bridged (Å).")] = 3.0,
    dt_fs: Annotated[
        Optional[float], typer.Option("--dt-fs", help="Time between stored frames (fs), if the file has no times.")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress", help="Show a progress bar.")] = False,
    json_out: JsonOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the profile (and thickness vs time) figure to this PNG.")] = None,
) -> None:
    """Interphase composition along the normal: classes per bin, census, extent, growth and product order."""
    from .analysis.interphase import Interphase
    from .analysis.plots_interphase import plot_interphase
    from .workflows.provenance import provenance, utc_now

    started = utc_now()
    settings = {"axis": axis, "bin_ang": bin_ang, "frames": frames, "threshold": threshold, "dt_fs": dt_fs,
                "product_classes": product or None, "cutoffs": cutoff or None, "max_gap_ang": max_gap_ang}
    analysis = Interphase(str(traj), **settings).run(progress=progress)
    data = analysis.to_dict()
    fig = plot_interphase(data) if plot is not None else None
    data["provenance"] = provenance(config=settings, started_utc=started, extra={"input": str(traj)})
    _write_json(json_out, data)
    if fig is not None:
        from .analysis.plots import save_figure

        save_figure(fig, plot)
    r = analysis.results
    inter = r.interphase
    fu = ", ".join(f"{k} {v}" for k, v in r.formula_units.items() if v) or "none"
    _say(ctx, f"{r.n_frames} frame(s), {r.n_bins} bins of {r.bin_width_ang:.2f} Å along {r.axis}; formula units "
              f"(last frame): {fu}")
    thick = float(inter["thickness_ang"][-1])
    if thick > 0:
        _say(ctx, f"interphase {thick:.1f} Å ({r.axis} {inter['z_lo_ang'][-1]:.1f}–{inter['z_hi_ang'][-1]:.1f} Å), "
                  f"front at {inter['front_ang'][-1]:.1f} Å; all product runs {inter['total_thickness_ang'][-1]:.1f} Å")
    else:
        _say(ctx, f"no interphase: no bin has >= {threshold:g} of its atoms (Li_ion excluded) in product classes")
    if r.product_order_from_li:
        _say(ctx, "products from the Li side: " + " -> ".join(r.product_order_from_li))
    g = inter["growth"]
    if g.model in ("linear", "parabolic", "undetermined"):
        _say(ctx, f"growth: {g.model}; linear {g.rate_ang_ps:.3g} Å/ps, parabolic {g.parabolic_k_ang_ps05:.3g} "
                  f"Å/ps^0.5 (ΔAIC lin-par {g.delta_aic:.1f})")


# ---- campaigns & results database (issue 10) ---------------------------------------------------------------
@app.command("run")
def run_cmd(
    ctx: typer.Context,
    campaign: Annotated[Path, typer.Argument(help="Campaign YAML (structures, temperatures, replicas, protocol, analyses).")],
    executor: Annotated[str, typer.Option("--executor", help="local (this machine's cores) or slurm (needs --site).")] = "local",
    site: Annotated[Optional[Path], typer.Option("--site", help="Slurm site YAML (partition, account, walltime, ...).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Take over a directory of another campaign; set aside (attic/) and re-run tasks whose settings changed.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Local executor: tasks at a time (overrides the file).")] = None,
    threads_per_task: Annotated[Optional[int], typer.Option("--threads-per-task", help="Local executor: threads per task (overrides the file).")] = None,
    status: Annotated[bool, typer.Option("--status", help="Only show each task's state (runs nothing; e.g. while a driver runs elsewhere).")] = False,
) -> None:
    """Run or continue a campaign: finished tasks are skipped, unfinished ones resume from their checkpoints.

    Exit status 0 when every task completed, 3 when some ended unstable or failed (their reasons are in
    summary.md and the database; fix the cause and run the same command again).
    """
    from .workflows.campaign import campaign_status, run_campaign

    if status:
        rows = campaign_status(campaign)
        for r in rows:
            d = "" if r["D_cm2_s"] is None else f"  D = {r['D_cm2_s']:.3g} cm2/s"
            _say(ctx, f"{r['task_id']:<32} {r['status']:<10}{d}" + (f"  {r['reason']}" if r.get("reason") else ""))
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        _say(ctx, ", ".join(f"{v} {k}" for k, v in counts.items()))
        return

    def show(event) -> None:  # noqa: ANN001 - CampaignEvent
        if event.kind == "skipped" and event.status == "completed":
            return  # counted in the plan line
        if event.kind == "finished" and event.status != "completed":
            typer.echo(event.message, err=True)  # failures show even with --quiet
        elif event.kind != "report":
            _say(ctx, event.message)

    result = run_campaign(campaign, executor=executor, site=site, force=force, workers=workers,
                          threads_per_task=threads_per_task, on_event=show)
    for system, fit in result.arrhenius.items():
        if "error" in fit:
            _say(ctx, f"{system}: no Arrhenius fit ({fit['error']})")
        else:
            sigma = fit.get("sigma_300K_S_cm")
            _say(ctx, f"{system}: Ea = {fit['Ea_eV']:.3f} ± {fit['Ea_stderr_eV']:.3f} eV"
                      + (f", σ({fit['target_temperature_k']:g} K) = {sigma:.3g} S/cm" if sigma is not None else "")
                      + f" from {fit['n_points']} runs")
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    _say(ctx, f"{counts}; {result.skipped} skipped, {result.submitted} run now -> {result.directory}/summary.md, "
              f"database {result.database}")
    if not result.ok:
        typer.echo(f"error: {sum(v for k, v in result.counts.items() if k != 'completed')} task(s) did not complete; "
                   f"see {result.directory}/summary.md", err=True)
        raise typer.Exit(3)


DbTarget = Annotated[str, typer.Argument(help="Campaign directory, results .db file or ASE-db URL.")]


@db_app.command("list")
def db_list_cmd(
    ctx: typer.Context,
    target: DbTarget,
    query: Annotated[Optional[str], typer.Option("--query", help="ASE-db selection, e.g. 'status=completed,temperature_k>700'.")] = None,
    json_out: JsonOpt = None,
) -> None:
    """One line per task: id, task, formula, T, status, D and σ."""
    from .workflows.resultsdb import ResultsDB

    rows = ResultsDB(target).rows(query)
    _write_json(json_out, {"rows": rows})

    def num(value, spec=".3g"):  # noqa: ANN001, ANN202
        return "-" if value is None else format(value, spec)

    _say(ctx, f"{'id':>4}  {'task':<28} {'formula':<12} {'T (K)':>7}  {'status':<10} {'D (cm2/s)':>10} {'sigma (S/cm)':>12}")
    for r in rows:
        _say(ctx, f"{r['id']:>4}  {str(r.get('task_id', '-')):<28} {r['formula']:<12} {num(r.get('temperature_k'), 'g'):>7}  "
                  f"{str(r.get('status', '-')):<10} {num(r.get('D_cm2_s')):>10} {num(r.get('sigma_ne_S_cm')):>12}")
    _say(ctx, f"{len(rows)} row(s)")


@db_app.command("show")
def db_show_cmd(
    ctx: typer.Context,
    target: DbTarget,
    task: Annotated[str, typer.Argument(help="Task id (system/T800K/r0) or row id.")],
    json_out: JsonOpt = None,
) -> None:
    """All key-value pairs of one task, and the analyses stored with it."""
    from .workflows.resultsdb import ResultsDB

    record, data, atoms = ResultsDB(target).get(task)
    _write_json(json_out, {"row": record, "data": data})
    for key in sorted(record):
        _say(ctx, f"{key:>24}: {record[key]}")
    _say(ctx, f"{'structure':>24}: {len(atoms)} atoms, cell {' '.join(f'{x:.3f}' for x in atoms.cell.lengths())} Å")
    for key, value in (data.get("analyses") or {}).items():
        _say(ctx, f"{'analysis':>24}: {key} ({len(value)} entries)")
    for line in data.get("analysis_errors") or []:
        _say(ctx, f"{'analysis error':>24}: {line}")


@db_app.command("export")
def db_export_cmd(
    ctx: typer.Context,
    target: DbTarget,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv (one row per task) or json (rows with their analyses).")] = "csv",
    query: Annotated[Optional[str], typer.Option("--query", help="ASE-db selection, e.g. 'system=glass'.")] = None,
) -> None:
    """Export the database as CSV or JSON."""
    from .errors import ConfigError
    from .structures.io import atomic_path, write_json
    from .workflows.resultsdb import ResultsDB

    if fmt not in ("csv", "json"):
        raise ConfigError(f"--format must be csv or json, got {fmt!r}")
    db = ResultsDB(target)
    if fmt == "csv":
        text = db.export_csv(query)
        with atomic_path(output) as tmp:
            tmp.write_text(text)
        n = text.count("\n") - 1
    else:
        rows = db.rows(query)
        records = [{"row": r, "data": db.get(r["id"])[1]} for r in rows]
        write_json(output, {"rows": records})
        n = len(records)
    _say(ctx, f"{n} row(s) -> {output}")


# ---- interfaces (issue 8) ---------------------------------------------------------------------------------
def _floats(text: str | None, what: str, *, sep: str = ",") -> list[float] | None:
    """``"12,20,15"`` -> [12.0, 20.0, 15.0]; a clear ConfigError otherwise."""
    from .errors import ConfigError

    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(sep) if v != ""]
    except ValueError:
        raise ConfigError(f"{what} must be numbers separated by '{sep}', got {text!r}") from None


@build_app.command("interface")
def build_interface_cmd(
    ctx: typer.Context,
    stack: Annotated[str, typer.Option("--stack", help="Phases bottom to top, e.g. li:100,lipon,licoo2:104 (licoo2:104:x=0.5, li2s:111:term=1).")],
    output: OutputOpt,
    thickness_ang: Annotated[Optional[str], typer.Option("--thickness-ang", help="One thickness for all phases or one per phase, e.g. 12,20,15 (Å).")] = None,
    lateral_min_ang: Annotated[float, typer.Option("--lateral-min-ang", help="Minimum in-plane width of the cell in both directions (Å).")] = 10.0,
    lipon_composition: Annotated[Optional[str], typer.Option("--lipon-composition", help="Formula per P of the glass (default Li2.94PO3.50N0.31).")] = None,
    lipon_from: Annotated[Optional[Path], typer.Option("--lipon-from", help="Use this glass box (its in-plane cell must fit the stack's lattice).")] = None,
    lipon_density_g_cm3: Annotated[float, typer.Option("--lipon-density-g-cm3", help="Density of a built glass (g/cm3).")] = 2.4,
    gap_ang: Annotated[float, typer.Option("--gap-ang", help="Distance along z between neighbouring phases (Å).")] = 2.0,
    vacuum_ang: Annotated[Optional[float], typer.Option("--vacuum-ang", help="Slab + vacuum (Å) with fixed bottom layers; default: periodic sandwich.")] = None,
    max_strain_pct: Annotated[float, typer.Option("--max-strain-pct", help="Largest in-plane strain of a matched crystal (%).")] = 5.0,
    max_area_ang2: Annotated[Optional[float], typer.Option("--max-area-ang2", help="Largest ZSL coincidence area searched (Å2).")] = None,
    strained_phase: Annotated[Optional[str], typer.Option("--strained-phase", help="Crystal that carries the lattice-match strain (default: Li metal).")] = None,
    shift_ang: Annotated[Optional[str], typer.Option("--shift-ang", help="In-plane shift DX,DY (Å) of everything above the first interface.")] = None,
    fix_bottom_ang: Annotated[Optional[float], typer.Option("--fix-bottom-ang", help="Fixed bottom layer (Å); default 3 with vacuum, 0 periodic.")] = None,
    quench_on_substrate: Annotated[Optional[str], typer.Option("--quench-on-substrate", help="Melt-quench the glass on the fixed substrate: quick or production.")] = None,
    relax: Annotated[bool, typer.Option("--relax", help="Relax with the in-plane cell fixed (positions + c).")] = False,
    model: Annotated[Optional[str], typer.Option("--model", help="Potential for --quench-on-substrate/--relax.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML with melt-quench settings (preset and any keys).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Quench folder (default: OUTPUT stem + _quench); an existing one is continued.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Continue a quench folder whose settings differ.")] = False,
    fmax_ev_ang: Annotated[float, typer.Option("--fmax-ev-ang", help="Force threshold of --relax (eV/Å).")] = 0.05,
    relax_steps: Annotated[int, typer.Option("--relax-steps", help="Step limit of --relax.")] = 500,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    allow_download: AllowDownloadOpt = False,
    json_out: JsonOpt = None,
) -> None:
    """Interface or full cell (bottom to top) with region tags, strain and geometry report; optional quench/relax."""
    from .errors import ConfigError
    from .interfaces.phases import DEFAULT_LIPON_COMPOSITION
    from .structures.io import write_structure
    from .workflows.interface_quench import make_interface
    from .workflows.protocols import resolve_melt_quench_config

    if quench_on_substrate is not None and quench_on_substrate not in ("quick", "production"):
        raise ConfigError(f"--quench-on-substrate must be quick or production, got {quench_on_substrate!r}")
    if (quench_on_substrate or relax) and not model:
        raise ConfigError("--quench-on-substrate and --relax need --model SPEC (e.g. chgnet, mace-mp-0:small, a MACE file)")
    if config is not None and quench_on_substrate is None:
        raise ConfigError("--config holds melt-quench settings: add --quench-on-substrate quick|production")
    if lipon_from is not None and lipon_composition is not None:
        raise ConfigError("give either --lipon-composition (build the glass) or --lipon-from (use a glass file), not both")
    if lipon_from is not None and not lipon_from.exists():
        raise ConfigError(f"--lipon-from {lipon_from}: no such file")
    _check_structure_suffix(output)
    thickness = _floats(thickness_ang, "--thickness-ang")
    shift = None
    if shift_ang is not None:
        pairs = [_floats(p, "--shift-ang") for p in shift_ang.split(";") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError(f"--shift-ang needs DX,DY (or DX,DY;DX,DY one per interface), got {shift_ang!r}")
        shift = pairs[0] if len(pairs) == 1 else pairs
    calc = None
    quench_cfg = None
    if quench_on_substrate is not None:
        overrides = {"preset": quench_on_substrate, "seed": seed,
                     "potential": {"model": model, "device": device, "dtype": dtype, "allow_download": allow_download}}
        quench_cfg = resolve_melt_quench_config(None, yaml_path=config, overrides=overrides)
        if run_dir is None:
            run_dir = output.with_name(output.stem + "_quench")
    if model and (quench_on_substrate or relax):
        from .workflows.potentials import load_potential

        calc = load_potential(str(model), device=device, dtype=dtype, allow_download=allow_download)
    built = make_interface(
        stack, quench=quench_cfg, relax=relax, calc=calc, run_dir=run_dir, relax_fmax_ev_ang=fmax_ev_ang,
        relax_steps=relax_steps, progress=not _quiet(ctx), force=force,
        thickness_ang=None if thickness is None else (thickness[0] if len(thickness) == 1 else thickness),
        lateral_min_ang=lateral_min_ang, lipon_composition=lipon_composition or DEFAULT_LIPON_COMPOSITION,
        lipon_from=lipon_from, lipon_density_g_cm3=lipon_density_g_cm3, gap_ang=gap_ang, vacuum_ang=vacuum_ang,
        max_strain_pct=max_strain_pct, max_area_ang2=max_area_ang2, strained_phase=strained_phase, shift_ang=shift,
        fix_bottom_ang=fix_bottom_ang, seed=seed,
    )
    write_structure(output, built.atoms)
    report = {**built.report, "output": str(output)}
    _write_json(json_out, report)
    r = report
    for entry in r["stack"]:
        facet = f" ({entry['facet']})" if entry.get("facet") else ""
        strain = ", ".join(f"{v:+.2f}" for v in entry["strain_pct"])
        _say(ctx, f"  {entry['region']}{facet}: {entry['n_atoms']} atoms {entry['formula']}, {entry['thickness_ang']:.1f} Å, "
                  f"z {entry['z_range_ang'][0]:.1f}-{entry['z_range_ang'][1]:.1f} Å, strain exx eyy exy [{strain}] %")
    a, b = r["lateral_widths_ang"]
    geometry = "periodic sandwich" if r["periodic_sandwich"] else f"slab + {r['vacuum_ang']:g} Å vacuum"
    _say(ctx, f"{'/'.join(e['region'] for e in r['stack'])}: {r['n_atoms']} atoms, lateral {a:.2f} x {b:.2f} Å "
              f"({r['area_ang2']:.1f} Å2), {geometry}, interfaces at z = "
              f"{', '.join(f'{z:.2f}' for z in r['interfaces_z_ang'])} Å, min cross distance "
              f"{r['min_cross_distance_ang']:.2f} Å -> {output}")
    for warning in r["warnings"]:
        _say(ctx, f"warning: {warning}")


# ------------------------------------------------------------------------------------------------- demo
@app.command("demo")
def demo_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output folder (re-running continues it).")] = Path("demo_out"),
    preset: Annotated[str, typer.Option("--preset", help="quick (2-core laptop, <= 15 min) or full (GPU/HPC node).")] = "quick",
    model: Annotated[Optional[str], typer.Option("--model", help="Potential (default: bundled).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of builders and MD.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda[:N].")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="MD runs at a time.")] = None,
    threads_per_task: Annotated[Optional[int], typer.Option("--threads-per-task", help="torch threads per run.")] = None,
    config: ConfigOpt = None,
) -> None:
    """The main job: LiPON glass -> Li transport and Arrhenius -> speciation -> Li/LiPON interphase -> report."""
    from .workflows.demo import demo_config, run_demo

    cfg = demo_config(preset, file=config, model=model, seed=seed, device=device, workers=workers,
                      threads_per_task=threads_per_task)
    result = run_demo(out, cfg, say=lambda text: _say(ctx, text))
    n = result.numbers
    ea = "n/a" if n["Ea_eV"] is None else f"{n['Ea_eV']:.2f} ± {n['Ea_stderr_eV']:.2f} eV"
    sigma = "n/a" if n["sigma_300K_S_cm"] is None else f"{n['sigma_300K_S_cm']:.2g} S/cm"
    _say(ctx, f"done in {result.wall_s / 60:.1f} min: Ea {ea} (expt 0.55), sigma(300 K) {sigma} (expt 2.3e-6); "
              f"Nd {n['N']['Nd']}, Na {n['N']['Na']}, Nt {n['N']['Nt']}; interphase order from Li: "
              f"{' -> '.join(n['interphase_order_from_li']) or 'none'}")
    _say(ctx, f"report: {result.report_md} (and report.html)")


def main() -> None:  # pragma: no cover - console-script entry
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
