"""The ``tfbsim demo`` main job (``run``) and its Markdown/HTML report (``report``)."""
