"""The rollout engine against exact recurrences, a solver and the non-finite rules."""

import math

import pytest
import torch

from physim.rollout import RolloutResult, as_window_stepper, rollout
from physim.timestepping import ConstantStep, StepResult, integrate

DTYPE = torch.float64


def initial_frames(b=2, t=1, c=1, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, c, n, generator=gen, dtype=DTYPE)


def test_frame_stepper_rollout_is_the_exact_geometric_sequence():
    u0 = initial_frames()
    result = rollout(as_window_stepper(lambda u: 0.5 * u), u0, 6)
    assert isinstance(result, RolloutResult)
    assert result.pred.shape == (2, 6, 1, 4)
    expected = torch.stack([0.5 ** (k + 1) * u0[:, 0] for k in range(6)], dim=1)
    torch.testing.assert_close(result.pred, expected, rtol=1e-15, atol=0)
    assert result.first_nonfinite.tolist() == [-1, -1]
    assert result.first_nonfinite.dtype == torch.long


def test_window_slides_two_frame_recurrence():
    """u_{n+1} = u_n + u_{n-1} (Fibonacci) needs the whole two-frame window."""
    initial = torch.tensor([1.0, 1.0], dtype=DTYPE).reshape(1, 2, 1)

    def step(window):
        assert window.shape == (1, 2, 1)
        return (window[:, -1] + window[:, -2]).unsqueeze(1)

    pred = rollout(step, initial, 8).pred
    assert pred.flatten().tolist() == [2, 3, 5, 8, 13, 21, 34, 55]


def test_multi_frame_output_advances_by_t_out_and_drops_the_surplus():
    calls = []

    def step(window):  # T_in = 2, T_out = 3: next frames continue the count
        calls.append(window[0, :, 0].tolist())
        last = window[:, -1:]
        return torch.cat([last + 1, last + 2, last + 3], dim=1)

    initial = torch.tensor([0.0, 1.0], dtype=DTYPE).reshape(1, 2, 1)
    pred = rollout(step, initial, 7).pred
    assert pred.flatten().tolist() == [2, 3, 4, 5, 6, 7, 8]  # 9 frames made, 7 kept
    # Windows are the last two frames of cat(window, new).
    assert calls == [[0, 1], [3, 4], [6, 7]]


def test_output_longer_than_window_keeps_the_last_frames():
    seen = []

    def step(window):  # T_in = 1, T_out = 3
        seen.append(window.flatten().tolist())
        return window + torch.arange(1, 4, dtype=DTYPE).reshape(1, 3, 1)

    pred = rollout(step, torch.zeros(1, 1, 1, dtype=DTYPE), 6).pred
    assert pred.flatten().tolist() == [1, 2, 3, 4, 5, 6]
    assert seen == [[0.0], [3.0]]


def test_history_selects_the_last_frames_and_include_initial_prepends_all():
    initial = torch.arange(5, dtype=DTYPE).reshape(1, 5, 1)

    def step(window):
        assert window.shape[1] == 2
        return window[:, -1:] + window[:, -2:-1]  # sum of the last two

    result = rollout(step, initial, 3, history=2, include_initial=True)
    assert result.pred.flatten().tolist() == [0, 1, 2, 3, 4, 7, 11, 18]
    # first_nonfinite counts predicted frames, whether or not the initial is prepended
    assert result.first_nonfinite.tolist() == [-1]


def test_zero_steps_gives_an_empty_prediction():
    u0 = initial_frames()
    assert rollout(as_window_stepper(lambda u: u), u0, 0).pred.shape == (2, 0, 1, 4)
    full = rollout(as_window_stepper(lambda u: u), u0, 0, include_initial=True).pred
    assert torch.equal(full, u0)


def test_nonfinite_trajectory_is_reported_and_others_continue():
    k = 3

    def step(window):
        out = window[:, -1:] * 2.0
        # Step s predicts 2**(s + 1); trajectory 1 goes NaN from step k on.
        out[1] = torch.where(out[1] >= 2.0 ** (k + 1), math.nan, out[1])
        return out

    initial = torch.ones(3, 1, 1, 2, dtype=DTYPE)
    result = rollout(step, initial, 6)
    assert result.first_nonfinite.tolist() == [-1, k, -1]
    assert torch.isnan(result.pred[1, k:]).all()
    expected = torch.tensor([2.0**s for s in range(1, 7)], dtype=DTYPE)
    torch.testing.assert_close(result.pred[0, :, 0, 0], expected)
    torch.testing.assert_close(result.pred[2, :, 0, 0], expected)


def test_check_finite_off_claims_nothing_and_initial_must_be_finite():
    initial = torch.ones(2, 1, 1, dtype=DTYPE)
    result = rollout(
        as_window_stepper(lambda u: u * math.nan), initial, 2, check_finite=False
    )
    assert result.first_nonfinite is None
    initial[1, 0, 0] = math.inf
    with pytest.raises(
        ValueError, match=r"initial holds NaN/Inf in trajectory\(ies\) \[1\]"
    ):
        rollout(as_window_stepper(lambda u: u), initial, 2)


def test_gradients_follow_the_ambient_grad_mode():
    a = torch.tensor(0.9, dtype=DTYPE, requires_grad=True)
    u0 = initial_frames(b=1)
    n = 5
    pred = rollout(as_window_stepper(lambda u: a * u), u0, n).pred
    (grad,) = torch.autograd.grad(pred[:, -1].sum(), a)
    # d/da (a^n u0) = n a^(n-1) u0
    expected = n * a.detach() ** (n - 1) * u0.sum()
    torch.testing.assert_close(grad, expected)
    with torch.no_grad():
        assert not rollout(as_window_stepper(lambda u: a * u), u0, n).pred.requires_grad


class ExactDecay:
    """y' = -y advanced exactly, a stand-in for a numerical solver's stepper."""

    order = 1

    def step(self, y, t, dt):
        return StepResult(y * math.exp(-dt))


def test_a_solver_shares_the_rollout_through_as_window_stepper():
    interval = 0.1

    def advance(u):
        return integrate(ExactDecay(), ConstantStep(0.025), u, 0.0, interval).ys[:, -1]

    u0 = initial_frames(b=2, c=2, n=3)
    pred = rollout(as_window_stepper(advance), u0, 4, progress=True).pred
    for k in range(4):
        torch.testing.assert_close(pred[:, k], u0[:, 0] * math.exp(-(k + 1) * interval))


def test_dtype_and_device_follow_the_step_function():
    u0 = initial_frames().float()
    result = rollout(as_window_stepper(lambda u: u + 1), u0, 2)
    assert result.pred.dtype == torch.float32
    assert result.pred.device == u0.device
    assert result.first_nonfinite.device == u0.device


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_steps": -1}, "n_steps must be an integer >= 0"),
        ({"n_steps": 2.0}, "n_steps must be an integer >= 0"),
        ({"n_steps": 2, "history": 3}, r"history must be an integer in \[1, 2\]"),
        ({"n_steps": 2, "history": 0}, r"history must be an integer in \[1, 2\]"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rollout(lambda w: w[:, -1:], initial_frames(t=2), **kwargs)


def test_wrong_step_output_shapes_are_explained():
    u0 = initial_frames()
    with pytest.raises(ValueError, match="as_window_stepper"):
        rollout(lambda w: w[:, -1], u0, 2)  # frame-to-frame callable passed directly
    with pytest.raises(ValueError, match="at least one frame"):
        rollout(lambda w: w[:, :0], u0, 2)
    with pytest.raises(ValueError, match="initial must be a tensor"):
        rollout(lambda w: w, torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match="frame_fn mapped a frame of shape"):
        rollout(as_window_stepper(lambda u: u[..., :2]), u0, 2)
