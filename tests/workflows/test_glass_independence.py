"""Glass independence study: designs, melt measurement, comparison, resumability; the melt forgets a design."""

from __future__ import annotations

import pytest
from test_protocols import CrashingLJ

from tfbsim.structures.amorphous import build_lipon
from tfbsim.structures.io import read_json
from tfbsim.workflows.protocols.glass_independence import DESIGNS, compare_designs, run_glass_independence

TINY_MQ = {"preset": "quick", "timestep_fs": 1.0, "melt_k": 3000.0, "melt_ps": 0.1, "quench_rate_k_ps": 1.0e5,
           "final_k": 2000.0, "anneal_ps": 0.0, "prerelax_steps": 5, "final_relax_steps": 0, "traj_every": 4,
           "log_every": 4, "checkpoint_every": 20, "glass_transition": False,
           "network_check": {"min_exchanges_per_p": 0.5, "min_lifetime_fs": 8.0}}


def _changed(record, key="speciation_after_melt") -> float:
    designed, after = record["speciation_designed"], record[key]
    return sum(abs(after[k] - designed[k]) for k in designed if after.get(k) is not None)


def test_designs_are_what_they_say():
    apical = build_lipon("Li2.5PO3N0.5", 42, seed=1, **DESIGNS["apical"]).info["speciation_designed"]["N"]
    bridging = build_lipon("Li2.5PO3N0.5", 42, seed=1, **DESIGNS["bridging"]).info["speciation_designed"]["N"]
    assert apical["Na"] == 1.0 and bridging["Nd"] == 1.0
    assert "speciation_designed" not in build_lipon("Li2.5PO3N0.5", 42, seed=1, **DESIGNS["random"]).info


def test_study_records_designs_melts_and_glasses_and_resumes(tmp_path):
    cfg = {"compositions": ["Li2.5PO3N0.5"], "designs": ["apical", "bridging"], "seeds": [1], "n_atoms": 42,
           "melt_quench": TINY_MQ}
    out = run_glass_independence(cfg, tmp_path, CrashingLJ())
    assert out["complete"] and len(out["glasses"]) == 2
    for record in out["glasses"]:
        assert record["exchanges_per_p"] > 0.5 and record["melt_stopped_by"] in ("converged", "no_extension")
        assert _changed(record) > 0.1  # the melt forgot the design (LJ has no P-O chemistry: it scrambles)
        assert isinstance(record["speciation_steady_before_quench"], bool)
    comp = out["comparison"]["Li2.5PO3N0.5"]
    assert comp["designs"] == ["apical", "bridging"] and "Nd" in comp["fractions"]
    assert read_json(tmp_path / "independence.json")["glasses"] == out["glasses"]
    calc = CrashingLJ()
    run_glass_independence(cfg, tmp_path, calc)  # a finished study is reused, not recomputed
    assert calc.n_calls <= 4


def test_comparison_flags_a_design_dependent_fraction():
    rows = [{"composition": "X", "design": d, "seed": s, "speciation_glass": {"Nd": nd + 0.01 * s, "Ob": 0.2}}
            for d, nd in (("apical", 0.1), ("bridging", 0.6)) for s in (1, 2)]
    comp = compare_designs(rows, tolerance=0.05)["X"]
    assert comp["independent"] is False and comp["dependent_fractions"] == ["Nd"]
    assert comp["fractions"]["Ob"]["independent"] is True


@pytest.mark.slow
def test_bundled_melt_changes_a_wrong_design(tmp_path):
    """Physics: on the bundled model a hot melt exchanges P-N/P-O bonds and moves an all-bridging-N box."""
    from tfbsim.workflows.potentials.factory import load_potential

    mq = {**TINY_MQ, "melt_ps": 1.0, "traj_every": 20, "network_check": {"min_exchanges_per_p": 0.5}}
    cfg = {"compositions": ["Li2.5PO3N0.5"], "designs": ["bridging"], "seeds": [1], "n_atoms": 42,
           "melt_quench": mq}
    record = run_glass_independence(cfg, tmp_path, load_potential("bundled"))["glasses"][0]
    assert record["exchanges_per_p"] >= 0.5
    assert _changed(record) > 0.05
