"""The real documentation, built once per test session with the real ``sphinx-build``.

``test_docs_build.py`` and ``test_browser.py`` both ask for the HTML build; the
module-level cache makes sure it runs once, and the PDF build shares its doctrees
(``sphinx-build -M`` keeps them in ``<root>/doctrees``), as ``make docs pdf`` would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
MODELS = REPOSITORY / "models"
SPHINX_OPTIONS = ["-W", "--keep-going", "-n"]
BUILD_TIMEOUT = 900

#: The pages of the documentation set, by docname.
PAGES = ("docs/index", "docs/quantization/01-boundary-operations",
         "docs/quantization/02-qlinearconv", "docs/quantization/03-qlinearmatmul",
         "docs/quantization/04-architecture", "docs/quantization/05-integer-pipeline",
         "docs/quantization/06-numerics", "docs/quantization/07-formats",
         "docs/using", "docs/reference", "docs/performance")


@dataclass(frozen=True)
class DocsBuild:
    """One finished ``sphinx-build -M <target>`` run."""

    outdir: Path
    returncode: int
    output: str

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.output.splitlines()
                if "WARNING" in line or "ERROR" in line]

    def page(self, docname: str) -> Path:
        return self.outdir / f"{docname}.html"


_roots: list[Path] = []
_builds: dict[str, DocsBuild] = {}


def build(target: str, tmp_path_factory: pytest.TempPathFactory) -> DocsBuild:
    """``sphinx-build -M <target> <repository> <root> -W --keep-going -n``, once per session."""
    if not _roots:
        _roots.append(tmp_path_factory.mktemp("docs-build"))
    if target not in _builds:
        root = _roots[0]
        environment = dict(os.environ, LATEXOPTS="-interaction=nonstopmode -halt-on-error")
        result = subprocess.run(
            [sys.executable, "-m", "sphinx", "-M", target, str(REPOSITORY), str(root),
             *SPHINX_OPTIONS],
            cwd=REPOSITORY, env=environment, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, errors="replace", timeout=BUILD_TIMEOUT, check=False)
        outdir = root / ("latex" if target.startswith("latex") else target)
        _builds[target] = DocsBuild(outdir, result.returncode, result.stdout + result.stderr)
    return _builds[target]


# -- reading HTML -------------------------------------------------------------------------


@dataclass
class HtmlTable:
    classes: list[str]
    caption: str
    rows: list[list[str]]  # body rows; a cell's paragraphs joined by "\n"


class TableCollector(HTMLParser):
    """Every ``<table>`` of a page: classes, caption and body cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[HtmlTable] = []
        self._table: HtmlTable | None = None
        self._in_body = self._in_caption = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = HtmlTable((dict(attrs).get("class") or "").split(), "", [])
        elif self._table is None:
            return
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._table.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []
        elif tag == "p" and self._cell is not None and self._cell:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._table is None:
            return
        if tag == "table":
            self.tables.append(self._table)
            self._table = None
        elif tag == "caption":
            self._in_caption = False
        elif tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self._table.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption and self._table is not None:
            self._table.caption += data


def html_tables(path: Path) -> list[HtmlTable]:
    collector = TableCollector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector.tables


def html_text(path: Path) -> str:
    """The visible text of a page, whitespace collapsed."""
    html = path.read_text(encoding="utf-8")
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.DOTALL)
    html = html.replace("<wbr>", "")  # a break point inside a name, not a space
    text = re.sub(r"<[^>]+>", " ", html)
    for entity, char in (("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&#8212;", "—"),
                         ("&nbsp;", " ")):
        text = text.replace(entity, char)
    return re.sub(r"\s+", " ", text)
