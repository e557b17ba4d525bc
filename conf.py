"""Sphinx configuration for the sphinxext_qdq documentation.

The source directory is the repository root so that models are reachable from
every page as ``/models/...``; only ``docs/**`` is read.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.resolve()))

from sphinxext_qdq import __version__  # noqa: E402

project = "sphinxext_qdq"
author = "The sphinxext_qdq team"
copyright = "2026, The sphinxext_qdq team"
release = version = __version__

root_doc = "docs/index"
include_patterns = ["docs/**"]
exclude_patterns = ["_build", ".venv", "**/.ipynb_checkpoints"]

extensions = [
    "myst_parser",
    "sphinx.ext.graphviz",
    "sphinx.ext.mathjax",
    "sphinxext_qdq",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

graphviz_output_format = "svg"

qdq_models = {
    "resnet8": "models/resnet8_int8.onnx",
    "resnet8-uint8": "models/resnet8_uint8.onnx",
    "resnet8-per-channel": "models/resnet8_int8_per_channel.onnx",
}

html_theme = "sphinx_rtd_theme"
html_title = "sphinxext_qdq"

latex_engine = "pdflatex"
latex_documents = [
    (root_doc, "sphinxext_qdq.tex", "sphinxext\\_qdq: QDQ ONNX models for hardware implementers",
     author, "manual"),
]
