"""Analyses of structures and trajectories: coordination/speciation, Li diffusion, interphase composition.

Never imports :mod:`tfbsim.workflows`.
"""
