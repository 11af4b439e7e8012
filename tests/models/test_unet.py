"""Modern U-Net: periodic shift equivariance, conditioning, PDEArena size, bad input."""

from functools import partial

import pytest
import torch

import physim.models._unet as unet_module
from physim.models import UNet
from tests.models.backbone_checks import (
    check_backward_and_state_dict,
    check_experiment_checkpoint_round_trip,
    check_zero_init_conditioning,
    shift_error,
)

SMALL = dict(hidden_channels=8, channel_multipliers=(1, 2, 2), num_blocks=1)


def small_unet(spatial_dims: int, **kwargs) -> UNet:
    return UNet(3, 2, spatial_dims=spatial_dims, **{**SMALL, **kwargs})


@pytest.mark.parametrize(
    "spatial_dims, shape, shift",
    [
        (1, (48,), (1,)),
        (1, (48,), (7,)),
        (2, (16, 24), (1, 0)),
        (2, (16, 24), (3, 5)),
        (2, (16, 24), (8, 4)),
    ],
)
def test_circular_unet_commutes_with_every_periodic_shift(spatial_dims, shape, shift):
    torch.manual_seed(0)
    model = small_unet(spatial_dims, mid_attention=True).double()
    x = torch.randn(2, 3, *shape, dtype=torch.float64)
    error, size = shift_error(model, x, shift)
    assert size > 0.1
    assert error < 1e-12 * max(size, 1.0)


def test_without_polyphase_alignment_only_multiples_of_the_coarsest_cell_commute(
    monkeypatch,
):
    # The control for the test above: the fixed even phase of the reference code
    # (two down-samplings here) commutes with shifts by 4 but not by 1 or 2.
    monkeypatch.setattr(unet_module, "phase_of", lambda x, periodic: None)
    torch.manual_seed(0)
    model = small_unet(2).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    assert shift_error(model, x, (4, 8))[0] < 1e-12
    for shift in [(1, 0), (2, 2)]:
        error, size = shift_error(model, x, shift)
        assert error > 1e-3 * size


@pytest.mark.parametrize(
    "spatial_dims, cond_mode", [(1, "add"), (2, "scale_shift"), (2, "add")]
)
def test_conditioning_is_zero_at_init_and_changes_the_output_once_trained(
    spatial_dims, cond_mode
):
    build = partial(small_unet, spatial_dims, cond_mode=cond_mode)
    x = torch.randn(2, 3, *([8] * spatial_dims), dtype=torch.float64)
    check_zero_init_conditioning(build, x)


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_every_parameter_gets_a_gradient_and_the_state_dict_loads(spatial_dims):
    model = small_unet(
        spatial_dims, mid_attention=True, cond_dim=1, cond_mode="scale_shift"
    )
    x = torch.randn(2, 3, *([8] * spatial_dims))
    out = model(x, torch.rand(2, 1))
    assert out.shape == (2, 2, *([8] * spatial_dims))
    # Zero-initialised projections get gradients too (their inputs are non-zero).
    check_backward_and_state_dict(model, x, torch.rand(2, 1))


def test_pdearena_unetmod_64_has_its_144m_parameters():
    # PDEArena "Unetmod-64": 4 history frames x 3 channels in, 3 out, widths
    # 64-128-256-1024 with two blocks per level: 144.26M parameters.
    with torch.device("meta"):
        model = UNet(12, 3, hidden_channels=64)
    assert sum(p.numel() for p in model.parameters()) == 144_263_683


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(padding_mode="reflect"), "padding_mode must be one of"),
        (dict(spatial_dims=3), "spatial_dims must be 1 or 2"),
        (dict(norm_groups=3), r"norm_groups=3 .* valid values: \[1, 2, 4, 8\]"),
        (dict(channel_multipliers=()), "channel_multipliers must be a non-empty"),
        (dict(cond_mode="film"), "cond_mode must be one of"),
        (dict(spatial_size=(16, 18)), r"spatial_size \(16, 18\) .* multiple of 4"),
        (dict(spatial_size=(4, 4)), r"multiple of 4 and at least 8"),
        (dict(spatial_size=(16,)), "spatial_size must list 2 size"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(3, 2, **{**SMALL, **kwargs})


def test_bad_spatial_size_and_missing_cond_fail_before_any_work():
    model = small_unet(2, cond_dim=1)
    with pytest.raises(ValueError, match=r"multiple of 4 and at least 8"):
        model(torch.randn(1, 3, 16, 18), torch.rand(1, 1))
    with pytest.raises(
        ValueError, match=r"cond_dim=1 and needs cond of shape \(1, 1\)"
    ):
        model(torch.randn(1, 3, 16, 16))


@pytest.mark.parametrize("experiment", ["ns2d_unet", "ks1d_unet"])
def test_experiment_checkpoint_round_trip(experiment, tmp_path):
    check_experiment_checkpoint_round_trip(experiment, tmp_path)
