"""``tfbsim build ...``: crystals, slabs, amorphous LiPON, interfaces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import (
    AllowDownloadOpt,
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    OutputOpt,
    SeedOpt,
    _check_output_path,
    _check_structure_suffix,
    _floats,
    _quiet,
    _say,
    _write_json,
    potential_from_flags,
    sub_app,
)

build_app = sub_app("Build crystals, slabs, amorphous LiPON and interfaces.")


# ---- crystals & slabs (issue 3) ----------------------------------------------------------------------------
@build_app.command("list")
def build_list_cmd(ctx: typer.Context, json_out: JsonOpt = None) -> None:
    """List the literature crystals (name, space group, phase, reference)."""
    from ..structures.crystals import list_crystals
    from ..workflows.provenance import provenance

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
    from ..errors import ConfigError
    from ..structures.crystals import build_crystal, crystal_summary, detect_spacegroup
    from ..structures.io import write_structure
    from ..workflows.provenance import provenance, stamp, utc_now

    started = utc_now()
    _check_structure_suffix(output)  # before any work
    _check_output_path(json_out, option="--json")
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
        from ..workflows.md.relax import relax
        from ..workflows.potentials.factory import load_potential

        potential = potential_from_flags(model, device, dtype, allow_download)
        calc = load_potential(potential)
        result = relax(atoms, calc, fmax_ev_ang=fmax_ev_ang, max_steps=max_steps, cell=True,
                       progress=not _quiet(ctx))
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
    from ..errors import ConfigError
    from ..structures.crystal_data import CRYSTALS
    from ..structures.crystals import build_crystal
    from ..structures.io import read_structure, write_structure
    from ..structures.slabs import make_slab
    from ..workflows.provenance import provenance, stamp, utc_now

    started = utc_now()
    _check_structure_suffix(output)  # before any work
    _check_output_path(json_out, option="--json")
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
    from ..errors import ConfigError
    from ..structures.io import write_structure
    from ..workflows.protocols.lipon import make_amorphous_lipon
    from ..workflows.protocols.melt_quench import MeltQuenchConfig, resolve_melt_quench_config

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
        from ..workflows.potentials.factory import load_potential

        overrides = {"preset": quench, "seed": seed,
                     "potential": {"model": model, "device": device, "dtype": dtype, "allow_download": allow_download}}
        quench_cfg = resolve_melt_quench_config(None, yaml_path=config, overrides=overrides)
        calc = load_potential(quench_cfg.potential)
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


# ---- interfaces (issue 8) ---------------------------------------------------------------------------------
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
    from ..errors import ConfigError
    from ..interfaces.phases import DEFAULT_LIPON_COMPOSITION
    from ..structures.io import write_structure
    from ..workflows.protocols.interface_quench import make_interface
    from ..workflows.protocols.melt_quench import resolve_melt_quench_config

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
        from ..workflows.potentials.factory import load_potential

        potential = (quench_cfg.potential if quench_cfg is not None
                     else potential_from_flags(model, device, dtype, allow_download))
        calc = load_potential(potential)
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
