"""Vapour deposition: atoms arrive one by one (or in small groups) at the free surface of a slab.

:func:`deposit` runs the protocol of issue 21 with its own small integrator, because the number of atoms changes
during the run (the MD runner of :mod:`tfbsim.workflows.md` keeps it fixed). Its pieces are the project's:
checkpoints (:func:`~tfbsim.workflows.md.checkpoint.write_checkpoint`, atomic, float64, the generator state
included), guards (:func:`~tfbsim.workflows.md.guards.check_guards`), signals
(:func:`~tfbsim.workflows.md.signals.stop_on_signals`), progress lines
(:class:`~tfbsim.workflows.md.progress.ProgressReporter`) and provenance.

Protocol
--------
- Setup (:func:`~tfbsim.workflows.protocols.deposition_setup.plan_deposition`): every check happens before a file
  is written; the bottom ``fix_bottom_ang`` of the substrate is fixed, the other substrate atoms are thermostatted
  (Langevin BAOAB or Berendsen rescaling on those atoms only) except the top ``nve_surface_ang``.
- Events ``k = 0, 1, ...`` happen at step ``k × interval`` (``interval = group_size / flux_per_ps``). Each event
  inserts ``group_size`` atoms at a random lateral position at the height ``film top + clearance_ang`` (film
  top = the highest atom that is not in flight); a point closer than ``min_insert_distance_ang`` to any atom
  (periodic images included) is re-drawn. Each atom gets its kinetic energy (fixed, or drawn from the
  flux-weighted Maxwell distribution) along the direction set by ``angle_deg`` (from the normal, downwards) and
  ``azimuth_deg`` (random when unset). Random numbers come from one seeded generator, in a fixed order:
  per atom the energy, the azimuth, then the lateral draws; then the Langevin noise of each step.
- In flight, atoms move NVE. **Joining rule:** an atom joins the thermostatted set at the first step where it is
  below the film top (it has entered the surface), or ``join_after_ps`` after its insertion (an adatom that
  stays on top), whichever comes first. An atom in flight that moves upwards above its insertion height is
  reflected: it is removed and recorded as such.
- The run stops ``interval + final_ps`` after the last event. Snapshots (``snapshots.extxyz``) are taken just
  before each ``snapshot_every``-th event and at the end; checkpoints just before each ``checkpoint_every``-th
  event, at a SIGTERM/SIGUSR1, and at the end.

Run directory
-------------
``config.yaml``, ``checkpoint.npz``, ``log.csv`` (step, time, atoms, substrate temperature, energies),
``arrivals.csv`` (one row per atom sent: index, event, step, time_ps, position, velocity in Å/fs, kinetic energy
in eV, angles, final status joined/reflected/flying, join time and reason), ``snapshots.extxyz`` (``info``:
step, time_ps, n_sent, n_deposited; ``arrays``: region, fixed, ``dep_arrival``), ``final.extxyz`` and
``deposition.json`` (status, counts, sticking fraction, speeds, plan, provenance).

Resume: calling :func:`deposit` again with the same substrate, model and settings continues from the checkpoint
(the arrival sequence continues from the stored generator state; bit-identical with a potential that keeps no
state between calls, such as MACE); a completed run is returned as it is; different settings, model or substrate
raise :class:`~tfbsim.errors.ConfigError` naming what changed.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.geometry import find_mic

from ...errors import ConfigError, RunInterrupted, SimulationUnstable, StructureError
from ...structures.io import read_json, write_json, write_structure
from ..config import config_hash, dump_yaml, validate_config
from ..md.checkpoint import read_checkpoint, write_checkpoint
from ..md.engines.base import EngineSample
from ..md.guards import check_guards, min_pair_distance
from ..md.progress import ProgressReporter
from ..md.runner import model_identity
from ..md.signals import StopRequest, signal_name, stop_on_signals
from ..potentials.factory import potential_config_of
from ..provenance import provenance, utc_now
from .deposition_config import DepositionConfig
from .deposition_records import (
    ARRIVAL_FIELDS,
    LOG_FIELDS,
    PER_ATOM_ARRAYS,
    DepositionResult,
    check_same_deposition,
    draw_arrival,
    hashed_config,
    read_arrivals,
    result_from_dir,
    truncate_after,
    write_arrivals,
)
from .deposition_setup import DepositionPlan, plan_deposition, substrate_hash

__all__ = ["deposit", "DepositionResult", "read_arrivals", "draw_arrival", "ARRIVAL_FIELDS"]

logger = logging.getLogger(__name__)

_FILES = ("config.yaml", "checkpoint.npz", "log.csv", "arrivals.csv", "snapshots.extxyz", "final.extxyz",
          "deposition.json")


def _as_config(config: DepositionConfig | dict, calc: Calculator) -> DepositionConfig:
    if isinstance(config, dict):
        config = validate_config(DepositionConfig, config)
    elif not isinstance(config, DepositionConfig):
        raise ConfigError(f"config must be a DepositionConfig or a dict, not {type(config).__name__}")
    used = potential_config_of(calc)
    return config if used is None else config.model_copy(update={"potential": used})


# ------------------------------------------------------------------------------------------------ API
def deposit(
    substrate: Atoms,
    calc: Calculator,
    config: DepositionConfig | dict,
    run_dir: str | Path | None = None,
    *,
    progress: bool = False,
) -> DepositionResult:
    """Deposit atoms onto a slab, or continue / return the deposition in ``run_dir`` (module docstring).

    Parameters
    ----------
    substrate
        A slab with vacuum above its top (normal along z), e.g. from
        :func:`~tfbsim.workflows.protocols.deposition_setup.deposition_substrate`; not modified.
    calc
        ASE calculator (:func:`~tfbsim.workflows.potentials.factory.load_potential`).
    config
        :class:`~tfbsim.workflows.protocols.deposition_config.DepositionConfig` or a dict.
    run_dir
        Run directory (``None``: in memory, no checkpoints).
    progress
        Log progress lines on ``tfbsim.progress`` (at least every 30 s).

    Returns
    -------
    DepositionResult

    Raises
    ------
    ConfigError, StructureError, PotentialError
        Bad settings or substrate (nothing written); a run directory made with other settings, model or
        substrate (the message names the keys).
    SimulationUnstable
        A guard tripped, or the film reached the cell top (``deposition.json`` says ``unstable``).
    RunInterrupted
        SIGTERM/SIGUSR1: checkpoint written at the current step; call again to continue.
    """
    config = _as_config(config, calc)
    work, plan = plan_deposition(substrate, calc, config)
    sub_hash = substrate_hash(substrate)
    rd = Path(run_dir) if run_dir is not None else None
    ckpt = None
    if rd is not None and rd.is_dir():
        summary_path = rd / "deposition.json"
        summary = read_json(summary_path) if summary_path.is_file() else {}
        has_ckpt = (rd / "checkpoint.npz").is_file()
        if has_ckpt:
            ckpt = read_checkpoint(rd / "checkpoint.npz")
            check_same_deposition(rd, ckpt.meta, config, calc, sub_hash)
        status = summary.get("status")
        if status == "completed" and ckpt is not None and (rd / "final.extxyz").is_file():
            logger.info("%s: completed deposition reused", rd)
            return result_from_dir(rd, summary)
        if status == "unstable":
            raise SimulationUnstable(
                f"the deposition in {rd} stopped unstable: {(summary.get('diagnostic') or {}).get('message')}; "
                "change the settings and use a new run directory", summary.get("diagnostic"))
        if ckpt is None and any((rd / name).exists() for name in _FILES):
            logger.warning("%s holds a deposition that stopped before its first checkpoint; starting it again", rd)
            for name in _FILES:
                (rd / name).unlink(missing_ok=True)
    runner = _Depositor(work, calc, config, plan, rd, sub_hash=sub_hash, progress=progress,
                        substrate_info={"formula": substrate.get_chemical_formula(), "n_atoms": len(substrate),
                                        "sha256": sub_hash, "z_shift_ang": plan.z_shift_ang,
                                        "provenance": substrate.info.get("provenance")})
    if ckpt is not None:
        runner.restore(ckpt)
    return runner.run()


# ---------------------------------------------------------------------------------------------- runner
class _Depositor:
    """The state and loop of one deposition (fresh or restored from a checkpoint)."""

    def __init__(self, work: Atoms, calc: Calculator, config: DepositionConfig, plan: DepositionPlan,
                 rd: Path | None, *, sub_hash: str, progress: bool, substrate_info: dict) -> None:
        self.c, self.plan, self.rd, self.calc = config, plan, rd, calc
        self.sub_hash, self.progress, self.substrate_info = sub_hash, progress, substrate_info
        self.rng = np.random.default_rng(config.seed)
        self.dt = config.timestep_fs * units.fs
        self.step, self.events_done, self.n_sent = 0, 0, 0
        self.arrivals: list[dict] = []
        self.resumed_step: int | None = None
        self.wall_before = 0.0
        self.started = utc_now()
        self.snapshots: list[Atoms] = []
        self.warnings: list[str] = []
        work.info = {}
        n = len(work)
        fixed = np.asarray(work.arrays["fixed"], dtype=bool)
        z = work.positions[:, 2]
        thermo = ~fixed & (z <= plan.top_z_ang - config.nve_surface_ang) if config.nve_surface_ang > 0 else ~fixed
        work.new_array("dep_thermo", thermo)
        work.new_array("dep_flying", np.zeros(n, dtype=bool))
        work.new_array("dep_arrival", np.full(n, -1, dtype=np.int64))
        work.new_array("dep_arrived_step", np.full(n, -1, dtype=np.int64))
        work.new_array("dep_insert_z", np.full(n, np.nan))
        if not np.any(work.get_momenta()):
            m = work.get_masses()[:, None]
            p = np.sqrt(m * units.kB * config.temperature_k) * self.rng.standard_normal((n, 3))
            p[fixed] = 0.0
            work.set_momenta(p, apply_constraint=False)
        else:
            p = work.get_momenta()
            p[fixed] = 0.0
            work.set_momenta(p, apply_constraint=False)
        self.work = work
        self.config_dump = config.model_dump(mode="json")

    # ------------------------------------------------------------------------------------ checkpointing
    def restore(self, ckpt) -> None:
        atoms, state = ckpt.atoms, ckpt.state
        for key in PER_ATOM_ARRAYS:
            atoms.new_array(key, np.asarray(state[f"dep:{key}"]))
        atoms.info = {}
        self.work = atoms
        self.step = int(state["step"])
        self.events_done = int(state["events_done"])
        self.n_sent = int(state["n_sent"])
        self.rng.bit_generator.state = json.loads(str(state["rng_state"]))
        self.arrivals = json.loads(str(state["arrivals_json"]))
        self.wall_before = float(state["wall_s"])
        self.resumed_step = self.step
        self.started = ckpt.meta.get("started_utc", self.started)
        self.warnings = list(ckpt.meta.get("warnings", []))
        if self.rd is not None:
            truncate_after(self.rd, self.step)
        logger.info("deposition %s resumed at step %d (%d of %d events done)", self.rd, self.step, self.events_done,
                    self.plan.n_events)

    def _checkpoint(self) -> None:
        if self.rd is None:
            return
        w = self.work
        state = {
            "positions": w.get_positions(), "momenta": w.get_momenta(), "cell": w.cell.array.copy(),
            "step": np.array(self.step, dtype=np.int64), "events_done": np.array(self.events_done),
            "n_sent": np.array(self.n_sent), "rng_state": np.array(json.dumps(self.rng.bit_generator.state)),
            "arrivals_json": np.array(json.dumps(self.arrivals)), "wall_s": np.array(self._wall()),
        }
        for key in PER_ATOM_ARRAYS:
            state[f"dep:{key}"] = np.asarray(w.arrays[key])
        static = Atoms(numbers=w.numbers, cell=w.cell, pbc=w.pbc)
        static.new_array("region", np.asarray(w.arrays["region"]).astype(str))
        static.new_array("fixed", np.asarray(w.arrays["fixed"], dtype=bool))
        meta = {"time_ps": self.time_ps, "config": hashed_config(self.c), "config_hash": config_hash(hashed_config(self.c)),
                "model": model_identity(self.calc), "substrate_sha256": self.sub_hash, "plan": self.plan.to_dict(),
                "started_utc": self.started, "warnings": self.warnings, "written_utc": utc_now()}
        write_checkpoint(self.rd / "checkpoint.npz", static, state, meta)
        write_arrivals(self.rd / "arrivals.csv", self.arrivals)
        self.calc.reset()  # a continuing run then computes exactly what a resumed one does

    # -------------------------------------------------------------------------------------------- state
    @property
    def time_ps(self) -> float:
        return self.step * self.c.timestep_fs / 1000.0

    def _wall(self) -> float:
        return self.wall_before + (time.perf_counter() - getattr(self, "t0", time.perf_counter()))

    def _forces(self) -> np.ndarray:
        f = np.asarray(self.work.get_forces(apply_constraint=False), dtype=float).copy()
        f[self.work.arrays["fixed"]] = 0.0
        return f

    def _film_top(self) -> float:
        w = self.work
        return float(w.positions[~w.arrays["dep_flying"], 2].max())

    def _substrate_t(self) -> float:
        w = self.work
        th = w.arrays["dep_thermo"]
        if not th.any():
            return float("nan")
        p, m = w.get_momenta()[th], w.get_masses()[th]
        return float((p**2 / m[:, None]).sum() / (3 * th.sum() * units.kB))

    # ------------------------------------------------------------------------------------------ arrivals
    def _insert(self) -> None:
        c, w = self.c, self.work
        n_new = min(c.group_size, self.plan.n_atoms - self.n_sent)
        z_ins = self._film_top() + self.plan.clearance_ang
        if z_ins > self.plan.cell_top_ang - 1.0:
            self._unstable({"guard": "cell_top", "message": f"the film top reached z = {z_ins - self.plan.clearance_ang:.2f}"
                            f" Å: no room to insert below the cell top {self.plan.cell_top_ang:.2f} Å (add vacuum)"})
        cell = w.cell.array
        mass = float(Atoms(c.species).get_masses()[0])
        positions = w.get_positions()
        new_pos, new_mom = [], []
        for _ in range(n_new):
            energy, phi = draw_arrival(self.rng, c)
            theta = math.radians(c.angle_deg)
            for _try in range(c.max_insert_tries):
                fx, fy = self.rng.random(2)
                pos = fx * cell[0] + fy * cell[1] + np.array([0.0, 0.0, z_ins])
                others = np.vstack([positions, *new_pos]) if new_pos else positions
                _, d = find_mic(others - pos, cell, w.pbc)
                if d.min() >= c.min_insert_distance_ang:
                    break
            else:
                raise StructureError(
                    f"no insertion point {c.min_insert_distance_ang:g} Å from every atom after {c.max_insert_tries} "
                    "draws: the plane above the film is crowded; lower group_size or min_insert_distance_ang")
            speed = math.sqrt(2.0 * energy / mass)
            direction = np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), -math.cos(theta)])
            new_pos.append(pos[None, :])
            new_mom.append(mass * speed * direction[None, :])
            v = speed * direction * units.fs
            self.arrivals.append({
                "index": self.n_sent, "event": self.events_done, "step": self.step, "time_ps": self.time_ps,
                "x_ang": float(pos[0]), "y_ang": float(pos[1]), "z_ang": float(pos[2]), "vx_ang_fs": float(v[0]),
                "vy_ang_fs": float(v[1]), "vz_ang_fs": float(v[2]), "kinetic_energy_ev": energy,
                "polar_deg": float(c.angle_deg), "azimuth_deg": math.degrees(phi), "status": "flying",
                "join_time_ps": None, "join_reason": None})
            self.n_sent += 1
        k = len(new_pos)
        new = Atoms(c.species * k, positions=np.vstack(new_pos), cell=w.cell, pbc=w.pbc)
        new.set_momenta(np.vstack(new_mom), apply_constraint=False)
        new.new_array("region", np.array(["deposit"] * k))
        new.new_array("fixed", np.zeros(k, dtype=bool))
        new.new_array("dep_thermo", np.zeros(k, dtype=bool))
        new.new_array("dep_flying", np.ones(k, dtype=bool))
        new.new_array("dep_arrival", np.arange(self.n_sent - k, self.n_sent, dtype=np.int64))
        new.new_array("dep_arrived_step", np.full(k, self.step, dtype=np.int64))
        new.new_array("dep_insert_z", np.full(k, z_ins))
        calc = w.calc
        w.calc = None
        w.extend(new)
        w.calc = calc
        close = min_pair_distance(w.positions, w.cell.array, w.pbc, c.guard_min_distance_ang)
        assert close is None, f"inserted atoms closer than the guard: {close}"

    def _update_flying(self) -> bool:
        """Join or reflect atoms in flight (joining rule in the module docstring); True if atoms were removed."""
        w = self.work
        fl = w.arrays["dep_flying"]
        if not fl.any():
            return False
        z = w.positions[:, 2]
        top = float(z[~fl].max())
        age_ps = (self.step - w.arrays["dep_arrived_step"]) * self.c.timestep_fs / 1000.0
        below = fl & (z < top)
        timed = fl & ~below & (age_ps >= self.c.join_after_ps)
        vz = w.get_momenta()[:, 2]
        reflected = fl & ~below & ~timed & (vz > 0) & (z > w.arrays["dep_insert_z"] + 0.5)
        for mask, reason in ((below, "below_top"), (timed, "time")):
            for i in np.flatnonzero(mask):
                rec = self.arrivals[int(w.arrays["dep_arrival"][i])]
                rec.update(status="joined", join_time_ps=self.time_ps, join_reason=reason)
        joined = below | timed
        w.arrays["dep_flying"][joined] = False
        w.arrays["dep_thermo"][joined] = True
        if not reflected.any():
            return False
        for i in np.flatnonzero(reflected):
            self.arrivals[int(w.arrays["dep_arrival"][i])].update(status="reflected", join_time_ps=self.time_ps,
                                                                  join_reason="reflected")
        calc = w.calc
        del w[np.flatnonzero(reflected)]
        w.calc = calc
        return True

    # ---------------------------------------------------------------------------------------- integrator
    def _advance(self, f: np.ndarray) -> np.ndarray:
        """One BAOAB (Langevin) or velocity-Verlet + Berendsen step; returns the new forces."""
        c, w, dt = self.c, self.work, self.dt
        free = ~w.arrays["fixed"]
        th = w.arrays["dep_thermo"]
        m = w.get_masses()[:, None]
        x, p = w.get_positions(), w.get_momenta()
        p[free] += 0.5 * dt * f[free]
        x[free] += 0.5 * dt * p[free] / m[free]
        kt = units.kB * c.temperature_k
        if c.thermostat == "langevin" and th.any():
            c1 = math.exp(-c.friction_ps_inv / (1000.0 * units.fs) * dt)
            noise = self.rng.standard_normal((int(th.sum()), 3))
            p[th] = c1 * p[th] + np.sqrt((1.0 - c1 * c1) * m[th] * kt) * noise
        x[free] += 0.5 * dt * p[free] / m[free]
        w.set_positions(x, apply_constraint=False)
        f = self._forces()
        p[free] += 0.5 * dt * f[free]
        p[~free] = 0.0
        if c.thermostat == "berendsen" and th.any():
            t_now = float((p[th] ** 2 / m[th]).sum() / (3 * th.sum() * units.kB))
            if t_now > 0:
                scale = math.sqrt(max(1.0 + c.timestep_fs / c.tau_fs * (c.temperature_k / t_now - 1.0), 0.0))
                p[th] *= scale
        w.set_momenta(p, apply_constraint=False)
        self.step += 1
        return f

    # ------------------------------------------------------------------------------------------ outputs
    def _snapshot(self) -> None:
        w = self.work
        snap = Atoms(numbers=w.numbers, positions=w.positions, cell=w.cell, pbc=w.pbc)
        for key in ("region", "fixed", "dep_arrival"):
            snap.new_array(key, np.asarray(w.arrays[key]).copy())
        snap.info.update(step=self.step, time_ps=self.time_ps, events_done=self.events_done, n_sent=self.n_sent,
                         n_deposited=int((w.arrays["dep_arrival"] >= 0).sum()), species=self.c.species)
        if self.rd is None:
            self.snapshots.append(snap)
            return
        from ase.io import write

        write(self.rd / "snapshots.extxyz", snap, format="extxyz", append=True)

    def _log(self, handle, writer) -> None:
        w = self.work
        row = {"step": self.step, "time_ps": self.time_ps, "n_atoms": len(w),
               "n_flying": int(w.arrays["dep_flying"].sum()), "n_sent": self.n_sent,
               "n_deposited": int((w.arrays["dep_arrival"] >= 0).sum()), "T_substrate_k": self._substrate_t(),
               "epot_ev": float(w.get_potential_energy()), "ekin_ev": float(w.get_kinetic_energy())}
        self.last_row = row
        if writer is not None:
            writer.writerow(row)
            handle.flush()

    def _summary(self, status: str, **extra: Any) -> dict:
        counts = {s: sum(1 for a in self.arrivals if a["status"] == s) for s in ("joined", "reflected", "flying")}
        wall = self._wall()
        steps_run = self.step - (self.resumed_step or 0)
        seg = time.perf_counter() - self.t0
        energies = [a["kinetic_energy_ev"] for a in self.arrivals]
        s = {
            "status": status, "species": self.c.species, "n_sent": self.n_sent, "n_planned": self.plan.n_atoms,
            "n_joined": counts["joined"], "n_reflected": counts["reflected"], "n_flying": counts["flying"],
            "sticking_fraction": (counts["joined"] + counts["flying"]) / self.n_sent if self.n_sent else None,
            "events_done": self.events_done, "steps_done": self.step, "steps_planned": self.plan.total_steps,
            "time_ps": self.time_ps, "wall_s": wall, "steps_per_s": steps_run / seg if seg > 0 else None,
            "atoms_per_hour": (self.n_sent / wall * 3600.0) if wall > 0 else None,
            "arrival_energy_mean_ev": float(np.mean(energies)) if energies else None,
            "n_atoms_final": len(self.work), "substrate": self.substrate_info, "plan": self.plan.to_dict(),
            "joining_rule": "an arriving atom joins the thermostatted set once below the film top (highest atom not "
                            "in flight) or join_after_ps after insertion; one moving up above its insertion "
                            "height is reflected (removed)",
            "warnings": self.warnings, "last_log": getattr(self, "last_row", None),
            "files": {k: k for k in _FILES} if self.rd is not None else None,
            "provenance": provenance(config=self.c, calc=self.calc, seed=self.c.seed, started_utc=self.started,
                                     extra={"workflow": "tfbsim.workflows.protocols.deposition.deposit"}),
        }
        s.update(extra)
        if self.rd is not None:
            write_json(self.rd / "deposition.json", s)
        return s

    def _unstable(self, diagnostic: dict) -> None:
        diagnostic.setdefault("step", self.step)
        diagnostic.setdefault("time_ps", self.time_ps)
        self._summary("unstable", diagnostic=diagnostic)
        if self.rd is not None:
            write_structure(self.rd / "last_state.extxyz", self.work)
        raise SimulationUnstable(f"deposition unstable at step {self.step}: {diagnostic['message']}; try a smaller "
                                 "timestep_fs or a lower energy_ev", diagnostic)

    def _guard(self, f: np.ndarray) -> None:
        w = self.work
        sample = EngineSample(step=self.step, time_ps=self.time_ps, positions=w.get_positions(),
                              velocities=w.get_velocities(), cell=w.cell.array.copy(),
                              epot_ev=float(w.get_potential_energy()), ekin_ev=float(w.get_kinetic_energy()),
                              temperature_k=self._substrate_t(), target_temperature_k=self.c.temperature_k,
                              pressure_gpa=float("nan"), volume_ang3=float("nan"), conserved_ev=float("nan"),
                              forces_ev_ang=f)
        limits = SimpleNamespace(guard_min_distance_ang=self.c.guard_min_distance_ang, guard_t_factor=None,
                                 guard_max_force_ev_ang=self.c.guard_max_force_ev_ang, guard_t_after_ps=0.0)
        diagnostic = check_guards(sample, limits, pbc=w.pbc, symbols=w.get_chemical_symbols(),
                                  reference_temperature_k=math.inf)
        if diagnostic is not None:
            self._unstable(diagnostic)

    # --------------------------------------------------------------------------------------------- loop
    def run(self) -> DepositionResult:
        stop = StopRequest()
        handlers = stop_on_signals(stop) if self.rd is not None else _null()
        with handlers:
            return self._run(stop)

    def _run(self, stop: StopRequest) -> DepositionResult:
        c, plan, rd = self.c, self.plan, self.rd
        self.t0 = time.perf_counter()
        self.work.calc = self.calc
        handle = writer = None
        if rd is not None:
            rd.mkdir(parents=True, exist_ok=True)
            (rd / "config.yaml").write_text(dump_yaml(c))
            new_log = not (rd / "log.csv").is_file()
            handle = open(rd / "log.csv", "a", newline="")
            writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
            if new_log:
                writer.writeheader()
            if self.resumed_step is None:
                self._summary("running")
        reporter = ProgressReporter(f"deposit {c.species}", total=plan.total_steps, start_step=self.step) \
            if self.progress else None
        try:
            f = self._forces()
            if self.resumed_step is None:
                self._guard(f)
                self._log(handle, writer)
            while True:
                if self.events_done < plan.n_events and self.step == self.events_done * plan.interval_steps:
                    if self.resumed_step != self.step:
                        if self.events_done % c.snapshot_every == 0:
                            self._snapshot()
                        if self.events_done % c.checkpoint_every == 0 and self.events_done > 0:
                            self._checkpoint()
                    self._insert()
                    self.events_done += 1
                    f = self._forces()
                if self.step >= plan.total_steps:
                    break
                f = self._advance(f)
                if self._update_flying():
                    f = self._forces()
                if self.step % c.guard_every == 0:
                    self._guard(f)
                if self.step % c.log_every == 0:
                    self._log(handle, writer)
                    if reporter is not None:
                        reporter.label = f"deposit {c.species} ({self.n_sent}/{plan.n_atoms} sent)"
                        reporter.update(self.step, temperature_k=self.last_row["T_substrate_k"])
                if stop.signum is not None and self.step < plan.total_steps:
                    self._checkpoint()
                    self._summary("interrupted", signal=signal_name(stop.signum))
                    where = rd if rd is not None else "memory"
                    raise RunInterrupted(f"deposition interrupted by {signal_name(stop.signum)} at step {self.step}; "
                                         f"checkpoint in {where}: call deposit again (or rerun `tfbsim deposit`) "
                                         "to continue", signum=stop.signum, step=self.step, run_dir=str(rd))
            if self.resumed_step != self.step:
                self._snapshot()
                if self.step % c.log_every:
                    self._log(handle, writer)
            self._checkpoint()
        except (SimulationUnstable, RunInterrupted):
            raise
        except BaseException as exc:
            if rd is not None:
                self._summary("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if handle is not None:
                handle.close()
        final = self.work.copy()
        final.calc = None
        summary = self._summary("completed")
        final.info["deposition"] = {k: summary[k] for k in ("species", "n_sent", "n_joined", "n_reflected",
                                                              "time_ps")}
        final.info["provenance"] = summary["provenance"]
        if rd is not None:
            write_structure(rd / "final.extxyz", final)
        if reporter is not None:
            reporter.done(self.step, temperature_k=self.last_row["T_substrate_k"])
        logger.info("deposition: %d %s sent, %d joined, %d reflected, %.2f ps", self.n_sent, c.species,
                    summary["n_joined"], summary["n_reflected"], self.time_ps)
        return DepositionResult(atoms=final, arrivals=[dict(a) for a in self.arrivals], summary=summary, run_dir=rd,
                                snapshots=self.snapshots if rd is None else None)


def _null():
    import contextlib

    return contextlib.nullcontext(False)
