"""Dataset generation, labelling, training (mace_run_train) and evaluation of MACE potentials."""
