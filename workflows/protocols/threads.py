"""Torch intra-op threads for one stage: set on entry, restored on exit (no global state left behind)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["torch_threads"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` torch intra-op threads inside the block (this process), then restore the previous number.

    ``None`` or 0 leaves torch's setting alone. A serial stage (a melt–quench) on an otherwise idle machine
    runs faster with all free cores (the MACE potential's tensor operations are multi-threaded).
    """
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if int(threads) != before:
        logger.info("torch threads %d -> %d for this stage", before, int(threads))
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
