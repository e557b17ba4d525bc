"""Benchmark Sphinx projects: one that uses the directives, and its static twin.

:func:`write_projects` writes, for one model, two source trees that produce the same
pages (the shape of our own docs: MyST Markdown, the Read the Docs theme):

``ext/``
    a summary page (``qdq-summary``), a graph page (``qdq-graph`` of the whole
    model in compact mode, and one residual block in full mode) and a parameter
    page (``qdq-params`` of every Q/DQ node);
``static/``
    the way a project documents a model without the extension: the same two
    drawings pre-rendered to SVG (by the same code, once, outside any timing) and
    included with ``figure``, and the same rows as plain ``list-table`` tables.

:func:`write_directive_project` writes the page set of the "20 directives on one
model" measurement.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from docutils import nodes

from sphinxext_qdq.analysis.loader import load_qdq_model
from sphinxext_qdq.analysis.queries import nodes_between, summarize
from sphinxext_qdq.analysis.records import QdqModel
from sphinxext_qdq.render.dot import DotOptions, render_dot
from sphinxext_qdq.sphinx.tables import NODE_HEADERS, Lines, node_rows, summary_rows

#: ``qdq_max_graph_nodes`` default: drawings above it become a note (the fallback).
MAX_GRAPH_NODES = 2000

CONF = '''\
project = "bench"
extensions = ["myst_parser"{extra}]
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
html_theme = "sphinx_rtd_theme"
graphviz_output_format = "svg"
exclude_patterns = ["_build"]
'''


#: The project using the directives accepts the note that replaces a graph over the cap.
EXT_CONF = 'suppress_warnings = ["qdq.graph-size"]\n'


@dataclass(frozen=True)
class BlockRegion:
    """``:from:`` / ``:to:`` names of the first block of stage 2 (with its projection)."""

    source: str
    target: str


def block_region(first_stage_blocks: int) -> BlockRegion:
    last = first_stage_blocks - 1
    return BlockRegion(f"stage1/block{last}/relu2/Relu_output_0_DequantizeLinear_Output",
                       "stage2/block0/relu2/Relu_output_0_DequantizeLinear")


def write_projects(model_path: Path, region: BlockRegion, folder: Path) -> tuple[Path, Path]:
    """Write ``folder/ext`` and ``folder/static`` for *model_path*; return both."""
    model = load_qdq_model(model_path)
    ext, static = folder / "ext", folder / "static"
    for root, extra in ((ext, ', "sphinxext_qdq"'), (static, "")):
        if root.exists():
            shutil.rmtree(root)
        (root / "models").mkdir(parents=True)
        shutil.copyfile(model_path, root / "models" / "model.onnx")
        (root / "conf.py").write_text(CONF.format(extra=extra) + (EXT_CONF if extra else ""))
        (root / "index.md").write_text(_index())
    _write_ext_pages(ext, region)
    _write_static_pages(static, model, region)
    return ext, static


def _index() -> str:
    return ("# Benchmark model\n\nThe pages document one quantized model.\n\n"
            "```{toctree}\nsummary\ngraph\nparams\n```\n")


def _write_ext_pages(root: Path, region: BlockRegion) -> None:
    (root / "summary.md").write_text(
        "# Summary\n\nWhat the model holds.\n\n```{qdq-summary} /models/model.onnx\n```\n")
    (root / "graph.md").write_text(
        "# Graph\n\nThe whole model, compact.\n\n"
        # ``:depth: all``: the one picture the twin pre-renders (``auto`` would add a
        # drawing per collapsed scope, up to qdq_max_scope_drawings, that the twin lacks)
        "```{qdq-graph} /models/model.onnx\n:depth: all\n:caption: The whole model\n```\n\n"
        "One residual block with every QuantizeLinear and DequantizeLinear node.\n\n"
        f"```{{qdq-graph}} /models/model.onnx\n:mode: full\n:from: {region.source}\n"
        f":to: {region.target}\n:caption: One block\n```\n")
    (root / "params.md").write_text(
        "# Parameters\n\nEvery scale and zero point, by node.\n\n"
        "```{qdq-params} /models/model.onnx\n```\n")


def _write_static_pages(root: Path, model: QdqModel, region: BlockRegion) -> None:
    whole = DotOptions(mode="compact", max_nodes=MAX_GRAPH_NODES)
    block = DotOptions(mode="full", max_nodes=MAX_GRAPH_NODES, selection=nodes_between(
        model, [region.source], [region.target]))
    images = root / "images"
    images.mkdir()
    for name, options in (("whole", whole), ("block", block)):
        svg = subprocess.run(["dot", "-Tsvg"], input=render_dot(model, options).encode(),
                             capture_output=True, check=True).stdout
        (images / f"{name}.svg").write_bytes(svg)
    summary = [[cell_text(cell) for cell in row.cells] for row in summary_rows(summarize(model))]
    (root / "summary.md").write_text(
        "# Summary\n\nWhat the model holds.\n\n"
        + list_table(["Statistic", "Value"], summary))
    (root / "graph.md").write_text(
        "# Graph\n\nThe whole model, compact.\n\n"
        "```{figure} images/whole.svg\nThe whole model\n```\n\n"
        "One residual block with every QuantizeLinear and DequantizeLinear node.\n\n"
        "```{figure} images/block.svg\nOne block\n```\n")
    rows = node_rows(model, list(model.qdq_nodes), full=False)
    (root / "params.md").write_text(
        "# Parameters\n\nEvery scale and zero point, by node.\n\n"
        + list_table(NODE_HEADERS, [[cell_text(cell) for cell in row.cells] for row in rows]))


def cell_text(cell: str | list[nodes.Node] | Lines) -> str:
    """Plain text of a table cell (lines joined with a space)."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, Lines):
        return " ".join("".join(node.astext() for node in line) for line in cell)
    return "".join(node.astext() for node in cell)


def list_table(headers: list[str], rows: list[list[str]]) -> str:
    """A MyST ``list-table`` (cells as inline literals, as the extension shows names)."""
    lines = ["````{list-table}\n:header-rows: 1\n"]
    for row in [headers, *rows]:
        cells = [_literal(text) if row is not headers else text for text in row]
        lines.append("* - " + cells[0])
        lines.extend(f"  - {cell}" for cell in cells[1:])
    lines.append("````\n")
    return "\n".join(lines)


def _literal(text: str) -> str:
    text = text.replace("`", "'")
    return f"`{text}`" if text else ""


def write_directive_project(model_path: Path, region: BlockRegion, folder: Path,
                            pages: int = 4) -> Path:
    """Twenty directives on one model over *pages* pages (5 each): summary, two
    graphs, a parameter table by node and one by initializer (indexed once)."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "models").mkdir(parents=True)
    shutil.copyfile(model_path, folder / "models" / "model.onnx")
    (folder / "conf.py").write_text(CONF.format(extra=', "sphinxext_qdq"') + EXT_CONF
                                    + 'qdq_models = {"bench": "models/model.onnx"}\n')
    names = [f"page{number}" for number in range(pages)]
    (folder / "index.md").write_text("# Twenty directives\n\n```{toctree}\n"
                                     + "\n".join(names) + "\n```\n")
    for number, name in enumerate(names):
        no_index = "" if number == 0 else ":no-index:\n"
        (folder / f"{name}.md").write_text(
            f"# Page {number}\n\n```{{qdq-summary}} bench\n```\n\n"
            "```{qdq-graph} bench\n```\n\n"
            f"```{{qdq-graph}} bench\n:mode: full\n:from: {region.source}\n"
            f":to: {region.target}\n```\n\n"
            f"```{{qdq-params}} bench\n{no_index}```\n\n"
            f"```{{qdq-params}} bench\n:layout: initializer\n{no_index}```\n")
    return folder


#: The floor project's ``conf.py`` addition: what any build that reads the model with onnx
#: and draws it with graphviz pays at least (importing onnx, with numpy; one dot run of
#: the very DOT the extension writes), and nothing of ours.
FLOOR_CONF = '''
import subprocess
import onnx  # and numpy with it
onnx.load("models/model.onnx")
subprocess.run(["dot", "-Tsvg", "-o", "images/floor.svg", "images/whole.dot"], check=True)
'''


def write_graph_page_projects(model_path: Path, folder: Path) -> tuple[Path, Path]:
    """The smallest project a drawing costs in: an index and one page with one
    ``qdq-graph`` of the whole model (compact, the default), and its twin with the same
    drawing pre-rendered to SVG (by the same code, outside the timing) in a ``figure``.
    Return ``folder/ext`` and ``folder/static``.

    Also writes ``folder/floor``: the twin whose ``conf.py`` imports onnx, loads the model
    and runs dot once on the same DOT (:data:`FLOOR_CONF`), the least a build that draws
    the model at build time can cost: the ratio target is measured against the twin, the
    floor says how much of it is not ours to remove."""
    model = load_qdq_model(model_path)
    ext, static, floor = folder / "ext", folder / "static", folder / "floor"
    for root, extra in ((ext, ', "sphinxext_qdq"'), (static, ""), (floor, "")):
        if root.exists():
            shutil.rmtree(root)
        (root / "models").mkdir(parents=True)
        shutil.copyfile(model_path, root / "models" / "model.onnx")
        (root / "conf.py").write_text(CONF.format(extra=extra) + (EXT_CONF if extra else ""))
        (root / "index.md").write_text("# Benchmark model\n\nOne drawing.\n\n"
                                       "```{toctree}\ngraph\n```\n")
    (ext / "graph.md").write_text(
        "# Graph\n\nThe whole model, compact.\n\n"
        "```{qdq-graph} /models/model.onnx\n:depth: all\n:caption: The whole model\n```\n")
    # the same one picture on both sides: ``:depth: all`` (the default ``auto`` draws the
    # model collapsed to what lays out within qdq_layout_budget, plus a drawing per box)
    options = DotOptions(mode="compact", max_nodes=MAX_GRAPH_NODES)
    dot_text = render_dot(model, options)
    svg = subprocess.run(["dot", "-Tsvg"], input=dot_text.encode(),
                         capture_output=True, check=True).stdout
    for root in (static, floor):
        (root / "images").mkdir()
        (root / "images" / "whole.svg").write_bytes(svg)
        (root / "graph.md").write_text(
            "# Graph\n\nThe whole model, compact.\n\n"
            "```{figure} images/whole.svg\nThe whole model\n```\n")
    (floor / "images" / "whole.dot").write_text(dot_text)
    with open(floor / "conf.py", "a") as conf:
        conf.write(FLOOR_CONF)
    return ext, static


def write_auto_page_project(model_path: Path, folder: Path) -> Path:
    """One page with one ``qdq-graph`` of the whole model at the default ``:depth: auto``:
    the model collapsed to what lays out within the budget, and a drawing per box below
    it (up to ``qdq_max_scope_drawings``): many pictures on one page."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "models").mkdir(parents=True)
    shutil.copyfile(model_path, folder / "models" / "model.onnx")
    (folder / "conf.py").write_text(CONF.format(extra=', "sphinxext_qdq"') + EXT_CONF)
    (folder / "index.md").write_text("# Benchmark model\n\nOne page.\n\n"
                                     "```{toctree}\ngraph\n```\n")
    (folder / "graph.md").write_text(
        "# Graph\n\nThe whole model, collapsed, with its scopes below.\n\n"
        "```{qdq-graph} /models/model.onnx\n:caption: The whole model\n```\n")
    return folder
