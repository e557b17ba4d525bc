"""QOperator format: integer operators that carry their own scales and zero points.

Each op's schema says, by input index, which scale and zero point go with which
tensor (``onnx.defs.get_schema`` for ``QLinearConv``, ``QLinearMatMul``,
``ConvInteger``, ``MatMulInteger``; ONNX Runtime's contrib-op schemas for the
``com.microsoft`` ones). :data:`OPERAND_SPECS` is that table;
:func:`find_qoperator_ops` turns every such node into a :class:`QuantOp` whose
operands register their scales and zero points as :class:`QuantParam` users.

The recognisers here and in :mod:`.dynamic` / :mod:`.weight_only` read the working
state of :class:`~sphinxext_qdq.analysis.patterns._Analysis` (nodes, producers,
consumers, types) through a few of its methods; they never import Sphinx.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

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

#: ``OUTPUT``: an operand that is the op's output 0 rather than an input.
OUTPUT = -1


class OperandSpec(NamedTuple):
    """Where one operand and its parameters sit among a node's inputs."""

    role: Role
    index: int  # input index of the tensor; OUTPUT for output 0
    scale: int | None  # input index of its scale (None: the op has none)
    zero_point: int | None
    #: the role when the tensor is computed rather than stored (a MatMul's B)
    computed_role: Role | None = None


_I, _W, _B, _O = Role.INPUT, Role.WEIGHT, Role.BIAS, Role.OUTPUT
_UNARY = (OperandSpec(_I, 0, 1, 2), OperandSpec(_O, OUTPUT, 3, 4))
_BINARY = (OperandSpec(_I, 0, 1, 2), OperandSpec(_I, 3, 4, 5),
           OperandSpec(_O, OUTPUT, 6, 7))

#: Operands of each QOperator op, by input index (checked against the schemas in
#: tests/test_formats.py). ``QLinearConcat`` is variadic: see :func:`_concat_specs`.
OPERAND_SPECS: dict[str, tuple[OperandSpec, ...]] = {
    "QLinearConv": (OperandSpec(_I, 0, 1, 2), OperandSpec(_W, 3, 4, 5),
                    OperandSpec(_O, OUTPUT, 6, 7), OperandSpec(_B, 8, None, None)),
    "QLinearMatMul": (OperandSpec(_I, 0, 1, 2), OperandSpec(_W, 3, 4, 5, _I),
                      OperandSpec(_O, OUTPUT, 6, 7)),
    "QGemm": (OperandSpec(_I, 0, 1, 2), OperandSpec(_W, 3, 4, 5, _I),
              OperandSpec(_B, 6, None, None), OperandSpec(_O, OUTPUT, 7, 8)),
    "QLinearAdd": _BINARY,
    "QLinearMul": _BINARY,
    "QLinearAveragePool": _UNARY,
    "QLinearGlobalAveragePool": _UNARY,
    "QLinearSigmoid": _UNARY,
    "QLinearLeakyRelu": _UNARY,
    "QLinearSoftmax": _UNARY,
    "QLinearReduceMean": _UNARY,
    "QLinearWhere": (OperandSpec(_I, 1, 2, 3), OperandSpec(_I, 4, 5, 6),
                     OperandSpec(_O, OUTPUT, 7, 8)),
    "QAttention": (OperandSpec(_I, 0, 3, 6), OperandSpec(_W, 1, 4, 7, _I)),
    "MatMulIntegerToFloat": (OperandSpec(_I, 0, 2, 4), OperandSpec(_W, 1, 3, 5, _I)),
    "ConvInteger": (OperandSpec(_I, 0, None, 2), OperandSpec(_W, 1, None, 3)),
    "MatMulInteger": (OperandSpec(_I, 0, None, 2), OperandSpec(_W, 1, None, 3, _I)),
    "DynamicQuantizeMatMul": (OperandSpec(_W, 1, 2, 3, _I),),
    "DynamicQuantizeLSTM": (OperandSpec(_W, 1, 8, 9), OperandSpec(_W, 2, 10, 11)),
}

#: Every op type :func:`specs_for` knows.
QOPERATOR_TYPES = frozenset({*OPERAND_SPECS, "QLinearConcat"})
#: Ops whose activation input is quantized at run time by the op itself.
DYNAMIC_OPS = frozenset({"DynamicQuantizeMatMul", "DynamicQuantizeLSTM"})
#: Ops (and the QDQ op types) an integer kernel reads weights of in output-channel rows.
_CHANNEL_AXIS_ZERO = frozenset({"QLinearConv", "ConvInteger", "DynamicQuantizeLSTM"})


#: Ops whose output has the type of their first input (a type carried past them when
#: shape inference does not know the op before them, a ``com.microsoft`` one).
_TYPE_PRESERVING = frozenset({"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                              "Identity", "MaxPool", "Relu", "Slice", "Gather", "Concat",
                              "Split", "Pad", "Expand", "Tile", "DepthToSpace", "SpaceToDepth"})


def fill_output_types(analysis: _Analysis) -> None:
    """The output type of a QOperator op is its output zero point's type (UINT8 when the
    zero point is absent, as for QuantizeLinear); carried on through ops that keep their
    input's type. An elementwise op's output shape is its inputs' when they all have the
    same (known) one. Only where neither the file nor shape inference gave them."""
    for node in analysis.nodes:
        op_type = node.op_type
        if (op_type not in _TYPE_PRESERVING and op_type not in QOPERATOR_TYPES) \
                or not node.outputs or not node.outputs[0]:
            continue
        graph, out = node.graph, node.outputs[0]
        known_dtype, known_shape = graph.types.get(out, (None, None))
        if known_shape is None and op_type in _ELEMENTWISE and node.domain in QDQ_DOMAINS:
            known_shape = _common_shape(analysis, node)
            if known_shape is not None:
                graph.types[out] = (known_dtype, known_shape)
        if known_dtype is not None:
            continue
        dtype = None
        if node.domain in QDQ_DOMAINS and node.op_type in _TYPE_PRESERVING and node.inputs:
            dtype = analysis.type_of(graph, node.inputs[0])[0]
        elif node.domain in QDQ_DOMAINS:
            specs = specs_for(node.op_type, len(node.inputs))
            output = next((s for s in specs or () if s.role is Role.OUTPUT), None)
            if output is not None:
                zero_point = _input(node, output.zero_point) if output.zero_point is not None \
                    else ""
                dtype = analysis.type_of(graph, zero_point)[0] if zero_point else "UINT8"
        if dtype is not None:
            graph.types[out] = (dtype, known_shape)


#: Elementwise QOperator ops (and Relu / Identity): the output has the inputs' shape.
_ELEMENTWISE = frozenset({"QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
                          "QLinearSoftmax", "Relu", "Identity"})


def _common_shape(analysis: _Analysis, node: _Node) -> tuple | None:
    """The shape all tensor inputs of an elementwise op share, else None."""
    specs = specs_for(node.op_type, len(node.inputs))
    positions = [s.index for s in specs if s.role is Role.INPUT] if specs else [0]
    shapes = {analysis.type_of(node.graph, _input(node, i))[1] for i in positions}
    if len(shapes) != 1:
        return None
    shape = shapes.pop()
    return shape if shape is not None and all(isinstance(d, int) for d in shape) else None


def _concat_specs(input_count: int) -> tuple[OperandSpec, ...]:
    """``QLinearConcat(Y_scale, Y_zero_point, x0, s0, z0, x1, s1, z1, ...)``."""
    specs = [OperandSpec(_O, OUTPUT, 0, 1)]
    specs += [OperandSpec(_I, i, i + 1, i + 2) for i in range(2, input_count, 3)]
    return tuple(specs)


def specs_for(op_type: str, input_count: int) -> tuple[OperandSpec, ...] | None:
    if op_type == "QLinearConcat":
        return _concat_specs(input_count)
    return OPERAND_SPECS.get(op_type)


def find_qoperator_ops(analysis: _Analysis, taken: set[str]) -> list[QuantOp]:
    """A :class:`QuantOp` for every QOperator node not already part of a dynamic chain
    (*taken*: node keys)."""
    ops = []
    for node in analysis.nodes:
        if node.op_type not in QOPERATOR_TYPES or node.key in taken \
                or node.domain not in QDQ_DOMAINS:
            continue
        specs = specs_for(node.op_type, len(node.inputs))
        fmt = QuantFormat.DYNAMIC if node.op_type in DYNAMIC_OPS else QuantFormat.QOPERATOR
        operands = build_operands(analysis, node, specs)
        note = "the activation is quantized at run time by the op itself" \
            if fmt is QuantFormat.DYNAMIC else ""
        if node.op_type == "QGemm" and not _input(node, 7):
            note = "no y_scale: the output is float (A·B dequantized, plus C)"
        ops.append(QuantOp(node=node.key, op_type=node.op_type, format=fmt,
                           operands=operands, members=(node.key,), note=note,
                           graph=node.graph.path))
    return ops


def build_operands(analysis: _Analysis, node: _Node, specs: tuple[OperandSpec, ...],
                   *, overrides: dict[int, tuple] | None = None
                   ) -> tuple[QuantOperand, ...]:
    """Operands of *node* per *specs* (present tensors only); their scales and zero
    points become parameter users. *overrides* maps a spec's position to
    ``(tensor, scale, scale user, zero point, zero-point user, runtime)``, for
    operands whose numbers sit outside the node (a dynamic chain's Mul)."""
    operands: list[QuantOperand] = []
    labels = _labels(node, specs)
    for position, spec in enumerate(specs):
        tensor = _output(node) if spec.index == OUTPUT else _input(node, spec.index)
        if not tensor:
            continue
        graph = node.graph
        role = spec.role
        if spec.computed_role is not None and not analysis.is_stored(tensor, graph):
            role = spec.computed_role
        scale_user = zero_user = (node, None)
        runtime = False
        if overrides and position in overrides:
            tensor, scale, scale_user, zero_point, zero_user, runtime = overrides[position]
        else:
            scale = _input(node, spec.scale) if spec.scale is not None else ""
            zero_point = _input(node, spec.zero_point) if spec.zero_point is not None else ""
            scale_user = (node, spec.scale)
            zero_user = (node, spec.zero_point)
        if role is Role.OUTPUT and not scale and not zero_point:
            continue  # a float output (QGemm without y_scale)
        if scale:
            analysis.use_param(scale, "scale", *scale_user)
        if zero_point:
            analysis.use_param(zero_point, "zero_point", *zero_user)
        quant_dtype = analysis.type_of(graph, tensor)[0]
        if runtime and zero_point:
            quant_dtype = analysis.type_of(graph, zero_point)[0] or "UINT8"
        elif quant_dtype is None and zero_point:
            quant_dtype = analysis.type_of(graph, zero_point)[0]
        granularity, axis = _granularity(analysis, node, tensor, scale or zero_point, role)
        operands.append(QuantOperand(
            key=f"{node.key}:{labels[position]}", node=node.key, op_type=node.op_type,
            role=role, label=labels[position], index=spec.index, tensor=tensor,
            scale=scale or None, scale_index=scale_user[1] if scale else None,
            zero_point=zero_point or None,
            zero_point_index=zero_user[1] if zero_point else None,
            quant_dtype=quant_dtype, granularity=granularity, axis=axis, block_size=None,
            runtime=runtime, graph=graph.path,
            scale_reader=scale_user[0].key if scale and scale_user[0] is not node else ""))
    return tuple(operands)


def _labels(node: _Node, specs: tuple[OperandSpec, ...]) -> list[str]:
    """``input`` / ``weight`` / ``output`` / ``bias``; ``input 0``, ``input 1`` ... when
    a role occurs more than once."""
    names = [s.role.value for s in specs]
    counts = {name: names.count(name) for name in names}
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        if counts[name] > 1:
            labels.append(f"{name} {seen.get(name, 0)}")
            seen[name] = seen.get(name, 0) + 1
        else:
            labels.append(name)
    return labels


def _granularity(analysis: _Analysis, node: _Node, tensor: str, param: str, role: Role
                 ) -> tuple[Granularity, int | None]:
    """Per-tensor when the scale (or zero point) has one value; per-axis on the
    op's channel axis when it is 1-D."""
    shape = analysis.param_shape(param) if param else None
    if shape is None:
        return (Granularity.PER_TENSOR, None) if not param else (Granularity.UNKNOWN, None)
    if math.prod(shape) == 1:
        return Granularity.PER_TENSOR, None
    if len(shape) > 1:
        return Granularity.BLOCKED, None
    rank_shape = analysis.type_of(node.graph, tensor)[1]
    rank = len(rank_shape) if rank_shape is not None else 2
    if role is not Role.WEIGHT:
        return Granularity.PER_AXIS, 1  # the channel axis of an activation
    if node.op_type in _CHANNEL_AXIS_ZERO:
        return Granularity.PER_AXIS, 0  # output channels
    if node.op_type == "QGemm":
        return Granularity.PER_AXIS, 0 if analysis.int_attribute(node, "transB", 0) else 1
    return Granularity.PER_AXIS, rank - 1  # MatMul B: one scale per column


def _input(node: _Node, index: int) -> str:
    return node.inputs[index] if 0 <= index < len(node.inputs) else ""


def _output(node: _Node) -> str:
    return node.outputs[0] if node.outputs else ""
