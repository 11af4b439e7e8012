"""Fourier helpers shared by the pseudo-spectral solvers and samplers on the unit torus.

Conventions used throughout ``physim.solvers``:

- Fields are sampled at cell positions ``x_i = i / N`` on ``[0, 1)^d`` (unit torus).
- Spectra live on the ``rfftn`` grid over the trailing ``d`` axes: the last axis holds
  the non-negative frequencies ``0..N//2``, the others the full ``fftfreq`` ordering.
- Wavenumbers are *integer* (cycles per unit length); the angular wavenumber of the
  unit torus is ``2 pi k``.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

__all__ = [
    "dealias_mask",
    "fft_wavenumbers",
    "rfft_wavenumber_grid",
    "spectral_resample",
]


def fft_wavenumbers(
    num_points: int,
    *,
    half: bool = False,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> Float[Tensor, " K"]:
    """Integer wavenumbers of an FFT axis of length ``num_points``.

    Args:
        num_points: the axis length ``N``.
        half: ``True`` for the last (``rfft``) axis, ``0..N//2``; ``False`` for the full
            ``fftfreq`` ordering ``0, 1, ..., -1`` (the Nyquist mode of an even ``N``
            appears as ``-N/2``).
        dtype: real dtype of the result.
        device: device of the result.

    Returns:
        The wavenumbers, length ``N//2 + 1`` (half) or ``N``.
    """
    if half:
        return torch.fft.rfftfreq(
            num_points, d=1.0 / num_points, dtype=dtype, device=device
        )
    return torch.fft.fftfreq(num_points, d=1.0 / num_points, dtype=dtype, device=device)


def rfft_wavenumber_grid(
    num_points: int,
    dim: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> list[Tensor]:
    """Broadcastable integer wavenumbers ``[k_1, ..., k_d]`` on the ``rfftn`` grid.

    ``k_i`` has shape ``[1, ..., K_i, ..., 1]`` (``K_i = N`` except the last axis,
    ``N//2 + 1``), so ``sum(k**2 for k in grid)`` is the ``|k|^2`` array of shape
    ``[N, ..., N, N//2 + 1]``.
    """
    grid = []
    for axis in range(dim):
        k = fft_wavenumbers(
            num_points, half=axis == dim - 1, dtype=dtype, device=device
        )
        shape = [1] * dim
        shape[axis] = k.numel()
        grid.append(k.reshape(shape))
    return grid


def dealias_mask(
    num_points: int, dim: int = 2, *, device: str | torch.device = "cpu"
) -> Bool[Tensor, "*K"]:
    """Orszag's 2/3 rule on the ``rfftn`` grid: keep ``|k_i| < N/3`` on every axis.

    With both factors of a quadratic product truncated to ``|k| < N/3`` their product
    has ``|k| < 2N/3``, whose aliases ``k - N`` fall outside the kept band, so the kept
    modes of the product are exact. The mask is square (per axis), as in the FNO
    reference solver and jax-cfd's ``brick_wall_filter_2d``.

    Alternatives: a circular mask ``|k| < N/3`` (isotropic, drops the corners too); the
    3/2 zero-padding rule (exact with no modes lost, but the transforms are 1.5x longer
    per axis, about 2.5x the cost in 2-D); a smooth exponential filter (Hou & Li 2007),
    which keeps more modes but is not an exact de-aliasing.

    Args:
        num_points: points per axis ``N``.
        dim: number of spatial axes.
        device: device of the mask.

    Returns:
        A boolean mask of shape ``[N, ..., N, N//2 + 1]``.
    """
    grid = rfft_wavenumber_grid(num_points, dim, device=device)
    mask = torch.ones((), dtype=torch.bool, device=device)
    for k in grid:
        # 3|k| < N is exact in integers (no float threshold round-off).
        mask = mask & (3 * k.abs() < num_points)
    return mask


def _resample_axis(u: Tensor, num_points: int, axis: int) -> Tensor:
    """Fourier-resample the real field ``u`` to ``num_points`` along one axis."""
    size = u.shape[axis]
    if num_points == size:
        return u
    # "forward" normalisation: coefficients c_k = (1/N) sum_j u_j e^{-2 pi i k j / N}
    # do not depend on N, so resampling is copying coefficients.
    u_hat = torch.fft.rfft(u, dim=axis, norm="forward")
    keep = min(size, num_points) // 2 + 1
    out_shape = list(u_hat.shape)
    out_shape[axis] = num_points // 2 + 1
    out = u_hat.new_zeros(out_shape)
    index = [slice(None)] * u.ndim
    index[axis] = slice(0, keep)
    out[tuple(index)] = u_hat[tuple(index)]
    low = min(size, num_points)
    if low % 2 == 0:
        # The Nyquist mode k = low/2 of the smaller grid: its +low/2 and -low/2 parts
        # coincide on that grid. Downsampling folds them (c_+ + c_- = 2 Re c_+ for a
        # real field), which is what point sampling does, so a field band-limited to
        # |k| <= M/2 is reproduced exactly. Upsampling splits the coarse Nyquist
        # coefficient evenly between +M/2 and -M/2 (a real cosine), the convention of
        # scipy.signal.resample; the two choices are inverse, so down(up(u)) == u.
        index[axis] = low // 2
        nyquist = u_hat[tuple(index)]
        if num_points < size:
            out[tuple(index)] = 2.0 * nyquist.real
        else:
            out[tuple(index)] = 0.5 * nyquist.real
    return torch.fft.irfft(out, n=num_points, dim=axis, norm="forward")


def spectral_resample(
    u: Float[Tensor, "B C *S"], num_points: int
) -> Float[Tensor, "B C *T"]:
    """Resample a real periodic field to ``num_points`` per spatial axis by Fourier.

    Downsampling truncates the spectrum to the coarse grid's band, upsampling pads it
    with zeros; both act on every trailing spatial axis (any number of them, the first
    two axes are batch and channel). The result is exact for band-limited fields: a
    field with ``|k_i| <= M/2`` sampled on an ``N``-point grid and resampled to ``M``
    points equals the same field sampled on the ``M``-point grid (the coarse Nyquist
    mode is folded as point sampling would; see ``_resample_axis``), and
    ``spectral_resample(spectral_resample(u, N_fine), N)`` is ``u`` for any ``u``.

    The transform is separable, so it is applied one axis at a time with real FFTs; it
    runs at save time, not inside a step, so clarity wins over saving transforms.
    Alternative: subsampling in physical space (``w[..., ::4, ::4]``, how the FNO data
    went from 256^2 to 64^2), which is cheaper but aliases all modes above the coarse
    Nyquist frequency onto the kept ones.

    Args:
        u: real field ``[B, C, *space]``, equal periodic spatial axes (1-D or more).
        num_points: points per spatial axis of the result, >= 2.

    Returns:
        The resampled field ``[B, C, num_points, ...]``, same dtype and device. Returned
        unchanged when it already has ``num_points`` per axis.

    Raises:
        ValueError: for a complex input, fewer than three axes or ``num_points < 2``.
    """
    if u.is_complex():
        raise ValueError(
            "spectral_resample: `u` must be a real field [B, C, *space], got a complex "
            f"tensor of dtype {u.dtype}; decode spectral states first."
        )
    if u.ndim < 3:
        raise ValueError(
            "spectral_resample: `u` must have shape [B, C, *space] with at least one "
            f"spatial axis, got shape {tuple(u.shape)}; add batch/channel axes with "
            "u[None, None]."
        )
    if int(num_points) != num_points or num_points < 2:
        raise ValueError(
            "spectral_resample: `num_points` must be an integer >= 2, "
            f"got {num_points!r}."
        )
    num_points = int(num_points)
    # Shrink first along axes that shrink, so later transforms are on smaller arrays.
    axes = sorted(range(2, u.ndim), key=lambda a: num_points - u.shape[a])
    for axis in axes:
        u = _resample_axis(u, num_points, axis)
    return u
