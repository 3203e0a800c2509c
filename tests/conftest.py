"""Shared fixtures: small structures, a tiny random-weight MACE model, CLI runner.

No fixture touches the network; everything is written under pytest's ``tmp_path``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

ELEMENTS = ["Li", "N", "O", "P", "S", "Co"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point the mace cache (XDG_CACHE_HOME) at an empty folder so no test sees a user's models."""
    cache = tmp_path_factory.getbasetemp() / "xdg-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))


@pytest.fixture(scope="session")
def tiny_mace_path(tmp_path_factory):
    """A tiny random-weight MACE model (Li N O P S Co, float64) saved as a pickled ``.model`` file."""
    from tfbsim.workflows.potentials.mace_backend import build_random_mace, import_mace

    torch = import_mace().torch
    model = build_random_mace(ELEMENTS, preset="tiny", r_max_ang=4.5, seed=1, dtype="float64")
    path = tmp_path_factory.mktemp("models") / "tiny.model"
    torch.save(model, path)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def cli_runner():
    from typer.testing import CliRunner

    return CliRunner()


def pytest_collection_modifyitems(config, items):
    """Skip gpu-marked tests without CUDA (they are also deselected by default)."""
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_gpu = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip)


os.environ.setdefault("MPLBACKEND", "Agg")
