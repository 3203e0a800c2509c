"""SevenNet worker: runs under the separate SevenNet environment (``make sevenn-env``), not tfbsim's.

Reads one JSON object per line on stdin (``numbers``, ``positions`` Å, ``cell`` Å, ``pbc``) and answers one
JSON line per frame on stdout: ``energy`` (eV), ``forces`` (eV/Å), ``stress`` (Voigt, eV/Å³, ASE sign) or
``error``. The first line it writes is ``{"ready": ..., "sevenn_version": ...}``. Standalone on purpose: it
imports nothing from tfbsim (whose dependencies pin e3nn 0.4.4, SevenNet needs ≥ 0.5).

Usage: python sevennet_worker.py MODEL DEVICE THREADS
"""

import json
import sys


def main() -> int:
    model, device, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import numpy as np
    import torch
    from ase import Atoms

    torch.set_num_threads(threads)
    import sevenn
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator(model=model, device=device)
    sys.stdout.write(json.dumps({"ready": True, "model": model, "sevenn_version": sevenn.__version__,
                                 "torch_version": torch.__version__}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            frame = json.loads(line)
            atoms = Atoms(numbers=frame["numbers"], positions=frame["positions"], cell=frame["cell"],
                          pbc=frame["pbc"])
            atoms.calc = calc
            out = {"energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces().tolist()}
            if atoms.pbc.all():
                out["stress"] = np.asarray(atoms.get_stress(voigt=True)).tolist()
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which records the frame as failed
            out = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
