"""``qdq-graph`` in real Sphinx builds: nodes, links, builders, warnings, rebuilds."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import ClassVar
from xml.etree import ElementTree

import onnx
import pytest
import sphinx.ext.graphviz
from docutils import nodes
from sphinx_helpers import build, follow, has_id, make_project, svg_links, svg_targets

import sphinxext_qdq.sphinx.directives
from sphinxext_qdq.analysis import loader
from sphinxext_qdq.sphinx.nodes import qdq_graph


@pytest.fixture(scope="module")
def html_build(tmp_path_factory) -> object:
    src = make_project(tmp_path_factory.mktemp("graph") / "src")
    return build(src, "html")


def graph_svgs(outdir: Path) -> list[Path]:
    return sorted((outdir / "_images").glob("qdq-*.svg"))


def model_qdq_counts(path: Path) -> tuple[int, int]:
    graph = onnx.load(str(path)).graph
    return (sum(n.op_type == "QuantizeLinear" for n in graph.node),
            sum(n.op_type == "DequantizeLinear" for n in graph.node))


def test_build_is_warning_free_and_draws_svgs(html_build):
    assert html_build.warnings == ""
    svgs = graph_svgs(html_build.outdir)
    assert len(svgs) == 1  # reST and MyST pages draw the same picture: one file
    text = svgs[0].read_text()
    for dtype in ("FP32", "UINT8", "INT8", "INT32"):
        assert dtype in text
    # dot's own text, the style put in as text: no namespace prefixes of a rewritten tree
    assert "ns0:" not in text and text.count("<style") == 1
    for page in ("graph_rst", "graph_md"):
        html = (html_build.outdir / "sub" / f"{page}.html").read_text()
        assert f'data="../_images/{svgs[0].name}"' in html
        assert "The tiny model" in html


def test_rst_and_myst_give_the_same_graph_node(html_build):
    env = html_build.app.env
    rst = next(env.get_doctree("sub/graph_rst").findall(qdq_graph))
    md = next(env.get_doctree("sub/graph_md").findall(qdq_graph))
    for key in ("qdq_model", "qdq_path", "qdq_options", "alt", "code"):
        assert rst[key] == md[key]
    assert [c.astext() for c in rst.children] == [c.astext() for c in md.children]
    assert rst["qdq_model"] == "tiny"  # the path matches the qdq_models entry


def test_alt_is_a_sentence_not_dot(html_build):
    html = (html_build.outdir / "sub" / "graph_rst.html").read_text()
    alt = html.split('<p class="warning">')[1].split("</p>")[0]
    assert "digraph" not in alt and "->" not in alt
    proto = onnx.load(str(html_build.app.srcdir / "models" / "tiny.onnx"))
    ops = [node.op_type for node in proto.graph.node]
    qdq = ops.count("QuantizeLinear") + ops.count("DequantizeLinear")
    assert alt.startswith(f"QDQ model tiny with {ops.count('Conv')} Conv, "), alt
    assert f" and {qdq} Q/DQ nodes: " in alt, alt


def check_svg_links(outdir: Path) -> list[str]:
    """Follow every link of every graph SVG to an existing page and anchor."""
    links = []
    for svg in graph_svgs(outdir):
        for href in svg_links(svg):
            links.append(href)
            if href.startswith("https://"):
                continue
            target, fragment = follow(svg, href)
            assert target.is_file(), f"{href} from {svg.name} -> missing {target}"
            assert fragment and has_id(target, fragment), f"{href}: no id {fragment!r}"
        assert set(svg_targets(svg)) == {"_top"}
    return links


@pytest.mark.parametrize("builder", ["html", "dirhtml", "singlehtml"])
def test_every_graph_link_reaches_an_existing_target(tmp_path, builder):
    result = build(make_project(tmp_path / "src"), builder)
    assert result.warnings == ""
    links = check_svg_links(result.outdir)
    # the Q/DQ nodes of the model link into the documentation, undocumented ops to onnx.ai
    assert any("onnx__Conv.html" in href for href in links)
    assert sum(not href.startswith("https://") for href in links) >= 1


def test_qdq_nodes_link_to_the_operator_documentation(html_build):
    svg = graph_svgs(html_build.outdir)[0]
    internal = [href for href in svg_links(svg) if not href.startswith("https://")]
    anchors = {follow(svg, href)[1] for href in internal}
    ops_html = (html_build.outdir / "ops.html").read_text()
    documented = {a for a in anchors if has_id(html_build.outdir / "ops.html", a)}
    assert documented, f"no graph link reaches ops.html: {sorted(anchors)}"
    assert all("quantizelinear" in a for a in documented)
    assert "QuantizeLinear" in ops_html


def test_fallback_url_can_be_disabled(tmp_path):
    result = build(make_project(tmp_path / "src"), "html",
                   confoverrides={"qdq_op_fallback_url": None})
    assert result.warnings == ""
    links = [h for svg in graph_svgs(result.outdir) for h in svg_links(svg)]
    assert links and not any(h.startswith("https://") for h in links)


def test_latex_includes_the_graph_as_pdf(tmp_path):
    result = build(make_project(tmp_path / "src"), "latex")
    assert result.warnings == ""
    tex = next(result.outdir.glob("*.tex")).read_text()
    included = [line for line in tex.splitlines() if "sphinxincludegraphics" in line and "qdq-" in line]
    assert included
    pdfs = list(result.outdir.glob("qdq-*.pdf"))
    assert pdfs and pdfs[0].read_bytes().startswith(b"%PDF")


def test_text_builder_prints_an_outline(tmp_path):
    result = build(make_project(tmp_path / "src"), "text")
    assert result.warnings == ""
    text = (result.outdir / "sub" / "graph_rst.txt").read_text()
    q, dq = model_qdq_counts(tmp_path / "src" / "models" / "tiny.onnx")
    assert f"{q} QuantizeLinear, {dq} DequantizeLinear" in text
    for heading in ("Inputs:", "Quantized groups:", "Outputs:"):
        assert heading in text
    assert "Conv conv1" in text and "input: FP32 [1, 3, 8, 8]" in text


def test_man_builder_prints_an_outline(tmp_path):
    result = build(make_project(tmp_path / "src"), "man")
    assert result.warnings == ""
    man = next(result.outdir.rglob("*.1")).read_text()
    assert "Quantized groups:" in man and "Conv conv1" in man


PAGE_HEADER = "Page\n====\n\n"


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]


def test_missing_model_is_one_located_warning_and_the_page_builds(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE_HEADER + "Before.\n\n.. qdq-graph:: missing.onnx\n\nAfter.\n"})
    result = build(src, "html")
    lines = warning_lines(result.warnings)
    assert len(lines) == 1
    assert "index.rst:6: WARNING:" in lines[0]
    assert "missing.onnx" in lines[0] and lines[0].endswith("[qdq.model]")
    html = (result.outdir / "index.html").read_text()
    assert "Before." in html and "After." in html


def test_bad_option_is_a_located_error(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE_HEADER + ".. qdq-graph:: tiny\n   :mode: sideways\n"})
    warnings = build(src, "html").warnings
    lines = warning_lines(warnings)
    assert len(lines) == 1
    assert "index.rst:4: ERROR:" in lines[0] and "qdq-graph" in lines[0]
    assert 'invalid option value: (option: "mode"; value: \'sideways\')' in warnings


#: Options naming what the model does not hold: one qdq.option warning each (lines 4, 8,
#: 11), nothing drawn; the page goes on (the drawing of line 14).
OPTIONS_PAGE = PAGE_HEADER + """.. qdq-graph:: tiny
   :from: conv_1
   :to: add

.. qdq-graph:: tiny
   :to: ad

.. qdq-graph:: tiny
   :scope: no/such/scope

.. qdq-graph:: tiny
   :mode: full

After the drawings.
"""


@pytest.fixture(scope="module")
def options_build(tmp_path_factory):
    src = make_project(tmp_path_factory.mktemp("options") / "src", root=None,
                       pages={"index.rst": OPTIONS_PAGE})
    return build(src, "html")


@pytest.mark.parametrize(("line", "message"), [
    (4, "qdq-graph: :from: no node or tensor named 'conv_1' in the model; did you mean 'conv1'"),
    (8, "qdq-graph: :to: no node or tensor named 'ad' in the model; did you mean 'add'"),
    (11, "qdq-graph: :scope: no node lies in scope 'no/such/scope' (grouping: "),
])
def test_an_option_naming_nothing_is_one_located_option_warning(options_build, line, message):
    matches = [w for w in warning_lines(options_build.warnings) if f"index.rst:{line}:" in w]
    assert len(matches) == 1, options_build.warnings
    assert "WARNING:" in matches[0] and message in matches[0], matches[0]
    assert matches[0].endswith("[qdq.option]")


def test_option_problems_draw_nothing_and_the_page_goes_on(options_build):
    assert len(warning_lines(options_build.warnings)) == 3
    assert len(list(options_build.app.env.get_doctree("index").findall(qdq_graph))) == 1
    assert len(graph_svgs(options_build.outdir)) == 1
    assert "After the drawings." in (options_build.outdir / "index.html").read_text()


def test_from_to_draws_only_the_region(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE_HEADER + ".. qdq-graph:: tiny\n   :mode: full\n   :from: conv1\n"
                     "   :to: add\n"})
    result = build(src, "html")
    assert result.warnings == ""
    text = graph_svgs(result.outdir)[0].read_text()
    assert "conv1" in text and "conv2" in text and ">add<" in text
    assert "GlobalAveragePool" not in text and "Gemm" not in text
    # the region's kernels are drawn with their weight and bias dequantizers
    for constant in ("conv1.weight_DequantizeLinear", "conv1.bias_DequantizeLinear",
                     "conv2.weight_DequantizeLinear"):
        assert f">{constant}<" in text


@pytest.mark.parametrize("rankdir", ["LR", "lr", "TB"])
def test_rankdir_option_accepts_either_case(tmp_path, rankdir):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE_HEADER + f".. qdq-graph:: tiny\n   :rankdir: {rankdir}\n"})
    result = build(src, "html")
    assert result.warnings == ""
    graph = next(result.app.env.get_doctree("index").findall(qdq_graph))
    assert graph["qdq_options"].rankdir == rankdir.upper()


def pair_nodes_and_edges(svg: Path) -> tuple[int, int]:
    """(Q→DQ pair nodes, edges carrying a pair) of a drawn SVG."""
    root = ElementTree.parse(svg).getroot()
    groups = list(root.iter("{http://www.w3.org/2000/svg}g"))

    def first_text(group: ElementTree.Element) -> str:
        text = next(group.iter("{http://www.w3.org/2000/svg}text"), None)
        return "" if text is None or text.text is None else text.text

    nodes = sum(g.get("class") == "node" and first_text(g).startswith("Q→DQ") for g in groups)
    edges = sum(g.get("class") == "edge" and first_text(g).startswith("Q→DQ") for g in groups)
    return nodes, edges


@pytest.mark.parametrize(("option", "conf", "expected"), [
    ("", "", "edges"),  # the default: pairs on the edges they quantize
    ("   :pairs: nodes\n", "", "nodes"),
    ("", 'qdq_graph_pairs = "nodes"\n', "nodes"),
    ("   :pairs: edges\n", 'qdq_graph_pairs = "nodes"\n', "edges"),  # the option wins
])
def test_pairs_option_and_config_choose_how_pairs_are_drawn(tmp_path, option, conf, expected):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE_HEADER + ".. qdq-graph:: tiny\n" + option})
    with (src / "conf.py").open("a") as handle:
        handle.write(conf)
    result = build(src, "html")
    assert result.warnings == ""
    graph = next(result.app.env.get_doctree("index").findall(qdq_graph))
    assert graph["qdq_options"].pairs == expected
    model = onnx.load(str(src / "models" / "tiny.onnx"))
    weights = {t.name for t in model.graph.initializer}
    activation_qs = sum(n.op_type == "QuantizeLinear" and n.input[0] not in weights
                        for n in model.graph.node)
    nodes, edges = pair_nodes_and_edges(graph_svgs(result.outdir)[0])
    if expected == "edges":
        assert nodes == 0 and edges >= activation_qs  # a pair feeding two nodes: two edges
    else:
        assert nodes == activation_qs and edges == 0


def test_bad_pairs_config_is_a_located_option_warning(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE_HEADER + ".. qdq-graph:: tiny\n\nAfter.\n"})
    result = build(src, "html", confoverrides={"qdq_graph_pairs": "sideways"})
    lines = warning_lines(result.warnings)
    assert len(lines) == 1
    assert "index.rst:4: WARNING: qdq-graph: pairs must be one of edges, nodes, not " \
           "'sideways' (the default of an option, from conf.py: " in lines[0]
    assert lines[0].endswith("[qdq.option]")
    assert "After." in (result.outdir / "index.html").read_text()
    assert not list(result.app.env.get_doctree("index").findall(qdq_graph))


class Counters:
    """Counts model loads (asked by directives and node visitors) and dot processes started."""

    def __init__(self, monkeypatch):
        self.loads = 0
        self.dot_runs = 0
        real_load, real_run = sphinxext_qdq.sphinx.backend.load_qdq_model, subprocess.run

        def counting_load(*args, **kwargs):
            self.loads += 1
            return real_load(*args, **kwargs)

        def counting_run(args, *rest, **kwargs):
            if args and str(args[0]).endswith("dot"):
                self.dot_runs += 1
            return real_run(args, *rest, **kwargs)

        monkeypatch.setattr(sphinxext_qdq.sphinx.backend, "load_qdq_model", counting_load)
        monkeypatch.setattr(sphinx.ext.graphviz.subprocess, "run", counting_run)


def read_docs(app) -> list[str]:
    docs = []
    app.connect("source-read", lambda _app, docname, _source: docs.append(docname))
    return docs


def test_rebuilds_touch_only_what_depends_on_the_model(tmp_path, monkeypatch):
    src = make_project(tmp_path / "src")
    out = tmp_path / "out"
    build(src, "html", outdir=out)
    counters = Counters(monkeypatch)
    loader.clear_cache()
    parses = loader.parse_count()

    # an unrelated page changes: no model is loaded or parsed, dot never runs
    (src / "ops.rst").write_text((src / "ops.rst").read_text() + "\nMore text.\n")
    docs: list[str] = []
    build(src, "html", outdir=out, on_app=lambda app: docs.extend(read_docs(app)) or None)
    assert counters.loads == 0 and counters.dot_runs == 0
    assert loader.parse_count() == parses

    # nothing changes: nothing is read, loaded or drawn
    build(src, "html", outdir=out)
    assert counters.loads == 0 and counters.dot_runs == 0

    # the model changes: exactly the pages using it are read again
    from qdq_factories import save_tiny_resnet_qdq
    save_tiny_resnet_qdq(src / "models" / "tiny.onnx", per_channel=True)
    reread: list[str] = []

    def hook(app):
        app.connect("source-read", lambda _a, docname, _s: reread.append(docname))

    build(src, "html", outdir=out, on_app=hook)
    assert sorted(reread) == ["sub/graph_md", "sub/graph_rst", "sub/params"]
    assert loader.parse_count() == parses + 1  # three pages, one parse
    assert counters.dot_runs == 1  # the new picture, drawn once for both pages


def html_files(outdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob("*.html"))}


def test_parallel_build_gives_the_same_html(tmp_path):
    serial = build(make_project(tmp_path / "a"), "html", outdir=tmp_path / "a-out")
    parallel = build(make_project(tmp_path / "b"), "html", outdir=tmp_path / "b-out",
                     parallel=4)
    assert serial.warnings == parallel.warnings == ""
    assert html_files(serial.outdir) == html_files(parallel.outdir)
    assert [p.name for p in graph_svgs(serial.outdir)] == [p.name for p in graph_svgs(parallel.outdir)]


def test_edge_labels_leaving_qdq_nodes_link_to_their_parameter_rows(html_build):
    svg = graph_svgs(html_build.outdir)[0]
    params = html_build.outdir / "sub" / "params.html"
    rows = [follow(svg, h) for h in svg_links(svg) if "params.html" in h]
    model = onnx.load(str(html_build.app.srcdir / "models" / "tiny.onnx"))
    quantizers = [n.name for n in model.graph.node if n.op_type == "QuantizeLinear"]
    # compact mode: one pair per QuantizeLinear, each edge label leads to the Q's row
    assert len({fragment for _, fragment in rows}) == len(quantizers)
    for target, fragment in rows:
        assert target == params.resolve() and has_id(params, fragment)


def test_texinfo_includes_the_graph_as_png(tmp_path):
    result = build(make_project(tmp_path / "src"), "texinfo")
    assert result.warnings == ""
    texi = next(result.outdir.glob("*.texi")).read_text()
    images = [line for line in texi.splitlines() if line.startswith("@image{qdq-")]
    assert len(images) == 2  # the reST and the MyST page
    name = images[0].split("{")[1].split(",")[0]
    assert (result.outdir / f"{name}.png").read_bytes().startswith(b"\x89PNG")


def test_svg_links_are_retargeted_as_sphinx_does_and_bad_xml_is_refused(tmp_path):
    """``finish_svg`` (a regular expression over dot's text) gives every link the value
    ``sphinx.ext.graphviz.fix_svg_relative_paths`` (an XML tree) gives it."""
    from types import SimpleNamespace

    from sphinx.ext.graphviz import fix_svg_relative_paths

    from sphinxext_qdq.render.graphviz import DotRunError
    from sphinxext_qdq.sphinx.nodes import finish_svg

    hrefs = ["../params.html#qdq-param-a&amp;b", "#local", "../../up.html",
             "https://onnx.ai/x.html#y", "sub%20dir/page.html?q=1&amp;r=2#f",
             "&#39;quoted&#39;.html"]
    svg = ('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
           'xmlns:xlink="http://www.w3.org/1999/xlink">'
           + "".join(f'<g><a xlink:href="{h}" xlink:title="t"><text>n</text></a></g>'
                     for h in hrefs) + "</svg>\n")
    from sphinxext_qdq.sphinx.nodes import Page

    env = SimpleNamespace(path2doc=lambda source: "sub/graph")
    translator = SimpleNamespace(
        document={"source": str(tmp_path / "src" / "sub" / "graph.rst")},
        builder=SimpleNamespace(env=env, outdir=tmp_path / "out", imgpath="../_images"))
    page = Page(translator.builder, "sub/graph", "../_images")
    ours, sphinx_way = tmp_path / "ours.svg", tmp_path / "sphinx.svg"
    ours.write_text(svg, encoding="utf-8")
    sphinx_way.write_text(svg, encoding="utf-8")
    finish_svg(page, ours, None)
    fix_svg_relative_paths(translator, sphinx_way)

    def links(path):
        return [a.get("{http://www.w3.org/1999/xlink}href") for a in ElementTree.parse(path).getroot().iter(
            "{http://www.w3.org/2000/svg}a")]

    assert links(ours) == links(sphinx_way)
    assert links(ours)[0] == "../params.html#qdq-param-a&b"
    broken = tmp_path / "broken.svg"
    broken.write_text(svg[:-10], encoding="utf-8")
    with pytest.raises(DotRunError, match="not valid XML"):
        finish_svg(page, broken, None)


def test_link_requests_join_the_graph_after_the_read_transforms(tmp_path):
    """A graph's ``pending_xref`` children (one per link: most of a large page's nodes)
    are added at ``doctree-read`` (emitted by a transform of priority 880), so the read
    transforms before it do not walk them; the page still carries every one of them when
    Sphinx resolves references."""
    from docutils.transforms import Transform
    from sphinx import addnodes

    seen_by_transforms: list[int] = []

    class CountLinkRequests(Transform):
        default_priority = 879  # just before Sphinx's DoctreeReadEvent (880)

        def apply(self) -> None:
            seen_by_transforms.append(sum(
                1 for graph in self.document.findall(qdq_graph)
                for _ in graph.findall(addnodes.pending_xref)))

    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": "Index\n=====\n\n.. qdq-graph:: tiny\n"})
    result = build(src, "html", on_app=lambda app: app.add_transform(CountLinkRequests))
    doctree = result.app.env.get_doctree("index")
    graph = next(iter(doctree.findall(qdq_graph)))
    stored = list(graph.findall(addnodes.pending_xref))
    assert seen_by_transforms == [0]
    assert len(stored) > 5 and "qdq_link_keys" not in graph
    assert all(len(ref.children) == 1 and ref.astext() == "" for ref in stored)


def test_every_link_the_drawing_offers_is_requested_and_resolved(html_build):
    """Each link key of the drawing's placeholders (its slots' chains, written by the
    directive) has its ``pending_xref`` in the stored page, and after Sphinx resolved the
    page every placeholder has a link (the test project documents every Q/DQ node and op
    type; a compute node's own key falls back to its op's): none is lost on the way."""
    from sphinx import addnodes

    env = html_build.app.env
    model = loader.load_qdq_model(Path(html_build.app.srcdir) / "models" / "tiny.onnx")
    for docname in ("sub/graph_rst", "sub/graph_md"):
        stored = env.get_doctree(docname)
        graph = next(iter(stored.findall(qdq_graph)))
        chains = graph["qdq_link_chains"]
        offered = {key for chain in chains for key in chain if not key.startswith("scope:")}
        requested = [ref["qdq_link_key"] for ref in graph.findall(addnodes.pending_xref)]
        assert len(requested) == len(set(requested))
        assert set(requested) == offered
        assert any(key.startswith("node:") for key in offered)
        resolved = env.get_and_resolve_doctree(docname, html_build.app.builder)
        graph = next(iter(resolved.findall(qdq_graph)))
        linked = {ref["qdq_link_key"] for ref in graph.findall(nodes.reference)
                  if ref.get("qdq_link_key")}
        assert linked <= offered
        assert all(set(chain) & linked for chain in chains)
        documented = {f"node:{qdq.key}" for qdq in model.qdq_nodes}  # sub/params.rst
        assert offered & documented and offered & documented <= linked


def test_link_requests_come_in_groups_so_resolving_them_stays_linear(monkeypatch):
    """Sphinx replaces each resolved request in its parent's list of children (a search
    of that list): thousands of requests under one parent would cost a quadratic time.
    They are held in ``inline`` groups of at most ``LINK_GROUP``."""
    from docutils.utils import new_document
    from sphinx import addnodes

    from sphinxext_qdq.sphinx import directives

    document = new_document("page")
    graph = qdq_graph(qdq_model="m", qdq_link_keys=[f"node:n{i}" for i in range(1000)])
    document += graph
    directives.add_link_requests(None, document)
    requests = list(graph.findall(addnodes.pending_xref))
    assert [r["reftarget"] for r in requests] == [f"m:n{i}" for i in range(1000)]
    parents = {id(r.parent): r.parent for r in requests}.values()
    assert max(len(parent.children) for parent in parents) == directives.LINK_GROUP
    assert len(graph.children) == -(-1000 // directives.LINK_GROUP)


def test_the_drawing_is_planned_and_written_once_per_directive(tmp_path, monkeypatch):
    """The directive writes a drawing's DOT once; the HTML and then the LaTeX writer of
    the same environment only put their links in: neither writes DOT nor reads the
    model again."""
    from sphinxext_qdq.sphinx import backend

    calls = {"render_dot": 0, "load": 0}
    real_render, real_load = backend.render_dot, backend.load_qdq_model

    def counting_render(*args, **kwargs):
        calls["render_dot"] += 1
        return real_render(*args, **kwargs)

    def counting_load(*args, **kwargs):
        calls["load"] += 1
        return real_load(*args, **kwargs)

    monkeypatch.setattr(backend, "render_dot", counting_render)
    monkeypatch.setattr(backend, "load_qdq_model", counting_load)
    src = make_project(tmp_path / "src")
    html = build(src, "html", outdir=tmp_path / "out")
    assert html.warnings == ""
    env = html.app.env
    drawings = sum(len(list(env.get_doctree(doc).findall(qdq_graph))) for doc in env.found_docs)
    assert drawings == 2  # the reST and the MyST page
    assert calls["render_dot"] == drawings
    read = dict(calls)
    latex = build(src, "latex", outdir=tmp_path / "out")
    assert "qdq-" in next(latex.outdir.glob("*.tex")).read_text()
    assert calls == read  # nothing read again, nothing planned again


def test_links_put_in_later_give_the_drawing_written_with_them():
    """``render_dot`` with placeholders then ``fill_links`` is ``render_dot`` with the URL
    map itself, for every mode and for maps that have some, all or none of the keys (the
    first key of an element the map has wins; no key: no link attributes at all)."""
    from sphinxext_qdq.render.dot import (
        DotOptions,
        LinkSlots,
        fill_links,
        link_keys,
        render_dot,
    )

    model = loader.load_qdq_model(Path(__file__).parents[1] / "models" / "resnet8_int8.onnx")
    for options in (DotOptions(), DotOptions(mode="full"), DotOptions(pairs="nodes"),
                    DotOptions(depth=1)):
        slots = LinkSlots()
        deferred = render_dot(model, options, slots)
        keys = link_keys(model, options)
        assert set(slots.link_keys()) <= set(keys) and slots.chains
        maps = [{}, {key: f"page.html#{key}" for key in keys},
                {key: f'p{n % 3}.html#"{key}"' for n, key in enumerate(keys) if n % 2},
                {key: "op.html" for key in keys if key.startswith("op:")},
                {key: "x" * 9000 for key in keys}]  # too long for graphviz: no link
        for urls in maps:
            assert fill_links(deferred, slots.chains, urls) == render_dot(model, options, urls)
        assert "qdq-link:" not in fill_links(deferred, slots.chains, {})
        assert 'URL="' not in fill_links(deferred, slots.chains, {})


def test_every_directive_option_is_described_where_it_is_declared(tmp_path, monkeypatch):
    """Each directive says what its options take and mean beside ``option_spec``
    (``option_docs()``); the reference page shows those and reports an option without
    one (a ``docs.reference`` warning in ``make docs``)."""
    from docutils.parsers.rst import directives as docutils_directives
    from sphinx.testing.util import SphinxTestApp

    from sphinxext_qdq.sphinx.domain import QdqDomain

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "docs" / "_ext"))
    import extension_reference

    app = SphinxTestApp("html", srcdir=make_project(tmp_path / "src"),
                        builddir=tmp_path / "build")
    try:
        names = extension_reference.registered_directives()
        classes = [docutils_directives.directive(name, None, None)[0] for name in names]
    finally:
        app.cleanup()
    assert len(names) == 6 and None not in classes
    for directive_class in [*classes, QdqDomain.directives["op"]]:
        docs = directive_class.option_docs()
        assert set(docs) == set(directive_class.option_spec), directive_class
        assert all(value and meaning.endswith(".") for value, meaning in docs.values())
    graph = next(c for c in classes if c.__name__ == "QdqGraphOverlayDirective")
    assert "mode" in graph.option_docs() and "color-by" in graph.option_docs()

    class Undescribed(graph):
        option_spec: ClassVar = {**graph.option_spec, "glow": docutils_directives.flag}

    problems = extension_reference.ReferenceProblems()
    page = extension_reference.option_table(Undescribed, "qdq-graph", problems)
    assert problems == [("reference page: option of qdq-graph 'glow' exists in the code but "
                        "has no meaning in "
                        "test_every_directive_option_is_described_where_it_is_declared."
                        "<locals>.Undescribed.option_docs()")]
    assert "`:mode:`" in page and "glow" not in page


def test_png_output_is_an_image_with_a_clickable_map(tmp_path):
    """``graphviz_output_format = "png"``: an ``<img>`` of our own picture in ``_images``
    with the image map dot wrote, whose areas lead to the pages the SVG links lead to;
    no pan-and-zoom frame (that is for SVG)."""
    import re

    result = build(make_project(tmp_path / "src"), "html",
                   confoverrides={"graphviz_output_format": "png"})
    assert result.warnings == ""
    page = result.outdir / "sub" / "graph_rst.html"
    html = page.read_text()
    [(src, usemap)] = re.findall(r'<img src="([^"]+\.png)" alt="[^"]+" usemap="#([^"]+)" '
                                 r'class="qdq-graph graphviz" />', html)
    assert src.startswith("../_images/qdq-")
    assert (page.parent / src).read_bytes().startswith(b"\x89PNG")
    assert f'<map id="{usemap}" name="{usemap}">' in html and 'class="qdq-zoom"' not in html
    hrefs = set(re.findall(r'<area [^>]*href="([^"]+)"', html))
    local = [href for href in hrefs if not href.startswith("https://")]
    assert local
    for href in local:
        target, fragment = follow(page, href)
        assert target.is_file() and has_id(target, fragment), href
