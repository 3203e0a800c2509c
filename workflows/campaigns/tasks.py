"""Expansion of a campaign into preparation units and tasks, with the identities that make re-runs safe.

A campaign ``structures × temperatures_k × replicas`` becomes

- one :class:`PrepUnit` per structure (per structure and replica with ``prepare_per_replica``) when the
  campaign has ``prepare`` stages: folder ``prepare/<system>[/r<k>]``;
- one :class:`Task` per structure, temperature and replica: folder ``tasks/<system>/T<T>K/r<k>`` holding
  ``task.json`` (the spec), one MD-engine run directory per stage (``1_equilibrate/``, ``2_production/``:
  ``config.yaml``, ``traj.h5md``, ``checkpoint.npz``, ``log.csv``, ``summary.json``), ``final.extxyz``,
  ``analysis/*.json`` and the task's ``summary.json`` (``status`` running|completed|unstable|failed).

Every unit carries a ``spec_hash`` over what determines its trajectory (structure source, stage settings,
potential identity — the model file's sha256, not its path or device — temperature and seeds) and an
``analysis_hash`` over the analysis settings. A finished task whose hashes match is skipped; a changed
analysis re-runs only the analysis; a changed ``spec_hash`` means the folder holds another simulation.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..md.config import MDConfig
from .config import PER_TASK_ANALYSES, CampaignConfig, StageSpec

__all__ = ["PrepUnit", "Task", "CampaignPlan", "expand_campaign", "potential_identity", "structure_identity",
           "temperature_label", "spec_digest"]


def spec_digest(data: Any) -> str:
    """sha256 of a JSON-able object (key order independent)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def temperature_label(temperature_k: float) -> str:
    """Folder label of a temperature: ``T800K``, ``T812.5K``."""
    return f"T{temperature_k:g}K"


def potential_identity(cfg: CampaignConfig) -> dict[str, Any]:
    """What identifies the campaign's potential: the model file's sha256 (or the spec of a named model), dtype."""
    p = cfg.potential
    path = Path(p.model).expanduser()
    if path.is_file():
        return {"sha256": _file_sha256(path), "dtype": p.dtype}
    return {"spec": p.model, "dtype": p.dtype}


def structure_identity(cfg: CampaignConfig, system: str, replica: int | None) -> dict[str, Any]:
    """What identifies a structure source: the file's sha256, or the builder recipe (seed + replica)."""
    spec = next(s for s in cfg.structures if s.name == system)
    if spec.file is not None:
        return {"file_sha256": _file_sha256(spec.file)}
    recipe = spec.build.model_dump(mode="json")
    if replica is not None:
        recipe["seed"] = int(recipe.get("seed", 0)) + replica
    return {"recipe": recipe}


@dataclass(frozen=True)
class PrepUnit:
    """Preparation of one structure (or one replica of it): the ``prepare`` stages.

    Attributes
    ----------
    key
        ``<system>`` or ``<system>/r<k>``.
    system, replica
        Structure name; replica index or ``None`` when shared by all replicas.
    input_path
        The built or copied starting structure (``structures/<key>.extxyz``).
    dir
        Folder ``prepare/<key>``; its ``final.extxyz`` is the tasks' starting structure.
    spec
        JSON spec handed to :func:`tfbsim.workflows.campaigns.worker.run_campaign_prepare`.
    """

    key: str
    system: str
    replica: int | None
    input_path: Path
    dir: Path
    spec: dict = field(repr=False)

    @property
    def spec_hash(self) -> str:
        """Identity of the preparation."""
        return self.spec["spec_hash"]

    @property
    def output_path(self) -> Path:
        """The prepared structure."""
        return self.dir / "final.extxyz"


@dataclass(frozen=True)
class Task:
    """One simulation: structure × temperature × replica (see the module docstring for its folder).

    Attributes
    ----------
    task_id
        ``<system>/T<T>K/r<k>`` (also the database key).
    system, temperature_k, replica
    dir
        The task folder.
    prep
        Key of the preparation unit it starts from, or ``None``.
    spec
        JSON spec handed to :func:`tfbsim.workflows.campaigns.worker.run_campaign_task`.
    """

    task_id: str
    system: str
    temperature_k: float
    replica: int
    dir: Path
    prep: str | None
    spec: dict = field(repr=False)

    @property
    def spec_hash(self) -> str:
        """Identity of the simulation."""
        return self.spec["spec_hash"]

    @property
    def analysis_hash(self) -> str:
        """Identity of the per-task analyses."""
        return self.spec["analysis_hash"]


@dataclass(frozen=True)
class CampaignPlan:
    """All preparation units and tasks of a campaign, and the structures to build or copy first."""

    directory: Path
    structures: dict[str, dict] = field(repr=False)  # key -> {"system", "replica", "path", "identity"}
    preps: list[PrepUnit]
    tasks: list[Task]


def _strip_potential(stage: dict) -> dict:
    config = {k: v for k, v in stage["config"].items() if k != "potential"}
    return {**stage, "config": config}


def _stage_dicts(stages: list[StageSpec], cfg: CampaignConfig, *, temperature_k: float | None, replica: int,
                 seed_replica: bool) -> list[dict]:
    """Resolved, JSON-ready stage settings (temperature, seeds and the potential filled in)."""
    potential = cfg.potential.model_dump(mode="json")
    out = []
    first_md = True
    for k, stage in enumerate(stages):
        offset = replica if seed_replica else 0
        if stage.kind == "md":
            data = stage.md.model_dump(mode="json", exclude_unset=True)
            if temperature_k is not None:
                data["temperature_k"] = temperature_k
                if first_md and "initial_temperature_k" not in data:
                    data["initial_temperature_k"] = temperature_k
            data["seed"] = cfg.seed + int(data.get("seed", 0)) + 1000 * offset + k
            data["potential"] = potential
            config = MDConfig.model_validate(data).model_dump(mode="json")
            first_md = False
        elif stage.kind == "melt_quench":
            config = stage.melt_quench.model_dump(mode="json")
            config["seed"] = int(config["seed"]) + cfg.seed + offset
            config["potential"] = potential
        elif stage.kind == "deposit":
            config = stage.deposit.model_dump(mode="json")
            if temperature_k is not None and "temperature_k" not in stage.deposit.model_fields_set:
                config["temperature_k"] = temperature_k
            config["seed"] = cfg.seed + int(config["seed"]) + 1000 * offset + k
            config["potential"] = potential
        elif stage.kind == "anneal":
            config = stage.anneal.model_dump(mode="json")
            config["seed"] = cfg.seed + int(config["seed"]) + 1000 * offset + k
        else:
            config = stage.relax.model_dump(mode="json")
        entry = {"name": stage.label, "kind": stage.kind, "config": config}
        if stage.until_diffusive is not None:
            entry["until_diffusive"] = stage.until_diffusive.model_dump(mode="json")
        out.append(entry)
    return out


def _analysis_settings(cfg: CampaignConfig) -> dict[str, Any]:
    """The task's typed analysis specs with their stage resolved, as JSON (the worker re-validates them with
    :func:`~tfbsim.workflows.campaigns.config.task_analysis_specs`; Parsl and ``task.json`` carry JSON)."""
    out: dict[str, Any] = {}
    for key in PER_TASK_ANALYSES:
        spec = getattr(cfg.analyses, key)
        if spec is not None:
            out[key] = spec.model_copy(update={"stage": cfg.analysis_stage(key)}).model_dump(mode="json")
    return out


def expand_campaign(cfg: CampaignConfig, directory: str | os.PathLike | None = None) -> CampaignPlan:
    """Preparation units and tasks of ``cfg`` (nothing is written).

    Parameters
    ----------
    cfg
        A campaign from :func:`tfbsim.workflows.campaigns.config.load_campaign` (absolute paths).
    directory
        Campaign directory; default ``cfg.directory``.
    """
    root = Path(directory if directory is not None else cfg.directory).resolve()
    pot = potential_identity(cfg)

    analyses = _analysis_settings(cfg)
    analysis_hash = spec_digest(analyses)
    structures: dict[str, dict] = {}
    preps: dict[str, PrepUnit] = {}
    tasks: list[Task] = []
    for spec in cfg.structures:
        prepare = spec.prepare if spec.prepare is not None else cfg.prepare
        per_replica = cfg.prepare_per_replica and bool(prepare)
        replica_keys = list(range(cfg.replicas)) if per_replica else [None]
        for rep in replica_keys:
            key = spec.name if rep is None else f"{spec.name}/r{rep}"
            identity = structure_identity(cfg, spec.name, rep if spec.build is not None else None)
            structures[key] = {
                "system": spec.name, "replica": rep, "identity": identity,
                "path": str(root / "structures" / (key.replace("/", "_") + ".extxyz")),
            }
            if prepare:
                stages = _stage_dicts(prepare, cfg, temperature_k=None, replica=rep or 0, seed_replica=per_replica)
                prep_hash = spec_digest({"structure": identity, "stages": [_strip_potential(s) for s in stages],
                                         "potential": pot})
                pdir = root / "prepare" / key
                preps[key] = PrepUnit(
                    key=key, system=spec.name, replica=rep, input_path=Path(structures[key]["path"]), dir=pdir,
                    spec={"kind": "prepare", "key": key, "system": spec.name, "replica": rep, "dir": str(pdir),
                          "input": structures[key]["path"], "stages": stages, "spec_hash": prep_hash,
                          "potential": cfg.potential.model_dump(mode="json"), "campaign": cfg.name},
                )
        for temperature in cfg.temperatures_k:
            for replica in range(cfg.replicas):
                key = f"{spec.name}/r{replica}" if per_replica else spec.name
                prep = preps.get(key)
                source = {"prepare": prep.spec_hash} if prep else {"structure": structures[key]["identity"]}
                start = str(prep.output_path) if prep else structures[key]["path"]
                stages = _stage_dicts(cfg.protocol, cfg, temperature_k=temperature, replica=replica, seed_replica=True)
                task_id = f"{spec.name}/{temperature_label(temperature)}/r{replica}"
                tdir = root / "tasks" / spec.name / temperature_label(temperature) / f"r{replica}"
                spec_hash = spec_digest({"source": source, "stages": [_strip_potential(s) for s in stages],
                                         "potential": pot, "temperature_k": temperature, "replica": replica})
                tasks.append(Task(
                    task_id=task_id, system=spec.name, temperature_k=temperature, replica=replica, dir=tdir,
                    prep=prep.key if prep else None,
                    spec={"kind": "task", "task_id": task_id, "campaign": cfg.name, "system": spec.name,
                          "temperature_k": temperature, "replica": replica, "dir": str(tdir), "input": start,
                          "stages": stages, "analyses": analyses, "spec_hash": spec_hash,
                          "analysis_hash": analysis_hash, "potential": cfg.potential.model_dump(mode="json"),
                          "tg_check": cfg.tg_check.model_dump(mode="json")},
                ))
    return CampaignPlan(directory=root, structures=structures, preps=list(preps.values()), tasks=tasks)
