"""The one analysis contract (:mod:`tfbsim.analysis.base`), checked on every trajectory analysis.

Settings are validated in ``__init__``; ``results`` raises before ``run()``; ``run(start, stop, step, *,
progress)`` returns ``self`` and analyses exactly the frames ``start:stop:step`` (the same numbers as the
analysis of those frames alone); ``results.to_dict()`` is strict JSON.

The synthetic trajectory encodes the frame index ``k`` in the positions: every atom is shifted along z by
``K_SHIFT_ANG * k`` and the Li atoms follow a seeded random walk, so g(r), the z-profiles and the MSD all
depend on which frames are read.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from ase.build import bulk

from tfbsim.analysis.base import TrajectoryAnalysis, select_frame_ids
from tfbsim.analysis.coordination import Coordination
from tfbsim.analysis.diffusion import DiffusionAnalysis, LayerDiffusion
from tfbsim.analysis.interphase import Interphase
from tfbsim.analysis.rdf import RDF
from tfbsim.analysis.trajectory import Trajectory
from tfbsim.errors import AnalysisError, ConfigError, TfbsimError

N_FRAMES = 24
DT_PS = 0.1
K_SHIFT_ANG = 0.37


def encoded_frames(n_frames: int = N_FRAMES, seed: int = 5):
    """Li2O (antifluorite, 96 atoms); frame k: all atoms shifted by K_SHIFT_ANG * k along z, Li random walk."""
    base = bulk("OLi2", "fluorite", a=4.61, cubic=True) * (2, 2, 2)
    rng = np.random.default_rng(seed)
    li = np.flatnonzero(base.numbers == 3)
    walk = np.cumsum(rng.normal(0.0, 0.12, (n_frames, len(li), 3)), axis=0)
    walk[0] = 0.0
    frames = []
    for k in range(n_frames):
        atoms = base.copy()
        atoms.positions[li] += walk[k]
        atoms.positions[:, 2] += K_SHIFT_ANG * k
        atoms.info["time_ps"] = DT_PS * k
        frames.append(atoms)
    return frames


# name -> (factory(trajectory, **extra), bad settings that __init__ must refuse)
ANALYSES = {
    "coordination": (lambda t, **kw: Coordination(t, **{"rdf_pairs": ["Li-O"], "rdf_r_max_ang": 4.0, **kw}),
                     {"cutoffs": {"P-N": -1.0}}),
    "rdf": (lambda t, **kw: RDF(t, **{"pairs": ["Li-O", "O-O"], "r_max_ang": 4.0, "bin_width_ang": 0.1, **kw}),
            {"r_max_ang": -1.0}),
    "diffusion": (lambda t, **kw: DiffusionAnalysis(t, **kw), {"axis": "w"}),
    "layer_diffusion": (lambda t, **kw: LayerDiffusion(t, **{"z_edges_ang": [0.0, 4.61, 9.22], **kw}),
                        {"z_edges_ang": [1.0]}),
    "interphase": (lambda t, **kw: Interphase(t, **{"bin_ang": 1.5, **kw}), {"threshold": 0.0}),
}


def _without_frame_indices(data):
    """The record without frame indices (they count from the start of whichever trajectory was read)."""
    if isinstance(data, dict):
        return {k: _without_frame_indices(v) for k, v in data.items() if k not in ("frame", "frames")}
    if isinstance(data, list):
        return [_without_frame_indices(v) for v in data]
    return data


@pytest.fixture(scope="module")
def frames():
    return encoded_frames()


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level(logging.ERROR, logger="tfbsim.analysis")  # MSD-linearity warnings of a short walk


@pytest.mark.parametrize("name", list(ANALYSES))
def test_results_before_run_raise_and_run_returns_self(frames, name):
    make, _ = ANALYSES[name]
    analysis = make(frames)
    assert isinstance(analysis, TrajectoryAnalysis)
    with pytest.raises(AnalysisError, match=r"call run\(\) first"):
        analysis.results
    assert analysis.run() is analysis
    assert analysis.results.n_frames == N_FRAMES


@pytest.mark.parametrize("name", list(ANALYSES))
@pytest.mark.parametrize("window", [(3, 22, 2), (-10, None, None), (1, None, 4)])
def test_start_stop_step_select_the_frames(frames, name, window):
    make, _ = ANALYSES[name]
    expected = list(range(N_FRAMES))[slice(*window)]
    selected = make(frames).run(*window).results
    alone = make([frames[k] for k in expected]).run().results
    assert selected.n_frames == len(expected)
    if getattr(selected, "frames", None) is not None:
        assert list(selected.frames) == expected
    assert _without_frame_indices(selected.to_dict()) == _without_frame_indices(alone.to_dict())
    # and the frames matter: another window of the same length gives other numbers
    shifted = [k + 1 for k in expected] if expected[-1] + 1 < N_FRAMES else [k - 1 for k in expected]
    other = make([frames[k] for k in shifted]).run().results
    assert _without_frame_indices(other.to_dict()) != _without_frame_indices(alone.to_dict())


@pytest.mark.parametrize("name", list(ANALYSES))
def test_to_dict_is_strict_json(frames, name):
    make, _ = ANALYSES[name]
    data = make(frames).run(step=2).results.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data


@pytest.mark.parametrize("name", list(ANALYSES))
def test_bad_settings_raise_in_init(frames, name):
    make, bad = ANALYSES[name]
    with pytest.raises(TfbsimError):
        make(frames, **bad)


@pytest.mark.parametrize("name", list(ANALYSES))
def test_bad_run_arguments(frames, name):
    make, _ = ANALYSES[name]
    analysis = make(frames[:6])
    for kwargs, match in (({"step": 0}, "positive"), ({"step": -1}, "positive"), ({"start": 1.5}, "integer"),
                          ({"start": 10}, "selects none")):
        with pytest.raises(AnalysisError, match=match):
            analysis.run(**kwargs)
    with pytest.raises(ConfigError, match="progress"):
        analysis.run(progress="bar")


def test_progress_log_lines(frames, caplog):
    caplog.set_level(logging.INFO, logger="tfbsim.progress")
    Interphase(frames, bin_ang=1.5).run(step=2, progress="log")
    lines = [r.getMessage() for r in caplog.records if r.name == "tfbsim.progress"]
    assert lines and lines[-1].startswith("interphase: 12/12 frames")


def test_trajectory_subset_reads_only_the_selected_frames(frames, tmp_path):
    from tfbsim.structures.io import write_structure

    path = tmp_path / "t.extxyz"
    write_structure(path, frames[:8])
    for source in (frames[:8], path):
        traj = Trajectory(source, frames="1:")  # frames 1..7 of the source
        view = traj.subset(select_frame_ids(traj.n_frames, 1, None, 3))  # source frames 2 and 5
        z0 = frames[0].positions[0, 2]
        k = [round((pos[0, 2] - z0) / K_SHIFT_ANG) for pos, _ in view.iter_positions()]
        assert k == [2, 5] and view.times_ps == pytest.approx([0.2, 0.5])
        assert view.n_frames == 2 and traj.n_frames == 7


def test_msd_time_axis_follows_the_selected_frames(frames):
    res = DiffusionAnalysis(frames).run(2, None, 3).results
    assert res.n_frames == len(range(2, N_FRAMES, 3))
    assert res.dt_fs == pytest.approx(3 * DT_PS * 1000)
    assert res.lag_ps == pytest.approx(np.arange(res.n_frames) * 3 * DT_PS)
    with pytest.raises(AnalysisError, match="at least 3 frames"):
        DiffusionAnalysis(frames).run(stop=2)
    with pytest.raises(AnalysisError, match="exceeds"):
        DiffusionAnalysis(frames, fit_end_ps=2.0).run(stop=10)  # fine for 24 frames, not for 10


def test_trajectory_with_frames_is_refused(frames):
    with pytest.raises(ConfigError, match="Trajectory"):
        Coordination(Trajectory(frames), frames="::2")
    with pytest.raises(ConfigError, match="Trajectory"):
        DiffusionAnalysis(Trajectory(frames), dt_fs=100.0)
