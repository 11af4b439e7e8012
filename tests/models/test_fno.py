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


def test_resolution_independence_on_band_limited_input():
    # A band-limited input sampled on two grids gives the same band-limited output at
    # the shared points, up to the pointwise non-linearities' aliasing: check closeness
    # in the low modes rather than exact equality.
    torch.manual_seed(0)
    model = FNO(1, 1, n_modes=(8, 8), hidden_channels=8, n_layers=2)
    fine = torch.linspace(0, 1, 65)[:-1]
    coarse = fine[::2]

    def field(x):
        return (
            torch.sin(2 * torch.pi * x)[:, None] * torch.cos(2 * torch.pi * x)[None, :]
        )

    y_fine = model(field(fine)[None, None])
    y_coarse = model(field(coarse)[None, None])
    assert y_coarse.shape == (1, 1, 32, 32)
    error = (y_fine[..., ::2, ::2] - y_coarse).norm() / y_coarse.norm()
    assert error < 0.05


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
