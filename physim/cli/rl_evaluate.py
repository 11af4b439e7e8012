"""`python scripts/rl_evaluate.py +policies.eta=[<run>/checkpoints/best_model.zip,...]`.

The yardstick: runs every policy (one per training seed, grouped), the non-learned
baselines (the supervised error-model controller at several tolerances, the forecast
integrator switch) and dense fixed sweeps (Hermite eta, IAS15 epsilon) on held-out
systems disjoint from every training and selection seed, then reports each method's
gap to the fixed sweeps' fronts in decades of mean log10 |dE| at equal mean force
evaluations, the cost factor at equal error, failed runs, and 95% bootstrap intervals
over the evaluation seeds (:func:`physim.nbody.yardstick`). Writes
``evaluation.nc``, ``runs.csv``, ``yardstick.csv``, ``work_precision.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from physim.nbody import (
    ErrorModelController,
    ForecastSwitch,
    Method,
    check_disjoint_seeds,
    collect_intervals,
    evaluate_methods,
    fit_error_model,
    fixed_methods,
    load_agent,
    print_yardstick,
    read_agent_info,
    sb3_policy,
    sweep_values,
    write_evaluation,
    yardstick,
)
from physim.nbody._simulation import check_integrator

from ._config import log, report_user_errors
from .rl_timestep import RL_CONFIG_DIR, ConfiguredEnv, register_shared_groups


def _seed_range(node: DictConfig) -> list[int]:
    return list(range(int(node.first_seed), int(node.first_seed) + int(node.num_seeds)))


def policy_methods(
    cfg: DictConfig,
) -> tuple[list[Method], dict[str, list[int]]]:
    """The trained policies (and their transfers) and the seeds each used.

    Raises:
        ValueError: for a model without the environment config or seeds in its
            ``agent.json``, or an unknown integrator in ``transfer_to``.
    """
    methods, used = [], {}
    for group, paths in (cfg.policies or {}).items():
        for path in paths:
            policy = sb3_policy(load_agent(path))  # a missing file is named here
            info = read_agent_info(path)
            keys = ("env", "training_seeds", "selection_seeds")
            missing = [k for k in keys if k not in info]
            if missing:
                raise ValueError(
                    f"{path}: its agent.json lacks {missing}; retrain it with this "
                    "version (it records the environment and the seeds it used)."
                )
            name = f"{group}[{info['seed']}]"
            env = ConfiguredEnv(info["env"])
            methods.append(Method(name, env, policy, "policy", group=str(group)))
            used[f"training seeds of {name}"] = info["training_seeds"]
            used[f"selection seeds of {name}"] = info["selection_seeds"]
            for target in cfg.transfer_to:
                check_integrator(target, "transfer_to")
                if "integrator" not in info["env"]:
                    raise ValueError(
                        f"transfer_to: {name} does not act on a parameter grid (only "
                        "the paper's setting transfers by action index); set "
                        "transfer_to=[]."
                    )
                config = {**info["env"], "integrator": target, "parameter_grid": None}
                methods.append(
                    Method(
                        f"{name}@{target}",
                        ConfiguredEnv(config),
                        policy,
                        "transfer",
                        group=f"{group}@{target}",
                    )
                )
    return methods, used


def baseline_seeds(cfg: DictConfig) -> dict[str, list[int]]:
    """The seeds the baselines train on (the error model's)."""
    model_cfg = cfg.baselines.error_model
    if not model_cfg.enabled:
        return {}
    return {"training seeds of the error model": _seed_range(model_cfg)}


def baseline_methods(cfg: DictConfig) -> list[Method]:
    """The error-model controller (fitted on its training seeds) and the forecast
    switch, as configured under ``baselines``."""
    methods = []
    model_cfg = cfg.baselines.error_model
    if model_cfg.enabled:
        make = ConfiguredEnv.from_config(model_cfg.env)
        seeds = _seed_range(model_cfg)
        log.info("Fitting the error model on %d seeds", len(seeds))
        intervals = collect_intervals(
            make, seeds, list(model_cfg.parameters), cfg.n_steps, model_cfg.window
        )
        exponents = model_cfg.exponents
        model = fit_error_model(*intervals, exponents=exponents and tuple(exponents))
        log.info(
            "Error model: R^2 %.3f (error), %.3f (cost)", model.error_r2, model.cost_r2
        )
        action = make(max_steps=int(cfg.n_steps)).action
        for price in model_cfg.prices:
            methods.append(
                Method(
                    f"error_model:{price:.0e}",
                    make,
                    ErrorModelController(model, action, float(price)),
                    "baseline",
                )
            )
    switch_cfg = cfg.baselines.forecast_switch
    if switch_cfg.enabled:
        make = ConfiguredEnv.from_config(switch_cfg.env)
        for threshold in switch_cfg.thresholds:
            rule = ForecastSwitch(float(threshold))
            methods.append(
                Method(f"forecast_switch:{threshold:g}", make, rule, "baseline")
            )
    return methods


def sweep_methods(cfg: DictConfig) -> list[Method]:
    """The fixed sweeps of ``sweeps`` (``values`` or ``low``/``high``/``num``)."""
    shared: dict[str, Any] = OmegaConf.to_container(cfg.shared, resolve=True)
    methods = []
    for family, spec in (cfg.sweeps or {}).items():
        if spec is None:
            continue
        check_integrator(str(family), f"sweeps.{family}")
        values = spec.get("values") or sweep_values(spec.low, spec.high, spec.num)
        methods += fixed_methods(str(family), list(values), **shared)
    return methods


def rl_evaluate(cfg: DictConfig) -> pd.DataFrame:
    """Evaluate from a composed ``conf/rl/rl_evaluate.yaml``; return the table."""
    torch.set_num_threads(int(cfg.torch_threads))
    seeds = _seed_range(cfg)
    policies, used = policy_methods(cfg)
    check_disjoint_seeds(seeds, used | baseline_seeds(cfg))
    methods = policies + baseline_methods(cfg) + sweep_methods(cfg)
    ds = evaluate_methods(methods, seeds, int(cfg.n_steps), progress=cfg.progress)
    fronts = {k: list(v) for k, v in cfg.fronts.items()}
    table = yardstick(
        ds, fronts, n_bootstrap=int(cfg.bootstrap.samples), seed=int(cfg.bootstrap.seed)
    )
    paths = write_evaluation(ds, table, Path(cfg.paths.output_dir), fronts)
    print_yardstick(table, list(fronts))
    for name, row in table[table.kind != "fixed"].iterrows():
        for front in fronts:
            if f"gap_{front}" not in row:
                continue
            log.info(
                "%s: gap to the %s front %+.3f [%+.3f, %+.3f] decades (%s), "
                "cost factor %.3g, %d/%d failed",
                name,
                front,
                row[f"gap_{front}"],
                row[f"gap_{front}_lo"],
                row[f"gap_{front}_hi"],
                row[f"where_{front}"],
                row[f"cost_factor_{front}"],
                row["failed"],
                row["runs"],
            )
    log.info("Evaluation written to %s", ", ".join(str(p) for p in paths.values()))
    return table


register_shared_groups()


@hydra.main(version_base="1.3", config_path=RL_CONFIG_DIR, config_name="rl_evaluate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    rl_evaluate(cfg)


if __name__ == "__main__":
    main()
