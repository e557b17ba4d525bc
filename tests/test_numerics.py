"""Quantization numerics on the page: ``qdq-histogram`` and ``qdq-error``.

The SQNR figures of a built page are re-computed here from ONNX Runtime outputs with
numpy alone (the models' tensors exposed as graph outputs with ``onnx.helper``, not
with the code under test or ONNX Runtime's debugging helpers) and must agree to
0.01 dB; the grid statistics are re-computed from the stored integers. One HTML build of
a small project is shared by the assertions; the LaTeX and hostile builds are separate.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from docs_builds import html_tables
from onnx import helper, numpy_helper
from sphinx_helpers import build, follow, has_id, make_project

from sphinxext_qdq.numerics import error as error_module
from sphinxext_qdq.numerics import plots
from sphinxext_qdq.sphinx.nodes import qdq_graph

SPHINX_BUILD = [sys.executable, "-m", "sphinx"]
IMAGES = 6

ERROR_PAGE = """\
Error
=====

.. qdq-params:: tiny

.. qdq-requant:: tiny

.. qdq-error:: tiny
   :float: /models/tiny_fp32.onnx
   :inputs: /inputs.npy
"""

HISTOGRAM_PAGE = """\
Histogram
=========

.. qdq-histogram:: /models/tiny_pc.onnx
   :float: /models/tiny_fp32.onnx
   :nodes: conv
   :bins: 32

.. qdq-histogram:: tiny
   :inputs: /inputs.npy
   :roles: activation
   :tensors: relu1_out
   :layout: column
"""

COMPARE_PAGE = """\
Compare
=======

.. qdq-error:: tiny
   :float: /models/tiny_fp32.onnx
   :inputs: /inputs.npy
   :compare: /models/tiny_pc.onnx
   :show: table
   :worst-weights:
"""

GRAPH_PAGE = """\
Graph
=====

.. qdq-graph:: tiny
   :color-by: sqnr
   :float: /models/tiny_fp32.onnx
   :inputs: /inputs.npy
"""

PAGES = {
    "index.rst": ("Numerics\n========\n\n.. toctree::\n\n   error\n   histogram\n   compare\n"
                  "   graph\n   plain\n"),
    "graph.rst": GRAPH_PAGE,
    "compare.rst": COMPARE_PAGE,
    "error.rst": ERROR_PAGE,
    "histogram.rst": HISTOGRAM_PAGE,
    "plain.rst": "Plain\n=====\n\n.. qdq-summary:: tiny\n",
}


def write_models(source: Path) -> None:
    factories.save(factories.tiny_resnet_float(), source / "models" / "tiny_fp32.onnx")
    factories.save_tiny_resnet_qdq(source / "models" / "tiny_pc.onnx", per_channel=True)
    inputs = np.random.default_rng(5).normal(0, 1, (IMAGES, 3, 8, 8)).astype(np.float32)
    np.save(source / "inputs.npy", inputs)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = make_project(tmp_path_factory.mktemp("numerics") / "src", root=None, pages=PAGES)
    write_models(source)
    return source


@pytest.fixture(scope="module")
def html(project: Path):
    return build(project)


# -- independent figures ------------------------------------------------------------------
def exposed(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """*model* with *names* as extra float graph outputs."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {output.name for output in copy.graph.output}
    copy.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                             for name in names if name not in present)
    return copy


def run(model: onnx.ModelProto, names: list[str], inputs: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(exposed(model, names).SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    outputs = [session.run(names, {"input": image[None]}) for image in inputs]
    return {name: np.concatenate([out[k].reshape(-1) for out in outputs])
            for k, name in enumerate(names)}


def independent_sqnr(project: Path, model: str = "tiny.onnx") -> dict[str, float]:
    """Tensor -> 20 log10(||float|| / ||float - quantized||) over all inputs, in numpy."""
    quantized = onnx.load(str(project / "models" / model))
    floating = onnx.load(str(project / "models" / "tiny_fp32.onnx"))
    inputs = np.load(project / "inputs.npy")
    dequantized = {node.input[0]: node.output[0] for node in quantized.graph.node
                   if node.op_type == "DequantizeLinear"}
    pairs = {}  # float tensor -> the quantized model's tensor after Q -> DQ
    for node in quantized.graph.node:
        if node.op_type == "QuantizeLinear" and node.output[0] in dequantized:
            pairs[node.input[0].removesuffix("_QuantizeLinear_Input")] = \
                dequantized[node.output[0]]
    float_values = run(floating, [n for n in pairs if n != "input"], inputs)
    float_values["input"] = inputs.reshape(-1)
    quantized_values = run(quantized, list(pairs.values()), inputs)
    result = {}
    for name, after in pairs.items():
        x = float_values[name].astype(np.float64)
        y = quantized_values[after].astype(np.float64)
        result[name] = 20 * np.log10(np.linalg.norm(x) / np.linalg.norm(x - y))
    return result


def error_table(page: Path):
    return next(t for t in html_tables(page) if "qdq-error" in t.classes)


# -- qdq-error ------------------------------------------------------------------------------
def test_build_has_no_warnings(html) -> None:
    assert html.warnings == ""


def test_sqnr_on_the_page_matches_onnx_runtime_recomputed_with_numpy(html, project) -> None:
    expected = independent_sqnr(project)
    rows = error_table(html.outdir / "error.html").rows
    shown = {row[0]: float(row[3].split()[0]) for row in rows}
    assert set(shown) == set(expected)
    for tensor, value in expected.items():
        assert abs(shown[tensor] - value) <= 0.01, (tensor, shown[tensor], value)


def test_rows_follow_the_data_flow_and_mark_the_three_lowest(html, project) -> None:
    rows = error_table(html.outdir / "error.html").rows
    assert rows[0][0] == "input" and rows[0][1] == "graph input"
    assert rows[-1][0] == "logits"
    marked = sorted((float(row[3].split()[0]), row[3]) for row in rows)
    assert [text for _, text in marked[:3]] == [f"{value:.2f} (lowest {rank})" for rank, (
        value, _) in enumerate(marked[:3], start=1)]
    assert all("lowest" not in text for _, text in marked[3:])


def test_every_row_links_to_its_params_row_and_its_requant_row(html) -> None:
    page = html.outdir / "error.html"
    text = page.read_text(encoding="utf-8")
    table = text[text.index('qdq-error docutils'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.DOTALL)[1:]
    assert len(rows) == len(error_table(page).rows)
    for row in rows:
        hrefs = re.findall(r'href="([^"]+)"', row)
        quantize = [h for h in hrefs if "-quantizelinear-" in h]
        assert len(quantize) == 1, row
        for href in hrefs:
            target, anchor = follow(page, href)
            assert has_id(target, anchor), href
    writers = [re.findall(r'href="([^"]+)"', row) for row in rows[1:]]
    assert all(len(hrefs) == 2 for hrefs in writers)  # compute node (requant row) + Q row


def test_sqnr_picture_is_an_svg_with_the_numbers_in_alt_and_caption(html) -> None:
    text = (html.outdir / "error.html").read_text(encoding="utf-8")
    images = re.findall(r'<img src="(_images/qdq-plot-[0-9a-f]{40}\.svg)" alt="([^"]*)"', text)
    assert len(images) == 1
    source, alt = images[0]
    ElementTree.parse(html.outdir / source)  # well-formed SVG
    rows = error_table(html.outdir / "error.html").rows
    lowest = min(rows, key=lambda row: float(row[3].split()[0]))
    number = lowest[3].split()[0]
    assert f"lowest {lowest[0]} ({number} dB" in alt
    assert f"on {IMAGES} inputs" in alt
    caption = re.search(r'<figcaption>\s*<p><span class="caption-text">([^<]*)', text)
    assert caption is not None and f"lowest {lowest[0]} ({number} dB" in caption[1]


def test_compare_column_is_the_second_model_recomputed_and_worst_weights_follow(html,
                                                                              project) -> None:
    page = html.outdir / "compare.html"
    table = error_table(page)
    expected = independent_sqnr(project, "tiny_pc.onnx")
    for row in table.rows:
        assert abs(float(row[4].split()[0]) - expected[row[0]]) <= 0.01, row
    weighted = [row for row in table.rows if row[1] not in ("graph input", "pool", "flatten",
                                                            "add")]
    lowest = min(weighted, key=lambda row: float(row[3].split()[0]))
    text = page.read_text(encoding="utf-8")
    lead = re.search(r"The lowest SQNR of the weighted layers: ([^,]+), ([0-9.]+) dB, written "
                     r"by <a[^>]*><code[^>]*><span class=\"pre\">([^<]+)</span>", text)
    assert lead is not None and (lead[1], lead[2]) == (lowest[0], lowest[3].split()[0])
    assert lead[3] == lowest[1]
    images = re.findall(r'<img src="_images/qdq-plot-[0-9a-f]{40}\.svg" alt="([^"]*)"', text)
    assert len(images) == 1 and images[0].startswith(f"{lead[3]}.weight_quantized (weight")
    assert "output channels span" in images[0]  # per-tensor: the channels against one grid


def svg_nodes(svg: Path) -> dict[str, tuple[str, list[str]]]:
    """DOT node id -> (its first fill colour, its text lines) in a dot SVG."""
    ns = "{http://www.w3.org/2000/svg}"
    found = {}
    for group in ElementTree.parse(svg).getroot().iter(f"{ns}g"):
        if group.get("class") == "node":
            fills = [e.get("fill") for e in group.iter() if e.get("fill") not in (None, "none")]
            found[group.find(f"{ns}title").text] = (fills[0], [t.text for t in group.iter(
                f"{ns}text")])
    return found


def expected_colour(sqnr: float) -> str:
    for low, colour in ((40, "#1a9850"), (35, "#91cf60"), (30, "#d9ef8b"), (25, "#fee08b"),
                        (20, "#fc8d59")):
        if sqnr >= low:
            return colour
    return "#d73027"


def test_color_by_sqnr_fills_each_group_by_the_sqnr_on_the_page(html) -> None:
    sqnr = {row[1]: float(row[3].split()[0]) for row in error_table(html.outdir / "error.html").rows}
    page = (html.outdir / "graph.html").read_text(encoding="utf-8")
    svg = re.search(r'<object data="(_images/qdq-[0-9a-f]+\.svg)"', page)[1]
    nodes = svg_nodes(html.outdir / svg)
    compute = {texts[1]: fill for fill, texts in nodes.values()
               if len(texts) > 1 and texts[1] in sqnr}
    assert set(compute) == set(sqnr) - {"graph input"}
    for name, fill in compute.items():
        assert fill == expected_colour(sqnr[name]), name
    legend = [texts[0] for node_id, (_, texts) in nodes.items() if node_id.startswith("fill_")]
    assert legend[0] == "SQNR ≥ 40 dB" and legend[-1] == "SQNR < 20 dB" and len(legend) == 6


# -- qdq-histogram --------------------------------------------------------------------------
def test_histogram_numbers_match_the_stored_integers(html, project) -> None:
    model = onnx.load(str(project / "models" / "tiny_pc.onnx"))
    floating = {t.name: numpy_helper.to_array(t)
                for t in onnx.load(str(project / "models" / "tiny_fp32.onnx")).graph.initializer}
    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    table = next(t for t in html_tables(html.outdir / "histogram.html")
                 if "qdq-histogram" in t.classes and t.rows[0][0].startswith("conv1"))
    assert [row[0] for row in table.rows] == ["conv1.weight_quantized", "conv2.weight_quantized"]
    for row in table.rows:
        codes = stored[row[0]].astype(np.int64)
        span = [(c.max() - c.min() + 1) / 256 for c in codes]  # axis 0: output channels
        assert row[6] == f"{np.mean(span):.0%} (min {min(span):.0%})"
        assert row[7] == f"{np.unique(codes).size} of 256"
        scale = stored[row[0].replace("_quantized", "_scale")].reshape(-1, 1, 1, 1)
        weights = floating[row[0].removesuffix("_quantized")]
        saturated = np.abs(np.rint(weights.astype(np.float32) / scale.astype(np.float32))) > 127
        low = np.rint(weights / scale) < -128
        assert row[5] == f"{np.count_nonzero(saturated | low) / weights.size:.2%}"


def test_each_histogram_has_its_picture_and_caption(html) -> None:
    text = (html.outdir / "histogram.html").read_text(encoding="utf-8")
    images = re.findall(r'<img src="(_images/qdq-plot-[0-9a-f]{40}\.svg)" alt="([^"]*)"', text)
    assert len(images) == 3  # two weights and one activation
    assert "per-axis, 4 channels" in images[0][1] and "float values: float model" in images[0][1]
    assert images[2][1].startswith("relu1_out (activation, UINT8, per-tensor)")
    assert "float values: inputs" in images[2][1]
    for source, _ in images:
        ElementTree.parse(html.outdir / source)


# -- caching, imports -----------------------------------------------------------------------
def test_a_no_change_rebuild_computes_and_draws_nothing(html, project) -> None:
    # (the first build's own counts depend on which test built this project first)
    runs, draws = error_module.run_count(), plots.draw_count()
    again = build(project)
    assert again.warnings == ""
    assert (error_module.run_count(), plots.draw_count()) == (runs, draws)
    (project / "error.rst").write_text(ERROR_PAGE + "\nEdited.\n")  # read and written again
    edited = build(project)
    assert "error" in edited.status and edited.warnings == ""
    assert (error_module.run_count(), plots.draw_count()) == (runs, draws)


def test_pdf_build_includes_the_pictures_as_pdf(project, tmp_path: Path) -> None:
    result = build(project, "latex", outdir=tmp_path / "latex")
    assert result.warnings == ""
    latex = next(result.outdir.glob("*.tex")).read_text(encoding="utf-8")
    names = re.findall(r"\\sphinxincludegraphics\[width=\\linewidth\]\{(qdq-plot-[0-9a-f]{40}"
                       r"\.pdf)\}", latex)
    assert len(names) == 5
    for name in names:
        assert (result.outdir / name).read_bytes().startswith(b"%PDF-")


def test_a_build_without_these_directives_imports_neither_onnxruntime_nor_matplotlib(
        tmp_path: Path) -> None:
    source = make_project(tmp_path / "src", root=None, pages={
        "index.rst": "Plain\n=====\n\n.. qdq-graph:: tiny\n\n.. qdq-params:: tiny\n"})
    script = textwrap.dedent(f"""
        import sys
        from sphinx.cmd.build import main
        status = main(["-q", "-b", "html", {str(source)!r}, {str(tmp_path / 'out')!r}])
        print(status, "onnxruntime" in sys.modules, "matplotlib" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False, timeout=300)
    assert result.stdout.split() == ["0", "False", "False"], result.stdout + result.stderr


# -- hostile input ----------------------------------------------------------------------------
HOSTILE = {
    "index.rst": "Hostile\n=======\n\n.. toctree::\n\n   cases\n",
    "cases.rst": """\
Cases
=====

.. qdq-error:: tiny
   :float: /models/missing.onnx
   :inputs: /inputs.npy

.. qdq-error:: tiny
   :float: /models/other.onnx
   :inputs: /inputs.npy

.. qdq-error:: tiny
   :float: /models/tiny_fp32.onnx
   :inputs: /wrong_shape.npy

.. qdq-error:: tiny
   :float: /models/tiny_fp32.onnx
   :inputs: /absent.npy

.. qdq-error:: tiny
   :float: /models/tiny_fp32.onnx
   :inputs: os.path:nonexistent_attribute

.. qdq-error:: tiny
   :float: /models/tiny_fp32.onnx
   :inputs: /pickled.npy

.. qdq-error:: tiny
   :float: /models/tiny_fp32.onnx

.. qdq-histogram:: tiny
   :float: /models/garbage.onnx

.. qdq-histogram:: tiny
   :nodes: nothing-matches-this

.. qdq-histogram:: tiny
   :roles: activation

.. qdq-error:: tiny
   :float: /models/unrelated.onnx
   :inputs: /inputs.npy

.. qdq-graph:: tiny
   :color-by: sqnr
   :inputs: /inputs.npy

.. qdq-graph:: tiny
   :color-by: sqnr
   :float: /models/missing.onnx
   :inputs: /inputs.npy

.. qdq-error:: tiny
   :inputs: /inputs.npy

.. qdq-graph:: tiny
   :float: /models/tiny_fp32.onnx
   :images: 2

.. qdq-histogram:: /models/stray.onnx

After the cases.
""",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory):
    source = make_project(tmp_path_factory.mktemp("hostile") / "src", root=None, pages=HOSTILE)
    write_models(source)
    factories.save(factories.qdq_pair_model(), source / "models" / "other.onnx")
    factories.save(factories.make_model(  # same input, another network
        [helper.make_node("Relu", ["input"], ["out"], name="relu")],
        [factories.tensor_input("input", factories.TINY_INPUT_SHAPE)],
        [factories.tensor_input("out", factories.TINY_INPUT_SHAPE)]),
        source / "models" / "unrelated.onnx")
    factories.save(factories.tiny_resnet_qdq_with_stray_zero_scale(),
                   source / "models" / "stray.onnx")
    (source / "models" / "garbage.onnx").write_bytes(b"\x00 not a model \xff" * 10)
    np.save(source / "wrong_shape.npy", np.zeros((2, 5), np.float32))
    np.save(source / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return build(source)


@pytest.mark.parametrize(("line", "subtype", "fragment"), [
    (4, "model", "missing.onnx"),
    (8, "numerics", "the float model's inputs ['x'] are not the quantized model's ['input']"),
    (12, "numerics", "ONNX Runtime cannot run the float model on these inputs"),
    (16, "numerics", "cannot read the inputs '/absent.npy'"),
    (20, "numerics", "cannot read the inputs 'os.path:nonexistent_attribute'"),
    (24, "numerics", "cannot read the inputs '/pickled.npy'"),
    (31, "model", "garbage.onnx"),
    (34, "filter", "no tensor of the roles weight, weight pair matches"),
    (40, "numerics", "no activation of the quantized model has a counterpart"),
    (48, "model", "missing.onnx"),
    # an option missing, or one another needs: a qdq.option warning, not docutils' ERROR
    (28, "option", "qdq-error: :inputs: is required"),
    (37, "option", "qdq-histogram: :roles: lists activation, and activations need :inputs:"),
    (44, "option", "qdq-graph: :color-by: sqnr needs :float: and :inputs:"),
    (53, "option", "qdq-error: :float: is required"),
    (56, "option", "qdq-graph: :float:, :images: ignored: used only with :color-by: sqnr"),
])
def test_hostile_input_is_one_located_warning(hostile, line: int, subtype: str,
                                              fragment: str) -> None:
    matches = [w for w in hostile.warnings.splitlines() if f"cases.rst:{line}:" in w]
    assert len(matches) == 1, hostile.warnings
    assert fragment in matches[0] and matches[0].endswith(f"[qdq.{subtype}]"), matches[0]


def test_hostile_builds_finish_without_a_traceback(hostile) -> None:
    assert "Traceback" not in hostile.warnings + hostile.status
    assert "ERROR" not in hostile.warnings  # every case is a qdq warning
    lines = [line for line in hostile.warnings.splitlines() if "WARNING" in line]
    assert len(lines) == 17 and all(line.endswith("]") and "[qdq." in line for line in lines)
    assert hostile.warnings.count("<object") == 0
    text = (hostile.outdir / "cases.html").read_text(encoding="utf-8")
    # lines 44, 48 and 56: drawn without the overlay; the page goes on after the cases
    assert text.count('class="qdq-graph graphviz"') == 3 and "After the cases." in text
    graphs = hostile.app.env.get_doctree("cases").findall(qdq_graph)
    assert [graph["qdq_options"].fills for graph in graphs] == [(), (), ()]


def test_a_histogram_skips_the_tensor_it_cannot_compute_and_draws_the_others(hostile) -> None:
    """The stray DequantizeLinear's scale is zero: the analysis says so (qdq.scale), the
    histogram names the tensor it skips (qdq.numerics), and the model's four weights are
    tabled and drawn, as the command line does."""
    found = [w for w in hostile.warnings.splitlines() if "cases.rst:60:" in w]
    assert len(found) == 2 and found[0].endswith("[qdq.scale]"), found
    assert "'stray_scale'" in found[0] and "zero" in found[0]
    assert found[1].endswith("[qdq.numerics]") and "'stray_q'" in found[1]
    assert "scale is zero" in found[1] and "skipped" in found[1]
    (table,) = [t for t in html_tables(hostile.outdir / "cases.html")
                if "qdq-histogram" in t.classes]
    assert sorted(row[0] for row in table.rows) == [
        "conv1.weight_quantized", "conv2.weight_quantized", "fc.weight_quantized",
        "skip.weight_quantized"]
    text = (hostile.outdir / "cases.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<img src="_images/qdq-plot-[0-9a-f]{40}\.svg"', text)) == 4


# -- command line -----------------------------------------------------------------------------
def run_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    from sphinxext_qdq import cli

    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_error_json_csv_and_markdown_carry_the_same_figures(project, capsys) -> None:
    import csv
    import io
    import json

    models = project / "models"
    arguments = ["error", models / "tiny_fp32.onnx", models / "tiny.onnx", "--inputs",
                 project / "inputs.npy"]
    status, out, err = run_cli(capsys, *arguments, "--format", "json")
    assert (status, err) == (0, "")
    report = json.loads(out)
    expected = independent_sqnr(project)
    assert {row["tensor"]: round(row["sqnr_db"], 2) for row in report["tensors"]} == \
        {name: round(value, 2) for name, value in expected.items()}
    assert report["images"] == IMAGES and report["unmatched"] == []
    status, out, _ = run_cli(capsys, *arguments)  # csv is the default
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["tensor"] for row in rows] == [row["tensor"] for row in report["tensors"]]
    assert [float(row["sqnr_db"]) for row in rows] == [r["sqnr_db"] for r in report["tensors"]]
    status, out, _ = run_cli(capsys, *arguments, "--format", "md", "--images", "2")
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith("| Tensor |") and len(lines) == 2 + len(rows)
    assert sum("(lowest " in line for line in lines) == 3


def test_cli_histogram_writes_one_picture_per_tensor(project, capsys, tmp_path: Path) -> None:
    models = project / "models"
    status, out, err = run_cli(capsys, "histogram", models / "tiny_pc.onnx", "-o", tmp_path,
                               "--float", models / "tiny_fp32.onnx", "--format", "png")
    assert (status, err) == (0, "")
    written = [Path(line.split("\t")[0]) for line in out.splitlines()]
    assert [path.name for path in written] == ["conv1_weight_quantized.png",
                                               "conv2_weight_quantized.png",
                                               "fc_weight_quantized.png",
                                               "skip_weight_quantized.png"]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written)
    assert all("grid span used" in line for line in out.splitlines())


def test_cli_error_refuses_external_data_onnx_runtime_would_follow(project, capsys,
                                                                    tmp_path: Path) -> None:
    model = factories.external_scale_model(tmp_path, str(project / "inputs.npy"),
                                           write_data=False)
    status, out, err = run_cli(capsys, "error", model, model, "--inputs",
                               project / "inputs.npy")
    warning, error = err.splitlines()  # the analysis's diagnostic, then the refusal
    assert status == 2 and out == ""
    assert warning.startswith("qdq-graph: warning: ") and "[qdq.external_data]" in warning
    assert error.startswith("qdq-graph: error: ")
    assert "keeps tensors in external data files" in error


@pytest.mark.parametrize("arguments", [
    ("error", "{models}/tiny_fp32.onnx", "{models}/tiny.onnx", "--inputs", "{src}/absent.npy"),
    ("error", "{models}/absent.onnx", "{models}/tiny.onnx", "--inputs", "{src}/inputs.npy"),
    ("error", "{models}/tiny.onnx", "{models}/tiny_fp32.onnx", "--inputs", "{src}/inputs.npy",
     "--format", "xml"),
    ("histogram", "{models}/tiny.onnx", "--roles", "activation"),
    ("histogram", "{models}/tiny.onnx", "--nodes", "("),
])
def test_cli_numerics_errors_are_one_line(project, capsys, arguments) -> None:
    argv = [a.format(models=project / "models", src=project) for a in arguments]
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("qdq-graph: error: ") and err.count("\n") == 1, err
