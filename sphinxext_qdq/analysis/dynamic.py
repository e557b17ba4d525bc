"""Dynamic quantization, as ONNX Runtime's ``quantize_dynamic`` writes it::

    x -> DynamicQuantizeLinear -> (x_q, x_scale, x_zp)
    MatMulInteger / ConvInteger(x_q, w_q, x_zp, w_zp) -> INT32
    Cast(to float) -> Mul(., Mul(x_scale, w_scale)) -> y

The activation's scale and zero point are computed at run time from its minimum and
maximum; the weight's are initializers. The chain is one :class:`QuantOp` (format
``dynamic``) whose members are all five nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sphinxext_qdq.analysis.qoperator import OPERAND_SPECS, OperandSpec, build_operands
from sphinxext_qdq.analysis.records import QDQ_DOMAINS, QuantFormat, QuantOp, Role

if TYPE_CHECKING:
    from sphinxext_qdq.analysis.patterns import _Analysis, _Node

INTEGER_OPS = frozenset({"MatMulInteger", "ConvInteger"})
RUNTIME_NOTE = ("scale and zero point of the input computed at run time by "
                "DynamicQuantizeLinear (from its minimum and maximum)")


def find_dynamic_ops(analysis: _Analysis) -> list[QuantOp]:
    """One :class:`QuantOp` per MatMulInteger / ConvInteger fed by a
    DynamicQuantizeLinear; the Cast and Mul nodes after it join when present."""
    ops = []
    for node in analysis.nodes:
        if node.op_type not in INTEGER_OPS or node.domain not in QDQ_DOMAINS:
            continue
        quantizer = _producer(node, 0)
        if quantizer is None or quantizer.op_type != "DynamicQuantizeLinear" \
                or len(quantizer.outputs) < 3:
            continue
        ops.append(_dynamic_op(analysis, node, quantizer))
    return ops


def _dynamic_op(analysis: _Analysis, node: _Node, quantizer: _Node) -> QuantOp:
    x_scale = quantizer.outputs[1]
    x_zero_point = quantizer.outputs[2]
    members = [node.key, quantizer.key]
    cast = _sole_consumer(node, "Cast")
    mul = _sole_consumer(cast, "Mul") if cast is not None else None
    weight_scale = scale_user = None
    output = ""
    if mul is not None:
        members += [cast.key, mul.key]  # type: ignore[union-attr]
        output = mul.outputs[0] if mul.outputs else ""
        factor = next((i for i in mul.inputs if i != cast.outputs[0]), "")  # type: ignore[union-attr]
        scales = node.graph.producers.get(factor)
        if scales is not None and scales.op_type == "Mul" and x_scale in scales.inputs:
            members.append(scales.key)
            position = 1 - scales.inputs.index(x_scale)
            if position < len(scales.inputs):
                weight_scale, scale_user = scales.inputs[position], (scales, position)
            x_scale_user = (scales, scales.inputs.index(x_scale))
        else:  # the Mul multiplies by the input scale only (a float weight scale of 1)
            weight_scale, scale_user = None, None
            x_scale_user = (mul, mul.inputs.index(factor)) if factor == x_scale else (quantizer, -1)
    else:
        x_scale_user = (quantizer, -1)
    specs: tuple[OperandSpec, ...] = OPERAND_SPECS[node.op_type]
    w_zero_point = node.inputs[3] if len(node.inputs) > 3 else ""
    overrides = {
        0: (quantizer.inputs[0] if quantizer.inputs else node.inputs[0], x_scale, x_scale_user,
            x_zero_point, (node, 2), True),
    }
    if weight_scale and len(node.inputs) > 1:
        overrides[1] = (node.inputs[1], weight_scale, scale_user, w_zero_point, (node, 3), False)
    operands = build_operands(analysis, node, specs, overrides=overrides)
    analysis.expect_runtime(x_scale, x_zero_point)
    note = RUNTIME_NOTE
    if output:
        note += f"; INT32 result cast to float and multiplied by x_scale·w_scale into {output!r}"
    else:
        note += "; the INT32 result is not followed by Cast -> Mul"
    operands = tuple(o for o in operands if o.role is not Role.OUTPUT)
    return QuantOp(node=node.key, op_type=node.op_type, format=QuantFormat.DYNAMIC,
                   operands=operands, members=tuple(dict.fromkeys(members)), note=note,
                   graph=node.graph.path)


def _producer(node: _Node, index: int) -> _Node | None:
    if index >= len(node.inputs):
        return None
    return node.graph.producers.get(node.inputs[index])


def _sole_consumer(node: _Node, op_type: str) -> _Node | None:
    """The one node reading *node*'s first output, when it is an *op_type*."""
    if not node.outputs:
        return None
    readers = node.graph.consumers.get(node.outputs[0], [])
    if len(readers) != 1 or readers[0][0].op_type != op_type:
        return None
    return readers[0][0]
