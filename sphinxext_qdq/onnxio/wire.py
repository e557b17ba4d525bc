"""Where the weight bytes of an ONNX file are, found without parsing them.

Parsing a model with protobuf copies every initializer's ``raw_data`` into memory,
although the analysis needs only the dtype and dims of a weight: for a 50 MB model
that copy costs more than the rest of the analysis. :func:`without_bulk_data`
walks the protobuf wire format of the file (only the fields down to the main
graph's initializers, skipping everything else by its length) and returns the
model's bytes without the ``raw_data`` of large initializers, plus where those
bytes lie in the file. The loader parses the smaller buffer and turns each such
tensor into an external-data reference to the model file itself, so the values of
the few large tensors the analysis does need (a blocked scale) are read on
demand, like any external data.

Anything unexpected (a malformed file, a field repeated where protobuf would merge
it, a ``raw_data`` whose length does not match dtype and dims) makes
:func:`without_bulk_data` return ``None``: the caller parses the whole file, and
protobuf's own checks decide.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from sphinxext_qdq.onnxio import dtypes

#: ``raw_data`` longer than this is left in the file (64 KiB: scales and zero points,
#: even per-channel ones, stay inline; only weights are left out).
BULK_BYTES = 64 * 1024

# Field numbers of onnx.proto.
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_RAW_DATA = 1, 2, 9
_LENGTH_DELIMITED, _VARINT = 2, 0



class BulkData(NamedTuple):
    """The ``raw_data`` of the *index*-th main-graph initializer: ``length`` bytes
    at ``offset`` in the file."""

    index: int
    offset: int
    length: int


class _Malformed(Exception):
    """The wire data is not what a plain ONNX file holds: parse the whole file instead."""


def without_bulk_data(buffer: memoryview, min_bytes: int = BULK_BYTES
                      ) -> tuple[bytes, list[BulkData]] | None:
    """The serialized model in *buffer* minus the ``raw_data`` of main-graph initializers
    larger than *min_bytes*, and where those bytes are; ``None`` when there is no such
    initializer or the wire data is unusual (then parse *buffer* itself)."""
    try:
        return _rewritten(buffer, min_bytes)
    except (_Malformed, IndexError, ValueError):
        return None


def _varint(buffer: memoryview, position: int) -> tuple[int, int]:
    byte = buffer[position]
    if byte < 0x80:
        return byte, position + 1
    value, shift = byte & 0x7F, 7
    while True:
        position += 1
        byte = buffer[position]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position + 1
        shift += 7
        if shift > 63:
            raise _Malformed


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Field(NamedTuple):
    number: int
    wire_type: int
    start: int  # where the key starts
    value_start: int  # for length-delimited fields: after the length
    end: int


def _fields(buffer: memoryview, start: int, end: int):
    """Every field between *start* and *end*, in order."""
    position = start
    while position < end:
        field_start = position
        key, position = _varint(buffer, position)
        wire_type = key & 7
        if wire_type == _LENGTH_DELIMITED:
            length, position = _varint(buffer, position)
            value_start, position = position, position + length
        elif wire_type == _VARINT:
            value_start = position
            _, position = _varint(buffer, position)
        elif wire_type in (1, 5):  # fixed 64 / 32 bits
            value_start, position = position, position + (8 if wire_type == 1 else 4)
        else:  # groups are not used by onnx.proto
            raise _Malformed
        if position > end:
            raise _Malformed
        yield _Field(key >> 3, wire_type, field_start, value_start, position)


def _rewritten(buffer: memoryview, min_bytes: int) -> tuple[bytes, list[BulkData]] | None:
    model_fields = list(_fields(buffer, 0, len(buffer)))
    graphs = [f for f in model_fields if f.number == _MODEL_GRAPH]
    if len(graphs) != 1 or graphs[0].wire_type != _LENGTH_DELIMITED:
        return None  # no graph, or several pieces protobuf would merge
    graph_pieces, bulk = _graph_without_bulk(buffer, graphs[0], min_bytes)
    if not bulk:
        return None
    graph = b"".join(graph_pieces)
    pieces = []
    for field in model_fields:
        if field is graphs[0]:
            pieces += [_encode_varint(_MODEL_GRAPH << 3 | _LENGTH_DELIMITED),
                       _encode_varint(len(graph)), graph]
        else:
            pieces.append(buffer[field.start:field.end])
    return b"".join(pieces), bulk


def _graph_without_bulk(buffer: memoryview, graph: _Field, min_bytes: int
                        ) -> tuple[list, list[BulkData]]:
    """The graph's fields with the large initializers rewritten. The loop decodes keys
    and lengths inline: a graph has a field per node, and the generator of
    :func:`_fields` costs more per field than the rest of the walk."""
    pieces: list = []
    bulk: list[BulkData] = []
    copied_from = graph.value_start  # start of the bytes not copied yet
    index = -1
    position, end = graph.value_start, graph.end
    initializer_key = _GRAPH_INITIALIZER << 3 | _LENGTH_DELIMITED
    while position < end:
        field_start = position
        key = buffer[position]
        position += 1
        if key >= 0x80:
            key, position = _varint(buffer, field_start)
        wire_type = key & 7
        if wire_type == _LENGTH_DELIMITED:
            length = buffer[position]
            if length < 0x80:
                position += 1
            else:
                length, position = _varint(buffer, position)
            value_start = position
            position += length
        elif wire_type == _VARINT:
            _, position = _varint(buffer, position)
        elif wire_type == 1 or wire_type == 5:  # fixed 64 / 32 bits
            position += 8 if wire_type == 1 else 4
        else:  # groups are not used by onnx.proto
            raise _Malformed
        if position > end:
            raise _Malformed
        if key >> 3 != _GRAPH_INITIALIZER:
            continue
        index += 1
        if key != initializer_key or length <= min_bytes:
            continue
        field = _Field(_GRAPH_INITIALIZER, _LENGTH_DELIMITED, field_start, value_start, position)
        tensor = _tensor_without_raw_data(buffer, field, min_bytes)
        if tensor is None:
            continue
        content, offset, raw_length = tensor
        pieces += [buffer[copied_from:field_start], _encode_varint(initializer_key),
                   _encode_varint(len(content)), content]
        copied_from = position
        bulk.append(BulkData(index, offset, raw_length))
    pieces.append(buffer[copied_from:end])
    return pieces, bulk


def _tensor_without_raw_data(buffer: memoryview, tensor: _Field, min_bytes: int
                             ) -> tuple[bytes, int, int] | None:
    """(the TensorProto without its raw_data, offset and length of the raw_data), or
    None unless it has exactly one raw_data field, large, of the size its dims need."""
    fields = list(_fields(buffer, tensor.value_start, tensor.end))
    raw = [f for f in fields if f.number == _TENSOR_RAW_DATA]
    if len(raw) != 1 or raw[0].wire_type != _LENGTH_DELIMITED:
        return None
    length = raw[0].end - raw[0].value_start
    if length <= min_bytes or length != _expected_bytes(buffer, fields):
        return None
    content = b"".join(buffer[f.start:f.end] for f in fields if f is not raw[0])
    return content, raw[0].value_start, length


def _expected_bytes(buffer: memoryview, fields: list[_Field]) -> int:
    """Bytes the tensor's dtype and dims call for (-1 when unknown)."""
    dims: list[int] = []
    data_type = [0]
    for field in fields:
        if field.number == _TENSOR_DATA_TYPE and field.wire_type == _VARINT:
            data_type.append(_varint(buffer, field.value_start)[0])
        elif field.number == _TENSOR_DIMS and field.wire_type == _VARINT:
            dims.append(_varint(buffer, field.value_start)[0])
        elif field.number == _TENSOR_DIMS and field.wire_type == _LENGTH_DELIMITED:
            position = field.value_start
            while position < field.end:
                value, position = _varint(buffer, position)
                dims.append(value)
    element = dtypes.BY_CODE.get(data_type[-1])
    bits = element.bits if element is not None else None
    if bits is None or any(d >= 1 << 62 for d in dims):  # negative int64 dims
        return -1
    return -(-math.prod(dims) * bits // 8)
