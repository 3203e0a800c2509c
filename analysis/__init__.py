"""Analyses of structures and trajectories: coordination/speciation, Li diffusion, interphase composition.

Every trajectory analysis (:class:`~tfbsim.analysis.coordination.Coordination`, :class:`~tfbsim.analysis.rdf.RDF`,
:class:`~tfbsim.analysis.diffusion.DiffusionAnalysis`, :class:`~tfbsim.analysis.layer_diffusion.LayerDiffusion`,
:class:`~tfbsim.analysis.interphase.Interphase`) follows one contract, :mod:`tfbsim.analysis.base`: settings in
``__init__``, ``run(start, stop, step, *, progress)`` returns ``self``, typed ``results`` with ``to_dict()``.

Never imports :mod:`tfbsim.workflows`.
"""
