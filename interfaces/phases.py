"""Phases of a stack: parse ``"li:100,lipon,licoo2:104:x=0.5"``, validate names and facets, default sizes.

A stack is written bottom to top (the first phase sits at the bottom of the cell, z = 0). Each phase is

``name[:facet][:key=value ...]``

``name``
    A crystal of :mod:`tfbsim.structures.crystals` (``li``, ``li2s``, ``licoo2``, ``li3po4``, ``li3po4-beta``,
    ``li2po2n``, ``li3n``, ``li2o``, ``li3p``; aliases such as ``lco`` work) or the glass ``lipon``
    (amorphous LixPOyNz of :func:`tfbsim.structures.amorphous.build_lipon`; composition set separately).
``facet``
    Miller indices of the conventional cell: ``100``, ``1-10``, ``003`` (single digits, optional minus), or
    ``1_0_10`` for multi-digit indices. Only the facets in :data:`FACETS` (and their symmetry equivalents)
    are accepted; omitted: :data:`DEFAULT_FACETS`.
``x=0.5``
    Li fraction of LixCoO2 (``licoo2`` only; ordered Li-row removal in a 2×2×1 bulk supercell).
``term=N``
    Termination index (see ``tfbsim build slab --json``); default: the recommended one.

Phases may be separated by ``,`` or ``/``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import StructureError
from ..structures.crystal_data import CRYSTALS
from ..structures.crystals import get_crystal_spec
from ..structures.slabs import normalise_miller

__all__ = [
    "PhaseSpec",
    "parse_stack",
    "GLASSES",
    "FACETS",
    "DEFAULT_FACETS",
    "DEFAULT_CRYSTAL_THICKNESS_ANG",
    "DEFAULT_GLASS_THICKNESS_ANG",
    "DEFAULT_LIPON_COMPOSITION",
]

#: Amorphous phases (built by :func:`tfbsim.structures.amorphous.build_lipon`).
GLASSES = ("lipon",)
#: Composition of the glass when none is given: the AIMD/neutron-PDF LiPON of Lacivita et al., JACS 140,
#: 11029 (2018) (seeds-lipon.md §1a).
DEFAULT_LIPON_COMPOSITION = "Li2.94PO3.50N0.31"
#: Default thickness of a crystal phase (Å); raised to two repeat layers where that is thicker.
DEFAULT_CRYSTAL_THICKNESS_ANG = 12.0
#: Default thickness of the glass (Å).
DEFAULT_GLASS_THICKNESS_ANG = 15.0

#: Facets each crystal may be cut along (conventional-cell Miller indices as written by users). LiCoO2:
#: (003) lowest surface energy; (104), (101), (110) favourable textures for Li transport (seeds-lipon.md §4b,
#: seeds-cathodes.md §6.2); Li2S: (220)-related surface seen by HRTEM plus (111); the rest: low-index facets.
FACETS: dict[str, tuple[str, ...]] = {
    "li": ("100", "110", "111"),
    "licoo2": ("003", "104", "110", "101", "012"),
    "li2s": ("111", "110", "100"),
    "li2o": ("111", "110", "100"),
    "li3n": ("001", "100", "110"),
    "li3p": ("001", "100", "110"),
    "li3po4": ("100", "010", "001"),
    "li3po4-beta": ("100", "010", "001"),
    "li2po2n": ("100", "010", "001"),
}
#: Facet used when a crystal phase names none.
DEFAULT_FACETS: dict[str, str] = {
    "li": "100",
    "licoo2": "104",
    "li2s": "110",
    "li2o": "111",
    "li3n": "001",
    "li3p": "001",
    "li3po4": "001",
    "li3po4-beta": "010",
    "li2po2n": "001",
}

_DIGITS = re.compile(r"^(-?\d)(-?\d)(-?\d)(-?\d)?$")
_KEYS = ("x", "term", "order")


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of a stack.

    Attributes
    ----------
    name
        Canonical phase name (crystal name or ``lipon``).
    kind
        ``crystal`` or ``glass``.
    miller
        Facet as given (normalised by the gcd), ``None`` for a glass.
    facet_label
        The facet as users write it (``"003"``), ``None`` for a glass.
    li_fraction
        x of LixCoO2, or ``None``.
    ordering
        Delithiation ordering (``ordered`` or ``random``).
    termination
        Termination index, or ``None`` for the recommended one.
    thickness_ang
        Requested thickness (Å), ``None``: default.
    region
        Region label of its atoms (the name; a repeated name gets ``_2``, ``_3`` ...).
    """

    name: str
    kind: str
    miller: tuple[int, int, int] | None = None
    facet_label: str | None = None
    li_fraction: float | None = None
    ordering: str = "ordered"
    termination: int | None = None
    thickness_ang: float | None = None
    region: str = ""

    @property
    def is_glass(self) -> bool:
        """Whether the phase is amorphous."""
        return self.kind == "glass"


def _parse_miller(text: str, phase: str) -> tuple[int, int, int]:
    text = text.strip().strip("()")
    parts: list[str]
    if "_" in text or " " in text:
        parts = [p for p in re.split(r"[_\s]+", text) if p]
    else:
        match = _DIGITS.match(text)
        if match is None:
            raise StructureError(
                f"cannot read facet {text!r} of {phase}: write it as 100, 1-10, 003 or 1_0_10; valid facets of "
                f"{phase}: {', '.join(FACETS.get(phase, ()))}"
            )
        parts = [g for g in match.groups() if g is not None]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise StructureError(f"facet {text!r} of {phase} must be integers, e.g. 104 or 1_0_10") from None
    return normalise_miller(values)


def _equivalent(name: str, a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """Whether facets a and b of crystal ``name`` are symmetry-equivalent (pymatgen, conventional cell)."""
    if a == b:
        return True
    from pymatgen.core.surface import get_symmetrically_equivalent_miller_indices
    from pymatgen.io.ase import AseAtomsAdaptor

    from ..structures.crystals import build_crystal

    structure = AseAtomsAdaptor.get_structure(build_crystal(name))
    equivalents = {normalise_miller(m) for m in get_symmetrically_equivalent_miller_indices(structure, b)}
    return a in equivalents


def _check_facet(name: str, miller: tuple[int, int, int]) -> str:
    """Return the catalogue label the facet is equivalent to, or raise listing the valid facets."""
    labels = FACETS[name]
    normalised = {label: _parse_miller(label, name) for label in labels}
    for label, hkl in normalised.items():
        if hkl == miller:
            return label
    for label, hkl in normalised.items():
        if _equivalent(name, miller, hkl):
            return label
    raise StructureError(
        f"facet ({' '.join(map(str, miller))}) is not available for {name}; valid facets: {', '.join(labels)} "
        "(and their symmetry equivalents)"
    )


def _parse_token(token: str) -> PhaseSpec:
    pieces = [p.strip() for p in token.strip().split(":")]
    raw_name = pieces[0].lower()
    if not raw_name:
        raise StructureError(f"empty phase in stack entry {token!r}; write e.g. li:100,lipon,licoo2:104")
    facet_text: str | None = None
    options: dict[str, str] = {}
    for piece in pieces[1:]:
        if not piece:
            continue
        if "=" in piece:
            key, value = (s.strip().lower() for s in piece.split("=", 1))
            if key not in _KEYS:
                raise StructureError(f"unknown phase option {key!r} in {token!r}; valid: {', '.join(_KEYS)}")
            options[key] = value
        elif facet_text is None:
            facet_text = piece
        else:
            raise StructureError(f"two facets in stack entry {token!r}; write name:facet[:x=...][:term=...]")
    if raw_name in GLASSES:
        if facet_text is not None or options:
            raise StructureError(f"{raw_name} is amorphous: it takes no facet or options (got {token!r})")
        return PhaseSpec(name=raw_name, kind="glass")
    try:
        spec = get_crystal_spec(raw_name)
    except StructureError:
        valid = ", ".join([*CRYSTALS, *GLASSES])
        raise StructureError(f"unknown phase {raw_name!r} in the stack; valid phases: {valid}") from None
    name = spec.name
    miller = _parse_miller(facet_text if facet_text is not None else DEFAULT_FACETS[name], name)
    label = _check_facet(name, miller)
    li_fraction = None
    if "x" in options:
        try:
            li_fraction = float(options["x"])
        except ValueError:
            raise StructureError(f"x must be a number (Li fraction of LixCoO2), got {options['x']!r}") from None
        if not spec.delithiable:
            raise StructureError(f"x= (Li fraction) applies to licoo2 only, not {name}")
    termination = None
    if "term" in options:
        try:
            termination = int(options["term"])
        except ValueError:
            raise StructureError(f"term must be a termination index (integer), got {options['term']!r}") from None
    ordering = options.get("order", "ordered")
    return PhaseSpec(name=name, kind="crystal", miller=miller, facet_label=facet_text or label,
                     li_fraction=li_fraction, ordering=ordering, termination=termination)


def _check_thickness(value: Any, what: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise StructureError(f"thickness of {what} must be a positive length in Å, got {value!r}")
    return float(value)


def parse_stack(
    stack: str | Sequence[str | PhaseSpec],
    thickness_ang: float | Sequence[float] | dict[str, float] | None = None,
) -> list[PhaseSpec]:
    """Parse a stack description into :class:`PhaseSpec` objects, bottom to top.

    Parameters
    ----------
    stack
        ``"li:100,lipon,licoo2:104"`` (``,`` or ``/`` between phases) or a list of such tokens or
        :class:`PhaseSpec` objects.
    thickness_ang
        One thickness for every phase, one per phase (list), or ``{phase or region: thickness}`` (Å);
        ``None`` (or a missing entry) keeps the defaults.

    Raises
    ------
    StructureError
        Fewer than two phases, two neighbouring glasses, an unknown phase, facet or option, or a bad thickness.
    """
    if isinstance(stack, str):
        tokens: list[str | PhaseSpec] = [t for t in re.split(r"[,/]", stack) if t.strip()]
    else:
        tokens = list(stack)
    phases = [t if isinstance(t, PhaseSpec) else _parse_token(str(t)) for t in tokens]
    if len(phases) < 2:
        raise StructureError(
            f"a stack needs at least two phases (bottom to top), e.g. li:100,lipon; got {stack!r}"
        )
    for lower, upper in zip(phases, phases[1:]):
        if lower.is_glass and upper.is_glass:
            raise StructureError("two neighbouring glass phases make no interface; put a crystal between them")
    if all(p.is_glass for p in phases):  # pragma: no cover - excluded by the check above for len >= 2
        raise StructureError("a stack needs at least one crystal phase to define the lateral cell")
    seen: dict[str, int] = {}
    labelled = []
    for phase in phases:
        seen[phase.name] = seen.get(phase.name, 0) + 1
        region = phase.name if seen[phase.name] == 1 else f"{phase.name}_{seen[phase.name]}"
        labelled.append(replace(phase, region=region))
    phases = labelled
    if thickness_ang is None:
        return phases
    if isinstance(thickness_ang, dict):
        unknown = set(thickness_ang) - {p.name for p in phases} - {p.region for p in phases}
        if unknown:
            raise StructureError(f"thickness given for {sorted(unknown)}, which are not in the stack")
        return [
            replace(p, thickness_ang=_check_thickness(thickness_ang[key], p.region))
            if (key := p.region if p.region in thickness_ang else p.name) in thickness_ang else p
            for p in phases
        ]
    if isinstance(thickness_ang, (int, float)) and not isinstance(thickness_ang, bool):
        value = _check_thickness(thickness_ang, "every phase")
        return [replace(p, thickness_ang=value) for p in phases]
    values = list(thickness_ang)
    if len(values) != len(phases):
        raise StructureError(
            f"{len(values)} thicknesses for {len(phases)} phases; give one per phase (bottom to top), e.g. "
            f"{','.join(['12'] * len(phases))}"
        )
    return [replace(p, thickness_ang=_check_thickness(v, p.region)) for p, v in zip(phases, values)]
