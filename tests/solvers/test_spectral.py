"""Spectral helpers: wavenumbers, the 2/3 mask, Fourier resampling (float64, exact)."""

import math

import pytest
import torch

from physim.solvers import dealias_mask, fft_wavenumbers, spectral_resample


def band_limited(points: int, modes: list[tuple[tuple[int, ...], float, float]]):
    """sum of a cos(2 pi k.x) + b sin(2 pi k.x) at x_i = i / points, [1, 1, *S]."""
    dim = len(modes[0][0])
    x = torch.arange(points, dtype=torch.float64) / points
    grids = torch.meshgrid(*([x] * dim), indexing="ij")
    u = torch.zeros((points,) * dim, dtype=torch.float64)
    for k, a, b in modes:
        phase = 2 * math.pi * sum(ki * g for ki, g in zip(k, grids, strict=True))
        u = u + a * torch.cos(phase) + b * torch.sin(phase)
    return u[None, None]


def random_modes(
    dim: int, kmax: int, count: int, seed: int, nyquist: int | None = None
):
    g = torch.Generator().manual_seed(seed)
    modes = []
    for _ in range(count):
        k = tuple(int(v) for v in torch.randint(-kmax, kmax + 1, (dim,), generator=g))
        a, b = torch.randn(2, generator=g, dtype=torch.float64).tolist()
        modes.append((k, a, b))
    if nyquist is not None:
        # Modes at the coarse Nyquist frequency, pure and mixed with other axes.
        modes.append(((nyquist,) * dim, 0.7, 0.2))
        modes.append(((nyquist,) + (1,) * (dim - 1), 0.3, 0.4))
        modes.append(((-1,) * (dim - 1) + (nyquist,), -0.5, 0.6))
    return modes


def test_wavenumbers_match_numpy_convention():
    assert fft_wavenumbers(6).tolist() == [0, 1, 2, -3, -2, -1]
    assert fft_wavenumbers(6, half=True).tolist() == [0, 1, 2, 3]
    assert fft_wavenumbers(5).tolist() == [0, 1, 2, -2, -1]


@pytest.mark.parametrize("n", [12, 16, 64])
def test_dealias_mask_keeps_exactly_modes_below_n_over_3(n):
    mask = dealias_mask(n, 2)
    assert mask.shape == (n, n // 2 + 1)
    kept = [k for k in range(-n // 2, n // 2) if 3 * abs(k) < n]
    assert int(mask.sum()) == len(kept) * len([k for k in kept if k >= 0])
    # Product of two kept modes: every alias k - n lands outside the kept band.
    kmax = max(kept)
    assert 2 * kmax - n < -kmax
    assert dealias_mask(n, 1).shape == (n // 2 + 1,)


@pytest.mark.parametrize(
    ("dim", "fine", "coarse"),
    [(d, f, c) for d in (1, 2) for f, c in ((32, 16), (24, 8), (27, 9), (16, 12))]
    + [(3, 24, 8), (3, 16, 12)],
)
def test_downsample_of_band_limited_field_equals_coarse_sampling(dim, fine, coarse):
    nyquist = coarse // 2 if coarse % 2 == 0 else None
    modes = random_modes(
        dim, (coarse - 1) // 2, 6, seed=dim * 100 + fine, nyquist=nyquist
    )
    u_fine = band_limited(fine, modes)
    u_coarse = band_limited(coarse, modes)
    out = spectral_resample(u_fine, coarse)
    assert out.shape == u_coarse.shape
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, u_coarse, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim", [1, 2])
def test_upsample_of_band_limited_field_equals_fine_sampling(dim):
    modes = random_modes(dim, 7, 8, seed=3)  # |k| <= 7 < 16 / 2: no Nyquist ambiguity
    out = spectral_resample(band_limited(16, modes), 40)
    torch.testing.assert_close(out, band_limited(40, modes), rtol=0, atol=1e-12)


def test_upsampled_coarse_nyquist_is_a_real_cosine():
    # On 8 points cos(8 pi x) = (-1)^i; its band-limited extension is the cosine.
    u = band_limited(8, [((4,), 1.0, 0.0)])
    torch.testing.assert_close(
        spectral_resample(u, 32),
        band_limited(32, [((4,), 1.0, 0.0)]),
        rtol=0,
        atol=1e-13,
    )


@pytest.mark.parametrize("shape", [(3, 2, 16), (2, 3, 16, 16), (1, 1, 10, 10)])
@pytest.mark.parametrize("fine", [32, 33, 64])
def test_up_then_down_is_identity_for_any_field(shape, fine):
    u = torch.randn(
        shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    back = spectral_resample(spectral_resample(u, fine), shape[-1])
    torch.testing.assert_close(back, u, rtol=0, atol=1e-12)


def test_resample_keeps_dtype_device_and_batch_channels():
    u = torch.randn(4, 3, 32, 32, dtype=torch.float32)
    out = spectral_resample(u, 16)
    assert out.shape == (4, 3, 16, 16)
    assert out.dtype == torch.float32
    assert spectral_resample(u, 32) is u
    # Channels are resampled independently.
    torch.testing.assert_close(out[:, 1:2], spectral_resample(u[:, 1:2], 16))


def test_resample_rejects_bad_input():
    with pytest.raises(ValueError, match="num_points"):
        spectral_resample(torch.zeros(1, 1, 8), 1)
    with pytest.raises(ValueError, match="complex"):
        spectral_resample(torch.zeros(1, 1, 8, dtype=torch.complex64), 4)
    with pytest.raises(ValueError, match=r"\[B, C, \*space\]"):
        spectral_resample(torch.zeros(8, 8), 4)
