"""Numerical PDE solvers in torch (batched, CPU/GPU), initial-condition samplers and
spectral helpers. Solvers follow the stepper protocol of :mod:`physim.timestepping`.

A pseudo-spectral solver is a PDE (its right-hand side as a
:class:`~physim.solvers.schemes.SemiLinear` term, ``pde.term``) plus a time scheme of
:mod:`physim.solvers.schemes` (``pde.scheme``, chosen with ``scheme=``)."""

from . import schemes
from ._advection import Advection1D, GaussianPulse
from ._burgers import Burgers1D, burgers_sine_solution
from ._fv import (
    TIME_SCHEMES,
    FiniteVolumeNS2D,
    KolmogorovForcing,
    check_time_step,
    five_point_laplacian,
    flux_convection,
    taylor_green_velocity,
)
from ._fv_interpolation import (
    FaceInterpolation,
    FaceValues,
    LinearInterpolation,
    LinearVanLeerInterpolation,
    Neighbours,
    VanLeerInterpolation,
    blend_advected,
    face_shift,
    lax_wendroff_face_values,
    linear_face_values,
    van_leer_limit,
)
from ._fv_operators import (
    SpectralOperators,
    laplacian_eigenvalues,
    pressure_projection,
    staggered_divergence,
    staggered_vorticity,
)
from ._generate import DatasetGenerator
from ._grf import GaussianRandomField
from ._kdv import KortewegDeVries1D, kdv_soliton
from ._kolmogorov import FilteredVelocityField, KolmogorovFlow, downsample_staggered
from ._ks import KuramotoSivashinsky1D
from ._ns2d import (
    FNOForcing,
    Forcing,
    NavierStokes2D,
    TaylorGreenVorticity,
    taylor_green_vorticity,
)
from ._sines import RandomSines
from ._spectral import (
    dealias_mask,
    fft_wavenumbers,
    rfft_wavenumber_grid,
    spectral_resample,
)
from ._spectral1d import Convection1D, SpectralPDE1D
from .schemes import ETDRK4, phi_functions, step_doubling

__all__ = [
    # dataset generation
    "DatasetGenerator",
    # PDE solvers
    "Advection1D",
    "Burgers1D",
    "burgers_sine_solution",
    "FNOForcing",
    "Forcing",
    "KortewegDeVries1D",
    "kdv_soliton",
    "KuramotoSivashinsky1D",
    "NavierStokes2D",
    "taylor_green_vorticity",
    # finite volumes on a staggered grid, Kolmogorov flow
    "FaceInterpolation",
    "FaceValues",
    "FiniteVolumeNS2D",
    "KolmogorovFlow",
    "KolmogorovForcing",
    "LinearInterpolation",
    "LinearVanLeerInterpolation",
    "Neighbours",
    "SpectralOperators",
    "TIME_SCHEMES",
    "VanLeerInterpolation",
    "blend_advected",
    "check_time_step",
    "downsample_staggered",
    "face_shift",
    "five_point_laplacian",
    "flux_convection",
    "laplacian_eigenvalues",
    "lax_wendroff_face_values",
    "linear_face_values",
    "pressure_projection",
    "staggered_divergence",
    "staggered_vorticity",
    "taylor_green_velocity",
    "van_leer_limit",
    # initial conditions
    "FilteredVelocityField",
    "GaussianPulse",
    "GaussianRandomField",
    "TaylorGreenVorticity",
    "RandomSines",
    # terms and time schemes (the schemes and SemiLinear: physim.solvers.schemes)
    "Convection1D",
    "SpectralPDE1D",
    "schemes",
    "ETDRK4",
    "phi_functions",
    "step_doubling",
    # spectral helpers
    "dealias_mask",
    "fft_wavenumbers",
    "rfft_wavenumber_grid",
    "spectral_resample",
]
