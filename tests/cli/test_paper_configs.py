"""Every ``*_paper`` config carries its source's defining numbers.

Each assertion names where the number comes from; a config that drifts from its
source fails here, not in a GPU run weeks later.
"""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from physim.tasks import RelativeL2Loss
from tests.cli.conftest import compose_train


def compose(experiment: str, tmp_path):
    return compose_train([f"+experiment={experiment}"], tmp_path)


def count_real(module: torch.nn.Module) -> int:
    """Parameters with a complex weight counted as two real numbers."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in module.parameters())


# -------------------------------------------------------------- FNO (Li et al. 2021)
# Source: neuraloperator/neuraloperator fourier_2d_time.py at commit fd7b0de (class
# FNO2d and the "configs" block), the script behind the paper's Table 1 NS rows.
def test_ns2d_fno_paper_is_the_fourier_2d_time_script(tmp_path):
    cfg = compose("ns2d_fno_paper", tmp_path)
    net = instantiate(cfg.model.net)
    # fc0 Linear(12, 20) + 4 x (2 x [20, 20, 12, 12] complex + Conv2d(20, 20, 1))
    # + fc1 Linear(20, 128) + fc2 Linear(128, 1), BatchNorms unused in forward.
    assert count_real(net) == 260 + 4 * (2 * 2 * 20 * 20 * 12 * 12 + 420) + 2688 + 129
    assert count_real(net) == 926_357
    for conv in net.fno_blocks.convs:
        weight = conv.weight.to_tensor() if hasattr(conv.weight, "to_tensor") else None
        weight = conv.weight.tensor if weight is None else weight
        assert tuple(weight.shape) == (20, 20, 24, 12)  # kx corners stacked
        assert tuple(weight[:, :, :12].shape) == tuple(weight[:, :, 12:].shape)
        assert tuple(weight[:, :, :12].shape) == (20, 20, 12, 12)  # weights1 / 2
    assert net.lifting.fcs[0].in_channels == 12  # 10 frames + x, y
    assert [fc.out_channels for fc in net.projection.fcs] == [128, 1]
    # get_grid: np.linspace(0, 1, S) per axis at S = 64.
    grid = net.positional_embedding.grid(torch.Size([64, 64]), "cpu", torch.float32)
    np.testing.assert_allclose(grid[0][0, 0, :, 0], np.linspace(0, 1, 64), atol=1e-7)
    np.testing.assert_allclose(grid[1][0, 0, 0, :], np.linspace(0, 1, 64), atol=1e-7)
    # Output of the whole model has one channel per predicted frame.
    assert net(torch.zeros(1, 10, 64, 64)).shape == (1, 1, 64, 64)

    model = cfg.model
    loss = instantiate(model.loss)
    assert isinstance(loss, RelativeL2Loss) and loss.reduction == "sum"  # LpLoss sum
    assert model.unroll_reduction == "sum"  # loss += per step
    assert model.pushforward is False  # loss.backward() through the rollout
    assert model.residual is False and model.normalize is False
    assert model.optimizer._target_ == "torch.optim.Adam"
    assert (model.optimizer.lr, model.optimizer.weight_decay) == (1e-3, 1e-4)
    assert model.scheduler._target_ == "torch.optim.lr_scheduler.StepLR"
    assert (model.scheduler.step_size, model.scheduler.gamma) == (100, 0.5)
    assert model.scheduler_interval == "epoch"
    assert cfg.trainer.max_epochs == 500
    assert cfg.callbacks.model_checkpoint.monitor is None  # the final model is tested

    data = cfg.data
    assert (data.time_history, data.time_future, data.unroll_steps) == (10, 1, 39)
    assert data.time_history + data.time_future * (1 + data.unroll_steps) == 50
    assert data.batch_size == 20
    generator = data.generator
    assert generator.num_trajectories.train == 1000  # ntrain
    assert generator.num_trajectories.test == 200  # ntest
    assert generator.num_frames == 50 and generator.store_points == 64  # T, S
    assert generator.pde.num_points == 256 and generator.pde.viscosity == 1e-3
    assert generator.controller.dt_max == 1e-4


# -------------------------------------------------------------- SineNet (Zhang 2024)
def test_sinenet_paper_has_the_reference_parameter_count(tmp_path):
    # divelab/AIRS OpenPDE/SineNet/pdearena/pdearena/models/registry.py:
    # "sinenet8-dual": hidden_channels 64, num_waves 8, mult 1.425, "par1": 35490219
    # (4 history frames x 3 channels in, 3 out: incompressible NS).
    cfg = compose_train(["data=ns2d", "model=sinenet_paper"], tmp_path)
    net = cfg.model.net
    assert (net.hidden_channels, net.num_waves, net.mult) == (64, 8, 1.425)
    assert net.disentangle is True and net.padding_mode == "circular"
    net.in_channels, net.out_channels = 4 * 3, 3
    with torch.device("meta"):
        model = instantiate(net)
    assert count_real(model) == 35_490_219


# -------------------------------------------------------------- PDE-Refiner (Lippe)
def test_ks1d_refiner_paper_matches_the_reference_config(tmp_path):
    # ../shared/reference/pde_refiner.md ("Settings for KS (reference config)").
    cfg = compose("ks1d_refiner_paper", tmp_path)
    model, net = cfg.model, cfg.model.net
    assert (net.hidden_channels, list(net.channel_multipliers)) == (64, [1, 2, 2, 4])
    assert net.num_blocks == 2 and net.padding_mode == "circular"
    assert model.num_refinement_steps == 3 and model.min_noise_variance == 4e-7
    assert model.difference_weight == 0.3 and model.ema_decay == 0.995
    assert list(model.conditioning) == ["domain_extent", "frame_interval"]
    assert (model.optimizer.lr, model.scheduler.eta_min) == (1e-4, 1e-6)
    assert cfg.trainer.max_epochs == 400 and cfg.data.batch_size == 128
    assert (cfg.data.time_history, cfg.data.time_future) == (1, 1)
    with torch.device("meta"):
        params = count_real(instantiate(net))
    assert params == pytest.approx(54e6, rel=0.01)  # "about 54M"


# LPSDA's KS generator (brandstetter-johannes/LPSDA generate/generate_data.py and its
# README's KS command: L = 64 +- 10%, end time 100 +- 10% over nt = 500 frames, the
# last nt_effective = 140 kept) made PDE-Refiner's data; pdearena's
# configs/kuramotosivashinsky1d.yaml trains on trajlen 140.
def test_ks1d_paper_data_is_lpsda_ks(tmp_path):
    data = compose_train(["data=ks1d_paper"], tmp_path).data
    gen = data.generator
    assert dict(gen.num_trajectories)["train"] == 2048
    assert dict(gen.num_frames) == {"train": 140, "valid": 640, "test": 640}
    assert gen.first_output_time == 500 - 140  # LPSDA keeps the last 140 of 500
    assert gen.pde.num_points == 256 and gen.store_points == 256
    ranges = gen.initial_condition.parameter_ranges
    assert list(ranges.domain_extent) == pytest.approx([0.9 * 64, 1.1 * 64])
    # dt = T / (nt - 1) with T ~ U[90, 110], nt = 500: 0.1804 .. 0.2204
    assert list(ranges.frame_interval) == pytest.approx([0.18, 0.22], abs=5e-4)
    ic = gen.initial_condition
    assert (ic.num_waves, ic.amplitude, list(ic.wavenumbers)) == (10, 0.5, [1, 2])
    assert (data.time_stride, data.batch_size) == (4, 128)


# -------------------------------------------------------------- TSM (Sun et al. 2023)
@pytest.mark.parametrize(
    "experiment", ["kolmogorov2d_li_paper", "kolmogorov2d_tsm_paper"]
)
def test_kolmogorov_paper_configs_match_tsm(experiment, tmp_path):
    # ../shared/reference/tsm.md: 6 x [3x3 conv, 256 channels], 32-step unrolls after a
    # 32-frame prefix, AdamW (beta2 0.98, weight decay 1e-4), clip 0.25; 2048^2 DNS to
    # 64^2, 128 training / 16 test trajectories, dt = 0.5 (2 pi / 64) / 7.
    cfg = compose(experiment, tmp_path)
    net = cfg.model.net
    assert (net.hidden_channels, net.num_layers) == (256, 6)
    assert cfg.data.time_future == 32
    assert cfg.trainer.gradient_clip_val == 0.25
    optimizer = cfg.model.optimizer
    assert optimizer._target_ == "torch.optim.AdamW"
    assert list(optimizer.betas)[1] == 0.98 and optimizer.weight_decay == 1e-4
    generator = cfg.data.generator
    assert generator.pde.num_points == 2048 and generator.store_points == 64
    assert generator.num_trajectories.train == 128
    assert generator.num_trajectories.test == 16
    assert generator.output_interval == pytest.approx(0.5 * (2 * np.pi / 64) / 7)
    if experiment == "kolmogorov2d_tsm_paper":
        assert cfg.data.time_history == 32
        assert cfg.model.encoder.state_size == 256 and cfg.model.net.bundle == 4
    else:
        assert cfg.data.time_history == 1


# -------------------------------------------------------------- INSR (Chen 2023)
def test_insr_paper_configs_match_the_published_optimisation(tmp_path):
    # ../shared/reference/insr.md: Adam lr 1e-4, reduce-on-plateau (0.1, 500), up to
    # 20000 iterations; advection: width 20 x 2 hidden layers, 5000 points; fluid:
    # width 32 x 3 hidden layers, 128^2 points.
    advection = compose("advection1d_insr_paper", tmp_path / "a").model
    fluid = compose("fluid2d_insr_paper", tmp_path / "f").model
    for model in (advection, fluid):
        assert (model.lr, model.factor, model.patience) == (1e-4, 0.1, 500)
        assert model.max_iterations == model.initial_iterations == 20000
    assert advection.num_points == 5000 and advection.num_boundary_points == 50
    assert fluid.num_points == 128 * 128
    for field in ("velocity", "pressure"):
        spec = fluid.fields[field]
        assert (spec.hidden_features, spec.hidden_layers) == (32, 3)
