"""``dot`` started ahead of the page writer (``qdq_dot_jobs``): when a page's links are
resolved, the dot runs of all its graphs start, a few at a time, and each visitor takes
its picture. Counted here, never timed (``benchmarks/RESULTS.md`` times it): the same
pictures and pages as drawing one after another in the writer, one dot run per picture,
runs really overlapping, failures reported as before, and nothing ahead in a parallel
(``-j``) build, whose writers are forked processes.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from sphinx_helpers import build, make_project
from test_performance_counts import DotCounter

from sphinxext_qdq.sphinx import nodes as qdq_nodes

#: One page, three different drawings of the tiny model (the first one twice: one
#: picture); a second page in a sub-folder (its SVG links start from another folder)
#: with a fourth.
PAGES = {
    "index.md": "# Index\n\n```{toctree}\ngraphs\nsub/more\nparams\n```\n",
    "graphs.md": ("# Graphs\n\n```{qdq-graph} tiny\n```\n\n"
                  "```{qdq-graph} tiny\n:mode: full\n```\n\n"
                  "```{qdq-graph} tiny\n:mode: full\n:from: conv1\n:to: add\n```\n\n"
                  "The first again.\n\n```{qdq-graph} tiny\n```\n"),
    "sub/more.md": "# More\n\n```{qdq-graph} tiny\n:rankdir: LR\n```\n",
    "params.md": "# Parameters\n\n```{qdq-params} tiny\n```\n",
}
PICTURES = 4
GRAPHS = 5


def project(tmp_path: Path, conf: str = "") -> Path:
    return make_project(tmp_path / "src", root=None, pages=PAGES, conf=conf)


def output(result) -> dict[str, bytes]:
    """Every picture and page of a build, by name."""
    out = result.outdir
    files = [*out.glob("_images/qdq-*"), *out.glob("*.html"), *out.glob("sub/*.html")]
    return {str(path.relative_to(out)): path.read_bytes() for path in files}


def built(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch, jobs: int,
          builder: str = "html", parallel: int = 0, conf: str = ""):
    """(build, dot runs, pictures started ahead) of the project with ``qdq_dot_jobs``."""
    dot = DotCounter(monkeypatch)
    started = qdq_nodes.ahead.started
    result = build(project(tmp_path / name, conf), builder, outdir=tmp_path / name / "out",
                   parallel=parallel, confoverrides={"qdq_dot_jobs": jobs})
    return result, dot.runs, qdq_nodes.ahead.started - started


def test_drawing_ahead_gives_the_pictures_and_pages_of_drawing_in_the_writer(
        tmp_path, monkeypatch):
    serial, serial_runs, serial_ahead = built(tmp_path, "serial", monkeypatch, jobs=1)
    ahead, ahead_runs, started = built(tmp_path, "ahead", monkeypatch, jobs=2)
    assert serial.warnings == ahead.warnings == ""
    assert (serial_ahead, started) == (0, PICTURES)
    assert serial_runs == ahead_runs == PICTURES  # nothing drawn twice
    assert output(ahead) == output(serial)
    assert len([name for name in output(ahead) if name.endswith(".svg")]) == PICTURES
    assert qdq_nodes.ahead.pending == {}  # every picture started ahead was taken


def test_a_latex_build_draws_its_pdfs_ahead_too(tmp_path, monkeypatch):
    serial, _, _ = built(tmp_path, "serial", monkeypatch, jobs=1, builder="latex")
    ahead, runs, started = built(tmp_path, "ahead", monkeypatch, jobs=2, builder="latex")
    assert serial.warnings == ahead.warnings == ""
    assert started == runs == PICTURES
    pdfs = sorted(path.name for path in ahead.outdir.glob("qdq-*.pdf"))
    assert pdfs == sorted(path.name for path in serial.outdir.glob("qdq-*.pdf"))
    assert len(pdfs) == PICTURES


@pytest.mark.parametrize(("parallel", "ahead"), [(2, 0), (1, PICTURES)])
def test_a_parallel_build_draws_in_its_writers(tmp_path, monkeypatch, parallel, ahead):
    """``-j 2`` forks its writers: nothing is started ahead; ``-j 1`` is a serial build."""
    result, _, started = built(tmp_path, "parallel", monkeypatch, jobs=2,
                                  parallel=parallel)
    assert result.warnings == ""
    assert started == ahead
    assert len(list(result.outdir.glob("_images/qdq-*.svg"))) == PICTURES


def counting_dot(folder: Path) -> Path:
    """A ``graphviz_dot`` that notes how many of its kind are running when it starts
    (in ``folder/started``), lingers a moment so that a run started alongside it can see
    it, then runs the real ``dot``."""
    running = folder / "running"
    running.mkdir(parents=True)
    script = folder / "dot"
    script.write_text(
        "#!/bin/sh\n"
        f'touch "{running}/$$"\n'
        f'ls "{running}" | wc -l >> "{folder}/started"\n'
        "sleep 0.3\n"
        f'"{shutil.which("dot")}" "$@"\n'
        "status=$?\n"
        f'rm -f "{running}/$$"\n'
        "exit $status\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize(("jobs", "together"), [(1, 1), (2, 2)])
def test_dot_runs_of_one_page_overlap_up_to_qdq_dot_jobs(tmp_path, monkeypatch, jobs,
                                                         together):
    dot = counting_dot(tmp_path / "dot")
    result, _, _ = built(tmp_path, "build", monkeypatch, jobs=jobs,
                         conf=f"graphviz_dot = {str(dot)!r}")
    assert result.warnings == ""
    seen = [int(line) for line in (tmp_path / "dot" / "started").read_text().split()]
    assert len(seen) == PICTURES
    assert max(seen) == together


def test_a_failure_ahead_is_the_located_warning_of_the_writer(tmp_path, monkeypatch):
    """dot failing on every drawing: the same warnings, at the same lines, with or
    without drawing ahead, and the pages are still written."""
    failing = tmp_path / "failing-dot"
    failing.write_text("#!/bin/sh\necho 'Error: no layout today' >&2\nexit 3\n")
    failing.chmod(failing.stat().st_mode | stat.S_IXUSR)
    conf = f"graphviz_dot = {str(failing)!r}"
    serial, _, _ = built(tmp_path, "serial", monkeypatch, jobs=1, conf=conf)
    ahead, _, started = built(tmp_path, "ahead", monkeypatch, jobs=2, conf=conf)
    assert started == PICTURES
    warnings = [line.split("src", 1)[-1] for line in ahead.warnings.splitlines()]
    assert warnings == [line.split("src", 1)[-1] for line in serial.warnings.splitlines()]
    assert len([w for w in warnings if "[qdq.dot]" in w]) == GRAPHS  # one per directive
    assert "graphs.md:3: WARNING" in ahead.warnings
    assert "Traceback" not in ahead.warnings
    assert (ahead.outdir / "graphs.html").is_file()


def test_qdq_dot_jobs_zero_is_one_per_processor_at_most_four(monkeypatch):
    class Config:
        qdq_dot_jobs = 0

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert qdq_nodes.dot_jobs(Config) == qdq_nodes.MAX_AUTO_DOT_JOBS == 4
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert qdq_nodes.dot_jobs(Config) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "undetermined"
    assert qdq_nodes.dot_jobs(Config) == 1
    Config.qdq_dot_jobs = 3
    assert qdq_nodes.dot_jobs(Config) == 3


def test_closing_waits_for_the_runs_going_and_drops_the_queued_ones():
    """``build-finished``: a run still going is waited for (no ``dot`` outlives the build),
    one not started yet never starts, and nothing is kept."""
    started, release, ran = threading.Event(), threading.Event(), []

    def first() -> None:
        started.set()
        release.wait(30)
        ran.append("first")

    ahead = qdq_nodes._Ahead()
    ahead.submit(1, Path("first.svg"), first)
    ahead.submit(1, Path("queued.svg"), lambda: ran.append("queued"))
    assert started.wait(30)
    releasing = threading.Timer(0.2, release.set)  # lets close() begin to wait first
    releasing.start()
    ahead.close()
    assert ran == ["first"]  # before close() returned
    releasing.join()
    assert ran == ["first"]
    assert (ahead.pool, ahead.pending) == (None, {})
