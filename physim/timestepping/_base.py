"""The stepper and step-size-controller protocols shared by PDE solvers and integrators.

Three roles are kept apart, as in diffrax: a *stepper* takes one step of a given size
and may estimate its local error; a *controller* decides whether a step is accepted and
how big the next one is; the *driver* (:func:`physim.timestepping.integrate`) owns the
loop, the clipping to output times and the book-keeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

from torch import Tensor

S = TypeVar("S")


class StepResult(NamedTuple):
    """The outcome of one attempted step.

    Attributes:
        y: candidate state at ``t + dt``.
        error: local error estimate with the shape of ``y``, or ``None`` when the scheme
            has no embedded estimate.
    """

    y: Tensor
    error: Tensor | None = None


@runtime_checkable
class Stepper(Protocol):
    """Advances a batched state ``y`` (leading dim = batch) from ``t`` by ``dt``.

    ``order`` is the global order of accuracy, used by error-based controllers.
    Steppers that support CFL control also provide ``grid_spacing`` and
    ``max_speed(y) -> Tensor[B]``.
    """

    order: int

    def step(self, y: Tensor, t: float, dt: float) -> StepResult: ...


@dataclass(frozen=True)
class Decision(Generic[S]):
    """A controller's verdict on the step just tried."""

    accept: bool
    dt_next: float
    state: S


class StepSizeController(Protocol[S]):
    """Chooses internal step sizes. History lives in the explicit ``state`` value."""

    def init(
        self, stepper: Stepper, t0: float, y0: Tensor, dt0: float | None
    ) -> tuple[float, S]:
        """Return the first step size and the initial controller state."""
        ...

    def adapt(
        self,
        stepper: Stepper,
        t: float,
        dt: float,
        y0: Tensor,
        result: StepResult,
        state: S,
    ) -> Decision[S]:
        """Judge the step from ``(t, y0)`` of size ``dt`` that produced ``result``."""
        ...


def require_attribute(stepper: Any, name: str, controller: str) -> Any:
    """Fetch ``stepper.name`` or raise an error that says which controller needs it."""
    if not hasattr(stepper, name):
        raise TypeError(
            f"{controller} needs a stepper with `{name}`; "
            f"{type(stepper).__name__} has none. Use ConstantStep instead, or give the "
            f"stepper a `{name}`."
        )
    return getattr(stepper, name)
