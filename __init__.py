"""tfbsim — atomistic interface simulation for all-solid-state thin-film batteries.

Build crystals, slabs, amorphous LiPON and their interfaces (``tfbsim.structures``, ``tfbsim.interfaces``),
run machine-learned-potential MD on them (``tfbsim.workflows``), and analyse Li transport, LiPON speciation
and interphase growth (``tfbsim.analysis``).

The short public API below is imported lazily, so ``import tfbsim`` (and ``tfbsim --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module (relative to the package) that defines it
_API: dict[str, str] = {
    # errors
    "TfbsimError": "errors",
    "ConfigError": "errors",
    "StructureError": "errors",
    "PotentialError": "errors",
    "ModelNotFoundError": "errors",
    "TrajectoryError": "errors",
    "AnalysisError": "errors",
    "SimulationUnstable": "errors",
    "RunInterrupted": "errors",
    # files
    "read_structure": "structures.io",
    "write_structure": "structures.io",
    # crystals and slabs
    "build_crystal": "structures.crystals",
    "list_crystals": "structures.crystals",
    "make_slab": "structures.slabs",
    "slab_terminations": "structures.slabs",
    "set_vacuum": "structures.slab_cell",
    "repeat_lateral": "structures.slab_cell",
    # amorphous LiPON
    "build_lipon": "structures.amorphous",
    "parse_formula": "structures.composition",
    "integer_counts": "structures.composition",
    "melt_quench": "workflows.protocols.melt_quench",
    "restart_melt_quench": "workflows.protocols.melt_quench",
    "MeltQuenchConfig": "workflows.protocols.melt_quench",
    "make_amorphous_lipon": "workflows.protocols.lipon",
    # interfaces and full cells
    "build_interface": "interfaces.builder",
    "match_lattices": "interfaces.matching",
    "make_interface": "workflows.protocols.interface_quench",
    "quench_on_substrate": "workflows.protocols.interface_quench",
    "relax_interface": "workflows.protocols.interface_quench",
    "check_li_melting": "workflows.protocols.li_melting",
    # potentials and provenance
    "load_potential": "workflows.potentials.factory",
    "potential_config_of": "workflows.potentials.factory",
    "PotentialConfig": "workflows.potentials.config",
    "check_coverage": "workflows.potentials.factory",
    "provenance": "workflows.provenance",
    "configure_logging": "cli",
    # MD and relaxation
    "run_md": "workflows.md.run",
    "restart_md": "workflows.md.run",
    "start_or_resume": "workflows.md.resume",
    "MDResult": "workflows.md.run",
    "MDConfig": "workflows.md.config",
    "run_md_batch": "workflows.md.batch",
    "relax": "workflows.md.relax",
    # diffusion and transport
    "TrajectoryAnalysis": "analysis.base",
    "AnalysisResults": "analysis.base",
    "DiffusionAnalysis": "analysis.diffusion",
    "LayerDiffusion": "analysis.layer_diffusion",
    "fit_arrhenius": "analysis.transport",
    "arrhenius_from_results": "analysis.transport",
    "nernst_einstein_sigma_S_cm": "analysis.transport",
    # coordination and speciation
    "Coordination": "analysis.coordination",
    "classify_atoms": "analysis.speciation",
    "partial_rdf": "analysis.rdf",
    "RDF": "analysis.rdf",
    "lipon_speciation": "analysis.speciation_report",
    "bonds": "analysis.neighbours",
    # interphase
    "Interphase": "analysis.interphase",
    "classify_environments": "analysis.environments",
    "fit_growth": "analysis.growth",
    # deposition and reactive anneal (issue 21)
    "deposit": "workflows.protocols.deposition",
    "DepositionConfig": "workflows.protocols.deposition_config",
    "DepositionResult": "workflows.protocols.deposition",
    "deposition_substrate": "workflows.protocols.deposition_setup",
    "plan_deposition": "workflows.protocols.deposition_setup",
    "reactive_anneal": "workflows.protocols.reactive_anneal",
    "ReactiveAnnealConfig": "workflows.protocols.reactive_anneal",
    "deposition_profile": "analysis.deposition_profile",
    # campaigns and the results database
    "run_campaign": "workflows.campaigns.driver",
    "load_campaign": "workflows.campaigns.config",
    "CampaignConfig": "workflows.campaigns.config",
    "ResultsDB": "workflows.campaigns.resultsdb",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    try:
        module = _API[name]
    except KeyError:
        raise AttributeError(f"module 'tfbsim' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
