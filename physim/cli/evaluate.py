"""`python scripts/evaluate.py ckpt_path=<ckpt> [data=<name>] [data.root=<dir>]`.

Rolls a trained checkpoint out on the data it was trained with (the checkpoint's own
data settings: ``data`` defaults to ``checkpoint``), or on any compatible dataset
(``data=<name>``, ``data.root=<dir>``: another split, another resolution for
resolution-free backbones such as FNO), and writes the rollout report. With
``reference=solver`` the truth is solved afresh instead: new initial states from the
checkpoint's own data distribution (``solver_reference.seed``), cached on disk.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from physim.tasks import EvaluableTask

from ._config import CONFIG_DIR, log, report_user_errors
from ._evaluate import data_names, write_rollout_report
from ._solver_reference import evaluate_on_solver


def load_task(ckpt_path: str | Path, map_location: str = "cpu") -> EvaluableTask:
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
    if not config and isinstance(checkpoint, dict) and "insr" in checkpoint:
        raise ValueError(
            f"{path}: an INSR checkpoint holds its solved field but not the run "
            "configuration (problem, data) needed to evaluate it; INSR's rollout "
            "report is written at the end of its training run: see "
            f"{path.parent.parent / 'rollout'}/metrics.json, or rerun `python "
            "train.py +experiment=<its INSR experiment>`."
        )
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


def checkpoint_argument(args: Sequence[str]) -> str | None:
    """The value of a plain ``ckpt_path=...`` override among command-line ``args``."""
    parser = OverridesParser.create()
    found = None
    for arg in args:
        if arg.startswith("-") or "ckpt_path" not in arg:
            continue
        try:
            override = parser.parse_override(arg)
        except Exception:  # not an override (e.g. the value of --config-dir)
            continue
        if override.key_or_group == "ckpt_path" and not override.is_sweep_override():
            found = str(override.value())
    return found


def register_checkpoint_data(ckpt_path: str | None) -> None:
    """Offer the checkpoint's own data config as the config ``data=checkpoint``.

    ``conf/evaluate.yaml`` selects it by default, so an evaluation uses the data the
    model was trained on, and overrides such as ``data.root=...`` apply to it (Hydra
    composes it like any data config). Without a readable checkpoint the node is
    empty and :func:`evaluate` reads the data config from the checkpoint itself.
    """
    node: dict[str, Any] = {}
    if ckpt_path:
        try:
            checkpoint = torch.load(
                ckpt_path, map_location="cpu", weights_only=True, mmap=True
            )
            node = dict((checkpoint.get("physim_config") or {}).get("data") or {})
        except Exception:  # reported by load_task, with the fix
            node = {}
    ConfigStore.instance().store(group="data", name="checkpoint", node=node)


def check_model_fits_data(
    task: EvaluableTask, datamodule: Any, cfg: DictConfig
) -> None:
    """Roll the task out one step from the first trajectory of the split (through
    :class:`physim.tasks.EvaluableTask`, whatever the task); refuse data it cannot
    take (another number of spatial dimensions or channels, an incompatible grid)."""
    file = datamodule.files[cfg.split]
    item = datamodule.rollout_dataset(cfg.split)[0]
    batch = {
        k: v[None].to(task.device) if isinstance(v, torch.Tensor) else v
        for k, v in item.items()
    }
    batch["trajectory"] = batch["trajectory"][:, : task.time_history + 1]
    try:
        task.set_data_names(data_names(file, datamodule.parameter_names))
        with torch.inference_mode():
            task.eval().rollout_batch(batch)
    except Exception as error:  # whatever the backbone raises on a foreign shape
        run = getattr(task, "run_config", None) or {}
        trained = run.get("data", {}).get("root", "?")
        raise ValueError(
            f"ckpt_path={cfg.ckpt_path}: the model (trained on {trained}) cannot run "
            f"on {file.path} ({len(file.spatial_shape)}-D, grid "
            f"{list(file.spatial_shape)}): {' '.join(str(error).split())[:200]}. "
            "Evaluate it on data like its training data (leave data out to use the "
            "checkpoint's own, or data=<name> of the same PDE and dimension)."
        ) from error


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.data`` (split ``cfg.split``; the
    checkpoint's own data config unless another is given), or with
    ``cfg.reference == "solver"`` on fresh solver trajectories."""
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise ValueError(
            "ckpt_path is required: python scripts/evaluate.py "
            "ckpt_path=outputs/<task>/<run>/checkpoints/last.ckpt"
        )
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
    own = OmegaConf.create((task.run_config or {}).get("data") or {})
    data_cfg = cfg.get("data")
    if not data_cfg or "_target_" not in data_cfg:
        if "_target_" not in own:
            raise ValueError(
                f"ckpt_path={cfg.ckpt_path}: the checkpoint holds no data config; "
                "choose the data to evaluate on with data=<name>."
            )
        data_cfg = own
    datamodule = instantiate(data_cfg)
    if data_cfg != own and not datamodule.missing_files():
        # Other data than the checkpoint's, chosen on purpose (another resolution,
        # another folder): the files are used as they are, whatever made them.
        datamodule.generator = None
    # The model's channels are those of its training data; its history, the task's.
    expected = {
        "num_channels": own.get("num_channels"),
        "time_history": task.time_history,
    }
    for key, value in expected.items():
        if value is not None and getattr(datamodule, key) != value:
            raise ValueError(
                f"data.{key}={getattr(datamodule, key)} but the checkpoint's model was "
                f"trained with {key}={value}; set data.{key}={value}."
            )
    datamodule.prepare_data()
    datamodule.setup("test")
    check_model_fits_data(task, datamodule, cfg)
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
def _main(cfg: DictConfig) -> None:
    evaluate(cfg)


def main() -> None:
    register_checkpoint_data(checkpoint_argument(sys.argv[1:]))
    _main()


register_checkpoint_data(None)  # `data=checkpoint` always exists (compose API, tests)

if __name__ == "__main__":
    main()
