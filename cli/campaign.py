"""``tfbsim run`` (campaigns) and ``tfbsim db ...`` (results database)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import JsonOpt, _say, _write_json, sub_app

db_app = sub_app("Query a campaign's results database.")


# ---- campaigns & results database (issue 10) ---------------------------------------------------------------
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
    from ..workflows.campaigns.driver import campaign_status, run_campaign

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


def _db_provenance(target: str, query: str | None, **extra: str) -> dict:
    """The provenance of a database read-out: the database and the selection, besides code and versions."""
    from ..workflows.provenance import provenance

    return provenance(extra={"input": str(target), "query": query, **extra})


DbTarget = Annotated[str, typer.Argument(help="Campaign directory, results .db file or ASE-db URL.")]


@db_app.command("list")
def db_list_cmd(
    ctx: typer.Context,
    target: DbTarget,
    query: Annotated[Optional[str], typer.Option("--query", help="ASE-db selection, e.g. 'status=completed,temperature_k>700'.")] = None,
    json_out: JsonOpt = None,
) -> None:
    """One line per task: id, task, formula, T, status, D and σ."""
    from ..workflows.campaigns.resultsdb import ResultsDB

    rows = ResultsDB(target).rows(query)
    _write_json(json_out, {"rows": rows, "provenance": _db_provenance(target, query)})

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
    from ..workflows.campaigns.resultsdb import ResultsDB

    record, data, atoms = ResultsDB(target).get(task)
    _write_json(json_out, {"row": record, "data": data, "provenance": _db_provenance(target, None, task=task)})
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
    from ..errors import ConfigError
    from ..structures.io import atomic_path, write_json
    from ..workflows.campaigns.resultsdb import ResultsDB

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
        write_json(output, {"rows": records, "provenance": _db_provenance(target, query)})
        n = len(records)
    _say(ctx, f"{n} row(s) -> {output}")
