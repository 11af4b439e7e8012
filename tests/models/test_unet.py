"""Modern U-Net: periodic shift equivariance, conditioning, PDEArena size, bad input."""

from functools import partial

import pytest
import torch

import physim.models._unet as unet_module
from physim.models import UNet
from tests.models import backbone_checks as checks

SMALL = dict(hidden_channels=8, channel_multipliers=(1, 2, 2), num_blocks=1)


def small_unet(spatial_dims: int, **kwargs) -> UNet:
    return UNet(3, 2, spatial_dims=spatial_dims, **{**SMALL, **kwargs})


@pytest.mark.parametrize("spatial_dims, shape, shift", checks.SHIFT_CASES)
def test_circular_unet_commutes_with_every_periodic_shift(spatial_dims, shape, shift):
    build = partial(small_unet, spatial_dims, mid_attention=True)
    checks.check_commutes_with_shift(build, shape, shift)


def test_fixed_phase_commutes_only_with_multiples_of_the_coarsest_cell():
    # The control for the test above: the fixed even phase of the reference code
    # (two down-samplings here) commutes with shifts by 4 but not by 1 or 2.
    checks.check_commutes_only_with_coarse_shifts(
        partial(small_unet, 2, downsample_phase="fixed")
    )


def test_fixed_phase_is_the_reference_strided_convolution():
    # PDEArena's Downsample: Conv1d(C, C, 3, stride 2, padding 1), circular under
    # pderefiner.py:80. With the fixed phase the U-Net's down-sampler is exactly it.
    torch.manual_seed(0)
    model = small_unet(1, downsample_phase="fixed").double()
    seen = {}
    down = model.downsamplers[0]
    down.register_forward_hook(lambda m, args, out: seen.update(x=args[0], y=out))
    model(torch.randn(2, 3, 16, dtype=torch.float64))
    x = torch.nn.functional.pad(seen["x"], (1, 1), mode="circular")
    expected = torch.nn.functional.conv1d(x, down.weight, down.bias, stride=2)
    torch.testing.assert_close(seen["y"], expected, rtol=0, atol=1e-12)


def test_fixed_phase_is_continuous_and_adaptive_phase_jumps(monkeypatch):
    # A 1e-6 perturbation that flips the adaptive polyphase choice moves the adaptive
    # network's output by O(1), and the fixed-phase network (same weights) by O(1e-6).
    torch.manual_seed(0)
    adaptive = small_unet(1, cond_dim=1).double()
    fixed = small_unet(1, cond_dim=1, downsample_phase="fixed").double()
    fixed.load_state_dict(adaptive.state_dict())
    for parameter in fixed.parameters():  # non-zero conditioning, as once trained
        parameter.data += 0.05 * torch.randn_like(parameter)
    adaptive.load_state_dict(fixed.state_dict())
    cond = torch.rand(1, 1, dtype=torch.float64)
    x0 = torch.randn(1, 3, 32, dtype=torch.float64)
    # The odd shift swaps the polyphase components: somewhere between, the choice flips.
    a, b = checks.bisect_phase_flip(
        monkeypatch, unet_module, adaptive, x0, x0.roll(1, -1), 1e-6, cond
    )
    delta = (b - a).abs().max().item()
    assert 1e-7 < delta <= 1e-6
    with torch.no_grad():
        scale = fixed(a, cond).abs().max().item()
        fixed_move = (fixed(b, cond) - fixed(a, cond)).abs().max().item()
        adaptive_move = (adaptive(b, cond) - adaptive(a, cond)).abs().max().item()
    assert scale > 0.1
    assert fixed_move < 100 * delta * scale, (fixed_move, delta)
    assert adaptive_move > 1e-3 * scale, adaptive_move
    # And at random points the fixed-phase network is Lipschitz at the same scale.
    with torch.no_grad():
        for _ in range(3):
            d = torch.randn_like(x0)
            d *= 1e-6 / d.abs().max()
            move = (fixed(x0 + d, cond) - fixed(x0, cond)).abs().max().item()
            assert move < 100 * 1e-6 * scale
            x0 = torch.randn_like(x0)


@pytest.mark.parametrize("spatial_dims, cond_dim", [(1, 3), (2, 0)])
def test_pdearena_init_outputs_exactly_zero(spatial_dims, cond_dim):
    # pdearena/modules/conditioned/oned_unet.py:66 (zero conv2 per residual block),
    # 611-614 (zero final convolution): a fresh network predicts zero, whatever the
    # input and conditioning; every residual block starts as its shortcut.
    torch.manual_seed(0)
    build = partial(small_unet, spatial_dims, cond_dim=cond_dim, mid_attention=True)
    model = build(weight_init="pdearena", out_norm_groups=8)
    x = torch.randn(3, 3, *([16] * spatial_dims))
    args = (100 * torch.randn(3, cond_dim),) if cond_dim else ()
    out = model(x, *args)
    assert out.shape == (3, 2, *([16] * spatial_dims))
    assert torch.equal(out, torch.zeros_like(out))
    block, h = model.down_blocks[0][0], torch.randn(3, 8, *([16] * spatial_dims))
    emb = model.cond_embedding(*args) if cond_dim else None
    assert torch.equal(block(h, emb), h)
    assert model.out_norm.num_groups == 8
    if cond_dim:  # the conditioning projections keep torch's initialisation
        assert model.down_blocks[0][0].norm2.proj.weight.abs().max() > 0
    # The control: the default initialisation does not output zero.
    assert build()(x, *args).abs().max() > 1e-3
    # The output layer learns from the first step.
    (model(x, *args) - 1).square().mean().backward()
    assert model.project.weight.grad.abs().max() > 0


@pytest.mark.parametrize("spatial_dims, cond_mode", checks.CONDITIONING_CASES)
def test_conditioning_is_zero_at_init_and_changes_the_output_once_trained(
    spatial_dims, cond_mode
):
    build = partial(small_unet, spatial_dims, cond_mode=cond_mode)
    checks.check_zero_init_conditioning(build, spatial_dims)


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_every_parameter_gets_a_gradient_and_the_state_dict_loads(spatial_dims):
    model = small_unet(
        spatial_dims, mid_attention=True, cond_dim=1, cond_mode="scale_shift"
    )
    x = torch.randn(2, 3, *([8] * spatial_dims))
    out = model(x, torch.rand(2, 1))
    assert out.shape == (2, 2, *([8] * spatial_dims))
    # Zero-initialised projections get gradients too (their inputs are non-zero).
    checks.check_backward_and_state_dict(model, x, torch.rand(2, 1))


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
        (
            dict(out_norm_groups=16),
            r"out_norm_groups=16 .* valid values: \[1, 2, 4, 8\]",
        ),
        (dict(downsample_phase="odd"), "downsample_phase must be one of"),
        (dict(weight_init="zeros"), "weight_init must be one of"),
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
    checks.check_experiment_checkpoint_round_trip(experiment, tmp_path)
