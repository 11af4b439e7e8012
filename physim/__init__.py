"""physim: neural PDE surrogates and learned time stepping."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("physim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
