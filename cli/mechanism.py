"""``tfbsim analyze transport TRAJ``: self and collective transport, trust checks and mechanism in one JSON.

Registered on the ``analyze`` group by :mod:`tfbsim.cli.analyze`. Writes ``transport.json`` (provenance block
as every CLI JSON) and figures into ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import DtFsOpt, FitEndOpt, FitStartOpt, FramesOpt, TemperatureOpt, _say, _write_json

__all__ = ["transport_cmd"]


def transport_cmd(
    ctx: typer.Context,
    traj: Annotated[Path, typer.Argument(help="Trajectory: tfbsim H5MD or any ASE-readable file.")],
    species: Annotated[str, typer.Option("--species", help="Mobile species.")] = "Li",
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: transport/ beside TRAJ).")] = None,
    frames: FramesOpt = None,
    dt_fs: DtFsOpt = None,
    temperature_k: TemperatureOpt = None,
    fit_start_ps: FitStartOpt = None,
    fit_end_ps: FitEndOpt = None,
    n_blocks: Annotated[int, typer.Option("--n-blocks", help="Blocks for the collective-transport errors.")] = 5,
    min_msd_ang2: Annotated[float, typer.Option("--min-msd-ang2", help="Diffusive check: Li MSD needed (Å²).")] = 30.0,
    hop_distance_ang: Annotated[float, typer.Option("--hop-distance-ang", help="Distance that makes a hop (Å).")] = 1.5,
    progress: Annotated[bool, typer.Option("--progress", help="Show progress bars.")] = False,
) -> None:
    """D*, charge-MSD D_σ, σ_NE and σ_collective, Haven ratio, diffusive and network checks, α2, G_s, hops."""
    from ..analysis.collective import CollectiveTransport
    from ..analysis.diffusion import DiffusionAnalysis
    from ..analysis.diffusion_checks import DiffusiveCriteria
    from ..analysis.mechanism import Hops, NonGaussian, SelfVanHove
    from ..analysis.plots import plot_msd
    from ..analysis.plots_mechanism import (plot_collective_msd, plot_network_msd, plot_non_gaussian, plot_residence,
                                            plot_van_hove)
    from ..errors import ConfigError
    from ..structures.io import to_jsonable
    from ..workflows.provenance import provenance, utc_now

    if n_blocks < 1 or min_msd_ang2 < 0 or hop_distance_ang <= 0:
        raise ConfigError("--n-blocks must be >= 1, --min-msd-ang2 >= 0 and --hop-distance-ang > 0")
    started = utc_now()
    settings = {"species": species, "frames": frames, "dt_fs": dt_fs, "temperature_k": temperature_k,
                "fit_start_ps": fit_start_ps, "fit_end_ps": fit_end_ps, "n_blocks": n_blocks,
                "min_msd_ang2": min_msd_ang2, "hop_distance_ang": hop_distance_ang}
    out = Path(out) if out is not None else Path(traj).parent / "transport"
    common = {"species": species, "frames": frames, "dt_fs": dt_fs, "temperature_k": temperature_k}
    diff = DiffusionAnalysis(str(traj), fit_start_ps=fit_start_ps, fit_end_ps=fit_end_ps,
                             diffusive_criteria=DiffusiveCriteria(min_msd_ang2=min_msd_ang2), **common
                             ).run(progress=progress).results
    coll = CollectiveTransport(str(traj), n_blocks=n_blocks, **common).run(progress=progress).results
    ng = NonGaussian(str(traj), **common).run(progress=progress).results
    vh = SelfVanHove(str(traj), **common).run(progress=progress).results
    hops = Hops(str(traj), hop_distance_ang=hop_distance_ang, **common).run(progress=progress).results
    d_rec, c_rec, h_rec = diff.to_dict(), coll.to_dict(), hops.to_dict()
    data = to_jsonable({
        "species": species, "temperature_k": diff.temperature_k,
        "D_self_cm2_s": diff.D_cm2_s, "D_self_stderr_cm2_s": diff.D_stderr_cm2_s,
        "D_self_ci95_cm2_s": list(diff.fit.D_ci95_cm2_s),
        "D_collective_cm2_s": coll.D_sigma_cm2_s, "D_collective_stderr_cm2_s": coll.D_sigma_stderr_cm2_s,
        "D_collective_ci95_cm2_s": coll.D_sigma_ci95_cm2_s,
        "sigma_ne_S_cm": diff.sigma_ne_S_cm, "sigma_ne_stderr_S_cm": diff.sigma_ne_stderr_S_cm,
        "sigma_collective_S_cm": coll.sigma_collective_S_cm,
        "sigma_collective_ci95_S_cm": coll.sigma_collective_ci95_S_cm,
        "haven_ratio": coll.haven_ratio, "haven_ratio_ci95": coll.haven_ratio_ci95,
        "diffusive": d_rec["diffusive"], "network_flows": d_rec["network_flows"],
        "alpha2_max": ng.alpha2_max, "alpha2_t_max_ps": ng.t_max_ps,
        "n_hops": hops.n_hops, "mean_residence_ps": hops.mean_residence_ps,
        "back_hop_fraction": hops.back_hop_fraction, "D_hop_cm2_s": hops.D_hop_cm2_s,
        "diffusion": d_rec, "collective": c_rec, "non_gaussian": ng.to_dict(), "van_hove": vh.to_dict(),
        "hops": h_rec,
    })
    data["provenance"] = provenance(config=settings, started_utc=started, extra={"input": str(traj)})
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "transport.json", data)
    plot_msd(diff, out / "msd.png")
    plot_collective_msd(c_rec, out / "collective_msd.png")
    plot_non_gaussian(data["non_gaussian"], out / "alpha2.png")
    plot_van_hove(data["van_hove"], out / "van_hove.png")
    plot_residence(h_rec, out / "residence.png")
    if d_rec.get("network"):
        plot_network_msd(d_rec, out / "network_msd.png")
    h, ci = coll.haven_ratio, coll.haven_ratio_ci95
    _say(ctx, f"{species}: D* = {diff.D_cm2_s:.3g} ± {diff.D_stderr_cm2_s:.2g} cm²/s, D_σ = {coll.D_sigma_cm2_s:.3g} "
              f"cm²/s, H = {h:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "") +
              f"; diffusive: {d_rec['diffusive']}, network flows: {d_rec['network_flows']}; {hops.n_hops} hops "
              f"-> {out}/transport.json")
