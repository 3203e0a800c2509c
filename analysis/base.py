"""The one contract of every trajectory analysis (coordination, RDF, diffusion, layer diffusion, interphase...).

Modelled on MDAnalysis' ``AnalysisBase``:

- **settings in** ``__init__``: explicit keyword arguments, validated there (bad settings raise
  :class:`~tfbsim.errors.ConfigError`, :class:`~tfbsim.errors.AnalysisError` or
  :class:`~tfbsim.errors.TrajectoryError` before any frame is analysed);
- :meth:`TrajectoryAnalysis.run` ``(start=None, stop=None, step=None, *, progress=False)`` analyses the frames
  ``start:stop:step`` of the trajectory's selection and **returns** ``self``;
- :attr:`TrajectoryAnalysis.results` is a typed, frozen dataclass (a subclass of :class:`AnalysisResults`)
  whose :meth:`~AnalysisResults.to_dict` gives the JSON record (flat keys with units, plain JSON types);
  reading it before :meth:`~TrajectoryAnalysis.run` raises :class:`~tfbsim.errors.AnalysisError`.

Frame selection
---------------
Two levels, with Python slice semantics both times: ``frames="START:STOP:STEP"`` in ``__init__`` selects
the frames read from the source (:class:`~tfbsim.analysis.trajectory.Trajectory`), and ``run(start, stop,
step)`` selects within that selection. ``start``/``stop`` may be negative (counted from the end), ``step`` must
be a positive integer, and a selection without frames raises :class:`~tfbsim.errors.AnalysisError`. Only the
selected frames are read, one at a time (:meth:`~tfbsim.analysis.trajectory.Trajectory.subset`): memory does
not grow with the trajectory's length except where an analysis keeps per-frame numbers by design.

Progress
--------
``progress=False`` is silent; ``True`` shows a ``tqdm`` bar; ``"log"`` writes a line to the
``tfbsim.progress`` logger (INFO) about every tenth of the frames, for batch jobs without a terminal.
"""

from __future__ import annotations

import abc
import logging
import numbers
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from ..errors import AnalysisError, ConfigError
from .trajectory import Trajectory, TrajectoryLike

__all__ = ["AnalysisResults", "TrajectoryAnalysis", "Progress", "select_frame_ids", "open_trajectory",
           "progress_iter"]

logger = logging.getLogger(__name__)
progress_logger = logging.getLogger("tfbsim.progress")

#: ``False`` (silent), ``True`` (tqdm bar) or ``"log"`` (lines on the ``tfbsim.progress`` logger).
Progress = bool | Literal["log"]

T = TypeVar("T")


@dataclass(frozen=True)
class AnalysisResults:
    """Base of every analysis' results: a frozen dataclass whose :meth:`to_dict` is its JSON record.

    Subclasses define their fields (names carry units) and :meth:`_record`; :meth:`to_dict` turns the record
    into plain JSON types (numpy arrays -> lists, non-finite floats -> ``None``), so ``json.dumps`` accepts it.
    """

    def _record(self) -> dict[str, Any]:
        """The JSON record with numpy values (flat keys with units)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: flat keys with units, plain JSON types (NaN -> ``None``)."""
        from ..structures.io import to_jsonable

        return to_jsonable(self._record())


def open_trajectory(trajectory: TrajectoryLike, *, frames: str | slice | None = None,
                    dt_fs: float | None = None) -> Trajectory:
    """A :class:`Trajectory` of ``trajectory``; a Trajectory is used as is (then give no ``frames``/``dt_fs``).

    Raises
    ------
    ConfigError
        A :class:`Trajectory` comes with ``frames`` or ``dt_fs`` (they belong to the Trajectory).
    """
    if isinstance(trajectory, Trajectory):
        if frames is not None or dt_fs is not None:
            raise ConfigError(
                "pass frames/dt_fs when building the Trajectory, or pass the source instead of a Trajectory"
            )
        return trajectory
    return Trajectory(trajectory, frames=frames, dt_fs=dt_fs)


def _check_index(name: str, value: Any, *, positive: bool = False) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise AnalysisError(f"{name} must be an integer frame index or None, got {value!r}")
    value = int(value)
    if positive and value <= 0:
        raise AnalysisError(f"step must be a positive integer, got {value}")
    return value


def select_frame_ids(n_frames: int, start: int | None = None, stop: int | None = None,
                     step: int | None = None) -> np.ndarray:
    """Indices ``range(n_frames)[start:stop:step]`` (Python slice semantics), validated.

    Raises
    ------
    AnalysisError
        A non-integer bound, a step below 1, or a selection that holds no frame.
    """
    start = _check_index("start", start)
    stop = _check_index("stop", stop)
    step = _check_index("step", step, positive=True)
    ids = np.arange(n_frames)[slice(start, stop, step)]
    if len(ids) == 0:
        raise AnalysisError(
            f"the frame selection start={start}, stop={stop}, step={step} selects none of the "
            f"{n_frames} frames; widen it"
        )
    return ids


def _check_progress(progress: Any) -> Progress:
    if isinstance(progress, (bool, np.bool_)):
        return bool(progress)
    if isinstance(progress, str) and progress == "log":
        return "log"
    raise ConfigError(f"progress must be True, False or 'log', got {progress!r}")


def progress_iter(items: Iterable[T], total: int, desc: str, progress: Progress) -> Iterator[T]:
    """Yield ``items`` while reporting progress (see the module docstring); ``total`` items are expected."""
    progress = _check_progress(progress)
    if progress is False:
        yield from items
        return
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="frame")
        try:
            for item in items:
                yield item
                bar.update()
        finally:
            bar.close()
        return
    every = max(1, total // 10)
    done = 0
    for item in items:
        yield item
        done += 1
        if done % every == 0 or done == total:
            progress_logger.info("%s: %d/%d frames (%.0f %%)", desc, done, total, 100.0 * done / max(total, 1))


class TrajectoryAnalysis(abc.ABC):
    """Base class of the trajectory analyses: frame selection, progress, ``results`` guard, ``run() -> self``.

    Parameters
    ----------
    trajectory
        Anything :class:`~tfbsim.analysis.trajectory.Trajectory` accepts (Atoms, list of Atoms, ASE-readable
        file, tfbsim H5MD file, MDAnalysis Universe) or a Trajectory.
    frames
        Frame selection read from the source (``"START:STOP:STEP"`` or slice); ``run()`` selects within it.
    dt_fs
        Time between stored frames (fs) when the source has no times.

    Subclasses validate their own settings in ``__init__`` (after calling this one) and implement
    :meth:`_analyse`, which receives a view of the selected frames and returns the results object.
    """

    #: Name used in messages and progress bars.
    name: ClassVar[str] = "analysis"

    def __init__(self, trajectory: TrajectoryLike, *, frames: str | slice | None = None,
                 dt_fs: float | None = None) -> None:
        self._traj = open_trajectory(trajectory, frames=frames, dt_fs=dt_fs)
        self._results: AnalysisResults | None = None

    @property
    def trajectory(self) -> Trajectory:
        """The trajectory (after the ``frames`` selection of ``__init__``)."""
        return self._traj

    @property
    def results(self) -> Any:
        """The typed results of the last :meth:`run`; raises :class:`AnalysisError` before it."""
        if self._results is None:
            raise AnalysisError(f"{type(self).__name__} results are not available yet: call run() first")
        return self._results

    def run(self, start: int | None = None, stop: int | None = None, step: int | None = None, *,
            progress: Progress = False) -> Any:
        """Analyse frames ``start:stop:step`` of the selected frames; returns ``self``.

        Parameters
        ----------
        start, stop, step
            Python slice over the frames selected in ``__init__`` (negative ``start``/``stop`` count from the
            end; ``step`` >= 1).
        progress
            ``False``, ``True`` (tqdm bar) or ``"log"`` (lines on the ``tfbsim.progress`` logger).

        Raises
        ------
        AnalysisError
            The selection holds no frame (or too few for this analysis), or a bound is not an integer.
        """
        progress = _check_progress(progress)
        ids = select_frame_ids(self._traj.n_frames, start, stop, step)
        self._results = self._analyse(self._traj.subset(ids), ids, progress)
        return self

    @abc.abstractmethod
    def _analyse(self, frames: Trajectory, ids: np.ndarray, progress: Progress) -> AnalysisResults:
        """Analyse ``frames`` (a view of the selected frames; ``ids`` their indices in the selection)."""

    def _positions(self, frames: Trajectory, progress: Progress, desc: str | None = None,
                   indices: Sequence[int] | np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream ``(positions (n, 3), cell (3, 3))`` of ``frames`` (Å), reporting progress."""
        yield from progress_iter(frames.iter_positions(indices), frames.n_frames, desc or self.name, progress)
