"""The ``tfbsim demo`` main job: its settings (``config``), stages (``run``, ``structure``, ``interface``) and report."""
