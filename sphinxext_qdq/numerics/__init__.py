"""Quantization numerics: where values sit against the integer grid, and how much each
tensor loses against the float model.

:mod:`.grid` is pure (numpy and onnx, reading the analysis records and the model's
initializers); :mod:`.error` runs ONNX Runtime (imported when called); :mod:`.plots` draws
with matplotlib (imported when a picture is drawn). Nothing here imports Sphinx.
"""

from __future__ import annotations


class NumericsError(Exception):
    """The numbers cannot be computed (mismatched models, bad inputs …): one-line message."""
