"""SineNet: periodic shift equivariance, the paper's parameter budget for every K,
conditioning, bad input."""

from functools import partial
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import physim.cli  # noqa: F401  (the ${mul:...} resolver of the model configs)
import physim.models._sinenet as sinenet_module
from physim.models import PAPER_MULTS, SineNet, mult_for_budget, sinenet_parameter_count
from tests.models import backbone_checks as checks

SMALL = dict(hidden_channels=8, num_waves=2, mult=1.5, num_levels=2)
# The reference setting: 4 history frames of 3 channels (vorticity-free NS: density
# and two velocity components) in, one frame out.
PAPER = dict(in_channels=12, out_channels=3, hidden_channels=64, num_levels=4)
PAPER_COUNT = 35_490_219


def small_sinenet(spatial_dims: int, **kwargs) -> SineNet:
    return SineNet(3, 2, spatial_dims=spatial_dims, **{**SMALL, **kwargs})


@pytest.mark.parametrize("spatial_dims, shape, shift", checks.SHIFT_CASES)
def test_circular_sinenet_commutes_with_periodic_shifts(spatial_dims, shape, shift):
    checks.check_commutes_with_shift(partial(small_sinenet, spatial_dims), shape, shift)


def test_fixed_phase_commutes_only_with_multiples_of_the_coarsest_cell():
    # The control: the reference code's fixed phase (two poolings here) commutes
    # with shifts by 4 but not by 1 or 2; its periodic cubic up-sampling is exact.
    checks.check_commutes_only_with_coarse_shifts(
        partial(small_sinenet, 2, downsample_phase="fixed")
    )


def test_fixed_phase_is_continuous_where_the_adaptive_choice_flips(monkeypatch):
    # Between an input and its odd shift the adaptive choice flips somewhere; there
    # a 1e-6 step moves the adaptive network by O(1), the fixed-phase one by O(1e-6).
    torch.manual_seed(0)
    adaptive = small_sinenet(1).double()
    fixed = small_sinenet(1, downsample_phase="fixed").double()
    fixed.load_state_dict(adaptive.state_dict())
    x0 = torch.randn(1, 3, 32, dtype=torch.float64)
    a, b = checks.bisect_phase_flip(
        monkeypatch, sinenet_module, adaptive, x0, x0.roll(1, -1), 1e-6
    )
    delta = (b - a).abs().max().item()
    with torch.no_grad():
        scale = fixed(a).abs().max().item()
        assert (fixed(b) - fixed(a)).abs().max() < 100 * delta * scale
        assert (adaptive(b) - adaptive(a)).abs().max() > 1e-3 * scale


def test_zero_padding_is_not_periodic():
    # With zero padding the boundary is a wall, so even a shift by a whole coarse
    # cell changes the output: the equivariance above comes from the circular mode.
    torch.manual_seed(0)
    model = small_sinenet(2, padding_mode="zeros").double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    error, size = checks.shift_error(model, x, (4, 8))
    assert error > 1e-3 * size


def test_sinenet_paper_has_the_reference_parameter_count():
    count = sinenet_parameter_count(num_waves=8, mult=1.425, **PAPER)
    assert abs(count - PAPER_COUNT) <= 0.01 * PAPER_COUNT
    # The shortcut through two-wave nets must agree with a real build.
    with torch.device("meta"):
        model = SineNet(num_waves=3, mult=1.425, **PAPER)
    assert sum(p.numel() for p in model.parameters()) == sinenet_parameter_count(
        num_waves=3, mult=1.425, **PAPER
    )


def test_sinenet_paper_config_builds_the_reference_model():
    conf = Path(__file__).resolve().parents[2] / "conf" / "model" / "sinenet_paper.yaml"
    cfg = OmegaConf.create(
        {
            "data": {"time_history": 4, "num_channels": 3, "time_future": 1},
            "model": OmegaConf.load(conf),
        }
    )
    with torch.device("meta"):
        net = instantiate(cfg.model.net)
    count = sum(p.numel() for p in net.parameters())
    assert abs(count - PAPER_COUNT) <= 0.01 * PAPER_COUNT


@pytest.mark.parametrize("num_waves", [2, 4, 6])
def test_paper_mults_keep_the_budget_for_every_k(num_waves):
    count = sinenet_parameter_count(
        num_waves=num_waves, mult=PAPER_MULTS[num_waves], **PAPER
    )
    assert abs(count - PAPER_COUNT) <= 0.05 * PAPER_COUNT


def test_bisection_recovers_the_reference_mult():
    mult = mult_for_budget(PAPER_COUNT, num_waves=4, **PAPER)
    assert mult == pytest.approx(PAPER_MULTS[4], abs=2e-3)
    count = sinenet_parameter_count(num_waves=4, mult=mult, **PAPER)
    assert abs(count - PAPER_COUNT) <= 0.001 * PAPER_COUNT


@pytest.mark.parametrize("spatial_dims, cond_mode", checks.CONDITIONING_CASES)
def test_conditioning_is_zero_at_init_and_changes_the_output_once_trained(
    spatial_dims, cond_mode
):
    build = partial(small_sinenet, spatial_dims, cond_mode=cond_mode)
    checks.check_zero_init_conditioning(build, spatial_dims)


@pytest.mark.parametrize(
    "spatial_dims, padding_mode", [(1, "circular"), (2, "circular"), (2, "zeros")]
)
def test_every_parameter_gets_a_gradient_and_the_state_dict_loads(
    spatial_dims, padding_mode
):
    model = small_sinenet(spatial_dims, padding_mode=padding_mode, cond_dim=1)
    x = torch.randn(2, 3, *([8] * spatial_dims))
    assert model(x, torch.rand(2, 1)).shape == (2, 2, *([8] * spatial_dims))
    checks.check_backward_and_state_dict(model, x, torch.rand(2, 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_waves=0), "num_waves must be >= 1, got 0"),
        (dict(num_levels=0), "num_levels must be >= 1, got 0"),
        (dict(norm_groups=4), r"norm_groups=4 .* valid values: \[1, 2\]"),
        (dict(padding_mode="periodic"), "padding_mode must be one of"),
        (dict(downsample_phase="even"), "downsample_phase must be one of"),
        (dict(spatial_dims=0), "spatial_dims must be 1 or 2"),
        (dict(hidden_channels=1, mult=0.4), "level without channels"),
        (dict(spatial_size=(16, 18)), r"spatial_size \(16, 18\) .* multiple of 4"),
        (dict(spatial_dims=1, spatial_size=(4,)), r"multiple of 4 and at least 8"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, match):
    # Widths for hidden 8, mult 1.5, 2 levels: 8, 12, 18 (common divisors 1, 2).
    with pytest.raises(ValueError, match=match):
        SineNet(3, 2, **{**SMALL, **kwargs})


def test_bad_spatial_size_fails_before_any_work():
    model = small_sinenet(1)
    with pytest.raises(ValueError, match=r"\(14,\) .* multiple of 4 and at least 8"):
        model(torch.randn(1, 3, 14))
    with pytest.raises(ValueError, match=r"built with cond_dim=0"):
        model(torch.randn(1, 3, 16), torch.rand(1, 1))


@pytest.mark.parametrize("experiment", ["ns2d_sinenet", "ks1d_sinenet"])
def test_experiment_checkpoint_round_trip(experiment, tmp_path):
    checks.check_experiment_checkpoint_round_trip(experiment, tmp_path)
