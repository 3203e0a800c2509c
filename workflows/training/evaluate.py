"""Evaluating a trained model against held-out labelled data: RMSEs per config_type and element, parity plots.

Metrics (all against the ``REF_*`` labels of the test file)
-----------------------------------------------------------
- energy RMSE per atom (meV/atom), force RMSE per Cartesian component (meV/Å), stress RMSE per Voigt component
  (GPa; 3-D periodic frames only);
- the same per ``config_type``, and force RMSE per element;
- the force slope per element, s_X = Σ F_ref·F_model / Σ F_ref·F_ref over atoms of element X: s_Li < 1 is the
  softening of universal potentials (Li forces, hence barriers, too weak);
- ``energy_rmse_offset_fitted_mev_atom``: the energy RMSE after a least-squares per-element reference shift,
  fitted on the same frames — the only meaningful energy error when model and reference use different atomic
  references (a MACE model distilled from CHGNet against CP2K total energies); needs more distinct
  compositions than elements, else ``None``.
Physics checks that need builders and MD (stability, speed, lattice constants) live in
:mod:`tfbsim.workflows.training.checks`.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from ..potentials.factory import check_coverage, load_potential
from .label import read_labelled

__all__ = ["evaluate_errors", "parity_figure"]

logger = logging.getLogger(__name__)


def _rmse(values: list[np.ndarray] | np.ndarray) -> float | None:
    arr = np.concatenate([np.ravel(v) for v in values]) if isinstance(values, list) else np.ravel(values)
    return float(np.sqrt(np.mean(arr**2))) if arr.size else None


def _offset_fitted_rmse(energies: list[tuple[dict[str, int], float, float]]) -> float | None:
    """Energy RMSE per atom (meV/atom) after fitting one reference-energy shift per element (least squares)."""
    elements = sorted({el for counts, _, _ in energies for el in counts})
    compositions = {tuple(counts.get(el, 0) for el in elements) for counts, _, _ in energies}
    if len(compositions) <= len(elements):
        return None
    a = np.array([[counts.get(el, 0) for el in elements] for counts, _, _ in energies], dtype=float)
    _, per_atom = per_element_shift(a, np.array([pred - ref for _, pred, ref in energies]))
    return 1000 * float(np.sqrt(np.mean(per_atom**2)))


def per_element_shift(composition: np.ndarray, diff_ev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares constants per element, ``diff ≈ composition @ shift``; returns (shift (eV), residual per atom (eV)).

    ``composition`` is (frames, elements) atom counts, ``diff_ev`` one energy difference per frame.
    """
    shift, *_ = np.linalg.lstsq(composition, diff_ev, rcond=None)
    return shift, (diff_ev - composition @ shift) / composition.sum(axis=1)


def evaluate_errors(
    model: str | os.PathLike | Calculator,
    data: str | os.PathLike | list[Atoms],
    *,
    device: str = "cpu",
    dtype: str = "float64",
    split: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Errors of ``model`` on labelled frames.

    Parameters
    ----------
    model
        Model spec for the potential factory (usually a file path), or a calculator (used as it is:
        ``device`` and ``dtype`` do not apply).
    data
        Labelled extxyz file or frames.
    device, dtype
        Where and how to evaluate.
    split
        Only frames whose ``info["split"]`` equals this (e.g. ``"test"``); ``None``: every frame.
    progress
        Progress bar.

    Returns
    -------
    dict
        ``n_frames``, ``energy_rmse_mev_atom``, ``forces_rmse_mev_ang``, ``stress_rmse_gpa``,
        ``per_config_type`` ({type: {n_frames, energy_rmse_mev_atom, forces_rmse_mev_ang, stress_rmse_gpa}}),
        ``forces_rmse_mev_ang_per_element``, and ``parity`` (reference/predicted arrays for plots).
    """
    from tqdm.auto import tqdm

    frames = read_labelled(data) if not isinstance(data, list) else data
    if split is not None:
        from ...errors import ConfigError

        frames = [a for a in frames if str(a.info.get("split")) == split]
        if not frames:
            raise ConfigError(f"no frame has split={split!r}; label frames made by `tfbsim train dft-frames`, "
                              "or leave the split filter out")
    calc = model if isinstance(model, Calculator) else load_potential(str(model), device=device, dtype=dtype)
    de: dict[str, list] = defaultdict(list)
    df: dict[str, list] = defaultdict(list)
    ds: dict[str, list] = defaultdict(list)
    df_el: dict[str, list] = defaultdict(list)
    dot_el: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    energies: list[tuple[dict[str, int], float, float]] = []
    parity: dict[str, list] = {"energy_ref": [], "energy_pred": [], "force_ref": [], "force_pred": []}
    for atoms in tqdm(frames, desc="evaluating", unit="frame", disable=not progress):
        check_coverage(calc, atoms)
        ctype = str(atoms.info.get("config_type", "unknown"))
        work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        work.calc = calc
        n = len(work)
        e_pred = work.get_potential_energy() / n
        e_ref = atoms.info["REF_energy"] / n
        f_pred = work.get_forces()
        f_ref = atoms.arrays["REF_forces"]
        de[ctype].append(np.array([e_pred - e_ref]))
        df[ctype].append(f_pred - f_ref)
        for symbol in set(work.get_chemical_symbols()):
            mask = work.symbols == symbol
            df_el[symbol].append((f_pred - f_ref)[mask])
            dot_el[symbol][0] += float((f_ref[mask] * f_pred[mask]).sum())
            dot_el[symbol][1] += float((f_ref[mask] ** 2).sum())
        counts: dict[str, int] = defaultdict(int)
        for symbol in work.get_chemical_symbols():
            counts[symbol] += 1
        energies.append((dict(counts), e_pred * n, e_ref * n))
        if "REF_stress" in atoms.info and work.pbc.all():
            ds[ctype].append((work.get_stress(voigt=True) - np.asarray(atoms.info["REF_stress"])) / units.GPa)
        parity["energy_ref"].append(e_ref)
        parity["energy_pred"].append(e_pred)
        parity["force_ref"].append(f_ref.ravel())
        parity["force_pred"].append(f_pred.ravel())

    def block(keys: list[str]) -> dict[str, Any]:
        e = [x for k in keys for x in de[k]]
        f = [x for k in keys for x in df[k]]
        s = [x for k in keys for x in ds[k]]
        return {
            "n_frames": len(e),
            "energy_rmse_mev_atom": 1000 * _rmse(e) if e else None,
            "forces_rmse_mev_ang": 1000 * _rmse(f) if f else None,
            "stress_rmse_gpa": _rmse(s) if s else None,
        }

    result = block(sorted(de))
    result["per_config_type"] = {k: block([k]) for k in sorted(de)}
    result["forces_rmse_mev_ang_per_element"] = {el: 1000 * _rmse(v) for el, v in sorted(df_el.items())}
    result["force_slope_per_element"] = {el: (v[0] / v[1] if v[1] > 0 else None) for el, v in sorted(dot_el.items())}
    result["energy_rmse_offset_fitted_mev_atom"] = _offset_fitted_rmse(energies)
    result["model"] = dict((k, calc.parameters.get(k)) for k in ("spec", "sha256", "dtype", "device"))
    result["parity"] = {
        "energy_ref_ev_atom": np.array(parity["energy_ref"]),
        "energy_pred_ev_atom": np.array(parity["energy_pred"]),
        "force_ref_ev_ang": np.concatenate(parity["force_ref"]) if parity["force_ref"] else np.array([]),
        "force_pred_ev_ang": np.concatenate(parity["force_pred"]) if parity["force_pred"] else np.array([]),
    }
    return result


def parity_figure(errors: dict[str, Any], path: str | os.PathLike | None = None):
    """Energy and force parity plots (prediction vs reference) with RMSEs in the titles."""
    from ...analysis.plots import new_figure, save_figure

    p = errors["parity"]
    fig, (ax_e, ax_f) = new_figure(1, 2, figsize=(9.0, 4.2))
    for ax, ref, pred, label, rmse, unit in (
        (ax_e, p["energy_ref_ev_atom"], p["energy_pred_ev_atom"], "energy (eV/atom)", errors["energy_rmse_mev_atom"], "meV/atom"),
        (ax_f, p["force_ref_ev_ang"], p["force_pred_ev_ang"], "force component (eV/Å)", errors["forces_rmse_mev_ang"], "meV/Å"),
    ):
        ax.scatter(ref, pred, s=4, alpha=0.5)
        if len(ref):
            lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"model {label}")
        ax.set_title(f"RMSE {rmse:.1f} {unit}" if rmse is not None else "no data")
    save_figure(fig, Path(path) if path else None)
    return fig
