"""Per-atom local-environment classes of battery interphases: what each atom looks like, frame by frame.

Every atom of a frame gets exactly one class from its bonded neighbours (pairs within element-pair cutoffs
under periodic boundaries, :func:`tfbsim.analysis.neighbours.bonds`). The classes say which phase an atom
resembles: the pristine electrode and electrolyte phases, or the reaction products that the seed reviews and
the cryo-EM / XPS literature report at Li/LiPON (Li2O next to the metal, then Li3N, Li3P, Li3PO4), at
LiPON/LiCoO2 (Li2O/CoO-like layers, N–O species) and at Li2S/LiPON.

Classes (rules are applied in the order written; the first that matches wins)
-----------------------------------------------------------------------------
==================  ===============================================================================================
class               definition (``n_X`` = number of bonded X atoms; periodic images count)
==================  ===============================================================================================
``Li_metal``        Li with at most ``li_metal_max_anions`` anion neighbours (O, N, S, P within the Li-X cutoffs)
                    and at least ``li_metal_min_li`` Li neighbours (Li-Li 3.2 Å) that are themselves anion-poor
                    in the same sense (and more of them than anions)
``Li_ion``          every other Li (Li in an ionic environment, or with too few Li neighbours to be metal)
``phosphate_O``     O with ``n_P >= 1`` (subtype ``Onb``/``Ob``/``O_over`` from the speciation)
``oxide_Co``        O with no P but ``n_Co >= 1`` (LiCoO2-like, or a CoO-like reduced layer: see the Co classes)
``NO_x``            O or N bonded to each other (N–O 1.6 Å) and not to P: nitrite/nitrate-like N–O species
``Li2O``            O with no P, Co or N neighbour and ``n_Li >= min_li_neighbours``
``O_other``         any other O (isolated, or bonded only to atoms outside the table)
``lipon_N``         N with ``n_P >= 1`` (subtype ``Na``/``Nd``/``Nt``/``N_over`` from the speciation)
``Li3N``            N with no P or O neighbour and ``n_Li >= min_li_neighbours``
``N_other``         any other N
``phosphate_P``     P with ``n_O + n_N + n_S >= 4`` ligands (PO4, PO3N, PO2N2, thiophosphate; subtype ``Qn``)
``P_P``             P with fewer ligands and at least one P–P bond (2.4 Å)
``reduced_P``       P with 1–3 O/N/S ligands (a broken tetrahedron; subtype ``Qn``)
``Li3P``            P without ligands or P–P bond and ``n_Li >= min_li_neighbours`` (Li-P 3.0 Å)
``P_other``         any other P
``thiophosphate_S`` S with ``n_P >= 1``
``polysulfide_S``   S with no P and ``n_S >= 1`` (S-S 2.4 Å)
``Li2S``            S with no P or S neighbour and ``n_Li >= min_li_neighbours``
``S_other``         any other S
``Co_oct``          Co with ``n_O >= co_oct_min_o`` (6: the CoO6 octahedron of LiCoO2)
``Co_reduced``      Co with fewer O neighbours (a reduced or surface Co)
``other``           atoms of any other element
==================  ===============================================================================================

Default thresholds and why
--------------------------
- Bond cutoffs: those of the speciation analysis (:data:`~tfbsim.analysis.neighbours.DEFAULT_BOND_CUTOFFS_ANG`:
  P-O/P-N 2.0 Å between the 1.5–1.7 Å bonds and the ≥ 2.5 Å non-bonded O···N edges of a tetrahedron; Li-O/Li-N
  2.6 Å; Li-S and Li-P 3.0 Å (Li–S 2.47 Å in Li2S, Li–P 2.47–2.77 Å in Li3P); P-P and S-S 2.4 Å (P–P ≈ 2.2 Å,
  S–S ≈ 2.05 Å); Co-O 2.4 Å (1.92 Å in LiCoO2)) plus two pairs of this module: Li-Li 3.2 Å and N-O 1.6 Å.
- ``Li-Li`` 3.2 Å: bcc Li has 8 nearest neighbours at 3.04 Å and 6 at 3.51 Å, so 3.2 Å catches the first shell
  with room for thermal motion but not the second. Li–Li distances in the products are shorter (2.31 Å in
  Li2O, 2.11–2.86 Å in Li3N, 2.54–2.77 Å in Li3P) and would pass too, which is why Li_metal also demands few
  anions: Li in Li2O has 4 O, in Li3N 2–3 N, in Li3P ≥ 3 P, in Li2S 4 S, in Li3PO4/LiPON 3–4 O/N.
- ``li_metal_min_li`` 4: half the bcc first shell; a Li on a bcc (100) surface keeps 4. ``li_metal_max_anions``
  1: one anion contact is tolerated at the metal's surface (the first Li plane against an oxide).
- The Li neighbours of a metal atom must be anion-poor themselves: Li-rich planes of the ionic products (the
  Li(1) plane that terminates Li3N, a Li layer over Li3P) have one anion and several Li neighbours, but those
  neighbours are ions with 2–4 anions each, so such planes stay ``Li_ion``; so do the occasional Li of an
  amorphous electrolyte that sits in a Li-rich pocket with a single anion contact.
- ``min_li_neighbours`` 2: every anion in Li2O, Li3N, Li3P and Li2S has 8 (or more) Li neighbours in the bulk
  and ≥ 4 at a surface; 2 still counts disordered product anions but not a lone atom in a gap.
- ``N-O`` 1.6 Å: N–O bonds are 1.2–1.45 Å (nitrite, nitrate, hydroxylamine-like); the shortest non-bonded N···O
  in a PO3N tetrahedron is ≈ 2.5 Å.
- ``co_oct_min_o`` 6: the CoO6 octahedron of LiCoO2 (and of rock-salt CoO); fewer O means reduction (Co3O4
  tetrahedral Co, metallic Co) or a surface site.

Products and pristine phases
----------------------------
:data:`PRODUCT_CLASSES` are the classes that mark an interphase by default: ``Li2O``, ``Li3N``, ``Li3P``,
``reduced_P``, ``P_P``, ``polysulfide_S``, ``thiophosphate_S``, ``NO_x``, ``Co_reduced``. ``Li2S`` is a
reduction product too, but in tfbsim's cells it is the *cathode*, so it is left out of the default and counted
in the census only (pass it explicitly for a sulfide electrolyte). :data:`PHASE_OF_CLASS` groups classes into
the phases used for layer detection (``phosphate`` covers both γ-Li3PO4 and LiPON: they share the local
environments; the ``Qn`` / ``Ob`` / ``Nd`` subtypes tell them apart statistically, not atom by atom).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
from ase import Atoms

from ..errors import ConfigError
from .neighbours import DEFAULT_BOND_CUTOFFS_ANG, BondList, bonds, pair_label, parse_cutoffs
from .speciation import AtomClasses, classify_bonds

__all__ = [
    "CLASSES",
    "CLASS_DEFINITIONS",
    "CLASS_ELEMENTS",
    "PRODUCT_CLASSES",
    "PHASE_OF_CLASS",
    "FORMULA_UNITS",
    "RECOGNISED_ELEMENTS",
    "ENVIRONMENT_CUTOFFS_ANG",
    "EnvironmentSettings",
    "Environments",
    "classify_environments",
    "classify_environment_bonds",
    "check_product_classes",
    "definitions",
]

logger = logging.getLogger(__name__)

#: Bond cutoffs (Å) of the environment classes: the speciation table plus Li-Li (metal) and N-O.
ENVIRONMENT_CUTOFFS_ANG: dict[str, float] = {**DEFAULT_BOND_CUTOFFS_ANG, "Li-Li": 3.2, "N-O": 1.6}

#: Every class, grouped by element (the order of profiles, tables and plots).
CLASSES: tuple[str, ...] = (
    "Li_metal", "Li_ion",
    "phosphate_O", "oxide_Co", "Li2O", "O_other",
    "lipon_N", "Li3N", "N_other", "NO_x",
    "phosphate_P", "reduced_P", "P_P", "Li3P", "P_other",
    "thiophosphate_S", "polysulfide_S", "Li2S", "S_other",
    "Co_oct", "Co_reduced",
    "other",
)  # fmt: skip

#: Element(s) each class can hold (``NO_x`` holds N and O; ``other`` any element outside the table).
CLASS_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Li_metal": ("Li",), "Li_ion": ("Li",),
    "phosphate_O": ("O",), "oxide_Co": ("O",), "Li2O": ("O",), "O_other": ("O",),
    "lipon_N": ("N",), "Li3N": ("N",), "N_other": ("N",), "NO_x": ("N", "O"),
    "phosphate_P": ("P",), "reduced_P": ("P",), "P_P": ("P",), "Li3P": ("P",), "P_other": ("P",),
    "thiophosphate_S": ("S",), "polysulfide_S": ("S",), "Li2S": ("S",), "S_other": ("S",),
    "Co_oct": ("Co",), "Co_reduced": ("Co",),
    "other": (),
}  # fmt: skip

#: Elements with classes of their own.
RECOGNISED_ELEMENTS: tuple[str, ...] = ("Li", "O", "N", "P", "S", "Co")

#: One-line definitions (written into the JSON ``definitions`` block).
CLASS_DEFINITIONS: dict[str, str] = {
    "Li_metal": "Li with <= li_metal_max_anions O/N/S/P neighbours and >= li_metal_min_li Li neighbours (Li-Li "
                "cutoff) that also have <= li_metal_max_anions anion neighbours (and more of them than anions)",
    "Li_ion": "any other Li (ionic environment or too few Li neighbours for metal)",
    "phosphate_O": "O bonded to >= 1 P (subtype Onb/Ob/O_over)",
    "oxide_Co": "O bonded to Co and to no P",
    "Li2O": "O bonded to no P, Co or N and to >= min_li_neighbours Li",
    "O_other": "any other O",
    "lipon_N": "N bonded to >= 1 P (subtype Na/Nd/Nt/N_over)",
    "Li3N": "N bonded to no P or O and to >= min_li_neighbours Li",
    "N_other": "any other N",
    "NO_x": "N or O in an N-O bond (N-O cutoff) and bonded to no P",
    "phosphate_P": "P with >= 4 O/N/S ligands (subtype Qn)",
    "reduced_P": "P with 1-3 O/N/S ligands and no P-P bond (subtype Qn)",
    "P_P": "P with < 4 ligands and >= 1 P-P bond",
    "Li3P": "P with no O/N/S ligand, no P-P bond and >= min_li_neighbours Li",
    "P_other": "any other P",
    "thiophosphate_S": "S bonded to >= 1 P",
    "polysulfide_S": "S bonded to >= 1 S and to no P",
    "Li2S": "S bonded to no P or S and to >= min_li_neighbours Li",
    "S_other": "any other S",
    "Co_oct": "Co with >= co_oct_min_o O neighbours (CoO6)",
    "Co_reduced": "Co with fewer O neighbours (reduced or surface Co)",
    "other": "atoms of elements without classes (not Li, O, N, P, S, Co)",
}

#: Classes that mark an interphase by default (``Li2S`` left out: it is a cathode in tfbsim's cells).
PRODUCT_CLASSES: tuple[str, ...] = (
    "Li2O", "Li3N", "Li3P", "reduced_P", "P_P", "polysulfide_S", "thiophosphate_S", "NO_x", "Co_reduced",
)  # fmt: skip

#: Phase of each class, for layer detection; ``None`` = no vote (Li_ion sits in every ionic phase).
PHASE_OF_CLASS: dict[str, str | None] = {
    "Li_metal": "Li_metal", "Li_ion": None,
    "phosphate_O": "phosphate", "phosphate_P": "phosphate", "lipon_N": "phosphate",
    "oxide_Co": "LiCoO2", "Co_oct": "LiCoO2", "Co_reduced": "CoO_reduced",
    "Li2O": "Li2O", "Li3N": "Li3N", "Li3P": "Li3P", "Li2S": "Li2S",
    "reduced_P": "reduced_P", "P_P": "P_P", "NO_x": "NO_x",
    "thiophosphate_S": "thiophosphate", "polysulfide_S": "polysulfide",
    "O_other": "other", "N_other": "other", "P_other": "other", "S_other": "other", "other": "other",
}  # fmt: skip

#: Formula units counted by the census: formula -> the class whose atoms (one per formula unit) it counts.
FORMULA_UNITS: dict[str, str] = {"Li2O": "Li2O", "Li3N": "Li3N", "Li3P": "Li3P", "Li2S": "Li2S"}

_COUNT_ELEMENTS = ("Li", "O", "N", "P", "S", "Co")
_CLASS_INDEX = {name: k for k, name in enumerate(CLASSES)}


@dataclass(frozen=True)
class EnvironmentSettings:
    """Cutoffs and thresholds of the environment classes (see the module docstring for the defaults).

    Parameters
    ----------
    cutoffs_ang
        Overrides of :data:`ENVIRONMENT_CUTOFFS_ANG` (``{"Li-Li": 3.3}``, ``["P-O=2.1"]``); resolved into the
        full table ``{"P-O": 2.0, ...}`` (Å).
    li_metal_min_li, li_metal_max_anions
        Li_metal: at least this many Li neighbours and at most this many anion neighbours.
    min_li_neighbours
        Li neighbours an anion needs to count as Li2O / Li3N / Li3P / Li2S.
    co_oct_min_o
        O neighbours of a Co_oct.

    Raises
    ------
    ConfigError
        Unknown pair or element, non-positive cutoff, negative or non-integer threshold.
    """

    cutoffs_ang: dict = field(default_factory=dict)
    li_metal_min_li: int = 4
    li_metal_max_anions: int = 1
    min_li_neighbours: int = 2
    co_oct_min_o: int = 6

    def __post_init__(self) -> None:
        table = dict(ENVIRONMENT_CUTOFFS_ANG)
        for (a, b), value in parse_cutoffs(self.cutoffs_ang or {}).items():
            name = _known_pair(a, b)
            table[name] = value
        object.__setattr__(self, "cutoffs_ang", table)
        for name in ("li_metal_min_li", "li_metal_max_anions", "min_li_neighbours", "co_oct_min_o"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.li_metal_min_li < 1:
            raise ConfigError("li_metal_min_li must be at least 1 (a metal atom has metal neighbours)")

    @classmethod
    def from_any(cls, settings: EnvironmentSettings | Mapping | None = None, *,
                 cutoffs: Mapping | Iterable[str] | None = None) -> EnvironmentSettings:
        """Settings from an instance, a mapping of thresholds (unknown keys rejected) and/or cutoffs."""
        if isinstance(settings, EnvironmentSettings):
            if cutoffs:
                merged = dict(settings.cutoffs_ang)
                merged.update({pair_label(a, b): v for (a, b), v in parse_cutoffs(cutoffs).items()})
                return cls(**{**asdict(settings), "cutoffs_ang": merged})
            return settings
        values = dict(settings or {})
        allowed = {"cutoffs_ang", "li_metal_min_li", "li_metal_max_anions", "min_li_neighbours", "co_oct_min_o"}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown environment threshold(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        if cutoffs:
            if "cutoffs_ang" in values:
                raise ConfigError("give the cutoffs once: either cutoffs=... or thresholds['cutoffs_ang']")
            values["cutoffs_ang"] = cutoffs if isinstance(cutoffs, Mapping) else _cli_cutoffs(cutoffs)
        return cls(**values)

    def to_dict(self) -> dict:
        """JSON-ready copy (cutoffs in Å)."""
        return asdict(self)


def _cli_cutoffs(items: Iterable[str]) -> dict[str, float]:
    return {pair_label(a, b): v for (a, b), v in parse_cutoffs(list(items)).items()}


def _known_pair(a: str, b: str) -> str:
    name = pair_label(a, b)
    for candidate in (f"{a}-{b}", f"{b}-{a}"):
        if candidate in ENVIRONMENT_CUTOFFS_ANG:
            return candidate
    raise ConfigError(
        f"unknown cutoff pair {name} for the interphase classes; it uses {', '.join(ENVIRONMENT_CUTOFFS_ANG)}"
    )


@dataclass(frozen=True)
class Environments:
    """Local-environment class of every atom of one frame.

    Attributes
    ----------
    symbols : numpy.ndarray of str, shape (n_atoms,)
    code : numpy.ndarray of int, shape (n_atoms,)
        Index of each atom's class in :data:`CLASSES`.
    subtype : numpy.ndarray of str, shape (n_atoms,)
        ``Na``/``Nd``/``Nt`` for lipon_N, ``Onb``/``Ob`` for phosphate_O, ``Q0``...``Q4`` for phosphate_P and
        reduced_P, the polyhedron label (``O4``, ``O3N``...) for Li_ion, ``""`` otherwise.
    neighbours : dict[str, numpy.ndarray]
        Bonded Li, O, N, P, S and Co neighbours of every atom (periodic images count).
    speciation : AtomClasses
        The speciation of :mod:`tfbsim.analysis.speciation` from the same bonds.
    """

    symbols: np.ndarray
    code: np.ndarray
    subtype: np.ndarray
    neighbours: dict
    speciation: AtomClasses

    @property
    def label(self) -> np.ndarray:
        """Class name of every atom (str array)."""
        return np.asarray(CLASSES, dtype=object)[self.code].astype(str)

    def indices(self, name: str) -> np.ndarray:
        """Indices of the atoms of class ``name``."""
        if name not in _CLASS_INDEX:
            raise ConfigError(f"unknown class {name!r}; classes: {', '.join(CLASSES)}")
        return np.flatnonzero(self.code == _CLASS_INDEX[name])

    def counts(self, mask: np.ndarray | None = None) -> dict[str, int]:
        """Number of (selected) atoms in every class, ``{class: count}`` in :data:`CLASSES` order."""
        code = self.code if mask is None else self.code[np.asarray(mask, dtype=bool)]
        values = np.bincount(code, minlength=len(CLASSES))
        return {name: int(values[k]) for k, name in enumerate(CLASSES)}


def classify_environments(
    atoms: Atoms,
    settings: EnvironmentSettings | Mapping | None = None,
    *,
    cutoffs: Mapping | Iterable[str] | None = None,
    pbc: bool | Iterable[bool] | None = None,
) -> Environments:
    """Local-environment class of every atom of ``atoms`` (see the module docstring).

    Parameters
    ----------
    atoms
        One frame; periodic boundaries from ``atoms.pbc`` unless ``pbc`` is given.
    settings
        :class:`EnvironmentSettings` or a mapping of its thresholds.
    cutoffs
        Bond-cutoff overrides (Å), e.g. ``{"Li-Li": 3.3}``.

    Examples
    --------
    >>> from tfbsim.structures.crystals import build_crystal
    >>> env = classify_environments(build_crystal("li2o"))
    >>> env.counts()["Li2O"], env.counts()["Li_ion"]
    (4, 8)
    """
    cfg = EnvironmentSettings.from_any(settings, cutoffs=cutoffs)
    bl = bonds(atoms, cfg.cutoffs_ang, pbc=pbc)
    return classify_environment_bonds(bl, cfg)


def classify_environment_bonds(bl: BondList, settings: EnvironmentSettings | None = None) -> Environments:
    """Classes from a precomputed :class:`~tfbsim.analysis.neighbours.BondList` (cut with the settings' table)."""
    cfg = settings or EnvironmentSettings()
    sym = np.asarray(bl.symbols).astype(str)
    counts = bl.count_matrix(_COUNT_ELEMENTS)
    nb = {el: counts[:, e] for e, el in enumerate(_COUNT_ELEMENTS)}
    spec = classify_bonds(bl)
    n = len(sym)
    code = np.full(n, _CLASS_INDEX["other"], dtype=np.int64)

    def assign(mask: np.ndarray, rules: list[tuple[str, np.ndarray]], fallback: str) -> None:
        left = mask.copy()
        for name, cond in rules:
            hit = left & cond
            code[hit] = _CLASS_INDEX[name]
            left &= ~hit
        code[left] = _CLASS_INDEX[fallback]

    li_rich = nb["Li"] >= cfg.min_li_neighbours
    anions = nb["O"] + nb["N"] + nb["S"] + nb["P"]
    # Li_metal: anion-poor Li with enough anion-poor Li neighbours (two passes over the Li-Li bonds)
    poor = (sym == "Li") & (anions <= cfg.li_metal_max_anions)
    src, dst, _, _ = bl.directed()
    li_li = poor[src] & poor[dst]
    metal_nb = np.bincount(src[li_li], minlength=n)
    metal = poor & (metal_nb >= cfg.li_metal_min_li) & (metal_nb > anions)
    assign(sym == "Li", [("Li_metal", metal)], "Li_ion")
    assign(sym == "O", [("phosphate_O", nb["P"] > 0), ("oxide_Co", nb["Co"] > 0), ("NO_x", nb["N"] > 0),
                        ("Li2O", li_rich)], "O_other")
    assign(sym == "N", [("lipon_N", nb["P"] > 0), ("NO_x", nb["O"] > 0), ("Li3N", li_rich)], "N_other")
    ligands = nb["O"] + nb["N"] + nb["S"]
    assign(sym == "P", [("phosphate_P", ligands >= 4), ("P_P", nb["P"] > 0), ("reduced_P", ligands > 0),
                        ("Li3P", li_rich)], "P_other")
    assign(sym == "S", [("thiophosphate_S", nb["P"] > 0), ("polysulfide_S", nb["S"] > 0), ("Li2S", li_rich)],
           "S_other")
    assign(sym == "Co", [("Co_oct", nb["O"] >= cfg.co_oct_min_o)], "Co_reduced")

    subtype = np.full(n, "", dtype=object)
    with_sub = np.isin(code, [_CLASS_INDEX[c] for c in ("lipon_N", "phosphate_O", "phosphate_P", "reduced_P",
                                                         "Li_ion")])
    subtype[with_sub] = spec.label[with_sub]
    return Environments(symbols=sym, code=code, subtype=subtype.astype(str), neighbours=nb, speciation=spec)


def definitions(settings: EnvironmentSettings, product_classes: Iterable[str]) -> dict:
    """The ``definitions`` block of the JSON output: classes, products, cutoffs and thresholds."""
    return {
        "classes": dict(CLASS_DEFINITIONS),
        "class_elements": {k: list(v) for k, v in CLASS_ELEMENTS.items()},
        "product_classes": list(product_classes),
        "phase_of_class": dict(PHASE_OF_CLASS),
        "formula_units": {f: f"atoms of class {c} (its anion: one per formula unit)"
                          for f, c in FORMULA_UNITS.items()},
        "cutoffs_ang": dict(settings.cutoffs_ang),
        "thresholds": {k: v for k, v in settings.to_dict().items() if k != "cutoffs_ang"},
    }


def check_product_classes(product_classes: Iterable[str] | None) -> tuple[str, ...]:
    """Validate a product-class list (default :data:`PRODUCT_CLASSES`)."""
    if product_classes is None:
        return PRODUCT_CLASSES
    names = tuple(dict.fromkeys(str(c) for c in product_classes))
    bad = [c for c in names if c not in _CLASS_INDEX]
    if bad:
        raise ConfigError(f"unknown product class(es) {', '.join(bad)}; classes: {', '.join(CLASSES)}")
    if not names:
        raise ConfigError("product_classes is empty; name at least one class (e.g. Li2O)")
    return names
