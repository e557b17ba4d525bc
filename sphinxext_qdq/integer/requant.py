"""The integer recipe of every quantized-op group: the constants a kernel uses.

A group ``DQ -> op -> Q`` computes, in real numbers, ``y = op(s_x (x - z_x), ...)``
and stores ``q_y = z_y + round(y / s_y)``. An integer kernel folds the scales into
one *effective multiplier* per output channel::

    Conv / Gemm / MatMul   M[c] = s_x * s_w[c] / s_y      acc = sum (x - z_x)(w - z_w) + b
    Add                    M_a = s_a / s_y, M_b = s_b / s_y   (the two input rescales)
    AveragePool            M = s_x / (s_y * K)             acc = sum over the K window values
    Reshape, Relu, ...     M = s_x / s_y                   (1 when the scales are equal)

and applies ``M`` in fixed point: an int32 multiplier ``M0`` in Q31 (``2^30 <= M0 <
2^31``) and a right shift ``n``, so that ``M ~= M0 * 2^-(31 + n)`` (the
gemmlowp / TensorFlow Lite convention; ``n < 0`` is a left shift). :func:`requantize`
is that multiplication with one rounding of the exact product.

Everything here is pure (numpy and the records of :mod:`.model`); the records are
frozen and picklable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sphinxext_qdq.analysis.records import Role
from sphinxext_qdq.onnxio.dtypes import integer_range

if TYPE_CHECKING:
    from sphinxext_qdq.analysis.records import (
        QdqModel,
        QdqNode,
        QuantGroup,
        QuantOp,
        QuantOperand,
    )

#: Fraction bits of the fixed-point multiplier (Q31).
MULTIPLIER_BITS = 31

#: Rounding rules of :func:`requantize`: ``half_even`` is the rule of ONNX
#: QuantizeLinear (and of ONNX Runtime's float requantization); ``half_up`` adds
#: ``2^(s-1)`` before an arithmetic right shift (TensorFlow Lite's single-rounding
#: mode, the usual hardware choice).
ROUNDINGS = ("half_even", "half_up")

#: Op types whose recipe is ``sum (x - z_x)(w - z_w) + b`` scaled per output channel.
MATMUL_OPS = frozenset({"Conv", "Gemm", "MatMul"})
POOL_OPS = frozenset({"AveragePool", "GlobalAveragePool"})
ADD_OPS = frozenset({"Add"})
#: Ops that move or select values without arithmetic: requantize by ``s_x / s_y``.
RESCALE_OPS = frozenset({"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
                         "Identity", "MaxPool", "Relu"})
RECIPE_OPS = MATMUL_OPS | POOL_OPS | ADD_OPS | RESCALE_OPS
#: QOperator ops with an integer recipe, and the QDQ op whose recipe they share.
QOPERATOR_RECIPES = {"QLinearConv": "Conv", "QLinearMatMul": "MatMul", "QGemm": "Gemm",
                     "QLinearAdd": "Add", "QLinearAveragePool": "AveragePool",
                     "QLinearGlobalAveragePool": "GlobalAveragePool"}

#: Largest relative difference between a bias scale and ``s_x * s_w`` still called equal
#: (two float32 ulps: the product is rounded to float32 once by every quantizer).
BIAS_SCALE_TOLERANCE = 2.0 ** -22


# -- fixed point -------------------------------------------------------------------------
@dataclass(frozen=True)
class FixedPointMultiplier:
    """``real ~= multiplier * 2^-(31 + shift)``; ``multiplier`` in ``[2^30, 2^31)``
    (0 when ``real`` is 0), ``shift`` a right shift (negative: a left shift)."""

    real: float
    multiplier: int
    shift: int

    @property
    def applied(self) -> float:
        """The value the fixed-point pair actually multiplies by."""
        return math.ldexp(self.multiplier, -(MULTIPLIER_BITS + self.shift))

    @property
    def relative_error(self) -> float:
        """``(applied - real) / real`` (0 when ``real`` is 0)."""
        return (self.applied - self.real) / self.real if self.real else 0.0

    @property
    def total_shift(self) -> int:
        """Bits dropped after the 64-bit product: ``31 + shift``."""
        return MULTIPLIER_BITS + self.shift


def quantize_multiplier(real: float) -> FixedPointMultiplier:
    """TensorFlow Lite's ``QuantizeMultiplier``: ``frexp``, then round the mantissa to Q31
    (half away from zero); a mantissa rounding up to ``2^31`` is halved."""
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"effective multiplier {real!r} is not a finite non-negative number")
    if real == 0:
        return FixedPointMultiplier(0.0, 0, 0)
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, 0.5 <= mantissa < 1
    multiplier = math.floor(mantissa * (1 << MULTIPLIER_BITS) + 0.5)
    if multiplier == 1 << MULTIPLIER_BITS:
        multiplier //= 2
        exponent += 1
    return FixedPointMultiplier(real, multiplier, -exponent)


def requantize(values: np.ndarray, multiplier: np.ndarray | int, total_shift: np.ndarray | int,
               rounding: str = "half_even") -> np.ndarray:
    """``round(values * multiplier / 2^total_shift)`` in 64-bit integers, one rounding.

    *values* are integers with ``|values| < 2^31`` (an INT32 accumulator);
    *multiplier* and *total_shift* broadcast against them (per-channel constants).
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; expected one of {', '.join(ROUNDINGS)}")
    product = np.asarray(values, np.int64) * np.asarray(multiplier, np.int64)
    return round_shift(product, total_shift, rounding)


def round_shift(values: np.ndarray, shift: np.ndarray | int, rounding: str = "half_even"
                ) -> np.ndarray:
    """``round(values / 2^shift)`` for int64 *values*, ``shift >= 1``, with *rounding*."""
    shift = np.asarray(shift, np.int64)
    if np.any(shift < 1):
        raise ValueError("a requantization shift must drop at least one bit")
    values = np.asarray(values, np.int64)
    half = np.left_shift(np.int64(1), shift - 1)
    if rounding == "half_up":
        return np.right_shift(values + half, shift)
    floor = np.right_shift(values, shift)
    remainder = values - np.left_shift(floor, shift)
    round_up = (remainder > half) | ((remainder == half) & (floor % 2 == 1))
    return floor + round_up


def saturate(values: np.ndarray, dtype: str) -> np.ndarray:
    """Clamp to the range of an integer type (``INT8`` …)."""
    low, high = integer_range(dtype)
    return np.clip(values, low, high)


# -- records -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorQuantization:
    """Scale(s) and zero point(s) of one side of a group, read from its Q or DQ node.

    ``scales`` is empty when the value is unknown (a graph input, computed at run
    time); ``zero_points`` is ``(0,)`` when the zero point is absent."""

    tensor: str  # the quantized (integer) tensor: a DQ's input or a Q's output
    qdq: str  # key of the Q / DQ node the values come from
    scale_name: str
    scales: tuple[float, ...]
    zero_point_name: str | None
    zero_points: tuple[int, ...]
    dtype: str | None  # the integer type, e.g. "INT8"
    axis: int | None = None  # per-axis quantization axis

    @property
    def known(self) -> bool:
        return bool(self.scales) and bool(self.zero_points)

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1


@dataclass(frozen=True)
class BiasQuantization:
    """The INT32 bias of a Conv / Gemm and whether its scale is ``s_x * s_w``."""

    tensor: str  # the INT32 initializer
    qdq: str
    scale_name: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    dtype: str | None
    relative_difference: float  # largest |s_b / (s_x s_w) - 1|; NaN when unknown

    @property
    def scale_matches(self) -> bool:
        """The bias scale is ``s_x * s_w`` (within two float32 ulps) and its zero point 0."""
        return (self.relative_difference <= BIAS_SCALE_TOLERANCE
                and all(z == 0 for z in self.zero_points))


@dataclass(frozen=True)
class RequantRecipe:
    """The integer recipe of one quantized-op group (see the module docstring).

    ``multipliers`` holds one :class:`FixedPointMultiplier` per output channel for
    Conv / Gemm / MatMul (one when everything is per-tensor), one per input for Add
    (``s_a / s_y``, ``s_b / s_y``), and one for pools and rescaling ops. It is empty
    when a scale is unknown; ``notes`` then says why."""

    node: str  # NodeInfo.key of the compute node
    name: str  # its name in the model
    op_type: str
    kind: str  # "matmul" | "add" | "pool" | "rescale"
    inputs: tuple[TensorQuantization, ...]
    weight: TensorQuantization | None
    bias: BiasQuantization | None
    output: TensorQuantization
    multipliers: tuple[FixedPointMultiplier, ...]
    pool_size: int | None = None  # K of an average pool: the divisor folded into M
    notes: tuple[str, ...] = ()
    graph: str = ""

    @property
    def complete(self) -> bool:
        """Every constant is known: an integer kernel can run this group."""
        return bool(self.multipliers)

    @property
    def max_relative_error(self) -> float:
        return max((abs(m.relative_error) for m in self.multipliers), default=0.0)


# -- building recipes ----------------------------------------------------------------------
def requant_recipes(model: QdqModel) -> tuple[RequantRecipe, ...]:
    """Recipes of the QDQ groups and QOperator ops an integer kernel implements with a
    requantization, in node order."""
    recipes = []
    for group in model.groups:
        if group.op_type in RECIPE_OPS and group.input_dqs and group.output_qs:
            recipes.append(recipe_for(model, group))
    for op in model.quant_ops:
        output = op.operand(Role.OUTPUT)
        if op.op_type in QOPERATOR_RECIPES and output is not None and output.scale:
            recipes.append(qoperator_recipe(model, op))
    if model.quant_ops and model.groups:
        order = {node.key: position for position, node in enumerate(model.nodes)}
        recipes.sort(key=lambda recipe: order[recipe.node])
    return tuple(recipes)


def qoperator_recipe(model: QdqModel, op: QuantOp) -> RequantRecipe:
    """The recipe of a QLinearConv / QLinearMatMul / QGemm / QLinearAdd / QLinear pool:
    the same constants as the QDQ group of its float op (the bias scale of QLinearConv
    and QGemm is ``s_x * s_w`` by definition)."""
    info = model.node(op.node)
    qdq_op = QOPERATOR_RECIPES[op.op_type]
    kind = recipe_kind(qdq_op)
    inputs = tuple(operand_side(model, o) for o in op.operands if o.role is Role.INPUT)
    weight_operand = op.operand(Role.WEIGHT)
    weight = operand_side(model, weight_operand) if weight_operand else None
    if kind == "matmul" and weight is None and len(inputs) > 1:  # B computed: a 2-input MatMul
        inputs, weight = inputs[:1], inputs[1]
    output = operand_side(model, op.operand(Role.OUTPUT))  # type: ignore[arg-type]
    if kind == "add" and op.op_type != "QLinearAdd":
        kind = "rescale"
    pool_size = _pool_size_of(model, op.node, qdq_op) if kind == "pool" else None
    blocking = _missing(inputs, weight, output)
    if not inputs or (kind == "add" and len(inputs) < 2):
        blocking.append("an input of the op is missing")
    if kind == "matmul" and weight is None:
        blocking.append("the weight of the op is missing")
    if kind == "pool" and pool_size is None:
        blocking.append("the pooling window size is unknown")
    bias_operand = op.operand(Role.BIAS)
    bias = None
    if bias_operand is not None and inputs and weight is not None:
        bias = _implied_bias(model, bias_operand, inputs[0], weight)
    multipliers = () if blocking else _multipliers(kind, inputs, weight, output, pool_size)
    return RequantRecipe(
        node=op.node, name=info.name or op.node, op_type=op.op_type, kind=kind,
        inputs=inputs, weight=weight, bias=bias, output=output, multipliers=multipliers,
        pool_size=pool_size, notes=tuple(blocking), graph=op.graph)


def operand_side(model: QdqModel, operand: QuantOperand) -> TensorQuantization:
    """Scale(s) and zero point(s) of one operand of a QOperator op."""
    params = {p.name: p for p in model.params}
    scale = params.get(operand.scale) if operand.scale else None
    zero_point = params.get(operand.zero_point) if operand.zero_point else None
    scales = tuple(float(v) for v in scale.values) if scale is not None and scale.known else ()
    if operand.zero_point is None:
        zero_points: tuple[int, ...] = (0,)
    elif zero_point is not None and zero_point.known:
        zero_points = tuple(int(v) for v in zero_point.values)
    else:
        zero_points = ()
    return TensorQuantization(tensor=operand.tensor, qdq=operand.key,
                              scale_name=operand.scale or "", scales=scales,
                              zero_point_name=operand.zero_point, zero_points=zero_points,
                              dtype=operand.quant_dtype, axis=operand.axis)


def _implied_bias(model: QdqModel, operand: QuantOperand, activation: TensorQuantization,
                  weight: TensorQuantization) -> BiasQuantization:
    """The INT32 bias of QLinearConv / QGemm: its scale is ``s_x * s_w`` by definition."""
    expected: tuple[float, ...] = ()
    if activation.known and weight.known:
        s_x = np.float32(activation.scales[0])
        expected = tuple(float(s_x * np.float32(s_w)) for s_w in weight.scales)
    return BiasQuantization(tensor=operand.tensor, qdq=operand.key, scale_name="",
                            scales=expected, zero_points=(0,), dtype=operand.quant_dtype,
                            relative_difference=0.0 if expected else math.nan)


def recipe_for(model: QdqModel, group: QuantGroup) -> RequantRecipe:
    """The recipe of one group (``op_type`` in :data:`RECIPE_OPS`)."""
    info = model.node(group.node)
    inputs = tuple(side_of(model, model.qdq(key)) for key in group.input_dqs)
    output = side_of(model, model.qdq(group.output_qs[0]))
    weight = side_of(model, model.qdq(group.weight_dq)) if group.weight_dq else None
    kind = recipe_kind(group.op_type)
    pool_size = _pool_size(model, group) if kind == "pool" else None
    blocking = _missing(inputs, weight, output)
    if kind == "matmul" and weight is None:
        blocking.append("the weight is not read through a DequantizeLinear: no integer recipe")
    if kind == "pool" and pool_size is None:
        blocking.append("the pooling window size is unknown")
    notes = list(blocking)
    if len(group.output_qs) > 1:
        notes.append(f"{len(group.output_qs)} QuantizeLinear nodes read the output; "
                     f"the first ({group.output_qs[0]}) is shown")
    bias = _bias(model, group, inputs[0], weight) if group.bias_dq else None
    multipliers = () if blocking else _multipliers(kind, inputs, weight, output, pool_size)
    return RequantRecipe(
        node=group.node, name=info.name or group.node, op_type=group.op_type, kind=kind,
        inputs=inputs, weight=weight, bias=bias, output=output, multipliers=multipliers,
        pool_size=pool_size, notes=tuple(notes), graph=group.graph)


def recipe_kind(op_type: str) -> str:
    if op_type in MATMUL_OPS:
        return "matmul"
    if op_type in ADD_OPS:
        return "add"
    if op_type in POOL_OPS:
        return "pool"
    return "rescale"


def side_of(model: QdqModel, qdq: QdqNode) -> TensorQuantization:
    """Scale(s) and zero point(s) a Q / DQ node applies to its integer tensor."""
    scale, zero_point = model.qdq_params(qdq.key)
    scales = tuple(float(v) for v in scale.values) if scale is not None and scale.known else ()
    if qdq.zero_point is None:
        zero_points: tuple[int, ...] = (0,)
    elif zero_point is not None and zero_point.known and all(
            math.isfinite(v) for v in zero_point.values):  # a float8 zero point may be NaN
        zero_points = tuple(int(v) for v in zero_point.values)
    else:
        zero_points = ()
    tensor = qdq.output if qdq.op_type == "QuantizeLinear" else qdq.input
    dtype = qdq.quant_dtype
    if dtype is None and qdq.zero_point is None and qdq.op_type == "QuantizeLinear":
        dtype = "UINT8"  # the specification's default output type
    return TensorQuantization(tensor=tensor, qdq=qdq.key, scale_name=qdq.scale,
                              scales=scales, zero_point_name=qdq.zero_point,
                              zero_points=zero_points, dtype=dtype, axis=qdq.axis)


def _missing(inputs: tuple[TensorQuantization, ...], weight: TensorQuantization | None,
             output: TensorQuantization) -> list[str]:
    notes = []
    for label, side in [*((f"input {i}", s) for i, s in enumerate(inputs)),
                        *([("weight", weight)] if weight else []), ("output", output)]:
        if not side.known:
            notes.append(f"the {label} scale or zero point ({side.scale_name}) is unknown")
        elif any(not (s > 0 and math.isfinite(s)) for s in side.scales):
            notes.append(f"the {label} scale ({side.scale_name}) is not a positive number")
    return notes


def _multipliers(kind: str, inputs: tuple[TensorQuantization, ...],
                 weight: TensorQuantization | None, output: TensorQuantization,
                 pool_size: int | None) -> tuple[FixedPointMultiplier, ...]:
    """Effective multipliers, computed in float64 from the float32 scales."""
    s_y = output.scales[0]
    if kind == "matmul" and weight is not None:
        s_x = inputs[0].scales[0]
        return tuple(quantize_multiplier(s_x * s_w / s_y) for s_w in weight.scales)
    if kind == "add":
        return tuple(quantize_multiplier(side.scales[0] / s_y) for side in inputs)
    if kind == "pool":
        return (quantize_multiplier(inputs[0].scales[0] / (s_y * (pool_size or 1))),)
    return (quantize_multiplier(inputs[0].scales[0] / s_y),)


def _bias(model: QdqModel, group: QuantGroup, activation: TensorQuantization,
          weight: TensorQuantization | None) -> BiasQuantization:
    side = side_of(model, model.qdq(group.bias_dq))  # type: ignore[arg-type]
    difference = math.nan
    if weight is not None and activation.known and weight.known and side.known:
        exact = [activation.scales[0] * s_w for s_w in weight.scales]
        scales = side.scales if len(side.scales) == len(exact) else side.scales * len(exact)
        # a zero (or NaN) scale is reported by the analysis (qdq.scale): no ratio then
        difference = max((abs(s_b / e - 1) if e else math.inf
                          for s_b, e in zip(scales, exact)), default=math.nan)
    return BiasQuantization(tensor=side.tensor, qdq=side.qdq, scale_name=side.scale_name,
                            scales=side.scales, zero_points=side.zero_points, dtype=side.dtype,
                            relative_difference=difference)


def _pool_size(model: QdqModel, group: QuantGroup) -> int | None:
    """K: the number of values an average pool sums (kernel area, or H*W for global)."""
    return _pool_size_of(model, group.node, group.op_type)


def _pool_size_of(model: QdqModel, key: str, op_type: str) -> int | None:
    info = model.node(key)
    if op_type == "AveragePool":
        kernel = dict(info.attributes).get("kernel_shape", "")
        sizes = [int(v) for v in kernel.strip("[]() ").replace(",", " ").split() if v.isdigit()]
        return math.prod(sizes) if sizes else None
    tensor = model.tensors.get(info.inputs[0]) if info.inputs else None
    if tensor is None or tensor.shape is None or len(tensor.shape) < 3:
        return None
    spatial = tensor.shape[2:]
    if all(isinstance(d, int) for d in spatial):
        return math.prod(spatial)  # type: ignore[arg-type]
    return None
