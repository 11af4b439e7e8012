"""Issue 21's verdict: learned step-size control against a tuned PI on held-out
parameters of KS and Burgers, printed as markdown tables for BENCHMARKS.md.

Run: ``OMP_NUM_THREADS=1 python scripts/bench/bench_step_control.py [out_dir]
[overrides...]`` (default ``out_dir`` ``/tmp/physim-bench/stepcontrol``). It runs the
app once per experiment (``ks_burgers_cmaes``, then ``ks_burgers_ppo`` evaluated on
the same held-out problems) unless the run's ``summary.csv`` exists, then prints:

- the per-method summary: gap to the tuned-PI front in decades of error at equal
  evaluations and the cost factor at equal error (95% bootstrap intervals over the
  initial states), tolerance slope, rejection rate, failures, wall time per run;
- the target: at least 20% fewer evaluations than the tuned PI at equal error
  (cost factor <= 0.8) on one family, tolerance slope in [0.8, 1.2], no added
  failures.

The same as ``python scripts/pde_stepcontrol.py +experiment=ks_burgers_cmaes`` (and
``..._ppo``) with ``paths.output_dir`` set. Overrides (``key=value``) go to every
run; a first argument after ``out_dir`` without ``=`` picks the experiments
(``cmaes``, ``ppo`` or ``cmaes,ppo``, the default).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from physim.cli.pde_stepcontrol import STEPCONTROL_CONFIG_DIR, pde_stepcontrol
from physim.stepcontrol import markdown_summary

EXPERIMENTS = {"cmaes": "ks_burgers_cmaes", "ppo": "ks_burgers_ppo"}


def verdict(summary: pd.DataFrame) -> list[str]:
    """One line per family: the learned controller against the target."""
    lines = []
    for family, rows in summary.groupby("family"):
        rows = rows.set_index("method")
        learned, tuned = rows.loc["learned"], rows.loc["pi_tuned"]
        met = (
            learned.get("cost_factor_hi", np.nan) <= 0.8
            and 0.8 <= learned.tolerance_slope <= 1.2
            and learned.failed <= tuned.failed
        )
        lines.append(
            f"{family}: cost factor {learned.get('cost_factor', np.nan):.3f} "
            f"[{learned.get('cost_factor_lo', np.nan):.3f}, "
            f"{learned.get('cost_factor_hi', np.nan):.3f}], slope "
            f"{learned.tolerance_slope:.2f}, failures {int(learned.failed)} vs "
            f"{int(tuned.failed)}: target {'met' if met else 'not met'}"
        )
    return lines


def main(argv: list[str]) -> None:
    logging.getLogger("physim").setLevel(logging.INFO)
    out = Path(argv[0]) if argv else Path("/tmp/physim-bench/stepcontrol")
    rest = argv[1:]
    chosen = list(EXPERIMENTS)
    if rest and "=" not in rest[0]:
        chosen, rest = rest[0].split(","), rest[1:]
    for name in chosen:
        run = out / name
        summary_path = run / "summary.csv"
        if not summary_path.is_file():
            with initialize_config_dir(STEPCONTROL_CONFIG_DIR, version_base="1.3"):
                cfg = compose(
                    "pde_stepcontrol",
                    [
                        f"+experiment={EXPERIMENTS[name]}",
                        f"paths.output_dir={run}",
                        "progress=false",
                        *rest,
                    ],
                )
            pde_stepcontrol(cfg)
        summary = pd.read_csv(summary_path)
        print(f"\n### {name}: {run}\n")
        print(markdown_summary(summary, name))
        print()
        for line in verdict(summary):
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
