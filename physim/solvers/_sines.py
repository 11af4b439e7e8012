"""Random sums of sines: the initial conditions of the LPSDA / PDE-Refiner 1-D data."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["RandomSines"]


class RandomSines:
    """``u0(x) = sum_j A_j sin(2 pi l_j x + phi_j)`` on ``x in [0, 1)`` (domain units).

    Per trajectory and wave: amplitude ``A ~ U[-amplitude, amplitude)``, phase ``phi ~
    U[0, 2 pi)``, integer wavenumber ``l`` uniform over ``wavenumbers`` (cycles per
    domain, so the field is periodic for any domain length). With the defaults this is
    the Kuramoto-Sivashinsky initial condition of Brandstetter et al. (LPSDA), used by
    PDE-Refiner: 10 waves, ``A ~ U[-0.5, 0.5)``, ``l in {1, 2}``.

    Optionally it also draws per-trajectory solver parameters, each uniform in its
    ``[low, high]`` range (e.g. ``{"domain_extent": [57.6, 70.4], "frame_interval":
    [0.18, 0.22]}``); :meth:`sample` then returns ``(u0, parameters)``, which
    :class:`~physim.solvers.DatasetGenerator` passes to the solver's ``bind`` and
    stores per trajectory.

    Args:
        num_points: grid points ``N`` (``x_i = i / N``).
        num_waves: sines per trajectory (>= 1).
        amplitude: half-width of the amplitude distribution (> 0).
        wavenumbers: the integer wavenumbers to choose from (each >= 1).
        parameter_ranges: ``{name: [low, high]}`` with ``0 < low <= high``, or ``None``.

    Raises:
        ValueError: for a bad count, amplitude, wavenumber or range (names it).

    References:
        Brandstetter, Welling & Worrall, "Lie point symmetry data augmentation for
        neural PDE solvers", ICML 2022. Lippe et al., "PDE-Refiner", NeurIPS 2023.
    """

    def __init__(
        self,
        num_points: int,
        num_waves: int = 10,
        amplitude: float = 0.5,
        wavenumbers: Sequence[int] = (1, 2),
        parameter_ranges: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        for name, value in [("num_points", num_points), ("num_waves", num_waves)]:
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(
                    f"RandomSines: {name} must be a positive integer, got {value!r}."
                )
        if not (math.isfinite(amplitude) and amplitude > 0):
            raise ValueError(f"RandomSines: amplitude must be > 0, got {amplitude!r}.")
        waves = [int(w) for w in wavenumbers]
        if not waves or any(
            w != v or w < 1 for w, v in zip(waves, wavenumbers, strict=True)
        ):
            raise ValueError(
                "RandomSines: wavenumbers must be a non-empty list of positive "
                f"integers, got {list(wavenumbers)!r}."
            )
        ranges = {}
        for key, bounds in (parameter_ranges or {}).items():
            low, high = (float(b) for b in bounds)
            if not (0 < low <= high and math.isfinite(high)):
                raise ValueError(
                    f"RandomSines: parameter_ranges.{key} must be [low, high] with "
                    f"0 < low <= high, got {list(bounds)!r}."
                )
            ranges[str(key)] = (low, high)
        self.num_points = int(num_points)
        self.num_waves = int(num_waves)
        self.amplitude = float(amplitude)
        self.wavenumbers = tuple(waves)
        self.parameter_ranges = dict(sorted(ranges.items()))

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> Float[Tensor, "n 1 N"] | tuple[Float[Tensor, "n 1 N"], dict[str, Tensor]]:
        """Draw ``n`` initial states ``[n, 1, N]`` (and their parameters, if any).

        Draws happen on the CPU in float64, in a fixed order (amplitudes, phases,
        wavenumbers, then the parameters by name), so a seed gives the same states on
        every device and dtype.

        Returns:
            ``u0``, or ``(u0, {name: float64 [n] on the CPU})`` with parameter ranges.
        """
        shape = (n, self.num_waves, 1)
        amplitude = self.amplitude * (
            2.0 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1.0
        )
        phase = (
            2.0 * math.pi * torch.rand(shape, generator=generator, dtype=torch.float64)
        )
        choice = torch.randint(len(self.wavenumbers), shape, generator=generator)
        wavenumber = torch.tensor(self.wavenumbers, dtype=torch.float64)[choice]
        x = torch.arange(self.num_points, dtype=torch.float64) / self.num_points
        u0 = (amplitude * torch.sin(2.0 * math.pi * wavenumber * x + phase)).sum(dim=1)
        u0 = u0.unsqueeze(1).to(device=device, dtype=dtype)
        if not self.parameter_ranges:
            return u0
        parameters = {
            key: low
            + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)
            for key, (low, high) in self.parameter_ranges.items()
        }
        return u0, parameters

    def parameters(self) -> dict[str, Any]:
        """Plain values for file attributes and the dataset fingerprint."""
        out: dict[str, Any] = {
            "num_points": self.num_points,
            "num_waves": self.num_waves,
            "amplitude": self.amplitude,
            "wavenumbers": list(self.wavenumbers),
        }
        for key, (low, high) in self.parameter_ranges.items():
            out[f"{key}_range"] = [low, high]
        return out

    def __repr__(self) -> str:
        return (
            f"RandomSines(num_points={self.num_points}, num_waves={self.num_waves}, "
            f"amplitude={self.amplitude}, wavenumbers={list(self.wavenumbers)}, "
            f"parameter_ranges={self.parameter_ranges})"
        )
