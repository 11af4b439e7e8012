"""PDERefiner: schedule, v-target, posterior, K = 0, EMA, checkpoints, sampling,
training levels, the benchmark's diagnostics, the refiner configs' backbone."""

import importlib.util
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.callbacks import EMAWeightAveraging, ModelCheckpoint
from torch import nn

from physim.data import TrajectoryDataModule
from physim.models import UNet
from physim.tasks import AutoregressiveSurrogate, PDERefiner, refinement_schedule
from physim.tasks._refiner import _posterior_coefficients
from tests.cli.conftest import compose_train
from tests.helpers.datasets import write_dataset

NUM_POINTS = 32


def waves_1d(num: int, frames: int, seed: int) -> np.ndarray:
    """Sums of two sines drifting at per-trajectory speeds, ``[N, T, 1, 32]``."""
    rng = np.random.default_rng(seed)
    x = np.arange(NUM_POINTS) / NUM_POINTS
    t = np.arange(frames)[:, None]
    out = np.empty((num, frames, 1, NUM_POINTS), dtype=np.float32)
    for i in range(num):
        a, b, c, v = rng.uniform(0.5, 1.5, 4)
        phase = x[None] - 0.03 * v * t
        out[i, :, 0] = a * np.sin(2 * np.pi * phase) + b * np.cos(4 * np.pi * phase + c)
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_dataset(
        tmp_path_factory.mktemp("waves1d"),
        {
            "train": waves_1d(4, 12, seed=0),
            "valid": waves_1d(2, 12, seed=1),
            "test": waves_1d(3, 12, seed=2),
        },
    )


def make_net(k: int, cond_dim: int | None = None, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(
        1 + (1 if k else 0),
        1,
        spatial_dims=1,
        hidden_channels=8,
        channel_multipliers=[1, 2],
        num_blocks=1,
        cond_dim=(1 if k else 0) if cond_dim is None else cond_dim,
    )


def make_refiner(k: int = 3, lr: float = 3e-3, seed: int = 0, **kwargs) -> PDERefiner:
    return PDERefiner(
        make_net(k, seed=seed),
        optimizer=partial(torch.optim.Adam, lr=lr),
        num_refinement_steps=k,
        num_channels=1,
        time_history=1,
        **kwargs,
    )


def make_trainer(folder, max_epochs: int, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        default_root_dir=folder,
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def flat_weights(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


# --------------------------------------------------------------------- schedule
def test_noise_levels_equal_the_reference_values_for_k3():
    alpha_bar = refinement_schedule(3, 4e-7)
    noise_std = (1 - alpha_bar).sqrt()
    # The reference's betas: (4e-7)^(k'/K), k' = K..0, alpha_bar = cumprod(1 - beta).
    betas = 4e-7 ** (np.arange(3, -1, -1) / 3)
    np.testing.assert_allclose(alpha_bar.numpy(), np.cumprod(1 - betas), rtol=1e-12)
    np.testing.assert_allclose(
        noise_std.numpy(), [6.3e-4, 7.4e-3, 0.086, 1.0], rtol=0.01
    )
    assert alpha_bar[-1].item() == 0.0  # level K is pure noise, exactly


class _RecordingLoss(nn.Module):
    def forward(self, pred, target):
        self.target = target
        return (pred - target).square().mean()


class _RecordingNet(nn.Module):
    """Returns zeros; records its input and conditioning."""

    cond_dim = 1

    def forward(self, x, cond):
        self.x, self.cond = x, cond
        return torch.zeros_like(x[:, 1:])


def test_target_is_minus_y_and_input_pure_noise_at_the_top_level():
    loss = _RecordingLoss()
    net = _RecordingNet()
    task = PDERefiner(
        net, partial(torch.optim.Adam), loss=loss, num_channels=1, time_history=1
    )
    task.set_statistics({"mean": [0.2], "std": [1.5], "delta_std": [0.4]})
    history = torch.randn(4, 1, 1, NUM_POINTS)
    levels = torch.full((4,), 3)
    inputs = []
    for future in (torch.randn(4, 1, 1, NUM_POINTS), torch.randn(4, 1, 1, NUM_POINTS)):
        gen = torch.Generator().manual_seed(1)
        task.refinement_loss(history, future, levels=levels, generator=gen)
        y = task.encode_target(future, history).flatten(1, 2)
        torch.testing.assert_close(loss.target, -y, rtol=0, atol=1e-7)
        inputs.append(net.x[:, 1:].clone())
    # The noisy target fed at k = K does not depend on the target at all.
    torch.testing.assert_close(inputs[0], inputs[1], rtol=0, atol=0)
    # The level reaches the backbone as k * 1000 / K.
    torch.testing.assert_close(net.cond, torch.full((4, 1), 1000.0))


def test_posterior_step_is_the_gaussian_conditional_of_the_forward_process():
    alpha_bar = refinement_schedule(3).tolist()
    coefficients = _posterior_coefficients(alpha_bar)
    for k in range(1, 4):
        a_k, a_prev = alpha_bar[k], alpha_bar[k - 1]
        alpha = a_k / a_prev
        # y_{k-1} = sqrt(a_prev) y0 + sqrt(1 - a_prev) e1, y_k = sqrt(alpha) y_{k-1}
        # + sqrt(1 - alpha) e2: condition the Gaussian y_{k-1} on y_k (and y0).
        gain = np.sqrt(alpha) * (1 - a_prev) / (1 - a_k)
        c_y0 = np.sqrt(a_prev) - gain * np.sqrt(a_k)
        variance = (1 - a_prev) - gain**2 * (1 - a_k)
        signal, noise, c0, c1, std = coefficients[k]
        assert (signal, noise) == pytest.approx((np.sqrt(a_k), np.sqrt(1 - a_k)))
        assert (c0, c1, std) == pytest.approx(
            (c_y0, gain, np.sqrt(variance)), rel=1e-9, abs=1e-15
        )
    assert coefficients[0][2:] == (1.0, 0.0, 0.0)  # the last step returns y0_hat


def test_an_exact_v_prediction_samples_the_truth():
    """With the true v (known y), every posterior step ends at y."""
    y = torch.randn(3, 1, NUM_POINTS, dtype=torch.float64)
    task = make_refiner()
    alpha_bar = refinement_schedule(3)

    class Oracle(nn.Module):
        cond_dim = 1

        def forward(self, x, cond):
            k = int(round(cond[0, 0].item() * 3 / 1000))
            a = alpha_bar[k]
            eps = (x[:, 1:] - a.sqrt() * y) / (1 - a).sqrt()
            return a.sqrt() * eps - (1 - a).sqrt() * y

    task.net = Oracle()
    out = task.sample_normalized(torch.zeros(3, 1, 1, NUM_POINTS, dtype=torch.float64))
    torch.testing.assert_close(out[:, 0], y, rtol=0, atol=1e-12)


# --------------------------------------------------------------------- K = 0
def test_k0_is_the_plain_mse_one_step_surrogate(root):
    dm = TrajectoryDataModule(root, num_channels=1, time_history=1, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    refiner = make_refiner(k=0)
    surrogate = AutoregressiveSurrogate(
        make_net(0),
        optimizer=partial(torch.optim.Adam, lr=3e-3),
        num_channels=1,
        time_history=1,
    )
    results = []
    for task in (refiner, surrogate):
        task.set_statistics(dm.statistics)
        task.train()
        loss, pred, target = task.model_step(batch)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in task.parameters()])
        task.eval()
        with torch.no_grad():
            rollout, _ = task.rollout(batch["history"].repeat(1, 5, 1, 1))
        results.append((loss.detach(), pred.detach(), grads, rollout))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ------------------------------------------------------------ EMA and checkpoints
class _Watched(PDERefiner):
    """Records the raw weights after every optimiser step and those evaluated."""

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.raw_history.append(flat_weights(self.net))

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.seen["val"].append(flat_weights(self.net))
        super().validation_step(batch, batch_idx, dataloader_idx)

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        self.seen["test"].append(flat_weights(self.net))
        super().test_step(batch, batch_idx, dataloader_idx)


def make_watched(decay=0.5, **kwargs):
    task = _Watched(
        make_net(3),
        optimizer=partial(torch.optim.Adam, lr=1e-2),
        num_channels=1,
        time_history=1,
        ema_decay=decay,
        **kwargs,
    )
    task.raw_history, task.seen = [], {"val": [], "test": []}
    return task


def manual_ema(raw: list[torch.Tensor], decay: float) -> torch.Tensor:
    ema = raw[0]  # the first update copies the weights
    for w in raw[1:]:
        ema = decay * ema + (1 - decay) * w
    return ema


def test_validation_and_test_use_the_ema_weights(root, tmp_path):
    dm = TrajectoryDataModule(root, num_channels=1, time_history=1, batch_size=2)
    task = make_watched(decay=0.5, uncertainty_samples=2)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = make_trainer(tmp_path, 2, callbacks=[checkpoint], limit_train_batches=4)
    trainer.fit(task, datamodule=dm)
    assert any(isinstance(c, EMAWeightAveraging) for c in trainer.callbacks)
    assert len(task.raw_history) == 8
    val_batches = len(task.seen["val"]) // 2
    for epoch in range(2):
        raw = task.raw_history[: 4 * (epoch + 1)]
        expected = manual_ema(raw, 0.5)
        # Every validation batch of the epoch (one-step and rollout) saw the EMA.
        for seen in task.seen["val"][epoch * val_batches : (epoch + 1) * val_batches]:
            torch.testing.assert_close(seen, expected, rtol=1e-5, atol=1e-6)
            assert (seen - raw[-1]).abs().max() > 1e-4  # not the raw weights
    ema = manual_ema(task.raw_history, 0.5)
    # As physim.cli.train does: test the checkpoint with the trainer that fitted.
    metrics = trainer.test(task, datamodule=dm, ckpt_path="last", verbose=False)[0]
    for seen in task.seen["test"]:
        torch.testing.assert_close(seen, ema, rtol=1e-5, atol=1e-6)
    # ... and validating again does not swap a stale average in.
    trainer.validate(task, datamodule=dm, ckpt_path="last", verbose=False)
    torch.testing.assert_close(task.seen["val"][-1], ema, rtol=1e-5, atol=1e-6)
    # The sample rollouts' uncertainty metrics are logged.
    assert metrics["test/uncertainty_spread"] > 0
    assert metrics["test/estimated_corr_time"] >= 0
    assert "test/corr_time_estimate_r" in metrics


def test_checkpoint_restores_raw_and_ema_weights(root, tmp_path):
    dm = TrajectoryDataModule(root, num_channels=1, time_history=1, batch_size=2)
    task = make_watched(decay=0.5)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = make_trainer(tmp_path, 1, callbacks=[checkpoint], limit_train_batches=4)
    trainer.fit(task, datamodule=dm)
    raw, ema = task.raw_history[-1], manual_ema(task.raw_history, 0.5)
    saved = torch.load(checkpoint.last_model_path, weights_only=True)

    def net_weights(state):
        return torch.cat(
            [v.flatten() for k, v in state.items() if k.startswith("net.")]
        )

    torch.testing.assert_close(
        net_weights(saved["state_dict"]), ema, rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(net_weights(saved["current_model_state"]), raw)

    # Resuming restores the raw weights into the model and the EMA into the callback.
    restored = {}

    class Probe(pl.Callback):
        def on_train_start(self, trainer, module):
            average = next(
                c for c in trainer.callbacks if isinstance(c, EMAWeightAveraging)
            )
            restored["raw"] = flat_weights(module.net)
            restored["ema"] = flat_weights(average._average_model.module.net)

    resumed = make_watched(decay=0.5)
    trainer = make_trainer(
        tmp_path / "resume", 2, callbacks=[Probe()], limit_train_batches=2
    )
    trainer.fit(resumed, datamodule=dm, ckpt_path=checkpoint.last_model_path)
    torch.testing.assert_close(restored["raw"], raw, rtol=0, atol=0)
    torch.testing.assert_close(restored["ema"], ema, rtol=1e-5, atol=1e-6)

    # load_from_checkpoint (evaluation) gets the EMA weights, and the statistics.
    loaded = PDERefiner.load_from_checkpoint(
        checkpoint.last_model_path, net=make_net(3), optimizer=partial(torch.optim.Adam)
    )
    torch.testing.assert_close(flat_weights(loaded.net), ema, rtol=1e-5, atol=1e-6)
    assert loaded.field_std.item() != 1.0


# --------------------------------------------------------------------- learning
def test_training_lowers_the_loss_at_every_level(root):
    dm = TrajectoryDataModule(root, num_channels=1, time_history=1, batch_size=16)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    task = make_refiner(lr=3e-3)
    task.set_statistics(dm.statistics)
    history, future = batch["history"], batch["future"]
    n = history.shape[0]

    def level_losses():
        out = []
        with torch.no_grad():
            for k in range(4):
                gen = torch.Generator().manual_seed(123)  # the same noise each time
                levels = torch.full((n,), k)
                out.append(
                    task.refinement_loss(history, future, levels=levels, generator=gen)[
                        0
                    ]
                )
        return torch.stack(out)

    before = level_losses()
    optimizer = torch.optim.Adam(task.parameters(), lr=3e-3)
    torch.manual_seed(0)
    # The nearly clean levels (noise std 6e-4, 7e-3) start learning after ~150 steps.
    for _ in range(300):
        optimizer.zero_grad()
        task.refinement_loss(history, future)[0].backward()
        optimizer.step()
    after = level_losses()
    # Every level starts at ~1 (the v-target has unit variance) and at least halves.
    assert (before > 0.9).all() and (after < 0.6 * before).all(), (before, after)
    # The top level is the one-step prediction: well below predicting zero (~1).
    assert after[3] < 0.3, after


# --------------------------------------------------------------------- sampling
def test_sampling_is_reproducible_and_samples_differ():
    task = make_refiner()
    task.eval()
    history = torch.randn(2, 1, 1, NUM_POINTS)

    def draw(seed):
        return task.predict_next(history, generator=torch.Generator().manual_seed(seed))

    with torch.no_grad():
        torch.testing.assert_close(draw(5), draw(5), rtol=0, atol=0)
        assert (draw(5) - draw(6)).abs().max() > 1e-3
        trajectory = torch.randn(2, 4, 1, NUM_POINTS)
        runs = [
            task.rollout_samples(
                trajectory, num_samples=3, generator=torch.Generator().manual_seed(0)
            ).pred
            for _ in range(2)
        ]
    assert runs[0].shape == (3, 2, 3, 1, NUM_POINTS)
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    samples = runs[0]
    for i in range(3):
        for j in range(i):
            assert (samples[i] - samples[j]).abs().amin(dim=-1).min() > 0


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize("k", [-1, 1.5, True])
def test_negative_or_fractional_k_is_refused(k):
    with pytest.raises(
        ValueError, match="num_refinement_steps must be an integer >= 0"
    ):
        PDERefiner(
            make_net(3),
            partial(torch.optim.Adam),
            num_refinement_steps=k,
            num_channels=1,
            time_history=1,
        )


@pytest.mark.parametrize("value", [0.0, 1.0, -1e-3, 2.0])
def test_min_noise_outside_the_unit_interval_is_refused(value):
    with pytest.raises(ValueError, match=r"min_noise_variance must lie in \(0, 1\)"):
        make_refiner(min_noise_variance=value)


def test_a_backbone_without_conditioning_is_refused():
    with pytest.raises(ValueError, match="takes cond_dim=0; build it with cond_dim=1"):
        PDERefiner(
            make_net(3, cond_dim=0),
            partial(torch.optim.Adam),
            num_channels=1,
            time_history=1,
        )
    # Conditioned on the level and two PDE parameters: cond_dim must be 3.
    with pytest.raises(ValueError, match="build it with cond_dim=3"):
        PDERefiner(
            make_net(3, cond_dim=1),
            partial(torch.optim.Adam),
            num_channels=1,
            time_history=1,
            conditioning=["dt", "dx"],
        )


def test_difference_weight_needs_a_residual_target():
    with pytest.raises(ValueError, match="difference_weight"):
        make_refiner(difference_weight=0.3, residual=False)
    task = make_refiner(difference_weight=0.3)
    task.set_statistics({"mean": [0.0], "std": [1.0], "delta_std": [0.05]})
    history, future = torch.zeros(1, 1, 1, 4), torch.full((1, 1, 1, 4), 0.3)
    torch.testing.assert_close(
        task.encode_target(future, history), torch.ones(1, 1, 1, 4)
    )


def test_validation_noise_depends_on_the_batch_only(root):
    # Per-batch seeded noise: a batch's validation loss is the same whatever ran
    # before it (e.g. another limit_val_batches), and evaluation leaves the global
    # generator, which training draws from, untouched.
    dm = TrajectoryDataModule(root, num_channels=1, time_history=1, batch_size=2)
    dm.setup("fit")
    task = make_refiner()
    task.set_statistics(dm.statistics)
    task.eval()
    batches = list(dm.val_dataloader()[0])
    assert len(batches) >= 2

    def loss_of(index: int) -> float:
        metric = task.metrics["val_loss"]
        metric.reset()
        task.validation_step(batches[index], index, 0)
        return float(metric.compute())

    torch.manual_seed(1)
    after_first = [loss_of(0), loss_of(1)][1]
    torch.manual_seed(2)
    state = torch.get_rng_state()
    alone = loss_of(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert alone == after_first
    assert loss_of(0) != alone


# --------------------------------------------------------- diagnostics (issue 22)
BENCH = (
    Path(__file__).resolve().parents[2] / "scripts" / "bench" / "bench_refiner_ks.py"
)


@pytest.fixture(scope="module")
def bench():
    """``scripts/bench/bench_refiner_ks.py`` as a module (its diagnostics)."""
    spec = importlib.util.spec_from_file_location("bench_refiner_ks", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_first_estimate_then_refine_is_the_sampler():
    task = make_refiner(seed=3)
    task.eval()
    history = torch.randn(2, 1, 1, NUM_POINTS)
    with torch.no_grad():
        sample = task.predict_next(history, generator=torch.Generator().manual_seed(4))
        generator = torch.Generator().manual_seed(4)
        first = task.first_estimate(history, generator=generator)
        refined = task.refine(history, first, generator=generator)
    torch.testing.assert_close(refined, sample, rtol=0, atol=1e-6)
    assert (first - sample).abs().max() > 1e-4  # refinement did change something


class _TopLevelOracle(nn.Module):
    """Exact v at levels k < K; at k = K the truth plus a known error (and a small
    multiple of the pure-noise input, so that the call varies over noise draws)."""

    cond_dim = 1

    def __init__(self, y, error, noise_gain):
        super().__init__()
        self.y, self.error, self.noise_gain = y, error, noise_gain
        self.alpha_bar = refinement_schedule(3)

    def forward(self, x, cond):
        k = int(round(cond[0, 0].item() * 3 / 1000))
        noisy, a = x[:, 1:], self.alpha_bar[k]
        if k == 3:  # y0_hat = -v at the top level
            return -(self.y + self.error + self.noise_gain * noisy)
        eps = (noisy - a.sqrt() * self.y) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * self.y


def test_band_errors_of_the_top_level_call_on_a_known_spectrum(bench):
    # 256 points, the bench's bands (0-7, 8-23, 24-63, 64-128). In target units the
    # k = K call errs by a sine of amplitude 2 at wavenumber 3 and one of amplitude
    # 0.5 at wavenumber 40 (mean-square 2 and 0.125); the physical error is 0.3 times
    # that (difference_weight), so its power is 0.09 x [2, 0, 0.125, 0]. Refinement by
    # exact lower levels removes it; an "MSE model" erring at wavenumber 100 is
    # refined to the truth as well.
    n, points, gain = 16, 256, 1e-2
    torch.manual_seed(0)
    x = torch.arange(points, dtype=torch.float64) / points
    y = torch.randn(n, 1, points, dtype=torch.float64).cumsum(-1) / 10
    error = 2 * torch.sin(2 * torch.pi * 3 * x) + 0.5 * torch.cos(2 * torch.pi * 40 * x)
    task = make_refiner(difference_weight=0.3).double()
    task.net = _TopLevelOracle(y, error.expand(n, 1, points), gain)
    task.set_statistics({"mean": [0.0], "std": [1.0], "delta_std": [1.0]})
    history = torch.zeros(n, 1, 1, points, dtype=torch.float64)
    future = 0.3 * y[:, None]

    class ErringModel:
        def predict_next(self, history, params=None):
            return future + 0.3 * 0.1 * torch.sin(2 * torch.pi * 100 * x)

    windows = {"history": history, "future": future, "params": None}
    out = bench.one_step_diagnostics(task, windows, ErringModel(), draws=8)
    errors = out["band_errors"]
    expected = 0.09 * torch.tensor([2.0, 0.0, 0.125, 0.0], dtype=torch.float64)
    # The noise term adds ~0.09 gain^2 (white, 1e-5 of the total) spread over bands.
    torch.testing.assert_close(
        torch.tensor(errors["k_top"], dtype=torch.float64),
        expected,
        rtol=1e-3,
        atol=2e-5,
    )
    for exact in ("refined", "mse_refined", "truth_refined"):
        assert max(errors[exact]) < 1e-20, exact
    torch.testing.assert_close(
        torch.tensor(errors["mse"], dtype=torch.float64),
        torch.tensor([0.0, 0.0, 0.0, 0.09 * 0.01 / 2], dtype=torch.float64),
        rtol=1e-9,
        atol=1e-20,
    )
    assert out["one_step_mse"]["k_top"] == pytest.approx(sum(errors["k_top"]))
    # Over noise draws the call varies by 0.3 gain eps: white noise of variance
    # 0.09 gain^2, i.e. a share (2 x modes) / 256 of it per band (one k = 0 and one
    # Nyquist mode count once).
    modes = torch.tensor([15.0, 32.0, 80.0, 129.0], dtype=torch.float64)
    torch.testing.assert_close(
        torch.tensor(out["k_top_noise_variance"], dtype=torch.float64),
        0.09 * gain**2 * modes / points,
        rtol=0.15,
        atol=0,
    )


def test_gradient_shares_smoke(root, bench):
    # Smoke test: the diagnostic runs on a datamodule and returns proper shares.
    dm = TrajectoryDataModule(root, num_channels=1, time_history=1, batch_size=4)
    dm.setup("fit")
    task = make_refiner(level_probabilities=[0.2, 0.2, 0.2, 0.4])
    task.set_statistics(dm.statistics)
    out = bench.gradient_shares(task, dm, batches=3, batch_size=10)
    assert sum(out["second_moment_share"]) == pytest.approx(1.0)
    assert all(0 < s < 1 for s in out["second_moment_share"])
    assert all(s <= 1 + 1e-9 for s in out["signal_fraction"])
    assert out["level_probabilities"] == [0.2, 0.2, 0.2, 0.4]
    assert all(p.grad is None or not p.grad.any() for p in task.parameters())


# --------------------------------------------------------- training levels
def test_level_probabilities_set_how_often_each_level_trains():
    task = make_refiner(level_probabilities=[0.1, 0.1, 0.3, 0.5])
    generator = torch.Generator().manual_seed(0)
    levels = task.draw_levels(40_000, torch.device("cpu"), generator)
    frequencies = torch.bincount(levels, minlength=4) / 40_000
    torch.testing.assert_close(
        frequencies, torch.tensor([0.1, 0.1, 0.3, 0.5]), rtol=0, atol=0.01
    )
    # Without them, uniform (the paper), drawn as before.
    uniform = make_refiner().draw_levels(8, torch.device("cpu"), None)
    assert uniform.min() >= 0 and uniform.max() <= 3


@pytest.mark.parametrize(
    "probabilities", [[0.5, 0.5], [0.0, 0.2, 0.3, 0.5], [0.3, 0.3, 0.3, 0.3]]
)
def test_bad_level_probabilities_are_refused(probabilities):
    with pytest.raises(ValueError, match="level_probabilities must give K \\+ 1 = 4"):
        make_refiner(level_probabilities=probabilities)


def test_refiner_configs_build_the_pdearena_backbone(tmp_path):
    # Fixed-phase down-sampling, zero last convolutions, 8 output groups in the
    # refiner experiments (ks1d_refiner_weighted is ks1d_refiner with other level
    # draws, so both ks1d configs are covered).
    for experiment in ["ks1d_refiner_weighted", "ns2d_refiner"]:
        cfg = compose_train([f"+experiment={experiment}"], tmp_path)
        net = instantiate(cfg.model.net)
        assert not net.adaptive_phase and net.out_norm.num_groups == 8
        out = net(
            torch.randn(2, net.lift.in_channels, *[16] * net.spatial_dims),
            torch.randn(2, net.cond_dim),
        )
        assert torch.equal(out, torch.zeros_like(out)), experiment
        probabilities = cfg.model.level_probabilities
        if experiment == "ks1d_refiner_weighted":
            assert list(probabilities) == pytest.approx([1 / 6, 1 / 6, 1 / 6, 0.5])
        else:
            assert probabilities is None
