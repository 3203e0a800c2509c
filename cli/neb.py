"""``tfbsim neb``: a Li vacancy hop in a crystal by climbing-image NEB, optionally with DFT along the same path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import DeviceOpt, DtypeOpt, ModelOpt, _check_output_path, _quiet, _say, potential_from_flags


def neb_cmd(
    ctx: typer.Context,
    crystal: Annotated[str, typer.Argument(help="Catalogue crystal (li3po4 = γ-Li3PO4, li2po2n, li3n, …).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for neb.json and images.extxyz (created).")],
    model: ModelOpt = "bundled",
    vacancy: Annotated[int, typer.Option("--vacancy", help="Index (among Li) of the Li removed.")] = 0,
    neighbour: Annotated[int, typer.Option("--neighbour", help="Which Li neighbour (by distance) hops.")] = 0,
    images: Annotated[int, typer.Option("--images", help="Interior images.")] = 5,
    fmax: Annotated[float, typer.Option("--fmax", help="NEB force threshold (eV/Å).")] = 0.05,
    max_steps: Annotated[int, typer.Option("--max-steps", help="FIRE steps per stage.")] = 500,
    reference: Annotated[Optional[str], typer.Option("--reference", help="cp2k: PBE single points on the same images.")] = None,
    cp2k_config: Annotated[Optional[Path], typer.Option("--cp2k-config", help="YAML of Cp2kSettings.")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float64",
) -> None:
    """Barrier of a Li vacancy hop with a potential (and, with --reference cp2k, PBE on the same path)."""
    from ..errors import ConfigError
    from ..structures.io import write_json, write_structure
    from ..workflows.potentials.factory import load_potential
    from ..workflows.protocols.li_hop_neb import path_energies, run_neb, vacancy_hop
    from ..workflows.provenance import provenance, utc_now

    if reference not in (None, "cp2k"):
        raise ConfigError(f"--reference {reference!r}: only cp2k is supported (or leave it out)")
    _check_output_path(out, folder=True, option="--out")
    started = utc_now()
    initial, final, info = vacancy_hop(crystal, vacancy=vacancy, neighbour=neighbour)
    ref_calc = None
    if reference == "cp2k":  # validate the DFT settings before the NEB runs
        from ..workflows.config import load_config
        from ..workflows.training.cp2k import Cp2kCalculator, Cp2kSettings

        ref_calc = Cp2kCalculator(load_config(cp2k_config, Cp2kSettings))
    calc = load_potential(potential_from_flags(model, device, dtype))
    result = run_neb(initial, final, calc, n_images=images, fmax_ev_ang=fmax, max_steps=max_steps, info=info)
    record = {"crystal": crystal, "model": result.to_dict()}
    if ref_calc is not None:
        record["reference"] = {"method": ref_calc.parameters["spec"], **path_energies(result.images, ref_calc)}
        record["barrier_difference_ev"] = round(result.barrier_ev - record["reference"]["barrier_ev"], 6)
    record["provenance"] = provenance(calc=calc, started_utc=started,
                                      extra={"reference": ref_calc.parameters["settings"] if ref_calc else None})
    out.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(result.images):
        image.info.update(config_type=f"neb_{info['crystal']}", image=k, split="test",
                          source=f"{info['crystal']} Li vacancy hop {info['hop_ang']:.2f} Å, image {k}")
    write_structure(out / "images.extxyz", result.images)
    write_json(out / "neb.json", record)
    text = f"{crystal}: Li vacancy hop {info['hop_ang']:.2f} Å, barrier {result.barrier_ev:.3f} eV ({model}"
    text += ", converged)" if result.converged else ", NOT converged)"
    if ref_calc is not None:
        text += f"; {record['reference']['method']} on the same path {record['reference']['barrier_ev']:.3f} eV"
    if not _quiet(ctx):
        _say(ctx, text + f" -> {out}/neb.json")
