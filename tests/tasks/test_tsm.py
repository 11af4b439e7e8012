"""TemporalStencilModel: gradients, bundling, base-scheme identity, update skipping,
the vorticity-correlation metrics, and bad input."""

import math
from functools import partial

import pytest
import torch
from torch.func import functional_call

from physim.models import HiPPO, LearnedInterpolation
from physim.rollout import metrics
from physim.solvers import (
    FilteredVelocityField,
    FiniteVolumeNS2D,
    KolmogorovForcing,
    LinearVanLeerInterpolation,
)
from physim.tasks import SkippedUpdatesError, TemporalStencilModel

N = 8


pytestmark = pytest.mark.usefixtures("single_thread")


def make_task(encoder=None, bundle=1, time_history=1, perturb=True, n=N):
    solver = FiniteVolumeNS2D(n, forcing=KolmogorovForcing(), dtype="float64")
    in_channels = 2 if encoder is None else 2 * encoder.state_size
    torch.manual_seed(0)
    net = LearnedInterpolation(
        in_channels, hidden_channels=4, num_layers=1, bundle=bundle
    )
    if perturb:
        torch.nn.init.normal_(net.cnn[-1].weight, std=0.05)
    task = TemporalStencilModel(
        net,
        solver,
        partial(torch.optim.AdamW, lr=1e-2),
        encoder=encoder,
        dt=0.5 * solver.grid_spacing / 7,
        time_history=time_history,
    )
    return task.double()


def trajectory(frames, n=N, count=2):
    field = FilteredVelocityField(n, peak_wavenumber=2)
    v = field.sample(
        count, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    solver = FiniteVolumeNS2D(n, forcing=KolmogorovForcing(), dtype="float64")
    out = [v]
    for _ in range(frames - 1):
        out.append(solver.advance(out[-1], 0.5 * solver.grid_spacing / 7))
    return torch.stack(out, dim=1)


@pytest.mark.parametrize(
    ("encoder", "bundle", "history"), [(None, 1, 1), (HiPPO(3, "lagt"), 2, 3)]
)
def test_gradient_through_an_unroll_matches_finite_differences(
    encoder, bundle, history
):
    # Directional derivatives of the unrolled training loss (float64, with gradient
    # checkpointing) along random directions in the prefix and in every network
    # parameter: autograd against central finite differences.
    task = make_task(encoder.double() if encoder else None, bundle, history).train()
    prefix = trajectory(history)
    future = trajectory(history + 3)[:, history:] + 0.1
    names = [name for name, _ in task.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in task.parameters()]
    start = prefix.clone().requires_grad_(True)

    def loss(start, params):
        pred = functional_call(task, dict(zip(names, params, strict=True)), (start, 3))
        return torch.nn.functional.mse_loss(pred, future)

    grads = torch.autograd.grad(loss(start, params), [start, *params])
    generator = torch.Generator().manual_seed(1)
    eps = 1e-6
    for _ in range(3):
        dirs = [torch.randn(g.shape, generator=generator, dtype=g.dtype) for g in grads]
        autograd = sum(float((g * d).sum()) for g, d in zip(grads, dirs, strict=True))
        with torch.no_grad():
            shifted = [
                loss(
                    start + s * dirs[0],
                    [p + s * d for p, d in zip(params, dirs[1:], strict=True)],
                )
                for s in (eps, -eps)
            ]
        finite_difference = float(shifted[0] - shifted[1]) / (2 * eps)
        assert abs(autograd) > 1e-3
        assert finite_difference == pytest.approx(autograd, rel=1e-6)


def test_checkpointed_training_gradients_equal_plain_ones():
    task = make_task(HiPPO(3).double(), bundle=2, time_history=3)
    batch = {"history": trajectory(3), "future": trajectory(8)[:, 3:]}
    grads = []
    for mode in (True, False):
        task.train(mode)
        task.zero_grad()
        loss, _ = task.model_step(batch)
        loss.backward()
        grads.append([p.grad.clone() for p in task.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_untrained_li_is_the_coarse_solver_with_van_leer_on_linear_faces():
    # Zero logits give linear stencils (jax-cfd's PolynomialConstraint bias), limited
    # by van Leer as in the reference's learned interpolation: the coarse solver with
    # LinearVanLeerInterpolation, not jax-cfd's van Leer scheme (van Leer on
    # Lax-Wendroff, VanLeerInterpolation), which needs a trained correction.
    task = make_task(perturb=False, n=16).eval()
    truth = trajectory(6, n=16)
    with torch.no_grad():
        pred, first_nonfinite = task.rollout(truth)
    solver = FiniteVolumeNS2D(
        16,
        forcing=KolmogorovForcing(),
        interpolation=LinearVanLeerInterpolation(),
        dtype="float64",
    )
    v = truth[:, 0]
    for k in range(5):
        v = solver.advance(v, task.hparams.dt)
        assert torch.equal(pred[:, k], v)
    assert first_nonfinite.tolist() == [-1, -1]


def test_bundling_calls_the_network_once_per_bundle_and_tracks_every_frame():
    encoder = HiPPO(4).double()
    task = make_task(encoder, bundle=4, time_history=3).eval()
    calls = []
    task.net.register_forward_hook(lambda *args: calls.append(1))
    truth = trajectory(3 + 10)
    with torch.no_grad():
        carry = task.start(truth[:, :3])
        pred = task.advance(carry, 10)
    assert len(calls) == math.ceil(10 / 4) and pred.shape[1] == 10
    # The carried memory is that of the whole sequence: prefix and predictions.
    torch.testing.assert_close(
        carry.state,
        encoder(torch.cat([truth[:, :3], pred], dim=1)),
        rtol=1e-9,
        atol=1e-9,
    )
    assert carry.index == 13


def test_non_finite_updates_are_skipped():
    task = make_task()
    optimizer = task.configure_optimizers()
    before = [p.detach().clone() for p in task.parameters()]
    bad = trajectory(2)
    bad[:, 0, 0, 0, 0] = math.nan
    # The loss comes back (never None: under DDP every rank must run backward).
    loss = task.training_step({"history": bad[:, :1], "future": bad[:, 1:]}, 0)
    assert not torch.isfinite(loss)
    loss.backward()
    task.on_before_optimizer_step(optimizer)
    optimizer.step()
    assert all(
        torch.equal(a, b) for a, b in zip(before, task.parameters(), strict=True)
    )
    assert task.skipped_updates == 1
    # Finite gradients are kept and applied.
    for p in task.parameters():
        p.grad = torch.ones_like(p)
    task.on_before_optimizer_step(optimizer)
    optimizer.step()
    assert not torch.equal(before[0], task.get_parameter("net.cnn.0.weight"))
    assert (task.skipped_updates, task.attempted_updates) == (1, 2)


def test_too_many_skipped_updates_stop_the_run():
    task = make_task()
    task.hparams.max_skipped_fraction = 0.1  # 0.1 * max(updates, 20): 2 allowed
    optimizer = task.configure_optimizers()

    def skip():
        for p in task.parameters():
            p.grad = torch.full_like(p, math.nan)
        task.on_before_optimizer_step(optimizer)

    skip()
    skip()
    with pytest.raises(SkippedUpdatesError, match="3 of 3 updates were skipped"):
        skip()


def test_bad_input_is_rejected_at_construction():
    solver = FiniteVolumeNS2D(32)
    net = LearnedInterpolation(2, hidden_channels=4, num_layers=1)
    optimizer = partial(torch.optim.AdamW)
    with pytest.raises(ValueError, match="Courant number"):
        TemporalStencilModel(net, solver, optimizer, dt=0.1, time_history=1)
    with pytest.raises(ValueError, match="time_history=4"):
        TemporalStencilModel(net, solver, optimizer, dt=0.01, time_history=4)
    task = TemporalStencilModel(net, solver, optimizer, dt=0.01, time_history=1)
    with pytest.raises(ValueError, match=r"\[B, T, 2, 32, 32\].*store_points"):
        task(torch.zeros(1, 1, 2, 16, 16), 1)


# ------------------------------------------------------------------ metrics
def test_cosine_correlation_keeps_the_mean():
    torch.manual_seed(0)
    target = torch.randn(2, 3, 1, 8, 8)
    assert torch.allclose(
        metrics.cosine_correlation(3 * target, target), torch.ones(2, 3)
    )
    shifted = target + 5.0
    assert (metrics.cosine_correlation(shifted, target) < 0.5).all()
    torch.testing.assert_close(
        metrics.pearson_correlation(shifted, target), torch.ones(2, 3)
    )


def test_vorticity_correlation_of_staggered_velocities():
    velocity = trajectory(2, n=16).float()
    uniform = velocity + torch.tensor([1.0, -2.0]).view(1, 1, 2, 1, 1)
    # A uniform flow has no vorticity: adding one changes nothing.
    torch.testing.assert_close(
        metrics.vorticity_correlation(uniform, velocity), torch.ones(2, 2)
    )
    flipped = -velocity
    torch.testing.assert_close(
        metrics.vorticity_correlation(flipped, velocity), -torch.ones(2, 2)
    )
    with pytest.raises(ValueError, match=r"\[B, T, 2, X, Y\]"):
        metrics.vorticity_correlation(velocity[:, :, :1], velocity[:, :, :1])


def test_highly_correlated_duration_counts_mean_correlation_above_threshold():
    corr = torch.tensor(
        [[1.0, 0.9, 0.85, 0.7, 0.95, 0.5], [1.0, 0.9, 0.75, 0.7, 0.85, 0.5]]
    )
    # Sample means: 1, .9, .8, .7, .9, .5 -> steps 0, 1, 4 exceed 0.8 (0.8 does not).
    assert float(metrics.highly_correlated_duration(corr, dt=0.5)) == 1.5
    # A horizon of 1 time unit keeps the first two steps only.
    assert float(metrics.highly_correlated_duration(corr, dt=0.5, horizon=1.0)) == 1.0
    with pytest.raises(ValueError, match="dt must be > 0"):
        metrics.highly_correlated_duration(corr, dt=0.0)
