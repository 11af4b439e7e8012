"""`python train.py +experiment=<name>`: fit, test, and write the rollout report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ._config import CONFIG_DIR, log, report_user_errors
from ._evaluate import write_rollout_report


def instantiate_list(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a ``name -> node`` group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node and "_target_" in node]


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job from a composed config; returns the final metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    task = instantiate(cfg.model)
    task.run_config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=instantiate_list(cfg.get("callbacks")),
        logger=instantiate_list(cfg.get("logger")) or False,
    )
    if cfg.get("train", True):
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("test", True):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if best is None and not cfg.get("train", True):
            best = cfg.get("ckpt_path")
        trainer.test(task, datamodule=datamodule, ckpt_path=best)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        if trainer.is_global_zero:
            report = cfg.get("report", {})
            out_dir = Path(cfg.paths.output_dir) / "rollout"
            summary = write_rollout_report(
                task,
                datamodule,
                out_dir,
                split="test",
                sample=report.get("sample", 0),
                plot_times=report.get("plot_times", 4),
            )
            metrics.update({f"report/{k}": v for k, v in summary.items()})
            log.info("Rollout report written to %s", out_dir)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@report_user_errors
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("val/rollout_rel_l2")


if __name__ == "__main__":
    main()
