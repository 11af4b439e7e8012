"""`evaluate reference=solver`: fresh trajectories from the data's own solver.

The checkpoint's data configuration names the generator that made its training data
(:class:`physim.solvers.DatasetGenerator`: the PDE, the initial-condition distribution,
the controller, the frames). Solver-based evaluation runs that generator again for a
``test`` split with another seed: fresh initial states from the same distribution,
solved the same way (same shard batching, so the same steps as stored data of that
seed would have), then the usual rollout report. The solve is cached on disk in a
folder named by the generator's fingerprint (its whole spec, seed included) and the
trajectory count, so a second evaluation with the same seed reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from physim.data import InMemorySource, TrajectoryDataset, TrajectoryFile
from physim.tasks import AutoregressiveSurrogate

from ._evaluate import write_trajectory_report

__all__ = ["evaluate_on_solver", "solve_reference"]


def solve_reference(
    data_config: Mapping[str, Any],
    *,
    seed: int,
    num_trajectories: int | None,
    cache_dir: str | Path,
    source: str,
) -> Path:
    """Generate (or find cached) the ``test`` split of ``data_config``'s generator.

    Args:
        data_config: a resolved data config (plain containers) with ``generator``.
        seed: the generator seed of the fresh trajectories.
        num_trajectories: how many; ``None``: the config's test split size.
        cache_dir: where solved references are kept.
        source: named in error messages (the checkpoint path).

    Returns:
        The path of the cached ``test.h5``.

    Raises:
        ValueError: the config names no generator (no solver), or bad counts.
    """
    generator = data_config.get("generator")
    if not isinstance(generator, Mapping) or "_target_" not in generator:
        raise ValueError(
            f"{source}: the checkpoint's data config (data._target_="
            f"{data_config.get('_target_')!r}, root={data_config.get('root')!r}) "
            "names no solver (no data.generator), so reference=solver cannot make "
            "fresh trajectories; evaluate on stored data instead (reference=data "
            "data=<name>)."
        )
    count = num_trajectories
    if count is None:
        count = dict(generator.get("num_trajectories") or {}).get("test")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(
            f"solver_reference.num_trajectories must be an integer >= 1, got {count!r}."
        )
    config = OmegaConf.create(dict(generator))
    config.seed = int(seed)
    config.num_trajectories = {"test": count}
    solver = instantiate(config)
    root = Path(cache_dir) / f"{solver.name}-{solver.fingerprint}-n{count}"
    solver(root, splits=["test"])  # idempotent: a cached solve is checked and kept
    return solver.split_path(root, "test")


def evaluate_on_solver(
    task: AutoregressiveSurrogate, cfg: DictConfig, out_dir: Path
) -> dict[str, float]:
    """The rollout report of ``task`` against fresh solver trajectories.

    ``cfg.solver_reference`` gives ``seed``, ``num_trajectories`` and ``cache_dir``;
    the data config is the checkpoint's own (``task.run_config["data"]``), so the
    frames, ``time_stride``, ``rollout_steps`` and batch size match its training data.
    """
    options = cfg.solver_reference
    data = (task.run_config or {}).get("data") or {}
    path = solve_reference(
        data,
        seed=options.seed,
        num_trajectories=options.num_trajectories,
        cache_dir=options.cache_dir,
        source=str(cfg.ckpt_path),
    )
    file = TrajectoryFile(path)
    stride = int(data.get("time_stride", 1))
    t_in = task.time_history
    available = file.num_frames // stride - t_in
    steps = data.get("rollout_steps") or available
    if not 1 <= steps <= available:
        raise ValueError(
            f"{cfg.ckpt_path}: data.rollout_steps={steps} does not fit the solved "
            f"trajectories ({file.num_frames} frames, time_stride={stride}, "
            f"{t_in} history frames)."
        )
    dataset = TrajectoryDataset(
        InMemorySource.load(file), stride=stride, num_frames=t_in + steps
    )
    return write_trajectory_report(
        task,
        dataset,
        file,
        out_dir,
        time_stride=stride,
        parameter_names=file.parameter_names,
        batch_size=int(data.get("eval_batch_size") or data.get("batch_size") or 32),
        attrs={"split": "test", "reference": "solver", "reference_seed": options.seed},
        sample=cfg.report.sample,
        plot_times=cfg.report.plot_times,
    )
