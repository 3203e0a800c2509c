"""Pure builders that return :class:`ase.Atoms`: crystals, slabs, amorphous LiPON.

No MD, no analysis, no files unless asked (see :mod:`tfbsim.structures.io`).
"""
