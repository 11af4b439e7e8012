"""`python train.py +experiment=<name>`: fit, test, and write the rollout report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ._config import CONFIG_DIR, log, report_user_errors
from ._evaluate import write_rollout_report
from ._trainer import check_trainer_config


def instantiate_list(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a ``name -> node`` group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node and "_target_" in node]


def use_debug_data(cfg: DictConfig) -> None:
    """``debug=default``: a small dataset of its own, beside the configured one.

    With ``cfg.debug_data.num_trajectories = n`` the generator makes ``n``
    trajectories per split (one shard) with just enough frames for one training
    window and a short rollout, in ``<data.root>-debug`` (so the full dataset is
    neither generated nor overwritten). Data without a generator (external files) are
    only capped by ``data.max_trajectories``.
    """
    options = cfg.get("debug_data")
    data = cfg.data
    generator = data.get("generator")
    if not options or generator is None:
        return
    count = int(options.num_trajectories)
    stride = int(data.get("time_stride", 1))
    window = data.time_history + data.time_future * (1 + data.get("unroll_steps", 0))
    rollout = int(options.get("rollout_steps", 2))
    frames = (max(window, data.time_history + rollout)) * stride
    with open_dict(cfg):
        data.root = f"{data.root}-debug"
        data.rollout_steps = None  # every frame after the history
        generator.shard_size = count
        generator.num_trajectories = {
            split: min(count, int(n)) for split, n in generator.num_trajectories.items()
        }
        if isinstance(generator.num_frames, int):
            generator.num_frames = frames
        else:
            generator.num_frames = dict.fromkeys(generator.num_frames, frames)


def check_resume_checkpoint(path: str | Path, task: pl.LightningModule) -> None:
    """Refuse a ``ckpt_path`` whose weights do not fit this run's model.

    Lightning would stop deep inside ``load_state_dict`` with a traceback; the usual
    cause is a checkpoint of another experiment or model.

    Raises:
        FileNotFoundError, ValueError: naming the path, what differs and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={path}: checkpoint not found; give the last.ckpt of the run to "
            "resume, or leave ckpt_path out to start afresh."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises many types for a corrupt file
        raise ValueError(
            f"ckpt_path={path}: not a readable torch checkpoint ({error})."
        ) from error
    weights = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict):
        raise ValueError(
            f"ckpt_path={path}: no 'state_dict' in the file; is it a Lightning "
            "checkpoint written by `python train.py`?"
        )
    expected = task.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    reshaped = sorted(
        k
        for k in set(expected) & set(weights)
        if tuple(expected[k].shape) != tuple(weights[k].shape)
    )
    if missing or unexpected or reshaped:
        config = checkpoint.get("physim_config") or {}
        origin = config.get("task_name", "another run")
        model = (config.get("model") or {}).get("_target_", "?")
        found = [
            f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
            f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"
            if unexpected
            else "",
            f"{len(reshaped)} of another shape (e.g. {reshaped[0]})"
            if reshaped
            else "",
        ]
        raise ValueError(
            f"ckpt_path={path}: the checkpoint's weights (task {origin!r}, model "
            f"{model}) do not fit this run's model: "
            f"{', '.join(f for f in found if f)} parameter(s). Resume with the "
            "experiment and model overrides it was trained with, or leave ckpt_path "
            "out to start afresh."
        )


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job from a composed config; returns the final metrics."""
    trainer_cfg = check_trainer_config(cfg.trainer)
    use_debug_data(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    task = instantiate(cfg.model)
    task.run_config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and cfg.get("train", True):
        check_resume_checkpoint(ckpt_path, task)
    trainer: pl.Trainer = instantiate(
        trainer_cfg,
        callbacks=instantiate_list(cfg.get("callbacks")),
        logger=instantiate_list(cfg.get("logger")) or False,
    )
    if cfg.get("train", True):
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("test", True):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if best is None and not cfg.get("train", True):
            best = ckpt_path
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
