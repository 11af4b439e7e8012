"""Speed of one ``FiniteVolumeNS2D`` step against jax-cfd's jitted step, side by side.

Run: ``python scripts/bench/bench_fv_jaxcfd.py`` (2-4 minutes). jax-cfd is optional and
never a dependency of physim: its steps run in a worker process of an interpreter that
has it, ``PHYSIM_JAX_PYTHON`` (default: this interpreter if it imports ``jax_cfd``;
otherwise the jax columns are skipped and only physim is timed). For example::

    python -m venv /tmp/jaxenv
    /tmp/jaxenv/bin/pip install jax==0.5.3 jaxlib==0.5.3 jax-cfd==0.2.1 numpy
    PHYSIM_JAX_PYTHON=/tmp/jaxenv/bin/python python scripts/bench/bench_fv_jaxcfd.py

A separate interpreter keeps jax out of physim's environment (jax-cfd 0.2.1 needs jax
<= 0.5 or a ``jax.tree_map`` shim). The worker and this process take turns, never run
at once.

Setting: Kolmogorov flow (``sin(4 y)``, drag 0.1, nu = 1e-3, ``[0, 2 pi]^2``), the
default scheme of both (``implicit_diffusion_navier_stokes`` with van Leer on
Lax-Wendroff), ``dt = 0.5 dx / 7``, from a ``FilteredVelocityField`` state. Cases:
N in {64, 256}, batch in {1, 16} (jax-cfd: ``jax.jit`` of its step, of ``jax.vmap``
of it for batch 16), float32 and float64 (jax-cfd float32 without
``jax_enable_x64``, float64 with it). Everything on
one thread (``torch.set_num_threads(1)``; XLA with
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``).

physim is timed eagerly and with ``compile=True`` (``torch.compile`` of the step's
elementwise work; dynamo's caches are reset between cases so each case gets its own
static-shape graph). Blocks of steps are interleaved (eager, compiled, jax) for
``PHYSIM_BENCH_ROUNDS`` rounds (default 5) and the fastest block per variant is
reported, in wall time and in CPU time of the process (``time.process_time``, which
leaves out the time other jobs hold the core; also any extra threads would show as CPU
above wall). On a shared machine the minimum is the least disturbed figure, and the
ratios are taken of the CPU times. Before
timing, physim and jax-cfd are run 10 steps from the same state and compared (rel. L2),
so the table compares the same scheme.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = [(n, b, d) for n in (64, 256) for b in (1, 16) for d in ("float32", "float64")]
BLOCK_SECONDS = 0.2
CHECK_STEPS = 10
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


# ------------------------------------------------------------------ jax-cfd worker
def jax_worker(dtype: str) -> None:
    """Serve ``setup``/``run`` requests (one JSON object per line) for jax-cfd."""
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jax_cfd.base as cfd

    step_fn = state = None
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "setup":
            n = request["n"]
            grid = cfd.grids.Grid((n, n), domain=((0, 2 * np.pi), (0, 2 * np.pi)))
            dt = 0.5 * (2 * np.pi / n) / 7.0
            forcing = cfd.forcings.simple_turbulence_forcing(
                grid,
                constant_magnitude=1.0,
                constant_wavenumber=4,
                linear_coefficient=-0.1,
                forcing_type="kolmogorov",
            )
            step = cfd.equations.implicit_diffusion_navier_stokes(
                density=1.0, viscosity=1e-3, dt=dt, grid=grid, forcing=forcing
            )
            bc = cfd.boundaries.periodic_boundary_conditions(2)
            offsets = ((1.0, 0.5), (0.5, 1.0))

            def array_step(a, step=step, grid=grid, bc=bc, offsets=offsets):
                v = tuple(
                    cfd.grids.GridVariable(cfd.grids.GridArray(a[i], o, grid), bc)
                    for i, o in enumerate(offsets)
                )
                return jnp.stack([u.data for u in step(v)])

            if request["batch"] > 1:
                step_fn = jax.jit(jax.vmap(array_step))
            else:
                step_fn = jax.jit(lambda a, f=array_step: f(a[0])[None])
            initial = jnp.asarray(np.load(request["path"]).astype(dtype))
            step_fn(initial).block_until_ready()  # compile
            reply = {"ok": True}
        else:  # run
            state = jnp.asarray(np.load(request["path"]).astype(dtype))
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(request["steps"]):
                state = step_fn(state)
            state.block_until_ready()
            reply = {
                "seconds": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
            }
            if request.get("out"):
                np.save(request["out"], np.asarray(state, dtype=np.float64))
        print(json.dumps(reply), flush=True)


class JaxWorker:
    """A jax-cfd worker process for one dtype."""

    def __init__(self, python: str, dtype: str) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "XLA_FLAGS": XLA_FLAGS}
        self.process = subprocess.Popen(
            [python, __file__, "--jax-worker", dtype],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, **request: object) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the jax-cfd worker died on {request}")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def jax_python() -> str | None:
    python = os.environ.get("PHYSIM_JAX_PYTHON", sys.executable)
    probe = subprocess.run(
        [python, "-c", "import jax_cfd.base"], capture_output=True, check=False
    )
    return python if probe.returncode == 0 else None


# ------------------------------------------------------------------ physim side
def physim_case(n: int, batch: int, dtype: str, folder: Path) -> tuple:
    import torch

    from physim.solvers import (
        FilteredVelocityField,
        FiniteVolumeNS2D,
        KolmogorovForcing,
    )

    torch._dynamo.reset()
    generator = torch.Generator().manual_seed(0)
    initial = FilteredVelocityField(n).sample(
        batch, generator=generator, dtype=torch.float64
    )
    path = folder / f"initial_{n}_{batch}.npy"
    np.save(path, initial.numpy())
    solvers = {
        name: FiniteVolumeNS2D(
            n, forcing=KolmogorovForcing(), dtype=dtype, compile=name == "compiled"
        )
        for name in ("eager", "compiled")
    }
    dt = 0.5 * (2 * math.pi / n) / 7.0

    def run(name: str, steps: int) -> tuple[float, float, torch.Tensor]:
        """Wall and CPU seconds of ``steps`` steps from the initial state."""
        solver = solvers[name]
        state = solver.encode(initial)
        cpu, wall = time.process_time(), time.perf_counter()
        with torch.no_grad():
            for _ in range(steps):
                state = solver.advance(state, dt)
        return time.perf_counter() - wall, time.process_time() - cpu, state

    return path, initial, run


def main() -> None:
    import torch

    torch.set_num_threads(1)
    rounds = int(os.environ.get("PHYSIM_BENCH_ROUNDS", "5"))
    python = jax_python()
    if python is None:
        print("jax-cfd not importable (set PHYSIM_JAX_PYTHON): timing physim only.")
    workers: dict[str, JaxWorker] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n, batch, dtype in CASES:
            path, initial, run = physim_case(n, batch, dtype, folder)
            run("compiled", 2)  # compile
            names = ["eager", "compiled"]
            agreement = math.nan
            jax = None
            if python is not None:
                jax = workers.setdefault(dtype, JaxWorker(python, dtype))
                jax.ask(cmd="setup", n=n, batch=batch, path=str(path))
                out = folder / "check.npy"
                jax.ask(cmd="run", steps=CHECK_STEPS, path=str(path), out=str(out))
                *_, ours = run("eager", CHECK_STEPS)
                theirs = torch.from_numpy(np.load(out))
                agreement = float((ours.double() - theirs).norm() / theirs.norm())
                names.append("jax-cfd")
            first, *_ = run("eager", 2)
            steps = max(2, round(BLOCK_SECONDS / (first / 2)))
            best = {name: [math.inf, math.inf] for name in names}  # wall, CPU
            for _ in range(rounds):
                for name in names:
                    if name == "jax-cfd":
                        reply = jax.ask(cmd="run", steps=steps, path=str(path))
                        seconds, cpu = reply["seconds"], reply["cpu"]
                    else:
                        seconds, cpu, _ = run(name, steps)
                    best[name][0] = min(best[name][0], seconds / steps)
                    best[name][1] = min(best[name][1], cpu / steps)
            rows.append((n, batch, dtype, best, agreement))
            print_row(rows[-1])
    for worker in workers.values():
        worker.close()
    print_table(rows, rounds)


def print_row(row: tuple) -> None:
    n, batch, dtype, best, agreement = row
    times = ", ".join(
        f"{k} {wall * 1e6:.0f} us (CPU {cpu * 1e6:.0f})"
        for k, (wall, cpu) in best.items()
    )
    print(
        f"{n}^2 batch {batch} {dtype}: {times}; agreement {agreement:.1e}", flush=True
    )


def print_table(rows: list[tuple], rounds: int) -> None:
    """Markdown: per-step times (wall / CPU) and the ratios of the CPU times."""
    print(
        f"\n| N | batch | dtype | physim eager | physim compiled | jax-cfd jit | "
        f"eager / jax | compiled / jax | rel. L2 after {CHECK_STEPS} steps |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, batch, dtype, best, agreement in rows:
        jax = best.get("jax-cfd", [math.nan, math.nan])
        cells = [
            f"{wall * 1e6:.0f} / {cpu * 1e6:.0f} us"
            for wall, cpu in (best["eager"], best["compiled"], jax)
        ]
        ratios = [f"{best[k][1] / jax[1]:.2f}" for k in ("eager", "compiled")]
        print(
            f"| {n}^2 | {batch} | {dtype} | {' | '.join(cells)} | "
            f"{' | '.join(ratios)} | {agreement:.1e} |"
        )
    print(
        f"\nper step, wall / CPU time, each the fastest of {rounds} interleaved blocks "
        f"of ~{BLOCK_SECONDS} s; one thread each; ratios of CPU times (time not "
        "spent descheduled by other jobs); targets: compiled / jax <= 1.5 at 64^2, "
        "<= 1.0 at 256^2."
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--jax-worker"]:
        jax_worker(sys.argv[2])
    else:
        main()
