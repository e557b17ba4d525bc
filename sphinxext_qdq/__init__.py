"""Sphinx extension documenting quantized (QDQ) ONNX models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sphinxext_qdq._version import __version__

__all__ = ["__version__", "setup"]

if TYPE_CHECKING:
    from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict[str, Any]:
    """Sphinx entry point; everything is registered in :mod:`sphinxext_qdq.sphinx.extension`."""
    from sphinxext_qdq.sphinx.extension import setup as _setup

    return _setup(app)
