"""The shared base of the 1-D pseudo-spectral ETDRK4 solvers (Burgers, KS).

Both PDEs are ``u_t = L u - (1/2) (u^2)_x`` on a periodic interval with a diagonal
Fourier symbol ``L``; a concrete PDE supplies only the symbol (:meth:`symbol`), the
pattern of exponax's ``BaseStepper``. The base owns the grid, the dealiased
nonlinearity, the ETDRK4 scheme, the step-doubling error estimate and the conversions.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Complex, Float
from torch import Tensor

from physim.timestepping import StepResult

from ._etdrk import ETDRK4, step_doubling
from ._ns2d import _COMPLEX, _DTYPES
from ._spectral import fft_wavenumbers

__all__ = ["ConservativeSpectral1D", "positive_values"]


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


class ConservativeSpectral1D:
    """``u_t = L u - (1/2) (u^2)_x`` on ``[0, extent)``, periodic, ETDRK4 in time.

    State: the physical field ``[B, N]`` (real). Each step transforms it (2 of the 10
    length-``N`` FFTs of a step), so that the error estimate, and the tolerances of
    :class:`~physim.timestepping.PIDController`, are pointwise values of ``u``; a
    spectral state would make ``atol`` a value in unnormalised Fourier units and
    ``rtol`` a per-mode tolerance.

    Space: Fourier modes ``m = 0..N/2``, ``k = 2 pi m / extent``; the nonlinear term in
    conservative form ``-(i k / 2) rfft(u^2)`` with Orszag's 2/3 rule (``dealias``:
    the factor and the product are truncated to ``m < N/3``, so the kept modes of the
    product are exact) or without (the product of all modes). The Nyquist mode of the
    derivative is zeroed (its derivative is not real), as ``scipy.fftpack.diff`` does.
    The mean is conserved exactly.

    Time: ETDRK4 (:class:`~physim.solvers._etdrk.ETDRK4`); the linear part is
    integrated exactly. ``time_scale`` ``tau`` makes the solver's time unit ``tau``
    physical units (it integrates ``du/ds = tau (L u + N(u))``). With
    ``error_estimate=True`` every step is also taken as two half steps
    (:func:`~physim.solvers._etdrk.step_doubling`, 3x the work) and ``StepResult.error``
    is the Richardson estimate of the returned solution's local error.

    Args:
        owner: the PDE's class name, for messages.
        num_points: grid points ``N``, even, >= 8.
        domain_extent: the interval length (> 0), a number or one per trajectory.
        time_scale: physical time per solver time unit (> 0), a number or one per
            trajectory.
        dealias: apply the 2/3 rule to the nonlinear term.
        error_estimate: return a step-doubling error estimate from :meth:`step`.
        contour_points: points of the phi-function contour integral.
        dtype: ``float32`` or ``float64`` (or their names).
        device: where the state and operators live.
    """

    channel_names = ("u",)
    spatial_dims = ("x",)
    order = 4
    embedded_order = 4  # step doubling: both solutions are fourth order
    scheme = "etdrk4"

    def __init__(
        self,
        owner: str,
        num_points: int,
        domain_extent: float | Tensor,
        time_scale: float | Tensor,
        *,
        dealias: bool,
        error_estimate: bool,
        contour_points: int,
        dtype: torch.dtype | str,
        device: str | torch.device,
    ) -> None:
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
        resolved = _DTYPES.get(dtype) if isinstance(dtype, str) else dtype
        if resolved not in _COMPLEX:
            raise ValueError(
                f"{owner}: dtype must be float32 or float64, got {dtype!r}."
            )
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
        self.contour_points = int(contour_points)
        self.dtype = resolved
        self.device = torch.device(device)
        self._owner = owner

        modes = fft_wavenumbers(n, half=True, device=self.device)  # m = 0..N/2
        self._kept = 3 * modes < n if self.dealias else modes < n // 2
        # [B or 1, K] operators in float64: k = 2 pi m / extent.
        extent = self.domain_extent.to(self.device).reshape(-1, 1)
        scale = self.time_scale.to(self.device).reshape(-1, 1)
        k = 2.0 * math.pi * modes / extent
        self._derivative = (-0.5j * k * scale * self._kept).to(_COMPLEX[self.dtype])
        self._factor_mask = self._kept.to(self.dtype) if self.dealias else None
        self._scheme = ETDRK4(
            scale * self.symbol(k),
            self._nonlinear,
            dtype=self.dtype,
            contour_points=self.contour_points,
        )

    def symbol(self, k: Tensor) -> Tensor:
        """The linear symbol ``L(k)`` per physical time unit (the PDE's hook)."""
        raise NotImplementedError

    def highest_kept_wavenumber(self) -> float:
        """``k`` of the highest mode the nonlinearity keeps, on the longest domain."""
        modes = fft_wavenumbers(self.num_points, half=True)[self._kept.cpu()]
        return 2.0 * math.pi * float(modes.max()) / float(self.domain_extent.max())

    # ------------------------------------------------------------------ conversions
    def encode(self, u: Float[Tensor, "B 1 N"]) -> Float[Tensor, "B N"]:
        """Physical ``u`` ``[B, 1, N]`` -> state ``[B, N]`` (solver dtype, device)."""
        n = self.num_points
        if u.ndim != 3 or tuple(u.shape[1:]) != (1, n) or u.is_complex():
            raise ValueError(
                f"{self._owner}.encode: expected a real field of shape [B, 1, {n}], "
                f"got {tuple(u.shape)} ({u.dtype}); resample other resolutions with "
                "physim.solvers.spectral_resample first."
            )
        if self.batch_size is not None and u.shape[0] != self.batch_size:
            raise ValueError(
                f"{self._owner}.encode: this solver holds per-trajectory parameters "
                f"for {self.batch_size} trajectories, got a batch of {u.shape[0]}."
            )
        return u[:, 0].to(device=self.device, dtype=self.dtype)

    def decode(self, y: Float[Tensor, "B N"]) -> Float[Tensor, "B 1 N"]:
        """State ``[B, N]`` -> physical ``u`` ``[B, 1, N]``."""
        return y.unsqueeze(1)

    # ------------------------------------------------------------------ stepping
    def _nonlinear(
        self, u_hat: Complex[Tensor, "B K"], t: float
    ) -> Complex[Tensor, "B K"]:
        """``tau * rfft(-(1/2) (u^2)_x)``, de-aliased when asked."""
        if self._factor_mask is not None:
            u_hat = u_hat * self._factor_mask
        u = torch.fft.irfft(u_hat, n=self.num_points)
        return torch.fft.rfft(u.square()) * self._derivative

    def time_derivative(
        self, y: Float[Tensor, "B N"], t: float = 0.0
    ) -> Float[Tensor, "B N"]:
        """The right-hand side the scheme integrates, ``du/ds = tau (L u + N(u))``.

        Physical in, physical out (the state is physical), with the de-aliased
        nonlinearity of :meth:`step` (used by residual error indicators, e.g.
        :class:`physim.rollout.PDEResidual`). The PDE is autonomous; ``t`` is unused.
        """
        u_hat = torch.fft.rfft(y)
        rhs = self._scheme.linear.to(self.dtype) * u_hat + self._nonlinear(u_hat, t)
        return torch.fft.irfft(rhs, n=self.num_points)

    def step(self, y: Float[Tensor, "B N"], t: float, dt: float) -> StepResult:
        """One ETDRK4 step of ``dt`` (solver time units) from the physical ``y``.

        Returns:
            ``StepResult(y, None)``, or with ``error_estimate`` the two-half-step
            solution and its Richardson error estimate.
        """
        n = self.num_points
        u_hat = torch.fft.rfft(y)
        if not self.error_estimate:
            return StepResult(torch.fft.irfft(self._scheme.advance(u_hat, t, dt), n=n))
        result = step_doubling(self._scheme.advance, u_hat, t, dt, order=self.order)
        return StepResult(
            torch.fft.irfft(result.y, n=n), torch.fft.irfft(result.error, n=n)
        )
