"""The RL result: train the CPU-sized DQN, evaluate it on 100 held-out seeds.

Run: ``python scripts/bench/bench_nbody_rl.py [out_dir] [hydra overrides...]``
(about 10 min of training and 5 min of evaluation on 2 shared cores; default
``out_dir`` ``/tmp/physim-bench/rl``). The same as

    python scripts/rl_timestep.py +experiment=threebody_dqn
    python scripts/rl_evaluate.py model_path=<run>/checkpoints/best_model.zip

followed by the issue's two checks, printed as a verdict:

- no fixed eta is better than the policy in both median final energy error and mean
  force evaluations (:func:`physim.nbody.dominating`);
- the policy's mean episode reward beats that of eta = 0.03;

and IAS15's point on the same axes. Overrides go to the training config (e.g.
``total_timesteps=20000``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from physim.cli.rl_evaluate import rl_evaluate
from physim.cli.rl_timestep import RL_CONFIG_DIR, rl_timestep
from physim.nbody import dominating


def main(out_dir: Path, overrides: list[str]) -> None:
    with initialize_config_dir(RL_CONFIG_DIR, version_base="1.3"):
        train_cfg = compose(
            "rl_timestep",
            [
                "+experiment=threebody_dqn",
                f"paths.output_dir={out_dir / 'train'}",
                "progress_bar=false",
                "log_formats=[csv,tensorboard]",
                *overrides,
            ],
        )
        result = rl_timestep(train_cfg)
        eval_cfg = compose(
            "rl_evaluate",
            [
                f"model_path={result.best_model}",
                f"paths.output_dir={out_dir / 'eval'}",
                "progress=false",
            ],
        )
    summary = rl_evaluate(eval_cfg)
    fixed = [n for n in summary if n.startswith("hermite:")]
    better = dominating(summary, "policy", fixed)
    policy, default = summary["policy"], summary["hermite:0.03"]
    print("\n## Verdict")
    print(f"- fixed eta better in both median |dE| and mean cost: {better or 'none'}")
    winner = "policy" if policy["mean_reward"] > default["mean_reward"] else "eta=0.03"
    print(
        f"- mean reward: policy {policy['mean_reward']:.4g} vs eta=0.03 "
        f"{default['mean_reward']:.4g}: {winner} wins"
    )
    for name in ("policy", "hermite:0.03", "ias15:1e-09", "policy@ias15"):
        row = summary[name]
        print(
            f"- {name}: median |dE| {row['median_energy_error']:.3e}, mean force "
            f"evals {row['mean_force_evaluations']:.4g}, mean wall "
            f"{row['mean_wall_time']:.3g} s"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    out = (
        Path(args.pop(0))
        if args and "=" not in args[0]
        else Path("/tmp/physim-bench/rl")
    )
    main(out, args)
