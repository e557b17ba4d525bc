"""The reference page, generated from the extension's code.

Names, defaults and option lists are read from the running Sphinx application and
from ``sphinxext_qdq``'s sources; configuration values are described where they are
declared (``add_config_value(..., description=...)``), directive options beside their
``option_spec`` (each directive's ``option_docs()``); the meanings of roles and warning
subtypes are written here. A name found in the code without a meaning (or the reverse)
is reported as a build warning, so the page cannot silently fall behind the code.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from docutils.parsers.rst import directives as docutils_directives
from fragments import code, table

import sphinxext_qdq
from sphinxext_qdq.analysis.records import DIAGNOSTIC_SUBTYPES
from sphinxext_qdq.sphinx.domain import QdqDomain

if TYPE_CHECKING:
    from sphinx.application import Sphinx

PACKAGE = Path(sphinxext_qdq.__file__).resolve().parent

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
    "option": "An option that does not fit the model or the other options: a `qdq-graph` "
              "`:scope:` no node lies in, a `:from:` / `:to:` name that is no node or tensor "
              "(with the close matches), an option another one needs (`qdq-requant :show: "
              "example` without `:node:` or `:inputs:`, `qdq-error` without `:float:` or "
              "`:inputs:`, `qdq-histogram :roles: activation` without `:inputs:`), a "
              "`:position:` outside the output, or a `qdq_graph_*` default in `conf.py` that "
              "is not one of its choices. The directive draws nothing (a `:color-by: sqnr` "
              "lacking `:float:` or `:inputs:`, or `qdq-graph`'s `:float:`, `:inputs:` or "
              "`:images:` without `:color-by: sqnr`, which alone reads them: the graph is "
              "drawn without the colours). A "
              "value an option can never take (`:mode: sideways`) is docutils' own error.",
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
                "failing on the inputs, a scale unknown from the file. A `qdq-histogram` tensor "
                "whose numbers cannot be computed (a scale of zero, unreadable data) is "
                "named and skipped; the others are drawn.",
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

    def compare(self, what: str, in_code: set[str], described: set[str],
                where: str = "docs/_ext/extension_reference.py") -> None:
        for name in sorted(in_code - described):
            self.append(f"reference page: {what} {name!r} exists in the code but has no "
                        f"meaning in {where}")
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


def option_table(directive_class: type, what: str, problems: ReferenceProblems) -> str:
    """The options of a directive, described where they are declared (``option_docs``)."""
    options = directive_class.option_docs()
    spec_keys = set(directive_class.option_spec or {})
    problems.compare(f"option of {what}", spec_keys, set(options),
                     f"{directive_class.__qualname__}.option_docs()")
    rows = [[code(f":{name}:"), value, meaning] for name, (value, meaning) in options.items()
            if name in spec_keys]
    return table(["Option", "Value", "Meaning"], rows, [20, 25, 55])


def directive_tables(problems: ReferenceProblems) -> str:
    parts = []
    for name in registered_directives():
        directive_class, _messages = docutils_directives.directive(name, None, None)
        if directive_class is None:
            problems.append(f"reference page: directive {name!r} is not registered")
            continue
        arguments = "MODEL" if directive_class.required_arguments else ""
        parts.append(f"### `{name}` {arguments}\n\n{(directive_class.__doc__ or '').strip()}\n")
        parts.append(option_table(directive_class, name, problems))
    op_directive = QdqDomain.directives["op"]
    parts.append(f"### `qdq:op` NAME\n\n{(op_directive.__doc__ or '').strip()}\n")
    parts.append(option_table(op_directive, "qdq:op", problems))
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
