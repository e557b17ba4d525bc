"""The ``qdq_graph`` node and one visitor per builder.

The directive stores the model path and drawing options; links arrive as
children (``pending_xref`` resolved by Sphinx into ``reference`` nodes carrying
``qdq_link_key``). The visitors turn them into a URL map, ask
:mod:`sphinxext_qdq.analysis.dot` for DOT, and delegate to ``sphinx.ext.graphviz``.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from docutils import nodes
from sphinx.ext.graphviz import (
    GraphvizError,
    graphviz,
    render_dot,
    render_dot_html,
    render_dot_latex,
    render_dot_texinfo,
)
from sphinx.util import logging

from sphinxext_qdq.analysis.dot import render_dot as qdq_dot
from sphinxext_qdq.analysis.loader import QdqModelError, load_qdq_model
from sphinxext_qdq.analysis.outline import outline

if TYPE_CHECKING:
    from sphinx.writers.html5 import HTML5Translator
    from sphinx.writers.latex import LaTeXTranslator
    from sphinx.writers.manpage import ManualPageTranslator
    from sphinx.writers.texinfo import TexinfoTranslator
    from sphinx.writers.text import TextTranslator

    from sphinxext_qdq.analysis.model import QdqModel

logger = logging.getLogger(__name__)

PREFIX = "qdq"


class qdq_graph(graphviz):
    """An annotated QDQ graph; a ``graphviz`` node so themes and CSS treat it alike."""


def graph_model(translator: object, node: qdq_graph) -> QdqModel:
    """The analysis behind a graph (from the loader's cache); warn and skip on failure."""
    config = translator.builder.config  # type: ignore[attr-defined]
    try:
        return load_qdq_model(node["qdq_path"], max_bytes=config.qdq_max_model_bytes)
    except QdqModelError as exc:
        logger.warning("%s", exc, location=node, type="qdq", subtype="model")
        raise nodes.SkipNode from exc


def resolved_links(node: qdq_graph) -> dict[str, str]:
    """``{link key: URL relative to the page}`` from the resolved reference children."""
    urls: dict[str, str] = {}
    for ref in node.findall(nodes.reference):
        key = ref.get("qdq_link_key")
        if not key:
            continue
        if ref.get("refuri") is not None:
            urls[key] = ref["refuri"]
        elif ref.get("refid") is not None:
            urls[key] = "#" + ref["refid"]
    return urls


def svg_href(translator: HTML5Translator, url: str) -> str:
    """The URL to put in DOT so that, inside the SVG in ``_images/``, it reaches ``url``
    (given relative to the page). ``sphinx.ext.graphviz.fix_svg_relative_paths``
    rewrites relative links from where it believes the page lives, which is wrong
    for ``dirhtml``; we hand it the one input that comes out right for every builder."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return url
    builder = translator.builder
    page = Path(builder.get_outfilename(builder.current_docname))
    target = page if not parts.path else Path(os.path.normpath(page.parent / parts.path))
    images = Path(builder.outdir) / builder.imagedir
    final = posixpath.join(*Path(os.path.relpath(target, images)).parts)
    # what fix_svg_relative_paths will take as the page directory and image directory
    docname = builder.env.path2doc(translator.document["source"]) or builder.current_docname
    sphinx_dir = Path(builder.outdir).joinpath(docname).resolve().parent
    sphinx_images = sphinx_dir / builder.imgpath
    href = os.path.relpath(os.path.normpath(sphinx_images / final), sphinx_dir)
    fragment = parts.fragment.rsplit("#", 1)[-1]
    return Path(href).as_posix() + (f"#{fragment}" if fragment else "")


def render_checked(translator: object, node: qdq_graph, code: str, fmt: str) -> None:
    """Run dot through Sphinx's cache first so that a failure is a located warning."""
    try:
        render_dot(translator, code, node["options"], fmt, PREFIX)  # type: ignore[arg-type]
    except GraphvizError as exc:
        logger.warning("dot failed on the graph of %s: %s", node["qdq_model"], exc,
                       location=node, type="qdq", subtype="dot")
        raise nodes.SkipNode from exc


def html_visit_qdq_graph(self: HTML5Translator, node: qdq_graph) -> None:
    model = graph_model(self, node)
    urls = resolved_links(node)
    if self.builder.config.graphviz_output_format == "svg":
        urls = {key: svg_href(self, url) for key, url in urls.items()}
    code = qdq_dot(model, node["qdq_options"], urls)
    render_checked(self, node, code, self.builder.config.graphviz_output_format)
    render_dot_html(self, node, code, node["options"], PREFIX, "qdq-graph",
                    alt=self.encode(node["alt"]))


def latex_visit_qdq_graph(self: LaTeXTranslator, node: qdq_graph) -> None:
    # LaTeX drops links inside included PDF images: draw without them.
    code = qdq_dot(graph_model(self, node), node["qdq_options"], {})
    render_checked(self, node, code, "pdf")
    render_dot_latex(self, node, code, node["options"], PREFIX)


def texinfo_visit_qdq_graph(self: TexinfoTranslator, node: qdq_graph) -> None:
    code = qdq_dot(graph_model(self, node), node["qdq_options"], {})
    render_checked(self, node, code, "png")
    render_dot_texinfo(self, node, code, node["options"], PREFIX)


def outline_visit_qdq_graph(self: TextTranslator | ManualPageTranslator, node: qdq_graph) -> None:
    """Text and man pages: a readable outline (inputs, quantized groups, outputs)."""
    text = "\n".join(outline(graph_model(self, node), node["qdq_options"].selection))
    block = nodes.literal_block(text, text)
    block.document = node.document
    block.walkabout(self)
    raise nodes.SkipNode


VISITORS = {
    "html": (html_visit_qdq_graph, None),
    "latex": (latex_visit_qdq_graph, None),
    "texinfo": (texinfo_visit_qdq_graph, None),
    "text": (outline_visit_qdq_graph, None),
    "man": (outline_visit_qdq_graph, None),
}
