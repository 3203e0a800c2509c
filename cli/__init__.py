"""The ``tfbsim`` command line: a thin Typer layer over the library.

:mod:`~tfbsim.cli.app` holds the plumbing (logging, exit codes, global options) and registers one command
module per group: ``build``, ``analyze``, ``potential``, ``train``, ``md``/``relax``, ``run``/``db``
(``campaign``) and ``demo``. Heavy imports stay inside the command functions so that ``tfbsim --help`` is fast.
"""

from .app import app, configure_logging, main

__all__ = ["app", "configure_logging", "main"]
