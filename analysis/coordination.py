"""Coordination and speciation of LiPON-like structures, frame by frame and region by region.

:class:`Coordination` follows the analysis contract of :mod:`tfbsim.analysis.base`: settings go into
``__init__``, ``run(start, stop, step)`` analyses the frames and returns ``self``, and the numbers live in
``results`` (a :class:`CoordinationResults`, whose ``to_dict()`` is the JSON record; reading ``results``
before ``run()`` raises :class:`~tfbsim.errors.AnalysisError`).

Definitions
-----------
Bonds are pairs within element-pair cutoffs under periodic boundaries (:mod:`tfbsim.analysis.neighbours`).
Default cutoffs (Å): P-O 2.0, P-N 2.0, Li-O 2.6, Li-N 2.6, Li-S 3.0 (the analysis uses these five pairs; the
full table, with P-S 2.4, P-P 2.4, Li-P 3.0, Co-O 2.4, S-S 2.4 for other analyses, is
:data:`~tfbsim.analysis.neighbours.DEFAULT_BOND_CUTOFFS_ANG`). Any pair may be overridden, or set to
``"rdf"`` to use the first minimum of its partial g(r) over the analysed frames (:mod:`tfbsim.analysis.rdf`).

- **N** by the number of P neighbours: ``N0`` (none; Li3N-like), ``Na`` (1, apical), ``Nd`` (2, bridging
  P-N-P), ``Nt`` (3), ``N_over`` (> 3).
- **O** by the number of P neighbours: ``O0`` (none; Li2O-like or on Co), ``Onb`` (1, non-bridging), ``Ob``
  (2, bridging), ``O_over`` (> 2).
- **P**: coordination number by O + N (``mean_cn``; 4 in a tetrahedron), ``undercoordinated`` = fraction with
  CN < 4 (a sign of reduction), ``overcoordinated`` = CN > 4; ``Qn`` = number of bridging anions (Ob, Nd, Nt,
  and the rare O_over/N_over) on the P, n = 0 ... 4 (``Q_over`` above 4).
- **Phosphate clusters**: P atoms joined by bridging anions; fractions of P in ``monomer``, ``dimer``,
  ``trimer`` and ``larger`` clusters. A cluster that bonds to its own periodic image (an infinite chain or
  network) counts as ``larger``; ``infinite`` reports that part separately.
- **Li**: coordination number by O, N and S (``mean_cn``, ``cn_by_element``) and the polyhedron label sorted
  by count (``O4``, ``O3N``, ``O2N2``, ``S4``; ``none`` for a Li without anion neighbours).

Every fraction is over the *selected* atoms of that element in one frame (region and z-window selection pick
the centre atoms; their neighbours may lie anywhere), then averaged over frames (mean and standard deviation
over the frames in which the element is present). An element absent from the selection reports ``count`` 0
and zero fractions. Per-atom labels of one frame: :meth:`Coordination.atom_classes` or
:func:`tfbsim.analysis.speciation.classify_atoms`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import AnalysisError, ConfigError, TrajectoryError
from .base import AnalysisResults, Progress, TrajectoryAnalysis
from .neighbours import DEFAULT_BOND_CUTOFFS_ANG, _split_pair, bonds, pair_label, parse_cutoffs
from .rdf import RDFAccumulator, RDFResult, parse_pairs
from .speciation import (
    CLUSTER_CLASSES,
    LI_LIGANDS,
    N_CLASSES,
    O_CLASSES,
    Q_CLASSES,
    SPECIATION_PAIRS,
    AtomClasses,
    classify_bonds,
)
from .trajectory import Trajectory, TrajectoryLike

__all__ = ["Coordination", "CoordinationResults", "frame_statistics"]

logger = logging.getLogger(__name__)

_P_KEYS = ("P_mean_cn", "P_undercoordinated", "P_overcoordinated")
_LI_KEYS = ("Li_mean_cn", *(f"Li_cn_{el}" for el in LI_LIGANDS))
_CLUSTER_KEYS = (*CLUSTER_CLASSES, "infinite")
_COUNT_KEYS = ("n_N", "n_O", "n_P", "n_Li")
_SCALAR_KEYS = (*N_CLASSES, *O_CLASSES, *Q_CLASSES, *_P_KEYS, *_LI_KEYS, *_CLUSTER_KEYS, *_COUNT_KEYS)
_PER_FRAME_JSON = ("N0", "Na", "Nd", "Nt", "N_over", "O0", "Onb", "Ob", "P_mean_cn", "Li_mean_cn")


def _fractions(values: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    if len(values) == 0:
        return {c: math.nan for c in classes}
    counts = np.bincount(values, minlength=len(classes))[: len(classes)]
    return {c: float(counts[k]) / len(values) for k, c in enumerate(classes)}


def frame_statistics(
    classes: AtomClasses, mask: np.ndarray | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Fractions and mean coordination numbers of the selected atoms of one frame.

    Parameters
    ----------
    classes
        Speciation of the frame (:func:`tfbsim.analysis.speciation.classify_atoms`).
    mask
        Centre atoms to count (bool, shape (n_atoms,)); all atoms when None.

    Returns
    -------
    scalars : dict[str, float]
        N/O/Q class fractions, P and Li coordination numbers, cluster fractions and the numbers of selected
        N, O, P and Li atoms (``n_N`` ...). A fraction is NaN when the element is absent from the selection.
    polyhedra : dict[str, float]
        Fraction of the selected Li in each polyhedron (``{"O4": 0.5, ...}``).
    """
    sym = classes.symbols
    sel = np.ones(len(sym), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    n_sel, o_sel, p_sel, li_sel = (sel & (sym == el) for el in ("N", "O", "P", "Li"))
    out: dict[str, float] = {}
    out.update(_fractions(np.minimum(classes.n_p[n_sel], 4), N_CLASSES))
    out.update(_fractions(np.minimum(classes.n_p[o_sel], 3), O_CLASSES))
    out.update(_fractions(np.minimum(classes.qn[p_sel], 5), Q_CLASSES))
    cn = classes.p_cn[p_sel]
    has_p = len(cn) > 0
    out["P_mean_cn"] = float(cn.mean()) if has_p else math.nan
    out["P_undercoordinated"] = float((cn < 4).mean()) if has_p else math.nan
    out["P_overcoordinated"] = float((cn > 4).mean()) if has_p else math.nan
    size = np.where(classes.cluster_infinite, 4, np.minimum(classes.cluster_size, 4))[p_sel]
    out.update(_fractions(size - 1, CLUSTER_CLASSES) if has_p else {c: math.nan for c in CLUSTER_CLASSES})
    out["infinite"] = float(classes.cluster_infinite[p_sel].mean()) if has_p else math.nan
    has_li = bool(li_sel.any())
    out["Li_mean_cn"] = float(classes.li_cn[li_sel].mean()) if has_li else math.nan
    for el in LI_LIGANDS:
        out[f"Li_cn_{el}"] = float(classes.neighbours[el][li_sel].mean()) if has_li else math.nan
    for key, m in zip(_COUNT_KEYS, (n_sel, o_sel, p_sel, li_sel)):
        out[key] = float(m.sum())
    polyhedra: dict[str, float] = {}
    if has_li:
        labels, counts = np.unique(classes.label[li_sel], return_counts=True)
        polyhedra = {str(lab): float(c) / float(li_sel.sum()) for lab, c in zip(labels, counts)}
    return out, polyhedra


@dataclass(frozen=True)
class CoordinationResults(AnalysisResults):
    """Results of :class:`Coordination` (``to_dict()``: the ``tfbsim analyze coordination --json`` schema).

    Attributes
    ----------
    n_frames : int
    frames : numpy.ndarray of int
        Indices of the analysed frames in the trajectory's selection.
    times_ps : numpy.ndarray or None
        Time of each analysed frame (ps).
    cutoffs_ang : dict[str, float]
        Bond cutoffs as used (``{"P-O": 2.0, ...}``, Å).
    cutoff_source : dict[str, str]
        ``"default"``, ``"user"`` or ``"rdf"`` per pair.
    timeseries : dict[str, numpy.ndarray]
        ``(n_frames,)`` per key: the N/O/Q class fractions, ``P_mean_cn``, ``P_undercoordinated``,
        ``P_overcoordinated``, ``Li_mean_cn``, ``Li_cn_O/N/S``, the cluster fractions ``monomer ... larger``,
        ``infinite``, and the selected atom counts ``n_N, n_O, n_P, n_Li``; NaN where the element is absent.
    mean, std : dict[str, float]
        Over the frames (0 when the element is never present).
    li_polyhedra, li_polyhedra_std : dict[str, float]
        Fraction of the selected Li in each polyhedron (``{"O4": 0.5, ...}``), mean and std over frames.
    rdf : RDFResult or None
        Partial RDFs (``rdf_pairs`` or RDF cutoffs).
    region : str or None
    z_window_ang : tuple of float or None
    n_atoms : int
        Atoms in the trajectory.
    """

    n_frames: int
    frames: np.ndarray = field(repr=False)
    times_ps: np.ndarray | None = field(repr=False)
    cutoffs_ang: dict[str, float]
    cutoff_source: dict[str, str]
    timeseries: dict[str, np.ndarray] = field(repr=False)
    mean: dict[str, float] = field(repr=False)
    std: dict[str, float] = field(repr=False)
    li_polyhedra: dict[str, float] = field(repr=False)
    li_polyhedra_std: dict[str, float] = field(repr=False)
    rdf: RDFResult | None = field(repr=False, default=None)
    region: str | None = None
    z_window_ang: tuple[float, float] | None = None
    n_atoms: int = 0

    def _record(self) -> dict[str, Any]:
        """Fractions are over the selected atoms of that element, averaged over frames; each block has ``count``
        (selected atoms of that element, mean over frames) and ``std`` (standard deviations over frames)."""
        mean, std = self.mean, self.std

        def block(keys: Sequence[str], count_key: str | None, rename: Mapping[str, str] | None = None) -> dict:
            rename = rename or {}
            out: dict[str, Any] = {rename.get(k, k): mean[k] for k in keys}
            if count_key is not None:
                c = self.timeseries[count_key]
                out["count"] = int(c[0]) if np.all(c == c[0]) else float(c.mean())
            out["std"] = {rename.get(k, k): std[k] for k in keys}
            return out

        p_rename = {"P_mean_cn": "mean_cn", "P_undercoordinated": "undercoordinated",
                    "P_overcoordinated": "overcoordinated"}
        li = block(("Li_mean_cn",), "n_Li", {"Li_mean_cn": "mean_cn"})
        li["cn_by_element"] = {el: mean[f"Li_cn_{el}"] for el in LI_LIGANDS}
        li["polyhedra"] = dict(self.li_polyhedra)
        li["std"]["cn_by_element"] = {el: std[f"Li_cn_{el}"] for el in LI_LIGANDS}
        li["std"]["polyhedra"] = dict(self.li_polyhedra_std)
        clusters = block(_CLUSTER_KEYS, None)
        clusters["count"] = block((), "n_P")["count"]
        per_frame: dict[str, Any] = {
            "frame": self.frames,
            "time_ps": self.times_ps if self.times_ps is not None else [None] * self.n_frames,
        }
        per_frame.update({k: self.timeseries[k] for k in _PER_FRAME_JSON})
        for part in (li, clusters):  # keep the std block last, as in the other blocks
            part["std"] = part.pop("std")
        out: dict[str, Any] = {
            "n_frames": self.n_frames,
            "cutoffs_ang": dict(self.cutoffs_ang),
            "cutoff_source": dict(self.cutoff_source),
            "selection": {"region": self.region, "z_window_ang": self.z_window_ang, "n_atoms": self.n_atoms},
            "N": block(N_CLASSES, "n_N"),
            "O": block(O_CLASSES, "n_O"),
            "P": block((*Q_CLASSES, *_P_KEYS), "n_P", p_rename),
            "Li": li,
            "phosphate_clusters": clusters,
            "per_frame": per_frame,
        }
        if self.rdf is not None:
            out["rdf"] = self.rdf._record()
        return out


class Coordination(TrajectoryAnalysis):
    """N/O/P speciation, phosphate clusters, Li polyhedra (and optional partial RDFs) over a trajectory.

    Parameters
    ----------
    trajectory
        Anything :class:`~tfbsim.analysis.trajectory.Trajectory` accepts: Atoms, list of Atoms, an ASE-readable
        file, a tfbsim H5MD file, an MDAnalysis Universe, or a Trajectory.
    cutoffs
        Bond cutoffs (Å) overriding the defaults for the pairs P-O, P-N, Li-O, Li-N, Li-S: a mapping
        (``{"P-N": 2.1}``), CLI strings (``["P-N=2.1"]``), ``"rdf"`` (every pair from the first minimum of its
        partial RDF), or per pair ``{"P-O": "rdf"}``. None or ``"default"``: the defaults.
    region
        Only atoms with this ``atoms.arrays["region"]`` label are counted as centres.
    z_window_ang
        ``(z_min, z_max)`` (Å): only atoms with ``z_min <= z < z_max`` (Cartesian z after wrapping into the
        cell) are counted, frame by frame.
    frames
        Frame selection (``"START:STOP:STEP"`` or slice) applied when reading; ``run()`` selects within it.
    dt_fs
        Time between stored frames (fs) when the source has no times.
    pbc
        Override the periodic boundary conditions of the source; ``False`` analyses an isolated cluster.
        By default the source's pbc are used and a source without a periodic cell is rejected.
    rdf_pairs
        Pairs whose partial g(r) and running coordination number are computed as well (``["P-O", "Li-N"]``).
    rdf_r_max_ang, rdf_bin_width_ang
        RDF range and bin width (Å).

    Attributes
    ----------
    results : CoordinationResults
        Available after :meth:`run`.

    Examples
    --------
    >>> c = Coordination("traj.h5md", region="LiPON").run(step=10)      # doctest: +SKIP
    >>> c.results.mean["Nd"], c.results.std["Nd"]                       # doctest: +SKIP
    >>> write_json("coordination.json", c.results.to_dict())            # doctest: +SKIP
    """

    name = "coordination"

    def __init__(
        self,
        trajectory: TrajectoryLike,
        *,
        cutoffs: Mapping | Iterable[str] | str | None = None,
        region: str | None = None,
        z_window_ang: tuple[float, float] | None = None,
        frames: str | slice | None = None,
        dt_fs: float | None = None,
        pbc: bool | Sequence[bool] | None = None,
        rdf_pairs: Iterable[str] | None = None,
        rdf_r_max_ang: float = 5.0,
        rdf_bin_width_ang: float = 0.02,
    ) -> None:
        self._user_cutoffs, self._rdf_cutoffs = _parse_cutoff_setting(cutoffs)
        super().__init__(trajectory, frames=frames, dt_fs=dt_fs)
        traj = self._traj
        self.region = region
        self._region_mask = np.ones(traj.n_atoms, dtype=bool)
        if region is not None:
            self._region_mask[:] = False
            self._region_mask[traj.select(region=region)] = True
        if z_window_ang is not None:
            z_window_ang = tuple(float(z) for z in z_window_ang)  # type: ignore[assignment]
            ok = len(z_window_ang) == 2 and all(map(math.isfinite, z_window_ang))
            if not ok or z_window_ang[0] >= z_window_ang[1]:
                raise ConfigError(
                    f"z_window_ang must be (z_min, z_max) in Å with z_min < z_max, got {z_window_ang!r}"
                )
        self.z_window_ang = z_window_ang
        if pbc is None:
            self.pbc = np.asarray(traj.pbc, dtype=bool)
            if not self.pbc.any():
                raise TrajectoryError(
                    "the structure has no periodic cell (pbc all False), so periodic bonds cannot be found; add "
                    "the cell (extxyz Lattice=..., pbc) or pass pbc=False (--no-pbc) for an isolated cluster"
                )
        else:
            self.pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
        self._rdf_pairs = parse_pairs(rdf_pairs) if rdf_pairs else []
        self._rdf_r_max = float(rdf_r_max_ang)
        self._rdf_bin = float(rdf_bin_width_ang)
        if self._rdf_cutoffs or self._rdf_pairs:
            # validates r_max and the bin width
            RDFAccumulator(traj.symbols, ["P-O"], r_max_ang=self._rdf_r_max, bin_width_ang=self._rdf_bin)
            if not self.pbc.all():
                raise ConfigError(
                    "RDFs need a fully periodic cell; give numeric cutoffs and no rdf_pairs for slabs"
                )
        positions, cell = next(self._traj.iter_positions())  # fail early on a periodic frame without a cell
        bonds(positions, {"P-O": 1.0}, symbols=traj.symbols, cell=cell if self.pbc.any() else None, pbc=self.pbc)
        self._resolved: dict[str, float] | None = None if self._rdf_cutoffs else self._table({})

    @property
    def cutoffs_ang(self) -> dict[str, float]:
        """Bond cutoffs (Å) in use; with ``"rdf"`` cutoffs only known after :meth:`run`."""
        if self._resolved is None:
            raise AnalysisError("cutoffs from the RDF are chosen in run(); call run() first")
        return dict(self._resolved)

    def _table(self, from_rdf: Mapping[str, float]) -> dict[str, float]:
        table = {name: DEFAULT_BOND_CUTOFFS_ANG[name] for name in SPECIATION_PAIRS}
        table.update(from_rdf)
        table.update(self._user_cutoffs)
        return table

    # ------------------------------------------------------------------------------------------ running
    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> CoordinationResults:
        """Analyse the selected frames (a first pass computes the RDFs when asked)."""
        rdf_result, sources = self._rdf_pass(frames, progress)
        table = self._resolved
        assert table is not None
        series: dict[str, list[float]] = {k: [] for k in _SCALAR_KEYS}
        poly_sum: dict[str, float] = {}
        poly_sq: dict[str, float] = {}
        n_li_frames = 0
        for positions, cell in self._positions(frames, progress):
            classes = self._classify(positions, cell, table)
            scalars, polyhedra = frame_statistics(classes, self._mask(positions, cell))
            for key in _SCALAR_KEYS:
                series[key].append(scalars[key])
            if polyhedra:
                n_li_frames += 1
                for label, frac in polyhedra.items():
                    poly_sum[label] = poly_sum.get(label, 0.0) + frac
                    poly_sq[label] = poly_sq.get(label, 0.0) + frac * frac
        timeseries = {k: np.asarray(v, dtype=float) for k, v in series.items()}
        mean, std = {}, {}
        for key, values in timeseries.items():
            finite = values[np.isfinite(values)]
            mean[key] = float(finite.mean()) if len(finite) else 0.0
            std[key] = float(finite.std()) if len(finite) else 0.0
        poly_mean, poly_std = {}, {}
        for label in sorted(poly_sum, key=lambda lab: -poly_sum[lab]):
            m = float(poly_sum[label] / n_li_frames)
            poly_mean[label] = m
            poly_std[label] = math.sqrt(max(poly_sq[label] / n_li_frames - m * m, 0.0))
        return CoordinationResults(
            n_frames=len(ids), frames=ids,
            times_ps=None if frames.times_ps is None else np.asarray(frames.times_ps, dtype=float),
            cutoffs_ang=dict(table), cutoff_source=sources, timeseries=timeseries, mean=mean, std=std,
            li_polyhedra=poly_mean, li_polyhedra_std=poly_std, rdf=rdf_result, region=self.region,
            z_window_ang=self.z_window_ang, n_atoms=self._traj.n_atoms,
        )

    def _classify(self, positions: np.ndarray, cell: np.ndarray, table: Mapping[str, float]) -> AtomClasses:
        cell = cell if self.pbc.any() else None
        bl = bonds(positions, table, symbols=self._traj.symbols, cell=cell, pbc=self.pbc)
        return classify_bonds(bl)

    def _mask(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        if self.z_window_ang is None:
            return self._region_mask
        z = positions[:, 2]
        if self.pbc.any():
            from ase.geometry import wrap_positions

            z = wrap_positions(positions, cell, pbc=self.pbc)[:, 2]
        lo, hi = self.z_window_ang
        return self._region_mask & (z >= lo) & (z < hi)

    def _rdf_pass(self, frames: Trajectory, progress: Progress) -> tuple[RDFResult | None, dict[str, str]]:
        sources = {name: ("user" if name in self._user_cutoffs else "default") for name in SPECIATION_PAIRS}
        present = set(self._traj.symbols.tolist())
        want_rdf = [name for name in self._rdf_cutoffs if set(_split_pair(name)) <= present]
        pairs = list(dict.fromkeys([*want_rdf, *(f"{a}-{b}" for a, b in self._rdf_pairs)]))
        if not pairs:
            self._resolved = self._table({})
            return None, sources
        acc = RDFAccumulator(self._traj.symbols, pairs, r_max_ang=self._rdf_r_max, bin_width_ang=self._rdf_bin)
        for positions, cell in self._positions(frames, progress, "g(r)"):
            acc.add(positions, cell, self.pbc)
        rdf = acc.result()
        chosen: dict[str, float] = {}
        for name in want_rdf:
            r_min = rdf.first_minimum(name)
            if r_min is None:
                logger.warning("%s: g(r) has no first minimum below %.2f Å; keeping the default cutoff %.2f Å",
                               name, self._rdf_r_max, DEFAULT_BOND_CUTOFFS_ANG[name])
                continue
            chosen[name] = r_min
            sources[name] = "rdf"
        self._resolved = self._table(chosen)
        return rdf, sources

    # -------------------------------------------------------------------------------------- per atom
    def atom_classes(self, atoms: Atoms) -> AtomClasses:
        """Per-atom speciation of one frame with this analysis' cutoffs (see :class:`AtomClasses`)."""
        return self._classify(atoms.positions, atoms.cell.array, self.cutoffs_ang)


def _parse_cutoff_setting(cutoffs: Mapping | Iterable[str] | str | None) -> tuple[dict[str, float], list[str]]:
    """Split the ``cutoffs`` setting into numeric overrides and pairs to take from the RDF."""
    if cutoffs is None or (isinstance(cutoffs, str) and cutoffs == "default"):
        return {}, []
    if isinstance(cutoffs, str):
        if cutoffs != "rdf":
            raise ConfigError(
                f"cutoffs must be 'default', 'rdf', a mapping or PAIR=ANGSTROM strings, got {cutoffs!r}"
            )
        return {}, list(SPECIATION_PAIRS)
    if isinstance(cutoffs, Mapping):
        items = list(cutoffs.items())
    else:  # CLI strings PAIR=VALUE
        items = []
        for text in cutoffs:
            name, sep, value = str(text).partition("=")
            items.append((name, value if sep else None))
    numeric: dict[str, float] = {}
    rdf: list[str] = []
    for key, value in items:
        a, b = key if isinstance(key, tuple) else _split_pair(str(key).strip())
        parse_cutoffs({(a, b): 1.0})  # unknown element symbols fail here, with their own message
        name = pair_label(a, b)
        if name not in SPECIATION_PAIRS:
            raise ConfigError(
                f"unknown cutoff pair {a}-{b} for the coordination analysis; it uses {', '.join(SPECIATION_PAIRS)}"
            )
        if value is None:
            raise ConfigError(f"bad cutoff {key!r}; write PAIR=ANGSTROM, e.g. P-N=2.1, or PAIR=rdf")
        if isinstance(value, str) and value.strip().lower() == "rdf":
            rdf.append(name)
            continue
        ((_, cut),) = parse_cutoffs({(a, b): value.strip() if isinstance(value, str) else value}).items()
        if name in numeric and numeric[name] != cut:
            raise ConfigError(f"cutoff for {name} given twice ({numeric[name]} and {cut} Å); give it once")
        numeric[name] = cut
    return numeric, [name for name in rdf if name not in numeric]
