"""The demo's structure stage: G(r)/S(Q) of the equilibrated glass, the literature table and the speciation.

The glass is the one stage 1 made (``glass/``): its relaxed final structure gives the speciation
(:class:`~tfbsim.analysis.coordination.Coordination`), and the anneal stage of the melt–quench (NVT/NPT at the
final temperature after the quench, ``glass/4_anneal/traj.h5md``) gives thermally averaged partial g(r),
neutron and X-ray G(r) and S(Q) (:class:`~tfbsim.analysis.scattering.Scattering`; the final structure alone
when that trajectory is missing). :func:`~tfbsim.analysis.structure_reference.compare_structure` puts the
measured numbers beside the literature and crystal references. Everything goes to ``results/structure.json``
and ``results/coordination.json`` (with provenance) and ``figures/G_r.png``, ``figures/S_q.png``,
``figures/speciation.png``.

The record also says how the glass was made — ``quench``: the quench settings, and whether the melt's network
was checked for steady speciation before the quench (``network_check``; the quick preset does not check it, so
the speciation of the quick demo is that of a fast quench from a melt of unknown equilibration, not an emergent
steady-state structure).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ...structures.io import read_json, read_structure, write_json, write_structure

__all__ = ["structure_stage"]

logger = logging.getLogger(__name__)


def _anneal_trajectory(glass_dir: Path) -> Path | None:
    hits = sorted(glass_dir.glob("*_anneal/traj.h5md"))
    return hits[0] if hits else None


def structure_stage(out: Path, glass_dir: Path, block: dict[str, Any]) -> dict[str, Any]:
    """Run the structure analyses on the demo's glass (see the module docstring); returns the report's record.

    Parameters
    ----------
    out
        The demo folder.
    glass_dir
        The melt–quench folder (``final.extxyz``, ``summary.json``, stage folders).
    block
        Provenance block of the demo (model, config, seed).
    """
    from ...analysis.coordination import Coordination
    from ...analysis.plots import plot_coordination
    from ...analysis.plots_structure import plot_structure_factor, plot_total_G
    from ...analysis.scattering import Scattering
    from ...analysis.structure_reference import compare_structure

    glass_path = glass_dir / "final.extxyz"
    glass = read_structure(glass_path)
    write_structure(out / "structures" / "lipon_quenched.extxyz", glass)
    speciation = Coordination(glass).run().results.to_dict()
    write_json(out / "results" / "coordination.json", speciation,
               provenance={**block, "input": str(glass_path), "analysis": "tfbsim.analysis.coordination"})
    plot_coordination(speciation, out / "figures" / "speciation.png")

    traj = _anneal_trajectory(glass_dir)
    source = traj if traj is not None else glass_path
    scattering = Scattering(str(source) if traj is not None else glass, dr_ang=0.02, q_max_inv_ang=20.0).run()
    sdata = scattering.results.to_dict()
    mean_n = {k: speciation["N"].get(k) for k in ("Nd", "Na", "Nt")}
    table = compare_structure(sdata, None, mean_n)
    summary = read_json(glass_dir / "summary.json") if (glass_dir / "summary.json").exists() else {}
    quench = {
        "preset": summary.get("preset"), "total_md_ps": summary.get("total_md_ps"),
        "quench_rate_k_ps": (summary.get("provenance", {}).get("config") or {}).get("quench_rate_k_ps"),
        "network_check": summary.get("network") is not None,
        "speciation_steady_before_quench": summary.get("speciation_steady_before_quench"),
        "network": summary.get("network"),
        "density_final_g_cm3": summary.get("density_final_g_cm3"),
        "glass_transition": summary.get("glass_transition"),
    }
    record = {
        "source": {"trajectory": str(source), "n_frames": sdata["n_frames"],
                   "what": "anneal stage of the melt-quench (after the quench, at its final temperature)"
                   if traj is not None else "the relaxed quenched glass (one frame)"},
        "quench": quench,
        "peaks": sdata["peaks"], "cn": sdata["cn"], "cn_cutoff_ang": sdata["cn_cutoff_ang"],
        "r_max_ang": sdata["r_max_ang"], "q_min_inv_ang": sdata["q_min_inv_ang"],
        "density_atoms_ang3": sdata["density_atoms_ang3"],
        "comparison": table,
        "scattering": sdata,
    }
    write_json(out / "results" / "structure.json", record,
               provenance={**block, "input": str(source), "analysis": "tfbsim.analysis.scattering, "
                           "tfbsim.analysis.structure_reference"})
    plot_total_G(sdata, out / "figures" / "G_r.png")
    plot_structure_factor(sdata, out / "figures" / "S_q.png")
    return {**speciation, "scattering_summary": {k: v for k, v in record.items() if k != "scattering"}}
