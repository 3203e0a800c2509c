"""Run-directory files: H5MD trajectories, checkpoints, logs."""
