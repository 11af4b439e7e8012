"""Autoregressive BPTT training: gradients reach the first step of an unroll, and
match finite differences (float64); gradient checkpointing changes nothing."""

from functools import partial

import pytest
import torch
from torch.func import functional_call

from physim.tasks import AutoregressiveSurrogate, RelativeL2Loss

pytestmark = pytest.mark.usefixtures("single_thread")


def make_task(pushforward: bool, checkpointing: bool = False, reduction="sum"):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, padding_mode="circular"),
        torch.nn.Tanh(),
        torch.nn.Conv2d(4, 1, 3, padding=1, padding_mode="circular"),
    ).double()
    return AutoregressiveSurrogate(
        net,
        partial(torch.optim.SGD, lr=0.0),
        loss=RelativeL2Loss(reduction="sum"),
        num_channels=1,
        time_history=2,
        residual=False,
        normalize=False,
        pushforward=pushforward,
        unroll_reduction=reduction,
        gradient_checkpointing=checkpointing,
    ).double()


def batch():
    generator = torch.Generator().manual_seed(1)
    frames = torch.randn(2, 6, 1, 8, 8, generator=generator, dtype=torch.float64)
    return {"history": frames[:, :2], "future": frames[:, 2:]}  # a 4-step unroll


def loss_of(task, history, params):
    names = [n for n, _ in task.named_parameters()]
    state = dict(zip(names, params, strict=True))
    data = {"history": history, "future": batch()["future"]}
    return functional_call(task, state, (data,), {}, strict=False, tie_weights=False)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_bptt_gradient_matches_finite_differences(checkpointing):
    task = make_task(pushforward=False, checkpointing=checkpointing).train()
    task.forward = lambda data: task.model_step(data)[0]  # the training loss
    history = batch()["history"].requires_grad_(True)
    params = [p.detach().clone().requires_grad_(True) for p in task.parameters()]
    grads = torch.autograd.grad(loss_of(task, history, params), [history, *params])
    # The loss of steps 2-4 reaches the history only through step 1's prediction.
    assert grads[0].abs().sum() > 0
    generator = torch.Generator().manual_seed(2)
    directions = [torch.randn_like(t, generator=generator) for t in (history, *params)]
    autograd = sum((g * d).sum() for g, d in zip(grads, directions, strict=True))
    eps = 1e-6
    with torch.no_grad():
        shifted = [
            loss_of(
                task,
                history + sign * eps * directions[0],
                [
                    p + sign * eps * d
                    for p, d in zip(params, directions[1:], strict=True)
                ],
            )
            for sign in (1, -1)
        ]
    finite_difference = (shifted[0] - shifted[1]) / (2 * eps)
    assert float(finite_difference) == pytest.approx(float(autograd), rel=1e-6)


def test_pushforward_keeps_no_gradient_through_the_first_steps():
    # The negative control: pushforward trains on the last call only, so the
    # gradient never reaches the history through the earlier predictions.
    task = make_task(pushforward=True).train()
    data = batch()
    data["history"].requires_grad_(True)
    loss, _, _ = task.model_step(data)
    (grad,) = torch.autograd.grad(loss, data["history"], allow_unused=True)
    assert grad is None or grad.abs().sum() == 0


def test_sum_reduction_is_the_scripts_summed_loss():
    task = make_task(pushforward=False, reduction="sum").train()
    mean_task = make_task(pushforward=False, reduction="mean").train()
    loss, pred, target = task.model_step(batch())
    mean_loss, _, _ = mean_task.model_step(batch())
    # Sum over 4 steps of the per-step relative L2 summed over the 2 samples.
    per_step = (pred - target).flatten(2).norm(dim=2) / target.flatten(2).norm(dim=2)
    assert float(loss) == pytest.approx(float(per_step.sum()), rel=1e-6)
    assert float(mean_loss) == pytest.approx(float(per_step.sum()) / 4, rel=1e-6)
