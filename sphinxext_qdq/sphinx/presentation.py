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

#: Class of the box around each table (scrolls in HTML; narrower gaps in LaTeX).
TABLE_BOX = "qdq-table-box"

#: Where a long model name may break: after ``/``, ``_``, ``.``, ``:``, and between the
#: words of a CamelCase name (``Dequantize|Linear``).
_BREAK_AFTER = re.compile(r"(?<=[/_.:])(?=[^/_.:])|(?<=[a-z])(?=[A-Z][a-z])")


class qdq_wbr(nodes.Inline, nodes.Element):
    """A place where a line may break (``<wbr>``, ``\\sphinxqdqbreak``); no text."""


def breakable_text(text: str) -> list[nodes.Node]:
    """*text* as Text nodes with a :class:`qdq_wbr` after each ``/``, ``_``, ``.``
    and ``:`` followed by more name (``stack2/conv_1.weight``), and inside CamelCase."""
    pieces = _BREAK_AFTER.split(text)
    result: list[nodes.Node] = []
    for number, piece in enumerate(pieces):
        if number:
            result.append(qdq_wbr())
        result.append(nodes.Text(piece))
    return result


def _html_wbr(self: nodes.NodeVisitor, node: qdq_wbr) -> None:
    self.body.append("<wbr>")  # type: ignore[attr-defined]
    raise nodes.SkipNode


def _latex_wbr(self: nodes.NodeVisitor, node: qdq_wbr) -> None:
    self.body.append(r"\sphinxqdqbreak{}")  # type: ignore[attr-defined]
    raise nodes.SkipNode


def _skip(self: nodes.NodeVisitor, node: qdq_wbr) -> None:
    raise nodes.SkipNode


WBR_VISITORS = {
    "html": (_html_wbr, None),
    "latex": (_latex_wbr, None),
    "text": (_skip, None),
    "man": (_skip, None),
    "texinfo": (_skip, None),
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
    app.add_node(qdq_wbr, **WBR_VISITORS)
    app.connect("build-finished", copy_latex_package)
    app.add_css_file(CSS_FILE)
    app.add_js_file(THEME_SCRIPT, defer="defer")
    app.add_latex_package(LATEX_PACKAGE)
