"""Tracer diffusion from MD trajectories: windowed MSD (FFT), D with an honest error, Nernst–Einstein σ, D(z).

:class:`DiffusionAnalysis` follows the analysis contract of :mod:`tfbsim.analysis.base`: settings are
validated in ``__init__``, :meth:`~DiffusionAnalysis.run` ``(start, stop, step, *, progress)`` returns ``self``,
results live in :attr:`~DiffusionAnalysis.results` (a :class:`DiffusionResults`, whose ``to_dict()`` is the JSON
record), and reading them before ``run()`` raises :class:`~tfbsim.errors.AnalysisError`. ``start/stop/step``
select frames; the time axis follows the selected frames (:mod:`tfbsim.analysis.diffusion_base`).
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
7. Trust checks (:mod:`tfbsim.analysis.diffusion_checks`): is the MSD diffusive over the fit window (slope,
   magnitude), and did the network formers (``network_species``, default P, O, N) flow meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AnalysisError
from .base import AnalysisResults, Progress
from .diffusion_base import AXES, MSDBase, cell_area_ang2, wrapped_z
from .diffusion_checks import DiffusiveCheck, DiffusiveCriteria, NetworkCheck, NetworkCriteria, is_diffusive, network_mobility
from .diffusion_fit import DiffusionFit
from .msd import mean_msd
from .layer_diffusion import LayerDiffusion, LayerDiffusionResults
from .trajectory import Trajectory, TrajectoryLike

__all__ = ["AXES", "DiffusionAnalysis", "DiffusionResults", "LayerDiffusion", "LayerDiffusionResults", "check_transport"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiffusionResults(AnalysisResults):
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
    frames : numpy.ndarray of int or None
        Indices of the analysed frames in the trajectory's selection.
    diffusive : DiffusiveCheck or None
        Is the MSD diffusive over the fit window (None when the check could not run).
    network : NetworkCheck or None
        Did the network formers flow during the fit window (None without network species).
    network_lag_ps : numpy.ndarray or None
        Lags (ps) of the network MSDs (every ``stride``-th frame).
    network_msd_ang2 : dict
        ``{species: 3-D MSD (Å²)}`` of the network formers.
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
    frames: np.ndarray | None = field(repr=False, default=None)
    diffusive: DiffusiveCheck | None = None
    network: NetworkCheck | None = None
    network_lag_ps: np.ndarray | None = field(repr=False, default=None)
    network_msd_ang2: dict = field(repr=False, default_factory=dict)

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
        from ..structures.io import to_jsonable

        return to_jsonable(self._record(max_msd_points))

    def _record(self, max_msd_points: int = 1000) -> dict[str, Any]:
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
            "D_ci95_cm2_s": list(self.fit.D_ci95_cm2_s),
            "diffusive": None if self.diffusive is None else self.diffusive.diffusive,
            "diffusive_check": None if self.diffusive is None else self.diffusive.to_dict(),
            "network_flows": None if self.network is None else self.network.network_flows,
            "network": self._network_record(),
        }

    def _network_record(self, max_points: int = 200) -> dict[str, Any] | None:
        if self.network is None or self.network_lag_ps is None:
            return None
        n = len(self.network_lag_ps)
        keep = np.unique(np.round(np.linspace(0, n - 1, min(max_points, n))).astype(int))
        out = self.network.to_dict()
        out["n_atoms"] = {sp: v["n_atoms"] for sp, v in self.network.per_species.items()}
        out["msd"] = {"lag_ps": self.network_lag_ps[keep],
                      "species": {sp: m[keep] for sp, m in self.network_msd_ang2.items()}}
        return out


class DiffusionAnalysis(MSDBase):
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
        Frame selection ``"START:STOP:STEP"`` read from the source; ``run(start, stop, step)`` selects within
        it (the time axis follows the selected frames: see :mod:`tfbsim.analysis.diffusion_base`).
    dt_fs
        Time between stored frames (fs); required when the source carries no times.
    temperature_k
        Temperature for σ (K); default from the H5MD metadata.
    fit_start_ps, fit_end_ps
        Fit window (ps); default 10 %–50 % of the analysed frames' span.
    max_fit_lags
        At most this many lags enter the GLS fit.
    remove_drift
        Subtract the centre-of-mass drift of ``drift_reference_indices`` (default: all atoms, mass-weighted).
    drift_reference_indices
        Atoms whose centre of mass defines the drift (default: all).
    unwrap
        ``None``: unwrap unless the source is known to be unwrapped; ``True``/``False`` forces it.
    haven_ratio
        Haven ratio H for σ = n q² D / (k_B T H) (1: tracer approximation).
    charge_e
        Carrier charge in e (default from the species, Li: +1).
    volume_ang3
        Volume holding the carriers (Å³); default: mean cell volume, region estimate, or z-window volume.
    network_species
        Network formers whose MSD is checked for flow during the fit window (default P, O, N; those absent
        are skipped; ``None`` or ``()``: no check). Their positions are kept for at most 1000 frames.
    diffusive_criteria, network_criteria
        Thresholds of the trust checks (:mod:`tfbsim.analysis.diffusion_checks`; defaults: log–log slope
        0.9–1.2 and MSD >= 30 Å²; network MSD rise <= 1 Å²).

    Attributes
    ----------
    results : DiffusionResults
        After :meth:`run`.

    Examples
    --------
    >>> res = DiffusionAnalysis("traj.h5md", species="Li").run().results   # doctest: +SKIP
    >>> res.D_cm2_s, res.D_stderr_cm2_s, res.fit.D_ci95_cm2_s                 # doctest: +SKIP
    >>> res = DiffusionAnalysis("traj.h5md").run(start=100, step=2).results  # doctest: +SKIP
    """

    def __init__(
        self,
        trajectory: TrajectoryLike,
        *,
        species: str | Sequence[str] | None = "Li",
        indices: Sequence[int] | None = None,
        region: str | None = None,
        z_window_ang: tuple[float, float] | None = None,
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
        network_species: Sequence[str] | None = ("P", "O", "N"),
        diffusive_criteria: DiffusiveCriteria | None = None,
        network_criteria: NetworkCriteria | None = None,
    ) -> None:
        if z_window_ang is not None:
            lo, hi = (float(v) for v in z_window_ang)
            if hi <= lo:
                raise AnalysisError(f"z_window_ang must be (low, high) with low < high, got {z_window_ang}")
            z_window_ang = (lo, hi)
        super().__init__(
            trajectory, species=species, indices=indices, region=region, axis=axis, frames=frames, dt_fs=dt_fs,
            temperature_k=temperature_k, fit_start_ps=fit_start_ps, fit_end_ps=fit_end_ps,
            max_fit_lags=max_fit_lags, remove_drift=remove_drift, drift_reference_indices=drift_reference_indices,
            unwrap=unwrap, haven_ratio=haven_ratio, charge_e=charge_e, volume_ang3=volume_ang3,
        )
        self.z_window_ang = z_window_ang
        self._grid: tuple | None = None
        self.diffusive_criteria = diffusive_criteria or DiffusiveCriteria()
        species_checked = tuple(network_species) if network_species is not None else ()
        self.network_criteria = network_criteria or NetworkCriteria(species=species_checked or ("P", "O", "N"))
        symbols = self._traj.symbols
        self._network_indices = {sp: np.setdiff1d(np.flatnonzero(symbols == sp), self.indices)
                                 for sp in species_checked}
        self._network_indices = {sp: idx for sp, idx in self._network_indices.items() if idx.size}

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> DiffusionResults:
        """Read the selected frames, compute the MSD and fit D."""
        window = self._window(frames)
        extra = np.concatenate(list(self._network_indices.values())) if self._network_indices else None
        loaded = self._load(frames, progress, extra_indices=extra)
        weights = None
        n_carriers = float(len(self.indices))
        volume = self.volume_ang3
        if self.z_window_ang is not None:
            z = wrapped_z(loaded.positions, loaded.cells, np.asarray(frames.pbc, dtype=bool))
            weights = ((z >= self.z_window_ang[0]) & (z < self.z_window_ang[1])).astype(float)
            n_carriers = float(weights.sum(axis=1).mean())
            if volume is None:
                volume = cell_area_ang2(loaded.cells) * (self.z_window_ang[1] - self.z_window_ang[0])
        elif volume is None and self.region is not None:
            volume = self._region_volume(frames, loaded.cells)
        elif volume is None and np.all(frames.pbc):
            volume = float(np.mean(np.abs(np.linalg.det(loaded.cells))))
        msd, _, grid, grid_sums, grid_counts = self._sums(loaded, weights, progress)
        fit = self._fit(window, grid, grid_sums, grid_counts, self.axis, window.fit_start_ps, window.fit_end_ps)
        self._grid = (grid, grid_sums, grid_counts)
        self._run_window = window
        charge, sigma, sigma_err = self._sigma(fit, n_carriers, volume)
        comps = list(AXES[self.axis])
        logger.info("D = %.4g ± %.2g cm²/s from %d atoms", fit.D_cm2_s, fit.D_stderr_cm2_s, fit.n_atoms)
        lag_ps = np.arange(window.n_frames) * window.dt_ps
        msd_axis = msd[:, comps].sum(axis=1)
        try:
            diffusive = is_diffusive(lag_ps, msd_axis, fit_start_ps=fit.fit_start_ps, fit_end_ps=fit.fit_end_ps,
                                     criteria=self.diffusive_criteria)
        except AnalysisError as exc:
            logger.warning("no diffusive check: %s", exc)
            diffusive = None
        if diffusive is not None and not diffusive.diffusive:
            logger.warning("%s: %s", self.species, diffusive.reason)
        network, net_lag, net_msd = self._network_check(loaded, window, fit)
        return DiffusionResults(
            species=self.species, axis=self.axis, n_atoms=fit.n_atoms, n_frames=window.n_frames,
            dt_fs=window.dt_ps * 1000.0,
            temperature_k=None if self.temperature_k is None else float(self.temperature_k),
            lag_ps=lag_ps, msd_ang2=msd_axis,
            msd_components_ang2=msd, fit=fit, volume_ang3=volume, n_carriers=n_carriers, charge_e=charge,
            haven_ratio=self.haven_ratio, sigma_ne_S_cm=sigma, sigma_ne_stderr_S_cm=sigma_err,
            unwrapped_jumps=loaded.jumps, drift_removed=self.remove_drift, frames=ids,
            diffusive=diffusive, network=network, network_lag_ps=net_lag, network_msd_ang2=net_msd,
        )

    def _network_check(self, loaded, window, fit: DiffusionFit):
        """Network-former MSDs (on every ``stride``-th frame) and the flow verdict over the fit window."""
        if loaded.extra_positions is None:
            return None, None, {}
        lag = np.arange(loaded.extra_positions.shape[0]) * window.dt_ps * loaded.extra_stride
        curves, counts, start = {}, {}, 0
        for sp, idx in self._network_indices.items():
            curves[sp] = mean_msd(loaded.extra_positions[:, start:start + len(idx)])
            counts[sp] = len(idx)
            start += len(idx)
        if len(lag) < 3 or fit.fit_end_ps > lag[-1] + 1e-9:
            return None, lag, curves
        check = network_mobility(lag, curves, fit_start_ps=fit.fit_start_ps, fit_end_ps=fit.fit_end_ps,
                                 n_atoms_by_species=counts, criteria=self.network_criteria)
        if check.network_flows:
            logger.warning("%s", check.reason)
        return check, lag, curves

    def fit(self, *, fit_start_ps: float | None = None, fit_end_ps: float | None = None,
            axis: str | None = None) -> DiffusionFit:
        """Refit D over another window or axis without re-reading the trajectory (after :meth:`run`).

        The defaults are the window and axis of the last :meth:`run`.
        """
        if self._grid is None or self._run_window is None:
            raise AnalysisError("nothing to refit yet: call run() first")
        axis = self.axis if axis is None else axis
        if axis not in AXES:
            raise AnalysisError(f"unknown axis {axis!r}; choose one of {', '.join(AXES)}")
        window = self._run_window
        start = window.fit_start_ps if fit_start_ps is None else fit_start_ps
        end = window.fit_end_ps if fit_end_ps is None else fit_end_ps
        return self._fit(window, *self._grid, axis, start, end)

    def _region_volume(self, frames: Trajectory, cells: np.ndarray) -> float:
        """Estimate a region's volume: in-plane area × z-extent of all its atoms in the first analysed frame."""
        first = frames.first()
        members = np.flatnonzero(frames.regions == self.region)
        z = wrapped_z(first.positions[members][None], first.cell.array[None], np.asarray(first.pbc))[0]
        volume = cell_area_ang2(cells) * float(z.max() - z.min())
        logger.warning(
            "the volume of region %r is estimated as area × z-extent of its atoms (%.4g Å³); pass volume_ang3 "
            "(--volume-ang3) for an exact Nernst–Einstein conductivity", self.region, volume,
        )
        return volume if volume > 0 else None


def check_transport(trajectory: Any, *, species: str = "Li", fit_start_ps: float | None = None,
                    fit_end_ps: float | None = None, frames: str | slice | None = None, dt_fs: float | None = None,
                    diffusive: DiffusiveCriteria | None = None,
                    network: NetworkCriteria | None = None) -> tuple[DiffusiveCheck, NetworkCheck | None]:
    """Both checks on a trajectory (a running or finished MD run): ``(diffusive_check, network_check)``.

    Runs :class:`DiffusionAnalysis` of ``species`` with the network MSDs; the
    fit window defaults to 10–50 % of the trajectory, as for D. ``network_check`` is None when the trajectory
    holds none of the network species.
    """
    network = network or NetworkCriteria()
    res = DiffusionAnalysis(trajectory, species=species, fit_start_ps=fit_start_ps, fit_end_ps=fit_end_ps,
                            frames=frames, dt_fs=dt_fs, network_species=network.species,
                            diffusive_criteria=diffusive, network_criteria=network).run().results
    return res.diffusive, res.network
