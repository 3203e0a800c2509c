"""Shared pieces of the gpu-engine tests: small Li–P–O–N boxes, a dilute gas, an MD configuration."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from tfbsim.workflows.md.config import MDConfig


def lipon_like(n_li=9, n_p=3, n_o=10, n_n=2, box=7.5, seed=3, min_dist=1.9) -> Atoms:
    """A small random Li–P–O–N box (24 atoms at the defaults)."""
    rng = np.random.default_rng(seed)
    symbols = ["Li"] * n_li + ["P"] * n_p + ["O"] * n_o + ["N"] * n_n
    positions: list[np.ndarray] = []
    while len(positions) < len(symbols):
        trial = rng.uniform(0, box, 3)
        if all(np.linalg.norm((trial - p + box / 2) % box - box / 2) > min_dist for p in positions):
            positions.append(trial)
    return Atoms(symbols, positions=positions, cell=[box] * 3, pbc=True)


def md_config(ensemble, **kw) -> MDConfig:
    base = dict(ensemble=ensemble, steps=20, timestep_fs=1.0, temperature_k=600, initial_temperature_k=600, seed=5,
                traj_every=10, log_every=5, checkpoint_every=1000, guard_t_factor=None, friction_ps_inv=20.0,
                tdamp_fs=20.0, guard_max_force_ev_ang=1e4, guard_min_distance_ang=0.3)
    base.update(kw)
    return MDConfig(**base)


def dilute_gas(n_atoms=40, box=40.0, seed=5) -> Atoms:
    """A dilute Li/O gas (few pairs within the 4.5 Å cutoff): a random-weight MACE cannot collapse it, so the
    kinetic-temperature statistics test the thermostat and the integrator alone."""
    return lipon_like(n_li=n_atoms // 2, n_p=0, n_o=n_atoms - n_atoms // 2, n_n=0, box=box, seed=seed, min_dist=4.0)
