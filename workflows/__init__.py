"""Everything that runs a potential or schedules work: potentials, MD, protocols, training, campaigns."""
