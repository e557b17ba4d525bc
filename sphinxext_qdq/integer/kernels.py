"""The integer kernels: what an INT8 accelerator computes for one quantized-op group.

An :class:`IntegerStep` holds a group's :class:`~.requant.RequantRecipe` and its integer
constants (weights as stored, the INT32 bias); :func:`run_step` computes its outputs
from integer inputs only:

- :func:`quantize_linear` quantizes a float input exactly as QuantizeLinear specifies
  (float32 division, round half to even, saturation);
- Conv / Gemm / MatMul accumulate ``sum (x - z_x)(w - z_w) + b`` in INT32 (an
  accumulator leaving the INT32 range is an error); padding is the input's zero
  point, so a padded position contributes ``z_x - z_x = 0``;
- every output is requantized by :func:`~.requant.requantize` with the Q31
  multiplier and shift of the recipe, one rounding (``half_even`` by default, or
  ``half_up``), plus the output zero point, saturated to the output type;
- Add brings ``M_a (a - z_a)`` and ``M_b (b - z_b)`` onto one fixed-point grid
  (exact, 64-bit) and rounds their sum once;
- AveragePool / GlobalAveragePool sum the window in INT32 and fold ``1 / K`` into
  the multiplier; Reshape, Flatten, Transpose, Identity and Relu move integers
  (requantized by ``s_x / s_y``, Relu clamps at the output zero point).

numpy has no fast integer matrix product, so the INT32 sums are computed with a
float64 BLAS product of the centred integers: every partial sum is an integer
below 2^53, hence exact (the bound is checked for every layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sphinxext_qdq.integer.lookup import look_up, softmax_rows, softmax_table
from sphinxext_qdq.integer.requant import (
    QOPERATOR_RECIPES,
    RequantRecipe,
    TensorQuantization,
    requantize,
    round_shift,
    saturate,
)
from sphinxext_qdq.onnxio.dtypes import numpy_integer

#: Integer element types the reference computes with.
SUPPORTED_TYPES = frozenset({"INT8", "UINT8", "INT16", "UINT16", "INT32"})

#: Largest exact integer of a float64 product sum.
_EXACT_FLOAT = 2 ** 53
_INT32_LIMIT = 2 ** 31


class IntegerReferenceError(Exception):
    """The model (or one group of it) cannot be run by the integer reference."""


# -- records ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class IntegerStep:
    """One quantized-op group as an integer kernel: recipe, constants and attributes."""

    recipe: RequantRecipe
    inputs: tuple[str, ...]  # integer tensors read (the input DQs' inputs)
    outputs: tuple[str, ...]  # integer tensors written (the output Qs' outputs)
    weight: np.ndarray | None = None  # as stored (e.g. int8), not centred
    bias: np.ndarray | None = None  # INT32
    attributes: dict[str, Any] = field(default_factory=dict)
    shape: np.ndarray | None = None  # Reshape's target shape
    #: one 256-entry table per input of a table kernel (None: the input is copied)
    tables: tuple[np.ndarray | None, ...] = ()
    #: inputs that are constants of the model (QLinearMul's B, QLinearWhere's condition)
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def node(self) -> str:
        return self.recipe.node

    @property
    def op_type(self) -> str:
        """The float op the kernel computes (``Conv`` for a QLinearConv)."""
        return QOPERATOR_RECIPES.get(self.recipe.op_type, self.recipe.op_type)


# -- the kernels ------------------------------------------------------------------------
def quantize_linear(x: np.ndarray, side: TensorQuantization) -> np.ndarray:
    """ONNX QuantizeLinear, per tensor: float32 ``x / s``, round half to even, ``+ z``,
    saturate."""
    if side.per_channel or not side.known or side.dtype not in SUPPORTED_TYPES:
        raise IntegerReferenceError(f"{side.qdq}: only a known per-tensor quantization to "
                                    f"an integer type is supported at the input")
    (scale,) = side.scales
    quotient = np.asarray(x, np.float32) / np.float32(scale)
    rounded = np.rint(quotient).astype(np.int64) + zero_point(side)
    return saturate(rounded, side.dtype).astype(numpy_integer(side.dtype))


def zero_point(side: TensorQuantization) -> int:
    """The one zero point of a per-tensor side (activations are quantized per tensor: a
    per-axis scale, or several zero points for one scale, is refused)."""
    if side.per_channel or len(side.zero_points) != 1:
        raise IntegerReferenceError(f"{side.qdq}: per-channel activations are not supported")
    (value,) = side.zero_points
    return value


def run_step(step: IntegerStep, values: dict[str, np.ndarray], rounding: str
             ) -> list[np.ndarray]:
    """The integer outputs of one step (one array per output Q, all the same values):
    the kernel's rounded result plus the output zero point, saturated."""
    output = step.recipe.output
    inputs = [values[name] if name in values else step.constants[name] for name in step.inputs]
    if step.recipe.kind in _TABLE_KERNELS:  # the table holds z_y already
        result = _TABLE_KERNELS[step.recipe.kind](step, inputs)
    else:
        result = _KERNELS[step.recipe.kind](step, inputs, rounding) + zero_point(output)
    if step.op_type == "Relu":
        result = np.maximum(result, zero_point(output))
    typed = saturate(result, output.dtype or "").astype(numpy_integer(output.dtype or ""))
    return [typed] * len(step.outputs)


def accumulate(step: IntegerStep, x: np.ndarray) -> np.ndarray:
    """The INT32 accumulator of a Conv / Gemm / MatMul step (int64 array)."""
    recipe = step.recipe
    (side,) = recipe.inputs  # one activation; the weight and bias are constants
    weight = step.weight
    assert weight is not None and recipe.weight is not None
    centred_x = centred(x, side)
    centred_w = _centred_weight(weight, recipe.weight)
    if step.op_type == "Conv":
        acc = conv_accumulate(centred_x, centred_w, step.attributes)
    else:
        acc = matmul_accumulate(centred_x, centred_w, step)
    if step.bias is not None:
        acc = acc + _channel_shaped(step.bias, acc.ndim, step)
    if acc.size and (int(acc.max()) >= _INT32_LIMIT or int(acc.min()) < -_INT32_LIMIT):
        raise IntegerReferenceError(f"{recipe.name}: the accumulator leaves the INT32 range")
    return acc


def _matmul_kernel(step: IntegerStep, inputs: list[np.ndarray], rounding: str) -> np.ndarray:
    (x,) = inputs
    acc = accumulate(step, x)
    multipliers, shifts = _fixed_point(step, acc.ndim)
    return requantize(acc, multipliers, shifts, rounding)


#: Largest term of the Add kernel's 64-bit sum: two terms below 2^62 add up below 2^63.
_ADD_TERM_LIMIT = 2 ** 62


def _add_kernel(step: IntegerStep, inputs: list[np.ndarray], rounding: str) -> np.ndarray:
    """``round(M_a (a - z_a) + M_b (b - z_b))`` on one fixed-point grid."""
    recipe = step.recipe
    common = max(m.total_shift for m in recipe.multipliers)
    total = np.int64(0)
    for x, side, m in zip(inputs, recipe.inputs, recipe.multipliers):
        values = centred(x, side)
        extra = common - m.total_shift
        if int(np.abs(values).max(initial=0)) * m.multiplier << extra >= _ADD_TERM_LIMIT:
            raise IntegerReferenceError(f"{recipe.name}: the input scales differ too much for "
                                        "a 64-bit common grid")
        total = total + (values * np.int64(m.multiplier)) * np.int64(1 << extra)
    return round_shift(total, common, rounding)


def _pool_kernel(step: IntegerStep, inputs: list[np.ndarray], rounding: str) -> np.ndarray:
    (x,), (side,), (m,) = inputs, step.recipe.inputs, step.recipe.multipliers
    values = centred(x, side)
    if step.op_type == "GlobalAveragePool":
        acc = values.sum(axis=tuple(range(2, values.ndim)), keepdims=True)
    else:
        acc = average_pool_sum(values, step)
    return requantize(acc, m.multiplier, m.total_shift, rounding)


def _rescale_kernel(step: IntegerStep, inputs: list[np.ndarray], rounding: str) -> np.ndarray:
    (x,), (side,), (m,) = inputs, step.recipe.inputs, step.recipe.multipliers
    moved = move_values(step, centred(x, side))
    return requantize(moved, m.multiplier, m.total_shift, rounding)


def _mul_kernel(step: IntegerStep, inputs: list[np.ndarray], rounding: str) -> np.ndarray:
    """QLinearMul: ``round(M (a - z_a)(b - z_b))`` with ``M = s_a s_b / s_y`` as a Q31
    multiplier (ONNX Runtime multiplies by the float32 ratio instead: the two differ by
    one only where the exact quotient lies within float32 rounding of a tie)."""
    (a, b), (side_a, side_b), (m,) = inputs, step.recipe.inputs, step.recipe.multipliers
    product = centred(a, side_a) * centred(b, side_b)
    return requantize(product, m.multiplier, m.total_shift, rounding)


_KERNELS = {"matmul": _matmul_kernel, "add": _add_kernel, "pool": _pool_kernel,
            "rescale": _rescale_kernel, "mul": _mul_kernel}


# -- table kernels (see lookup.py): the output integers come from 256-entry tables ------
def _lookup_kernel(step: IntegerStep, inputs: list[np.ndarray]) -> np.ndarray:
    """QLinearSigmoid / QLinearLeakyRelu: one table lookup per element."""
    (x,), (table,) = inputs, step.tables
    assert table is not None
    return look_up(table, x)


def _requantized(x: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """An input of QLinearConcat / QLinearWhere on the output's grid: copied when its
    scale and zero point are the output's, else looked up."""
    return x if table is None else look_up(table, x)


def _concat_kernel(step: IntegerStep, inputs: list[np.ndarray]) -> np.ndarray:
    parts = [_requantized(x, table) for x, table in zip(inputs, step.tables)]
    return np.concatenate(parts, axis=int(step.attributes["axis"]))


def _where_kernel(step: IntegerStep, inputs: list[np.ndarray]) -> np.ndarray:
    condition, x, y = inputs
    x_table, y_table = step.tables
    return np.where(np.asarray(condition, bool), _requantized(x, x_table),
                    _requantized(y, y_table))


def _softmax_kernel(step: IntegerStep, inputs: list[np.ndarray]) -> np.ndarray:
    """QLinearSoftmax over ``axis`` (opset 13 and later) or over every axis from ``axis``
    on, flattened (``opset`` attribute below 13), as ONNX Runtime computes it."""
    (x,), recipe = inputs, step.recipe
    opset = int(step.attributes.get("opset", 13))
    axis = int(step.attributes.get("axis", -1 if opset >= 13 else 1)) % x.ndim
    rows = np.moveaxis(x, axis, -1) if opset >= 13 else x.reshape(*x.shape[:axis], -1)
    dtype = recipe.output.dtype or ""
    (scale,), y = recipe.inputs[0].scales, recipe.output
    table = softmax_table(scale, rows.shape[-1], recipe.inputs[0].dtype == "INT8")
    result = softmax_rows(rows, table, y.scales[0], zero_point(y), dtype)
    return np.moveaxis(result, -1, axis) if opset >= 13 else result.reshape(x.shape)


_TABLE_KERNELS = {"lookup": _lookup_kernel, "concat": _concat_kernel, "where": _where_kernel,
                  "softmax": _softmax_kernel}


def centred(x: np.ndarray, side: TensorQuantization) -> np.ndarray:
    """``x - z_x`` in int64 for a per-tensor activation."""
    return np.asarray(x, np.int64) - zero_point(side)


def _centred_weight(weight: np.ndarray, side: TensorQuantization) -> np.ndarray:
    """``w - z_w``, one zero point or one per channel along the side's axis."""
    zero_points = np.asarray(side.zero_points, np.int64)
    if zero_points.size > 1:
        if side.axis is None:
            raise IntegerReferenceError(f"{side.qdq}: per-axis zero points without an axis")
        shape = [1] * weight.ndim
        shape[side.axis] = zero_points.size
        zero_points = zero_points.reshape(shape)
    return np.asarray(weight, np.int64) - zero_points


def _channel_shaped(values: np.ndarray, ndim: int, step: IntegerStep) -> np.ndarray:
    """Per-output-channel constants (or one constant) shaped to broadcast over an
    accumulator: along axis 1 for a Conv, the last axis for a matrix product."""
    shape = [1] * ndim
    shape[1 if step.op_type == "Conv" else ndim - 1] = np.size(values)
    return np.reshape(values, shape)


def _fixed_point(step: IntegerStep, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    multipliers = step.recipe.multipliers
    m0 = np.array([m.multiplier for m in multipliers], np.int64)
    shifts = np.array([m.total_shift for m in multipliers], np.int64)
    return _channel_shaped(m0, ndim, step), _channel_shaped(shifts, ndim, step)


def _exact_product(left: np.ndarray, right: np.ndarray, terms: int, name: str) -> None:
    bound = terms * int(np.abs(left).max(initial=0)) * int(np.abs(right).max(initial=0))
    if bound >= _EXACT_FLOAT:
        raise IntegerReferenceError(f"{name}: products too large for an exact float64 sum")


def conv_accumulate(x: np.ndarray, w: np.ndarray, attributes: dict[str, Any]) -> np.ndarray:
    """``sum (x - z_x)(w - z_w)`` of a 2-D Conv on centred integers (int64 result).

    Padding adds zeros to the *centred* input: the zero point in integer terms. The
    sum is one exact float64 matrix product per kernel offset (im2col by shifting)."""
    if x.ndim != 4:
        raise IntegerReferenceError("only 2-D convolutions are supported")
    if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise IntegerReferenceError("Conv auto_pad is not supported; give explicit pads")
    kernel_h, kernel_w = w.shape[2:]
    top, left, bottom, right = attributes.get("pads", [0, 0, 0, 0])
    stride_h, stride_w = attributes.get("strides", [1, 1])
    dilation_h, dilation_w = attributes.get("dilations", [1, 1])
    groups = int(attributes.get("group", 1))
    per_group_in, per_group_out = w.shape[1], w.shape[0] // groups
    _exact_product(x, w, per_group_in * kernel_h * kernel_w, "Conv")
    padded = np.pad(x.transpose(0, 2, 3, 1).astype(np.float64),  # NHWC: channels contiguous
                    ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h = (padded.shape[1] - (kernel_h - 1) * dilation_h - 1) // stride_h + 1
    out_w = (padded.shape[2] - (kernel_w - 1) * dilation_w - 1) // stride_w + 1
    shifted = [padded[:, i * dilation_h: i * dilation_h + stride_h * (out_h - 1) + 1: stride_h,
                      j * dilation_w: j * dilation_w + stride_w * (out_w - 1) + 1: stride_w]
               for i in range(kernel_h) for j in range(kernel_w)]
    filters = w.astype(np.float64).transpose(0, 2, 3, 1)  # (out, kh, kw, in): im2col order
    sums = []
    for g in range(groups):
        columns = np.concatenate([s[..., g * per_group_in:(g + 1) * per_group_in]
                                  for s in shifted], axis=-1)
        taps = filters[g * per_group_out:(g + 1) * per_group_out].reshape(per_group_out, -1)
        sums.append(columns @ taps.T)
    acc = np.concatenate(sums, axis=-1)
    return np.rint(acc.transpose(0, 3, 1, 2)).astype(np.int64)


def matmul_accumulate(x: np.ndarray, w: np.ndarray, step: IntegerStep) -> np.ndarray:
    """``A (x - z_x) @ B (w - z_w)`` of a Gemm (transA / transB, alpha = beta = 1) or
    2-D MatMul, exact in float64."""
    attributes = step.attributes
    if step.op_type == "Gemm":
        if attributes.get("alpha", 1.0) != 1.0 or attributes.get("beta", 1.0) != 1.0:
            raise IntegerReferenceError(f"{step.recipe.name}: Gemm alpha / beta other than 1")
        if attributes.get("transA", 0):
            x = x.T
        if attributes.get("transB", 0):
            w = w.T
    if x.ndim != 2 or w.ndim != 2:
        raise IntegerReferenceError(f"{step.recipe.name}: only 2-D matrix products")
    _exact_product(x, w, x.shape[1], step.recipe.name)
    return np.rint(x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)


def average_pool_sum(x: np.ndarray, step: IntegerStep) -> np.ndarray:
    """The window sums of a 2-D AveragePool on centred integers (zero-point padding)."""
    attributes = step.attributes
    kernel = tuple(attributes["kernel_shape"])
    pads = list(attributes.get("pads", [0] * 2 * len(kernel)))
    if any(pads) and not attributes.get("count_include_pad", 0):
        raise IntegerReferenceError(f"{step.recipe.name}: padding without count_include_pad "
                                    "divides by a varying count")
    if attributes.get("ceil_mode", 0) or any(d != 1 for d in attributes.get("dilations", [1])):
        raise IntegerReferenceError(f"{step.recipe.name}: ceil_mode / dilations unsupported")
    if x.ndim != 4 or len(kernel) != 2:
        raise IntegerReferenceError(f"{step.recipe.name}: only 2-D pooling is supported")
    strides = attributes.get("strides", [1, 1])
    padded = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    windows = sliding_window_view(padded, kernel, axis=(2, 3))[:, :, ::strides[0], ::strides[1]]
    return windows.sum(axis=(-2, -1))


def move_values(step: IntegerStep, x: np.ndarray) -> np.ndarray:
    """Reshape / Flatten / Transpose / Identity / Relu on integers (Relu clamps later)."""
    op = step.op_type
    if op == "Reshape":
        assert step.shape is not None
        shape = [int(d) for d in step.shape]
        if not step.attributes.get("allowzero", 0):
            shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return x.reshape(shape)
    if op == "Flatten":
        axis = int(step.attributes.get("axis", 1)) % max(x.ndim, 1)
        return x.reshape(math.prod(x.shape[:axis]), -1)
    if op == "Transpose":
        return x.transpose(step.attributes.get("perm", list(range(x.ndim))[::-1]))
    return x  # Identity, Relu
