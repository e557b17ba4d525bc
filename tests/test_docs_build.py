"""The real documentation builds warning-free, in HTML and PDF, and shows the models'
real numbers: compared here with what ``onnx.numpy_helper`` reads from the committed
models and what ``models/resnet8_report.json`` records."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import onnx
import pytest
from docs_builds import MODELS, PAGES, REPOSITORY, build, html_tables, html_text
from onnx import numpy_helper

from sphinxext_qdq.analysis.records import DIAGNOSTIC_SUBTYPES

ARCHITECTURE = "docs/quantization/04-architecture"
MIN_PDF_PAGES = 30
#: An overfull line this much wider than its column is visible: a table leaving the page.
MAX_OVERFULL_PT = 20.0


@pytest.fixture(scope="session")
def html(tmp_path_factory: pytest.TempPathFactory):
    return build("html", tmp_path_factory)


@pytest.fixture(scope="session")
def pdf(tmp_path_factory: pytest.TempPathFactory, html):  # html first: the PDF reuses its doctrees
    return build("latexpdf", tmp_path_factory)


@pytest.fixture(scope="module")
def int8() -> dict[str, np.ndarray]:
    model = onnx.load(str(MODELS / "resnet8_int8.onnx"))
    return {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads((MODELS / "resnet8_report.json").read_text(encoding="utf-8"))


def cell_value(cell: str) -> str:
    """The value of a 'name, then value' cell (the last whitespace-separated token)."""
    return cell.split()[-1]


# -- HTML -----------------------------------------------------------------------------------


def test_html_build_has_no_warnings(html) -> None:
    assert html.returncode == 0, html.output[-3000:]
    assert html.warnings == []
    for docname in PAGES:
        assert html.page(docname).is_file(), docname
        # every MyST substitution was made (none is left inside a code span, say)
        assert "{{" not in html.page(docname).read_text(encoding="utf-8"), docname


def test_graphs_are_svg_files_with_qdq_nodes(html) -> None:
    page = html.page(ARCHITECTURE)
    sources = re.findall(r'<object data="([^"]+\.svg)"[^>]*class="[^"]*qdq-graph', page.read_text())
    assert len(sources) >= 3
    for source in sources:
        svg = (page.parent / source).resolve()
        root = ElementTree.parse(svg).getroot()
        assert float(root.get("width").removesuffix("pt")) > 0
        assert float(root.get("height").removesuffix("pt")) > 0
        text = svg.read_text(encoding="utf-8")
        assert "QuantizeLinear" in text and "DequantizeLinear" in text
        assert 'target="_top"' in text


def test_activation_table_shows_every_activation_scale_of_the_model(html, int8) -> None:
    model = onnx.load(str(MODELS / "resnet8_int8.onnx"))
    quantize = {node.name: node for node in model.graph.node if node.op_type == "QuantizeLinear"}
    activation_dq = {node.name: node for node in model.graph.node
                     if node.op_type == "DequantizeLinear" and node.input[0] not in int8}
    [table] = [t for t in html_tables(html.page(ARCHITECTURE))
               if "qdq-params" in t.classes and t.caption.startswith("Activation Q/DQ")]
    by_node = {row[0]: row for row in table.rows}
    assert set(by_node) == set(quantize) | set(activation_dq)
    for name, row in by_node.items():
        node = quantize.get(name) or activation_dq[name]
        scale_cell, zero_point_cell = row[4], row[5]
        assert scale_cell.split()[0] == node.input[1]
        assert np.float32(cell_value(scale_cell)) == int8[node.input[1]]
        assert int(cell_value(zero_point_cell)) == int(int8[node.input[2]])


def test_weight_table_shows_every_weight_and_bias_parameter(html, int8) -> None:
    [table] = [t for t in html_tables(html.page(ARCHITECTURE))
               if "qdq-params" in t.classes and t.caption.startswith("Weight and bias")]
    names = {row[0] for row in table.rows}
    expected = {name for name in int8 if re.search(r"\.(weight|bias(_quantized)?)_(scale|zero_point)$", name)}
    assert names == expected
    for row in table.rows:
        value = int8[row[0]].reshape(-1)[0]
        if row[1] == "scale":
            assert np.float32(row[2]) == value
        else:
            assert int(row[2]) == int(value)


def test_index_shows_the_report(html, report) -> None:
    text = html_text(html.page("docs/index"))
    total = report["dataset"]["split_sizes"]["test"]
    for entry in report["models"].values():
        accuracy = f"{entry['test_correct']} / {total} ({entry['test_top1_accuracy'] * 100:.2f} %)"
        assert accuracy in text
        assert f"{entry['file_size_bytes']:,} bytes" in text
        assert entry["file"] in text
    sizes = report["dataset"]["split_sizes"]
    assert f"{sizes['train']} training, {sizes['calibration']} calibration, {sizes['test']} test" in text
    for tool, version in report["tools"].items():
        assert f"{tool} {version}" in text


def test_worked_conv_example_matches_onnx_runtime(html, int8) -> None:
    """The integer outputs of the QLinearConv example equal what ONNX Runtime computes
    for the same QDQ group on the same input."""
    import onnxruntime

    text = html_text(html.page("docs/quantization/02-qlinearconv"))
    seed, span, size = map(int, re.search(
        r"default_rng\((\d+)\)\.integers\(0, (\d+), size=(\d+)\)", text).groups())
    table = next(t for t in html_tables(html.page("docs/quantization/02-qlinearconv"))
                 if len(t.rows) == 16 and len(t.rows[0]) == 7)
    shown = np.array([int(row[3].replace(",", "")) for row in table.rows])
    zero_point = int(int8["relu/Relu_output_0_zero_point"])
    x = (zero_point + np.random.default_rng(seed).integers(0, span, size=size)).astype(np.int8)
    weight = int8["stack1.conv1.weight_quantized"]
    assert weight[0].size == size
    model = stack1_conv1_group(int8, weight.shape)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    [y] = session.run(None, {"x": x.reshape(1, *weight.shape[1:])})
    assert np.array_equal(y.reshape(-1), shown)


def stack1_conv1_group(int8: dict[str, np.ndarray], shape: tuple[int, ...]) -> onnx.ModelProto:
    """DQ(x), DQ(w), DQ(b) -> Conv (no padding, one output position) -> Q, with the
    initializers of ResNet8's stack1/conv1 group."""
    h = onnx.helper
    names = {"x_s": "relu/Relu_output_0_scale", "x_z": "relu/Relu_output_0_zero_point",
             "w": "stack1.conv1.weight_quantized", "w_s": "stack1.conv1.weight_scale",
             "w_z": "stack1.conv1.weight_zero_point", "b": "stack1.conv1.bias_quantized",
             "b_s": "stack1.conv1.bias_quantized_scale",
             "b_z": "stack1.conv1.bias_quantized_zero_point",
             "y_s": "stack1/relu1/Relu_output_0_scale",
             "y_z": "stack1/relu1/Relu_output_0_zero_point"}
    initializers = [numpy_helper.from_array(int8[source], short) for short, source in names.items()]
    nodes = [h.make_node("DequantizeLinear", ["x", "x_s", "x_z"], ["xf"]),
             h.make_node("DequantizeLinear", ["w", "w_s", "w_z"], ["wf"]),
             h.make_node("DequantizeLinear", ["b", "b_s", "b_z"], ["bf"]),
             h.make_node("Conv", ["xf", "wf", "bf"], ["yf"], kernel_shape=list(shape[2:])),
             h.make_node("QuantizeLinear", ["yf", "y_s", "y_z"], ["y"])]
    graph = h.make_graph(nodes, "stack1_conv1",
                         [h.make_tensor_value_info("x", onnx.TensorProto.INT8, [1, *shape[1:]])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.INT8, None)],
                         initializers)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)], ir_version=10)


def test_reference_lists_every_warning_subtype_and_option(html) -> None:
    from sphinxext_qdq.sphinx.directives import QdqGraphDirective, QdqParamsDirective

    text = html_text(html.page("docs/reference"))
    sources = "".join(path.read_text(encoding="utf-8")
                      for path in (REPOSITORY / "sphinxext_qdq").rglob("*.py"))
    keyword_subtypes = set(re.findall(r'subtype="(\w+)"', sources))
    assert keyword_subtypes
    for subtype in [*DIAGNOSTIC_SUBTYPES, *keyword_subtypes]:
        assert f"qdq.{subtype}" in text
    for directive in (QdqGraphDirective, QdqParamsDirective):
        for option in directive.option_spec:
            assert f":{option}:" in text
    for name in ("qdq_models", "qdq_graph_mode", "qdq_max_graph_nodes"):
        assert name in text


def test_architecture_page_keeps_the_seed_plan() -> None:
    source = (REPOSITORY / f"{ARCHITECTURE}.md").read_text(encoding="utf-8")
    for phrase in ("QDQ Format", "Data Flow", "Scale", "Zero-Point", "Initializer",
                   "01-boundary-operations", "resnet8_qdq_architecture"):
        assert phrase in source
    assert source.count("QuantizeLinear") >= 5


def test_architecture_download_is_the_script_output(html, tmp_path: Path) -> None:
    """The downloadable picture is what scripts/annotate_qdq_graph.py draws from the
    committed model now, not a stale file."""
    subprocess.run([sys.executable, str(REPOSITORY / "scripts/annotate_qdq_graph.py"),
                    "--model", str(MODELS / "resnet8_int8.onnx"), "--output-dir", str(tmp_path)],
                   check=True, capture_output=True)
    page = html.page(ARCHITECTURE).read_text(encoding="utf-8")
    for suffix in ("svg", "png"):
        [link] = set(re.findall(rf'href="([^"]*_downloads/[^"]*/resnet8_qdq_architecture\.{suffix})"',
                                page))
        downloaded = (html.page(ARCHITECTURE).parent / link).resolve()
        assert downloaded.read_bytes() == (tmp_path / f"resnet8_qdq_architecture.{suffix}").read_bytes()


def test_generated_files_are_ignored_and_rewritten_only_on_change(html, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPOSITORY / "docs" / "_ext"))
    try:
        import fragments
    finally:
        sys.path.remove(str(REPOSITORY / "docs" / "_ext"))
    assert fragments.write_fragments({"a.md": "one"}, tmp_path) == ["a.md"]
    stamp = (tmp_path / "a.md").stat().st_mtime_ns
    assert fragments.write_fragments({"a.md": "one"}, tmp_path) == []
    assert (tmp_path / "a.md").stat().st_mtime_ns == stamp
    assert fragments.write_fragments({"a.md": "two"}, tmp_path) == ["a.md"]
    generated = sorted((REPOSITORY / "docs" / "_generated").glob("*.md"))
    assert generated
    pictures = [REPOSITORY / "docs/images/resnet8_qdq_architecture.svg",
                REPOSITORY / "docs/images/resnet8_qdq_architecture.png"]
    ignored = subprocess.run(["git", "check-ignore", *map(str, generated + pictures)],
                             cwd=REPOSITORY, capture_output=True, text=True, check=False)
    assert len(ignored.stdout.split()) == len(generated) + len(pictures)


# -- PDF --------------------------------------------------------------------------------------


def test_pdf_build_has_no_warnings_and_vector_graphs(pdf) -> None:
    assert pdf.returncode == 0, pdf.output[-3000:]
    assert pdf.warnings == []
    assert (pdf.outdir / "sphinxext_qdq.pdf").is_file()
    graphs = sorted(pdf.outdir.glob("qdq-*.pdf"))
    assert len(graphs) >= 6
    tex = (pdf.outdir / "sphinxext_qdq.tex").read_text(encoding="utf-8")
    for graph in graphs:
        assert graph.read_bytes().startswith(b"%PDF")
        assert graph.name in tex


def test_pdf_tables_fit_the_page(pdf) -> None:
    log = (pdf.outdir / "sphinxext_qdq.log").read_text(encoding="latin-1")
    overfull = [float(width) for width in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert max(overfull, default=0.0) <= MAX_OVERFULL_PT


def test_pdf_pages_and_text(pdf, int8, report) -> None:
    document = pdf.outdir / "sphinxext_qdq.pdf"
    info = subprocess.run(["pdfinfo", str(document)], capture_output=True, text=True, check=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))
    assert pages > MIN_PDF_PAGES
    assert shutil.which("pdftotext")
    text = subprocess.run(["pdftotext", "-layout", str(document), "-"], capture_output=True,
                          text=True, check=True).stdout
    for phrase in ("QDQ Format", "Data Flow", "QuantizeLinear", "DequantizeLinear",
                   "Residual Adds"):
        assert phrase in text
    assert str(int8["input_scale"]) in text  # numpy's shortest round-trip digits
    correct, total = report["models"]["int8"]["test_correct"], report["dataset"]["split_sizes"]["test"]
    assert f"{correct} / {total}" in text


# -- page 06: quantization numerics ------------------------------------------------------------
NUMERICS = "docs/quantization/06-numerics"
NUMERICS_IMAGES = 120  # the page's :images:


def independent_sqnr(model_file: str, images: np.ndarray) -> dict[str, float]:
    """Tensor -> SQNR (dB) of the quantized model's value after its Q -> DQ pair against the
    FP32 model's tensor of the same name: ONNX Runtime outputs and numpy only."""
    import onnxruntime

    def outputs(model: onnx.ModelProto, names: list[str]) -> dict[str, np.ndarray]:
        exposed = onnx.ModelProto()
        exposed.CopyFrom(model)
        exposed.graph.output.extend(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, None) for name in names
            if name not in {o.name for o in model.graph.output})
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = onnxruntime.InferenceSession(exposed.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
        return dict(zip(names, session.run(names, {"input": images})))

    quantized = onnx.load(str(MODELS / model_file))
    dequantized = {n.input[0]: n.output[0] for n in quantized.graph.node
                   if n.op_type == "DequantizeLinear"}
    pairs = {n.input[0].removesuffix("_QuantizeLinear_Input"): dequantized[n.output[0]]
             for n in quantized.graph.node
             if n.op_type == "QuantizeLinear" and n.output[0] in dequantized}
    floats = outputs(onnx.load(str(MODELS / "resnet8_fp32.onnx")),
                     [name for name in pairs if name != "input"])
    floats["input"] = images
    after = outputs(quantized, list(pairs.values()))
    return {name: float(20 * np.log10(np.linalg.norm(floats[name].astype(np.float64))
                                      / np.linalg.norm(floats[name].astype(np.float64)
                                                       - after[q].astype(np.float64))))
            for name, q in pairs.items()}


def test_numerics_page_sqnr_of_both_models_matches_onnx_runtime(html) -> None:
    sys.path.insert(0, str(REPOSITORY))
    from scripts.resnet8_data import load_digits_splits

    images = np.asarray(load_digits_splits().test_images[:NUMERICS_IMAGES], np.float32)
    table = next(t for t in html_tables(html.page(NUMERICS)) if "qdq-error" in t.classes)
    for column, model_file in ((3, "resnet8_int8.onnx"), (4, "resnet8_int8_per_channel.onnx")):
        expected = independent_sqnr(model_file, images)
        shown = {row[0]: float(row[column].split()[0]) for row in table.rows}
        assert set(shown) == set(expected)
        for tensor, value in expected.items():
            assert abs(shown[tensor] - value) <= 0.01, (model_file, tensor, shown[tensor], value)


def test_numerics_page_draws_svg_pictures_and_the_coloured_graph(html) -> None:
    page = html.page(NUMERICS)
    text = page.read_text(encoding="utf-8")
    pictures = re.findall(r'<img src="([^"]*qdq-plot-[0-9a-f]{40}\.svg)" alt="([^"]*)"', text)
    assert len(pictures) >= 5
    for source, alt in pictures:
        ElementTree.parse(page.parent / source)
        assert "dB" in alt or "codes used" in alt
    assert text.count("The lowest SQNR of the weighted layers") == 2
    graph = re.search(r'<object data="([^"]+\.svg)"', text)[1]
    texts = [element.text for element in ElementTree.parse(page.parent / graph).iter()
             if element.tag.endswith("}text")]
    assert "SQNR ≥ 40 dB" in texts and "SQNR < 20 dB" in texts


def test_pdf_includes_the_numerics_pictures(pdf) -> None:
    tex = (pdf.outdir / "sphinxext_qdq.tex").read_text(encoding="utf-8")
    plots = re.findall(r"\\sphinxincludegraphics\[width=\\linewidth\]\{(qdq-plot-[0-9a-f]{40}"
                       r"\.pdf)\}", tex)
    assert len(plots) >= 5
    assert all((pdf.outdir / name).read_bytes().startswith(b"%PDF") for name in plots)

# -- Quantization formats page ------------------------------------------------------------------
FORMATS = "docs/quantization/07-formats"


def test_formats_page_counts_what_each_file_holds(html) -> None:
    """The three summaries (QDQ, QOperator, dynamic ResNet8) give the node counts and the
    quantized operators by format that the onnx library counts in each file."""
    import format_factories

    tables = [t for t in html_tables(html.page(FORMATS)) if "qdq-summary" in t.classes]
    files = ("resnet8_int8.onnx", "resnet8_qoperator.onnx", "resnet8_dynamic.onnx")
    assert len(tables) == len(files)
    for table, name in zip(tables, files):
        proto = onnx.load(str(MODELS / name))
        expected = format_factories.independent_counts(proto)
        expected["QDQ"] = format_factories.qdq_group_count(proto)
        rows = {row[0]: row[1] for row in table.rows}
        assert rows["Nodes"] == str(expected["node_count"]), name
        shown = dict(item.rsplit(" ", 1) for item in
                     rows["Quantized operators by format"].split(", "))
        assert {fmt: int(count) for fmt, count in shown.items()} == {
            fmt: expected[fmt] for fmt in ("QDQ", "QOperator", "dynamic", "weight-only")
            if expected[fmt]}, name


def test_formats_page_draws_the_same_block_from_each_file(html) -> None:
    page = html.page(FORMATS)
    sources = re.findall(r'<object data="([^"]+\.svg)"[^>]*class="[^"]*qdq-graph',
                         page.read_text(encoding="utf-8"))
    assert len(sources) == 3
    texts = [(page.parent / source).resolve().read_text(encoding="utf-8") for source in sources]
    for text, kind in zip(texts, ("Conv", "QLinearConv (QOperator)", "ConvInteger (dynamic)")):
        assert "stack1/conv1" in text and "stack1/conv2" in text and "stack1/Add" in text
        assert kind in text
    assert "x: UINT8 s, zp at run time" in texts[2]  # the dynamic input, said plainly
