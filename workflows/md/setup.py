"""Setup shared by the single-run path (:mod:`.run`) and the batched/GPU path (:mod:`.batch`).

Validation of a starting structure against a configuration, recording the calculator in the configuration,
initial velocities, and the refusals of a restart (changed settings or model, an unstable run, a checkpoint
past the planned end). Both paths call these, so a run is started and restarted under one set of rules.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from ...errors import ConfigError, StructureError
from ..config import config_hash, validate_config
from ..potentials.factory import check_coverage, potential_config_of
from .config import MDConfig
from .engines.ase_engine import fixed_mask
from .engines.base import count_dof
from .rundir import RunDir
from .runner import hashed_config, model_identity, same_model

__all__ = ["as_md_config", "resolve_potential", "validate_start", "initial_velocities", "check_restart"]

logger = logging.getLogger(__name__)


def as_md_config(config: MDConfig | dict) -> MDConfig:
    if isinstance(config, MDConfig):
        return config
    if isinstance(config, dict):
        return validate_config(MDConfig, config)
    raise ConfigError(f"config must be an MDConfig or a dict, not {type(config).__name__}")


def resolve_potential(config: MDConfig, calc: Calculator) -> MDConfig:
    """Record the calculator actually used in ``config.potential`` (if it came from the potential factory),
    so that ``config.yaml`` describes the run and ``restart_md`` can rebuild it (the factory's
    :func:`~tfbsim.workflows.potentials.factory.potential_config_of`; any other calculator leaves ``config``
    as it is)."""
    used = potential_config_of(calc)
    if used is None:
        return config
    return config.model_copy(update={"potential": used})


def validate_start(atoms: Atoms, calc: Calculator, config: MDConfig) -> None:
    if len(atoms) < 2:
        raise StructureError("MD needs at least two atoms")
    if config.ensemble.startswith("npt") and (not atoms.pbc.all() or atoms.cell.rank != 3):
        raise ConfigError(f"{config.ensemble} needs a 3-D periodic cell; use an nvt-* ensemble for this structure")
    n_fixed = int(fixed_mask(atoms).sum())
    if count_dof(len(atoms), n_fixed) <= 0:
        raise ConfigError("every atom is fixed: nothing to integrate")
    check_coverage(calc, atoms)
    if config.ensemble == "npt-berendsen":
        logger.warning(
            "npt-berendsen is for equilibration only: it does not sample the NPT ensemble (volume and "
            "temperature fluctuations are suppressed); use npt-mtk for production"
        )


def initial_velocities(atoms: Atoms, config: MDConfig, rng: np.random.Generator) -> str:
    """Set momenta (Maxwell–Boltzmann or kept), zero for fixed atoms, zero total momentum; returns a note."""
    fixed = fixed_mask(atoms)
    free = ~fixed
    masses = atoms.get_masses()
    momenta = atoms.get_momenta() if atoms.has("momenta") else np.zeros((len(atoms), 3))
    draw_t = config.initial_temperature_k
    note = "kept the structure's velocities"
    if draw_t is None and config.has_thermostat and not np.any(momenta[free]):
        draw_t = config.target_temperature_k(0)
        note = f"structure had no velocities: Maxwell-Boltzmann at the target {draw_t:g} K"
        logger.info(note)
    elif draw_t is not None:
        note = f"Maxwell-Boltzmann at {draw_t:g} K (seed {config.seed})"
    if draw_t is not None:
        momenta = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * draw_t)[:, None]
    momenta[fixed] = 0.0
    if not fixed.any():  # zero total momentum (with fixed atoms it is not conserved anyway)
        momenta -= masses[:, None] * (momenta.sum(axis=0) / masses.sum())
    atoms.set_momenta(momenta, apply_constraint=False)
    return note


def check_restart(
    rundir: RunDir, ckpt: Any, new_config: MDConfig, calc: Calculator, *, force: bool, extend: bool = False
) -> tuple[list[str], dict]:
    """Refuse a restart unless ``force``: changed settings or model, an unstable run, a checkpoint past the end.

    ``extend`` allows exactly one change without ``force``: a larger planned total ``steps`` (the run is
    extended); any other changed key is still refused.

    Returns the changed config keys and the previous summary.
    """
    saved = ckpt.meta.get("config", {})
    hashed = hashed_config(new_config)
    changed = sorted(k for k in set(saved) | set(hashed) if saved.get(k) != hashed.get(k))
    only_longer = (extend and changed == ["steps"] and int(new_config.steps) >= int(saved.get("steps", 0)))
    if config_hash(hashed) != ckpt.meta.get("config_hash") and not force and not only_longer:
        raise ConfigError(
            f"{rundir.path}: the configuration changed since the checkpoint ({', '.join(changed) or 'hash'}); "
            "restore it, or pass force=True / --force to continue with the new settings"
        )
    identity = model_identity(calc)
    if not same_model(identity, ckpt.meta.get("model", {})) and not force:
        old = ckpt.meta.get("model", {})
        raise ConfigError(
            f"{rundir.path}: the potential differs from the run's (now {identity.get('spec') or identity['class']}"
            f" sha256 {str(identity.get('sha256'))[:12]} {identity.get('dtype')}, was "
            f"{old.get('spec') or old.get('class')} sha256 {str(old.get('sha256'))[:12]} {old.get('dtype')}); "
            "use the same model, or pass force=True / --force"
        )
    previous = rundir.read_summary()
    if previous.get("status") == "unstable" and not force:
        raise ConfigError(
            f"{rundir.path}: the run stopped unstable at step {previous.get('diagnostic', {}).get('step')}; "
            "restarting unchanged would repeat it. Change config.yaml (e.g. a smaller timestep_fs) and "
            "restart with --force"
        )
    if ckpt.step > new_config.steps:
        raise ConfigError(f"{rundir.path}: checkpoint at step {ckpt.step} is beyond the planned {new_config.steps}")
    check_coverage(calc, ckpt.atoms)
    return changed, previous
