"""Bond-angle distributions A-B-C of a network glass (O-P-O, P-N-P, P-O-P, N-P-O ...).

An angle A-B-C is formed at every centre atom B by each pair of its bonded neighbours, one of element A and
one of element C (for A == C every unordered pair of A neighbours once). Bonds are pairs within
element-pair cut-offs under periodic boundaries (:func:`tfbsim.analysis.neighbours.bonds`); the defaults for
P-O and P-N are the speciation cut-offs (:func:`tfbsim.analysis.speciation.speciation_cutoffs`, 2.0 Å), so
"bonded" means the same thing here as in the Nd/Na/Nt and Qn counts.

Angles are enumerated without a loop over atoms: the directed bonds are grouped by centre into a padded
(centres x max-degree) table and every pair of columns (at most a few dozen) is one vector operation.
Histograms cover 0-180 degrees and are normalised as probability densities (integral 1, per degree).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import AnalysisResults, Progress, TrajectoryAnalysis
from .neighbours import BondList, bonds, pair_label, parse_cutoffs
from .speciation import speciation_cutoffs
from .trajectory import Trajectory, TrajectoryLike

__all__ = ["BondAngles", "BondAngleResults", "DEFAULT_TRIPLETS", "parse_triplets", "frame_bond_angles"]

logger = logging.getLogger(__name__)

#: The network angles of LiPON reported by default (centre in the middle).
DEFAULT_TRIPLETS: tuple[str, ...] = ("O-P-O", "P-N-P", "P-O-P", "N-P-O")


def parse_triplets(triplets: Iterable[str]) -> list[tuple[str, str, str]]:
    """``["O-P-O", "N-P-O"]`` -> ``[("O", "P", "O"), ("N", "P", "O")]`` (validated; duplicates dropped)."""
    out: list[tuple[str, str, str]] = []
    for text in triplets:
        parts = [p.strip() for p in str(text).replace("–", "-").split("-")]
        if len(parts) != 3 or not all(parts):
            raise ConfigError(f"bad bond-angle triplet {text!r}; write END-CENTRE-END, e.g. O-P-O")
        parse_cutoffs({(parts[0], parts[1]): 1.0, (parts[1], parts[2]): 1.0})  # validates the symbols
        key = (parts[0], parts[1], parts[2])
        if key not in out and key[::-1] not in out:
            out.append(key)
    if not out:
        raise ConfigError("no bond-angle triplets given; pass e.g. ['O-P-O', 'P-N-P']")
    return out


def _cutoff_table(triplets: list[tuple[str, str, str]],
                  cutoffs: Mapping | Iterable[str] | None) -> dict[str, float]:
    """Cut-offs for the bonds of ``triplets``: speciation cut-offs, then DEFAULT_BOND_CUTOFFS, then the user's."""
    from .neighbours import DEFAULT_BOND_CUTOFFS_ANG

    spec = speciation_cutoffs()
    table: dict[str, float] = {}
    for a, b, c in triplets:
        for x, y in ((a, b), (b, c)):
            name = pair_label(x, y)
            value = spec.get(name, DEFAULT_BOND_CUTOFFS_ANG.get(name))
            if value is not None:
                table[name] = value
    for (x, y), value in parse_cutoffs(cutoffs).items():
        table[pair_label(x, y)] = value
    missing = sorted({pair_label(x, y) for a, b, c in triplets for x, y in ((a, b), (b, c))} - set(table))
    if missing:
        raise ConfigError(
            f"no bond cut-off for {', '.join(missing)}; give one, e.g. cutoffs={{'{missing[0]}': 2.0}}"
        )
    return table


def frame_bond_angles(bl: BondList, positions: np.ndarray, cell: np.ndarray | None,
                      triplets: Iterable[tuple[str, str, str]]) -> dict[str, np.ndarray]:
    """Angles (degrees) of each triplet in one frame, from its bonds: ``{"O-P-O": array, ...}``."""
    triplets = list(triplets)
    sym = bl.symbols
    src, dst, _, _ = bl.directed()
    forward = bl.vectors_ang(positions, cell)
    vec = np.concatenate([forward, -forward])
    out = {"-".join(t): np.zeros(0) for t in triplets}
    if len(src) == 0:
        return out
    centres = sorted({t[1] for t in triplets})
    use = np.isin(sym[src], centres)
    src, dst, vec = src[use], dst[use], vec[use]
    order = np.argsort(src, kind="stable")
    src, dst, vec = src[order], dst[order], vec[order]
    uniq, start, degree = np.unique(src, return_index=True, return_counts=True)
    if len(uniq) == 0:
        return out
    max_deg = int(degree.max())
    slot = np.arange(len(src)) - np.repeat(start, degree)
    row = np.repeat(np.arange(len(uniq)), degree)
    table = np.full((len(uniq), max_deg), -1, dtype=np.int64)
    table[row, slot] = np.arange(len(src))
    centre_el = sym[uniq]
    unit = vec / np.linalg.norm(vec, axis=1)[:, None]
    pieces: dict[str, list[np.ndarray]] = {k: [] for k in out}
    for p in range(max_deg):
        for q in range(p + 1, max_deg):
            bp, bq = table[:, p], table[:, q]
            ok = (bp >= 0) & (bq >= 0)
            if not ok.any():
                continue
            bp, bq, cel = bp[ok], bq[ok], centre_el[ok]
            ep, eq = sym[dst[bp]], sym[dst[bq]]
            cos = np.clip(np.einsum("ij,ij->i", unit[bp], unit[bq]), -1.0, 1.0)
            ang = np.degrees(np.arccos(cos))
            for a, b, c in triplets:
                hit = (cel == b) & (((ep == a) & (eq == c)) | ((ep == c) & (eq == a)))
                if hit.any():
                    pieces["-".join((a, b, c))].append(ang[hit])
    return {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in pieces.items()}


@dataclass(frozen=True)
class BondAngleResults(AnalysisResults):
    """Bond-angle distributions over frames.

    Attributes
    ----------
    n_frames : int
    triplets : tuple of str
        ``("O-P-O", ...)``: end-centre-end.
    cutoffs_ang : dict[str, float]
        Bond cut-offs used (Å).
    edges_deg, angle_deg : numpy.ndarray
        Histogram edges and bin centres (degrees).
    density : dict[str, numpy.ndarray]
        Probability density per degree of each triplet (integral 1; zeros when no angle was found).
    mean_deg, std_deg, mode_deg : dict[str, float]
        Mean, standard deviation and mode (bin centre of the highest bin) of each distribution (NaN if empty).
    count : dict[str, int]
        Number of angles, summed over frames.
    """

    n_frames: int
    triplets: tuple[str, ...]
    cutoffs_ang: dict[str, float]
    edges_deg: np.ndarray = field(repr=False)
    angle_deg: np.ndarray = field(repr=False)
    density: dict[str, np.ndarray] = field(repr=False)
    mean_deg: dict[str, float]
    std_deg: dict[str, float]
    mode_deg: dict[str, float]
    count: dict[str, int]

    def _record(self) -> dict[str, Any]:
        """Everything above under the attribute names."""
        return {
            "n_frames": self.n_frames, "triplets": list(self.triplets), "cutoffs_ang": dict(self.cutoffs_ang),
            "mean_deg": dict(self.mean_deg), "std_deg": dict(self.std_deg), "mode_deg": dict(self.mode_deg),
            "count": dict(self.count), "angle_deg": self.angle_deg, "density": dict(self.density),
        }


class BondAngles(TrajectoryAnalysis):
    """Normalised bond-angle distributions of element triplets (centre in the middle) over a trajectory.

    Parameters
    ----------
    trajectory
        Anything :class:`~tfbsim.analysis.trajectory.Trajectory` accepts.
    triplets
        ``"END-CENTRE-END"`` strings; default :data:`DEFAULT_TRIPLETS` (O-P-O, P-N-P, P-O-P, N-P-O).
    cutoffs
        Bond cut-offs (Å) overriding the defaults (speciation cut-offs for P-O and P-N, else
        :data:`~tfbsim.analysis.neighbours.DEFAULT_BOND_CUTOFFS_ANG`), e.g. ``{"P-O": 1.9}``.
    bin_width_deg
        Histogram bin width (degrees).
    frames, dt_fs
        As for every analysis.

    Examples
    --------
    >>> BondAngles("glass.extxyz").run().results.mean_deg["O-P-O"]  # doctest: +SKIP
    109.3
    """

    name = "bond angles"

    def __init__(self, trajectory: TrajectoryLike, *, triplets: Iterable[str] = DEFAULT_TRIPLETS,
                 cutoffs: Mapping | Iterable[str] | None = None, bin_width_deg: float = 1.0,
                 frames: str | slice | None = None, dt_fs: float | None = None) -> None:
        super().__init__(trajectory, frames=frames, dt_fs=dt_fs)
        self.triplets = parse_triplets(triplets)
        self.cutoffs_ang = _cutoff_table(self.triplets, cutoffs)
        if not (math.isfinite(bin_width_deg) and 0 < bin_width_deg <= 30):
            raise ConfigError(f"bin_width_deg must be in (0, 30] degrees, got {bin_width_deg!r}")
        n_bins = int(round(180.0 / bin_width_deg))
        self.edges = np.linspace(0.0, 180.0, n_bins + 1)

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> BondAngleResults:
        names = ["-".join(t) for t in self.triplets]
        n_bins = len(self.edges) - 1
        hist = {k: np.zeros(n_bins) for k in names}
        s1 = dict.fromkeys(names, 0.0)
        s2 = dict.fromkeys(names, 0.0)
        pbc = np.asarray(frames.pbc, dtype=bool)
        for positions, cell in self._positions(frames, progress):
            cell_arg = cell if pbc.any() else None
            bl = bonds(positions, self.cutoffs_ang, symbols=frames.symbols, cell=cell_arg, pbc=pbc)
            for k, ang in frame_bond_angles(bl, positions, cell_arg, self.triplets).items():
                hist[k] += np.histogram(ang, bins=self.edges)[0]
                s1[k] += float(ang.sum())
                s2[k] += float((ang**2).sum())
        width = np.diff(self.edges)
        centres = 0.5 * (self.edges[1:] + self.edges[:-1])
        density, mean, std, mode, count = {}, {}, {}, {}, {}
        for k in names:
            n = int(hist[k].sum())
            count[k] = n
            density[k] = hist[k] / (n * width) if n else np.zeros(n_bins)
            mean[k] = s1[k] / n if n else math.nan
            std[k] = math.sqrt(max(s2[k] / n - mean[k] ** 2, 0.0)) if n else math.nan
            mode[k] = float(centres[int(np.argmax(hist[k]))]) if n else math.nan
        return BondAngleResults(
            n_frames=len(ids), triplets=tuple(names), cutoffs_ang=dict(self.cutoffs_ang), edges_deg=self.edges,
            angle_deg=centres, density=density, mean_deg=mean, std_deg=std, mode_deg=mode, count=count,
        )
