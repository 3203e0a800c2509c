"""Mean-squared-displacement kernels: windowed MSD over all time origins by FFT, and frame-to-frame unwrapping.

These are plain numpy functions on in-memory arrays of the *selected* atoms; :mod:`tfbsim.analysis.diffusion`
streams a trajectory into such an array and calls them.

Algorithm (per atom ``i`` and Cartesian component, ``F`` frames, lag ``m`` in frames)
-----------------------------------------------------------------------------------
The sum of squared displacements over every time origin ``t0`` is

=====================================================  =======================================================
equation                                               code
=====================================================  =======================================================
``S(m) = sum_t0 h(t0) [x(t0+m) - x(t0)]^2``            ``sums`` (``t0 = 0 .. F-1-m``)
``      = A(m) + B(m) - 2 C(m)``
``A(m) = sum_t0 h(t0) x(t0+m)^2``                      cross-correlation of ``h`` and ``x^2`` (FFT)
``B(m) = sum_t0 h(t0) x(t0)^2``                        cumulative sum of ``h x^2``
``C(m) = sum_t0 h(t0) x(t0) x(t0+m)``                  cross-correlation of ``h x`` and ``x`` (FFT)
``n(m) = sum_t0 h(t0)``                                ``counts``: number of origins that contribute
=====================================================  =======================================================

``h(t0)`` is 1 for every origin in the plain windowed MSD (then ``A`` and ``B`` are cumulative sums and only
``C``, the autocorrelation, needs an FFT, as in Calandrini et al. 2011 / MDAnalysis' ``EinsteinMSD(fft=True)``),
or the indicator "atom inside a z-window at ``t0``" for layer-resolved MSDs. Every correlation is computed with
zero padding to at least ``2F - 1`` points, so the cost is O(F log F) per atom and component. Each atom's
coordinates are centred on their time average first (the MSD does not change, the round-off does).
"""

from __future__ import annotations

import numpy as np
from scipy import fft as _fft

__all__ = ["msd_sums", "lag_grid", "unwrap_positions_step", "fft_chunk_atoms", "mean_msd"]

#: Number of float64 values (rows x frames) processed in one FFT block: ~2 MB per temporary array, so the
#: handful of temporaries of a block stay far below the positions array itself.
_FFT_BLOCK_VALUES = 1 << 18


def fft_chunk_atoms(n_frames: int, n_components: int = 3) -> int:
    """Number of atoms processed in one FFT block (blocks of about ``_FFT_BLOCK_VALUES`` values)."""
    return max(1, _FFT_BLOCK_VALUES // (max(n_frames, 1) * n_components))


def lag_grid(n_frames: int, max_points: int = 1000) -> np.ndarray:
    """Lags (in frames) at which per-atom sums are kept for fitting: all lags, or ``max_points`` spread evenly.

    Lag 0 is excluded (its MSD is zero by definition).
    """
    if n_frames < 2:
        return np.zeros(0, dtype=int)
    if n_frames - 1 <= max_points:
        return np.arange(1, n_frames)
    return np.unique(np.round(np.linspace(1, n_frames - 1, max_points)).astype(int))


def _xcorr(a: np.ndarray, b: np.ndarray | None, n_frames: int, nfft: int) -> np.ndarray:
    """``out[r, m] = sum_t a[r, t] b[r, t + m]`` for ``m = 0 .. F-1`` (rows x time; ``b=None``: autocorrelation)."""
    fa = _fft.rfft(a, n=nfft, axis=-1)
    if b is None:
        power = fa.real**2
        power += fa.imag**2
        del fa
        return _fft.irfft(power, n=nfft, axis=-1)[:, :n_frames]
    fa = np.conj(fa, out=fa)
    fa *= _fft.rfft(b, n=nfft, axis=-1)
    return _fft.irfft(fa, n=nfft, axis=-1)[:, :n_frames]


def msd_sums(
    x: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sums of squared displacements over all time origins, per atom and component, by FFT.

    Parameters
    ----------
    x
        Unwrapped coordinates, shape ``(n_frames, n_atoms, n_components)`` (Å).
    weights
        Optional origin weights ``h``, shape ``(n_frames, n_atoms)`` (1 where the atom counts as an origin at
        that frame, e.g. inside a z-window; 0 elsewhere). ``None`` means every origin counts.

    Returns
    -------
    sums : numpy.ndarray, shape (n_frames, n_atoms, n_components)
        ``S(m)``: sum over origins of the squared displacement at lag ``m`` frames (Å²).
    counts : numpy.ndarray, shape (n_frames, n_atoms)
        ``n(m)``: number of origins contributing at lag ``m`` (``F - m`` without weights).
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (n_frames, n_atoms, n_components), got {x.shape}")
    n_frames, n_atoms, n_comp = x.shape
    nfft = _fft.next_fast_len(2 * n_frames - 1, real=True)
    # rows = (atom, component), time last; centred per row (the MSD does not change, the round-off does)
    xt = np.array(x.reshape(n_frames, n_atoms * n_comp).T, dtype=float)
    xt -= xt.mean(axis=1, keepdims=True)
    sq = xt * xt
    if weights is None:
        sums = _xcorr(xt, None, n_frames, nfft)
        sums *= -2.0
        cs = np.cumsum(sq, axis=1, out=sq)
        sums += cs[:, ::-1]  # B(m) = sum_{t <= F-1-m} x^2
        sums[:, 0] += cs[:, -1]  # A(m) = sum_{t >= m} x^2 = total - cs[m - 1]
        sums[:, 1:] += cs[:, -1:] - cs[:, :-1]
        counts = np.repeat((n_frames - np.arange(n_frames, dtype=float))[:, None], n_atoms, axis=1)
    else:
        h = np.asarray(weights, dtype=float)
        if h.shape != (n_frames, n_atoms):
            raise ValueError(f"weights must have shape {(n_frames, n_atoms)}, got {h.shape}")
        hr = np.repeat(h.T, n_comp, axis=0)  # (rows, F)
        sums = _xcorr(hr, sq, n_frames, nfft)  # A
        sums -= 2.0 * _xcorr(hr * xt, xt, n_frames, nfft)  # C
        sums += np.cumsum(hr * sq, axis=1)[:, ::-1]  # B
        counts = np.cumsum(h, axis=0)[::-1].copy()
    np.maximum(sums, 0.0, out=sums)  # FFT round-off can give -1e-15 at lag 0
    sums[:, 0] = 0.0
    return sums.T.reshape(n_frames, n_atoms, n_comp), counts


def mean_msd(x: np.ndarray) -> np.ndarray:
    """MSD over all time origins, averaged over atoms and summed over components, at every lag (Å²).

    Parameters
    ----------
    x
        Unwrapped coordinates, shape ``(n_frames, n_atoms, n_components)`` (Å).

    Returns
    -------
    numpy.ndarray, shape (n_frames,)
        ``MSD(m)`` for lags ``m = 0 .. n_frames - 1`` frames.
    """
    x = np.asarray(x)
    n_frames, n_atoms, _ = x.shape
    total = np.zeros(n_frames)
    chunk = fft_chunk_atoms(n_frames)
    for a0 in range(0, n_atoms, chunk):
        s, _ = msd_sums(x[:, a0:a0 + chunk])
        total += s.sum(axis=(1, 2))
    return total / (max(n_atoms, 1) * (n_frames - np.arange(n_frames)))


def unwrap_positions_step(
    previous_wrapped: np.ndarray,
    previous_unwrapped: np.ndarray,
    current_wrapped: np.ndarray,
    cell: np.ndarray,
    pbc: np.ndarray,
    inverse_cell: np.ndarray | None = None,
) -> tuple[np.ndarray, int, float]:
    """Unwrap one frame: add the minimum-image displacement from the previous frame.

    The displacement between consecutive stored frames is converted to fractional coordinates of the current
    cell, shifted by whole cell vectors along periodic axes into ``[-0.5, 0.5)`` and added to the previous
    unwrapped position (the "TOR" scheme of Bullerjahn et al. 2023, which stays valid with a changing cell).

    Parameters
    ----------
    previous_wrapped, previous_unwrapped, current_wrapped
        Positions (n, 3) in Å.
    cell
        Current cell (3, 3), vectors as rows, Å.
    pbc
        Periodicity per cell vector (3,).
    inverse_cell
        ``inv(cell)`` when the caller caches it (constant cell); must be given only for a periodic, non-singular
        cell.

    Returns
    -------
    current_unwrapped : numpy.ndarray, shape (n, 3)
    n_jumps : int
        Number of (atom, axis) boundary crossings corrected.
    max_fraction : float
        Largest remaining frame-to-frame displacement as a fraction of a cell vector (close to 0.5 means the
        frames are too far apart for unwrapping to be trusted).
    """
    delta = current_wrapped - previous_wrapped
    periodic = np.asarray(pbc, dtype=bool)
    if inverse_cell is None:
        if not periodic.any() or abs(np.linalg.det(cell)) < 1e-12:
            return previous_unwrapped + delta, 0, 0.0
        inverse_cell = np.linalg.inv(cell)
    frac = delta @ inverse_cell
    shifts = np.where(periodic, np.round(frac), 0.0)
    frac = frac - shifts
    max_fraction = float(np.abs(frac[:, periodic]).max()) if len(frac) else 0.0
    return previous_unwrapped + frac @ cell, int(np.count_nonzero(shifts)), max_fraction
