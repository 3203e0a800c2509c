"""Shared machinery of the MSD analyses: settings, atom selection, streaming, unwrapping, FFT sums, GLS fit, σ.

:class:`MSDBase` (a :class:`~tfbsim.analysis.base.TrajectoryAnalysis`) validates the settings common to
:class:`~tfbsim.analysis.diffusion.DiffusionAnalysis` and :class:`~tfbsim.analysis.layer_diffusion.LayerDiffusion`,
selects the atoms, streams the trajectory into unwrapped, drift-corrected positions, computes per-atom MSD sums
on a lag grid, fits D (:mod:`tfbsim.analysis.diffusion_fit`) and the Nernst–Einstein conductivity
(:mod:`tfbsim.analysis.transport`). :func:`wrapped_z` and :func:`cell_area_ang2` are the geometry helpers of the
z-resolved analyses.

Frames and the time axis
------------------------
``run(start, stop, step)`` selects frames of the trajectory (within ``frames=`` of ``__init__``) with Python
slice semantics; the MSD is then computed over *those* frames only, as if they were the stored trajectory:

- every selected frame is a time origin, and the lag axis is ``lag_ps = k * dt_ps`` for ``k = 0 ...
  n_selected - 1``, where ``dt_ps`` is the time between consecutive *selected* frames (``step`` times the
  stored spacing); absolute times only enter through that spacing (the first selected frame is lag 0);
- the selected frames must be equally spaced in time and at least 3;
- the default fit window is 10 %–50 % of the selected span; a ``fit_end_ps`` beyond the selected span raises
  :class:`~tfbsim.errors.AnalysisError` (``__init__`` already checks it against the whole selection).

Unwrapping works between consecutive *selected* frames: a large ``step`` on wrapped input can miss boundary
crossings (a warning says so when frames are too far apart).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AnalysisError, TrajectoryError
from .base import Progress, TrajectoryAnalysis
from .diffusion_fit import DiffusionFit, fit_msd_line
from .msd import fft_chunk_atoms, lag_grid, msd_sums, unwrap_positions_step
from .trajectory import Trajectory, TrajectoryLike
from .transport import carrier_charge_e, nernst_einstein_sigma_S_cm

__all__ = ["AXES", "MSDBase"]

logger = logging.getLogger(__name__)


#: MSD axis choices -> Cartesian component indices.
AXES: dict[str, tuple[int, ...]] = {"xyz": (0, 1, 2), "xy": (0, 1), "xz": (0, 2), "yz": (1, 2),
                                    "x": (0,), "y": (1,), "z": (2,)}
_GRID_POINTS = 500  # per-atom sums are kept at this many lags for (re)fitting


@dataclass(frozen=True)
class _Window:
    """Time axis of the analysed frames: their number, spacing (ps) and the fit window (ps)."""

    n_frames: int
    dt_ps: float
    fit_start_ps: float
    fit_end_ps: float


@dataclass
class _Loaded:
    positions: np.ndarray  # (F, n, 3) unwrapped, drift-corrected, Å
    cells: np.ndarray  # (F, 3, 3)
    jumps: int
    extra_positions: np.ndarray | None = None  # (F', n_extra, 3): every ``extra_stride``-th frame, same drift
    extra_stride: int = 1


class MSDBase(TrajectoryAnalysis):
    """Settings, selection, streaming and unwrapping shared by the diffusion analyses.

    Parameters are documented on :class:`~tfbsim.analysis.diffusion.DiffusionAnalysis`; subclasses implement
    :meth:`_analyse` with :meth:`_window`, :meth:`_load`, :meth:`_sums` and :meth:`_fit`.
    """

    name = "reading frames"

    def __init__(
        self,
        trajectory: TrajectoryLike,
        *,
        species: str | Sequence[str] | None = "Li",
        indices: Sequence[int] | None = None,
        region: str | None = None,
        axis: str = "xyz",
        frames: str | slice | None = None,
        dt_fs: float | None = None,
        temperature_k: float | None = None,
        fit_start_ps: float | None = None,
        fit_end_ps: float | None = None,
        max_fit_lags: int = 32,
        remove_drift: bool = True,
        drift_reference_indices: Sequence[int] | None = None,
        unwrap: bool | None = None,
        haven_ratio: float = 1.0,
        charge_e: float | None = None,
        volume_ang3: float | None = None,
    ) -> None:
        if axis not in AXES:
            raise AnalysisError(f"unknown axis {axis!r}; choose one of {', '.join(AXES)}")
        if haven_ratio <= 0:
            raise AnalysisError(f"haven_ratio must be positive, got {haven_ratio}")
        if temperature_k is not None and temperature_k <= 0:
            raise AnalysisError(f"temperature_k must be positive, got {temperature_k}")
        if volume_ang3 is not None and volume_ang3 <= 0:
            raise AnalysisError(f"volume_ang3 must be positive, got {volume_ang3}")
        if max_fit_lags < 2:
            raise AnalysisError(f"max_fit_lags must be at least 2, got {max_fit_lags}")
        super().__init__(trajectory, frames=frames, dt_fs=dt_fs)
        traj = self._traj
        if indices is not None:
            sel = np.unique(np.asarray(indices, dtype=int))
            if sel.size and (sel.min() < 0 or sel.max() >= traj.n_atoms):
                raise AnalysisError(f"indices out of range for {traj.n_atoms} atoms")
            sel = np.intersect1d(sel, traj.select(species=species, region=region))
        else:
            sel = traj.select(species=species, region=region)
        if sel.size == 0:
            present = ", ".join(sorted(set(traj.symbols.tolist())))
            raise AnalysisError(
                f"the selection (species={species!r}, region={region!r}) holds no atoms; the trajectory has: {present}"
            )
        self.indices = sel
        self.species = species if (species is None or isinstance(species, str)) else ",".join(species)
        self.region = region
        self.axis = axis
        self.max_fit_lags = int(max_fit_lags)
        self.remove_drift = bool(remove_drift)
        if drift_reference_indices is not None:
            ref = np.unique(np.asarray(drift_reference_indices, dtype=int))
            if ref.size == 0 or ref.min() < 0 or ref.max() >= traj.n_atoms:
                raise AnalysisError("drift_reference_indices must be non-empty and within the atoms")
            self.drift_reference_indices: np.ndarray | None = ref
        else:
            self.drift_reference_indices = None
        self.unwrap = unwrap
        self.haven_ratio = float(haven_ratio)
        self.charge_e = charge_e
        self.volume_ang3 = volume_ang3
        self.temperature_k = temperature_k if temperature_k is not None else traj.metadata.get("temperature_k")
        self._fit_setting = (fit_start_ps, fit_end_ps)
        # the whole selection must allow an MSD and the fit window: bad settings fail here, not in run()
        window = self._window(traj)
        self.n_frames, self.dt_ps = window.n_frames, window.dt_ps
        self.fit_start_ps, self.fit_end_ps = window.fit_start_ps, window.fit_end_ps
        self._run_window: _Window | None = None

    # ---------------------------------------------------------------------------------- alternate constructors
    @classmethod
    def from_ase(cls, frames: Sequence[Any], *, dt_fs: float | None = None, **settings: Any):
        """From a list of :class:`ase.Atoms` (``dt_fs``: time between frames, unless ``info['time_ps']``).

        ``settings``: the keyword settings of ``__init__``.
        """
        return cls(list(frames), dt_fs=dt_fs, **settings)

    @classmethod
    def from_universe(cls, universe: Any, **settings: Any):
        """From an MDAnalysis Universe (times from its timesteps unless ``dt_fs`` is given).

        ``settings``: the keyword settings of ``__init__``.
        """
        return cls(universe, **settings)

    @classmethod
    def from_file(cls, path: Any, *, dt_fs: float | None = None, **settings: Any):
        """From a tfbsim H5MD file (time, temperature from its metadata) or any ASE-readable trajectory.

        ``settings``: the keyword settings of ``__init__``.
        """
        return cls(path, dt_fs=dt_fs, **settings)

    # ------------------------------------------------------------------------------------------ time axis
    def _window(self, frames: Trajectory) -> _Window:
        """Spacing and fit window of ``frames`` (see the module docstring); raises when they allow no MSD."""
        if frames.n_frames < 3:
            raise AnalysisError(f"an MSD needs at least 3 frames, the selection has {frames.n_frames}")
        times = frames.require_times()
        steps = np.diff(times)
        dt_ps = float(np.median(steps))
        if dt_ps <= 0 or not np.allclose(steps, dt_ps, rtol=1e-3, atol=1e-9):
            raise AnalysisError(
                "stored frames are not equally spaced in time (time steps from "
                f"{steps.min():g} to {steps.max():g} ps); select an evenly sampled range with frames= / --frames"
            )
        fit_start_ps, fit_end_ps = self._fit_setting
        total_ps = (frames.n_frames - 1) * dt_ps
        start = 0.1 * total_ps if fit_start_ps is None else float(fit_start_ps)
        start = max(start, dt_ps)
        if fit_end_ps is not None:
            end = float(fit_end_ps)
        else:
            end = 0.5 * total_ps if start < 0.5 * total_ps else total_ps
        if start < 0 or end <= start:
            raise AnalysisError(
                f"the fit window must satisfy 0 <= fit_start_ps < fit_end_ps, got {start:g}–{end:g}"
            )
        if end > total_ps * (1 + 1e-9):
            raise AnalysisError(f"fit_end_ps = {end:g} exceeds the trajectory length {total_ps:g} ps")
        return _Window(n_frames=frames.n_frames, dt_ps=dt_ps, fit_start_ps=start, fit_end_ps=end)

    # ------------------------------------------------------------------------------------------- loading
    def _load(self, frames: Trajectory, progress: Progress = False, extra_indices: np.ndarray | None = None,
              extra_max_frames: int = 1000) -> _Loaded:
        """Stream ``frames`` into unwrapped, drift-corrected positions of the selected atoms.

        ``extra_indices``: other atoms (e.g. the network formers) whose positions are kept too, at every
        ``stride``-th frame so that at most ``extra_max_frames`` frames are stored (``_Loaded.extra_*``).
        """
        traj = frames
        sel = self.indices
        n_frames = frames.n_frames
        extra = None if extra_indices is None or len(extra_indices) == 0 else np.asarray(extra_indices, dtype=int)
        stride = max(1, int(np.ceil(n_frames / max(extra_max_frames, 2))))
        do_unwrap = (traj.unwrapped is not True) if self.unwrap is None else bool(self.unwrap)
        ref = None
        if self.remove_drift:
            ref = np.arange(traj.n_atoms) if self.drift_reference_indices is None else self.drift_reference_indices
        if ref is not None and len(ref) == traj.n_atoms:
            read_idx = None
            sel_pos, ref_pos, extra_pos = sel, None, extra
        else:
            read_idx = sel if ref is None else np.union1d(sel, ref)
            if extra is not None:
                read_idx = np.union1d(read_idx, extra)
            sel_pos = np.searchsorted(read_idx, sel)
            ref_pos = None if ref is None else np.searchsorted(read_idx, ref)
            extra_pos = None if extra is None else np.searchsorted(read_idx, extra)
        if ref is not None:
            from ase.data import atomic_masses

            masses = atomic_masses[traj.numbers[ref]]
            masses = masses / masses.sum()
        positions = np.empty((n_frames, len(sel), 3))
        cells = np.empty((n_frames, 3, 3))
        com = np.zeros((n_frames, 3))
        n_extra_frames = (n_frames + stride - 1) // stride
        extra_out = None if extra is None else np.empty((n_extra_frames, len(extra), 3))
        pbc = np.asarray(traj.pbc, dtype=bool)
        jumps, max_fraction = 0, 0.0
        prev_w = prev_u = None
        cached_cell, inverse = None, None
        iterator = self._positions(frames, progress, indices=read_idx)
        k = -1
        for k, (pos, cell) in enumerate(iterator):
            if k >= n_frames:
                break
            if do_unwrap and prev_w is not None:
                if cached_cell is None or not np.array_equal(cell, cached_cell):
                    cached_cell = cell
                    singular = not pbc.any() or abs(np.linalg.det(cell)) < 1e-12
                    inverse = None if singular else np.linalg.inv(cell)
                if inverse is None:
                    cur, n_jump, frac = pos - prev_w + prev_u, 0, 0.0
                else:
                    cur, n_jump, frac = unwrap_positions_step(prev_w, prev_u, pos, cell, pbc, inverse)
                jumps += n_jump
                max_fraction = max(max_fraction, frac)
            else:
                cur = pos
            prev_w, prev_u = pos, cur
            positions[k] = cur[sel_pos]
            cells[k] = cell
            if extra_out is not None and k % stride == 0:
                extra_out[k // stride] = cur[extra_pos]
            if ref is not None:
                com[k] = masses @ (cur if ref_pos is None else cur[ref_pos])
        if k + 1 != n_frames:
            raise TrajectoryError(f"the trajectory yielded {k + 1} frames, expected {n_frames}; is the file truncated?")
        if jumps:
            logger.warning(
                "input positions are wrapped: unwrapped %d boundary crossings by the minimum-image displacement "
                "between consecutive frames (valid while no atom moves half a cell between stored frames)", jumps,
            )
        if do_unwrap and max_fraction > 0.3:
            logger.warning(
                "some atoms move %.2f of a cell vector between stored frames: unwrapping may miss boundary "
                "crossings; store frames more often", max_fraction,
            )
        if ref is not None:
            positions -= (com - com[0])[:, None, :]
            if extra_out is not None:
                extra_out -= (com[::stride] - com[0])[:, None, :]
        return _Loaded(positions=positions, cells=cells, jumps=jumps, extra_positions=extra_out, extra_stride=stride)

    def _sums(self, loaded: _Loaded, weights: np.ndarray | None, progress: Progress = False):
        """Mean MSD per component (F, 3), total counts (F,), and per-atom sums/counts on the lag grid."""
        pos = loaded.positions
        n_frames, n_atoms, _ = pos.shape
        grid = lag_grid(n_frames, _GRID_POINTS)
        grid_sums = np.empty((len(grid), n_atoms, 3))
        grid_counts = np.empty((len(grid), n_atoms))
        total = np.zeros((n_frames, 3))
        total_counts = np.zeros(n_frames)
        chunk = fft_chunk_atoms(n_frames)
        starts = range(0, n_atoms, chunk)
        if progress is True:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="MSD (FFT)", unit="block")
        for a0 in starts:
            part = slice(a0, min(a0 + chunk, n_atoms))
            w = None if weights is None else weights[:, part]
            s, c = msd_sums(pos[:, part], w)
            total += s.sum(axis=1)
            total_counts += c.sum(axis=1)
            grid_sums[:, part] = s[grid]
            grid_counts[:, part] = c[grid]
        with np.errstate(invalid="ignore", divide="ignore"):
            msd = np.where(total_counts[:, None] > 0, total / np.maximum(total_counts, 1)[:, None], np.nan)
        return msd, total_counts, grid, grid_sums, grid_counts

    def _fit(self, window: _Window, grid, grid_sums, grid_counts, axis: str, start: float,
             end: float) -> DiffusionFit:
        comps = list(AXES[axis])
        fit = fit_msd_line(
            grid, grid_sums[:, :, comps].sum(axis=2), grid_counts, dt_ps=window.dt_ps, n_frames=window.n_frames,
            n_dimensions=len(comps), fit_start_ps=start, fit_end_ps=end, max_fit_lags=self.max_fit_lags,
        )
        _check_fit(fit)
        return fit

    def _carrier_charge(self) -> float | None:
        if self.charge_e is not None:
            return float(self.charge_e)
        return carrier_charge_e(self.species)

    def _sigma(self, fit: DiffusionFit, n_carriers: float, volume: float | None):
        charge = self._carrier_charge()
        if self.temperature_k is None or volume is None or charge is None:
            missing = "temperature (temperature_k / --temperature-k)" if self.temperature_k is None else (
                "a cell volume (volume_ang3)" if volume is None else "the carrier charge (charge_e)")
            logger.warning("no Nernst–Einstein conductivity: %s is unknown", missing)
            return charge, None, None
        sigma, err = nernst_einstein_sigma_S_cm(
            fit.D_cm2_s, n_carriers=n_carriers, volume_ang3=volume, temperature_k=float(self.temperature_k),
            charge_e=charge, haven_ratio=self.haven_ratio, D_stderr_cm2_s=fit.D_stderr_cm2_s,
        )
        return charge, sigma, err


def _check_fit(fit: DiffusionFit) -> None:
    """Log the physics warnings a user must see about a fit."""
    if not (0.8 <= fit.loglog_slope <= 1.2):
        logger.warning(
            "the MSD is not linear in the fit window %.3g–%.3g ps (log–log slope %.2f; 1 = diffusive): the run may "
            "be too short or the fit start too early; set fit_start_ps / --fit-start-ps later",
            fit.fit_start_ps, fit.fit_end_ps, fit.loglog_slope,
        )
    if fit.fit_msd_ang2[-1] / fit.n_dimensions < 1.0:
        logger.warning(
            "atoms moved less than 1 Å per axis (MSD %.2g Å² at %.3g ps): D reflects vibrations rather than "
            "hops; run longer or hotter", fit.fit_msd_ang2[-1], fit.fit_end_ps,
        )


def wrapped_z(positions: np.ndarray, cells: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """z of every atom and frame after wrapping into the cell along periodic axes (Å), shape (F, n)."""
    if not np.any(pbc) or np.any(np.abs(np.linalg.det(cells)) < 1e-12):
        return positions[:, :, 2].copy()
    frac = np.einsum("fnj,fjk->fnk", positions, np.linalg.inv(cells))
    frac[:, :, pbc] %= 1.0
    return np.einsum("fnj,fj->fn", frac, cells[:, :, 2])


def cell_area_ang2(cells: np.ndarray) -> float:
    """Mean in-plane cell area |a × b| over the frames (Å²)."""
    return float(np.mean(np.linalg.norm(np.cross(cells[:, 0], cells[:, 1]), axis=1)))
