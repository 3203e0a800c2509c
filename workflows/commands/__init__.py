"""The command modules of the ``tfbsim`` CLI (registered by :mod:`tfbsim.cli`); heavy imports stay inside
the command functions so that ``tfbsim --help`` is fast."""
