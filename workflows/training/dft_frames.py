"""Small configurations for DFT labelling (≤ ~60 atoms), each assigned to ``train`` or ``test`` up front.

What a PBE fine-tuning set for LiPON needs (issue "Potential v2"): amorphous LixPOyNz over Li/P 2.5–3.5 and
N/P 0–0.6 from MD at 600–1500 K (including strained boxes), the crystals of the phase list, and Li/LiPON
contact cells. Li-hop images come from :mod:`tfbsim.workflows.training.neb` and are appended separately.

The held-out split is decided here, before any label exists, and travels with each frame as
``info["split"]``: every ``test_every``-th frame of each ``config_type`` (the first one is train) is
``test`` — so the test set covers every kind of configuration and nothing downstream can pick it by error.
Frames are interleaved across config types, so a labelling run stopped early still covers all of them.

Sampling MD uses whatever potential is given (the bundled model by default): it only chooses where to label,
the labels come from DFT.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ..config import StrictModel
from .dataset import _strained, _supercell_for, _tag, _teacher_md, lipon_grid

__all__ = ["DftFramesConfig", "dft_frames", "assign_split", "interleave"]

logger = logging.getLogger(__name__)


class DftFramesConfig(StrictModel):
    """What :func:`dft_frames` builds (YAML keys are the field names).

    Attributes
    ----------
    seed
        Seed of every random choice.
    max_atoms
        Largest cell (atoms); DFT cost grows as ~N².
    lipon_li_per_p, lipon_n_per_p
        Composition grid of the amorphous boxes (O from charge balance).
    lipon_p_units
        P atoms per amorphous box (6 gives 42–50 atoms).
    md_temperatures_k
        Temperatures of the sampling MD (one snapshot each, after ``md_steps``).
    md_steps, md_timestep_fs
        Length and time step of each sampling run (it continues from the previous temperature's end).
    strained_temperatures_k
        Temperatures whose snapshot also enters with a random ±``strain_max`` strain.
    strain_max, rattle_ang
        Largest strain per axis (fraction) and Gaussian rattle (Å) of strained/crystal frames.
    crystals, crystal_frames
        Phases of the catalogue and frames per phase (the first unstrained).
    contacts
        Li/LiPON contact cells (built with the interface builder; skipped if larger than 1.5 × max_atoms).
    test_every
        Every ``test_every``-th frame of a config_type is held out (4 → 25 %).
    """

    seed: int = 0
    max_atoms: int = 60
    lipon_li_per_p: list[float] = [2.5, 3.0, 3.5]
    lipon_n_per_p: list[float] = [0.0, 0.3, 0.6]
    lipon_p_units: int = 6
    md_temperatures_k: list[float] = [1500.0, 1200.0, 900.0, 600.0]
    md_steps: int = 400
    md_timestep_fs: float = 1.0
    strained_temperatures_k: list[float] = [1500.0, 900.0]
    strain_max: float = 0.03
    rattle_ang: float = 0.05
    crystals: list[str] = ["li3po4", "li3po4-beta", "li2po2n", "li2o", "li3n", "li3p", "li", "li2s", "licoo2"]
    crystal_frames: int = 4
    contacts: int = 2
    test_every: int = 4


def assign_split(frames: list[Atoms], test_every: int) -> list[Atoms]:
    """Set ``info["split"]``: frames 2, 2 + k, … (1-based, k = ``test_every``) of each config_type are test."""
    seen: dict[str, int] = defaultdict(int)
    for atoms in frames:
        ctype = str(atoms.info.get("config_type", "unknown"))
        seen[ctype] += 1
        atoms.info["split"] = "test" if test_every > 0 and (seen[ctype] - 2) % test_every == 0 else "train"
    return frames


def interleave(frames: list[Atoms]) -> list[Atoms]:
    """Round-robin over config types (keeping each type's order)."""
    groups: dict[str, list[Atoms]] = defaultdict(list)
    for atoms in frames:
        groups[str(atoms.info.get("config_type", "unknown"))].append(atoms)
    out: list[Atoms] = []
    queues = list(groups.values())
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def _counts_for(formula: str, p_units: int) -> int:
    from ...structures.composition import parse_formula

    per_p = parse_formula(formula)
    return int(round(sum(per_p.values()) / per_p["P"] * p_units))


def _amorphous(cfg: DftFramesConfig, rng: np.random.Generator, sampler: Calculator) -> list[Atoms]:
    from ...structures.amorphous import build_lipon
    from ..md.relax import relax

    frames: list[Atoms] = []
    for formula in lipon_grid(cfg.lipon_li_per_p, cfg.lipon_n_per_p):
        n_atoms = _counts_for(formula, cfg.lipon_p_units)
        atoms = build_lipon(formula, n_atoms, seed=int(rng.integers(1 << 30)), allow_charged=True,
                            density_g_cm3=float(rng.uniform(2.3, 2.5)))
        atoms = relax(atoms, sampler, fmax_ev_ang=0.3, max_steps=100, cell=False).atoms
        tag = "lipon_" + ("n" if "N" in formula else "non") + "_md"
        for temperature in cfg.md_temperatures_k:
            snaps = _teacher_md(atoms, sampler, temperature_k=temperature, steps=cfg.md_steps,
                                every=cfg.md_steps, timestep_fs=cfg.md_timestep_fs, seed=int(rng.integers(1 << 30)))
            if not snaps:
                logger.warning("%s at %g K gave no snapshot; skipped", formula, temperature)
                continue
            atoms = snaps[-1]
            frames += _tag([atoms.copy()], tag)
            frames[-1].info["source"] = f"{formula} MD {temperature:g} K"
            if temperature in cfg.strained_temperatures_k:
                strained = _strained(atoms, rng, cfg.strain_max, 0.0)
                frames += _tag([strained], "lipon_strained")
                frames[-1].info["source"] = f"{formula} MD {temperature:g} K, strained ±{cfg.strain_max:g}"
    return frames


def _crystals(cfg: DftFramesConfig, rng: np.random.Generator) -> list[Atoms]:
    from ...structures.crystals import build_crystal

    frames: list[Atoms] = []
    for name in cfg.crystals:
        base = build_crystal(name)
        base = base.repeat(_supercell_for(base, cfg.max_atoms, min_length_ang=6.5))
        variants = [base.copy()] + [_strained(base, rng, cfg.strain_max, cfg.rattle_ang)
                                    for _ in range(cfg.crystal_frames - 1)]
        for v in _tag(variants, f"crystal_{name}"):
            v.info["source"] = f"{name} {len(v)} atoms"
            frames.append(v)
    return frames


def _contacts(cfg: DftFramesConfig, rng: np.random.Generator, sampler: Calculator) -> list[Atoms]:
    from ..md.relax import relax

    try:
        from ...interfaces.builder import build_interface
    except ImportError:
        return []
    frames: list[Atoms] = []
    for i in range(cfg.contacts):
        try:
            built = build_interface("li:100,lipon", thickness_ang=[3.6, 8.6], lateral_min_ang=5.0,
                                    seed=int(rng.integers(1 << 30)), max_strain_pct=8.0)
        except Exception as exc:  # noqa: BLE001 - a cell that cannot be built is skipped and logged
            logger.warning("Li/LiPON contact cell skipped: %s", exc)
            continue
        atoms = built[0] if isinstance(built, tuple) else built
        if len(atoms) > int(1.5 * cfg.max_atoms):
            logger.warning("Li/LiPON contact cell has %d atoms (> 1.5 × max_atoms); skipped", len(atoms))
            continue
        atoms = relax(atoms, sampler, fmax_ev_ang=0.3, max_steps=40 + 40 * i, cell=False).atoms
        frame = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
        frames += _tag([frame], "contact_li_lipon")
        frames[-1].info["source"] = f"Li(100)/LiPON {len(frame)} atoms, pre-relaxed {40 + 40 * i} steps"
    return frames


def dft_frames(cfg: DftFramesConfig, sampler: Calculator, out_path: str | Path | None = None) -> list[Atoms]:
    """Build, split and interleave the DFT configurations (see the module docstring).

    Parameters
    ----------
    cfg
        What to build.
    sampler
        Potential of the sampling MD and pre-relaxations (labels come from DFT, not from it).
    out_path
        If given, the frames are written there (extxyz) — the input of ``tfbsim train label``.
    """
    from ...structures.io import write_structure

    rng = np.random.default_rng(cfg.seed)
    frames = _crystals(cfg, rng) + _contacts(cfg, rng, sampler) + _amorphous(cfg, rng, sampler)
    frames = interleave(assign_split(frames, cfg.test_every))
    if out_path is not None:
        write_structure(out_path, frames)
    n_test = sum(a.info["split"] == "test" for a in frames)
    logger.info("%d DFT frames (%d test), %d–%d atoms", len(frames), n_test, min(map(len, frames)),
                max(map(len, frames)))
    return frames
