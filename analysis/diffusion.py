"""Tracer diffusion from MD trajectories: windowed MSD (FFT), D with an honest error, Nernst–Einstein σ, D(z).

:class:`DiffusionAnalysis` follows the MDAnalysis analysis contract: settings are validated in ``__init__``,
:meth:`~DiffusionAnalysis.run` returns ``self``, results live in :attr:`~DiffusionAnalysis.results` (a
documented dataclass), and reading them before ``run()`` raises :class:`~tfbsim.errors.AnalysisError`.
Alternate constructors (:meth:`~DiffusionAnalysis.from_ase`, :meth:`~DiffusionAnalysis.from_universe`,
:meth:`~DiffusionAnalysis.from_file`) name the input type, as in kinisi; every number carries its unit in its
name. :class:`LayerDiffusion` resolves D by the atoms' z at the time origin (interfaces, slabs).

Pipeline of :meth:`DiffusionAnalysis.run`
----------------------------------------
1. Stream frames through :class:`~tfbsim.analysis.trajectory.Trajectory`; only the selected atoms' positions
   are kept (``n_frames × n_selected × 3`` float64), plus one frame of the drift-reference atoms.
2. Unwrap (if the source is not known to be unwrapped): minimum-image displacement between consecutive
   frames (:func:`~tfbsim.analysis.msd.unwrap_positions_step`); corrected boundary crossings are logged.
3. Remove the drift of the centre of mass of a reference group (default: the whole system, mass-weighted).
4. MSD over all time origins by FFT per atom and Cartesian component (:func:`~tfbsim.analysis.msd.msd_sums`).
5. Fit ``MSD = 2 d D t + c`` by GLS with the exact random-walk MSD covariance; error by a jackknife over atoms
   (:mod:`tfbsim.analysis.diffusion_fit` documents the estimator and its assumptions).
6. Nernst–Einstein conductivity with the propagated error (:mod:`tfbsim.analysis.transport`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AnalysisError, TrajectoryError
from .diffusion_fit import DiffusionFit, fit_msd_line
from .msd import fft_chunk_atoms, lag_grid, msd_sums, unwrap_positions_step
from .trajectory import Trajectory, TrajectoryLike
from .transport import carrier_charge_e, nernst_einstein_sigma_S_cm

__all__ = ["AXES", "DiffusionAnalysis", "DiffusionResults", "LayerDiffusion", "LayerDiffusionResults"]

logger = logging.getLogger(__name__)

#: MSD axis choices -> Cartesian component indices.
AXES: dict[str, tuple[int, ...]] = {"xyz": (0, 1, 2), "xy": (0, 1), "xz": (0, 2), "yz": (1, 2),
                                    "x": (0,), "y": (1,), "z": (2,)}
_GRID_POINTS = 500  # per-atom sums are kept at this many lags for (re)fitting


@dataclass(frozen=True)
class DiffusionResults:
    """Results of :class:`DiffusionAnalysis` (every name carries its unit).

    Attributes
    ----------
    species : str or None
        Selected species (comma-separated when several).
    axis : str
        MSD axes (``xyz``, ``xy``, ``z`` ...); ``fit`` and ``msd_ang2`` refer to these.
    n_atoms : int
        Atoms contributing to the MSD.
    n_frames : int
    dt_fs : float
        Time between stored frames (fs).
    temperature_k : float or None
    lag_ps : numpy.ndarray, shape (n_frames,)
        Lag times (ps).
    msd_ang2 : numpy.ndarray, shape (n_frames,)
        MSD along ``axis`` averaged over atoms and time origins (Å²).
    msd_components_ang2 : numpy.ndarray, shape (n_frames, 3)
        MSD of each Cartesian component x, y, z (Å²).
    fit : DiffusionFit
        D, its standard error, 95 % interval, fit window, log–log slope.
    volume_ang3 : float or None
        Volume holding the carriers (cell, region or z-window) (Å³).
    n_carriers : float
        Mean number of selected atoms in that volume.
    charge_e, haven_ratio : float or None, float
        Carrier charge (elementary charges) and Haven ratio used for σ.
    sigma_ne_S_cm, sigma_ne_stderr_S_cm : float or None
        Nernst–Einstein conductivity and its standard error (S cm⁻¹); None without temperature or volume.
    unwrapped_jumps : int
        Boundary crossings corrected by unwrapping (0 when the input was already unwrapped).
    drift_removed : bool
    """

    species: str | None
    axis: str
    n_atoms: int
    n_frames: int
    dt_fs: float
    temperature_k: float | None
    lag_ps: np.ndarray = field(repr=False)
    msd_ang2: np.ndarray = field(repr=False)
    msd_components_ang2: np.ndarray = field(repr=False)
    fit: DiffusionFit = field(repr=False)
    volume_ang3: float | None = None
    n_carriers: float = 0.0
    charge_e: float | None = None
    haven_ratio: float = 1.0
    sigma_ne_S_cm: float | None = None
    sigma_ne_stderr_S_cm: float | None = None
    unwrapped_jumps: int = 0
    drift_removed: bool = True

    @property
    def D_cm2_s(self) -> float:
        """Self-diffusion coefficient (cm² s⁻¹)."""
        return self.fit.D_cm2_s

    @property
    def D_stderr_cm2_s(self) -> float:
        """Standard error of D (cm² s⁻¹)."""
        return self.fit.D_stderr_cm2_s

    def to_dict(self, max_msd_points: int = 1000) -> dict[str, Any]:
        """The JSON record of ``tfbsim analyze diffusion`` (MSD thinned to ``max_msd_points`` lags)."""
        keep = np.unique(np.round(np.linspace(0, self.n_frames - 1, min(max_msd_points, self.n_frames))).astype(int))
        return {
            "species": self.species,
            "n_atoms": self.n_atoms,
            "temperature_k": self.temperature_k,
            "dt_fs": self.dt_fs,
            "n_frames": self.n_frames,
            "axis": self.axis,
            "D_cm2_s": self.fit.D_cm2_s,
            "D_stderr_cm2_s": self.fit.D_stderr_cm2_s,
            "fit_start_ps": self.fit.fit_start_ps,
            "fit_end_ps": self.fit.fit_end_ps,
            "loglog_slope": self.fit.loglog_slope,
            "msd": {"lag_ps": self.lag_ps[keep], "msd_ang2": self.msd_ang2[keep]},
            "volume_ang3": self.volume_ang3,
            "sigma_ne_S_cm": self.sigma_ne_S_cm,
            "sigma_ne_stderr_S_cm": self.sigma_ne_stderr_S_cm,
            "haven_ratio": self.haven_ratio,
        }


@dataclass
class _Loaded:
    positions: np.ndarray  # (F, n, 3) unwrapped, drift-corrected, Å
    cells: np.ndarray  # (F, 3, 3)
    jumps: int


class _MSDBase:
    """Settings, selection, streaming and unwrapping shared by the diffusion analyses."""

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
        if isinstance(trajectory, Trajectory) and frames is None and dt_fs is None:
            self._traj = trajectory
        else:
            self._traj = Trajectory(trajectory, frames=frames, dt_fs=dt_fs)
        traj = self._traj
        if traj.n_frames < 3:
            raise AnalysisError(f"an MSD needs at least 3 frames, the selection has {traj.n_frames}")
        times = traj.require_times()
        steps = np.diff(times)
        self.dt_ps = float(np.median(steps))
        if self.dt_ps <= 0 or not np.allclose(steps, self.dt_ps, rtol=1e-3, atol=1e-9):
            raise AnalysisError(
                "stored frames are not equally spaced in time (time steps from "
                f"{steps.min():g} to {steps.max():g} ps); select an evenly sampled range with frames= / --frames"
            )
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
        self.n_frames = traj.n_frames
        total_ps = (self.n_frames - 1) * self.dt_ps
        start = 0.1 * total_ps if fit_start_ps is None else float(fit_start_ps)
        start = max(start, self.dt_ps)
        end = float(fit_end_ps) if fit_end_ps is not None else (0.5 * total_ps if start < 0.5 * total_ps else total_ps)
        if start < 0 or end <= start:
            raise AnalysisError(f"the fit window must satisfy 0 <= fit_start_ps < fit_end_ps, got {start:g}–{end:g}")
        if end > total_ps * (1 + 1e-9):
            raise AnalysisError(f"fit_end_ps = {end:g} exceeds the trajectory length {total_ps:g} ps")
        self.fit_start_ps, self.fit_end_ps = start, end
        self._loaded: _Loaded | None = None

    # ---------------------------------------------------------------------------------- alternate constructors
    @classmethod
    def from_ase(cls, frames: Sequence[Any], *, dt_fs: float | None = None, **settings: Any):
        """From a list of :class:`ase.Atoms` (``dt_fs``: time between frames, unless ``info['time_ps']``)."""
        return cls(list(frames), dt_fs=dt_fs, **settings)

    @classmethod
    def from_universe(cls, universe: Any, **settings: Any):
        """From an MDAnalysis Universe (times from its timesteps unless ``dt_fs`` is given)."""
        return cls(universe, **settings)

    @classmethod
    def from_file(cls, path: Any, *, dt_fs: float | None = None, **settings: Any):
        """From a tfbsim H5MD file (time, temperature from its metadata) or any ASE-readable trajectory."""
        return cls(path, dt_fs=dt_fs, **settings)

    # ------------------------------------------------------------------------------------------- loading
    def _load(self, progress: bool = False) -> _Loaded:
        """Stream the trajectory into unwrapped, drift-corrected positions of the selected atoms."""
        traj = self._traj
        sel = self.indices
        n_frames = self.n_frames
        do_unwrap = (traj.unwrapped is not True) if self.unwrap is None else bool(self.unwrap)
        ref = None
        if self.remove_drift:
            ref = np.arange(traj.n_atoms) if self.drift_reference_indices is None else self.drift_reference_indices
        if ref is not None and len(ref) == traj.n_atoms:
            read_idx = None
            sel_pos, ref_pos = sel, None
        else:
            read_idx = sel if ref is None else np.union1d(sel, ref)
            sel_pos = np.searchsorted(read_idx, sel)
            ref_pos = None if ref is None else np.searchsorted(read_idx, ref)
        if ref is not None:
            from ase.data import atomic_masses

            masses = atomic_masses[traj.numbers[ref]]
            masses = masses / masses.sum()
        positions = np.empty((n_frames, len(sel), 3))
        cells = np.empty((n_frames, 3, 3))
        com = np.zeros((n_frames, 3))
        pbc = np.asarray(traj.pbc, dtype=bool)
        jumps, max_fraction = 0, 0.0
        prev_w = prev_u = None
        cached_cell, inverse = None, None
        iterator = traj.iter_positions(read_idx)
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=n_frames, desc="reading frames", unit="frame")
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
        return _Loaded(positions=positions, cells=cells, jumps=jumps)

    def _sums(self, loaded: _Loaded, weights: np.ndarray | None, progress: bool = False):
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
        if progress:
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

    def _fit(self, grid, grid_sums, grid_counts, axis: str, start: float, end: float) -> DiffusionFit:
        comps = list(AXES[axis])
        fit = fit_msd_line(
            grid, grid_sums[:, :, comps].sum(axis=2), grid_counts, dt_ps=self.dt_ps, n_frames=self.n_frames,
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


def _wrapped_z(positions: np.ndarray, cells: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """z of every atom and frame after wrapping into the cell along periodic axes (Å), shape (F, n)."""
    if not np.any(pbc) or np.any(np.abs(np.linalg.det(cells)) < 1e-12):
        return positions[:, :, 2].copy()
    frac = np.einsum("fnj,fjk->fnk", positions, np.linalg.inv(cells))
    frac[:, :, pbc] %= 1.0
    return np.einsum("fnj,fj->fn", frac, cells[:, :, 2])


def _cell_area_ang2(cells: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(np.cross(cells[:, 0], cells[:, 1]), axis=1)))


class DiffusionAnalysis(_MSDBase):
    """Tracer MSD and self-diffusion coefficient of a species (optionally per region or z-window).

    Parameters
    ----------
    trajectory
        Atoms list, ASE-readable file, tfbsim H5MD file, MDAnalysis Universe or :class:`Trajectory`.
    species
        Element(s) to analyse (default ``"Li"``); ``None`` for all atoms.
    indices
        Restrict to these atom indices (intersected with ``species`` and ``region``).
    region
        Only atoms with this ``region`` label.
    z_window_ang
        ``(z_lo, z_hi)`` in Å: a time origin counts for an atom only when its (wrapped) z lies in the window
        at that origin; the displacement that follows is counted even if the atom leaves.
    axis
        ``xyz`` (3-D), ``xy`` (in-plane), ``z`` (normal), ``x``, ``y``, ``xz``, ``yz``.
    frames
        Frame selection ``"START:STOP:STEP"``.
    dt_fs
        Time between stored frames (fs); required when the source carries no times.
    temperature_k
        Temperature for σ (K); default from the H5MD metadata.
    fit_start_ps, fit_end_ps
        Fit window (ps); default 10 %–50 % of the trajectory length.
    max_fit_lags
        At most this many lags enter the GLS fit.
    remove_drift
        Subtract the centre-of-mass drift of ``drift_reference_indices`` (default: all atoms, mass-weighted).
    unwrap
        ``None``: unwrap unless the source is known to be unwrapped; ``True``/``False`` forces it.
    haven_ratio
        Haven ratio H for σ = n q² D / (k_B T H) (1: tracer approximation).
    charge_e
        Carrier charge in e (default from the species, Li: +1).
    volume_ang3
        Volume holding the carriers (Å³); default: mean cell volume, region estimate, or z-window volume.

    Examples
    --------
    >>> res = DiffusionAnalysis("traj.h5md", species="Li").run().results   # doctest: +SKIP
    >>> res.D_cm2_s, res.D_stderr_cm2_s, res.fit.D_ci95_cm2_s                 # doctest: +SKIP
    """

    def __init__(self, trajectory: TrajectoryLike, *, z_window_ang: tuple[float, float] | None = None,
                 **settings: Any) -> None:
        super().__init__(trajectory, **settings)
        if z_window_ang is not None:
            lo, hi = (float(v) for v in z_window_ang)
            if hi <= lo:
                raise AnalysisError(f"z_window_ang must be (low, high) with low < high, got {z_window_ang}")
            z_window_ang = (lo, hi)
        self.z_window_ang = z_window_ang
        self._results: DiffusionResults | None = None
        self._grid: tuple | None = None

    @property
    def results(self) -> DiffusionResults:
        """The results (see :class:`DiffusionResults`); raises before :meth:`run`."""
        if self._results is None:
            raise AnalysisError("results are not available yet: call run() first")
        return self._results

    def run(self, *, progress: bool = False) -> DiffusionAnalysis:
        """Read the trajectory, compute the MSD and fit D; returns ``self``."""
        loaded = self._load(progress)
        weights = None
        n_carriers = float(len(self.indices))
        volume = self.volume_ang3
        if self.z_window_ang is not None:
            z = _wrapped_z(loaded.positions, loaded.cells, np.asarray(self._traj.pbc, dtype=bool))
            weights = ((z >= self.z_window_ang[0]) & (z < self.z_window_ang[1])).astype(float)
            n_carriers = float(weights.sum(axis=1).mean())
            if volume is None:
                volume = _cell_area_ang2(loaded.cells) * (self.z_window_ang[1] - self.z_window_ang[0])
        elif volume is None and self.region is not None:
            volume = self._region_volume(loaded.cells)
        elif volume is None and np.all(self._traj.pbc):
            volume = float(np.mean(np.abs(np.linalg.det(loaded.cells))))
        msd, _, grid, grid_sums, grid_counts = self._sums(loaded, weights, progress)
        fit = self._fit(grid, grid_sums, grid_counts, self.axis, self.fit_start_ps, self.fit_end_ps)
        self._grid = (grid, grid_sums, grid_counts)
        charge, sigma, sigma_err = self._sigma(fit, n_carriers, volume)
        comps = list(AXES[self.axis])
        self._results = DiffusionResults(
            species=self.species, axis=self.axis, n_atoms=fit.n_atoms, n_frames=self.n_frames,
            dt_fs=self.dt_ps * 1000.0,
            temperature_k=None if self.temperature_k is None else float(self.temperature_k),
            lag_ps=np.arange(self.n_frames) * self.dt_ps, msd_ang2=msd[:, comps].sum(axis=1),
            msd_components_ang2=msd, fit=fit, volume_ang3=volume, n_carriers=n_carriers, charge_e=charge,
            haven_ratio=self.haven_ratio, sigma_ne_S_cm=sigma, sigma_ne_stderr_S_cm=sigma_err,
            unwrapped_jumps=loaded.jumps, drift_removed=self.remove_drift,
        )
        logger.info("D = %.4g ± %.2g cm²/s from %d atoms", fit.D_cm2_s, fit.D_stderr_cm2_s, fit.n_atoms)
        return self

    def fit(self, *, fit_start_ps: float | None = None, fit_end_ps: float | None = None,
            axis: str | None = None) -> DiffusionFit:
        """Refit D over another window or axis without re-reading the trajectory (after :meth:`run`)."""
        if self._grid is None:
            raise AnalysisError("nothing to refit yet: call run() first")
        axis = self.axis if axis is None else axis
        if axis not in AXES:
            raise AnalysisError(f"unknown axis {axis!r}; choose one of {', '.join(AXES)}")
        start = self.fit_start_ps if fit_start_ps is None else fit_start_ps
        end = self.fit_end_ps if fit_end_ps is None else fit_end_ps
        return self._fit(*self._grid, axis, start, end)

    def _region_volume(self, cells: np.ndarray) -> float:
        """Estimate a region's volume: in-plane area × z-extent of all its atoms in the first frame."""
        first = self._traj.first()
        members = np.flatnonzero(self._traj.regions == self.region)
        z = _wrapped_z(first.positions[members][None], first.cell.array[None], np.asarray(first.pbc))[0]
        volume = _cell_area_ang2(cells) * float(z.max() - z.min())
        logger.warning(
            "the volume of region %r is estimated as area × z-extent of its atoms (%.4g Å³); pass volume_ang3 "
            "(--volume-ang3) for an exact Nernst–Einstein conductivity", self.region, volume,
        )
        return volume if volume > 0 else None


@dataclass(frozen=True)
class LayerDiffusionResults:
    """Results of :class:`LayerDiffusion`: D resolved by the atoms' z at the time origin.

    Attributes
    ----------
    z_edges_ang : numpy.ndarray, shape (L + 1,)
    z_centres_ang : numpy.ndarray, shape (L,)
    D_cm2_s, D_stderr_cm2_s : numpy.ndarray, shape (L,)
        NaN for layers without enough data.
    D_ci95_cm2_s : numpy.ndarray, shape (L, 2)
    n_atoms : numpy.ndarray of int, shape (L,)
        Atoms with at least one origin in the layer.
    occupancy : numpy.ndarray, shape (L,)
        Mean number of selected atoms in the layer.
    axis : str
    fits : list of DiffusionFit or None
    """

    z_edges_ang: np.ndarray
    z_centres_ang: np.ndarray
    D_cm2_s: np.ndarray
    D_stderr_cm2_s: np.ndarray
    D_ci95_cm2_s: np.ndarray
    n_atoms: np.ndarray
    occupancy: np.ndarray
    axis: str
    fits: list = field(repr=False, default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (no fit objects)."""
        return {"axis": self.axis, "z_edges_ang": self.z_edges_ang, "z_centres_ang": self.z_centres_ang,
                "D_cm2_s": self.D_cm2_s, "D_stderr_cm2_s": self.D_stderr_cm2_s,
                "D_ci95_cm2_s": self.D_ci95_cm2_s, "n_atoms": self.n_atoms, "occupancy": self.occupancy}


class LayerDiffusion(_MSDBase):
    """Layer-resolved diffusivity D(z) (interfaces): one MSD per z-layer, by the atom's z at the time origin.

    Parameters are those of :class:`DiffusionAnalysis` (default ``axis="xy"``, in-plane), plus ``z_edges_ang``
    (layer boundaries in Å, increasing). The trajectory is read once.
    """

    def __init__(self, trajectory: TrajectoryLike, *, z_edges_ang: Sequence[float], axis: str = "xy",
                 **settings: Any) -> None:
        super().__init__(trajectory, axis=axis, **settings)
        edges = np.asarray(z_edges_ang, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise AnalysisError("z_edges_ang must be at least two increasing values (layer boundaries, Å)")
        self.z_edges_ang = edges
        self._results: LayerDiffusionResults | None = None

    @property
    def results(self) -> LayerDiffusionResults:
        """The results (see :class:`LayerDiffusionResults`); raises before :meth:`run`."""
        if self._results is None:
            raise AnalysisError("results are not available yet: call run() first")
        return self._results

    def run(self, *, progress: bool = False) -> LayerDiffusion:
        """Read the trajectory once, then fit D in each layer; returns ``self``."""
        loaded = self._load(progress)
        z = _wrapped_z(loaded.positions, loaded.cells, np.asarray(self._traj.pbc, dtype=bool))
        n_layers = len(self.z_edges_ang) - 1
        d = np.full(n_layers, np.nan)
        err = np.full(n_layers, np.nan)
        ci = np.full((n_layers, 2), np.nan)
        n_atoms = np.zeros(n_layers, dtype=int)
        occupancy = np.zeros(n_layers)
        fits: list[DiffusionFit | None] = []
        for layer in range(n_layers):
            lo, hi = self.z_edges_ang[layer], self.z_edges_ang[layer + 1]
            weights = ((z >= lo) & (z < hi)).astype(float)
            occupancy[layer] = weights.sum(axis=1).mean()
            n_atoms[layer] = int(np.count_nonzero(weights.any(axis=0)))
            if n_atoms[layer] == 0:
                fits.append(None)
                continue
            _, _, grid, gs, gc = self._sums(loaded, weights)
            try:
                fit = self._fit(grid, gs, gc, self.axis, self.fit_start_ps, self.fit_end_ps)
            except AnalysisError as exc:
                logger.warning("layer %.3g–%.3g Å: no D (%s)", lo, hi, exc)
                fits.append(None)
                continue
            fits.append(fit)
            d[layer], err[layer], ci[layer] = fit.D_cm2_s, fit.D_stderr_cm2_s, fit.D_ci95_cm2_s
        centres = 0.5 * (self.z_edges_ang[1:] + self.z_edges_ang[:-1])
        self._results = LayerDiffusionResults(
            z_edges_ang=self.z_edges_ang, z_centres_ang=centres, D_cm2_s=d, D_stderr_cm2_s=err, D_ci95_cm2_s=ci,
            n_atoms=n_atoms, occupancy=occupancy, axis=self.axis, fits=fits,
        )
        return self
