"""Interphase composition of an interface trajectory: what forms where, layer by layer, and how fast it grows.

:class:`Interphase` follows the analysis contract of :mod:`tfbsim.analysis.base`: settings go into
``__init__``, ``run(start, stop, step)`` analyses the frames and returns ``self``, and the numbers live in
``results`` (an :class:`~tfbsim.analysis.interphase_results.InterphaseResults`, whose ``to_dict()`` is the
JSON record; reading ``results`` before ``run()`` raises :class:`~tfbsim.errors.AnalysisError`). Every atom
of every frame gets a local-environment class (:mod:`tfbsim.analysis.environments`: ``Li_metal``, ``Li2O``,
``Li3N``, ``Li3P``, ``phosphate_O``, ``lipon_N`` ...); the classes are then binned along the interface normal.

What is computed
----------------
Profiles (bins of about ``bin_ang`` along ``axis``; see :mod:`tfbsim.analysis.zprofile` for the cell rules)
    element number densities (Å⁻³), mass density (g/cm³) and class fractions (atoms of the class in the bin /
    all atoms in the bin), per frame and over the analysed frames (densities: mean over frames; fractions:
    summed counts over summed counts).
Census
    atoms of every class (and subtype: Na/Nd/Nt of lipon_N, Onb/Ob of phosphate_O, Qn of P) in the last
    analysed frame, in total and per region (``atoms.arrays["region"]``, the phase an atom started in), and
    formula-unit equivalents: one Li2O per Li2O-class O, one Li3N per Li3N-class N, one Li3P per Li3P-class P,
    one Li2S per Li2S-class S, and one Li3PO4 per P in an isolated PO4 with no N nearby and a local Li/P of
    about 3 (:func:`li3po4_phosphorus`: γ-Li3PO4 or amorphous Li3PO4, told apart from LiPON, whose PO4 units
    share the ``phosphate`` classes; last frame only, not in the per-bin profiles).
Interphase extent, per frame
    Each bin is *product* when the product classes (default
    :data:`~tfbsim.analysis.environments.PRODUCT_CLASSES`) hold at least ``threshold`` of its atoms other
    than Li_ion (Li_ion sits in every ionic phase and does not vote; Li_metal atoms count as pristine metal,
    so one product anion dissolved in the metal does not make a bin interphase), *pristine* otherwise; bins
    with only Li_ion atoms, and empty runs up to ``max_gap_ang`` (between atomic planes), take the state of
    the nearest decided bin; longer empty runs are vacuum. The interphase is the run of product bins
    (periodic: it may wrap through the cell boundary) that touches the Li metal, or the longest run when none
    touches it: ``thickness_ang``, ``z_lo_ang`` and ``z_hi_ang = z_lo_ang + thickness_ang`` (z_lo in [0, L);
    z_hi may exceed L for a run that wraps), and the reaction front ``front_ang`` (the edge facing away from
    the Li metal, wrapped into [0, L); the upper edge without metal). ``total_thickness_ang`` sums every
    product run (both interfaces of a sandwich). Resolution: one bin.
Growth
    thickness vs time fitted by ``L0 + r t`` and ``L0 + k sqrt(t)`` with an AIC model choice
    (:func:`tfbsim.analysis.growth.fit_growth`) when there are at least four frames with times.
Layers and product order
    over the analysed frames, each bin gets the phase (:data:`~tfbsim.analysis.environments.PHASE_OF_CLASS`)
    with most atoms (Li_ion does not vote); runs of one phase are the layers. The Li metal is the longest run
    of bins where Li_metal atoms are the majority. Going away from the metal on the side that holds more
    product atoms, each product class is placed at the bin where it peaks; ``product_order_from_li`` lists the
    classes by that distance (empty without a Li metal region).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from ..errors import AnalysisError, ConfigError
from .base import Progress, TrajectoryAnalysis
from .environments import (
    CLASSES,
    FORMULA_UNITS,
    PHASE_OF_CLASS,
    RECOGNISED_ELEMENTS,
    Environments,
    EnvironmentSettings,
    check_product_classes,
    classify_environment_bonds,
    definitions,
)
from .growth import GrowthFit, fit_growth
from .interphase_results import InterphaseResults
from .neighbours import bonds
from .trajectory import Trajectory, TrajectoryLike
from .zprofile import (
    AXES,
    EMPTY,
    UNKNOWN,
    axis_index,
    check_normal_axis,
    fill_states,
    fractional_height,
    n_bins_for,
    periodic_runs,
)

__all__ = ["Interphase", "InterphaseResults", "li3po4_phosphorus"]

logger = logging.getLogger(__name__)

_AMU_ANG3_TO_G_CM3 = 1.66053906660
_CI = {name: k for k, name in enumerate(CLASSES)}
_PHASES = tuple(dict.fromkeys(p for p in PHASE_OF_CLASS.values() if p is not None))


#: No N atom may lie this close (Å) to a Li3PO4 P (in LiPON with ~0.3 N per P, nearly every P has one).
LI3PO4_N_FREE_RADIUS_ANG = 5.5
#: Radius (Å) over which the Li/P of neighbouring orthophosphate units is averaged.
LI3PO4_AVERAGE_RADIUS_ANG = 6.5
#: Accepted neighbourhood Li/P (Li3PO4: 3).
LI3PO4_LI_PER_P = (2.5, 3.5)


def li3po4_phosphorus(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, symbols: np.ndarray,
                      env: Environments, cutoffs_ang: Mapping) -> np.ndarray:
    """Indices of the P atoms that sit in Li3PO4 (γ-crystalline or amorphous), not in LiPON.

    The environment classes cannot tell them apart: both are ``phosphate_P``/``phosphate_O`` (the same PO4
    tetrahedra). A P counts as Li3PO4 when

    1. it is an isolated orthophosphate: ``phosphate_P`` with four O ligands, no N ligand within the LiPON
       P–N cut-off and no bridging O (subtype ``Q0``);
    2. no N atom lies within :data:`LI3PO4_N_FREE_RADIUS_ANG` of it (LiPON's N is spread through the glass:
       in builder glasses of Li2.94PO3.50N0.31 at most 1 of ~50 P passes this and the next test);
    3. the local Li/P is about 3 (within :data:`LI3PO4_LI_PER_P`): each Li is shared equally among its bonded
       anions (O, N, S within the analysis' Li–X cut-offs), a PO4 unit owns the shares of its four O, and the
       count is averaged over the unit and the orthophosphate units (test 1) within
       :data:`LI3PO4_AVERAGE_RADIUS_ANG`. γ-Li3PO4 gives exactly 3; Li-poor or Li-flooded neighbourhoods
       (a unit dissolved in Li metal) fall outside.

    Units at the edge of a Li3PO4 layer thinner than about 1 nm can fail test 2 or 3, so the count is a lower
    bound of the Li3PO4 present.

    Parameters
    ----------
    positions, cell, pbc, symbols
        The frame (Å).
    env
        Its environment classes (:func:`~tfbsim.analysis.environments.classify_environment_bonds`).
    cutoffs_ang
        The analysis' bond cut-offs (Å; ``EnvironmentSettings.cutoffs_ang``), for the Li–anion bonds.

    Returns
    -------
    numpy.ndarray of int
        Atom indices of the Li3PO4 P atoms.
    """
    symbols = np.asarray(symbols).astype(str)
    n = len(symbols)
    ortho = ((env.label == "phosphate_P") & (env.subtype == "Q0") & (env.neighbours["O"] == 4)
             & (env.neighbours["N"] == 0))
    if not ortho.any():
        return np.flatnonzero(ortho)
    src, dst, _, _ = bonds(positions, cutoffs_ang, symbols=symbols, cell=cell, pbc=pbc).directed()
    li_x = (symbols[src] == "Li") & np.isin(symbols[dst], ("O", "N", "S"))
    degree = np.bincount(src[li_x], minlength=n).astype(float)
    li_share = np.bincount(dst[li_x], weights=1.0 / degree[src[li_x]], minlength=n)  # Li owned by each anion
    p_o = (symbols[src] == "P") & (symbols[dst] == "O")
    li_per_p = np.bincount(src[p_o], weights=li_share[dst[p_o]], minlength=n)
    present = set(symbols.tolist())
    near_cut = {"P-P": LI3PO4_AVERAGE_RADIUS_ANG}
    if "N" in present:
        near_cut["P-N"] = LI3PO4_N_FREE_RADIUS_ANG
    i, j, _, d = bonds(positions, near_cut, symbols=symbols, cell=cell, pbc=pbc).directed()
    from_p = symbols[i] == "P"
    n_near_n = np.bincount(i[from_p & (symbols[j] == "N")], minlength=n)
    pp = from_p & (symbols[j] == "P") & ortho[j]
    mean = ((li_per_p + np.bincount(i[pp], weights=li_per_p[j[pp]], minlength=n))
            / (1.0 + np.bincount(i[pp], minlength=n)))
    ok = ortho & (n_near_n == 0) & (mean >= LI3PO4_LI_PER_P[0]) & (mean <= LI3PO4_LI_PER_P[1])
    return np.flatnonzero(ok)


class Interphase(TrajectoryAnalysis):
    """Local-environment classes binned along the interface normal, interphase extent, growth and product order.

    ``run(start, stop, step, *, progress)`` analyses frames ``start:stop:step`` of the selection and returns
    ``self`` (:class:`~tfbsim.analysis.base.TrajectoryAnalysis`).

    Parameters
    ----------
    trajectory
        Anything :class:`~tfbsim.analysis.trajectory.Trajectory` accepts (Atoms, list of Atoms, ASE file, tfbsim
        H5MD, MDAnalysis Universe) or a Trajectory.
    axis
        Interface normal: ``"x"``, ``"y"`` or ``"z"``. The cell must be periodic along it and its two in-plane
        vectors must have no component along it.
    bin_ang
        Bin width (Å); the cell length is split into ``round(L / bin_ang)`` equal bins (at least 2).
    frames
        Frame selection (``"START:STOP:STEP"`` or slice) applied when reading; ``run()`` selects within it.
    dt_fs
        Time between stored frames (fs) when the source has no times (needed for the growth fit only).
    cutoffs
        Bond-cutoff overrides (Å) of :data:`~tfbsim.analysis.environments.ENVIRONMENT_CUTOFFS_ANG`, as a mapping
        (``{"Li-Li": 3.3}``) or CLI strings (``["Li-Li=3.3"]``).
    thresholds
        :class:`~tfbsim.analysis.environments.EnvironmentSettings` or a mapping of its thresholds
        (``li_metal_min_li``, ``li_metal_max_anions``, ``min_li_neighbours``, ``co_oct_min_o``).
    product_classes
        Classes that mark the interphase (default :data:`~tfbsim.analysis.environments.PRODUCT_CLASSES`).
    threshold
        Fraction of a bin's atoms (Li_ion excluded) in product classes from which the bin is interphase
        (0 < t <= 1).
    max_gap_ang
        Empty stretches up to this length (Å) are filled from their neighbours (spaces between atomic planes,
        small gaps); longer ones are vacuum.

    Attributes
    ----------
    results : InterphaseResults
        Available after :meth:`run` (profiles, census, per-frame extent and growth, layers, product order;
        ``results.to_dict()`` is the JSON record).

    Examples
    --------
    >>> ia = Interphase("run/traj.h5md", bin_ang=1.0).run(step=10)      # doctest: +SKIP
    >>> ia.results.interphase["thickness_ang"][-1], ia.results.product_order_from_li   # doctest: +SKIP
    >>> write_json("interphase.json", ia.results.to_dict())              # doctest: +SKIP
    """

    name = "interphase"

    def __init__(
        self,
        trajectory: TrajectoryLike,
        *,
        axis: str = "z",
        bin_ang: float = 1.0,
        frames: str | slice | None = None,
        dt_fs: float | None = None,
        cutoffs: Mapping | Iterable[str] | None = None,
        thresholds: EnvironmentSettings | Mapping | None = None,
        product_classes: Iterable[str] | None = None,
        threshold: float = 0.5,
        max_gap_ang: float = 3.0,
    ) -> None:
        self.settings = EnvironmentSettings.from_any(thresholds, cutoffs=cutoffs)
        self.product_classes = check_product_classes(product_classes)
        if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
            raise ConfigError(f"threshold must be a fraction in (0, 1], got {threshold!r}")
        if not (isinstance(max_gap_ang, (int, float)) and math.isfinite(max_gap_ang) and max_gap_ang >= 0):
            raise ConfigError(f"max_gap_ang must be a non-negative length in Å, got {max_gap_ang!r}")
        self.threshold = float(threshold)
        self.max_gap_ang = float(max_gap_ang)
        self.axis_index = axis_index(axis)
        self.axis = AXES[self.axis_index]
        super().__init__(trajectory, frames=frames, dt_fs=dt_fs)
        traj = self._traj
        present = sorted(set(traj.symbols.tolist()))
        if not set(present) & set(RECOGNISED_ELEMENTS):
            raise AnalysisError(
                f"none of the elements {', '.join(present)} has interphase classes (they exist for "
                f"{', '.join(RECOGNISED_ELEMENTS)}); is this a battery interface, and are the species names "
                "chemical symbols?"
            )
        self.pbc = np.broadcast_to(np.asarray(traj.pbc, dtype=bool), (3,)).copy()
        _, cell = next(traj.iter_positions())
        length, _ = check_normal_axis(cell, self.pbc, self.axis_index, where="first frame")
        self.bin_ang = float(bin_ang) if isinstance(bin_ang, (int, float)) else bin_ang
        self.n_bins = n_bins_for(length, self.bin_ang)

    def atom_environments(self, atoms) -> Environments:
        """Per-atom classes of one frame with this analysis' settings."""
        bl = bonds(atoms, self.settings.cutoffs_ang, pbc=self.pbc)
        return classify_environment_bonds(bl, self.settings)

    # ------------------------------------------------------------------------------------------ running
    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> InterphaseResults:
        """Classify, bin and census the selected frames (see :meth:`run` and the module docstring).

        Raises
        ------
        TrajectoryError
            A frame's cell violates the axis rules (see :func:`~tfbsim.analysis.zprofile.check_normal_axis`).
        """
        traj = frames
        symbols = traj.symbols.astype(str)
        elements = sorted(set(symbols.tolist()), key=lambda el: atomic_numbers.get(el, 0))
        el_code = np.array([elements.index(s) for s in symbols])
        masses = np.array([atomic_masses[atomic_numbers[s]] if s in atomic_numbers else 0.0 for s in symbols])
        nf, nb, nc, ne = len(ids), self.n_bins, len(CLASSES), len(elements)
        class_counts = np.zeros((nf, nc, nb), dtype=np.int32)
        el_counts = np.zeros((nf, ne, nb), dtype=np.int32)
        mass = np.zeros((nf, nb))
        lengths, areas = np.zeros(nf), np.zeros(nf)
        env = None
        k = self.axis_index
        for f, (positions, cell) in enumerate(self._positions(frames, progress)):
            lengths[f], areas[f] = check_normal_axis(cell, self.pbc, k, where=f"frame {int(ids[f])}")
            bl = bonds(positions, self.settings.cutoffs_ang, symbols=symbols, cell=cell, pbc=self.pbc)
            env = classify_environment_bonds(bl, self.settings)
            b = np.minimum((fractional_height(positions, cell, k) * nb).astype(np.int64), nb - 1)
            class_counts[f] = np.bincount(env.code * nb + b, minlength=nc * nb).reshape(nc, nb)
            el_counts[f] = np.bincount(el_code * nb + b, minlength=ne * nb).reshape(ne, nb)
            mass[f] = np.bincount(b, weights=masses, minlength=nb)
            self._last_frame = (positions, cell)
        assert env is not None
        return self._conclude(frames, ids, elements, class_counts, el_counts, mass, lengths, areas, env)

    # ---------------------------------------------------------------------------------------- analysis
    def _conclude(self, frames, ids, elements, class_counts, el_counts, mass, lengths, areas,
                  env) -> InterphaseResults:
        nf, nc, nb = class_counts.shape
        mean_length = float(lengths.mean())
        bin_volume = areas * lengths / nb  # (nf,) Å³
        total = class_counts.sum(axis=1)  # (nf, nb)
        # per-frame arrays in float32: 10,000 frames x 22 classes x 100 bins stay below 100 MB each
        frac = (class_counts / np.maximum(total, 1)[:, None, :]).astype(np.float32)
        summed = class_counts.sum(axis=0)  # (nc, nb)
        summed_total = summed.sum(axis=0)
        frac_window = summed / np.maximum(summed_total, 1)
        el_density = (el_counts / bin_volume[:, None, None]).astype(np.float32)
        mass_density = mass / bin_volume[:, None] * _AMU_ANG3_TO_G_CM3

        times = frames.times_ps
        times = None if times is None else np.asarray(times, dtype=float)
        extents = [self._extent(class_counts[f], lengths[f]) for f in range(nf)]
        inter = {key: np.array([e[key] for e in extents], dtype=float)
                 for key in ("thickness_ang", "z_lo_ang", "z_hi_ang", "front_ang", "total_thickness_ang")}
        inter["n_segments"] = np.array([e["n_segments"] for e in extents], dtype=int)
        inter["n_product_sites"] = np.array([e["n_product_sites"] for e in extents], dtype=int)
        inter["frame"] = ids
        inter["time_ps"] = times
        if times is None:
            why = "the trajectory has no times; pass dt_fs (--dt-fs) for a growth fit"
            inter["growth"] = GrowthFit("insufficient", 0, 0.0, reason=why)
        else:
            inter["growth"] = fit_growth(times, inter["thickness_ang"])

        res = SimpleNamespace()  # staged here, frozen into InterphaseResults below
        res.n_frames = nf
        res.frames = ids
        res.times_ps = times
        res.axis = self.axis
        res.n_bins = nb
        res.bin_edges_ang = np.linspace(0.0, mean_length, nb + 1)
        res.bin_centres_ang = 0.5 * (res.bin_edges_ang[1:] + res.bin_edges_ang[:-1])
        res.bin_width_ang = mean_length / nb
        res.cell_length_ang = lengths
        res.area_ang2 = areas
        res.classes = CLASSES
        res.elements = list(elements)
        res.class_counts_per_frame = class_counts
        res.class_fraction_per_frame = frac
        res.class_fraction_by_bin = {c: frac_window[i] for i, c in enumerate(CLASSES)}
        res.element_density_per_frame_ang3 = el_density
        res.element_density_ang3 = {el: (el_counts[:, e] / bin_volume[:, None]).mean(axis=0)
                                    for e, el in enumerate(elements)}
        res.mass_density_per_frame_g_cm3 = mass_density
        res.mass_density_g_cm3 = mass_density.mean(axis=0)
        res.class_totals_per_frame = {c: class_counts[:, i].sum(axis=1) for i, c in enumerate(CLASSES)}
        res.interphase = inter
        res.product_classes = self.product_classes
        res.threshold = self.threshold
        res.max_gap_ang = self.max_gap_ang
        res.definitions = definitions(self.settings, self.product_classes)
        self._census(res, env)
        self._layers(res, summed, summed_total, mean_length)
        self._order(res, summed, summed_total, mean_length, nf)
        return InterphaseResults(**vars(res))

    def _max_gap_bins(self, length: float) -> int:
        return int(math.floor(self.max_gap_ang / (length / self.n_bins) + 1e-9))

    def _extent(self, counts: np.ndarray, length: float) -> dict:
        """Interphase of one frame from its (n_classes, n_bins) counts (see the module docstring)."""
        nb = counts.shape[1]
        width = length / nb
        gap = self._max_gap_bins(length)
        total = counts.sum(axis=0)
        voters = total - counts[_CI["Li_ion"]]  # Li_ion sits in every ionic phase: it does not vote
        n_prod = counts[[_CI[c] for c in self.product_classes]].sum(axis=0)
        product = n_prod / np.maximum(voters, 1) >= self.threshold
        state = np.where(voters > 0, product.astype(int), np.where(total > 0, UNKNOWN, EMPTY))
        runs = periodic_runs(fill_states(state, gap) == 1)
        metal = _metal_run(counts, gap)
        out = {"thickness_ang": 0.0, "z_lo_ang": math.nan, "z_hi_ang": math.nan, "front_ang": math.nan,
               "total_thickness_ang": sum(r[1] for r in runs) * width, "n_segments": len(runs),
               "n_product_sites": int(n_prod.sum())}
        if not runs:
            return out
        touching = [r for r in runs if metal is not None and _touches(r, metal, gap, nb)]
        main = max(touching or runs, key=lambda r: (r[1], -r[0]))
        z_lo = main[0] * width
        z_hi = z_lo + main[1] * width
        front = z_hi
        if touching:  # the front is the edge facing away from the metal
            below = (main[0] - (metal[0] + metal[1])) % nb  # metal below the run (its top touches our start)
            above = (metal[0] - (main[0] + main[1])) % nb
            front = z_hi if below <= above else z_lo
        out.update(thickness_ang=main[1] * width, z_lo_ang=z_lo, z_hi_ang=z_hi, front_ang=front % length)
        return out

    def _census(self, res: Any, env: Environments) -> None:
        counts = env.counts()
        res.class_counts = counts
        res.formula_units = {f: counts[c] for f, c in FORMULA_UNITS.items()}
        positions, cell = self._last_frame
        symbols = self._traj.symbols.astype(str)
        li3po4 = np.zeros(len(symbols), dtype=bool)
        li3po4[li3po4_phosphorus(positions, cell, self.pbc, symbols, env, self.settings.cutoffs_ang)] = True
        res.formula_units["Li3PO4"] = int(li3po4.sum())  # one per P in an N-free Li3PO4 neighbourhood
        sub: dict[str, dict[str, int]] = {}
        label = env.label
        for cls in ("lipon_N", "phosphate_O", "phosphate_P", "reduced_P"):
            mask = label == cls
            if mask.any():
                names, n = np.unique(env.subtype[mask], return_counts=True)
                sub[cls] = {str(a): int(b) for a, b in zip(names, n)}
        res.subtype_counts = sub
        regions = self._traj.regions
        res.class_counts_by_region = None
        res.formula_units_by_region = None
        if regions is not None:
            by_region, fu_region = {}, {}
            for region in sorted(set(regions.tolist())):
                c = env.counts(regions == region)
                by_region[region] = {k: v for k, v in c.items() if v}
                fu_region[region] = {**{f: c[cls] for f, cls in FORMULA_UNITS.items()},
                                     "Li3PO4": int(li3po4[regions == region].sum())}
            res.class_counts_by_region = by_region
            res.formula_units_by_region = fu_region
        res.last_environments = env

    def _layers(self, res: Any, summed: np.ndarray, summed_total: np.ndarray, length: float) -> None:
        nb = summed.shape[1]
        width = length / nb
        votes = np.zeros((len(_PHASES), nb))
        for cls, phase in PHASE_OF_CLASS.items():
            if phase is not None:
                votes[_PHASES.index(phase)] += summed[_CI[cls]]
        state = np.where(votes.sum(axis=0) > 0, np.argmax(votes, axis=0),
                         np.where(summed_total > 0, UNKNOWN, EMPTY))
        filled = fill_states(state, self._max_gap_bins(length))
        layers = []
        for p, phase in enumerate(_PHASES):
            for start, n in periodic_runs(filled == p):
                layers.append({"phase": phase, "z_lo_ang": start * width, "z_hi_ang": (start + n) * width,
                               "thickness_ang": n * width})
        res.layers = sorted(layers, key=lambda layer: layer["z_lo_ang"])
        metal = _metal_run(summed, self._max_gap_bins(length))
        res.li_metal = None if metal is None else {"z_lo_ang": metal[0] * width,
                                                   "z_hi_ang": (metal[0] + metal[1]) * width,
                                                   "thickness_ang": metal[1] * width}

    def _order(self, res: Any, summed: np.ndarray, summed_total: np.ndarray, length: float, nf: int) -> None:
        nb = summed.shape[1]
        width = length / nb
        res.product_order_from_li, res.product_peaks_ang, res.product_distance_from_li_ang = [], {}, {}
        res.product_side = None
        metal = _metal_run(summed, self._max_gap_bins(length))
        if metal is None:
            return
        idx = np.arange(nb)
        m_lo, m_hi = metal[0], metal[0] + metal[1]
        in_metal = ((idx - m_lo) % nb) < metal[1]
        d_up = (idx - m_hi) % nb
        d_down = (m_lo - 1 - idx) % nb
        up_half = ~in_metal & (d_up <= d_down)
        down_half = ~in_metal & ~up_half
        prods = [_CI[c] for c in self.product_classes]
        n_prod = summed[prods].sum(axis=0)
        side_up = n_prod[up_half].sum() >= n_prod[down_half].sum()
        half, dist = (up_half, d_up) if side_up else (down_half, d_down)
        res.product_side = f"+{self.axis}" if side_up else f"-{self.axis}"
        found = []
        for c in self.product_classes:
            profile = np.where(half, summed[_CI[c]], 0)
            if profile.sum() < 0.5 * nf:  # fewer than half an atom per frame on this side: absent
                continue
            peak = int(np.argmax(profile))
            found.append((float(dist[peak] * width + 0.5 * width), CLASSES.index(c), c, (peak + 0.5) * width))
        found.sort()
        res.product_order_from_li = [c for _, _, c, _ in found]
        res.product_peaks_ang = {c: z for _, _, c, z in found}
        res.product_distance_from_li_ang = {c: d for d, _, c, _ in found}

def _touches(run: tuple[int, int], other: tuple[int, int], gap: int, nb: int) -> bool:
    """Whether periodic runs ``run`` and ``other`` overlap or are at most ``gap`` bins apart."""
    mask = np.zeros(nb, dtype=bool)
    mask[(other[0] + np.arange(other[1])) % nb] = True
    reach = np.zeros(nb, dtype=bool)
    for shift in range(-(gap + 1), gap + 2):
        reach |= np.roll(mask, shift)
    return bool(reach[(run[0] + np.arange(run[1])) % nb].any())


def _metal_run(counts: np.ndarray, gap: int) -> tuple[int, int] | None:
    """Longest run of bins where Li_metal atoms are the majority (by Li_metal atoms in it), or None."""
    n_metal = counts[_CI["Li_metal"]]
    total = counts.sum(axis=0)
    state = np.where(total > 0, ((n_metal > 0) & (2 * n_metal > total)).astype(int), EMPTY)
    runs = periodic_runs(fill_states(state, gap) == 1)
    if not runs:
        return None
    nb = len(total)

    def atoms_in(run: tuple[int, int]) -> int:
        return int(n_metal[(run[0] + np.arange(run[1])) % nb].sum())

    return max(runs, key=lambda r: (atoms_in(r), r[1]))
