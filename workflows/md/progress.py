"""Progress lines for long stages (MD runs, relaxations), as log records that survive a non-terminal stderr.

A tqdm bar redraws one line with carriage returns: under Slurm, ``nohup`` or ``make demo | tee`` it shows
nothing useful until the end. :class:`ProgressReporter` instead logs one plain line at INFO on the logger
``tfbsim.progress`` at most every ``interval_s`` seconds (default 30 s, or the environment variable
``TFBSIM_PROGRESS_S``) and one at the end::

    INFO tfbsim.progress: MD nvt-bussi anneal: step 1200/10000 (12.0%), T 612 K, 35.2 steps/s, ETA 4m10s
    INFO tfbsim.progress: relax (120 atoms, cell z): step 40, max|F| 0.312 eV/Å, E -512.3456 eV, 3.1 steps/s

The CLI shows this logger at INFO unless ``--quiet`` (:func:`tfbsim.cli.app.configure_logging`); in a
notebook, ``logging.getLogger("tfbsim.progress").setLevel("INFO")`` plus any handler shows it. A reporter only
reads the clock when asked (at the runner's event steps, after each optimiser step), so it costs nothing
measurable.
"""

from __future__ import annotations

import logging
import math
import os
import time

__all__ = ["ProgressReporter", "PROGRESS_LOGGER", "DEFAULT_INTERVAL_S", "default_interval_s", "format_duration"]

#: Name of the logger that carries progress lines.
PROGRESS_LOGGER = "tfbsim.progress"
#: Seconds between two progress lines unless ``TFBSIM_PROGRESS_S`` says otherwise.
DEFAULT_INTERVAL_S = 30.0
_ENV = "TFBSIM_PROGRESS_S"

logger = logging.getLogger(PROGRESS_LOGGER)


def default_interval_s() -> float:
    """The interval between progress lines (s): ``$TFBSIM_PROGRESS_S`` if set to a number >= 0, else 30 s."""
    text = os.environ.get(_ENV)
    if text is None or not text.strip():
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        logging.getLogger(__name__).warning("%s=%r is not a number of seconds >= 0; using %g s", _ENV, text,
                                            DEFAULT_INTERVAL_S)
        return DEFAULT_INTERVAL_S
    return value


def format_duration(seconds: float) -> str:
    """``42s``, ``4m10s``, ``2h05m`` (``?`` when unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class ProgressReporter:
    """Time-throttled progress lines of one stage on the ``tfbsim.progress`` logger.

    Parameters
    ----------
    label
        What runs, e.g. ``"MD nvt-bussi anneal"`` or ``"relax (120 atoms)"``; starts every line.
    total
        Planned number of steps (MD), or ``None`` when open-ended (a relaxation's step limit is not a plan).
    start_step
        The step the stage starts (or resumes) from; rates and ETAs count from here.
    interval_s
        Minimum time between two periodic lines (s); ``None``: :func:`default_interval_s`.
    """

    def __init__(self, label: str, *, total: int | None = None, start_step: int = 0,
                 interval_s: float | None = None) -> None:
        self.label = label
        self.total = None if total is None else int(total)
        self.start_step = int(start_step)
        self.interval_s = default_interval_s() if interval_s is None else float(interval_s)
        self.t_start = self.t_last = time.monotonic()
        self.lines = 0

    def due(self) -> bool:
        """Whether a periodic line is due (``interval_s`` passed since the start or the last line)."""
        return time.monotonic() - self.t_last >= self.interval_s

    def rate(self, step: int) -> float:
        """Steps per wall-clock second since the start (NaN before the first step)."""
        elapsed = time.monotonic() - self.t_start
        steps = step - self.start_step
        return steps / elapsed if elapsed > 0 and steps > 0 else float("nan")

    def update(self, step: int, *, temperature_k: float | None = None, fmax_ev_ang: float | None = None,
               energy_ev: float | None = None, force: bool = False) -> bool:
        """Log a line if one is due (or ``force``); returns whether it did."""
        if not force and not self.due():
            return False
        self._emit(self._line(step, temperature_k, fmax_ev_ang, energy_ev))
        return True

    def done(self, step: int, *, temperature_k: float | None = None, fmax_ev_ang: float | None = None,
             energy_ev: float | None = None, note: str = "done") -> None:
        """The closing line: steps, wall time and rate of the stage, and the last observables."""
        elapsed = time.monotonic() - self.t_start
        total = f"/{self.total}" if self.total is not None else ""
        parts = [f"{note} at step {step}{total} after {format_duration(elapsed)}"]
        rate = self.rate(step)
        if math.isfinite(rate):
            parts.append(f"{rate:.3g} steps/s")
        parts += self._observables(temperature_k, fmax_ev_ang, energy_ev)
        self._emit(f"{self.label}: " + ", ".join(parts))

    # ------------------------------------------------------------------------------------------ internals
    def _line(self, step: int, temperature_k: float | None, fmax_ev_ang: float | None,
              energy_ev: float | None) -> str:
        if self.total:
            parts = [f"step {step}/{self.total} ({100.0 * step / self.total:.1f}%)"]
        else:
            parts = [f"step {step}"]
        parts += self._observables(temperature_k, fmax_ev_ang, energy_ev)
        rate = self.rate(step)
        if math.isfinite(rate):
            parts.append(f"{rate:.3g} steps/s")
            if self.total:
                parts.append(f"ETA {format_duration(max(self.total - step, 0) / rate)}")
        return f"{self.label}: " + ", ".join(parts)

    @staticmethod
    def _observables(temperature_k: float | None, fmax_ev_ang: float | None, energy_ev: float | None) -> list[str]:
        parts = []
        if temperature_k is not None:
            parts.append(f"T {temperature_k:.0f} K")
        if fmax_ev_ang is not None:
            parts.append(f"max|F| {fmax_ev_ang:.3f} eV/Å")
        if energy_ev is not None:
            parts.append(f"E {energy_ev:.4f} eV")
        return parts

    def _emit(self, text: str) -> None:
        self.t_last = time.monotonic()
        self.lines += 1
        logger.info(text)
