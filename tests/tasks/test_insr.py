"""INSR on 1-D advection: the fit, the tracking of the exact solution, checkpoints,
and the bad-input messages."""

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from physim.models import SIREN
from physim.solvers import Advection1D, GaussianPulse
from physim.tasks import INSR, AdvectionProblem, InviscidFluidProblem

DT = 0.05
STEPS = 20


pytestmark = pytest.mark.usefixtures("single_thread")


def exact_frames(times, num_points=256):
    """INSR's Gaussian, advected exactly: ``[T, 1, N]`` and the grid."""
    x = Advection1D(num_points=num_points).coordinates()["x"]
    pulse = GaussianPulse(num_points)
    frames = torch.stack([pulse.profile(x - 0.25 * t)[None] for t in times])
    return frames.float(), x


def make_task(width=20, hidden=2, **kwargs):
    torch.manual_seed(0)
    settings = {
        "dt": DT,
        "lr": 1e-4,
        "max_iterations": 50,
        "initial_lr": 3e-3,
        "initial_iterations": 4000,
        "factor": 0.5,
        "patience": 300,
        "num_points": 500,
    } | kwargs
    return INSR({"u": SIREN(1, 1, width, hidden)}, AdvectionProblem(), **settings)


@pytest.fixture(scope="module")
def solved():
    """The paper's 901-parameter SIREN, 20 midpoint steps at reduced iterations
    (4000 for the initial fit, 50 per step instead of up to 20000, 500 points instead
    of 5000)."""
    times = [DT * k for k in range(STEPS + 1)]
    truth, x = exact_frames(times)
    task = make_task()
    task.configure_reference(truth[0], [x], times)
    pred, nonfinite = task.rollout(truth[None])
    return task, pred[0], truth, nonfinite


def relative_l2(a, b):
    return float((a - b).norm() / b.norm())


def test_fitted_siren_reproduces_the_initial_gaussian(solved):
    task, _, truth, _ = solved
    assert task.num_parameters == 901
    initial = task.frames[0]
    assert relative_l2(initial, truth[0]) <= 1e-3


def test_advection_tracks_the_exact_solution_for_20_steps(solved):
    task, pred, truth, nonfinite = solved
    assert int(nonfinite) == -1
    errors = [relative_l2(pred[k], truth[k + 1]) for k in range(STEPS)]
    assert errors[-1] <= 0.05
    # The pulse moved 0.25 (2.5 widths): a field left in place would be far off.
    assert relative_l2(truth[0], truth[-1]) > 1.0
    # The task's own exact check agrees with the frame comparison.
    assert task.step_index == STEPS
    assert task.exact_error() == pytest.approx(errors[-1], rel=1e-3)


# ---------------------------------------------------------------------- checkpoints
def tiny_task(seed):
    task = make_task(
        width=8,
        hidden=1,
        max_iterations=4,
        initial_iterations=10,
        num_points=64,
        num_boundary_points=4,
        lr=1e-3,
    )
    torch.manual_seed(seed)  # other weights: a resume must restore them
    for p in task.fields.parameters():
        p.data.uniform_(-0.1, 0.1)
    return task


def clock_trainer(tmp_path, max_epochs):
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)],
    )


def test_an_interrupted_run_resumes_at_the_same_step(tmp_path):
    times = [DT * k for k in range(7)]  # 6 steps: 7 training steps with the fit
    truth, x = exact_frames(times, num_points=64)
    clock = DataLoader(range(2))  # 2 training steps per epoch; the batch is a clock

    uninterrupted = tiny_task(seed=1)
    uninterrupted.configure_reference(truth[0], [x], times)
    clock_trainer(tmp_path / "a", max_epochs=-1).fit(uninterrupted, clock)
    assert uninterrupted.step_index == 6 and len(uninterrupted.frames) == 7

    interrupted = tiny_task(seed=1)
    interrupted.configure_reference(truth[0], [x], times)
    clock_trainer(tmp_path / "b", max_epochs=2).fit(interrupted, clock)
    assert interrupted.step_index == 3  # fit + 3 steps, then "killed"
    ckpt = tmp_path / "b" / "last.ckpt"

    # The checkpoint holds the field and the step.
    restored = INSR.load_from_checkpoint(
        ckpt, fields={"u": SIREN(1, 1, 8, 1)}, problem=AdvectionProblem()
    )
    assert restored.step_index == 3
    points = torch.linspace(-2, 2, 33)[:, None]
    assert torch.equal(restored.evaluate(points), interrupted.evaluate(points))
    assert torch.equal(torch.stack(restored.frames), torch.stack(interrupted.frames))

    # A fresh task with other weights, resumed, continues at step 4 and ends where the
    # uninterrupted run ended.
    resumed = tiny_task(seed=2)
    resumed.configure_reference(truth[0], [x], times)
    clock_trainer(tmp_path / "c", max_epochs=-1).fit(resumed, clock, ckpt_path=ckpt)
    assert resumed.step_index == 6
    torch.testing.assert_close(
        torch.stack(resumed.frames), torch.stack(uninterrupted.frames)
    )


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dt": 0.0}, "dt must be a positive number, got 0.0"),
        ({"dt": -0.05}, "dt must be a positive number"),
        ({"max_iterations": 0}, "max_iterations must be a positive integer, got 0"),
        ({"initial_iterations": -3}, "initial_iterations must be a positive integer"),
        ({"max_iterations": 2.5}, "max_iterations must be a positive integer"),
    ],
)
def test_bad_step_and_iteration_counts_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_task(**kwargs)


def test_unknown_integrator_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown integrator 'rk4'.*midpoint"):
        AdvectionProblem(integrator="rk4")


def test_metrics_without_a_reference_solution_are_refused():
    task = make_task()
    with pytest.raises(ValueError, match="no reference times"):
        task.rollout(torch.zeros(1, 3, 1, 16))
    fluid = INSR(
        {"velocity": SIREN(2, 2, 8, 1), "pressure": SIREN(2, 1, 8, 1)},
        InviscidFluidProblem(),
        dt=DT,
    )
    with pytest.raises(ValueError, match="InviscidFluidProblem has no exact solution"):
        fluid.exact_error()


def test_output_interval_must_be_a_multiple_of_dt():
    truth, x = exact_frames([0.0, 0.07])
    with pytest.raises(ValueError, match="not a multiple of dt=0.05"):
        make_task().configure_reference(truth[0], [x], [0.0, 0.07])


def test_a_diverged_rollout_counts_in_the_test_metrics(monkeypatch):
    # Two trajectories; the first turns non-finite at step 2. It must count (with the
    # persistence error or 1 from there) instead of leaving the average.
    task = make_task()
    truth = torch.linspace(0.0, 1.0, 2 * 4 * 16).reshape(2, 4, 1, 16) + 1.0
    pred = truth[:, 1:].clone()
    pred[0, 1:] = float("nan")
    first_nonfinite = torch.tensor([1, -1])
    monkeypatch.setattr(task, "rollout_batch", lambda batch: (pred, first_nonfinite))
    task.on_test_epoch_start()
    task.test_step({"trajectory": truth}, 0, dataloader_idx=1)
    values = task.rollout_metrics.compute()
    assert values["rollout_nonfinite"] == 1
    assert values["rollout_rel_l2_finite"] == 0  # the surviving rollout is exact
    assert values["rollout_rel_l2"] > 0.1  # the diverged one counts
