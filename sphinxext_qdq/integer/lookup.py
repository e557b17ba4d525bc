"""The 256-entry tables of the 8-bit QOperator ops ONNX Runtime computes by table.

For an 8-bit input, any function of one value is a table of 256 entries, computed once
from the scales and zero points; at run time the kernel only indexes it. This is how
ONNX Runtime's CPU kernels compute ``QLinearSigmoid``, ``QLinearLeakyRelu`` and the
requantization of each ``QLinearConcat`` / ``QLinearWhere`` input whose scale or zero
point differs from the output's, and a hardware implementer can store the same table:

- each byte ``i`` is read as a value ``q`` of the input type (``int8`` wraps),
  dequantized in float32: ``s_x * float(q - z_x)``;
- the function is applied in float32 (identity, ``x >= 0 ? x : alpha x``, or MLAS's
  rational approximation of the logistic function, :func:`mlas_logistic`);
- the result is quantized as MLAS's ``MlasQuantizeLinear`` does: float32 division by
  ``s_y``, round half to even, ``+ z_y``, saturated.

``QLinearSoftmax`` is ONNX Runtime's own integer-input algorithm (:func:`softmax_rows`):
a float32 table of ``exp`` shifted so that the largest input of a row maps to the last
entry, a float32 sum along the row, ``round(e * floor(1 / s_y) / sum) + z_y``.

Only numpy; the numbers follow ONNX Runtime's source (``contrib_ops/cpu/quantization``:
``qlinear_lookup_table.cc``, ``qlinear_activations.cc``, ``qlinear_softmax.cc``;
``core/mlas/lib/logistic.cpp``, ``quantize.cpp``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sphinxext_qdq.onnxio.dtypes import integer_range, numpy_integer

#: Element types a table kernel reads and writes (one byte: 256 table entries).
BYTE_TYPES = frozenset({"INT8", "UINT8"})

#: Float32 constants of MLAS's logistic kernel (Eigen's polynomial coefficients):
#: ``p(x) / q(x) + 1/2`` on ``x`` clamped to ``[-18, 18]``.
_LOGISTIC_RANGE = 18.0
_LOGISTIC_ALPHA = (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                   8.51377133304701e-03, 2.48287947061529e-01)  # alpha_9 ... alpha_1
_LOGISTIC_BETA = (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06,
                  1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01)

FloatFunction = Callable[[np.ndarray], np.ndarray]


def byte_values(dtype: str) -> np.ndarray:
    """The value of each byte 0 … 255 read as *dtype* (``int8``: 0 … 127, −128 … −1)."""
    return np.arange(256, dtype=np.uint8).view(numpy_integer(dtype)).astype(np.int64)


def quantize_f32(values: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """MLAS's QuantizeLinear: float32 ``values / scale``, round half to even, ``+ z``,
    saturated to *dtype*."""
    low, high = integer_range(dtype)
    quotient = np.asarray(values, np.float32) / np.float32(scale)
    clamped = np.clip(quotient, np.float32(low - zero_point), np.float32(high - zero_point))
    return (np.rint(clamped).astype(np.int64) + zero_point).astype(numpy_integer(dtype))


def requant_table(x: tuple[float, int], y: tuple[float, int], dtype: str,
                  function: FloatFunction | None = None) -> np.ndarray:
    """The 256 outputs of ``Q_y(function(DQ_x(q)))`` for every input byte, as ONNX
    Runtime builds them (*x*, *y*: scale and zero point of the input and output)."""
    (s_x, z_x), (s_y, z_y) = x, y
    dequantized = np.float32(s_x) * (byte_values(dtype) - z_x).astype(np.float32)
    values = function(dequantized) if function is not None else dequantized
    return quantize_f32(values, s_y, z_y, dtype)


def look_up(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``table[byte of x]`` for every element of the 8-bit array *x*."""
    return table[np.ascontiguousarray(x).view(np.uint8)]


def leaky_relu(alpha: float) -> FloatFunction:
    """``x >= 0 ? x : alpha * x`` in float32."""
    def apply(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x, np.float32(alpha) * x).astype(np.float32)
    return apply


def _fma(a: np.ndarray, b: np.ndarray | float, c: float) -> np.ndarray:
    """float32 ``a * b + c`` rounded once (FMA3): the product of two float32 is exact
    in float64, the sum is rounded to float64 and then to float32."""
    exact = np.asarray(a, np.float64) * np.float64(np.float32(b)) + np.float64(np.float32(c))
    return exact.astype(np.float32)


def mlas_logistic(x: np.ndarray) -> np.ndarray:
    """MLAS's logistic function on x86-64 (its FMA3 kernel): ``p(x) / q(x) + 0.5``,
    Eigen's rational approximation in float32, clamped to ``[0, 1]``."""
    value = np.clip(np.asarray(x, np.float32), np.float32(-_LOGISTIC_RANGE),
                    np.float32(_LOGISTIC_RANGE))
    squared = value * value
    p = _fma(squared, _LOGISTIC_ALPHA[0], _LOGISTIC_ALPHA[1])
    for alpha in _LOGISTIC_ALPHA[2:]:
        p = _fma(p, squared, alpha)
    p = p * value
    q = _fma(squared, _LOGISTIC_BETA[0], _LOGISTIC_BETA[1])
    for beta in _LOGISTIC_BETA[2:]:
        q = _fma(q, squared, beta)
    return np.clip(p / q + np.float32(0.5), np.float32(0.0), np.float32(1.0))


def softmax_table(x_scale: float, reduce_len: int, signed: bool) -> np.ndarray:
    """ONNX Runtime's float32 ``exp`` table of QLinearSoftmax: entry ``i`` (0 … 255)
    is ``exp((i - 255 + shift) s_x)``, the shift keeping a row's sum below FLT_MAX;
    for an INT8 input entry ``i`` sits at byte ``i - 128``."""
    f32_max = np.finfo(np.float32).max
    bit_shift = math.log(float(np.float32(f32_max) / np.float32(reduce_len)))
    shift = max(0.0, bit_shift - 5) / float(np.float32(x_scale))
    exponents = (np.arange(256, dtype=np.float64) - 255 + shift) * float(np.float32(x_scale))
    table = np.exp(exponents).astype(np.float32)
    return np.roll(table, -128) if signed else table


def softmax_rows(x: np.ndarray, table: np.ndarray, y_scale: float, y_zero_point: int,
                 dtype: str) -> np.ndarray:
    """QLinearSoftmax over the last axis of the 8-bit *x*: each row's largest value is
    moved to the table's last entry, the entries are summed in float32 from first to
    last, and each output is ``round(e * floor(1 / s_y) / sum) + z_y``, saturated."""
    values = np.asarray(x, np.int64)
    top = 127 if dtype == "INT8" else 255
    index = (values + (top - values.max(axis=-1, keepdims=True))) & 0xFF
    exps = table[index]
    total = np.cumsum(exps, axis=-1, dtype=np.float32)[..., -1:]
    scaled = exps * np.floor(np.float32(1.0) / np.float32(y_scale)).astype(np.float32)
    rounded = np.rint(scaled / total).astype(np.int64) + y_zero_point
    low, high = integer_range(dtype)
    return np.clip(rounded, low, high).astype(numpy_integer(dtype))
