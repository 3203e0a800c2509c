"""``python -m tfbsim.cli``: the same as the ``tfbsim`` command."""

from .app import main

main()
