"""Every hostile input of :mod:`hostile_corpus` through every directive and the CLI.

One Sphinx project holds the whole corpus: a page per case using the model with
``qdq-graph`` (compact and full), ``qdq-params`` (both layouts) and ``qdq-summary``.
It is built once (HTML, then text); the warnings are mapped back to the pages by
file name and line. For every case: no traceback, the build finishes and writes the
page whole, and each problem is exactly one one-line warning at the page and line
of a directive with ``type='qdq'`` and a documented subtype. The CLI gives exit
status 2 and one line for unreadable models, 0 and one-line warnings otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import hostile_corpus as corpus
import pytest
from hostile_corpus import (
    CORPUS,
    DIRECTIVES,
    EXPECTED_WARNINGS,
    GLUE_SUBTYPES,
    REFUSED,
    Case,
    case_page,
    parse_warnings,
)
from sphinx_helpers import build

from sphinxext_qdq import cli
from sphinxext_qdq.analysis.loader import QdqModelError, load_qdq_model
from sphinxext_qdq.analysis.records import DIAGNOSTIC_SUBTYPES
from sphinxext_qdq.render.outline import outline

#: ``qdq_max_graph_nodes`` of the corpus project (the big cases exceed it).
MAX_GRAPH_NODES = 100
DOCUMENTED_SUBTYPES = frozenset(DIAGNOSTIC_SUBTYPES) | GLUE_SUBTYPES
MYST_CASES = ("scale-nan", "random-bytes", "ext-dotdot")

CONF = f"""
extensions = ["myst_parser", "sphinxext_qdq"]
graphviz_output_format = "svg"
exclude_patterns = ["_build"]
qdq_max_graph_nodes = {MAX_GRAPH_NODES}
"""


@dataclass
class CorpusProject:
    src: Path
    models: dict[str, Path]  # case name -> model path
    pages: dict[str, corpus.CasePage]
    html: object

    def warnings_of(self, build_result: object, page_file: str) -> list[corpus.Warning_]:
        return [w for w in parse_warnings(build_result.warnings)  # type: ignore[attr-defined]
                if Path(w.file).name == page_file]


def myst_page(case: Case, argument: str) -> tuple[str, tuple[int, ...]]:
    """The same directives in MyST (``:no-index:`` so the rows are not documented twice)."""
    lines = ["---", "orphan: true", "---", "", f"# MyST case {case.name}", ""]
    positions = []
    for directive, options in DIRECTIVES:
        positions.append(len(lines) + 1)
        lines.append(f"```{{{directive}}} {argument}")
        lines += [f":{key}: {value}" for key, value in options.items()]
        if directive == "qdq-params":
            lines.append(":no-index:")
        lines += ["```", "", "Text after the directive.", ""]
    return "\n".join(lines), tuple(positions)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> CorpusProject:
    src = tmp_path_factory.mktemp("corpus") / "src"
    (src / "cases").mkdir(parents=True)
    (src / "conf.py").write_text(CONF)
    (src / "index.rst").write_text("Hostile corpus\n==============\n\nNothing here.\n")
    models, pages = {}, {}
    for case in CORPUS.cases:
        models[case.name] = case.model_path(src / "models")
        argument = "/" + models[case.name].relative_to(src).as_posix()
        page = case_page(case, argument)
        (src / f"{page.docname}.rst").write_text(page.text)
        pages[case.name] = page
        if case.name in MYST_CASES:
            text, positions = myst_page(case, argument)
            (src / "cases" / f"myst-{case.name}.md").write_text(text)
            pages[f"myst-{case.name}"] = corpus.CasePage(f"cases/myst-{case.name}", text,
                                                         positions)
    html = build(src, "html", outdir=src.parent / "build", parallel=2)  # two processes
    return CorpusProject(src, models, pages, html)


def outcome(path: Path) -> tuple[str, object]:
    """What the loader makes of the file: ("refused", error) or ("readable", analysis)."""
    try:
        return "readable", load_qdq_model(path)
    except QdqModelError as error:
        return "refused", error


def refused(case: Case) -> bool:
    """The case's model is refused, as declared in :data:`EXPECTED_WARNINGS`."""
    return EXPECTED_WARNINGS[case.name] == REFUSED


def declared_diagnostics(case: Case) -> Counter:
    """Subtype counts of the analysis diagnostics the case declares (no directive suffix)."""
    declared = EXPECTED_WARNINGS[case.name]
    assert declared != REFUSED, case.name
    return Counter(entry for entry in declared if "@" not in entry)


def expected_warnings(case: Case, positions: tuple[int, ...]) -> Counter:
    """(line, subtype) of every warning the page of *case* must carry, and no other."""
    declared = EXPECTED_WARNINGS[case.name]
    if declared == REFUSED:
        return Counter((line, "model") for line in positions)
    expected: Counter = Counter()
    for entry in declared:
        subtype, _, directive = entry.partition("@")
        expected[positions[int(directive or 0)], subtype] += 1
    return expected


CASE_NAMES = [case.name for case in CORPUS.cases]


def test_every_case_declares_its_warnings() -> None:
    """The table covers the corpus and agrees with each case's own description."""
    assert list(EXPECTED_WARNINGS) == CASE_NAMES
    for case in CORPUS.cases:
        if case.outcome != "either":
            assert refused(case) == (case.outcome == "refused"), case.name
        if refused(case):
            continue
        declared = EXPECTED_WARNINGS[case.name]
        assert set(declared_diagnostics(case)) <= set(DIAGNOSTIC_SUBTYPES), case.name
        assert case.subtypes <= set(declared_diagnostics(case)), case.name
        if case.exact:
            assert set(declared_diagnostics(case)) == case.subtypes, case.name
        assert case.no_qdq or "filter@2" not in declared, case.name  # (QOperator: Q at the edges)
        assert case.big == any(entry.startswith("graph-size@") for entry in declared), case.name


def test_the_loader_refuses_exactly_the_declared_cases(project: CorpusProject) -> None:
    for case in CORPUS.cases:
        kind, result = outcome(project.models[case.name])
        assert (kind == "refused") == refused(case), f"{case.name}: {result}"


CASE_NAMES = [case.name for case in CORPUS.cases]


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS.cases) >= 40
    outcomes = Counter(case.outcome for case in CORPUS.cases)
    assert outcomes["refused"] >= 10 and outcomes["readable"] >= 30


def check_page_warnings(project: CorpusProject, build_result: object, key: str,
                        case: Case) -> None:
    page = project.pages[key]
    suffix = ".md" if key.startswith("myst-") else ".rst"
    warnings = project.warnings_of(build_result, Path(page.docname).name + suffix)
    for warning in warnings:
        assert warning.continuation == (), f"multi-line warning: {warning}"
        assert warning.level == "WARNING", warning
        assert warning.type is not None and warning.type.startswith("qdq."), warning
        assert warning.subtype in DOCUMENTED_SUBTYPES, warning
        assert "Traceback" not in warning.message
    got = Counter((w.line, w.subtype) for w in warnings)
    assert got == expected_warnings(case, page.directive_lines)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_html_build_warns_once_per_problem_at_the_directive(project: CorpusProject,
                                                            name: str) -> None:
    case = next(c for c in CORPUS.cases if c.name == name)
    check_page_warnings(project, project.html, name, case)
    html = (project.html.outdir / "cases" / f"{name}.html").read_text(encoding="utf-8")
    assert html.count("Text after the directive.") == len(DIRECTIVES)
    assert "Traceback" not in html


@pytest.mark.parametrize("name", MYST_CASES)
def test_myst_pages_are_located_too(project: CorpusProject, name: str) -> None:
    case = next(c for c in CORPUS.cases if c.name == name)
    check_page_warnings(project, project.html, f"myst-{name}", case)


def test_no_warning_outside_the_case_pages(project: CorpusProject) -> None:
    for warning in parse_warnings(project.html.warnings):
        assert Path(warning.file).parent.name == "cases", warning


def test_outline_of_every_readable_case(project: CorpusProject) -> None:
    """What the text and man builders print for a graph, whole and without control
    characters, for every model that loads."""
    for case in CORPUS.cases:
        if not refused(case):
            _, analysis = outcome(project.models[case.name])
            text = "\n".join(outline(analysis, None))  # type: ignore[arg-type]
            assert "Inputs:" in text and "Outputs:" in text, case.name


#: Cases built again with the text, man and LaTeX builders (their visitors differ).
OTHER_BUILDER_CASES = ("awkward-names", "giant-name", "random-bytes", "ext-dotdot",
                       "tiny-invalid-utf8-name", "float-model", "qoperator", "nested-if-20",
                       "hostile-doc-strings", "tiny-scale-type-999")


@pytest.mark.parametrize("builder", ["text", "man", "latex"])
def test_other_builders_write_the_pages_with_the_same_warnings(
        project: CorpusProject, tmp_path: Path, builder: str) -> None:
    src = tmp_path / "src"
    (src / "cases").mkdir(parents=True)
    (src / "conf.py").write_text(CONF + "man_pages = [(f'cases/{n}', n, n, '', 1) for n in "
                                 f"{list(OTHER_BUILDER_CASES)!r}]\n")
    (src / "index.rst").write_text("Index\n=====\n")
    cases = [c for c in CORPUS.cases if c.name in OTHER_BUILDER_CASES]
    for case in cases:
        shutil.copytree(project.models[case.name].parent, src / "models" / case.name,
                        symlinks=True)
        (src / "outside").mkdir(exist_ok=True)
        page = project.pages[case.name]
        (src / f"{page.docname}.rst").write_text(page.text)
    result = build(src, builder)
    for case in cases:
        page = project.pages[case.name]
        warnings = [w for w in parse_warnings(result.warnings)
                    if Path(w.file).name == f"{case.name}.rst"]
        assert all(w.continuation == () and w.subtype in DOCUMENTED_SUBTYPES for w in warnings)
        assert Counter((w.line, w.subtype) for w in warnings) == expected_warnings(
            case, page.directive_lines), case.name


def test_readable_cases_draw_both_graphs(project: CorpusProject) -> None:
    for case in CORPUS.cases:
        html = (project.html.outdir / "cases" / f"{case.name}.html").read_text(encoding="utf-8")
        drawn = html.count('<object data="../_images/qdq-')
        too_big = sum(entry.startswith("graph-size@") for entry in EXPECTED_WARNINGS[case.name])
        assert drawn == (0 if refused(case) else 2), case.name  # a note drawn for a big one
        assert too_big <= drawn, case.name


# -- the command line --------------------------------------------------------------------------
@pytest.mark.parametrize("name", CASE_NAMES)
def test_cli_exit_status_and_one_line_messages(project: CorpusProject, name: str,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    case = next(c for c in CORPUS.cases if c.name == name)
    path = project.models[name]
    status = cli.main([str(path), "-o", str(tmp_path), "--format", "dot"])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert err == "" or err.endswith("\n")
    assert "Traceback" not in err
    if refused(case):
        assert status == 2 and len(lines) == 1, err
        assert lines[0].startswith("qdq-graph: error: ")
        assert out == ""
        return
    assert status == 0, err
    assert all(line.startswith("qdq-graph: warning: ") for line in lines), err
    subtypes = Counter(line.rsplit("[qdq.", 1)[1].rstrip("]") for line in lines)
    assert subtypes == declared_diagnostics(case), err
    assert out.strip() == str(tmp_path / f"{path.stem}.dot")


@pytest.mark.parametrize("name", ["random-bytes", "scale-nan", "awkward-names"])
def test_python_dash_m_on_hostile_inputs(project: CorpusProject, name: str,
                                         tmp_path: Path) -> None:
    """The real entry point in a fresh process: same exit status, no traceback."""
    path = project.models[name]
    result = subprocess.run([sys.executable, "-m", "sphinxext_qdq", str(path), "-o",
                             str(tmp_path), "--format", "svg"], capture_output=True,
                            text=True, timeout=120, check=False)
    case = next(c for c in CORPUS.cases if c.name == name)
    assert "Traceback" not in result.stderr
    if refused(case):
        assert result.returncode == 2 and result.stderr.count("\n") == 1
    else:
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("\n") == sum(declared_diagnostics(case).values())
        assert (tmp_path / f"{path.stem}.svg").read_text().startswith("<?xml")
