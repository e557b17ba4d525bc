"""Row records -> docutils tables. Model strings only ever become ``nodes.Text``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docutils import nodes
from sphinx import addnodes

from sphinxext_qdq.analysis.formatting import (
    dtype_label,
    format_granularity,
    format_shape,
    format_values,
)
from sphinxext_qdq.domain import make_anchor

if TYPE_CHECKING:
    from sphinxext_qdq.analysis.model import ModelSummary, QdqModel, QdqNode, QuantParam

class Lines(list):
    """A cell of several lines (one paragraph each), each a list of inline nodes."""


@dataclass
class Row:
    """One table row; ``target`` (objtype, name) makes the row a ``qdq`` target."""

    cells: list[str | list[nodes.Node] | Lines]
    target: tuple[str, str] | None = None
    index_text: str = ""
    extra_targets: list[tuple[str, str]] = field(default_factory=list)


def build_table(
    headers: list[str], rows: list[Row], widths: list[int], *, classes: list[str],
    anchors: list[list[str]] | None = None, title: str | None = None,
) -> nodes.table:
    """A docutils table; ``anchors[i]`` are the ids given to row *i* (its first cell)."""
    # colwidths-given: LaTeX and HTML use the colspec widths (wrapping p{} columns)
    table = nodes.table(classes=["qdq-table", "longtable", "colwidths-given", *classes])
    if title:
        table += nodes.title(title, title)
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += _row([_inline(h) for h in headers])
    group += head
    body = nodes.tbody()
    for number, row in enumerate(rows):
        entry_row = _row([_inline(cell) for cell in row.cells])
        if anchors and anchors[number]:
            entry_row[0][0]["ids"].extend(anchors[number])
        body += entry_row
    group += body
    return table


def _row(cells: list[Lines]) -> nodes.row:
    row = nodes.row()
    for lines in cells:
        entry = nodes.entry()
        entry.extend(nodes.paragraph("", "", *line) for line in lines)
        row += entry
    return row


def _inline(cell: str | list[nodes.Node] | Lines) -> Lines:
    if isinstance(cell, Lines):
        return cell
    return Lines([[nodes.Text(cell)] if isinstance(cell, str) else cell])


def code(text: str) -> nodes.literal:
    return nodes.literal(text, text)


def op_link(op_type: str) -> addnodes.pending_xref:
    """An op cell: links to the page documenting the op, else to the ONNX reference."""
    return addnodes.pending_xref(
        "", nodes.literal(op_type, op_type), refdomain="qdq", reftype="op",
        reftarget=op_type, refexplicit=False, refwarn=False, qdq_link_key=f"op:{op_type}",
    )


def param_cell(param: QuantParam | None, name: str | None, *, full: bool) -> Lines:
    """Name on one line, value(s) on the next."""
    if name is None:
        return Lines([[nodes.Text("absent (0)")]])
    return Lines([[code(name)], [nodes.Text(format_values(param, full=full))]])


def node_rows(model: QdqModel, qdqs: list[QdqNode], *, full: bool) -> list[Row]:
    """``:layout: node``: one row per Q/DQ node, in node order."""
    rows = []
    for qdq in qdqs:
        info = model.node(qdq.key)
        scale, zero_point = model.qdq_params(qdq.key)
        rows.append(Row(
            cells=[
                [code(info.name or qdq.key)],
                [op_link(qdq.op_type)],
                qdq.role.value,
                [code(qdq.quantized_tensor or qdq.input)],
                param_cell(scale, qdq.scale, full=full),
                param_cell(zero_point, qdq.zero_point, full=full),
                dtype_label(qdq.quant_dtype),
                format_granularity(qdq),
            ],
            target=("node", qdq.key),
            index_text=f"{info.name or qdq.key} ({qdq.op_type})",
            extra_targets=[("param", qdq.scale)] + ([("param", qdq.zero_point)] if qdq.zero_point else []),
        ))
    return rows


NODE_HEADERS = ["Node", "Op", "Role", "Tensor quantized", "Scale", "Zero point", "Type",
                "Granularity"]
NODE_WIDTHS = [18, 12, 8, 16, 16, 12, 6, 12]


def param_rows(model: QdqModel, params: list[QuantParam], *, full: bool) -> list[Row]:
    """``:layout: initializer``: one row per scale or zero-point tensor."""
    rows = []
    for param in params:
        users = Lines([[nodes.Text(f"input[{use.input_index}] of "),
                        code(model.node(use.node).name or use.node)] for use in param.users])
        first_user = model.qdq(param.users[0].node) if param.users else None
        rows.append(Row(
            cells=[
                [code(param.name)],
                "scale" if param.kind == "scale" else "zero point",
                format_values(param, full=full),
                dtype_label(param.dtype),
                format_shape(param.shape),
                format_granularity(first_user) if first_user else "unknown",
                param.source.value,
                users,
            ],
            target=("param", param.name),
            index_text=f"{param.name} ({'scale' if param.kind == 'scale' else 'zero point'})",
        ))
    return rows


PARAM_HEADERS = ["Name", "Kind", "Value(s)", "Type", "Shape", "Granularity", "Source", "Users"]
PARAM_WIDTHS = [20, 8, 16, 6, 8, 12, 10, 20]


def summary_rows(summary: ModelSummary) -> list[Row]:
    """``qdq-summary``: one row per statistic."""

    def counts(pairs: tuple[tuple[str, int], ...]) -> str:
        return ", ".join(f"{name} {count}" for name, count in pairs) or "none"

    opsets = ", ".join(f"{domain or 'ai.onnx'} {version}" for domain, version in summary.opsets)
    return [Row([label, value]) for label, value in (
        ("Graph", summary.name),
        ("Producer", summary.producer or "unknown"),
        ("Opsets", opsets or "unknown"),
        ("Nodes", str(summary.node_count)),
        ("Nodes by op type", counts(summary.nodes_by_op)),
        ("QuantizeLinear / DequantizeLinear", f"{summary.quantize_count} / {summary.dequantize_count}"),
        ("Q/DQ nodes by role", counts(summary.qdq_by_role)),
        ("Quantized-op groups", counts(summary.groups_by_op)),
        ("Tensors by type", counts(tuple((dtype_label(None if d == "unknown" else d), c)
                                         for d, c in summary.tensors_by_dtype))),
        ("Scales and zero points", str(summary.param_count)),
        ("Parameter bytes", f"{summary.param_bytes:,}"),
        ("QOperator-format nodes", str(summary.qoperator_count)),
    )]


def anchors_for(rows: list[Row], model_key: str) -> list[list[str]]:
    return [[make_anchor(row.target[0], model_key, row.target[1])] if row.target else []
            for row in rows]
