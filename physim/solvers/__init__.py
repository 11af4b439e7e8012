"""Numerical PDE solvers in torch (batched, CPU/GPU), initial-condition samplers and
spectral helpers. Solvers follow the stepper protocol of :mod:`physim.timestepping`."""

from ._generate import DatasetGenerator
from ._grf import GaussianRandomField
from ._ns2d import FNOForcing, Forcing, NavierStokes2D, taylor_green_vorticity
from ._spectral import (
    dealias_mask,
    fft_wavenumbers,
    rfft_wavenumber_grid,
    spectral_resample,
)

__all__ = [
    # dataset generation
    "DatasetGenerator",
    # PDE solvers
    "FNOForcing",
    "Forcing",
    "NavierStokes2D",
    "taylor_green_vorticity",
    # initial conditions
    "GaussianRandomField",
    # spectral helpers
    "dealias_mask",
    "fft_wavenumbers",
    "rfft_wavenumber_grid",
    "spectral_resample",
]
