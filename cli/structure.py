"""``tfbsim analyze structure``: g_ab(r), G(r), S(Q), coordination, bond angles, bond exchange, literature."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import _say

__all__ = ["analyze_structure_cmd"]

FIGURES = {"partial_gr.png": "plot_partial_rdfs", "G_r.png": "plot_total_G", "S_q.png": "plot_structure_factor",
           "bond_angles.png": "plot_bond_angles"}


def analyze_structure_cmd(
    ctx: typer.Context,
    traj: Annotated[Path, typer.Argument(
        help="Trajectory or structure with a periodic box: tfbsim H5MD or any ASE-readable file.")],
    start: Annotated[Optional[int], typer.Option("--start", help="First frame (Python slice semantics).")] = None,
    stop: Annotated[Optional[int], typer.Option("--stop", help="Stop before this frame.")] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Use every STEP-th frame.")] = None,
    rmax_ang: Annotated[
        Optional[float], typer.Option("--rmax-ang", help="g(r) range (Å); at most half the shortest box width "
                                                         "(default: that, capped at 20 Å).")
    ] = None,
    dr_ang: Annotated[float, typer.Option("--dr-ang", help="g(r) bin width (Å).")] = 0.02,
    qmax_inv_ang: Annotated[
        float, typer.Option("--qmax-inv-ang", help="Largest Q of S(Q) (Å^-1), at most pi/dr.")
    ] = 20.0,
    dt_fs: Annotated[
        Optional[float],
        typer.Option("--dt-fs", help="Time between stored frames (fs), for the bond-exchange rates when the file "
                                     "has no times."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Output folder for structure.json and the figures.")
    ] = Path("structure"),
    progress: Annotated[bool, typer.Option("--progress", help="Show progress bars.")] = False,
) -> None:
    """Partial g(r), neutron/X-ray G(r) and S(Q), CNs, bond angles, bond exchange and a literature table."""
    from ..analysis import plots_structure
    from ..analysis.base import open_trajectory
    from ..analysis.bond_angles import BondAngles
    from ..analysis.coordination import Coordination
    from ..analysis.network_dynamics import NetworkDynamics
    from ..analysis.scattering import Scattering
    from ..analysis.structure_reference import compare_structure
    from ..structures.io import write_json
    from ..workflows.provenance import provenance, utc_now

    started = utc_now()
    window = {"start": start, "stop": stop, "step": step}
    trajectory = open_trajectory(str(traj), dt_fs=dt_fs)
    scattering = Scattering(trajectory, r_max_ang=rmax_ang, dr_ang=dr_ang, q_max_inv_ang=qmax_inv_ang)
    s = scattering.run(**window, progress=progress).results
    angles = BondAngles(trajectory).run(**window, progress=progress).results
    species = set(trajectory.symbols.tolist())
    speciation = dynamics = None
    if {"P", "O"} <= species:
        speciation = Coordination(trajectory).run(**window, progress=progress).results.mean
        has_times = trajectory.times_ps is not None and not any(t != t for t in trajectory.times_ps)
        if has_times and s.n_frames >= 2:
            dynamics = NetworkDynamics(trajectory).run(**window, progress=progress).results
    data = {
        "scattering": s.to_dict(),
        "bond_angles": angles.to_dict(),
        "network_dynamics": None if dynamics is None else dynamics.to_dict(),
        "comparison": compare_structure(s, angles, speciation),
    }
    settings = {"input": str(traj), **window, "rmax_ang": s.r_max_ang, "dr_ang": dr_ang,
                "qmax_inv_ang": qmax_inv_ang, "dt_fs": dt_fs}
    figures = {name: getattr(plots_structure, fn)(angles if fn == "plot_bond_angles" else s)
               for name, fn in FIGURES.items()}
    data["provenance"] = provenance(config=settings, started_utc=started, extra={"input": str(traj)})
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "structure.json", data)
    for name, fig in figures.items():
        plots_structure.save_figure(fig, out / name)

    p = {k: "-" if v is None else f"{v:.2f}" for k, v in s.peaks.items()}
    _say(ctx, f"{s.n_frames} frame(s), r_max {s.r_max_ang:.2f} Å, Q {s.q_inv_ang[0]:.2f}-{s.q_inv_ang[-1]:.1f} "
              f"Å^-1; first peaks: G_N(r) {p['G_neutron_first_peak_ang']} Å, S_N(Q) "
              f"{p['S_neutron_first_peak_inv_ang']} Å^-1, S_X(Q) {p['S_xray_first_peak_inv_ang']} Å^-1")
    cns = ", ".join(f"{k} {v:.2f}" for k, v in s.cn.items() if k in ("P-O", "P-N", "Li-O", "Li-N") and v == v)
    _say(ctx, f"coordination (first minimum): {cns or '-'}; angles: "
              + ", ".join(f"{k} {v:.1f}°" for k, v in angles.mean_deg.items() if v == v))
    if dynamics is not None:
        r = dynamics.rates_per_P_per_ps
        steady = dynamics.steady_state.steady if dynamics.steady_state is not None else None
        _say(ctx, f"bond exchange per P per ps: P-O {r['P-O_total']:.3g}, P-N {r['P-N_total']:.3g}; "
                  f"speciation steady: {steady}")
    _say(ctx, f"wrote {out / 'structure.json'} and {len(figures)} figures")
