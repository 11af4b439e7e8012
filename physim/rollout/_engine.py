"""The rollout engine: one autoregressive loop for solvers, surrogates and hybrids.

A *window stepper* maps a history window ``[B, T_in, C, *space]`` to the next
``T_out >= 1`` frames ``[B, T_out, C, *space]``. :func:`rollout` calls it
repeatedly, sliding the window, and :func:`as_window_stepper` turns any state-to-state
callable (a numerical solver advanced over one output interval, a one-frame network)
into a window stepper, so there is only ever one rollout loop (as exponax's ``rollout``
and jax-cfd's ``trajectory`` serve both solvers and networks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor

from physim._progress import Progress

from .metrics import first_nonfinite_step

__all__ = ["RolloutResult", "as_window_stepper", "rollout"]


class RolloutResult(NamedTuple):
    """What :func:`rollout` returns.

    Attributes:
        pred: the predicted frames ``[B, n_steps, C, *space]`` (with the initial window
            prepended when ``include_initial=True``).
        first_nonfinite: per trajectory, the index ``k`` of the first *predicted*
            frame holding a NaN or Inf (``k`` counts predicted frames from 0, whether or
            not the initial window was prepended), or -1 if the trajectory stayed
            finite. ``None`` when the rollout ran with ``check_finite=False`` (not
            checked, so not claimed finite).
    """

    pred: Tensor
    first_nonfinite: Int[Tensor, " B"] | None


def _check_output(out: object, window: Tensor, call: int) -> Tensor:
    expected = (window.shape[0], "T_out", *window.shape[2:])
    if not isinstance(out, Tensor):
        raise TypeError(
            f"rollout: step_fn must return a tensor [B, T_out, C, *space], got "
            f"{type(out).__name__} at call {call}."
        )
    if (
        out.ndim != window.ndim
        or out.shape[0] != window.shape[0]
        or out.shape[2:] != (window.shape[2:])
    ):
        raise ValueError(
            f"rollout: step_fn returned shape {tuple(out.shape)} at call {call} for a "
            f"window of shape {tuple(window.shape)}; expected {expected}. A step_fn "
            "that maps one frame [B, C, *space] to the next must be wrapped with "
            "as_window_stepper(frame_fn)."
        )
    if out.shape[1] < 1:
        raise ValueError(
            f"rollout: step_fn returned T_out={out.shape[1]} frames at call {call}; it "
            "must predict at least one frame."
        )
    return out


def rollout(
    step_fn: Callable[[Tensor], Tensor],
    initial: Float[Tensor, "B T_in C *S"],
    n_steps: int,
    *,
    history: int | None = None,
    include_initial: bool = False,
    check_finite: bool = True,
    progress: bool = False,
) -> RolloutResult:
    """Roll ``step_fn`` forward autoregressively for ``n_steps`` frames.

    Each call maps the window ``[B, T_in, C, *space]`` to ``T_out >= 1`` new frames;
    the next window is the last ``T_in`` frames of ``cat(window, new)``. A model that
    predicts several frames per call advances by ``T_out`` frames at once; when
    ``T_out`` does not divide ``n_steps`` the surplus frames of the last call are
    dropped.

    Gradients follow the ambient grad mode; the loop does not force
    ``torch.no_grad()``, so a caller may differentiate through a rollout (e.g. for an
    unrolled training loss).
    Wrap the call in ``torch.no_grad()``/``torch.inference_mode()`` for evaluation, or
    the autograd graph of every step is kept.

    Non-finite predictions do not stop the rollout: the other trajectories of the batch
    are unaffected, and the first non-finite frame of each trajectory is reported in
    :attr:`RolloutResult.first_nonfinite`, for the caller to exclude and count (never to
    average into NaN metrics).

    Args:
        step_fn: window stepper ``[B, T_in, C, *space] -> [B, T_out, C, *space]``.
            Wrap a frame-to-frame callable with :func:`as_window_stepper`.
        initial: the initial frames ``[B, T, C, *space]``, at least ``T_in`` of them.
        n_steps: number of frames to predict (>= 0).
        history: window length ``T_in``; the last ``history`` frames of ``initial``
            form the first window. ``None``: all of ``initial``.
        include_initial: prepend ``initial`` (all its frames) to the prediction, so
            ``pred`` is the whole trajectory ``[B, T + n_steps, C, *space]``.
        check_finite: find the first non-finite frame per trajectory (one pass over the
            prediction at the end, on its device), and refuse a non-finite ``initial``.
        progress: show a rich progress bar.

    Returns:
        :class:`RolloutResult` ``(pred, first_nonfinite)``.

    Raises:
        ValueError: on bad ``initial``/``n_steps``/``history`` or when ``step_fn``
            returns frames of the wrong shape.
    """
    if not isinstance(initial, Tensor) or initial.ndim < 3:
        shape = tuple(initial.shape) if isinstance(initial, Tensor) else type(initial)
        raise ValueError(
            f"rollout: initial must be a tensor [B, T_in, C, *space], got {shape}; "
            "add a time dim with initial.unsqueeze(1) for a single frame."
        )
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"rollout: n_steps must be an integer >= 0, got {n_steps!r}.")
    available = initial.shape[1]
    t_in = available if history is None else history
    if (
        isinstance(t_in, bool)
        or not isinstance(t_in, int)
        or not 1 <= t_in <= available
    ):
        raise ValueError(
            f"rollout: history must be an integer in [1, {available}] (the frames in "
            f"initial, shape {tuple(initial.shape)}), got {history!r}."
        )
    if check_finite and not torch.isfinite(initial).all():
        bad = (~_trajectory_finite(initial)).nonzero().flatten().tolist()
        raise ValueError(
            f"rollout: initial holds NaN/Inf in trajectory(ies) {bad[:10]}; clean the "
            "input or pass check_finite=False."
        )

    window = initial[:, available - t_in :]
    chunks: list[Tensor] = []
    produced = 0
    calls = 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("Rollout", total=n_steps)
        while produced < n_steps:
            out = _check_output(step_fn(window), window, calls)
            calls += 1
            keep = min(out.shape[1], n_steps - produced)
            chunks.append(out[:, :keep])
            produced += keep
            bar.advance(task, keep)
            if produced < n_steps:
                # Slide: the last T_in frames of cat(window, out).
                if out.shape[1] >= t_in:
                    window = out[:, out.shape[1] - t_in :]
                else:
                    window = torch.cat([window[:, out.shape[1] :], out], dim=1)

    if chunks:
        pred = torch.cat(chunks, dim=1)
    else:
        pred = initial.new_empty((initial.shape[0], 0, *initial.shape[2:]))
    first_nonfinite = first_nonfinite_step(pred) if check_finite else None
    if include_initial:
        pred = torch.cat([initial.to(pred.dtype), pred], dim=1)
    return RolloutResult(pred, first_nonfinite)


def _trajectory_finite(initial: Tensor) -> Tensor:
    """``[B]``: whether every value of a trajectory's frames is finite."""
    return torch.isfinite(initial).flatten(1).all(dim=1)


def as_window_stepper(
    frame_fn: Callable[[Tensor], Tensor],
) -> Callable[[Tensor], Tensor]:
    """Turn a state-to-state callable into a window stepper for :func:`rollout`.

    ``frame_fn`` maps one frame ``[B, C, *space]`` to the next (a numerical solver over
    one output interval, e.g. ``lambda u: integrate(...).ys[:, -1]``, or a one-frame
    network). The returned callable maps a window ``[B, T_in, C, *space]`` to
    ``frame_fn(window[:, -1]).unsqueeze(1)``, i.e. ``T_out = 1`` using the last frame.

    Args:
        frame_fn: ``[B, C, *space] -> [B, C, *space]``.

    Returns:
        A window stepper ``[B, T_in, C, *space] -> [B, 1, C, *space]``.
    """
    if not callable(frame_fn):
        raise TypeError(
            "as_window_stepper: frame_fn must be callable, got "
            f"{type(frame_fn).__name__}."
        )

    def window_stepper(window: Tensor) -> Tensor:
        frame = window[:, -1]
        out = frame_fn(frame)
        if not isinstance(out, Tensor) or out.shape != frame.shape:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"as_window_stepper: frame_fn mapped a frame of shape "
                f"{tuple(frame.shape)} to {shape}; it must return the next frame with "
                "the same shape [B, C, *space]."
            )
        return out.unsqueeze(1)

    return window_stepper
