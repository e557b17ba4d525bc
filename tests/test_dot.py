"""DOT generation: structure, dtypes, counts, escaping, links, determinism, node cap.

Every drawing is laid out by the real ``dot`` and read back from ``dot -Tjson``
(the text graphviz actually draws) or ``-Tsvg``; the truth it is compared with
comes from the ONNX protobuf (node lists, ``numpy_helper`` values, ONNX shape
inference), never from the DOT code itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import format_factories as formats
import numpy as np
import onnx
import pytest
import qdq_factories as factories  # tests/ is on sys.path (pytest rootdir conftest)
from onnx import TensorProto, helper, numpy_helper

from sphinxext_qdq.analysis import load_qdq_model, nodes_between
from sphinxext_qdq.analysis.patterns import analyze
from sphinxext_qdq.render.dot import (
    DOT_LINE_CHARS,
    DOT_STRING_BYTES,
    LABEL_WIDTH,
    DotOptions,
    _lines,
    escape_dot,
    escape_tooltip,
    graph_node_count,
    link_keys,
    render_dot,
)

REPOSITORY = Path(__file__).resolve().parent.parent
XLINK = "{http://www.w3.org/1999/xlink}"

#: Printed names of ONNX element types, written out here rather than imported.
DTYPE_NAMES = {
    TensorProto.FLOAT: "FP32", TensorProto.UINT8: "UINT8", TensorProto.INT8: "INT8",
    TensorProto.INT32: "INT32", TensorProto.INT16: "INT16", TensorProto.UINT16: "UINT16",
    TensorProto.INT64: "INT64",
}


# -- reading what graphviz draws -----------------------------------------------------


def run_dot(dot_text: str, fmt: str) -> bytes:
    result = subprocess.run(["dot", f"-T{fmt}"], input=dot_text.encode("utf-8"),
                            capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    assert b"Warning" not in result.stderr and b"Error" not in result.stderr, result.stderr
    return result.stdout


@dataclass
class DrawnNode:
    name: str  # DOT identifier
    lines: list[str]  # label lines as graphviz draws them
    attributes: dict


@dataclass
class Drawing:
    nodes: dict[int, DrawnNode]  # by graphviz id
    edges: list[dict]
    clusters: list[dict]

    def by_first_line(self, pattern: str) -> list[DrawnNode]:
        return [n for n in self.nodes.values() if n.lines and re.match(pattern, n.lines[0])]


def laid_out(dot_text: str) -> Drawing:
    """Parse ``dot -Tjson``: drawn label text per node, edges, clusters."""
    data = json.loads(run_dot(dot_text, "json"))
    nodes, clusters = {}, []
    for obj in data.get("objects", []):
        if "nodes" in obj or obj.get("name", "").startswith("cluster"):
            clusters.append(obj)
            continue
        lines = [op["text"] for op in obj.get("_ldraw_", []) if op["op"] == "T"]
        nodes[obj["_gvid"]] = DrawnNode(obj["name"], lines, obj)
    return Drawing(nodes, data.get("edges", []), clusters)


def model_nodes(drawing: Drawing) -> list[DrawnNode]:
    """The drawn nodes that are not the legend."""
    return [n for n in drawing.nodes.values() if not n.name.startswith("legend")]


def visible(text: str) -> str:
    """How a name must read in the picture: control characters as visible escapes."""
    out = []
    for ch in text:
        if ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


# -- models ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[onnx.ModelProto, Path]]:
    """Protos and files of the ORT-quantized tiny ResNets and the float original."""
    folder = tmp_path_factory.mktemp("dot_models")
    protos = {
        "qdq": factories.tiny_resnet_qdq(),
        "per_channel": factories.tiny_resnet_qdq(per_channel=True),
        "tensorrt": factories.tiny_resnet_qdq_tensorrt(),
        "int16": factories.tiny_resnet_qdq_int16(),
        "float": factories.tiny_resnet_float(),
    }
    return {name: (proto, factories.save(proto, folder / f"{name}.onnx"))
            for name, proto in protos.items()}


def load(models: dict, name: str):
    return load_qdq_model(models[name][1])


def proto_counts(proto: onnx.ModelProto) -> Counter:
    """Op types of the main graph's nodes."""
    return Counter(n.op_type for n in proto.graph.node)


def all_qdq_counts(proto: onnx.ModelProto) -> Counter:
    """Q and DQ nodes of the whole model, subgraph bodies (If / Loop) and model-local
    functions included."""
    counts, pending = Counter(), [proto.graph]
    pending += [helper.make_graph(list(f.node), f.name, [], []) for f in proto.functions]
    while pending:
        graph = pending.pop()
        for node in graph.node:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                counts[node.op_type] += 1
            for attribute in node.attribute:
                pending += [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else []
                pending += list(attribute.graphs)
    return counts


def inferred_dtypes(proto: onnx.ModelProto) -> dict[str, str]:
    """Tensor name -> printed dtype, from ONNX shape inference on the proto."""
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    graph = inferred.graph
    types = {t.name: t.data_type for t in graph.initializer}
    for info in [*graph.input, *graph.output, *graph.value_info]:
        types[info.name] = info.type.tensor_type.elem_type
    return {name: DTYPE_NAMES.get(t, TensorProto.DataType.Name(t)) for name, t in types.items()}


def names_match(shown: str, name: str) -> bool:
    """``shown`` is ``name``, or ``name`` cut in the middle with an ellipsis."""
    if shown == name:
        return True
    head, _, tail = shown.partition("…")
    return bool(tail) and name.startswith(head) and name.endswith(tail) and len(shown) < len(name)


def raw_first_line(value: str) -> str:
    """First line of a tooltip as ``-Tjson`` gives it (DOT escapes still in place)."""
    return value.split("\\n", 1)[0]


# -- full mode -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["qdq", "per_channel", "tensorrt", "int16"])
def test_full_mode_draws_every_q_and_dq_node_distinctly(models, name):
    proto = models[name][0]
    drawing = laid_out(render_dot(load(models, name), DotOptions(mode="full")))
    quantize = drawing.by_first_line(r"QuantizeLinear\b")
    dequantize = drawing.by_first_line(r"DequantizeLinear\b")
    counts = proto_counts(proto)
    assert len(quantize) == counts["QuantizeLinear"]
    assert len(dequantize) == counts["DequantizeLinear"]
    compute = len(model_nodes(drawing)) - len(quantize) - len(dequantize)
    graph_io = len(proto.graph.input) + len(proto.graph.output)
    assert compute == len(proto.graph.node) - len(quantize) - len(dequantize) + graph_io
    q_look = {(n.attributes["shape"], n.attributes["style"], n.attributes["fillcolor"])
              for n in quantize}
    dq_look = {(n.attributes["shape"], n.attributes["style"], n.attributes["fillcolor"])
               for n in dequantize}
    assert len(q_look) == len(dq_look) == 1
    (_, q_style, q_fill), = q_look
    (_, dq_style, dq_fill), = dq_look
    assert q_style != dq_style and q_fill != dq_fill


def test_full_mode_labels_show_scale_and_zero_point_names_and_values(models):
    proto, _ = models["qdq"]
    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    drawing = laid_out(render_dot(load(models, "qdq"), DotOptions(mode="full")))
    by_name = {n.lines[1]: n for n in drawing.by_first_line(r"(Quantize|Dequantize)Linear")}
    for node in proto.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        lines = by_name[node.name].lines
        scale_line = next(line for line in lines if line.startswith("scale "))
        zero_line = next(line for line in lines if line.startswith("zp "))
        scale_name, scale_text = scale_line[len("scale "):].split(" = ")
        zero_name, zero_text = zero_line[len("zp "):].split(" = ")
        assert names_match(scale_name, node.input[1]) and names_match(zero_name, node.input[2])
        # the printed scale reads back as exactly the stored float32
        assert np.float32(scale_text) == values[node.input[1]]
        zero_value, zero_dtype = zero_text.split(" ")
        assert int(zero_value) == int(values[node.input[2]])
        expected_dtype = DTYPE_NAMES[onnx.helper.np_dtype_to_tensor_dtype(values[node.input[2]].dtype)]
        assert zero_dtype == f"({expected_dtype})"


@pytest.mark.parametrize("mode, pairs", [("full", "edges"), ("compact", "nodes"),
                                         ("compact", "edges")])
@pytest.mark.parametrize("name", ["qdq", "per_channel", "tensorrt", "int16", "float"])
def test_every_edge_carries_the_inferred_dtype(models, name, mode, pairs):
    proto = models[name][0]
    truth = inferred_dtypes(proto)
    quantized = {n.input[0]: n.output[0] for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    drawing = laid_out(render_dot(load(models, name), DotOptions(mode=mode, pairs=pairs)))
    assert drawing.edges
    dtypes = []
    for edge in drawing.edges:
        tensor = raw_first_line(edge["tooltip"])
        if tensor.startswith("Q→DQ pair on "):  # the edge carries the pair's quantized dtype
            assert mode == "compact" and pairs == "edges"
            dtype = truth[quantized[tensor[len("Q→DQ pair on "):]]]
            assert raw_first_line(edge["label"]) in (f"Q→DQ {dtype}", f"Q→2×DQ {dtype}"), tensor
        else:
            dtype = truth[tensor]
            assert edge["label"] == dtype, tensor
        assert edge["color"] == edge["fontcolor"]
        dtypes.append(dtype)
    if mode == "compact" and pairs == "edges":  # tiny ResNets: every activation pair fits
        weights = {t.name for t in proto.graph.initializer}
        activations = [n for n in proto.graph.node
                       if n.op_type == "QuantizeLinear" and n.input[0] not in weights]
        assert len(edge_pairs(drawing)) == len(activations)
    colours = {}
    for dtype, edge in zip(dtypes, drawing.edges):  # one colour per dtype, different dtypes differ
        colours.setdefault(dtype, set()).add(edge["color"])
    assert all(len(c) == 1 for c in colours.values())
    assert len({c.pop() for c in colours.values()}) == len(colours)


def test_full_mode_edges_are_exactly_the_dataflow_of_the_proto(models):
    proto, _ = models["qdq"]
    drawing = laid_out(render_dot(load(models, "qdq"), DotOptions(mode="full")))

    def identity(gvid: int) -> str:
        node = drawing.nodes[gvid]
        first = raw_first_line(node.attributes["tooltip"])
        if first in ("graph input", "graph output"):
            return f"{first}:{node.lines[0]}"
        return first

    drawn = {(identity(e["tail"]), identity(e["head"]), raw_first_line(e["tooltip"]))
             for e in drawing.edges}
    producer = {out: n.name for n in proto.graph.node for out in n.output}
    expected = set()
    for node in proto.graph.node:
        for tensor in node.input:
            if tensor in producer:
                expected.add((producer[tensor], node.name, tensor))
            elif tensor in {i.name for i in proto.graph.input}:
                expected.add((f"graph input:{tensor}", node.name, tensor))
    for output in proto.graph.output:
        expected.add((producer[output.name], f"graph output:{output.name}", output.name))
    assert drawn == expected


def test_unknown_dtype_is_shown_as_question_mark(tmp_path):
    nodes = [helper.make_node("Mystery", ["x"], ["m"], name="mystery", domain="example.custom"),
             helper.make_node("Relu", ["m"], ["y"], name="relu")]
    proto = factories.make_model(nodes, [factories.tensor_input("x", [2])],
                                 [helper.make_value_info("y", helper.make_empty_tensor_value_info("y").type)],
                                 extra_opsets=[("example.custom", 1)])
    model = load_qdq_model(factories.save(proto, tmp_path / "unknown.onnx"))
    drawing = laid_out(render_dot(model, DotOptions(mode="full")))
    labels = {raw_first_line(e["tooltip"]): e["label"] for e in drawing.edges}
    assert labels == {"x": "FP32", "m": "unknown", "y": "unknown"}
    assert all(e["style"] == "dashed" for e in drawing.edges if e["label"] == "unknown")


# -- compact mode ------------------------------------------------------------------------

PAIR = re.compile(r"^Q→(?:(\d+)×)?DQ ")
#: An entry Q or exit DQ of a QOperator op drawn on its edge, like a pair.
ENTRY_EXIT = re.compile(r"^(?:entry (Q)|exit (DQ)) ")
FOLDED = re.compile(r"^(W|B): (Q→DQ|DQ) ")
SUBGRAPHS = re.compile(r"^subgraphs: (\d+) Q \+ (\d+) DQ$")


def edge_pairs(drawing: Drawing) -> dict[str, list[dict]]:
    """Q→DQ pairs drawn on edges: the edges of each pair, by the pair's tooltip (which
    starts ``Q→DQ pair on <tensor>`` and names the pair's Q and DQ nodes)."""
    pairs: dict[str, list[dict]] = {}
    for edge in drawing.edges:
        first = raw_first_line(edge.get("tooltip", ""))
        if first.startswith("Q→DQ pair on ") or " QOperator op " in first:
            pairs.setdefault(edge["tooltip"], []).append(edge)
    return pairs


def compact_counts(drawing: Drawing) -> Counter:
    """Q and DQ nodes the compact labels account for: node labels and pair edges."""
    counts = Counter()
    for edges in edge_pairs(drawing).values():
        heads = {e["label"].split("\\n")[0] for e in edges}
        assert len(heads) == 1, heads  # every edge of a pair names the same pair
        head = heads.pop()
        pair, single = PAIR.match(head), ENTRY_EXIT.match(head)
        assert pair or single, edges
        if single:
            counts["QuantizeLinear" if single.group(1) else "DequantizeLinear"] += 1
            continue
        counts["QuantizeLinear"] += 1
        counts["DequantizeLinear"] += int(pair.group(1) or 1)
    for node in model_nodes(drawing):
        first = node.lines[0]
        pair = PAIR.match(first)
        if pair:
            counts["QuantizeLinear"] += 1
            counts["DequantizeLinear"] += int(pair.group(1) or 1)
        elif first.startswith("QuantizeLinear"):
            counts["QuantizeLinear"] += 1
        elif first.startswith("DequantizeLinear"):
            counts["DequantizeLinear"] += 1
        for line in node.lines[1:]:
            folded = FOLDED.match(line)
            if folded:
                counts["DequantizeLinear"] += 1
                counts["QuantizeLinear"] += folded.group(2) == "Q→DQ"
            inside = SUBGRAPHS.match(line)
            if inside:
                counts["QuantizeLinear"] += int(inside.group(1))
                counts["DequantizeLinear"] += int(inside.group(2))
    return +counts


@pytest.mark.parametrize("name", ["qdq", "per_channel", "tensorrt", "int16"])
@pytest.mark.parametrize("pairs", ["edges", "nodes"])
def test_compact_mode_accounts_for_every_q_and_dq_node(models, name, pairs):
    proto = models[name][0]
    model = load(models, name)
    compact = laid_out(render_dot(model, DotOptions(mode="compact", legend=True, pairs=pairs)))
    counts = proto_counts(proto)
    assert compact_counts(compact) == Counter({
        "QuantizeLinear": counts["QuantizeLinear"], "DequantizeLinear": counts["DequantizeLinear"]})
    # the legend's totals agree with the proto too
    legend = next(n for n in compact.nodes.values() if n.name == "legend_counts").lines
    assert legend[0].startswith(f"QuantizeLinear: {counts['QuantizeLinear']} ")
    assert legend[1].startswith(f"DequantizeLinear: {counts['DequantizeLinear']} ")
    full_count = graph_node_count(model, DotOptions(mode="full"))
    compact_count = graph_node_count(model, DotOptions(mode="compact", pairs=pairs))
    assert compact_count < 0.6 * full_count
    assert len(model_nodes(compact)) == compact_count
    if pairs == "edges":  # no Q/DQ node left: one DOT node per operator, input and output
        operators = [n for n in proto.graph.node
                     if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
        assert compact_count == len(operators) + 2


def resnet8_float() -> onnx.ModelProto:
    """The MLPerf Tiny ResNet8 topology (BatchNorm folded), random weights."""
    rng = np.random.default_rng(3)
    nodes, initializers = [], []

    def conv(name: str, source: str, c_in: int, c_out: int, kernel: int, stride: int,
             relu: bool) -> str:
        initializers.extend([
            numpy_helper.from_array(rng.normal(0, 0.3, (c_out, c_in, kernel, kernel))
                                    .astype(np.float32), f"{name}.weight"),
            numpy_helper.from_array(rng.normal(0, 0.1, c_out).astype(np.float32), f"{name}.bias")])
        pad = kernel // 2
        nodes.append(helper.make_node("Conv", [source, f"{name}.weight", f"{name}.bias"],
                                      [f"{name}_out"], name=name, kernel_shape=[kernel, kernel],
                                      strides=[stride, stride], pads=[pad] * 4))
        if not relu:
            return f"{name}_out"
        nodes.append(helper.make_node("Relu", [f"{name}_out"], [f"{name}_relu"], name=f"{name}_relu"))
        return f"{name}_relu"

    x = conv("stem", "input", 3, 16, 3, 1, True)
    for stack, (c_in, c_out, stride) in enumerate([(16, 16, 1), (16, 32, 2), (32, 64, 2)]):
        y = conv(f"s{stack}.conv1", x, c_in, c_out, 3, stride, True)
        y = conv(f"s{stack}.conv2", y, c_out, c_out, 3, 1, False)
        skip = x if stack == 0 else conv(f"s{stack}.skip", x, c_in, c_out, 1, stride, False)
        nodes += [helper.make_node("Add", [y, skip], [f"s{stack}_sum"], name=f"s{stack}.add"),
                  helper.make_node("Relu", [f"s{stack}_sum"], [f"s{stack}_out"], name=f"s{stack}.relu")]
        x = f"s{stack}_out"
    initializers += [
        numpy_helper.from_array(rng.normal(0, 0.3, (10, 64)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")]
    nodes += [helper.make_node("AveragePool", [x], ["pooled"], name="pool", kernel_shape=[8, 8]),
              helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
              helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc",
                               transB=1)]
    return factories.make_model(nodes, [factories.tensor_input("input", [1, 3, 32, 32])],
                                [factories.tensor_input("logits", [1, 10])], initializers)


def test_compact_resnet8_has_at_most_half_the_nodes_of_full(tmp_path):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.normal(0, 1, (1, 3, 32, 32)).astype(np.float32)}
                                 for _ in range(2)])

        def get_next(self):
            return next(self.batches, None)

    source = factories.save(resnet8_float(), tmp_path / "resnet8_fp32.onnx")
    target = tmp_path / "resnet8_int8.onnx"
    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ)
    model = load_qdq_model(target)
    proto = onnx.load(str(target))
    full = DotOptions(mode="full")
    assert graph_node_count(model, full) == len(proto.graph.node) + 2  # + input, output
    counts = proto_counts(proto)
    for pairs in ("nodes", "edges"):
        compact = DotOptions(mode="compact", pairs=pairs)
        assert graph_node_count(model, compact) <= graph_node_count(model, full) / 2
        assert compact_counts(laid_out(render_dot(model, compact))) == Counter({
            "QuantizeLinear": counts["QuantizeLinear"],
            "DequantizeLinear": counts["DequantizeLinear"]})
    # pairs on edges: about a quarter of full, one DOT node per operator
    operators = [n for n in proto.graph.node
                 if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    assert graph_node_count(model, DotOptions(mode="compact")) == len(operators) + 2


def test_compact_mode_folds_weights_and_biases_into_their_compute_node(models):
    proto, _ = models["per_channel"]
    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    drawing = laid_out(render_dot(load(models, "per_channel"), DotOptions(mode="compact")))
    conv1 = next(n for n in model_nodes(drawing) if n.lines[:2] == ["Conv", "conv1"])
    assert "kernel 3×3" in conv1.lines[2] and "pad 1" in conv1.lines[2]
    weight_line = conv1.lines.index(next(x for x in conv1.lines if x.startswith("W: DQ INT8")))
    scales = values["conv1.weight_scale"]
    # per-axis scales summarised as count, min..max, each round-tripping float32
    match = re.fullmatch(r"s=(\d+)× (\S+) … (\S+)", conv1.lines[weight_line + 1])
    assert match, conv1.lines
    assert int(match.group(1)) == scales.size
    assert np.float32(match.group(2)) == scales.min()
    assert np.float32(match.group(3)) == scales.max()
    assert any(line.startswith("B: DQ INT32") for line in conv1.lines)


@pytest.mark.parametrize("pairs", ["edges", "nodes"])
def test_compact_activation_pair_shows_dtype_scale_and_zero_point(models, pairs):
    proto, _ = models["qdq"]
    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    drawing = laid_out(render_dot(load(models, "qdq"), DotOptions(mode="compact", pairs=pairs)))
    if pairs == "nodes":
        shown = {tuple(n.lines) for n in model_nodes(drawing) if PAIR.match(n.lines[0])}
        assert not edge_pairs(drawing)
    else:  # the first edge of each pair carries the whole label, the others its first line
        assert not [n for n in model_nodes(drawing) if PAIR.match(n.lines[0])]
        labels = [[e["label"].split("\\n") for e in edges] for edges in edge_pairs(drawing).values()]
        assert all(sum(len(lines) > 1 for lines in pair) == 1 for pair in labels)
        shown = {tuple(lines) for pair in labels for lines in pair if len(lines) > 1}
    for node in proto.graph.node:
        if node.op_type == "QuantizeLinear":
            scale, zero = values[node.input[1]], values[node.input[2]]
            matching = [lines for lines in shown
                        if re.fullmatch(r"s=(\S+) zp=(-?\d+)", lines[1])
                        and np.float32(lines[1].split()[0][2:]) == scale
                        and int(lines[1].split("zp=")[1]) == int(zero)]
            assert matching and all(lines[0] == "Q→DQ UINT8" for lines in matching)


def test_quantized_region_is_a_shaded_cluster_and_float_model_has_none(models):
    quantized = laid_out(render_dot(load(models, "qdq")))
    region = [c for c in quantized.clusters if c["name"].startswith("cluster_quantized")]
    assert len(region) == 1 and "filled" in region[0]["style"]
    inside = {quantized.nodes[g].lines[0] for g in region[0]["nodes"]}
    assert {"Conv", "Add", "Gemm"} <= inside
    outside = {n.name for n in quantized.nodes.values()} - {quantized.nodes[g].name
                                                             for g in region[0]["nodes"]}
    assert {"i0", "o0"} <= outside  # graph input and output drawn, outside the region
    float_drawing = laid_out(render_dot(load(models, "float"), DotOptions(legend=True)))
    assert not [c for c in float_drawing.clusters if c["name"].startswith("cluster_quantized")]
    legend = next(n for n in float_drawing.nodes.values() if n.name == "legend_counts")
    assert legend.lines == ["QuantizeLinear: 0", "DequantizeLinear: 0",
                            "no QDQ nodes: a float model"]


# -- determinism --------------------------------------------------------------------------

_RENDER_SCRIPT = """
import sys
from sphinxext_qdq.analysis import load_qdq_model
from sphinxext_qdq.render.dot import DotOptions, render_dot
model = load_qdq_model(sys.argv[1])
for mode in ("compact", "full"):
    sys.stdout.write(render_dot(model, DotOptions(mode=mode, legend=True)))
"""


def test_same_model_gives_byte_identical_dot_across_processes(models):
    path = models["tensorrt"][1]
    outputs = set()
    for seed in ("1", "2"):  # different str hashes: no set or dict order may leak out
        environment = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run([sys.executable, "-c", _RENDER_SCRIPT, str(path)],
                                capture_output=True, env=environment, timeout=120, check=True,
                                cwd=REPOSITORY)
        outputs.add(result.stdout)
    model = load_qdq_model(path)
    in_process = "".join(render_dot(model, DotOptions(mode=mode, legend=True))
                         for mode in ("compact", "full"))
    assert outputs == {in_process.encode("utf-8")}
    assert render_dot(model) == render_dot(model)


# -- hostile names ------------------------------------------------------------------------

HOSTILE = [
    'quote " inside', "back\\slash", "<b>bold</b>", "{record|field}", "line\nbreak\r\ttab",
    "\\N \\G \\l \\E \\T \\H", "é 中文 😀", "&amp; &lt; &#65;", '] URL="http://evil" [',
    'label=<<b>x</b>>', "\\", '"', "ends with backslash\\", "x" * 300, "\x00\x01nul",
]


def hostile_model() -> onnx.ModelProto:
    """Q -> DQ -> Relu chains and a Conv with a weight DQ, every name hostile."""
    nodes, initializers = [], []
    previous = HOSTILE[0] + " input"
    for number, text in enumerate(HOSTILE):
        scale, zero = f"{text} scale {number}", f"{text} zp {number}"
        initializers += [factories.scalar(scale, 0.1 + number), factories.scalar(zero, 3, TensorProto.UINT8)]
        quantized, restored, relu = f"{text} q {number}", f"{text} dq {number}", f"{text} r {number}"
        nodes += [helper.make_node("QuantizeLinear", [previous, scale, zero], [quantized], name=text),
                  helper.make_node("DequantizeLinear", [quantized, scale, zero], [restored],
                                   name=text + " DQ"),
                  helper.make_node("Relu", [restored], [relu], name="dup" if number % 2 else "",
                                   doc_string=text)]
        previous = relu
    weight = numpy_helper.from_array(np.full((2, 1, 1, 1), 5, np.int8), HOSTILE[4] + " w")
    initializers += [weight, factories.scalar("w scale \\N", 0.5), factories.scalar("w zp \"", 0, TensorProto.INT8)]
    nodes += [helper.make_node("Unsqueeze", [previous, "axes"], ["4d"], name=HOSTILE[2]),
              helper.make_node("DequantizeLinear", [weight.name, "w scale \\N", 'w zp "'], ["w"],
                               name=HOSTILE[8]),
              helper.make_node("Conv", ["4d", "w"], ["out \n\"end\""], name=HOSTILE[13])]
    initializers.append(numpy_helper.from_array(np.array([0, 2, 3], np.int64), "axes"))
    model = factories.make_model(
        nodes, [factories.tensor_input(HOSTILE[0] + " input", [1])],
        [factories.tensor_input('out \n"end"', None)], initializers, name=HOSTILE[9])
    model.graph.doc_string = HOSTILE[5]
    return model


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    proto = hostile_model()
    return proto, load_qdq_model(factories.save(proto, tmp_path_factory.mktemp("h") / "h.onnx"))


@pytest.mark.parametrize("mode", ["full", "compact"])
def test_hostile_names_cannot_change_the_dot_structure(hostile, mode):
    _, model = hostile
    options = DotOptions(mode=mode, legend=True)
    dot_text = render_dot(model, options)
    run_dot(dot_text, "canon")
    drawing = laid_out(dot_text)
    assert len(model_nodes(drawing)) == graph_node_count(model, options)
    for node in drawing.nodes.values():
        assert not {"URL", "href", "image", "target", "shapefile"} & set(node.attributes)
        assert not str(node.attributes.get("label", "")).startswith("<")
    for edge in drawing.edges:
        assert not {"URL", "href", "headURL", "tailURL", "labelURL"} & set(edge)


def test_hostile_names_read_back_exactly_or_cut_with_an_ellipsis(hostile):
    proto, model = hostile
    dot_text = render_dot(model, DotOptions(mode="full"))
    drawn_lines = {line for n in laid_out(dot_text).nodes.values() for line in n.lines}
    for node in proto.graph.node:
        if not node.name:
            continue
        shown = visible(node.name)
        if len(shown) <= LABEL_WIDTH:
            assert shown in drawn_lines, node.name
        else:
            assert any(line.endswith(shown[-8:]) and "…" in line and len(line) <= LABEL_WIDTH
                       for line in drawn_lines), node.name
    # the SVG is well-formed XML; the tooltips keep the whole long name, no link appears
    svg = ElementTree.fromstring(run_dot(dot_text, "svg"))
    titles = [a.get(f"{XLINK}title") for a in svg.iter("{http://www.w3.org/2000/svg}a")]
    assert any(t and t.startswith("x" * 300 + "\n") for t in titles)
    assert not any(a.get(f"{XLINK}href") for a in svg.iter("{http://www.w3.org/2000/svg}a"))


def test_escape_dot_round_trips_any_text_through_graphviz():
    rng = np.random.default_rng(7)
    pieces = list('"\\<>{}|&;[]=,\n\r\t ') + [
        "\\N", "\\G", "\\l", "&amp;", "&lt;", "<b>", "</b>", "é", "中", "\u202e", "😀",
        "\x00", "\x7f", "label=", 'URL="x"', "'", 'a', "\ud800"]
    texts = ["".join(rng.choice(pieces, size=rng.integers(1, 12))) for _ in range(400)]
    dot_text = "digraph {\n" + "\n".join(
        f'n{i} [label="{escape_dot(t)}"];' for i, t in enumerate(texts)) + "\n}\n"
    drawing = laid_out(dot_text)
    assert len(drawing.nodes) == len(texts) and not drawing.edges
    for node in drawing.nodes.values():
        expected = visible(texts[int(node.name[1:])]).replace("\ud800", "\ufffd")
        assert "".join(node.lines) == expected


def test_text_without_special_characters_is_returned_as_it_is():
    """The quick path (no character to escape: one search, no ``translate``) agrees with
    the escape tables on every code point of the Basic Multilingual Plane, alone and
    inside other text."""
    from sphinxext_qdq.render import dot

    def by_table(text: str, table: dict) -> str:
        return dot._SURROGATES.sub("\ufffd", text.translate(table))

    for code in range(0x10000):
        text = f"a{chr(code)}b"
        assert escape_dot(text) == by_table(text, dot._DOT_ESCAPES), hex(code)
        assert escape_tooltip(text) == by_table(text, dot._TOOLTIP_ESCAPES), hex(code)
    assert escape_dot("conv1/Relu_output_0 = 0.023") == "conv1/Relu_output_0 = 0.023"


#: graphviz's escapes in labels and tooltips: node, graph, object label, edge, tail, head.
GRAPHVIZ_ESCAPES = "NGLETH"


def with_escapes_in_every_name(model: onnx.ModelProto) -> list[str]:
    """Rename every node, tensor and the graph to ``kNN\\Xkk`` (X cycling through
    :data:`GRAPHVIZ_ESCAPES`); the new names, in order of first use."""
    names: dict[str, str] = {}

    def new(name: str) -> str:
        if name and name not in names:
            i = len(names)
            names[name] = f"k{i:02d}\\{GRAPHVIZ_ESCAPES[i % len(GRAPHVIZ_ESCAPES)]}k{i:02d}"
        return names.get(name, name)

    graph = model.graph
    for node in graph.node:
        node.name = new(node.name)
        node.input[:] = [new(name) for name in node.input]
        node.output[:] = [new(name) for name in node.output]
    for item in [*graph.initializer, *graph.input, *graph.output, *graph.value_info]:
        item.name = new(item.name)
    graph.name = new(graph.name)
    return list(names.values())


@pytest.fixture(scope="module")
def escaped_names(tmp_path_factory):
    proto = factories.weight_dq_model()
    names = with_escapes_in_every_name(proto)
    path = factories.save(proto, tmp_path_factory.mktemp("esc") / "escapes.onnx")
    return proto, names, load_qdq_model(path)


@pytest.mark.parametrize(("mode", "pairs"), [("full", "edges"), ("compact", "edges"),
                                             ("compact", "nodes")])
def test_graphviz_escapes_in_names_stay_literal_in_svg_labels_and_tooltips(escaped_names, mode,
                                                                           pairs):
    """``\\N`` ``\\G`` ``\\L`` ``\\E`` ``\\T`` ``\\H`` in a name are shown as written, in the
    drawn labels and in the tooltips (where graphviz expands them even after ``\\\\``)."""
    proto, names, model = escaped_names
    svg = ElementTree.fromstring(run_dot(render_dot(model, DotOptions(mode=mode, pairs=pairs)),
                                         "svg"))
    labels = [text.text or "" for text in svg.iter("{http://www.w3.org/2000/svg}text")]
    tooltips = [a.get(f"{XLINK}title") or "" for a in svg.iter("{http://www.w3.org/2000/svg}a")]
    for shown in labels + tooltips:
        rest = shown
        for name in names:
            rest = rest.replace(name, "")
        # what is left of every line, the names taken out, has no trace of them: an
        # expanded escape would leave "k07" + "n3" + "k07" or a lone backslash
        assert "\\" not in rest and not re.search(r"k\d\d", rest), shown
    node_names = [node.name for node in proto.graph.node]
    in_tooltips = {name for name in names if any(name in tooltip for tooltip in tooltips)}
    assert set(node_names) <= in_tooltips  # every node, folded or drawn, is in a tooltip
    used = {name for node in proto.graph.node for name in [*node.input, *node.output]}
    in_labels = {name for name in names if any(name in label for label in labels)}
    every_escape = {f"\\{letter}" for letter in GRAPHVIZ_ESCAPES}
    assert {name[3:5] for name in in_tooltips} == every_escape
    if mode == "full":
        assert used <= in_tooltips  # every tensor: its edge's or its reader's tooltip
        assert set(node_names) <= in_labels
        assert {name[3:5] for name in in_labels} == every_escape
    else:  # the graph input, the Conv (its weight and bias folded in) and the output
        assert len(in_labels) == 3


# -- links --------------------------------------------------------------------------------


def test_link_keys_name_every_drawn_op_type_and_node(models):
    model = load(models, "qdq")
    keys = link_keys(model, DotOptions(mode="full"))
    assert keys == sorted(keys)
    op_types = {n.op_type for n in models["qdq"][0].graph.node}
    assert {k[3:] for k in keys if k.startswith("op:")} == op_types
    assert {k[5:] for k in keys if k.startswith("node:")} == {n.key for n in model.nodes}
    compact_keys = link_keys(model, DotOptions(mode="compact"))
    assert "op:QuantizeLinear" in compact_keys and "node:conv1" in compact_keys


def test_links_come_only_from_the_url_map_and_open_at_top_level(models):
    model = load(models, "qdq")
    urls = {"op:QuantizeLinear": "boundary.html#quantize", "node:conv1": 'conv.html#a"b c<\\N>',
            "op:Conv": "conv-op.html", "op:Gemm": ""}
    dot_text = render_dot(model, DotOptions(mode="full"), urls)
    drawing = laid_out(dot_text)
    linked = {}
    for node in model_nodes(drawing):
        if "URL" in node.attributes:
            assert node.attributes["target"] == "_top"
            linked[raw_first_line(node.attributes["tooltip"])] = node
        else:
            assert "target" not in node.attributes
    quantize_names = {n.name for n in models["qdq"][0].graph.node if n.op_type == "QuantizeLinear"}
    assert set(linked) == quantize_names | {"conv1", "conv2", "skip"}
    svg = ElementTree.fromstring(run_dot(dot_text, "svg"))
    hrefs = Counter(a.get(f"{XLINK}href") for a in svg.iter("{http://www.w3.org/2000/svg}a")
                    if a.get(f"{XLINK}href"))
    assert hrefs == Counter({"boundary.html#quantize": len(quantize_names),
                             "conv.html#a%22b%20c%3C%5CN%3E": 1, "conv-op.html": 2})


@pytest.mark.parametrize(("length", "kept"), [(8000, True), (8001, False)])
def test_a_url_is_kept_up_to_the_dot_string_limit_and_never_cut(tmp_path, length, kept):
    """graphviz refuses strings of 16 KiB; a URL up to DOT_STRING_BYTES is written whole,
    a longer one is left out (a cut URL would lead elsewhere), the others stay."""
    assert DOT_STRING_BYTES == 8000
    long_url = "conv-op.html#" + "a" * (length - len("conv-op.html#"))
    urls = {"op:Conv": long_url, "op:QuantizeLinear": "boundary.html"}
    model = load_qdq_model(factories.save(factories.weight_dq_model(), tmp_path / "w.onnx"))
    dot_text = render_dot(model, DotOptions(mode="full"), urls)
    hrefs = Counter(node.attributes.get("URL") for node in model_nodes(laid_out(dot_text)))
    assert hrefs[long_url] == (1 if kept else 0)  # the one Conv
    assert hrefs["boundary.html"] == 2  # x_q and y_q


# -- cuts: labels, tooltips ----------------------------------------------------------------------
def cut_names_model() -> onnx.ModelProto:
    """Relu nodes with names of LABEL_WIDTH and LABEL_WIDTH + 1 characters, vendor ops whose
    displayed type ("v." + op type) has LABEL_WIDTH and LABEL_WIDTH + 1 characters."""
    names = ["A" * LABEL_WIDTH, "0123456789abcdefghijklmnopqrstuvwxyz!"]
    types = ["T" * (LABEL_WIDTH - 2), "0123456789abcdefghijklmnopqrstuvwxy"]
    nodes = [helper.make_node("Relu", ["x"], ["r0"], name=names[0]),
             helper.make_node("Relu", ["r0"], ["r1"], name=names[1]),
             helper.make_node(types[0], ["r1"], ["v0"], name="v0", domain="v"),
             helper.make_node(types[1], ["v0"], ["y"], name="v1", domain="v")]
    return factories.make_model(nodes, [factories.tensor_input("x", [4])],
                                [factories.tensor_input("y", [4])], [],
                                extra_opsets=[("v", 1)])


def test_names_and_op_types_are_cut_to_the_label_width():
    """A name of LABEL_WIDTH characters is drawn whole; one more and it is cut in the
    middle (head, ellipsis, tail: LABEL_WIDTH characters); an op type longer than the
    width is cut at its end."""
    width = LABEL_WIDTH
    assert len("0123456789abcdefghijklmnopqrstuvwxyz!") == width + 1
    model = analyze(cut_names_model(), path="cuts.onnx", model_dir=None)
    lines = {tuple(node.lines) for node in laid_out(render_dot(model, DotOptions(mode="full"))
                                                    ).nodes.values()}
    head = (width - 1) // 2  # 17 characters before the ellipsis, 18 after
    assert ("Relu", "A" * width) in lines
    assert ("Relu", "0123456789abcdefg" + "…" + "jklmnopqrstuvwxyz!") in lines
    assert len("0123456789abcdefg") == head
    assert ("v." + "T" * (width - 2), "v0") in lines
    assert ("v.0123456789abcdefghijklmnopqrstuvw" + "…", "v1") in lines


@pytest.mark.parametrize(("lines", "kept"), [
    (["a" * 998] * 8, 8),  # 8 x (998 bytes + a 2-byte line break) = 8000: all kept
    (["a" * 998] * 7 + ["a" * 999], 7),  # 8001 bytes: the last line becomes "…"
    (["a" * 998] * 9, 8),
    (["a" * 998] * 8 + ["a" * 999, "a", "a"], 8),  # one "…" for all the lines left out
    (['"' * 499] * 8, 8),  # what counts is the escaped text: \" is 2 bytes
    (['"' * 499] * 7 + ['"' * 499 + "a"], 7),
    (["é" * 499] * 8, 8),  # and UTF-8 bytes, not characters
    (["é" * 499] * 7 + ["é" * 499 + "a"], 7),
])
def test_a_tooltip_is_cut_to_the_dot_string_limit(lines, kept):
    assert DOT_STRING_BYTES == 8000
    quoted = _lines(lines, escape_tooltip)
    expected = [escape_tooltip(line) for line in lines[:kept]] + (["…"] if kept < len(lines)
                                                                  else [])
    assert quoted == '"' + "\\n".join(expected) + '"'


def test_a_tooltip_line_is_cut_at_dot_line_chars():
    assert DOT_LINE_CHARS == 1000
    assert _lines(["b" * 1000, "c" * 1001]) == '"' + "b" * 1000 + "\\n" + "c" * 999 + '…"'


# -- selection and node cap ----------------------------------------------------------------


def test_selection_draws_only_the_selected_nodes_with_boundaries(models):
    model = load(models, "qdq")
    selection = nodes_between(model, ["conv2"], ["add"])
    options = DotOptions(mode="full", selection=selection)
    drawing = laid_out(render_dot(model, options))
    names = {raw_first_line(n.attributes["tooltip"]) for n in drawing.nodes.values()}
    assert {model.node(k).name for k in selection} <= names
    assert "conv1" not in names and "fc" not in names
    boundaries = [n for n in drawing.nodes.values() if n.attributes.get("style") == "dashed"]
    assert boundaries, "tensors from outside the selection are drawn as dashed boundaries"
    assert graph_node_count(model, options) == len(drawing.nodes)


def test_node_cap_draws_a_note_with_inputs_and_outputs(models):
    model = load(models, "qdq")
    full = graph_node_count(model, DotOptions(mode="full"))
    options = DotOptions(mode="full", max_nodes=10)
    drawing = laid_out(render_dot(model, options, {"op:Conv": "x.html"}))
    note = next(n for n in drawing.nodes.values() if n.name == "note")
    text = " ".join(note.lines)
    assert f"has {len(models['qdq'][0].graph.node)} ONNX nodes" in text
    assert f"({full} graph nodes" in text and ":from:" in text and ":to:" in text
    assert {n.name for n in drawing.nodes.values()} == {"note", "i0", "o0"}
    assert len(drawing.edges) == 2
    assert link_keys(model, options) == []
    assert graph_node_count(model, options) == full  # the count the caller warns with
    # under the cap the real drawing is made
    assert len(laid_out(render_dot(model, DotOptions(mode="full", max_nodes=full))).nodes) == full


def test_options_are_validated_and_rankdir_reaches_the_graph(models):
    for bad in ({"mode": "tiny"}, {"rankdir": "BT"}, {"max_nodes": -1}):
        with pytest.raises(ValueError):
            DotOptions(**bad)
    assert "rankdir=LR" in render_dot(load(models, "qdq"), DotOptions(rankdir="LR"))


# -- size -------------------------------------------------------------------------------


def long_chain(blocks: int) -> onnx.ModelProto:
    """``blocks`` × (Q -> DQ -> Relu): 3 × blocks nodes."""
    nodes = []
    previous = "x"
    for number in range(blocks):
        nodes += [helper.make_node("QuantizeLinear", [previous, "s", "z"], [f"q{number}"],
                                   name=f"q{number}"),
                  helper.make_node("DequantizeLinear", [f"q{number}", "s", "z"], [f"d{number}"],
                                   name=f"d{number}"),
                  helper.make_node("Relu", [f"d{number}"], [f"r{number}"], name=f"r{number}")]
        previous = f"r{number}"
    return factories.make_model(
        nodes, [factories.tensor_input("x", [4])], [factories.tensor_input(previous, [4])],
        [factories.scalar("s", 0.5), factories.scalar("z", 0, TensorProto.UINT8)])


PACKAGE_DIR = str(Path(__import__("sphinxext_qdq").__file__).parent)


def lines_executed(function, *args, **kwargs):
    """(result, number of lines of the package's code executed by the call): a count of
    the interpreted work, the same on any machine (no clock)."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(PACKAGE_DIR) else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        result = function(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return result, count


def test_dot_generation_is_linear_in_graph_size(tmp_path):
    work = {}
    for blocks in (100, 400):
        model = load_qdq_model(factories.save(long_chain(blocks), tmp_path / f"{blocks}.onnx"))
        text, work[blocks] = lines_executed(render_dot, model, DotOptions(mode="full"))
        assert text.count(" -> ") == 3 * blocks + 1
    assert work[400] < 4.4 * work[100]  # 4× the nodes: linear, far from 16×


# -- every QDQ-NOTES case draws ------------------------------------------------------------

CASES = {
    "zero point absent": lambda: factories.qdq_pair_model(zero_point_from="absent"),
    "zero point empty": lambda: factories.qdq_pair_model(zero_point_from="empty"),
    "scale from Constant": lambda: factories.qdq_pair_model(scale_from="constant"),
    "scale from input": lambda: factories.qdq_pair_model(scale_from="input"),
    "scale at run time": lambda: factories.qdq_pair_model(scale_from="runtime"),
    "per-axis pair": lambda: factories.qdq_pair_model([0.1, 0.2, 0.3, 0.4], 3, axis=1),
    "bad scales": lambda: factories.qdq_pair_model([0.0, -1.0, float("nan"), float("inf")], 0,
                                                   axis=1),
    "com.microsoft": lambda: factories.qdq_pair_model(domain="com.microsoft"),
    "per-axis weight": lambda: factories.weight_dq_model(scale=[0.1, 0.2, 0.3, 0.4], axis=0,
                                                         zero_point=[0, 0, 0, 0]),
    "shared params": factories.shared_params_model,
    "fan-out and clip": factories.fanout_clip_model,
    "If outer scope": factories.if_outer_scope_model,
    "Loop": factories.loop_model,
    "model-local function": formats.function_qdq_model,
    "QOperator (ONNX Runtime)": factories.tiny_resnet_qoperator,
    "blocked INT4": factories.blocked_int4_model,
    "FP8": factories.float8_model,
    "output_dtype": factories.output_dtype_model,
    "awkward names": factories.awkward_names_model,
    "quantized chain": lambda: factories.chain_model(150, quantized_every=3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_qdq_notes_case_draws_and_accounts_for_its_q_and_dq_nodes(case, tmp_path):
    proto = CASES[case]()
    model = load_qdq_model(factories.save(proto, tmp_path / "case.onnx"))
    every_qdq = all_qdq_counts(proto)  # subgraph bodies are drawn as clusters
    for mode, pairs in (("full", "edges"), ("compact", "nodes"), ("compact", "edges")):
        options = DotOptions(mode=mode, legend=True, pairs=pairs)
        dot_text = render_dot(model, options)
        run_dot(dot_text, "canon")
        drawing = laid_out(dot_text)
        assert len(model_nodes(drawing)) == graph_node_count(model, options)
        assert all(edge["label"] for edge in drawing.edges if edge.get("style") != "invis")
        if mode == "compact":
            assert compact_counts(drawing) == every_qdq
        else:
            drawn = Counter(n.lines[0].split(" ")[0].split(".")[-1] for n in model_nodes(drawing))
            assert Counter({op: drawn[op] for op in every_qdq}) == every_qdq


def test_special_dtypes_and_parameter_sources_are_named(tmp_path):
    def first_lines(proto: onnx.ModelProto, mode: str = "full") -> list[str]:
        model = load_qdq_model(factories.save(proto, tmp_path / "m.onnx"))
        drawing = laid_out(render_dot(model, DotOptions(mode=mode)))
        return [line for n in drawing.nodes.values() for line in n.lines] + [
            e["label"] for e in drawing.edges]

    assert "FP8E4M3FN" in first_lines(factories.float8_model())
    assert "INT4" in " ".join(first_lines(factories.blocked_int4_model()))
    assert "scale scale = unknown (graph input)" in first_lines(factories.qdq_pair_model(scale_from="input"))
    assert "zp absent (UINT8)" in first_lines(factories.qdq_pair_model(zero_point_from="absent"))
    bad = first_lines(factories.qdq_pair_model([0.0, -1.0, float("nan"), float("inf")], 0, axis=1))
    assert "scale scale = 4× -1 … inf (nan)" in bad
