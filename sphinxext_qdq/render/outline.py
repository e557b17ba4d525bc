"""A plain-text outline of a QDQ graph (inputs, quantized groups, outputs) for
builders that cannot show a picture (text, man) and for the command line."""

from __future__ import annotations

from sphinxext_qdq.analysis.records import QdqModel
from sphinxext_qdq.onnxio.dtypes import label as dtype_label
from sphinxext_qdq.render.text import format_shape, format_values


def tensor_line(model: QdqModel, name: str) -> str:
    info = model.tensors.get(name)
    if info is None:
        return f"  {name}: unknown"
    return f"  {name}: {dtype_label(info.dtype)} {format_shape(info.shape)}"


def qdq_text(model: QdqModel, key: str) -> str:
    """``INT8 (scale s = 0.0123, zero point z = -3)`` for one Q/DQ node."""
    qdq = model.qdq(key)
    scale, zero_point = model.qdq_params(key)
    zp = format_values(zero_point) if qdq.zero_point else "absent (0)"
    return f"{dtype_label(qdq.quant_dtype)} (scale {format_values(scale)}, zero point {zp})"


def group_lines(model: QdqModel, selection: frozenset[str] | None) -> list[str]:
    lines = []
    for number, group in enumerate(
        (g for g in model.groups if not g.graph and (selection is None or g.node in selection)),
        start=1,
    ):
        node = model.node(group.node)
        lines.append(f"  {number}. {group.op_type} {node.name or node.key}")
        for key in group.input_dqs:
            lines.append(f"       input  {qdq_text(model, key)}")
        if group.weight_dq:
            lines.append(f"       weight {qdq_text(model, group.weight_dq)}")
        if group.bias_dq:
            lines.append(f"       bias   {qdq_text(model, group.bias_dq)}")
        for key in group.output_qs:
            lines.append(f"       output {qdq_text(model, key)}")
    return lines or ["  (none)"]


def operator_lines(model: QdqModel, selection: frozenset[str] | None) -> list[str]:
    """QOperator, dynamic and weight-only operators with their operands' numbers."""
    params = {p.name: p for p in model.params}
    lines = []
    ops = (op for op in model.quant_ops if not op.graph
           and (selection is None or op.node in selection))
    for number, op in enumerate(ops, start=1):
        node = model.node(op.node)
        lines.append(f"  {number}. {op.op_type} {node.name or node.key} ({op.format.value})")
        for operand in op.operands:
            if operand.runtime:
                numbers = "scale and zero point computed at run time"
            elif operand.scale is None and operand.zero_point is None:
                numbers = "no scale of its own"
            else:
                zp = format_values(params.get(operand.zero_point)) if operand.zero_point \
                    else "absent (0)"
                numbers = f"scale {format_values(params.get(operand.scale))}, zero point {zp}"
            lines.append(f"       {operand.label:<7}{dtype_label(operand.quant_dtype)} "
                         f"({numbers})")
    return lines


def outline(model: QdqModel, selection: frozenset[str] | None = None) -> list[str]:
    """Lines describing the graph (or the selected part of it)."""
    nodes = [n for n in model.main_nodes if selection is None or n.key in selection]
    qs = sum(1 for n in nodes if n.op_type == "QuantizeLinear")
    dqs = sum(1 for n in nodes if n.op_type == "DequantizeLinear")
    return [
        (f"QDQ graph {model.graph_name}: {len(nodes)} nodes, "
        f"{qs} QuantizeLinear, {dqs} DequantizeLinear"),
        "Inputs:", *(tensor_line(model, name) for name in model.inputs),
        "Quantized groups:", *group_lines(model, selection),
        *(["Quantized operators:", *operator_lines(model, selection)]
          if model.quant_ops else []),
        "Outputs:", *(tensor_line(model, name) for name in model.outputs),
    ]
