"""Where the values of a quantized tensor sit against its integer grid.

For a tensor quantized with scale ``s`` and zero point ``z`` to an integer type
``[q_min, q_max]``, the representable float range is ``[s (q_min - z), s (q_max - z)]``.
:func:`grid_stats` gives, per tensor, the histogram of its float values against that
range, the fraction clipped (saturated by QuantizeLinear), the share of the integer grid its codes span, the histogram
of its integer codes, and (per-axis and blocked tensors) the range of every channel
against the range its own scale allows.

Float values come from, in order: the float model (``float_weights``), a float weight
kept in the model (Q→DQ pair), or the dequantized integers (a weight stored quantized:
nothing is clipped by construction then). An activation's values arrive batch by batch
(:class:`ActivationGrid`: running counts, extremes, one count per integer code and the
float histogram, never the values themselves; the same statistics as :func:`grid_stats`
would give on all of them at once). Pure: numpy and onnx only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sphinxext_qdq.analysis.records import Granularity, Role
from sphinxext_qdq.integer.requant import side_of
from sphinxext_qdq.numerics import NumericsError
from sphinxext_qdq.onnxio.dtypes import integer_range, is_integer
from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.onnxio.files import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    read_checked,
)
from sphinxext_qdq.onnxio.proto import parse_model_bytes, read_tensor_array
from sphinxext_qdq.render.text import one_line

if TYPE_CHECKING:
    import onnx

    from sphinxext_qdq.analysis.records import QdqModel, QdqNode
    from sphinxext_qdq.integer.requant import TensorQuantization

#: Roles whose values are constants of the model (no inputs needed).
CONSTANT_ROLES = frozenset({Role.WEIGHT, Role.WEIGHT_PAIR, Role.BIAS})

#: Integer types with at most this many levels get one histogram bin per code.
PER_CODE_LEVELS = 256

#: Most channels drawn in a strip (the statistics use them all).
STRIP_CHANNELS = 64

#: Most distinct integer codes an activation's statistics count (one count per code:
#: only a type of more than 20 bits, which no quantizer gives activations, can reach it).
MAX_DISTINCT_CODES = 1 << 20


@dataclass(frozen=True)
class ChannelRange:
    """One channel (or block): the float values' range against its representable range."""

    low: float
    high: float
    representable_low: float
    representable_high: float
    grid_used: float


@dataclass(frozen=True)
class GridStats:
    """A quantized tensor against its integer grid; every field plain data (picklable)."""

    tensor: str  # the float tensor quantized (QdqNode.quantized_tensor)
    qdq: str  # key of the Q / DQ node that holds the scale
    consumer: str | None  # key of the compute node reading it (weights), if any
    role: str
    dtype: str
    granularity: str
    axis: int | None
    q_min: int
    q_max: int
    elements: int
    float_source: str  # "float model" | "model" | "dequantized" | "inputs"
    low: float  # smallest float value
    high: float  # largest float value
    representable_low: float  # over all channels
    representable_high: float
    clipped: float  # fraction of values QuantizeLinear saturates (round(x / s) + z off the grid)
    grid_used: float  # (largest code - smallest code + 1) / levels; per-axis: channels' mean
    grid_used_min: float  # the channel using the least of the grid (= grid_used: no channels)
    channel_grid_mean: float  # the channels' mean span (= grid_used: no channels)
    codes_used: int  # distinct integer codes
    float_edges: tuple[float, ...]
    float_counts: tuple[int, ...]
    code_edges: tuple[float, ...]
    code_counts: tuple[int, ...]
    #: Per channel (per-axis, blocked), or per output channel of a per-tensor weight (how
    #: much of the one grid each output channel spans); empty for activations.
    channels: tuple[ChannelRange, ...]

    @property
    def levels(self) -> int:
        return self.q_max - self.q_min + 1

    @property
    def per_channel(self) -> bool:
        """Several scales (per-axis or blocked)."""
        return self.granularity != "per-tensor"


class ModelConstants:
    """Initializers and Constant outputs of a model's main graph, read on demand; a file
    above *max_bytes*, a tensor of more than *max_elements* values or one whose data
    cannot be read is a :class:`NumericsError`."""

    def __init__(self, path: str | Path, *, max_elements: int = DEFAULT_MAX_ELEMENTS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_elements = max_elements
        try:
            proto = parse_model_bytes(read_checked(self.path, max_bytes, "an ONNX file"),
                                      self.path)
        except QdqModelError as error:
            raise NumericsError(str(error)) from None
        self.graph = proto.graph
        self.tensors: dict[str, onnx.TensorProto] = {t.name: t for t in proto.graph.initializer}
        for node in proto.graph.node:
            if node.op_type == "Constant" and node.output:
                for attribute in node.attribute:
                    if attribute.name == "value":
                        self.tensors[node.output[0]] = attribute.t

    def array(self, name: str) -> np.ndarray | None:
        tensor = self.tensors.get(name)
        if tensor is None:
            return None
        count = math.prod(tensor.dims)
        if count > self.max_elements:
            raise NumericsError(f"{name!r} has {count:,} values, more than the limit of "
                                f"{self.max_elements:,} (qdq_max_elements, --max-elements)")
        try:
            return read_tensor_array(tensor, self.path.parent)
        except QdqModelError as error:
            raise NumericsError(f"{name!r}: {error.reason}") from None
        except (ValueError, TypeError, KeyError) as error:  # malformed data, unknown type
            raise NumericsError(f"{name!r}: its data cannot be read ({one_line(error)})") \
                from None

    def node_input(self, node_name: str, index: int) -> str | None:
        """The name read at input *index* by the node called *node_name* (None if absent)."""
        for node in self.graph.node:
            if node.name == node_name and node_name:
                return node.input[index] if index < len(node.input) else None
        return None


def quantize(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, q_min: int,
             q_max: int) -> np.ndarray:
    """QuantizeLinear: float32 division, round half to even, saturate."""
    quotient = np.asarray(values, np.float32) / np.asarray(scale, np.float32)
    return np.clip(np.rint(quotient) + zero_point, q_min, q_max).astype(np.int64)


def broadcast_params(qdq: QdqNode, scales: tuple[float, ...], zero_points: tuple[int, ...],
                     shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scale, zero point, channel index) arrays of *shape*: what applies to each element."""
    scale = np.asarray(scales, np.float64)
    zero = np.asarray(zero_points, np.int64)
    if zero.size == 1 and scale.size > 1:
        zero = np.full(scale.shape, int(zero.reshape(-1)[0]))
    if scale.size == 1:
        channel = np.zeros(shape, np.int64)
        return (np.full(shape, scale.reshape(-1)[0]), np.full(shape, zero.reshape(-1)[0]),
                channel)
    if zero.size != scale.size:
        raise NumericsError(f"{qdq.key}: {scale.size} scales but {zero.size} zero points")
    axis = _axis_in(qdq.axis, len(shape))
    if qdq.granularity == Granularity.PER_AXIS and axis is not None:
        if shape[axis] != scale.size:
            raise NumericsError(f"{qdq.key}: {scale.size} scales for {shape[axis]} channels "
                                f"on axis {axis}")
        view = [1] * len(shape)
        view[axis] = scale.size
        channel = np.broadcast_to(np.arange(scale.size).reshape(view), shape)
    elif qdq.granularity == Granularity.BLOCKED and axis is not None \
            and (qdq.block_size or 0) > 0:
        blocked = _scale_shape(shape, axis, qdq.block_size)
        if math.prod(blocked) != scale.size:
            raise NumericsError(f"{qdq.key}: {scale.size} blocked scales for a tensor of "
                                f"shape {shape} in blocks of {qdq.block_size} (axis "
                                f"{axis}) that needs {math.prod(blocked)}")
        blocks = np.arange(scale.size).reshape(blocked)
        channel = np.repeat(blocks, qdq.block_size, axis=axis)
        channel = channel[tuple(slice(0, n) for n in shape)]
        if channel.shape != shape:
            raise NumericsError(f"{qdq.key}: blocked scales do not cover the tensor")
    else:
        raise NumericsError(f"{qdq.key}: {scale.size} scales but no usable axis")
    return scale[channel], zero[channel], np.asarray(channel)


def _float_histogram(qdq: QdqNode, floats: np.ndarray, bins: int, low: float, high: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram`` of *floats* over [*low*, *high*] (in float64: a representable range
    may be wider than float32 holds); a range numpy cannot cut into
    *bins* (empty, not finite, too wide or too narrow for its steps) is a NumericsError."""
    problem = f"{qdq.key}: the values and the representable range span [{low:g}, {high:g}]"
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise NumericsError(f"{problem}, which has no finite histogram")
    try:
        return np.histogram(np.asarray(floats, np.float64), bins=bins, range=(low, high))
    except ValueError as error:
        raise NumericsError(f"{problem}, which cannot be cut into {bins} bins "
                            f"({one_line(error)})") from None


def _axis_in(axis: int | None, rank: int) -> int | None:
    """*axis* (negative: from the end) as an index into a shape of *rank*; None outside."""
    if axis is None:
        return None
    index = axis + rank if axis < 0 else axis
    return index if 0 <= index < rank else None


def _scale_shape(shape: tuple[int, ...], axis: int, block_size: int) -> tuple[int, ...]:
    blocked = list(shape)
    blocked[axis] = -(-shape[axis] // block_size)
    return tuple(blocked)


def select_qdq_nodes(model: QdqModel, roles: frozenset[Role], pattern: object = None,
                     tensors: frozenset[str] | None = None) -> list[QdqNode]:
    """Q/DQ nodes holding the scale of each selected tensor, once per tensor, in node
    order: weights / biases by their DQ (or a pair's Q), activations by their Q.
    *pattern* (a compiled regular expression) searches the node's name and its consumer's;
    *tensors* names the float or integer tensors wanted."""
    chosen: dict[str, QdqNode] = {}
    for qdq in model.qdq_nodes:
        if qdq.role not in roles or qdq.graph:
            continue
        if qdq.role in (Role.ACTIVATION, Role.WEIGHT_PAIR) and qdq.op_type != "QuantizeLinear":
            continue
        tensor = tensor_name(qdq)
        if tensors is not None and not ({tensor, qdq.input, qdq.output, qdq.quantized_tensor} & tensors):
            continue
        if pattern is not None and not any(pattern.search(name)  # type: ignore[attr-defined]
                                           for name in _names(model, qdq)):
            continue
        chosen.setdefault(tensor, qdq)
    return list(chosen.values())


def each_grid_stats(model: QdqModel, qdqs: list[QdqNode], constants: ModelConstants, *,
                    bins: int = 64, float_constants: ModelConstants | None = None,
                    grids: dict[str, ActivationGrid] | None = None
                    ) -> tuple[list[GridStats], list[str]]:
    """(statistics of every tensor of *qdqs* that has them, and a "no histogram of …
    (why)" message for each other one: a scale of zero, unreadable data, an activation
    without statistics in *grids* (Q node key -> :class:`ActivationGrid`)). One tensor's
    problem does not cost the others their pictures."""
    grids = grids or {}
    stats, skipped = [], []
    for qdq in qdqs:
        try:
            if qdq.role != Role.ACTIVATION:
                stats.append(grid_stats(model, qdq, constants, bins=bins,
                                        float_constants=float_constants))
            elif qdq.key in grids:
                stats.append(grids[qdq.key].stats())
            else:
                raise NumericsError("no values collected on the inputs")
        except NumericsError as error:
            skipped.append(f"no histogram of {tensor_name(qdq)!r} ({error})")
    return stats, skipped


def tensor_name(qdq: QdqNode) -> str:
    """What a reader calls the tensor: a stored weight's initializer, else the float tensor."""
    if qdq.op_type == "DequantizeLinear" and qdq.role in CONSTANT_ROLES:
        return qdq.input
    return qdq.quantized_tensor or qdq.input


def _names(model: QdqModel, qdq: QdqNode) -> list[str]:
    names = [model.node(qdq.key).name or qdq.key]
    consumer = weight_consumer(model, qdq)
    if consumer is not None:
        names.append(model.node(consumer[0]).name or consumer[0])
    return names


def weight_consumer(model: QdqModel, qdq: QdqNode) -> tuple[str, int] | None:
    """(compute node key, input index) reading the float side of a weight / bias, if any."""
    dq = model.qdq(qdq.partner) if qdq.op_type == "QuantizeLinear" and qdq.partner else qdq
    for key in model.consumers_of(dq.output):
        inputs = model.node(key).inputs
        if dq.output in inputs:
            return key, inputs.index(dq.output)
    return None


def integer_side(model: QdqModel, qdq: QdqNode) -> tuple[TensorQuantization, int, int]:
    """(scales and zero points, q_min, q_max) of *qdq*; unknown or not integer: an error."""
    side = side_of(model, qdq)
    if not side.known:
        raise NumericsError(f"{qdq.key}: the scale or zero point is not known from the file")
    if not is_integer(side.dtype) or side.dtype is None:
        raise NumericsError(f"{qdq.key}: {side.dtype or 'unknown'} is not an integer type")
    return (side, *integer_range(side.dtype))


def saturated(floats: np.ndarray, scale: np.ndarray | np.float64,
              zero: np.ndarray | np.int64, q_min: int, q_max: int) -> np.ndarray:
    """Where QuantizeLinear saturates: ``round(x / s) + z`` (float32 division) off the grid."""
    unsaturated = np.rint(floats.astype(np.float32) / np.asarray(scale).astype(np.float32)) \
        + zero
    return (unsaturated < q_min) | (unsaturated > q_max)


def grid_stats(model: QdqModel, qdq: QdqNode, constants: ModelConstants, *, bins: int = 64,
               float_constants: ModelConstants | None = None) -> GridStats:
    """Statistics of the constant tensor *qdq* quantizes, read from the model (and
    *float_constants*, the float model); activations: :class:`ActivationGrid`."""
    side, q_min, q_max = integer_side(model, qdq)
    consumer = weight_consumer(model, qdq) if qdq.role in CONSTANT_ROLES else None
    floats, codes, source = _constant_values(model, qdq, consumer, constants, float_constants)
    shape = tuple((codes if codes is not None else floats).shape)
    scale, zero, channel = broadcast_params(qdq, side.scales, side.zero_points, shape)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise NumericsError(f"{qdq.key}: a scale is zero, negative, NaN or infinite")
    if floats is not None and not np.all(np.isfinite(floats)):
        raise NumericsError(f"{qdq.key}: the float values hold NaN or infinity")
    if floats is None:
        floats = ((codes - zero) * scale).astype(np.float32)
        source = "dequantized"
    elif floats.shape != shape:
        raise NumericsError(f"{qdq.key}: float values of shape {floats.shape}, integers "
                            f"of shape {shape}")
    if codes is None:
        codes = quantize(floats, scale, zero, q_min, q_max)
    low_bound = scale * (q_min - zero)
    high_bound = scale * (q_max - zero)
    outside = saturated(floats, scale, zero, q_min, q_max)
    count = len(side.scales)
    if count == 1 and consumer is not None:  # the output channels of a per-tensor weight
        axis = output_channel_axis(model, consumer[0], len(shape))
        if axis is not None:
            channel, count = _axis_index(shape, axis), shape[axis]
    channels = _channel_ranges(floats, codes, channel, low_bound, high_bound, count,
                               q_max - q_min + 1)
    span = _span(codes, q_max - q_min + 1)
    channel_mean = float(np.mean([c.grid_used for c in channels])) if channels else span
    float_low = float(min(floats.min(initial=np.inf), low_bound.min(initial=np.inf)))
    float_high = float(max(floats.max(initial=-np.inf), high_bound.max(initial=-np.inf)))
    counts, edges = _float_histogram(qdq, floats, bins, float_low, float_high)
    code_counts, code_edges = _code_histogram(codes, q_min, q_max, bins)
    return GridStats(
        tensor=tensor_name(qdq), qdq=qdq.key,
        consumer=consumer[0] if consumer else None, role=qdq.role.value, dtype=side.dtype,
        granularity=qdq.granularity.value, axis=side.axis, q_min=q_min, q_max=q_max,
        elements=int(floats.size), float_source=source,
        low=float(floats.min(initial=0.0)), high=float(floats.max(initial=0.0)),
        representable_low=float(low_bound.min(initial=0.0)),
        representable_high=float(high_bound.max(initial=0.0)),
        clipped=float(np.count_nonzero(outside) / max(1, floats.size)),
        grid_used=channel_mean if len(side.scales) > 1 else span,
        grid_used_min=(min(c.grid_used for c in channels) if channels else span),
        channel_grid_mean=channel_mean,
        codes_used=int(np.unique(codes).size),
        float_edges=tuple(float(e) for e in edges), float_counts=tuple(int(c) for c in counts),
        code_edges=tuple(float(e) for e in code_edges),
        code_counts=tuple(int(c) for c in code_counts),
        channels=channels,
    )


def output_channel_axis(model: QdqModel, consumer: str, rank: int) -> int | None:
    """The weight axis of a Conv / Gemm / MatMul that indexes its output channels."""
    node = model.node(consumer)
    if rank < 2:
        return None
    if node.op_type in ("Conv", "ConvTranspose"):
        return 0 if node.op_type == "Conv" else 1
    if node.op_type == "Gemm":
        return 0 if dict(node.attributes).get("transB", "0") == "1" else 1
    if node.op_type == "MatMul":
        return rank - 1
    return None


def _axis_index(shape: tuple[int, ...], axis: int) -> np.ndarray:
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(np.arange(shape[axis]).reshape(view), shape)


def _constant_values(model: QdqModel, qdq: QdqNode, consumer: tuple[str, int] | None,
                     constants: ModelConstants, float_constants: ModelConstants | None
                     ) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(float values or None, integer codes or None, where the float values come from)."""
    stored = constants.array(qdq.input)
    if stored is None:
        raise NumericsError(f"{qdq.key}: {qdq.input!r} is not a constant of the model")
    if qdq.op_type == "QuantizeLinear":  # a float weight kept in the model
        return stored.astype(np.float32), None, "model"
    codes = stored.astype(np.int64)
    if float_constants is not None:
        original = _float_weight(model, qdq, consumer, float_constants)
        if original is not None and original.shape == codes.shape:
            return original.astype(np.float32), codes, "float model"
    return None, codes, "dequantized"


def _float_weight(model: QdqModel, qdq: QdqNode, consumer: tuple[str, int] | None,
                  float_constants: ModelConstants) -> np.ndarray | None:
    """The float model's value of a weight: the initializer its node (same name) reads at
    the same input, else the initializer named like the quantized one without
    ``_quantized`` (ONNX Runtime's naming)."""
    if consumer is not None:
        node_name = model.node(consumer[0]).name
        name = float_constants.node_input(node_name, consumer[1])
        if name is not None:
            found = float_constants.array(name)
            if found is not None:
                return found
    return float_constants.array(qdq.input.removesuffix("_quantized"))


def _span(codes: np.ndarray, levels: int) -> float:
    if codes.size == 0:
        return 0.0
    return float(int(codes.max()) - int(codes.min()) + 1) / levels


def _channel_ranges(floats: np.ndarray, codes: np.ndarray, channel: np.ndarray,
                    low_bound: np.ndarray, high_bound: np.ndarray, count: int, levels: int
                    ) -> tuple[ChannelRange, ...]:
    if count <= 1:
        return ()
    index = channel.reshape(-1)
    order = np.argsort(index, kind="stable")
    starts = np.searchsorted(index[order], np.arange(count))
    if np.any(np.diff(np.append(starts, index.size)) == 0):
        raise NumericsError("a channel without values")
    def per(values: np.ndarray, reduce: np.ufunc) -> np.ndarray:
        return reduce.reduceat(values.reshape(-1)[order], starts)
    low, high = per(floats, np.minimum), per(floats, np.maximum)
    code_low, code_high = per(codes, np.minimum), per(codes, np.maximum)
    bound_low, bound_high = per(low_bound, np.minimum), per(high_bound, np.maximum)
    return tuple(ChannelRange(float(low[i]), float(high[i]), float(bound_low[i]),
                              float(bound_high[i]),
                              float(int(code_high[i]) - int(code_low[i]) + 1) / levels)
                 for i in range(count))


def _code_histogram(codes: np.ndarray, q_min: int, q_max: int, bins: int,
                    weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One bin per code for types of at most 256 levels, else *bins* bins over the codes
    (*weights*: how many values each of *codes*, then distinct, stands for)."""
    if q_max - q_min + 1 <= PER_CODE_LEVELS:
        counts = np.bincount((codes - q_min).reshape(-1), weights=weights,
                             minlength=q_max - q_min + 1)
        return counts, np.arange(q_min, q_max + 2, dtype=np.float64) - 0.5
    low, high = (int(codes.min()), int(codes.max())) if codes.size else (0, 1)
    return np.histogram(codes, bins=bins, range=(low - 0.5, high + 0.5), weights=weights)


class CodeTally:
    """How many values fell on each integer code: the distinct codes (sorted) and their
    counts, merged batch by batch; more than :data:`MAX_DISTINCT_CODES` is an error."""

    def __init__(self, qdq: QdqNode) -> None:
        self.qdq = qdq
        self.codes = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)

    def add(self, codes: np.ndarray) -> None:
        new, counts = np.unique(codes, return_counts=True)
        merged, where = np.unique(np.concatenate([self.codes, new]), return_inverse=True)
        if merged.size > MAX_DISTINCT_CODES:
            raise NumericsError(f"{self.qdq.key}: more than {MAX_DISTINCT_CODES:,} distinct "
                                "integer codes, each of which the activation's statistics "
                                "would count")
        total = np.zeros(merged.size, np.int64)
        np.add.at(total, where, np.concatenate([self.counts, counts]))
        self.codes, self.counts = merged, total


class ActivationGrid:
    """:func:`grid_stats` of an activation (one scale) whose values arrive batch by batch
    (:meth:`add`), kept as running figures: the float histogram's range is the
    representable range widened to the values' extremes, known only once all have been
    seen. Counted over the representable range as they arrive, it is exact when nothing
    fell outside; otherwise :attr:`needs_second_pass` asks for the values again
    (:meth:`recount`). A problem is kept, and raised by :meth:`stats`."""

    def __init__(self, model: QdqModel, qdq: QdqNode, bins: int) -> None:
        self.qdq, self.bins = qdq, bins
        self.failure: NumericsError | None = None
        self.elements = self.outside = 0
        self.smallest, self.largest = math.inf, -math.inf
        self.tally = CodeTally(qdq)
        self.counts: np.ndarray | None = None
        self.recounted = False
        try:
            self._read_side(model)
        except NumericsError as error:
            self.failure = error

    def _read_side(self, model: QdqModel) -> None:
        side, self.q_min, self.q_max = integer_side(model, self.qdq)
        if len(side.scales) != 1:
            raise NumericsError(f"{self.qdq.key}: an activation with {len(side.scales)} "
                                "scales; its values are collected flattened, so only a "
                                "per-tensor activation is drawn")
        self.side = side
        self.scale, self.zero = np.float64(side.scales[0]), np.int64(side.zero_points[0])
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise NumericsError(f"{self.qdq.key}: a scale is zero, negative, NaN or infinite")
        self.bounds = (float(self.scale * (self.q_min - self.zero)),
                       float(self.scale * (self.q_max - self.zero)))
        try:  # a representable range numpy cannot cut: counted in the second pass
            _float_histogram(self.qdq, np.zeros(0), self.bins, *self.bounds)
            self.counts = np.zeros(self.bins, np.int64)
        except NumericsError:
            self.counts = None

    def add(self, values: np.ndarray) -> None:
        """Fold one batch of float values in."""
        if self.failure is None:
            try:
                self._add(np.asarray(values, np.float32).reshape(-1))
            except NumericsError as error:
                self.failure, self.tally = error, CodeTally(self.qdq)

    def _add(self, floats: np.ndarray) -> None:
        if not np.all(np.isfinite(floats)):
            raise NumericsError(f"{self.qdq.key}: the float values hold NaN or infinity")
        self.tally.add(quantize(floats, self.scale, self.zero, self.q_min, self.q_max))
        self.outside += int(np.count_nonzero(saturated(floats, self.scale, self.zero,
                                                       self.q_min, self.q_max)))
        self.elements += int(floats.size)
        if floats.size:
            self.smallest = min(self.smallest, float(floats.min()))
            self.largest = max(self.largest, float(floats.max()))
        if self.counts is not None:
            self.counts += _float_histogram(self.qdq, floats, self.bins, *self.bounds)[0]

    def float_range(self) -> tuple[float, float]:
        """The float histogram's range: the representable range and the values' extremes."""
        if not self.elements:
            return math.inf, -math.inf  # as grid_stats: no finite histogram
        return min(self.smallest, self.bounds[0]), max(self.largest, self.bounds[1])

    @property
    def needs_second_pass(self) -> bool:
        """Values fell outside the representable range: the histogram is counted again."""
        if self.failure is not None or not self.elements or self.recounted:
            return False
        return self.counts is None or self.float_range() != self.bounds

    def recount(self, values: np.ndarray) -> None:
        """Second pass: count one batch of the same values again over the final range."""
        if self.failure is not None:
            return
        if not self.recounted:
            self.counts, self.recounted = np.zeros(self.bins, np.int64), True
        try:
            self.counts += _float_histogram(self.qdq, np.asarray(values, np.float32),
                                            self.bins, *self.float_range())[0]
        except NumericsError as error:
            self.failure = error

    def stats(self) -> GridStats:
        """The statistics of every value added (the failure kept, if any, is raised)."""
        if self.failure is not None:
            raise self.failure
        if self.needs_second_pass:
            raise RuntimeError(f"{self.qdq.key}: the values were not given again")
        _empty, edges = _float_histogram(self.qdq, np.zeros(0), self.bins, *self.float_range())
        levels = self.q_max - self.q_min + 1
        span = _span(self.tally.codes, levels)
        code_counts, code_edges = _code_histogram(self.tally.codes, self.q_min, self.q_max,
                                                  self.bins, weights=self.tally.counts)
        return GridStats(
            tensor=tensor_name(self.qdq), qdq=self.qdq.key, consumer=None,
            role=self.qdq.role.value, dtype=str(self.side.dtype),
            granularity=self.qdq.granularity.value, axis=self.side.axis, q_min=self.q_min,
            q_max=self.q_max, elements=self.elements, float_source="inputs",
            low=min(self.smallest, 0.0), high=max(self.largest, 0.0),
            representable_low=min(self.bounds[0], 0.0),
            representable_high=max(self.bounds[1], 0.0),
            clipped=self.outside / max(1, self.elements), grid_used=span, grid_used_min=span,
            channel_grid_mean=span, codes_used=int(self.tally.codes.size),
            float_edges=tuple(float(e) for e in edges),
            float_counts=tuple(int(c) for c in self.counts),  # type: ignore[union-attr]
            code_edges=tuple(float(e) for e in code_edges),
            code_counts=tuple(int(c) for c in code_counts), channels=())


def caption_numbers(stats: GridStats) -> str:
    """The key numbers of one tensor in one sentence (caption and alt text)."""
    granularity = stats.granularity
    if stats.per_channel:
        granularity += f", {len(stats.channels)} channels"
    grid = f"grid span used {stats.grid_used:.0%}"
    if stats.per_channel:
        grid += f" on average, {stats.grid_used_min:.0%} in the narrowest channel"
    elif stats.channels:
        grid += (f"; its {len(stats.channels)} output channels span "
                 f"{stats.channel_grid_mean:.0%} of it on average, "
                 f"{stats.grid_used_min:.0%} the narrowest")
    return (f"{stats.tensor} ({stats.role}, {stats.dtype}, {granularity}): values "
            f"{stats.low:.4g} … {stats.high:.4g} against the representable "
            f"{stats.representable_low:.4g} … {stats.representable_high:.4g}; "
            f"{stats.clipped:.2%} clipped; {grid}; {stats.codes_used} of {stats.levels} "
            f"codes used (float values: {stats.float_source})")
