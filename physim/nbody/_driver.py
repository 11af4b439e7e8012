"""The driver shared by physim's compiled n-body integrators (Hermite, leapfrog).

An integrator here is three numba kernels (``prepare``: append the derivatives a step
needs to phase-space states; ``steps``: one step of every system; ``run``: the whole
interval under the integrator's own step rule in one compiled loop) plus the
controller class whose steps ``run`` takes. :class:`KernelIntegrator` turns them into
a :class:`physim.timestepping.Stepper` (any controller through
:func:`physim.timestepping.integrate`) and an :class:`NBodyIntegrator` (one system,
one accuracy parameter) without repeating the plumbing per integrator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import StepResult, StepSizeController, integrate

from ._base import (
    Advance,
    as_numpy,
    check_masses,
    check_phase_space,
    like,
    raise_for_status,
)


class KernelIntegrator:
    """A fixed-order n-body integrator whose steps run in numba kernels on the CPU.

    Subclasses set the class attributes below; tensors on another device are copied
    to the CPU and back (three bodies are far too small for torch kernels).

    Args:
        masses: ``N`` masses > 0.
        g: the gravitational constant (1 in N-body units).
        max_steps: cap on the steps of one :meth:`integrate` call.

    Raises:
        ValueError: for a mass <= 0, fewer than two bodies or ``g <= 0``.
    """

    order: ClassVar[int]
    #: The accuracy parameter: an attribute of :attr:`step_rule` of the same name.
    parameter_name: ClassVar[str]
    default_grid: ClassVar[tuple[float, ...]]
    #: The controller whose steps the compiled loop takes, built from the parameter.
    step_rule: ClassVar[Callable[[float], StepSizeController]]
    #: Force evaluations of a restart from a phase-space state.
    restart_evaluations: ClassVar[int] = 1
    #: Kernels, set with ``staticmethod``: ``(y6, masses, g) -> state``,
    #: ``(y, masses, g, dt) -> y`` and
    #: ``(y, masses, g, t0, t1, parameter, max_steps) -> (y, n_steps, status)``.
    prepare_kernel: ClassVar[Callable]
    steps_kernel: ClassVar[Callable]
    run_kernel: ClassVar[Callable]

    def __init__(
        self,
        masses: Sequence[float] | np.ndarray | Tensor,
        g: float = 1.0,
        max_steps: int = 10_000_000,
    ) -> None:
        self.masses = check_masses(masses)
        if not (math.isfinite(g) and g > 0):
            raise ValueError(f"{self._name}: g must be > 0, got {g!r}.")
        self.g = float(g)
        self.max_steps = int(max_steps)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def prepare(self, y: Float[Tensor, "B N 6"]) -> Tensor:
        """Append the derivatives a step needs to phase-space states ``[B, N, 6]``.

        Raises:
            ValueError: for a wrong shape, non-finite values or overlapping bodies.
        """
        y6 = as_numpy(y)
        check_phase_space(y6, self.masses)
        return like(self.prepare_kernel(y6, self.masses, self.g), y)

    def step(self, y: Tensor, t: float, dt: float) -> StepResult:
        """One step of size ``dt`` of every system (error estimate: ``None``)."""
        y1 = self.steps_kernel(as_numpy(y), self.masses, self.g, dt)
        return StepResult(like(y1, y))

    def integrate(
        self, y: Tensor, t0: float, t1: float, controller: StepSizeController
    ) -> Advance:
        """Advance from ``t0`` to ``t1`` under ``controller``.

        The integrator's own step rule runs in one compiled loop (the fast path,
        identical steps); any other controller goes through
        :func:`physim.timestepping.integrate`.

        Returns:
            The final state and the number of force evaluations.

        Raises:
            NonFiniteError: when the state goes non-finite.
            MaxStepsError: when ``max_steps`` is reached first.
        """
        if isinstance(controller, self.step_rule):
            parameter = getattr(controller, self.parameter_name)
            y1, n_steps, status = self.run_kernel(
                as_numpy(y), self.masses, self.g, t0, t1, parameter, self.max_steps
            )
            raise_for_status(status, t1, self.max_steps, self._name)
            return Advance(like(y1, y), int(n_steps))
        sol = integrate(self, controller, y, t0, t1, max_steps=self.max_steps)
        return Advance(sol.ys[:, -1], int(sol.stats["n_steps"]))

    # NBodyIntegrator: one system, float64.
    def start(self, y: Float[np.ndarray, "N 6"], t0: float = 0.0) -> Tensor:
        """The state of one system (the time is given to :meth:`advance`)."""
        return self.prepare(torch.as_tensor(y, dtype=torch.float64)[None])

    def advance(self, state: Tensor, t0: float, t1: float, parameter: float) -> Advance:
        return self.integrate(state, t0, t1, self.step_rule(parameter))

    def phase_space(self, state: Tensor) -> Float[np.ndarray, "N 6"]:
        return state[0, :, :6].numpy().copy()

    def __repr__(self) -> str:
        return f"{self._name}(masses={self.masses.tolist()}, g={self.g})"
