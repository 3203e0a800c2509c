"""Per-atom speciation of one frame: N, O and P classes, Li polyhedra, phosphate clusters.

Definitions (the same everywhere in tfbsim; bonds are pairs within element-pair cutoffs under periodic
boundaries, see :mod:`tfbsim.analysis.neighbours`; defaults in :data:`DEFAULT_BOND_CUTOFFS_ANG`)

=================  ==========================================================================================
class              definition
=================  ==========================================================================================
``N0``             N with no P neighbour (Li3N-like nitride)
``Na``             N with one P neighbour (apical, non-bridging)
``Nd``             N with two P neighbours (doubly coordinated, bridging P-N-P)
``Nt``             N with three P neighbours (triply coordinated)
``N_over``         N with more than three P neighbours (unphysical; a sign of a bad structure or cutoff)
``O0``             O with no P neighbour (Li2O-like, or bonded only to Co)
``Onb``            O with one P neighbour (non-bridging)
``Ob``             O with two P neighbours (bridging P-O-P)
``O_over``         O with more than two P neighbours
bridging anion     O or N with two or more P neighbours (Ob, Nd, Nt and the rare O_over, N_over)
P CN               number of O + N neighbours of a P (4 in a PO4 / PO3N / PO2N2 tetrahedron);
                   ``undercoordinated`` = CN < 4 (a sign of reduction), ``overcoordinated`` = CN > 4
``Qn``             P with n bridging anions, n = 0 ... 4; ``Q_over`` for n > 4
phosphate cluster  connected component of P atoms joined through bridging anions; a cluster that connects to
                   its own periodic image is *infinite* (a chain or network through the cell) and counts as
                   ``larger`` whatever its number of P per cell; otherwise ``monomer`` (1 P), ``dimer`` (2),
                   ``trimer`` (3) or ``larger`` (4 or more)
Li polyhedron      Li neighbours among O, N, S, written by decreasing count (ties in the order O, N, S) with
                   counts of one left out: ``O4``, ``O3N``, ``O2N2``, ``S4``; ``none`` without neighbours
=================  ==========================================================================================

:func:`classify_atoms` returns these labels for every atom of a frame (:class:`AtomClasses`); the interphase
analysis and the amorphous-builder tests reuse it. Periodic infinite clusters are detected without a loop over
bonds: image offsets are propagated along the cluster breadth-first (one vector operation per BFS level) and a
bond whose two ends disagree about the offset closes a loop through the periodic boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .neighbours import DEFAULT_BOND_CUTOFFS_ANG, BondList, bonds

__all__ = [
    "SPECIATION_PAIRS",
    "N_CLASSES",
    "O_CLASSES",
    "Q_CLASSES",
    "CLUSTER_CLASSES",
    "LI_LIGANDS",
    "AtomClasses",
    "classify_atoms",
    "classify_bonds",
    "polyhedron_label",
]

logger = logging.getLogger(__name__)

#: The bond pairs the speciation uses (names as in :data:`DEFAULT_BOND_CUTOFFS_ANG`).
SPECIATION_PAIRS: tuple[str, ...] = ("P-O", "P-N", "Li-O", "Li-N", "Li-S")
N_CLASSES: tuple[str, ...] = ("N0", "Na", "Nd", "Nt", "N_over")
O_CLASSES: tuple[str, ...] = ("O0", "Onb", "Ob", "O_over")
Q_CLASSES: tuple[str, ...] = ("Q0", "Q1", "Q2", "Q3", "Q4", "Q_over")
CLUSTER_CLASSES: tuple[str, ...] = ("monomer", "dimer", "trimer", "larger")
#: Ligands of the Li polyhedron, in the tie-break order of the labels.
LI_LIGANDS: tuple[str, ...] = ("O", "N", "S")

_COUNT_ELEMENTS = ("P", "O", "N", "S", "Li")


@dataclass(frozen=True)
class AtomClasses:
    """Speciation of every atom of one frame.

    Attributes
    ----------
    symbols : numpy.ndarray of str, shape (n_atoms,)
    label : numpy.ndarray of str, shape (n_atoms,)
        ``N0``/``Na``/``Nd``/``Nt``/``N_over`` for N, ``O0``/``Onb``/``Ob``/``O_over`` for O, ``Q0`` ...
        ``Q4``/``Q_over`` for P, the polyhedron label (``O4``, ``O3N``, ...) for Li, ``""`` for other atoms.
    neighbours : dict[str, numpy.ndarray]
        Per-atom number of bonded P, O, N, S and Li atoms (periodic images count), shape (n_atoms,) each.
    n_p : numpy.ndarray of int
        Number of P neighbours of every atom (= ``neighbours["P"]``).
    bridging : numpy.ndarray of bool
        O or N bonded to two or more P.
    p_cn : numpy.ndarray of int
        O + N neighbours of each atom (meaningful for P).
    qn : numpy.ndarray of int
        Bridging anions on each P; -1 for other atoms.
    cluster : numpy.ndarray of int
        Phosphate-cluster id of each P (0 ... n_clusters - 1); -1 for other atoms.
    cluster_size : numpy.ndarray of int
        Number of P atoms (per cell) in the cluster of each P; 0 for other atoms.
    cluster_infinite : numpy.ndarray of bool
        P in a cluster that connects to its own periodic image.
    li_cn : numpy.ndarray of int
        O + N + S neighbours of each atom (meaningful for Li).
    bonds : BondList
        The bonds the classes were derived from.
    """

    symbols: np.ndarray
    label: np.ndarray
    neighbours: dict
    n_p: np.ndarray
    bridging: np.ndarray
    p_cn: np.ndarray
    qn: np.ndarray
    cluster: np.ndarray
    cluster_size: np.ndarray
    cluster_infinite: np.ndarray
    li_cn: np.ndarray
    bonds: BondList

    def indices(self, label: str) -> np.ndarray:
        """Indices of the atoms with class ``label`` (e.g. ``"Nd"``, ``"Q2"``, ``"O3N"``)."""
        return np.flatnonzero(self.label == label)

    def cluster_class(self) -> np.ndarray:
        """``monomer``/``dimer``/``trimer``/``larger`` for each P, ``""`` for other atoms."""
        out = np.full(len(self.symbols), "", dtype=object)
        is_p = self.symbols == "P"
        size = np.where(self.cluster_infinite, 4, np.minimum(self.cluster_size, 4))
        out[is_p] = np.array(CLUSTER_CLASSES, dtype=object)[size[is_p] - 1]
        return out.astype(str)


def polyhedron_label(counts: Mapping[str, int] | Iterable[int]) -> str:
    """Li polyhedron label from ligand counts: ``{"O": 3, "N": 1}`` or ``(3, 1, 0)`` (O, N, S) -> ``"O3N"``."""
    if isinstance(counts, Mapping):
        values = [int(counts.get(el, 0)) for el in LI_LIGANDS]
    else:
        values = [int(c) for c in counts]
    order = sorted(range(len(values)), key=lambda k: (-values[k], k))
    parts = [LI_LIGANDS[k] + (str(values[k]) if values[k] > 1 else "") for k in order if values[k] > 0]
    return "".join(parts) or "none"


def classify_atoms(
    atoms: Atoms,
    cutoffs: Mapping | Iterable[str] | None = None,
    *,
    pbc: bool | Iterable[bool] | None = None,
) -> AtomClasses:
    """Speciation of every atom of ``atoms`` (see the module docstring for the definitions).

    Parameters
    ----------
    atoms
        One frame; periodic boundaries from ``atoms.pbc`` unless ``pbc`` is given.
    cutoffs
        Bond cutoffs (Å) for the pairs in :data:`SPECIATION_PAIRS`, e.g. ``{"P-N": 2.1}``; pairs not given use
        :data:`DEFAULT_BOND_CUTOFFS_ANG`.

    Returns
    -------
    AtomClasses

    Examples
    --------
    >>> from ase import Atoms
    >>> po3n = Atoms("PO3N", positions=[[5, 5, 5], [6.5, 5, 5], [4.5, 6.4, 5], [4.5, 4.3, 6.2], [4.5, 4.3, 3.6]],
    ...              cell=[10, 10, 10], pbc=True)
    >>> classify_atoms(po3n).label.tolist()
    ['Q0', 'Onb', 'Onb', 'Onb', 'Na']
    """
    table = speciation_cutoffs(cutoffs)
    bl = bonds(atoms, table, pbc=pbc)
    return classify_bonds(bl)


def speciation_cutoffs(cutoffs: Mapping | Iterable[str] | None = None) -> dict[str, float]:
    """The cutoffs (Å) of :data:`SPECIATION_PAIRS`: defaults updated by ``cutoffs`` (validated)."""
    from .neighbours import pair_label, parse_cutoffs

    table = {name: DEFAULT_BOND_CUTOFFS_ANG[name] for name in SPECIATION_PAIRS}
    for (a, b), value in parse_cutoffs(cutoffs).items():
        table[pair_label(a, b)] = value
    return table


def classify_bonds(bl: BondList) -> AtomClasses:
    """Speciation from a precomputed :class:`BondList` (bonds for the pairs of :data:`SPECIATION_PAIRS`)."""
    sym = bl.symbols
    n = len(sym)
    counts = bl.count_matrix(_COUNT_ELEMENTS)
    nb = {el: counts[:, e] for e, el in enumerate(_COUNT_ELEMENTS)}
    n_p = nb["P"]
    is_n, is_o, is_p, is_li = (sym == "N"), (sym == "O"), (sym == "P"), (sym == "Li")
    bridging = (is_n | is_o) & (n_p >= 2)
    p_cn = nb["O"] + nb["N"]
    li_cn = nb["O"] + nb["N"] + nb["S"]

    # Qn: bridging anions on each P (directed P -> anion bonds)
    src, dst, shifts, _ = bl.directed()
    pa = is_p[src] & (is_o[dst] | is_n[dst])
    qn_all = np.bincount(src[pa & bridging[dst]], minlength=n)
    qn = np.where(is_p, qn_all, -1)

    label = np.full(n, "", dtype=object)
    label[is_n] = np.array(N_CLASSES, dtype=object)[np.minimum(n_p[is_n], 4)]
    label[is_o] = np.array(O_CLASSES, dtype=object)[np.minimum(n_p[is_o], 3)]
    label[is_p] = np.array(Q_CLASSES, dtype=object)[np.minimum(qn_all[is_p], 5)]
    if is_li.any():
        li_counts = np.stack([nb[el][is_li] for el in LI_LIGANDS], axis=1)
        combos, inverse = np.unique(li_counts, axis=0, return_inverse=True)
        names = np.array([polyhedron_label(c) for c in combos], dtype=object)  # one per distinct polyhedron
        label[is_li] = names[inverse.reshape(-1)]

    cluster, size, infinite = _phosphate_clusters(sym, src[pa], dst[pa], shifts[pa], bridging)
    return AtomClasses(
        symbols=sym,
        label=label.astype(str),
        neighbours=nb,
        n_p=n_p,
        bridging=bridging,
        p_cn=p_cn,
        qn=qn,
        cluster=cluster,
        cluster_size=size,
        cluster_infinite=infinite,
        li_cn=li_cn,
        bonds=bl,
    )


def _phosphate_clusters(
    sym: np.ndarray, p_src: np.ndarray, a_dst: np.ndarray, shifts: np.ndarray, bridging: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster id, size (P per cell) and periodic-infinite flag of every P (see the module docstring).

    ``p_src -> a_dst`` are P -> anion bonds with the image shift of the anion.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(sym)
    p_idx = np.flatnonzero(sym == "P")
    cluster = np.full(n, -1, dtype=np.int64)
    size = np.zeros(n, dtype=np.int64)
    infinite = np.zeros(n, dtype=bool)
    if len(p_idx) == 0:
        return cluster, size, infinite
    local = np.full(n, -1, dtype=np.int64)
    local[p_idx] = np.arange(len(p_idx))

    # P-P edges through bridging anions: star from the first P of each anion to the others.
    keep = bridging[a_dst]
    p_src, a_dst, shifts = p_src[keep], a_dst[keep], shifts[keep]
    order = np.argsort(a_dst, kind="stable")
    p_src, a_dst, shifts = p_src[order], a_dst[order], shifts[order]
    _, first, group_size = np.unique(a_dst, return_index=True, return_counts=True)
    head = np.repeat(first, group_size)
    others = np.arange(len(a_dst)) != head
    e_a = local[p_src[head[others]]]
    e_b = local[p_src[others]]
    # image of P_b seen from P_a through the anion: shift(P_a -> X) - shift(P_b -> X)
    e_t = shifts[head[others]] - shifts[others]

    n_p = len(p_idx)
    graph = coo_matrix((np.ones(len(e_a)), (e_a, e_b)), shape=(n_p, n_p))
    n_comp, comp = connected_components(graph, directed=False)
    comp_size = np.bincount(comp, minlength=n_comp)
    comp_edges = np.bincount(comp[e_a], minlength=n_comp)
    comp_inf = np.zeros(n_comp, dtype=bool)

    cyclic = comp_edges >= comp_size  # only a cluster with a loop can wrap through the boundary
    if cyclic.any():
        on = cyclic[comp[e_a]]
        a, b, t = e_a[on], e_b[on], e_t[on]
        da, db, dt = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([t, -t])
        offset = np.zeros((n_p, 3), dtype=np.int64)
        known = np.zeros(n_p, dtype=bool)
        nodes = np.flatnonzero(cyclic[comp])
        roots = nodes[np.unique(comp[nodes], return_index=True)[1]]
        known[roots] = True
        while True:  # one vectorised step per breadth-first level
            step = known[da] & ~known[db]
            if not step.any():
                break
            targets, pick = np.unique(db[step], return_index=True)
            offset[targets] = offset[da[step][pick]] + dt[step][pick]
            known[targets] = True
        mismatch = (offset[a] + t != offset[b]).any(axis=1)
        comp_inf[np.unique(comp[a[mismatch]])] = True

    cluster[p_idx] = comp
    size[p_idx] = comp_size[comp]
    infinite[p_idx] = comp_inf[comp]
    return cluster, size, infinite
