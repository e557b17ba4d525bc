"""The one table of ONNX element types: every fact the package needs about a dtype.

Names are ONNX's (``"FLOAT"``, ``"INT8"``); labels are what readers see (``"FP32"``,
``"INT8"``). Everything else that knows about a dtype (bit widths for reading the wire
format, numpy and ``struct`` types for decoding, integer ranges for saturation, C types
for test-vector headers) reads it here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import onnx

#: What readers see where a tensor's type cannot be known.
UNKNOWN_LABEL = "unknown"


@dataclass(frozen=True)
class ElementType:
    """An ONNX element type."""

    code: int  # TensorProto.DataType value
    name: str  # ONNX's name: "FLOAT", "INT8" ...
    label: str  # the printed name: "FP32", "INT8" ...
    bits: int | None  # bits per element (4 for INT4); None where not fixed (STRING)
    integer: bool = False
    signed: bool = False
    numpy: np.dtype | None = None  # little-endian numpy type of a plain type's raw data
    struct_code: str | None = None  # ``struct`` code of a plain type
    c_type: str | None = None  # C type of an integer type test vectors use
    field: str = "int32_data"  # the TensorProto field holding values not in raw_data

    @property
    def range(self) -> tuple[int, int] | None:
        """(q_min, q_max) of an integer type; None otherwise."""
        if not self.integer or self.bits is None:
            return None
        if self.name == "BOOL":
            return (0, 1)
        if self.signed:
            return (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1)
        return (0, (1 << self.bits) - 1)

    @property
    def packed(self) -> int:
        """Elements per byte of a sub-byte type (INT4: 2, INT2: 4); 1 otherwise."""
        return 8 // self.bits if self.bits is not None and self.bits < 8 else 1


def _table() -> dict[str, ElementType]:
    def integer(name: str, bits: int, signed: bool, code: str | None = None,
                field: str = "int32_data") -> ElementType:
        numpy = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}") if bits >= 8 else None
        c_type = f"{'' if signed else 'u'}int{bits}_t" if bits >= 8 else None
        return ElementType(0, name, name, bits, True, signed, numpy, code, c_type, field)

    def real(name: str, label: str, bits: int | None, numpy: str | None = None,
             code: str | None = None, field: str = "int32_data") -> ElementType:
        return ElementType(0, name, label, bits, numpy=np.dtype(numpy) if numpy else None,
                           struct_code=code, field=field)

    types = [
        real("FLOAT", "FP32", 32, "<f4", "f", "float_data"),
        real("DOUBLE", "FP64", 64, "<f8", "d", "double_data"),
        real("FLOAT16", "FP16", 16, "<f2", "e"), real("BFLOAT16", "BF16", 16),
        integer("INT8", 8, True, "b"), integer("UINT8", 8, False, "B"),
        integer("INT16", 16, True, "h"), integer("UINT16", 16, False, "H"),
        integer("INT32", 32, True, "i"), integer("UINT32", 32, False, field="uint64_data"),
        integer("INT64", 64, True, "q", "int64_data"),
        integer("UINT64", 64, False, field="uint64_data"),
        integer("INT4", 4, True), integer("UINT4", 4, False),
        integer("INT2", 2, True), integer("UINT2", 2, False),
        ElementType(0, "BOOL", "BOOL", 8, integer=True),
        real("FLOAT8E4M3FN", "FP8E4M3FN", 8), real("FLOAT8E4M3FNUZ", "FP8E4M3FNUZ", 8),
        real("FLOAT8E5M2", "FP8E5M2", 8), real("FLOAT8E5M2FNUZ", "FP8E5M2FNUZ", 8),
        real("FLOAT8E8M0", "FP8E8M0", 8), real("FLOAT4E2M1", "FP4E2M1", 4),
        real("FLOAT6E2M3", "FP6E2M3", None), real("FLOAT6E3M2", "FP6E3M2", None),
        real("COMPLEX64", "COMPLEX64", 64, field="float_data"),
        real("COMPLEX128", "COMPLEX128", 128, field="double_data"),
        real("STRING", "STRING", None, field="string_data"),
    ]
    codes = dict(onnx.TensorProto.DataType.items())
    return {t.name: dataclasses.replace(t, code=codes[t.name]) for t in types if t.name in codes}


#: Every element type this onnx version knows, by ONNX name and by code.
BY_NAME: dict[str, ElementType] = _table()
BY_CODE: dict[int, ElementType] = {t.code: t for t in BY_NAME.values()}


def name_of(code: int) -> str | None:
    """ONNX name of a ``TensorProto.DataType`` value; ``DATATYPE_<n>`` for a value this
    onnx does not know; None for 0 (UNDEFINED)."""
    if not code:
        return None
    element = BY_CODE.get(code)
    return element.name if element is not None else f"DATATYPE_{code}"


def label(name: str | None) -> str:
    """The printed name of an ONNX type name (``"FLOAT"`` -> ``"FP32"``); ``"unknown"``
    when the type cannot be known; an unknown name as it is."""
    if not name:
        return UNKNOWN_LABEL
    element = BY_NAME.get(name)
    return element.label if element is not None else name


def is_integer(name: str | None) -> bool:
    element = BY_NAME.get(name or "")
    return element is not None and element.integer


def integer_range(name: str) -> tuple[int, int]:
    """(q_min, q_max) of an integer type name; KeyError for anything else."""
    element = BY_NAME.get(name)
    found = element.range if element is not None else None
    if found is None:
        raise KeyError(name)
    return found


def numpy_integer(name: str) -> type[np.integer]:
    """The numpy scalar type holding values of an integer type of 8 to 64 bits."""
    element = BY_NAME.get(name)
    if element is None or not element.integer or element.numpy is None:
        raise KeyError(name)
    return element.numpy.type


def c_type_of(dtype: np.dtype) -> str:
    """The C type (``int8_t`` …) of a numpy integer dtype; KeyError for others."""
    for element in BY_NAME.values():
        if element.c_type and element.numpy == np.dtype(dtype).newbyteorder("<"):
            return element.c_type
    raise KeyError(str(dtype))
