"""``tfbsim potential ...``: describe and evaluate potentials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    AllowDownloadOpt,
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    ModelOpt,
    _say,
    _write_json,
    potential_from_flags,
    sub_app,
)

potential_app = sub_app("Inspect and evaluate potentials.")


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
    from ..workflows.potentials.factory import potential_info
    from ..workflows.provenance import provenance

    potential = potential_from_flags(spec, device, dtype, allow_download)
    info = potential_info(potential)
    _write_json(json_out, {**info, "provenance": provenance(config=potential, extra={"command": "potential info"})})
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
    from ..structures.io import read_structure
    from ..workflows.potentials.single_point import evaluate

    potential = potential_from_flags(model, device, dtype, allow_download)
    atoms = read_structure(structure)
    result = evaluate(atoms, potential)
    _write_json(json_out, result)
    _say(
        ctx,
        f"{result['n_atoms']} atoms: E = {result['energy_ev']:.6f} eV ({result['energy_per_atom_ev']:.6f} eV/atom), "
        f"max |F| = {result['max_force_ev_ang']:.4f} eV/Å",
    )
