"""FNO backbone: dimensions, resolution independence, gradients, plain state dict."""

import io

import pytest
import torch

from physim.models import FNO


@pytest.mark.parametrize("space", [(32,), (16, 16), (8, 8, 8)])
def test_shapes_backward_and_every_parameter_gets_a_gradient(space):
    n_modes = tuple(min(8, s) for s in space)
    model = FNO(3, 2, n_modes=n_modes, hidden_channels=8, n_layers=2)
    x = torch.randn(2, 3, *space)
    y = model(x)
    assert y.shape == (2, 2, *space)
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def band_limited(n: int, max_k: int = 4, seed: int = 0) -> torch.Tensor:
    """Random Fourier modes with |k_x|, |k_y| <= max_k sampled on an n^2 grid."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.arange(n, dtype=torch.float64) / n
    field = torch.zeros(n, n, dtype=torch.float64)
    for kx in range(-max_k, max_k + 1):
        for ky in range(-max_k, max_k + 1):
            a, b = torch.randn(2, generator=generator, dtype=torch.float64)
            phase = 2 * torch.pi * (kx * x[:, None] + ky * x[None, :])
            field += a * torch.cos(phase) + b * torch.sin(phase)
    return (field / field.std()).float()[None, None]


@torch.no_grad()
def cross_resolution_error(model: torch.nn.Module) -> float:
    """Relative difference of the model's outputs on a 64^2 and a 32^2 sampling of
    the same band-limited field, at the shared points."""
    fine, coarse = model(band_limited(64)), model(band_limited(32))
    assert coarse.shape == (1, 1, 32, 32)
    return float((fine[..., ::2, ::2] - coarse).norm() / coarse.norm())


BOUND = 5e-3  # FNO measures 2e-4 to 1e-3 here; a 3x3 convolution 0.2 to 0.35


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resolution_independence_on_band_limited_input(seed):
    # A band-limited input sampled on two grids gives the same output at the shared
    # points, up to the pointwise non-linearities' aliasing.
    torch.manual_seed(seed)
    model = FNO(1, 1, n_modes=(8, 8), hidden_channels=8, n_layers=2)
    assert cross_resolution_error(model) < BOUND


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_convolution_fails_the_resolution_check(seed):
    # Negative control: a 3x3 stencil sees twice the physical extent on the coarse
    # grid, so it is not resolution independent, and the check must say so.
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")
    assert cross_resolution_error(conv) > 10 * BOUND


def test_state_dict_is_plain_and_loads_with_weights_only():
    model = FNO(2, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1)
    parent = torch.nn.ModuleDict({"net": model})
    state = parent.state_dict()
    assert "_metadata" not in state and "net._metadata" not in state
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    clone = torch.nn.ModuleDict(
        {"net": FNO(2, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1)}
    )
    clone.load_state_dict(loaded)
    x = torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(clone["net"](x), model(x))
