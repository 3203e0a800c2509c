"""Analyses of structures and trajectories: coordination/speciation, Li diffusion, interphase composition.

Every trajectory analysis (:class:`~tfbsim.analysis.coordination.Coordination`, :class:`~tfbsim.analysis.rdf.RDF`,
:class:`~tfbsim.analysis.diffusion.DiffusionAnalysis`, :class:`~tfbsim.analysis.layer_diffusion.LayerDiffusion`,
:class:`~tfbsim.analysis.interphase.Interphase`) follows one contract, :mod:`tfbsim.analysis.base`: settings in
``__init__``, ``run(start, stop, step, *, progress)`` returns ``self``, typed ``results`` with ``to_dict()``.

Never imports :mod:`tfbsim.workflows`.
"""

# Issue 19 (transport you can trust): exported lazily, so that importing one analysis module stays light.
_LAZY_EXPORTS = {
    "CollectiveTransport": "collective", "CollectiveResults": "collective", "combine_collective": "collective",
    "DiffusiveCriteria": "diffusion_checks", "DiffusiveCheck": "diffusion_checks", "is_diffusive": "diffusion_checks",
    "NetworkCriteria": "diffusion_checks", "NetworkCheck": "diffusion_checks", "network_mobility": "diffusion_checks",
    "check_transport": "diffusion", "classify_diffusion_record": "diffusion_checks",
    "NonGaussian": "mechanism", "SelfVanHove": "mechanism", "Hops": "mechanism", "detect_hops": "mechanism",
}


def __getattr__(name):  # PEP 562
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Issue 20 (glass structure from physics): diffraction-level structure, bond angles, network dynamics (lazy too).
_LAZY_EXPORTS.update({
    "Scattering": "scattering", "ScatteringResults": "scattering", "faber_ziman_weights": "scattering",
    "structure_factor": "scattering", "max_r_ang": "scattering", "xray_form_factor": "scattering_tables",
    "BondAngles": "bond_angles", "BondAngleResults": "bond_angles",
    "NetworkDynamics": "network_dynamics", "NetworkDynamicsResults": "network_dynamics",
    "speciation_steady_state": "network_dynamics", "compare_structure": "structure_reference",
    "nd_na_trend": "structure_reference", "STRUCTURE_REFERENCES": "structure_reference",
})
