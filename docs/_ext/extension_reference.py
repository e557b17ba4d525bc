"""The reference page, generated from the extension's code.

Names, defaults and option lists are read from the running Sphinx application and
from ``sphinxext_qdq``'s sources; configuration values are described where they are
declared (``add_config_value(..., description=...)``), the meanings of options, roles and
warning subtypes are written here. A
name found in the code without a meaning here (or the reverse) is reported as a
build warning, so the page cannot silently fall behind the code.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from docutils.parsers.rst import directives as docutils_directives
from fragments import code, table

import sphinxext_qdq
from sphinxext_qdq.analysis.records import DIAGNOSTIC_SUBTYPES, Role
from sphinxext_qdq.sphinx.domain import QdqDomain

if TYPE_CHECKING:
    from sphinx.application import Sphinx

PACKAGE = Path(sphinxext_qdq.__file__).resolve().parent

COMMON_OPTIONS = {
    "caption": ("text", "A caption; the graph or table becomes numbered and referable."),
    "name": ("label", "A label for `{ref}` (MyST) or `:ref:` (reST)."),
    "class": ("class names", "Extra CSS classes."),
}

DIRECTIVE_OPTIONS = {
    "qdq-graph": {
        "mode": ("`compact` or `full`",
                 ("`compact`: weight / bias DequantizeLinear nodes are folded into their "
                 "Conv or Gemm and each activation Q→DQ pair is drawn small (see "
                 "`:pairs:`); `full`: every ONNX node. Default: `qdq_graph_mode`.")),
        "pairs": ("`edges` or `nodes`",
                  ("Compact mode: `edges` draws an activation Q→DQ pair on the edge it "
                   "quantizes (thick, in the quantized type's colour, labelled with the "
                   "type, scale and zero point; the line links to the QuantizeLinear "
                   "documentation, the label to the pair's `qdq-params` row); `nodes` draws "
                   "it as a node of its own. `edges` gives dot about half the nodes to lay "
                   "out. A pair fed by or feeding another Q/DQ node is always a node. "
                   "Default: `qdq_graph_pairs`.")),
        "rankdir": ("`TB` or `LR`", ("Top to bottom or left to right. Default: "
                                    "`qdq_graph_rankdir`.")),
        "from": ("node or tensor names, comma-separated",
                 "Draw only what lies downstream of these (between them and `:to:`)."),
        "to": ("node or tensor names, comma-separated",
               "Draw only what lies upstream of these (between `:from:` and them)."),
        "depth": ("`auto`, `all` or a positive integer",
                  ("Scopes (the `/`-separated scopes of node names, or chunks of the "
                   "topological order when names carry none) with at least this many levels "
                   "are collapsed into one box showing their op counts, Q/DQ counts, the "
                   "dtypes entering and leaving, and the scale / zero point of the pairs on "
                   "their boundary; each box links to its scope drawn expanded, added below "
                   "the drawing. `all`: every node. `auto` (default, `qdq_graph_depth`): every "
                   "node when the estimated layout time fits `qdq_layout_budget` and the "
                   "drawing has at most 300 nodes, else the deepest depth that fits.")),
        "scope": ("scope path, `/`-separated",
                  "Draw only the nodes inside this scope (`layer1/layer1.0`)."),
        "width": ("length or percentage", "Width of the drawing in HTML (as `image`)."),
        "scale": ("percentage", "Scale of the drawing in HTML (as `image`)."),
        "legend": ("flag", "Draw a legend of the node shapes and edge colours."),
        "color-by": ("`sqnr`", ("Fill each quantized group (its compute node) by the SQNR of "
                                "its output against `:float:` on `:inputs:` (as `qdq-error` "
                                "computes it), with a legend of the colours.")),
        "float": ("model", "The float model of `:color-by: sqnr`."),
        "inputs": ("`module:attribute` or a `.npy` file", "The inputs of `:color-by: sqnr`."),
        "images": ("positive integer", "Use the first N inputs for `:color-by: sqnr`."),
        "align": ("`left`, `center` or `right`", "Horizontal alignment."),
        "alt": ("text", "Alternative text; default: a one-line description of the model."),
        **COMMON_OPTIONS,
    },
    "qdq-params": {
        "layout": ("`node` or `initializer`",
                   ("`node` (default): one row per QuantizeLinear / DequantizeLinear node, "
                   "with its role, the tensor it quantizes, scale, zero point, type and "
                   "granularity; `initializer`: one row per scale or zero-point tensor, "
                   "with its source and users (`input[1]` / `input[2]` of which node).")),
        "values": ("`summary` or `full`",
                   ("`summary` (default): a per-axis scale is shown as its count and "
                   "range; `full`: every value.")),
        "nodes": ("regular expression", ("Keep the Q/DQ nodes, and the operands of the "
                                        "quantized operators, whose node name matches "
                                        "(`re.search`).")),
        "qdq-ops": ("op types, comma-separated", ("Keep `QuantizeLinear` and / or "
                                             "`DequantizeLinear` nodes, or the operands of "
                                             "quantized operators of these types "
                                             "(`QLinearConv`, `MatMulInteger`, "
                                             "`MatMulNBits` …).")),
        "ops": ("op types, comma-separated", ("Deprecated name of `:qdq-ops:` (a "
                                             "`qdq.deprecated` warning).")),
        "roles": ("roles, comma-separated", "Keep the nodes of these roles: "
                  + ", ".join(f"`{role.value}`" for role in Role) + "."),
        "limit": ("positive integer", "At most this many rows."),
        "no-index": ("flag", ("Rows are not cross-reference targets (for a second table of "
                             "the same model).")),
        "no-index-entry": ("flag", ("No general-index entry; the rows stay targets "
                                   "(see `qdq_index_entries`).")),
        **COMMON_OPTIONS,
    },
    "qdq-summary": dict(COMMON_OPTIONS),
    "qdq-requant": {
        "show": ("`table`, `example` or `agreement`",
                 ("`table` (default): the integer recipe of every quantized-op group (rows "
                 "are `qdq:node` targets of the compute nodes); `example`: one Conv / Gemm "
                 "output element computed step by step; `agreement`: the integer reference "
                 "against ONNX Runtime on real inputs.")),
        "nodes": ("regular expression", "Keep the groups whose compute node name matches."),
        "compute-ops": ("op types, comma-separated",
                        "Keep the groups of these compute op types (`Conv`, `Gemm`, …)."),
        "ops": ("op types, comma-separated", ("Deprecated name of `:compute-ops:` (a "
                                             "`qdq.deprecated` warning).")),
        "values": ("`summary` or `full`", "As for `qdq-params`."),
        "limit": ("positive integer", "At most this many rows."),
        "no-index": ("flag", "Rows are not cross-reference targets."),
        "no-index-entry": ("flag", "No general-index entry; the rows stay targets."),
        "node": ("node name", "The Conv or Gemm node of `:show: example`."),
        "inputs": ("`module:attribute` or a `.npy` file",
                   "Float model inputs for `example` and `agreement`."),
        "images": ("positive integer", "How many inputs `agreement` runs."),
        "image": ("non-negative integer", "Which input `example` uses."),
        "position": ("integers, comma-separated",
                     "The output element of `example`: channel, row, column (or column)."),
        "rounding": ("`half_even` or `half_up`", "Rounding of the requantization."),
        **COMMON_OPTIONS,
    },
}

INPUTS_MEANING = ("Float model inputs, batch first, as for `qdq-requant`: a `.npy` file "
                  "(relative to the page, or `/…` from the source directory; no pickles) or "
                  "`module:attribute` (attributes may end in `()`).")
DIRECTIVE_OPTIONS["qdq-histogram"] = {
    "nodes": ("regular expression", ("Keep the tensors whose Q/DQ node or consumer (the Conv, "
              "Gemm … reading a weight) has a matching name.")),
    "tensors": ("tensor names, comma-separated",
                ("Keep these tensors (the float tensor, the stored integer initializer, or a "
                "Q/DQ output).")),
    "roles": ("roles, comma-separated", ("Keep the tensors of these roles. Default: `weight`, "
              "`weight pair`, and `activation` when `:inputs:` are given.")),
    "bins": ("positive integer", ("Bins of the float histogram (default 64, at most 1000); the "
             "integer histogram has one bin per code up to 256 codes.")),
    "layout": ("`row` or `column`", ("The panels (float values, per-channel strip, integer "
               "codes) side by side (`row`, default) or stacked.")),
    "float": ("model", ("The float model: a stored weight's float values come from it (matched "
              "by the consumer node's name and input index), so the clipped fraction is "
              "real; without it they are the dequantized integers.")),
    "inputs": ("`module:attribute` or a `.npy` file", INPUTS_MEANING + " Activations are "
               "collected on them with ONNX Runtime."),
    "images": ("positive integer", "Use the first N inputs."),
    "limit": ("positive integer", "At most this many tensors."),
    **COMMON_OPTIONS,
}
DIRECTIVE_OPTIONS["qdq-error"] = {
    "float": ("model", ("Required: the float model the quantized one was made from (a path or "
              "a `qdq_models` name).")),
    "inputs": ("`module:attribute` or a `.npy` file", "Required. " + INPUTS_MEANING),
    "images": ("positive integer", "Use the first N inputs."),
    "show": ("`both`, `table`, `plot` or `none`",
             "The table, the SQNR picture, both (default), or neither (with `:worst-weights:`)."),
    "compare": ("model", ("A second quantized model of the same float model: its SQNR in a "
                "column and in bars next to this one's (same inputs).")),
    "worst-weights": ("flag", ("Add the weight histogram (as `qdq-histogram` with `:float:`) of "
                      "the weighted layer whose output has the lowest SQNR.")),
    "bins": ("positive integer", "Bins of that weight histogram (default 64)."),
    "layout": ("`row` or `column`", "Panels of that weight histogram, as for `qdq-histogram`."),
    **COMMON_OPTIONS,
}

OBJECT_OPTIONS = {
    "no-index": ("flag", "Not a cross-reference target: graphs do not link here."),
    "no-index-entry": ("flag", "No entry in the general index."),
    "no-contents-entry": ("flag", "No entry in the table of contents."),
    "no-typesetting": ("flag", "Only the target, no visible description."),
    "noindex": ("flag", "Old spelling of `no-index`."),
    "noindexentry": ("flag", "Old spelling of `no-index-entry`."),
    "nocontentsentry": ("flag", "Old spelling of `no-contents-entry`."),
}

ROLE_MEANINGS = {
    "op": ("`QuantizeLinear`", "The `qdq:op` description of an operator."),
    "param": ("`resnet8:input_scale`", ("The table row of a scale or zero point (model: its "
                                       "`qdq_models` name or its file stem; colon; "
                                       "initializer name).")),
    "node": ("`resnet8:input_QuantizeLinear`", ("The table row of a QuantizeLinear / "
                                               "DequantizeLinear node, of an operand of a "
                                               "quantized operator (`<node>:weight`, "
                                               "`<node>:input 1` …) or of a recipe.")),
}

#: Warning subtypes raised by the Sphinx glue (the analysis ones are DIAGNOSTIC_SUBTYPES).
GLUE_SUBTYPE_MEANINGS = {
    "model": "The model file cannot be used: missing, unreadable, not ONNX, too large "
             "(`qdq_max_model_bytes`), not a regular file (a FIFO, a device, a folder) or "
             "a loop of symbolic links.",
    "filter": "The filters of `qdq-params`, `qdq-requant` or `qdq-histogram` (`:nodes:`, "
              "`:qdq-ops:`, `:compute-ops:`, `:roles:`, `:tensors:`) match nothing in a model that has such rows: "
              "no table. (A model with nothing to table at all is reported once, by its own "
              "warning.)",
    "deprecated": "An option under its old name (`:ops:`, now `:qdq-ops:` in `qdq-params` "
                  "and `:compute-ops:` in `qdq-requant`); it still works.",
    "palette": "An entry of `qdq_graph_dark_palette` is not a colour; the built-in palette "
               "is used.",
    "duplicate": "The same operator or the same model's parameters are documented as "
                 "targets on two pages; add `:no-index:` to one.",
    "ambiguous": "A `qdq:param` / `qdq:node` reference without a model key names an "
                 "object that several models document: the warning lists them, the text "
                 "stays unlinked; write `model:name`.",
    "dot": "Graphviz `dot` failed on a graph, took longer than `qdq_dot_timeout`, or wrote "
           "an SVG that is not valid XML.",
    "graph-size": "A drawing has more nodes than `qdq_max_graph_nodes`: a note replaces it; "
                  "select a region with `:from:` / `:to:`.",
    "numerics": "`qdq-error` or `qdq-histogram` cannot compute their numbers: unreadable "
                "inputs, a float model with other inputs or no tensor in common, ONNX Runtime "
                "failing on the inputs, a scale unknown from the file.",
    "plot": "A `qdq-histogram` or `qdq-error` picture could not be drawn (matplotlib missing "
            "or failing); its alternative text is shown instead.",
    "reference": "`qdq-requant` could not run the integer reference: unreadable inputs "
                 "(`.npy` files and `module:attribute` modules must be regular files within "
                 "`qdq_max_model_bytes`), a missing package (ONNX Runtime), a node that is "
                 "not a Conv or Gemm, a model the reference cannot run (a weight whose data "
                 "does not match its shape, a per-channel axis outside the weight, an "
                 "attribute referring to a function attribute, an array above "
                 "`qdq_max_elements`).",
}


def registered_directives() -> list[str]:
    """Directive names that ``extension.py`` registers with ``app.add_directive``."""
    tree = ast.parse((PACKAGE / "sphinx" / "extension.py").read_text(encoding="utf-8"))
    return [call.args[0].value for call in ast.walk(tree)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "add_directive" and call.args
            and isinstance(call.args[0], ast.Constant)]


def call_position(function: ast.FunctionDef) -> int:
    """Where a call passes ``subtype`` positionally (``self`` is not passed by a method call)."""
    names = [a.arg for a in function.args.args]
    return names.index("subtype") - (1 if names and names[0] == "self" else 0)


def glue_subtypes() -> dict[str, list[str]]:
    """``{subtype: [file, ...]}`` for every constant subtype in the package: a
    ``subtype="..."`` keyword, or a constant passed where a package function takes its
    ``subtype`` parameter (``warn_at_graph(..., "dot")``)."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8"))
             for path in sorted(PACKAGE.rglob("*.py"))}
    positions = {function.name: call_position(function)
                 for tree in trees.values() for function in ast.walk(tree)
                 if isinstance(function, ast.FunctionDef)
                 and "subtype" in [a.arg for a in function.args.args]}
    found: dict[str, list[str]] = {}
    for path, tree in trees.items():
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            values = [k.value for k in call.keywords if k.arg == "subtype"]
            name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
            if name in positions and len(call.args) > positions[name]:
                values.append(call.args[positions[name]])
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    files = found.setdefault(value.value, [])
                    file = path.relative_to(PACKAGE.parent).as_posix()
                    if file not in files:
                        files.append(file)
    return found


class ReferenceProblems(list):
    """Names in the code without a meaning on the page, or the reverse."""

    def compare(self, what: str, in_code: set[str], described: set[str]) -> None:
        for name in sorted(in_code - described):
            self.append(f"reference page: {what} {name!r} exists in the code but has no "
                        "meaning in docs/_ext/extension_reference.py")
        for name in sorted(described - in_code):
            self.append(f"reference page: {what} {name!r} is described but no longer "
                        "exists in the code")


def config_table(app: Sphinx, problems: ReferenceProblems) -> str:
    values = {name: option for name, option in app.config.values.items()
              if name.startswith("qdq_")}
    problems.extend(f"reference page: configuration value {name!r} has no description= "
                    "in its add_config_value" for name, option in sorted(values.items())
                    if not option.description)
    rows = []
    for name, option in sorted(values.items()):
        types = " or ".join(sorted(t.__name__ if t is not type(None) else "None"
                                   for t in option.valid_types)) or "any"
        meaning = option.description
        rows.append([code(name), code(repr(option.default)), types, option.rebuild or "none",
                     meaning])
    return table(["Name", "Default", "Type", "Rebuilds", "Meaning"], rows, [22, 20, 9, 9, 40])


def option_table(options: dict[str, tuple[str, str]], spec_keys: set[str], what: str,
                 problems: ReferenceProblems) -> str:
    problems.compare(f"option of {what}", spec_keys, set(options))
    rows = [[code(f":{name}:"), value, meaning] for name, (value, meaning) in options.items()
            if name in spec_keys]
    return table(["Option", "Value", "Meaning"], rows, [20, 25, 55])


def directive_tables(problems: ReferenceProblems) -> str:
    names = registered_directives()
    problems.compare("directive", set(names), set(DIRECTIVE_OPTIONS))
    parts = []
    for name in names:
        directive_class, _messages = docutils_directives.directive(name, None, None)
        if directive_class is None or name not in DIRECTIVE_OPTIONS:
            continue
        arguments = "MODEL" if directive_class.required_arguments else ""
        parts.append(f"### `{name}` {arguments}\n\n{(directive_class.__doc__ or '').strip()}\n")
        parts.append(option_table(DIRECTIVE_OPTIONS[name], set(directive_class.option_spec or {}),
                                  name, problems))
    op_directive = QdqDomain.directives["op"]
    parts.append(f"### `qdq:op` NAME\n\n{(op_directive.__doc__ or '').strip()}\n")
    parts.append(option_table(OBJECT_OPTIONS, set(op_directive.option_spec), "qdq:op",
                              problems))
    return "\n".join(parts)


def role_table(problems: ReferenceProblems) -> str:
    problems.compare("role", set(QdqDomain.roles), set(ROLE_MEANINGS))
    rows = [[code(f"qdq:{name}"), example, meaning]
            for name, (example, meaning) in ROLE_MEANINGS.items() if name in QdqDomain.roles]
    return table(["Role", "Target", "Links to"], rows, [18, 32, 50])


def subtype_table(problems: ReferenceProblems) -> str:
    glue = {name: files for name, files in glue_subtypes().items()
            if name not in DIAGNOSTIC_SUBTYPES}  # the analysis's own are listed from its table
    problems.compare("warning subtype", set(glue), set(GLUE_SUBTYPE_MEANINGS))
    rows = [[code(f"qdq.{name}"), "the model (analysis)", meaning]
            for name, meaning in DIAGNOSTIC_SUBTYPES.items()]
    rows += [[code(f"qdq.{name}"), ", ".join(code(f) for f in glue[name]), meaning]
             for name, meaning in GLUE_SUBTYPE_MEANINGS.items() if name in glue]
    rows += [[code(f"ref.{name}"), "Sphinx (unresolved role)", message % {"target": "…"}]
             for name, message in QdqDomain.dangling_warnings.items()]
    return table(["`suppress_warnings` entry", "Raised by", "Meaning"], rows, [22, 28, 50])


def reference_fragments(app: Sphinx) -> tuple[dict[str, str], list[str]]:
    """The reference page's fragments and the problems found while making them."""
    problems = ReferenceProblems()
    fragments = {
        "reference-config.md": config_table(app, problems),
        "reference-directives.md": directive_tables(problems),
        "reference-roles.md": role_table(problems),
        "reference-subtypes.md": subtype_table(problems),
    }
    return fragments, list(problems)
