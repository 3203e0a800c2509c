"""Run (or continue) the glass-independence study: ``python run.py study.yaml -o OUT [--threads N]``.

See ``study.yaml`` and :mod:`tfbsim.workflows.protocols.glass_independence`. Safe to kill and re-run: every
glass is a resumable melt–quench folder, and ``OUT/independence.json`` is rewritten after each glass.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tfbsim.workflows.config import load_config
from tfbsim.workflows.protocols.glass_independence import GlassIndependenceConfig, run_glass_independence

logger = logging.getLogger("glass_independence")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="study YAML (unknown keys are errors)")
    parser.add_argument("-o", "--output", required=True, help="study folder (created or continued)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of each melt-quench")
    parser.add_argument("--progress", action="store_true", help="progress bars of the MD stages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = load_config(args.config, GlassIndependenceConfig)
    out = run_glass_independence(cfg, args.output, progress=args.progress, threads=args.threads)
    for comp, comparison in out["comparison"].items():
        verdict = {True: "independent of the design", False: "depends on the design", None: "one design only"}
        logger.info("%s: glass speciation %s (%s)", comp, verdict[comparison["independent"]],
                    ", ".join(comparison["dependent_fractions"]) or "all fractions within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
