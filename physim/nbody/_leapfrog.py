"""Fixed-step kick-drift-kick leapfrog."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import ConstantStep, StepResult, StepSizeController, integrate

from . import _kernels as K
from ._base import (
    Advance,
    as_numpy,
    check_masses,
    check_phase_space,
    like,
    raise_for_status,
)

#: Leapfrog's action grid: dt = 1e-4 ... 1e-1 N-body time units, log-spaced.
LEAPFROG_DT_GRID = tuple(float(x) for x in np.logspace(-4, -1, 10))


class Leapfrog:
    """Kick-drift-kick leapfrog (velocity Verlet): order 2, symplectic at fixed ``dt``.

    With a constant step the energy error stays bounded (no secular drift) for
    orbits the step resolves; changing ``dt`` between steps (adaptive or RL-chosen)
    breaks the exact symplecticity, and close encounters need a step far below
    their time scale (the reference paper's fixed-step Symple could not be driven
    by a policy trained on variable-step codes). One force evaluation per step; no
    error estimate.

    The state is ``[B, N, 9]``: positions, velocities, accelerations (see
    :meth:`prepare`); the steps run in numba kernels on the CPU.

    Args:
        masses: ``N`` masses > 0.
        g: the gravitational constant.
        max_steps: cap on the steps of one :meth:`integrate` call.
    """

    order = 2
    parameter_name = "dt"
    default_grid = LEAPFROG_DT_GRID
    #: Force evaluations of a restart from a phase-space state (the acceleration).
    restart_evaluations = 1

    def __init__(
        self,
        masses: Sequence[float] | np.ndarray | Tensor,
        g: float = 1.0,
        max_steps: int = 10_000_000,
    ) -> None:
        self.masses = check_masses(masses)
        if not (math.isfinite(g) and g > 0):
            raise ValueError(f"Leapfrog: g must be > 0, got {g!r}.")
        self.g = float(g)
        self.max_steps = int(max_steps)

    def prepare(self, y: Float[Tensor, "B N 6"]) -> Float[Tensor, "B N 9"]:
        """Append accelerations to phase-space states ``[B, N, 6]``."""
        y6 = as_numpy(y)
        check_phase_space(y6, self.masses)
        return like(K.prepare_leapfrog(y6, self.masses, self.g), y)

    def step(self, y: Float[Tensor, "B N 9"], t: float, dt: float) -> StepResult:
        """One step of size ``dt`` of every system (error estimate: ``None``)."""
        return StepResult(
            like(K.leapfrog_steps(as_numpy(y), self.masses, self.g, dt), y)
        )

    def integrate(
        self,
        y: Float[Tensor, "B N 9"],
        t0: float,
        t1: float,
        controller: StepSizeController,
    ) -> Advance:
        """Advance from ``t0`` to ``t1``; ``ConstantStep`` takes the compiled loop."""
        if isinstance(controller, ConstantStep):
            y1, n_steps, status = K.leapfrog_run(
                as_numpy(y), self.masses, self.g, t0, t1, controller.dt, self.max_steps
            )
            raise_for_status(status, t1, self.max_steps, "Leapfrog")
            return Advance(like(y1, y), int(n_steps))
        sol = integrate(self, controller, y, t0, t1, max_steps=self.max_steps)
        return Advance(sol.ys[:, -1], int(sol.stats["n_steps"]))

    def start(
        self, y: Float[np.ndarray, "N 6"], t0: float = 0.0
    ) -> Float[Tensor, "1 N 9"]:
        """The state of one system (the time is given to :meth:`advance`)."""
        return self.prepare(torch.as_tensor(y, dtype=torch.float64)[None])

    def advance(self, state: Tensor, t0: float, t1: float, parameter: float) -> Advance:
        return self.integrate(state, t0, t1, ConstantStep(parameter))

    def phase_space(self, state: Tensor) -> Float[np.ndarray, "N 6"]:
        return state[0, :, :6].numpy().copy()

    def __repr__(self) -> str:
        return f"Leapfrog(masses={self.masses.tolist()}, g={self.g})"
