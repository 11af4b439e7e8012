"""Fourth-order Hermite with a shared step ``dt = eta * t_coll``, and its controller."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import (
    Decision,
    Stepper,
    StepResult,
    StepSizeController,
    integrate,
)
from physim.timestepping._base import require_attribute

from . import _kernels as K
from ._base import (
    Advance,
    as_numpy,
    check_masses,
    check_phase_space,
    like,
    raise_for_status,
)

#: Hermite's action grid: eta = 1e-4 ... 1e-1, log-spaced (the reference paper's).
HERMITE_ETA_GRID = tuple(float(x) for x in np.logspace(-4, -1, 10))


class CollisionTimeController:
    """``dt = eta * t_coll`` of the current state; every step is accepted.

    ``t_coll = min over pairs of min(r / v, sqrt(r / a))`` (see
    :func:`physim.nbody._kernels.collision_time`), taken over the whole batch so all
    systems share a step. This is the shared-step criterion of the Hermite code used by
    the reference paper; ``eta = 0.03`` is the common default. Alternatives: Aarseth's
    criterion from the derivatives of the acceleration (individual steps in NBODY6),
    or an error-based controller, which Hermite cannot feed (no embedded estimate).
    The RL agent chooses ``eta``.

    Args:
        eta: the step parameter, > 0.
    """

    def __init__(self, eta: float) -> None:
        if not (math.isfinite(eta) and eta > 0):
            raise ValueError(
                f"CollisionTimeController: eta must be a number > 0, got {eta!r} "
                "(0.03 is the common choice)."
            )
        self.eta = float(eta)

    def _dt(self, stepper: Stepper, y: Tensor) -> float:
        t_coll = require_attribute(stepper, "collision_time", "CollisionTimeController")
        return self.eta * float(t_coll(y).min())

    def init(
        self, stepper: Stepper, t0: float, y0: Tensor, dt0: float | None
    ) -> tuple[float, None]:
        return self._dt(stepper, y0), None

    def adapt(
        self,
        stepper: Stepper,
        t: float,
        dt: float,
        y0: Tensor,
        result: StepResult,
        state: None,
    ) -> Decision[None]:
        dt_next = self._dt(stepper, result.y)
        return Decision(accept=math.isfinite(dt_next), dt_next=dt_next, state=None)

    def __repr__(self) -> str:
        return f"CollisionTimeController(eta={self.eta})"


class Hermite:
    """Fourth-order Hermite predictor-corrector (PEC), shared time step.

    Predict ``x, v`` with the Taylor series through the jerk, evaluate acceleration and
    jerk there, and correct with the two-point Hermite interpolation (Makino & Aarseth
    1992, PASJ 44, 141). One force-and-jerk evaluation per step; no embedded error
    estimate, so it runs under :class:`CollisionTimeController` or
    :class:`physim.timestepping.ConstantStep`. Not symplectic: energy drifts as
    ``dt^4``. Global order 4.

    The state is ``[B, N, 12]``: positions, velocities, accelerations, jerks (see
    :meth:`prepare`). Steps run in compiled numba kernels on the CPU (three bodies are
    far too small for torch kernels; tensors on another device are copied).

    Args:
        masses: ``N`` masses > 0.
        g: the gravitational constant (1 in N-body units).
        max_steps: cap on the steps of one :meth:`integrate` call.

    Raises:
        ValueError: for a mass <= 0 or fewer than two bodies.
    """

    order = 4
    parameter_name = "eta"
    default_grid = HERMITE_ETA_GRID
    #: Force evaluations of a restart from a phase-space state (acceleration, jerk).
    restart_evaluations = 1

    def __init__(
        self,
        masses: Sequence[float] | np.ndarray | Tensor,
        g: float = 1.0,
        max_steps: int = 10_000_000,
    ) -> None:
        self.masses = check_masses(masses)
        if not (math.isfinite(g) and g > 0):
            raise ValueError(f"Hermite: g must be > 0, got {g!r}.")
        self.g = float(g)
        self.max_steps = int(max_steps)

    def prepare(self, y: Float[Tensor, "B N 6"]) -> Float[Tensor, "B N 12"]:
        """Append accelerations and jerks to phase-space states ``[B, N, 6]``.

        Raises:
            ValueError: for a wrong shape, non-finite values or overlapping bodies.
        """
        y6 = as_numpy(y)
        check_phase_space(y6, self.masses)
        return like(K.prepare_hermite(y6, self.masses, self.g), y)

    def step(self, y: Float[Tensor, "B N 12"], t: float, dt: float) -> StepResult:
        """One step of size ``dt`` of every system (error estimate: ``None``)."""
        return StepResult(
            like(K.hermite_steps(as_numpy(y), self.masses, self.g, dt), y)
        )

    def collision_time(self, y: Float[Tensor, "B N D"]) -> Float[Tensor, " B"]:
        """The collision-time estimate ``t_coll`` of each system."""
        return like(K.batch_collision_time(as_numpy(y), self.masses, self.g), y)

    def integrate(
        self,
        y: Float[Tensor, "B N 12"],
        t0: float,
        t1: float,
        controller: StepSizeController,
    ) -> Advance:
        """Advance from ``t0`` to ``t1`` under ``controller``.

        A :class:`CollisionTimeController` runs in one compiled loop (the fast path,
        identical steps); any other controller goes through
        :func:`physim.timestepping.integrate`.

        Returns:
            The final state and the number of force-and-jerk evaluations.

        Raises:
            NonFiniteError: when the state goes non-finite.
        """
        if isinstance(controller, CollisionTimeController):
            y1, n_steps, status = K.hermite_run(
                as_numpy(y), self.masses, self.g, t0, t1, controller.eta, self.max_steps
            )
            raise_for_status(status, t1, self.max_steps, "Hermite")
            return Advance(like(y1, y), int(n_steps))
        sol = integrate(self, controller, y, t0, t1, max_steps=self.max_steps)
        return Advance(sol.ys[:, -1], int(sol.stats["n_steps"]))

    # NBodyIntegrator: one system, float64.
    def start(
        self, y: Float[np.ndarray, "N 6"], t0: float = 0.0
    ) -> Float[Tensor, "1 N 12"]:
        """The state of one system (the time is given to :meth:`advance`)."""
        return self.prepare(torch.as_tensor(y, dtype=torch.float64)[None])

    def advance(self, state: Tensor, t0: float, t1: float, parameter: float) -> Advance:
        return self.integrate(state, t0, t1, CollisionTimeController(parameter))

    def phase_space(self, state: Tensor) -> Float[np.ndarray, "N 6"]:
        return state[0, :, :6].numpy().copy()

    def __repr__(self) -> str:
        return f"Hermite(masses={self.masses.tolist()}, g={self.g})"
