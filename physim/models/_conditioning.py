"""Conditioning on scalars: sinusoidal features, an embedding MLP, modulated norms.

Shared by `UNet`, `SineNet` and PDE-Refiner. A network built with ``cond_dim = P``
turns ``P`` scalars per sample (a noise level, a time step, a PDE parameter) into one
embedding vector, and every residual block modulates its features with it, either by
adding a per-channel shift or by a scale-and-shift after the normalisation (FiLM /
"AdaGN"). The per-block projections start at zero by default, so a freshly built
conditioned network computes exactly what the same network without conditioning
computes.

References:
    Vaswani et al. 2017, "Attention is all you need" (sinusoidal features);
    Ho et al. 2020, "Denoising diffusion probabilistic models" and Dhariwal & Nichol
    2021, "Diffusion models beat GANs" (add / scale-shift in residual blocks);
    Gupta & Brandstetter 2022, "Towards multi-spatiotemporal-scale generalized PDE
    modeling" (PDEArena, the same embedding in PDE surrogates).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = [
    "COND_MODES",
    "ConditionEmbedding",
    "ConditionedNorm",
    "sinusoidal_embedding",
]

COND_MODES = ("add", "scale_shift")


def sinusoidal_embedding(
    values: Float[Tensor, "B P"], num_features: int, max_period: float = 10_000.0
) -> Float[Tensor, "B P*F"]:
    """Sinusoidal features of each scalar: ``cos(v w_k), sin(v w_k)``.

    The frequencies ``w_k = max_period^(-k / (F/2))``, ``k < F/2``, run geometrically
    from 1 down to ``1 / max_period``, so values from about ``1 / F`` to
    ``max_period`` are resolved. Scale scalars of a very different size (a viscosity
    of ``1e-3``, say) into that range before passing them.

    Args:
        values: ``P`` scalars per sample.
        num_features: features per scalar ``F`` (even).
        max_period: the longest period.

    Returns:
        The features of all scalars side by side (scalar-major).
    """
    half = num_features // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, device=values.device, dtype=values.dtype)
        / half
    )
    angles = values[..., None] * freqs
    return torch.cat([angles.cos(), angles.sin()], dim=-1).flatten(1)


class ConditionEmbedding(nn.Module):
    """``P`` scalars -> sinusoidal features -> MLP -> one embedding per sample.

    Args:
        cond_dim: number of scalars ``P`` (at least 1).
        num_features: sinusoidal features per scalar (even).
        embed_dim: width of the embedding (the MLP's hidden and output width).
    """

    def __init__(self, cond_dim: int, num_features: int, embed_dim: int) -> None:
        super().__init__()
        if num_features < 2 or num_features % 2:
            raise ValueError(
                f"num_features must be an even number >= 2, got {num_features}."
            )
        self.cond_dim = cond_dim
        self.num_features = num_features
        self.mlp = nn.Sequential(
            nn.Linear(cond_dim * num_features, embed_dim),
            nn.GELU(),
            nn.Linear(embed_dim, embed_dim),
        )

    def forward(self, cond: Float[Tensor, "B P"]) -> Float[Tensor, "B E"]:
        return self.mlp(sinusoidal_embedding(cond, self.num_features))


def backbone_embedding(
    cond_dim: int, hidden_channels: int
) -> tuple[ConditionEmbedding | None, int]:
    """A U-shaped backbone's conditioning embedding and its width.

    The DDPM/PDEArena choice: width ``4 * hidden_channels`` from about
    ``hidden_channels`` sinusoidal features per scalar; ``(None, 0)`` when
    ``cond_dim`` is 0 (an unconditioned network).
    """
    if not cond_dim:
        return None, 0
    embed_dim = 4 * hidden_channels
    num_features = 2 * ((hidden_channels + 1) // 2)
    return ConditionEmbedding(cond_dim, num_features, embed_dim), embed_dim


class ConditionedNorm(nn.Module):
    """A normalisation of ``[B, C, *S]`` features, modulated by an embedding.

    ``"add"``: ``norm(h + shift(emb))`` (a per-channel bias before the norm, as the
    DDPM U-Net). ``"scale_shift"``: ``norm(h) * (1 + scale(emb)) + shift(emb)``
    (adaptive group norm, Dhariwal & Nichol 2021). The projection is zero-initialised
    by default, so at initialisation both reduce to ``norm(h)``; with ``embed_dim=0``
    (an unconditioned network) there is no projection and it is ``norm(h)``.
    ``zero_init=False`` keeps torch's default ``nn.Linear`` initialisation, as PDEArena
    (pdearena/modules/conditioned/oned_unet.py:81), whose residual blocks start at
    zero through their last convolution instead.

    Args:
        norm: the normalisation (e.g. ``GroupNorm`` or ``Identity``).
        embed_dim: width of the embedding (0: unconditioned).
        channels: feature channels ``C``.
        mode: ``"add"`` or ``"scale_shift"``.
        zero_init: start the projection at zero.
    """

    def __init__(
        self,
        norm: nn.Module,
        embed_dim: int,
        channels: int,
        mode: str,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        check_cond_mode(mode)
        self.norm = norm
        self.mode = mode
        self.proj = None
        if embed_dim:
            width = channels * (2 if mode == "scale_shift" else 1)
            self.proj = nn.Linear(embed_dim, width)
            if zero_init:
                nn.init.zeros_(self.proj.weight)
                nn.init.zeros_(self.proj.bias)

    def forward(
        self, h: Float[Tensor, "B C *S"], emb: Float[Tensor, "B E"] | None
    ) -> Float[Tensor, "B C *S"]:
        if self.proj is None:
            return self.norm(h)
        out = self.proj(emb).reshape(*emb.shape[:1], -1, *([1] * (h.ndim - 2)))
        if self.mode == "add":
            return self.norm(h + out)
        scale, shift = out.chunk(2, dim=1)
        return self.norm(h) * (1 + scale) + shift


def check_cond_mode(mode: str) -> None:
    """Raise ``ValueError`` unless ``mode`` is one of `COND_MODES`."""
    if mode not in COND_MODES:
        raise ValueError(f"cond_mode must be one of {COND_MODES}, got {mode!r}.")


def check_cond(cond: Tensor | None, cond_dim: int, batch_size: int, owner: str) -> None:
    """Check a forward call's ``cond`` against the ``cond_dim`` the net was built with.

    Raises:
        ValueError: ``cond`` is missing, unexpected, or not ``[B, cond_dim]``.
    """
    if cond_dim == 0:
        if cond is not None:
            raise ValueError(
                f"{owner} was built with cond_dim=0 but got cond of shape "
                f"{tuple(cond.shape)}; build it with cond_dim={cond.shape[-1]} or "
                "pass cond=None."
            )
        return
    if cond is None or cond.shape != (batch_size, cond_dim):
        got = "None" if cond is None else tuple(cond.shape)
        raise ValueError(
            f"{owner} was built with cond_dim={cond_dim} and needs cond of shape "
            f"({batch_size}, {cond_dim}); got {got}."
        )
