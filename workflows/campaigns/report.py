"""End of a campaign: per-system Arrhenius fits, the summary table (CSV + Markdown) and plots.

Written into the campaign directory (atomically, after the tasks):

``summary.csv``        one row per task: system, T, replica, status, D ± stderr, σ_NE ± stderr, <T>, steps,
                       simulated time, wall time, reason
``summary.md``         the same table, the Arrhenius table (Ea ± stderr, D and σ at the target temperature
                       with 95 % intervals, warnings) and the failures with their one-line reasons
``arrhenius.json``     per system: the fit (``ArrheniusFit.to_dict()``: Ea ± stderr and 95 % interval, σ(T₀)
                       with its interval, ``temperatures_used_k``, warnings) or why there is none (``error``),
                       and always ``temperatures``: every task of the system with its ``status`` — ``fitted``,
                       ``excluded_network_flows``, ``bound_not_diffusive`` (D is an upper bound), ``failed``,
                       ``unstable`` or ``not_finished`` — and the ``reason``; ``unfiltered`` holds the fit of every
                       completed point (trends only) when some were left out
``plots/``             ``arrhenius_<system>.png`` per system (fit line where fitted, else points + status), ``arrhenius_all.png``
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path
from typing import Any

from ...structures.io import atomic_path, write_json

__all__ = ["TASK_COLUMNS", "task_table_row", "fit_systems", "write_report"]

logger = logging.getLogger(__name__)

#: Columns of ``summary.csv``.
TASK_COLUMNS = ("task_id", "system", "temperature_k", "replica", "status", "D_cm2_s", "D_stderr_cm2_s",
                "sigma_ne_S_cm", "sigma_ne_stderr_S_cm", "temperature_mean_k", "steps", "time_ps", "wall_s", "reason")


def task_table_row(task_id: str, system: str, temperature_k: float, replica: int, summary: dict | None) -> dict:
    """One row of the task table from a task's ``summary.json`` (``pending`` when it never ran)."""
    summary = summary or {}
    row = {"task_id": task_id, "system": system, "temperature_k": temperature_k, "replica": replica,
           "status": summary.get("status", "pending")}
    for key in TASK_COLUMNS[5:]:
        row[key] = summary.get(key)
    if summary.get("analysis_errors"):
        row["reason"] = "; ".join(filter(None, [row.get("reason"), *summary["analysis_errors"]]))
    return row


def _match_rows(system: str, records: list[dict], rows: list[dict] | None) -> list[tuple[dict | None, dict | None]]:
    """Pair each task row of ``system`` with its diffusion record (by ``task_id`` when the record has one, else
    in task order at the same temperature); records without a row come last with ``None``."""
    mine = [r for r in (rows or []) if r.get("system") == system]
    pending = list(records)
    pairs: list[tuple[dict | None, dict | None]] = []
    for row in mine:
        rec = next((r for r in pending if r.get("task_id") == row.get("task_id")), None)
        if rec is None and row.get("status") == "completed" and pending and pending[0].get("task_id") is None:
            if float(pending[0].get("temperature_k") or -1) == float(row["temperature_k"]):
                rec = pending[0]
        if rec is not None:
            pending.remove(rec)
        pairs.append((row, rec))
    return pairs + [(None, rec) for rec in pending]


def _point_entry(row: dict | None, rec: dict | None, status: dict | None) -> dict:
    """One line of ``arrhenius.json``'s ``temperatures``: the task, its status and the reason."""
    entry = {"task_id": None if row is None else row.get("task_id"),
             "temperature_k": float(row["temperature_k"]) if row is not None else float(rec["temperature_k"]),
             "replica": None if row is None else row.get("replica")}
    if status is not None:
        entry.update({k: v for k, v in status.items() if k != "temperature_k"})
        return entry
    task_status = "pending" if row is None else row.get("status", "pending")
    if task_status in ("failed", "unstable"):
        entry.update(status=task_status, reason=row.get("reason") or task_status)
    elif task_status == "completed":
        entry.update(status="failed", reason="no diffusion result: " + (row.get("reason") or "analysis missing"))
    else:
        entry.update(status="not_finished", reason=f"task {task_status}: run the campaign again to finish it")
    return entry


def fit_systems(diffusion: dict[str, list[dict]], target_temperature_k: float, rows: list[dict] | None = None, *,
                exclude_flagged: bool = True, diffusive: Any = None, network: Any = None) -> dict[str, dict]:
    """Arrhenius fit per system from its tasks' diffusion records, with every temperature's status.

    Parameters
    ----------
    diffusion
        ``{system: [diffusion.json records of completed tasks]}``.
    target_temperature_k
        Temperature of the extrapolation (K).
    rows
        The task table (:func:`task_table_row`): failed, unstable and unfinished tasks are listed from it.
    exclude_flagged
        Leave network-flowing and non-diffusive points out of the fit (default).
    diffusive, network
        :class:`~tfbsim.analysis.diffusion_checks.DiffusiveCriteria` / ``NetworkCriteria`` (default thresholds).

    Returns
    -------
    dict
        Per system: the fit record (or ``error``), ``temperatures`` (every task: ``status``, ``reason`` and
        numbers), ``n_points`` (fitted), ``n_points_total``, ``unfiltered`` (when points were left out).
    """
    from ...analysis.diffusion_checks import classify_diffusion_record
    from ...analysis.transport import arrhenius_from_results
    from ...errors import AnalysisError

    out: dict[str, dict] = {}
    systems = sorted(set(diffusion) | {r["system"] for r in rows or []})
    for system in systems:
        records = diffusion.get(system, [])
        entries = []
        for row, rec in _match_rows(system, records, rows):
            status = None if rec is None else classify_diffusion_record(rec, diffusive=diffusive, network=network)
            entries.append(_point_entry(row, rec, status))
        entries.sort(key=lambda e: (e["temperature_k"], str(e.get("replica"))))
        summary = {"temperatures": entries, "n_points_total": len(entries),
                   "excluded": {st: sorted({e["temperature_k"] for e in entries if e["status"] == st})
                                for st in sorted({e["status"] for e in entries} - {"fitted"})}}
        temps = sorted({float(r["temperature_k"]) for r in records})
        if len(temps) < 2:
            out[system] = {"error": f"diffusion results at {len(temps)} temperature(s); an Arrhenius fit needs two or "
                                    "more", **summary}
            continue
        try:
            fit = arrhenius_from_results(records, target_temperature_k=target_temperature_k,
                                         exclude_flagged=exclude_flagged, diffusive=diffusive, network=network)
        except AnalysisError as exc:
            out[system] = {"error": str(exc), **summary, "unfiltered": _unfiltered(records, target_temperature_k)}
            continue
        record = fit.to_dict()
        record.pop("points_status", None)  # the same information, per task, is in "temperatures"
        record.update(
            target_temperature_k=fit.target_temperature_k, D_target_cm2_s=fit.D_target_cm2_s,
            D_target_ci95_cm2_s=list(fit.D_target_ci95_cm2_s), chi2_reduced=fit.chi2_reduced,
            n_points=len(fit.temperature_k), warnings=list(fit.warnings), _fit=fit, **summary,
        )
        if len(fit.temperature_k) < len(records):
            record["unfiltered"] = _unfiltered(records, target_temperature_k)
        out[system] = record
    return out


def _unfiltered(records: list[dict], target_temperature_k: float) -> dict | None:
    """Fit of every completed point, flagged or not: for trends only (never the headline number)."""
    from ...analysis.transport import arrhenius_from_results
    from ...errors import AnalysisError

    try:
        fit = arrhenius_from_results(records, target_temperature_k=target_temperature_k, exclude_flagged=False)
    except AnalysisError as exc:
        return {"error": str(exc)}
    return {"Ea_eV": fit.Ea_eV, "Ea_stderr_eV": fit.Ea_stderr_eV, "sigma_300K_S_cm": fit.sigma_target_S_cm,
            "temperatures_used_k": sorted({float(t) for t in fit.temperature_k}),
            "note": "every completed point, including network-flowing and non-diffusive ones: trends only"}


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _pm(value: Any, err: Any) -> str:
    if value is None:
        return "–"
    return f"{_fmt(value)} ± {_fmt(err, '.2g')}"


def _markdown(name: str, description: str, rows: list[dict], fits: dict[str, dict], counts: dict[str, int]) -> str:
    lines = [f"# Campaign {name}", ""]
    if description:
        lines += [description, ""]
    lines += [", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no tasks", "", "## Tasks", "",
              "| task | T (K) | status | D (cm²/s) | σ_NE (S/cm) | ⟨T⟩ (K) | steps | t (ps) | wall (s) |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['task_id']} | {r['temperature_k']:g} | {r['status']} | {_pm(r['D_cm2_s'], r['D_stderr_cm2_s'])} | "
            f"{_pm(r['sigma_ne_S_cm'], r['sigma_ne_stderr_S_cm'])} | {_fmt(r['temperature_mean_k'], '.0f')} | "
            f"{_fmt(r['steps'])} | {_fmt(r['time_ps'], '.3g')} | {_fmt(r['wall_s'], '.0f')} |"
        )
    if fits:
        lines += ["", "## Arrhenius fits", "",
                  "| system | Ea (eV) | D(T₀) (cm²/s) [95 %] | σ(T₀) (S/cm) [95 %] | points | notes |",
                  "|---|---:|---:|---:|---:|---|"]
        for system, f in fits.items():
            if "error" in f:
                lines.append(f"| {system} | – | – | – | – | {f['error']} |")
                continue
            d_ci = f["D_target_ci95_cm2_s"]
            s_ci = f.get("sigma_300K_ci95_S_cm")
            sigma = "–" if f.get("sigma_300K_S_cm") is None else (
                f"{_fmt(f['sigma_300K_S_cm'])} [{_fmt(s_ci[0])}, {_fmt(s_ci[1])}]")
            lines.append(
                f"| {system} | {f['Ea_eV']:.3f} ± {f['Ea_stderr_eV']:.3f} | {_fmt(f['D_target_cm2_s'])} "
                f"[{_fmt(d_ci[0])}, {_fmt(d_ci[1])}] | {sigma} | {f['n_points']} | {'; '.join(f['warnings'])} |"
            )
        lines += ["", "Points per system (status, reason): only `fitted` points enter a fit; `bound_not_diffusive` D "
                      "values are upper bounds.", ""]
        for system, f in fits.items():
            for e in f.get("temperatures", []):
                lines.append(f"- {system} {e['temperature_k']:g} K"
                             + ("" if e.get("replica") is None else f" r{e['replica']}")
                             + f": **{e['status']}** — {e.get('reason') or ''}")
        t0 = next((f["target_temperature_k"] for f in fits.values() if "target_temperature_k" in f), None)
        if t0 is not None:
            lines += ["", f"T₀ = {t0:g} K (extrapolated along the fitted line)."]
    failed = [r for r in rows if r["status"] not in ("completed", "pending") or r.get("reason")]
    if failed:
        lines += ["", "## Problems", ""] + [f"- {r['task_id']}: {r['status']}: {r.get('reason') or ''}" for r in failed]
    return "\n".join(lines) + "\n"


def write_report(directory: str | Path, *, name: str, description: str, rows: list[dict],
                 diffusion: dict[str, list[dict]], arrhenius_target_k: float | None, exclude_flagged: bool = True,
                 diffusive: Any = None, network: Any = None) -> dict[str, Any]:
    """Write ``summary.csv``, ``summary.md``, ``arrhenius.json`` and the plots; returns the Arrhenius records.

    Parameters
    ----------
    directory
        Campaign directory.
    rows
        :func:`task_table_row` rows.
    diffusion
        Diffusion records (``analysis/diffusion.json``) of completed tasks by system.
    arrhenius_target_k
        Temperature of the Arrhenius extrapolation (K), or ``None`` to skip the fits.
    exclude_flagged, diffusive, network
        Passed to :func:`fit_systems` (which points are fitted, thresholds of the trust checks).
    """
    from ...analysis.plots import plot_arrhenius
    from ...analysis.plots_campaign import plot_campaign_arrhenius

    directory = Path(directory)
    fits = fit_systems(diffusion, arrhenius_target_k, rows, exclude_flagged=exclude_flagged, diffusive=diffusive,
                       network=network) if arrhenius_target_k is not None else {}
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TASK_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r[k] for k in TASK_COLUMNS})
    with atomic_path(directory / "summary.csv") as tmp:
        tmp.write_text(buffer.getvalue())
    with atomic_path(directory / "summary.md") as tmp:
        tmp.write_text(_markdown(name, description, rows, fits, counts))
    plots = directory / "plots"
    plots.mkdir(exist_ok=True)
    points = {s: [e for e in f.get("temperatures", []) if e.get("D_cm2_s") is not None] for s, f in fits.items()}
    for system, f in fits.items():
        if "_fit" in f:
            plot_arrhenius(f["_fit"], plots / f"arrhenius_{system}.png")
        elif points.get(system):  # no fit (e.g. every point a bound): the points with their status, no line
            plot_campaign_arrhenius({system: points[system]}, {}, plots / f"arrhenius_{system}.png")
    if not fits:
        points = {s: [{k: r.get(k) for k in ("temperature_k", "D_cm2_s", "D_stderr_cm2_s")} for r in recs]
                  for s, recs in diffusion.items()}
    if any(points.values()):
        plot_campaign_arrhenius(points, {s: f for s, f in fits.items() if "_fit" in f}, plots / "arrhenius_all.png")
    public = {s: {k: v for k, v in f.items() if k != "_fit"} for s, f in fits.items()}
    write_json(directory / "arrhenius.json", public)
    return public
