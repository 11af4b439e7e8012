"""The advection term of the 2-D vorticity equation, ``rfft2(u . grad(w))``.

One evaluation transforms the stack ``(u, v, w_x, w_y)`` back to the grid and the
product ``u w_x + v w_y`` forward. On a CPU the temporaries of a large batch (at 256^2
in float64, 2 MiB per trajectory and field pair) are what costs: glibc's malloc hands
blocks above its (at most 32 MiB) mmap threshold back to the kernel when they are
freed, and trims the heap's top, so every evaluation page-faults its fresh
temporaries in again (70,000 minor faults per step at 256^2 x 16; the step took 2-3x
the time of its arithmetic). Large evaluations therefore run in batch chunks, two
fields per transform, through buffers the term keeps: every temporary stays below
:attr:`VorticityAdvection.chunk_bytes`. Each trajectory's transforms are the same
calls on the same values, so the result is bit-identical to the one-shot evaluation
(checked on float32/float64, 64^2 and 256^2, batches 1-64). Alternatives: a caching
allocator (jemalloc, tcmalloc via ``LD_PRELOAD``, or ``MALLOC_MMAP_THRESHOLD_``) fixes
it for a whole process, but is the user's choice, not a library's; ``out=`` on the
FFTs does not help (torch's FFT ``out=`` computes into a new tensor and copies).
"""

from __future__ import annotations

import torch
from jaxtyping import Complex
from torch import Tensor

__all__ = ["VorticityAdvection"]


class VorticityAdvection:
    """``A(w_hat) = rfft2(u . grad(w))`` from 2/3-de-aliased factors (the product is
    not masked: the term's weight is).

    Args:
        operator: ``w_hat -> (u, v, w_x, w_y)`` hats on the kept columns, ``[4, N,
            kept]`` complex (de-aliasing mask included).
        num_points: ``N``.
        chunk_bytes: the largest temporary of a chunked evaluation (1 MiB: the best
            of 0.5-4 MiB at 64^2 and 256^2, float32 and float64, batches 1-64, on
            the 2-core test machine); batches whose four fields fit in
            :attr:`small_bytes` are evaluated at once.
    """

    #: Below this (all four fields of the batch), one shot: chunking costs more ops.
    small_bytes = 2**20

    def __init__(
        self,
        operator: Complex[Tensor, "4 N kept"],
        num_points: int,
        *,
        chunk_bytes: int = 2**20,
    ) -> None:
        self.operator = operator
        self.num_points = int(num_points)
        self.num_kept = int(operator.shape[-1])
        self.chunk_bytes = int(chunk_bytes)
        self._buffers: tuple[int, Tensor, Tensor, Tensor] | None = None

    def chunk_size(self, w_hat: Complex[Tensor, "B N K"]) -> int | None:
        """Trajectories per chunk for ``w_hat``, or ``None`` for one shot (a small
        batch, one that needs gradients, or one not on a CPU)."""
        batch = w_hat.shape[0]
        # One trajectory's two real fields: N^2 values of half the complex size each.
        pair_bytes = self.num_points**2 * w_hat.element_size()
        if 2 * batch * pair_bytes <= self.small_bytes or not w_hat.is_cpu:
            return None
        if w_hat.requires_grad and torch.is_grad_enabled():
            return None
        return max(1, min(batch, self.chunk_bytes // pair_bytes))

    def __call__(
        self, w_hat: Complex[Tensor, "B N K"], t: float = 0.0
    ) -> Complex[Tensor, "B N K"]:
        """``A(w_hat)``; the flow is autonomous, ``t`` is unused."""
        chunk = self.chunk_size(w_hat)
        if chunk is None:
            return self._at_once(w_hat)
        return self._in_chunks(w_hat, chunk)

    def _at_once(self, w_hat: Complex[Tensor, "B N K"]) -> Complex[Tensor, "B N K"]:
        # One batched inverse transform of the stack (u, v, w_x, w_y), one forward
        # transform of the product. The inverse is split into its two 1-D passes so
        # that the k_y >= N/3 columns, zero after de-aliasing, are never transformed:
        # same result as irfft2 on the zero-padded stack (irfft pads to n), ~25%
        # cheaper.
        stack = w_hat[..., : self.num_kept].unsqueeze(1) * self.operator
        fields = torch.fft.irfft(torch.fft.ifft(stack, dim=-2), n=self.num_points)
        u, v, w_x, w_y = fields.unbind(1)
        return torch.fft.rfft2(torch.addcmul(u * w_x, v, w_y))

    def _in_chunks(
        self, w_hat: Complex[Tensor, "B N K"], chunk: int
    ) -> Complex[Tensor, "B N K"]:
        # The operations of _at_once per batch chunk and field pair; the zero-padded
        # spectra buffer stands for irfft's own padding (its columns >= kept stay 0).
        n, kept, batch = self.num_points, self.num_kept, w_hat.shape[0]
        stack, padded, product = self._workspace(w_hat, min(chunk, batch))
        for start in range(0, batch, chunk):
            stop = min(batch, start + chunk)
            rows = stop - start
            torch.mul(
                w_hat[start:stop, :, :kept].unsqueeze(1),
                self.operator,
                out=stack[:rows],
            )
            pairs = []
            for fields in (slice(0, 2), slice(2, 4)):
                spectra = torch.fft.ifft(stack[:rows, fields], dim=-2)
                padded[:rows, fields, :, :kept].copy_(spectra)
                pairs.append(torch.fft.irfft(padded[:rows, fields], n=n))
            (u, v), (w_x, w_y) = pairs[0].unbind(1), pairs[1].unbind(1)
            torch.mul(u, w_x, out=product[start:stop]).addcmul_(v, w_y)
        return torch.fft.rfft2(product)

    def _workspace(self, w_hat: Tensor, chunk: int) -> tuple[Tensor, Tensor, Tensor]:
        """The stack, zero-padded spectra (``chunk`` trajectories) and product
        (whole batch) buffers, kept for the last batch size seen."""
        n, batch = self.num_points, w_hat.shape[0]
        found = self._buffers
        if (
            found is None
            or found[0] != chunk
            or found[3].shape[0] != batch
            or found[1].dtype != w_hat.dtype
            or found[1].device != w_hat.device
        ):
            complex_args = {"dtype": w_hat.dtype, "device": w_hat.device}
            found = (
                chunk,
                torch.empty(chunk, 4, n, self.num_kept, **complex_args),
                torch.zeros(chunk, 4, n, n // 2 + 1, **complex_args),
                torch.empty(batch, n, n, dtype=w_hat.real.dtype, device=w_hat.device),
            )
            self._buffers = found
        return found[1], found[2], found[3]
