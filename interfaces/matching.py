"""Lateral cells of interfaces: near-square supercells, ZSL lattice matching, in-plane strain.

Glass on crystal
    :func:`lateral_supercell` picks the integer supercell of a substrate's in-plane cell whose two widths
    (distances between opposite edges, the minimum-image limit) reach ``lateral_min_ang`` with the smallest
    area, preferring, within ``area_slack`` of that area, cells that are near-square and rectangular. The glass
    is then built on exactly that cell: no strain on the glass.
Crystal on crystal
    :func:`match_lattices` runs pymatgen's Zur–McGill generator
    (:class:`pymatgen.analysis.interfaces.zsl.ZSLGenerator`; Zur & McGill, J. Appl. Phys. 55, 378 (1984)) on
    the two in-plane cells, keeps matches of equal handedness whose principal in-plane strain is at most
    ``max_strain_pct``, repeats each to ``lateral_min_ang`` and chooses the lowest-strain match among those
    whose final cell is within ``area_slack`` of the smallest final area (so a slightly lower strain never
    costs a much larger cell). The *film* (the phase passed first) carries all the strain; the substrate keeps
    its lattice.

Strain convention
-----------------
The film's supercell vectors fᵢ are mapped onto the common cell vectors sᵢ by the in-plane deformation
gradient D (D fᵢ = sᵢ). With the polar decomposition D = V R (R a rotation), the reported strain is the
Biot strain in the frame of the final cell, ε = V − I: ``exx``, ``eyy`` and the tensor shear ``exy`` (not
the engineering shear 2·exy), in %. For a square film of side f on a square substrate of side s,
exx = eyy = (s/f − 1)·100 and exy = 0. The principal strain (largest |eigenvalue| of ε) is what
``max_strain_pct`` limits. The film is not strained along the normal (no Poisson correction; a relaxation
along z takes that up).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..errors import StructureError

__all__ = [
    "LateralCell",
    "LatticeMatch",
    "lateral_supercell",
    "lateral_widths_ang",
    "strain_pct",
    "match_lattices",
    "find_supercell_matrix",
]

logger = logging.getLogger(__name__)

_ORTHO_TOL = 1e-6


def _as_2d(cell) -> np.ndarray:
    """In-plane cell as a 2×2 array of row vectors (x, y); accepts 2×2 or 2×3 with z ≈ 0 (Å)."""
    arr = np.asarray(cell, dtype=float)
    if arr.shape == (3, 3):
        arr = arr[:2]
    if arr.shape == (2, 3):
        if np.any(np.abs(arr[:, 2]) > 1e-6):
            raise StructureError("in-plane cell vectors must lie in the xy plane (z components 0)")
        arr = arr[:, :2]
    if arr.shape != (2, 2) or not np.all(np.isfinite(arr)):
        raise StructureError(f"an in-plane cell needs two 2-D vectors, got shape {np.shape(cell)}")
    if abs(np.linalg.det(arr)) < 1e-8:
        raise StructureError("in-plane cell vectors are parallel or zero")
    return arr


def _as_3d(cell2: np.ndarray) -> np.ndarray:
    return np.hstack([cell2, np.zeros((2, 1))])


def lateral_widths_ang(cell) -> tuple[float, float]:
    """Perpendicular widths of an in-plane cell (Å): the distance across b and across a."""
    c = _as_2d(cell)
    area = abs(float(np.linalg.det(c)))
    return area / float(np.linalg.norm(c[1])), area / float(np.linalg.norm(c[0]))


@dataclass(frozen=True)
class LateralCell:
    """An in-plane supercell of a base cell.

    Attributes
    ----------
    matrix
        Integer 2×2 matrix M (rows: new vectors in units of the base vectors), det M > 0.
    cell_ang
        New in-plane vectors as a 2×3 array (Å), in the frame of the base cell.
    widths_ang
        Perpendicular widths across b and across a (Å).
    area_ang2
        Area (Å²).
    orthogonal
        Whether the two vectors are perpendicular.
    gamma_deg
        Angle between the vectors (degrees).
    """

    matrix: np.ndarray
    cell_ang: np.ndarray
    widths_ang: tuple[float, float]
    area_ang2: float
    orthogonal: bool
    gamma_deg: float

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "matrix": self.matrix.astype(int).tolist(),
            "cell_ang": self.cell_ang.tolist(),
            "widths_ang": list(self.widths_ang),
            "area_ang2": self.area_ang2,
            "orthogonal": self.orthogonal,
            "gamma_deg": self.gamma_deg,
        }


def _lateral(base: np.ndarray, m: np.ndarray) -> LateralCell:
    vecs = m @ base
    u, v = vecs
    area = float(abs(np.linalg.det(vecs)))
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return LateralCell(
        matrix=np.asarray(m, dtype=int),
        cell_ang=_as_3d(vecs),
        widths_ang=(area / float(np.linalg.norm(v)), area / float(np.linalg.norm(u))),
        area_ang2=area,
        orthogonal=abs(cos) < _ORTHO_TOL,
        gamma_deg=float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))),
    )


def _candidates(base: np.ndarray, lateral_min_ang: float, max_index: int | None = None):
    """All integer supercells (|entries| ≤ n, det > 0) with both widths ≥ ``lateral_min_ang``."""
    wa, wb = lateral_widths_ang(base)
    n = max_index or int(min(max(math.ceil(1.6 * lateral_min_ang / min(wa, wb)) + 1, 2), 14))
    rng = np.arange(-n, n + 1)
    m11, m12, m21, m22 = (g.ravel() for g in np.meshgrid(rng, rng, rng, rng, indexing="ij"))
    det = m11 * m22 - m12 * m21
    keep = det > 0
    m11, m12, m21, m22, det = m11[keep], m12[keep], m21[keep], m22[keep], det[keep]
    u = m11[:, None] * base[0] + m12[:, None] * base[1]
    v = m21[:, None] * base[0] + m22[:, None] * base[1]
    area = det * abs(float(np.linalg.det(base)))
    nu, nv = np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1)
    w_v, w_u = area / nv, area / nu  # width across v (along u's normal) and across u
    ok = (w_v >= lateral_min_ang - 1e-9) & (w_u >= lateral_min_ang - 1e-9)
    return (np.stack([m11, m12, m21, m22], axis=1)[ok].reshape(-1, 2, 2), area[ok], nu[ok], nv[ok],
            np.abs(np.einsum("ij,ij->i", u[ok], v[ok])) / (nu[ok] * nv[ok]), w_u[ok], w_v[ok])


def lateral_supercell(
    base_cell,
    lateral_min_ang: float,
    *,
    area_slack: float = 0.15,
    max_index: int | None = None,
) -> LateralCell:
    """Smallest near-square supercell of ``base_cell`` whose two widths are at least ``lateral_min_ang``.

    Parameters
    ----------
    base_cell
        In-plane cell (2×3 or 2×2, Å), e.g. ``slab.cell[:2]``.
    lateral_min_ang
        Minimum width (Å) in both directions (twice the largest interaction range you need without
        self-interaction across the lateral boundary).
    area_slack
        Cells up to ``(1 + area_slack)`` × the smallest valid area compete on shape: first near-square
        (width ratio ≤ 1.3), then rectangular, then the smaller width ratio, then the smaller area.
    max_index
        Largest |entry| of the integer matrix searched (default from the size ratio, at most 14).

    Returns
    -------
    LateralCell

    Raises
    ------
    StructureError
        ``lateral_min_ang`` not positive, or no supercell within the search range (use a smaller lateral size).
    """
    base = _as_2d(base_cell)
    if not (isinstance(lateral_min_ang, (int, float)) and math.isfinite(lateral_min_ang) and lateral_min_ang > 0):
        raise StructureError(f"lateral_min_ang must be a positive length in Å, got {lateral_min_ang!r}")
    if np.linalg.det(base) < 0:
        raise StructureError("the base in-plane cell must be right-handed (a × b along +z)")
    mats, area, nu, nv, cos, w_u, w_v = _candidates(base, float(lateral_min_ang), max_index)
    if len(mats) == 0:
        raise StructureError(
            f"no supercell with widths ≥ {lateral_min_ang} Å found in the search range; use a smaller "
            "--lateral-min-ang"
        )
    small = area <= area.min() * (1.0 + area_slack) + 1e-9
    ratio = np.maximum(w_u, w_v) / np.minimum(w_u, w_v)
    ortho = cos < _ORTHO_TOL
    # last key first: small area, near-square, rectangular, width ratio, area; then a canonical basis
    key = np.lexsort((
        (mats < 0).sum(axis=(1, 2)),  # positive entries
        mats[:, 0, 1] != 0,  # first vector along the base's first vector when possible
        np.abs(mats).sum(axis=(1, 2)),  # simplest integers
        nu > nv + 1e-9,  # shorter vector first
        np.round(area, 6),
        np.round(ratio, 3),
        ~ortho,
        cos > 0.5 + 1e-9,  # angle outside 60-120 degrees
        np.round(ratio, 6) > 1.3,
        ~small,
    ))
    best = mats[key[0]]
    return _lateral(base, best)


# ------------------------------------------------------------------------------------------------ strain
def strain_pct(film_cell, target_cell) -> tuple[tuple[float, float, float], float]:
    """In-plane strain (%) that maps ``film_cell`` onto ``target_cell`` (rows correspond).

    Returns
    -------
    (exx, eyy, exy), principal
        Biot strain ε = V − I of D = V R in the frame of ``target_cell`` (tensor shear ``exy``), and the
        largest |principal strain|, all in %.
    """
    f = _as_2d(film_cell)
    s = _as_2d(target_cell)
    d = np.linalg.solve(f, s).T  # D f_i = s_i  <=>  F D^T = S
    w, q = np.linalg.eigh(d @ d.T)
    v = q @ np.diag(np.sqrt(np.clip(w, 0.0, None))) @ q.T
    eps = v - np.eye(2)
    eps[np.abs(eps) < 1e-12] = 0.0  # rounding noise of a pure rotation
    principal = float(np.max(np.abs(np.linalg.eigvalsh(eps))))
    return (100.0 * float(eps[0, 0]), 100.0 * float(eps[1, 1]), 100.0 * float(eps[0, 1])), 100.0 * principal


# ----------------------------------------------------------------------------------------- ZSL matching
@dataclass(frozen=True)
class LatticeMatch:
    """A coincidence cell of a film on a substrate (after repetition to the lateral size).

    Attributes
    ----------
    film_matrix, substrate_matrix
        Integer 2×2 matrices: the final supercell in units of each phase's base in-plane vectors.
    cell_ang
        Final common in-plane cell (2×3, Å) in the substrate's frame (the substrate's own lattice).
    film_cell_ang
        The film's unstrained supercell (2×3, Å) in the film's frame.
    strain_pct
        (exx, eyy, exy) of the film in the substrate frame (%), see the module docstring.
    max_strain_pct
        Largest |principal strain| (%).
    area_ang2
        Area of the final cell (Å²).
    match_area_ang2
        Area of the coincidence cell before repetition (Å²).
    repeat_matrix
        Integer 2×2 repetition of the coincidence cell.
    n_matches
        Distinct coincidence lattices within the strain limit (the choice was made among them).
    max_area_ang2
        Largest coincidence area searched (Å²).
    """

    film_matrix: np.ndarray
    substrate_matrix: np.ndarray
    cell_ang: np.ndarray
    film_cell_ang: np.ndarray
    strain_pct: tuple[float, float, float]
    max_strain_pct: float
    area_ang2: float
    match_area_ang2: float
    repeat_matrix: np.ndarray
    n_matches: int
    max_area_ang2: float

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "film_matrix": self.film_matrix.astype(int).tolist(),
            "substrate_matrix": self.substrate_matrix.astype(int).tolist(),
            "repeat_matrix": self.repeat_matrix.astype(int).tolist(),
            "cell_ang": self.cell_ang.tolist(),
            "strain_pct": list(self.strain_pct),
            "max_strain_pct": self.max_strain_pct,
            "area_ang2": self.area_ang2,
            "match_area_ang2": self.match_area_ang2,
            "n_matches": self.n_matches,
            "max_area_ang2": self.max_area_ang2,
        }


def _integer_matrix(vectors: np.ndarray, base: np.ndarray) -> np.ndarray | None:
    m = vectors @ np.linalg.inv(base)
    mi = np.rint(m)
    if np.max(np.abs(m - mi)) > 1e-4:
        return None
    return mi.astype(int)


def _reduced(vectors: np.ndarray) -> np.ndarray:
    """Zur–McGill reduction of each 2-vector set (pymatgen's ``reduce_vectors``), as an (n, 2, 2) array."""
    from pymatgen.analysis.interfaces.zsl import reduce_vectors

    out = np.empty((len(vectors), 2, 2))
    for k, (a, b) in enumerate(vectors):
        ra, rb = reduce_vectors(np.append(a, 0.0), np.append(b, 0.0))
        out[k] = [ra[:2], rb[:2]]
    return out


def _same_vectors(films: np.ndarray, subs: np.ndarray, length_tol: float, angle_tol: float) -> np.ndarray:
    """Vectorised ``pymatgen...zsl.is_same_vectors(bidirectional=True)`` for all film × substrate pairs."""

    def lengths_angle(v: np.ndarray):
        la = np.linalg.norm(v[:, 0], axis=1)
        lb = np.linalg.norm(v[:, 1], axis=1)
        cross = np.abs(v[:, 0, 0] * v[:, 1, 1] - v[:, 0, 1] * v[:, 1, 0])
        ang = np.arctan2(cross, np.einsum("ij,ij->i", v[:, 0], v[:, 1]))
        return la, lb, ang

    fa, fb, fang = (x[:, None] for x in lengths_angle(films))
    sa, sb, sang = (x[None, :] for x in lengths_angle(subs))

    def one_way(a1, b1, g1, a2, b2, g2):
        return (np.abs(a2 / a1 - 1) <= length_tol) & (np.abs(b2 / b1 - 1) <= length_tol) & (
            np.abs(g2 / g1 - 1) <= angle_tol
        )

    return one_way(fa, fb, fang, sa, sb, sang) | one_way(sa, sb, sang, fa, fb, fang)


def _zsl_candidates(film: np.ndarray, substrate: np.ndarray, max_strain: float, max_area: float) -> list[dict]:
    """Distinct proper coincidence lattices within the strain limit, one (lowest-strain) per substrate cell.

    The transformation sets come from :meth:`ZSLGenerator.generate_sl_transformation_sets` and the
    reduction from pymatgen's ``reduce_vectors``; the pairwise comparison of
    :meth:`ZSLGenerator.get_equiv_transformations` is done here in NumPy (pymatgen's loop is pure Python
    without numba and takes tens of seconds for cells of a few hundred Å²). ``tests/interfaces`` checks that
    both find the same matches.
    """
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator

    tol = max_strain / 100.0
    gen = ZSLGenerator(
        max_area_ratio_tol=(1.0 + tol) ** 2 - 1.0 + 1e-3,
        max_area=max_area,
        max_length_tol=tol,
        max_angle_tol=tol,
        bidirectional=True,
    )
    film_area, sub_area = abs(float(np.linalg.det(film))), abs(float(np.linalg.det(substrate)))
    cache: dict[tuple[int, int], np.ndarray] = {}

    def reduced(which: int, transformations, base: np.ndarray) -> np.ndarray:
        key = (which, round(float(np.linalg.det(np.asarray(transformations[0], dtype=float)))))
        if key not in cache:
            cache[key] = _reduced(np.asarray(transformations, dtype=float) @ base)
        return cache[key]

    pairs_f, pairs_s = [], []
    for film_t, sub_t in gen.generate_sl_transformation_sets(film_area, sub_area):
        films = reduced(0, film_t, film)
        subs = reduced(1, sub_t, substrate)
        i, j = np.nonzero(_same_vectors(films, subs, tol, tol))
        pairs_f.append(films[i])
        pairs_s.append(subs[j])
    if not pairs_f:
        return []
    fs, ss = np.concatenate(pairs_f), np.concatenate(pairs_s)
    det_f, det_s = np.linalg.det(fs), np.linalg.det(ss)
    proper = det_f * det_s > 0  # opposite handedness would mirror the film
    flip = proper & (det_f < 0)
    fs[flip], ss[flip] = fs[flip][:, ::-1], ss[flip][:, ::-1]
    d = np.transpose(np.linalg.solve(fs, ss), (0, 2, 1))
    stretch = np.sqrt(np.clip(np.linalg.eigvalsh(d @ np.transpose(d, (0, 2, 1))), 0.0, None))
    principal = 100.0 * np.max(np.abs(stretch - 1.0), axis=1)
    ok = proper & (principal <= max_strain + 1e-9)
    found: dict[tuple, dict] = {}
    for k in np.flatnonzero(ok)[np.argsort(principal[ok], kind="stable")]:
        vec = ss[k]
        nu, nv = np.linalg.norm(vec, axis=1)
        key = (round(abs(float(det_s[k])), 4), *sorted((round(float(nu), 4), round(float(nv), 4))),
               round(abs(float(np.dot(vec[0], vec[1]))), 3))
        if key in found:
            continue  # sorted by strain: the first one seen is the lowest-strain version of this cell
        mf, ms = _integer_matrix(fs[k], film), _integer_matrix(vec, substrate)
        if mf is None or ms is None:  # pragma: no cover - ZSL vectors are lattice vectors
            continue
        found[key] = {"mf": mf, "ms": ms, "principal": float(principal[k]), "area": abs(float(det_s[k]))}
    return list(found.values())


def match_lattices(
    film_cell,
    substrate_cell,
    *,
    max_strain_pct: float = 5.0,
    lateral_min_ang: float = 10.0,
    max_area_ang2: float | None = None,
    area_slack: float = 0.1,
    film_name: str = "film",
    substrate_name: str = "substrate",
) -> LatticeMatch:
    """Coincidence cell of a film on a substrate (ZSL), repeated to ``lateral_min_ang``; the film is strained.

    Parameters
    ----------
    film_cell, substrate_cell
        In-plane cells (2×3 or 2×2, Å, right-handed) of the two phases' minimal surface cells.
    max_strain_pct
        Largest principal in-plane strain of the film (%).
    lateral_min_ang
        Minimum width of the final cell in both directions (Å).
    max_area_ang2
        Largest coincidence-cell area searched (Å²); default ``max(2 lateral_min_ang², 150)``.
    area_slack
        Matches whose final area is within this fraction of the smallest compete on strain.
    film_name, substrate_name
        Names used in error messages.

    Raises
    ------
    StructureError
        No match within the strain limit (the message suggests a larger lateral size or strain limit).
    """
    film = _as_2d(film_cell)
    substrate = _as_2d(substrate_cell)
    if not (isinstance(max_strain_pct, (int, float)) and 0 < max_strain_pct <= 25):
        raise StructureError(f"max_strain_pct must be in (0, 25] %, got {max_strain_pct!r}")
    if np.linalg.det(film) < 0 or np.linalg.det(substrate) < 0:
        raise StructureError("in-plane cells must be right-handed (a × b along +z)")
    max_area = float(max_area_ang2) if max_area_ang2 is not None else max(2.0 * float(lateral_min_ang) ** 2, 150.0)
    candidates = _zsl_candidates(film, substrate, float(max_strain_pct), max_area)
    if not candidates:
        bigger = math.ceil(math.sqrt(2.0) * float(lateral_min_ang))
        raise StructureError(
            f"no lattice match of {film_name} on {substrate_name} within {max_strain_pct:g} % strain for "
            f"coincidence cells up to {max_area:.0f} Å² (lateral size {lateral_min_ang:g} Å); use a larger "
            f"lateral size (e.g. --lateral-min-ang {bigger}), a larger --max-strain-pct, or another facet"
        )
    scored = []
    for cand in candidates:
        matched = cand["ms"] @ substrate
        lat = lateral_supercell(matched, float(lateral_min_ang))
        scored.append((lat.area_ang2, cand, lat))
    smallest = min(s[0] for s in scored)
    pool = [s for s in scored if s[0] <= smallest * (1.0 + area_slack) + 1e-9]
    area, cand, lat = min(pool, key=lambda s: (round(s[1]["principal"], 6), s[0]))
    ms = lat.matrix @ cand["ms"]
    mf = lat.matrix @ cand["mf"]
    cell = ms @ substrate
    film_sc = mf @ film
    components, principal = strain_pct(film_sc, cell)
    logger.info(
        "ZSL: %s on %s, %d distinct matches ≤ %.1f %%; chosen %.1f Å² (coincidence %.1f Å²), strain %.2f %%",
        film_name, substrate_name, len(candidates), max_strain_pct, area, cand["area"], principal,
    )
    return LatticeMatch(
        film_matrix=mf, substrate_matrix=ms, cell_ang=_as_3d(cell), film_cell_ang=_as_3d(film_sc),
        strain_pct=components, max_strain_pct=principal, area_ang2=float(area),
        match_area_ang2=float(cand["area"]), repeat_matrix=lat.matrix, n_matches=len(candidates),
        max_area_ang2=max_area,
    )


# ------------------------------------------------------------------------------- matching a given cell
def find_supercell_matrix(base_cell, target_cell, *, tol_ang: float = 1e-3) -> np.ndarray | None:
    """Integer matrix M (det > 0) with M · base equal to ``target_cell`` up to an in-plane rotation.

    Lengths of both vectors and the angle between them must agree within ``tol_ang`` (Å; the angle through
    |u·v|/|v|). Returns ``None`` when the target is not a supercell of the base lattice.
    """
    base = _as_2d(base_cell)
    target = _as_2d(target_cell)
    lu, lv = np.linalg.norm(target, axis=1)
    area_t = abs(float(np.linalg.det(target)))
    ratio = area_t / abs(float(np.linalg.det(base)))
    if abs(ratio - round(ratio)) > 1e-3 * max(ratio, 1.0) or round(ratio) < 1:
        return None
    wa, wb = lateral_widths_ang(base)
    n = int(math.ceil(max(lu, lv) / min(wa, wb))) + 1
    rng = np.arange(-n, n + 1)
    pairs = np.array(np.meshgrid(rng, rng, indexing="ij")).reshape(2, -1).T
    vecs = pairs @ base
    lens = np.linalg.norm(vecs, axis=1)
    cu = pairs[np.abs(lens - lu) <= tol_ang]
    cv = pairs[np.abs(lens - lv) <= tol_ang]
    dot_t = float(np.dot(target[0], target[1]))
    cross_t = float(np.linalg.det(target))
    for a in cu:
        for b in cv:
            m = np.array([a, b])
            vec = m @ base
            if abs(float(np.linalg.det(vec)) - cross_t) > tol_ang * (lu + lv):
                continue
            if abs(float(np.dot(vec[0], vec[1])) - dot_t) > tol_ang * (lu + lv):
                continue
            return m.astype(int)
    return None
