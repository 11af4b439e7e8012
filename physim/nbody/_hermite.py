"""Fourth-order Hermite with a shared step ``dt = eta * t_coll``, and its controller."""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import Decision, Stepper, StepResult
from physim.timestepping._base import require_attribute

from . import _kernels as K
from ._base import as_numpy, like
from ._driver import KernelIntegrator

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


class Hermite(KernelIntegrator):
    """Fourth-order Hermite predictor-corrector (PEC), shared time step.

    Predict ``x, v`` with the Taylor series through the jerk, evaluate acceleration and
    jerk there, and correct with the two-point Hermite interpolation (Makino & Aarseth
    1992, PASJ 44, 141). One force-and-jerk evaluation per step; no embedded error
    estimate, so it runs under :class:`CollisionTimeController` or
    :class:`physim.timestepping.ConstantStep`. Not symplectic: energy drifts as
    ``dt^4``. Global order 4.

    The state is ``[B, N, 12]``: positions, velocities, accelerations, jerks (see
    :meth:`prepare`).

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
    step_rule = CollisionTimeController
    prepare_kernel = staticmethod(K.prepare_hermite)
    steps_kernel = staticmethod(K.hermite_steps)
    run_kernel = staticmethod(K.hermite_run)

    def collision_time(self, y: Float[Tensor, "B N D"]) -> Float[Tensor, " B"]:
        """The collision-time estimate ``t_coll`` of each system."""
        return like(K.batch_collision_time(as_numpy(y), self.masses, self.g), y)
