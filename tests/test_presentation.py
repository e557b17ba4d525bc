"""The extension at home in any project: five themes x light/dark x html/dirhtml/
singlehtml, and a PDF, of a small project with a ``conf.py`` of its own
(``tests/presentation_project.py``), seen in Debian's Chromium on ``file://``.

Each theme x builder is built once (module cache); the browser checks load every page
once per colour scheme, at 1,280 px and again at 400 px. Screenshots go to
``_build/screenshots/presentation/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import presentation_project
import pytest
from browser_helpers import chromium_browser
from sphinx_helpers import SVG_NS, XLINK, build

REPOSITORY = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPOSITORY / "_build" / "screenshots" / "presentation"
THEMES = ("alabaster", "sphinx_rtd_theme", "furo", "pydata_sphinx_theme", "sphinx_book_theme")
#: Themes with a dark mode of their own (furo: body[data-theme]; the others html[data-theme]).
DARK_THEMES = ("furo", "pydata_sphinx_theme", "sphinx_book_theme")
BUILDERS = ("html", "dirhtml", "singlehtml")

@dataclass(frozen=True)
class Site:
    """One theme x builder output: its folder and the warnings of its build."""

    outdir: Path
    warnings: str


_sites: dict[tuple[str, str], Site] = {}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return presentation_project.write_project(tmp_path_factory.mktemp("stock") / "src")


def site(project: Path, theme: str, builder: str) -> Site:
    """The project built with *theme* and *builder*, once per test module.

    The first call builds them all, in the order of THEMES, sharing one doctree folder:
    the pages are read once (the first build warns about what they contain; every build
    about what it writes). sphinx-book-theme, built in the same process before
    pydata-sphinx-theme, breaks the latter's templates ('translate' is undefined): a
    problem of the two themes, not of a project; it comes last."""
    if not _sites:
        shared = project.parent / "out" / "shared"
        for each_theme in THEMES:
            for each_builder in BUILDERS:
                result = build(project, each_builder, outdir=shared,
                               confoverrides={"html_theme": each_theme})
                outdir = project.parent / "out" / f"{each_theme}-{each_builder}"
                (shared / each_builder).rename(outdir)
                _sites[each_theme, each_builder] = Site(outdir, result.warnings)
    return _sites[theme, builder]


def html_dir(result: Site) -> Path:
    return result.outdir


def pages(result: Site, builder: str,
          docnames: tuple[str, ...] = presentation_project.DOCNAMES) -> list[Path]:
    """The project's own pages (not the index and search pages of the theme)."""
    out = html_dir(result)
    if builder == "singlehtml":
        return [out / "index.html"]
    if builder == "dirhtml":
        return [out / "index.html" if name == "index" else out / name / "index.html"
                for name in docnames]
    return [out / f"{name}.html" for name in docnames]


#: The pages the browser looks at: the graphs and the widest tables (the summary table
#: and the prose of the other pages are narrower than both).
BROWSER_PAGES = ("graphs", "tables")


# -- links, without a browser -------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        # pydata-sphinx-theme's page navigation in singlehtml links every object of a
        # domain (py, qdq, ...) to "#document-<page>#<id>": Sphinx's toctree, not ours
        if tag == "a" and values.get("href") and "nav-link" not in (values.get("class") or ""):
            self.hrefs.append(values["href"])
        if tag == "object" and values.get("data"):
            self.hrefs.append(values["data"])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _resolve(base: Path, href: str) -> tuple[Path, str] | None:
    """The file and fragment a link from *base* reaches on ``file://`` (None: not a
    local link)."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
        return None
    path = base if not parts.path else (base.parent / unquote(parts.path)).resolve()
    if parts.path.endswith("/") or path.is_dir():
        path = path / "index.html"  # what file:// and a static host serve for a folder
    return path, unquote(parts.fragment)


def _broken_links(base: Path, hrefs: list[str], ids_of) -> list[str]:
    broken = []
    for href in hrefs:
        resolved = _resolve(base, href)
        if resolved is None:
            continue
        path, fragment = resolved
        if not path.is_file():
            broken.append(f"{base.name}: {href} (no file {path})")
        elif fragment and fragment not in ("qdq-dark", "qdq-light") \
                and path.suffix == ".html" and fragment not in ids_of(path):
            broken.append(f"{base.name}: {href} (no id {fragment!r})")
    return broken


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("theme", THEMES)
def test_build_is_clean_and_every_link_resolves_on_file(project: Path, theme: str,
                                                        builder: str) -> None:
    """No stray warning; every link of the pages and of the graphs' SVGs reaches an
    existing file and id, as a browser on ``file://`` or a plain static host follows it
    (a link to a folder is its index.html)."""
    result = site(project, theme, builder)
    assert result.warnings == ""
    parsed: dict[Path, _Links] = {}

    def ids_of(path: Path) -> set[str]:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path].ids

    broken, graph_links = [], 0
    for page in pages(result, builder):
        broken += _broken_links(page, _parse(page).hrefs, ids_of)
    for svg in sorted((html_dir(result) / "_images").glob("qdq-*.svg")):
        root = ET.parse(svg).getroot()
        hrefs = [a.attrib[XLINK] for a in root.iterfind(".//svg:a", SVG_NS) if XLINK in a.attrib]
        graph_links += len([h for h in hrefs if not urlsplit(h).scheme])
        broken += _broken_links(svg, hrefs, ids_of)
    assert graph_links > 0
    assert broken == []


# -- the browser -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    with chromium_browser() as browser:
        yield browser


def _wait_for_graphs(page) -> None:
    """Every graph object has its SVG frame, shown in the mode the bridge gave it."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('object.qdq-graph')].every(o => "
        "o.dataset.qdqMode)")
    count = page.locator("object.qdq-graph").count()
    page.wait_for_function(
        f"() => {count} === 0 || [...document.querySelectorAll('object.qdq-graph')]"
        ".every(o => o.getBoundingClientRect().height > 20)")
    for _ in range(50):
        if len([f for f in page.frames if ".svg" in f.url]) >= count:
            break
        page.wait_for_timeout(100)


def _graph_fill(page, index: int) -> str:
    """The computed fill of the first operator box of graph *index* (in its own frame)."""
    graph = page.locator("object.qdq-graph").nth(index)
    name = graph.get_attribute("data").split("/")[-1]
    fragment = "#qdq-" + graph.get_attribute("data-qdq-mode")
    frame = next(f for f in page.frames
                 if urlsplit(f.url).path.endswith(name) and f.url.endswith(fragment))
    return frame.evaluate(
        "() => getComputedStyle(document.querySelector('g.node polygon[fill=\"#ffffff\"]'))"
        ".fill")


def _pixel(page, index: int) -> tuple[int, int, int]:
    """The colour of the graph's background: the top left corner of the object (no node
    there)."""
    from io import BytesIO

    from PIL import Image

    box = page.locator("object.qdq-graph").nth(index)
    box.scroll_into_view_if_needed()
    image = Image.open(BytesIO(box.screenshot())).convert("RGB")
    return image.getpixel((2, 2))  # the top left corner: inside a qdq-zoom viewport too


def _check_graphs(page, dark: bool) -> int:
    """Every graph of the page has the fragment and the palette of the page's mode (the
    bridge may still be replacing an object: wait for it); on a dark page, what shows
    behind the drawing is dark. Returns the number of graphs."""
    mode = "dark" if dark else "light"
    page.wait_for_function(
        "m => [...document.querySelectorAll('object.qdq-graph')]"
        ".every(o => o.dataset.qdqMode === m)", arg=mode)
    _wait_for_graphs(page)
    objects = page.locator("object.qdq-graph")
    for index in range(objects.count()):
        fill = "not loaded"
        for _ in range(50):  # the frame may not be at its new fragment yet
            try:
                fill = _graph_fill(page, index)
                break
            except (StopIteration, Exception):  # noqa: BLE001 (its frame is not there yet)
                page.wait_for_timeout(100)
        assert (fill != "rgb(255, 255, 255)") == dark, (mode, fill)
        if index == 0 and dark:  # what the reader sees behind the drawing
            red, green, blue = _pixel(page, index)
            assert red + green + blue < 3 * 128, (red, green, blue)
    return objects.count()


@pytest.mark.browser
@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("theme", THEMES)
def test_pages_fit_and_graphs_follow_the_theme(project: Path, chromium, theme: str,
                                               builder: str) -> None:
    """No page scrolls sideways at 1,280 px or at 400 px (wide tables scroll in their
    box); the graph follows the page, in the light and then (the system switching to a
    dark colour scheme) the dark mode: on a dark page its background is not white and
    its boxes take the dark palette; themes without a dark mode keep the light one."""
    result = site(project, theme, builder)
    context = chromium.new_context(viewport={"width": 1280, "height": 900},
                                   color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(15_000)
    graphs_seen = 0
    try:
        for path in pages(result, builder, BROWSER_PAGES):
            page.emulate_media(color_scheme="light")
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(path.as_uri(), wait_until="load")
            _wait_for_graphs(page)
            for width in (1280, 400):
                page.set_viewport_size({"width": width, "height": 900})
                page.wait_for_timeout(50)
                overflow = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
            page.set_viewport_size({"width": 1280, "height": 900})
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                graphs_seen += _check_graphs(page, scheme == "dark" and theme in DARK_THEMES)
                if "tables" in path.as_posix() and builder == "html":
                    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    page.locator("table.qdq-table").first.scroll_into_view_if_needed()
                    page.screenshot(path=str(SCREENSHOTS / f"{theme}-{builder}-{scheme}.png"))
        assert graphs_seen >= 4
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.parametrize("theme", ("furo", "pydata_sphinx_theme"))
def test_switching_the_theme_switches_the_graph(project: Path, chromium, theme: str) -> None:
    """The theme's own switch (furo: body[data-theme]; pydata: html[data-theme]) reaches
    the SVG, both ways, on file://."""
    result = site(project, theme, "html")
    context = chromium.new_context(viewport={"width": 1280, "height": 900},
                                   color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(15_000)
    element = "document.body" if theme == "furo" else "document.documentElement"
    try:
        page.goto((html_dir(result) / "graphs.html").as_uri(), wait_until="load")
        _wait_for_graphs(page)
        assert _graph_fill(page, 0) == "rgb(255, 255, 255)"
        page.evaluate("() => { document.querySelector('object.qdq-graph').qdqMark = 1; }")
        for mode in ("dark", "light"):
            page.evaluate(f"() => {element}.setAttribute('data-theme', '{mode}')")
            page.wait_for_function(
                f"() => document.querySelector('object.qdq-graph').dataset.qdqMode "
                f"=== '{mode}'")
            for _ in range(50):  # the frame moves to its new fragment
                try:
                    fill = _graph_fill(page, 0)
                    if (fill != "rgb(255, 255, 255)") == (mode == "dark"):
                        break
                except Exception:  # noqa: BLE001 (the new frame is not there yet)
                    fill = "not loaded"
                page.wait_for_timeout(100)
            assert (fill != "rgb(255, 255, 255)") == (mode == "dark"), (mode, fill)
        # the same element all along (qdq-zoom.js keeps its hold on it)
        assert page.evaluate("() => document.querySelector('object.qdq-graph').qdqMark") == 1
        assert page.evaluate("() => !!document.querySelector('div.qdq-zoom object.qdq-graph')")
    finally:
        context.close()


# -- what the HTML and the SVG carry ------------------------------------------------------------
def test_assets_tables_and_svg_style(project: Path) -> None:
    result = site(project, "alabaster", "html")
    out = html_dir(result)
    assert (out / "_static" / "qdq.css").is_file()
    assert (out / "_static" / "qdq-theme.js").is_file()
    tables = (out / "tables.html").read_text(encoding="utf-8")
    assert '_static/qdq.css' in tables and '_static/qdq-theme.js' in tables
    # every extension table is in its scroll box, without LaTeX's column percentages
    assert tables.count('class="qdq-table-box') == 3
    assert "<colgroup>" not in tables
    assert ('conv1.</span><wbr><span class="pre">weight_</span><wbr>'
            '<span class="pre">Dequantize</span><wbr><span class="pre">Linear') in tables
    svg = next((out / "_images").glob("qdq-*.svg")).read_text(encoding="utf-8")
    assert "fill: transparent" in svg
    assert "#qdq-dark:target ~ g" in svg and "prefers-color-scheme: dark" in svg
    assert 'id="qdq-dark"' in svg and 'id="qdq-light"' in svg


def test_roles_resolve_by_name_and_by_file_stem(project: Path) -> None:
    result = site(project, "alabaster", "html")
    refs = (html_dir(result) / "refs.html").read_text(encoding="utf-8")
    links = re.findall(r'href="tables\.html#(qdq-[a-z]+-[^"]+)"', refs)
    assert len(links) == 4  # small:input_scale, tiny:input_scale, the node, conv1
    assert links[0] == links[1]


def test_general_index_has_one_entry_per_model_table_and_documented_op(project: Path) -> None:
    result = site(project, "alabaster", "html")
    genindex = (html_dir(result) / "genindex.html").read_text(encoding="utf-8")
    assert "small (quantized model)" in genindex
    assert genindex.count("scales and zero points") == 1  # the :no-index: table adds none
    assert "requantization" in genindex
    assert "QuantizeLinear (ONNX operator)" in genindex
    assert "Conv (ONNX operator)" not in genindex  # :no-index-entry:
    assert "input_scale" not in genindex


@pytest.mark.parametrize(("setting", "option", "expected"), [
    ("rows", "", ["input_scale (scale)", "conv1 (Conv requantization)"]),
    ("none", "", []),
    ("rows", "   :no-index-entry:\n", []),
])
def test_index_entries_are_configurable(tmp_path: Path, setting: str, option: str,
                                        expected: list[str]) -> None:
    from sphinx_helpers import make_project

    page = ("Index\n=====\n\n.. qdq-params:: tiny\n   :layout: initializer\n" + option +
            "\n.. qdq-requant:: tiny\n" + option + "\n:qdq:param:`tiny:input_scale`\n")
    src = make_project(tmp_path / "src", root=None, pages={"index.rst": page},
                       conf=f"qdq_index_entries = {setting!r}")
    result = build(src, "html")
    assert result.warnings == ""
    genindex = (result.outdir / "genindex.html").read_text(encoding="utf-8")
    for entry in expected:
        assert entry in genindex
    if not expected:
        assert "tiny (quantized model)" not in genindex and "input_scale" not in genindex
    # the targets stay: the role resolves whatever the index says
    assert 'href="#qdq-param-tiny-input-scale' in (result.outdir / "index.html").read_text()


def test_ops_option_is_renamed_with_a_warning(tmp_path: Path) -> None:
    from sphinx_helpers import make_project

    page = ("Ops\n===\n\n.. qdq-params:: tiny\n   :ops: QuantizeLinear\n\n"
            ".. qdq-requant:: tiny\n   :ops: Conv\n   :no-index:\n")
    src = make_project(tmp_path / "src", root=None, pages={"index.rst": page})
    result = build(src, "html")
    warnings = result.warnings.splitlines()
    assert len(warnings) == 2
    assert ":ops: is deprecated, write :qdq-ops:" in warnings[0]
    assert ":ops: is deprecated, write :compute-ops:" in warnings[1]
    assert all(w.endswith("[qdq.deprecated]") and "index.rst:" in w for w in warnings)
    html = (result.outdir / "index.html").read_text()
    assert 'input_</span><wbr><span class="pre">Quantize</span><wbr>' in html
    assert 'bias_</span><wbr><span class="pre">Dequantize</span><wbr>' not in html
    assert ">Gemm<" not in html  # :ops: Conv


# -- PDF ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pdf(project: Path) -> Path:
    """The project through the latex builder and latexmk (no conf.py of ours)."""
    if not shutil.which("latexmk"):
        pytest.skip("latexmk is not installed (make test installs it)")
    result = build(project, "latex", outdir=project.parent / "out" / "latex")
    assert result.warnings == ""
    out = result.outdir
    done = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error",
                           "stock.tex"], cwd=out, capture_output=True, text=True,
                          timeout=300, check=False, errors="replace")
    assert done.returncode == 0, done.stdout[-3000:]
    return out


def test_pdf_has_every_target_and_no_undefined_reference(pdf: Path) -> None:
    log = (pdf / "stock.log").read_text(encoding="latin-1")
    undefined = re.findall(r"(?:Reference|Hyper reference) `[^']*' on page \d+ undefined", log)
    assert undefined == []
    assert "There were undefined references" not in log
    tex = (pdf / "stock.tex").read_text(encoding="utf-8")
    assert r"\usepackage{sphinxqdq}" in tex and (pdf / "sphinxqdq.sty").is_file()
    # every row target of a table is a label, and the links point at them
    labels = set(re.findall(r"\\label\{\\detokenize\{([^}]*)\}\}", tex))
    rows = set(re.findall(r"\\label\{\\detokenize\{(tables:qdq-(?:node|param)-[^}]*)\}\}", tex))
    assert len(rows) > 20
    links = set(re.findall(r"\\hyperref\[\\detokenize\{([^}]*)\}\]", tex))
    assert {link for link in links if ":qdq-" in link} <= labels
    assert r"\QDQ{" in tex and r"\begin{sphinxuseclass}{qdq-table-box}" in tex
    assert "Overfull \\hbox" not in re.sub(r"(?s)^.*?\\begin\{document\}", "", log) or \
        _overfull_widths(log) == []


def _overfull_widths(log: str) -> list[float]:
    """Overfull boxes wider than 5 pt (a table or a graph past the margin)."""
    return [float(value) for value in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)
            if float(value) > 5]


def test_another_project_links_to_the_tables_with_intersphinx(project: Path,
                                                               tmp_path: Path) -> None:
    """objects.inv lists the qdq objects: intersphinx links another project to them."""
    from sphinx_helpers import make_project

    docs = html_dir(site(project, "alabaster", "html"))
    page = ("Other\n=====\n\nThe scale :qdq:param:`stock:small:input_scale`, the node "
            ":qdq:node:`stock:small:input_QuantizeLinear` and the operator "
            ":external+stock:qdq:op:`QuantizeLinear`.\n")
    src = make_project(tmp_path / "other", root=None, pages={"index.rst": page},
                       conf="extensions.append('sphinx.ext.intersphinx')\n"
                            f"intersphinx_mapping = {{'stock': ({docs.as_uri() + '/'!r}, "
                            f"{str(docs / 'objects.inv')!r})}}")
    result = build(src, "html")
    assert result.warnings == ""
    html = (result.outdir / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="(file://[^"]+)"', html)
    assert len(links) == 3
    for link in links:
        target, fragment = unquote(urlsplit(link).path), urlsplit(link).fragment
        assert fragment in _parse(Path(target)).ids


@pytest.mark.parametrize(("palette", "warning", "dark_rules"), [
    ({"#ffffff": "#101010", "text": "#fafafa"}, "", "#101010"),
    ({"#ffffff": "red;} svg{display:none"}, "is not a colour", "#23262d"),
    (None, "", None),
])
def test_dark_palette_is_configurable(tmp_path: Path, palette, warning: str,
                                      dark_rules: str | None) -> None:
    """``qdq_graph_dark_palette`` changes the dark colours; a value that is not a colour
    never reaches the SVG's CSS (a located warning, the built-in palette); None: no dark
    mode, the background stays transparent."""
    from sphinx_helpers import make_project

    src = make_project(tmp_path / "src", root=None,
                       pages={"index.rst": "Graph\n=====\n\n.. qdq-graph:: tiny\n"},
                       conf=f"qdq_graph_dark_palette = {palette!r}")
    result = build(src, "html")
    if warning:
        assert warning in result.warnings and "index.rst:4" in result.warnings
        assert result.warnings.rstrip().endswith("[qdq.palette]")
    else:
        assert result.warnings == ""
    [svg] = (result.outdir / "_images").glob("qdq-*.svg")
    style = ET.parse(svg).getroot().find("svg:style", SVG_NS).text
    assert "fill: transparent" in style
    assert "display:none" not in style
    if dark_rules is None:
        assert "qdq-dark" not in style and "prefers-color-scheme" not in style
    else:
        assert '#qdq-dark:target ~ g polygon[fill="#ffffff"]' in style
        assert f"fill: {dark_rules}" in style


def test_break_points_of_names() -> None:
    """Names break after / _ . : and between CamelCase words."""
    from sphinxext_qdq.sphinx.presentation import breakable_pieces

    assert breakable_pieces("model/conv2d_1/BiasAdd:0") == [
        "model/", "conv2d_", "1/", "Bias", "Add:", "0"]
    assert breakable_pieces("a__b") == ["a__", "b"]
    assert breakable_pieces("QLinearConv") == ["QLinear", "Conv"]


def test_a_name_is_one_node_however_many_break_points() -> None:
    """A table's name cell is one literal holding one Text: the break points are put in
    by the writers (a 700-node model's parameter page had 12,867 break-point nodes,
    walked by every read transform)."""
    from docutils import nodes

    from sphinxext_qdq.sphinx.tables import code

    cell = code("stage1.block0.conv1/weight_DequantizeLinear:0")
    assert isinstance(cell, nodes.literal)
    assert [type(child) for child in cell.children] == [nodes.Text]
    assert cell.astext() == "stage1.block0.conv1/weight_DequantizeLinear:0"
