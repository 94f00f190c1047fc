"""Revenge: a self-hosted media-server backend that keeps only the essential services hot."""

from revenge._core import __version__

__all__ = ["__version__"]
