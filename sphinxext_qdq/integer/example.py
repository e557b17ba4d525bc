"""One output element of a Conv / Gemm / MatMul computed step by step with Python
integers, every intermediate number kept (``qdq-requant :show: example``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sphinxext_qdq.integer.kernels import IntegerReferenceError, IntegerStep
from sphinxext_qdq.integer.program import IntegerProgram
from sphinxext_qdq.integer.requant import FixedPointMultiplier, round_shift
from sphinxext_qdq.onnxio.dtypes import integer_range

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class WorkedExample:
    """How one output element of a Conv / Gemm is computed, with every number."""

    node: str
    op_type: str
    image: int
    position: tuple[int, ...]  # the output element's index without the batch axis
    inputs: tuple[int, ...]  # the input values the element reads, as stored (flattened)
    weights: tuple[int, ...]  # the matching weights, as stored
    input_zero_point: int
    weight_zero_point: int
    dot: int  # sum (x - z_x)(w - z_w)
    bias: int
    accumulator: int  # dot + bias (INT32)
    multiplier: FixedPointMultiplier
    product: int  # accumulator * M0 (64-bit)
    rounded: int  # round(product / 2^(31 + n))
    output_zero_point: int
    output: int  # saturate(rounded + z_y)
    real_quotient: float  # accumulator * M exactly: what DQ -> op -> Q divides by s_y
    float_path: int  # QuantizeLinear of the real value: the ONNX semantics of the group
    rounding: str


def worked_example(program: IntegerProgram, values: dict[str, np.ndarray], node: str, *,
                   image: int = 0, position: Sequence[int] | None = None,
                   rounding: str = "half_even") -> WorkedExample:
    """Recompute one output element of the Conv / Gemm *node* from *values* (a
    :meth:`IntegerProgram.run` result) with Python integers, step by step.

    *position* is ``(channel, row, column)`` for a Conv, ``(column,)`` for a Gemm;
    by default channel 0 at the centre of the output."""
    step = program.step(node)
    recipe = step.recipe
    if recipe.kind != "matmul" or step.weight is None or recipe.weight is None:
        raise IntegerReferenceError(f"{recipe.name}: worked examples exist for Conv, Gemm and "
                                    "MatMul only")
    output = values[step.outputs[0]][image]
    position = tuple(position) if position is not None else _centre(output.shape)
    _check_position(step.op_type, output.shape, position)
    x = values[step.inputs[0]][image]
    inputs, weights, channel = _receptive_field(step, x, position)
    z_x = recipe.inputs[0].zero_points[0]
    zero_points = recipe.weight.zero_points
    z_w = zero_points[channel] if len(zero_points) > 1 else zero_points[0]
    dot = sum((int(a) - z_x) * (int(b) - z_w) for a, b in zip(inputs, weights))
    bias = int(step.bias.reshape(-1)[channel if step.bias.size > 1 else 0]) \
        if step.bias is not None else 0
    multiplier = recipe.multipliers[channel if len(recipe.multipliers) > 1 else 0]
    accumulator = dot + bias
    product = accumulator * multiplier.multiplier
    rounded = int(round_shift(np.int64(product), multiplier.total_shift, rounding))
    z_y = recipe.output.zero_points[0]
    low, high = integer_range(recipe.output.dtype or "INT8")
    real = accumulator * multiplier.real
    float_path = min(max(int(np.rint(real)) + z_y, low), high)
    return WorkedExample(
        node=recipe.name, op_type=recipe.op_type, image=image, position=position,
        inputs=tuple(int(v) for v in inputs), weights=tuple(int(v) for v in weights),
        input_zero_point=z_x, weight_zero_point=int(z_w), dot=dot, bias=bias,
        accumulator=accumulator, multiplier=multiplier, product=product, rounded=rounded,
        output_zero_point=z_y, output=min(max(rounded + z_y, low), high),
        real_quotient=real, float_path=float_path, rounding=rounding)


def _centre(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (0, *(size // 2 for size in shape[1:]))


def _check_position(op_type: str, shape: tuple[int, ...], position: tuple[int, ...]) -> None:
    """IndexError unless *position* is an element of an output of *shape* (per input): a
    Conv's (channel, row, column), another kernel's (column,). Past the last row a Conv's
    window would read padding only, and the example would show an element that is not."""
    wanted, what = (shape, "channel, row, column") if op_type == "Conv" else (shape[-1:], "column")
    if len(position) != len(wanted) or not all(0 <= p < s for p, s in zip(position, wanted)):
        raise IndexError(f"{what} below {', '.join(map(str, wanted))}")


def _receptive_field(step: IntegerStep, x: np.ndarray, position: tuple[int, ...]
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """(inputs read, matching weights, output channel) of one output element."""
    weight = step.weight
    assert weight is not None
    if step.op_type != "Conv":
        (column,) = position[-1:]
        matrix = weight.T if step.attributes.get("transB", 0) else weight
        return x.reshape(-1), matrix[:, column], column
    channel, row, col = position
    attributes = step.attributes
    top, left = attributes.get("pads", [0, 0, 0, 0])[:2]
    stride_h, stride_w = attributes.get("strides", [1, 1])
    dilation_h, dilation_w = attributes.get("dilations", [1, 1])
    groups = int(attributes.get("group", 1))
    per_group_in, per_group_out = weight.shape[1], weight.shape[0] // groups
    first = (channel // per_group_out) * per_group_in
    z_x = step.recipe.inputs[0].zero_points[0]
    values = []
    for c in range(first, first + per_group_in):
        for i in range(weight.shape[2]):
            for j in range(weight.shape[3]):
                r = row * stride_h + i * dilation_h - top
                k = col * stride_w + j * dilation_w - left
                inside = 0 <= r < x.shape[1] and 0 <= k < x.shape[2]
                values.append(int(x[c, r, k]) if inside else z_x)  # zero-point padding
    return np.array(values), weight[channel].reshape(-1), channel
