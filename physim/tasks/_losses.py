"""Training losses over ``[B, T, C, *space]`` tensors."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RelativeL2Loss(nn.Module):
    """``||pred - target||_2 / ||target||_2`` per sample (FNO paper's loss), reduced
    over the batch by ``reduction``.

    Norms are taken over everything but the batch dimension. ``reduction="sum"`` is
    the FNO scripts' ``LpLoss(size_average=False)``: with Adam's L2 weight decay the
    scale of the loss matters (a sum over a batch of 20 weighs the data 20x more
    against the decay than the mean does).

    Args:
        eps: guards against an all-zero target.
        reduction: ``"mean"`` or ``"sum"`` over samples.
    """

    def __init__(self, eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"RelativeL2Loss: reduction must be 'mean' or 'sum', got {reduction!r}."
            )
        self.eps = eps
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        diff = (pred - target).flatten(1).norm(dim=1)
        norm = target.flatten(1).norm(dim=1)
        per_sample = diff / (norm + self.eps)
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()


class MSELoss(nn.MSELoss):
    """Mean squared error (``torch.nn.MSELoss``), named here for config symmetry."""


def check_finite_loss(loss: Tensor, step: int, batch_idx: int) -> None:
    """Stop training with the step and batch at which the loss went non-finite."""
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"Non-finite training loss ({loss.item()}) at global step {step}, batch "
            f"{batch_idx}. Lower the learning rate, check the data for NaNs "
            "(physim validates stored files), or enable gradient clipping "
            "(trainer.gradient_clip_val)."
        )
