"""The ``tfbsim`` command line: a thin Typer layer over the library.

This module holds the plumbing (logging, exit codes, global options) and registers the command groups,
which live one module per group in :mod:`tfbsim.cli` (build, analyze, potential, train,
md/relax, run/db, demo).

Each command parses its options, loads and validates configuration, calls one library function, writes the
requested files (atomically, only after success) and prints a short summary. Heavy imports happen inside the
commands so that ``tfbsim --help`` is fast.

Conventions (all commands)
--------------------------
- Structures are written with ``-o/--output PATH`` (format from the suffix, extxyz by default).
- Machine-readable results go to ``--json PATH``; a short human summary goes to stdout.
- ``--config FILE.yaml`` where a command has many settings; CLI flags override the file; unknown keys fail.
- Exit codes: 0 ok; 2 bad input or configuration (one line ``error: ...``, nothing written); 3 simulation
  unstable (guard tripped, trajectory kept); 1 anything unexpected (a bug: traceback with ``--debug``);
  130 Ctrl-C; 128 + N when signal N stopped an MD run cleanly: **143 for SIGTERM, 138 for SIGUSR1** (what Slurm
  sends at the walltime, or with ``--signal=USR1@SECONDS``). The run then wrote a checkpoint at the step it
  reached, ``summary.json`` says ``status: interrupted``, and one stderr line says how to continue
  (``tfbsim md --restart RUN_DIR``; a campaign task resumes with ``tfbsim run``). Nothing since the signal is
  lost, and the continuation is the run that would have happened (bit-identical on the same hardware and thread
  count with a potential that keeps no state between steps, such as MACE: tested in float64 and, with the bundled
  model, in float32).
- Progress: long stages (MD runs, relaxations) log a line on ``tfbsim.progress`` at least every 30 s
  (``TFBSIM_PROGRESS_S`` changes it) and at the end, also when stderr is not a terminal; ``--quiet`` hides them.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import RunInterrupted, SimulationUnstable, TfbsimError

logger = logging.getLogger("tfbsim")


# ----------------------------------------------------------------------------------------- plumbing
class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted.

    Test runners (Typer's CliRunner, pytest) and notebooks swap ``sys.stderr``; a handler bound to the object
    of the moment would later write to a closed stream.
    """

    @property  # type: ignore[override]
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it in __init__; ignore
        pass


def configure_logging(verbosity: int = 0, *, quiet: bool = False) -> None:
    """Install one stderr handler on the ``tfbsim`` logger (CLI and notebooks; library code never does).

    Parameters
    ----------
    verbosity
        0: warnings and above (plus the progress lines of ``tfbsim.progress``), 1: info, 2+: debug.
    quiet
        Errors only (no progress lines either).
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    pkg_logger = logging.getLogger("tfbsim")
    for handler in list(pkg_logger.handlers):
        if getattr(handler, "_tfbsim", False):
            pkg_logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._tfbsim = True  # type: ignore[attr-defined]
    pkg_logger.addHandler(handler)
    pkg_logger.setLevel(level)
    # progress of long stages (tfbsim.workflows.md.progress) shows at the default verbosity
    logging.getLogger("tfbsim.progress").setLevel(logging.NOTSET if quiet else min(level, logging.INFO))
    # MDAnalysis warns on import that netCDF4 (AMBER files, unused here) is missing; not the user's concern
    logging.getLogger("MDAnalysis.coordinates.AMBER").setLevel(logging.ERROR)


class _Group(TyperGroup):
    """Root group that maps exceptions to the documented exit codes."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SimulationUnstable as exc:
            _report(ctx, exc)
            raise typer.Exit(3) from None
        except RunInterrupted as exc:  # SIGTERM/SIGUSR1: checkpoint written, exit 128 + signal
            if ctx.meta.get("tfbsim_debug"):
                traceback.print_exc()
            typer.echo(f"interrupted: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
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


# ------------------------------------------------------------------------------------------ commands
from . import analyze, build, campaign, demo, md, potential, train  # noqa: E402

app.add_typer(build.build_app, name="build")
app.add_typer(analyze.analyze_app, name="analyze")
app.add_typer(potential.potential_app, name="potential")
app.add_typer(train.train_app, name="train")
app.add_typer(campaign.db_app, name="db")
app.command("md")(md.md_cmd)
app.command("relax")(md.relax_cmd)
app.command("run")(campaign.run_cmd)
app.command("demo")(demo.demo_cmd)
from .neb import neb_cmd  # noqa: E402
app.command("neb")(neb_cmd)
from .deposit import register as _register_deposit  # noqa: E402
_register_deposit(app)


def main() -> None:  # pragma: no cover - console-script entry
    """Console-script entry point."""
    app()

