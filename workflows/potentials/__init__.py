"""Potentials: the one factory (:func:`~tfbsim.workflows.potentials.factory.load_potential`), the mace
backend that loads MACE files, single-point evaluation, and ``models/`` (the bundled MACE model and its card).
"""
