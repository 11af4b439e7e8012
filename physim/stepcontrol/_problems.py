"""Step-control problems: a PDE family, one of its parameters, an initial state and
the reference solution at the horizon.

A *family* (:class:`KSFamily`, :class:`BurgersFamily`) builds physim's own solvers
for a parameter (the domain length of Kuramoto-Sivashinsky, the viscosity of
Burgers) twice: with an error estimate for the error-based controllers and without
one for the constant step, which would pay for an estimate it never reads. A
:class:`Problem` is one initial state of one parameter, with the reference state at
the horizon from a tight PI run (``reference_tolerance``, batched over the initial
states of a parameter: one ``dt`` for all, the strictest trajectory sets it).

Cost is counted in right-hand-side evaluations (evaluations of the nonlinear part,
the FFT-bound work of a step): :func:`evaluations_per_step` per scheme, times three
for step doubling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from jaxtyping import Float
from torch import Tensor

from physim.solvers import Burgers1D, KuramotoSivashinsky1D, RandomSines
from physim.solvers.schemes import SchemeFactory, StepDoubling
from physim.timestepping import PIDController, Stepper, integrate

__all__ = [
    "BurgersFamily",
    "KSFamily",
    "PDEFamily",
    "Problem",
    "build_problems",
    "evaluations_per_step",
]

#: Right-hand-side (nonlinear-part) evaluations of one step of each scheme, by
#: ``scheme.name``; a test counts them on each scheme.
EVALUATIONS: dict[str, int] = {
    "etdrk4": 4,
    "rk4": 4,
    "forward_euler": 1,
    "imex_crank_nicolson_heun": 2,
}


def evaluations_per_step(scheme: Any) -> int:
    """Nonlinear evaluations of one ``step`` of ``scheme`` (x3 under step doubling).

    Raises:
        ValueError: for a scheme this table does not know (names it and the known).
    """
    if isinstance(scheme, StepDoubling):
        return 3 * evaluations_per_step(scheme.scheme)
    name = getattr(scheme, "name", type(scheme).__name__)
    if name not in EVALUATIONS:
        raise ValueError(
            f"evaluations_per_step: unknown scheme {name!r}; known: "
            f"{sorted(EVALUATIONS)}. Add its count to EVALUATIONS."
        )
    return EVALUATIONS[name]


class PDEFamily(Protocol):
    """Builds the solvers and initial states of one PDE family."""

    name: str
    #: What the family's parameter is (``domain_extent``, ``viscosity``).
    parameter_name: str
    #: The end time of every problem.
    horizon: float
    dtype: torch.dtype

    def make_pde(self, parameter: float, error_estimate: bool) -> Stepper:
        """The solver for ``parameter``, with or without an error estimate."""
        ...

    def initial_state(self, seed: int) -> Float[Tensor, "1 N"]:
        """The initial state of ``seed`` (the same on every call)."""
        ...


class _SinesFamily:
    """Shared by the families: sums of sines as initial states (in domain units, so
    one draw serves every parameter), float64 solvers. Subclasses set the defaults
    and build the solver.

    Args:
        num_points: grid points ``N`` (default: the family's).
        horizon: the end time (default: the family's).
        num_waves: sines per initial state.
        amplitude: half-width of their amplitude distribution.
        wavenumbers: cycles per domain to choose from.
        scheme: the time scheme (default: the solver's, ETDRK4).
        dtype: of the solver and states.
    """

    name: str
    parameter_name: str
    default_points: int
    default_horizon: float

    def __init__(
        self,
        num_points: int | None = None,
        horizon: float | None = None,
        *,
        num_waves: int = 3,
        amplitude: float = 1.0,
        wavenumbers: Sequence[int] = (1, 2, 3),
        scheme: SchemeFactory | None = None,
        dtype: str | torch.dtype = torch.float64,
    ) -> None:
        horizon = self.default_horizon if horizon is None else float(horizon)
        if not (math.isfinite(horizon) and horizon > 0):
            raise ValueError(
                f"{type(self).__name__}: horizon must be > 0, got {horizon}."
            )
        self.num_points = int(num_points or self.default_points)
        self.horizon = horizon
        self.sines = RandomSines(self.num_points, num_waves, amplitude, wavenumbers)
        self.scheme = scheme
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype

    def initial_state(self, seed: int) -> Float[Tensor, "1 N"]:
        generator = torch.Generator().manual_seed(int(seed))
        u0 = self.sines.sample(1, generator=generator, dtype=self.dtype)
        return u0[:, 0]

    def describe(self) -> dict[str, Any]:
        """Plain values for the run's records."""
        return {
            "family": self.name,
            "parameter": self.parameter_name,
            "num_points": self.num_points,
            "horizon": self.horizon,
            **{f"ic_{k}": v for k, v in self.sines.parameters().items()},
            "dtype": str(self.dtype).removeprefix("torch."),
        }


class KSFamily(_SinesFamily):
    """Kuramoto-Sivashinsky over domain lengths ``L`` (the parameter).

    Good values (the defaults): ``num_points=64`` (the 2/3 rule keeps ``k`` up to
    ``2 pi 21 / L``, damped for ``L`` up to ~130), ``L`` in 22-50 (chaotic from about
    22), ``horizon`` 10 from three sines of amplitude 1: growth, then chaotic cells.
    Arguments: :class:`_SinesFamily`'s.
    """

    name = "ks"
    parameter_name = "domain_extent"
    default_points = 64
    default_horizon = 10.0

    def make_pde(self, parameter: float, error_estimate: bool) -> Stepper:
        return KuramotoSivashinsky1D(
            self.num_points,
            domain_extent=float(parameter),
            error_estimate=error_estimate,
            scheme=self.scheme,
            dtype=self.dtype,
        )


class BurgersFamily(_SinesFamily):
    """Viscous Burgers on ``[0, 1)`` over viscosities ``nu`` (the parameter).

    From three sines of amplitude 1 the fronts steepen into shocks by ``t`` ~ 0.1-0.2
    and then decay; the step size has to follow both. Good values (the defaults):
    ``num_points=128``, ``nu`` in 0.003-0.03 (below ~0.005 the front is narrower than
    the grid: the solution oscillates but stays bounded, and the reference has the
    same discretisation), ``horizon`` 1. Arguments: :class:`_SinesFamily`'s.
    """

    name = "burgers"
    parameter_name = "viscosity"
    default_points = 128
    default_horizon = 1.0

    def make_pde(self, parameter: float, error_estimate: bool) -> Stepper:
        return Burgers1D(
            self.num_points,
            viscosity=float(parameter),
            error_estimate=error_estimate,
            scheme=self.scheme,
            dtype=self.dtype,
        )


@dataclass(eq=False)
class Problem:
    """One initial state of one parameter of a family, with its reference.

    Attributes:
        family: the family's name.
        parameter: its parameter (domain length, viscosity).
        seed: the initial state's seed.
        adaptive: the solver with an error estimate (for PI and learned control).
        fixed: the solver without one (for the constant step).
        y0: the initial state ``[1, N]``.
        t1: the horizon.
        reference: the state at ``t1`` from the reference run, ``[1, N]``.
        info: what the reference run did (its steps).
        dt0: the first step to try (``None``: the controller's own search).
    """

    family: str
    parameter: float
    seed: int
    adaptive: Stepper
    fixed: Stepper
    y0: Tensor
    t1: float
    reference: Tensor
    info: dict[str, Any] = field(default_factory=dict)
    dt0: float | None = None

    @property
    def label(self) -> str:
        """``ks:L=22:seed=3``."""
        return f"{self.family}:{self.parameter:g}:{self.seed}"

    def relative_error(self, y: Tensor) -> float:
        """``||y - reference|| / ||reference||`` (L2 over the grid)."""
        return float((y - self.reference).norm() / self.reference.norm())


def build_problems(
    family: PDEFamily,
    parameters: Sequence[float],
    seeds: Sequence[int],
    reference_tolerance: float = 1e-12,
) -> list[Problem]:
    """Every ``(parameter, seed)`` of ``family`` with its reference state.

    The reference of a parameter is one PI run (rtol = atol =
    ``reference_tolerance``, step doubling) over all its initial states at once.

    Raises:
        ValueError: for no parameters or seeds, or a reference tolerance the dtype
            cannot resolve (before any solve).
    """
    if not parameters or not seeds:
        raise ValueError(
            f"build_problems: need parameters and seeds, got {list(parameters)} and "
            f"{list(seeds)}."
        )
    reference = PIDController(reference_tolerance, reference_tolerance)
    reference.check_precision(family.dtype)
    y0 = torch.cat([family.initial_state(s) for s in seeds])
    problems = []
    for parameter in parameters:
        adaptive = family.make_pde(parameter, True)
        fixed = family.make_pde(parameter, False)
        solution = integrate(adaptive, reference, y0, 0.0, family.horizon)
        final = solution.ys[:, -1]
        for i, seed in enumerate(seeds):
            problems.append(
                Problem(
                    family.name,
                    float(parameter),
                    int(seed),
                    adaptive,
                    fixed,
                    y0[i : i + 1],
                    family.horizon,
                    final[i : i + 1],
                    {"reference_steps": solution.stats["n_steps"]},
                )
            )
    return problems
