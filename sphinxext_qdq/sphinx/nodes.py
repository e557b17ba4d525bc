"""The ``qdq_graph`` node and one visitor per builder.

The directive plans and writes the drawing once: its DOT text (``code``) carries a
placeholder for each link (:class:`sphinxext_qdq.render.dot.LinkSlots`), and the links
arrive as children (``pending_xref`` resolved by Sphinx into ``reference`` nodes carrying
``qdq_link_key``). The visitors only turn those into a URL map for the page being
written, put the URLs in (``fill_links``), run ``dot`` through
:mod:`sphinxext_qdq.render.graphviz` into the builder's image folder under a name of our
own (a hash of what is drawn), and write the markup ``sphinx.ext.graphviz`` would.
"""

from __future__ import annotations

import dataclasses
import html
import os
import posixpath
import re
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit
from xml.parsers import expat
from xml.sax.saxutils import escape as xml_escape

from docutils import nodes
from sphinx.ext.graphviz import ClickableMapDefinition, graphviz
from sphinx.util import logging

from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.render.cost import layout_shape
from sphinxext_qdq.render.graphviz import DotRunError, draw_files
from sphinxext_qdq.render.svg_theme import (
    PaletteError,
    add_theme_style,
    dark_palette,
    theme_style,
)
from sphinxext_qdq.sphinx import backend

if TYPE_CHECKING:
    from sphinx.writers.html5 import HTML5Translator
    from sphinx.writers.latex import LaTeXTranslator
    from sphinx.writers.manpage import ManualPageTranslator
    from sphinx.writers.texinfo import TexinfoTranslator
    from sphinx.writers.text import TextTranslator

    from sphinxext_qdq.analysis.records import QdqModel
    from sphinxext_qdq.render.dot import DotOptions

logger = logging.getLogger(__name__)

PREFIX = "qdq"

#: Pages whose graphs failed while being written, read again by the next build
#: (one line per page, appended by every writing process).
WRITE_PROBLEMS_FILE = "qdq-write-problems.txt"


class qdq_graph(graphviz):
    """An annotated QDQ graph; a ``graphviz`` node so themes and CSS treat it alike."""


def warn_at_graph(translator: object, node: qdq_graph, message: str, subtype: str) -> None:
    """A ``qdq.<subtype>`` warning at the graph's directive, written while the page is
    written: the page is noted so that the next build reads (and warns) it again."""
    logger.warning("%s", message, location=node, type="qdq", subtype=subtype)
    builder = translator.builder  # type: ignore[attr-defined]
    source = node.source or translator.document.get("source", "")  # type: ignore[attr-defined]
    docname = builder.env.path2doc(source) if source else None
    if docname:
        note_write_problem(Path(builder.doctreedir), docname)


def note_write_problem(doctreedir: Path, docname: str) -> None:
    try:
        doctreedir.mkdir(parents=True, exist_ok=True)
        with open(doctreedir / WRITE_PROBLEMS_FILE, "a", encoding="utf-8") as problems:
            problems.write(docname + "\n")  # one short append: atomic between processes
    except OSError:
        pass  # only costs the repeated warning on the next build


def graph_model(translator: object, node: qdq_graph) -> QdqModel:
    """The analysis behind a graph (from the loader's cache); warn and skip on failure."""
    config = translator.builder.config  # type: ignore[attr-defined]
    try:
        return backend.load_qdq_model(node["qdq_path"], max_bytes=config.qdq_max_model_bytes,
                                      max_param_values=config.qdq_max_param_values)
    except QdqModelError as exc:
        warn_at_graph(translator, node, str(exc), "model")
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
    for ``dirhtml``; we hand it the one input that comes out right for every builder.
    The path part is worked out once per page (a graph has a link per node, most of
    them to a few pages)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return url
    known: dict[str, str] = translator.__dict__.setdefault("_qdq_svg_paths", {})
    href = known.get(parts.path)
    if href is None:
        href = known[parts.path] = _svg_path(translator, parts.path)
    fragment = parts.fragment.rsplit("#", 1)[-1]
    return href + (f"#{fragment}" if fragment else "")


def _svg_path(translator: HTML5Translator, path: str) -> str:
    builder = translator.builder
    page = Path(builder.get_outfilename(builder.current_docname))
    target = page if not path else Path(os.path.normpath(page.parent / path))
    images = Path(builder.outdir) / builder.imagedir
    final = posixpath.join(*Path(os.path.relpath(target, images)).parts)
    # what fix_svg_relative_paths will take as the page directory and image directory
    docname = builder.env.path2doc(translator.document["source"]) or builder.current_docname
    sphinx_dir = Path(builder.outdir).joinpath(docname).resolve().parent
    sphinx_images = sphinx_dir / builder.imgpath
    href = os.path.relpath(os.path.normpath(sphinx_images / final), sphinx_dir)
    return Path(href).as_posix()


_SVG_HREF = re.compile(rb'xlink:href="([^"]*)"')


def retarget_svg_links(translator: Any, data: bytes) -> bytes:
    """What ``sphinx.ext.graphviz.fix_svg_relative_paths`` does to a drawing, at a
    fraction of its cost for a graph with a link per node: every relative
    ``xlink:href`` made relative to the image folder (the same arithmetic, done once per
    distinct link instead of once per element), dot's own text otherwise left as it is
    (no XML tree is built and written again)."""
    builder = translator.builder
    docname = builder.env.path2doc(translator.document["source"])
    if docname is None:
        return data
    doc_dir = builder.outdir.joinpath(docname).resolve().parent
    img_path = doc_dir / builder.imgpath
    done: dict[bytes, bytes] = {}

    def retarget(match: re.Match[bytes]) -> bytes:
        value = match.group(1)
        if value not in done:
            scheme, hostname, rel_uri, query, fragment = urlsplit(
                html.unescape(value.decode("utf-8")))
            if hostname:
                done[value] = value
            else:
                new_path = os.path.relpath(doc_dir / rel_uri, start=img_path)
                url = urlunsplit((scheme, hostname, new_path, query, fragment))
                done[value] = xml_escape(url, {'"': "&quot;"}).encode("utf-8")
        return b'xlink:href="' + done[value] + b'"'

    return _SVG_HREF.sub(retarget, data)


def svg_root_start(data: bytes) -> int:
    """Where the root element's start tag begins in *data*, checked to be well-formed
    XML with expat (a broken drawing is refused: :class:`DotRunError`)."""
    parser = expat.ParserCreate()
    starts: list[int] = []

    def first_element(_name: str, _attributes: dict[str, str]) -> None:
        starts.append(parser.CurrentByteIndex)
        parser.StartElementHandler = None

    parser.StartElementHandler = first_element
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        raise DotRunError("invalid", f"dot wrote an SVG that is not valid XML ({error})"
                          ) from None
    return starts[0]


def finish_svg(translator: Any, path: Path, style: str | None) -> None:
    """dot's SVG, checked, with its links made relative to the image folder and, with
    *style*, the light / dark style inside (:mod:`render.svg_theme`); one read, one
    write, no XML tree."""
    data = path.read_bytes()
    root = svg_root_start(data)
    changed = retarget_svg_links(translator, data)  # links lie after the root's start
    if style is not None:
        changed = add_theme_style(changed, root, style)
    if changed != data:
        path.write_bytes(changed)


class DotProblem(Exception):
    """dot failed, or took longer than ``qdq_dot_timeout``: the message is one line."""


def picture_name(translator: Any, code: str, fmt: str, style: str | None) -> str:
    """Our own name for a picture: a hash of everything its bytes depend on (the DOT
    text, the style inside an SVG, the folder its relative links start from, the dot
    program and its arguments). The same drawing on two pages is one file."""
    builder = translator.builder
    config = builder.config
    base = posixpath.dirname(builder.current_docname or "") if fmt == "svg" else ""
    key = "\0".join((code, style or "", base, str(config.graphviz_dot),
                     str(config.graphviz_dot_args), fmt))
    return f"{PREFIX}-{sha256(key.encode('utf-8')).hexdigest()[:40]}.{fmt}"


def draw_picture(translator: Any, code: str, fmt: str, timeout: float | None,
                 style: str | None = None) -> tuple[str, Path]:
    """(URI from the page, file) of the picture in the builder's image folder, as
    ``sphinx.ext.graphviz`` keeps its own: dot is run (with a time limit) only when the
    file is not there yet, into temporary files renamed into place, so two pages (or
    two writing processes) drawing the same graph never read a half-written file."""
    builder = translator.builder
    name = picture_name(translator, code, fmt, style)
    target = Path(builder.outdir, builder.imagedir, name)
    uri = posixpath.join(builder.imgpath or "", name)
    if target.is_file():
        return uri, target
    target.parent.mkdir(parents=True, exist_ok=True)
    outputs = [(fmt, target)] + ([("cmapx", Path(f"{target}.map"))] if fmt == "png" else [])

    def finish(written: dict[Path, Path]) -> None:
        if fmt == "svg":
            finish_svg(translator, written[target], style)

    try:
        draw_files(code, outputs, dot=builder.config.graphviz_dot,
                   dot_args=builder.config.graphviz_dot_args, timeout=timeout,
                   cwd=str(builder.srcdir), check=finish)
    except DotRunError as error:
        advice = {"timeout": " (qdq_dot_timeout); draw less with :depth: or :from: / :to:, "
                             "or raise qdq_dot_timeout",
                  "missing": "; install graphviz or set graphviz_dot",
                  "unusable": "; install graphviz or set graphviz_dot"}
        raise DotProblem(f"{error}{advice.get(error.reason, '')}") from None
    return uri, target


class Picture(NamedTuple):
    """A drawn picture: its URI from the page, its file, and the DOT it was drawn from."""

    uri: str
    path: Path
    code: str


def drawing_code(node: qdq_graph, urls: dict[str, str]) -> str:
    """The DOT the directive wrote, with the links of the page being written."""
    return backend.fill_links(node["code"], node.get("qdq_link_chains", []), urls)


def render_checked(translator: Any, node: qdq_graph, code: str, fmt: str,
                   style: str | None = None) -> Picture:
    """Draw the picture (dot with ``qdq_dot_timeout``), so that a failure or a timeout
    is one located warning and the page still builds: the picture is then a note for
    the reader saying what happened and what to write instead."""
    limit = translator.builder.config.qdq_dot_timeout
    try:
        return Picture(*draw_picture(translator, code, fmt, limit, style), code)
    except DotProblem as exc:
        warn_at_graph(translator, node, f"the graph of {node['qdq_model']} is not drawn: "
                                        f"{backend.one_line(str(exc))}", "dot")
        model = graph_model(translator, node)
        note = backend.render_note(model, node["qdq_options"], dot_problem_note(
            translator, model, node["qdq_options"], exc))
        # a note and a few ellipses: a tiny time limit is the drawing's, not the note's
        timeout = NOTE_TIMEOUT if not limit or limit <= 0 else min(NOTE_TIMEOUT,
                                                                   max(5.0, limit))
        try:
            return Picture(*draw_picture(translator, note, fmt, timeout, style), note)
        except DotProblem:
            raise nodes.SkipNode from exc


#: Seconds dot may take, at most, for the note that replaces a drawing it could not make
#: (at least 5 s, or ``qdq_dot_timeout`` when that is longer).
NOTE_TIMEOUT = 30.0


def dot_problem_note(translator: Any, model: QdqModel, options: DotOptions,
                     exc: Exception) -> list[str]:
    """Lines for the reader: what happened to the drawing, and what to write instead."""
    config = translator.builder.config
    count, edges = backend.drawing_graph(model, options)
    estimate = layout_shape(count, edges, labelled=options.depth == 0).seconds
    drawn = "every node" if not options.depth else f"depth {options.depth}"
    timeout = "took longer than" in str(exc)
    lines = [("dot ran out of time on this drawing" if timeout
              else "dot could not draw this graph"),
             backend.one_line(str(exc), 80),
             f"({count} graph nodes, {len(edges)} edges, {drawn};",
             f"estimated layout time {estimate:.3g} s).", "Instead, write"]
    budget = min(float(config.qdq_layout_budget), float(config.qdq_dot_timeout or 60) / 4)
    smaller = backend.choose_depth(model, dataclasses.replace(options, depth=0), budget)
    if smaller.depth and smaller.depth != options.depth:
        lines.append(f":depth: {smaller.depth} (estimated {smaller.estimate:.2g} s),")
    lines += ["a region with :from: and :to:,", "or raise qdq_dot_timeout."]
    return lines


def graph_palette(translator: Any, node: qdq_graph) -> dict[str, str] | None:
    """The dark palette of an SVG (``qdq_graph_dark_palette``; None: no dark mode);
    a wrong entry is a located warning and the default palette is used."""
    overrides = translator.builder.config.qdq_graph_dark_palette
    if overrides is None:
        return None
    try:
        return dark_palette(overrides)
    except PaletteError as exc:
        logger.warning("qdq_graph_dark_palette: %s; the default palette is used", exc,
                       location=node, type="qdq", subtype="palette")
        return dark_palette({})


def html_visit_qdq_graph(self: HTML5Translator, node: qdq_graph) -> None:
    fmt = "png" if self.builder.config.graphviz_output_format == "png" else "svg"
    urls = resolved_links(node)
    style = None
    if fmt == "svg":
        urls = {key: svg_href(self, url) for key, url in urls.items()}
        # the light / dark style inside the SVG is part of the picture (and of its name)
        style = theme_style(graph_palette(self, node))
    picture = render_checked(self, node, drawing_code(node, urls), fmt, style)
    markup = picture_html(self, node, picture, fmt)
    if fmt == "svg":  # a PNG and its image map: no pan-and-zoom frame
        markup = zoom_start(self, node) + markup + zoom_end(self, picture.uri)
    self.body.append(markup)
    raise nodes.SkipNode


def picture_html(translator: HTML5Translator, node: qdq_graph, picture: Picture,
                 fmt: str) -> str:
    """The markup ``sphinx.ext.graphviz.render_dot_html`` writes for a picture."""
    classes = " ".join(["qdq-graph", "graphviz", *node.get("classes", [])])
    alt = translator.encode(node["alt"])
    if fmt == "svg":
        markup = (f'<div class="graphviz"><object data="{picture.uri}" type="image/svg+xml" '
                  f'class="{classes}">\n<p class="warning">{alt}</p></object></div>\n')
    else:
        map_file = f"{picture.path}.map"
        image_map = ClickableMapDefinition(map_file, Path(map_file).read_text(encoding="utf-8"),
                                           dot=picture.code)
        usemap = f' usemap="#{image_map.id}"' if image_map.clickable else ""
        markup = (f'<div class="graphviz"><img src="{picture.uri}" alt="{alt}"{usemap} '
                  f'class="{classes}" /></div>\n'
                  + (image_map.generate_clickable_map() if image_map.clickable else ""))
    if "align" in node:
        align = node["align"]
        markup = f'<div align="{align}" class="align-{align}">{markup}</div>\n'
    return markup


def zoom_start(translator: HTML5Translator, node: qdq_graph) -> str:
    """The opening of a pan-and-zoom frame (``static/qdq-zoom.js``) around an SVG drawing;
    ``:width:`` sizes the frame, ``:scale:`` sets the first view's scale."""
    attributes = ""
    width = node.get("qdq_width")
    if width:
        attributes += f' style="width: {translator.attval(css_length(width))}"'
    if node.get("qdq_scale"):
        attributes += f' data-qdq-scale="{int(node["qdq_scale"]) / 100:g}"'
    return (f'<div class="qdq-zoom"{attributes}>'
            '<div class="qdq-zoom-viewport" tabindex="0" role="group" aria-label="drawing: '
            'drag or arrow keys to pan, + and - or ctrl + wheel to zoom, 0 for the start">'
            '<div class="qdq-zoom-canvas">')


def zoom_end(translator: HTML5Translator, image_uri: str) -> str:
    """The tool bar (zoom buttons, the scale, a link to the drawing alone) and the end."""
    full = translator.attval(image_uri)
    buttons = "".join(
        f'<button type="button" data-qdq-zoom="{command}" title="{title}">{text}</button>'
        for command, title, text in (("out", "zoom out (-)", "−"), ("in", "zoom in (+)", "+"),
                                     ("fit", "the whole drawing", "fit"),
                                     ("start", "back to the first view (0)", "start")))
    return (f'</div></div><div class="qdq-zoom-tools">{buttons}'
            '<span class="qdq-zoom-level"></span>'
            f'<a class="qdq-zoom-full" href="{full}">full size</a></div></div>\n')


def css_length(value: str) -> str:
    """``:width:`` as docutils parses it (``600``, ``12em``, ``50%``) for CSS."""
    text = str(value).strip()
    return text + "px" if text.replace(".", "", 1).isdigit() else text


#: What ``sphinx.ext.graphviz`` puts around a picture for ``:align:`` in LaTeX.
LATEX_ALIGN = {"left": ("{", r"\hspace*{\fill}}"), "right": (r"{\hspace*{\fill}", "}"),
               "center": (r"{\hfill", r"\hspace*{\fill}}")}


def latex_visit_qdq_graph(self: LaTeXTranslator, node: qdq_graph) -> None:
    # LaTeX drops links inside included PDF images: draw without them.
    picture = render_checked(self, node, drawing_code(node, {}), "pdf")
    include = r"\sphinxincludegraphics[]{" + picture.uri + "}"
    if not self.is_inline(node):
        pre, post = LATEX_ALIGN.get(node.get("align"), ("", ""))
        include = f"\n{pre}{include}{post}\n"
    self.body.append(include)
    raise nodes.SkipNode


def texinfo_visit_qdq_graph(self: TexinfoTranslator, node: qdq_graph) -> None:
    picture = render_checked(self, node, drawing_code(node, {}), "png")
    self.body.append(f"@image{{{picture.uri[:-4]},,,[graphviz],png}}\n")
    raise nodes.SkipNode


def outline_visit_qdq_graph(self: TextTranslator | ManualPageTranslator, node: qdq_graph) -> None:
    """Text and man pages: a readable outline (inputs, quantized groups, outputs) of what
    the drawing shows (a scope's drawing: that scope)."""
    model = graph_model(self, node)
    options: DotOptions = node["qdq_options"]
    selection = options.selection
    if options.scope:
        inside = backend.scope_paths(model).members(options.scope)
        selection = inside if selection is None else selection & inside
    text = "\n".join(backend.outline(model, selection))
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
