"""What the extension brings to a project's look: CSS and the dark-mode bridge for
HTML, a LaTeX package for PDF, break points in long model names, column specs.

Nothing here depends on the project's ``conf.py``: a project that only lists
``sphinxext_qdq`` in ``extensions`` gets all of it, in any theme.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from docutils import nodes
from sphinx import addnodes
from sphinx.util.fileutil import copy_asset_file

if TYPE_CHECKING:
    from sphinx.application import Sphinx

HERE = Path(__file__).resolve().parent
TEXINPUTS = HERE / "texinputs"
CSS_FILE = "qdq.css"
THEME_SCRIPT = "qdq-theme.js"
LATEX_PACKAGE = "sphinxqdq"

#: Most characters of a name's piece between two breaks in LaTeX (a longer piece is cut).
LATEX_PIECE = 40

#: Class of the box around each table (scrolls in HTML; narrower gaps in LaTeX).
TABLE_BOX = "qdq-table-box"

#: Where a long model name may break: after ``/``, ``_``, ``.``, ``:``, and between the
#: words of a CamelCase name (``Dequantize|Linear``).
_BREAK_AFTER = re.compile(r"(?<=[/_.:])(?=[^/_.:])|(?<=[a-z])(?=[A-Z][a-z])")


class qdq_name(nodes.literal):
    """A name from the model as code, with a break point after each ``/``, ``_``, ``.``
    and ``:`` followed by more name (``stack2/conv_1.weight``) and inside CamelCase,
    written by the HTML (``<wbr>``) and LaTeX (``\\sphinxqdqbreak``) writers. One node per
    name however many break points: a table of thousands of names keeps the node count of
    its text (every read-phase transform walks the whole page). Other writers see a
    ``literal``."""


def breakable_pieces(text: str) -> list[str]:
    """*text* cut where :class:`qdq_name` may break (the pieces join back to *text*)."""
    return _BREAK_AFTER.split(text)


def _html_name(self: nodes.NodeVisitor, node: qdq_name) -> None:
    """The writer's own ``literal`` around the name's pieces, ``<wbr>`` between them."""
    self.visit_literal(node)  # type: ignore[attr-defined]
    for number, piece in enumerate(breakable_pieces(node.astext())):
        if number:
            self.body.append("<wbr>")  # type: ignore[attr-defined]
        self.visit_Text(nodes.Text(piece))  # type: ignore[attr-defined]
    self.depart_literal(node)  # type: ignore[attr-defined]
    raise nodes.SkipNode


def _latex_name(self: nodes.NodeVisitor, node: qdq_name) -> None:
    """As HTML, and a piece longer than :data:`LATEX_PIECE` is cut further by breaks that
    also end the ``.tex`` source line (``%``: no space), so no line of the file outgrows
    TeX's input buffer (:class:`~sphinxext_qdq.sphinx.tables.PdflatexModelText` has
    shortened and escaped the name)."""
    self.visit_literal(node)  # type: ignore[attr-defined]
    for number, piece in enumerate(breakable_pieces(node.astext())):
        if number:
            self.body.append(r"\sphinxqdqbreak{}")  # type: ignore[attr-defined]
        for start in range(0, len(piece), LATEX_PIECE):
            if start:
                self.body.append("\\allowbreak{}%\n")  # type: ignore[attr-defined]
            self.visit_Text(nodes.Text(piece[start:start + LATEX_PIECE]))  # type: ignore[attr-defined]
    self.depart_literal(node)  # type: ignore[attr-defined]
    raise nodes.SkipNode


#: HTML and LaTeX put the break points in; text, man and texinfo write a ``literal``.
NAME_VISITORS = {
    "html": (_html_name, None),
    "latex": (_latex_name, None),
}


def table_box(table: nodes.table, widths: list[int]) -> nodes.container:
    """The table in its box, with a LaTeX column spec (ragged-right ``\\QDQ`` columns of
    the given relative widths; HTML lets the browser size the columns)."""
    total = sum(widths)
    spec = "".join(rf"\QDQ{{{width}}}{{{total}}}" for width in widths)
    box = nodes.container(classes=[TABLE_BOX])
    box += addnodes.tabular_col_spec(spec=spec)
    box += table
    return box


def copy_latex_package(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``: ``sphinxqdq.sty`` next to the ``.tex`` files."""
    if exception is None and app.builder.format == "latex":
        copy_asset_file(TEXINPUTS / f"{LATEX_PACKAGE}.sty", app.outdir, force=True)


def setup_presentation(app: Sphinx) -> None:
    """The files of ``static/`` reach ``_static`` with the extension's other static files
    (``extension.add_static_files``)."""
    app.add_node(qdq_name, **NAME_VISITORS)
    app.connect("build-finished", copy_latex_package)
    app.add_css_file(CSS_FILE)
    app.add_js_file(THEME_SCRIPT, defer="defer")
    app.add_latex_package(LATEX_PACKAGE)
