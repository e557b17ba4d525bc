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
    """A scale as a round-tripping float32; a zero point as an integer (a float8 zero
    point that is not integral, or NaN, as a float32)."""
    number = float(value)
    if kind == "scale" or not number.is_integer():
        return format_scale(number)
    return str(int(number))


def format_values(param: QuantParam | None, *, full: bool = False,
                  limit: int | None = None) -> str:
    """The value(s) of a scale / zero point, the one spelling every output uses: one value
    (``0.0235294``), a summary (``16× 0.001 … 0.004``, NaNs noted), or with *full* all of
    them (at most *limit*, then ``… N more``). ``absent`` for a zero point that is not
    given, ``unknown (<source>)`` when the value cannot be known."""
    if param is None:
        return "absent"
    if param.values is None:
        return f"unknown ({param.source.value})"
    values = param.values
    if not values:
        return "[] (empty)"
    if len(values) == 1:
        return format_value(values[0], param.kind)
    if full:
        shown = ", ".join(format_value(v, param.kind) for v in values[:limit])
        more = len(values) - len(values[:limit])
        return shown + (f", … {more} more" if more > 0 else "")
    return _value_range(values, param.kind)


def _value_range(values: tuple[float, ...], kind: str) -> str:
    array = np.asarray(values, dtype=np.float64)
    finite = array[~np.isnan(array)]
    if finite.size == 0:
        return f"{len(values)}× nan"
    low, high = format_value(finite.min(), kind), format_value(finite.max(), kind)
    nan_note = " (nan)" if finite.size < array.size else ""
    return f"{len(values)}× {low}{' … ' + high if high != low else ''}{nan_note}"


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
