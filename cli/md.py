"""``tfbsim md`` and ``tfbsim relax``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import (
    AllowDownloadOpt,
    ConfigOpt,
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    ModelOpt,
    OutputOpt,
    _check_output_path,
    _check_structure_suffix,
    _quiet,
    _say,
    _write_json,
    potential_from_flags,
)

# ---- md & relax (issue 4) ----------------------------------------------------------------------------------

logger = logging.getLogger(__name__)
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
    from ..errors import ConfigError
    from ..workflows.config import load_config
    from ..workflows.md.config import MDConfig

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
        from ..workflows.md.run import restart_md

        _check_checkpoint(restart)
        base = config if config is not None else restart / "config.yaml"
        new_cfg = load_config(base, MDConfig, overrides) if (given or config is not None) else None
        result = restart_md(restart, force=force, config=new_cfg, progress=not _quiet(ctx))
    else:
        if structure is None or output is None:
            raise ConfigError("md needs STRUCTURE and -o RUN_DIR (or --restart RUN_DIR); see tfbsim md --help")
        _check_output_path(output, folder=True)
        from ..structures.io import read_structure
        from ..workflows.md.run import run_md
        from ..workflows.potentials.factory import load_potential

        cfg = load_config(config, MDConfig, overrides)
        atoms = read_structure(structure)
        calc = load_potential(cfg.potential)
        result = run_md(atoms, calc, cfg, output, progress=not _quiet(ctx))
    _say(
        ctx,
        f"{result.status}: {result.steps_done} steps of {result.config.ensemble} ({result.steps_per_s:.1f} steps/s, "
        f"{result.wall_s:.0f} s); <T> = {result.temperature_mean_k:.1f} ± {result.temperature_std_k:.1f} K, "
        f"<Etot> = {result.etot_mean_ev:.4f} eV -> {result.run_dir}/",
    )


def _check_checkpoint(run_dir: Path) -> None:
    """Refuse (exit 2, file named) a run directory whose checkpoint cannot be read, before anything runs."""
    from ..errors import ConfigError, TrajectoryError
    from ..workflows.md.checkpoint import read_checkpoint
    from ..workflows.md.rundir import RunDir

    if not run_dir.is_dir():
        raise ConfigError(f"--restart {run_dir}: no such run directory; check the path")
    checkpoint = RunDir(run_dir).checkpoint
    if not checkpoint.is_file():
        return  # restart_md says what is missing
    try:
        read_checkpoint(checkpoint)
    except Exception as exc:  # numpy/zipfile raise many types on a truncated or corrupt archive
        raise TrajectoryError(
            f"{checkpoint}: the checkpoint cannot be read ({type(exc).__name__}: {exc}); it is truncated or "
            "corrupt: restore it, or start the run again in a new directory"
        ) from exc


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
    from ..structures.io import read_structure, write_structure
    from ..workflows.md.relax import relax
    from ..workflows.potentials.factory import load_potential
    from ..workflows.provenance import provenance, stamp, utc_now

    started = utc_now()
    _check_structure_suffix(output)  # before any work
    _check_output_path(json_out, option="--json")
    potential = potential_from_flags(model, device, dtype, allow_download)
    atoms = read_structure(structure)
    calc = load_potential(potential)
    result = relax(atoms, calc, fmax_ev_ang=fmax_ev_ang, max_steps=max_steps, cell=not fixed_cell,
                   cell_axes=cell_axes, pressure_gpa=pressure_gpa,  # type: ignore[arg-type]
                   progress=not _quiet(ctx))
    settings = {"fmax_ev_ang": fmax_ev_ang, "max_steps": max_steps, "cell": not fixed_cell, "cell_axes": cell_axes,
                "pressure_gpa": pressure_gpa}
    block = provenance(config=settings, calc=calc, started_utc=started, extra={"workflow": "tfbsim.workflows.md.relax.relax",
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
