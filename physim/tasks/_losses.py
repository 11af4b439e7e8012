"""Training losses over ``[B, T, C, *space]`` tensors."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RelativeL2Loss(nn.Module):
    """Mean over samples of ``||pred - target||_2 / ||target||_2`` (FNO paper's loss).

    Norms are taken over everything but the batch dimension.

    Args:
        eps: guards against an all-zero target.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        diff = (pred - target).flatten(1).norm(dim=1)
        norm = target.flatten(1).norm(dim=1)
        return (diff / (norm + self.eps)).mean()


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
