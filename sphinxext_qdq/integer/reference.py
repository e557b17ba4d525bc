"""An integer-only reference of a QDQ model: what an INT8 accelerator computes.

:func:`build_integer_program` turns every quantized-op group of the main graph into
an :class:`IntegerStep` holding its :class:`~.requant.RequantRecipe` and its integer
constants (weights as stored, the INT32 bias). :meth:`IntegerProgram.run` then
executes the model on integer tensors only:

- the float input is quantized once, exactly as QuantizeLinear specifies
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

:func:`compare_with_onnxruntime` runs the same images through ONNX Runtime (CPU,
default optimisations) and reports per-layer and top-1 agreement. It is the only
function here that imports ``onnxruntime`` (lazily).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import io
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from onnx import helper

from sphinxext_qdq.analysis.loader import load_qdq_model
from sphinxext_qdq.analysis.records import Role
from sphinxext_qdq.integer.requant import (
    QOPERATOR_RECIPES,
    ROUNDINGS,
    FixedPointMultiplier,
    RequantRecipe,
    TensorQuantization,
    quantize_multiplier,
    requant_recipes,
    requantize,
    round_shift,
    saturate,
    side_of,
)
from sphinxext_qdq.onnxio.dtypes import c_type_of, integer_range, numpy_integer
from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.onnxio.files import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    read_checked,
    regular_file,
)
from sphinxext_qdq.onnxio.proto import read_model_proto, read_tensor_array
from sphinxext_qdq.render.text import one_line

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import onnx

    from sphinxext_qdq.analysis.records import QdqModel

#: Integer element types the reference computes with.
SUPPORTED_TYPES = frozenset({"INT8", "UINT8", "INT16", "UINT16", "INT32"})

#: Ops :meth:`IntegerProgram.run` executes.
SUPPORTED_OPS = frozenset({"Conv", "Gemm", "MatMul", "Add", "AveragePool",
                           "GlobalAveragePool", "Reshape", "Flatten", "Transpose",
                           "Identity", "Relu"})

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

    @property
    def node(self) -> str:
        return self.recipe.node

    @property
    def op_type(self) -> str:
        """The float op the kernel computes (``Conv`` for a QLinearConv)."""
        return QOPERATOR_RECIPES.get(self.recipe.op_type, self.recipe.op_type)


@dataclass(frozen=True)
class EntryQuantizer:
    """A QuantizeLinear reading a float graph input: where the integer domain starts."""

    graph_input: str
    quantization: TensorQuantization  # .tensor is the integer tensor written


@dataclass(frozen=True)
class ExitDequantizer:
    """A DequantizeLinear writing a graph output: where the integer domain ends."""

    graph_output: str
    quantization: TensorQuantization  # .tensor is the integer tensor read


@dataclass(frozen=True, eq=False)
class IntegerProgram:
    """A QDQ model as a sequence of integer steps (see the module docstring)."""

    path: str
    entries: tuple[EntryQuantizer, ...]
    steps: tuple[IntegerStep, ...]
    exits: tuple[ExitDequantizer, ...]

    def step(self, node: str) -> IntegerStep:
        """The step of the compute node *node* (its key or name)."""
        for step in self.steps:
            if node in (step.node, step.recipe.name):
                return step
        raise KeyError(node)

    def quantize_inputs(self, inputs: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """QuantizeLinear of the float graph inputs (one array: the only input)."""
        if not isinstance(inputs, dict):
            if len(self.entries) != 1:
                raise IntegerReferenceError(f"the model has {len(self.entries)} quantized "
                                            "inputs: pass a dict of arrays")
            inputs = {self.entries[0].graph_input: inputs}
        return {entry.quantization.tensor: quantize_linear(inputs[entry.graph_input],
                                                           entry.quantization)
                for entry in self.entries}

    def run(self, inputs: np.ndarray | dict[str, np.ndarray], *, rounding: str = "half_even",
            batch_size: int = 16) -> dict[str, np.ndarray]:
        """Every integer tensor of the model for float *inputs* (batched along axis 0)."""
        if rounding not in ROUNDINGS:
            raise ValueError(f"unknown rounding {rounding!r}; expected one of "
                             f"{', '.join(ROUNDINGS)}")
        quantized = self.quantize_inputs(inputs)
        count = len(next(iter(quantized.values())))
        batches = []
        for start in range(0, count, batch_size):
            values = {name: array[start:start + batch_size] for name, array in quantized.items()}
            for step in self.steps:
                for name, result in zip(step.outputs, run_step(step, values, rounding)):
                    values[name] = result
            batches.append(values)
        return {name: np.concatenate([batch[name] for batch in batches])
                for name in batches[0]}


# -- building ---------------------------------------------------------------------------
def build_integer_program(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                          strict: bool = True, max_elements: int = DEFAULT_MAX_ELEMENTS
                          ) -> IntegerProgram:
    """Read the model at *path* (analysis cached by the loader) into an integer program.

    *strict*: every group must be runnable and the whole path from the inputs to the
    outputs integer; otherwise groups the reference cannot run are left out."""
    model = load_qdq_model(path, max_bytes=max_bytes)
    resolved, proto = read_model_proto(path, max_bytes)  # the loader's checks and repair
    return program_from(model, proto, resolved.parent, strict=strict, max_elements=max_elements)


def program_from(model: QdqModel, proto: onnx.ModelProto,
                 model_dir: str | os.PathLike[str] | None, *, strict: bool = True,
                 max_elements: int = DEFAULT_MAX_ELEMENTS) -> IntegerProgram:
    """The integer program of an analysed model and its protobuf (main graph only)."""
    constants = _Constants(proto, model_dir, max_elements)
    nodes = {node.key: proto.graph.node[node.index] for node in model.main_nodes}
    steps = []
    for recipe in requant_recipes(model):
        if recipe.graph:
            continue
        problem = _unsupported(recipe)
        if problem and strict:
            raise IntegerReferenceError(f"{recipe.name}: {problem}")
        if not problem:
            make = _qoperator_step if model.quant_op(recipe.node) else _step
            steps.append(make(model, recipe, nodes[recipe.node], constants))
    entries = _entries(model)
    if model.quant_ops:  # QOperator: Reshape / Flatten move the integers of the op before
        steps += _moves(model, entries, steps, nodes, constants)
        order = {node.key: node.index for node in model.main_nodes}
        steps.sort(key=lambda step: order[step.node])
    program = IntegerProgram(path=model.path, entries=entries, steps=tuple(steps),
                             exits=_exits(model))
    if strict:
        _check_connected(program)
    return program


def _unsupported(recipe: RequantRecipe) -> str:
    """Why the reference cannot run a group ("" when it can)."""
    if QOPERATOR_RECIPES.get(recipe.op_type, recipe.op_type) not in SUPPORTED_OPS:
        return f"{recipe.op_type} is not supported by the integer reference"
    if not recipe.complete:
        return "; ".join(recipe.notes)
    sides = [*recipe.inputs, recipe.output]
    if any(side.per_channel for side in sides):
        return "per-channel activations are not supported"
    if any(side.dtype not in SUPPORTED_TYPES for side in sides):
        return "only INT8 / UINT8 / INT16 / UINT16 / INT32 activations are supported"
    return ""


class _Constants:
    """Initializer and Constant values of the main graph, read on demand."""

    def __init__(self, proto: onnx.ModelProto, model_dir: str | os.PathLike[str] | None,
                 max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        self.model_dir = model_dir
        self.max_elements = max_elements
        self.tensors = {t.name: t for t in proto.graph.initializer}
        for node in proto.graph.node:
            if node.op_type == "Constant" and node.output:
                for attribute in node.attribute:
                    if attribute.name == "value":
                        self.tensors[node.output[0]] = attribute.t

    def array(self, name: str, what: str) -> np.ndarray:
        if name not in self.tensors:
            raise IntegerReferenceError(f"{what} {name!r} is not a constant of the model")
        tensor = self.tensors[name]
        count = math.prod(tensor.dims)
        if count > self.max_elements:
            raise IntegerReferenceError(f"{what} {name!r} has {count} elements, more than the "
                                        f"limit of {self.max_elements}")
        try:
            return read_tensor_array(tensor, self.model_dir)
        except QdqModelError as error:
            raise IntegerReferenceError(f"{what} {name!r}: {error.reason}") from None
        except (ValueError, TypeError, KeyError) as error:  # data not matching dims or type
            raise IntegerReferenceError(f"{what} {name!r} cannot be read: its data does not "
                                        f"match its type and shape ({error})") from None


def _step(model: QdqModel, recipe: RequantRecipe, node: onnx.NodeProto,
          constants: _Constants) -> IntegerStep:
    group = model.group_of(recipe.node)
    assert group is not None
    weight = bias = shape = None
    if group.weight_dq:
        weight = constants.array(model.qdq(group.weight_dq).input, "weight")
    if group.bias_dq:
        bias = constants.array(model.qdq(group.bias_dq).input, "bias").astype(np.int64)
    if recipe.op_type == "Reshape":
        shape = constants.array(node.input[1], "Reshape shape")
    attributes = _attributes(recipe, node)
    if weight is not None:
        _check_weight(recipe, weight)
    outputs = tuple(model.qdq(key).output for key in group.output_qs)
    return IntegerStep(recipe=recipe, inputs=tuple(side.tensor for side in recipe.inputs),
                       outputs=outputs, weight=weight, bias=bias, attributes=attributes,
                       shape=shape)


def _qoperator_step(model: QdqModel, recipe: RequantRecipe, node: onnx.NodeProto,
                    constants: _Constants) -> IntegerStep:
    """A QLinearConv / QLinearMatMul / QGemm / QLinearAdd / QLinear pool: its weight and
    INT32 bias are inputs of the node itself."""
    op = model.quant_op(recipe.node)
    assert op is not None
    weight = op.operand(Role.WEIGHT)
    bias = op.operand(Role.BIAS)
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if op.op_type == "QGemm" and attributes.get("alpha", 1.0) != 1.0:
        raise IntegerReferenceError(f"{recipe.name}: QGemm alpha other than 1")
    return IntegerStep(
        recipe=recipe, inputs=tuple(side.tensor for side in recipe.inputs),
        outputs=(recipe.output.tensor,),
        weight=constants.array(weight.tensor, "weight") if recipe.weight and weight else None,
        bias=constants.array(bias.tensor, "bias").astype(np.int64) if bias else None,
        attributes=attributes)


#: Ops that move the integers of a QOperator model without arithmetic (no recipe of
#: their own: the output has the input's scale and zero point).
_MOVES = frozenset({"Reshape", "Flatten", "Transpose", "Identity"})


def _moves(model: QdqModel, entries: tuple[EntryQuantizer, ...], steps: list[IntegerStep],
           nodes: dict[str, onnx.NodeProto], constants: _Constants) -> list[IntegerStep]:
    """Steps for the Reshape / Flatten / Transpose / Identity nodes between QOperator ops:
    a rescale by exactly 1 (``M0 = 2^30``, shift ``-1``)."""
    sides = {entry.quantization.tensor: entry.quantization for entry in entries}
    sides.update((step.recipe.output.tensor, step.recipe.output) for step in steps)
    moves = []
    for info in model.main_nodes:
        if info.op_type not in _MOVES or not info.inputs or info.inputs[0] not in sides \
                or model.quant_op(info.key) or model.group_of(info.key):
            continue
        side = sides[info.inputs[0]]
        output = dataclasses.replace(side, tensor=info.outputs[0])
        recipe = RequantRecipe(node=info.key, name=info.name or info.key,
                               op_type=info.op_type, kind="rescale", inputs=(side,),
                               weight=None, bias=None, output=output,
                               multipliers=(quantize_multiplier(1.0),), graph="")
        node = nodes[info.key]
        shape = constants.array(node.input[1], "Reshape shape") \
            if info.op_type == "Reshape" else None
        moves.append(IntegerStep(
            recipe=recipe, inputs=(side.tensor,), outputs=(output.tensor,),
            attributes={a.name: helper.get_attribute_value(a) for a in node.attribute},
            shape=shape))
        sides[output.tensor] = output
    return moves


def _attributes(recipe: RequantRecipe, node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attribute values; one referring to a function's attribute (outside
    any function here) or of no known type is refused."""
    attributes = {}
    for attribute in node.attribute:
        if attribute.ref_attr_name:
            raise IntegerReferenceError(f"{recipe.name}: attribute {attribute.name!r} refers to "
                                        f"the function attribute {attribute.ref_attr_name!r} "
                                        "outside a function")
        try:
            attributes[attribute.name] = helper.get_attribute_value(attribute)
        except (ValueError, TypeError) as error:
            raise IntegerReferenceError(f"{recipe.name}: attribute {attribute.name!r} has no "
                                        f"usable value ({error})") from None
    return attributes


def _check_weight(recipe: RequantRecipe, weight: np.ndarray) -> None:
    """A weight the kernel can index: per-channel constants along an existing axis, one
    per channel."""
    side = recipe.weight
    if side is None or not side.per_channel and len(side.zero_points) <= 1:
        return
    axis = side.axis if side.axis is not None else 0
    if not 0 <= axis < weight.ndim:
        raise IntegerReferenceError(f"{recipe.name}: the weight's per-channel axis {axis} is "
                                    f"outside its rank {weight.ndim}")
    for label, values in (("scales", side.scales), ("zero points", side.zero_points)):
        if len(values) > 1 and len(values) != weight.shape[axis]:
            raise IntegerReferenceError(f"{recipe.name}: {len(values)} weight {label} for "
                                        f"{weight.shape[axis]} channels on axis {axis}")


def _entries(model: QdqModel) -> tuple[EntryQuantizer, ...]:
    graph_inputs = set(model.inputs)
    return tuple(EntryQuantizer(qdq.input, side_of(model, qdq)) for qdq in model.qdq_nodes
                 if qdq.op_type == "QuantizeLinear" and not qdq.graph and qdq.input in graph_inputs)


def _exits(model: QdqModel) -> tuple[ExitDequantizer, ...]:
    graph_outputs = set(model.outputs)
    return tuple(ExitDequantizer(qdq.output, side_of(model, qdq)) for qdq in model.qdq_nodes
                 if qdq.op_type == "DequantizeLinear" and not qdq.graph
                 and qdq.output in graph_outputs)


def _check_connected(program: IntegerProgram) -> None:
    """Every step reads integers an entry or an earlier step wrote."""
    known = {entry.quantization.tensor for entry in program.entries}
    if not known:
        raise IntegerReferenceError("no QuantizeLinear reads a graph input: nothing to run")
    for step in program.steps:
        missing = [name for name in step.inputs if name not in known]
        if missing:
            raise IntegerReferenceError(f"{step.recipe.name}: its input {missing[0]!r} is not "
                                        "computed in integers (a float op precedes it)")
        known.update(step.outputs)
    for exit in program.exits:
        if exit.quantization.tensor not in known:
            raise IntegerReferenceError(f"the output {exit.graph_output!r} is not computed in "
                                        "integers")


# -- the kernels ------------------------------------------------------------------------
def quantize_linear(x: np.ndarray, side: TensorQuantization) -> np.ndarray:
    """ONNX QuantizeLinear, per tensor: float32 ``x / s``, round half to even, ``+ z``,
    saturate."""
    if side.per_channel or not side.known or side.dtype not in SUPPORTED_TYPES:
        raise IntegerReferenceError(f"{side.qdq}: only a known per-tensor quantization to "
                                    f"an integer type is supported at the input")
    quotient = np.asarray(x, np.float32) / np.float32(side.scales[0])
    rounded = np.rint(quotient).astype(np.int64) + side.zero_points[0]
    return saturate(rounded, side.dtype).astype(numpy_integer(side.dtype))


def run_step(step: IntegerStep, values: dict[str, np.ndarray], rounding: str
             ) -> list[np.ndarray]:
    """The integer outputs of one step (one array per output Q, all the same values)."""
    recipe = step.recipe
    result = _KERNELS[recipe.kind](step, [values[name] for name in step.inputs], rounding)
    if step.op_type == "Relu":
        result = np.maximum(result, recipe.output.zero_points[0])
    output = recipe.output
    typed = saturate(result, output.dtype or "").astype(numpy_integer(output.dtype or ""))
    return [typed] * len(step.outputs)


def accumulate(step: IntegerStep, x: np.ndarray) -> np.ndarray:
    """The INT32 accumulator of a Conv / Gemm / MatMul step (int64 array)."""
    recipe = step.recipe
    centred_x = _centred(x, recipe.inputs[0])
    weight = step.weight
    assert weight is not None and recipe.weight is not None
    centred_w = _centred_weight(weight, recipe.weight, step)
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
    acc = accumulate(step, inputs[0])
    multipliers, shifts = _fixed_point(step, acc.ndim)
    return requantize(acc, multipliers, shifts, rounding) + step.recipe.output.zero_points[0]


def _add_kernel(step: IntegerStep, inputs: list[np.ndarray], rounding: str) -> np.ndarray:
    """``z_y + round(M_a (a - z_a) + M_b (b - z_b))`` on one fixed-point grid."""
    recipe = step.recipe
    common = max(m.total_shift for m in recipe.multipliers)
    total = np.int64(0)
    for x, side, m in zip(inputs, recipe.inputs, recipe.multipliers):
        centred = _centred(x, side)
        extra = common - m.total_shift
        bound = int(np.abs(centred).max(initial=0)) * m.multiplier * (1 << extra)
        if bound >= 2 ** 62:
            raise IntegerReferenceError(f"{recipe.name}: the input scales differ too much for "
                                        "a 64-bit common grid")
        total = total + (centred * np.int64(m.multiplier)) * np.int64(1 << extra)
    return round_shift(total, common, rounding) + recipe.output.zero_points[0]


def _pool_kernel(step: IntegerStep, inputs: list[np.ndarray], rounding: str) -> np.ndarray:
    recipe = step.recipe
    centred = _centred(inputs[0], recipe.inputs[0])
    if step.op_type == "GlobalAveragePool":
        acc = centred.sum(axis=tuple(range(2, centred.ndim)), keepdims=True)
    else:
        acc = average_pool_sum(centred, step)
    m = recipe.multipliers[0]
    return requantize(acc, m.multiplier, m.total_shift, rounding) + recipe.output.zero_points[0]


def _rescale_kernel(step: IntegerStep, inputs: list[np.ndarray], rounding: str) -> np.ndarray:
    recipe = step.recipe
    moved = move_values(step, _centred(inputs[0], recipe.inputs[0]))
    m = recipe.multipliers[0]
    return requantize(moved, m.multiplier, m.total_shift, rounding) + recipe.output.zero_points[0]


_KERNELS = {"matmul": _matmul_kernel, "add": _add_kernel, "pool": _pool_kernel,
            "rescale": _rescale_kernel}


def _centred(x: np.ndarray, side: TensorQuantization) -> np.ndarray:
    if side.per_channel:
        raise IntegerReferenceError(f"{side.qdq}: per-channel activations are not supported")
    return np.asarray(x, np.int64) - side.zero_points[0]


def _centred_weight(weight: np.ndarray, side: TensorQuantization, step: IntegerStep
                    ) -> np.ndarray:
    zero_points = np.asarray(side.zero_points, np.int64)
    if zero_points.size > 1:
        axis = side.axis if side.axis is not None else 0
        shape = [1] * weight.ndim
        shape[axis] = zero_points.size
        zero_points = zero_points.reshape(shape)
    return np.asarray(weight, np.int64) - zero_points


def _channel_shaped(values: np.ndarray, ndim: int, step: IntegerStep) -> np.ndarray:
    """Per-output-channel constants shaped to broadcast over an accumulator."""
    values = np.asarray(values)
    if values.size == 1:
        return values.reshape(())
    shape = [1] * ndim
    shape[1 if step.op_type == "Conv" else ndim - 1] = values.size
    return values.reshape(shape)


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


# -- agreement with ONNX Runtime -------------------------------------------------------
@dataclass(frozen=True)
class LayerAgreement:
    """How one integer tensor of the reference compares with ONNX Runtime's."""

    node: str  # the compute node (or the QuantizeLinear) writing the tensor
    op_type: str
    tensor: str
    elements: int
    exact: int  # elements equal
    max_difference: int  # largest |difference| in LSB (units of the output scale)
    ort_kernel: str = ""  # what ONNX Runtime ran for this node after optimisation

    @property
    def exact_fraction(self) -> float:
        return self.exact / self.elements if self.elements else 1.0


@dataclass(frozen=True)
class AgreementReport:
    """Reference against ONNX Runtime on a set of inputs."""

    model: str
    images: int
    rounding: str
    onnxruntime_version: str
    layers: tuple[LayerAgreement, ...]  # every integer tensor (ORT run exposing them all)
    final: tuple[LayerAgreement, ...]  # the unmodified model's outputs, before DequantizeLinear
    top1_equal: int  # images whose arg-max (first output) is the same
    #: (compute node, op ONNX Runtime runs for it) in the unmodified model
    kernels: tuple[tuple[str, str], ...] = ()


def layer_agreement(node: str, op_type: str, tensor: str, ours: np.ndarray, theirs: np.ndarray,
                    ort_kernel: str = "") -> LayerAgreement:
    if ours.shape != theirs.shape:
        raise IntegerReferenceError(f"{tensor}: shapes differ ({ours.shape} vs {theirs.shape})")
    difference = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    return LayerAgreement(node=node, op_type=op_type, tensor=tensor, elements=int(difference.size),
                          exact=int(np.count_nonzero(difference == 0)),
                          max_difference=int(difference.max(initial=0)), ort_kernel=ort_kernel)


def compare_with_onnxruntime(path: str | os.PathLike[str], inputs: np.ndarray, *,
                             rounding: str = "half_even", batch_size: int = 16,
                             session_config: dict[str, str] | None = None,
                             max_bytes: int = DEFAULT_MAX_BYTES,
                             max_elements: int = DEFAULT_MAX_ELEMENTS) -> AgreementReport:
    """Run the integer reference and ONNX Runtime (CPU, default optimisations) on
    *inputs*; compare every integer tensor and the top-1 class.

    *session_config* entries go to ``SessionOptions.add_session_config_entry``
    (e.g. ``{"session.x64quantprecision": "1"}``: ONNX Runtime's U8U8 fallback for x86
    CPUs without VNNI, whose U8S8 kernels can saturate 16-bit intermediate sums)."""
    import onnxruntime

    config = dict(session_config or {})

    program = build_integer_program(path, max_bytes=max_bytes, max_elements=max_elements)
    ours = program.run(inputs, rounding=rounding, batch_size=batch_size)
    _resolved, proto = read_model_proto(path, max_bytes)
    feeds = {program.entries[0].graph_input: np.asarray(inputs, np.float32)}
    final_float = _ort_run(proto, feeds, [e.graph_output for e in program.exits], config=config)
    final = []
    for exit, values in zip(program.exits, final_float):
        theirs = quantize_linear(values, exit.quantization)  # exact: undoes DequantizeLinear
        final.append(layer_agreement(exit.graph_output, "DequantizeLinear input",
                                     exit.quantization.tensor, ours[exit.quantization.tensor],
                                     theirs))
    first = program.exits[0].quantization.tensor
    first_theirs = quantize_linear(final_float[0], program.exits[0].quantization)
    top1 = int(np.count_nonzero(_top1(ours[first]) == _top1(first_theirs)))
    kernels = onnxruntime_kernels(proto, config)
    layers = _tapped_layers(program, proto, feeds, ours, config)
    return AgreementReport(model=str(path), images=len(inputs), rounding=rounding,
                           onnxruntime_version=onnxruntime.__version__, layers=tuple(layers),
                           final=tuple(final), top1_equal=top1,
                           kernels=tuple((step.node, kernels.get(step.recipe.name, ""))
                                         for step in program.steps))


def _top1(values: np.ndarray) -> np.ndarray:
    return np.argmax(values.reshape(len(values), -1), axis=1)


def _tapped_layers(program: IntegerProgram, proto: onnx.ModelProto,
                   feeds: dict[str, np.ndarray], ours: dict[str, np.ndarray],
                   config: dict[str, str]) -> list[LayerAgreement]:
    """Every integer tensor, read from an ORT session that exposes them as outputs
    (exposing a tensor changes which groups ORT fuses: ``ort_kernel`` is this run's)."""
    taps = [(entry.quantization.tensor, entry.graph_input, "QuantizeLinear")
            for entry in program.entries]
    taps += [(step.outputs[0], step.recipe.name, step.recipe.op_type) for step in program.steps]
    tapped = _with_outputs(proto, [(tensor, ours[tensor].dtype) for tensor, *_ in taps])
    kernels = onnxruntime_kernels(tapped, config)
    values = _ort_run(tapped, feeds, [tensor for tensor, *_ in taps], config=config)
    return [layer_agreement(node, op_type, tensor, ours[tensor], theirs, kernels.get(node, ""))
            for (tensor, node, op_type), theirs in zip(taps, values)]


def _with_outputs(proto: onnx.ModelProto, tensors: Iterable[tuple[str, np.dtype]]
                  ) -> onnx.ModelProto:
    tapped = type(proto)()
    tapped.CopyFrom(proto)
    present = {output.name for output in tapped.graph.output}
    for name, dtype in tensors:
        if name not in present:
            element = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            tapped.graph.output.append(helper.make_tensor_value_info(name, element, None))
    return tapped


def _ort_session(proto: onnx.ModelProto, optimized_path: str | None = None, *,
                 optimize: bool = True, config: dict[str, str] | None = None) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    if not optimize:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    return onnxruntime.InferenceSession(proto.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def _ort_run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray], outputs: Sequence[str],
             batch_size: int = 64, *, optimize: bool = True,
             config: dict[str, str] | None = None) -> list[np.ndarray]:
    session = _ort_session(proto, optimize=optimize, config=config)
    name, images = next(iter(feeds.items()))
    fixed = session.get_inputs()[0].shape[0]
    batch_size = fixed if isinstance(fixed, int) and fixed > 0 else batch_size
    batches = [session.run(list(outputs), {name: images[i:i + batch_size]})
               for i in range(0, len(images), batch_size)]
    return [np.concatenate([batch[k] for batch in batches]) for k in range(len(outputs))]


def onnxruntime_kernels(proto: onnx.ModelProto, config: dict[str, str] | None = None
                        ) -> dict[str, str]:
    """Compute-node name -> the op ONNX Runtime runs for it after its optimisations
    (``QLinearConv``, ``QGemm``… for an integer kernel, the float op otherwise)."""
    import tempfile

    import onnx as onnx_module

    with tempfile.TemporaryDirectory() as folder:
        optimized = str(Path(folder) / "optimized.onnx")
        _ort_session(proto, optimized, config=config)
        graph = onnx_module.load(optimized, load_external_data=False).graph
    kernels: dict[str, str] = {}
    for node in graph.node:
        original = node.name.split("_token_")[0]
        kernels.setdefault(original, node.op_type)
    return kernels


# -- one output element, step by step ------------------------------------------------------
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


# -- test vectors for one kernel -----------------------------------------------------------
@dataclass(frozen=True, eq=False)
class KernelVectors:
    """Everything a hardware test bench needs for one group: integer arrays by name
    (``input`` or ``input0``/``input1``, ``weight``, ``bias``, ``multiplier``,
    ``shift``, ``output``) and scalar constants (zero points, pool size)."""

    step: IntegerStep
    arrays: dict[str, np.ndarray]
    constants: dict[str, int]
    rounding: str


def kernel_vectors(step: IntegerStep, inputs: Sequence[np.ndarray], *,
                   rounding: str = "half_even") -> KernelVectors:
    """The test vectors of *step* for integer *inputs* (one array per input, as stored)."""
    recipe = step.recipe
    if len(inputs) != len(step.inputs):
        raise IntegerReferenceError(f"{recipe.name} reads {len(step.inputs)} input(s), "
                                    f"{len(inputs)} given")
    values = dict(zip(step.inputs, inputs))
    output = run_step(step, values, rounding)[0]
    names = ["input"] if len(inputs) == 1 else [f"input{i}" for i in range(len(inputs))]
    arrays: dict[str, np.ndarray] = {name: np.asarray(x) for name, x in zip(names, inputs)}
    if step.weight is not None:
        arrays["weight"] = _c_typed(np.asarray(step.weight))
    if step.bias is not None:
        arrays["bias"] = np.asarray(step.bias, np.int32)
    arrays["multiplier"] = np.array([m.multiplier for m in recipe.multipliers], np.int32)
    arrays["shift"] = np.array([m.shift for m in recipe.multipliers], np.int32)
    arrays["output"] = output
    constants = {f"{name}_zero_point": side.zero_points[0]
                 for name, side in zip(names, recipe.inputs)}
    if recipe.weight is not None and len(recipe.weight.zero_points) == 1:
        constants["weight_zero_point"] = recipe.weight.zero_points[0]
    constants["output_zero_point"] = recipe.output.zero_points[0]
    low, high = integer_range(recipe.output.dtype or "INT8")
    constants.update(output_min=low, output_max=high)
    if recipe.pool_size:
        constants["pool_size"] = recipe.pool_size
    return KernelVectors(step=step, arrays=arrays, constants=constants, rounding=rounding)


def _c_typed(array: np.ndarray) -> np.ndarray:
    """*array* in a numpy integer type C has (a packed INT4 / UINT4 weight widened to
    int8 / uint8, values unchanged)."""
    try:
        c_type_of(array.dtype)
        return array
    except KeyError:
        signed = array.size == 0 or int(np.asarray(array, np.int64).min()) < 0 or \
            not str(array.dtype).startswith("u")
        return np.asarray(array, np.int64).astype(np.int8 if signed else np.uint8)


def group_input_shapes(model: QdqModel, step: IntegerStep, batch: int = 1, *,
                       max_elements: int = DEFAULT_MAX_ELEMENTS) -> list[tuple[int, ...]]:
    """Shapes of a step's integer inputs with *batch* as the first (batch) dimension;
    refused when the model declares a shape of more than *max_elements* elements."""
    shapes = []
    for name in step.inputs:
        tensor = model.tensors.get(name)
        if tensor is None or not tensor.shape or not all(
                isinstance(d, int) for d in tensor.shape[1:]):
            raise IntegerReferenceError(f"{step.recipe.name}: the shape of {name!r} is unknown; "
                                        "give model inputs instead")
        shape = (batch, *tensor.shape[1:])
        if any(d < 0 for d in shape):  # type: ignore[operator]
            raise IntegerReferenceError(f"{step.recipe.name}: {name!r} has a negative "
                                        f"dimension in its declared shape {list(shape)}")
        count = math.prod(shape)  # type: ignore[arg-type]
        if count > max_elements:
            raise IntegerReferenceError(f"{step.recipe.name}: {name!r} would have {count} "
                                        f"elements (declared shape {list(shape)}), more than "
                                        f"the limit of {max_elements}")
        shapes.append(shape)
    return shapes


def random_group_inputs(step: IntegerStep, shapes: Sequence[tuple[int, ...]], seed: int = 0
                        ) -> list[np.ndarray]:
    """Uniform integers over each input's full range (seeded)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for shape, side in zip(shapes, step.recipe.inputs):
        dtype = side.dtype or "INT8"
        low, high = integer_range(dtype)
        arrays.append(rng.integers(low, high, size=shape, endpoint=True).astype(numpy_integer(dtype)))
    return arrays


def c_identifier(text: str) -> str:
    """A C identifier (lower case) made of *text*: other characters become ``_``."""
    identifier = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in text).strip("_")
    identifier = "_".join(part for part in identifier.split("_") if part).lower() or "group"
    return f"g_{identifier}" if identifier[0].isdigit() else identifier


def c_comment(text: str) -> str:
    """*text* safe inside ``/* ... */`` on one line."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text)).replace("*/", "* /")


_FORMULAS = {
    "matmul": "acc[c] = sum (input - INPUT_ZERO_POINT)(weight - WEIGHT_ZERO_POINT) + bias[c]; "
              "output = clamp(OUTPUT_ZERO_POINT + round(acc[c] * multiplier[c] / "
              "2^(31 + shift[c])))",
    "add": "output = clamp(OUTPUT_ZERO_POINT + round(sum_i (input_i - INPUTi_ZERO_POINT) "
           "* multiplier[i] / 2^(31 + shift[i])))",
    "pool": "acc = sum over the window of (input - INPUT_ZERO_POINT); output = "
            "clamp(OUTPUT_ZERO_POINT + round(acc * multiplier[0] / 2^(31 + shift[0])))",
    "rescale": "output = clamp(OUTPUT_ZERO_POINT + round((input - INPUT_ZERO_POINT) "
               "* multiplier[0] / 2^(31 + shift[0])))",
}


def c_header(vectors: KernelVectors, *, prefix: str, source: str = "") -> str:
    """A self-contained C header: constants as ``#define``, arrays as ``static const``."""
    recipe = vectors.step.recipe
    guard = f"QDQ_{prefix.upper()}_H"
    lines = [
        f"/* Test vectors for {c_comment(recipe.name)} ({c_comment(recipe.op_type)})"
        + (f" of {c_comment(source)}" if source else "") + ".",
        " * Generated by qdq-graph vectors: the integer-only reference of sphinxext_qdq.",
        f" * {_FORMULAS[recipe.kind]}",
        (f" * round: {vectors.rounding.replace('_', ' ')} of the exact quotient; clamp to "
        "[OUTPUT_MIN, OUTPUT_MAX]."),
        " * multiplier is Q31, shift a right shift (negative: a left shift). */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
    ]
    for name, value in vectors.constants.items():
        lines.append(f"#define {prefix.upper()}_{name.upper()} ({value})")
    for name, value in _int_attributes(vectors.step).items():
        lines.append(f"static const int32_t {prefix}_{name}[{len(value)}] = "
                     f"{{{', '.join(map(str, value))}}};")
    lines.append("")
    for name, array in vectors.arrays.items():
        lines.extend(_c_array(f"{prefix}_{name}", array))
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def _int_attributes(step: IntegerStep) -> dict[str, list[int]]:
    """Integer attributes of the node (strides, pads, kernel_shape …) for the header."""
    found = {}
    for name, value in sorted(step.attributes.items()):
        if isinstance(value, int):
            value = [value]
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            found[c_identifier(name)] = value
    return found


def _c_array(name: str, array: np.ndarray) -> list[str]:
    array = np.asarray(array)
    c_type = c_type_of(array.dtype)
    shape = ", ".join(str(d) for d in array.shape) or "scalar"
    lines = [f"/* {name}: shape [{shape}], row-major */",
             (f"static const int32_t {name}_shape[{max(array.ndim, 1)}] = "
             f"{{{', '.join(str(d) for d in array.shape) or '1'}}};"),
             f"static const {c_type} {name}[{max(array.size, 1)}] = {{"]
    flat = [str(int(v)) for v in array.reshape(-1)] or ["0"]
    for start in range(0, len(flat), 16):
        lines.append("    " + ", ".join(flat[start:start + 16]) + ",")
    lines += ["};", ""]
    return lines


# -- named input sets ------------------------------------------------------------------------
_INPUT_SPEC = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):"
                         r"(?P<path>[A-Za-z_]\w*(?:\(\))?(?:\.[A-Za-z_]\w*(?:\(\))?)*)$")


def load_named_inputs(spec: str, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Float inputs named ``module:attribute`` (like a console-script entry point).

    The attribute path may call functions without arguments, e.g.
    ``scripts.resnet8_data:load_digits_splits().test_images``; the result is
    converted to a float32 array. Nothing is evaluated beyond imports, attribute
    reads and argument-less calls."""
    match = _INPUT_SPEC.match(spec.strip())
    if match is None:
        raise ValueError(f"{spec!r} is not 'module:attribute' (attributes may end in '()')")
    _check_module_file(match["module"], max_bytes)
    value: Any = importlib.import_module(match["module"])
    for part in match["path"].split("."):
        call = part.endswith("()")
        value = getattr(value, part.removesuffix("()"))
        if call:
            value = value()
    return np.asarray(value, np.float32)


def _check_module_file(module: str, max_bytes: int) -> None:
    """The source of *module* (when it is a file) is a regular file within *max_bytes*."""
    if module in sys.modules:
        return
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ValueError(f"no module named {module!r}")
    if spec.origin and spec.has_location:
        regular_file(spec.origin, "a Python module")
        size = os.stat(spec.origin).st_size
        if size > max_bytes:
            raise ValueError(f"module {module!r} is {size} bytes, more than the limit of "
                             f"{max_bytes} bytes")


def load_input_file(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES
                    ) -> np.ndarray:
    """Float model inputs from a ``.npy`` file (a regular file within *max_bytes*, no
    pickles)."""
    data = read_checked(path, max_bytes, "a .npy file")
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False), np.float32)


# -- failures ----------------------------------------------------------------------------------
def describe_failure(error: BaseException) -> str:
    """One line saying why the integer reference could not run on a model: the one place
    that turns any failure of the reference into a message (directive and command line)."""
    if isinstance(error, (IntegerReferenceError, QdqModelError)):
        return one_line(error)
    if isinstance(error, KeyError):
        return f"no quantized-op group {one_line(error.args[0] if error.args else '')!r}"
    if isinstance(error, MemoryError):
        return "the integer reference needs more memory than is available"
    return (f"the integer reference cannot run this model ({type(error).__name__}: "
            f"{one_line(error, 200)})")

