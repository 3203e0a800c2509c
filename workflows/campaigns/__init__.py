"""Campaigns: structures × temperatures × replicas run as tasks on local cores or Slurm through Parsl.

``config`` (the campaign YAML), ``tasks`` (the task plan), ``driver`` (:func:`run_campaign`), ``worker``
(what runs inside a task), ``executors`` (local / Slurm site files), ``resultsdb`` (the ASE results
database), ``report`` (summary and Arrhenius report), ``locks`` and ``parsl_guard``.
"""
