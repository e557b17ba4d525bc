"""Sphinx configuration for the sphinxext_qdq documentation.

The source directory is the repository root so that models are reachable from
every page as ``/models/...``; only ``docs/**`` is read.

Numbers on the pages are never typed by hand: at ``builder-inited`` the build
writes Markdown fragments under ``docs/_generated/`` (from the committed models,
``models/resnet8_report.json`` and the extension's code; see ``docs/_ext/``) and
draws ``docs/images/resnet8_qdq_architecture.svg`` / ``.png`` with
``scripts/annotate_qdq_graph.py``. Both are ignored by git and rewritten only when
their content changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).parent.resolve()
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import architecture_picture
import extension_reference
import fragments
import implementer_fragments
import package_map
import resnet8_fragments
from sphinx.util import logging

from sphinxext_qdq import __version__

project = "sphinxext_qdq"
author = "The sphinxext_qdq team"
copyright = "2026, The sphinxext_qdq team"
release = version = __version__

root_doc = "docs/index"
include_patterns = ["docs/**"]
exclude_patterns = ["_build", ".venv", "**/.ipynb_checkpoints", "docs/_generated/**"]

extensions = [
    "myst_parser",
    "sphinx.ext.graphviz",
    "sphinx.ext.mathjax",
    "sphinxext_qdq",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist", "substitution"]
myst_heading_anchors = 3
myst_substitutions = {**resnet8_fragments.substitutions(),
                      **implementer_fragments.substitutions()}

graphviz_output_format = "svg"

qdq_models = {
    "resnet8": "models/resnet8_int8.onnx",
    "resnet8-uint8": "models/resnet8_uint8.onnx",
    "resnet8-per-channel": "models/resnet8_int8_per_channel.onnx",
    "resnet18": "models/resnet18_half_int8.onnx",
    "resnet8-qoperator": "models/resnet8_qoperator.onnx",
    "resnet8-dynamic": "models/resnet8_dynamic.onnx",
}

html_theme = "sphinx_rtd_theme"
html_title = "sphinxext_qdq"
html_static_path = ["docs/_static"]
html_css_files = ["qdq-docs.css"]

latex_engine = "pdflatex"
latex_documents = [
    (root_doc, "sphinxext_qdq.tex", "sphinxext\\_qdq: QDQ ONNX models for hardware implementers",
     author.replace("_", "\\_"), "manual"),
]
latex_elements = {
    "papersize": "a4paper",
    "sphinxsetup": "hmargin={2cm,2cm}, vmargin={2.5cm,2.5cm}",
}

logger = logging.getLogger("conf")


def write_generated_content(app: object) -> None:
    """Fragments and the architecture picture, before any page is read."""
    reference, problems = extension_reference.reference_fragments(app)
    for problem in problems:
        logger.warning(problem, type="docs", subtype="reference")
    fragments.write_fragments({**resnet8_fragments.all_fragments(),
                               **implementer_fragments.all_fragments(), **reference,
                               **package_fragments()})
    try:
        architecture_picture.draw_architecture()
    except architecture_picture.PictureError as error:
        logger.warning("%s", error, type="docs", subtype="picture")


def package_fragments() -> dict[str, str]:
    """The package's import graph (DOT) and its modules (a table), read from the source."""
    modules = package_map.import_graph(package_map.package_root())
    rows = [(fragments.code(folder), fragments.code(name), doc)
            for folder, name, doc in package_map.module_table(modules)]
    return {"package-map.dot": package_map.folder_dot(modules),
            "package-modules.md": fragments.table(["Folder", "Module", "What it owns"], rows,
                                                  widths=[22, 20, 58])}


def setup(app: object) -> None:
    app.connect("builder-inited", write_generated_content)
