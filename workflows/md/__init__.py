"""Molecular dynamics and relaxation: configuration, the runner, run directories and their files.

``config`` (:class:`MDConfig`), ``run`` (:func:`run_md`, :func:`restart_md`), ``resume`` (the one
start-or-resume rule for a run directory), ``setup`` (validation and potential resolution shared by the
single and batched paths), ``batch`` (batched/GPU-resident runs), ``runner`` (the step loop, logging,
checkpoints), ``guards``, ``relax``, ``rundir``/``checkpoint``/``h5md`` (the run directory's files) and
``engines/`` (ASE and GPU integrators, thermostats).
"""
