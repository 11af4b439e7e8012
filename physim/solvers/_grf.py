"""Gaussian random fields on the unit torus (the FNO initial conditions)."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from ._spectral import rfft_wavenumber_grid

__all__ = ["GaussianRandomField"]


class GaussianRandomField:
    """Periodic zero-mean Gaussian field ``N(0, sigma^2 (-lap + tau^2)^(-alpha))``.

    The field lives on the unit torus ``[0, 1)^dim`` sampled at ``x_i = i / N``. In the
    Fourier basis ``e^{2 pi i k.x}`` the covariance is diagonal, so the Fourier
    coefficients are independent (up to the Hermitian symmetry of a real field) with

        E |c_k|^2 = sigma^2 (4 pi^2 |k|^2 + tau^2)^(-alpha),   c_0 = 0,

    where ``c = rfftn(u) / N^dim`` (torch ``norm="forward"``) on the grid's modes
    (``k`` integer, ``|k_i| <= N/2``). This is the field of the FNO data sets (Li et al.
    2021, ``GaussianRF``); ``sigma`` defaults to ``tau^(alpha - dim/2)``, so that the
    field's variance stays O(1) as ``tau`` changes.

    Sampling colours white noise: ``eta = rfftn(xi, norm="ortho")`` of i.i.d. standard
    normal ``xi`` on the grid has ``E|eta_k|^2 = 1`` on every mode and exactly the
    Hermitian symmetry of a real field (self-conjugate modes such as Nyquist come out
    real), so ``u = irfftn(sqrt(S_k) eta_k, norm="forward")`` is real and has the
    spectrum above on every mode. Alternative: FNO's ``Re(ifftn(sqrt_eig * z))`` with
    complex ``z`` on the full grid, which has the same distribution but draws twice the
    random numbers and discards half of the result.

    Good values: ``alpha = 2.5, tau = 7`` (FNO Navier-Stokes, 2-D); ``alpha = 2,
    tau = 3`` (FNO Darcy/Burgers style smoother fields, larger scales).

    Args:
        num_points: grid points per axis, >= 2.
        alpha: smoothness exponent, > 0 (the samples are roughly in ``H^s`` for
            ``s < alpha - dim/2``).
        tau: inverse correlation length, >= 0 (0 gives a pure power law).
        sigma: amplitude, > 0; default ``tau^(alpha - dim/2)`` (``7^1.5`` for FNO).
        dim: number of spatial dimensions (1, 2 or 3).

    Raises:
        ValueError: for an out-of-range argument (named in the message).
    """

    def __init__(
        self,
        num_points: int,
        alpha: float = 2.5,
        tau: float = 7.0,
        sigma: float | None = None,
        dim: int = 2,
    ) -> None:
        if int(num_points) != num_points or num_points < 2:
            raise ValueError(
                "GaussianRandomField: num_points must be an integer >= 2, "
                f"got {num_points!r}."
            )
        if dim not in (1, 2, 3):
            raise ValueError(
                f"GaussianRandomField: dim must be 1, 2 or 3, got {dim!r}."
            )
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"GaussianRandomField: alpha must be > 0, got {alpha!r}.")
        if not (math.isfinite(tau) and tau >= 0):
            raise ValueError(f"GaussianRandomField: tau must be >= 0, got {tau!r}.")
        if sigma is None:
            if tau == 0:
                raise ValueError(
                    "GaussianRandomField: the default sigma = tau^(alpha - dim/2) is 0 "
                    "for tau=0; pass sigma explicitly."
                )
            sigma = tau ** (0.5 * (2.0 * alpha - dim))
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"GaussianRandomField: sigma must be > 0, got {sigma!r}.")
        self.num_points = int(num_points)
        self.alpha = float(alpha)
        self.tau = float(tau)
        self.sigma = float(sigma)
        self.dim = int(dim)
        self._sqrt_spectrum = self.spectrum().sqrt()

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of a sample, ``(N,) * dim``."""
        return (self.num_points,) * self.dim

    def spectrum(self) -> Float[Tensor, "*K"]:
        """Expected ``|c_k|^2`` on the ``rfftn`` grid, ``c = rfftn(u) / N^dim``.

        Returns:
            float64 tensor ``[N, ..., N, N//2 + 1]`` (CPU), zero at ``k = 0``.
        """
        k2 = sum(k**2 for k in rfft_wavenumber_grid(self.num_points, self.dim))
        eig = 4.0 * math.pi**2 * k2 + self.tau**2
        spectrum = torch.zeros_like(eig)
        nonzero = k2 > 0
        spectrum[nonzero] = self.sigma**2 * eig[nonzero] ** (-self.alpha)
        return spectrum

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> Float[Tensor, "n 1 *S"]:
        """Draw ``n`` independent fields.

        The noise is drawn and coloured on the CPU in float64 and only then cast and
        moved, so a seeded ``generator`` gives bit-identical fields on every device.

        Args:
            n: number of samples, >= 1.
            generator: a CPU ``torch.Generator`` (default: torch's global one).
            dtype: real dtype of the result.
            device: device of the result.

        Returns:
            ``[n, 1, N, ..., N]`` (channel axis included).
        """
        if int(n) != n or n < 1:
            raise ValueError(f"GaussianRandomField.sample: n must be >= 1, got {n!r}.")
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(
                "GaussianRandomField.sample: `generator` must be a CPU torch.Generator "
                f"(the noise is drawn on CPU for device independence), got one on "
                f"{generator.device}."
            )
        if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise ValueError(
                "GaussianRandomField.sample: dtype must be a real float dtype, "
                f"got {dtype}."
            )
        axes = tuple(range(-self.dim, 0))
        noise = torch.randn(
            (int(n), *self.shape),
            generator=generator,
            dtype=torch.float64,
            device="cpu",
        )
        coeff = torch.fft.rfftn(noise, dim=axes, norm="ortho") * self._sqrt_spectrum
        u = torch.fft.irfftn(coeff, s=self.shape, dim=axes, norm="forward")
        return u.unsqueeze(1).to(dtype=dtype, device=device)

    def parameters(self) -> dict[str, float | int | str]:
        """Plain values describing the distribution (for file attributes)."""
        return {
            "initial_condition": "gaussian_random_field",
            "num_points": self.num_points,
            "alpha": self.alpha,
            "tau": self.tau,
            "sigma": self.sigma,
            "dim": self.dim,
        }

    describe = parameters

    def __repr__(self) -> str:
        return (
            f"GaussianRandomField(num_points={self.num_points}, alpha={self.alpha}, "
            f"tau={self.tau}, sigma={self.sigma}, dim={self.dim})"
        )
