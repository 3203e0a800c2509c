"""Li vacancy hops by the nudged elastic band, with any potential of the factory, and DFT along the same path.

:func:`vacancy_hop` builds the two end points of one hop in a crystal of the catalogue: a supercell with one
Li removed (the vacancy, neutral cell: the hole it leaves is delocalised, in the model and in DFT alike), and
the same cell with a neighbouring Li moved into the vacancy. :func:`run_neb` relaxes both ends (fixed cell),
interpolates (IDPP), and converges a climbing-image NEB (ASE's :class:`~ase.mep.NEB`, FIRE).
:func:`path_energies` evaluates another calculator (e.g. CP2K PBE) on the *same* images, so the barrier of
the model and the reference are compared along one path — the model card's NEB check.

Barrier: max over images of E − E(initial end), eV. Only forward barriers are reported; the two ends are
symmetry-equivalent for the default hops only when the crystal says so (``delta_e_ev`` tells).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError

__all__ = ["vacancy_hop", "run_neb", "path_energies", "NebResult", "DEFAULT_HOP_SUPERCELLS"]

logger = logging.getLogger(__name__)

# Supercells of the catalogue's conventional cells that keep a hop's images ≥ ~8.5 Å from their own copies
# along the hop while staying ≤ ~64 atoms (DFT cost).
DEFAULT_HOP_SUPERCELLS: dict[str, tuple[int, int, int]] = {"li3po4": (1, 1, 2), "li2po2n": (1, 1, 2),
                                                           "li3po4-beta": (1, 1, 2), "li3n": (2, 2, 2),
                                                           "li2o": (1, 1, 1)}


@dataclass
class NebResult:
    """A converged (or not) band: images, energies (eV, relative to the initial end), barrier, settings."""

    images: list[Atoms]
    energies_ev: list[float]
    barrier_ev: float
    delta_e_ev: float
    converged: bool
    n_steps: int
    hop_ang: float
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no images)."""
        return {"energies_ev": [round(e, 6) for e in self.energies_ev], "barrier_ev": round(self.barrier_ev, 6),
                "delta_e_ev": round(self.delta_e_ev, 6), "converged": self.converged, "n_steps": self.n_steps,
                "hop_ang": round(self.hop_ang, 4), "n_images": len(self.images), **self.info}


def vacancy_hop(crystal: str | Atoms, *, supercell: tuple[int, int, int] | None = None, vacancy: int = 0,
                neighbour: int = 0, max_hop_ang: float = 3.6, species: str = "Li") -> tuple[Atoms, Atoms, dict[str, Any]]:
    """End points of a Li vacancy hop.

    Parameters
    ----------
    crystal
        Catalogue name (``li3po4`` = γ-Li3PO4, ``li2po2n``, …) or a periodic structure.
    supercell
        Repeat of the conventional cell (default from :data:`DEFAULT_HOP_SUPERCELLS`, else 1×1×1).
    vacancy
        Which Li (the ``vacancy``-th Li of the supercell) is removed.
    neighbour
        Which of its Li neighbours (sorted by distance) hops into the vacancy.
    max_hop_ang
        Longest hop considered (Å).
    species
        The element that hops (Li by default).

    Returns
    -------
    initial, final, info
        ``info`` has ``crystal``, ``supercell``, ``vacancy_site``, ``hopping_atom`` and ``hop_ang``.
    """
    from ...structures.crystals import build_crystal

    name = crystal if isinstance(crystal, str) else str(crystal.info.get("tfbsim_name", crystal.get_chemical_formula()))
    base = build_crystal(crystal) if isinstance(crystal, str) else crystal.copy()
    reps = supercell or DEFAULT_HOP_SUPERCELLS.get(name, (1, 1, 1))
    cell = base.repeat(reps)
    from ase.data import atomic_numbers

    if species not in atomic_numbers:
        raise ConfigError(f"species {species!r} is not an element symbol")
    li = np.flatnonzero(cell.numbers == atomic_numbers[species])
    if len(li) < 2:
        raise ConfigError(f"{name}: fewer than two {species} atoms; a vacancy hop needs {species} neighbours")
    if not 0 <= vacancy < len(li):
        raise ConfigError(f"vacancy={vacancy}: {name} {reps} has {len(li)} {species} atoms (0–{len(li) - 1})")
    site = int(li[vacancy])
    others = np.array([i for i in li if i != site])
    dists = cell.get_distances(site, others, mic=True)
    order = np.argsort(dists)
    candidates = [(int(others[k]), float(dists[k])) for k in order if dists[k] <= max_hop_ang]
    if not 0 <= neighbour < len(candidates):
        raise ConfigError(f"neighbour={neighbour}: {species} {site} of {name} has {len(candidates)} neighbours within "
                          f"{max_hop_ang} Å; choose 0–{len(candidates) - 1} or raise max_hop_ang")
    mover, hop = candidates[neighbour]
    target = cell.positions[site].copy()
    vec = cell.get_distance(mover, site, mic=True, vector=True)
    initial = cell.copy()
    final = cell.copy()
    final.positions[mover] = cell.positions[mover] + vec  # Li moves into the vacancy (its minimum image)
    del initial[site]
    del final[site]
    for a in (initial, final):
        a.info = {"tfbsim_name": name}
        for key in list(a.arrays):
            if key not in ("numbers", "positions"):
                del a.arrays[key]
    info = {"crystal": name, "supercell": list(reps), "vacancy_site": site, "hopping_atom": mover,
            "hop_ang": hop, "vacancy_position_ang": target.round(4).tolist(), "n_atoms": len(initial)}
    return initial, final, info


def _relaxed(atoms: Atoms, calc: Calculator, fmax: float, steps: int) -> Atoms:
    from ase.optimize import FIRE

    work = atoms.copy()
    work.calc = calc
    FIRE(work, logfile=None).run(fmax=fmax, steps=steps)
    out = work.copy()
    out.calc = None
    return out


def run_neb(initial: Atoms, final: Atoms, calc: Calculator, *, n_images: int = 5, fmax_ev_ang: float = 0.05,
            max_steps: int = 500, climb: bool = True, relax_endpoints: bool = True, spring_ev_ang2: float = 0.1,
            info: dict | None = None) -> NebResult:
    """Climbing-image NEB between ``initial`` and ``final`` (fixed cell) with ``calc``.

    Parameters
    ----------
    n_images
        Interior images (≥ 3).
    fmax_ev_ang
        Convergence threshold on the NEB forces (eV/Å).
    max_steps
        FIRE steps for the band (and for each end-point relaxation).
    climb
        Climbing image for the last part of the optimisation (after a plain-NEB stage to fmax × 4).
    relax_endpoints
        Relax both ends first (positions only).
    spring_ev_ang2
        Spring constant between images (eV/Å²).
    """
    from ase.mep import NEB
    from ase.optimize import FIRE

    if n_images < 3:
        raise ConfigError(f"n_images must be ≥ 3 interior images, got {n_images}")
    if len(initial) != len(final) or (initial.numbers != final.numbers).any():
        raise ConfigError("NEB end points must have the same atoms in the same order")
    if relax_endpoints:
        initial = _relaxed(initial, calc, fmax_ev_ang, max_steps)
        final = _relaxed(final, calc, fmax_ev_ang, max_steps)
    images = [initial] + [initial.copy() for _ in range(n_images)] + [final]
    for image in images:
        image.calc = calc
    band = NEB(images, k=spring_ev_ang2, climb=False, allow_shared_calculator=True, method="improvedtangent")
    band.interpolate(method="idpp", mic=True)
    opt = FIRE(band, logfile=None)
    opt.run(fmax=4 * fmax_ev_ang, steps=max_steps)
    n_steps = opt.nsteps
    converged = True
    if climb:
        band.climb = True
        opt = FIRE(band, logfile=None)
        converged = bool(opt.run(fmax=fmax_ev_ang, steps=max_steps))
        n_steps += opt.nsteps
    else:
        converged = bool(opt.run(fmax=fmax_ev_ang, steps=max_steps))
    energies = np.array([float(im.get_potential_energy()) for im in images])
    rel = energies - energies[0]
    if not converged:
        logger.warning("NEB not converged to %.3f eV/Å in %d steps; the barrier is approximate", fmax_ev_ang, n_steps)
    out = []
    for image in images:
        frozen = Atoms(numbers=image.numbers, positions=image.positions.copy(), cell=image.cell, pbc=image.pbc)
        out.append(frozen)
    hop = float(np.linalg.norm(final.positions - initial.positions, axis=1).max())
    return NebResult(images=out, energies_ev=rel.tolist(), barrier_ev=float(rel.max()), delta_e_ev=float(rel[-1]),
                     converged=converged, n_steps=n_steps, hop_ang=hop, info=dict(info or {}))


def path_energies(images: list[Atoms], calc: Calculator) -> dict[str, Any]:
    """Energies of ``calc`` on fixed images (eV, relative to the first) and the barrier along that path."""
    energies = []
    for image in images:
        work = Atoms(numbers=image.numbers, positions=image.positions, cell=image.cell, pbc=image.pbc)
        work.calc = calc
        energies.append(float(work.get_potential_energy()))
    rel = np.array(energies) - energies[0]
    return {"energies_ev": rel.round(6).tolist(), "barrier_ev": round(float(rel.max()), 6),
            "delta_e_ev": round(float(rel[-1]), 6)}
