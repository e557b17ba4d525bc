"""How numbers and parameters read on a page: one place for every caller
(DOT labels, tables, outlines, the command line)."""

from __future__ import annotations

import math

import numpy as np

from sphinxext_qdq.analysis.records import Granularity, QdqNode, QuantParam


def format_scale(value: float) -> str:
    """A float32 scale with enough digits to round-trip (shortest repr of the float32)."""
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0 or 1e-4 <= abs(value) < 1e6:
        return np.format_float_positional(np.float32(value), unique=True, trim="-")
    return np.format_float_scientific(np.float32(value), unique=True, trim="-")


def format_value(value: float, kind: str) -> str:
    """A scale as a round-tripping float32, a zero point as an integer."""
    if kind == "scale":
        return format_scale(value)
    return str(int(value))


def format_values(param: QuantParam | None, *, full: bool = False) -> str:
    """Value(s) of a scale / zero point: one value, a summary, or all of them."""
    if param is None:
        return "absent (0)"
    if param.values is None:
        return f"unknown ({param.source.value})"
    values = param.values
    if len(values) == 1:
        return format_value(values[0], param.kind)
    if full:
        return ", ".join(format_value(v, param.kind) for v in values)
    low, high = min(values), max(values)
    return f"{len(values)} values, {format_value(low, param.kind)} … {format_value(high, param.kind)}"


def format_granularity(qdq: QdqNode) -> str:
    """``per-tensor``, ``per-axis (axis 0)``, ``blocked (axis 1, block 32)``."""
    if qdq.granularity is Granularity.PER_AXIS:
        return f"per-axis (axis {qdq.axis})"
    if qdq.granularity is Granularity.BLOCKED:
        return f"blocked (axis {qdq.axis}, block {qdq.block_size})"
    return qdq.granularity.value


def format_shape(shape: tuple[int | str | None, ...] | None) -> str:
    if shape is None:
        return "unknown"
    if not shape:
        return "scalar"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def one_line(text: object, limit: int = 300) -> str:
    """*text* as one line of a message: control characters (newlines too) shown escaped,
    cut at *limit* characters with an ellipsis."""
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
