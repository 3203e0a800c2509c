"""``tfbsim deposit`` (vapour deposition onto a slab) and ``tfbsim anneal`` (a reactive anneal with a schedule).

Registered on the root app by :func:`register`. Every bad input (a species the model does not cover, a substrate
without vacuum above its top, an arrival too fast for the time step, a target beyond the cell height, unknown
config keys) is checked before any file is written: exit 2 with one ``error:`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import AllowDownloadOpt, ConfigOpt, _quiet, _say, potential_from_flags

__all__ = ["register", "deposit_cmd", "anneal_cmd"]

_Model = Annotated[str, typer.Option("--model", help="Potential: MACE file, bundled, mace-mp-0:small, chgnet, emt, lj.")]
_Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda[:N].")]
_Dtype = Annotated[str, typer.Option("--dtype", help="float32 or float64.")]
_Out = Annotated[Path, typer.Option("--out", "-o", help="Run directory (re-running the command continues it).")]


def register(app: typer.Typer) -> None:
    """Add ``deposit`` and ``anneal`` to the root app."""
    app.command("deposit")(deposit_cmd)
    app.command("anneal")(anneal_cmd)


def _check_out(out: Path) -> None:
    from ..errors import ConfigError

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the run")


def deposit_cmd(
    ctx: typer.Context,
    substrate: Annotated[str, typer.Argument(help="Structure file, 'lipon[:COMPOSITION]', or CRYSTAL:HKL (li2o:111, li2s:111, licoo2:104).")],
    out: _Out,
    species: Annotated[Optional[str], typer.Option("--species", help="Arriving element (default Li).")] = None,
    count: Annotated[Optional[int], typer.Option("--count", help="Atoms to send.")] = None,
    thickness_ang: Annotated[Optional[float], typer.Option("--thickness-ang", help="Nominal thickness to deposit (Å, at bulk density).")] = None,
    group_size: Annotated[Optional[int], typer.Option("--group-size", help="Atoms per arrival event.")] = None,
    energy_ev: Annotated[Optional[float], typer.Option("--energy-ev", help="Kinetic energy per arriving atom (eV).")] = None,
    energy_distribution: Annotated[Optional[str], typer.Option("--energy-distribution", help="fixed or thermal.")] = None,
    angle_deg: Annotated[Optional[float], typer.Option("--angle-deg", help="Incidence angle from the normal (°).")] = None,
    flux_per_ps: Annotated[Optional[float], typer.Option("--flux-per-ps", help="Arriving atoms per ps.")] = None,
    temperature_k: Annotated[Optional[float], typer.Option("--temperature-k", help="Substrate thermostat (K).")] = None,
    timestep_fs: Annotated[Optional[float], typer.Option("--timestep-fs", help="Time step (fs).")] = None,
    clearance_ang: Annotated[Optional[float], typer.Option("--clearance-ang", help="Insertion height above the film top (Å).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of arrivals and thermostat noise.")] = None,
    substrate_atoms: Annotated[int, typer.Option("--substrate-atoms", help="Atoms of a built LiPON slab.")] = 250,
    substrate_thickness_ang: Annotated[float, typer.Option("--substrate-thickness-ang", help="Thickness of a built crystal slab (Å).")] = 10.0,
    lateral_ang: Annotated[float, typer.Option("--lateral-ang", help="Minimum in-plane width of a built substrate (Å).")] = 12.0,
    vacuum_ang: Annotated[float, typer.Option("--vacuum-ang", help="Vacuum above a built substrate (Å).")] = 30.0,
    relax_steps: Annotated[int, typer.Option("--relax-steps", help="FIRE steps relaxing the substrate (fixed cell, fmax 0.1 eV/Å) before deposition; 0: none. A builder's unrelaxed glass otherwise heats itself by hundreds of K.")] = 200,
    layer_ang: Annotated[float, typer.Option("--layer-ang", help="Layer thickness of the interphase profile (Å).")] = 2.0,
    analyse: Annotated[bool, typer.Option("--analyse/--no-analyse", help="Write profile.json and profile.png.")] = True,
    config: ConfigOpt = None,
    model: _Model = "bundled",
    device: _Device = "auto",
    dtype: _Dtype = "float32",
    allow_download: AllowDownloadOpt = False,
) -> None:
    """Deposit atoms one by one (or in groups) onto a slab; re-run to continue a killed run."""
    from ..workflows.config import load_config
    from ..workflows.potentials.factory import load_potential
    from ..workflows.protocols.deposition import deposit
    from ..workflows.protocols.deposition_config import DepositionConfig
    from ..workflows.protocols.deposition_setup import deposition_substrate, plan_deposition

    _check_out(out)
    pot = potential_from_flags(model, device, dtype, allow_download)
    overrides = {
        "species": species, "count": count, "thickness_ang": thickness_ang, "group_size": group_size,
        "energy_ev": energy_ev, "energy_distribution": energy_distribution, "angle_deg": angle_deg,
        "flux_per_ps": flux_per_ps, "temperature_k": temperature_k, "timestep_fs": timestep_fs,
        "clearance_ang": clearance_ang, "seed": seed, "potential": pot.model_dump(mode="json"),
    }
    cfg = load_config(config, DepositionConfig, overrides)
    calc = load_potential(cfg.potential)
    slab = deposition_substrate(substrate, n_atoms=substrate_atoms, thickness_ang=substrate_thickness_ang,
                                lateral_ang=lateral_ang, vacuum_ang=vacuum_ang, seed=cfg.seed)
    _, plan = plan_deposition(slab, calc, cfg)  # every check before anything is written
    slab = _relaxed_substrate(slab, calc, out, relax_steps, progress=not _quiet(ctx))
    result = deposit(slab, calc, cfg, out, progress=not _quiet(ctx))
    s = result.summary
    _say(ctx, f"{s['status']}: {s['n_sent']} {s['species']} sent in {plan.n_events} events, {s['n_joined']} joined, "
              f"{s['n_reflected']} reflected, {s['time_ps']:.2f} ps ({s['wall_s']:.0f} s); {out}/deposition.json")
    if analyse:
        _write_profile(ctx, out, layer_ang)


def _relaxed_substrate(slab, calc, out: Path, steps: int, *, progress: bool):
    """The substrate relaxed once and stored as ``OUT/substrate.extxyz`` (read back, also on a re-run, so the
    resumed deposition sees exactly the substrate the first run saw)."""
    from ..structures.io import read_structure, write_structure

    path = out / "substrate.extxyz"
    if not path.is_file():
        if steps > 0:
            from ..workflows.md.relax import relax

            work = slab.copy()
            z = work.positions[:, 2]
            work.set_array("fixed", z <= z.min() + 3.0)
            slab = relax(work, calc, fmax_ev_ang=0.1, max_steps=steps, cell=False, progress=progress).atoms
            slab.calc = None
            slab.set_constraint()
        out.mkdir(parents=True, exist_ok=True)
        write_structure(path, slab)
    return read_structure(path)


def _write_profile(ctx: typer.Context, out: Path, layer_ang: float) -> None:
    from ..analysis.deposition_profile import deposition_profile
    from ..analysis.plots_deposition import plot_deposition
    from ..structures.io import write_json
    from ..workflows.provenance import provenance

    profile = deposition_profile(out / "snapshots.extxyz", layer_ang=layer_ang).to_dict()
    profile["provenance"] = provenance(config={"layer_ang": layer_ang, "snapshots": str(out / "snapshots.extxyz")},
                                       extra={"workflow": "tfbsim.analysis.deposition_profile.deposition_profile"})
    write_json(out / "profile.json", profile)
    plot_deposition(profile, out / "profile.png")
    last = profile["snapshots"][-1]
    _say(ctx, f"last snapshot: {last['class_counts']}; products first seen: {profile['product_order_first'] or 'none'}"
              f"; {out}/profile.json, profile.png")


def anneal_cmd(
    ctx: typer.Context,
    structure: Annotated[Path, typer.Argument(help="Interface or deposited film (e.g. DIR/final.extxyz of tfbsim deposit).")],
    out: _Out,
    segments: Annotated[Optional[str], typer.Option("--segments", help="Held segments 'DURATION_PS:T_K,...', e.g. '2:300,5:600,2:300'.")] = None,
    ramp_ps: Annotated[Optional[float], typer.Option("--ramp-ps", help="Ramp between segments (ps).")] = None,
    ensemble: Annotated[Optional[str], typer.Option("--ensemble", help="nvt-langevin, nvt-bussi or nvt-nhc.")] = None,
    timestep_fs: Annotated[Optional[float], typer.Option("--timestep-fs", help="Time step (fs).")] = None,
    traj_every: Annotated[Optional[int], typer.Option("--traj-every", help="Analysed frame interval (steps).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed.")] = None,
    layer_ang: Annotated[Optional[float], typer.Option("--layer-ang", help="Layer thickness (Å).")] = None,
    config: ConfigOpt = None,
    model: _Model = "bundled",
    device: _Device = "auto",
    dtype: _Dtype = "float32",
    allow_download: AllowDownloadOpt = False,
) -> None:
    """Anneal with a temperature schedule and follow the interphase classes layer by layer; re-run to continue."""
    from ..errors import ConfigError
    from ..structures.io import read_structure
    from ..workflows.config import load_config
    from ..workflows.potentials.factory import check_coverage, load_potential
    from ..workflows.protocols.reactive_anneal import ReactiveAnnealConfig, reactive_anneal

    _check_out(out)
    parsed = None
    if segments is not None:
        try:
            parsed = [[float(x) for x in part.split(":")] for part in segments.replace(" ", "").split(",") if part]
            if any(len(p) != 2 for p in parsed):
                raise ValueError
        except ValueError:
            raise ConfigError(f"--segments must look like '2:300,5:600' (DURATION_PS:T_K,...), got {segments!r}") from None
    pot = potential_from_flags(model, device, dtype, allow_download)
    cfg = load_config(config, ReactiveAnnealConfig, {
        "segments": parsed, "ramp_ps": ramp_ps, "ensemble": ensemble, "timestep_fs": timestep_fs,
        "traj_every": traj_every, "seed": seed, "layer_ang": layer_ang})
    atoms = read_structure(structure)
    calc = load_potential(pot)
    check_coverage(calc, atoms)
    result = reactive_anneal(atoms, calc, cfg, out, progress=not _quiet(ctx))
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    p = result.profile
    _say(ctx, f"anneal done: {cfg.total_ps:g} ps; last frame {p['snapshots'][-1]['class_counts']}; products first "
              f"seen: {p['product_order_first'] or 'none'}; {out}/anneal.json")
