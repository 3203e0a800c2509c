"""Campaigns: structures × temperatures × replicas of MD on local cores or a Slurm cluster (Parsl).

:func:`run_campaign` is ``tfbsim run CAMPAIGN.yaml``. It validates everything first (the campaign file,
the executor, the Slurm site and cluster, the campaign directory), then

1. builds or copies the structures into ``structures/``;
2. submits one Parsl ``python_app`` per preparation unit and per task — each calls one plain function
   (:mod:`tfbsim.workflows.campaigns.worker`) with a JSON spec of paths and settings, so local workers and
   Slurm nodes run the same code;
3. skips tasks that are already finished (same settings), resumes unfinished ones from their checkpoints,
   and reports progress (done / running / queued / failed, with one-line reasons) as tasks finish;
4. writes each finished task into the results database (:mod:`tfbsim.workflows.campaigns.resultsdb`; only this
   driver writes it), then the per-system Arrhenius fits, ``summary.csv``/``summary.md`` and plots
   (:mod:`tfbsim.workflows.campaigns.report`).

Kill it at any moment and run the same command again: nothing finished is repeated, nothing is lost.

Campaign directory
------------------
``campaign.json`` (name, sessions), ``campaign.yaml`` (resolved settings), ``structures/``, ``prepare/``,
``tasks/<system>/T<T>K/r<k>/`` (see :mod:`tfbsim.workflows.campaigns.tasks`), ``results.db``,
``summary.csv``, ``summary.md``, ``arrhenius.json``, ``plots/``, ``runinfo/`` (Parsl: job scripts, worker
logs) and ``attic/`` (task folders set aside by ``--force`` because their settings changed).

Example
-------
>>> from tfbsim.workflows.campaigns.driver import run_campaign                      # doctest: +SKIP
>>> result = run_campaign("campaign.yaml", executor="local")
>>> result.counts, result.arrhenius["glass"]["Ea_eV"]
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...structures.io import read_json, read_structure, write_json, write_structure
from ..config import dump_yaml
from ..md.rundir import run_progress
from ..provenance import utc_now
from .config import PER_TASK_ANALYSES, CampaignConfig, load_campaign
from .executors import EXECUTORS, SlurmSiteConfig, check_slurm, load_site, parsl_config
from .locks import LockBusy, file_lock
from .report import task_table_row, write_report
from .resultsdb import DEFAULT_DB_NAME, ResultsDB, row_from_summary
from .tasks import CampaignPlan, PrepUnit, Task, expand_campaign, spec_digest

__all__ = ["run_campaign", "CampaignResult", "CampaignEvent", "campaign_status"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignEvent:
    """A progress report of :func:`run_campaign` (``on_event`` callback).

    Attributes
    ----------
    kind
        ``skipped`` (one per finished task found) | ``plan`` | ``start`` | ``finished`` (a task or preparation
        ended) | ``status`` (periodic counts) | ``report``.
    message
        One human-readable line.
    key
        Task id or preparation key (``None`` for campaign-wide events).
    status
        ``completed`` | ``unstable`` | ``failed`` for finished units.
    reason
        One-line reason of a failure.
    counts
        ``done``, ``running``, ``queued``, ``failed`` (unstable or failed), ``total`` at this moment.
    """

    kind: str
    message: str
    key: str | None = None
    status: str | None = None
    reason: str | None = None
    counts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignResult:
    """Outcome of :func:`run_campaign`.

    Attributes
    ----------
    directory
        Campaign directory.
    database
        Results database (file path or URL).
    rows
        One record per task (``summary.csv`` columns).
    counts
        Tasks by final status (``completed``, ``unstable``, ``failed``).
    arrhenius
        Per system: the Arrhenius record (``Ea_eV``, ``Ea_stderr_eV``, ``sigma_300K_S_cm``, ...) or ``error``.
    submitted, skipped
        Tasks run in this session / skipped because already finished.
    """

    directory: Path
    database: str
    rows: list[dict]
    counts: dict[str, int]
    arrhenius: dict[str, dict]
    submitted: int
    skipped: int

    @property
    def ok(self) -> bool:
        """Whether every task completed."""
        return all(r["status"] == "completed" for r in self.rows)


# ------------------------------------------------------------------------------------------- directory
def _check_directory(directory: Path, cfg: CampaignConfig, *, force: bool) -> dict:
    """Refuse a directory created by another campaign (or holding something else) unless ``force``."""
    marker = directory / "campaign.json"
    if marker.exists():
        info = read_json(marker)
        if info.get("name") != cfg.name and not force:
            raise ConfigError(
                f"{directory} was created by campaign {info.get('name')!r}, not {cfg.name!r}; choose another "
                "'directory' in the campaign file, or pass --force to take it over"
            )
        return info
    if directory.exists() and any(p.name != ".driver.lock" for p in directory.iterdir()) and not force:
        raise ConfigError(
            f"{directory} exists and is not a campaign directory (no campaign.json); choose another 'directory' "
            "or pass --force to use it anyway"
        )
    return {}


@contextlib.contextmanager
def _driver_lock(directory: Path) -> Iterator[None]:
    """One driver per campaign directory: a second ``tfbsim run`` on it fails at once (naming the first)."""
    try:
        with file_lock(directory / ".driver.lock", wait=False):
            yield
    except LockBusy as busy:
        raise ConfigError(
            f"{directory} is being run by another tfbsim driver ({busy.holder}); wait for it to finish or stop it, "
            "then run again (watch it with `tfbsim run CAMPAIGN.yaml --status`)"
        ) from None


def _stored_hash(folder: Path) -> str | None:
    spec = folder / "task.json"
    if spec.exists():
        try:
            return read_json(spec).get("spec_hash")
        except Exception:
            return None
    return None


def _conflicts(plan: CampaignPlan) -> list[tuple[str, Path]]:
    """Units whose folder holds a simulation with other settings."""
    out = []
    for unit in [*plan.preps, *plan.tasks]:
        stored = _stored_hash(unit.dir)
        if stored is not None and stored != unit.spec_hash:
            out.append((getattr(unit, "task_id", None) or f"prepare {unit.key}", unit.dir))
    return out


def _set_aside(directory: Path, folder: Path) -> Path:
    target = directory / "attic" / time.strftime("%Y%m%dT%H%M%S") / folder.relative_to(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(folder), str(target))
    return target


def _prepare_structures(plan: CampaignPlan, cfg: CampaignConfig) -> dict[str, Any]:
    """Build or read the structures whose file is missing or outdated (in memory; nothing written)."""
    from ...structures.amorphous import build_lipon
    from ...structures.crystals import build_crystal

    todo: dict[str, Any] = {}
    for key, info in plan.structures.items():
        path = Path(info["path"])
        meta = path.with_suffix(".json")
        if path.exists() and meta.exists() and read_json(meta).get("identity") == info["identity"]:
            continue
        spec = next(s for s in cfg.structures if s.name == info["system"])
        if spec.file is not None:
            atoms = read_structure(spec.file)
        else:
            recipe = info["identity"]["recipe"]
            args = {k: v for k, v in recipe.items() if k != "kind"}
            if recipe["kind"] == "crystal":
                name = args.pop("phase")
                args["supercell"] = tuple(args["supercell"])
                atoms = build_crystal(name, **args)
            else:
                atoms = build_lipon(args.pop("composition"), args.pop("n_atoms"), **args)
        atoms.info["tfbsim_name"] = atoms.info.get("tfbsim_name", info["system"])
        todo[key] = atoms
    return todo


# ---------------------------------------------------------------------------------------------- status
def _read_summary(folder: Path) -> dict:
    path = folder / "summary.json"
    if not path.exists():
        return {}
    try:
        return read_json(path)
    except Exception:
        return {}


def _prep_done(unit: PrepUnit) -> dict | None:
    s = _read_summary(unit.dir)
    if s.get("status") == "completed" and s.get("spec_hash") == unit.spec_hash and unit.output_path.exists():
        return s
    return None


def _task_done(task: Task) -> dict | None:
    s = _read_summary(task.dir)
    if s.get("spec_hash") != task.spec_hash:
        return None
    if s.get("status") == "completed" and s.get("analysis_hash") == task.analysis_hash:
        return s
    if s.get("status") == "unstable":  # rerunning unchanged would repeat it: change the settings instead
        return s
    return None


def campaign_status(campaign: CampaignConfig | str | os.PathLike) -> list[dict]:
    """Task table of a campaign from its directory, without running anything (``pending`` = never ran)."""
    cfg = load_campaign(campaign) if not isinstance(campaign, CampaignConfig) else campaign
    plan = expand_campaign(cfg)
    return [task_table_row(t.task_id, t.system, t.temperature_k, t.replica, _read_summary(t.dir)) for t in plan.tasks]


# ---------------------------------------------------------------------------------------------- driver
class _Driver:
    """Submission, progress and database bookkeeping of one session."""

    def __init__(self, cfg: CampaignConfig, plan: CampaignPlan, db: ResultsDB, on_event: Callable | None,
                 threads: int, status_every_s: float) -> None:
        self.cfg, self.plan, self.db, self.on_event = cfg, plan, db, on_event
        self.threads = threads
        self.status_every_s = status_every_s
        self.session = uuid.uuid4().hex[:12]
        self.results: dict[str, dict] = {}  # task id -> summary (finished in this session or before)
        self.pending: dict[concurrent.futures.Future, tuple[str, Any]] = {}
        self.n_failed = 0

    def emit(self, kind: str, message: str, **kwargs: Any) -> None:
        logger.info(message)
        if self.on_event is not None:
            self.on_event(CampaignEvent(kind=kind, message=message, counts=self.counts(), **kwargs))

    def counts(self) -> dict[str, int]:
        tasks = [t for (kind, t) in self.pending.values() if kind == "task"]
        states = [_read_summary(t.dir) for t in tasks]
        running = sum(1 for s in states if s.get("session") == self.session and s.get("status") == "running")
        done = sum(1 for s in self.results.values() if s.get("status") == "completed")
        return {"done": done, "running": running, "queued": len(tasks) - running,
                "failed": sum(1 for s in self.results.values() if s.get("status") in ("unstable", "failed")),
                "total": len(self.plan.tasks)}

    def progress(self) -> list[str]:
        """One line per unit of this session whose MD is running: its stage, step and temperature."""
        lines = []
        for kind, unit in self.pending.values():
            state = _read_summary(unit.dir)
            if state.get("session") not in (None, self.session):
                continue
            where = run_progress(unit.dir)
            if where is None:
                continue
            name = unit.task_id if kind == "task" else f"preparing {unit.key}"
            temp = f", {where['temperature_k']:.0f} K" if where["temperature_k"] is not None else ""
            pct = 100.0 * where["step"] / max(where["steps_planned"], 1)
            lines.append(f"{name} {where['stage']}: step {where['step']}/{where['steps_planned']} ({pct:.0f} %{temp})")
        return sorted(lines)

    def spec(self, unit: PrepUnit | Task) -> dict:
        spec = {**unit.spec, "session": self.session, "threads_per_task": self.threads}
        write_json(unit.dir / "task.json", {k: v for k, v in spec.items() if k != "session"})
        return spec

    def record(self, task: Task, summary: dict) -> None:
        """Keep a finished task's summary and write its database row."""
        self.results[task.task_id] = summary
        self.write_row(task, summary)

    def write_row(self, task: Task, summary: dict) -> None:
        analyses = {}
        for key in PER_TASK_ANALYSES:
            path = task.dir / "analysis" / f"{key}.json"
            if summary.get("status") == "completed" and path.exists():
                analyses[key] = read_json(path)
        kvp, data = row_from_summary(summary, task_id=task.task_id, campaign=self.cfg.name, system=task.system,
                                     temperature_k=task.temperature_k, replica=task.replica, run_dir=str(task.dir),
                                     analyses=analyses)
        kvp["summary_sha"] = "s" + spec_digest(summary)[:16]  # a letter first: never read as a number
        final = task.dir / "final.extxyz"
        atoms = read_structure(final) if final.exists() and summary.get("status") == "completed" \
            else read_structure(task.spec["input"]) if Path(task.spec["input"]).exists() else None
        if atoms is None:
            from ase import Atoms

            atoms = Atoms()
        existing = self.db.rows(task_id=task.task_id)
        if existing and existing[0].get("summary_sha") == kvp["summary_sha"]:
            return
        self.db.upsert(atoms, kvp, data)

    def finished(self, kind: str, unit: Any, outcome: dict | BaseException) -> None:
        if isinstance(outcome, BaseException):
            reason = f"{type(outcome).__name__}: {' '.join(str(outcome).split())[:300]}"
            summary = {**_read_summary(unit.dir), "status": "failed", "reason": reason, "spec_hash": unit.spec_hash}
        else:
            summary = outcome
        status, reason = summary.get("status"), summary.get("reason")
        if kind == "prepare":
            text = f"prepared {unit.key}" if status == "completed" else f"preparation {unit.key} {status}: {reason}"
            window = self.tg_window(summary) if status == "completed" else None
            if window is not None:
                text += f"; {window['message']}"
            self.emit("finished", text, key=unit.key, status=status, reason=reason)
            return
        self.record(unit, summary)
        c = self.counts()
        head = f"[{c['done'] + c['failed']}/{c['total']}] {unit.task_id} {status}"
        if status == "completed":
            d = summary.get("D_cm2_s")
            extra = f" (D = {d:.3g} cm²/s)" if isinstance(d, float) else ""
            errors = summary.get("analysis_errors") or []
            text = head + extra + (f"; analysis problems: {'; '.join(errors)}" if errors else "")
        else:
            text = f"{head}: {reason}"
        self.emit("finished", text, key=unit.task_id, status=status, reason=reason)

    def tg_window(self, prep_summary: dict) -> dict | None:
        """The campaign's temperatures against the prepared glass's Tg (or ``tg_check.tg_k``); logged when
        some lie at or above ``Tg − margin``."""
        from ..protocols.glass_checks import check_temperature_window

        tg = self.cfg.tg_check.tg_k or (prep_summary.get("glass_transition") or {}).get("tg_k")
        if tg is None:
            return None
        window = check_temperature_window(self.cfg.temperatures_k, tg, margin_k=self.cfg.tg_check.margin_k)
        if not window["ok"]:
            logger.warning("%s", window["message"])
        return window

    def run(self, parsl_cfg: Any, preps: list[PrepUnit], tasks: list[Task]) -> None:
        from parsl import python_app
        from parsl.dataflow.dflow import DataFlowKernel

        from .worker import run_campaign_prepare, run_campaign_task

        dfk = DataFlowKernel(parsl_cfg)
        try:
            label = parsl_cfg.executors[0].label
            prep_app = python_app(run_campaign_prepare, executors=[label], data_flow_kernel=dfk)
            task_app = python_app(run_campaign_task, executors=[label], data_flow_kernel=dfk)
            prep_futures = {}
            for unit in preps:
                fut = prep_app(self.spec(unit))
                prep_futures[unit.key] = fut
                self.pending[fut] = ("prepare", unit)
            for task in tasks:
                deps = [prep_futures[task.prep]] if task.prep in prep_futures else []
                fut = task_app(self.spec(task), *deps)
                self.pending[fut] = ("task", task)
            self.emit("start", f"submitted {len(preps)} preparation(s) and {len(tasks)} task(s) (session {self.session}); "
                               f"Parsl logs in {parsl_cfg.run_dir}")
            last_status = time.monotonic()
            last_counts: dict | None = None
            while self.pending:
                done, _ = concurrent.futures.wait(list(self.pending), timeout=1.0,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
                for fut in done:
                    kind, unit = self.pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # the worker, node or job died beyond the retries
                        outcome = exc
                    self.finished(kind, unit, outcome)
                if time.monotonic() - last_status >= self.status_every_s:
                    last_status = time.monotonic()
                    c, progress = self.counts(), self.progress()
                    if c != last_counts or progress:
                        last_counts = c
                        self.emit("status", f"done {c['done']} · running {c['running']} · queued {c['queued']} · "
                                            f"failed {c['failed']} (of {c['total']})"
                                            + "".join(f"\n    {line}" for line in progress))
        finally:
            dfk.cleanup()


def run_campaign(
    campaign: CampaignConfig | str | os.PathLike,
    *,
    executor: str = "local",
    site: SlurmSiteConfig | str | os.PathLike | None = None,
    force: bool = False,
    workers: int | None = None,
    threads_per_task: int | None = None,
    on_event: Callable[[CampaignEvent], None] | None = None,
    status_every_s: float = 30.0,
) -> CampaignResult:
    """Run (or continue) a campaign; see the module docstring.

    Parameters
    ----------
    campaign
        Campaign file (YAML) or a :class:`CampaignConfig` from :func:`load_campaign`.
    executor
        ``local`` (this machine's cores) or ``slurm`` (needs ``site``).
    site
        Slurm site file or :class:`SlurmSiteConfig`.
    force
        Take over a directory created by another campaign, and set aside (``attic/``) task folders whose
        settings changed so that they run again.
    workers, threads_per_task
        Override the campaign's ``local`` settings.
    on_event
        Called with every :class:`CampaignEvent` (progress display).
    status_every_s
        Interval of ``status`` events while tasks run (s).

    Returns
    -------
    CampaignResult

    Raises
    ------
    ConfigError
        Invalid campaign or site, unknown executor, Slurm unavailable (which command, or the controller),
        a directory of another campaign, or changed settings of existing tasks (without ``force``).
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    cfg = campaign if isinstance(campaign, CampaignConfig) else load_campaign(campaign)
    if cfg.directory is None:
        raise ConfigError("the campaign has no directory; load it with load_campaign(path)")
    local = cfg.local.model_copy(update={k: v for k, v in (("workers", workers), ("threads_per_task", threads_per_task))
                                         if v is not None})
    site_cfg: SlurmSiteConfig | None = None
    if executor == "slurm":
        if site is None:
            raise ConfigError("--executor slurm needs --site SITE.yaml (partition, account, walltime, ...)")
        site_cfg = site if isinstance(site, SlurmSiteConfig) else load_site(site)
        check_slurm(site_cfg)
    elif site is not None:
        raise ConfigError("--site is for --executor slurm")
    plan = expand_campaign(cfg)
    directory = plan.directory
    info = _check_directory(directory, cfg, force=force)
    conflicts = _conflicts(plan)
    if conflicts and not force:
        names = ", ".join(name for name, _ in conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise ConfigError(
            f"{directory}: {len(conflicts)} task folder(s) hold runs with other settings ({names}); restore the "
            "settings, use another directory, or pass --force to set them aside (attic/) and run them again"
        )
    built = _prepare_structures(plan, cfg)  # may raise StructureError: still nothing written
    with _driver_lock(directory):
        return _execute(cfg, plan, info, conflicts, built, executor=executor, local=local, site_cfg=site_cfg,
                        on_event=on_event, status_every_s=status_every_s)


def _execute(cfg: CampaignConfig, plan: CampaignPlan, info: dict, conflicts: list, built: dict, *, executor: str,
             local: Any, site_cfg: SlurmSiteConfig | None, on_event: Callable | None,
             status_every_s: float) -> CampaignResult:
    """Everything of :func:`run_campaign` after validation (holding the driver lock)."""
    directory = plan.directory
    # ------------------------------------------------------------------------------ from here on we write
    directory.mkdir(parents=True, exist_ok=True)
    for name, folder in conflicts:
        moved = _set_aside(directory, folder)
        logger.warning("%s: settings changed, previous run set aside in %s", name, moved)
    sessions = list(info.get("sessions", []))
    sessions.append({"started_utc": utc_now(), "executor": executor, "host": os.uname().nodename})
    write_json(directory / "campaign.json", {"name": cfg.name, "created_utc": info.get("created_utc", utc_now()),
                                             "sessions": sessions})
    from ...structures.io import atomic_path

    with atomic_path(directory / "campaign.yaml") as tmp:
        tmp.write_text(dump_yaml(cfg))
    for key, atoms in built.items():
        path = Path(plan.structures[key]["path"])
        write_structure(path, atoms)
        write_json(path.with_suffix(".json"), {"identity": plan.structures[key]["identity"]})
    db_url = cfg.database or str(directory / DEFAULT_DB_NAME)
    db = ResultsDB(db_url, create=True)
    threads = site_cfg.cores_per_task if site_cfg is not None else local.threads_per_task
    driver = _Driver(cfg, plan, db, on_event, threads, status_every_s)

    prep_done = {u.key: s for u in plan.preps if (s := _prep_done(u)) is not None}
    preps = [u for u in plan.preps if u.key not in prep_done]
    tasks, skipped = [], 0
    for task in plan.tasks:
        summary = _task_done(task)
        if summary is None:
            tasks.append(task)
            continue
        skipped += 1
        driver.record(task, summary)
        text = f"{task.task_id}: already {summary['status']} (skipped)"
        if summary["status"] != "completed":
            text += f": {summary.get('reason')}; change its settings and re-run with --force to run it again"
        driver.emit("skipped", text, key=task.task_id, status=summary["status"], reason=summary.get("reason"))
    if tasks or preps:
        needed = {t.prep for t in tasks}
        preps = [u for u in preps if u.key in needed]
        parsl_cfg = parsl_config(executor, directory / "runinfo", local=local, site=site_cfg)
        driver.emit("plan", f"{len(plan.tasks)} task(s): {skipped} already finished (skipped), {len(tasks)} to run"
                            + (f" after {len(preps)} preparation(s)" if preps else "") + f" on {executor}")
        driver.run(parsl_cfg, preps, tasks)
    else:
        driver.emit("plan", f"{len(plan.tasks)} task(s), every one already finished: nothing to run")
    # ---------------------------------------------------------------------------------------- report
    rows, diffusion = [], {}
    for task in plan.tasks:
        summary = driver.results.get(task.task_id) or _read_summary(task.dir)
        rows.append(task_table_row(task.task_id, task.system, task.temperature_k, task.replica, summary))
        path = task.dir / "analysis" / "diffusion.json"
        if summary.get("status") == "completed" and path.exists():
            diffusion.setdefault(task.system, []).append(read_json(path))
    target = cfg.analyses.arrhenius.target_temperature_k if cfg.analyses.arrhenius is not None else None
    arrhenius = write_report(directory, name=cfg.name, description=cfg.description, rows=rows, diffusion=diffusion,
                             arrhenius_target_k=target)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    driver.emit("report", f"summary: {', '.join(f'{v} {k}' for k, v in counts.items())} -> {directory}/summary.md")
    return CampaignResult(directory=directory, database=db.url, rows=rows, counts=counts, arrhenius=arrhenius,
                          submitted=len(tasks), skipped=skipped)
