"""Work counts of a build with many directives on one model (no timing here).

Twenty directives on one model over four pages: the model is parsed once per
process, each distinct picture is drawn by one dot process, and a no-op rebuild
parses nothing and runs dot zero times. ``benchmarks/run.py`` measures the time.
"""

from __future__ import annotations

import subprocess

import pytest
import sphinx.ext.graphviz
from sphinx_helpers import build, make_project

from sphinxext_qdq.analysis import loader

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


def test_no_op_rebuild_parses_nothing_and_draws_nothing(tmp_path, monkeypatch,
                                                        twenty_directives):
    out = tmp_path / "out"
    build(twenty_directives, "html", outdir=out)
    dot = DotCounter(monkeypatch)
    loader.clear_cache()  # a rebuild in a new process starts with an empty cache
    parses = loader.parse_count()
    read: list[str] = []

    def hook(app) -> None:
        app.connect("source-read", lambda _app, docname, _source: read.append(docname))

    result = build(twenty_directives, "html", outdir=out, on_app=hook)
    assert result.warnings == ""
    assert read == []
    assert loader.parse_count() == parses
    assert dot.runs == 0


def test_editing_one_page_parses_once_and_draws_nothing(tmp_path, monkeypatch,
                                                       twenty_directives):
    """The edited page is read again (one parse); its pictures are already in the
    output, so dot does not run."""
    out = tmp_path / "out"
    build(twenty_directives, "html", outdir=out)
    edited = twenty_directives / "page2.md"
    edited.write_text(edited.read_text() + "\nOne more sentence.\n")
    dot = DotCounter(monkeypatch)
    loader.clear_cache()
    parses = loader.parse_count()
    read: list[str] = []

    def hook(app) -> None:
        app.connect("source-read", lambda _app, docname, _source: read.append(docname))

    result = build(twenty_directives, "html", outdir=out, on_app=hook)
    assert result.warnings == ""
    assert read == ["page2"]
    assert loader.parse_count() - parses == 1
    assert dot.runs == 0
