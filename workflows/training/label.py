"""Labelling configurations with a teacher potential (or any ASE calculator, e.g. DFT on HPC).

Output is extended XYZ in the keys mace_run_train reads: ``info["REF_energy"]`` (eV),
``arrays["REF_forces"]`` (eV/Å) and ``info["REF_stress"]`` (Voigt 6, eV/Å³, ASE sign convention; only for
3-D periodic frames). Labelling is resumable: frames are identified by ``info["frame_id"]`` (a hash of
species, positions and cell), frames already in the output are skipped, and each labelled frame is appended
with one write, so an interrupted run loses at most the frame in progress (a torn last frame is dropped on
resume). Labellers may share one output (two processes with other ``--only`` selections, or hosts on one file
system): appends take an ``flock`` of ``<data>.lock`` and skip a frame another labeller wrote meanwhile. A
dataset card (``<data>.card.json``) counts frames per ``config_type`` and element and records the teacher.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError, TrajectoryError
from ...structures.io import atomic_path, write_json
from ..potentials.factory import check_coverage
from ..provenance import provenance, utc_now

__all__ = ["REF_KEYS", "frame_id", "select_frames", "label_frames", "read_failed", "read_labelled", "dataset_card",
           "check_labelled", "isolated_atom_energies"]

logger = logging.getLogger(__name__)

REF_KEYS = ("REF_energy", "REF_forces", "REF_stress")


def frame_id(atoms: Atoms) -> str:
    """A stable identifier of a configuration: sha1 of species, positions (1e-6 Å) and cell."""
    digest = hashlib.sha1()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.round(atoms.positions, 6).tobytes())
    digest.update(np.round(atoms.cell.array, 6).tobytes())
    return digest.hexdigest()[:16]


def select_frames(frames: list[Atoms], only: list[str]) -> list[Atoms]:
    """The frames whose ``info`` matches every ``KEY=GLOB`` of ``only`` (e.g. ``split=test``, ``config_type=lipon_*``).

    Labelling order is a choice (a slow DFT set can label its held-out frames, or its training frames, first);
    frame identity is the content hash, so passes with different selections into one output never label a frame
    twice.

    Raises
    ------
    ConfigError
        A selector without ``=``, or a selection that matches no frame (it names the keys and values present).
    """
    from fnmatch import fnmatchcase

    rules = []
    for rule in only:
        key, sep, pattern = rule.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--only {rule!r}: write KEY=GLOB, e.g. split=test or config_type=lipon_*")
        rules.append((key.strip(), pattern.strip()))
    kept = [a for a in frames if all(fnmatchcase(str(a.info.get(k, "")), pat) for k, pat in rules)]
    if frames and not kept:
        present = {k: sorted({str(a.info.get(k, "")) for a in frames}) for k, _ in rules}
        raise ConfigError(f"--only {' '.join(only)} matches none of the {len(frames)} frames; values present: "
                          + "; ".join(f"{k}: {', '.join(v[:12])}" for k, v in present.items()))
    return kept


def _read_good_frames(path: Path) -> list[Atoms]:
    """Frames of an extxyz file up to the first unreadable one (a torn last write)."""
    from ase.io import iread

    frames: list[Atoms] = []
    if not path.exists() or path.stat().st_size == 0:
        return frames
    try:
        for atoms in iread(path, index=":", format="extxyz"):
            frames.append(atoms)
    except Exception:  # noqa: BLE001 - any parse error means a torn tail
        logger.warning("%s: dropping a partially written last frame (kept %d frames)", path, len(frames))
        _rewrite(path, frames)
    return frames


def _rewrite(path: Path, frames: list[Atoms]) -> None:
    from ase.io import write

    with atomic_path(path) as tmp:
        write(tmp, frames, format="extxyz")


def _append(path: Path, atoms: Atoms) -> None:
    from ase.io import write

    buffer = io.StringIO()
    write(buffer, atoms, format="extxyz")
    data = buffer.getvalue().encode()
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


_FRAME_ID = re.compile(rb"\bframe_id=\"?([0-9A-Za-z_-]+)")


class _SharedOutput:
    """The output file of labellers that may run side by side (two processes, two hosts on one file system).

    Every append, failure record and card update happens under an ``flock`` of ``<out>.lock``; before an
    append, the bytes other processes added since this one last looked are scanned for ``frame_id`` s, and a
    frame another labeller wrote meanwhile is not written twice.
    """

    def __init__(self, path: Path) -> None:
        from ..campaigns.locks import file_lock

        self.path = path
        self._lock = lambda: file_lock(path.with_name(path.name + ".lock"))
        self._seen = 0
        self._written: set[str] = set()

    def _written_so_far(self) -> set[str]:
        """Every ``frame_id`` in the file (only the bytes added since the last look are read)."""
        if self.path.exists():
            with open(self.path, "rb") as handle:
                handle.seek(self._seen)
                data = handle.read()
            self._seen += len(data)
            self._written |= {m.group(1).decode() for m in _FRAME_ID.finditer(data)}
        return self._written

    def append(self, fid: str, atoms: Atoms, card: Callable[[], Any] | None = None) -> bool:
        """Append ``atoms`` unless ``fid`` was written by another labeller meanwhile; then ``card()``."""
        with self._lock():
            if fid in self._written_so_far():
                logger.info("frame %s was labelled by another process meanwhile; not written twice", fid)
                return False
            _append(self.path, atoms)
            if card is not None:
                card()
        return True

    def record_failed(self, row: dict[str, Any]) -> None:
        with self._lock():
            _record_failed(self.path, row)

    def card(self, make: Callable[[], Any]) -> Any:
        with self._lock():
            return make()


def _failed_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".failed.jsonl")


def read_failed(out_path: str | os.PathLike) -> list[dict[str, Any]]:
    """The frames recorded as failed next to ``out_path`` (``<out>.failed.jsonl``; one JSON object a line)."""
    import json

    path = _failed_path(Path(out_path))
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line
            continue
    return rows


def _record_failed(out_path: Path, row: dict[str, Any]) -> None:
    import json

    with open(_failed_path(out_path), "a") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


CalcSource = Calculator | Callable[[], Calculator]


def _label_one(atoms: Atoms, calc: Calculator, max_force_ev_ang: float) -> tuple[str, Any]:
    """("ok", labelled Atoms) | ("rejected", reason) | ("failed", reason) for one frame."""
    import time

    from .cp2k import LabellingFailed

    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.calc = calc
    t0 = time.perf_counter()
    try:
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces())
        stress = np.array(work.get_stress(voigt=True)) if work.pbc.all() else None
    except LabellingFailed as exc:
        return "failed", str(exc)
    if not np.isfinite(energy) or not np.isfinite(forces).all():
        return "failed", "non-finite energy or forces"
    if np.abs(forces).max() > max_force_ev_ang:
        return "rejected", f"max |F| {np.abs(forces).max():.1f} eV/Å > {max_force_ev_ang:g}"
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    for key in ("config_type", "split", "source"):
        if key in atoms.info:
            out.info[key] = str(atoms.info[key])
    out.info.setdefault("config_type", "unknown")
    out.info["REF_energy"] = energy
    out.arrays["REF_forces"] = forces
    if stress is not None:
        out.info["REF_stress"] = stress
    out.info["label_wall_s"] = round(time.perf_counter() - t0, 2)
    return "ok", out


def label_frames(
    frames: list[Atoms],
    calc: CalcSource,
    out_path: str | os.PathLike,
    *,
    max_force_ev_ang: float = 50.0,
    workers: int = 1,
    retry_failed: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Label ``frames`` with ``calc`` and append them to ``out_path`` (resumable, frame by frame).

    Parameters
    ----------
    frames
        Configurations; ``info["config_type"]`` (default ``"unknown"``), ``info["split"]`` (``train``/``test``)
        and ``info["source"]`` are kept.
    calc
        Teacher calculator (from the potential factory, a DFT code such as
        :class:`~tfbsim.workflows.training.cp2k.Cp2kCalculator`), or a zero-argument factory of one — needed
        for ``workers > 1`` (one calculator per worker).
    out_path
        Extended-XYZ output; frames already present (same ``frame_id``) are skipped.
    max_force_ev_ang
        Frames whose teacher forces exceed this are rejected (overlapping atoms; not useful for training).
    workers
        Frames labelled at once (threads, each driving its own calculator; for subprocess codes such as
        CP2K). Never more than the free cores divided by the code's threads.
    retry_failed
        Label again the frames recorded as failed in ``<out>.failed.jsonl`` (default: skip them).
    progress
        Show a progress bar (a log line with the ETA follows every frame either way).

    Returns
    -------
    dict
        ``n_labelled``, ``n_skipped``, ``n_rejected``, ``n_failed``, ``wall_s`` and the dataset card.

    Notes
    -----
    Failed frames (SCF not converged, timeout, solver error, non-finite numbers) and rejected ones (forces
    above ``max_force_ev_ang``) are appended to ``<out>.failed.jsonl`` with the reason and are never kept.
    """
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    if workers < 1:
        raise ConfigError(f"workers must be ≥ 1, got {workers}")
    factory = calc if not isinstance(calc, Calculator) else None
    if factory is None and workers > 1:
        raise ConfigError("workers > 1 needs a calculator factory (one calculator per worker), not one calculator")
    probe = calc if isinstance(calc, Calculator) else factory()
    if "elements" in probe.parameters:
        for atoms in frames:
            check_coverage(probe, atoms)
    out_path = Path(out_path)
    _check_same_teacher(out_path, probe)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = {a.info.get("frame_id") for a in _read_good_frames(out_path)}
    if not retry_failed:
        done |= {row.get("frame_id") for row in read_failed(out_path)}
    todo = []
    for atoms in frames:
        fid = atoms.info.get("frame_id") or frame_id(atoms)
        if fid not in done:
            todo.append((fid, atoms))
            done.add(fid)
    n_skip = len(frames) - len(todo)
    started, t0 = utc_now(), time.perf_counter()
    counts = Counter()
    local = threading.local()

    def work(item: tuple[str, Atoms]) -> tuple[str, Atoms, str, Any]:
        if factory is None:
            this = probe
        else:
            if not hasattr(local, "calc"):
                local.calc = factory()
            this = local.calc
        status, payload = _label_one(item[1], this, max_force_ev_ang)
        return item[0], item[1], status, payload

    shared = _SharedOutput(out_path)

    def card() -> dict[str, Any]:
        return dataset_card(out_path, teacher=probe, started_utc=started)

    # DFT (minutes a frame): keep the card current after every frame, so that a killed run leaves it right
    slow = getattr(probe, "settings", None) is not None
    bar = tqdm(total=len(todo), desc="labelling", unit="frame", disable=not progress)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for fid, atoms, status, payload in pool.map(work, todo):
            ctype = str(atoms.info.get("config_type", "unknown"))
            if status == "ok":
                payload.info["frame_id"] = fid
                if not shared.append(fid, payload, card if slow else None):
                    status = "elsewhere"
            else:
                shared.record_failed({"frame_id": fid, "config_type": ctype, "status": status,
                                      "reason": payload, "utc": utc_now()})
                logger.warning("frame %s (%s) %s: %s — recorded in %s, not kept", fid, ctype, status, payload,
                               _failed_path(out_path).name)
            counts[status] += 1
            bar.update(1)
            n_done = sum(counts.values())
            elapsed = time.perf_counter() - t0
            eta = elapsed / n_done * (len(todo) - n_done)
            logger.info("labelled %d/%d (%s, %s) elapsed %.0f s, ETA %.0f s", n_done, len(todo), ctype, status,
                        elapsed, eta)
    bar.close()
    wall = time.perf_counter() - t0
    card_now = shared.card(card)
    logger.info("labelled %d new frames (%d already there or recorded failed, %d written meanwhile by another "
                "labeller, %d rejected, %d failed) in %.1f s", counts["ok"], n_skip, counts["elsewhere"],
                counts["rejected"], counts["failed"], wall)
    return {"n_labelled": counts["ok"], "n_skipped": n_skip + counts["elsewhere"], "n_rejected": counts["rejected"],
            "n_failed": counts["failed"], "wall_s": wall, "card": card_now}


def _check_same_teacher(out_path: Path, teacher: Calculator) -> None:
    """Refuse to append labels of another method (spec, model file or level-of-theory setting) to a dataset."""
    card_path = out_path.with_name(out_path.name + ".card.json")
    if not (out_path.exists() and card_path.exists()):
        return
    import json

    old = json.loads(card_path.read_text()).get("teacher")
    if not old:
        return
    params = teacher.parameters
    spec = params.get("spec", type(teacher).__name__)
    differences = [] if old.get("spec") == spec else [f"method {old.get('spec')} → {spec}"]
    if old.get("sha256") and params.get("sha256") and old["sha256"] != params["sha256"]:
        differences.append(f"model sha256 {old['sha256'][:12]}… → {params['sha256'][:12]}…")
    settings = getattr(teacher, "settings", None)
    if "settings" in old and hasattr(settings, "level_of_theory"):
        differences += [f"{k} {old['settings'][k]!r} → {v!r}" for k, v in settings.level_of_theory().items()
                        if k in old["settings"] and old["settings"][k] != v]
    if differences:
        raise ConfigError(f"{out_path} holds labels of another level of theory ({'; '.join(differences)}): one "
                          "dataset, one method — label into a new file, or use the settings in "
                          f"{card_path.name}")


def read_labelled(path: str | os.PathLike) -> list[Atoms]:
    """Read a labelled extxyz file, checking the REF_* keys (see :func:`check_labelled`)."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such data file; check the path")
    try:
        frames = read(path, index=":", format="extxyz")
    except Exception as exc:  # noqa: BLE001 - any parse error: a truncated or foreign file
        raise TrajectoryError(f"{path}: cannot read it as extended XYZ ({type(exc).__name__}: {exc}); "
                              "re-create it with `tfbsim train label` or check that the copy is complete") from exc
    check_labelled(frames, path)
    return frames


def check_labelled(frames: list[Atoms], source: str | os.PathLike = "data") -> None:
    """Raise :class:`ConfigError` naming the keys found when frames lack REF_energy / REF_forces."""
    if not frames:
        raise ConfigError(f"{source}: no frames")
    for i, atoms in enumerate(frames):
        missing = [k for k in ("REF_energy",) if k not in atoms.info] + [
            k for k in ("REF_forces",) if k not in atoms.arrays
        ]
        if missing:
            found = sorted(set(atoms.info) | set(atoms.arrays) - {"numbers", "positions"})
            raise ConfigError(
                f"{source}: frame {i} lacks {', '.join(missing)} (found keys: {', '.join(found) or 'none'}); "
                "label the data with `tfbsim train label` or rename your keys to REF_energy/REF_forces/REF_stress"
            )


def dataset_card(path: str | os.PathLike, *, teacher: Calculator | None = None, started_utc: str | None = None) -> dict[str, Any]:
    """Count frames per config_type and atoms per element of a labelled file; write ``<path>.card.json``."""
    from ase.io import iread

    path = Path(path)
    per_type: Counter[str] = Counter()
    per_split: Counter[str] = Counter()
    per_element: Counter[str] = Counter()
    atoms_per_type: Counter[str] = Counter()
    n_frames = 0
    if path.exists():
        for atoms in iread(path, index=":", format="extxyz"):
            n_frames += 1
            ctype = str(atoms.info.get("config_type", "unknown"))
            per_type[ctype] += 1
            per_split[str(atoms.info.get("split", "unassigned"))] += 1
            atoms_per_type[ctype] += len(atoms)
            per_element.update(atoms.get_chemical_symbols())
    card: dict[str, Any] = {
        "data_file": path.name,
        "n_frames": n_frames,
        "n_atoms": int(sum(per_element.values())),
        "frames_per_config_type": dict(sorted(per_type.items())),
        "atoms_per_config_type": dict(sorted(atoms_per_type.items())),
        "atoms_per_element": dict(sorted(per_element.items())),
        "frames_per_split": dict(sorted(per_split.items())),
    }
    failed = read_failed(path)
    if failed:
        card["n_failed_or_rejected"] = len(failed)
        card["failed_per_reason"] = dict(Counter(str(r.get("reason", "?")).split(":")[0] for r in failed))
    if teacher is not None:
        params = teacher.parameters
        card["teacher"] = {
            "spec": params.get("spec", type(teacher).__name__),
            "sha256": params.get("sha256"),
            "version": params.get("chgnet_version") or params.get("mace_version") or params.get("version"),
        }
        if "settings" in params:  # a DFT code: every setting that changes the labels
            card["teacher"]["settings"] = params["settings"]
        card["provenance"] = provenance(calc=teacher, started_utc=started_utc)
    write_json(path.with_name(path.name + ".card.json"), card)
    return card


def isolated_atom_energies(calc: Calculator, elements: list[str], *, box_ang: float = 20.0) -> dict[str, float]:
    """Energy of one atom of each element alone in a periodic cubic box (eV): the reference energies (E0s) that
    give a model trained on ``calc``'s labels the same dissociation limit.

    Parameters
    ----------
    calc
        The labelling calculator (teacher potential or DFT).
    elements
        Chemical symbols.
    box_ang
        Edge of the cubic box (Å); larger than the calculator's cutoff, so the atom sees no image.
    """
    check_coverage(calc, elements)
    energies = {}
    if hasattr(calc, "isolated_atom_energy"):  # DFT: spin-polarised free atoms at their ground-state multiplicity
        for symbol in elements:
            energies[symbol] = float(calc.isolated_atom_energy(symbol))
        logger.info("isolated-atom energies (eV): %s", ", ".join(f"{k} {v:.4f}" for k, v in energies.items()))
        return energies
    for symbol in elements:
        atoms = Atoms(symbol, positions=[[0.0, 0.0, 0.0]], cell=[box_ang] * 3, pbc=True)
        atoms.calc = calc
        energies[symbol] = float(atoms.get_potential_energy())
    logger.info("isolated-atom energies (eV): %s", ", ".join(f"{k} {v:.4f}" for k, v in energies.items()))
    return energies
