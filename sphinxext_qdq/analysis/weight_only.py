"""Weight-only quantization: integer weights turned back into floats next to float
activations.

* ``MatMulNBits(A, B, scales, [zero_points], [g_idx], [bias])`` (``com.microsoft``):
  B packed ``bits``-bit values ``[N, k_blocks, blob]``, one scale per block of
  ``block_size`` along K;
* ``GatherBlockQuantized(data, indices, scales, [zero_points])`` (``com.microsoft``):
  an embedding table quantized in blocks along ``quantize_axis``;
* by hand: an INT8 / UINT8 / INT4 initializer -> ``Cast`` to float -> (``Sub`` of a zero
  point) -> ``Mul`` by a stored scale.

(DequantizeLinear-only blocked INT4 weights are QDQ and handled by the Q/DQ analysis.)
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from sphinxext_qdq.analysis.records import (
    QDQ_DOMAINS,
    Granularity,
    QuantFormat,
    QuantOp,
    QuantOperand,
    Role,
)

if TYPE_CHECKING:
    from sphinxext_qdq.analysis.patterns import _Analysis, _Node

#: Stored integer types a hand-written Cast -> Mul dequantizes.
_WEIGHT_TYPES = frozenset({"INT8", "UINT8", "INT4", "UINT4", "INT16", "UINT16", "INT2",
                           "UINT2"})
_FLOAT_TYPES = frozenset({"FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE"})


def find_weight_only_ops(analysis: _Analysis, taken: set[str]) -> list[QuantOp]:
    """MatMulNBits, GatherBlockQuantized and Cast(INT8 weight) -> Mul(scale) patterns."""
    ops = []
    for node in analysis.nodes:
        if node.key in taken or node.domain not in QDQ_DOMAINS:
            continue
        if node.op_type == "MatMulNBits":
            ops.append(_matmul_nbits(analysis, node))
        elif node.op_type == "GatherBlockQuantized":
            ops.append(_gather_block_quantized(analysis, node))
        elif node.op_type == "Cast":
            op = _cast_mul(analysis, node)
            if op is not None:
                ops.append(op)
    return ops


def _blocked_weight(analysis: _Analysis, node: _Node, tensor_index: int, scale_index: int,
                    zero_index: int, *, bits: int, block_size: int, axis: int | None
                    ) -> QuantOperand:
    tensor = _input(node, tensor_index)
    scale = _input(node, scale_index)
    zero_point = _input(node, zero_index)
    if scale:
        analysis.use_param(scale, "scale", node, scale_index)
    if zero_point:
        analysis.use_param(zero_point, "zero_point", node, zero_index)
    dtype = analysis.type_of(node.graph, tensor)[0]
    if dtype in (None, "UINT8") and bits < 8:
        dtype = f"UINT{bits}"  # packed two (or four) to a byte
    return QuantOperand(
        key=f"{node.key}:weight", node=node.key, op_type=node.op_type, role=Role.WEIGHT,
        label="weight", index=tensor_index, tensor=tensor, scale=scale or None,
        scale_index=scale_index if scale else None, zero_point=zero_point or None,
        zero_point_index=zero_index if zero_point else None, quant_dtype=dtype,
        granularity=Granularity.BLOCKED, axis=axis, block_size=block_size or None, bits=bits,
        graph=node.graph.path)


def _matmul_nbits(analysis: _Analysis, node: _Node) -> QuantOp:
    bits = analysis.int_attribute(node, "bits", 4)
    block_size = analysis.int_attribute(node, "block_size", 0)
    weight = _blocked_weight(analysis, node, 1, 2, 3, bits=bits, block_size=block_size,
                             axis=1)  # along K of the logical [N, K] weight
    k, n = analysis.int_attribute(node, "K", 0), analysis.int_attribute(node, "N", 0)
    blocks = -(-k // block_size) if block_size > 0 else 0
    if weight.zero_point:
        zero = _unpack_param(analysis, weight.zero_point, bits, n, blocks)
    elif 0 < bits <= 8:
        zero = f"no zero points (default {2 ** (bits - 1)})"
        weight = dataclasses.replace(weight, zero_point_default=2 ** (bits - 1))
    else:
        zero = f"no zero points; bits = {bits} is outside 1 … 8"
    note = f"{bits}-bit weight [N={n}, K={k}] in blocks of {block_size} along K; {zero}"
    return QuantOp(node=node.key, op_type=node.op_type, format=QuantFormat.WEIGHT_ONLY,
                   operands=(weight,), members=(node.key,), note=note, graph=node.graph.path)


def _unpack_param(analysis: _Analysis, name: str, bits: int, rows: int, count: int,
                  shape: tuple[int, ...] | None = None) -> str:
    """Restate packed UINT8 zero points (MatMulNBits; GatherBlockQuantized on UINT8 data)
    as the ``rows`` × ``count`` ``bits``-bit values the op uses (recorded with *shape*,
    by default ``(rows, count)`` or ``(rows * count,)`` as they were stored); say how
    they are stored."""
    param = analysis.param_record(name)
    if param is None or param.values is None or not 0 < bits <= 8:
        return "zero points stored"
    per_byte = f", {8 // bits} per byte" if 8 % bits == 0 else ""
    unpacked_note = f"zero points stored packed ({bits} bits each{per_byte}), shown unpacked"
    if param.dtype == f"UINT{bits}" and len(param.values) == rows * count:
        return unpacked_note  # another node sharing them unpacked them
    if param.dtype != "UINT8":  # the scales' float type (or INT4 ...): not packed
        return f"zero points stored unpacked ({param.dtype or 'unknown type'})"
    if bits == 8:
        return "zero points stored, one per byte"
    unpacked = unpack_bits(param.values, bits, rows, count)
    if unpacked is None:
        return (f"zero points stored packed, but {len(param.values)} bytes are not "
                f"{rows} rows of {math.ceil(count * bits / 8)}: shown as stored")
    if shape is None:  # as the scales are stored: [N, blocks] or [N * blocks]
        shape = (rows, count) if param.shape is not None and len(param.shape) == 2 \
            else (rows * count,)
    param.values, param.dtype, param.shape = unpacked, f"UINT{bits}", shape
    return unpacked_note


def unpack_bits(packed: tuple, bits: int, rows: int, count: int) -> tuple[int, ...] | None:
    """The first *count* ``bits``-bit fields of each of *rows* rows of bytes (each row
    ``ceil(count * bits / 8)`` bytes, lowest bits first); None when the sizes differ."""
    per_row = math.ceil(count * bits / 8)
    if not 0 < bits < 8 or rows <= 0 or count <= 0 or len(packed) != rows * per_row:
        return None
    array = np.asarray(packed, dtype=np.uint8).reshape(rows, per_row)
    fields = np.unpackbits(array, axis=1, bitorder="little")[:, :count * bits]
    weights = 1 << np.arange(bits, dtype=np.int64)
    values = (fields.reshape(rows, count, bits).astype(np.int64) * weights).sum(axis=2)
    return tuple(int(v) for v in values.ravel())


def _gather_block_quantized(analysis: _Analysis, node: _Node) -> QuantOp:
    bits = analysis.int_attribute(node, "bits", 4)
    block_size = analysis.int_attribute(node, "block_size", 128)
    axis = analysis.int_attribute(node, "quantize_axis", 1)
    data_dtype, shape = analysis.type_of(node.graph, _input(node, 0))
    if axis < 0 and shape is not None:
        axis += len(shape)
    weight = _blocked_weight(analysis, node, 0, 2, 3, bits=bits, block_size=block_size,
                             axis=axis)
    note = f"{bits}-bit table in blocks of {block_size} along axis {axis}; rows gathered " \
        "then dequantized"
    if weight.zero_point:
        note += "; " + _unpack_table_zero_points(analysis, weight, bits)
    elif data_dtype == "UINT8" and 0 < bits <= 8:  # the MatMulNBits convention
        weight = dataclasses.replace(weight, zero_point_default=2 ** (bits - 1))
        note += f"; no zero points (default {2 ** (bits - 1)})"
    elif data_dtype in ("INT4", "UINT4"):
        weight = dataclasses.replace(weight, zero_point_default=0)
    return QuantOp(node=node.key, op_type=node.op_type, format=QuantFormat.WEIGHT_ONLY,
                   operands=(weight,), members=(node.key,), note=note, graph=node.graph.path)


def _unpack_table_zero_points(analysis: _Analysis, weight: QuantOperand, bits: int) -> str:
    """GatherBlockQuantized on UINT8 data packs its zero points along the last axis, like
    the data; one per scale once unpacked."""
    scale_shape = analysis.param_shape(weight.scale or "")
    if not scale_shape:
        return "zero points stored"
    rows = math.prod(scale_shape[:-1])
    return _unpack_param(analysis, weight.zero_point or "", bits, rows, scale_shape[-1],
                         tuple(scale_shape))


def _cast_mul(analysis: _Analysis, cast: _Node) -> QuantOp | None:
    """``Cast`` of a stored integer tensor to float, then ``[Sub(zp)] -> Mul(scale)``."""
    graph = cast.graph
    weight = _input(cast, 0)
    if not weight or not analysis.is_stored(weight, graph):
        return None
    w_dtype, w_shape = analysis.type_of(graph, weight)
    out = cast.outputs[0] if cast.outputs else ""
    if w_dtype not in _WEIGHT_TYPES or analysis.type_of(graph, out)[0] not in _FLOAT_TYPES:
        return None
    members = [cast.key]
    flowing = out
    step, zero_point, zero_user = _sole_reader(graph, out), "", None
    if step is not None and step.op_type == "Sub" and step.inputs[:1] == [out] \
            and len(step.inputs) > 1 and analysis.is_stored(step.inputs[1], graph):
        zero_point, zero_user = step.inputs[1], (step, 1)
        members.append(step.key)
        flowing = step.outputs[0] if step.outputs else ""
        step = _sole_reader(graph, flowing)
    if step is None or step.op_type != "Mul" or len(step.inputs) != 2 \
            or flowing not in step.inputs:
        return None
    position = 1 if step.inputs[0] == flowing else 0
    scale = step.inputs[position]
    if not analysis.is_stored(scale, graph) or \
            analysis.type_of(graph, scale)[0] not in _FLOAT_TYPES:
        return None
    members.append(step.key)
    analysis.use_param(scale, "scale", step, position)
    if zero_point:
        analysis.use_param(zero_point, "zero_point", *zero_user)  # type: ignore[misc]
    granularity, axis = _broadcast_granularity(analysis.param_shape(scale), w_shape)
    operand = QuantOperand(
        key=f"{cast.key}:weight", node=cast.key, op_type=cast.op_type, role=Role.WEIGHT,
        label="weight", index=0, tensor=weight, scale=scale, scale_index=position,
        zero_point=zero_point or None, zero_point_index=zero_user[1] if zero_user else None,
        quant_dtype=w_dtype, granularity=granularity, axis=axis, block_size=None,
        graph=graph.path)
    result = step.outputs[0] if step.outputs else ""
    note = f"{w_dtype} weight dequantized by hand: Cast{' -> Sub' if zero_point else ''} " \
        f"-> Mul into {result!r}"
    return QuantOp(node=cast.key, op_type=cast.op_type, format=QuantFormat.WEIGHT_ONLY,
                   operands=(operand,), members=tuple(members), note=note, graph=graph.path)


def _broadcast_granularity(scale_shape: tuple[int, ...] | None, weight_shape: object
                           ) -> tuple[Granularity, int | None]:
    """A scale broadcast against the weight: one value, one non-1 axis, or more."""
    if scale_shape is None:
        return Granularity.UNKNOWN, None
    if math.prod(scale_shape) == 1:
        return Granularity.PER_TENSOR, None
    axes = [i for i, d in enumerate(scale_shape) if d != 1]
    if len(axes) != 1:
        return Granularity.BLOCKED, None
    rank = len(weight_shape) if isinstance(weight_shape, tuple) else len(scale_shape)
    return Granularity.PER_AXIS, axes[0] + rank - len(scale_shape)


def _sole_reader(graph: object, tensor: str) -> _Node | None:
    readers = graph.consumers.get(tensor, []) if tensor else []  # type: ignore[attr-defined]
    return readers[0][0] if len(readers) == 1 else None


def _input(node: _Node, index: int) -> str:
    return node.inputs[index] if 0 <= index < len(node.inputs) else ""
