"""The integer program of a model: its quantized-op groups as :class:`~.kernels.IntegerStep`
in graph order, from the QuantizeLinear of the float inputs to the DequantizeLinear of
the outputs.

:func:`build_integer_program` reads a model (analysis cached by the loader) and turns
every group of the main graph into a step with its constants; :meth:`IntegerProgram.run`
executes it on integer tensors only. :func:`describe_failure` is the one place that
turns any failure of the integer reference into a one-line message.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import helper

from sphinxext_qdq.analysis.loader import load_qdq_model
from sphinxext_qdq.analysis.records import Role
from sphinxext_qdq.integer.inputs import ModelInputs, input_feeds
from sphinxext_qdq.integer.kernels import (
    SUPPORTED_TYPES,
    IntegerReferenceError,
    IntegerStep,
    quantize_linear,
    run_step,
)
from sphinxext_qdq.integer.lookup import (
    BYTE_TYPES,
    leaky_relu,
    mlas_logistic,
    requant_table,
)
from sphinxext_qdq.integer.requant import (
    QOPERATOR_RECIPES,
    ROUNDINGS,
    RequantRecipe,
    TensorQuantization,
    operand_side,
    quantize_multiplier,
    requant_recipes,
    side_of,
)
from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.onnxio.files import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_MAX_PARAM_VALUES,
)
from sphinxext_qdq.onnxio.proto import read_model_proto, read_tensor_array
from sphinxext_qdq.render.text import one_line

if TYPE_CHECKING:
    import onnx

    from sphinxext_qdq.analysis.records import QdqModel, QuantOp


#: Ops :meth:`IntegerProgram.run` executes.
SUPPORTED_OPS = frozenset({"Conv", "Gemm", "MatMul", "Add", "AveragePool",
                           "GlobalAveragePool", "Reshape", "Flatten", "Transpose",
                           "Identity", "Relu"})


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

    def quantize_inputs(self, inputs: ModelInputs) -> dict[str, np.ndarray]:
        """QuantizeLinear of the float graph inputs (one array: the only input)."""
        feeds = input_feeds(list(dict.fromkeys(e.graph_input for e in self.entries)), inputs)
        return {entry.quantization.tensor: quantize_linear(feeds[entry.graph_input],
                                                           entry.quantization)
                for entry in self.entries}

    def run(self, inputs: ModelInputs, *, rounding: str = "half_even",
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


def build_integer_program(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                          strict: bool = True, max_elements: int = DEFAULT_MAX_ELEMENTS,
                          max_param_values: int = DEFAULT_MAX_PARAM_VALUES) -> IntegerProgram:
    """Read the model at *path* (analysis cached by the loader) into an integer program.

    *strict*: every group must be runnable and the whole path from the inputs to the
    outputs integer; otherwise groups the reference cannot run are left out."""
    model = load_qdq_model(path, max_bytes=max_bytes, max_param_values=max_param_values)
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
    steps += _table_steps(model, nodes, constants, strict)
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


#: 8-bit QOperator ops outside the requantization recipes, and their kernel kind: a
#: fixed-point multiply (QLinearMul) or ONNX Runtime's tables (see :mod:`.lookup`).
TABLE_OPS = {"QLinearMul": "mul", "QLinearSigmoid": "lookup", "QLinearLeakyRelu": "lookup",
             "QLinearSoftmax": "softmax", "QLinearConcat": "concat", "QLinearWhere": "where"}


#: Quantized inputs of each table kind (concat: any number, at least one).
_INPUT_COUNTS = {"mul": 2, "lookup": 1, "softmax": 1, "where": 2}


def _table_steps(model: QdqModel, nodes: dict[str, onnx.NodeProto], constants: _Constants,
                 strict: bool) -> list[IntegerStep]:
    """Steps of the main graph's ops in :data:`TABLE_OPS` (left out when the reference
    cannot run them and *strict* is false)."""
    steps = []
    for op in model.quant_ops:
        if op.op_type in TABLE_OPS and not op.graph:
            try:
                steps.append(_table_step(model, op, nodes[op.node], constants))
            except IntegerReferenceError:
                if strict:
                    raise
    return steps


def _table_step(model: QdqModel, op: QuantOp, node: onnx.NodeProto,
                constants: _Constants) -> IntegerStep:
    name = model.node(op.node).name or op.node
    sides = tuple(operand_side(model, o) for o in op.operands if o.role is Role.INPUT)
    found = op.operand(Role.OUTPUT)
    output = operand_side(model, found) if found else None
    if output is None or any(not s.known or s.per_channel or s.dtype != output.dtype
                             or s.dtype not in BYTE_TYPES for s in (*sides, output)):
        raise IntegerReferenceError(f"{name}: {op.op_type} runs on known per-tensor scales "
                                    "and zero points of one 8-bit type only")
    kind = TABLE_OPS[op.op_type]
    if len(sides) != _INPUT_COUNTS.get(kind, len(sides) or 1):
        raise IntegerReferenceError(f"{name}: an input of {op.op_type} is missing")
    multipliers = (quantize_multiplier(sides[0].scales[0] * sides[1].scales[0]
                                       / output.scales[0]),) if kind == "mul" else ()
    recipe = RequantRecipe(node=op.node, name=name, op_type=op.op_type, kind=kind,
                           inputs=sides, weight=None, bias=None, output=output,
                           multipliers=multipliers, graph="")
    attributes = _attributes(recipe, node)
    inputs = tuple(side.tensor for side in sides)
    if kind == "where":
        inputs = (node.input[0], *inputs)
    stored = {tensor: constants.array(tensor, "input") for tensor in inputs
              if tensor in constants.tensors}
    return IntegerStep(recipe=recipe, inputs=inputs, outputs=(output.tensor,),
                       attributes=attributes, constants=stored,
                       tables=_tables(op.op_type, sides, output, attributes))


def _tables(op_type: str, sides: tuple[TensorQuantization, ...], output: TensorQuantization,
            attributes: dict[str, Any]) -> tuple[np.ndarray | None, ...]:
    """The 256-entry table of each input, as ONNX Runtime builds it (None: copied)."""
    y = (output.scales[0], output.zero_points[0])
    dtype = output.dtype or ""
    kind = TABLE_OPS[op_type]
    if kind == "lookup":
        function = leaky_relu(attributes.get("alpha", 0.01)) \
            if op_type == "QLinearLeakyRelu" else mlas_logistic
        (side,) = sides
        return (requant_table((side.scales[0], side.zero_points[0]), y, dtype, function),)
    if kind in ("concat", "where"):
        return tuple(None if (np.float32(s.scales[0]), s.zero_points[0]) ==
                     (np.float32(y[0]), y[1])
                     else requant_table((s.scales[0], s.zero_points[0]), y, dtype)
                     for s in sides)
    return ()


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
        missing = [name for name in step.inputs if name not in known | step.constants.keys()]
        if missing:
            raise IntegerReferenceError(f"{step.recipe.name}: its input {missing[0]!r} is not "
                                        "computed in integers (a float op precedes it)")
        known.update(step.outputs)
    for exit in program.exits:
        if exit.quantization.tensor not in known:
            raise IntegerReferenceError(f"the output {exit.graph_output!r} is not computed in "
                                        "integers")


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
