"""`python scripts/pde_stepcontrol.py +experiment=ks_burgers_cmaes`: learned step-size
control for physim's PDE solvers, judged on work-precision against a tuned PI.

One run does, in order (each stage can be switched off):

1. **checks** (before any solve): tolerances against each family's dtype, an error
   estimate and the features on every solver, a checkpoint's features, held-out
   parameters and initial states disjoint from the training ones;
2. **tune** PI's coefficients per family on the training problems (a grid), the
   strong baseline and the base of the learned controller;
3. **train** the correction (``method=cmaes|ppo``; ``none`` with
   ``controller.checkpoint`` evaluates a saved one) and write ``controller.json``;
4. **evaluate** the constant step, the default PI, the tuned PI and the learned
   controller on held-out parameters over >= 3 decades of tolerance: gap to the
   tuned-PI front and cost factor at equal error (bootstrap intervals over the
   initial states), rejection rate, failures, wall time, tolerance slope.

Writes to the run folder: ``coefficients.json``, ``tuning_<family>.csv``,
``controller.json``, ``training.csv``, ``runs.csv``, ``points.csv``,
``summary.csv`` and ``work_precision.png``. Configs: ``conf/stepcontrol/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from physim.nbody import check_disjoint_seeds, training_seeds
from physim.stepcontrol import (
    Method,
    PDEFamily,
    build_problems,
    evaluate,
    make_env,
    prepare_training,
    print_summary,
    train_cmaes,
    train_ppo,
    tune_pi,
    work_precision,
    write_report,
)
from physim.timestepping import CorrectionNetwork, LearnedController, PIDController

from ._config import CONFIG_DIR, log, report_user_errors
from .rl_timestep import register_shared_groups

STEPCONTROL_CONFIG_DIR = str(Path(CONFIG_DIR) / "stepcontrol")
METHODS = ("cmaes", "ppo", "none")


def log_space(node: Any) -> list[float]:
    """A list as given, or ``{low, high, num}`` as log-spaced values."""
    if isinstance(node, Mapping):
        low, high, num = float(node["low"]), float(node["high"]), int(node["num"])
        return [float(v) for v in np.logspace(np.log10(low), np.log10(high), num)]
    return [float(v) for v in node]


def _families(cfg: DictConfig) -> dict[str, PDEFamily]:
    families = {str(k): instantiate(v) for k, v in cfg.families.items()}
    for name, family in families.items():
        if family.name != name:
            raise ValueError(
                f"families.{name}: the family is {family.name!r}; use that key."
            )
    return families


def _parameters(node: Any, families: Mapping[str, PDEFamily], key: str) -> dict:
    params = {str(k): [float(v) for v in vals] for k, vals in node.items()}
    missing = [f for f in families if not params.get(f)]
    if missing:
        raise ValueError(f"{key}: no parameters for {missing}; give {key}.<family>.")
    return {f: params[f] for f in families}


def _tuned_points(tolerances: Sequence[float], margin: int) -> list[float]:
    """The evaluation tolerances plus ``margin`` more at each end, same spacing, so
    the front covers the costs of the other controllers."""
    logs = np.log10(sorted(tolerances))
    step = float(np.diff(logs).mean()) if len(logs) > 1 else 1.0
    lows = [logs[0] - step * i for i in range(margin, 0, -1)]
    highs = [logs[-1] + step * i for i in range(1, margin + 1)]
    return [float(10**v) for v in [*lows, *logs, *highs]]


def check_config(cfg: DictConfig) -> dict[str, Any]:
    """Everything that can be refused before a solve; returns what the run needs.

    Raises:
        ValueError, TypeError, FileNotFoundError: one message naming the key.
    """
    method = str(cfg.method)
    if method not in METHODS:
        raise ValueError(f"method={method!r}: choose one of {list(METHODS)}.")
    families = _families(cfg)
    train_params = _parameters(cfg.train.parameters, families, "train.parameters")
    eval_params = _parameters(cfg.evaluate.parameters, families, "evaluate.parameters")
    for family in families:
        shared = sorted(set(train_params[family]) & set(eval_params[family]))
        if shared and cfg.evaluate.enabled:
            raise ValueError(
                f"evaluate.parameters.{family}: {shared} are also training parameters; "
                "evaluate on held-out parameters."
            )
    train_tols = log_space(cfg.train.tolerances)
    eval_tols = log_space(cfg.evaluate.tolerances)
    decades = np.log10(max(eval_tols)) - np.log10(min(eval_tols))
    if cfg.evaluate.enabled and decades < 3 - 1e-9:
        raise ValueError(
            f"evaluate.tolerances span {decades:.2g} decades; the verdict needs at "
            "least 3 (e.g. {low: 1e-8, high: 1e-4, num: 7})."
        )
    all_tols = [*train_tols, *_tuned_points(eval_tols, int(cfg.evaluate.front_margin))]
    features = list(cfg.controller.features)
    network = metadata = None
    if cfg.controller.checkpoint:
        network, metadata = CorrectionNetwork.read(cfg.controller.checkpoint, features)
    elif method == "none" and cfg.evaluate.enabled:
        raise ValueError(
            "method=none evaluates a saved controller: set controller.checkpoint=<path "
            "to controller.json>, or method=cmaes|ppo to train one."
        )
    probe = LearnedController(
        PIDController(),
        features=features,
        max_log10_correction=float(cfg.controller.max_log10_correction),
    )
    for name, family in families.items():
        for tolerance in [*all_tols, float(cfg.reference_tolerance)]:
            PIDController(tolerance, tolerance).check_precision(family.dtype)
        probe.check_stepper(family.make_pde(train_params[name][0], True))
    seed = int(cfg.seed)
    train_seeds = training_seeds(seed, int(cfg.train.num_seeds))
    first = int(cfg.evaluate.first_seed)
    eval_seeds = list(range(first, first + int(cfg.evaluate.num_seeds)))
    used = {"training initial states": train_seeds}
    if metadata and "training_seeds" in metadata:
        used["the checkpoint's training initial states"] = metadata["training_seeds"]
    check_disjoint_seeds(eval_seeds, used)
    return {
        "families": families,
        "train_params": train_params,
        "eval_params": eval_params,
        "train_tols": train_tols,
        "eval_tols": eval_tols,
        "train_seeds": train_seeds,
        "eval_seeds": eval_seeds,
        "features": features,
        "network": network,
        "metadata": metadata or {},
    }


def _tune(cfg: DictConfig, plan: dict[str, Any], problems: dict, out: Path) -> dict:
    coefficients = {
        str(k): {str(a): float(b) for a, b in v.items()}
        for k, v in (cfg.tune.coefficients or {}).items()
    }
    if not cfg.tune.enabled:
        stored = plan["metadata"].get("coefficients")
        return coefficients or dict(stored or {})
    grid = {str(k): [float(v) for v in vals] for k, vals in cfg.tune.grid.items()}
    for family, family_problems in problems.items():
        best, table = tune_pi(family_problems, plan["train_tols"], grid)
        table.to_csv(out / f"tuning_{family}.csv", index=False)
        coefficients[family] = best
        log.info(
            "tuned PI for %s: %s (score %+.3f decades vs default, front slope %.2f)",
            family,
            best or "the defaults",
            float(table.score.iloc[0]),
            table.attrs["front_slope"],
        )
    return coefficients


def _train(
    cfg: DictConfig, plan: dict[str, Any], problems: dict, coefficients: dict, out: Path
) -> CorrectionNetwork | None:
    if cfg.method == "none":
        return plan["network"]
    flat = [p for ps in problems.values() for p in ps]
    training = prepare_training(flat, plan["train_tols"], coefficients)
    clip = float(cfg.controller.max_log10_correction)
    template = CorrectionNetwork(
        plan["features"], list(cfg.controller.hidden), seed=int(cfg.seed)
    )
    if cfg.method == "cmaes":
        node = cfg.cmaes
        network, history = train_cmaes(
            training,
            template,
            max_log10_correction=clip,
            sigma0=float(node.sigma0),
            popsize=node.popsize,
            max_evaluations=int(node.max_evaluations),
            slope_band=tuple(node.slope_band),
            slope_weight=float(node.slope_weight),
            seed=int(cfg.seed),
            progress=bool(cfg.progress),
        )
        history.to_csv(out / "training.csv", index=False)
    else:
        node = cfg.ppo
        make = _EnvFactory(
            {
                "families": {
                    k: OmegaConf.to_container(v) for k, v in cfg.families.items()
                },
                "parameters": plan["train_params"],
                "seeds": plan["train_seeds"],
                "tolerances": plan["train_tols"],
                "coefficients": coefficients,
                "cost_weight": {f: abs(q) for f, q in training.slopes.items()},
                "features": plan["features"],
                "max_log10_correction": clip,
                "reference_tolerance": float(cfg.reference_tolerance),
            }
        )
        network, _ = train_ppo(
            out / "ppo",
            make,
            plan["features"],
            hidden=list(cfg.controller.hidden) or [8],
            total_timesteps=int(node.total_timesteps),
            eval_seeds=range(1000, 1000 + int(node.selection_episodes)),
            eval_freq=int(node.eval_freq),
            agent_kwargs=OmegaConf.to_container(node.kwargs, resolve=True),
            seed=int(cfg.seed),
            progress=bool(cfg.progress),
        )
    network.save(
        out / "controller.json",
        max_log10_correction=clip,
        method=str(cfg.method),
        coefficients=coefficients,
        slopes=training.slopes,
        training_seeds=plan["train_seeds"],
        training_parameters=plan["train_params"],
        training_tolerances=plan["train_tols"],
    )
    return network


class _EnvFactory:
    """``max_steps -> env`` from plain values (picklable; families as configs)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def __call__(self, max_steps: int) -> Any:
        config = dict(self.config)
        config["families"] = {
            k: instantiate(v) for k, v in self.config["families"].items()
        }
        return make_env(**config, max_steps=max_steps)


def pde_stepcontrol(cfg: DictConfig) -> dict[str, Any]:
    """Run a composed ``conf/stepcontrol/pde_stepcontrol.yaml`` config."""
    torch.set_num_threads(int(cfg.torch_threads))
    plan = check_config(cfg)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference = float(cfg.reference_tolerance)
    train_problems = {
        name: build_problems(
            family, plan["train_params"][name], plan["train_seeds"], reference
        )
        for name, family in plan["families"].items()
    }
    coefficients = _tune(cfg, plan, train_problems, out)
    (out / "coefficients.json").write_text(json.dumps(coefficients, indent=2))
    network = _train(cfg, plan, train_problems, coefficients, out)
    result: dict[str, Any] = {"coefficients": coefficients, "network": network}
    if not cfg.evaluate.enabled:
        return result
    clip = float(
        plan["metadata"].get(
            "max_log10_correction", cfg.controller.max_log10_correction
        )
        if cfg.method == "none"
        else cfg.controller.max_log10_correction
    )
    problems = [
        p
        for name, family in plan["families"].items()
        for p in build_problems(
            family, plan["eval_params"][name], plan["eval_seeds"], reference
        )
    ]
    methods = [
        Method("constant", "constant"),
        Method("pi_default", "pi"),
        Method("pi_tuned", "pi", coefficients),
        Method("learned", "learned", coefficients, network, clip),
    ]
    tols = plan["eval_tols"]
    points = {
        "constant": {
            f: [round(n) for n in log_space(cfg.evaluate.constant_steps[f])]
            for f in plan["families"]
        },
        "pi_default": tols,
        "pi_tuned": _tuned_points(tols, int(cfg.evaluate.front_margin)),
        "learned": tols,
    }
    runs = evaluate(problems, methods, points, progress=bool(cfg.progress))
    table, summary = work_precision(
        runs,
        "pi_tuned",
        n_bootstrap=int(cfg.evaluate.bootstrap.samples),
        seed=int(cfg.evaluate.bootstrap.seed),
    )
    paths = write_report(runs, table, summary, out)
    print_summary(summary)
    log.info("Wrote %s", ", ".join(str(p) for p in paths.values()))
    return result | {"runs": runs, "points": table, "summary": summary}


register_shared_groups()


@hydra.main(
    version_base="1.3",
    config_path=STEPCONTROL_CONFIG_DIR,
    config_name="pde_stepcontrol",
)
@report_user_errors
def main(cfg: DictConfig) -> None:
    pde_stepcontrol(cfg)


if __name__ == "__main__":
    main()
