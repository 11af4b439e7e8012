"""The base of the 1-D pseudo-spectral PDEs: ``u_t = L u + c(k) F[g(u)]``, periodic.

A concrete PDE supplies three small hooks, the pattern of exponax's ``BaseStepper``:
its linear symbol ``L(k)``, and its nonlinear term as a pointwise function ``g(u)`` in
physical space with a Fourier factor ``c(k)`` in front (``-i k / 2`` and ``u^2`` for
the conservative convection of Burgers and KS, ``1`` and ``u - u^3`` for a reaction).
The base owns the grid, the de-aliasing (so that a new term cannot forget it), the
term (:class:`~physim.solvers.schemes.SemiLinear`), the scheme (ETDRK4 unless told
otherwise), the optional error estimate and the conversions.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from jaxtyping import Complex, Float
from torch import Tensor

from physim.timestepping import StepResult

from ._dtypes import COMPLEX_DTYPES, resolve_dtype
from ._spectral import fft_wavenumbers
from .schemes import (
    ETDRK4,
    Scheme,
    SchemeFactory,
    SchemeOrders,
    SemiLinear,
    build_scheme,
)

__all__ = ["Convection1D", "SpectralPDE1D", "positive_values"]


def positive_values(owner: str, name: str, value: float | Tensor) -> Tensor:
    """``value`` as a float64 CPU tensor (scalar or ``[B]``), checked to be > 0."""
    tensor = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    if tensor.ndim > 1 or tensor.numel() == 0:
        raise ValueError(
            f"{owner}: {name} must be a number or a 1-D tensor of one value per "
            f"trajectory, got shape {tuple(tensor.shape)}."
        )
    bad = ~(torch.isfinite(tensor) & (tensor > 0))
    if bad.any():
        raise ValueError(
            f"{owner}: {name} must be positive and finite, got "
            f"{tensor[bad].flatten()[:5].tolist()}."
        )
    return tensor


def describe(value: Tensor) -> float | str:
    """A per-trajectory parameter for file attributes: its value, or a marker."""
    return float(value) if value.ndim == 0 else "per-trajectory"


class SpectralPDE1D(SchemeOrders):
    """``u_t = L u + c(k) F[g(u)]`` on ``[0, extent)``, periodic, pseudo-spectral.

    Subclasses set :attr:`name` and :attr:`equation` and implement :meth:`symbol`,
    :meth:`nonlinear_symbol` and :meth:`pointwise` (see
    :class:`~physim.solvers.KortewegDeVries1D` for a whole PDE in a few lines).

    State: the physical field ``[B, N]`` (real). Each step transforms it (2 of the 10
    length-``N`` FFTs of an ETDRK4 step), so that the error estimate, and the
    tolerances of :class:`~physim.timestepping.PIDController`, are pointwise values of
    ``u``; a spectral state would make ``atol`` a value in unnormalised Fourier units
    and ``rtol`` a per-mode tolerance.

    Space: Fourier modes ``m = 0..N/2``, ``k = 2 pi m / extent``. The nonlinear term
    ``c(k) rfft(g(irfft(u_hat)))`` with Orszag's 2/3 rule (``dealias``: ``u`` and the
    result are truncated to ``m < N/3``, so the kept modes of a quadratic ``g`` are
    exact) or without (the Nyquist mode of the result is dropped: its derivative is
    not real, as ``scipy.fftpack.diff`` has it).

    Time: a scheme of :mod:`physim.solvers.schemes` (default
    :class:`~physim.solvers.schemes.ETDRK4`, which integrates ``L`` exactly).
    ``time_scale`` ``tau`` makes the solver's time unit ``tau`` physical units (it
    integrates ``du/ds = tau (L u + N(u))``). With ``error_estimate=True`` a scheme
    without an embedded estimate is wrapped in
    :class:`~physim.solvers.schemes.StepDoubling` (3x the work) and
    ``StepResult.error`` is the Richardson estimate of the returned solution's local
    error.

    Args:
        num_points: grid points ``N``, even, >= 8.
        domain_extent: the interval length (> 0), a number or one per trajectory.
        time_scale: physical time per solver time unit (> 0), a number or one per
            trajectory.
        dealias: apply the 2/3 rule to the nonlinear term.
        error_estimate: return an error estimate from :meth:`step`.
        scheme: the time scheme (a class of :mod:`physim.solvers.schemes` or a
            ``functools.partial`` of one); default ETDRK4.
        dtype: ``float32`` or ``float64`` (or their names).
        device: where the state and operators live.

    Raises:
        ValueError: for an odd or too small ``num_points``, a non-positive or
            non-finite ``domain_extent``/``time_scale``, per-trajectory values of
            different lengths or an unsupported dtype.
    """

    name: ClassVar[str]
    equation: ClassVar[str]
    channel_names = ("u",)
    spatial_dims = ("x",)

    def __init__(
        self,
        num_points: int = 256,
        domain_extent: float | Tensor = 1.0,
        time_scale: float | Tensor = 1.0,
        *,
        dealias: bool = True,
        error_estimate: bool = False,
        scheme: SchemeFactory | None = None,
        dtype: torch.dtype | str = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        owner = type(self).__name__
        if (
            isinstance(num_points, bool)
            or int(num_points) != num_points
            or num_points < 8
            or num_points % 2
        ):
            raise ValueError(
                f"{owner}: num_points must be an even integer >= 8 (the 2/3 "
                f"de-aliasing rule keeps wavenumbers m < N/3), got {num_points!r}."
            )
        self.dtype = resolve_dtype(owner, dtype)
        self.num_points = n = int(num_points)
        self.domain_extent = positive_values(owner, "domain_extent", domain_extent)
        self.time_scale = positive_values(owner, "time_scale", time_scale)
        sizes = {t.numel() for t in (self.domain_extent, self.time_scale) if t.ndim}
        if len(sizes) > 1:
            raise ValueError(
                f"{owner}: per-trajectory domain_extent and time_scale must have the "
                f"same length, got {sorted(sizes)}."
            )
        self.batch_size = sizes.pop() if sizes else None
        self.dealias = bool(dealias)
        self.error_estimate = bool(error_estimate)
        self.device = torch.device(device)
        self.grid_spacing = float(self.domain_extent.max()) / n
        self._scheme_factory = scheme or ETDRK4

        modes = fft_wavenumbers(n, half=True, device=self.device)  # m = 0..N/2
        self._kept = 3 * modes < n if self.dealias else modes < n // 2
        # [B or 1, K] operators in float64: k = 2 pi m / extent.
        extent = self.domain_extent.to(self.device).reshape(-1, 1)
        scale = self.time_scale.to(self.device).reshape(-1, 1)
        k = 2.0 * math.pi * modes / extent
        complex_dtype = COMPLEX_DTYPES[self.dtype]
        factor = self.nonlinear_symbol(k) * scale * self._kept
        self._nonlinear_factor = factor.to(complex_dtype)
        #: The right-hand side in Fourier space, ``tau (L u_hat + N(u_hat))``; the
        #: 2/3 rule's truncation of ``u_hat`` is the term's input mask (stored in the
        #: state's complex dtype: no conversion of a real mask in every product).
        self.term = SemiLinear(
            scale * self.symbol(k),
            self._nonlinear,
            complex_dtype,
            mask=self._kept.to(torch.float64) if self.dealias else None,
        )
        self.scheme: Scheme = build_scheme(
            self._scheme_factory, self.term, error_estimate=error_estimate
        )

    # ------------------------------------------------------------------ the hooks
    def symbol(self, k: Tensor) -> Tensor:
        """The linear symbol ``L(k)`` per physical time unit (float64 or complex128)."""
        raise NotImplementedError

    def nonlinear_symbol(self, k: Tensor) -> Tensor | complex:
        """``c(k)``, the Fourier factor of the nonlinear term (``-i k / 2`` for the
        conservative ``-(u^2)_x / 2``, ``1`` for a reaction)."""
        raise NotImplementedError

    def pointwise(self, u: Tensor) -> Tensor:
        """``g(u)``, the nonlinearity in physical space (``u^2``, ``u - u^3``)."""
        raise NotImplementedError

    def pointwise_(self, u: Tensor) -> Tensor:
        """``g(u)``, free to overwrite ``u`` (a temporary of the step): what the step
        calls; :meth:`pointwise` unless a subclass has an in-place form."""
        return self.pointwise(u)

    # ------------------------------------------------------------------ grid
    def highest_kept_wavenumber(self) -> float:
        """``k`` of the highest mode the nonlinearity keeps, on the longest domain."""
        modes = fft_wavenumbers(self.num_points, half=True)[self._kept.cpu()]
        return 2.0 * math.pi * float(modes.max()) / float(self.domain_extent.max())

    # ------------------------------------------------------------------ conversions
    def encode(self, u: Float[Tensor, "B 1 N"]) -> Float[Tensor, "B N"]:
        """Physical ``u`` ``[B, 1, N]`` -> state ``[B, N]`` (solver dtype, device)."""
        n, owner = self.num_points, type(self).__name__
        if u.ndim != 3 or tuple(u.shape[1:]) != (1, n) or u.is_complex():
            raise ValueError(
                f"{owner}.encode: expected a real field of shape [B, 1, {n}], "
                f"got {tuple(u.shape)} ({u.dtype}); resample other resolutions with "
                "physim.solvers.spectral_resample first."
            )
        if self.batch_size is not None and u.shape[0] != self.batch_size:
            raise ValueError(
                f"{owner}.encode: this solver holds per-trajectory parameters "
                f"for {self.batch_size} trajectories, got a batch of {u.shape[0]}."
            )
        return u[:, 0].to(device=self.device, dtype=self.dtype)

    def decode(self, y: Float[Tensor, "B N"]) -> Float[Tensor, "B 1 N"]:
        """State ``[B, N]`` -> physical ``u`` ``[B, 1, N]``."""
        return y.unsqueeze(1)

    def coordinates(self, num_points: int | None = None) -> dict[str, Tensor]:
        """Cell positions ``i L / M`` (float64, CPU; ``L`` the longest extent).

        Args:
            num_points: ``M``; default the solver's ``N``.
        """
        m = self.num_points if num_points is None else int(num_points)
        extent = float(self.domain_extent.max())
        return {"x": extent * torch.arange(m, dtype=torch.float64) / m}

    def parameters(self) -> dict[str, Any]:
        """Plain values for file attributes."""
        params = {
            "pde": self.name,
            "equation": self.equation,
            "num_points": self.num_points,
            "domain_extent": describe(self.domain_extent),
            "time_scale": describe(self.time_scale),
            "scheme": self.scheme.name,
            "dealiasing": "2/3 rule, |m| < N/3" if self.dealias else "none",
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        if self.error_estimate:
            params["error_estimate"] = True
        return params

    # ------------------------------------------------------------------ stepping
    def _nonlinear(
        self, u_hat: Complex[Tensor, "B K"], t: float
    ) -> Complex[Tensor, "B K"]:
        """``tau c(k) rfft(g(u))`` of the (masked, when de-aliased) ``u_hat``: the
        term's ``B``, its mask ``P`` applied by the term (``term.nonlinear_part``)."""
        u = torch.fft.irfft(u_hat, n=self.num_points)
        return torch.fft.rfft(self.pointwise_(u)).mul_(self._nonlinear_factor)

    def time_derivative(
        self, y: Float[Tensor, "B N"], t: float = 0.0
    ) -> Float[Tensor, "B N"]:
        """The right-hand side the scheme integrates, ``du/ds = tau (L u + N(u))``.

        Physical in, physical out (the state is physical), with the de-aliased
        nonlinearity of :meth:`step` (used by residual error indicators, e.g.
        :class:`physim.rollout.PDEResidual`).
        """
        rhs = self.term.vector_field(torch.fft.rfft(y), t)
        return torch.fft.irfft(rhs, n=self.num_points)

    def step(self, y: Float[Tensor, "B N"], t: float, dt: float) -> StepResult:
        """One step of the scheme of size ``dt`` (solver time units) from ``y``.

        Returns:
            ``StepResult(y, error)``: ``error`` is ``None`` for a scheme without an
            estimate (ETDRK4 unless ``error_estimate=True``).
        """
        n = self.num_points
        result = self.scheme.step(torch.fft.rfft(y), t, dt)
        error = None if result.error is None else torch.fft.irfft(result.error, n=n)
        return StepResult(torch.fft.irfft(result.y, n=n), error)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_points={self.num_points}, "
            f"domain_extent={describe(self.domain_extent)}, "
            f"time_scale={describe(self.time_scale)}, dealias={self.dealias}, "
            f"error_estimate={self.error_estimate}, scheme={self.scheme!r}, "
            f"dtype={self.dtype}, device={self.device})"
        )


class Convection1D(SpectralPDE1D):
    """A :class:`SpectralPDE1D` whose nonlinearity is convection in conservative form,
    ``N(u) = -(a/2) (u^2)_x`` (``= -a u u_x``), ``a`` = :attr:`convection`.

    The mean of ``u`` is conserved exactly. Subclasses give :meth:`symbol` (and
    :attr:`convection` if not 1): Burgers, KS, KdV.
    """

    #: ``a`` in ``u_t + a u u_x = ...``.
    convection: ClassVar[float] = 1.0

    def nonlinear_symbol(self, k: Tensor) -> Tensor:
        """``-i a k / 2``."""
        # (-0.5 a) 1j is the literal -0.5j for a = 1, signed zero included, so the
        # factor (and the ks1d/burgers1d data) are the bits they were.
        return -0.5 * self.convection * 1j * k

    def pointwise(self, u: Tensor) -> Tensor:
        """``u^2``."""
        return u.square()

    def pointwise_(self, u: Tensor) -> Tensor:
        """``u^2`` in place (:meth:`pointwise`'s bits, one allocation less)."""
        return u.square_()
