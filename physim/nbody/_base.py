"""What every n-body integrator provides, and the checks of a system's input.

The environment and the evaluation drive any integrator through
:class:`NBodyIntegrator`: ``start`` a system, ``advance`` it over an interval with one
accuracy parameter (Hermite's ``eta``, leapfrog's ``dt``, IAS15's ``epsilon``), read
its ``phase_space`` back. The physim integrators (:class:`Hermite`,
:class:`Leapfrog`) are also :class:`physim.timestepping.Stepper` objects, so the
generic driver and the shared controllers work on them unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from physim.timestepping import NonFiniteError

from . import _kernels as K


class MaxStepsError(RuntimeError):
    """An integration hit its step cap (e.g. a near-collision the step rule cannot
    pass); the environment ends the episode with ``info["max_steps_reached"]``."""


class Advance(NamedTuple):
    """The outcome of advancing a system over one interval.

    Attributes:
        state: the integrator's state at the end of the interval.
        force_evaluations: force (Hermite: force-and-jerk) evaluations spent.
    """

    state: Any
    force_evaluations: int


class NBodyIntegrator(Protocol):
    """An integrator the environment can drive with one accuracy parameter."""

    #: Name of the accuracy parameter (``eta``, ``dt``, ``epsilon``).
    parameter_name: str
    #: The action grid used when none is given (10 values, cheap to accurate or
    #: accurate to cheap as documented by the integrator).
    default_grid: tuple[float, ...]
    #: Force evaluations that :meth:`start` spends (counted on a restart mid-run).
    restart_evaluations: int
    masses: np.ndarray
    g: float

    def start(self, y: Float[np.ndarray, "N 6"], t0: float = 0.0) -> Any:
        """The integrator's state for one system of phase-space state ``y`` at
        ``t0``."""
        ...

    def advance(self, state: Any, t0: float, t1: float, parameter: float) -> Advance:
        """Advance ``state`` from ``t0`` to ``t1`` with the given parameter."""
        ...

    def phase_space(self, state: Any) -> Float[np.ndarray, "N 6"]:
        """Positions and velocities of ``state``, ``[N, 6]`` (a copy)."""
        ...


def check_masses(masses: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    """Masses as a float64 array, all finite and > 0.

    Raises:
        ValueError: naming the first bad mass.
    """
    if isinstance(masses, Tensor):
        masses = masses.detach().cpu().numpy()
    array = np.asarray(masses, dtype=np.float64).reshape(-1)
    if array.size < 2:
        raise ValueError(f"masses: need at least two bodies, got {array.tolist()}.")
    for i, m in enumerate(array):
        if not (math.isfinite(m) and m > 0):
            raise ValueError(
                f"masses[{i}] = {m}: every mass must be a finite number > 0; "
                "remove massless bodies or give them a positive mass."
            )
    return array


def check_phase_space(
    y: Float[np.ndarray, "*B N 6"], masses: np.ndarray, *, min_separation: float = 0.0
) -> None:
    """Check states ``[..., N, 6]`` against ``masses``: finite, no overlapping bodies.

    Raises:
        ValueError: for a shape mismatch, a non-finite value, or two bodies closer
            than ``min_separation`` (or at the same place).
    """
    n = masses.shape[0]
    if y.ndim < 2 or y.shape[-2:] != (n, 6):
        raise ValueError(
            f"state: expected shape [..., {n}, 6] (positions, velocities of {n} "
            f"bodies), got {tuple(y.shape)}."
        )
    if not np.isfinite(y).all():
        raise ValueError("state: positions and velocities must be finite.")
    pos = y[..., :3]
    for i in range(n):
        for j in range(i + 1, n):
            r = float(np.linalg.norm(pos[..., i, :] - pos[..., j, :], axis=-1).min())
            if r <= min_separation:
                raise ValueError(
                    f"bodies {i} and {j} overlap (separation {r:.3g} <= "
                    f"{min_separation:.3g}); move them apart."
                )


def as_numpy(y: Tensor | np.ndarray) -> np.ndarray:
    """A float64 C-contiguous NumPy view (or copy) of ``y`` for the kernels."""
    if isinstance(y, Tensor):
        y = y.detach().cpu().numpy()
    return np.ascontiguousarray(y, dtype=np.float64)


def like(array: np.ndarray, reference: Tensor) -> Tensor:
    """``array`` as a tensor on the device and dtype of ``reference``."""
    return torch.from_numpy(array).to(device=reference.device, dtype=reference.dtype)


def raise_for_status(status: int, t: float, max_steps: int, name: str) -> None:
    """Turn a kernel status code into the driver's exceptions."""
    if status == K.NONFINITE:
        raise NonFiniteError(t, [0], where=f"{name}: ")
    if status == K.MAX_STEPS:
        raise MaxStepsError(
            f"{name}: reached max_steps={max_steps} before t={t:.6g}; raise "
            "max_steps or the step parameter."
        )
