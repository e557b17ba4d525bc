"""``qdq-params``, ``qdq-summary`` and the ``qdq`` domain in real Sphinx builds."""

from __future__ import annotations

import pickle
import re
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from docutils import nodes
from onnx import numpy_helper
from sphinx_helpers import build, follow, has_id, make_project

PAGE = "Page\n====\n\n"


def proto(src: Path) -> onnx.ModelProto:
    return onnx.load(str(src / "models" / "tiny.onnx"))


def qdq_protos(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def initializer_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def table_rows(doctree: nodes.document, number: int = 0) -> list[list[str]]:
    """Cell texts (paragraphs joined by ' | ') of the *number*-th table's body rows."""
    table = list(doctree.findall(nodes.table))[number]
    body = next(table.findall(nodes.tbody))
    return [[" | ".join(p.astext() for p in entry.findall(nodes.paragraph)) for entry in row]
            for row in body.children]


@pytest.fixture(scope="module")
def params_build(tmp_path_factory):
    src = make_project(tmp_path_factory.mktemp("params") / "src", pages={
        "sub/deep/refs.md": "# Refs\n\n{qdq:param}`tiny:input_scale` and "
                            "{qdq:node}`tiny:input_QuantizeLinear` and {qdq:op}`DequantizeLinear`.\n",
        "sub/params_md.md": "# Params MyST\n\n```{qdq-params} ../models/tiny.onnx\n:no-index:\n```\n",
    })
    (src / "index.rst").write_text((src / "index.rst").read_text()
                                   + "   sub/deep/refs\n   sub/params_md\n")
    return src, build(src, "html")


def test_node_layout_has_one_row_per_qdq_node_with_the_models_values(params_build):
    src, result = params_build
    assert result.warnings == ""
    model = proto(src)
    values = initializer_values(model)
    rows = table_rows(result.app.env.get_doctree("sub/params"), 0)
    expected = qdq_protos(model)
    assert [row[0] for row in rows] == [n.name for n in expected]
    for row, node in zip(rows, expected):
        assert row[1] == node.op_type
        scale_name, scale_value = row[4].split(" | ")
        assert scale_name == node.input[1]
        assert np.float32(scale_value) == values[node.input[1]].item()
        zp_name, zp_value = row[5].split(" | ")
        assert zp_name == node.input[2]
        assert int(zp_value) == values[node.input[2]].item()
        zp_dtype = onnx.helper.tensor_dtype_to_np_dtype(
            next(t for t in model.graph.initializer if t.name == node.input[2]).data_type)
        assert row[6] == np.dtype(zp_dtype).name.upper()
        assert row[7] == "per-tensor"
    roles = Counter(row[2] for row in rows)
    assert roles["weight"] == roles["bias"] == 4  # conv1, conv2, skip, fc


def test_initializer_layout_lists_every_scale_and_zero_point_once(params_build):
    src, result = params_build
    model = proto(src)
    values = initializer_values(model)
    rows = table_rows(result.app.env.get_doctree("sub/params"), 1)
    names = [row[0] for row in rows]
    expected = {name for n in qdq_protos(model) for name in n.input[1:3] if name}
    assert sorted(names) == sorted(expected) and len(names) == len(set(names))
    for row in rows:
        value = values[row[0]]
        if row[1] == "scale":
            assert np.float32(row[2]) == value.item()
        else:
            assert int(row[2]) == value.item()
        assert row[6] == "initializer"
        users = [n for n in qdq_protos(model) if row[0] in n.input[1:3]]
        for user in users:
            assert f"input[{list(user.input).index(row[0])}] of {user.name}" in row[7]


def test_myst_and_rst_tables_are_the_same(params_build):
    _src, result = params_build
    env = result.app.env
    assert table_rows(env.get_doctree("sub/params"), 0) == \
        table_rows(env.get_doctree("sub/params_md"), 0)


def test_roles_resolve_from_a_subfolder_to_the_rows(params_build):
    _src, result = params_build
    page = result.outdir / "sub" / "deep" / "refs.html"
    html = page.read_text()
    hrefs = [h.split('"')[0] for h in html.split('class="reference internal" href="')[1:]]
    targets = [follow(page, href) for href in hrefs if "qdq-" in href]
    assert len(targets) == 3
    for target, fragment in targets:
        assert has_id(target, fragment)
    assert {t.name for t, _ in targets} == {"params.html", "ops.html"}


def test_tables_appear_in_the_general_index_once_per_model(params_build):
    """Default ``qdq_index_entries = "model"``: one entry per table under the model's
    name (not one per row), and one per documented operator."""
    _src, result = params_build
    genindex = (result.outdir / "genindex.html").read_text()
    assert "tiny (quantized model)" in genindex
    assert "scales and zero points" in genindex
    assert "input_scale (scale)" not in genindex
    assert "input_QuantizeLinear (QuantizeLinear)" not in genindex
    assert "QuantizeLinear (ONNX operator)" in genindex


def test_domain_data_is_picklable(params_build):
    _src, result = params_build
    data = result.app.env.domains["qdq"].data
    assert pickle.loads(pickle.dumps(data)) == data


def test_anchor_ids_are_unique_and_valid():
    from sphinxext_qdq.sphinx.domain import make_anchor

    names = ["model/conv2d_1/BiasAdd:0", "model conv", "Überschrift", "a:b", "a/b", "a b",
             "", "x" * 300]
    anchors = [make_anchor("param", model, name) for model in ("m1", "m2") for name in names]
    assert len(set(anchors)) == len(anchors)
    for anchor in anchors:
        assert anchor.isascii() and " " not in anchor and anchor[0].isalpha()
        assert all(c.isalnum() or c == "-" for c in anchor) and len(anchor) < 80


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]


def test_duplicate_table_warns_once_unless_no_index(tmp_path):
    pages = {"index.rst": PAGE + ".. toctree::\n\n   a\n   b\n",
             "a.rst": "A\n=\n\n.. qdq-params:: tiny\n",
             "b.rst": "B\n=\n\n.. qdq-params:: tiny\n"}
    for parallel in (0, 4):
        src = make_project(tmp_path / f"dup{parallel}", root=None, pages=pages)
        lines = warning_lines(build(src, "html", parallel=parallel).warnings)
        assert len(lines) == 1, lines
        assert "already documented" in lines[0] and lines[0].endswith("[qdq.duplicate]")
    pages["b.rst"] = "B\n=\n\n.. qdq-params:: tiny\n   :no-index:\n"
    src = make_project(tmp_path / "noindex", root=None, pages=pages)
    assert build(src, "html").warnings == ""


def test_parallel_read_merges_the_same_domain_data(tmp_path):
    pages = {"index.rst": PAGE + ".. toctree::\n\n   a\n   b\n   c\n",
             "a.rst": "A\n=\n\n.. qdq-params:: tiny\n   :roles: weight\n",
             "b.rst": "B\n=\n\n.. qdq-params:: tiny\n   :roles: activation\n",
             "c.rst": "C\n=\n\n.. qdq-params:: tiny\n   :roles: bias\n   :layout: initializer\n"}
    results = [build(make_project(tmp_path / f"p{n}", root=None, pages=pages), "html",
                     parallel=n) for n in (0, 4)]
    assert [r.warnings for r in results] == ["", ""]
    serial, parallel = (r.app.env.domains["qdq"].objects for r in results)
    assert serial == parallel and len(serial) > 20


def test_filter_matching_nothing_is_a_located_warning(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE + ".. qdq-params:: tiny\n   :nodes: ^nothing$\n"})
    lines = warning_lines(build(src, "html").warnings)
    assert len(lines) == 1
    assert "index.rst:4: WARNING:" in lines[0] and lines[0].endswith("[qdq.filter]")


def test_filters_select_rows(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE + ".. qdq-params:: tiny\n   :nodes: ^conv\n   :roles: weight\n\n"
                     ".. qdq-params:: tiny\n   :qdq-ops: QuantizeLinear\n   :limit: 2\n   :no-index:\n"})
    result = build(src, "html")
    assert result.warnings == ""
    doctree = result.app.env.get_doctree("index")
    assert [r[0] for r in table_rows(doctree, 0)] == [
        "conv1.weight_DequantizeLinear", "conv2.weight_DequantizeLinear"]
    model = proto(src)
    first_qs = [n.name for n in model.graph.node if n.op_type == "QuantizeLinear"][:2]
    assert [r[0] for r in table_rows(doctree, 1)] == first_qs


def test_bad_regex_is_a_located_error(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE + ".. qdq-params:: tiny\n   :nodes: (unclosed\n"})
    warnings = build(src, "html").warnings
    assert len(warning_lines(warnings)) == 1 and "index.rst:4: ERROR:" in warnings
    assert "invalid regular expression" in warnings


def test_missing_target_warns_like_ref(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE + ".. qdq-params:: tiny\n\nSee :qdq:param:`tiny:nope`.\n"})
    lines = warning_lines(build(src, "html").warnings)
    assert len(lines) == 1
    assert "index.rst:6: WARNING:" in lines[0] and "tiny:nope" in lines[0]


def test_removing_a_table_removes_its_targets(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE + ".. toctree::\n\n   table\n   refs\n",
        "table.rst": "T\n=\n\n.. qdq-params:: tiny\n",
        "refs.rst": "R\n=\n\nSee :qdq:param:`tiny:input_scale`.\n"})
    out = tmp_path / "out"
    assert build(src, "html", outdir=out).warnings == ""
    (src / "table.rst").write_text("T\n=\n\nNo table any more.\n")
    (src / "refs.rst").touch()
    result = build(src, "html", outdir=out)
    objects = result.app.env.domains["qdq"].objects
    assert not any(t.docname == "table" for t in objects.values())
    lines = warning_lines(result.warnings)
    assert len(lines) == 1 and "tiny:input_scale" in lines[0]


def test_summary_counts_match_the_model(tmp_path):
    src = make_project(tmp_path / "src", root=None, pages={"index.rst": PAGE + ".. qdq-summary:: tiny\n"})
    result = build(src, "html")
    assert result.warnings == ""
    rows = {r[0]: r[1] for r in table_rows(result.app.env.get_doctree("index"))}
    model = proto(src)
    ops = Counter(n.op_type for n in model.graph.node)
    assert rows["Nodes"] == str(len(model.graph.node))
    assert rows["QuantizeLinear / DequantizeLinear"] == \
        f"{ops['QuantizeLinear']} / {ops['DequantizeLinear']}"
    assert f"Conv {ops['Conv']}" in rows["Nodes by op type"]
    assert rows["Opsets"].startswith("ai.onnx ")
    assert rows["Parameter bytes"] == f"{sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer):,}"


def test_a_bare_name_in_two_models_is_ambiguous_and_names_both(tmp_path):
    """One node name documented for two models: a bare reference is not resolved to
    whichever model was read first; it warns at its line, naming both candidates."""
    src = make_project(tmp_path / "src", root=None, pages={
        "index.rst": PAGE + ".. toctree::\n\n   one\n   two\n   refs\n",
        "one.rst": "One\n===\n\n.. qdq-params:: tiny\n",
        "two.rst": "Two\n===\n\n.. qdq-params:: twin\n",
        "refs.rst": ("R\n=\n\nBare :qdq:node:`input_QuantizeLinear`.\n\n"
                     "Qualified :qdq:node:`twin:input_QuantizeLinear`.\n\n"
                     "Any :any:`twin:input_QuantizeLinear`.\n\n"
                     "Any bare :any:`input_QuantizeLinear`.\n\n"
                     "Bare :qdq:param:`input_scale`.\n"),
    }, conf='qdq_models["twin"] = "models/twin.onnx"')
    (src / "models" / "twin.onnx").write_bytes((src / "models" / "tiny.onnx").read_bytes())
    result = build(src, "html")
    lines = [line for line in result.warnings.splitlines() if line.strip()]
    assert len(lines) == 3, result.warnings
    assert "refs.rst:4: WARNING: qdq node 'input_QuantizeLinear' is ambiguous" in lines[0]
    assert lines[0].endswith("[qdq.ambiguous]")
    assert "tiny:input_QuantizeLinear (one)" in lines[0]
    assert "twin:input_QuantizeLinear (two)" in lines[0]
    # :any: offers both candidates, so Sphinx's own "more than one target" warning
    assert "refs.rst:10: WARNING: more than one target found for 'any'" in lines[1]
    assert lines[1].count(":qdq:node:") == 2 and lines[1].endswith("[ref.any]")
    assert "refs.rst:12: WARNING: qdq parameter 'input_scale' is ambiguous" in lines[2]
    assert "tiny:input_scale (one)" in lines[2] and "twin:input_scale (two)" in lines[2]
    refs = result.outdir / "refs.html"
    hrefs = re.findall(r'<a class="reference internal" href="([^"]+)"',
                       refs.read_text(encoding="utf-8"))
    links = [href.split("#")[0] for href in hrefs if "#qdq-node-" in href]
    # qualified qdq:node and :any: to the twin's row; the ambiguous :any: to the first model
    assert links == ["two.html", "two.html", "one.html"]
    for href in hrefs:
        page, anchor = follow(refs, href)
        assert has_id(page, anchor)
