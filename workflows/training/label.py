"""Labelling configurations with a teacher potential (or any ASE calculator, e.g. DFT on HPC).

Output is extended XYZ in the keys mace_run_train reads: ``info["REF_energy"]`` (eV),
``arrays["REF_forces"]`` (eV/Å) and ``info["REF_stress"]`` (Voigt 6, eV/Å³, ASE sign convention; only for
3-D periodic frames). Labelling is resumable: frames are identified by ``info["frame_id"]`` (a hash of
species, positions and cell), frames already in the output are skipped, and each labelled frame is appended
with one write, so an interrupted run loses at most the frame in progress (a torn last frame is dropped on
resume). A dataset card (``<data>.card.json``) counts frames per ``config_type`` and element and records the
teacher.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError
from ...structures.io import atomic_path, write_json
from ..potentials.factory import check_coverage
from ..provenance import provenance, utc_now

__all__ = ["REF_KEYS", "frame_id", "label_frames", "read_labelled", "dataset_card", "check_labelled",
           "isolated_atom_energies"]

logger = logging.getLogger(__name__)

REF_KEYS = ("REF_energy", "REF_forces", "REF_stress")


def frame_id(atoms: Atoms) -> str:
    """A stable identifier of a configuration: sha1 of species, positions (1e-6 Å) and cell."""
    digest = hashlib.sha1()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.round(atoms.positions, 6).tobytes())
    digest.update(np.round(atoms.cell.array, 6).tobytes())
    return digest.hexdigest()[:16]


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


def label_frames(
    frames: list[Atoms],
    calc: Calculator,
    out_path: str | os.PathLike,
    *,
    max_force_ev_ang: float = 50.0,
    progress: bool = False,
) -> dict[str, Any]:
    """Label ``frames`` with ``calc`` and append them to ``out_path`` (resumable).

    Parameters
    ----------
    frames
        Configurations; ``info["config_type"]`` is kept (default ``"unknown"``).
    calc
        Teacher calculator (from the potential factory, or any ASE calculator such as a DFT code).
    out_path
        Extended-XYZ output; frames already present (same ``frame_id``) are skipped.
    max_force_ev_ang
        Frames whose teacher forces exceed this are rejected (overlapping atoms; not useful for training).
    progress
        Show a progress bar.

    Returns
    -------
    dict
        ``n_labelled``, ``n_skipped``, ``n_rejected``, ``wall_s`` and the dataset card.
    """
    import time

    from tqdm.auto import tqdm

    if "elements" in calc.parameters:
        for atoms in frames:
            check_coverage(calc, atoms)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = {a.info.get("frame_id") for a in _read_good_frames(out_path)}
    started, t0 = utc_now(), time.perf_counter()
    n_new = n_skip = n_rej = 0
    for atoms in tqdm(frames, desc="labelling", unit="frame", disable=not progress):
        fid = atoms.info.get("frame_id") or frame_id(atoms)
        if fid in done:
            n_skip += 1
            continue
        work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        work.calc = calc
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces())
        if not np.isfinite(energy) or not np.isfinite(forces).all() or np.abs(forces).max() > max_force_ev_ang:
            n_rej += 1
            logger.info("rejected frame %s (%s): max |F| %.1f eV/Å", fid, atoms.info.get("config_type"), np.abs(forces).max())
            done.add(fid)
            continue
        out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        out.info["config_type"] = str(atoms.info.get("config_type", "unknown"))
        out.info["frame_id"] = fid
        out.info["REF_energy"] = energy
        out.arrays["REF_forces"] = forces
        if work.pbc.all():
            out.info["REF_stress"] = np.array(work.get_stress(voigt=True))
        _append(out_path, out)
        done.add(fid)
        n_new += 1
    wall = time.perf_counter() - t0
    card = dataset_card(out_path, teacher=calc, started_utc=started)
    logger.info("labelled %d new frames (%d already there, %d rejected) in %.1f s", n_new, n_skip, n_rej, wall)
    return {"n_labelled": n_new, "n_skipped": n_skip, "n_rejected": n_rej, "wall_s": wall, "card": card}


def read_labelled(path: str | os.PathLike) -> list[Atoms]:
    """Read a labelled extxyz file, checking the REF_* keys (see :func:`check_labelled`)."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such data file; check the path")
    frames = read(path, index=":", format="extxyz")
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
    per_element: Counter[str] = Counter()
    atoms_per_type: Counter[str] = Counter()
    n_frames = 0
    if path.exists():
        for atoms in iread(path, index=":", format="extxyz"):
            n_frames += 1
            ctype = str(atoms.info.get("config_type", "unknown"))
            per_type[ctype] += 1
            atoms_per_type[ctype] += len(atoms)
            per_element.update(atoms.get_chemical_symbols())
    card: dict[str, Any] = {
        "data_file": path.name,
        "n_frames": n_frames,
        "n_atoms": int(sum(per_element.values())),
        "frames_per_config_type": dict(sorted(per_type.items())),
        "atoms_per_config_type": dict(sorted(atoms_per_type.items())),
        "atoms_per_element": dict(sorted(per_element.items())),
    }
    if teacher is not None:
        params = teacher.parameters
        card["teacher"] = {
            "spec": params.get("spec", type(teacher).__name__),
            "sha256": params.get("sha256"),
            "version": params.get("chgnet_version") or params.get("mace_version"),
        }
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
    for symbol in elements:
        atoms = Atoms(symbol, positions=[[0.0, 0.0, 0.0]], cell=[box_ang] * 3, pbc=True)
        atoms.calc = calc
        energies[symbol] = float(atoms.get_potential_energy())
    logger.info("isolated-atom energies (eV): %s", ", ".join(f"{k} {v:.4f}" for k, v in energies.items()))
    return energies
