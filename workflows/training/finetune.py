"""Fine-tuning a distilled model on DFT frames: reference-energy refit, replay, and mace's naive fine-tuning.

The distilled model's energies sit on its teacher's reference (SevenNet: VASP PAW energies), the DFT labels
on CP2K's (GTH pseudopotentials: total energies thousands of eV lower). Both are PBE, so they differ mainly by
a constant per element. :func:`fit_reference_offsets` finds those constants by least squares on the DFT
training frames, ``E_DFT − E_model ≈ Σ_el n_el ΔE_el``; they shift the model's E0s and the energies of the
replayed teacher frames onto the DFT reference. What the offsets cannot absorb (the residual, reported) is
what the fine-tuning learns — with the forces, which no offset touches.

:func:`finetune_on_dft` then trains from the distilled model (mace's ``--foundation_model``: same architecture,
weights as the start) on

* the DFT frames of the ``train`` split only (the ``test`` split is never read into the training file), with
  ``config_weight`` = ``dft_weight``;
* ``replay_frames`` teacher-labelled frames of the distillation, drawn seeded from its train/validation file, so
  the phases the DFT set lacks (S, Co, Li metal, interfaces) are not forgotten.

mace's multi-head fine-tuning would keep the two references apart, but gives a two-head model whose head
must be chosen at every use; one head on one (DFT) reference keeps the bundled model a plain MACE file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ...errors import ConfigError
from ...structures.io import write_json
from ..config import StrictModel
from ..provenance import provenance, utc_now
from .evaluate import per_element_shift
from .label import read_labelled
from .train import TrainConfig, train_model

__all__ = ["FinetuneConfig", "fit_reference_offsets", "model_e0s", "finetune_on_dft", "shift_reference",
           "training_frames"]

logger = logging.getLogger(__name__)


class FinetuneConfig(StrictModel):
    """Settings of :func:`finetune_on_dft` (YAML keys are the field names).

    Attributes
    ----------
    dft_data
        Labelled DFT frames (extxyz with ``info["split"]``), e.g. ``workflows/training/datasets/pbe-v1/pbe.extxyz``.
    train_split
        The split trained on; every other split (``test``) is left out.
    min_dft_frames
        Fewest DFT training frames accepted (fewer: an error saying how many are labelled).
    replay_frames
        Teacher-labelled frames of the distillation mixed in (0: none).
    dft_weight
        ``config_weight`` of a DFT frame (a replay frame has 1).
    dft_stress_weight
        Factor on the stress loss of a DFT frame (mace's ``config_stress_weight``). 0 trains on the DFT
        energies and forces only and leaves the stress (the density) to the replayed teacher frames: the
        choice when the DFT basis biases the pressure (pbe-v1's DZVP-MOLOPT-SR: +1.56 GPa against TZV2P,
        isotropic, on a LiPON frame; the plane-wave teacher has no such bias).
    train
        mace settings of the fine-tuning run (``foundation_model`` and ``e0s`` are set by :func:`finetune_on_dft`).
    """

    dft_data: Path = Path("workflows/training/datasets/pbe-v1/pbe.extxyz")
    train_split: str = "train"
    min_dft_frames: int = 20
    replay_frames: int = 200
    dft_weight: float = 5.0
    dft_stress_weight: float = 1.0
    seed: int = 0
    train: TrainConfig = TrainConfig(preset="bundled", name="tfbsim-bundled-ft", r_max_ang=4.5, epochs=30,
                                     batch_size=4, lr=0.001, dtype="float32", seed=1, stress_weight=10.0,
                                     pair_repulsion=True, valid_fraction=0.1)


def _composition(frames: list[Atoms], elements: list[str]) -> np.ndarray:
    return np.array([[np.count_nonzero(a.numbers == _z(el)) for el in elements] for a in frames], dtype=float)


def _z(symbol: str) -> int:
    from ase.data import atomic_numbers

    return atomic_numbers[symbol]


def fit_reference_offsets(frames: list[Atoms], predicted_ev: np.ndarray) -> dict[str, Any]:
    """Per-element constants ΔE with ``REF_energy − predicted ≈ Σ_el n_el ΔE_el`` (least squares).

    Parameters
    ----------
    frames
        Labelled frames (``info["REF_energy"]``, eV).
    predicted_ev
        The model's energies of the same frames (eV).

    Returns
    -------
    dict
        ``offsets_ev`` {element: ΔE (eV)}, ``residual_rmse_mev_atom`` (what the offsets leave), ``n_frames``.

    Raises
    ------
    ConfigError
        When the compositions cannot separate the elements (every frame has the same element ratios).
    """
    elements = sorted({s for a in frames for s in a.get_chemical_symbols()}, key=_z)
    comp = _composition(frames, elements)
    diff = np.array([a.info["REF_energy"] for a in frames], dtype=float) - np.asarray(predicted_ev, dtype=float)
    rank = np.linalg.matrix_rank(comp)
    if rank < len(elements):
        raise ConfigError(f"the {len(frames)} DFT frames' compositions determine only {rank} of the "
                          f"{len(elements)} element offsets ({', '.join(elements)}); label frames of other "
                          "compositions (crystals, other Li/P or N/P ratios)")
    delta, residual = per_element_shift(comp, diff)
    return {"offsets_ev": {el: float(d) for el, d in zip(elements, delta, strict=True)},
            "residual_rmse_mev_atom": float(1000.0 * np.sqrt(np.mean(residual**2))), "n_frames": len(frames)}


def model_e0s(model_path: str | os.PathLike) -> dict[str, float]:
    """The E0s (isolated-atom reference energies, eV) stored in a MACE model file, by element."""
    from ase.data import chemical_symbols

    from ..potentials.mace_backend import load_mace_model

    model = load_mace_model(Path(model_path), device="cpu")
    energies = model.atomic_energies_fn.atomic_energies.detach().cpu().numpy().reshape(-1, len(model.atomic_numbers))
    return {chemical_symbols[int(z)]: float(e) for z, e in zip(model.atomic_numbers.tolist(), energies[0], strict=True)}


def _frames_digest(frames: list[Atoms]) -> str:
    """sha1 over the frames' identities (:func:`~.label.frame_id`) and labels: which DFT data a run used."""
    import hashlib

    from .label import frame_id

    h = hashlib.sha1()
    for atoms in frames:
        h.update(frame_id(atoms).encode())
        h.update(np.float64(atoms.info["REF_energy"]).tobytes())
    return h.hexdigest()


def shift_reference(atoms: Atoms, offsets: dict[str, float]) -> Atoms:
    """A copy whose ``REF_energy`` is moved by Σ_atoms ΔE_element (eV; elements without an offset: 0)."""
    atoms = atoms.copy()
    atoms.info["REF_energy"] = float(atoms.info["REF_energy"]) + sum(offsets.get(s, 0.0) for s in atoms.get_chemical_symbols())
    return atoms


def training_frames(dft: list[Atoms], replay: list[Atoms], offsets: dict[str, float],
                    config: FinetuneConfig) -> list[Atoms]:
    """The fine-tuning set: the DFT frames weighted, then ``replay_frames`` teacher frames drawn seeded.

    A DFT frame gets ``config_weight`` = ``dft_weight`` and, unless ``dft_stress_weight`` is 1,
    ``config_stress_weight`` = ``dft_stress_weight`` (mace's per-frame factor on the stress loss); a replay
    frame is moved onto the DFT reference (:func:`shift_reference`), weighted 1 and typed ``replay_<type>``.
    """
    frames = []
    for atoms in dft:
        atoms = atoms.copy()
        atoms.info["config_weight"] = config.dft_weight
        if config.dft_stress_weight != 1.0:
            atoms.info["config_stress_weight"] = config.dft_stress_weight
        frames.append(atoms)
    if replay and config.replay_frames > 0:
        rng = np.random.default_rng(config.seed)
        chosen = rng.choice(len(replay), size=min(config.replay_frames, len(replay)), replace=False)
        for i in sorted(chosen.tolist()):
            atoms = shift_reference(replay[i], offsets)
            atoms.info["config_weight"] = 1.0
            atoms.info["config_type"] = "replay_" + str(atoms.info.get("config_type", "teacher"))
            frames.append(atoms)
    return frames


def finetune_on_dft(base_model: str | os.PathLike, replay_data: str | os.PathLike | None, work_dir: str | os.PathLike,
                    config: FinetuneConfig, *, progress: bool = False) -> dict[str, Any]:
    """Fine-tune ``base_model`` on the DFT training frames (module docstring); resumable through ``work_dir``.

    Parameters
    ----------
    base_model
        MACE model file the training starts from (the distilled model).
    replay_data
        Teacher-labelled frames the model was distilled on (its train/validation file, never its test file);
        ``None`` or ``config.replay_frames == 0``: no replay.
    work_dir
        ``finetune.json`` (offsets, counts, provenance), ``data.extxyz`` (the training file) and ``model/``.
    config
        Settings.

    Returns
    -------
    dict
        The content of ``finetune.json`` plus ``model`` (path of the fine-tuned model) and ``train`` (mace summary).
    """
    from ase.io import write

    from ..potentials.factory import load_potential

    work = Path(work_dir)
    base_model = Path(base_model)
    all_dft = read_labelled(config.dft_data)
    dft = [a for a in all_dft if a.info.get("split") == config.train_split]
    if len(dft) < config.min_dft_frames:
        raise ConfigError(f"{config.dft_data}: {len(dft)} frames of split {config.train_split!r} are labelled; "
                          f"fine-tuning needs at least {config.min_dft_frames} (min_dft_frames): label more with "
                          "`make pbe-data` first")
    record_path = work / "finetune.json"
    summary_path = work / "model" / "train_summary.json"
    digest = _frames_digest(dft)
    if record_path.exists():
        from ...structures.io import read_json

        record = read_json(record_path)
        if record.get("dft_frames_sha1") != digest:
            raise ConfigError(f"{work}: fine-tuned on {record.get('n_dft_frames')} DFT frames, but {config.dft_data} "
                              f"now has {len(dft)} of split {config.train_split!r} (or other ones); remove {work} "
                              "to fine-tune again on the current data")
        if summary_path.exists():
            return {**record, "train": read_json(summary_path), "model": read_json(summary_path)["model"]}
    work.mkdir(parents=True, exist_ok=True)
    started = utc_now()
    base = load_potential(str(base_model), device="cpu", dtype="float64")
    predicted = []
    for atoms in dft:
        probe = atoms.copy()
        probe.calc = base
        predicted.append(probe.get_potential_energy())
    fit = fit_reference_offsets(dft, np.array(predicted))
    offsets = fit["offsets_ev"]
    e0s = {el: e + offsets.get(el, 0.0) for el, e in model_e0s(base_model).items()}
    logger.info("reference offsets DFT − model (eV): %s; residual %.1f meV/atom",
                ", ".join(f"{k} {v:+.3f}" for k, v in offsets.items()), fit["residual_rmse_mev_atom"])

    replay = read_labelled(replay_data) if replay_data is not None and config.replay_frames > 0 else []
    frames = training_frames(dft, replay, offsets, config)
    n_replay = len(frames) - len(dft)
    data = work / "data.extxyz"
    write(data, frames, format="extxyz")
    # every element of the base model stays (S, Co: no DFT frames, only replay or nothing)
    mace_args = {**config.train.mace_args, "foundation_model_elements": "True"}
    train_cfg = config.train.model_copy(update={"foundation_model": base_model, "e0s": e0s, "mace_args": mace_args})
    record = {
        "base_model": str(base_model), "dft_data": str(config.dft_data), "train_split": config.train_split,
        "n_dft_frames": len(dft), "n_dft_frames_left_out": len(all_dft) - len(dft), "n_replay_frames": n_replay,
        "dft_frames_sha1": digest,
        "reference_fit": fit, "e0s_ev": e0s,
        "provenance": provenance(config=config, seed=config.seed, started_utc=started),
    }
    write_json(record_path, record)
    summary = train_model(data, work / "model", train_cfg, progress=progress)
    return {**record, "train": summary, "model": summary["model"]}
