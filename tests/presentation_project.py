"""A small "stock" project using every directive and role of the extension, with a
``conf.py`` of its own (nothing from this repository's), for the theme / builder matrix
and the PDF check. The model is registered as ``small`` (file stem ``tiny``): roles use
both names."""

from __future__ import annotations

from pathlib import Path

import qdq_factories

CONF = '''\
project = "stock"
extensions = ["myst_parser", "sphinxext_qdq"]
graphviz_output_format = "svg"
qdq_models = {"small": "models/tiny.onnx"}
exclude_patterns = ["_build"]
numfig = True
'''

INDEX = """\
Stock project
=============

.. toctree::

   ops
   graphs
   tables
   refs

.. qdq-summary:: small
   :caption: What the model holds
"""

OPS = """\
Operators
=========

.. qdq:op:: QuantizeLinear

   Quantizes a float tensor.

.. qdq:op:: DequantizeLinear

   Reconstructs a float tensor.

.. qdq:op:: Conv
   :no-index-entry:

   A convolution.
"""

GRAPHS = """\
Graphs
======

.. qdq-graph:: small
   :caption: The whole model, top to bottom
   :legend:

.. qdq-graph:: small
   :rankdir: LR
   :caption: The same model, left to right
"""

TABLES = """\
Tables
======

.. qdq-params:: small
   :caption: Every QuantizeLinear and DequantizeLinear node of the model with its scale
             and zero point, and the tensor it quantizes
   :name: params-table

.. qdq-params:: small
   :layout: initializer
   :no-index:

.. qdq-requant:: small
   :caption: The integer recipe of every quantized operator
"""

REFS = """\
# References

The input scale {qdq:param}`small:input_scale` (by the `qdq_models` name) is also
{qdq:param}`tiny:input_scale` (by the file stem). The node
{qdq:node}`small:input_QuantizeLinear`, the convolution {qdq:node}`tiny:conv1`, the
operators {qdq:op}`QuantizeLinear` and {qdq:op}`Conv`.
"""

PAGES = {"conf.py": CONF, "index.rst": INDEX, "ops.rst": OPS, "graphs.rst": GRAPHS,
         "tables.rst": TABLES, "refs.md": REFS}

#: docnames of the pages, in reading order.
DOCNAMES = ("index", "ops", "graphs", "tables", "refs")


def write_project(dest: Path) -> Path:
    """The project's sources in *dest* (created)."""
    dest.mkdir(parents=True)
    for name, text in PAGES.items():
        (dest / name).write_text(text, encoding="utf-8")
    qdq_factories.save_tiny_resnet_qdq(dest / "models" / "tiny.onnx")
    return dest
