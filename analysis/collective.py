"""Collective (charge) transport: the charge MSD, σ from it beside the Nernst–Einstein σ, and the Haven ratio.

Quantities (one species of charge ``q``, ``N`` ions, ``d`` axes, volume ``V``)
-----------------------------------------------------------------------------
- tracer MSD ``<Δr²>(t) = 1/N Σ_i <|Δr_i(t)|²>``, ``D* = slope / (2 d)``;
- charge (collective) MSD ``MSD_σ(t) = 1/N <|Σ_i Δr_i(t)|²> = 1/N Σ_i Σ_j <Δr_i·Δr_j>`` (= N × the MSD of the
  ions' centre of mass), ``D_σ = slope / (2 d)``; it holds the cross terms ``i ≠ j`` that the tracer MSD drops;
- ``σ = N q² D_σ / (V k_B T)`` (the same function as the Nernst–Einstein σ,
  :func:`~tfbsim.analysis.transport.nernst_einstein_sigma_S_cm`, so units are converted in one place);
  ``σ_NE = N q² D* / (V k_B T)``;
- Haven ratio ``H = D* / D_σ`` (1 for uncorrelated ions; < 1 when ions move together).

With several species and charges ``q_i`` (``charges={"Li": 1, "O": -2, ...}``) the charge displacement is
``Σ_i q_i Δr_i`` and ``σ = <|Σ_i q_i Δr_i|²> / (2 d t V k_B T)``; then only σ (not D_σ or H) is reported.

Uncertainty — honestly
----------------------
The charge MSD of one trajectory is the MSD of **one** particle (the centre of charge): averaging over time
origins gives about ``T / t`` independent samples at lag ``t``, not ``N T / t`` as for the tracer MSD, so D_σ
is 10–100× noisier than D* and its error cannot come from a jackknife over ions. Here the trajectory is cut
into ``n_blocks`` non-overlapping blocks (independent time origins); in each block D* and D_σ are fitted by the
same GLS line over the same window (default 10–50 % of the block length), and the block-to-block spread gives
the standard errors (Student's t with ``n_blocks - 1`` degrees of freedom). Several replicas (independent
runs) add blocks: :func:`combine_collective`. H and its interval come from a delete-one-block jackknife of
``mean D* / mean D_σ`` (which keeps the within-block correlation of D* and D_σ), with the interval symmetric in
``ln H``. Blocks must be long compared with the time the MSD needs to become linear; with fewer than ~5 blocks
of diffusive motion the interval is wide — that is the information the run holds.

The frame follows :class:`~tfbsim.analysis.diffusion_base.MSDBase`: by default the mass-weighted centre of mass
of the whole system is held fixed (barycentric frame; pass ``drift_reference_indices`` for the framework
frame, as kinisi does).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats

from ..errors import AnalysisError
from .base import AnalysisResults, Progress
from .diffusion_base import AXES, MSDBase
from .diffusion_fit import ANG2_PS_TO_CM2_S, _gls_weights, brownian_msd_covariance
from .msd import msd_sums
from .trajectory import Trajectory, TrajectoryLike
from .transport import carrier_charge_e, nernst_einstein_sigma_S_cm

__all__ = ["CollectiveTransport", "CollectiveResults", "combine_collective", "haven_ratio_jackknife"]

logger = logging.getLogger(__name__)


def haven_ratio_jackknife(d_tracer: np.ndarray, d_sigma: np.ndarray) -> tuple[float, float | None, tuple | None]:
    """H = mean D* / mean D_σ over blocks, its delete-one-block jackknife error and 95 % interval (in ln H).

    Returns ``(H, stderr, (low, high))``; error and interval are None with fewer than 3 blocks or when
    D_σ is not positive in every leave-one-out mean.
    """
    d_tracer, d_sigma = np.asarray(d_tracer, float), np.asarray(d_sigma, float)
    n = len(d_tracer)
    h = float(d_tracer.mean() / d_sigma.mean()) if d_sigma.mean() > 0 else float("nan")
    if n < 3 or not np.isfinite(h):
        return h, None, None
    loo_t = (d_tracer.sum() - d_tracer) / (n - 1)
    loo_s = (d_sigma.sum() - d_sigma) / (n - 1)
    if np.any(loo_s <= 0):
        return h, None, None
    ln_h = np.log(loo_t / loo_s)
    se_ln = float(np.sqrt((n - 1) / n * np.sum((ln_h - ln_h.mean()) ** 2)))
    q = float(stats.t.ppf(0.975, n - 1))
    return h, h * se_ln, (h * np.exp(-q * se_ln), h * np.exp(q * se_ln))


def _mean_se_ci(values: np.ndarray) -> tuple[float, float | None, tuple | None]:
    values = np.asarray(values, float)
    n = len(values)
    mean = float(values.mean())
    if n < 2:
        return mean, None, None
    se = float(values.std(ddof=1) / np.sqrt(n))
    q = float(stats.t.ppf(0.975, n - 1))
    return mean, se, (mean - q * se, mean + q * se)


@dataclass(frozen=True)
class CollectiveResults(AnalysisResults):
    """Results of :class:`CollectiveTransport` (every name carries its unit).

    Attributes
    ----------
    species : str
    n_atoms : int
        Ions whose displacements enter the charge MSD.
    n_blocks : int
        Independent blocks (all replicas together).
    block_ps : float
        Length of one block (ps); ``fit_start_ps``/``fit_end_ps`` are lags within a block.
    lag_ps, msd_tracer_ang2, msd_collective_ang2 : numpy.ndarray
        Whole-run tracer MSD and charge MSD (``1/N <|Σ q_i Δr_i|²> / q²``) for plots (Å²).
    D_tracer_blocks_cm2_s, D_sigma_blocks_cm2_s : numpy.ndarray
        Per-block D* and D_σ (cm² s⁻¹).
    D_tracer_cm2_s, D_tracer_stderr_cm2_s, D_sigma_cm2_s, D_sigma_stderr_cm2_s : float
        Block means and standard errors; ``*_ci95_cm2_s``: Student-t intervals.
    haven_ratio, haven_ratio_stderr : float, float or None
    haven_ratio_ci95 : tuple or None
    sigma_ne_S_cm, sigma_collective_S_cm : float or None
        σ from D* (Nernst–Einstein, H = 1) and from D_σ (S cm⁻¹), with ``*_ci95_S_cm`` intervals.
    temperature_k, volume_ang3 : float or None
    """

    species: str
    n_atoms: int
    n_blocks: int
    block_ps: float
    fit_start_ps: float
    fit_end_ps: float
    n_dimensions: int
    charge_e: float | None
    temperature_k: float | None
    volume_ang3: float | None
    lag_ps: np.ndarray = field(repr=False)
    msd_tracer_ang2: np.ndarray = field(repr=False)
    msd_collective_ang2: np.ndarray = field(repr=False)
    D_tracer_blocks_cm2_s: np.ndarray = field(repr=False)
    D_sigma_blocks_cm2_s: np.ndarray = field(repr=False)
    D_tracer_cm2_s: float = float("nan")
    D_tracer_stderr_cm2_s: float | None = None
    D_tracer_ci95_cm2_s: tuple | None = None
    D_sigma_cm2_s: float = float("nan")
    D_sigma_stderr_cm2_s: float | None = None
    D_sigma_ci95_cm2_s: tuple | None = None
    haven_ratio: float = float("nan")
    haven_ratio_stderr: float | None = None
    haven_ratio_ci95: tuple | None = None
    sigma_ne_S_cm: float | None = None
    sigma_ne_ci95_S_cm: tuple | None = None
    sigma_collective_S_cm: float | None = None
    sigma_collective_ci95_S_cm: tuple | None = None
    multi_species: bool = False
    warnings: list = field(default_factory=list)

    def _record(self, max_points: int = 500) -> dict[str, Any]:
        n = len(self.lag_ps)
        keep = np.unique(np.round(np.linspace(0, n - 1, min(max_points, n))).astype(int))
        out = {k: getattr(self, k) for k in (
            "species", "n_atoms", "n_blocks", "block_ps", "fit_start_ps", "fit_end_ps", "n_dimensions", "charge_e",
            "temperature_k", "volume_ang3", "D_tracer_cm2_s", "D_tracer_stderr_cm2_s", "D_tracer_ci95_cm2_s",
            "D_sigma_cm2_s", "D_sigma_stderr_cm2_s", "D_sigma_ci95_cm2_s", "haven_ratio", "haven_ratio_stderr",
            "haven_ratio_ci95", "sigma_ne_S_cm", "sigma_ne_ci95_S_cm", "sigma_collective_S_cm",
            "sigma_collective_ci95_S_cm", "multi_species", "warnings")}
        out["blocks"] = {"D_tracer_cm2_s": self.D_tracer_blocks_cm2_s, "D_sigma_cm2_s": self.D_sigma_blocks_cm2_s}
        out["msd"] = {"lag_ps": self.lag_ps[keep], "tracer_ang2": self.msd_tracer_ang2[keep],
                      "collective_ang2": self.msd_collective_ang2[keep]}
        return out


def _summarise(base: CollectiveResults, d_t: np.ndarray, d_s: np.ndarray, n_carriers: float) -> CollectiveResults:
    """Block statistics, H and both σ from per-block D* and D_σ (cm² s⁻¹)."""
    warn = list(base.warnings)
    dt_mean, dt_se, dt_ci = _mean_se_ci(d_t)
    ds_mean, ds_se, ds_ci = _mean_se_ci(d_s)
    h, h_se, h_ci = haven_ratio_jackknife(d_t, d_s) if not base.multi_species else (float("nan"), None, None)
    if len(d_t) < 3:
        warn.append(f"only {len(d_t)} block(s): no error on D_σ or H; use more blocks or replicas")
    if ds_ci is not None and ds_ci[0] <= 0:
        warn.append("D_σ is not significantly above zero: the charge MSD is too noisy; run longer or add replicas")

    def sigma(d: float | None) -> float | None:
        if d is None or base.temperature_k is None or base.volume_ang3 is None or base.charge_e is None:
            return None
        # several species: d = <|Σ q_i Δr_i|²> / (2 d t N) in e² cm²/s, charge_e = 1, so σ is the same formula
        return nernst_einstein_sigma_S_cm(d, n_carriers=n_carriers, volume_ang3=base.volume_ang3,
                                          temperature_k=base.temperature_k, charge_e=base.charge_e)[0]

    ne = None if base.multi_species else sigma(dt_mean)
    ne_ci = None if (base.multi_species or dt_ci is None) else (sigma(dt_ci[0]), sigma(dt_ci[1]))
    sc = sigma(ds_mean)
    sc_ci = None if ds_ci is None else (sigma(ds_ci[0]), sigma(ds_ci[1]))
    for message in warn[len(base.warnings):]:
        logger.warning(message)
    return replace(base, D_tracer_blocks_cm2_s=np.asarray(d_t), D_sigma_blocks_cm2_s=np.asarray(d_s),
                   n_blocks=len(d_t), D_tracer_cm2_s=dt_mean, D_tracer_stderr_cm2_s=dt_se, D_tracer_ci95_cm2_s=dt_ci,
                   D_sigma_cm2_s=ds_mean, D_sigma_stderr_cm2_s=ds_se, D_sigma_ci95_cm2_s=ds_ci, haven_ratio=h,
                   haven_ratio_stderr=h_se, haven_ratio_ci95=h_ci, sigma_ne_S_cm=ne, sigma_ne_ci95_S_cm=ne_ci,
                   sigma_collective_S_cm=sc, sigma_collective_ci95_S_cm=sc_ci, warnings=warn)


def combine_collective(results: Sequence[CollectiveResults]) -> CollectiveResults:
    """Pool the blocks of several replicas (same species, temperature and block length) into one result.

    The whole-run MSD curves are those of the first replica; volumes are averaged.
    """
    if not results:
        raise AnalysisError("no collective results to combine")
    first = results[0]
    for r in results[1:]:
        if r.species != first.species or r.temperature_k != first.temperature_k or r.n_atoms != first.n_atoms:
            raise AnalysisError("combine_collective needs replicas of one species, temperature and ion count")
        if not np.isclose(r.block_ps, first.block_ps, rtol=1e-6):
            raise AnalysisError("combine_collective needs blocks of equal length: give every replica the same "
                                "n_blocks and run length")
    d_t = np.concatenate([r.D_tracer_blocks_cm2_s for r in results])
    d_s = np.concatenate([r.D_sigma_blocks_cm2_s for r in results])
    volumes = [r.volume_ang3 for r in results if r.volume_ang3 is not None]
    base = replace(first, volume_ang3=float(np.mean(volumes)) if volumes else None, warnings=[])
    return _summarise(base, d_t, d_s, float(first.n_atoms))


class CollectiveTransport(MSDBase):
    """Charge MSD, D_σ, σ from it, Nernst–Einstein σ and the Haven ratio, with block errors.

    Parameters
    ----------
    trajectory
        Anything :class:`~tfbsim.analysis.trajectory.Trajectory` accepts.
    species
        Mobile species (default ``"Li"``); several only together with ``charges``.
    charges
        ``{species: charge in e}``; default the formal charge of ``species`` (Li: +1).
    n_blocks
        Non-overlapping blocks for the errors (default 5; at least 2, 3 for a jackknife on H).
    fit_start_fraction, fit_end_fraction
        Fit window as fractions of a block (default 0.1–0.5), unless ``fit_start_ps``/``fit_end_ps`` are given.
    frames, dt_fs, temperature_k, axis, remove_drift, drift_reference_indices, unwrap, volume_ang3, fit_start_ps, fit_end_ps
        As for :class:`~tfbsim.analysis.diffusion.DiffusionAnalysis` (the fit window applies to lags within a
        block and must fit inside one).

    Examples
    --------
    >>> res = CollectiveTransport("traj.h5md", n_blocks=5).run().results          # doctest: +SKIP
    >>> res.haven_ratio, res.haven_ratio_ci95, res.sigma_collective_S_cm          # doctest: +SKIP
    """

    name = "collective transport"

    def __init__(self, trajectory: TrajectoryLike, *, species: str | Sequence[str] = "Li",
                 charges: Mapping[str, float] | None = None, n_blocks: int = 5, fit_start_fraction: float = 0.1,
                 fit_end_fraction: float = 0.5, fit_start_ps: float | None = None, fit_end_ps: float | None = None,
                 axis: str = "xyz", frames: str | slice | None = None, dt_fs: float | None = None,
                 temperature_k: float | None = None, remove_drift: bool = True,
                 drift_reference_indices: Sequence[int] | None = None, unwrap: bool | None = None,
                 volume_ang3: float | None = None) -> None:
        if int(n_blocks) < 1:
            raise AnalysisError(f"n_blocks must be at least 1, got {n_blocks}")
        if not 0 <= fit_start_fraction < fit_end_fraction <= 1:
            raise AnalysisError("need 0 <= fit_start_fraction < fit_end_fraction <= 1 (fractions of a block)")
        super().__init__(trajectory, species=species, axis=axis, frames=frames, dt_fs=dt_fs,
                         temperature_k=temperature_k, remove_drift=remove_drift,
                         drift_reference_indices=drift_reference_indices, unwrap=unwrap, volume_ang3=volume_ang3)
        names = [species] if isinstance(species, str) else list(species)
        if charges is None:
            if len(names) > 1:
                raise AnalysisError("several species need charges={species: charge_e} for the charge displacement")
            q = carrier_charge_e(names[0])
            if q is None:
                raise AnalysisError(f"no formal charge known for {names[0]!r}; pass charges={{'{names[0]}': q}}")
            charges = {names[0]: q}
        missing = [s for s in names if s not in charges]
        if missing:
            raise AnalysisError(f"charges lacks {missing}; give a charge (e) for every species")
        self.charges = {str(k): float(v) for k, v in charges.items()}
        self.atom_charges = np.array([self.charges[s] for s in self._traj.symbols[self.indices]])
        self.n_blocks = int(n_blocks)
        self.fit_fractions = (float(fit_start_fraction), float(fit_end_fraction))
        self._fit_ps = (fit_start_ps, fit_end_ps)
        self.multi_species = len(names) > 1

    def _block_window(self, block_frames: int, dt_ps: float) -> tuple[np.ndarray, float, float]:
        span = (block_frames - 1) * dt_ps
        start = self._fit_ps[0] if self._fit_ps[0] is not None else self.fit_fractions[0] * span
        end = self._fit_ps[1] if self._fit_ps[1] is not None else self.fit_fractions[1] * span
        start = max(start, dt_ps)
        if end > span * (1 + 1e-9) or end <= start:
            raise AnalysisError(
                f"the fit window {start:g}–{end:g} ps does not fit a block of {span:g} ps ({self.n_blocks} blocks): "
                "use fewer blocks, a shorter window or a longer run")
        lags = np.arange(1, block_frames)
        lags = lags[(lags * dt_ps >= start - 1e-9) & (lags * dt_ps <= end + 1e-9)]
        if len(lags) > 32:
            lags = lags[np.unique(np.round(np.linspace(0, len(lags) - 1, 32)).astype(int))]
        if len(lags) < 2:
            raise AnalysisError("the fit window holds fewer than two lags of a block; use fewer blocks")
        return lags, float(lags[0] * dt_ps), float(lags[-1] * dt_ps)

    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> CollectiveResults:
        window = self._window(frames)
        loaded = self._load(frames, progress)
        comps = list(AXES[self.axis])
        pos = loaded.positions[:, :, comps]
        n_frames, n_atoms, n_dim = pos.shape
        q = self.atom_charges
        q_ref = 1.0 if self.multi_species else float(q[0])
        charge_disp = np.einsum("fnc,n->fc", pos, q)[:, None, :]  # Σ q_i r_i, (F, 1, d)
        block_frames = n_frames // self.n_blocks
        if block_frames < 4:
            raise AnalysisError(f"{n_frames} frames give blocks of {block_frames} frames; use fewer blocks")
        lags, start_ps, end_ps = self._block_window(block_frames, window.dt_ps)
        weights = _gls_weights(lags * window.dt_ps, brownian_msd_covariance(lags, block_frames))[0]
        d_t, d_s = [], []
        for b in range(self.n_blocks):
            part = slice(b * block_frames, (b + 1) * block_frames)
            s_t, c_t = msd_sums(pos[part])
            msd_t = s_t.sum(axis=2).sum(axis=1)[lags] / c_t.sum(axis=1)[lags]
            s_c, c_c = msd_sums(charge_disp[part])
            msd_c = s_c.sum(axis=2)[lags, 0] / c_c[lags, 0] / (n_atoms * q_ref**2)
            d_t.append(weights @ msd_t / (2 * n_dim) * ANG2_PS_TO_CM2_S)
            d_s.append(weights @ msd_c / (2 * n_dim) * ANG2_PS_TO_CM2_S)
        s_t, c_t = msd_sums(pos)
        s_c, c_c = msd_sums(charge_disp)
        with np.errstate(invalid="ignore", divide="ignore"):
            msd_tracer = s_t.sum(axis=(1, 2)) / c_t.sum(axis=1)
            msd_coll = s_c.sum(axis=2)[:, 0] / c_c[:, 0] / (n_atoms * q_ref**2)
        volume = self.volume_ang3
        if volume is None and np.all(frames.pbc):
            volume = float(np.mean(np.abs(np.linalg.det(loaded.cells))))
        warn = []
        if self.temperature_k is None or volume is None:
            warn.append("no σ: temperature (temperature_k) or cell volume (volume_ang3) unknown")
        base = CollectiveResults(
            species=self.species, n_atoms=n_atoms, n_blocks=self.n_blocks,
            block_ps=(block_frames - 1) * window.dt_ps, fit_start_ps=start_ps, fit_end_ps=end_ps,
            n_dimensions=n_dim, charge_e=q_ref,
            temperature_k=None if self.temperature_k is None else float(self.temperature_k), volume_ang3=volume,
            lag_ps=np.arange(n_frames) * window.dt_ps, msd_tracer_ang2=msd_tracer, msd_collective_ang2=msd_coll,
            D_tracer_blocks_cm2_s=np.asarray(d_t), D_sigma_blocks_cm2_s=np.asarray(d_s),
            multi_species=self.multi_species, warnings=warn)
        return _summarise(base, np.asarray(d_t), np.asarray(d_s), float(n_atoms))
