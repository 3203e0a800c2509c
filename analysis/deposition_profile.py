"""Interphase classes during a deposition (or an anneal), layer by layer, against the deposited amount.

:func:`deposition_profile` takes snapshots whose atom count may grow (``snapshots.extxyz`` of
:func:`tfbsim.workflows.protocols.deposition.deposit`, or the frames of an anneal) and classifies every atom of
every snapshot with the interphase classifier (:meth:`tfbsim.analysis.interphase.Interphase.atom_environments`,
the local-environment classes of :mod:`tfbsim.analysis.environments`). It reports, per snapshot:

- ``class_counts``: atoms of every class, and ``layer_counts``: the same per layer, layers being slices of
  ``layer_ang`` along z measured from the initial substrate top ``z0`` (layer ``k`` holds ``z0 + k L <= z <
  z0 + (k + 1) L``: negative layers are inside the substrate, non-negative ones in the growing deposit);
- ``deposited``: atoms of the deposited species that arrived (``arrays['dep_arrival'] >= 0``) and ``per_p``:
  that number per P of the substrate (Li per P for Li on LiPON; ``None`` without P);
- ``reduced_pn_depth_ang``: how deep (``z0 - z``, Å) reduced P/N reach — P or N atoms of the substrate in the
  classes :data:`REDUCED_PN_CLASSES` that were not in such a class in the first snapshot (the pristine glass
  has a few broken tetrahedra of its own; they are the ``baseline`` and do not count);
- ``deposit_classes``: classes of the deposited atoms (how much of the Li is metal), ``li_metal_on_top``:
  whether Li_metal atoms sit above the new product atoms (median heights; ``None`` when either is missing).

Over the series: ``first_appearance`` (per product class, the first snapshot where its substrate count exceeds
the first snapshot's by at least ``min_new_atoms``) and ``product_order_first`` (the classes in that order);
``pn_classes_present`` / ``reduced_classes_present`` in the last snapshot (the inert-substrate control: Li on
Li2O must show neither); and ``cutoff_sensitivity``: the last snapshot classified again with every bond cutoff
shifted by ``-delta`` and ``+delta`` (0.1 Å), with the class fractions (atoms of the class / all atoms) and
their largest change.

This module reads structures only (it never imports :mod:`tfbsim.workflows`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import AnalysisError
from .base import AnalysisResults
from .environments import CLASS_ELEMENTS, CLASSES, PRODUCT_CLASSES, EnvironmentSettings
from .interphase import Interphase

__all__ = ["deposition_profile", "DepositionProfile", "REDUCED_PN_CLASSES", "read_snapshots"]

logger = logging.getLogger(__name__)

#: Classes of P and N that mean reduction (a broken or missing P tetrahedron, N without P).
REDUCED_PN_CLASSES: tuple[str, ...] = ("reduced_P", "P_P", "Li3P", "P_other", "Li3N", "N_other")


@dataclass(frozen=True)
class DepositionProfile(AnalysisResults):
    """Results of :func:`deposition_profile` (see the module docstring); ``to_dict()`` is the JSON record."""

    x_name: str
    x: list
    species: str
    z0_ang: float
    layer_ang: float
    layer_index: list[int]
    snapshots: list[dict] = field(repr=False)
    first_appearance: dict[str, dict] = field(repr=False)
    product_order_first: list[str] = field(default_factory=list)
    pn_classes_present: list[str] = field(default_factory=list)
    reduced_classes_present: list[str] = field(default_factory=list)
    cutoff_sensitivity: dict = field(repr=False, default_factory=dict)
    definitions: dict = field(repr=False, default_factory=dict)

    def _record(self) -> dict[str, Any]:
        return {
            "x_name": self.x_name, "x": self.x, "species": self.species, "z0_ang": self.z0_ang,
            "layer_ang": self.layer_ang, "layer_index": self.layer_index,
            "layer_z_lo_ang": [self.z0_ang + k * self.layer_ang for k in self.layer_index],
            "snapshots": self.snapshots, "first_appearance": self.first_appearance,
            "product_order_first": self.product_order_first, "pn_classes_present": self.pn_classes_present,
            "reduced_classes_present": self.reduced_classes_present,
            "cutoff_sensitivity": self.cutoff_sensitivity, "definitions": self.definitions,
        }


def read_snapshots(path: str | os.PathLike) -> list[Atoms]:
    """All frames of an extended-XYZ snapshot file (atom counts may differ between frames)."""
    from ase.io import read

    frames = read(path, index=":")
    if not frames:
        raise AnalysisError(f"{path}: no snapshots")
    return frames


def _classes_of(atoms: Atoms, settings: EnvironmentSettings) -> np.ndarray:
    ia = Interphase(atoms, thresholds=settings, bin_ang=max(float(atoms.cell[2, 2]) / 4.0, 0.5))
    return ia.atom_environments(atoms).label


def _shifted(settings: EnvironmentSettings, delta: float) -> EnvironmentSettings:
    cut = {k: max(v + delta, 0.05) for k, v in settings.cutoffs_ang.items()}
    return EnvironmentSettings.from_any({**settings.to_dict(), "cutoffs_ang": cut})


def _fractions(labels: np.ndarray) -> dict[str, float]:
    n = max(len(labels), 1)
    return {c: float(np.sum(labels == c)) / n for c in CLASSES}


def deposition_profile(
    snapshots: Sequence[Atoms] | str | os.PathLike,
    *,
    species: str | None = None,
    layer_ang: float = 2.0,
    z0_ang: float | None = None,
    x_name: str = "n_deposited",
    x_values: Iterable[float] | None = None,
    cutoffs: Mapping | Iterable[str] | None = None,
    thresholds: EnvironmentSettings | Mapping | None = None,
    min_new_atoms: int = 1,
    delta_ang: float = 0.1,
) -> DepositionProfile:
    """Classify every atom of every snapshot and summarise the interphase against the deposited amount.

    Parameters
    ----------
    snapshots
        Frames (or an extxyz file of them), first one before (or at the start of) the deposition. Atoms with
        ``arrays['dep_arrival'] >= 0`` are the deposited ones; the substrate's atoms keep their indices.
    species
        The deposited element (default: ``info['species']`` of the first snapshot, else ``Li``).
    layer_ang
        Layer thickness along z (Å).
    z0_ang
        Reference height (Å); default: the highest substrate atom of the first snapshot.
    x_name, x_values
        Name and values of the series' abscissa; default ``n_deposited`` from the snapshots' ``info`` (or the
        count of deposited atoms); pass e.g. ``"time_ps"`` and times for an anneal.
    cutoffs, thresholds
        Classifier settings (as :class:`~tfbsim.analysis.interphase.Interphase`).
    min_new_atoms
        Atoms a product class must gain over the first snapshot to count as appeared.
    delta_ang
        Shift of every bond cutoff in the sensitivity check (Å).

    Raises
    ------
    AnalysisError
        No snapshots, a snapshot whose substrate part differs in composition from the first, elements without
        interphase classes, bad settings.
    """
    frames = read_snapshots(snapshots) if isinstance(snapshots, (str, os.PathLike)) else list(snapshots)
    if not frames:
        raise AnalysisError("no snapshots to analyse")
    if not (isinstance(layer_ang, (int, float)) and layer_ang > 0):
        raise AnalysisError(f"layer_ang must be a positive length in Å, got {layer_ang!r}")
    settings = EnvironmentSettings.from_any(thresholds, cutoffs=cutoffs)
    species = species or str(frames[0].info.get("species", "Li"))
    first = frames[0]
    dep0 = _deposited_mask(first)
    n_sub = int((~dep0).sum())
    sub_numbers = first.numbers[~dep0]
    if z0_ang is None:
        z0_ang = float(first.positions[~dep0, 2].max())
    n_p = int(np.sum(sub_numbers == 15))
    xs = list(x_values) if x_values is not None else None
    if xs is not None and len(xs) != len(frames):
        raise AnalysisError(f"{len(xs)} x values for {len(frames)} snapshots")
    labels_all, records = [], []
    kmin, kmax = 0, 0
    for f in frames:
        z = f.positions[:, 2]
        kmin = min(kmin, int(np.floor((z.min() - z0_ang) / layer_ang)))
        kmax = max(kmax, int(np.floor((z.max() - z0_ang) / layer_ang)))
    layers = list(range(kmin, kmax + 1))
    baseline_reduced = None
    for i, f in enumerate(frames):
        dep = _deposited_mask(f)
        if not np.array_equal(f.numbers[:n_sub], sub_numbers) or int((~dep).sum()) != n_sub:
            raise AnalysisError(f"snapshot {i}: its substrate atoms differ from the first snapshot's (the substrate "
                                "must keep its atoms and order; deposited atoms come after it)")
        labels = _classes_of(f, settings)
        labels_all.append(labels)
        z = f.positions[:, 2]
        layer = np.floor((z - z0_ang) / layer_ang).astype(int) - kmin
        sub_labels = labels[:n_sub]
        reduced = np.isin(sub_labels, REDUCED_PN_CLASSES)
        if baseline_reduced is None:
            baseline_reduced = reduced.copy()
        new_reduced = reduced & ~baseline_reduced
        depth = z0_ang - z[:n_sub]
        n_dep = int(dep.sum())
        x = xs[i] if xs is not None else int(f.info.get("n_deposited", n_dep))
        dep_labels = labels[dep]
        products = np.isin(sub_labels, PRODUCT_CLASSES) & (new_reduced | ~np.isin(sub_labels, REDUCED_PN_CLASSES))
        metal_z = z[(labels == "Li_metal")]
        records.append({
            "index": i, "x": x, "step": f.info.get("step"), "time_ps": f.info.get("time_ps"),
            "deposited": n_dep, "per_p": (n_dep / n_p) if n_p else None, "n_atoms": len(f),
            "class_counts": {c: int(np.sum(labels == c)) for c in CLASSES if np.any(labels == c)},
            "layer_counts": {c: np.bincount(layer[labels == c], minlength=len(layers)).tolist()
                             for c in CLASSES if np.any(labels == c)},
            "deposit_classes": {c: int(np.sum(dep_labels == c)) for c in CLASSES if np.any(dep_labels == c)},
            "reduced_pn_new": int(new_reduced.sum()),
            "reduced_pn_baseline": int(baseline_reduced.sum()),
            "reduced_pn_depth_ang": float(depth[new_reduced].max()) if new_reduced.any() else None,
            "li_metal_on_top": _on_top(metal_z, z[:n_sub][products]),
        })
    first_seen: dict[str, dict] = {}
    base = records[0]["class_counts"]
    for c in PRODUCT_CLASSES:
        for rec, labels in zip(records, labels_all):
            if np.sum(labels[:n_sub] == c) - base.get(c, 0) >= min_new_atoms:
                first_seen[c] = {"snapshot": rec["index"], "x": rec["x"], "per_p": rec["per_p"]}
                break
    order = sorted(first_seen, key=lambda c: (first_seen[c]["snapshot"], CLASSES.index(c)))
    last = labels_all[-1]
    present = [c for c in CLASSES if np.any(last == c)]
    pn = [c for c in present if set(CLASS_ELEMENTS[c]) & {"P", "N"}]
    reduced_present = [c for c in present if c in REDUCED_PN_CLASSES]
    sens = _sensitivity(frames[-1], settings, last, delta_ang)
    defs = {
        "layer": f"slices of {layer_ang:g} Å along z from z0 (the first snapshot's highest substrate atom); negative "
                 "indices inside the substrate",
        "reduced_pn_classes": list(REDUCED_PN_CLASSES),
        "reduced_pn_depth_ang": "deepest (z0 - z) substrate P/N atom in a reduced class that was not reduced in the "
                                "first snapshot",
        "first_appearance": f"first snapshot where a product class gained >= {min_new_atoms} substrate atoms over "
                            "the first snapshot",
        "li_metal_on_top": "median z of Li_metal atoms above the median z of the new product atoms",
        "per_p": f"deposited {species} atoms per P of the substrate",
        "classifier": settings.to_dict(),
    }
    return DepositionProfile(
        x_name=x_name, x=[r["x"] for r in records], species=species, z0_ang=float(z0_ang),
        layer_ang=float(layer_ang), layer_index=layers, snapshots=records, first_appearance=first_seen,
        product_order_first=order, pn_classes_present=pn, reduced_classes_present=reduced_present,
        cutoff_sensitivity=sens, definitions=defs,
    )


def _deposited_mask(atoms: Atoms) -> np.ndarray:
    arr = atoms.arrays.get("dep_arrival")
    return np.zeros(len(atoms), dtype=bool) if arr is None else np.asarray(arr) >= 0


def _on_top(metal_z: np.ndarray, product_z: np.ndarray) -> bool | None:
    if metal_z.size < 3 or product_z.size == 0:
        return None
    return bool(np.median(metal_z) > np.median(product_z))


def _sensitivity(atoms: Atoms, settings: EnvironmentSettings, labels: np.ndarray, delta: float) -> dict:
    base = _fractions(labels)
    out: dict[str, Any] = {"delta_ang": [-delta, delta], "fractions": {"0": base}}
    changes = {c: 0.0 for c in CLASSES}
    for d in (-delta, delta):
        fr = _fractions(_classes_of(atoms, _shifted(settings, d)))
        out["fractions"][f"{d:+g}"] = fr
        for c in CLASSES:
            changes[c] = max(changes[c], abs(fr[c] - base[c]))
    out["fractions"] = {k: {c: v for c, v in fr.items() if any(out["fractions"][kk][c] for kk in out["fractions"])}
                        for k, fr in out["fractions"].items()}
    out["max_abs_change"] = {c: v for c, v in changes.items() if v > 0 or base[c] > 0}
    out["definition"] = ("class fraction = atoms of the class / all atoms of the last snapshot, with every bond cutoff "
                         f"shifted by -{delta:g} and +{delta:g} Å")
    return out
