"""SIREN: the reference initialisation and the input checks."""

import math

import pytest
import torch

from physim.models import SIREN


def test_weight_ranges_follow_the_siren_initialisation():
    torch.manual_seed(0)
    net = SIREN(3, 2, hidden_features=256, hidden_layers=2, omega_0=30.0)
    first, *hidden, output = list(net.net)
    # First layer U(-1/in, 1/in); hidden and output U(+-sqrt(6/in)/omega_0).
    bounds = [1.0 / 3] + [math.sqrt(6.0 / 256) / 30.0] * (len(hidden) + 1)
    for layer, bound in zip([first, *hidden, output], bounds, strict=True):
        w = layer.weight.detach()
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.98 * bound  # the whole range is used
        # Uniform on [-b, b]: mean 0, variance b^2 / 3 (4-sigma sampling tolerances:
        # the sample variance of n uniform draws has relative std sqrt(0.8 / n)).
        n = w.numel()
        assert abs(w.mean()) < 4 * bound / math.sqrt(3 * n)
        assert w.var().item() == pytest.approx(bound**2 / 3, rel=4 * math.sqrt(0.8 / n))
    assert isinstance(output, torch.nn.Linear) and not hasattr(output, "omega_0")


def test_paper_advection_network_has_901_parameters_and_arcsine_activations():
    torch.manual_seed(0)
    net = SIREN(1, 1, hidden_features=20, hidden_layers=2)
    assert sum(p.numel() for p in net.parameters()) == 901
    # Through depth the activations of a wide SIREN keep the arcsine distribution on
    # [-1, 1] (variance 1/2), the point of the initialisation.
    wide = SIREN(1, 1, hidden_features=512, hidden_layers=3)
    h = torch.linspace(-1, 1, 4096)[:, None]
    for layer in list(wide.net)[:-1]:
        h = layer(h)
    assert h.var().item() == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"hidden_features": 0}, "hidden_features"),
        ({"hidden_layers": -1}, "hidden_layers"),
        ({"omega_0": 0.0}, "omega_0"),
        ({"in_features": 1.5}, "in_features"),
    ],
)
def test_bad_sizes_are_named(kwargs, name):
    args = {"in_features": 1, "out_features": 1} | kwargs
    with pytest.raises(ValueError, match=name):
        SIREN(**args)


def test_points_with_the_wrong_dimension_are_rejected():
    with pytest.raises(ValueError, match="2 coordinate"):
        SIREN(2, 1)(torch.zeros(5, 3))
