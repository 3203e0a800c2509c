"""What runs on the workers: one plain function per preparation unit and per task.

:func:`run_campaign_task` and :func:`run_campaign_prepare` take a JSON spec (paths and settings, built by
:func:`tfbsim.workflows.campaigns.tasks.expand_campaign`) and return a JSON summary, so they run identically
in a local worker, on a Slurm node, or called directly in a notebook. Both are idempotent: completed stages
are reused and every MD stage follows :func:`tfbsim.workflows.md.resume.start_or_resume` (an interrupted stage
continues from its checkpoint, one that died before its first checkpoint starts again, a changed config is
refused), and a completed task whose analysis settings changed only re-runs the analyses. Errors do not
escape: the returned summary says ``completed``, ``unstable`` (a guard tripped) or ``failed`` with a one-line
``reason`` (traceback in ``error.log``). The one exception is SIGTERM/SIGUSR1 (a Slurm walltime):
:class:`~tfbsim.errors.RunInterrupted` is re-raised after the stage's checkpoint and a summary saying
``interrupted`` are written, so the task counts as unfinished and the next ``tfbsim run`` resumes it.

Only one process works in a task folder at a time (:func:`task_lock`, an advisory ``flock`` released when the
holder dies): a worker left over from a killed driver finishes or dies before the resumed task continues.
The workers never touch the results database; the driver writes it from the returned summaries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ase import Atoms

from ...errors import SimulationUnstable, TfbsimError
from ...structures.io import read_json, read_structure, write_json, write_structure
from ..provenance import provenance, utc_now
from .locks import file_lock

__all__ = ["run_campaign_task", "run_campaign_prepare", "run_stages", "task_lock", "run_task_analyses"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def task_lock(folder: str | os.PathLike, *, poll_s: float = 0.5, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of a task folder (``.lock``); wait while another process holds it.

    An advisory ``flock`` (:func:`~tfbsim.workflows.campaigns.locks.file_lock`): the kernel releases it when the
    holder exits or is killed, so a stale lock cannot block a resumed campaign.

    Raises
    ------
    TimeoutError
        ``timeout_s`` passed without getting the lock.
    """
    with file_lock(Path(folder) / ".lock", poll_s=poll_s, timeout_s=timeout_s):
        yield


def _torch_threads(threads: int | None):  # noqa: ANN202 - the protocols' context manager
    """Set torch's intra-op threads for the duration of a task (this worker process only), then restore."""
    from ..protocols.threads import torch_threads

    return torch_threads(threads)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _load_calc(potential: dict) -> Any:
    """The task's calculator from its spec's ``potential`` (a dict, validated into a PotentialConfig)."""
    from ..potentials.config import as_potential_config
    from ..potentials.factory import load_potential

    return load_potential(as_potential_config(potential, source="the task's potential"))


# ----------------------------------------------------------------------------------------------- stages
def _md_stage(atoms: Atoms, calc: Any, config: dict, sdir: Path,
              until_diffusive: dict | None = None) -> tuple[Atoms, dict]:
    """Start, resume or reuse the stage's run directory (and with ``until_diffusive`` extend it).

    The rules of :func:`~tfbsim.workflows.md.resume.start_or_resume`: a changed config raises ConfigError, an
    unstable stage raises SimulationUnstable.
    """
    from ..md.resume import RunState, inspect_run_dir, start_or_resume

    state = inspect_run_dir(sdir)
    if state is RunState.CHECKPOINT:
        logger.info("continuing %s from its checkpoint", sdir)
    if until_diffusive is not None:
        return _md_stage_until_diffusive(atoms, calc, config, sdir, until_diffusive)
    result = start_or_resume(atoms, calc, config, sdir)
    if state is RunState.COMPLETED:  # atoms: the checkpoint's exact final state (float64, with momenta)
        return result.atoms, {"status": "completed", "reused": True, **_md_record(result.summary)}
    record = {"status": "completed", "resumed": True} if state is RunState.CHECKPOINT else {"status": "completed"}
    return result.atoms.copy(), {**record, **_md_record(result.summary)}


def _md_stage_until_diffusive(atoms: Atoms, calc: Any, config: dict, sdir: Path, until: dict) -> tuple[Atoms, dict]:
    """The stage in chunks (doubling, resumable) until the species diffuses or ``max_production_ps`` is reached."""
    import math

    from ..md.config import MDConfig
    from ..protocols.extension import diffusive_verdict, run_until_converged

    md_config = MDConfig.model_validate(config)
    spec = {k: v for k, v in until.items() if k not in ("max_production_ps", "growth")}
    cap = int(math.ceil(until["max_production_ps"] * 1000.0 / md_config.timestep_fs))
    result, ext = run_until_converged(
        atoms, calc, md_config, sdir, lambda d: diffusive_verdict(d / "traj.h5md", **spec), max_steps=cap,
        growth=until.get("growth", 2.0), what=f"{spec.get('species', 'Li')} diffusive")
    extension = {
        "diffusive": ext["converged"], "stopped_by": ext["stopped_by"], "max_production_ps": until["max_production_ps"],
        "time_ps": ext["time_ps"], "verdict": ext["verdict"],
        "chunks": [{"time_ps": c["time_ps"], "diffusive": c["verdict"].get("diffusive"),
                    "loglog_slope": c["verdict"].get("loglog_slope"), "msd_end_ang2": c["verdict"].get("msd_end_ang2"),
                    "reason": c["verdict"].get("reason")} for c in ext["chunks"]],
    }
    if ext["stopped_by"] == "cap":
        extension["note"] = (f"the cap of {until['max_production_ps']:g} ps stopped the run before "
                             f"{spec.get('species', 'Li')} was diffusive ({ext['verdict'].get('reason')})")
    return result.atoms.copy(), {"status": "completed", **_md_record(result.summary), "extension": extension}


def _md_record(summary: dict) -> dict:
    keys = ("steps_done", "time_ps", "wall_s", "steps_per_s", "temperature_mean_k", "temperature_std_k",
            "etot_mean_ev", "etot_std_ev", "restarts", "n_frames", "ensemble")
    return {k: summary.get(k) for k in keys}


def _relax_stage(atoms: Atoms, calc: Any, config: dict, sdir: Path) -> tuple[Atoms, dict]:
    import numpy as np

    from ..md.relax import relax

    done = sdir / "summary.json"
    if done.exists() and (sdir / "final.extxyz").exists():
        record = read_json(done)
        if record.get("status") == "completed":
            return read_structure(sdir / "final.extxyz"), {**record, "reused": True}
    start = time.perf_counter()
    result = relax(atoms, calc, **config)
    out = result.atoms.copy()
    out.calc = None
    out.set_momenta(np.zeros((len(out), 3)), apply_constraint=False)
    record = {"status": "completed", "steps": result.steps, "converged": result.converged,
              "energy_initial_ev": result.energy_initial_ev, "energy_final_ev": result.energy_final_ev,
              "max_force_ev_ang": result.max_force_ev_ang, "wall_s": time.perf_counter() - start}
    sdir.mkdir(parents=True, exist_ok=True)
    write_structure(sdir / "final.extxyz", out)
    write_json(done, record)  # last: marks the stage as done
    # hand on what a re-run reuses (the file's rounding), so a later stage that checks its input (a deposition's
    # substrate hash) sees the same structure in both sessions
    return read_structure(sdir / "final.extxyz"), record


def _melt_quench_stage(atoms: Atoms, calc: Any, config: dict, sdir: Path) -> tuple[Atoms, dict]:
    from ..protocols.melt_quench import MeltQuenchConfig, melt_quench

    done = sdir / "summary.json"
    if done.exists() and (sdir / "final.extxyz").exists() and read_json(done).get("status") == "completed":
        summary = read_json(done)
        final = read_structure(sdir / "final.extxyz")
    else:
        summary = melt_quench(atoms, calc, MeltQuenchConfig.model_validate(config), sdir).summary
        final = read_structure(sdir / "final.extxyz")  # as a re-run reuses it (see _relax_stage)
    keys = ("density_initial_g_cm3", "density_final_g_cm3", "energy_final_ev", "wall_s", "total_md_ps",
            "speciation_steady_before_quench")
    record = {"status": "completed", **{k: summary.get(k) for k in keys}}
    tg = summary.get("glass_transition")
    if tg is not None:
        record["glass_transition"] = {k: tg.get(k) for k in ("tg_k", "tg_stderr_k", "tg_source")}
    return final, record


def _deposit_stage(atoms: Atoms, calc: Any, config: dict, sdir: Path) -> tuple[Atoms, dict]:
    from .deposition_stages import deposit_stage

    return deposit_stage(atoms, calc, config, sdir)


def _anneal_stage(atoms: Atoms, calc: Any, config: dict, sdir: Path) -> tuple[Atoms, dict]:
    from .deposition_stages import anneal_stage

    return anneal_stage(atoms, calc, config, sdir)


_STAGES = {"md": _md_stage, "relax": _relax_stage, "melt_quench": _melt_quench_stage, "deposit": _deposit_stage,
           "anneal": _anneal_stage}


def run_stages(atoms: Atoms, calc: Any, stages: list[dict], folder: str | os.PathLike) -> tuple[Atoms, list[dict]]:
    """Run (or reuse, or resume) ``stages`` in ``folder/<k>_<name>``; returns the final structure and records.

    Raises
    ------
    SimulationUnstable
        An MD guard tripped (the stage folder keeps the trajectory and says ``unstable``).
    """
    folder = Path(folder)
    records = []
    current = atoms.copy()
    for k, stage in enumerate(stages):
        sdir = folder / f"{k + 1}_{stage['name']}"
        current.calc = None
        extra = {"until_diffusive": stage["until_diffusive"]} if stage.get("until_diffusive") else {}
        current, record = _STAGES[stage["kind"]](current, calc, stage["config"], sdir, **extra)
        records.append({"name": stage["name"], "kind": stage["kind"], "path": sdir.name, **record})
        logger.info("stage %s done (%s)", sdir, "reused" if record.get("reused") else record.get("status"))
    current.calc = None
    return current, records


# --------------------------------------------------------------------------------------------- analyses
def run_task_analyses(spec: dict, folder: str | os.PathLike) -> tuple[dict, list[str]]:
    """The per-task analyses of ``spec['analyses']`` on the task's stage trajectories.

    ``spec['analyses']`` holds the JSON of the typed specs
    (:class:`~tfbsim.workflows.campaigns.config.DiffusionSpec` ...); they are re-validated here and each
    builds its analysis (``spec.build(trajectory).run()``).
    Writes ``analysis/diffusion.json`` (+ ``msd.png``), ``analysis/coordination.json`` and
    ``analysis/interphase.json``; returns the records
    and a list of one-line errors (an analysis that fails does not fail the task).
    """
    folder = Path(folder)
    out_dir = folder / "analysis"
    names = [s["name"] for s in spec["stages"]]
    results: dict[str, Any] = {}
    errors: list[str] = []

    def traj(stage: str) -> Path:
        k = names.index(stage)
        return folder / f"{k + 1}_{stage}" / "traj.h5md"

    from .config import task_analysis_specs

    try:
        specs = task_analysis_specs(spec.get("analyses", {}))
    except Exception as exc:  # a task file from another tfbsim version: report, keep the simulation
        return results, [f"analyses: {_one_line(exc)}"]
    for key, settings in specs.items():
        try:
            analysis = settings.build(traj(settings.stage)).run()
            record = analysis.results.to_dict()
            if key == "diffusion":
                record["D_ci95_cm2_s"] = list(analysis.results.fit.D_ci95_cm2_s)
            record["stage"] = settings.stage
            write_json(out_dir / f"{key}.json", record)
            if key == "diffusion":
                from ...analysis.plots import plot_msd

                plot_msd(analysis.results, out_dir / "msd.png")
            results[key] = record
        except Exception as exc:  # an analysis error is reported, the simulation stays valid
            errors.append(f"{key}: {_one_line(exc)}")
    return results, errors


# ------------------------------------------------------------------------------------------- entry points
def _previous_stage_records(folder: Path) -> dict:
    path = folder / "summary.json"
    try:
        return read_json(path) if path.exists() else {}
    except Exception:  # a summary cut by a kill: start from scratch for the bookkeeping
        return {}


def _run_unit(spec: dict, body) -> dict:  # noqa: ANN001 - internal callback
    """Run ``body`` in the task folder under its lock and write the unit's ``summary.json``; returns it.

    A stage stopped by SIGTERM/SIGUSR1 (:class:`~tfbsim.errors.RunInterrupted`: its checkpoint is written) leaves
    the unit ``interrupted`` (not failed: the driver's next session resumes it from the checkpoint) and the
    exception is raised again after the summary is written, so that the driver sees the unit did not finish and
    the worker process stops as the signal asked.
    """
    from ...errors import RunInterrupted
    from ..md.signals import signal_name

    folder = Path(spec["dir"])
    with task_lock(folder), _torch_threads(spec.get("threads_per_task")):
        previous = _previous_stage_records(folder)
        summary: dict[str, Any] = {
            "status": "running", "kind": spec["kind"], "campaign": spec.get("campaign"),
            "key": spec.get("task_id") or spec.get("key"), "spec_hash": spec["spec_hash"],
            "analysis_hash": spec.get("analysis_hash"), "session": spec.get("session"),
            "host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "sessions": int(previous.get("sessions", 0)) + 1,
            "started_utc": utc_now(),
        }
        write_json(folder / "summary.json", summary)
        t0 = time.perf_counter()
        calc = None
        interrupted: RunInterrupted | None = None
        try:
            calc = _load_calc(spec["potential"])
            summary["model_sha256"] = (getattr(calc, "parameters", {}) or {}).get("sha256")
            body(spec, folder, calc, summary)
            summary["status"] = "completed"
        except SimulationUnstable as exc:
            summary.update(status="unstable", reason=_one_line(exc), diagnostic=getattr(exc, "diagnostic", None))
        except RunInterrupted as exc:
            summary.update(status="interrupted", reason=_one_line(exc), signal=signal_name(exc.signum))
            interrupted = exc
            logger.warning("%s interrupted by %s; the next `tfbsim run` resumes it from its checkpoint", folder,
                           signal_name(exc.signum))
        except Exception as exc:
            reason = _one_line(exc)
            summary.update(status="failed", reason=reason)
            (folder / "error.log").write_text(traceback.format_exc())
            if not isinstance(exc, TfbsimError):
                logger.error("%s failed: %s", folder, reason)
        summary["wall_s"] = float(previous.get("wall_s", 0.0) or 0.0) + time.perf_counter() - t0
        summary["provenance"] = provenance(calc=calc, started_utc=previous.get("started_utc", summary["started_utc"]),
                                           extra={"workflow": f"tfbsim.workflows.campaigns.worker ({spec['kind']})"})
        write_json(folder / "summary.json", summary)
        if interrupted is not None:
            raise interrupted
        return summary


def _tg_check(spec: dict, atoms: Atoms) -> dict | None:
    """The task temperature against the glass transition (the spec's ``tg_k`` or the glass's cooling-curve Tg)."""
    settings = spec.get("tg_check")
    if settings is None:
        return None
    from ..protocols.glass_checks import check_temperature_window

    tg, source = settings.get("tg_k"), "tg_check.tg_k"
    if tg is None:
        info = atoms.info.get("melt_quench")
        tg = ((info or {}).get("glass_transition") or {}).get("tg_k") if isinstance(info, dict) else None
        source = "melt-quench cooling curve" if tg is not None else None
    check = check_temperature_window([spec["temperature_k"]], tg, margin_k=settings.get("margin_k", 100.0))
    check = {"tg_source": source, "below_tg_margin": check["ok"] if tg is not None else None, **check}
    if tg is not None and not check["ok"]:
        logger.warning("%s: %s", spec.get("task_id"), check["message"])
    return check


def _task_body(spec: dict, folder: Path, calc: Any, summary: dict) -> None:
    final_path = folder / "final.extxyz"
    atoms = read_structure(spec["input"])
    tg_check = _tg_check(spec, atoms)
    if tg_check is not None:
        summary["tg_check"] = tg_check
    final, records = run_stages(atoms, calc, spec["stages"], folder)
    summary["stages"] = records
    extended = {r["name"]: r["extension"] for r in records if r.get("extension")}
    if extended:
        summary["extension"] = extended
        summary["diffusive"] = all(e["diffusive"] for e in extended.values())
    final.info.update(campaign=spec["campaign"], system=spec["system"], temperature_k=spec["temperature_k"],
                      replica=spec["replica"], task_id=spec["task_id"])
    write_structure(final_path, final)
    analyses, errors = run_task_analyses(spec, folder)
    summary["analyses"] = {k: f"analysis/{k}.json" for k in analyses}
    summary["analysis_errors"] = errors
    d = analyses.get("diffusion")
    if d:
        summary.update({k: d.get(k) for k in ("D_cm2_s", "D_stderr_cm2_s", "sigma_ne_S_cm", "sigma_ne_stderr_S_cm",
                                             "species", "n_frames")})
    md = [r for r in records if r["kind"] == "md"]
    if md:
        summary["temperature_mean_k"] = md[-1].get("temperature_mean_k")
        summary["steps"] = sum(int(r.get("steps_done") or 0) for r in md)
        summary["time_ps"] = sum(float(r.get("time_ps") or 0.0) for r in md)


def _prepare_body(spec: dict, folder: Path, calc: Any, summary: dict) -> None:
    atoms = read_structure(spec["input"])
    final, records = run_stages(atoms, calc, spec["stages"], folder)
    summary["stages"] = records
    tg = [r["glass_transition"] for r in records if r.get("glass_transition")]
    if tg:
        summary["glass_transition"] = tg[-1]
    write_structure(folder / "final.extxyz", final)


def run_campaign_task(spec: dict, *dependencies: Any) -> dict:
    """Run one campaign task (stages, then per-task analyses) in ``spec['dir']``; never raises for its own errors.

    Parameters
    ----------
    spec
        A :attr:`tfbsim.workflows.campaigns.tasks.Task.spec` (plus ``session`` and ``threads_per_task``).
    dependencies
        Summaries of the preparation this task starts from (Parsl passes them when they are done); a
        preparation that did not complete fails the task with its reason.

    Returns
    -------
    dict
        The task's ``summary.json``: ``status`` (completed|unstable|failed), ``reason``, stage records, D and
        σ of the diffusion analysis, ``model_sha256``, ``wall_s``.
    """
    for dep in dependencies:
        if isinstance(dep, dict) and dep.get("status") != "completed":
            folder = Path(spec["dir"])
            folder.mkdir(parents=True, exist_ok=True)
            summary = {"status": "failed", "kind": "task", "key": spec["task_id"], "spec_hash": spec["spec_hash"],
                       "reason": f"preparation {dep.get('key')} {dep.get('status')}: {dep.get('reason', '')}".strip(),
                       "session": spec.get("session")}
            with task_lock(folder):
                write_json(folder / "summary.json", summary)
            return summary
    return _run_unit(spec, _task_body)


def run_campaign_prepare(spec: dict) -> dict:
    """Run the ``prepare`` stages of one structure in ``spec['dir']`` (see :func:`run_campaign_task`)."""
    return _run_unit(spec, _prepare_body)
