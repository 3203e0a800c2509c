"""Benchmark of the gpu MD engine (issue 12): ASE path vs gpu engine vs the bare model, and a batched sweep.

Systems: amorphous LiPON boxes (``build_lipon("Li2.94PO3.50N0.31", n, mode="random")``, 2.4 g/cm³). Models:
randomly initialised MACE with MACE-MP-0-sized hyper-parameters — L0: 2 interactions, 128x0e, r_max 6 Å,
max_ell 3, correlation 3, 10 Bessel functions, radial MLP [64, 64, 64]; L1: the same with 128x0e + 128x1o —
in float32 (``--dtype``), with and without cuEquivariance (``--cueq``; CUDA only unless forced).

For every size and model, in one process and interleaved:

(a) ``ase``: ``run_md`` with the ASE engine (MACE's ASE calculator, its CPU neighbour list, host↔device copies
    every step), NVT Langevin, production intervals (frames every 100 steps, log/guards every 10), in memory;
(b) ``gpu``: the same with ``engine: gpu``;
(c) ``bare``: the model's energy + forces on a graph built once (no neighbour list, no integrator): the
    ceiling.

atom-steps/s = atoms × steps / s of the MD loop (``MDResult.steps_per_s``; start-up excluded). Targets on a
GPU: (b)/(a) ≥ 5 at 4,000 atoms, (b)/(c) ≥ 0.8. Then the sweep: ``--batch`` temperatures × ``--batch-atoms``
atoms in one ``run_md_batch`` vs the same runs one after another with the gpu engine (target ≥ 8× on a GPU).
``--torchsim`` adds TorchSim 0.3.0 (``MaceModel`` + ``nvt_langevin``) for comparison.

Usage (GPU): ``python bench/gpu_engine.py --device cuda``; a CPU smoke run:
``python bench/gpu_engine.py --device cpu --sizes 216 --models L0 --steps 5 --batch 4 --batch-atoms 100``.
Prints a Markdown section for BENCHMARKS.md and, with ``--json``, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
import warnings

import numpy as np

MP0 = {"num_interactions": 2, "channels": 128, "r_max": 6.0, "num_bessel": 10, "radial_mlp": [64, 64, 64]}


def mp0_sized_mace(elements, lmax: int, dtype: str, seed: int = 0):
    """Random-weight ScaleShiftMACE with MACE-MP-0 small (L0) / medium (L1) hyper-parameters."""
    from ase.data import atomic_numbers
    from tfbsim.workflows.potentials.mace_backend import import_mace

    ns = import_mace()
    torch, o3, modules = ns.torch, ns.o3, ns.modules
    zs = sorted(atomic_numbers[s] for s in set(elements))
    hidden = f"{MP0['channels']}x0e" + (f" + {MP0['channels']}x1o" if lmax == 1 else "")
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
        model = modules.ScaleShiftMACE(
            r_max=MP0["r_max"], num_bessel=MP0["num_bessel"], num_polynomial_cutoff=5, max_ell=3,
            interaction_cls=block, interaction_cls_first=block, num_interactions=MP0["num_interactions"],
            num_elements=len(zs), hidden_irreps=o3.Irreps(hidden), MLP_irreps=o3.Irreps("16x0e"),
            atomic_energies=np.full(len(zs), -2.0), avg_num_neighbors=60.0, atomic_numbers=zs, correlation=3,
            gate=torch.nn.functional.silu, radial_MLP=MP0["radial_mlp"], atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
        )
    return model.to(torch.float32 if dtype == "float32" else torch.float64)


def calculator(model, device: str, dtype: str):
    """MACE's ASE calculator around ``model``, with the tfbsim identity keys run_md records."""
    from tfbsim.workflows.potentials.mace_backend import import_mace

    calc = import_mace().MACECalculator(models=[model.to(device)], device=device, default_dtype=dtype)
    calc.parameters.update(spec="bench-random-mace", kind="mace-file", dtype=dtype, device=device,
                           elements=["Li", "P", "O", "N"], r_max_ang=MP0["r_max"], sha256=None)
    return calc


def box(n_atoms: int, seed: int = 0):
    from tfbsim.structures.amorphous import build_lipon

    return build_lipon("Li2.94PO3.50N0.31", n_atoms, mode="random", seed=seed)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def md_rate(atoms, calc, engine: str, steps: int, temperature_k: float = 600.0, cueq="auto") -> float:
    """steps/s of the MD loop (run_md, in memory, NVT Langevin, production intervals)."""
    from tfbsim.workflows.md.config import MDConfig
    from tfbsim.workflows.md.run import run_md

    config = MDConfig(ensemble="nvt-langevin", steps=steps, temperature_k=temperature_k,
                      initial_temperature_k=temperature_k, traj_every=100, log_every=10, guard_every=10,
                      checkpoint_every=10**6, engine=engine, guard_t_factor=None, guard_min_distance_ang=0.5,
                      guard_max_force_ev_ang=1e6)
    if engine == "gpu":
        from tfbsim.workflows.md.batch import run_md_gpu

        return run_md_gpu(atoms, calc, config, cueq=cueq).steps_per_s
    return run_md(atoms, calc, config).steps_per_s


def bare_rate(atoms, model, device: str, steps: int) -> float:
    """Energy+force evaluations per second on a graph built once (the model's ceiling)."""
    import torch

    graph = model.graph([atoms.numbers], [atoms.pbc])
    positions = torch.tensor(atoms.positions, dtype=torch.float64, device=model.device)
    cells = torch.tensor(atoms.cell.array, dtype=torch.float64, device=model.device)[None]
    edge_index, unit_shifts = model.edges(graph, positions, cells)
    pos = positions.to(model.dtype)
    cell = cells.to(model.dtype)
    shifts = torch.einsum("be,bec->bc", unit_shifts, cell[graph.batch[edge_index[0]]])
    data = {"node_attrs": graph.node_attrs, "edge_index": edge_index, "shifts": shifts, "unit_shifts": unit_shifts,
            "cell": cell.reshape(-1, 3), "batch": graph.batch, "ptr": graph.ptr, "head": graph.head}

    def once():
        out = model.model({**data, "positions": pos.clone()}, training=False, compute_force=True)
        return out["forces"]

    once()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        once()
    sync(device)
    return steps / (time.perf_counter() - start)


def torchsim_rate(atoms, model, device: str, steps: int, temperature_k: float = 600.0) -> float:
    """TorchSim 0.3.0: MaceModel (its vesin_nl_ts neighbour list) + nvt_langevin, steps/s."""
    import torch
    from tfbsim.workflows.potentials.mace_backend import import_mace

    import_mace()  # mace first, inside tfbsim's weights-only guard; torch_sim imports mace at import time
    import torch_sim as ts
    from torch_sim.models.mace import MaceModel
    from torch_sim.units import MetalUnits

    dev = torch.device(device)
    dtype = next(model.parameters()).dtype
    ts_model = MaceModel(model=model, device=dev, dtype=dtype, compute_stress=False)
    state = ts.io.atoms_to_state([atoms], device=dev, dtype=dtype)
    kT = torch.tensor(temperature_k * MetalUnits.temperature, device=dev, dtype=dtype)
    dt = torch.tensor(0.001 * MetalUnits.time, device=dev, dtype=dtype)  # 1 fs
    init, update = ts.integrators.nvt_langevin(model=ts_model, dt=dt, kT=kT)
    md = init(state, kT=kT, seed=1)
    md = update(md)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        md = update(md)
    sync(device)
    return steps / (time.perf_counter() - start)


def sweep(model_calc, device: str, n_systems: int, n_atoms: int, steps: int, cueq) -> tuple[float, float]:
    """Wall seconds of n_systems × steps batched and one after another (gpu engine)."""
    from tfbsim.workflows.md.batch import run_md_batch, run_md_gpu
    from tfbsim.workflows.md.config import MDConfig

    systems = [box(n_atoms, seed=i) for i in range(n_systems)]
    temps = np.linspace(500, 1200, n_systems)
    configs = [MDConfig(ensemble="nvt-langevin", steps=steps, temperature_k=t, initial_temperature_k=t, seed=i,
                        traj_every=100, log_every=10, checkpoint_every=10**6, engine="gpu", guard_t_factor=None,
                        guard_min_distance_ang=0.5, guard_max_force_ev_ang=1e6) for i, t in enumerate(temps)]
    run_md_gpu(systems[0], model_calc, configs[0].model_copy(update={"steps": 2}), cueq=cueq)  # warm-up
    sync(device)
    start = time.perf_counter()
    for atoms, config in zip(systems, configs):
        run_md_gpu(atoms, model_calc, config, cueq=cueq)
    sync(device)
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    run_md_batch(systems, model_calc, configs, cueq=cueq)
    sync(device)
    return sequential, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[216, 1000, 4000])
    parser.add_argument("--models", nargs="+", default=["L0", "L1"], choices=["L0", "L1"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--steps", type=int, default=50, help="MD steps per measurement")
    parser.add_argument("--cueq", default="both", choices=["both", "on", "off"],
                        help="both: without and (on CUDA, when installed) with cuEquivariance")
    parser.add_argument("--batch", type=int, default=8, help="systems in the sweep (0: skip)")
    parser.add_argument("--batch-atoms", type=int, default=500)
    parser.add_argument("--batch-steps", type=int, default=None, help="steps per sweep system (default --steps)")
    parser.add_argument("--sweep-model", default="L0", choices=["L0", "tiny"],
                        help="model of the sweep: MP-0-sized L0, or tfbsim's tiny preset (overhead-bound regime)")
    parser.add_argument("--torchsim", action="store_true", help="also time TorchSim 0.3.0 (if installed)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="write the numbers to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    from tfbsim.workflows.md.engines.torch_model import TorchMACE, cueq_available

    if args.threads:
        torch.set_num_threads(args.threads)
    on_cuda = args.device.startswith("cuda")
    cueq_modes = {"both": [False] + ([True] if on_cuda and cueq_available() else []), "on": [True],
                  "off": [False]}[args.cueq]
    rows: list[dict] = []
    results = {"device": args.device, "dtype": args.dtype, "rows": rows}
    for lname in args.models:
        lmax = int(lname[1])
        for cueq in cueq_modes:
            model = mp0_sized_mace(["Li", "P", "O", "N"], lmax, args.dtype)
            calc = calculator(model, args.device, args.dtype)
            tm = TorchMACE.from_calculator(calc, cueq=cueq)
            for n in args.sizes:
                atoms = box(n)
                bare = bare_rate(atoms, tm, args.device, max(3, args.steps // 2))
                gpu = md_rate(atoms, calc, "gpu", args.steps, cueq=cueq)
                ase = md_rate(atoms, calc, "ase", args.steps) if not cueq else float("nan")
                row = {"model": lname, "cueq": cueq, "atoms": len(atoms), "ase_atom_steps_s": ase * len(atoms),
                       "gpu_atom_steps_s": gpu * len(atoms), "bare_atom_steps_s": bare * len(atoms),
                       "gpu_over_ase": gpu / ase, "gpu_over_bare": gpu / bare}
                if args.torchsim:
                    try:
                        row["torchsim_atom_steps_s"] = torchsim_rate(atoms, model, args.device, args.steps) * len(atoms)
                    except Exception as exc:  # optional comparison
                        row["torchsim_error"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.batch:
        if args.sweep_model == "tiny":
            from tfbsim.workflows.potentials.mace_backend import build_random_mace

            model = build_random_mace(["Li", "P", "O", "N"], preset="tiny", r_max_ang=MP0["r_max"], dtype=args.dtype)
        else:
            model = mp0_sized_mace(["Li", "P", "O", "N"], 0, args.dtype)
        calc = calculator(model, args.device, args.dtype)
        seq, bat = sweep(calc, args.device, args.batch, args.batch_atoms, args.batch_steps or args.steps,
                         cueq=cueq_modes[-1])
        results["sweep"] = {"model": args.sweep_model, "systems": args.batch, "atoms": args.batch_atoms,
                            "sequential_s": seq, "batched_s": bat, "speedup": seq / bat}
        print(json.dumps(results["sweep"]), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    device_name = torch.cuda.get_device_name() if on_cuda else (platform.processor() or platform.machine())
    print(f"\n## GPU MD engine (issue 12) — {args.device}\n")
    print(f"Device: {device_name}; torch {torch.__version__}, {args.dtype}, threads {torch.get_num_threads()}; "
          f"{args.steps} NVT Langevin steps per measurement (frames every 100, log/guards every 10).\n")
    ts_col = " TorchSim 0.3.0 |" if args.torchsim else ""
    print(f"| model | cuEq | atoms | (a) ASE path | (b) gpu engine | (c) bare model |{ts_col} b/a | b/c |")
    print("|---|---|---|---|---|---|" + ("---|" if args.torchsim else "") + "---|---|")
    for r in rows:
        ts_cell = f" {r.get('torchsim_atom_steps_s', float('nan')):.0f} |" if args.torchsim else ""
        print(f"| {r['model']} | {'yes' if r['cueq'] else 'no'} | {r['atoms']} | {r['ase_atom_steps_s']:.0f} | "
              f"{r['gpu_atom_steps_s']:.0f} | {r['bare_atom_steps_s']:.0f} |{ts_cell} {r['gpu_over_ase']:.2f} | "
              f"{r['gpu_over_bare']:.2f} |")
    if "sweep" in results:
        s = results["sweep"]
        print(f"\nSweep ({s['model']}): {s['systems']} temperatures × {s['atoms']} atoms: one after another "
              f"{s['sequential_s']:.1f} s, "
              f"batched {s['batched_s']:.1f} s → {s['speedup']:.2f}×")


if __name__ == "__main__":
    main()
