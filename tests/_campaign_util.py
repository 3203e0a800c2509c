"""A tiny two-structure campaign for the campaign tests (local and Slurm): Li2O built, Li3N from a file."""

from __future__ import annotations

from pathlib import Path

import yaml

#: Guards relaxed for the random-weight tiny MACE model (it has no physical repulsion).
LOOSE_GUARDS = {"guard_min_distance_ang": 0.1, "guard_max_force_ev_ang": 1.0e4, "guard_t_factor": None}


def write_tiny_campaign(folder: Path, model: Path, *, name: str = "tiny", temperatures=(300.0, 400.0, 500.0),
                        equilibrate_steps: int = 20, production_steps: int = 60, checkpoint_every: int = 10,
                        workers: int = 2, analyses: dict | None = None) -> Path:
    """Write ``campaign.yaml`` (+ the Li3N structure file) into ``folder``; returns the YAML path."""
    from tfbsim.structures.crystals import build_crystal
    from tfbsim.structures.io import write_structure

    folder.mkdir(parents=True, exist_ok=True)
    write_structure(folder / "li3n.extxyz", build_crystal("li3n", supercell=(2, 2, 1)))
    md = {"ensemble": "nvt-langevin", "timestep_fs": 1.0, "friction_ps_inv": 5.0, "log_every": 5,
          "checkpoint_every": checkpoint_every, **LOOSE_GUARDS}
    data = {
        "name": name,
        "potential": {"model": str(model), "dtype": "float64", "device": "cpu"},
        "structures": [{"name": "li2o", "build": {"kind": "crystal", "phase": "li2o"}},
                       {"name": "li3n", "file": "li3n.extxyz",  # prepared once, shared by its three tasks
                        "prepare": [{"name": "relax", "relax": {"fmax_ev_ang": 0.5, "max_steps": 5}}]}],
        "temperatures_k": list(temperatures),
        "protocol": [
            {"name": "equilibrate", "md": {**md, "steps": equilibrate_steps, "traj_every": 10}},
            {"name": "production", "md": {**md, "steps": production_steps, "traj_every": 5}},
        ],
        "analyses": analyses if analyses is not None else {"diffusion": {"species": "Li"}},
        "local": {"workers": workers, "threads_per_task": 1},
    }
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
