"""The pure packages as the Sphinx glue sees them, imported when first used.

Loading the extension (``setup()``) must not import onnx or numpy: a build whose pages use
no directive, and a rebuild with nothing to read, would pay ~90 ms and ~22 MiB for them.
So the glue (directives, node visitors, tables) reaches the analysis, the rendering and
the integer arithmetic only through this module, as ``backend.load_qdq_model(...)``,
``backend.Role``…: the first such access runs the imports below (and with them onnx and
numpy), later ones are plain attribute look-ups. The requantization recipes
(``qdq-requant``, ~6 ms) and the integer reference (its examples and agreements only,
~25 ms) come in separately, each on the first use of a name it defines. Names
that setup needs (defaults, the error class) live in modules that import neither, and
the glue imports those directly.
"""

from __future__ import annotations

from typing import Any


def _analysis_and_rendering() -> dict[str, Any]:
    from sphinxext_qdq.analysis import loader, queries, records
    from sphinxext_qdq.onnxio import dtypes
    from sphinxext_qdq.render import depth, dot, outline, scopes, text

    return {
        "load_qdq_model": loader.load_qdq_model,
        "QdqSelectionError": queries.QdqSelectionError,
        "describe": queries.describe,
        "select_region": queries.select_region,
        "summarize": queries.summarize,
        "Role": records.Role,
        "PAIR_STYLES": dot.PAIR_STYLES,
        "DotOptions": dot.DotOptions,
        "graph_node_count": dot.graph_node_count,
        "LinkSlots": dot.LinkSlots,
        "fill_links": dot.fill_links,
        "render_dot": dot.render_dot,
        "render_note": dot.render_note,
        "drawing_graph": dot.drawing_graph,
        "drawing_scopes": dot.drawing_scopes,
        "scope_key": dot.scope_key,
        "choose_depth": depth.choose_depth,
        "scope_paths": scopes.scope_paths,
        "outline": outline.outline,
        "one_line": text.one_line,
        "dtype_label": dtypes.label,
        "format_granularity": text.format_granularity,
        "format_scale": text.format_scale,
        "format_shape": text.format_shape,
        "format_values": text.format_values,
    }


def _requantization() -> dict[str, Any]:
    from sphinxext_qdq.integer import requant

    return {"ROUNDINGS": requant.ROUNDINGS, "requant_recipes": requant.requant_recipes}


def _integer_reference() -> dict[str, Any]:
    from sphinxext_qdq.integer import example, inputs, onnxruntime_check, program

    return {"integer_program": program, "integer_inputs": inputs,
            "onnxruntime_check": onnxruntime_check, "worked_example": example}


#: The groups imported apart from the analysis and rendering, by the names they define.
_GROUPS = {**dict.fromkeys(("ROUNDINGS", "requant_recipes"), _requantization),
           **dict.fromkeys(("integer_program", "integer_inputs", "onnxruntime_check",
                            "worked_example"), _integer_reference)}


def __getattr__(name: str) -> Any:
    """Run the imports that define *name* on its first access; keep what they define."""
    if not name.startswith("__"):
        found = _GROUPS.get(name, _analysis_and_rendering)()
        if name in found:
            globals().update(found)
            return found[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
