"""Models against held-out DFT frames and Li-hop barriers: the numbers of the model card's "against PBE" section.

For each model (the new one and, beside it, the ones it replaces):

* on the DFT frames of the ``test`` split (never trained on) except the Li-hop images: force slope per element
  s_X (s_Li < 1: the softening of universal potentials), force RMSE per element and overall, energy RMSE after a
  per-element reference shift (models and CP2K use different atomic references), stress RMSE. The Li-hop images
  were relaxed with the bundled v1 model, so its forces there are ~0 by construction (s ≈ 0.1 measured): on them
  the force metrics would score the relaxation, not the model; they serve the barriers only;
* along each Li-hop path (:mod:`tfbsim.workflows.protocols.li_hop_neb`: ``images.extxyz``): the barrier
  max_i E_i − E_0 of the model and of DFT on *the same images* (single points; the path is not re-relaxed), once
  every image carries a DFT label (matched by :func:`~tfbsim.workflows.training.label.frame_id`).

The issue's targets are stated beside the values (``targets``); nothing here is fitted to them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, CalculatorError, all_changes

from .evaluate import evaluate_errors
from .label import frame_id, read_labelled

__all__ = ["neb_barrier_comparison", "compare_to_dft", "comparison_model", "LabelledFrames", "DFT_TARGETS"]

logger = logging.getLogger(__name__)

#: config_type prefix of the Li-hop images (left out of the frame metrics; see the module docstring).
_PATH_TYPES = "neb_"

#: Targets of the potential issue (held-out PBE LiPON frames; barriers along the same path).
DFT_TARGETS = {"s_li": (0.95, 1.05), "forces_rmse_li_mev_ang": 100.0, "forces_rmse_mev_ang": 150.0,
               "neb_barrier_abs_diff_ev": 0.05}


class LabelledFrames(Calculator):
    """The labels of a dataset as a calculator: a frame's ``REF_energy``/``REF_forces``/``REF_stress``.

    Lets one level of theory stand as a "model" against another on the same frames (spec ``labels:<file>``,
    e.g. the production DZVP labels against the TZV2P ones). Frames are matched by
    :func:`~tfbsim.workflows.training.label.frame_id`; one the file does not hold is an error.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self._labels = {frame_id(a): a for a in read_labelled(self.path)}  # as read: the precision of the file
        self.parameters["spec"] = f"labels:{self.path}"

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        """Look the frame up (ASE's calculator interface)."""
        super().calculate(atoms, properties, system_changes)
        key = frame_id(self.atoms)
        frame = self._labels.get(key)
        if frame is None:
            raise CalculatorError(f"{self.path} has no labels of this frame (frame_id {key}); label it there, or "
                                  "compare on the frames both files hold")
        energy = float(frame.info["REF_energy"])
        self.results = {"energy": energy, "free_energy": energy, "forces": np.asarray(frame.arrays["REF_forces"])}
        if "REF_stress" in frame.info:
            self.results["stress"] = np.asarray(frame.info["REF_stress"])

    def close(self) -> None:
        """Nothing to release (the same interface as the SevenNet worker)."""


def neb_barrier_comparison(model: str | Calculator, dft_frames: list[Atoms], neb_dir: str | os.PathLike, *,
                           dtype: str = "float64", partial: bool = False) -> dict[str, Any]:
    """Barrier of ``model`` (a factory spec, or a calculator) and of DFT along the images of one Li-hop path.

    ``partial``: compare on the labelled images only, provided the first one and at least one more are
    labelled (status ``partial``, ``images_compared``) — for an expensive check level that labels the end
    points and the highest image. The barrier is then the highest *labelled* image; the reverse barrier is
    given only where the last image is labelled.

    Returns
    -------
    dict
        ``status`` (``compared``, ``partial`` or ``incomplete``), ``n_images``, ``n_labelled``; when compared also
        ``barrier_model_ev``, ``barrier_dft_ev``, ``barrier_diff_ev`` (forward: highest image − first image),
        the same from the last image (``barrier_reverse_*``: an asymmetric path, whose end points differ by
        ``delta_e_*``, has two barriers, and a model can match one and miss the other), ``delta_e_model_ev``,
        ``delta_e_dft_ev`` and both energy profiles (eV, relative to the first image).
    """
    from ase.io import read

    from ..potentials.factory import load_potential

    images = read(Path(neb_dir) / "images.extxyz", index=":")
    labelled = {a.info.get("frame_id"): a for a in dft_frames}
    ids = [frame_id(a) for a in images]
    use = [k for k, i in enumerate(ids) if i in labelled]
    out: dict[str, Any] = {"path": Path(neb_dir).name, "n_images": len(images), "n_labelled": len(use)}
    complete = len(use) == len(images)
    if not complete and not (partial and use[:1] == [0] and len(use) >= 2):
        return {**out, "status": "incomplete"}
    calc = model if isinstance(model, Calculator) else load_potential(model, device="cpu", dtype=dtype)
    model_e = []
    for k in use:
        atoms = images[k]
        probe = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        probe.calc = calc
        model_e.append(probe.get_potential_energy())
    dft_e = [float(labelled[ids[k]].info["REF_energy"]) for k in use]
    rel_m = [e - model_e[0] for e in model_e]
    rel_d = [e - dft_e[0] for e in dft_e]
    record = {**out, "status": "compared" if complete else "partial", "barrier_model_ev": max(rel_m),
              "barrier_dft_ev": max(rel_d), "barrier_diff_ev": max(rel_m) - max(rel_d),
              "profile_model_ev": rel_m, "profile_dft_ev": rel_d}
    if not complete:
        record["images_compared"] = use
    if use[-1] == len(images) - 1:
        rev_m, rev_d = max(rel_m) - rel_m[-1], max(rel_d) - rel_d[-1]
        record.update(barrier_reverse_model_ev=rev_m, barrier_reverse_dft_ev=rev_d,
                      barrier_reverse_diff_ev=rev_m - rev_d, delta_e_model_ev=rel_m[-1], delta_e_dft_ev=rel_d[-1])
    return record


def _level_of_theory(dft_data: Path) -> str | None:
    """The labelling method as the dataset's card names it (``cp2k:PBE/DZVP-MOLOPT-SR-GTH/GTH-PBE/600Ry/kG``)."""
    import json

    card = dft_data.with_name(dft_data.name + ".card.json")
    return json.loads(card.read_text()).get("teacher", {}).get("spec") if card.is_file() else None


def comparison_model(spec: str) -> str | Calculator:
    """What a comparison evaluates for ``spec``; a calculator returned here is the caller's to ``close()``.

    ``sevennet:<model>`` → its worker (own environment, one thread), ``labels:<file>`` →
    :class:`LabelledFrames`, anything else → the spec itself (the factory loads it).
    """
    if spec.startswith("sevennet:"):
        from .sevennet import SevennetTeacher

        return SevennetTeacher(spec.split(":", 1)[1], device="cpu", threads=1)
    if spec.startswith("labels:"):
        return LabelledFrames(spec.split(":", 1)[1])
    return spec


def compare_to_dft(models: dict[str, str], dft_data: str | os.PathLike, neb_dirs: list[str | os.PathLike], *,
                   split: str = "test", partial_paths: bool = False, progress: bool = False) -> dict[str, Any]:
    """Every model against the DFT ``split`` frames and the Li-hop paths (module docstring).

    Parameters
    ----------
    models
        ``{name: spec}``: a factory spec (evaluated in float64), e.g. ``{"v2": "model.model",
        "v1": "bundled-v1"}``, or ``sevennet:<model>`` (e.g. the teacher ``sevennet:7net-l3i5``, run in its own
        environment, float32: see :mod:`~tfbsim.workflows.training.sevennet`), or ``labels:<file>`` (another
        dataset's labels of the same frames: :class:`LabelledFrames`).
    dft_data
        Labelled DFT extxyz with ``info["split"]``.
    neb_dirs
        Folders with ``images.extxyz`` of Li-hop paths.
    partial_paths
        Compare a path whose DFT labels cover only some images (see :func:`neb_barrier_comparison`).

    Returns
    -------
    dict
        ``data`` (file, level of theory from its card, frames per split), ``targets``, and per model:
        ``frames`` (errors on the split: counts, RMSEs, ``force_slope_per_element``,
        ``forces_rmse_mev_ang_per_element``, ``energy_rmse_offset_fitted_mev_atom``, ``per_config_type``) and
        ``neb`` (one record per path).
    """
    frames = read_labelled(dft_data)
    splits: dict[str, int] = {}
    for atoms in frames:
        key = str(atoms.info.get("split"))
        splits[key] = splits.get(key, 0) + 1
    from ..potentials.mace_backend import sha256_file

    out: dict[str, Any] = {"data": {"file": str(dft_data), "sha256": sha256_file(Path(dft_data)),
                                    "level_of_theory": _level_of_theory(Path(dft_data)),
                                    "frames_per_split": splits, "split_compared": split},
                           "targets": DFT_TARGETS, "models": {}}
    scored = [a for a in frames if not str(a.info.get("config_type", "")).startswith(_PATH_TYPES)
              and str(a.info.get("split")) == split]
    out["data"]["n_frames_scored"] = len(scored)
    out["data"]["left_out_of_frame_metrics"] = f"config_type {_PATH_TYPES}*: Li-hop images (barriers only)"
    for name, spec in models.items():
        model = comparison_model(spec)
        try:
            errors = evaluate_errors(model, scored, progress=progress) if scored else None
            if errors is not None:
                errors.pop("parity")
            neb = [neb_barrier_comparison(model, frames, d, partial=partial_paths) for d in neb_dirs]
        finally:
            if isinstance(model, Calculator):
                model.close()
        out["models"][name] = {"spec": spec, "frames": errors, "neb": neb}
        if errors is not None:
            logger.info("%s vs DFT (%d %s frames): s_Li %.3f, F RMSE %.0f meV/Å", name, errors["n_frames"], split,
                        errors["force_slope_per_element"].get("Li") or float("nan"), errors["forces_rmse_mev_ang"])
    return out
