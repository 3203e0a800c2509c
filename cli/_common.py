"""Shared option types and helpers of the command modules (see :mod:`tfbsim.cli.app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = [
    "JsonOpt", "OutputOpt", "ModelOpt", "DeviceOpt", "DtypeOpt", "SeedOpt", "ConfigOpt", "AllowDownloadOpt",
    "PlotOpt", "_write_json", "_quiet", "_say", "_check_structure_suffix", "_check_output_path", "_floats",
    "sub_app", "FramesOpt", "DtFsOpt", "TemperatureOpt", "FitStartOpt", "FitEndOpt",
]


def sub_app(help_text: str, **kwargs) -> typer.Typer:
    """A command group (``tfbsim build``, ``tfbsim analyze`` ...)."""
    return typer.Typer(no_args_is_help=True, add_completion=False, help=help_text, **kwargs)


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


PlotOpt = Annotated[Optional[Path], typer.Option("--plot", help="Write the figure to this PNG file.")]
# Trajectory-analysis options shared by `analyze diffusion`, `analyze transport`, `analyze structure`, …
FramesOpt = Annotated[Optional[str], typer.Option("--frames", help="Frame selection START:STOP:STEP.")]
DtFsOpt = Annotated[
    Optional[float], typer.Option("--dt-fs", help="Time between stored frames (fs), if the file has no times.")
]
TemperatureOpt = Annotated[
    Optional[float], typer.Option("--temperature-k", help="Temperature (K); default from H5MD metadata.")
]
FitStartOpt = Annotated[
    Optional[float], typer.Option("--fit-start-ps", help="Fit window start (ps); default 10 % of the run.")
]
FitEndOpt = Annotated[Optional[float], typer.Option("--fit-end-ps", help="Fit window end (ps); default 50 % of the run.")]


def _write_json(path: Path | None, data: dict) -> None:
    """Write a command's ``--json`` record (through the one writer, which adds provenance when missing)."""
    if path is not None:
        from ..structures.io import write_json

        write_json(path, data)


def _quiet(ctx: typer.Context) -> bool:
    return bool(ctx.find_root().meta.get("tfbsim_quiet"))


def _say(ctx: typer.Context, text: str) -> None:
    """Print the human summary unless --quiet."""
    if not _quiet(ctx):
        typer.echo(text)


def _check_output_path(path: Path | None, *, folder: bool = False, option: str = "-o") -> None:
    """Fail before any work when ``path`` cannot be created: a file where a folder must be, or the reverse.

    Parameters
    ----------
    path
        The output (``None``: nothing to check).
    folder
        The output is a folder (a run directory), so an existing *file* of that name is refused.
    option
        The option's name for the message.
    """
    from ..errors import ConfigError

    if path is None:
        return
    path = Path(path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {path}: {parent} is a file, not a folder; choose another output path")
            break
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is an existing file; {option} names a run directory (a folder): "
                          "choose a new name")
    if not folder and path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")


def _check_structure_suffix(path: Path) -> None:
    """Fail before any work when ASE cannot write the output's format, or the path cannot be created."""
    from ase.io.formats import filetype, ioformats

    from ..errors import ConfigError

    _check_output_path(path)
    if path.suffix.lower() in {"", ".xyz", ".extxyz"}:
        return
    try:
        fmt = filetype(str(path), read=False)
        if not ioformats[fmt].can_write:
            raise KeyError(fmt)
    except Exception:
        raise ConfigError(f"cannot write {path.name}: use a suffix ASE writes (e.g. .extxyz, .cif, .vasp)") from None


def _floats(text: str | None, what: str, *, sep: str = ",") -> list[float] | None:
    """``"12,20,15"`` -> [12.0, 20.0, 15.0]; a clear ConfigError otherwise."""
    from ..errors import ConfigError

    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(sep) if v != ""]
    except ValueError:
        raise ConfigError(f"{what} must be numbers separated by '{sep}', got {text!r}") from None


def potential_from_flags(model: str | Path, device: str, dtype: str, allow_download: bool = False):
    """The :class:`~tfbsim.workflows.potentials.config.PotentialConfig` of a command's potential flags
    (``--model/--device/--dtype/--allow-download``); a bad value is one ``error:`` line naming the flag value."""
    from ..workflows.potentials.config import as_potential_config

    return as_potential_config(
        {"model": str(model), "device": device, "dtype": dtype, "allow_download": allow_download},
        source="command-line options",
    )
