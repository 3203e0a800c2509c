"""Training and fine-tuning MACE models by wrapping mace-torch's own trainer (``mace_run_train``).

tfbsim does not re-implement training: :func:`train_model` validates the data and settings, splits a
validation set, builds the ``mace_run_train`` command line from a preset, runs it as a subprocess (logging to
``MODEL_DIR/train.log``, progress from its epoch lines), and records a ``train_summary.json``. Re-running the
same command resumes from mace's latest checkpoint (``--restart_latest``).

Presets (``--preset``)
----------------------
========  ============  ========  =====  ===========  ==================================
preset    interactions  channels  max_L  correlation  use
========  ============  ========  =====  ===========  ==================================
tiny      1             16        0      3            tests, very fast demos
small     2             32        0      3            CPU-trainable screening model
bundled   2             32        0      2            tfbsim's bundled model (≥ 20 MD steps/s at 200 atoms on
                                                    2 CPU cores with r_max 4.5 Å, float32)
medium    2             64        1      3            production screening (GPU training)
========  ============  ========  =====  ===========  ==================================
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...errors import ConfigError, TfbsimError
from ...structures.io import write_json
from ..config import StrictModel
from ..provenance import provenance, utc_now
from .label import read_labelled

__all__ = ["TrainConfig", "TRAIN_PRESETS", "train_model", "training_command", "TrainingFailed"]

logger = logging.getLogger(__name__)

TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"num_interactions": 1, "num_channels": 16, "max_L": 0, "correlation": 3},
    "small": {"num_interactions": 2, "num_channels": 32, "max_L": 0, "correlation": 3},
    "bundled": {"num_interactions": 2, "num_channels": 32, "max_L": 0, "correlation": 2},
    "medium": {"num_interactions": 2, "num_channels": 64, "max_L": 1, "correlation": 3},
}


class TrainingFailed(TfbsimError, RuntimeError):
    """mace_run_train exited with an error (the log file is named in the message)."""


class TrainConfig(StrictModel):
    """Settings of :func:`train_model` (``tfbsim train``; YAML keys are the field names).

    Attributes
    ----------
    preset
        Architecture preset: ``tiny``, ``small`` or ``medium`` (see module docstring).
    name
        Model name: files ``<name>.model`` and ``<name>_compiled.model`` in the model directory.
    epochs
        Maximum number of epochs.
    valid_fraction
        Fraction of frames held out for validation (split seeded by ``seed``).
    seed
        Seed of the split and of mace's initialisation.
    device
        ``cpu`` or ``cuda``.
    dtype
        Training precision (``float64`` is mace's recommendation; ``float32`` is ~2x faster on CPU).
    r_max_ang
        Radial cutoff (Å).
    batch_size
        Frames per batch.
    lr
        Learning rate.
    energy_weight, forces_weight, stress_weight
        Loss weights (stage one); stage two (last 25 % of epochs) raises the energy weight as mace does.
    stage_two
        Use mace's stage-two (SWA) schedule.
    pair_repulsion
        Add mace's ZBL pair repulsion (``--pair_repulsion``): a physical wall at short distances that the data
        never sample, so hot MD cannot collapse two atoms onto each other.
    e0s
        Per-element reference energies (mace's ``--E0s``): ``"average"`` fits them to the data by least squares;
        a mapping ``{"Li": -0.48, ...}`` (eV) fixes them, normally to the isolated-atom energies of the method
        that labelled the data (:func:`tfbsim.workflows.training.label.isolated_atom_energies`). Fitted
        averages absorb the cohesive energy, so the model's energy falls towards them when atoms separate
        (e.g. a Li metal whose energy drops on expansion); isolated-atom values give the right dissociation
        limit. Must cover every element of the data.
    foundation_model
        Fine-tune from this MACE model file (mace's ``--foundation_model``), e.g. a MACE-MP file.
    mace_args
        Further ``mace_run_train`` options passed verbatim (``{"patience": 50}`` -> ``--patience 50``;
        ``True`` -> a bare flag, ``False`` -> omitted).
    """

    preset: Literal["tiny", "small", "bundled", "medium"] = "small"
    name: str = "model"
    epochs: int = 100
    valid_fraction: float = 0.1
    seed: int = 1
    device: str = "cpu"
    dtype: Literal["float32", "float64"] = "float64"
    r_max_ang: float = 5.0
    batch_size: int = 8
    lr: float = 0.01
    energy_weight: float = 1.0
    forces_weight: float = 100.0
    stress_weight: float = 1.0
    stage_two: bool = True
    pair_repulsion: bool = False
    e0s: Literal["average"] | dict[str, float] = "average"
    foundation_model: Path | None = None
    mace_args: dict[str, str | int | float | bool] = {}


def _split(data: Path, valid_fraction: float, seed: int, out_dir: Path) -> tuple[Path, Path, int, int]:
    """Seeded train/valid split written to ``out_dir`` (skipped when the files exist: resumable)."""
    from ase.io import write

    train_file, valid_file = out_dir / "train.extxyz", out_dir / "valid.extxyz"
    frames = read_labelled(data)
    if len(frames) < 2:
        raise ConfigError(f"{data}: needs at least 2 labelled frames for a train/validation split")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frames))
    n_valid = max(1, int(round(valid_fraction * len(frames))))
    if not (train_file.exists() and valid_file.exists()):
        write(train_file, [frames[i] for i in order[n_valid:]], format="extxyz")
        write(valid_file, [frames[i] for i in order[:n_valid]], format="extxyz")
    return train_file, valid_file, len(frames) - n_valid, n_valid


def _e0s_argument(e0s: str | dict[str, float], elements: list[str] | None) -> str:
    """mace's ``--E0s`` value: ``average``, or ``{Z: energy, ...}`` covering ``elements`` (all when None)."""
    if isinstance(e0s, str):
        return e0s
    from ase.data import atomic_numbers

    unknown = sorted(k for k in e0s if k not in atomic_numbers)
    if unknown:
        raise ConfigError(f"e0s: {', '.join(unknown)} are not element symbols; key the energies by symbol (Li, P, ...)")
    missing = sorted(set(elements or []) - set(e0s))
    if missing:
        raise ConfigError(f"e0s has no reference energy for {', '.join(missing)}, which the data contain; add them "
                          "(isolated-atom energies of the labelling method) or use e0s: average")
    return "{" + ", ".join(f"{atomic_numbers[k]}: {float(v)!r}" for k, v in sorted(e0s.items(),
                                                                                   key=lambda kv: atomic_numbers[kv[0]])) + "}"


def training_command(config: TrainConfig, train_file: Path, valid_file: Path, out_dir: Path, *, has_stress: bool,
                     elements: list[str] | None = None) -> list[str]:
    """The ``mace_run_train`` command line for ``config`` (run with the current Python).

    ``elements`` (those of the data) are checked against ``config.e0s`` when it is a mapping.
    """
    arch = TRAIN_PRESETS[config.preset]
    cmd = [
        sys.executable, "-m", "mace.cli.run_train",
        "--name", config.name,
        "--seed", str(config.seed),
        "--work_dir", str(out_dir),
        "--train_file", str(train_file),
        "--valid_file", str(valid_file),
        "--energy_key", "REF_energy",
        "--forces_key", "REF_forces",
        "--stress_key", "REF_stress",
        "--E0s", _e0s_argument(config.e0s, elements),
        "--model", "MACE",
        "--num_interactions", str(arch["num_interactions"]),
        "--num_channels", str(arch["num_channels"]),
        "--max_L", str(arch["max_L"]),
        "--correlation", str(arch["correlation"]),
        "--r_max", str(config.r_max_ang),
        "--batch_size", str(config.batch_size),
        "--valid_batch_size", str(config.batch_size),
        "--max_num_epochs", str(config.epochs),
        "--lr", str(config.lr),
        "--energy_weight", str(config.energy_weight),
        "--forces_weight", str(config.forces_weight),
        "--device", config.device,
        "--default_dtype", config.dtype,
        "--eval_interval", "1",
        "--restart_latest",
        "--save_cpu",
        "--plot", "False",
    ]
    if has_stress:
        cmd += ["--loss", "stress", "--compute_stress", "True", "--stress_weight", str(config.stress_weight)]
    if config.stage_two:
        cmd += ["--stage_two", "--start_stage_two", str(max(1, int(0.75 * config.epochs)))]
    if config.foundation_model is not None:
        if not Path(config.foundation_model).is_file():
            raise ConfigError(f"foundation model {config.foundation_model} not found; check the path")
        cmd += ["--foundation_model", str(config.foundation_model)]
    if config.pair_repulsion:
        cmd += ["--pair_repulsion"]
    for key, value in config.mace_args.items():
        if value is True:  # a store_true flag of mace_run_train
            cmd += [f"--{key}"]
        elif value is not False:
            cmd += [f"--{key}", str(value)]
    return cmd


_EPOCH = re.compile(r"Epoch\s+(\d+)")


def train_model(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Train (or fine-tune) a MACE model on labelled data with ``mace_run_train``.

    Parameters
    ----------
    data
        Labelled extended XYZ (REF_energy, REF_forces, optional REF_stress).
    out_dir
        Model directory: split files, mace's checkpoints/logs, ``<name>.model``, ``<name>_compiled.model``,
        ``train.log`` and ``train_summary.json``.
    config
        Training settings (defaults: :class:`TrainConfig`).
    progress
        Show a progress bar over epochs.

    Returns
    -------
    dict
        The summary written to ``train_summary.json`` (paths, sizes, wall time, final validation errors).

    Raises
    ------
    ConfigError
        Data without REF_* keys, too few frames, bad settings.
    TrainingFailed
        mace_run_train failed (see ``train.log``).
    """
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    data = Path(data).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    train_file, valid_file, n_train, n_valid = _split(data, config.valid_fraction, config.seed, out_dir)
    frames = read_labelled(data)
    has_stress = all("REF_stress" in a.info for a in frames)
    elements = sorted({s for a in frames for s in a.get_chemical_symbols()})
    cmd = training_command(config, train_file, valid_file, out_dir, has_stress=has_stress, elements=elements)
    log_path = out_dir / "train.log"
    started, t0 = utc_now(), time.perf_counter()
    logger.info("training %s preset on %d/%d frames: %s", config.preset, n_train, n_valid, " ".join(cmd[2:]))
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    bar = tqdm(total=config.epochs, desc="training", unit="epoch", disable=not progress)
    last_lines: list[str] = []
    with open(log_path, "a") as log, subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=out_dir
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            last_lines = (last_lines + [line.rstrip()])[-30:]
            match = _EPOCH.search(line)
            if match:
                bar.n = min(int(match.group(1)) + 1, config.epochs)
                bar.refresh()
        code = proc.wait()
    bar.close()
    if code != 0:
        tail = "\n".join(last_lines[-8:])
        raise TrainingFailed(f"mace_run_train exited with code {code}; see {log_path}. Last lines:\n{tail}")
    # with stage two, mace writes the final (stage-two) model as <name>_stagetwo[_compiled].model
    stem = f"{config.name}_stagetwo" if (out_dir / f"{config.name}_stagetwo.model").is_file() else config.name
    model = out_dir / f"{stem}.model"
    compiled = out_dir / f"{stem}_compiled.model"
    if not model.is_file():
        raise TrainingFailed(f"mace_run_train finished but {model.name} is missing; see {log_path}")
    summary = {
        "model": str(model),
        "compiled_model": str(compiled) if compiled.is_file() else None,
        "model_size_bytes": model.stat().st_size,
        "data": str(data),
        "n_train": n_train,
        "n_valid": n_valid,
        "elements": elements,
        "stress_trained": has_stress,
        "wall_s": time.perf_counter() - t0,
        "command": cmd,
        "validation": _final_errors(log_path),
        "provenance": provenance(config=config, seed=config.seed, started_utc=started),
    }
    write_json(out_dir / "train_summary.json", summary)
    return summary


_TABLE_ROW = re.compile(r"^\|\s*(train|valid\w*)\s*\|(.+)\|\s*$")


def _final_errors(log_path: Path) -> dict[str, Any]:
    """Parse mace's final error table (the last one in the log) into {set: {column: value}}."""
    header: list[str] | None = None
    rows: dict[str, Any] = {}
    for line in log_path.read_text().splitlines():
        text = line.split("INFO:")[-1].strip() if "INFO:" in line else line.strip()
        if text.startswith("|") and "config_type" in text:
            header = [h.strip() for h in text.strip("|").split("|")]
            rows = {}
            continue
        match = _TABLE_ROW.match(text)
        if header and match:
            cells = [c.strip() for c in text.strip("|").split("|")]
            entry = {}
            for name, cell in zip(header[1:], cells[1:]):
                try:
                    entry[name] = float(cell)
                except ValueError:
                    entry[name] = cell
            rows[cells[0]] = entry
    return json.loads(json.dumps(rows))
