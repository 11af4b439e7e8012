"""Issue 20's yardstick: train the aligned agents on 3 seeds each, judge them on
held-out seeds against dense fixed sweeps, print the verdict and a markdown table.

Run: ``python scripts/bench/bench_nbody_rl.py [out_dir] [overrides...]`` (default
``out_dir`` ``/tmp/physim-bench/rl``). Overrides starting with ``train.`` go to every
training run (e.g. ``train.vec_env=dummy`` to keep to one process), the others to
the evaluation (e.g. ``first_seed=100``). The same as

    python scripts/rl_timestep.py +experiment=threebody_aligned_eta seed=S  # 0, 1, 2
    python scripts/rl_timestep.py +experiment=threebody_switch seed=S
    python scripts/rl_evaluate.py '+policies.eta=[...]' '+policies.switch=[...]'

A finished training run (its ``best_model.zip`` exists) is not repeated. Targets:
the aligned eta agent within 0.1 decades of the fixed-eta front (upper end of the
95% interval of the mean over training seeds); the switch agent strictly better than
the front of every fixed choice (interval below zero).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from physim.cli.rl_evaluate import rl_evaluate
from physim.cli.rl_timestep import RL_CONFIG_DIR, rl_timestep

#: group -> (experiment, the front it is judged against, target on the gap's bound)
AGENTS = {
    "eta": ("threebody_aligned_eta", "eta", 0.1),
    "switch": ("threebody_switch", "fixed", 0.0),
}
SEEDS = (0, 1, 2)


def train(out_dir: Path, overrides: list[str]) -> dict[str, list[str]]:
    """Train every agent on every seed (skipping finished runs); their best models."""
    policies = {}
    for group, (experiment, _, _) in AGENTS.items():
        paths = []
        for seed in SEEDS:
            run = out_dir / f"{group}{seed}"
            best = run / "checkpoints" / "best_model.zip"
            if not best.is_file():
                with initialize_config_dir(RL_CONFIG_DIR, version_base="1.3"):
                    cfg = compose(
                        "rl_timestep",
                        [
                            f"+experiment={experiment}",
                            f"seed={seed}",
                            f"paths.output_dir={run}",
                            "progress_bar=false",
                            "log_formats=[csv]",
                            *overrides,
                        ],
                    )
                best = rl_timestep(cfg).best_model
            paths.append(str(best))
        policies[group] = paths
    return policies


def fmt(row: pd.Series, key: str) -> str:
    value, lo, hi = (row.get(f"{key}{s}", np.nan) for s in ("", "_lo", "_hi"))
    if not np.isfinite(value):
        return f"outside ({row.get('where_' + key.split('_', 1)[1], '?')})"
    sd = row.get(f"{key}_sd", np.nan)
    spread = f", sd {sd:.2f}" if isinstance(sd, float) and np.isfinite(sd) else ""
    return f"{value:+.2f} [{lo:+.2f}, {hi:+.2f}]{spread}"


def report(table: pd.DataFrame) -> None:
    print("\n## Verdict")
    for group, (_, front, bound) in AGENTS.items():
        name = next((n for n in table.index if n.startswith(f"{group} (mean")), None)
        if name is None:
            continue
        row = table.loc[name]
        hi = row[f"gap_{front}_hi"]
        met = hi <= bound if bound > 0 else hi < bound
        print(
            f"- {group}: gap to the {front} front {fmt(row, 'gap_' + front)} decades; "
            f"target {'<=' if bound > 0 else '<'} {bound:+.1f} on the upper bound: "
            f"{'met' if met else 'NOT met'}"
        )
    columns = ("method", "failed", "mean log10\\|dE\\|", "mean force evals",
               "gap to eta front", "gap to fixed front", "cost factor vs eta",
               "mean paper reward")  # fmt: skip
    print("\n| " + " | ".join(columns) + " |")
    print("|---" + "|---:" * (len(columns) - 1) + "|")
    order = table.sort_values("kind", key=lambda k: k.eq("fixed")).index
    for name in order:
        row = table.loc[name]
        factor = row.get("cost_factor_eta", np.nan)
        print(
            f"| {name} | {int(row.failed)}/{int(row.runs)} | "
            f"{fmt(row, 'mean_log10_error')} | {row.mean_force_evaluations:.4g} | "
            f"{fmt(row, 'gap_eta')} | {fmt(row, 'gap_fixed')} | "
            f"{factor:.3g} | {row.mean_paper_reward:.4g} |"
        )


def main(out_dir: Path, overrides: list[str]) -> None:
    training = [o.removeprefix("train.") for o in overrides if o.startswith("train.")]
    evaluation = [o for o in overrides if not o.startswith("train.")]
    policies = train(out_dir, training)
    with initialize_config_dir(RL_CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "rl_evaluate",
            [
                *(f"+policies.{g}=[{','.join(p)}]" for g, p in policies.items()),
                f"paths.output_dir={out_dir / 'eval'}",
                "progress=false",
                *evaluation,
            ],
        )
    report(rl_evaluate(cfg))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:]
    out = (
        Path(args.pop(0))
        if args and "=" not in args[0]
        else Path("/tmp/physim-bench/rl")
    )
    main(out, args)
