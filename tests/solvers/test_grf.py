"""Gaussian random field: spectrum, statistics, reproducibility (float64)."""

import math

import pytest
import torch

from physim.solvers import GaussianRandomField


def formula(num_points, alpha, tau, sigma, dim):
    """sigma^2 (4 pi^2 |k|^2 + tau^2)^(-alpha) on the rfftn grid, written anew."""
    k = torch.fft.fftfreq(num_points, 1.0 / num_points, dtype=torch.float64)
    k_half = torch.fft.rfftfreq(num_points, 1.0 / num_points, dtype=torch.float64)
    axes = [k] * (dim - 1) + [k_half]
    grids = torch.meshgrid(*axes, indexing="ij")
    k2 = sum(g**2 for g in grids)
    s = sigma**2 * (4 * math.pi**2 * k2 + tau**2) ** (-alpha)
    s[(0,) * dim] = 0.0
    return s, k2


def shell_z_scores(u, spectrum, k2):
    """Per |k|^2 shell: z-score of the mean of |c_k|^2 / spectrum over samples.

    Modes are averaged within a sample first, so the per-sample shell means are i.i.d.
    and their standard error is estimated from the samples themselves.
    """
    dim = u.ndim - 2
    n = u.shape[-1]
    c = torch.fft.rfftn(u[:, 0], dim=tuple(range(-dim, 0))) / n**dim
    ratio = c.abs() ** 2 / torch.where(spectrum > 0, spectrum, 1.0)
    z = []
    for shell in torch.unique(k2):
        if shell == 0:
            continue
        per_sample = ratio[:, k2 == shell].mean(dim=1)
        se = per_sample.std() / math.sqrt(per_sample.numel())
        z.append(((per_sample.mean() - 1.0) / se).item())
    return torch.tensor(z)


def test_default_sigma_is_the_fno_setting():
    grf = GaussianRandomField(64)
    assert grf.sigma == pytest.approx(7.0**1.5, rel=1e-15)
    assert GaussianRandomField(32, alpha=2.0, tau=3.0, dim=1).sigma == pytest.approx(
        3.0**1.5
    )


@pytest.mark.parametrize(("num_points", "dim"), [(16, 1), (16, 2), (7, 2), (8, 3)])
def test_spectrum_matches_the_formula(num_points, dim):
    grf = GaussianRandomField(num_points, alpha=2.5, tau=7.0, dim=dim)
    expected, _ = formula(num_points, 2.5, 7.0, grf.sigma, dim)
    torch.testing.assert_close(grf.spectrum(), expected, rtol=1e-14, atol=0)
    assert grf.spectrum()[(0,) * dim] == 0


@pytest.mark.parametrize(("num_points", "dim", "count"), [(16, 2, 3000), (32, 1, 3000)])
def test_empirical_spectrum_matches_within_sampling_error(num_points, dim, count):
    grf = GaussianRandomField(num_points, alpha=2.5, tau=7.0, dim=dim)
    u = grf.sample(count, generator=torch.Generator().manual_seed(1))
    true, k2 = formula(num_points, 2.5, 7.0, grf.sigma, dim)
    z = shell_z_scores(u, true, k2)
    assert z.abs().max() < 4.5, z
    # The same statistic rejects a field whose sigma or alpha is off by 10%.
    for wrong in (
        formula(num_points, 2.5, 7.0, 1.1 * grf.sigma, dim)[0],
        formula(num_points, 2.5, 7.0, grf.sigma / 1.1, dim)[0],
        formula(num_points, 2.75, 7.0, grf.sigma, dim)[0],
        formula(num_points, 2.25, 7.0, grf.sigma, dim)[0],
    ):
        assert shell_z_scores(u, wrong, k2).abs().max() > 6


def test_pointwise_variance_is_the_sum_of_the_spectrum():
    grf = GaussianRandomField(32)
    u = grf.sample(400, generator=torch.Generator().manual_seed(2))
    s = grf.spectrum()
    weights = torch.full((s.shape[-1],), 2.0, dtype=torch.float64)
    weights[0] = weights[-1] = 1.0  # the k_y = 0 and Nyquist columns are not doubled
    expected = float((s * weights).sum())
    # 400 x 1024 correlated points: the mean of u^2 is within a few percent.
    assert float(u.square().mean()) == pytest.approx(expected, rel=0.05)


def test_samples_are_real_zero_mean_and_periodic_shape():
    grf = GaussianRandomField(24)
    u = grf.sample(5, generator=torch.Generator().manual_seed(0))
    assert u.shape == (5, 1, 24, 24)
    assert u.dtype == torch.float64 and not u.is_complex()
    assert u.mean(dim=(-2, -1)).abs().max() < 1e-15
    # Hermitian consistency: an irfft -> rfft round trip reproduces the spectrum.
    c = torch.fft.rfft2(u)
    torch.testing.assert_close(torch.fft.rfft2(torch.fft.irfft2(c, s=(24, 24))), c)


def test_seed_reproducible_and_dtype_independent():
    grf = GaussianRandomField(32)
    a = grf.sample(3, generator=torch.Generator().manual_seed(7))
    b = grf.sample(3, generator=torch.Generator().manual_seed(7))
    c = grf.sample(3, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    f32 = grf.sample(3, generator=torch.Generator().manual_seed(7), dtype=torch.float32)
    assert f32.dtype == torch.float32
    assert torch.equal(f32, a.float())


def test_parameters_are_plain_values():
    params = GaussianRandomField(16, alpha=2.0, tau=3.0).parameters()
    assert (
        params["alpha"] == 2.0 and params["tau"] == 3.0 and params["num_points"] == 16
    )
    assert all(isinstance(v, int | float | str) for v in params.values())
    assert GaussianRandomField(16).describe() == GaussianRandomField(16).parameters()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_points": 1}, "num_points"),
        ({"num_points": 8, "alpha": 0.0}, "alpha"),
        ({"num_points": 8, "tau": -1.0}, "tau"),
        ({"num_points": 8, "sigma": -2.0}, "sigma"),
        ({"num_points": 8, "dim": 4}, "dim"),
        ({"num_points": 8, "tau": 0.0}, "sigma"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GaussianRandomField(**kwargs)


def test_sample_rejects_bad_count():
    with pytest.raises(ValueError, match="n must be"):
        GaussianRandomField(8).sample(0)
