"""Stack phases into interfaces and full cells with region tags and strain reports (pure builders).

- :func:`tfbsim.interfaces.builder.build_interface` — the entry point (``tfbsim build interface``);
- :mod:`tfbsim.interfaces.phases` — the stack grammar (``li:100,lipon,licoo2:104:x=0.5``), facets, defaults;
- :mod:`tfbsim.interfaces.matching` — near-square lateral supercells, ZSL lattice matching, in-plane strain;
- :mod:`tfbsim.interfaces.stacking` — gaps, vacuum or periodic sandwich, shifts, regions, distance checks.

Melt–quench on the substrate and relaxation along the normal need a potential and live in
:mod:`tfbsim.workflows.protocols.interface_quench`.
"""
