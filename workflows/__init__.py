"""Everything that runs a potential or schedules work, one subpackage per job.

=============  ===========================================================================================
``potentials``  the one potential factory (MACE files and foundations, the bundled model, CHGNet, EMT, LJ),
                the mace backend, single-point evaluation, ``models/`` (the bundled MACE file and its card)
``md``          MD and relaxation: ``MDConfig``, ``run_md``/``restart_md``, start-or-resume of a run
                directory, the batched (GPU-resident) runs, guards, run directory, checkpoints, H5MD writer,
                ``engines/`` (ASE engine, GPU engine, thermostats)
``protocols``   multi-stage recipes on top of MD: melt–quench, the amorphous-LiPON recipe, glass on a
                substrate / interface relaxation, the Li melting check
``campaigns``   structures × temperatures × replicas on local cores or Slurm (Parsl): config, task plan,
                driver, worker, executors, results database, report, locks
``training``    dataset generation, labelling, mace training wrapper, evaluation, the bundled-model recipe
``demo``        the ``tfbsim demo`` main job and its report
=============  ===========================================================================================

``config`` (strict YAML/pydantic machinery, :class:`~tfbsim.workflows.config.PotentialConfig`) and
``provenance`` (the one provenance stamp) are shared by all of them.
"""
