"""Work counts that keep builds cheap (no timing here; ``benchmarks/run.py`` times them).

Twenty directives on one model over four pages: the model is parsed once per
process, each distinct picture is drawn by one dot process, and a no-op rebuild
parses nothing and runs dot zero times. A compact drawing with its Q→DQ pairs on
edges (the default) gives dot one node per operator.
"""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
import qdq_factories
import sphinx.ext.graphviz
from onnx import numpy_helper
from sphinx_helpers import build, make_project

from sphinxext_qdq.analysis import load_qdq_model, loader
from sphinxext_qdq.render.dot import (
    DotOptions,
    graph_node_count,
    link_keys,
    qdq_counts,
    render_dot,
)

PAGES = 4
#: The two drawings of every page; pages sit side by side, so each drawing is the
#: same picture (same DOT, same links) on every page.
GRAPHS = (
    "```{qdq-graph} tiny\n```\n",
    "```{qdq-graph} tiny\n:mode: full\n:from: conv1\n:to: add\n```\n",
)


def page(number: int) -> str:
    no_index = "" if number == 0 else ":no-index:\n"
    return "\n".join([
        f"# Page {number}\n",
        "```{qdq-summary} tiny\n```\n",
        *GRAPHS,
        f"```{{qdq-params}} tiny\n{no_index}```\n",
        f"```{{qdq-params}} tiny\n:layout: initializer\n{no_index}```\n",
    ])


def directive_count(text: str) -> int:
    return sum(line.startswith("```{qdq-") for line in text.splitlines())


class DotCounter:
    """Counts dot processes started by ``sphinx.ext.graphviz``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs = 0
        real_run = subprocess.run

        def counting_run(args, *rest, **kwargs):
            if args and str(args[0]).endswith("dot"):
                self.runs += 1
            return real_run(args, *rest, **kwargs)

        monkeypatch.setattr(sphinx.ext.graphviz.subprocess, "run", counting_run)


@pytest.fixture
def twenty_directives(tmp_path):
    pages = {f"page{n}.md": page(n) for n in range(PAGES)}
    pages["index.md"] = "# Index\n\n```{toctree}\n" + "\n".join(
        f"page{n}" for n in range(PAGES)) + "\n```\n"
    assert sum(directive_count(text) for text in pages.values()) == 20
    return make_project(tmp_path / "src", root=None, pages=pages)


def test_one_parse_and_one_dot_run_per_picture(tmp_path, monkeypatch, twenty_directives):
    dot = DotCounter(monkeypatch)
    loader.clear_cache()  # as in a new process
    parses = loader.parse_count()
    result = build(twenty_directives, "html", outdir=tmp_path / "out")
    assert result.warnings == ""
    assert loader.parse_count() - parses == 1
    assert dot.runs == len(GRAPHS)
    images = sorted((result.outdir / "_images").glob("qdq-*.svg"))
    assert len(images) == len(GRAPHS)


def rebuild(srcdir, out, monkeypatch) -> tuple[list[str], int, int]:
    """Build *srcdir* into *out* again, as a new process would (empty model cache):
    the pages read, the models parsed and the dot processes started; no warning."""
    dot = DotCounter(monkeypatch)
    loader.clear_cache()
    parses = loader.parse_count()
    read: list[str] = []

    def hook(app) -> None:
        app.connect("source-read", lambda _app, docname, _source: read.append(docname))

    result = build(srcdir, "html", outdir=out, on_app=hook)
    assert result.warnings == ""
    return read, loader.parse_count() - parses, dot.runs


def test_no_op_rebuild_parses_nothing_and_draws_nothing(tmp_path, monkeypatch,
                                                        twenty_directives):
    out = tmp_path / "out"
    build(twenty_directives, "html", outdir=out)
    read, parses, dot_runs = rebuild(twenty_directives, out, monkeypatch)
    assert read == []
    assert parses == 0
    assert dot_runs == 0


def test_editing_one_page_parses_once_and_draws_nothing(tmp_path, monkeypatch,
                                                       twenty_directives):
    """The edited page is read again (one parse); its pictures are already in the
    output, so dot does not run."""
    out = tmp_path / "out"
    build(twenty_directives, "html", outdir=out)
    edited = twenty_directives / "page2.md"
    edited.write_text(edited.read_text() + "\nOne more sentence.\n")
    read, parses, dot_runs = rebuild(twenty_directives, out, monkeypatch)
    assert read == ["page2"]
    assert parses == 1
    assert dot_runs == 0


# -- compact drawing with Q→DQ pairs on edges (fewer DOT nodes for dot to lay out) --------


def drawn(dot_text: str) -> dict:
    """``dot -Tjson`` of the DOT text: what graphviz lays out."""
    result = subprocess.run(["dot", "-Tjson"], input=dot_text.encode(), capture_output=True,
                            check=True, timeout=120)
    return json.loads(result.stdout)


def test_pairs_on_edges_leave_one_dot_node_per_operator(tmp_path):
    proto = qdq_factories.tiny_resnet_qdq()
    model = load_qdq_model(qdq_factories.save(proto, tmp_path / "tiny.onnx"))
    options = DotOptions(mode="compact", pairs="edges")
    graph = drawn(render_dot(model, options))
    nodes = [o for o in graph["objects"] if "nodes" not in o]
    operators = [n for n in proto.graph.node
                 if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    # one DOT node per operator, plus the graph input and output; no Q/DQ node is drawn
    assert len(nodes) == len(operators) + 2 == graph_node_count(model, options)
    assert sorted(n["label"].split("\\n")[0] for n in nodes) == sorted(
        [n.op_type for n in operators] + ["input", "logits"])
    # every activation Q→DQ pair is on an edge, labelled with its scale and zero point
    scales = {t.name: float(numpy_helper.to_array(t)) for t in proto.graph.initializer
              if t.name.endswith("_scale") and not t.dims}
    quantizers = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    labelled = [e for e in graph["edges"] if e["label"].startswith("Q→DQ ")]
    full = [e["label"] for e in labelled if "\\n" in e["label"]]
    assert len(full) == len(quantizers)
    shown = [np.float32(re.search(r"s=(\S+)", label).group(1)) for label in full]
    assert sorted(shown) == sorted(np.float32(scales[q.input[1]]) for q in quantizers)
    assert qdq_counts(model, options)["q_in_pairs"] == len(quantizers)


def test_pairs_on_edges_link_to_the_operator_and_the_parameter_rows(tmp_path):
    model = load_qdq_model(qdq_factories.save_tiny_resnet_qdq(tmp_path / "tiny.onnx"))
    options = DotOptions(mode="compact", pairs="edges")
    keys = link_keys(model, options)
    quantizers = [q.key for q in model.qdq_nodes if q.op_type == "QuantizeLinear"]
    assert {"op:QuantizeLinear", *(f"node:{key}" for key in quantizers)} <= set(keys)
    urls = {key: f"page.html#{key}" for key in keys}
    edges = drawn(render_dot(model, options, urls))["edges"]
    rows = {e["labelURL"] for e in edges if "labelURL" in e}
    assert rows == {f"page.html#node:{key}" for key in quantizers}
    assert all(e["URL"] == "page.html#op:QuantizeLinear" for e in edges if "labelURL" in e)
