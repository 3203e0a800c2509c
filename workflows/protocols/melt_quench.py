"""Multi-stage protocols built on the MD runner: melt–quench of amorphous boxes (LiPON and friends).

:func:`melt_quench` takes a freshly built box (e.g. :func:`tfbsim.structures.amorphous.build_lipon`) to a
glass at the potential's own density, in five stages:

===========  =======================================================================================
prerelax     FIRE at fixed cell to ``prerelax_fmax_ev_ang`` (a random box fed straight to MD explodes)
melt         NVT at ``melt_k`` for ``melt_ps``, velocities drawn at ``melt_k``; with ``network_check`` the P–O/P–N
             bond exchange and the speciation's time series are measured and the melt is extended (doubling,
             up to ``max_melt_ps``) until the speciation is steady (``summary.json``: ``network``,
             ``speciation_steady_before_quench``)
quench       NVT (or NPT with ``quench_ensemble: npt``), target temperature ramped linearly from ``melt_k`` to
             ``final_k`` at ``quench_rate_k_ps``; Tg from the cooling curve (``glass_transition``)
anneal       NPT at ``final_k`` and ``pressure_gpa`` for ``anneal_ps``: the density relaxes to the potential's
             own (cell axes ``z`` for films on a substrate: a and b stay fixed)
relax        FIRE with the cell (or only c for films) to ``final_relax_fmax_ev_ang``
===========  =======================================================================================

Presets (:data:`MELT_QUENCH_PRESETS`)
-------------------------------------
``quick``       2 fs steps; 1 ps melt at 2000 K; quench at 1000 K/ps (1.7 ps); 1 ps anneal — about 3.7 ps,
                for demos and tests. 10¹⁵ K/s is fast even for AIMD: the glass is a rough sketch.
``production``  1 fs steps; 10 ps melt; quench at 100 K/ps (17 ps); 20 ps anneal — about 47 ps.
``glass``       1 fs steps; ≥ 20 ps melt at 2000 K, extended up to 100 ps until the network is equilibrated;
                NPT quench at 10 K/ps (170 ps) with Tg from V(T) and H(T); 50 ps NPT anneal — 240–320 ps, the
                glass for transport below Tg (hours on 2 CPU cores at 200 atoms).
                100 K/ps = 10¹⁴ K/s is the order of the rates of AIMD melt–quench models of LiPON and Li
                phosphate glasses (e.g. the ~100–300-atom AIMD cells of Lacivita et al., JACS 140, 11029
                (2018), melted at 2000–3000 K; order of magnitude recalled, see anchors.md B2); classical and
                MLIP glass studies use 1–10 K/ps (10¹²–10¹³ K/s) when they can afford it — set
                ``quench_rate_k_ps: 10`` for a better-relaxed glass. For comparison, atomate2's MPMorph slow
                quench steps 3000 → 500 K by 500 K per 1000 MD steps.

Every field can be overridden in YAML (``preset: quick`` plus any keys) or Python; unknown keys fail.

Run directory (``run_dir``)
---------------------------
``protocol.yaml`` (resolved config), ``initial.extxyz``, one folder per stage (``1_prerelax``,
``2_melt`` … — the MD stages are ordinary MD run directories with checkpoints), ``summary.json`` (``status``
running|completed|unstable|failed, one record per stage) and ``final.extxyz``. Calling :func:`melt_quench`
again on the same folder (or :func:`restart_melt_quench`) skips completed stages, continues an interrupted
MD stage from its checkpoint and runs the rest; a completed protocol is returned as is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError, SimulationUnstable
from ...structures.io import read_json, read_structure, write_json, write_structure
from ..config import config_hash, dump_yaml, load_config
from ..md.config import MDConfig
from ..potentials.factory import check_coverage
from ..provenance import provenance, utc_now
from .threads import torch_threads
from .glass_checks import glass_transition_from_log, network_verdict, read_log
from .melt_quench_config import (
    MD_STAGES,
    MELT_QUENCH_PRESETS,
    STAGES,
    MeltQuenchConfig,
    resolve_melt_quench_config,
)

__all__ = [
    "MeltQuenchConfig",
    "MeltQuenchResult",
    "MELT_QUENCH_PRESETS",
    "STAGES",
    "melt_quench",
    "restart_melt_quench",
    "resolve_melt_quench_config",
    "density_g_cm3",
]

logger = logging.getLogger(__name__)

_AMU_G = 1.66053906660e-24


def density_g_cm3(atoms: Atoms) -> float:
    """Mass density of a periodic structure (g/cm³)."""
    return float(atoms.get_masses().sum() * _AMU_G / (atoms.get_volume() * 1e-24))


@dataclass(frozen=True)
class MeltQuenchResult:
    """Outcome of :func:`melt_quench`.

    Attributes
    ----------
    atoms
        Final relaxed structure (calculator attached); ``info["melt_quench"]`` holds the summary and
        ``info["provenance"]`` the stamp. Builder metadata (formula, counts, region labels) is kept.
    run_dir
        Protocol folder, or ``None`` when run in memory.
    config
        Resolved configuration.
    stages
        One record per stage: ``name``, ``status``, ``steps``, ``wall_s``, and for MD stages ``time_ps``,
        ``temperature_mean_k``, ``steps_per_s``; ``density_g_cm3`` after the stage; ``path``.
    density_initial_g_cm3, density_final_g_cm3
        Density before and after (g/cm³).
    energy_final_ev
        Potential energy of the final structure (eV).
    wall_s
        Wall time of all stages (s), including earlier sessions of a restarted protocol.
    summary
        Content of ``summary.json``.
    """

    atoms: Atoms
    run_dir: Path | None
    config: MeltQuenchConfig
    stages: list[dict]
    density_initial_g_cm3: float
    density_final_g_cm3: float
    energy_final_ev: float
    wall_s: float
    summary: dict = field(repr=False)


def _stage_dir(run_dir: Path | None, index: int, name: str) -> Path | None:
    return None if run_dir is None else run_dir / f"{index + 1}_{name}"


def _resolve_axes(config: MeltQuenchConfig, atoms: Atoms) -> str:
    if config.cell_axes != "auto":
        return config.cell_axes
    return "z" if atoms.info.get("lateral_fixed") else "isotropic"


def _run_relax_stage(atoms: Atoms, calc: Calculator, stage_dir: Path | None, *, fmax: float, steps: int,
                     cell: bool, axes: str, progress: bool = False) -> tuple[Atoms, dict]:
    from ..md.relax import relax

    start = time.perf_counter()
    result = relax(atoms, calc, fmax_ev_ang=fmax, max_steps=steps, cell=cell,
                   cell_axes="z" if axes == "z" else "xyz", progress=progress)
    out = result.atoms
    out.set_momenta(np.zeros((len(out), 3)), apply_constraint=False)
    record = {
        "status": "completed",
        "steps": result.steps,
        "converged": result.converged,
        "energy_initial_ev": result.energy_initial_ev,
        "energy_final_ev": result.energy_final_ev,
        "max_force_ev_ang": result.max_force_ev_ang,
        "cell_change_pct": list(result.cell_change_pct),
        "wall_s": time.perf_counter() - start,
    }
    if not result.converged:
        logger.warning("relaxation stopped after %d steps at max|F| = %.3f eV/Å (threshold %.3f)",
                       result.steps, result.max_force_ev_ang, fmax)
    if stage_dir is not None:
        stage_dir.mkdir(parents=True, exist_ok=True)
        write_structure(stage_dir / "final.extxyz", out)
        _write_state(stage_dir / "final_state.npz", out)
        write_json(stage_dir / "summary.json", record)  # written last: marks the stage as done
    return out, record


def _write_state(path: Path, atoms: Atoms) -> None:
    """Positions and cell in full float64 precision (extxyz keeps 8 decimals), written atomically."""
    from ...structures.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, positions=atoms.positions, cell=atoms.cell.array)


def _read_state(path: Path, atoms: Atoms) -> Atoms:
    with np.load(path) as data:
        atoms.set_cell(data["cell"])
        atoms.set_positions(data["positions"], apply_constraint=False)
    atoms.set_momenta(np.zeros((len(atoms), 3)), apply_constraint=False)
    return atoms


def _run_md_stage(atoms: Atoms, calc: Calculator, md_config: MDConfig, stage_dir: Path | None,
                  progress: bool, *, force: bool = False) -> tuple[Atoms, dict]:
    """Start or continue one MD stage.

    The rules of :func:`~tfbsim.workflows.md.resume.start_or_resume`; ``force`` is the protocol's: continue an
    interrupted or unstable stage with changed settings.
    """
    from ..md.resume import RunState, inspect_run_dir, start_or_resume

    if stage_dir is not None and inspect_run_dir(stage_dir) is RunState.CHECKPOINT:
        logger.info("melt-quench: continuing %s from its checkpoint", stage_dir)
    result = start_or_resume(atoms, calc, md_config, stage_dir, force=force, progress=progress)
    out = _only_fixed_constraints(result.atoms)
    record = {
        "status": result.status,
        "steps": result.steps_done,
        "time_ps": result.steps_done * md_config.timestep_fs * 1e-3,
        "wall_s": result.wall_s,
        "steps_per_s": result.steps_per_s,
        "temperature_mean_k": result.temperature_mean_k,
        "temperature_std_k": result.temperature_std_k,
        "ensemble": md_config.ensemble,
    }
    return out, record


def _run_melt_with_check(atoms: Atoms, calc: Calculator, cfg: MeltQuenchConfig, md_config: MDConfig,
                         stage_dir: Path | None, progress: bool) -> tuple[Atoms, dict, dict]:
    """The melt with ``network_check``: measured, and extended up to ``max_melt_ps`` until the network is
    equilibrated (in memory: measured only). Returns atoms, the stage record and the network record."""
    check = cfg.network_check
    if stage_dir is None:
        out, record = _run_md_stage(atoms, calc, md_config, None, progress)
        frames = record.pop("frames")
        record.pop("log")
        times = np.arange(len(frames)) * md_config.traj_every * md_config.timestep_fs * 1e-3
        verdict = (network_verdict(frames, check, times_ps=times) if len(frames) > 3
                   else {"converged": False, "reason": f"{len(frames)} frames: too few to judge"})
        return out, record, {**verdict, "stopped_by": "no_extension", "chunks": []}
    from ..md.resume import RunState, inspect_run_dir
    from .extension import run_until_converged

    if inspect_run_dir(stage_dir) is RunState.CHECKPOINT:
        logger.info("melt-quench: continuing %s from its checkpoint", stage_dir)
    cap = cfg.steps(check.max_melt_ps) if check.max_melt_ps is not None else md_config.steps
    result, ext = run_until_converged(
        atoms, calc, md_config, stage_dir, lambda d: network_verdict(d / "traj.h5md", check), max_steps=cap,
        what="network equilibration", progress=progress)
    if check.max_melt_ps is None and not ext["converged"]:
        ext["stopped_by"] = "no_extension"
    record = {
        "status": result.status, "steps": result.steps_done,
        "time_ps": result.steps_done * md_config.timestep_fs * 1e-3, "wall_s": result.wall_s,
        "steps_per_s": result.steps_per_s, "temperature_mean_k": result.temperature_mean_k,
        "temperature_std_k": result.temperature_std_k, "ensemble": md_config.ensemble,
    }
    network = {**ext["verdict"], "stopped_by": ext["stopped_by"], "chunks": [
        {"time_ps": c["time_ps"], "converged": c["verdict"].get("converged"),
         "exchanges_per_p": c["verdict"].get("exchanges_per_p"), "reason": c["verdict"].get("reason")}
        for c in ext["chunks"]]}
    return _only_fixed_constraints(result.atoms), record, network


def _glass_transition(cfg: MeltQuenchConfig, md_config: MDConfig, stage_dir: Path | None, log: dict | None,
                      n_atoms: int) -> dict:
    """Tg record of the quench (see :func:`~.glass_checks.glass_transition_from_log`)."""
    try:
        data = read_log(stage_dir) if stage_dir is not None else log
        return glass_transition_from_log(data, n_atoms, pressure_gpa=cfg.pressure_gpa, bin_width_k=cfg.tg_bin_k,
                                         with_volume=md_config.ensemble.startswith("npt"), seed=cfg.seed)
    except Exception as exc:  # a diagnostic must not fail the glass
        logger.warning("melt-quench: no Tg estimate (%s: %s)", type(exc).__name__, exc)
        return {"tg_k": None, "tg_stderr_k": None, "tg_source": None, "reason": f"{type(exc).__name__}: {exc}"}


def _only_fixed_constraints(atoms: Atoms) -> Atoms:
    """Drop every constraint but the fixed atoms (an MD result may carry the engine's FixCom, which the next
    stage would add a second time; a restart from a checkpoint has only one, so stages chained in memory
    and stages resumed from disk would differ)."""
    from ..md.relax import apply_fixed

    atoms.set_constraint()
    return apply_fixed(atoms)


def _load_completed(stage: str, stage_dir: Path | None) -> tuple[Atoms, dict] | None:
    """The result of a stage finished in an earlier session, or ``None``."""
    if stage_dir is None:
        return None
    summary_path = stage_dir / "summary.json"
    final_path = stage_dir / "final.extxyz"
    if not (summary_path.exists() and final_path.exists()):
        return None
    summary = read_json(summary_path)
    if summary.get("status") != "completed":
        return None
    if stage in MD_STAGES:
        from ..md.checkpoint import read_checkpoint

        atoms = _only_fixed_constraints(read_checkpoint(stage_dir / "checkpoint.npz").atoms)  # exact final state
    else:
        atoms = _read_state(stage_dir / "final_state.npz", read_structure(final_path))
    if stage in MD_STAGES:
        summary = {
            "status": "completed", "steps": summary.get("steps_done"), "time_ps": summary.get("time_ps"),
            "wall_s": summary.get("wall_s"), "steps_per_s": summary.get("steps_per_s"),
            "temperature_mean_k": summary.get("temperature_mean_k"),
            "temperature_std_k": summary.get("temperature_std_k"), "ensemble": summary.get("ensemble"),
        }
    return atoms, summary


def _run_stages(cfg: MeltQuenchConfig, calc: Calculator, md_configs: dict[str, MDConfig], rd: Path | None,
                axes: str, summary: dict, save: Any, current: Atoms, *, progress: bool, force: bool) -> Atoms:
    """The five stages in order (completed ones reused, an interrupted one continued); returns the final atoms."""
    for index, stage in enumerate(STAGES):
        sdir = _stage_dir(rd, index, stage)
        done = None if (stage == "melt" and cfg.network_check is not None) else _load_completed(stage, sdir)
        try:
            if done is not None:
                current, record = done
                record = {**record, "reused": True}
                logger.info("melt-quench: stage %s already completed, reusing %s", stage, sdir)
            elif stage == "prerelax":
                current, record = _run_relax_stage(current, calc, sdir, fmax=cfg.prerelax_fmax_ev_ang,
                                                   steps=cfg.prerelax_steps, cell=False, axes=axes,
                                                   progress=progress)
            elif stage == "relax":
                current, record = _run_relax_stage(current, calc, sdir, fmax=cfg.final_relax_fmax_ev_ang,
                                                   steps=cfg.final_relax_steps, cell=cfg.final_relax_cell, axes=axes,
                                                   progress=progress)
            elif md_configs[stage].steps == 0:
                record = {"status": "skipped", "steps": 0, "wall_s": 0.0}
            elif stage == "melt" and cfg.network_check is not None:
                logger.info("melt-quench: melt (%d steps, network check)", md_configs[stage].steps)
                current, record, network = _run_melt_with_check(current, calc, cfg, md_configs[stage], sdir,
                                                                progress)
                summary["network"] = network
                summary["speciation_steady_before_quench"] = bool((network.get("steady") or {}).get("steady"))
            else:
                logger.info("melt-quench: %s (%d steps, %s)", stage, md_configs[stage].steps, md_configs[stage].ensemble)
                current, record = _run_md_stage(current, calc, md_configs[stage], sdir, progress, force=force)
        except SimulationUnstable as exc:
            summary["stages"].append({"name": stage, "status": "unstable", "path": str(sdir) if sdir else None})
            save("unstable", diagnostic=exc.diagnostic)
            raise
        except BaseException as exc:
            summary["stages"].append({"name": stage, "status": "failed", "path": str(sdir) if sdir else None})
            save("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        log = record.pop("log", None)
        record.pop("frames", None)
        if stage == "quench" and cfg.glass_transition and record.get("status") != "skipped":
            summary["glass_transition"] = _glass_transition(cfg, md_configs[stage], sdir, log, len(current))
        record.update(name=stage, density_g_cm3=density_g_cm3(current), path=str(sdir) if sdir else None)
        summary["stages"].append(record)
        save("running")
    return current


def melt_quench(
    atoms: Atoms,
    calc: Calculator,
    config: MeltQuenchConfig | str | dict = "quick",
    run_dir: str | Path | None = None,
    *,
    progress: bool = False,
    force: bool = False,
    threads: int | None = None,
) -> MeltQuenchResult:
    """Pre-relax, melt, quench, anneal and relax an amorphous box (see the module docstring).

    Parameters
    ----------
    atoms
        Starting structure (not modified), e.g. from :func:`tfbsim.structures.amorphous.build_lipon`; its
        ``info`` and ``region``/``fixed`` arrays travel to the result.
    calc
        ASE calculator from :func:`tfbsim.workflows.potentials.factory.load_potential`.
    config
        A :class:`MeltQuenchConfig`, a preset name (``quick``, ``production``) or a dict of settings.
    run_dir
        Protocol folder (created); ``None`` runs in memory (no checkpoints). A folder that already holds
        this protocol is continued (completed stages are reused, an interrupted MD stage restarts from its
        checkpoint).
    progress
        tqdm progress bars for the MD stages.
    force
        Continue a folder whose ``protocol.yaml`` or ``initial.extxyz`` differ from the arguments.
    threads
        Torch intra-op threads during the protocol (restored afterwards); ``None`` leaves torch's setting.
        The protocol is serial: give it every free core.

    Returns
    -------
    MeltQuenchResult

    Raises
    ------
    ConfigError
        Invalid settings, or a run folder holding a different protocol (without ``force``).
    PotentialError
        The potential lacks an element of the structure.
    SimulationUnstable
        An MD guard tripped (``summary.json`` says ``unstable``; the stage folder keeps the trajectory).
    """
    cfg = resolve_melt_quench_config(config)
    check_coverage(calc, atoms)
    if len(atoms) < 2 or not atoms.pbc.all():
        raise ConfigError("melt-quench needs a 3-D periodic structure with at least two atoms")
    axes = _resolve_axes(cfg, atoms)
    md_configs = {stage: cfg.stage_md_config(stage, axes) for stage in MD_STAGES}
    rd = Path(run_dir) if run_dir is not None else None
    started = utc_now()
    previous: dict = {}
    if rd is not None:
        previous = _prepare_run_dir(rd, cfg, atoms, force=force)
        started = previous.get("provenance", {}).get("started_utc", started)
    block = provenance(config=cfg, calc=calc, seed=cfg.seed, started_utc=started,
                       extra={"workflow": "tfbsim.workflows.protocols.melt_quench.melt_quench"})
    summary: dict[str, Any] = {
        "status": "running",
        "preset": cfg.preset,
        "cell_axes": axes,
        "n_atoms": len(atoms),
        "density_initial_g_cm3": density_g_cm3(atoms),
        "total_md_ps": cfg.total_md_ps,
        "stages": [],
        "sessions": int(previous.get("sessions", 0)) + 1,
        "provenance": block,
    }
    wall_before = float(previous.get("wall_s", 0.0) or 0.0)
    t0 = time.perf_counter()

    def save(status: str, **extra: Any) -> None:
        summary["status"] = status
        summary["wall_s"] = wall_before + time.perf_counter() - t0
        summary["provenance"]["ended_utc"] = utc_now()
        summary.update(extra)
        if rd is not None:
            write_json(rd / "summary.json", summary)

    current = atoms.copy()
    current.calc = None
    save("running")
    with torch_threads(threads):
        current = _run_stages(cfg, calc, md_configs, rd, axes, summary, save, current, progress=progress,
                              force=force)
    final = current.copy()
    final.info = {k: v for k, v in atoms.info.items()
                  if k not in ("speciation_designed", "min_distance_ang", "min_distance_by_pair_ang")}
    final.info["density_g_cm3"] = density_g_cm3(final)
    for key in ("region", "fixed"):
        if key in atoms.arrays and key not in final.arrays:
            final.new_array(key, atoms.arrays[key].copy())
    final.calc = calc
    energy = float(final.get_potential_energy())
    summary["density_final_g_cm3"] = density_g_cm3(final)
    summary["energy_final_ev"] = energy
    save("completed")
    final.info["provenance"] = summary["provenance"]
    final.info["melt_quench"] = {
        "preset": cfg.preset, "cell_axes": axes, "total_md_ps": cfg.total_md_ps,
        "quench_rate_k_ps": cfg.quench_rate_k_ps, "quench_ensemble": cfg.quench_ensemble,
        "density_initial_g_cm3": summary["density_initial_g_cm3"],
        "density_final_g_cm3": summary["density_final_g_cm3"], "run_dir": str(rd) if rd else None,
        **_info_checks(summary),
    }
    if rd is not None:
        write_structure(rd / "final.extxyz", final)
        write_json(rd / "summary.json", summary)
    logger.info("melt-quench done: density %.3f -> %.3f g/cm³ in %.0f s", summary["density_initial_g_cm3"],
                summary["density_final_g_cm3"], summary["wall_s"])
    return MeltQuenchResult(
        atoms=final, run_dir=rd, config=cfg, stages=summary["stages"],
        density_initial_g_cm3=summary["density_initial_g_cm3"],
        density_final_g_cm3=summary["density_final_g_cm3"], energy_final_ev=energy,
        wall_s=summary["wall_s"], summary=summary,
    )


def _info_checks(summary: dict) -> dict:
    """The compact Tg and network records that travel with the glass in ``info["melt_quench"]``."""
    out: dict[str, Any] = {}
    tg = summary.get("glass_transition")
    if tg is not None:
        out["glass_transition"] = {
            "tg_k": tg.get("tg_k"), "tg_stderr_k": tg.get("tg_stderr_k"), "tg_source": tg.get("tg_source"),
            **{f"{key}_reason": (tg.get(key) or {}).get("reason") for key in ("volume", "enthalpy") if key in tg},
        }
    network = summary.get("network")
    if network is not None:
        out["network"] = {k: network.get(k) for k in ("converged", "exchanges_per_p", "exchanges_per_p_ps",
                                                       "time_ps", "stopped_by", "reason")}
        out["speciation_steady_before_quench"] = summary.get("speciation_steady_before_quench")
    return out


def _prepare_run_dir(rd: Path, cfg: MeltQuenchConfig, atoms: Atoms, *, force: bool) -> dict:
    """Create or check the protocol folder; returns the previous summary (empty for a new folder)."""
    protocol = rd / "protocol.yaml"
    initial = rd / "initial.extxyz"
    if protocol.exists():
        saved = load_config(protocol, MeltQuenchConfig)
        if config_hash(saved.model_dump(mode="json")) != config_hash(cfg.model_dump(mode="json")) and not force:
            changed = sorted(k for k, v in cfg.model_dump(mode="json").items() if saved.model_dump(mode="json").get(k) != v)
            raise ConfigError(
                f"{rd} holds a melt-quench with other settings ({', '.join(changed)}); use a new folder, restore "
                "the settings, or pass force=True / --force to continue with the new ones"
            )
        if initial.exists():
            before = read_structure(initial)
            same = (len(before) == len(atoms) and before.get_chemical_symbols() == atoms.get_chemical_symbols()
                    and np.allclose(before.positions, atoms.positions, atol=1e-6)
                    and np.allclose(before.cell.array, atoms.cell.array, atol=1e-6))
            if not same and not force:
                raise ConfigError(
                    f"{rd} holds a melt-quench of another structure ({initial.name} differs); use a new folder or "
                    "pass force=True / --force"
                )
        return read_json(rd / "summary.json") if (rd / "summary.json").exists() else {}
    if rd.exists() and any(rd.iterdir()):
        raise ConfigError(f"{rd} exists and is not a melt-quench folder (no protocol.yaml); choose a new folder")
    rd.mkdir(parents=True, exist_ok=True)
    write_structure(initial, atoms)
    from ...structures.io import atomic_path

    with atomic_path(protocol) as tmp:
        tmp.write_text(dump_yaml(cfg))
    return {}


def restart_melt_quench(
    run_dir: str | Path,
    calc: Calculator | None = None,
    *,
    progress: bool = False,
    force: bool = False,
) -> MeltQuenchResult:
    """Continue (or return) the melt–quench in ``run_dir`` from ``protocol.yaml`` and ``initial.extxyz``.

    ``calc`` defaults to the ``potential`` section of ``protocol.yaml``.
    """
    rd = Path(run_dir)
    if not (rd / "protocol.yaml").exists() or not (rd / "initial.extxyz").exists():
        raise ConfigError(f"{rd} is not a melt-quench folder (protocol.yaml and initial.extxyz are missing)")
    cfg = load_config(rd / "protocol.yaml", MeltQuenchConfig)
    if calc is None:
        from ..potentials.factory import load_potential

        calc = load_potential(cfg.potential)
    atoms = read_structure(rd / "initial.extxyz")
    return melt_quench(atoms, calc, cfg, rd, progress=progress, force=force)
