"""Loading a multi-GB foreign file lazily: windows/s and peak memory.

    python scripts/bench/bench_external_loading.py [size_gb]     (default 2.1)

(with physim installed, ``pip install -e .``, or ``PYTHONPATH=.``; about 5 minutes.)

Writes a file in The Well's layout (one scalar field ``vorticity``, 64^2, 50 frames,
float32, one trajectory per chunk: the ns2d setting) of ``size_gb`` under /tmp, reads
it through ``TrajectoryDataModule(external=ExternalSource(...))`` (split 80/10/10 by
trajectory, ``in_memory=False``: every window is read from disk by the loader's own
handle) and reports:

1. training windows per second the data module delivers with 0, 1 and 2 workers,
   versus the windows per second the default FNO consumes in training (the ns2d
   experiment: conf/model/fno.yaml, 10 frames in, batch 20, 32^2 training points),
   measured side by side in this process in two alternating rounds; target: >= 5x;
2. peak resident memory of the loading process and of its largest worker, measured
   in a fresh subprocess per setting (VmHWM of /proc/<pid>/status); target: under 1 GB
   whatever the file size (also measured on a file an eighth of the size).

The file is deleted at the end. Note: it was just written, so it is probably in the
page cache; the figures are for a warm cache.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
WORK = Path("/tmp/physim-bench-external")
FRAMES, POINTS = 50, 64
SECONDS = 15.0  # loading time per setting


def write_well_file(path: Path, size_gb: float) -> int:
    """A The Well file of about ``size_gb`` GB; returns its trajectory count."""
    per_trajectory = FRAMES * POINTS * POINTS * 4
    num = int(size_gb * 1e9 / per_trajectory)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs.update(
            dataset_name="bench", grid_type="cartesian", n_spatial_dims=2,
            n_trajectories=num, simulation_parameters=[],
        )  # fmt: skip
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        time_ = dims.create_dataset("time", data=np.arange(1.0, FRAMES + 1))
        time_.attrs.update(sample_varying=False, time_varying=True)
        for name in ("x", "y"):
            axis = dims.create_dataset(name, data=np.arange(POINTS) / POINTS)
            axis.attrs.update(sample_varying=False, time_varying=False)
        for group in ("boundary_conditions", "scalars", "t1_fields", "t2_fields"):
            f.create_group(group)
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["vorticity"]
        field = t0.create_dataset(
            "vorticity",
            shape=(num, FRAMES, POINTS, POINTS),
            dtype=np.float32,
            chunks=(1, FRAMES, POINTS, POINTS),
        )
        field.attrs.update(sample_varying=True, time_varying=True, dim_varying=[1, 1])
        block = 64
        for start in range(0, num, block):
            stop = min(start + block, num)
            field[start:stop] = rng.standard_normal(
                (stop - start, FRAMES, POINTS, POINTS), dtype=np.float32
            )
    return num


def datamodule(path: Path, workers: int):
    from physim.data import TrajectoryDataModule
    from physim.data.readers import ExternalSource

    return TrajectoryDataModule(
        WORK / "cache",
        num_channels=1,
        time_history=10,
        time_future=1,
        batch_size=20,
        num_workers=workers,
        in_memory=False,
        external=ExternalSource(path),
    )


def loader_rate(dm, seconds: float) -> tuple[float, Any]:
    """Training windows per second the data module's train loader delivers (and the
    loader's iterator, whose worker processes are still alive)."""
    loader = dm.train_dataloader()
    iterator = iter(loader)
    next(iterator)  # workers started
    windows, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        try:
            windows += next(iterator)["history"].shape[0]
        except StopIteration:
            iterator = iter(loader)
    return windows / (time.perf_counter() - start), iterator


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a process in MB.

    Not ``getrusage``: its ``ru_maxrss`` keeps the parent's peak across fork + exec,
    so a subprocess of a large process would report the parent's memory.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM")


def pss_mb(pid: int | str = "self") -> float:
    """Proportional set size of a process in MB (shared pages split among sharers)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/smaps_rollup has no Pss")


def child(path: Path, workers: int) -> None:
    """Runs in a fresh subprocess: peak RSS of loading alone."""
    dm = datamodule(path, workers)
    dm.prepare_data()
    dm.setup("fit")
    rate, iterator = loader_rate(dm, SECONDS / 3)
    pids = [w.pid for w in getattr(iterator, "_workers", [])]
    kids = max((peak_rss_mb(pid) for pid in pids), default=0.0)
    total = pss_mb() + sum(pss_mb(pid) for pid in pids)
    print(f"RESULT {rate:.1f} {peak_rss_mb():.0f} {kids:.0f} {total:.0f}")


def measure_rss(path: Path, workers: int) -> tuple[float, float, float]:
    """Peak RSS of the loading process and of its largest worker, and the total
    PSS of all of them (MB), from a fresh subprocess."""
    pythonpath = os.environ.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), str(workers)],
        capture_output=True, text=True, check=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{pythonpath}"},
    )  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    own, kids, total = map(float, line.split()[2:])
    return own, kids, total


def training_step_time(path: Path):
    """A function timing the ns2d FNO's training (median seconds per step of 20)."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    import physim.cli  # noqa: F401  (resolvers)

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=ns2d"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    dm = datamodule(path, 0)
    dm.setup("fit")
    task = instantiate(cfg.model)
    task.set_statistics(dm.statistics)
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-3)
    loader = iter(dm.train_dataloader())
    batches = [next(loader) for _ in range(20)]
    task.train()

    def timed() -> float:
        times = []
        for batch in batches:
            start = time.perf_counter()
            loss = task.model_step(batch)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return timed, cfg.data.batch_size


def main(size_gb: float) -> None:
    free = shutil.disk_usage("/tmp").free / 1e9
    if free < 2.5 * size_gb:
        sys.exit(f"/tmp has {free:.1f} GB free; need {2.5 * size_gb:.1f} GB.")
    shutil.rmtree(WORK, ignore_errors=True)
    try:
        big = WORK / "big" / "data" / "train" / "bench.hdf5"
        start = time.perf_counter()
        num = write_well_file(big, size_gb)
        print(
            f"wrote {big} ({big.stat().st_size / 1e9:.2f} GB, {num} trajectories) in "
            f"{time.perf_counter() - start:.0f} s"
        )
        dm = datamodule(big, 0)
        start = time.perf_counter()
        dm.prepare_data()  # the one-off statistics pass over the train split
        print(f"statistics of the train split: {time.perf_counter() - start:.1f} s")
        step, batch_size = training_step_time(big)
        # Side by side in this process, twice, so that a changing machine load
        # affects both sides alike: training, then the loaders.
        rows: dict[int, list[float]] = {0: [], 1: [], 2: []}
        consumed = []
        for _ in range(2):
            consumed.append(batch_size / step())
            for workers in rows:
                dm = datamodule(big, workers)
                dm.setup("fit")
                rows[workers].append(loader_rate(dm, SECONDS)[0])
                del dm
        print(f"\nFNO (ns2d) training consumes {consumed[0]:.1f} / {consumed[1]:.1f} "
              "windows/s (round 1 / round 2)\n")  # fmt: skip
        print(f"{'workers':>8} {'windows/s':>16} {'x training':>14} "
              f"{'peak RSS main':>14} {'peak RSS worker':>16} "
              f"{'total PSS':>10}")  # fmt: skip
        for workers, rates in rows.items():
            own, kids, total = measure_rss(big, workers)
            ratios = [r / c for r, c in zip(rates, consumed, strict=True)]
            print(
                f"{workers:>8} {rates[0]:>7.0f} / {rates[1]:<7.0f}"
                f"{ratios[0]:>6.0f}x / {ratios[1]:<5.0f}x"
                f"{own:>11.0f} MB {kids:>13.0f} MB {total:>7.0f} MB"
            )
        small = WORK / "small" / "data" / "train" / "bench.hdf5"
        write_well_file(small, size_gb / 8)
        own, kids, total = measure_rss(small, 2)
        print(
            f"\nfile of {small.stat().st_size / 1e9:.2f} GB, 2 workers: peak RSS "
            f"{own:.0f} MB main, {kids:.0f} MB worker, total PSS {total:.0f} MB"
        )
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main(float(sys.argv[1]) if len(sys.argv) > 1 else 2.1)
