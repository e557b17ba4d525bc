"""Building small Sphinx projects in tests: copy a test root (or write pages),
generate its models, build with the real builders, and follow links."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from urllib.parse import unquote, urlsplit

import qdq_factories
from sphinx.testing.util import SphinxTestApp

ROOTS = Path(__file__).parent / "roots"
XLINK = "{http://www.w3.org/1999/xlink}href"
SVG_NS = {"svg": "http://www.w3.org/2000/svg"}


@dataclass
class Build:
    app: SphinxTestApp
    status: str
    warnings: str

    @property
    def outdir(self) -> Path:
        return Path(self.app.outdir)


def make_project(dest: Path, root: str | None = "qdq", pages: dict[str, str] | None = None,
                 conf: str = "") -> Path:
    """A source tree in *dest*: a copy of ``tests/roots/test-<root>`` plus *pages*,
    with the tiny QDQ model written to ``models/tiny.onnx``."""
    if root:
        shutil.copytree(ROOTS / f"test-{root}", dest)
    else:
        dest.mkdir(parents=True)
        (dest / "conf.py").write_text(
            'extensions = ["myst_parser", "sphinxext_qdq"]\n'
            'graphviz_output_format = "svg"\nqdq_models = {"tiny": "models/tiny.onnx"}\n')
    for name, text in (pages or {}).items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if conf:
        with (dest / "conf.py").open("a") as handle:
            handle.write("\n" + conf + "\n")
    qdq_factories.save_tiny_resnet_qdq(dest / "models" / "tiny.onnx")
    return dest


def build(srcdir: Path, builder: str = "html", *, outdir: Path | None = None,
          parallel: int = 0, confoverrides: dict | None = None, freshenv: bool = False,
          on_app=None) -> Build:
    """Build *srcdir* with the real builder; return the app and its captured output."""
    status, warning = StringIO(), StringIO()
    app = SphinxTestApp(builder, srcdir=srcdir,
                        builddir=(outdir or srcdir / "_build"),
                        confoverrides=confoverrides or {}, status=status, warning=warning,
                        freshenv=freshenv, parallel=parallel)
    try:
        if on_app:
            on_app(app)
        app.build()
    finally:
        app.cleanup()
    return Build(app, status.getvalue(), strip_colors(warning.getvalue()))


def strip_colors(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def svg_links(svg: Path) -> list[str]:
    """Every link (``xlink:href``) inside an SVG produced by dot."""
    tree = ET.parse(svg)
    return [a.attrib[XLINK] for a in tree.getroot().iterfind(".//svg:a", SVG_NS)
            if XLINK in a.attrib]


def svg_targets(svg: Path) -> list[str]:
    tree = ET.parse(svg)
    return [a.attrib.get("target", "") for a in tree.getroot().iterfind(".//svg:a", SVG_NS)
            if XLINK in a.attrib]


def follow(base_file: Path, href: str) -> tuple[Path, str]:
    """The file and fragment a relative link from *base_file* reaches."""
    parts = urlsplit(href)
    path = base_file if not parts.path else (base_file.parent / unquote(parts.path)).resolve()
    if path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


def has_id(html_file: Path, anchor: str) -> bool:
    text = html_file.read_text(encoding="utf-8")
    return f'id="{anchor}"' in text
