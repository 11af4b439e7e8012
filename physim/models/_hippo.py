"""HiPPO memory: per-cell polynomial summaries of a field's past (Gu et al. 2020).

A HiPPO state ``x in R^N`` follows ``dx/dt = A x + B u`` for the input signal ``u``;
with the matrices of a *measure* it holds the coefficients of the projection of ``u``'s
history onto orthogonal polynomials. TSM (Sun et al. 2023) keeps one state per grid
cell and velocity component and feeds the ``C N`` state channels to a CNN.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["MEASURES", "HiPPO", "HiPPOStem", "hippo_matrices"]

MEASURES = ("lagt", "legt", "legs")


def hippo_matrices(
    measure: str, state_size: int, window: float | None = None
) -> tuple[Float[Tensor, "N N"], Float[Tensor, " N"]]:
    """The continuous-time ``(A, B)`` of a HiPPO measure (float64).

    - ``"lagt"`` (translated Laguerre; TSM's released code): ``A = I/2 - tril(1)``,
      ``B = 1``. An exponentially fading memory of the whole past.
    - ``"legt"`` (translated Legendre, window ``theta``):
      ``A_nk = -(1/theta) sqrt(2n+1) sqrt(2k+1) (1 if n >= k else (-1)^(n-k))``,
      ``B_n = sqrt(2n+1) / theta``; the state approximates the Legendre coefficients of
      the last ``theta`` time units, ``u(t - theta + s theta) ~ sum_n x_n sqrt(2n+1)
      P_n(2s - 1)``.
    - ``"legs"`` (scaled Legendre, the whole past uniformly): ``A_nk = -sqrt(2n+1)
      sqrt(2k+1)`` for ``n > k``, ``-(n+1)`` on the diagonal, 0 above; ``B_n =
      sqrt(2n+1)``; time-varying, the system at time ``t`` is ``(A/t, B/t)``.

    Raises:
        ValueError: for an unknown measure, ``state_size < 1`` or a bad ``window``.
    """
    if measure not in MEASURES:
        raise ValueError(
            f"HiPPO: unknown measure {measure!r}; choose one of {list(MEASURES)} "
            "('lagt' is TSM's choice)."
        )
    if isinstance(state_size, bool) or int(state_size) != state_size or state_size < 1:
        raise ValueError(
            f"HiPPO: state_size must be an integer >= 1, got {state_size!r}."
        )
    n = torch.arange(int(state_size), dtype=torch.float64)
    root = torch.sqrt(2 * n + 1)
    row, col = n[:, None], n[None, :]
    if measure == "lagt":
        ones = torch.ones(len(n), len(n), dtype=torch.float64)
        return torch.eye(
            len(n), dtype=torch.float64
        ) / 2 - ones.tril(), torch.ones_like(n)
    if measure == "legt":
        if window is None or not (math.isfinite(window) and window > 0):
            raise ValueError(
                "HiPPO: measure 'legt' needs a window > 0 (in frames), got "
                f"{window!r}; e.g. the number of prefix frames."
            )
        sign = torch.where(row >= col, 1.0, (-1.0) ** (row - col))
        a = -(root[:, None] * root[None, :]) * sign / window
        return a, root / window
    a = torch.where(row > col, -(root[:, None] * root[None, :]), 0.0)
    a = a - torch.diag(n + 1)
    return a, root


def _bilinear(a: Tensor, b: Tensor, dt: float) -> tuple[Tensor, Tensor]:
    """``A_bar = (I - dt A/2)^-1 (I + dt A/2)``, ``B_bar = (I - dt A/2)^-1 dt B``."""
    eye = torch.eye(a.shape[0], dtype=a.dtype)
    left = eye - 0.5 * dt * a
    a_bar = torch.linalg.solve(left, eye + 0.5 * dt * a)
    b_bar = torch.linalg.solve(left, dt * b[:, None])[:, 0]
    return a_bar, b_bar


class HiPPO(nn.Module):
    """Per-cell HiPPO state of a field sequence, one frame per unit time step.

    For frames ``u_1, u_2, ...`` ``[B, C, *S]`` every cell and channel has a state
    ``x in R^N``, starting at 0 and updated by the bilinear (Tustin) discretisation of
    ``dx/dt = A x + B u`` with ``dt = 1``: ``x_t = A_bar x_{t-1} + B_bar u_t``
    (``A_bar = (I - A/2)^-1 (I + A/2)``, ``B_bar = (I - A/2)^-1 B``; LegS uses
    ``A/t, B/t`` at step ``t``). Bilinear is HiPPO's and TSM's choice: A-stable and
    second order, unlike forward Euler (unstable for large ``N``) or backward Euler
    (first order).

    Because the update is linear, the state after a window of ``T`` frames from zero is
    a fixed linear map of the window (:meth:`window_matrix`, ``[T, N]``), which
    :meth:`forward` uses for the prefix; :meth:`update` continues frame by frame.

    Args:
        state_size: ``N`` (TSM: 256).
        measure: ``"lagt"`` (TSM's released code), ``"legt"`` or ``"legs"``.
        window: LegT's window ``theta`` in frames (ignored otherwise).

    Raises:
        ValueError: unknown measure or bad sizes, at construction.
    """

    def __init__(
        self, state_size: int = 256, measure: str = "lagt", window: float | None = None
    ) -> None:
        super().__init__()
        a, b = hippo_matrices(measure, state_size, window)
        self.state_size = int(state_size)
        self.measure = measure
        self.window = window
        self._continuous = (a, b)
        a_bar, b_bar = _bilinear(a, b, 1.0)
        dtype = torch.get_default_dtype()
        self.register_buffer("a_bar", a_bar.to(dtype), persistent=False)
        self.register_buffer("b_bar", b_bar.to(dtype), persistent=False)

    def discrete(self, index: int) -> tuple[Float[Tensor, "N N"], Float[Tensor, " N"]]:
        """``(A_bar, B_bar)`` of the update to frame ``index`` (1-based)."""
        if self.measure != "legs":
            return self.a_bar, self.b_bar
        a, b = self._continuous
        a_bar, b_bar = _bilinear(a / index, b / index, 1.0)
        return (
            a_bar.to(self.a_bar.dtype).to(self.a_bar.device),
            b_bar.to(self.b_bar.dtype).to(self.b_bar.device),
        )

    def update(
        self,
        state: Float[Tensor, "B C N *S"],
        frame: Float[Tensor, "B C *S"],
        index: int,
    ) -> Float[Tensor, "B C N *S"]:
        """One recurrence step with frame number ``index`` (1-based, for LegS)."""
        a_bar, b_bar = self.discrete(index)
        shape = (1, 1, -1) + (1,) * (frame.ndim - 2)
        mixed = torch.einsum("nm,bcm...->bcn...", a_bar, state)
        return mixed + b_bar.view(shape) * frame.unsqueeze(2)

    def window_matrix(self, num_frames: int) -> Float[Tensor, "T N"]:
        """``K`` with ``x_T = sum_t K[t] u_{t+1}`` from a zero state over ``T`` frames.

        Accumulated backwards, ``K[t] = A_bar_T ... A_bar_{t+2} B_bar_{t+1}``.
        """
        rows = []
        carry = torch.eye(
            self.state_size, dtype=self.a_bar.dtype, device=self.a_bar.device
        )
        for index in range(num_frames, 0, -1):
            a_bar, b_bar = self.discrete(index)
            rows.append(carry @ b_bar)
            carry = carry @ a_bar
        return torch.stack(rows[::-1])

    def forward(self, frames: Float[Tensor, "B T C *S"]) -> Float[Tensor, "B C N *S"]:
        """The state after ``frames`` (from zero), via :meth:`window_matrix`."""
        kernel = self.window_matrix(frames.shape[1]).to(frames.dtype)
        return torch.einsum("btc...,tn->bcn...", frames, kernel)

    @staticmethod
    def features(state: Float[Tensor, "B C N *S"]) -> Float[Tensor, "B CN *S"]:
        """The state as ``C N`` channels (channel-major), the input of a backbone."""
        return state.flatten(1, 2)

    def extra_repr(self) -> str:
        window = f", window={self.window}" if self.measure == "legt" else ""
        return f"state_size={self.state_size}, measure={self.measure!r}{window}"


class HiPPOStem(nn.Module):
    """A backbone fed with HiPPO features of a stacked history instead of raw frames.

    Takes the history as :class:`physim.tasks.AutoregressiveSurrogate` passes it,
    ``[B, T C, *S]`` (frames stacked as channels), encodes the ``T`` frames into the
    per-cell state and returns ``backbone(state)``; the backbone needs
    ``in_channels = C * state_size``.

    Args:
        backbone: ``(B, C N, *S) -> (B, C_out, *S)``.
        num_channels: field channels ``C``.
        state_size: HiPPO ``N``.
        measure: HiPPO measure.
        window: LegT window in frames.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_channels: int,
        state_size: int = 32,
        measure: str = "lagt",
        window: float | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_channels = int(num_channels)
        self.hippo = HiPPO(state_size, measure, window)

    def forward(self, x: Float[Tensor, "B TC *S"]) -> Tensor:
        b, tc, *space = x.shape
        if tc % self.num_channels:
            raise ValueError(
                f"HiPPOStem: {tc} input channels are not a whole number of frames of "
                f"num_channels={self.num_channels}."
            )
        frames = x.reshape(b, tc // self.num_channels, self.num_channels, *space)
        return self.backbone(self.hippo.features(self.hippo(frames)))
