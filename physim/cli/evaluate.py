"""`python scripts/evaluate.py ckpt_path=<ckpt> [data=<name>] [data.root=<dir>]`.

Rolls a trained checkpoint out on any compatible dataset (another split, another
resolution for resolution-free backbones such as FNO) and writes the rollout report.
With ``reference=solver`` the truth is solved afresh instead: new initial states from
the checkpoint's own data distribution (``solver_reference.seed``), cached on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from physim.tasks import AutoregressiveSurrogate

from ._config import CONFIG_DIR, log, report_user_errors
from ._evaluate import write_rollout_report
from ._solver_reference import evaluate_on_solver


def load_task(
    ckpt_path: str | Path, map_location: str = "cpu"
) -> AutoregressiveSurrogate:
    """Rebuild a task and its backbone from a physim checkpoint alone."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: checkpoint not found; pass ckpt_path=<file.ckpt>."
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt file
        raise ValueError(
            f"{path}: not a readable torch checkpoint ({error})."
        ) from error
    config = checkpoint.get("physim_config") if isinstance(checkpoint, dict) else None
    if not config or "model" not in config:
        raise ValueError(
            f"{path}: no physim run configuration in the checkpoint (key "
            "'physim_config'); was it written by `python train.py`?"
        )
    task = instantiate(OmegaConf.create(config["model"]))
    try:
        task.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ValueError(
            f"{path}: weights do not fit the model in its own configuration: {error}"
        ) from error
    task.run_config = config
    return task


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.data`` (split ``cfg.split``), or with
    ``cfg.reference == "solver"`` on fresh solver trajectories."""
    reference = cfg.get("reference", "data")
    if reference not in ("data", "solver"):
        raise ValueError(
            f"reference must be 'data' (a stored split) or 'solver' (fresh solver "
            f"trajectories), got {reference!r}."
        )
    task = load_task(cfg.ckpt_path)
    if reference == "solver":
        out_dir = Path(cfg.paths.output_dir) / "rollout"
        summary = evaluate_on_solver(task, cfg, out_dir)
        log.info("Rollout report (solver reference) written to %s", out_dir)
        return summary
    datamodule = instantiate(cfg.data)
    expected: dict[str, Any] = {
        "num_channels": task.hparams.num_channels,
        "time_history": task.hparams.time_history,
    }
    for key, value in expected.items():
        if getattr(datamodule, key) != value:
            raise ValueError(
                f"data.{key}={getattr(datamodule, key)} but the checkpoint's model was "
                f"trained with {key}={value}; set data.{key}={value}."
            )
    datamodule.prepare_data()
    out_dir = Path(cfg.paths.output_dir) / "rollout"
    summary = write_rollout_report(
        task,
        datamodule,
        out_dir,
        split=cfg.split,
        sample=cfg.report.sample,
        plot_times=cfg.report.plot_times,
    )
    log.info("Rollout report written to %s", out_dir)
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
