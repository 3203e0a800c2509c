"""Is the labelling basis/cutoff converged? One frame, a few levels of theory, the differences that matter.

:func:`convergence_check` labels one frame at the production settings and at each variant (a larger cutoff,
a larger basis) and reports, against the production settings: the energy difference per atom (meV/atom;
a larger basis shifts absolute energies, and with one frame that shift cannot be separated from an error, so
it is informational — forces, s_Li and stress decide), the force RMSE per element
(meV/Å), the Li force slope s_Li = (F_variant·F_base)/(F_variant·F_variant), and the stress difference (GPa).
The dataset card records the result and the choice it supports.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.units import GPa

from .cp2k import Cp2kSettings, cp2k_single_point

__all__ = ["convergence_check", "labelled_point", "DEFAULT_VARIANTS"]

logger = logging.getLogger(__name__)

DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "cutoff_800Ry": {"cutoff_ry": 800.0, "rel_cutoff_ry": 80.0},
    "TZV2P": {"basis": "TZV2P-MOLOPT-PBE-GTH", "basis_file": "BASIS_MOLOPT_UZH"},
    # the double-zeta set of TZV2P's family: is a cheaper basis closer to TZV2P than the production one?
    "DZVP-UZH": {"basis": "DZVP-MOLOPT-PBE-GTH", "basis_file": "BASIS_MOLOPT_UZH"},
}


def _compare(base: dict, other: dict, symbols: np.ndarray) -> dict[str, Any]:
    df = other["forces"] - base["forces"]
    per_el = {el: round(float(np.sqrt((df[symbols == el] ** 2).mean())) * 1000, 2) for el in sorted(set(symbols))}
    li = symbols == "Li"
    f_ref, f_base = other["forces"][li].ravel(), base["forces"][li].ravel()
    out = {"energy_diff_mev_atom": round((base["energy"] - other["energy"]) / len(symbols) * 1000, 3),
           "forces_rmse_mev_ang": round(float(np.sqrt((df ** 2).mean())) * 1000, 2),
           "forces_rmse_per_element_mev_ang": per_el,
           "s_li": round(float(f_ref @ f_base / (f_ref @ f_ref)), 4) if li.any() else None,
           "wall_s": round(other["wall_s"], 1), "scf_steps": other["scf_steps"]}
    if "stress" in base and "stress" in other:
        out["stress_max_abs_diff_gpa"] = round(float(np.abs(other["stress"] - base["stress"]).max() / GPa), 3)
    return out


def _point(atoms: Atoms, settings: Cp2kSettings, cache: Path | None, name: str) -> dict[str, Any]:
    """One single point, cached as ``cache/<name>.npz`` (so an interrupted check resumes level by level)."""
    path = None if cache is None else cache / f"{name}.npz"
    if path is not None and path.exists():
        data = np.load(path)
        return {k: (data[k] if data[k].ndim else data[k].item()) for k in data.files}
    result = cp2k_single_point(atoms, settings)
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: np.asarray(v) for k, v in result.items()})
        tmp.replace(path)
    return result


def labelled_point(atoms: Atoms, labelled: str | Path, settings: Cp2kSettings) -> dict[str, Any]:
    """The production labels of ``atoms`` from a labelled dataset, as a base point (no second CP2K run).

    The dataset's card must record ``settings``' level of theory, and the frame must be in it (matched by
    :func:`~tfbsim.workflows.training.label.frame_id`); otherwise :class:`~tfbsim.errors.ConfigError`.
    """
    import json

    from ...errors import ConfigError
    from .label import frame_id, read_labelled

    labelled = Path(labelled)
    card = labelled.with_name(labelled.name + ".card.json")
    recorded = json.loads(card.read_text()).get("teacher", {}).get("settings") if card.is_file() else None
    if recorded is None:
        raise ConfigError(f"{labelled}: no card with CP2K settings ({card.name}); label the frame with "
                          "`tfbsim train label --method cp2k`, or leave --base-labels out")
    differ = [k for k, v in settings.level_of_theory().items() if k in recorded and recorded[k] != v]
    if differ:
        raise ConfigError(f"{labelled} was labelled at other settings ({', '.join(differ)}) than the base of this "
                          "check; give the same --cp2k-config, or leave --base-labels out")
    key = frame_id(atoms)
    for frame in read_labelled(labelled):
        if frame_id(frame) == key:  # as read, like ``atoms``: the precision of the files
            return {"energy": float(frame.info["REF_energy"]), "forces": np.asarray(frame.arrays["REF_forces"]),
                    "stress": np.asarray(frame.info["REF_stress"]),
                    "wall_s": float(frame.info.get("label_wall_s", 0.0)), "scf_steps": None}
    raise ConfigError(f"{labelled} has no labels of this frame (frame_id {key}); label it first, or leave "
                      "--base-labels out")


def convergence_check(atoms: Atoms, base: Cp2kSettings | None = None,
                      variants: dict[str, dict[str, Any]] | None = None,
                      cache: str | Path | None = None, *, base_point: dict[str, Any] | None = None,
                      models: dict[str, str] | None = None) -> dict[str, Any]:
    """Label ``atoms`` at ``base`` and each variant (settings overrides); compare every variant to ``base``.

    ``base_point`` (from :func:`labelled_point`) stands for the base run when the frame is already labelled at
    the production settings. ``models`` (``{name: spec}``, specs as
    :func:`~tfbsim.workflows.training.dft_comparison.comparison_model` takes them) are scored against every
    level: does a model's agreement with "DFT" depend on the basis the DFT used? (``report["models"]``)

    Returns
    -------
    dict
        ``base`` (spec, wall_s), and per variant its spec and the differences of :func:`_compare` — energy
        per atom, force RMSE overall and per element, s_Li, stress — where the variant is the reference.
    """
    base = base or Cp2kSettings()
    variants = variants or DEFAULT_VARIANTS
    symbols = np.array(atoms.get_chemical_symbols())
    cache = None if cache is None else Path(cache)
    ref = base_point if base_point is not None else _point(atoms, base, cache, "base")
    logger.info("convergence check: base %s done in %.0f s", base.spec(), ref["wall_s"])
    report: dict[str, Any] = {"n_atoms": len(atoms), "formula": atoms.get_chemical_formula(),
                              "base": {"spec": base.spec(), "wall_s": round(ref["wall_s"], 1),
                                       "scf_steps": ref["scf_steps"]}, "variants": {}}
    levels = {"base": ref}
    for name, update in variants.items():
        settings = base.model_copy(update=update)
        other = levels[name] = _point(atoms, settings, cache, name)
        report["variants"][name] = {"spec": settings.spec(), **_compare(ref, other, symbols)}
        logger.info("convergence check: %s done (%s)", name, report["variants"][name])
    if models:
        report["models"] = {name: _score_model(atoms, spec, levels, symbols) for name, spec in models.items()}
    return report


def _score_model(atoms: Atoms, spec: str, levels: dict[str, dict[str, Any]],
                 symbols: np.ndarray) -> dict[str, Any]:
    """Force slope (model against level) and force RMSE per element, and the pressure difference, per level."""
    from ase.calculators.calculator import Calculator

    from .dft_comparison import comparison_model

    model = comparison_model(spec)
    calc = model if isinstance(model, Calculator) else _factory(model)
    try:
        probe = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        probe.calc = calc
        forces, stress = probe.get_forces(), probe.get_stress(voigt=True)
    finally:
        if isinstance(model, Calculator):
            model.close()
    out: dict[str, Any] = {"spec": spec}
    for level, point in levels.items():
        ref = point["forces"]
        rmse = round(float(np.sqrt(((forces - ref) ** 2).mean())) * 1000, 1)
        row: dict[str, Any] = {"forces_rmse_mev_ang": rmse, "force_slope_per_element": {},
                               "forces_rmse_per_element_mev_ang": {}}
        for el in sorted(set(symbols)):
            f, r = forces[symbols == el].ravel(), ref[symbols == el].ravel()
            row["force_slope_per_element"][el] = round(float(f @ r / (r @ r)), 4)
            row["forces_rmse_per_element_mev_ang"][el] = round(float(np.sqrt(((f - r) ** 2).mean())) * 1000, 1)
        if "stress" in point:
            row["pressure_diff_gpa"] = round(float(-(stress[:3] - point["stress"][:3]).mean() / GPa), 3)
        out[level] = row
    return out


def _factory(spec: str):
    from ..potentials.factory import load_potential

    return load_potential(spec, device="cpu", dtype="float64")
