"""Is the quenched glass independent of where it started? Melt–quench very different designs and compare.

For each composition, design and seed the study builds a box (:func:`tfbsim.structures.amorphous.build_lipon`),
melt–quenches it (:func:`~tfbsim.workflows.protocols.melt_quench.melt_quench`, typically the ``glass`` preset
with its network check) and records the speciation three times: as designed, at the end of the melt and in
the final glass. If the melt equilibrated the network, the glasses' speciation differs between designs no
more than between seeds of one design.

Designs (:data:`DESIGNS`)
-------------------------
``apical``    motif builder, every N terminal on one P (``nd_fraction = 0``, Na only); the bridges are O.
``bridging``  motif builder, N bridges first (``nd_fraction`` unset): as many N bridge as the composition's
              bridging budget ``4 − (y + z)`` per P allows — all of them in Li2.5PO3N0.5 (budget 0.5 = N),
              0.19 of 0.31 per P in Li2.94PO3.50N0.31 (the rest must be terminal: more bridges than the
              budget would need fewer anions per P than the formula has).
``random``    every atom at a random spot (minimum distances only): no designed speciation at all.

Folder (``directory``): ``<composition>/<design>/s<seed>/`` (a melt–quench run folder each: resumable, a
completed one is reused), ``independence.json`` (the records and the comparison; rewritten after every
glass, so a killed study keeps what it finished). Re-running the same study continues where it stopped.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ...structures.io import write_json
from ..config import StrictModel
from ..potentials.config import PotentialConfig
from ..provenance import provenance, utc_now
from .melt_quench_config import MeltQuenchConfig

__all__ = ["DESIGNS", "GlassIndependenceConfig", "run_glass_independence", "compare_designs"]

logger = logging.getLogger(__name__)

#: Builder arguments of each design.
DESIGNS: dict[str, dict[str, Any]] = {
    "apical": {"mode": "motif", "nd_fraction": 0.0},
    "bridging": {"mode": "motif", "nd_fraction": None},
    "random": {"mode": "random", "nd_fraction": None},
}
#: Fractions compared between glasses.
COMPARED: tuple[str, ...] = ("Nd", "Na", "Nt", "Ob", "Onb", "Q0", "Q1", "Q2", "Q3")


class GlassIndependenceConfig(StrictModel):
    """Settings of :func:`run_glass_independence` (YAML: ``examples/glass_independence/study.yaml``).

    Attributes
    ----------
    compositions
        LixPOyNz formulas per P.
    designs
        Starting designs (:data:`DESIGNS`).
    seeds
        Builder and melt–quench seeds (one glass per composition, design and seed).
    n_atoms
        Target atoms per box.
    density_g_cm3
        Density of the built boxes (g/cm³); the NPT quench and anneal find the potential's own.
    melt_quench
        The protocol (default: the ``glass`` preset).
    tolerance
        A fraction counts as design-independent when the spread of the design means is at most
        ``max(tolerance, 2 × the seeds' standard error)``.
    potential
        The potential (used when no calculator is passed).
    """

    compositions: list[str] = Field(default_factory=lambda: ["Li2.94PO3.50N0.31", "Li2.5PO3N0.5"], min_length=1)
    designs: list[Literal["apical", "bridging", "random"]] = Field(
        default_factory=lambda: ["apical", "bridging", "random"], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    n_atoms: int = Field(200, ge=8)
    density_g_cm3: float = Field(2.4, gt=0)
    melt_quench: MeltQuenchConfig = Field(default_factory=lambda: MeltQuenchConfig(preset="glass"))
    tolerance: float = Field(0.05, gt=0)
    potential: PotentialConfig = Field(default_factory=PotentialConfig)


def _flat(speciation: dict | None) -> dict[str, float | None]:
    """``{"N": {...}, "O": {...}, "P": {...}}`` (or already flat) → ``{name: fraction}`` for :data:`COMPARED`."""
    if not speciation:
        return {}
    flat: dict[str, Any] = {}
    for group, value in speciation.items():
        if isinstance(value, dict) and group != "counts":
            flat.update(value)
    if not flat:
        flat = dict(speciation)
    return {k: (None if flat.get(k) is None else float(flat[k])) for k in COMPARED if k in flat}


def _one_glass(cfg: GlassIndependenceConfig, composition: str, design: str, seed: int, folder: Path, calc: Any,
               progress: bool, threads: int | None) -> dict[str, Any]:
    from ...analysis.speciation_report import lipon_speciation
    from ...structures.amorphous import build_lipon
    from .melt_quench import melt_quench

    box = build_lipon(composition, cfg.n_atoms, density_g_cm3=cfg.density_g_cm3, seed=seed, **DESIGNS[design])
    mq = cfg.melt_quench.model_copy(update={"seed": seed})
    result = melt_quench(box, calc, mq, folder, progress=progress, threads=threads)
    network = result.summary.get("network") or {}
    tg = result.summary.get("glass_transition") or {}
    return {
        "composition": composition, "design": design, "seed": seed, "run_dir": str(folder),
        "n_atoms": len(box), "density_final_g_cm3": result.density_final_g_cm3,
        "speciation_designed": _flat(box.info.get("speciation_designed")) or _flat(lipon_speciation(box)),
        "speciation_after_melt": _flat(network.get("speciation_end")),
        "speciation_glass": _flat(lipon_speciation(result.atoms)),
        "exchanges_per_p": network.get("exchanges_per_p"), "exchanges_per_p_ps": network.get("exchanges_per_p_ps"),
        "speciation_steady_before_quench": result.summary.get("speciation_steady_before_quench"),
        "melt_stopped_by": network.get("stopped_by"), "tg_k": tg.get("tg_k"), "tg_stderr_k": tg.get("tg_stderr_k"),
    }


def compare_designs(records: list[dict], *, tolerance: float = 0.05, key: str = "speciation_glass") -> dict:
    """Per composition and fraction: the mean of each design (over seeds), the spread between designs and the
    seeds' standard error; ``independent`` when the spread is within ``max(tolerance, 2 × stderr)``.

    Returns
    -------
    dict
        ``{composition: {"fractions": {name: {"design_means", "spread", "seed_stderr", "independent"}},
        "independent": bool | None, "dependent_fractions": [...]}}`` (``None`` with a single design).
    """
    out: dict[str, Any] = {}
    for comp in sorted({r["composition"] for r in records}):
        rows = [r for r in records if r["composition"] == comp and r.get(key)]
        designs = sorted({r["design"] for r in rows})
        fractions: dict[str, Any] = {}
        for name in COMPARED:
            by_design = {d: [r[key][name] for r in rows if r["design"] == d and r[key].get(name) is not None]
                         for d in designs}
            by_design = {d: v for d, v in by_design.items() if v}
            if not by_design:
                continue
            means = {d: float(np.mean(v)) for d, v in by_design.items()}
            within = [np.var(v, ddof=1) / len(v) for v in by_design.values() if len(v) > 1]
            stderr = float(math.sqrt(np.mean(within))) if within else None
            spread = float(max(means.values()) - min(means.values()))
            limit = max(tolerance, 2.0 * stderr) if stderr is not None else tolerance
            fractions[name] = {"design_means": means, "spread": spread, "seed_stderr": stderr,
                               "independent": spread <= limit if len(means) > 1 else None}
        dependent = sorted(n for n, f in fractions.items() if f["independent"] is False)
        verdict = None if len(designs) < 2 else not dependent
        out[comp] = {"designs": designs, "n_glasses": len(rows), "fractions": fractions, "independent": verdict,
                     "dependent_fractions": dependent}
    return out


def run_glass_independence(
    config: GlassIndependenceConfig | dict,
    directory: str | Path,
    calc: Any = None,
    *,
    progress: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Melt–quench every composition × design × seed in ``directory`` and compare the glasses' speciation.

    Parameters
    ----------
    config
        A :class:`GlassIndependenceConfig` or its dict.
    directory
        Study folder (created; an existing study is continued).
    calc
        ASE calculator; default: ``config.potential``.
    progress
        Progress bars of the MD stages.
    threads
        Torch threads of each melt–quench (they run one after the other).

    Returns
    -------
    dict
        The content of ``independence.json``: ``glasses`` (one record per glass: designed, after-melt and
        glass speciation, exchanges per P, steady state before the quench, Tg), ``comparison``
        (:func:`compare_designs` of the glasses; ``comparison_after_melt`` of the melts), ``config``,
        ``provenance``.
    """
    cfg = config if isinstance(config, GlassIndependenceConfig) else GlassIndependenceConfig.model_validate(config)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    if calc is None:
        from ..potentials.factory import load_potential

        calc = load_potential(cfg.potential)
    started = utc_now()
    records: list[dict] = []
    plan = [(c, d, s) for c in cfg.compositions for d in cfg.designs for s in cfg.seeds]
    out: dict[str, Any] = {}
    for k, (comp, design, seed) in enumerate(plan):
        logger.info("glass independence %d/%d: %s, %s design, seed %d", k + 1, len(plan), comp, design, seed)
        folder = root / comp / design / f"s{seed}"
        records.append(_one_glass(cfg, comp, design, seed, folder, calc, progress, threads))
        out = {
            "glasses": records, "n_planned": len(plan), "complete": len(records) == len(plan),
            "comparison": compare_designs(records, tolerance=cfg.tolerance),
            "comparison_after_melt": compare_designs(records, tolerance=cfg.tolerance, key="speciation_after_melt"),
            "config": cfg.model_dump(mode="json"),
            "provenance": provenance(config=cfg, calc=calc, started_utc=started,
                                     extra={"workflow": "tfbsim.workflows.protocols.glass_independence"}),
        }
        write_json(root / "independence.json", out)
    return out
