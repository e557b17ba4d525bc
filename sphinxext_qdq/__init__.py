"""Sphinx extension documenting quantized (QDQ) ONNX models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict[str, Any]:
    """Sphinx entry point; everything is registered in :mod:`sphinxext_qdq.extension`."""
    from sphinxext_qdq.extension import setup as _setup

    return _setup(app)
