"""The ``qdq_graph`` node and one visitor per builder.

The directive plans and writes the drawing once: its DOT text (``code``) carries a
placeholder for each link (:class:`sphinxext_qdq.render.dot.LinkSlots`), and the links
arrive as children (``pending_xref`` resolved by Sphinx into ``reference`` nodes carrying
``qdq_link_key``). The visitors only turn those into a URL map for the page being
written, put the URLs in (``fill_links``), run ``dot`` through
:mod:`sphinxext_qdq.render.graphviz` into the builder's image folder under a name of our
own (a hash of what is drawn), and write the markup ``sphinx.ext.graphviz`` would.

Drawing ahead (``qdq_dot_jobs``): once a page's references are resolved
(``doctree-resolved``), its URLs are known, so the dot runs of all its graphs start
then, a few at a time in threads that each wait on their own ``dot`` process, while the
page is written; each visitor takes its picture from :data:`ahead` (or the failure, which
it reports as it would its own run). A page with a ``:depth: auto`` drawing and its
scope drawings lays them out side by side instead of one after another.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import os
import posixpath
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit
from xml.parsers import expat
from xml.sax.saxutils import escape as xml_escape

from docutils import nodes
from sphinx.ext.graphviz import ClickableMapDefinition, graphviz
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

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


class Page(NamedTuple):
    """The page a picture is drawn for: its builder, its document name (the folder an
    SVG's relative links start from) and the image folder's path from it (the builder's
    ``imgpath`` while it writes that page)."""

    builder: Any
    docname: str
    imgpath: str


def page_of(translator: Any) -> Page:
    """The page *translator* is writing."""
    builder = translator.builder
    source = translator.document.get("source", "")
    return Page(builder, (builder.env.path2doc(source) if source else None)
                or builder.current_docname, builder.imgpath or "")


def page_before_writing(builder: Any, docname: str) -> Page:
    """The page *docname* as its translator will see it, before the builder writes it
    (an HTML builder sets ``imgpath`` for each page as :func:`relative_uri` does here)."""
    imgpath = relative_uri(builder.get_target_uri(docname), builder.imagedir) \
        if builder.format == "html" else builder.imgpath
    return Page(builder, docname, imgpath)


def svg_href(page: Page, url: str, known: dict[str, str]) -> str:
    """The URL to put in DOT so that, inside the SVG in ``_images/``, it reaches ``url``
    (given relative to the page). ``sphinx.ext.graphviz.fix_svg_relative_paths``
    rewrites relative links from where it believes the page lives, which is wrong
    for ``dirhtml``; we hand it the one input that comes out right for every builder.
    The path part is worked out once per page and path (*known*: a graph has a link per
    node, most of them to a few pages)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return url
    href = known.get(parts.path)
    if href is None:
        href = known[parts.path] = _svg_path(page, parts.path)
    fragment = parts.fragment.rsplit("#", 1)[-1]
    return href + (f"#{fragment}" if fragment else "")


def _svg_path(page: Page, path: str) -> str:
    builder, docname, imgpath = page
    written = Path(builder.get_outfilename(docname))
    target = written if not path else Path(os.path.normpath(written.parent / path))
    images = Path(builder.outdir) / builder.imagedir
    final = posixpath.join(*Path(os.path.relpath(target, images)).parts)
    # what fix_svg_relative_paths will take as the page directory and image directory
    sphinx_dir = Path(builder.outdir).joinpath(docname).resolve().parent
    sphinx_images = sphinx_dir / imgpath
    href = os.path.relpath(os.path.normpath(sphinx_images / final), sphinx_dir)
    return Path(href).as_posix()


_SVG_HREF = re.compile(rb'xlink:href="([^"]*)"')


def retarget_svg_links(page: Page, data: bytes) -> bytes:
    """What ``sphinx.ext.graphviz.fix_svg_relative_paths`` does to a drawing, at a
    fraction of its cost for a graph with a link per node: every relative
    ``xlink:href`` made relative to the image folder (the same arithmetic, done once per
    distinct link instead of once per element), dot's own text otherwise left as it is
    (no XML tree is built and written again)."""
    builder, docname, imgpath = page
    doc_dir = Path(builder.outdir).joinpath(docname).resolve().parent
    img_path = doc_dir / imgpath
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


def finish_svg(page: Page, path: Path, style: str | None) -> None:
    """dot's SVG, checked, with its links made relative to the image folder and, with
    *style*, the light / dark style inside (:mod:`render.svg_theme`); one read, one
    write, no XML tree."""
    data = path.read_bytes()
    root = svg_root_start(data)
    changed = retarget_svg_links(page, data)  # links lie after the root's start
    if style is not None:
        changed = add_theme_style(changed, root, style)
    if changed != data:
        path.write_bytes(changed)


class DotProblem(Exception):
    """dot failed, or took longer than ``qdq_dot_timeout``: the message is one line."""


def picture_name(page: Page, code: str, fmt: str, style: str | None) -> str:
    """Our own name for a picture: a hash of everything its bytes depend on (the DOT
    text, the style inside an SVG, the folder its relative links start from, the dot
    program and its arguments). The same drawing on two pages is one file."""
    config = page.builder.config
    base = posixpath.dirname(page.docname or "") if fmt == "svg" else ""
    key = "\0".join((code, style or "", base, str(config.graphviz_dot),
                     str(config.graphviz_dot_args), fmt))
    return f"{PREFIX}-{sha256(key.encode('utf-8')).hexdigest()[:40]}.{fmt}"


def picture_file(page: Page, code: str, fmt: str, style: str | None) -> tuple[str, Path]:
    """(URI from the page, file in the builder's image folder) of a picture."""
    builder = page.builder
    name = picture_name(page, code, fmt, style)
    return posixpath.join(page.imgpath, name), Path(builder.outdir,
                                                             builder.imagedir, name)


def run_dot_for(page: Page, code: str, fmt: str, style: str | None, *, target: Path,
                timeout: float | None) -> None:
    """Draw *code* into *target* (and its image map for a PNG): the one dot run of a
    picture, in the page writer or ahead of it (:func:`draw_ahead`); a
    :class:`DotRunError` when dot fails."""
    builder = page.builder
    target.parent.mkdir(parents=True, exist_ok=True)
    outputs = [(fmt, target)] + ([("cmapx", Path(f"{target}.map"))] if fmt == "png" else [])

    def finish(written: dict[Path, Path]) -> None:
        if fmt == "svg":
            finish_svg(page, written[target], style)

    draw_files(code, outputs, dot=builder.config.graphviz_dot,
               dot_args=builder.config.graphviz_dot_args, timeout=timeout,
               cwd=str(builder.srcdir), check=finish)


def draw_picture(page: Page, code: str, fmt: str, timeout: float | None,
                 style: str | None = None) -> tuple[str, Path]:
    """(URI from the page, file) of the picture in the builder's image folder, as
    ``sphinx.ext.graphviz`` keeps its own: dot is run (with a time limit) only when the
    file is not there yet (or was started ahead, :func:`draw_ahead`: then its result is
    awaited), into temporary files renamed into place, so two pages (or two writing
    processes) drawing the same graph never read a half-written file."""
    uri, target = picture_file(page, code, fmt, style)
    try:
        ahead.wait(target)
        if not target.is_file():
            run_dot_for(page, code, fmt, style, target=target, timeout=timeout)
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
        return Picture(*draw_picture(page_of(translator), code, fmt, limit, style), code)
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
            return Picture(*draw_picture(page_of(translator), note, fmt, timeout, style),
                           note)
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


def graph_palette(config: Any, node: qdq_graph | None) -> dict[str, str] | None:
    """The dark palette of an SVG (``qdq_graph_dark_palette``; None: no dark mode);
    a wrong entry is a located warning at *node* (none without one) and the default
    palette is used."""
    overrides = config.qdq_graph_dark_palette
    if overrides is None:
        return None
    try:
        return dark_palette(overrides)
    except PaletteError as exc:
        if node is not None:
            logger.warning("qdq_graph_dark_palette: %s; the default palette is used", exc,
                           location=node, type="qdq", subtype="palette")
        return dark_palette({})


class Drawing(NamedTuple):
    """What a builder draws for a graph on a page: the DOT with the page's links, the
    picture format, and the style inside an SVG (None otherwise)."""

    code: str
    fmt: str
    style: str | None


def html_drawing(page: Page, node: qdq_graph, known: dict[str, str],
                 palette: dict[str, str] | None) -> Drawing:
    """An HTML page's drawing: SVG (links made to work from the image folder, the light /
    dark style inside: part of the picture and of its name) or PNG with an image map."""
    fmt = "png" if page.builder.config.graphviz_output_format == "png" else "svg"
    urls = resolved_links(node)
    style = None
    if fmt == "svg":
        urls = {key: svg_href(page, url, known) for key, url in urls.items()}
        style = theme_style(palette)
    return Drawing(drawing_code(node, urls), fmt, style)


def html_visit_qdq_graph(self: HTML5Translator, node: qdq_graph) -> None:
    known = self.__dict__.setdefault("_qdq_svg_paths", {})
    drawing = html_drawing(page_of(self), node, known, graph_palette(self.builder.config, node))
    picture = render_checked(self, node, *drawing)
    fmt = drawing.fmt
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


def latex_drawing(_page: Page, node: qdq_graph, _known: dict[str, str],
                  _palette: dict[str, str] | None) -> Drawing:
    """LaTeX drops links inside included PDF images: drawn without them."""
    return Drawing(drawing_code(node, {}), "pdf", None)


def texinfo_drawing(_page: Page, node: qdq_graph, _known: dict[str, str],
                    _palette: dict[str, str] | None) -> Drawing:
    return Drawing(drawing_code(node, {}), "png", None)


def latex_visit_qdq_graph(self: LaTeXTranslator, node: qdq_graph) -> None:
    picture = render_checked(self, node, *latex_drawing(page_of(self), node, {}, None))
    include = r"\sphinxincludegraphics[]{" + picture.uri + "}"
    if not self.is_inline(node):
        pre, post = LATEX_ALIGN.get(node.get("align"), ("", ""))
        include = f"\n{pre}{include}{post}\n"
    self.body.append(include)
    raise nodes.SkipNode


def texinfo_visit_qdq_graph(self: TexinfoTranslator, node: qdq_graph) -> None:
    picture = render_checked(self, node, *texinfo_drawing(page_of(self), node, {}, None))
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


#: What each builder format draws for a graph (the visitors and :func:`draw_ahead`).
DRAWINGS = {"html": html_drawing, "latex": latex_drawing, "texinfo": texinfo_drawing}


# -- drawing ahead --------------------------------------------------------------------
class _Ahead:
    """Pictures whose ``dot`` runs were started before their page's writer reached them,
    in a few threads (each waits on its own ``dot`` process), by file; only those
    started in this process are awaited (a forked writer draws its own)."""

    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.pid = 0
        self.pending: dict[Path, Future[None]] = {}
        #: pictures started ahead since the process began (tests count them)
        self.started = 0

    def submit(self, jobs: int, target: Path, run: Callable[[], None]) -> None:
        if self.pool is None or self.pid != os.getpid():
            self.pool, self.pid, self.pending = (
                ThreadPoolExecutor(jobs, thread_name_prefix="qdq-dot"), os.getpid(), {})
        if target not in self.pending:
            self.pending[target] = self.pool.submit(run)
            self.started += 1

    def wait(self, target: Path) -> None:
        """If *target* was started ahead here, wait for it (its :class:`DotRunError`, if
        dot failed, is raised)."""
        future = self.pending.pop(target, None) if self.pid == os.getpid() else None
        if future is not None:
            future.result()

    def close(self) -> None:
        """Wait for the runs still going (none is left behind), forget the rest."""
        if self.pool is not None and self.pid == os.getpid():
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool, self.pending = None, {}


ahead = _Ahead()


def dot_jobs(config: Any) -> int:
    """``qdq_dot_jobs``: 0 is one per processor, at most :data:`MAX_AUTO_DOT_JOBS`."""
    jobs = int(config.qdq_dot_jobs)
    return jobs if jobs > 0 else min(MAX_AUTO_DOT_JOBS, os.cpu_count() or 1)


#: ``dot`` processes a build runs at once by default (``qdq_dot_jobs = 0``).
MAX_AUTO_DOT_JOBS = 4


def draw_ahead(app: Any, doctree: nodes.document, docname: str) -> None:
    """``doctree-resolved``: the page's links are known, so start ``dot`` for each of its
    graphs now, ``qdq_dot_jobs`` at a time, while the page is written; each visitor then
    takes its picture (or its failure, reported as before). Not in a parallel (``-j``)
    build, whose writers are forked processes, nor with ``qdq_dot_jobs = 1``."""
    drawing_of = DRAWINGS.get(app.builder.format)
    jobs = dot_jobs(app.config)
    if drawing_of is None or jobs <= 1 or app.parallel > 1:
        return
    graphs = list(doctree.findall(qdq_graph))
    if not graphs:
        return
    page = page_before_writing(app.builder, docname)
    known: dict[str, str] = {}
    palette = graph_palette(app.config, None)  # its warning comes from the visitor
    timeout = app.config.qdq_dot_timeout
    for node in graphs:
        drawing = drawing_of(page, node, known, palette)
        _, target = picture_file(page, *drawing)
        if not target.is_file():
            ahead.submit(jobs, target, functools.partial(run_dot_for, page, *drawing,
                                                         target=target, timeout=timeout))


def stop_drawing_ahead(_app: Any, _exception: BaseException | None) -> None:
    """``build-finished``: no ``dot`` started ahead outlives the build."""
    ahead.close()


VISITORS = {
    "html": (html_visit_qdq_graph, None),
    "latex": (latex_visit_qdq_graph, None),
    "texinfo": (texinfo_visit_qdq_graph, None),
    "text": (outline_visit_qdq_graph, None),
    "man": (outline_visit_qdq_graph, None),
}
