"""Profiles along an interface normal: axis checks, periodic binning and periodic runs of bins.

An interface cell stacks its phases along one cell vector (the *stacking vector*, normally ``c``) while the
two other vectors span the interface plane. Profiles along the Cartesian axis ``x``, ``y`` or ``z`` are slices
of the periodic cell only when the two in-plane cell vectors have **no component along that axis**: then every
plane normal to the axis is a lattice plane, a position's height is ``s * L`` (``s`` the fractional coordinate
along the stacking vector, ``L`` the stacking vector's component along the axis) and wrapping along the
stacking vector wraps the height. With a tilted in-plane vector, moving by one in-plane period changes the
height, so one slab of the profile would mix layers from different depths; :func:`check_normal_axis` rejects
such cells and says how to fix them. The stacking vector itself may be tilted (a monoclinic ``c``).

Bins are fixed in the fractional coordinate ``s`` (``n_bins`` equal slices), so a cell that breathes along the
axis (NPT) keeps the same bins; their edges in Å use the mean length over the analysed frames.

:func:`periodic_runs` finds runs of consecutive bins that wrap through the cell boundary, and
:func:`fill_states` fills bins without information from their nearest neighbours (gaps narrower than a limit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import AnalysisError, ConfigError, TrajectoryError

__all__ = ["AXES", "axis_index", "check_normal_axis", "fractional_height", "n_bins_for",
           "periodic_runs", "fill_states", "run_gap", "UNKNOWN", "EMPTY"]

AXES = ("x", "y", "z")
#: State of a bin with atoms but no vote (filled from the nearest decided bin).
UNKNOWN = -1
#: State of an empty bin (filled from the nearest decided bin when the empty run is short enough).
EMPTY = -2
_TILT_TOL_ANG = 1e-4


def axis_index(axis: str | int) -> int:
    """``"x"``/``"y"``/``"z"`` (or 0/1/2) -> 0/1/2."""
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and 0 <= int(axis) <= 2:
        return int(axis)
    key = str(axis).strip().lower()
    if key not in AXES:
        raise ConfigError(f"axis must be x, y or z (the interface normal), got {axis!r}")
    return AXES.index(key)


def check_normal_axis(
    cell: np.ndarray, pbc: Sequence[bool] | np.ndarray, k: int, *, where: str = ""
) -> tuple[float, float]:
    """Check that Cartesian axis ``k`` is a valid interface normal of ``cell``; return ``(length_ang, area_ang2)``.

    Raises
    ------
    TrajectoryError
        The cell is not periodic along the axis, the in-plane cell vectors have a component along it, or the
        stacking vector has none (see the module docstring).
    """
    name = AXES[k]
    at = f" ({where})" if where else ""
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if not pbc[k]:
        raise TrajectoryError(
            f"the trajectory is not periodic along {name}{at} (pbc = {pbc.tolist()}): a profile along the "
            f"interface normal bins the periodic cell, and without periodicity along {name} there is no cell "
            f"length to bin. Store the cell with pbc True along {name} (a vacuum gap is fine) or pick the "
            "periodic stacking axis with --axis"
        )
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3) or not np.isfinite(cell).all():
        raise TrajectoryError(f"the frame has no valid 3x3 cell{at}; store the cell with the trajectory")
    others = [j for j in range(3) if j != k]
    tilt = np.abs(cell[others, k])
    if (tilt > _TILT_TOL_ANG).any():
        j = others[int(np.argmax(tilt))]
        raise TrajectoryError(
            f"the cell vector {'abc'[j]} = {np.round(cell[j], 4).tolist()} Å has a component of "
            f"{cell[j, k]:.4g} Å along {name}{at}, so planes normal to {name} are not lattice planes and a "
            f"{name}-profile would mix layers from different depths through the periodic images. The interface "
            f"normal must be perpendicular to the two in-plane cell vectors: re-orient the cell (e.g. slabs "
            f"from `tfbsim build slab`, or ase.build.cut / a rotation putting the in-plane vectors in the plane "
            f"normal to {name}) or choose --axis along the stacking direction"
        )
    length = float(cell[k, k])
    if not length > _TILT_TOL_ANG:
        raise TrajectoryError(
            f"the stacking cell vector {'abc'[k]} has component {length:.4g} Å along {name}{at}; it must point "
            f"along +{name} (a right-handed cell with the stacking vector last along the normal)"
        )
    area = float(np.linalg.norm(np.cross(cell[others[0]], cell[others[1]])))
    return length, area


def n_bins_for(length_ang: float, bin_ang: float) -> int:
    """Number of equal bins of about ``bin_ang`` across ``length_ang``; at least 2."""
    if not (isinstance(bin_ang, (int, float)) and np.isfinite(bin_ang) and bin_ang > 0):
        raise ConfigError(f"bin width must be a positive length in Å, got {bin_ang!r}")
    if bin_ang > length_ang / 2.0:
        raise AnalysisError(
            f"bin width {bin_ang:g} Å is larger than half the cell along the normal ({length_ang:.4g} Å): the "
            f"profile needs at least two bins; use --bin-ang {length_ang / 2.0:.3g} or less (about 1 Å resolves "
            "atomic layers)"
        )
    return max(2, int(round(length_ang / bin_ang)))


def fractional_height(positions: np.ndarray, cell: np.ndarray, k: int) -> np.ndarray:
    """Fractional coordinate along cell vector ``k``, wrapped into [0, 1)."""
    frac = np.linalg.solve(np.asarray(cell, float).T, np.asarray(positions, float).T)[k]
    s = frac - np.floor(frac)
    s[s >= 1.0] = 0.0  # -1e-17 wraps to 1.0 in floating point
    return s


def periodic_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a periodic 1-D mask as ``(start, length)``; a run may wrap (start + length > n).

    Every True bin -> ``[(0, n)]``; no True bin -> ``[]``.
    """
    mask = np.asarray(mask, dtype=bool)
    n = len(mask)
    if not mask.any():
        return []
    if mask.all():
        return [(0, n)]
    shift = int(np.flatnonzero(~mask)[0])  # rotate so that the array starts with a False bin
    rolled = np.roll(mask, -shift).astype(np.int8)
    edges = np.diff(np.concatenate([[0], rolled, [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int((s + shift) % n), int(e - s)) for s, e in zip(starts, stops)]


def fill_states(states: np.ndarray, max_gap_bins: int) -> np.ndarray:
    """Fill :data:`UNKNOWN` bins, and :data:`EMPTY` runs up to ``max_gap_bins`` long, from the nearest decided bin.

    Decided bins have a state >= 0. Longer empty runs (vacuum) stay :data:`EMPTY`. Distances are periodic; a
    bin equally far from two different states takes the one on its left. Without any decided bin, unknown bins
    stay :data:`UNKNOWN`.
    """
    states = np.asarray(states, dtype=np.int64).copy()
    n = len(states)
    for start, length in periodic_runs(states == EMPTY):
        if length <= max_gap_bins:
            idx = (start + np.arange(length)) % n
            states[idx] = UNKNOWN
    known = np.flatnonzero(states >= 0)  # decided bins; long EMPTY runs stay EMPTY and give nothing
    if len(known) == 0:
        return states
    ext = np.concatenate([known - n, known, known + n])
    idx = np.arange(n)
    right = ext[np.searchsorted(ext, idx, side="left")]
    left = ext[np.searchsorted(ext, idx, side="right") - 1]
    take_left = (idx - left) <= (right - idx)
    source = np.where(take_left, left, right) % n
    todo = states == UNKNOWN
    out = states.copy()
    out[todo] = states[source[todo]]
    return out


def run_gap(a: tuple[int, int], b: tuple[int, int], n: int) -> int:
    """Number of bins between periodic runs ``a`` and ``b`` (0 when they touch or overlap), either way round."""
    a_end = a[0] + a[1]
    b_end = b[0] + b[1]
    up = (b[0] - a_end) % n      # from the end of a to the start of b
    down = (a[0] - b_end) % n    # from the end of b to the start of a
    return int(min(up, down))
