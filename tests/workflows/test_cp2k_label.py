"""DFT labelling with CP2K: input deck, output parsing (units, stress sign), failures recorded and skipped.

The parse test reads a real CP2K 2023.1 output (tests/data/cp2k/li2o_400ry.out: Li2O, 3 atoms, PBE,
DZVP-MOLOPT-SR-GTH, 400 Ry). The live tests run a 2-atom single point at a low cutoff (seconds; H2, whose soft pseudopotential converges at a low cutoff) and skip when
CP2K is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.units import GPa, Bohr, Hartree

from tfbsim.errors import ConfigError
from tfbsim.workflows.training.cp2k import (
    Cp2kCalculator,
    Cp2kSettings,
    LabellingFailed,
    cp2k_input,
    cp2k_single_point,
    parse_output,
    resolve_basis,
)
from tfbsim.workflows.training.label import label_frames, read_failed, read_labelled

DATA = Path(__file__).resolve().parents[1] / "data" / "cp2k"
have_cp2k = shutil.which("cp2k.psmp") is not None and Path("/usr/share/cp2k/BASIS_MOLOPT").is_file()
needs_cp2k = pytest.mark.skipif(not have_cp2k, reason="CP2K not installed (apt-get install cp2k)")
FAST = Cp2kSettings(cutoff_ry=250, rel_cutoff_ry=40, basis="SZV-MOLOPT-SR-GTH", eps_scf=1e-7)  # H: soft pseudopotential


def test_parse_real_output_units_and_stress_sign():
    text = (DATA / "li2o_400ry.out").read_text()
    out = parse_output(text, 3, want_stress=True)
    assert out["energy"] == pytest.approx(-30.895263507082461 * Hartree, abs=1e-9)
    assert out["forces"][2] == pytest.approx(np.array([0.00122801, -0.01070341, 0.00963650]) * Hartree / Bohr)
    # CP2K prints +3.418 GPa (its sign: positive = compressed); ASE's stress is the opposite
    assert out["stress"][0] == pytest.approx(-3.41798762438 * GPa)
    assert out["stress"][5] == pytest.approx(-1.99086511418e-02 * GPa)  # xy
    assert out["stress"][3] == pytest.approx(+2.19783553214e-01 * GPa)  # yz
    assert out["scf_steps"] == 50


def test_parse_refuses_unconverged_and_truncated_output():
    text = (DATA / "li2o_400ry.out").read_text()
    with pytest.raises(LabellingFailed, match="not converged"):
        parse_output(text.replace("SCF run converged in    50 steps", "SCF run NOT converged"), 3, want_stress=True)
    with pytest.raises(LabellingFailed, match="stress"):
        parse_output(text.split("STRESS|")[0], 3, want_stress=True)
    with pytest.raises(LabellingFailed, match="rows"):
        parse_output(text, 4, want_stress=False)


def test_input_deck_names_every_setting():
    atoms = Atoms("Li2PON", positions=np.random.default_rng(0).uniform(0, 5, (5, 3)), cell=[6, 6, 6], pbc=True)
    settings = Cp2kSettings(cutoff_ry=450, kpoints=[2, 2, 1], electronic_temperature_k=500)
    deck = cp2k_input(atoms, settings)
    for piece in ("CUTOFF 450", "REL_CUTOFF 60", "XC_FUNCTIONAL PBE", "MONKHORST-PACK 2 2 1",
                  "ELECTRONIC_TEMPERATURE [K] 500", "BASIS_SET DZVP-MOLOPT-SR-GTH", "POTENTIAL GTH-PBE-q5",
                  "POTENTIAL GTH-PBE-q3", "STRESS_TENSOR ANALYTICAL", "PERIODIC XYZ"):
        assert piece in deck, piece
    slab = atoms.copy()
    slab.pbc = [True, True, False]
    assert "STRESS_TENSOR ANALYTICAL" not in cp2k_input(slab, settings) and "PERIODIC XY\n" in cp2k_input(slab, settings)
    assert settings.spec() == "cp2k:PBE/DZVP-MOLOPT-SR-GTH/GTH-PBE/450Ry/k2x2x1"


def test_bad_settings_are_refused_before_running():
    with pytest.raises(ConfigError, match="valence"):
        resolve_basis(Cp2kSettings(), ["Li", "Xe"])
    with pytest.raises(ConfigError, match="not in"):
        resolve_basis(Cp2kSettings(basis="NO-SUCH-BASIS"), ["Li"])
    with pytest.raises(ConfigError, match="kpoints"):
        cp2k_single_point(Atoms("Li", cell=[5, 5, 5], pbc=True), Cp2kSettings(kpoints=[2, 2]))
    with pytest.raises(ConfigError, match="executable"):
        cp2k_single_point(Atoms("Li", cell=[5, 5, 5], pbc=True), Cp2kSettings(executable="no-such-cp2k"))


@needs_cp2k
def test_live_single_point_forces_are_the_energy_gradient():
    atoms = Atoms("H2", positions=[[0.0, 0.0, 0.0], [0.80, 0.05, 0.03]], cell=[4.0, 4.0, 4.0], pbc=True)
    calc = Cp2kCalculator(FAST)
    atoms.calc = calc
    f = atoms.get_forces()
    assert calc.parameters["version"].startswith("CP2K")
    assert np.abs(f.sum(axis=0)).max() < 1e-2  # Newton's third law, up to the grid (egg-box) error
    d = 2e-3
    e = []
    for sign in (1, -1):
        probe = atoms.copy()
        probe.positions[1, 0] += sign * d
        probe.calc = Cp2kCalculator(FAST)
        e.append(probe.get_potential_energy())
    assert f[1, 0] == pytest.approx(-(e[0] - e[1]) / (2 * d), abs=2e-3)


@needs_cp2k
def test_live_timeout_is_a_recorded_failure_and_resume_skips_it(tmp_path):
    frames = [Atoms("H2", positions=[[0, 0, 0], [0.75 + 0.05 * i, 0, 0]], cell=[4, 4, 4], pbc=True) for i in range(2)]
    for i, a in enumerate(frames):
        a.info["config_type"] = "dimer"
        a.info["split"] = ["train", "test"][i]
    out = tmp_path / "pbe.extxyz"
    slow = Cp2kCalculator(FAST.model_copy(update={"timeout_s": 0.05}))
    report = label_frames(frames[:1], slow, out)
    assert report["n_failed"] == 1 and report["n_labelled"] == 0 and not out.exists() or out.stat().st_size == 0
    assert read_failed(out)[0]["reason"].startswith("timeout")
    report = label_frames(frames, Cp2kCalculator(FAST), out)  # the failed one is skipped, the other labelled
    assert (report["n_labelled"], report["n_skipped"]) == (1, 1)
    (labelled,) = read_labelled(out)
    assert labelled.info["split"] == "test" and "REF_stress" in labelled.info
    card = json.loads(out.with_name(out.name + ".card.json").read_text())
    assert card["teacher"]["settings"]["cutoff_ry"] == 250 and card["frames_per_split"] == {"test": 1}
    assert card["n_failed_or_rejected"] == 1


class _Flaky(Calculator):
    """Fails on frames whose first x coordinate is negative; harmonic otherwise."""

    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms.positions[0, 0] < 0:
            raise LabellingFailed("SCF not converged")
        self.results = {"energy": float((self.atoms.positions ** 2).sum()), "forces": -2 * self.atoms.positions,
                        "stress": np.zeros(6)}


class _DiesOnFourth(_Flaky):
    """A DFT-like calculator (it has ``settings``) whose process is killed on the fourth frame."""

    settings = Cp2kSettings()
    calls = 0

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        type(self).calls += 1
        if type(self).calls == 4:
            raise KeyboardInterrupt  # the run stops here, as a killed background job does
        super().calculate(atoms, properties, system_changes)


@pytest.mark.parametrize("workers", [1, 2])
def test_dft_card_is_current_after_every_frame_when_the_run_dies(tmp_path, workers):
    frames = [Atoms("H2", positions=[[x, 0, 0], [1, 0, 0]], cell=[5, 5, 5], pbc=True) for x in (0.1, 0.2, 0.3, 0.4, 0.5)]
    out = tmp_path / "d.extxyz"
    _DiesOnFourth.calls = 0
    with pytest.raises(KeyboardInterrupt):
        label_frames(frames, _DiesOnFourth if workers > 1 else _DiesOnFourth(), out, workers=workers)
    kept = read_labelled(out)
    assert len(kept) >= 2
    card = json.loads(out.with_name(out.name + ".card.json").read_text())
    assert card["n_frames"] == len(kept)


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_frames_are_never_kept_and_retry_relabels_them(tmp_path, workers):
    frames = [Atoms("H2", positions=[[x, 0, 0], [1, 0, 0]], cell=[5, 5, 5], pbc=True) for x in (0.1, -0.2, 0.3, -0.4)]
    out = tmp_path / "d.extxyz"
    calc = _Flaky if workers > 1 else _Flaky()
    report = label_frames(frames, calc, out, workers=workers)
    assert (report["n_labelled"], report["n_failed"]) == (2, 2)
    kept = read_labelled(out)
    assert sorted(a.positions[0, 0] for a in kept) == pytest.approx([0.1, 0.3])
    assert label_frames(frames, _Flaky(), out)["n_skipped"] == 4  # resume: nothing recomputed
    assert label_frames(frames, _Flaky(), out, retry_failed=True)["n_failed"] == 2
    with pytest.raises(ConfigError, match="factory"):
        label_frames(frames, _Flaky(), tmp_path / "e.extxyz", workers=2)


def test_convergence_check_compares_levels_and_resumes(tmp_path, monkeypatch):
    import tfbsim.workflows.training.cp2k_convergence as conv

    calls = []

    def fake(atoms, settings):  # the larger cutoff gives 2 % stiffer forces; the larger basis 5 %
        calls.append(settings.spec())
        scale = 1.02 if settings.cutoff_ry > 600 else 1.05 if "TZV2P" in settings.basis else 1.0
        return {"energy": -1.0, "forces": scale * np.arange(9.0).reshape(3, 3), "stress": np.zeros(6),
                "scf_steps": 10, "wall_s": 1.0}

    monkeypatch.setattr(conv, "cp2k_single_point", fake)
    atoms = Atoms("Li2O", positions=[[0, 0, 0], [1, 1, 1], [2, 2, 2]], cell=[5, 5, 5], pbc=True)
    report = conv.convergence_check(atoms, cache=tmp_path / "points")
    assert report["variants"]["cutoff_800Ry"]["s_li"] == pytest.approx(1 / 1.02, rel=1e-4)
    assert report["variants"]["TZV2P"]["s_li"] == pytest.approx(1 / 1.05, rel=1e-4)
    assert report["variants"]["DZVP-UZH"]["s_li"] == pytest.approx(1.0, rel=1e-4)
    assert len(calls) == 4
    assert conv.convergence_check(atoms, cache=tmp_path / "points") == report and len(calls) == 4  # resumed


def test_convergence_check_takes_its_base_from_the_labelled_dataset(tmp_path, monkeypatch):
    from ase.io import write

    import tfbsim.workflows.training.cp2k_convergence as conv
    from tfbsim.workflows.training.cp2k import Cp2kSettings
    from tfbsim.workflows.training.label import frame_id

    calls = []

    def fake(atoms, settings):  # the variant's forces are 5 % stronger than the dataset's
        calls.append(settings.spec())
        return {"energy": -2.0, "forces": 1.05 * np.arange(9.0).reshape(3, 3), "stress": np.full(6, 0.01),
                "scf_steps": 10, "wall_s": 1.0}

    monkeypatch.setattr(conv, "cp2k_single_point", fake)
    atoms = Atoms("Li2O", positions=[[0, 0, 0], [1, 1, 1], [2, 2, 2]], cell=[5, 5, 5], pbc=True)
    labelled = atoms.copy()
    labelled.info.update(REF_energy=-1.0, REF_stress=np.zeros(6), frame_id=frame_id(atoms), label_wall_s=7.0)
    labelled.arrays["REF_forces"] = np.arange(9.0).reshape(3, 3)
    write(tmp_path / "d.extxyz", [labelled], format="extxyz")
    card = tmp_path / "d.extxyz.card.json"
    card.write_text(json.dumps({"teacher": {"settings": Cp2kSettings().level_of_theory()}}))

    base = conv.labelled_point(atoms, tmp_path / "d.extxyz", Cp2kSettings())
    report = conv.convergence_check(atoms, variants={"TZV2P": conv.DEFAULT_VARIANTS["TZV2P"]}, base_point=base)
    assert len(calls) == 1 and "TZV2P" in calls[0]  # the base was not computed again
    row = report["variants"]["TZV2P"]
    assert row["s_li"] == pytest.approx(1 / 1.05, rel=1e-4) and row["energy_diff_mev_atom"] == pytest.approx(1000 / 3)
    assert report["base"]["wall_s"] == 7.0
    with pytest.raises(ConfigError, match="cutoff_ry"):  # labelled at another cutoff
        conv.labelled_point(atoms, tmp_path / "d.extxyz", Cp2kSettings(cutoff_ry=400))
    other = atoms.copy()
    other.positions[0, 0] += 0.1
    with pytest.raises(ConfigError, match="no labels of this frame"):
        conv.labelled_point(other, tmp_path / "d.extxyz", Cp2kSettings())


@needs_cp2k
def test_live_scf_starts_from_the_previous_frame_when_the_atoms_match():
    def dimer(x):
        return Atoms("H2", positions=[[0, 0, 0], [x, 0.02, 0]], cell=[4, 4, 4], pbc=True)

    reuse = Cp2kCalculator(FAST)
    first, second = dimer(0.74), dimer(0.76)
    first.calc = reuse
    first.get_potential_energy()
    assert reuse.last_guess == "atomic"
    second.calc = reuse
    e_reused = second.get_potential_energy()
    steps_reused = reuse.last_scf_steps
    assert reuse.last_guess == "previous frame"
    fresh = second.copy()
    fresh.calc = Cp2kCalculator(FAST.model_copy(update={"reuse_wavefunction": False}))
    e_fresh = fresh.get_potential_energy()
    assert fresh.calc.last_guess == "atomic" and steps_reused < fresh.calc.last_scf_steps
    assert e_reused == pytest.approx(e_fresh, abs=1e-4)  # the same state, within the SCF threshold
    assert np.allclose(second.get_forces(), fresh.get_forces(), atol=2e-3)
    other = Atoms("H3", positions=[[0, 0, 0], [0.74, 0, 0], [2.0, 1.0, 0]], cell=[4, 4, 4], pbc=True)
    other.calc = reuse  # other atoms: the atomic guess again
    other.get_potential_energy()
    assert reuse.last_guess == "atomic"


@needs_cp2k
def test_labels_of_another_level_of_theory_are_not_appended(tmp_path):
    frames = [Atoms("H2", positions=[[0, 0, 0], [0.74 + 0.02 * i, 0, 0]], cell=[4, 4, 4], pbc=True) for i in range(2)]
    out = tmp_path / "pbe.extxyz"
    label_frames(frames[:1], Cp2kCalculator(FAST), out)
    before = out.read_bytes()
    with pytest.raises(ConfigError, match=r"another level of theory .*cutoff_ry 250.0 → 300.0"):
        label_frames(frames, Cp2kCalculator(FAST.model_copy(update={"cutoff_ry": 300.0})), out)
    assert out.read_bytes() == before
    # how the frames are computed (threads, timeout, wavefunction reuse) is not the level of theory
    faster = FAST.model_copy(update={"threads": 2, "timeout_s": 100.0, "reuse_wavefunction": False})
    assert label_frames(frames, Cp2kCalculator(faster), out)["n_labelled"] == 1


def test_convergence_check_scores_models_against_every_level(tmp_path, monkeypatch):
    import tfbsim.workflows.training.cp2k_convergence as conv
    import tfbsim.workflows.training.dft_comparison as comparison

    base_forces = np.array([[0.3, -0.2, 0.1], [-0.5, 0.4, 0.2], [0.2, -0.2, -0.3]])

    def fake(atoms, settings):  # TZV2P forces 5 % weaker than the production ones
        scale = 1 / 1.05 if "TZV2P" in settings.basis else 1.0
        return {"energy": -1.0, "forces": scale * base_forces, "stress": np.zeros(6), "scf_steps": 10, "wall_s": 1.0}

    class Half(Calculator):  # a "model" whose forces are half the production ones, pressure 1 GPa
        implemented_properties = ["energy", "forces", "stress"]
        closed = False

        def calculate(self, atoms=None, properties=None, system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            self.results = {"energy": 0.0, "forces": 0.5 * base_forces, "stress": np.array([-1, -1, -1, 0, 0, 0]) * GPa}

        def close(self):
            Half.closed = True

    monkeypatch.setattr(conv, "cp2k_single_point", fake)
    monkeypatch.setattr(comparison, "comparison_model", lambda spec: Half())
    atoms = Atoms("Li2O", positions=[[0, 0, 0], [1, 1, 1], [2, 2, 2]], cell=[5, 5, 5], pbc=True)
    report = conv.convergence_check(atoms, variants={"TZV2P": conv.DEFAULT_VARIANTS["TZV2P"]}, models={"m": "x"})
    scores = report["models"]["m"]
    assert scores["base"]["force_slope_per_element"] == {"Li": 0.5, "O": 0.5}
    assert scores["TZV2P"]["force_slope_per_element"]["Li"] == pytest.approx(0.5 * 1.05, abs=1e-4)
    assert scores["base"]["pressure_diff_gpa"] == pytest.approx(1.0) and Half.closed


@needs_cp2k
def test_a_killed_labeller_takes_its_solver_with_it(tmp_path):
    """SIGKILL to the labelling process (a killed background job) must not leave CP2K running as an orphan."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tfbsim.workflows.campaigns.parsl_guard import process_start_time

    pidfile = tmp_path / "solver.pid"
    fake = tmp_path / "fake-cp2k"  # stands in for the solver: records its pid, then runs "for an hour"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 600\n")
    fake.chmod(0o755)
    script = (
        "from ase import Atoms\n"
        "from tfbsim.workflows.training.cp2k import Cp2kSettings, cp2k_single_point\n"
        f"s = Cp2kSettings(executable={str(fake)!r}, cutoff_ry=250, rel_cutoff_ry=40, basis='SZV-MOLOPT-SR-GTH')\n"
        "cp2k_single_point(Atoms('H2', positions=[[0, 0, 0], [0, 0, 0.74]], cell=[5, 5, 5], pbc=True), s)\n"
    )
    labeller = subprocess.Popen([sys.executable, "-c", script])
    solver = None
    try:
        deadline = time.monotonic() + 120
        while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
            assert labeller.poll() is None, "the labeller ended before it started the solver"
            time.sleep(0.1)
        solver = int(pidfile.read_text())
        labeller.kill()
        labeller.wait()
        deadline = time.monotonic() + 10
        while process_start_time(solver) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process_start_time(solver) is None, "the solver outlived its killed labeller"
    finally:
        if labeller.poll() is None:
            labeller.kill()
        if solver is not None and process_start_time(solver) is not None:
            os.kill(solver, signal.SIGKILL)
