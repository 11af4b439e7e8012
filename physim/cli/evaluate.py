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
    task: AutoregressiveSurrogate, datamodule: Any, cfg: DictConfig
) -> None:
    """Run the model once on the first window of the split; refuse data it cannot
    take (another number of spatial dimensions, an incompatible grid)."""
    file = datamodule.files[cfg.split]
    if getattr(task.hparams, "conditioning", None):
        task.set_parameter_names(datamodule.parameter_names)
    item = datamodule.rollout_dataset(cfg.split)[0]
    history = item["trajectory"][None, : task.hparams.time_history].to(task.device)
    params = item.get("params")
    try:
        with torch.inference_mode():
            task.eval().predict_next(
                history, None if params is None else params[None].to(task.device)
            )
    except Exception as error:  # whatever the backbone raises on a foreign shape
        trained = (task.run_config or {}).get("data", {}).get("root", "?")
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
