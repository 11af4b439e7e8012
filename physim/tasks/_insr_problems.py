"""INSR building blocks: domains, autograd operators, grid data as a field, advection.

A *problem* tells :class:`physim.tasks.INSR` what a time step is: which networks hold
the state, what each of the per-step optimisations (*stages*) minimises, and how the
networks' fields compare with stored data. The task owns the optimisation loop.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from jaxtyping import Float
from torch import Tensor, nn

from physim.solvers import spectral_resample

__all__ = [
    "INTEGRATORS",
    "AdvectionProblem",
    "Box",
    "INSRProblem",
    "PeriodicGridField",
    "Samples",
    "Stage",
    "divergence",
    "gaussian_pulse",
    "gradient",
    "laplacian",
]

Fields = Mapping[str, nn.Module]
FieldFn = Callable[[Tensor], Tensor]


# ---------------------------------------------------------------------- domain
class Samples(NamedTuple):
    """Random points of one optimisation iteration.

    Attributes:
        interior: ``[P, D]`` points inside the domain.
        boundary: ``[Q, D]`` points on the boundary.
        normals: ``[Q, D]`` outward unit normals at ``boundary``.
    """

    interior: Tensor
    boundary: Tensor
    normals: Tensor


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``[lower_1, upper_1] x ... x [lower_D, upper_D]``.

    Args:
        bounds: one ``(lower, upper)`` pair per dimension.

    Raises:
        ValueError: for an empty or malformed interval.
    """

    bounds: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        bounds = tuple(tuple(float(v) for v in pair) for pair in self.bounds)
        if not bounds or any(
            len(p) != 2 or not p[0] < p[1] or not all(map(math.isfinite, p))
            for p in bounds
        ):
            raise ValueError(
                "Box: bounds must be one (lower, upper) pair with lower < upper per "
                f"dimension, e.g. [[-2, 2]], got {self.bounds!r}."
            )
        object.__setattr__(self, "bounds", bounds)

    @property
    def dim(self) -> int:
        return len(self.bounds)

    def _tensors(self, like: Tensor) -> tuple[Tensor, Tensor]:
        lower, upper = torch.tensor(self.bounds, dtype=like.dtype).T
        return lower.to(like.device), upper.to(like.device)

    def clamp(self, x: Float[Tensor, "P D"]) -> Float[Tensor, "P D"]:
        """Project points onto the box (for semi-Lagrangian departure points)."""
        lower, upper = self._tensors(x)
        return torch.maximum(torch.minimum(x, upper), lower)

    def contains(self, x: Float[Tensor, "P D"], atol: float = 1e-6) -> bool:
        lower, upper = self._tensors(x)
        return bool(((x >= lower - atol) & (x <= upper + atol)).all())

    def sample(
        self,
        num_interior: int,
        num_boundary: int,
        generator: torch.Generator,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Samples:
        """Uniform interior points and uniform points on the faces (by face area)."""
        unit = torch.empty(0, dtype=dtype)
        lower, upper = self._tensors(unit)
        extent = upper - lower
        interior = lower + extent * torch.rand(
            num_interior, self.dim, generator=generator, dtype=dtype
        )
        # Faces 2d and 2d+1 are x_d = lower_d and x_d = upper_d; a face's area is the
        # product of the other extents (1 in 1-D, where the faces are the two ends).
        areas = torch.stack(
            [
                extent[[i for i in range(self.dim) if i != d]].prod()
                for d in range(self.dim)
            ]
        ).repeat_interleave(2)
        face = torch.multinomial(areas, num_boundary, True, generator=generator)
        boundary = lower + extent * torch.rand(
            num_boundary, self.dim, generator=generator, dtype=dtype
        )
        axis, side = face // 2, (face % 2).to(dtype)
        rows = torch.arange(num_boundary)
        boundary[rows, axis] = lower[axis] + side * extent[axis]
        normals = torch.zeros_like(boundary)
        normals[rows, axis] = 2.0 * side - 1.0
        return Samples(*(t.to(device) for t in (interior, boundary, normals)))


# ---------------------------------------------------------------------- autograd
def gradient(y: Float[Tensor, " P"], x: Float[Tensor, "P D"]) -> Float[Tensor, "P D"]:
    """``grad y`` at each point by autograd (``x`` must require grad; keeps the graph
    so that the result can be differentiated again and trained through)."""
    (grad,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    return grad


def divergence(u: Float[Tensor, "P D"], x: Float[Tensor, "P D"]) -> Float[Tensor, " P"]:
    """``div u = sum_d du_d/dx_d`` by autograd."""
    return sum(gradient(u[:, d], x)[:, d] for d in range(x.shape[1]))


def laplacian(y: Float[Tensor, " P"], x: Float[Tensor, "P D"]) -> Float[Tensor, " P"]:
    """``lap y`` by autograd (``D + 1`` backward passes)."""
    return divergence(gradient(y, x), x)


def _with_grad(x: Tensor) -> Tensor:
    return x.detach().requires_grad_(True)


# ---------------------------------------------------------------------- data as a field
class PeriodicGridField:
    """A periodic grid field ``[C, *S]`` evaluated at arbitrary points.

    The grid is Fourier-upsampled by ``upsample`` per axis (exact for band-limited
    fields, see :func:`physim.solvers.spectral_resample`) and then interpolated
    multilinearly with periodic wrap-around. Alternatives: direct Fourier-series
    evaluation at every point (exact but ``O(points x modes)`` per call, far too slow
    for thousands of points per iteration), or linear interpolation of the raw grid
    (error ``O(h^2)`` of the data spacing: 1e-2 relative for INSR's Gaussian at 256
    points). With ``upsample = 8`` the interpolation error is 64x below the raw
    grid's.

    Args:
        values: ``[C, *S]`` samples at ``origin + i * spacing`` (cell positions of a
            periodic grid with period ``N * spacing`` per axis).
        origin: first coordinate per axis.
        spacing: grid spacing per axis.
        upsample: Fourier upsampling factor before interpolation.
    """

    def __init__(
        self,
        values: Float[Tensor, " C *S"],
        origin: Sequence[float],
        spacing: Sequence[float],
        upsample: int = 8,
    ) -> None:
        dim = values.ndim - 1
        if len(origin) != dim or len(spacing) != dim or len(set(values.shape[1:])) != 1:
            raise ValueError(
                f"PeriodicGridField: values {tuple(values.shape)} need one origin and "
                "spacing per spatial axis and the same number of points on every axis."
            )
        fine = values.shape[1] * upsample
        self.values = spectral_resample(values[None].to(torch.float64), fine)[0]
        self.origin = torch.tensor(origin, dtype=torch.float64)
        self.spacing = torch.tensor(spacing, dtype=torch.float64) / upsample
        self.shape = self.values.shape[1:]

    def __call__(self, x: Float[Tensor, "P D"]) -> Float[Tensor, "P C"]:
        s = (x.detach().cpu().double() - self.origin) / self.spacing
        base = torch.floor(s)
        frac = s - base
        base = base.long()
        out = torch.zeros(x.shape[0], self.values.shape[0], dtype=torch.float64)
        for corner in itertools.product((0, 1), repeat=x.shape[1]):
            weight = torch.ones(x.shape[0], dtype=torch.float64)
            index = []
            for d, c in enumerate(corner):
                weight = weight * (frac[:, d] if c else 1.0 - frac[:, d])
                index.append((base[:, d] + c) % self.shape[d])
            out += weight[:, None] * self.values[(slice(None), *index)].T
        return out.to(device=x.device, dtype=x.dtype)

    @classmethod
    def from_coords(
        cls, values: Tensor, coords: Sequence[Tensor], upsample: int = 8
    ) -> PeriodicGridField:
        """From 1-D uniform coordinate arrays, one per axis (as stored in the data)."""
        spacing = []
        for axis, c in enumerate(coords):
            step = torch.diff(c.double())
            if c.numel() < 2 or not torch.allclose(step, step[0], rtol=1e-6):
                raise ValueError(
                    f"PeriodicGridField: coordinate axis {axis} is not uniform; INSR "
                    "reads initial states from uniform periodic grids only."
                )
            spacing.append(float(step[0]))
        return cls(values, [float(c[0]) for c in coords], spacing, upsample)


# ---------------------------------------------------------------------- protocol
class Stage(NamedTuple):
    """One optimisation of a time step.

    Attributes:
        name: shown in logs (``"advect"``, ``"pressure"``...).
        field: the key of the network optimised in this stage.
        loss: ``loss(fields, frozen, samples, dt)``; ``fields`` holds the network being
            optimised, ``frozen`` a gradient-free copy of every network as it was when
            the stage started (the previous step's state for the first stage).
    """

    name: str
    field: str
    loss: Callable[[Fields, Fields, Samples, float], Tensor]


class INSRProblem(Protocol):
    """What :class:`physim.tasks.INSR` needs from a PDE."""

    domain: Box
    #: Networks fitted to the initial state (others start from their initialisation).
    state_fields: tuple[str, ...]
    #: Channels of :meth:`observe`, in the data's order.
    channel_names: tuple[str, ...]

    def check_fields(self, fields: Fields) -> None:
        """Raise ``ValueError`` when a network is missing or has the wrong sizes."""
        ...

    def initial_targets(
        self, frame: Float[Tensor, " C *S"], coords: Sequence[Tensor]
    ) -> dict[str, FieldFn]:
        """Point-wise targets for the state networks from a stored initial frame."""
        ...

    def stages(self) -> Sequence[Stage]:
        """The optimisations of one time step, in order."""
        ...

    def observe(self, fields: Fields, x: Float[Tensor, "P D"]) -> Float[Tensor, "P C"]:
        """The data's channels at points (may use autograd; ``x`` is a leaf)."""
        ...


def check_network(
    problem: str, fields: Fields, name: str, in_features: int, out_features: int
) -> None:
    """Check that ``fields[name]`` maps ``in_features -> out_features``."""
    if name not in fields:
        raise ValueError(
            f"{problem}: needs a network named '{name}' in fields, got "
            f"{sorted(fields)}; add model.fields.{name}."
        )
    net = fields[name]
    probe = torch.zeros(1, in_features, dtype=next(net.parameters()).dtype)
    try:
        out = net(probe)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{problem}: network '{name}' must take points with {in_features} "
            f"coordinate(s): {error}"
        ) from error
    if out.shape != (1, out_features):
        raise ValueError(
            f"{problem}: network '{name}' must output {out_features} value(s) per "
            f"point, got shape {tuple(out.shape)}; set its out_features."
        )


# ---------------------------------------------------------------------- advection
def _average(u: FieldFn, u_prev: FieldFn) -> FieldFn:
    return lambda x: 0.5 * (u(x) + u_prev(x))


#: Time integrators as "the field at which the right-hand side is evaluated", given the
#: new field ``u`` (being optimised) and the previous one: explicit Euler uses the
#: previous field, implicit Euler the new one, the (implicit) midpoint rule their
#: average (for a linear right-hand side this is also the trapezoidal rule).
INTEGRATORS: dict[str, Callable[[FieldFn, FieldFn], FieldFn]] = {
    "explicit_euler": lambda u, u_prev: u_prev,
    "implicit_euler": lambda u, u_prev: u,
    "midpoint": _average,
}


def check_integrator(owner: str, integrator: str) -> None:
    if integrator not in INTEGRATORS:
        raise ValueError(
            f"{owner}: unknown integrator {integrator!r}; use one of "
            f"{sorted(INTEGRATORS)}."
        )


def gaussian_pulse(
    x: Float[Tensor, "P 1"], center: float = -1.5, width: float = 0.1
) -> Float[Tensor, "P 1"]:
    """INSR's advection initial state ``exp(-(x - center)^2 / (2 width^2))``."""
    return torch.exp(-0.5 * (x - center).square() / width**2)


class AdvectionProblem:
    """1-D linear advection ``u_t + velocity * u_x = 0`` on ``[lower, upper]``.

    One stage per step minimises the time-discretised residual at random points,

        ((u(x) - u_prev(x)) / dt + velocity * d/dx u_theta(x))^2,

    where ``u_theta`` is picked by the integrator (:data:`INTEGRATORS`: explicit Euler,
    implicit Euler or midpoint), plus ``boundary_weight * u^2`` at the two ends (the
    pulse must stay away from them; inflow is zero). Derivatives by autograd. The exact
    solution is ``u0(x - velocity t)``.

    Good values (Chen et al. 2023): velocity 0.25 on ``[-2, 2]``, a Gaussian of width
    0.1 at -1.5, ``dt = 0.05``, midpoint, a 901-parameter SIREN.

    Args:
        velocity: advection speed.
        domain: ``[lower, upper]``.
        integrator: ``"explicit_euler"``, ``"implicit_euler"`` or ``"midpoint"``.
        boundary_weight: weight of the boundary penalty.

    Raises:
        ValueError: for an unknown integrator or a malformed domain.
    """

    state_fields = ("u",)
    channel_names = ("u",)

    def __init__(
        self,
        velocity: float = 0.25,
        domain: Sequence[float] = (-2.0, 2.0),
        integrator: str = "midpoint",
        boundary_weight: float = 1.0,
    ) -> None:
        check_integrator("AdvectionProblem", integrator)
        self.velocity = float(velocity)
        self.domain = Box((tuple(domain),))
        self.integrator = integrator
        self.boundary_weight = float(boundary_weight)

    def check_fields(self, fields: Fields) -> None:
        check_network("AdvectionProblem", fields, "u", 1, 1)

    def initial_targets(
        self, frame: Float[Tensor, "1 N"], coords: Sequence[Tensor]
    ) -> dict[str, FieldFn]:
        return {"u": PeriodicGridField.from_coords(frame, coords)}

    def observe(self, fields: Fields, x: Tensor) -> Tensor:
        return fields["u"](x)

    def stages(self) -> list[Stage]:
        return [Stage("advect", "u", self.residual_loss)]

    def residual_loss(
        self, fields: Fields, frozen: Fields, samples: Samples, dt: float
    ) -> Tensor:
        """Mean squared time-discretised residual plus the boundary penalty."""
        x = _with_grad(samples.interior)
        u, u_prev = fields["u"], frozen["u"]
        rhs_field = INTEGRATORS[self.integrator](u, u_prev)
        u_x = gradient(rhs_field(x)[:, 0], x)[:, 0]
        residual = (u(x)[:, 0] - u_prev(x)[:, 0]) / dt + self.velocity * u_x
        boundary = u(samples.boundary).square().mean()
        return residual.square().mean() + self.boundary_weight * boundary

    def exact(self, x: Tensor, t: float, u0: FieldFn = gaussian_pulse) -> Tensor:
        """The exact solution ``u0(x - velocity t)``."""
        return u0(x - self.velocity * t)
