"""Typed results of :class:`tfbsim.analysis.interphase.Interphase` and their JSON record.

:class:`InterphaseResults` is the frozen dataclass behind ``Interphase(...).run().results``; its ``to_dict()``
is the ``tfbsim analyze interphase --json`` schema read by the demo and campaign reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import AnalysisResults

__all__ = ["InterphaseResults"]


@dataclass(frozen=True)
class InterphaseResults(AnalysisResults):
    """Results of :class:`~tfbsim.analysis.interphase.Interphase` (see its module docstring for the methods).

    Attributes
    ----------
    n_frames : int
    frames : numpy.ndarray of int
        Indices of the analysed frames in the trajectory's selection.
    times_ps : numpy.ndarray or None
        Time of each analysed frame (ps).
    axis : str
        Interface normal.
    n_bins : int
    bin_edges_ang, bin_centres_ang : numpy.ndarray
        Bins along the normal, from the mean cell length (Å).
    bin_width_ang : float
    cell_length_ang, area_ang2 : numpy.ndarray, shape (n_frames,)
        Cell length along the normal (Å) and in-plane area (Å²) per frame.
    classes : tuple of str
        :data:`~tfbsim.analysis.environments.CLASSES`.
    elements : list of str
    class_counts_per_frame : numpy.ndarray of int, shape (n_frames, n_classes, n_bins)
    class_fraction_per_frame : numpy.ndarray of float32, shape (n_frames, n_classes, n_bins)
    class_fraction_by_bin : dict[str, numpy.ndarray]
        Per class, counts summed over the frames / all atoms summed over the frames, per bin.
    element_density_per_frame_ang3 : numpy.ndarray of float32, shape (n_frames, n_elements, n_bins)
        Number densities (Å⁻³).
    element_density_ang3 : dict[str, numpy.ndarray]
        Per element, mean over frames (Å⁻³).
    mass_density_per_frame_g_cm3 : numpy.ndarray, shape (n_frames, n_bins)
    mass_density_g_cm3 : numpy.ndarray, shape (n_bins,)
    class_totals_per_frame : dict[str, numpy.ndarray]
        Atoms of each class per frame.
    class_counts, subtype_counts, formula_units : dict
        Census of the last analysed frame.
    class_counts_by_region, formula_units_by_region : dict or None
        The census per ``region`` label (None without labels).
    interphase : dict
        Per-frame arrays ``frame``, ``time_ps``, ``thickness_ang``, ``z_lo_ang``, ``z_hi_ang``, ``front_ang``,
        ``total_thickness_ang``, ``n_segments``, ``n_product_sites``, and ``growth``
        (:class:`~tfbsim.analysis.growth.GrowthFit`).
    layers : list of dict
        ``{phase, z_lo_ang, z_hi_ang, thickness_ang}``.
    li_metal : dict or None
        ``{z_lo_ang, z_hi_ang, thickness_ang}`` of the Li metal.
    product_order_from_li : list of str
    product_peaks_ang, product_distance_from_li_ang : dict[str, float]
    product_side : str or None
        ``"+z"``/``"-z"`` from the metal.
    product_classes : tuple of str
    threshold : float
    max_gap_ang : float
    definitions : dict
        Classes, products, cutoffs and thresholds used (the JSON ``definitions`` block, without the run notes).
    last_environments : Environments
        Per-atom classes of the last analysed frame.
    """

    n_frames: int
    frames: np.ndarray = field(repr=False)
    times_ps: np.ndarray | None = field(repr=False)
    axis: str
    n_bins: int
    bin_edges_ang: np.ndarray = field(repr=False)
    bin_centres_ang: np.ndarray = field(repr=False)
    bin_width_ang: float
    cell_length_ang: np.ndarray = field(repr=False)
    area_ang2: np.ndarray = field(repr=False)
    classes: tuple[str, ...] = field(repr=False)
    elements: list[str] = field(repr=False)
    class_counts_per_frame: np.ndarray = field(repr=False)
    class_fraction_per_frame: np.ndarray = field(repr=False)
    class_fraction_by_bin: dict[str, np.ndarray] = field(repr=False)
    element_density_per_frame_ang3: np.ndarray = field(repr=False)
    element_density_ang3: dict[str, np.ndarray] = field(repr=False)
    mass_density_per_frame_g_cm3: np.ndarray = field(repr=False)
    mass_density_g_cm3: np.ndarray = field(repr=False)
    class_totals_per_frame: dict[str, np.ndarray] = field(repr=False)
    interphase: dict[str, Any] = field(repr=False)
    class_counts: dict[str, int] = field(repr=False)
    subtype_counts: dict[str, dict[str, int]] = field(repr=False)
    formula_units: dict[str, int] = field(repr=False)
    class_counts_by_region: dict | None = field(repr=False)
    formula_units_by_region: dict | None = field(repr=False)
    layers: list[dict] = field(repr=False)
    li_metal: dict | None = field(repr=False)
    product_order_from_li: list[str]
    product_peaks_ang: dict[str, float] = field(repr=False)
    product_distance_from_li_ang: dict[str, float] = field(repr=False)
    product_side: str | None = None
    product_classes: tuple[str, ...] = ()
    threshold: float = 0.5
    max_gap_ang: float = 3.0
    definitions: dict = field(repr=False, default_factory=dict)
    last_environments: Any = field(repr=False, default=None)

    def _record(self) -> dict[str, Any]:
        """The JSON record (see the module docstring of :mod:`tfbsim.analysis.interphase`)."""
        inter = self.interphase
        defs = dict(self.definitions)
        defs.update({
            "axis": f"interface normal; bins are equal slices of the cell along it, edges from the mean cell "
                    f"length over {self.n_frames} frame(s)",
            "element_density_ang3": "atoms per Å³ in each bin, mean over frames",
            "mass_density_g_cm3": "mass density in each bin (g/cm³), mean over frames",
            "class_fraction_by_bin": "atoms of the class in the bin / all atoms in the bin, counts summed over "
                                     "frames",
            "class_counts": "atoms per class in the last analysed frame",
            "interphase": f"per frame: the run of bins whose atoms other than Li_ion are >= {self.threshold:g} "
                          "product classes and that touches the Li metal (else the longest); z_hi = z_lo + "
                          "thickness (may exceed the cell length when the run wraps); front = edge away from the "
                          "Li metal, wrapped into the cell",
            "product_order_from_li": "product classes ordered by the distance of their peak bin from the Li "
                                     "metal, on the side holding more product",
            "threshold": self.threshold,
            "max_gap_ang": self.max_gap_ang,
        })
        times = inter["time_ps"]
        return {
            "axis": self.axis,
            "bin_edges_ang": self.bin_edges_ang,
            "element_density_ang3": dict(self.element_density_ang3),
            "class_fraction_by_bin": dict(self.class_fraction_by_bin),
            "class_counts": dict(self.class_counts),
            "formula_units": dict(self.formula_units),
            "interphase": {
                "time_ps": times if times is not None else [None] * self.n_frames,
                "thickness_ang": inter["thickness_ang"],
                "z_lo_ang": inter["z_lo_ang"],
                "z_hi_ang": inter["z_hi_ang"],
                "front_ang": inter["front_ang"],
                "total_thickness_ang": inter["total_thickness_ang"],
                "n_product_sites": inter["n_product_sites"],
                "frame": inter["frame"],
                "growth": inter["growth"].to_dict(),
            },
            "product_order_from_li": list(self.product_order_from_li),
            "definitions": defs,
            "n_frames": self.n_frames,
            "mass_density_g_cm3": self.mass_density_g_cm3,
            "subtype_counts": self.subtype_counts,
            "class_counts_by_region": self.class_counts_by_region,
            "formula_units_by_region": self.formula_units_by_region,
            "layers": self.layers,
            "li_metal": self.li_metal,
            "product_peaks_ang": self.product_peaks_ang,
        }
