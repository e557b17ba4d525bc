"""Row records -> docutils tables. Model strings only ever become ``nodes.Text``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform

from sphinxext_qdq.sphinx import backend
from sphinxext_qdq.sphinx.domain import full_name, make_anchor
from sphinxext_qdq.sphinx.presentation import LATEX_PIECE, qdq_name

if TYPE_CHECKING:
    from sphinxext_qdq.analysis.records import (
        ModelSummary,
        QdqModel,
        QdqNode,
        QuantOperand,
        QuantParam,
    )
    from sphinxext_qdq.integer.example import WorkedExample
    from sphinxext_qdq.integer.onnxruntime_check import AgreementReport
    from sphinxext_qdq.integer.requant import (
        FixedPointMultiplier,
        RequantRecipe,
        TensorQuantization,
    )

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
    """A docutils table; ``anchors[i]`` are the ids of row *i* (a target at the start of
    its first cell: every builder, LaTeX included, makes them link targets)."""
    # colwidths-auto: the browser sizes the columns; LaTeX gets a column spec from
    # presentation.table_box (the colspec widths)
    table = nodes.table(classes=["qdq-table", "longtable", "colwidths-auto", *classes])
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
            entry_row[0][0].insert(0, nodes.target("", "", ids=list(anchors[number])))
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
    """A name from the model as code that may break after ``/``, ``_``, ``.``."""
    return qdq_name(text, text)


def op_link(op_type: str) -> addnodes.pending_xref:
    """An op cell: links to the page documenting the op, else to the ONNX reference."""
    return addnodes.pending_xref(
        "", code(op_type), refdomain="qdq", reftype="op",
        reftarget=op_type, refexplicit=False, refwarn=False, qdq_link_key=f"op:{op_type}",
    )


def param_cell(param: QuantParam | None, name: str | None, *, full: bool) -> Lines:
    """Name on one line, value(s) on the next."""
    if name is None:
        return Lines([[nodes.Text("absent (0)")]])
    return Lines([[code(name)], [nodes.Text(backend.format_values(param, full=full))]])


def node_cell(name: str, graph: str) -> Lines:
    """A node's name, and where it lives when that is not the main graph
    (``in branch:then_branch``, ``in function:local.QuantBlock``)."""
    lines = Lines([[code(name)]])
    if graph:
        lines.append([nodes.Text("in "), code(graph)])
    return lines


def node_rows(model: QdqModel, qdqs: list[QdqNode | QuantOperand], *, full: bool
              ) -> list[Row]:
    """``:layout: node``: one row per Q/DQ node or quantized-operator operand, in the
    order given."""
    rows = []
    for qdq in qdqs:
        if not hasattr(qdq, "partner"):  # a QuantOperand
            rows.append(operand_row(model, qdq, full=full))  # type: ignore[arg-type]
            continue
        info = model.node(qdq.key)
        scale, zero_point = model.qdq_params(qdq.key)
        rows.append(Row(
            cells=[
                node_cell(info.name or qdq.key, qdq.graph),
                [op_link(qdq.op_type)],
                qdq.role.value,
                [code(qdq.quantized_tensor or qdq.input)],
                param_cell(scale, qdq.scale, full=full),
                param_cell(zero_point, qdq.zero_point, full=full),
                backend.dtype_label(qdq.quant_dtype),
                backend.format_granularity(qdq),
            ],
            target=("node", qdq.key),
            index_text=f"{info.name or qdq.key} ({qdq.op_type})",
            extra_targets=[("param", qdq.scale)] + ([("param", qdq.zero_point)] if qdq.zero_point else []),
        ))
    return rows


def operand_row(model: QdqModel, operand: QuantOperand, *, full: bool) -> Row:
    """One operand of a QOperator / dynamic / weight-only operator: its scale and zero
    point by input index (``input[4]``), or why it has none."""
    info = model.node(operand.node)
    params = {p.name: p for p in model.params}
    role = operand.label
    if operand.runtime:
        role += " (scale computed at run time)"
    if operand.scale:
        scale = param_cell(params.get(operand.scale), operand.scale, full=full)
        where = [nodes.Text(_index_text(operand.scale_index))]
        if operand.scale_reader:  # read (or written) by another node of the pattern
            reader = model.node(operand.scale_reader)
            where += [nodes.Text(" of "), code(reader.name or reader.key)]
        scale.insert(0, where)
    elif operand.role.value == "bias":
        scale = Lines([[nodes.Text("none: s_x·s_w by definition")]])
    else:
        scale = Lines([[nodes.Text("none in the op")]])
    if operand.zero_point:
        zero_point = param_cell(params.get(operand.zero_point), operand.zero_point, full=full)
        zero_point.insert(0, [nodes.Text(_index_text(operand.zero_point_index))])
    elif operand.zero_point_default is not None:  # MatMulNBits: 2^(bits-1)
        zero_point = Lines([[nodes.Text(f"absent (default {operand.zero_point_default})")]])
    else:
        zero_point = Lines([[nodes.Text("absent" if operand.role.value != "bias" else "—")]])
    granularity = backend.format_granularity(operand)  # type: ignore[arg-type]
    if operand.bits:
        granularity += f", {operand.bits} bits"
    return Row(
        cells=[
            node_cell(info.name or operand.node, operand.graph),
            [op_link(operand.op_type)],
            role,
            [code(operand.tensor)],
            scale,
            zero_point,
            backend.dtype_label(operand.quant_dtype),
            granularity,
        ],
        target=("node", operand.key),
        index_text=f"{info.name or operand.node} {operand.label} ({operand.op_type})",
        extra_targets=[("param", name) for name in (operand.scale, operand.zero_point) if name],
    )


def _index_text(index: int | None) -> str:
    return "output" if index is None or index < 0 else f"input[{index}]"


NODE_HEADERS = ["Node", "Op", "Role", "Tensor quantized", "Scale", "Zero point", "Type",
                "Granularity"]
NODE_WIDTHS = [18, 12, 8, 16, 16, 12, 6, 12]


def param_rows(model: QdqModel, params: list[QuantParam], *, full: bool) -> list[Row]:
    """``:layout: initializer``: one row per scale or zero-point tensor."""
    rows = []
    qdq_keys = {q.key for q in model.qdq_nodes}
    operand_of = {}
    for operand in model.operands:
        for name in (operand.scale, operand.zero_point):
            if name:
                operand_of.setdefault(name, operand)
    for param in params:
        users = Lines([[nodes.Text(f"{_index_text(use.input_index)} of "),
                        code(model.node(use.node).name or use.node)] for use in param.users])
        first_user = model.qdq(param.users[0].node) \
            if param.users and param.users[0].node in qdq_keys else operand_of.get(param.name)
        rows.append(Row(
            cells=[
                [code(param.name)],
                "scale" if param.kind == "scale" else "zero point",
                backend.format_values(param, full=full),
                backend.dtype_label(param.dtype),
                backend.format_shape(param.shape),
                backend.format_granularity(first_user) if first_user else "unknown",
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
        ("Tensors by type", counts(tuple((backend.dtype_label(d), c)
                                         for d, c in summary.tensors_by_dtype))),
        ("Scales and zero points", str(summary.param_count)),
        ("Parameter bytes", f"{summary.param_bytes:,}"),
        ("QOperator-format nodes", str(summary.qoperator_count)),
        ("Quantized operators by format", counts(summary.ops_by_format)),
        ("Quantized operators by precision", counts(summary.ops_by_precision)),
        ("Float compute nodes", str(summary.float_op_count)),
        ("Subgraphs and functions", (f"{summary.subgraph_count} subgraph bodies, "
                                     f"{summary.function_count} model-local functions")),
        ("Quantized nodes in subgraphs and functions", counts(summary.quantized_by_graph)),
    )]


def anchors_for(rows: list[Row], model_key: str) -> list[list[str]]:
    return [[make_anchor(row.target[0], model_key, row.target[1])] if row.target else []
            for row in rows]


# -- qdq-requant ---------------------------------------------------------------------------
def param_link(model_key: str, name: str | None, text: str) -> nodes.Node:
    """*text* linking to the parameter row of *name* when a table documents it (never warns)."""
    if not name:
        return nodes.Text(text)
    return addnodes.pending_xref(
        "", nodes.Text(text), refdomain="qdq", reftype="param",
        reftarget=full_name(model_key, name), refexplicit=True, refwarn=False,
        qdq_link_key=f"param:{name}",
    )


def node_link(model_key: str, key: str, text: str) -> addnodes.pending_xref:
    """*text* (a literal) linking to the row documenting node *key*, if any (never warns)."""
    return addnodes.pending_xref(
        "", nodes.literal(text, text), refdomain="qdq", reftype="node",
        reftarget=full_name(model_key, key), refexplicit=True, refwarn=False,
        qdq_link_key=f"node:{key}",
    )


def quantization_line(model_key: str, side: TensorQuantization, label: str = "") -> list[nodes.Node]:
    """``s 0.0039215689 · z -128 · INT8``, scale and zero point linking to their rows."""
    if not side.known:
        return [nodes.Text(f"{label}unknown")]
    if side.per_channel:
        scales = (f"{len(side.scales)} scales {backend.format_scale(min(side.scales))} … "
                  f"{backend.format_scale(max(side.scales))}")
    else:
        scales = f"s {backend.format_scale(side.scales[0])}"
    zero_points = sorted(set(side.zero_points))
    zero_text = f"z {zero_points[0]}" if len(zero_points) == 1 else \
        f"z {zero_points[0]} … {zero_points[-1]}"
    return [nodes.Text(label), param_link(model_key, side.scale_name, scales), nodes.Text(" · "),
            param_link(model_key, side.zero_point_name, zero_text),
            nodes.Text(f" · {backend.dtype_label(side.dtype)}")]


def multiplier_text(m: FixedPointMultiplier) -> tuple[str, str]:
    """(``M`` to 9 significant digits, ``M0 · n · relative error``)."""
    return f"{m.real:.9g}", f"{m.multiplier} · {m.shift} · {m.relative_error:+.1e}"


def multiplier_cells(recipe: RequantRecipe, *, full: bool) -> tuple[Lines, Lines]:
    """The ``M`` and ``M0 · n · error`` cells: one line per channel / input, or a summary."""
    if not recipe.multipliers:
        return Lines([[nodes.Text("; ".join(recipe.notes) or "unknown")]]), Lines([[]])
    labels = {"add": [f"M{i} = s{i}/s_y: " for i in range(len(recipe.multipliers))],
              "pool": [f"s_x/(s_y·{recipe.pool_size}): "]}.get(recipe.kind, [""])
    many = len(recipe.multipliers) > 1 and recipe.kind == "matmul"
    if many and not full:
        reals = [m.real for m in recipe.multipliers]
        shifts = sorted({m.shift for m in recipe.multipliers})
        return (Lines([[nodes.Text(f"{len(reals)} channels, {min(reals):.9g} … {max(reals):.9g}")]]),
                Lines([[nodes.Text(f"n {shifts[0]} … {shifts[-1]}, |error| ≤ "
                                   f"{recipe.max_relative_error:.1e}")]]))
    real_lines, fixed_lines = Lines(), Lines()
    for index, m in enumerate(recipe.multipliers):
        label = f"c{index}: " if many else labels[index] if index < len(labels) else ""
        real, fixed = multiplier_text(m)
        real_lines.append([nodes.Text(label + real)])
        fixed_lines.append([nodes.Text(fixed)])
    return real_lines, fixed_lines


def bias_cell(model_key: str, recipe: RequantRecipe) -> Lines:
    bias = recipe.bias
    if bias is None:
        return Lines([[nodes.Text("—")]])
    if bias.relative_difference != bias.relative_difference:  # NaN: a scale is unknown
        check = "scale unknown"
    elif bias.scale_matches:
        check = "s_b = s_x·s_w ✓"
    else:
        check = f"s_b is not s_x·s_w (relative difference {bias.relative_difference:.1e})"
    return Lines([[code(bias.tensor)],
                  [nodes.Text(f"{backend.dtype_label(bias.dtype)}, "),
                   param_link(model_key, bias.scale_name, check)]])


def requant_rows(model_key: str, recipes: list[RequantRecipe], *, full: bool) -> list[Row]:
    """``qdq-requant``: one row per quantized-op group; rows are ``node`` targets."""
    rows = []
    for recipe in recipes:
        real, fixed = multiplier_cells(recipe, full=full)
        inputs = Lines([quantization_line(model_key, side, f"{index}: " if len(recipe.inputs) > 1
                                          else "") for index, side in enumerate(recipe.inputs)])
        rows.append(Row(
            cells=[
                [code(recipe.name)],
                [op_link(recipe.op_type)],
                inputs,
                Lines([quantization_line(model_key, recipe.weight)]) if recipe.weight else "—",
                Lines([quantization_line(model_key, recipe.output)]),
                real,
                fixed,
                bias_cell(model_key, recipe),
            ],
            target=("node", recipe.node),
            index_text=f"{recipe.name} ({recipe.op_type} requantization)",
        ))
    return rows


REQUANT_HEADERS = ["Node", "Op", "Input (s, z)", "Weight (s, z)", "Output (s, z)",
                   "Multiplier M", "M0 · n · error", "Bias (INT32)"]
REQUANT_WIDTHS = [14, 8, 16, 14, 16, 12, 12, 12]


def example_rows(example: WorkedExample, recipe: RequantRecipe, per_line: int) -> list[Row]:
    """A worked Conv / Gemm output element: one row per step of the integer kernel."""
    m = example.multiplier
    total = m.total_shift
    where = ", ".join(f"{axis} {value}" for axis, value in zip(
        ("channel", "row", "column") if example.op_type in ("Conv", "QLinearConv")
        else ("column",),
        example.position))
    x_side, w_side, y_side = recipe.inputs[0], recipe.weight, recipe.output
    assert w_side is not None
    scales = (f"s_x = {backend.format_scale(x_side.scales[0])}, s_w = "
              f"{backend.format_scale(w_side.scales[0] if len(w_side.scales) == 1 else w_side.scales[example.position[0]])}"
              f", s_y = {backend.format_scale(y_side.scales[0])}")
    rounding = example.rounding.replace("_", " ")
    steps = [
        ("Output element", f"image {example.image}, {where}"),
        ("Inputs x as stored", _grouped(example.inputs, per_line)),
        ("Weights w as stored", _grouped(example.weights, per_line)),
        ("Zero points", f"z_x = {example.input_zero_point}, z_w = {example.weight_zero_point}"),
        ("sum of (x − z_x)(w − z_w)", f"{example.dot} ({len(example.inputs)} products)"),
        ("+ bias b (INT32)", f"{example.dot} + {example.bias} = {example.accumulator} = acc"),
        ("Scales", scales),
        ("M = s_x·s_w / s_y", (f"{m.real:.12g}, approximated by M0 · 2^−(31+n) with "
                              f"M0 = {m.multiplier}, n = {m.shift} "
                              f"(relative error {m.relative_error:+.1e})")),
        ("acc · M0 (64-bit)", f"{example.accumulator} · {m.multiplier} = {example.product}"),
        (f"round(acc · M0 / 2^{total}) ({rounding})", str(example.rounded)),
        ("+ z_y, saturate", f"{example.rounded} + {example.output_zero_point} → {example.output}"),
        ("Check: acc · M in real numbers", f"{example.real_quotient:.6f} → QuantizeLinear gives "
                                           f"{example.float_path}"
                                           + (" (same)" if example.float_path == example.output
                                              else " (differs)")),
    ]
    return [Row([label, value]) for label, value in steps]


def _grouped(values: tuple[int, ...], per_line: int) -> Lines:
    """Integers, *per_line* to a line (one line per input channel of a Conv)."""
    per_line = max(per_line, 1)
    return Lines([[code(" ".join(f"{v:4d}" for v in values[i:i + per_line]))]
                  for i in range(0, len(values), per_line)])


def _percent(fraction: float) -> str:
    """A fraction as a percentage truncated (never rounded up) to 3 decimals."""
    return f"{int(fraction * 100_000) / 1000:.3f} %"


def agreement_rows(model_key: str, report: AgreementReport) -> list[Row]:
    """Per-layer and final agreement between the integer reference and ONNX Runtime."""
    unmodified = dict(report.kernels)
    rows = []
    for layer in report.layers:
        kernel = layer.ort_kernel or "—"
        before = unmodified.get(layer.node, "")
        if before and before != layer.ort_kernel:
            kernel += f" (unmodified model: {before})"
        rows.append(Row([[node_link(model_key, layer.node, layer.node)], layer.op_type, kernel,
                         f"{layer.elements:,}", _percent(layer.exact_fraction),
                         str(layer.max_difference)]))
    for layer in report.final:
        rows.append(Row([[nodes.strong("", f"output {layer.node}")],
                         "before DequantizeLinear", "unmodified model", f"{layer.elements:,}",
                         _percent(layer.exact_fraction), str(layer.max_difference)]))
    return rows


AGREEMENT_HEADERS = ["Layer", "Op", "ONNX Runtime kernel", "Elements", "Exact match",
                     "Max difference (LSB)"]
AGREEMENT_WIDTHS = [22, 12, 26, 12, 12, 10]


# -- pdflatex ------------------------------------------------------------------------------------
#: Characters pdflatex typesets with Sphinx's set-up (utf8 inputenc, T1 fontenc): printable
#: ASCII, Latin-1 and most of Latin Extended-A, common punctuation, plus whatever
#: ``sphinx.util.texescape`` replaces by a LaTeX command.
_PDFLATEX_RANGES = ((0x20, 0x7E), (0xA0, 0x125), (0x128, 0x137), (0x139, 0x13E),
                    (0x141, 0x148), (0x14A, 0x165), (0x168, 0x17E))
_PDFLATEX_EXTRA = frozenset("‘’‚“”„–—†‡•…‰‹›€™←↑→↓\t\n")


def pdflatex_text(text: str) -> str:
    """*text* with every character pdflatex cannot typeset written ``[U+XXXX]``."""
    if text.isascii() and text.isprintable():
        return text
    from sphinx.util import texescape

    texescape.init()  # idempotent; done by the LaTeX builder anyway

    def typesets(ch: str) -> bool:
        return (ch in _PDFLATEX_EXTRA or texescape.escape(ch) != ch
                or any(low <= ord(ch) <= high for low, high in _PDFLATEX_RANGES))

    return "".join(ch if typesets(ch) else f"[U+{ord(ch):04X}]" for ch in text)


#: Longest model string a LaTeX table shows whole; longer ones keep their start and end.
LATEX_TEXT_LIMIT = 400
#: Longest part (between ``;``) of an index entry made from a model, in LaTeX.
LATEX_INDEX_LIMIT = 80


def latex_shortened(text: str, limit: int = LATEX_TEXT_LIMIT) -> str:
    """*text*, or its start and end around an ellipsis and its length when longer than
    *limit* (a cell of 100,000 characters is taller than any page)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 80]}…{text[-40:]} ({len(text):,} characters)"


def latex_index_text(text: str, limit: int = LATEX_INDEX_LIMIT) -> str:
    """An index entry with each ``;``-separated part cut at *limit* with an ellipsis."""
    return "; ".join(part if len(part) <= limit else part[:limit - 1] + "…"
                     for part in text.split("; "))


def latex_pieces(text: str, size: int = LATEX_PIECE) -> list[nodes.Node]:
    """*text* as Text pieces of *size* characters joined by a LaTeX break point that also
    ends the ``.tex`` source line (``%`` keeps it from becoming a space): no line of the
    file outgrows TeX's input buffer and a long name wraps inside its column."""
    pieces: list[nodes.Node] = []
    for start in range(0, len(text), size):
        if pieces:
            pieces.append(nodes.raw("", "\\allowbreak{}%\n", format="latex"))
        pieces.append(nodes.Text(text[start:start + size]))
    return pieces


class PlainModelText(SphinxPostTransform):
    """Model strings in the tables of plain-text outputs (text, man, texinfo) shortened
    like LaTeX's: the text writer wraps every cell with ``textwrap``, whose time grows
    with the square of a word's length (a 100,000-character name: minutes)."""

    default_priority = 900
    formats = ("text", "man", "texinfo")

    def run(self, **kwargs: object) -> None:
        for table in self.document.findall(nodes.table):
            if "qdq-table" not in table["classes"]:
                continue
            for text in list(table.findall(nodes.Text)):
                if len(text) > LATEX_TEXT_LIMIT:
                    text.parent.replace(text, nodes.Text(latex_shortened(text.astext())))


class PdflatexModelText(SphinxPostTransform):
    """Model strings in LaTeX tables and index entries: long ones are shortened and broken
    into pieces (any engine: one ``.tex`` line over TeX's buffer, or a cell taller than a
    page, stops the PDF), and with pdflatex, which stops at the first character it has no
    glyph for (a Chinese or Greek node name, an emoji, a control character), such
    characters are written ``[U+XXXX]``."""

    default_priority = 900
    formats = ("latex",)

    def run(self, **kwargs: object) -> None:
        pdflatex = self.config.latex_engine == "pdflatex"
        for table in self.document.findall(nodes.table):
            if "qdq-table" not in table["classes"]:
                continue
            for text in list(table.findall(nodes.Text)):
                original = text.astext()
                safe = latex_shortened(original)
                safe = pdflatex_text(safe) if pdflatex else safe
                if len(safe) > LATEX_PIECE and not isinstance(text.parent, qdq_name):
                    parent = text.parent
                    position = parent.index(text)
                    parent.remove(text)
                    for offset, piece in enumerate(latex_pieces(safe)):
                        parent.insert(position + offset, piece)
                elif safe != original:
                    text.parent.replace(text, nodes.Text(safe))
        for index in self.document.findall(addnodes.index):
            if "qdq-index" in index.get("classes", []):
                index["entries"] = [
                    (kind, pdflatex_text(latex_index_text(value)) if pdflatex
                     else latex_index_text(value), *rest)
                    for kind, value, *rest in index["entries"]]
