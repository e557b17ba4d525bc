"""Incremental and parallel builds, and the limits (size cap, node cap, dot time limit).

Each change re-reads exactly the pages that use what changed, decided by content
(hashes), not by modification times alone; a page that still has a problem warns
again on every build; ``-j 4`` and ``-j 1`` write the same HTML.
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import qdq_factories as factories
from hostile_corpus import parse_warnings
from sphinx_helpers import build

from sphinxext_qdq.analysis import loader
from sphinxext_qdq.sphinx import collector

CONF = """
extensions = ["myst_parser", "sphinxext_qdq"]
graphviz_output_format = "svg"
exclude_patterns = ["_build"]
qdq_models = {"shared": "models/shared.onnx"}
"""

PAGES = {
    "index.rst": "Index\n=====\n\n.. toctree::\n\n   graph\n   params\n   summary\n"
                 "   external\n   filtered\n   plain\n",
    "graph.rst": "Graph\n=====\n\n.. qdq-graph:: models/shared.onnx\n",
    "params.md": "# Params\n\n```{qdq-params} shared\n:layout: initializer\n:values: full\n```\n",
    "summary.rst": "Summary\n=======\n\n.. qdq-summary:: /models/other.onnx\n",
    "external.rst": "External\n========\n\n.. qdq-graph:: models/ext/ext.onnx\n   :mode: full\n"
                    "\n.. qdq-params:: models/ext/ext.onnx\n   :values: full\n",
    "filtered.rst": "Filtered\n========\n\n.. qdq-params:: /models/other.onnx\n   :roles: weight\n",
    "plain.rst": "Plain\n=====\n\nNo model here.\n",
}
#: Line of the first directive of each page (the pages above).
FIRST_DIRECTIVE = {"graph": 4, "params": 3, "summary": 4, "external": 4, "filtered": 4}
ALL_PAGES = {"index", "graph", "params", "summary", "external", "filtered", "plain"}


def write_project(src: Path) -> Path:
    src.mkdir(parents=True)
    (src / "conf.py").write_text(CONF)
    for name, text in PAGES.items():
        (src / name).write_text(text)
    factories.save(factories.qdq_pair_model(0.25, 7), src / "models" / "shared.onnx")
    factories.save(factories.weight_dq_model(), src / "models" / "other.onnx")
    factories.external_scale_model(src / "models" / "ext", "scales.bin", filename="ext.onnx")
    return src


class Builder:
    """Builds one project again and again (same output and doctrees) and tells which
    pages each build read."""

    def __init__(self, src: Path, **options: object) -> None:
        self.src = src
        self.outdir = src.parent / "out"
        self.options = options

    def __call__(self, **overrides: object) -> tuple[set[str], object]:
        read: list[str] = []

        def hook(app: object) -> None:  # in the main process, whatever -j says
            app.connect("env-before-read-docs", lambda _app, _env, docs: read.extend(docs))

        result = build(self.src, "html", outdir=self.outdir, on_app=hook,
                       **{**self.options, **overrides})
        return set(read), result


@pytest.fixture
def project(tmp_path: Path) -> Builder:
    builder = Builder(write_project(tmp_path / "src"))
    read, result = builder()
    assert read == ALL_PAGES and result.warnings == ""
    return builder


def set_mtime(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def html(builder: Builder, page: str) -> str:
    return (builder.outdir / "html" / f"{page}.html").read_text(encoding="utf-8")


def qdq_warnings(result: object) -> list[tuple[str, int | None, str | None]]:
    return [(Path(w.file).stem, w.line, w.subtype)
            for w in parse_warnings(result.warnings)]  # type: ignore[attr-defined]


# -- what is read again ---------------------------------------------------------------------
def test_nothing_changed_nothing_read(project: Builder) -> None:
    read, result = project()
    assert read == set() and result.warnings == ""


def test_edited_model_reads_exactly_its_pages(project: Builder) -> None:
    factories.save(factories.qdq_pair_model(0.125, 9), project.src / "models" / "shared.onnx")
    read, result = project()
    assert read == {"graph", "params"} and result.warnings == ""
    assert "0.125" in html(project, "params") and "0.25" not in html(project, "params")


def test_model_replaced_by_an_older_file_is_seen_by_its_content(project: Builder) -> None:
    """``cp -p`` of an old file: its mtime is older than the last build, Sphinx's own
    check misses it; the content hash does not."""
    shared = project.src / "models" / "shared.onnx"
    older = project.src.parent / "older.onnx"
    factories.save(factories.qdq_pair_model(0.0625, 11), older)
    set_mtime(older, 3600)
    os.replace(older, shared)
    assert shared.stat().st_mtime < time.time() - 3000
    read, _result = project()
    assert read == {"graph", "params"}
    assert "0.0625" in html(project, "params")


def test_same_content_with_an_older_mtime_is_not_read_again(project: Builder) -> None:
    shared = project.src / "models" / "shared.onnx"
    shared.write_bytes(shared.read_bytes())  # new ctime, same content
    set_mtime(shared, 3600)
    read, _result = project()
    assert read == set()


def test_a_file_is_hashed_only_when_its_signature_changed(project: Builder,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The first build hashed each model once; after that only a changed ``stat`` (size,
    times, inode, device) makes the content be hashed, once per change."""
    monkeypatch.setattr(loader, "_SETTLED_NS", 0)  # the loader hashes nothing (old files)
    hashed: list[str] = []
    real_hash = collector.file_hash
    monkeypatch.setattr(collector, "file_hash",
                        lambda path: hashed.append(Path(path).name) or real_hash(path))
    graph = project.src / "graph.rst"
    graph.write_text(graph.read_text() + "\nMore text.\n")  # read again, model unchanged
    read, _result = project()
    assert read == {"graph"} and hashed == []
    shared = project.src / "models" / "shared.onnx"
    shared.write_bytes(shared.read_bytes())  # new signature, same content
    set_mtime(shared, 3600)  # older than the last read: Sphinx's own check stays quiet
    read, _result = project()
    assert read == set() and hashed == ["shared.onnx"]
    read, _result = project()  # no page was read: the new signature was kept all the same
    assert read == set() and hashed == ["shared.onnx"]


def test_deleted_model_warns_at_each_page_and_keeps_warning(project: Builder) -> None:
    (project.src / "models" / "shared.onnx").unlink()
    for _ in range(2):  # the second build changes nothing: the warnings come back
        read, result = project()
        assert read == {"graph", "params"}
        assert sorted(qdq_warnings(result)) == [
            ("graph", FIRST_DIRECTIVE["graph"], "model"),
            ("params", FIRST_DIRECTIVE["params"], "model")]
        assert "no such file" in result.warnings
    factories.save(factories.qdq_pair_model(0.5, 1), project.src / "models" / "shared.onnx")
    read, result = project()
    assert read == {"graph", "params"} and result.warnings == ""
    read, result = project()
    assert read == set()


def test_a_requant_page_that_warned_is_read_again_and_warns_again(project: Builder) -> None:
    page = project.src / "requant.rst"
    page.write_text("Requant\n=======\n\n.. qdq-requant:: /models/other.onnx\n"
                    "   :nodes: ^no such node$\n")
    index = project.src / "index.rst"
    index.write_text(index.read_text() + "   requant\n")
    read, result = project()
    assert "requant" in read
    assert qdq_warnings(result) == [("requant", 4, "filter")]
    read, result = project()  # nothing changed: read again because it warned, warns again
    assert read == {"requant"} and qdq_warnings(result) == [("requant", 4, "filter")]
    page.write_text("Requant\n=======\n\n.. qdq-requant:: /models/other.onnx\n")
    read, result = project()
    assert read == {"requant"} and result.warnings == ""
    read, result = project()
    assert read == set()


def test_changed_external_data_reads_exactly_its_page(project: Builder) -> None:
    scales = project.src / "models" / "ext" / "scales.bin"
    scales.write_bytes(np.asarray([3.0, 5.0, 7.0, 9.0], np.float32).tobytes())
    set_mtime(scales, 3600)  # older than the build: only the content tells
    read, result = project()
    assert read == {"external"} and result.warnings == ""
    page = html(project, "external")
    assert "9" in page and "0.125" not in page


def test_a_model_still_broken_after_an_edit_warns_again(project: Builder) -> None:
    shared = project.src / "models" / "shared.onnx"
    factories.save(factories.qdq_pair_model(float("nan"), 7), shared)
    read, result = project()
    assert read == {"graph", "params"}
    first = sorted(qdq_warnings(result))
    assert first == [("graph", 4, "scale"), ("params", 3, "scale")]
    factories.save(factories.qdq_pair_model(-1.0, 7), shared)
    read, result = project()
    assert read == {"graph", "params"} and sorted(qdq_warnings(result)) == first
    assert "negative" in result.warnings
    read, result = project()  # unchanged: read again because it warned, warns again
    assert read == {"graph", "params"} and sorted(qdq_warnings(result)) == first


@pytest.mark.parametrize(("name", "value", "pages"), [
    ("qdq_graph_mode", "full", {"graph"}),  # external.rst sets :mode: itself
    ("qdq_graph_rankdir", "LR", {"graph", "external"}),
    ("qdq_graph_pairs", "nodes", {"graph"}),  # external.rst is drawn in full mode
    ("qdq_max_graph_nodes", 1000, {"graph", "external"}),
    ("qdq_max_model_bytes", 10**8, {"graph", "params", "summary", "external", "filtered"}),
    ("qdq_models", {"shared": "models/shared.onnx", "other": "models/other.onnx"},
     {"graph", "params", "summary", "external", "filtered"}),
])
def test_config_value_reads_exactly_the_pages_using_it(project: Builder, name: str,
                                                        value: object,
                                                        pages: set[str]) -> None:
    read, result = project(confoverrides={name: value})
    assert read == pages, name
    assert result.warnings == ""
    read, _result = project(confoverrides={name: value})
    assert read == set()


def test_op_fallback_url_rewrites_without_reading(project: Builder) -> None:
    read, result = project(confoverrides={"qdq_op_fallback_url": "https://example.org/{op}"})
    assert read == set() and result.warnings == ""
    assert "https://example.org/DequantizeLinear" in html(project, "filtered")


# -- limits ------------------------------------------------------------------------------------
def test_model_above_the_size_cap_warns_and_a_larger_cap_reads_it(project: Builder) -> None:
    size = (project.src / "models" / "other.onnx").stat().st_size
    read, result = project(confoverrides={"qdq_max_model_bytes": size - 1})
    assert read == {"graph", "params", "summary", "external", "filtered"}
    assert sorted(w for w in qdq_warnings(result) if w[0] in ("summary", "filtered")) == [
        ("filtered", 4, "model"), ("summary", 4, "model")]
    assert "more than the limit" in result.warnings
    read, result = project(confoverrides={"qdq_max_model_bytes": size})
    assert "summary" in read and result.warnings == ""


def test_graph_above_the_node_cap_warns_with_the_way_out_and_draws_a_note(
        tmp_path: Path) -> None:
    src = write_project(tmp_path / "src")
    factories.save(factories.chain_model(60, quantized_every=1), src / "models" / "shared.onnx")
    _read, result = Builder(src)(confoverrides={"qdq_max_graph_nodes": 50})
    warnings = qdq_warnings(result)
    assert ("graph", 4, "graph-size") in warnings
    text = next(w.message for w in parse_warnings(result.warnings) if w.subtype == "graph-size")
    assert ":from:" in text and ":to:" in text and "qdq_max_graph_nodes" in text
    image = re.search(r"_images/(qdq-[0-9a-f]+\.svg)", (result.outdir / "graph.html").read_text()).group(1)
    svg = (result.outdir / "_images" / image).read_text()
    assert "Select a region with :from: and :to:" in svg.replace("&#45;", "-")


def fake_dot(folder: Path, body: str) -> Path:
    script = folder / "fake-dot"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_dot_time_limit_is_a_located_warning_and_the_build_goes_on(tmp_path: Path) -> None:
    src = write_project(tmp_path / "src")
    pids = tmp_path / "dot-pids"
    slow = fake_dot(tmp_path, f"echo $$ >> '{pids}'\nexec sleep 60")
    builder = Builder(src, confoverrides={"graphviz_dot": str(slow), "qdq_dot_timeout": 1})
    _read, result = builder()
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) >= 2  # dot was started for both graphs...
    for pid in started:  # ...and every run was stopped by the time limit, not waited for
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    warnings = qdq_warnings(result)
    assert sorted(w for w in warnings if w[2] == "dot") == [
        ("external", 4, "dot"), ("graph", 4, "dot")]
    assert "took longer than 1 s" in result.warnings and "qdq_dot_timeout" in result.warnings
    assert "Graph" in html(builder, "graph")  # the page is written without its picture
    assert not list((builder.outdir / "html" / "_images").glob("*.tmp"))
    # nothing changed: the pages whose graphs failed are read, and warn, again
    read, result = builder()
    assert read == {"graph", "external"} and len(qdq_warnings(result)) == 2
    # dot works again: the graphs are drawn, the warnings are gone
    read, result = builder(confoverrides={})
    assert result.warnings == ""
    assert len(list((builder.outdir / "html" / "_images").glob("qdq-*.svg"))) == 2


def test_dot_failure_is_one_located_line(tmp_path: Path) -> None:
    src = write_project(tmp_path / "src")
    broken = fake_dot(tmp_path, 'echo "Error: something\nsecond line" >&2; exit 3')
    _read, result = Builder(src, confoverrides={"graphviz_dot": str(broken)})()
    records = [w for w in parse_warnings(result.warnings) if w.subtype == "dot"]
    assert len(records) == 2 and all(w.continuation == () for w in records)
    assert all("exit status 3: Error: something" in w.message for w in records)


# -- parallel builds ------------------------------------------------------------------------------
def shared_pages(count: int) -> dict[str, str]:
    """*count* pages drawing the same two graphs (and tabulating one model, once)."""
    pages = {"index.rst": "Index\n=====\n\n.. toctree::\n\n"
                          + "".join(f"   p{i}\n" for i in range(count))}
    for i in range(count):
        body = (f"Page {i}\n=======\n\n.. qdq-graph:: /models/shared.onnx\n\n"
                f".. qdq-graph:: shared\n   :mode: full\n\n.. qdq-summary:: /models/other.onnx\n")
        if i == 0:
            body += "\n.. qdq-params:: shared\n"
        pages[f"p{i}.rst"] = body
    return pages


def parallel_project(src: Path) -> Path:
    write_project(src)
    for name in PAGES:
        (src / name).unlink()
    for name, text in shared_pages(12).items():
        (src / name).write_text(text)
    factories.save_tiny_resnet_qdq(src / "models" / "shared.onnx")
    return src


def test_parallel_and_serial_builds_write_the_same_html(tmp_path: Path) -> None:
    serial = build(parallel_project(tmp_path / "a"), "html", outdir=tmp_path / "a-out")
    loader.clear_cache()
    parallel = build(parallel_project(tmp_path / "b"), "html", outdir=tmp_path / "b-out",
                     parallel=4)
    assert serial.warnings == parallel.warnings == ""

    def files(outdir: Path, pattern: str) -> dict[str, bytes]:
        return {str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob(pattern))}

    assert files(serial.outdir, "*.html") == files(parallel.outdir, "*.html")
    svgs = files(parallel.outdir, "_images/*.svg")
    assert svgs == files(serial.outdir, "_images/*.svg") and len(svgs) == 2
    for content in svgs.values():
        ElementTree.fromstring(content)  # whole files: no page read a half-written one
    assert not list(parallel.outdir.rglob("*.tmp"))


def test_records_of_a_parallel_read_drive_the_next_build(tmp_path: Path) -> None:
    """What the pages read (merged from the reading processes) decides the next build."""
    src = write_project(tmp_path / "src")
    builder = Builder(src, parallel=2)
    (src / "models" / "other.onnx").unlink()  # two pages warn
    read, result = builder()
    assert read == ALL_PAGES and len(qdq_warnings(result)) == 2
    factories.save(factories.weight_dq_model(), src / "models" / "other.onnx")
    shared = src / "models" / "shared.onnx"
    factories.save(factories.qdq_pair_model(0.75, 2), shared)
    set_mtime(shared, 3600)
    read, result = builder()
    assert read == {"graph", "params", "summary", "filtered"} and result.warnings == ""
