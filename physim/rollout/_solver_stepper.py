"""A numerical solver advanced over one output interval, as a frame stepper."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from physim.solvers import spectral_resample
from physim.timestepping import integrate

__all__ = ["IntervalSolver"]


class IntervalSolver:
    """``frame [B, C, *space] -> frame one output interval later``, by a PDE solver.

    Each call encodes the frame (spectrally resampled to the solver's grid when the
    frames are stored at another resolution), integrates from ``t = 0`` to
    ``output_interval`` with :func:`physim.timestepping.integrate` and a fresh
    controller state, and decodes (and resamples back) to the frame's dtype, device
    and grid. Restarting at ``t = 0`` assumes an autonomous PDE (steady forcing), as
    every physim dataset PDE is. Wrap it with :func:`physim.rollout.as_window_stepper`
    for :func:`physim.rollout.rollout`, or give it to :class:`HybridStepper`.

    Per-trajectory PDE parameters (the ``ks1d`` data's domain length and frame
    interval): give the *unbound* solver and ``parameters`` (one value per trajectory
    of the rollout batch, as the data's ``params``); each call binds the solver
    (``pde.bind``, as :class:`~physim.solvers.DatasetGenerator` does) to the rows it
    advances, ``rows`` (default: the whole batch). The output interval is then in the
    bound solver's time units (frames, for ``ks1d``).

    A rollout of this stepper restarts the controller every interval, where
    :class:`physim.solvers.DatasetGenerator` integrates through the save times. For
    :class:`~physim.timestepping.CFLController` and
    :class:`~physim.timestepping.ConstantStep` the restart proposes the very step the
    continued run would take (the CFL state is the current speed, recomputed), so the
    two differ only by the decode/encode round trip of the frame (round-off: ~1e-16
    relative in float64, ~1e-7 in float32). Controllers with a history (PID) restart
    it, and then differ at their tolerance.

    Args:
        pde: a physim solver (``encode``, ``decode``, ``step``, ``coordinates``).
        controller: a :mod:`physim.timestepping` step-size controller.
        output_interval: physical time per call (the data's frame interval times the
            data module's ``time_stride``), > 0.
        max_steps: safety cap on internal steps per call.
        parameters: ``{name: [B]}`` per-trajectory values for ``pde.bind``, or
            ``None`` (one solver for every trajectory).

    Attributes:
        num_internal_steps: internal steps taken so far (all calls; see :meth:`reset`).
        num_calls: calls so far.
    """

    def __init__(
        self,
        pde: Any,
        controller: Any,
        output_interval: float,
        *,
        max_steps: int = 1_000_000,
        parameters: Mapping[str, Tensor] | None = None,
    ) -> None:
        for name in ("encode", "decode", "step", "coordinates"):
            if not callable(getattr(pde, name, None)):
                raise TypeError(
                    f"IntervalSolver: pde must be a physim solver with `{name}`, got "
                    f"{type(pde).__name__}."
                )
        if not (
            isinstance(output_interval, (int, float))
            and math.isfinite(output_interval)
            and output_interval > 0
        ):
            raise ValueError(
                "IntervalSolver: output_interval must be a positive number, got "
                f"{output_interval!r}."
            )
        self.parameters = check_parameters(pde, parameters)
        self._bound_batch: Any = None
        self.pde = pde
        self.controller = controller
        self.output_interval = float(output_interval)
        self.max_steps = int(max_steps)
        self.solve_shape = tuple(len(v) for v in pde.coordinates(None).values())
        self.reset()

    def reset(self) -> None:
        """Zero the step counters."""
        self.num_internal_steps = 0
        self.num_calls = 0

    def bound(self, rows: Tensor | None = None) -> Any:
        """The solver for ``rows`` of the batch (the unbound one without parameters)."""
        if self.parameters is None:
            return self.pde
        size = len(next(iter(self.parameters.values())))
        if rows is None or torch.equal(rows.cpu(), torch.arange(size)):
            if self._bound_batch is None:  # kept: its coefficient cache too
                self._bound_batch = self.pde.bind(self.parameters)
            return self._bound_batch
        return self.pde.bind({k: v[rows.cpu()] for k, v in self.parameters.items()})

    @torch.no_grad()
    def __call__(
        self, frame: Float[Tensor, "b C *S"], rows: Tensor | None = None
    ) -> Float[Tensor, "b C *S"]:
        """Advance ``frame`` (rows ``rows`` of the batch; default all) one interval."""
        pde = self.bound(rows)
        stored = tuple(frame.shape[2:])
        u = frame
        if stored != self.solve_shape:
            u = spectral_resample(frame.to(pde.dtype), self.solve_shape[0])
        solution = integrate(
            pde,
            self.controller,
            pde.encode(u),
            0.0,
            self.output_interval,
            save_fn=pde.decode,
            max_steps=self.max_steps,
        )
        self.num_internal_steps += int(solution.stats["n_steps"])
        self.num_calls += 1
        out = solution.ys[:, -1]
        if stored != self.solve_shape:
            out = spectral_resample(out, stored[0])
        return out.to(device=frame.device, dtype=frame.dtype)

    def __repr__(self) -> str:
        return (
            f"IntervalSolver({self.pde!r}, {self.controller!r}, "
            f"output_interval={self.output_interval})"
        )


def check_parameters(
    pde: Any, parameters: Mapping[str, Tensor] | None
) -> dict[str, Tensor] | None:
    """``parameters`` as CPU tensors of one common length, for ``pde.bind``."""
    if parameters is None:
        return None
    if not callable(getattr(pde, "bind", None)):
        raise TypeError(
            f"{type(pde).__name__} has no bind(parameters), so it cannot take the "
            f"per-trajectory parameters {sorted(parameters)}; pass parameters=None."
        )
    values = {k: torch.as_tensor(v).detach().cpu() for k, v in parameters.items()}
    lengths = {k: tuple(v.shape) for k, v in values.items()}
    if len({*lengths.values()}) > 1 or any(len(s) != 1 for s in lengths.values()):
        raise ValueError(
            "per-trajectory parameters must be 1-D, one value per trajectory of the "
            f"batch, all of one length; got shapes {lengths}."
        )
    return values
