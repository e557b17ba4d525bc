"""Reading ONNX protobufs safely: parsing, text-field repair, tensors and external data.

Everything here works on bytes and ``onnx`` messages and knows nothing of the analysis:
:func:`parse_model_bytes` refuses anything that is not a plausible ONNX model with a
:class:`QdqModelError` naming the file and the reason (never a protobuf traceback),
:func:`parse_lean` leaves the bulk of a large file's weights unparsed (:mod:`.wire`), and
:func:`read_tensor_array` reads external data only from inside the model's folder.
"""

from __future__ import annotations

import errno
import math
import os
import threading
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from sphinxext_qdq.onnxio import dtypes, files
from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.onnxio.wire import without_bulk_data

#: Files at least this large are parsed without their bulk data (:mod:`.wire`); a smaller
#: file is parsed whole, which costs less than walking its wire format in Python.
LEAN_PARSE_BYTES = 16 * 1024 * 1024

#: Largest ONNX IR version accepted as plausible (IR 13 is current in 2025).
_MAX_IR_VERSION = 64

_lock = threading.Lock()
_parse_count = 0


def parse_count() -> int:
    """How many model files this process has parsed."""
    return _parse_count


def parse_model_bytes(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> onnx.ModelProto:
    """Parse serialized ONNX bytes without loading external data; refuse non-models."""
    global _parse_count
    if not data:
        raise QdqModelError(path, "the file is empty")
    with _lock:
        _parse_count += 1
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError, TypeError, OverflowError):
        raise QdqModelError(path, "not an ONNX model: the bytes do not decode as an ONNX "
                                  "protobuf (truncated, corrupted or another format)") from None
    _check_plausible_model(proto, path)
    return proto


# -- text fields ----------------------------------------------------------------
def _existing(message_type: type, names: tuple[str, ...]) -> tuple[str, ...]:
    fields = message_type.DESCRIPTOR.fields_by_name
    return tuple(name for name in names if name in fields)


_MODEL_TEXT = _existing(onnx.ModelProto, ("producer_name", "producer_version", "domain",
                                          "doc_string"))
_GRAPH_TEXT = _existing(onnx.GraphProto, ("name", "doc_string"))
_NODE_TEXT = _existing(onnx.NodeProto, ("name", "op_type", "domain", "doc_string", "overload"))
_ATTRIBUTE_TEXT = _existing(onnx.AttributeProto, ("name", "doc_string", "ref_attr_name"))
_NAMED_TEXT = ("name", "doc_string")  # TensorProto, ValueInfoProto
_FUNCTION_TEXT = _existing(onnx.FunctionProto, ("name", "domain", "doc_string", "overload"))


def repair_text_fields(proto: onnx.ModelProto) -> int:
    """Decode, in place, the string fields of *proto* (its subgraphs and its model-local
    functions) that are not valid UTF-8, with U+FFFD for the bad bytes; return how many
    there were.

    ONNX strings are proto2 ``string`` fields: protobuf accepts any bytes there, and the
    Python runtime then hands them out as ``bytes`` instead of ``str`` (one flipped byte
    in a name is enough), which no caller expects.
    """
    repaired = _repaired(proto, _MODEL_TEXT)
    for opset in proto.opset_import:
        repaired += _repaired(opset, ("domain",))
    pending = [proto.graph]
    for function in proto.functions:
        repaired += _repaired(function, _FUNCTION_TEXT)
        repaired += _repaired_list(function.input) + _repaired_list(function.output)
        repaired += _repaired_list(function.attribute)
        for attr in getattr(function, "attribute_proto", ()):
            repaired += _repaired(attr, _ATTRIBUTE_TEXT)
        repaired += _repaired_nodes(function.node, pending)
        for info in getattr(function, "value_info", ()):
            repaired += _repaired(info, _NAMED_TEXT)
    while pending:
        graph = pending.pop()
        repaired += _repaired(graph, _GRAPH_TEXT)
        repaired += _repaired_nodes(graph.node, pending)
        for tensor in graph.initializer:
            repaired += _repaired(tensor, _NAMED_TEXT)
            for entry in tensor.external_data:
                repaired += _repaired(entry, ("key", "value"))
        for info in (*graph.input, *graph.output, *graph.value_info):
            repaired += _repaired(info, _NAMED_TEXT)
            if info.type.HasField("tensor_type"):
                for dim in info.type.tensor_type.shape.dim:
                    repaired += _repaired(dim, ("dim_param",))
    return repaired


def _repaired_nodes(nodes: object, pending: list[onnx.GraphProto]) -> int:
    """Repair *nodes* and their attributes; their subgraphs are added to *pending*."""
    repaired = 0
    for node in nodes:  # type: ignore[attr-defined]
        if bytes in map(type, (node.name, node.op_type, node.domain, node.doc_string,
                               *node.input, *node.output)):
            repaired += _repaired(node, _NODE_TEXT)
            repaired += _repaired_list(node.input) + _repaired_list(node.output)
        for attr in node.attribute:
            repaired += _repaired(attr, _ATTRIBUTE_TEXT)
            if attr.type == onnx.AttributeProto.GRAPH:
                pending.append(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                pending.extend(attr.graphs)
    return repaired


def _repaired(message: object, names: tuple[str, ...]) -> int:
    count = 0
    for name in names:
        value = getattr(message, name)
        if type(value) is bytes:
            setattr(message, name, value.decode("utf-8", "replace"))
            count += 1
    return count


def _repaired_list(values: object) -> int:
    count = 0
    for index, value in enumerate(values):  # type: ignore[call-overload]
        if type(value) is bytes:
            values[index] = value.decode("utf-8", "replace")  # type: ignore[index]
            count += 1
    return count


# -- external data ------------------------------------------------------------
def read_tensor_array(tensor: onnx.TensorProto, model_dir: str | os.PathLike[str] | None) -> np.ndarray:
    """Values of *tensor*, reading external data only from inside *model_dir*.

    Raises :class:`QdqModelError` when the external data location is absolute,
    contains ``..``, leaves the folder through a symlink, or does not hold the
    bytes the tensor needs.
    """
    if not uses_external_data(tensor):
        return _decoded(tensor)
    return _decoded(_inline_external_tensor(tensor, model_dir))


def _decoded(tensor: onnx.TensorProto) -> np.ndarray:
    """``numpy_helper.to_array`` with a fast path for the plain types scales use."""
    if uses_external_data(tensor):  # numpy_helper would read it from the working directory
        raise QdqModelError(f"tensor {tensor.name!r}", "external data not validated")
    element = dtypes.BY_CODE.get(tensor.data_type)
    dtype = element.numpy if element is not None else None
    if dtype is not None:
        if tensor.raw_data:
            array = np.frombuffer(tensor.raw_data, dtype=dtype)
        elif element.name == "FLOAT":  # slicing copies upb fields fastest
            array = np.array(tensor.float_data[:], dtype=dtype)
        elif element.integer and element.field == "int32_data":
            array = np.array(tensor.int32_data[:], dtype=np.int64).astype(dtype)
        else:
            array = None
        if array is not None and array.size == math.prod(tensor.dims):
            return array.reshape(tuple(tensor.dims))
    return numpy_helper.to_array(tensor)


def uses_external_data(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def tensor_nbytes(tensor: onnx.TensorProto) -> int:
    """Bytes the values of *tensor* occupy, computed without touching its data."""
    return typed_nbytes(tensor.data_type, tensor.dims, tensor)


def typed_nbytes(data_type: int, dims: object, tensor: onnx.TensorProto) -> int:
    """:func:`tensor_nbytes` of *tensor* when its *data_type* and *dims* are known."""
    count = math.prod(dims)  # type: ignore[call-overload]
    element = dtypes.BY_CODE.get(data_type)
    if element is not None and element.bits is not None:
        return -(-count * element.bits // 8)
    if data_type == onnx.TensorProto.STRING:
        return sum(len(s) for s in tensor.string_data)
    try:
        return count * helper.tensor_dtype_to_np_dtype(data_type).itemsize
    except (KeyError, ValueError, TypeError):
        return 0


def _inline_external_tensor(tensor: onnx.TensorProto, model_dir: str | os.PathLike[str] | None
                            ) -> onnx.TensorProto:
    """A copy of *tensor* holding its external bytes as ``raw_data``, after validation."""
    where = f"tensor {tensor.name!r}"
    if model_dir is None:
        raise QdqModelError(where, "external data but no model folder to read it from")
    info = {entry.key: entry.value for entry in tensor.external_data}
    data_file = _contained_data_file(info.get("location", ""), Path(model_dir), where)
    offset = _non_negative_int(info.get("offset", "0"), "offset", where)
    expected = tensor_nbytes(tensor)
    length = _non_negative_int(info.get("length", str(expected)), "length", where)
    if length != expected:
        raise QdqModelError(where, f"external data length {length} does not match the "
                                   f"{expected} bytes its type and shape need")
    from sphinxext_qdq.onnxio.files import read_range

    try:
        raw = read_range(data_file, offset, length)
    except QdqModelError as error:
        raise QdqModelError(where, f"external data {location_of(tensor)!r}: {error.reason}"
                            ) from None
    inline = onnx.TensorProto()
    inline.name = tensor.name
    inline.data_type = tensor.data_type
    inline.dims.extend(tensor.dims)
    inline.raw_data = raw
    return inline


def location_of(tensor: onnx.TensorProto) -> str:
    """The ``location`` entry of a tensor's external data ("" when there is none)."""
    return next((e.value for e in tensor.external_data if e.key == "location"), "")


def external_data_file(tensor: onnx.TensorProto, model_dir: str | os.PathLike[str] | None
                       ) -> Path | None:
    """The file inside *model_dir* that the external data of *tensor* names, whether it
    exists or not; ``None`` when the location is refused (or there is no folder)."""
    if model_dir is None:
        return None
    location = next((e.value for e in tensor.external_data if e.key == "location"), "")
    try:
        return _contained_location(location, Path(model_dir), f"tensor {tensor.name!r}")
    except (QdqModelError, OSError, ValueError):
        return None


def _contained_data_file(location: str, model_dir: Path, where: str) -> Path:
    """The external data file named by *location*, refused unless inside *model_dir*."""
    from sphinxext_qdq.onnxio.files import regular_file

    candidate = _contained_location(location, model_dir, where)
    try:
        return regular_file(candidate, "an external data file")
    except QdqModelError as error:
        reason = "does not exist" if error.reason == "no such file" else error.reason
        raise QdqModelError(where, f"external data file {location!r} {reason}") from None


def _contained_location(location: str, model_dir: Path, where: str) -> Path:
    """*location* resolved inside *model_dir*; refused when absolute, with ``..``, or
    leaving the folder through a symbolic link."""
    if not location:
        raise QdqModelError(where, "external data without a location")
    if "\0" in location:
        raise QdqModelError(where, f"external data location {location!r} is not a file name")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or _has_drive(location):
        raise QdqModelError(where, f"external data location {location!r} is an absolute path; "
                                   "only files inside the model's folder are read")
    if ".." in location.replace("\\", "/").split("/"):
        raise QdqModelError(where, f"external data location {location!r} contains '..'; "
                                   "only files inside the model's folder are read")
    try:
        folder = model_dir.resolve()
        candidate = (folder / location).resolve()
    except (OSError, RuntimeError) as error:  # a loop of symbolic links (RuntimeError < 3.13)
        looped = isinstance(error, RuntimeError) or getattr(error, "errno", 0) == errno.ELOOP
        raise QdqModelError(where, f"external data location {location!r} cannot be resolved ("
                                   f"{'a loop of symbolic links' if looped else error})"
                            ) from None
    if candidate != folder and folder not in candidate.parents:
        raise QdqModelError(where, f"external data location {location!r} leaves the model's "
                                   "folder (through a symbolic link)")
    return candidate


def _has_drive(location: str) -> bool:
    return len(location) > 1 and location[1] == ":" and location[0].isalpha()


def _non_negative_int(text: str, what: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise QdqModelError(where, f"external data {what} {text!r} is not an integer") from None
    if value < 0:
        raise QdqModelError(where, f"external data {what} {value} is negative")
    return value



def _check_plausible_model(proto: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Random bytes sometimes parse as protobuf: require what every ONNX model has."""
    if not 1 <= proto.ir_version <= _MAX_IR_VERSION:
        raise QdqModelError(path, "not an ONNX model (no valid IR version)")
    if not proto.HasField("graph"):
        raise QdqModelError(path, "not an ONNX model (it has no graph)")
    if proto.ir_version >= 3 and not proto.opset_import:
        raise QdqModelError(path, "not an ONNX model (it imports no operator set)")
    for node in proto.graph.node:
        if not node.op_type:
            raise QdqModelError(path, "not an ONNX model (a node has no operator type)")



def parse_lean(data: bytes, path: Path) -> onnx.ModelProto:
    """Parse a model file without its bulk data: large initializers come back as
    external-data references to their bytes in *path* (read only when asked for).
    Files smaller than :data:`LEAN_PARSE_BYTES` are parsed whole."""
    lean = without_bulk_data(memoryview(data)) if len(data) >= LEAN_PARSE_BYTES else None
    if lean is None:
        return parse_model_bytes(data, path)
    stripped, bulk = lean
    proto = parse_model_bytes(stripped, path)
    initializers = proto.graph.initializer
    for part in bulk:
        tensor = initializers[part.index]
        tensor.data_location = onnx.TensorProto.EXTERNAL
        del tensor.external_data[:]
        for key, value in (("location", path.name), ("offset", str(part.offset)),
                           ("length", str(part.length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    return proto


def read_model_proto(path: str | os.PathLike[str], max_bytes: int = files.DEFAULT_MAX_BYTES
                     ) -> tuple[Path, onnx.ModelProto]:
    """(resolved path, protobuf) of a model file: checked, parsed (large weights left in
    the file) and with its text fields repaired, as the loader reads it."""
    resolved = files.checked_file(path, max_bytes, "an ONNX file")
    proto = parse_lean(files.read_bytes(resolved, max_bytes), resolved)
    repair_text_fields(proto)
    return resolved, proto
