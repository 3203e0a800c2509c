"""Vectorised periodic neighbour search shared by every analysis (coordination, RDF, interphase).

Two layers:

:func:`find_pairs`
    All pairs of points closer than one cutoff, under periodic boundaries, as index pairs ``(i, j)`` plus the
    integer image shift ``S`` of ``j`` and the distance. The bond vector is
    ``positions[j] + S @ cell - positions[i]``; each bond appears once (``i < j``, or ``i == j`` for a bond to
    an atom's own periodic image, which then appears once per ± direction pair).
:func:`bonds`
    Element-pair bonds: pairs within per-pair cutoffs (``{("P", "O"): 2.0, ...}`` or ``{"P-O": 2.0}``),
    returned as a :class:`BondList` that counts neighbours per atom and per element with ``numpy.bincount``.

How the search works
--------------------
The pairs come from MDAnalysis' grid search (:func:`MDAnalysis.lib.distances.self_capped_distance`, C code,
minimum-image convention for orthorhombic and triclinic boxes). Around it:

- the cell is Minkowski-reduced first (:func:`ase.geometry.minkowski_reduce`), so strongly skewed cells are
  safe; shifts are converted back to the caller's cell vectors;
- when the cutoff reaches half a perpendicular cell width (small crystal cells), the search runs on a
  replicated supercell and folds the result back, so *every* periodic image within the cutoff is found,
  including an atom's bonds to its own images (the same convention as :func:`ase.neighborlist.neighbor_list`);
- mixed boundary conditions (slabs, ``pbc=(True, True, False)``) replace each non-periodic cell vector by a
  vector normal to the periodic ones, long enough that no pair can wrap across it;
- MDAnalysis works in float32, so the search cutoff is padded by :data:`SEARCH_PAD_ANG`; image shifts and
  distances are then recomputed in float64 and the exact cutoff is applied.

There is no Python loop over atoms or pairs. Lengths are in Å.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ..errors import ConfigError, TrajectoryError

__all__ = [
    "DEFAULT_BOND_CUTOFFS_ANG",
    "SEARCH_PAD_ANG",
    "PairList",
    "BondList",
    "find_pairs",
    "bonds",
    "neighbour_counts",
    "parse_cutoffs",
    "pair_key",
    "pair_label",
]

logger = logging.getLogger(__name__)

#: Default bond cutoffs (Å) of the speciation analyses; keys name the pair as printed in results.
DEFAULT_BOND_CUTOFFS_ANG: dict[str, float] = {
    "P-O": 2.0,
    "P-N": 2.0,
    "P-S": 2.4,
    "P-P": 2.4,
    "Li-O": 2.6,
    "Li-N": 2.6,
    "Li-S": 3.0,
    "Li-P": 3.0,
    "Co-O": 2.4,
    "S-S": 2.4,
}

#: Padding (Å) added to the float32 search cutoff before the exact float64 cut.
SEARCH_PAD_ANG = 1e-3

_ELEMENTS = frozenset(chemical_symbols[1:])


# ------------------------------------------------------------------------------------------------ cutoffs
def pair_key(a: str, b: str) -> tuple[str, str]:
    """Order-independent key of an element pair (alphabetical tuple)."""
    return (a, b) if a <= b else (b, a)


def pair_label(a: str, b: str) -> str:
    """Printable name of a pair: the spelling of :data:`DEFAULT_BOND_CUTOFFS_ANG` (``"P-O"``) if it has one."""
    for name in (f"{a}-{b}", f"{b}-{a}"):
        if name in DEFAULT_BOND_CUTOFFS_ANG:
            return name
    x, y = pair_key(a, b)
    return f"{x}-{y}"


def _split_pair(name: str) -> tuple[str, str]:
    parts = str(name).replace("–", "-").split("-")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"bad element pair {name!r}; write it as A-B, e.g. P-N")
    return parts[0].strip(), parts[1].strip()


def parse_cutoffs(spec: Mapping | Iterable[str] | None) -> dict[tuple[str, str], float]:
    """Validate bond cutoffs and return ``{pair_key(a, b): cutoff_ang}``.

    Parameters
    ----------
    spec
        A mapping with keys ``("P", "O")`` or ``"P-O"`` and cutoffs in Å, or strings ``"P-O=2.1"`` (the CLI
        form). ``A-B`` and ``B-A`` name the same pair.

    Raises
    ------
    ConfigError
        Unknown element, malformed pair, a non-positive or non-finite cutoff, or one pair given twice with
        different values.
    """
    if spec is None:
        return {}
    items: list[tuple[object, object]]
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        items = []
        for text in spec:
            if not isinstance(text, str) or "=" not in text:
                raise ConfigError(f"bad cutoff {text!r}; write PAIR=ANGSTROM, e.g. P-N=2.1")
            name, value = text.split("=", 1)
            items.append((name.strip(), value.strip()))
    out: dict[tuple[str, str], float] = {}
    for key, value in items:
        a, b = key if isinstance(key, tuple) else _split_pair(str(key))
        for el in (a, b):
            if el not in _ELEMENTS:
                raise ConfigError(
                    f"unknown element {el!r} in cutoff pair {key!r}; use chemical symbols like Li, P, O"
                )
        try:
            cut = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"cutoff for {a}-{b} must be a number in Å, got {value!r}") from None
        if not math.isfinite(cut) or cut <= 0:
            raise ConfigError(f"cutoff for {a}-{b} must be a positive distance in Å, got {value!r}")
        k = pair_key(a, b)
        if k in out and out[k] != cut:
            raise ConfigError(f"cutoff for {a}-{b} given twice ({out[k]} and {cut} Å); give it once")
        out[k] = cut
    return out


# ------------------------------------------------------------------------------------------- pair search
@dataclass(frozen=True)
class PairList:
    """Pairs within a cutoff: bond ``k`` joins ``i[k]`` to the image ``shifts[k]`` of ``j[k]``.

    Attributes
    ----------
    i, j : numpy.ndarray of int, shape (n_pairs,)
        Atom indices (``i <= j``).
    shifts : numpy.ndarray of int, shape (n_pairs, 3)
        Image of ``j``, in units of the cell vectors: vector ``positions[j] + shifts @ cell - positions[i]``.
    distances_ang : numpy.ndarray of float, shape (n_pairs,)
        Bond lengths (Å, float64).
    """

    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    distances_ang: np.ndarray

    def __len__(self) -> int:
        return len(self.i)


def _as_pbc(pbc: bool | Sequence[bool] | np.ndarray | None) -> np.ndarray:
    if pbc is None:
        return np.zeros(3, dtype=bool)
    arr = np.asarray(pbc, dtype=bool).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3:
        raise ConfigError(f"pbc must be one bool or three, got {pbc!r}")
    return arr


def _check_cell(cell: np.ndarray | None, pbc: np.ndarray) -> np.ndarray:
    """A (3, 3) float cell whose periodic vectors span a non-degenerate lattice."""
    if cell is None:
        if pbc.any():
            raise TrajectoryError(
                "periodic analysis needs a cell, but the frame has none; add the cell (extxyz Lattice=...) "
                "or analyse it as an isolated cluster with pbc=False (--no-pbc)"
            )
        return np.zeros((3, 3))
    cell = np.asarray(cell, dtype=float)
    if cell.shape == (6,):
        from ase.geometry import cellpar_to_cell

        cell = cellpar_to_cell(cell)
    if cell.shape != (3, 3) or not np.isfinite(cell).all():
        raise TrajectoryError(f"the cell must be a finite 3x3 matrix (Å), got shape {cell.shape}")
    periodic = cell[pbc]
    if len(periodic) and (np.linalg.matrix_rank(periodic, tol=1e-8) < len(periodic)
                          or (np.linalg.norm(periodic, axis=1) < 1e-8).any()):
        raise TrajectoryError(
            "periodic analysis needs a cell, but the frame's cell is zero or degenerate along a periodic "
            "axis; add the cell (extxyz Lattice=...) or analyse it as an isolated cluster with pbc=False "
            "(--no-pbc)"
        )
    return cell


def _effective_cell(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> np.ndarray:
    """Cell with every non-periodic vector replaced by a long vector normal to the periodic ones."""
    eff = cell.copy()
    periodic = [k for k in range(3) if pbc[k]]
    open_axes = [k for k in range(3) if not pbc[k]]
    if len(periodic) == 2:
        normals = [np.cross(cell[periodic[0]], cell[periodic[1]])]
    else:  # one periodic axis: two normals to it
        a = cell[periodic[0]] / np.linalg.norm(cell[periodic[0]])
        trial = np.eye(3)[np.argmin(np.abs(a))]
        n1 = np.cross(a, trial)
        normals = [n1, np.cross(a, n1)]
    for k, normal in zip(open_axes, normals):
        normal = normal / np.linalg.norm(normal)
        extent = float(np.ptp(positions @ normal)) if len(positions) else 0.0
        eff[k] = normal * (2.0 * (extent + cutoff) + 1.0)
    if np.linalg.det(eff) < 0:  # keep a right-handed basis (MDAnalysis box convention)
        eff[open_axes[-1]] *= -1.0
    return eff


def _heights(cell: np.ndarray) -> np.ndarray:
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)])


def _mda_max_cutoff(cell: np.ndarray) -> float:
    """The largest cutoff MDAnalysis' grid search accepts for this cell (its own, conservative formula)."""
    from ase.geometry import cell_to_cellpar, cellpar_to_cell

    par = cell_to_cellpar(cell)
    tri = cellpar_to_cell(par)
    sa, sb, sg = (math.sin(math.radians(x)) for x in par[3:])
    xx, yy, zz = tri[0, 0], tri[1, 1], tri[2, 2]
    return 0.5 * min(yy * sa, zz * sa, xx * sb, zz * sb, xx * sg, yy * sg)


def _replicas(cell: np.ndarray, cutoff: float) -> np.ndarray:
    """Replicas per axis so that the supercell admits ``cutoff`` in the grid search."""
    margin = cutoff + 2e-3
    reps = np.floor(2.0 * margin / _heights(cell)).astype(int) + 1
    for _ in range(64):  # a few steps at most for a Minkowski-reduced cell
        if _mda_max_cutoff(cell * reps[:, None]) > margin:
            return reps
        reps[np.argmin(reps * np.linalg.norm(cell, axis=1))] += 1
    raise TrajectoryError("cannot build a supercell for the neighbour search; is the cell degenerate?")


def _min_image(dfrac: np.ndarray, cell: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer shifts ``n`` minimising ``|(dfrac + n) @ cell|`` and those lengths (vectorised)."""
    n = -np.rint(dfrac)
    d = np.linalg.norm((dfrac + n) @ cell, axis=1)
    bad = np.flatnonzero(d > cutoff)
    if len(bad):  # rounding is not the minimum image in skewed cells: try the 27 neighbours
        offsets = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float)
        trial = n[bad, None, :] + offsets[None]
        lengths = np.linalg.norm((dfrac[bad, None, :] + trial) @ cell, axis=2)
        best = np.argmin(lengths, axis=1)
        n[bad] = trial[np.arange(len(bad)), best]
        d[bad] = lengths[np.arange(len(bad)), best]
    return n.astype(np.int64), d


def find_pairs(
    positions: np.ndarray,
    cell: np.ndarray | None,
    pbc: bool | Sequence[bool] | np.ndarray,
    cutoff_ang: float,
) -> PairList:
    """All pairs of ``positions`` closer than ``cutoff_ang`` under the given boundary conditions.

    Parameters
    ----------
    positions
        Cartesian coordinates (Å), shape (n, 3); need not be wrapped into the cell.
    cell
        Cell vectors as rows (Å), shape (3, 3), or ``[a, b, c, alpha, beta, gamma]``; may be None when
        ``pbc`` is all False.
    pbc
        Periodic boundary conditions, one bool or three.
    cutoff_ang
        Largest distance (Å) included (``d <= cutoff_ang``).

    Returns
    -------
    PairList

    Raises
    ------
    TrajectoryError
        Periodic boundaries without a (non-degenerate) cell.
    ConfigError
        Non-positive cutoff or malformed positions.
    """
    from MDAnalysis.lib.distances import self_capped_distance

    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ConfigError(f"positions must have shape (n, 3), got {pos.shape}")
    if not np.isfinite(pos).all():
        raise TrajectoryError("positions contain NaN or inf; the frame is corrupt (check the MD run)")
    if not (math.isfinite(cutoff_ang) and cutoff_ang > 0):
        raise ConfigError(f"cutoff must be a positive distance in Å, got {cutoff_ang!r}")
    pbc_arr = _as_pbc(pbc)
    cell_arr = _check_cell(cell, pbc_arr)
    n = len(pos)
    empty = PairList(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64), np.zeros(0))
    if n < 2 and not pbc_arr.any():
        return empty
    search = cutoff_ang + SEARCH_PAD_ANG

    if not pbc_arr.any():
        pairs, _ = self_capped_distance(pos.astype(np.float32), search, box=None)
        i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
        d = np.linalg.norm(pos[j] - pos[i], axis=1)
        keep = d <= cutoff_ang
        i, j, d = i[keep], j[keep], d[keep]
        swap = i > j
        i[swap], j[swap] = j[swap], i[swap]
        return PairList(i, j, np.zeros((len(i), 3), np.int64), d)

    from ase.geometry import cell_to_cellpar, cellpar_to_cell, minkowski_reduce

    eff = cell_arr if pbc_arr.all() else _effective_cell(pos, cell_arr, pbc_arr, search)
    rcell, op = minkowski_reduce(eff)
    frac = np.linalg.solve(rcell.T, pos.T).T
    wrap = np.floor(frac)
    frac -= wrap
    reps = _replicas(rcell, search)
    images = np.array(list(itertools.product(*(range(r) for r in reps))), dtype=np.int64)  # (m, 3)
    sup_frac = ((frac[None, :, :] + images[:, None, :]) / reps).reshape(-1, 3)
    sup_cell = rcell * reps[:, None]
    cellpar = cell_to_cellpar(sup_cell)
    std_cell = cellpar_to_cell(cellpar)  # MDAnalysis' orientation: a along x, b in the xy plane
    pts = (sup_frac @ std_cell).astype(np.float32)
    pairs, _ = self_capped_distance(pts, search, box=cellpar.astype(np.float32))
    k, l_ = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    nsup, _ = _min_image(sup_frac[l_] - sup_frac[k], sup_cell, search)
    img_k, img_l = images[k // n], images[l_ // n]
    shift_kl = img_l - img_k + nsup * reps  # image of l seen from k, in reduced-cell units
    # directed bonds that start in the home cell, then one orientation of each undirected bond
    from_k = (img_k == 0).all(axis=1)
    from_l = (img_l == 0).all(axis=1)
    src = np.concatenate([k[from_k] % n, l_[from_l] % n])
    dst = np.concatenate([l_[from_k] % n, k[from_l] % n])
    sh = np.concatenate([shift_kl[from_k], -shift_kl[from_l]])
    lex_positive = np.zeros(len(sh), dtype=bool)
    decided = np.zeros(len(sh), dtype=bool)
    for axis in range(3):  # sign of the first non-zero shift component (3 vector ops, not a pair loop)
        comp = sh[:, axis]
        lex_positive |= ~decided & (comp > 0)
        decided |= comp != 0
    keep = (src < dst) | ((src == dst) & lex_positive)
    src, dst, sh = src[keep], dst[keep], sh[keep]
    # back to the caller's (unwrapped) positions and cell vectors
    sh = (sh - wrap[dst].astype(np.int64) + wrap[src].astype(np.int64)) @ op
    vec = pos[dst] - pos[src] + sh @ (eff if not pbc_arr.all() else cell_arr)
    d = np.linalg.norm(vec, axis=1)
    keep = d <= cutoff_ang
    sh = sh[keep]
    sh[:, ~pbc_arr] = 0  # open axes never carry an image (guaranteed by the effective cell)
    return PairList(src[keep], dst[keep], sh, d[keep])


# ------------------------------------------------------------------------------------------------- bonds
@dataclass(frozen=True)
class BondList:
    """Bonds of one frame, each once: ``i[k]`` bonded to image ``shifts[k]`` of ``j[k]``.

    Attributes
    ----------
    i, j : numpy.ndarray of int, shape (n_bonds,)
    shifts : numpy.ndarray of int, shape (n_bonds, 3)
        Image of ``j`` in cell-vector units (bond vector ``positions[j] + shifts @ cell - positions[i]``).
    distances_ang : numpy.ndarray, shape (n_bonds,)
        Bond lengths (Å).
    symbols : numpy.ndarray of str, shape (n_atoms,)
    cutoffs_ang : dict
        ``{pair_key: cutoff}`` (Å) the bonds were cut with.
    """

    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    distances_ang: np.ndarray
    symbols: np.ndarray
    cutoffs_ang: dict

    def __len__(self) -> int:
        return len(self.i)

    @property
    def n_atoms(self) -> int:
        """Number of atoms in the frame."""
        return len(self.symbols)

    def directed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Both orientations of every bond: ``(src, dst, shifts, distances_ang)`` (shift of ``dst``)."""
        return (
            np.concatenate([self.i, self.j]),
            np.concatenate([self.j, self.i]),
            np.concatenate([self.shifts, -self.shifts]),
            np.concatenate([self.distances_ang, self.distances_ang]),
        )

    def count_matrix(self, elements: Sequence[str]) -> np.ndarray:
        """Neighbour counts per atom and element, shape (n_atoms, len(elements)), int.

        Column ``e`` of row ``a`` is the number of bonds from atom ``a`` to atoms of ``elements[e]`` (each
        periodic image counts).
        """
        elements = list(elements)
        codes = _element_codes(self.symbols, elements)
        src, dst = np.concatenate([self.i, self.j]), np.concatenate([self.j, self.i])
        col = codes[dst]
        ok = col >= 0
        flat = np.bincount(src[ok] * len(elements) + col[ok], minlength=self.n_atoms * len(elements))
        return flat.reshape(self.n_atoms, len(elements))

    def counts(self, element: str | None = None) -> np.ndarray:
        """Per-atom number of neighbours (of ``element`` only, when given), shape (n_atoms,)."""
        if element is None:
            return np.bincount(np.concatenate([self.i, self.j]), minlength=self.n_atoms)
        return self.count_matrix([element])[:, 0]

    def counts_by_element(self, elements: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``{element: per-atom neighbour count}`` for ``elements`` (default: every element of the frame)."""
        elements = sorted(set(self.symbols.tolist())) if elements is None else list(elements)
        matrix = self.count_matrix(elements)
        return {el: matrix[:, e] for e, el in enumerate(elements)}

    def between(self, a: str, b: str) -> BondList:
        """The bonds joining elements ``a`` and ``b``, oriented so that ``i`` is the ``a`` atom."""
        sa, sb = self.symbols[self.i], self.symbols[self.j]
        fwd = (sa == a) & (sb == b)
        rev = (sa == b) & (sb == a) & ~fwd
        return BondList(
            np.concatenate([self.i[fwd], self.j[rev]]),
            np.concatenate([self.j[fwd], self.i[rev]]),
            np.concatenate([self.shifts[fwd], -self.shifts[rev]]),
            np.concatenate([self.distances_ang[fwd], self.distances_ang[rev]]),
            self.symbols,
            self.cutoffs_ang,
        )

    def vectors_ang(self, positions: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
        """Bond vectors ``i -> image of j`` (Å), shape (n_bonds, 3)."""
        positions = np.asarray(positions, dtype=float)
        vec = positions[self.j] - positions[self.i]
        if cell is not None and len(self.shifts):
            vec = vec + self.shifts @ np.asarray(cell, dtype=float)
        return vec


def _element_codes(symbols: np.ndarray, elements: Sequence[str]) -> np.ndarray:
    """Index of each atom's element in ``elements`` (-1 when absent)."""
    codes = np.full(len(symbols), -1, dtype=np.int64)
    for e, el in enumerate(elements):
        codes[symbols == el] = e
    return codes


def _frame_arrays(
    atoms_or_positions: Atoms | np.ndarray,
    symbols: Sequence[str] | None,
    cell: np.ndarray | None,
    pbc: bool | Sequence[bool] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    if isinstance(atoms_or_positions, Atoms):
        atoms = atoms_or_positions
        pos = atoms.positions
        sym = np.asarray(atoms.get_chemical_symbols() if symbols is None else symbols)
        pbc_arr = _as_pbc(atoms.pbc if pbc is None else pbc)
        cell_arr = atoms.cell.array if cell is None else cell
        if not pbc_arr.any() and cell is None:
            cell_arr = None
    else:
        pos = np.asarray(atoms_or_positions, dtype=float)
        if symbols is None:
            raise ConfigError("positions given without symbols; pass symbols=... (one per atom) or an ase.Atoms")
        sym = np.asarray(symbols)
        pbc_arr = _as_pbc(pbc if pbc is not None else cell is not None)
        cell_arr = cell
    if len(sym) != len(pos):
        raise ConfigError(f"{len(sym)} symbols for {len(pos)} positions; give one symbol per atom")
    return pos, sym.astype(str), cell_arr, pbc_arr


def bonds(
    atoms_or_positions: Atoms | np.ndarray,
    cutoffs: Mapping | Iterable[str] | None = None,
    *,
    symbols: Sequence[str] | None = None,
    cell: np.ndarray | None = None,
    pbc: bool | Sequence[bool] | None = None,
) -> BondList:
    """Bonds between atoms within element-pair cutoffs (Å), under periodic boundaries.

    Parameters
    ----------
    atoms_or_positions
        An :class:`ase.Atoms` (symbols, cell and pbc are taken from it) or positions (Å), shape (n, 3).
    cutoffs
        ``{("P", "O"): 2.0, "Li-O": 2.6, ...}`` or ``["P-O=2.0", ...]`` (Å); pairs not listed are never
        bonded. Default: :data:`DEFAULT_BOND_CUTOFFS_ANG`.
    symbols
        Chemical symbols, one per atom (required with plain positions).
    cell
        Cell (Å), rows are vectors; required when any ``pbc`` is True.
    pbc
        Periodic boundary conditions; default from the Atoms, or True when a cell is given with positions.

    Returns
    -------
    BondList

    Examples
    --------
    >>> from ase.build import bulk
    >>> b = bonds(bulk("NaCl", "rocksalt", a=5.64), {"Na-Cl": 3.0})
    >>> b.counts_by_element(["Cl"])["Cl"].tolist()  # Na has six Cl neighbours (all images of one Cl)
    [6, 0]
    """
    table = parse_cutoffs(DEFAULT_BOND_CUTOFFS_ANG if cutoffs is None else cutoffs)
    if not table:
        raise ConfigError("no bond cutoffs given; pass e.g. {'P-O': 2.0}")
    pos, sym, cell_arr, pbc_arr = _frame_arrays(atoms_or_positions, symbols, cell, pbc)
    elements = sorted({el for key in table for el in key})
    codes = _element_codes(sym, elements)
    involved = np.flatnonzero(codes >= 0)
    present = set(sym[involved].tolist())
    live = {k: v for k, v in table.items() if k[0] in present and k[1] in present}
    if not live or len(involved) == 0:
        _check_cell(cell_arr, pbc_arr)  # still reject a periodic frame without a cell
        z = np.zeros(0, np.int64)
        return BondList(z, z.copy(), np.zeros((0, 3), np.int64), np.zeros(0), sym, table)
    cutmat = np.full((len(elements), len(elements)), -1.0)
    for (a, b), cut in live.items():
        ia, ib = elements.index(a), elements.index(b)
        cutmat[ia, ib] = cutmat[ib, ia] = cut
    found = find_pairs(pos[involved], cell_arr, pbc_arr, max(live.values()))
    gi, gj = involved[found.i], involved[found.j]
    keep = found.distances_ang <= cutmat[codes[gi], codes[gj]]
    return BondList(gi[keep], gj[keep], found.shifts[keep], found.distances_ang[keep], sym, table)


def neighbour_counts(
    atoms: Atoms, cutoffs: Mapping | Iterable[str] | None = None, elements: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Per-atom neighbour counts by element: ``{"O": (n_atoms,) int, ...}`` (see :func:`bonds`)."""
    return bonds(atoms, cutoffs).counts_by_element(elements)
