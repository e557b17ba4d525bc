"""The one place that registers config values, nodes, directives and the domain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sphinxext_qdq._version import __version__
from sphinxext_qdq.onnxio.files import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_MAX_PARAM_VALUES,
)
from sphinxext_qdq.render.cost import DEFAULT_LAYOUT_BUDGET
from sphinxext_qdq.render.graphviz import DEFAULT_DOT_TIMEOUT
from sphinxext_qdq.sphinx.collector import QdqCollector
from sphinxext_qdq.sphinx.directives import (
    QdqParamsDirective,
    QdqRequantDirective,
    QdqSummaryDirective,
    add_link_requests,
)
from sphinxext_qdq.sphinx.domain import ONNX_OP_URL, QdqDomain
from sphinxext_qdq.sphinx.nodes import (
    MAX_AUTO_DOT_JOBS,
    VISITORS,
    draw_ahead,
    qdq_graph,
    stop_drawing_ahead,
)
from sphinxext_qdq.sphinx.numerics import (
    PLOT_VISITORS,
    QdqErrorDirective,
    QdqGraphOverlayDirective,
    QdqHistogramDirective,
    qdq_plot,
)
from sphinxext_qdq.sphinx.presentation import setup_presentation
from sphinxext_qdq.sphinx.tables import PdflatexModelText, PlainModelText

if TYPE_CHECKING:
    from sphinx.application import Sphinx

#: Bump when the pickled environment data (domain records, node attributes) changes shape.
ENV_VERSION = 6

#: Default for ``qdq_max_graph_nodes``: above it a graph is replaced by a fallback.
DEFAULT_MAX_GRAPH_NODES = 2000

#: Default for ``qdq_max_scope_drawings``.
DEFAULT_MAX_SCOPE_DRAWINGS = 60


#: The pan-and-zoom script and style shipped with the package.
STATIC = Path(__file__).resolve().parent / "static"


def add_static_files(app: Sphinx) -> None:
    """HTML builders copy ``static/`` (qdq-zoom.js, qdq-zoom.css, qdq.css, qdq-theme.js)
    into ``_static``."""
    if app.builder.format == "html" and str(STATIC) not in app.config.html_static_path:
        app.config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.graphviz")
    # Values read by directives rebuild nothing by themselves: the pages that used one
    # are read again when it changes (sphinxext_qdq.sphinx.collector), the others are not.
    app.add_config_value("qdq_models", {}, "", types=frozenset({dict}),
                         description="short names for model paths (relative to the source "
                                     "directory, or absolute)")
    app.add_config_value("qdq_graph_mode", "compact", "", types=frozenset({str}),
                         description="default :mode: of qdq-graph (compact or full)")
    app.add_config_value("qdq_graph_rankdir", "TB", "", types=frozenset({str}),
                         description="default :rankdir: of qdq-graph (TB or LR)")
    app.add_config_value("qdq_graph_pairs", "edges", "", types=frozenset({str}),
                         description="default :pairs: of qdq-graph in compact mode (edges: "
                                     "a Q→DQ pair drawn on the edge it quantizes; nodes: "
                                     "as a node)")
    app.add_config_value("qdq_op_fallback_url", ONNX_OP_URL, "html",
                         types=frozenset({str, type(None)}),
                         description="URL pattern ({op}) for op types no page documents; "
                                     "None: no link")
    app.add_config_value("qdq_max_model_bytes", DEFAULT_MAX_BYTES, "", types=frozenset({int}),
                         description="larger model files are refused with a warning")
    app.add_config_value("qdq_max_elements", DEFAULT_MAX_ELEMENTS, "", types=frozenset({int}),
                         description="largest array (elements) the integer reference "
                                     "allocates from a size the model declares (input "
                                     "shapes, weights); larger ones are refused with a "
                                     "warning")
    app.add_config_value("qdq_max_param_values", DEFAULT_MAX_PARAM_VALUES, "",
                         types=frozenset({int}),
                         description="most values read for one scale or zero point; a "
                                     "larger one is reported (qdq.value) and not read")
    app.add_config_value("qdq_max_graph_nodes", DEFAULT_MAX_GRAPH_NODES, "",
                         types=frozenset({int}),
                         description="larger drawings are replaced by a note asking for "
                                     ":from:/:to:")
    app.add_config_value("qdq_graph_depth", "auto", "", types=frozenset({str, int}),
                         description="default :depth: of qdq-graph: auto (the deepest "
                                     "drawing that fits qdq_layout_budget), all (every "
                                     "node) or N (scopes N levels deep drawn as boxes)")
    app.add_config_value("qdq_layout_budget", DEFAULT_LAYOUT_BUDGET, "",
                         types=frozenset({int, float}),
                         description="seconds of estimated dot time a drawing chosen by "
                                     ":depth: auto may take")
    app.add_config_value("qdq_max_scope_drawings", DEFAULT_MAX_SCOPE_DRAWINGS, "",
                         types=frozenset({int}),
                         description="expanded drawings of collapsed scopes a qdq-graph "
                                     "adds below its drawing, at most")
    app.add_config_value("qdq_dot_timeout", DEFAULT_DOT_TIMEOUT, "html",
                         types=frozenset({int, float, type(None)}),
                         description="seconds dot may take for one graph; None: no limit")
    app.add_config_value("qdq_dot_jobs", 0, "", types=frozenset({int}),
                         description="dot processes run at once for the graphs of a page "
                                     "(started when its links are resolved, while it is "
                                     "written); 0: one per processor, at most "
                                     f"{MAX_AUTO_DOT_JOBS}; 1: one after another in the "
                                     "writer; not used by a parallel (-j) build")
    app.add_config_value("qdq_graph_dark_palette", {}, "html",
                         types=frozenset({dict, type(None)}),
                         description="colours of the graph on a dark page, {light colour: "
                                     "dark colour} over the built-in palette; None: the "
                                     "graph keeps its light colours")
    app.add_config_value("qdq_index_entries", "model", "", types=frozenset({str}),
                         description="general-index entries of qdq-params / qdq-requant "
                                     "tables: model (one per table), rows (one per row) "
                                     "or none")
    app.add_node(qdq_graph, **VISITORS)
    app.connect("builder-inited", add_static_files)
    app.add_js_file("qdq-zoom.js")
    app.add_css_file("qdq-zoom.css")
    setup_presentation(app)
    app.add_node(qdq_plot, **PLOT_VISITORS)
    app.add_domain(QdqDomain)
    app.add_post_transform(PdflatexModelText)
    app.add_post_transform(PlainModelText)
    app.add_env_collector(QdqCollector)
    app.connect("doctree-read", add_link_requests)
    app.connect("doctree-resolved", draw_ahead)
    app.connect("build-finished", stop_drawing_ahead)
    app.add_directive("qdq-graph", QdqGraphOverlayDirective)
    app.add_directive("qdq-params", QdqParamsDirective)
    app.add_directive("qdq-summary", QdqSummaryDirective)
    app.add_directive("qdq-requant", QdqRequantDirective)
    app.add_directive("qdq-histogram", QdqHistogramDirective)
    app.add_directive("qdq-error", QdqErrorDirective)
    return {
        "version": __version__,
        "env_version": ENV_VERSION,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
