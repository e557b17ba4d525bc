"""Pure analysis of QDQ ONNX models: imports onnx and numpy only, never Sphinx.

The one entry point is :func:`load_qdq_model` (safe, cached); :func:`analyze`
works on an ``onnx.ModelProto`` already in memory.
"""

from __future__ import annotations

from sphinxext_qdq.analysis.loader import clear_cache, load_qdq_model, parse_count
from sphinxext_qdq.analysis.patterns import analyze
from sphinxext_qdq.analysis.queries import (
    QdqSelectionError,
    describe,
    nodes_between,
    select_region,
    summarize,
)
from sphinxext_qdq.analysis.records import (
    DIAGNOSTIC_SUBTYPES,
    Diagnostic,
    Granularity,
    ModelSummary,
    NodeInfo,
    ParamSource,
    ParamUse,
    QdqModel,
    QdqNode,
    QuantGroup,
    QuantParam,
    QuantRegion,
    Role,
    TensorInfo,
)
from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.onnxio.files import DEFAULT_MAX_BYTES

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DIAGNOSTIC_SUBTYPES",
    "Diagnostic",
    "Granularity",
    "ModelSummary",
    "NodeInfo",
    "ParamSource",
    "ParamUse",
    "QdqModel",
    "QdqModelError",
    "QdqNode",
    "QdqSelectionError",
    "QuantGroup",
    "QuantParam",
    "QuantRegion",
    "Role",
    "TensorInfo",
    "analyze",
    "clear_cache",
    "describe",
    "load_qdq_model",
    "nodes_between",
    "parse_count",
    "select_region",
    "summarize",
]
