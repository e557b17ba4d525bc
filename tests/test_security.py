"""What a model says never reaches outside its folder nor becomes markup, a URL or a
picture instruction: audited file opens, property-based tests of the DOT, HTML and
reST/MyST output with arbitrary Unicode names, and one real LaTeX (latexmk) run."""

from __future__ import annotations

import contextlib
import html.parser
import io
import os
import re
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import hostile_corpus as corpus
import numpy as np
import onnx
import pytest
import qdq_factories as factories
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from sphinx_helpers import SVG_NS, XLINK, build

from sphinxext_qdq import cli
from sphinxext_qdq.analysis.loader import QdqModelError, clear_cache, load_qdq_model
from sphinxext_qdq.analysis.patterns import analyze
from sphinxext_qdq.render.dot import LABEL_WIDTH, DotOptions, link_keys, render_dot

SVG = "{http://www.w3.org/2000/svg}"
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


# -- file opens ---------------------------------------------------------------------------------
ESCAPING_CASES = ("ext-dotdot", "ext-absolute", "ext-symlink-file", "ext-symlink-folder",
                  "ext-weight-outside", "ext-missing", "ext-location-is-folder")


def escaping_cases() -> list[corpus.Case]:
    return [case for case in corpus.CORPUS.cases if case.name in ESCAPING_CASES]


@pytest.fixture(scope="module")
def escape_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A project whose models aim their external data at ``outside/secret.bin``."""
    src = tmp_path_factory.mktemp("escape") / "src"
    src.mkdir()
    (src / "conf.py").write_text('extensions = ["sphinxext_qdq"]\n')
    models = {case.name: case.model_path(src / "models") for case in escaping_cases()}
    toctree = "\n".join(f"   {name}" for name in models)
    (src / "index.rst").write_text(f"Escapes\n=======\n\n.. toctree::\n\n{toctree}\n")
    for name, path in models.items():
        page = corpus.case_page(next(c for c in escaping_cases() if c.name == name),
                                "/" + path.relative_to(src).as_posix())
        (src / f"{name}.rst").write_text(page.text.replace(":orphan:\n", ""))
    return src, models


def outside_opens(opened: list[str], secret: Path) -> list[Path]:
    """Every recorded open of the secret or of anything in its folder (repeats kept)."""
    found = [next(iter(corpus.resolved([text], Path.cwd()))) for text in opened]
    return [p for p in found if p == secret.resolve() or secret.resolve().parent in p.parents]


def test_the_audit_hook_sees_opens(tmp_path: Path) -> None:
    """The hook is not blind: a deliberate open of the secret is recorded."""
    secret = corpus.secret_file(tmp_path / "models")
    with corpus.open_audit() as opened:
        secret.read_bytes()
        os.close(os.open(secret, os.O_RDONLY))
    assert outside_opens(opened, secret) == [secret.resolve()] * 2


def test_no_file_outside_the_model_folder_is_opened(escape_project, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    src, models = escape_project
    secret = corpus.secret_file(src / "models")
    inside = src / "models" / "ext-inside"
    inside_model = factories.external_scale_model(inside, "data/scale.bin",
                                                  filename="ext-inside.onnx")
    clear_cache()  # a cold load: an analysis cached by an earlier test would open nothing
    with corpus.open_audit() as opened:
        for path in models.values():
            load_qdq_model(path)
            cli.main([str(path), "-o", str(tmp_path), "--format", "dot"])
        result = build(src, "html")
        build(src, "latex", outdir=src.parent / "latex")
        inside_values = load_qdq_model(inside_model).param("scale").values
    capsys.readouterr()
    assert outside_opens(opened, secret) == []
    # the hook did see the build, and a legitimate external file inside a folder
    resolved = corpus.resolved(opened, Path.cwd())
    assert (inside / "data" / "scale.bin").resolve() in resolved
    assert {p.resolve() for p in models.values()} <= resolved
    assert inside_values == (0.5, 0.25, 0.125, 2.0)
    assert "external_data" in result.warnings
    assert secret.read_bytes()  # the secret exists: an open would have succeeded


def test_refused_locations_are_not_dependencies(escape_project) -> None:
    """Sphinx never watches (stats) a file outside the folder on a model's say-so."""
    src, _models = escape_project
    result = build(src, "html", outdir=src.parent / "deps")
    secret = corpus.secret_file(src / "models").resolve()
    for docname, deps in result.app.env.dependencies.items():
        for dep in deps:
            path = (src / dep).resolve()
            assert path != secret and secret.parent not in path.parents, (docname, dep)


def test_a_symlinked_model_file_reads_data_next_to_its_target(tmp_path: Path) -> None:
    """The folder that bounds external data is the real file's folder, never a folder
    named by the model."""
    real = tmp_path / "real"
    model = factories.external_scale_model(real, "scale.bin", filename="m.onnx")
    (tmp_path / "docs").mkdir()
    link = tmp_path / "docs" / "m.onnx"
    link.symlink_to(model)
    with corpus.open_audit() as opened:
        values = load_qdq_model(link).param("scale").values
    assert values == (0.5, 0.25, 0.125, 2.0)
    assert (real / "scale.bin").resolve() in corpus.resolved(opened, Path.cwd())


# -- hostile names ---------------------------------------------------------------------------------
NAME = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24)
NAMES = st.lists(NAME, min_size=6, max_size=6, unique=True).filter(
    lambda names: "y" not in names)
DOC = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


def hostile_model(names: list[str], doc: str) -> onnx.ModelProto:
    """x -> Q -> DQ -> a vendor op -> y, every tensor, node, op type and doc string from
    *names* / *doc* (tensors: names[0..4]; Q node names[5]; the op type names[5])."""
    x, q_out, dq_out, scale, zero_point, q_name = names
    nodes = [
        helper.make_node("QuantizeLinear", [x, scale, zero_point], [q_out], name=q_name,
                         doc_string=doc),
        helper.make_node("DequantizeLinear", [q_out, scale, zero_point], [dq_out], name=x,
                         doc_string=doc),
        helper.make_node(q_name, [dq_out], ["y"], name=dq_out, domain="vendor.example",
                         doc_string=doc),
    ]
    model = factories.make_model(
        nodes, [factories.tensor_input(x, [1, 4])], [factories.tensor_input("y", [1, 4])],
        [factories.scalar(scale, 0.5), factories.scalar(zero_point, 3, TensorProto.UINT8)],
        name=zero_point, extra_opsets=[("vendor.example", 1)])
    model.doc_string = doc
    model.graph.doc_string = doc
    return model


def visible(text: str) -> str:
    """How graphviz shows model text: control characters as escapes, U+FFFE/U+FFFF and
    surrogates as U+FFFD (see ``escape_dot``)."""
    special = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x7f": "\\x7f"}
    out = []
    for ch in text:
        if ch in special:
            out.append(special[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        elif ch in "\ufffe\uffff" or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def squeezed(text: str) -> str:
    """Whitespace runs as one space (graphviz writes runs of spaces as no-break spaces)."""
    return " ".join(text.replace("\xa0", " ").split())


TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|<|[A-Za-z_][A-Za-z0-9_]*|->|--|[-0-9.]+|\S')
ALLOWED_ATTRIBUTES = {
    "label", "shape", "style", "fillcolor", "color", "penwidth", "tooltip", "URL", "target",
    "labelURL", "labeltarget", "labeltooltip", "fontname", "fontsize", "fontcolor", "margin",
    "height", "width", "rankdir", "nodesep", "ranksep", "newrank", "labeljust", "arrowsize",
    "gradientangle", "rank", "compound", "arrowhead", "dir", "weight", "constraint",
    "minlen", "headlabel", "taillabel", "xlabel", "peripheries", "fixedsize", "splines",
    "concentrate", "ordering", "labelloc", "group",
}


def dot_attributes(dot_text: str) -> list[tuple[str, str]]:
    """(attribute, value) pairs of a DOT text, read by a DOT tokenizer (quoted strings
    with backslash escapes are single tokens)."""
    tokens = TOKEN.findall(dot_text)
    return [(tokens[i - 1], tokens[i + 1]) for i, token in enumerate(tokens)
            if token == "=" and 0 < i < len(tokens) - 1]


def check_dot(dot_text: str, urls: dict[str, str], names: list[str]) -> None:
    canon = subprocess.run(["dot", "-Tcanon"], input=dot_text.encode(), capture_output=True,
                           timeout=60, check=False)
    assert canon.returncode == 0, canon.stderr
    allowed_urls = {f'"{url}"' for url in urls.values()}
    for name, value in dot_attributes(dot_text):
        assert name in ALLOWED_ATTRIBUTES, (name, value)
        assert not value.startswith("<"), f"HTML-like {name}"
        if name in ("URL", "labelURL", "href", "headURL", "tailURL", "edgeURL"):
            assert value in allowed_urls, value
    svg = subprocess.run(["dot", "-Tsvg"], input=dot_text.encode(), capture_output=True,
                         timeout=60, check=True).stdout
    root = ElementTree.fromstring(svg)  # valid XML whatever the names
    assert not list(root.iter(f"{SVG}image"))
    hrefs = {a.get(XLINK) for a in root.iterfind(".//svg:a", SVG_NS) if a.get(XLINK)}
    assert hrefs <= set(urls.values())
    texts = {squeezed(t.text or "") for t in root.iter(f"{SVG}text")}
    titles = squeezed(" | ".join(a.get("{http://www.w3.org/1999/xlink}title") or ""
                                 for a in root.iter(f"{SVG}a")))
    for name in names:
        shown = squeezed(visible(name))
        if len(name) <= LABEL_WIDTH and any(shown in t for t in texts):
            continue
        assert shown in titles, f"{name!r} is neither a label line nor in a tooltip"


@PROPERTY_SETTINGS
@given(names=NAMES, doc=DOC)
def test_dot_with_arbitrary_names_parses_and_shows_them_as_text(names: list[str],
                                                                 doc: str) -> None:
    model = analyze(hostile_model(names, doc), path="hostile.onnx", model_dir=None)
    for mode in ("compact", "full"):
        options = DotOptions(mode=mode, legend=True)
        urls = {key: f"page{i}.html#anchor-{i}" for i, key in enumerate(link_keys(model, options))}
        check_dot(render_dot(model, options, urls), urls, names[:5] + [names[5]])


# -- HTML and reST/MyST: a Sphinx build per example -------------------------------------------
MARKUP = st.sampled_from([
    "<script>alert(1)</script>", "<b>bold</b>", "&amp;", "*emph*", "**strong**",
    "`link <https://evil.example/>`_", ":ref:`x`", "{ref}`y`", "|sub|", "[md](https://e.x/)",
    "$x$", "<!-- c -->", "]]>", "\" onmouseover=\"x", "{{ jinja }}", ".. raw:: html",
])
MARKED_NAME = st.tuples(MARKUP, st.text(st.characters(exclude_categories=("Cs", "Cc")),
                                        max_size=8)).map("".join)
MARKED_NAMES = st.lists(MARKED_NAME, min_size=6, max_size=6, unique=True).filter(
    lambda names: "y" not in names)


class _PageText(html.parser.HTMLParser):
    """Text content and link targets of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.skip = 0
        self.glue = False  # after <wbr> (a break point inside a name): no space

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "wbr":
            self.glue = True
        if tag in ("script", "style"):
            self.skip += 1
        for name, value in attrs:
            if name in ("href", "src", "data", "action", "formaction") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            if self.glue and self.text:
                self.text[-1] += data
            else:
                self.text.append(data)
        self.glue = False


def page_text(path: Path) -> _PageText:
    parser = _PageText()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


HOSTILE_PAGE_RST = """Hostile names
=============

.. qdq-graph:: models/hostile.onnx
   :mode: full

.. qdq-params:: models/hostile.onnx

.. qdq-params:: models/hostile.onnx
   :layout: initializer
   :no-index:

.. qdq-summary:: models/hostile.onnx
"""
HOSTILE_PAGE_MD = """# Hostile names in MyST

```{qdq-graph} models/hostile.onnx
```

```{qdq-params} models/hostile.onnx
:no-index:
```
"""


@pytest.fixture(scope="module")
def names_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("names") / "src"
    (src / "models").mkdir(parents=True)
    (src / "conf.py").write_text('extensions = ["myst_parser", "sphinxext_qdq"]\n'
                                 'graphviz_output_format = "svg"\n')
    (src / "index.rst").write_text(".. toctree::\n\n   rst_page\n   md_page\n")
    (src / "rst_page.rst").write_text(HOSTILE_PAGE_RST)
    (src / "md_page.md").write_text(HOSTILE_PAGE_MD)
    return src


def check_html_page(path: Path, names: list[str], outdir: Path) -> None:
    page = page_text(path)
    theme_urls = set(page_text(outdir / "index.html").urls)  # no model on that page
    text = " ".join(" ".join(page.text).replace("\xa0", " ").split())
    raw = path.read_text(encoding="utf-8")
    assert "<script>alert" not in raw and "<b>bold</b>" not in raw
    assert 'href="https://evil' not in raw and "onmouseover=\"x" not in raw
    for name in names:
        assert " ".join(name.split()) in text, f"{name!r} is not shown as text"
    for url in page.urls:  # only our pages, our images, our static files, onnx.ai
        parts = urlsplit(url)
        if url in theme_urls:
            continue
        if parts.scheme:
            assert parts.scheme == "https" and parts.netloc == "onnx.ai", url
            assert re.fullmatch(r"/onnx/operators/onnx__[A-Za-z0-9_]+\.html", parts.path), url
        elif parts.path:
            assert (path.parent / parts.path).resolve().is_relative_to(outdir.resolve()), url


@settings(max_examples=4, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a build per example: no shrink
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(names=MARKED_NAMES)
def test_html_shows_names_as_text_and_links_nowhere_else(names_project: Path,
                                                         names: list[str]) -> None:
    factories.save(hostile_model(names, names[0]), names_project / "models" / "hostile.onnx")
    result = build(names_project, "html")
    assert "Traceback" not in result.warnings
    shown = [names[i] for i in (0, 3, 4, 5)]  # the tables' input, scale, zero point, nodes
    for page in ("rst_page", "md_page"):
        check_html_page(result.outdir / f"{page}.html", shown, result.outdir)
    for svg in (result.outdir / "_images").glob("qdq-*.svg"):
        root = ElementTree.parse(svg).getroot()
        for a in root.iterfind(".//svg:a", SVG_NS):
            href = a.get(XLINK) or ""
            assert not urlsplit(href).scheme or href.startswith("https://onnx.ai/"), href


def test_markup_in_names_stays_text_in_the_doctree(tmp_path: Path) -> None:
    """reST and MyST markup in a name is never parsed: no emphasis, reference or raw
    node comes out of a model string."""
    from docutils import nodes

    names = ["*emph* x", "<b>t</b>", "{ref}`m`", "`l <https://evil.example/>`_", ":ref:`r`",
             ".. raw:: html"]
    src = tmp_path / "src"
    (src / "models").mkdir(parents=True)
    (src / "conf.py").write_text('extensions = ["myst_parser", "sphinxext_qdq"]\n')
    (src / "index.rst").write_text(".. toctree::\n\n   rst_page\n   md_page\n")
    (src / "rst_page.rst").write_text(HOSTILE_PAGE_RST)
    (src / "md_page.md").write_text(HOSTILE_PAGE_MD)
    factories.save(hostile_model(names, "*doc* `x`_"), src / "models" / "hostile.onnx")
    result = build(src, "html")
    for docname in ("rst_page", "md_page"):
        doctree = result.app.env.get_doctree(docname)
        for kind in (nodes.emphasis, nodes.strong, nodes.raw):
            assert not list(doctree.findall(kind)), (docname, kind)
        # the only targets are the rows' own (ids made by make_anchor, no link)
        for target in doctree.findall(nodes.target):
            assert all(i.startswith("qdq-") for i in target["ids"]), target
            assert not ({"refuri", "refid", "refname"} & set(target.attributes)), target
        assert not [r for r in doctree.findall(nodes.reference) if "evil" in r.get("refuri", "")]
    for docname in ("rst_page", "md_page"):
        text = result.app.env.get_doctree(docname).astext()
        for name in (names[0], names[3], names[4], names[5]):  # shown in the tables
            assert name in text, (docname, name)


# -- LaTeX -----------------------------------------------------------------------------------------
LATEX_NAMES = [
    "\\input{/etc/passwd}", "\\write18{touch pwned}", "100% _sure_ #1 $x^2$ ~&",
    "}unbalanced{", "\\end{document}", "\\\\", "^^5c^^5c", "ünïcödé ✓ 量子化 😀",
    "\u202eRTL\u200b zero\u0301width", "x" * 200, "tab\tnew\nline", "`markup`_ *x*",
]


def test_latex_with_hostile_names_compiles(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    random_names = ["".join(chr(c) for c in rng.integers(0x20, 0x2FFF, 12)
                            if not 0xD800 <= c <= 0xDFFF) for _ in range(3)]
    names = [n for n in LATEX_NAMES + random_names if n][:6]
    extra = [n for n in LATEX_NAMES + random_names if n][6:]
    src = tmp_path / "src"
    (src / "models").mkdir(parents=True)
    (src / "conf.py").write_text('extensions = ["sphinxext_qdq"]\nlatex_engine = "pdflatex"\n'
                                 'project = "hostile"\n')
    pages = [HOSTILE_PAGE_RST]
    factories.save(hostile_model(names, "\\verb|x| \\catcode`\\^=7"),
                   src / "models" / "hostile.onnx")
    for number, start in enumerate(range(0, len(extra), 6)):
        chunk = (extra[start:start + 6] + [f"pad{number}{i}" for i in range(6)])[:6]
        factories.save(hostile_model(chunk, chunk[0]), src / "models" / f"more{number}.onnx")
        pages.append(HOSTILE_PAGE_RST.replace("hostile.onnx", f"more{number}.onnx")
                     .replace("Hostile names\n=============", f"More {number}\n======"))
    (src / "index.rst").write_text("\n\n".join(pages))
    result = build(src, "latex")
    assert "Traceback" not in result.warnings
    env = {**os.environ, "LATEXMKOPTS": "-halt-on-error -interaction=nonstopmode"}
    run = subprocess.run(["make", "all-pdf"], cwd=result.outdir, capture_output=True,
                         text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:]
    pdf = result.outdir / "hostile.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert not (result.outdir / "pwned").exists()
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "input{/etc/passwd}" in text and "end{document}" in text
    assert "root:x:0" not in text  # \input was never run


# -- command line ------------------------------------------------------------------------------------
@settings(PROPERTY_SETTINGS, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture])
@given(name=NAME)
def test_cli_messages_stay_on_one_line(tmp_path: Path, name: str) -> None:
    """Any model-derived text in a CLI warning or error is one line."""
    model = factories.qdq_pair_model(0.0, 0)  # scale zero: one diagnostic naming the scale
    for tensor in model.graph.initializer:
        if tensor.name == "scale":
            tensor.name = name
    for node in model.graph.node:
        node.input[1] = name
        node.name = name + node.name
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one folder per example
    path = factories.save(model, folder / "m.onnx")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main([str(path), "-o", str(folder), "--format", "dot"])
    lines = err.getvalue().splitlines()
    try:
        analysis = load_qdq_model(path)
    except QdqModelError:
        assert status == 2 and len(lines) == 1
        return
    assert status == 0 and len(lines) == len(analysis.diagnostics) >= 1
    assert all(line.startswith("qdq-graph: warning: ") for line in lines)
