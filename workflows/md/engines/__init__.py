"""MD engines behind one interface (ASE on CPU/GPU; a GPU-resident batched engine)."""
