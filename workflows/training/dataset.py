"""Training configurations from tfbsim's own builders, tagged by ``config_type``.

:func:`generate_configurations` runs a list of *recipes*; each returns frames (≤ ``max_atoms`` atoms) with
``info["config_type"]``. Static recipes (crystals, slabs, glasses, interfaces) are instantaneous; the
``teacher_md`` recipes run short MD with the teacher potential (300–2000 K, including a melt–quench) and keep
snapshots. Every recipe's frames are cached in ``<work_dir>/<recipe>.extxyz``, so an interrupted generation
resumes where it stopped; everything is seeded.

=====================  ==========================================================================
config_type            content
=====================  ==========================================================================
``crystal_<name>``     the nine literature phases (+ Li0.5CoO2), ±5 % isotropic/anisotropic strain, rattled
``slab_<name>_<hkl>``  the listed facets with 10 Å vacuum, rattled
``lipon_<mode>``       amorphous LixPOyNz over Li/P 2.5–3.5, N/P 0–1 (motif and random), along a short
                       FIRE pre-relaxation path (high-energy configurations included on purpose)
``glass_<name>``       amorphous Li3PO4 and Li2PO2N
``interface_<stack>``  small Li/LiPON, Li2S/LiPON, LiPON/LiCoO2 cells (when the interface builder exists)
``md_<system>_<T>K``   snapshots of teacher MD (NVT) at 300–2000 K; ``md_quench`` from a melt–quench
=====================  ==========================================================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import SimulationUnstable
from ...structures.io import write_structure
from ..config import StrictModel

__all__ = ["DatasetConfig", "generate_configurations", "RECIPES", "lipon_grid"]

logger = logging.getLogger(__name__)

_FACETS: list[tuple[str, tuple[int, int, int]]] = [
    ("licoo2", (0, 0, 3)), ("licoo2", (1, 0, 4)), ("licoo2", (1, 1, 0)), ("licoo2", (1, 0, 1)),
    ("li", (1, 0, 0)), ("li", (1, 1, 0)), ("li2s", (1, 1, 1)), ("li2s", (1, 1, 0)), ("li2s", (1, 0, 0)),
    ("li3po4", (0, 1, 0)), ("li2o", (1, 1, 1)), ("li3n", (0, 0, 1)), ("li3p", (0, 0, 1)),
]


class DatasetConfig(StrictModel):
    """What :func:`generate_configurations` builds (YAML keys are the field names).

    Attributes
    ----------
    seed
        Seed of every random choice.
    max_atoms
        Largest configuration (atoms); keeps labelling cheap.
    recipes
        Recipe names to run, in order (see :data:`RECIPES`).
    crystal_frames
        Frames per crystal phase (strained and rattled).
    strain_max
        Largest strain per axis (fraction, 0.05 = ±5 %).
    rattle_ang
        Standard deviation of the Gaussian rattle (Å).
    li_metal_scales
        Lattice-constant scales of the Li metal equation-of-state frames (bcc and fcc). The default stops at
        1.22 (1.8 × the volume): beyond it the bcc second shell (at ``a``) and, at 1.4, the first shell sit in the
        last few per cent of a 4.5 Å cutoff, where the student's energy is ~0 but the teacher's (5 Å) still binds
        by 0.8 eV/atom. Those frames cannot be fitted, and fitting them pulls the Li metal energy near
        equilibrium off (measured with Li-only bundled-preset models: +11 to +32 meV/atom on the equilibrium
        crystals and MD snapshots when trained with the 1.3/1.4 frames, −6 to +9 meV/atom without them).
    lipon_atoms
        Atoms per amorphous box.
    lipon_li_per_p, lipon_n_per_p
        Composition grid of the amorphous boxes (O from charge balance).
    relax_path_steps
        FIRE steps after which snapshots of the pre-relaxation path are kept.
    md_lipon_formulas
        Compositions of the amorphous boxes run with teacher MD (one box each, every temperature).
    md_temperatures_k
        Temperatures of the teacher NVT runs on amorphous LiPON.
    md_steps, md_every, md_timestep_fs
        Length, snapshot interval (steps) and time step of each teacher MD run.
    """

    seed: int = 0
    max_atoms: int = 120
    recipes: list[str] = ["crystals", "slabs", "lipon", "glasses", "md_lipon", "md_crystals", "md_quench",
                          "interfaces", "md_interfaces", "li_metal"]
    crystal_frames: int = 8
    strain_max: float = 0.05
    li_metal_scales: list[float] = [0.88, 0.92, 0.96, 1.0, 1.04, 1.08, 1.14, 1.22]
    rattle_ang: float = 0.06
    lipon_atoms: int = 96
    lipon_li_per_p: list[float] = [2.5, 3.0, 3.5]
    lipon_n_per_p: list[float] = [0.0, 0.33, 0.67, 1.0]
    relax_path_steps: list[int] = [0, 6, 20]
    md_lipon_formulas: list[str] = ["Li2.94PO3.5N0.31", "Li2.5PO3N0.5", "Li3.5PO4.25"]
    md_temperatures_k: list[float] = [300.0, 800.0, 1300.0, 2000.0]
    md_steps: int = 200
    md_every: int = 10
    md_timestep_fs: float = 1.0


def lipon_grid(li_per_p: list[float], n_per_p: list[float]) -> list[str]:
    """Charge-balanced LixPOyNz formulas: y = (x + 5 − 3z) / 2 for every (x, z) of the grid."""
    formulas = []
    for x in li_per_p:
        for z in n_per_p:
            y = (x + 5.0 - 3.0 * z) / 2.0
            formulas.append(f"Li{x:g}PO{y:.3g}" + (f"N{z:g}" if z > 0 else ""))
    return formulas


def _tag(frames: list[Atoms], config_type: str) -> list[Atoms]:
    for atoms in frames:
        atoms.info["config_type"] = config_type
        for key in [k for k in atoms.info if k not in {"config_type"}]:
            del atoms.info[key]
        for key in [k for k in atoms.arrays if k not in {"numbers", "positions"}]:
            del atoms.arrays[key]
    return frames


def _supercell_for(atoms: Atoms, max_atoms: int, min_length_ang: float = 7.0) -> tuple[int, int, int]:
    """Smallest repeat with all cell heights ≥ ``min_length_ang`` that stays ≤ ``max_atoms`` (best effort)."""
    from ...structures.packing import cell_widths

    widths = cell_widths(atoms.cell.array)
    reps = [max(1, int(np.ceil(min_length_ang / w))) for w in widths]
    while np.prod(reps) * len(atoms) > max_atoms and max(reps) > 1:
        reps[int(np.argmax(reps))] -= 1
    return tuple(reps)  # type: ignore[return-value]


def _strained(atoms: Atoms, rng: np.random.Generator, strain_max: float, rattle_ang: float) -> Atoms:
    out = atoms.copy()
    eps = rng.uniform(-strain_max, strain_max, 3)
    if rng.random() < 0.5:  # isotropic half of the time
        eps[:] = eps[0]
    shear = rng.uniform(-0.02, 0.02, 3) if rng.random() < 0.3 else np.zeros(3)
    deformation = np.eye(3) + np.diag(eps)
    deformation[0, 1] = deformation[1, 0] = shear[0]
    deformation[0, 2] = deformation[2, 0] = shear[1]
    deformation[1, 2] = deformation[2, 1] = shear[2]
    out.set_cell(out.cell.array @ deformation, scale_atoms=True)
    out.positions += rng.normal(0.0, rattle_ang, out.positions.shape)
    return out


# ------------------------------------------------------------------------------------------- recipes
def _crystals(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    from ...structures.crystals import build_crystal, list_crystals

    frames: list[Atoms] = []
    names = [c["name"] for c in list_crystals()]
    variants: list[tuple[str, dict]] = [(n, {}) for n in names] + [
        ("licoo2", {"li_fraction": 0.5, "supercell": (2, 2, 1)}),
        ("licoo2", {"li_fraction": 0.75, "ordering": "random", "supercell": (2, 2, 1)}),
    ]
    for name, kwargs in variants:
        kwargs = dict(kwargs)
        reps = kwargs.pop("supercell", None) or _supercell_for(build_crystal(name), cfg.max_atoms)
        base = build_crystal(name, supercell=reps, seed=int(rng.integers(1 << 30)) if kwargs else None, **kwargs)
        label = f"crystal_{name}" + (f"_x{kwargs['li_fraction']:g}" if kwargs else "")
        n = cfg.crystal_frames if not kwargs else max(2, cfg.crystal_frames // 2)
        strained = [_strained(base, rng, cfg.strain_max, cfg.rattle_ang) for _ in range(n - 1)]
        frames += _tag([base.copy()] + strained, label)
    return frames


def _li_metal(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    """Li metal equations of state (bcc and fcc, 0.88–1.22 × the lattice constant, rattled) and vacancies.

    The anode's own energy–volume curve: without it a distilled model knows Li only near its compounds'
    densities, and Li metal drifts to the wrong volume (or expands without bound) in a cell relaxation.
    """
    from ase.build import bulk

    frames: list[Atoms] = []
    for structure, a0, reps in (("bcc", 3.44, (3, 3, 3)), ("fcc", 4.33, (2, 2, 2))):
        base = bulk("Li", structure, a=a0, cubic=True).repeat(reps)
        for scale in cfg.li_metal_scales:
            atoms = base.copy()
            atoms.set_cell(base.cell.array * scale, scale_atoms=True)
            atoms.positions += rng.normal(0.0, cfg.rattle_ang, atoms.positions.shape)
            frames.append(atoms)
        vacancy = _strained(base, rng, cfg.strain_max, 2 * cfg.rattle_ang)
        del vacancy[int(rng.integers(len(vacancy)))]
        frames.append(vacancy)
    return _tag(frames, "li_metal")


def _slabs(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    from ...structures.crystals import build_crystal
    from ...structures.slabs import make_slab

    frames: list[Atoms] = []
    for name, miller in _FACETS:
        bulk = build_crystal(name)
        slab = None
        for thickness in (10.0, 8.0, 6.0, 4.0):
            slab = make_slab(bulk, miller, thickness_ang=thickness, vacuum_ang=10.0, min_lateral_ang=6.0)
            if len(slab) <= cfg.max_atoms:
                break
        if slab is None or len(slab) > cfg.max_atoms:
            logger.info("skipping slab %s %s: smallest has %d atoms", name, miller, len(slab) if slab else -1)
            continue
        hkl = "".join(str(i) for i in miller)
        variants = [slab.copy()] + [_strained(slab, rng, 0.02, cfg.rattle_ang) for _ in range(2)]
        for v in variants:  # keep the vacuum: undo any strain along z
            v.cell[2] = slab.cell[2]
        frames += _tag(variants, f"slab_{name}_{hkl}")
    return frames


def _relax_path(atoms: Atoms, teacher: Calculator, steps: list[int]) -> list[Atoms]:
    """Snapshots of a FIRE pre-relaxation of ``atoms`` after the given numbers of steps."""
    from ase.optimize import FIRE

    work = atoms.copy()
    work.calc = teacher
    opt = FIRE(work, maxstep=0.1, logfile=None)
    out: list[Atoms] = []
    done = 0
    for target in sorted(steps):
        if target > done:
            opt.run(fmax=0.05, steps=target - done)
            done = target
        out.append(Atoms(numbers=work.numbers, positions=work.positions.copy(), cell=work.cell, pbc=True))
    return out


def _lipon(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    from ...structures.amorphous import build_lipon

    frames: list[Atoms] = []
    for formula in lipon_grid(cfg.lipon_li_per_p, cfg.lipon_n_per_p):
        for mode in ("motif", "random"):
            atoms = build_lipon(formula, cfg.lipon_atoms, mode=mode, seed=int(rng.integers(1 << 30)),
                                density_g_cm3=float(rng.uniform(2.2, 2.6)), allow_charged=True)
            path = _relax_path(atoms, teacher, cfg.relax_path_steps) if teacher is not None else [atoms]
            frames += _tag(path, f"lipon_{mode}")
    return frames


def _glasses(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    from ...structures.amorphous import build_lipon

    frames: list[Atoms] = []
    for formula in ("Li3PO4", "Li2PO2N"):
        atoms = build_lipon(formula, cfg.lipon_atoms, seed=int(rng.integers(1 << 30)))
        path = _relax_path(atoms, teacher, cfg.relax_path_steps) if teacher is not None else [atoms]
        frames += _tag(path, f"glass_{formula}")
    return frames


def _interface_cells(cfg: DatasetConfig, rng: np.random.Generator) -> list[tuple[str, Atoms]]:
    """Small interface cells from the interface builder, if installed in this version."""
    try:
        from ...interfaces import builder  # noqa: F401
        from ...interfaces.builder import build_interface
    except ImportError:
        logger.info("interfaces builder not available: skipping interface configurations")
        return []
    cells: list[tuple[str, Atoms]] = []
    # thicknesses: at least two layers of each phase (the builder refuses less), small lateral cells
    for stack, thickness in (("li:100,lipon", "6,9"), ("li2s:111,lipon", "7,9"), ("lipon,licoo2:104", "9,5"),
                             ("li:100,li2o", "5,5.5"), ("li:100,li3n", "5,8"), ("li:110,li3p:100", "5,8")):
        try:
            built = build_interface(stack, thickness_ang=[float(t) for t in thickness.split(",")],
                                    lateral_min_ang=6.0, seed=int(rng.integers(1 << 30)), max_strain_pct=8.0)
        except Exception as exc:  # noqa: BLE001 - a recipe that cannot build is skipped, not fatal
            logger.info("interface %s skipped: %s", stack, exc)
            continue
        atoms = built[0] if isinstance(built, tuple) else built
        if len(atoms) <= int(1.6 * cfg.max_atoms):
            cells.append((stack.replace(":", "").replace(",", "_"), atoms))
    return cells


def _interfaces(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    frames: list[Atoms] = []
    for label, atoms in _interface_cells(cfg, rng):
        path = _relax_path(atoms, teacher, [0, 15, 60]) if teacher is not None else [atoms]
        frames += _tag(path, f"interface_{label}")
    return frames


def _teacher_md(atoms: Atoms, teacher: Calculator, *, temperature_k: float | list, steps: int, every: int,
                timestep_fs: float, seed: int) -> list[Atoms]:
    """Snapshots every ``every`` steps of an NVT (Langevin) run with the teacher (via the MD engine)."""
    import tempfile

    from ...analysis.h5md import read_h5md_frames
    from ..md.config import MDConfig
    from ..md.run import run_md

    schedule = temperature_k if isinstance(temperature_k, list) else None
    t0 = schedule[0][1] if schedule else float(temperature_k)
    config = MDConfig(ensemble="nvt-langevin", steps=steps, timestep_fs=timestep_fs, temperature_k=t0,
                      temperature_schedule=schedule, friction_ps_inv=5.0, traj_every=every,
                      checkpoint_every=max(steps, 1), log_every=every, seed=seed, initial_temperature_k=t0,
                      guard_t_factor=4.0)
    with tempfile.TemporaryDirectory(prefix="tfbsim-teacher-md-") as tmp:
        try:
            run_md(atoms, teacher, config, Path(tmp) / "run")
        except SimulationUnstable as exc:  # keep the frames before the guard tripped
            logger.warning("teacher MD stopped early (%s); keeping the frames written so far", exc)
        frames = read_h5md_frames(Path(tmp) / "run" / "traj.h5md")
    return [Atoms(numbers=f.numbers, positions=f.positions, cell=f.cell, pbc=True) for f in frames[1:]]


def _relaxed_lipon(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator, formula: str) -> Atoms:
    from ...structures.amorphous import build_lipon
    from ..md.relax import relax

    atoms = build_lipon(formula, cfg.lipon_atoms, seed=int(rng.integers(1 << 30)))
    return relax(atoms, teacher, fmax_ev_ang=0.2, max_steps=150, cell=False).atoms


def _md_lipon(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    if teacher is None:
        return []
    frames: list[Atoms] = []
    for formula in cfg.md_lipon_formulas:
        start = _relaxed_lipon(cfg, rng, teacher, formula)
        for temperature in cfg.md_temperatures_k:
            snaps = _teacher_md(start, teacher, temperature_k=temperature, steps=cfg.md_steps, every=cfg.md_every,
                                timestep_fs=cfg.md_timestep_fs, seed=int(rng.integers(1 << 30)))
            frames += _tag(snaps, f"md_lipon_{int(temperature)}K")
    return frames


def _md_crystals(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    from ...structures.crystals import build_crystal

    if teacher is None:
        return []
    frames: list[Atoms] = []
    for name, temperature in (("li", 400.0), ("li2s", 900.0), ("li3po4", 900.0), ("licoo2", 900.0),
                              ("li2o", 900.0), ("li3n", 700.0), ("li3p", 700.0), ("li2po2n", 900.0)):
        unit = build_crystal(name)
        atoms = build_crystal(name, supercell=_supercell_for(unit, cfg.max_atoms))
        snaps = _teacher_md(atoms, teacher, temperature_k=temperature, steps=cfg.md_steps // 2, every=cfg.md_every,
                            timestep_fs=cfg.md_timestep_fs, seed=int(rng.integers(1 << 30)))
        frames += _tag(snaps, f"md_crystal_{name}")
    return frames


def _md_quench(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    if teacher is None:
        return []
    start = _relaxed_lipon(cfg, rng, teacher, "Li2.94PO3.5N0.31")
    total_ps = 2 * cfg.md_steps * cfg.md_timestep_fs / 1000.0
    schedule = [[0.0, 2000.0], [0.3 * total_ps, 2000.0], [total_ps, 300.0]]
    snaps = _teacher_md(start, teacher, temperature_k=schedule, steps=2 * cfg.md_steps, every=cfg.md_every,
                        timestep_fs=cfg.md_timestep_fs, seed=int(rng.integers(1 << 30)))
    return _tag(snaps, "md_quench")


def _md_interfaces(cfg: DatasetConfig, rng: np.random.Generator, teacher: Calculator | None) -> list[Atoms]:
    from ..md.relax import relax

    if teacher is None:
        return []
    frames: list[Atoms] = []
    for label, atoms in _interface_cells(cfg, rng):
        start = relax(atoms, teacher, fmax_ev_ang=0.2, max_steps=120, cell=False).atoms
        temperature = 400.0 if label.startswith("li") else 700.0
        snaps = _teacher_md(start, teacher, temperature_k=temperature, steps=cfg.md_steps // 2, every=cfg.md_every,
                            timestep_fs=cfg.md_timestep_fs, seed=int(rng.integers(1 << 30)))
        frames += _tag(snaps, f"md_interface_{label}")
    return frames


Recipe = Callable[[DatasetConfig, np.random.Generator, "Calculator | None"], list[Atoms]]

#: Recipe name -> function(config, rng, teacher) -> frames. Recipes named md_* need the teacher.
RECIPES: dict[str, Recipe] = {
    "crystals": _crystals,
    "li_metal": _li_metal,
    "slabs": _slabs,
    "lipon": _lipon,
    "glasses": _glasses,
    "interfaces": _interfaces,
    "md_lipon": _md_lipon,
    "md_crystals": _md_crystals,
    "md_quench": _md_quench,
    "md_interfaces": _md_interfaces,
}


def generate_configurations(
    config: DatasetConfig,
    work_dir: str | os.PathLike,
    *,
    teacher: Calculator | None = None,
    progress: bool = False,
    only: list[str] | None = None,
) -> list[Atoms]:
    """Run the recipes of ``config`` and return all frames (cached per recipe in ``work_dir``).

    Parameters
    ----------
    config
        What to build.
    work_dir
        Folder for ``<recipe>.extxyz`` caches; a recipe whose cache exists is not run again.
    teacher
        Calculator for pre-relaxation paths and teacher MD (``None``: static recipes only).
    progress
        Progress bar over recipes.
    only
        Run (and return) only these recipes, in this order — e.g. to spread the expensive teacher-MD recipes
        over several processes sharing ``work_dir``. Every recipe keeps its own random stream (seeded by its
        position in ``config.recipes``), so the frames do not depend on how the work was split.
    """
    from ase.io import read
    from tqdm.auto import tqdm

    from ...errors import ConfigError

    unknown = sorted((set(config.recipes) | set(only or [])) - set(RECIPES))
    if unknown:
        raise ConfigError(f"unknown dataset recipe(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    frames: list[Atoms] = []
    if only is not None and not set(only) <= set(config.recipes):
        missing = sorted(set(only) - set(config.recipes))
        raise ConfigError(f"recipes {missing} are not in the configuration's recipes")
    for name in tqdm(only if only is not None else config.recipes, desc="dataset recipes", disable=not progress):
        k = config.recipes.index(name)
        cache = work / f"{name}.extxyz"
        if cache.exists():
            recipe_frames = read(cache, index=":", format="extxyz") if cache.stat().st_size else []
            logger.info("recipe %s: %d frames from cache", name, len(recipe_frames))
        else:
            rng = np.random.default_rng([config.seed, k])
            recipe_frames = [a for a in RECIPES[name](config, rng, teacher) if len(a) <= 2 * config.max_atoms]
            if recipe_frames:
                write_structure(cache, recipe_frames)
            else:
                cache.touch()
            logger.info("recipe %s: built %d frames", name, len(recipe_frames))
        frames += recipe_frames
    return frames


def _summary(frames: list[Atoms]) -> dict[str, Any]:
    from collections import Counter

    return dict(Counter(str(a.info.get("config_type")) for a in frames))
