"""QOperator, dynamic and weight-only quantization, Q/DQ in subgraphs and functions, mixed
models: analysed, tabled, counted and drawn like QDQ (issue 15).

The models come from ``onnx.helper``, ONNX Runtime's quantizers (``quantize_static`` with
``QuantFormat.QOperator``, ``quantize_dynamic``) and onnx's own backend node test cases;
every expectation is computed here from the protobuf or the operator schemas, not copied
from the analysis.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import format_factories as formats
import numpy as np
import onnx
import pytest
import qdq_factories as factories
from onnx import numpy_helper
from sphinx_helpers import SVG_NS, build, follow, has_id

from sphinxext_qdq.analysis import ParamSource, Role, analyze, summarize
from sphinxext_qdq.analysis.qoperator import OPERAND_SPECS, OUTPUT, specs_for
from sphinxext_qdq.analysis.records import QuantFormat
from sphinxext_qdq.integer.requant import requant_recipes
from sphinxext_qdq.render.dot import (
    DotOptions,
    graph_node_count,
    link_keys,
    qdq_counts,
    render_dot,
)


def analysed(proto: onnx.ModelProto, name: str = "model"):
    return analyze(proto, path=f"{name}.onnx", model_dir=None)


def run_dot(dot_text: str) -> bytes:
    """The SVG the real ``dot`` draws."""
    result = subprocess.run(["dot", "-Tsvg"], input=dot_text.encode("utf-8"),
                            capture_output=True, timeout=120, check=True)
    return result.stdout


# -- schemas -------------------------------------------------------------------------------
def _contrib_schemas() -> dict[str, object]:
    from onnxruntime.capi import onnxruntime_pybind11_state as ort

    return {s.name: s for s in ort.get_all_operator_schema() if s.domain == "com.microsoft"}


def schema_inputs(op_type: str, contrib: dict[str, object]) -> list[str]:
    """Formal input names of *op_type*: the ONNX schema, else ONNX Runtime's contrib one."""
    if onnx.defs.has(op_type):
        return [i.name for i in onnx.defs.get_schema(op_type).inputs]
    return [i.name for i in contrib[op_type].inputs]  # type: ignore[attr-defined]


def test_operand_specs_follow_the_schemas() -> None:
    """Every scale / zero-point index of the table is an input the schema calls a scale /
    zero point, and every tensor index is neither."""
    contrib = _contrib_schemas()
    checked = 0
    for op_type, specs in OPERAND_SPECS.items():
        names = schema_inputs(op_type, contrib)
        for spec in specs:
            if spec.index != OUTPUT:
                assert not re.search("scale|zero_point", names[spec.index], re.IGNORECASE), (op_type, spec)
            if spec.scale is not None:
                assert names[spec.scale].lower().endswith("scale"), (op_type, spec)
                checked += 1
            if spec.zero_point is not None:
                assert names[spec.zero_point].lower().endswith("zero_point"), (op_type, spec)
                checked += 1
    concat = schema_inputs("QLinearConcat", contrib)
    output, first = specs_for("QLinearConcat", 8)[:2]
    assert (concat[output.scale], concat[output.zero_point]) == ("Y_scale", "Y_zero_point")
    assert (first.index, first.scale, first.zero_point) == (2, 3, 4)
    assert checked >= 50


# -- QOperator -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qoperator():
    proto = factories.tiny_resnet_qoperator()
    return proto, analysed(proto, "qoperator")


def test_every_scale_and_zero_point_input_of_a_qoperator_node_is_tabled(qoperator) -> None:
    proto, model = qoperator
    contrib = _contrib_schemas()
    uses = {(p.name, u.node, u.input_index) for p in model.params for u in p.users}
    expected = set()
    for node in proto.graph.node:
        if not node.op_type.startswith(("QLinear", "QGemm")):
            continue
        for index, formal in enumerate(schema_inputs(node.op_type, contrib)):
            if re.search("(scale|zero_point)$", formal, re.IGNORECASE) and index < len(node.input) \
                    and node.input[index]:
                expected.add((node.input[index], node.name, index))
    assert expected and expected <= uses
    assert not model.diagnostics
    assert {op.format for op in model.quant_ops} == {QuantFormat.QOPERATOR}
    conv = model.quant_op(next(n.name for n in proto.graph.node if n.op_type == "QLinearConv"))
    assert [o.role for o in conv.operands] == [Role.INPUT, Role.WEIGHT, Role.OUTPUT, Role.BIAS]
    assert conv.operand(Role.BIAS).scale is None and conv.operand(Role.BIAS).quant_dtype == "INT32"


def test_the_q_and_dq_around_an_ort_qoperator_model_are_its_entry_and_exit(qoperator) -> None:
    proto, model = qoperator
    integer_ops = {n.name for n in proto.graph.node
                   if n.op_type.startswith(("QLinear", "QGemm"))}
    readers = {t: n.name for n in proto.graph.node for t in n.input}
    writers = {t: n.name for n in proto.graph.node for t in n.output}
    expected = {}
    for node in proto.graph.node:
        if node.op_type == "QuantizeLinear" and readers.get(node.output[0]) in integer_ops:
            expected[node.name] = Role.ENTRY
        if node.op_type == "DequantizeLinear" and writers.get(node.input[0]) in integer_ops:
            expected[node.name] = Role.EXIT
    assert len(expected) == 2  # the model's input and its logits
    assert {q.key: q.role for q in model.qdq_nodes} == expected
    assert dict(summarize(model).qdq_by_role) == {"entry": 1, "exit": 1}  # no "lone"
    # drawn on their edges, grouped with the op they enter or leave
    values = {t.name: numpy_helper.to_array(t).item() for t in proto.graph.initializer
              if t.name in ("input_scale", "input_zero_point", "logits_scale",
                            "logits_zero_point")}
    text = render_dot(model, DotOptions(legend=True))
    entry = re.search(r'i0 -> (n\d+) \[label="entry Q UINT8\\ns=([\d.]+) zp=(\d+)"', text)
    assert math.isclose(float(entry.group(2)), values["input_scale"], rel_tol=1e-6)
    assert int(entry.group(3)) == values["input_zero_point"]
    assert re.search(rf'  {entry.group(1)} \[label="QLinearConv \(QOperator\)', text)
    exit_ = re.search(r'(n\d+) -> o0 \[label="exit DQ UINT8\\ns=([\d.]+) zp=(\d+)"', text)
    assert math.isclose(float(exit_.group(2)), values["logits_scale"], rel_tol=1e-6)
    assert re.search(rf'  {exit_.group(1)} \[label="com.microsoft.QGemm \(QOperator\)', text)
    assert "QuantizeLinear: 1 (1 entering QOperator ops)" in text
    assert "DequantizeLinear: 1 (1 leaving QOperator ops)" in text
    counts = qdq_counts(model, DotOptions())
    assert (counts["q_entry"], counts["dq_exit"], counts["q_alone"], counts["dq_alone"]) == \
        (1, 1, 0, 0)
    # drawn as nodes (pairs as nodes), they say their role
    assert 'label="QuantizeLinear (entry)' in render_dot(model, DotOptions(pairs="nodes"))


def test_entry_and_exit_are_found_through_layout_ops_and_a_lone_q_stays_lone() -> None:
    helper = onnx.helper
    initializers = [factories.scalar("x_s", 0.1), factories.scalar("x_z", 3, onnx.TensorProto.UINT8),
                    numpy_helper.from_array(np.ones((4, 4), np.uint8), "w"),
                    factories.scalar("w_s", 0.2), factories.scalar("w_z", 0, onnx.TensorProto.UINT8),
                    factories.scalar("y_s", 0.3), factories.scalar("y_z", 5, onnx.TensorProto.UINT8),
                    numpy_helper.from_array(np.array([1, 4], np.int64), "shape")]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["x_q"], name="entry_q"),
        helper.make_node("Reshape", ["x_q", "shape"], ["x_r"], name="reshape"),
        helper.make_node("QLinearMatMul", ["x_r", "x_s", "x_z", "w", "w_s", "w_z", "y_s", "y_z"],
                         ["y_q"], name="qmm"),
        helper.make_node("Transpose", ["y_q"], ["y_t"], name="transpose"),
        helper.make_node("DequantizeLinear", ["y_t", "y_s", "y_z"], ["y"], name="exit_dq"),
        helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["side"], name="lone_q"),
    ]
    model = analysed(factories.make_model(
        nodes, [factories.tensor_input("x", [1, 4])],
        [factories.tensor_input("y", [4, 1]),
         factories.tensor_input("side", [1, 4], onnx.TensorProto.UINT8)], initializers))
    roles = {q.key: q.role for q in model.qdq_nodes}
    assert roles == {"entry_q": Role.ENTRY, "exit_dq": Role.EXIT, "lone_q": Role.LONE_Q}


def test_the_text_outline_lists_the_quantized_operators(qoperator) -> None:
    from sphinxext_qdq.render.outline import outline

    proto, model = qoperator
    text = "\n".join(outline(model))
    conv = next(n for n in proto.graph.node if n.op_type == "QLinearConv")
    scale = numpy_helper.to_array(next(t for t in proto.graph.initializer
                                       if t.name == conv.input[4]))
    assert f"1. QLinearConv {conv.name} (QOperator)" in text
    assert f"weight INT8 (scale {np.float32(scale.item())!s}," in text
    assert "bias   INT32 (no scale of its own)" in text
    dynamic = "\n".join(outline(analysed(formats.tiny_resnet_dynamic())))
    assert "input  UINT8 (scale and zero point computed at run time)" in dynamic


def test_qoperator_recipes_are_those_of_the_qdq_groups(qoperator) -> None:
    """M = s_x * s_w / s_y from the initializers the node names, for every QLinearConv and
    QGemm; s_a / s_y and s_b / s_y for QLinearAdd."""
    proto, model = qoperator
    values = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in proto.graph.initializer}
    recipes = {r.node: r for r in requant_recipes(model)}
    seen = Counter()
    for node in proto.graph.node:
        i = node.input
        if node.op_type in ("QLinearConv", "QGemm"):
            y_scale = i[6] if node.op_type == "QLinearConv" else i[7]
            expected = values[i[1]] * values[i[4]] / values[y_scale]
            got = [m.real for m in recipes[node.name].multipliers]
            np.testing.assert_allclose(got, np.ravel(expected), rtol=1e-12)
            assert recipes[node.name].bias.scale_matches
        elif node.op_type == "QLinearAdd":
            expected = [values[i[1]] / values[i[6]], values[i[4]] / values[i[6]]]
            np.testing.assert_allclose([m.real for m in recipes[node.name].multipliers],
                                       np.ravel(expected), rtol=1e-12)
        else:
            continue
        seen[node.op_type] += 1
    assert seen["QLinearConv"] == 3 and seen["QGemm"] == 1 and seen["QLinearAdd"] == 1


def test_the_integer_reference_runs_a_qoperator_model_like_onnxruntime(qoperator) -> None:
    """The ORT-quantized tiny ResNet in QOperator form: every layer of the integer program
    (QLinearConv, QLinearAdd, QLinearGlobalAveragePool, Flatten moved, QGemm) against
    ONNX Runtime running the same file."""
    from sphinxext_qdq.integer.onnxruntime_check import compare_with_onnxruntime

    proto, _ = qoperator
    with tempfile.TemporaryDirectory() as folder:
        path = factories.save(proto, Path(folder) / "qoperator.onnx")
        inputs = np.concatenate([b["input"] for b in factories.calibration_batches(8, seed=5)])
        report = compare_with_onnxruntime(path, inputs)
    kinds = Counter(layer.op_type for layer in report.layers)
    integer_ops = Counter(n.op_type for n in proto.graph.node
                          if n.op_type.startswith(("QLinear", "QGemm")))
    assert {op: kinds[op] for op in integer_ops} == dict(integer_ops)
    assert kinds["Flatten"] == 1
    assert report.top1_equal == report.images == 8
    for layer in (*report.layers, *report.final):
        assert layer.max_difference <= 1, layer  # ORT requantizes in float: 1 LSB at most
    assert min(layer.exact_fraction for layer in report.final) >= 0.95


# -- dynamic ---------------------------------------------------------------------------------
def test_dynamic_chain_is_one_quantized_operator() -> None:
    proto = formats.tiny_resnet_dynamic()
    model = analysed(proto, "dynamic")
    by_output = {o: n for n in proto.graph.node for o in n.output}
    readers = {}
    for n in proto.graph.node:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    integer_ops = [n for n in proto.graph.node if n.op_type in ("MatMulInteger", "ConvInteger")]
    assert len(integer_ops) == 4
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in integer_ops:
        op = model.quant_op(node.name)
        assert op.format is QuantFormat.DYNAMIC
        quantizer = by_output[node.input[0]]
        cast = readers[node.output[0]][0]
        mul = readers[cast.output[0]][0]
        scales = by_output[next(x for x in mul.input if x != cast.output[0])]
        assert set(op.members) == {node.name, quantizer.name, cast.name, mul.name, scales.name}
        activation, weight = op.operands
        assert activation.runtime and activation.scale == quantizer.output[1]
        assert model.param(activation.scale).source is ParamSource.RUNTIME
        assert weight.scale == scales.input[1] and weight.zero_point == node.input[3]
        assert model.param(weight.scale).values == tuple(weights[weight.scale].ravel().tolist())
    assert not model.diagnostics  # run-time scales are the format, not a problem
    assert "run time" in op.note


# -- weight-only -------------------------------------------------------------------------------
def test_matmul_nbits_weight_bits_blocks_scales_and_zero_points() -> None:
    proto = formats.matmul_nbits_model(k=32, n=8, block_size=16)
    model = analysed(proto)
    (op,) = model.quant_ops
    (weight,) = op.operands
    assert op.format is QuantFormat.WEIGHT_ONLY
    assert (weight.bits, weight.block_size, weight.quant_dtype) == (4, 16, "UINT4")
    assert model.param(weight.scale).values is not None
    assert len(model.param(weight.scale).values) == 8 * 2  # N x K/block_size
    assert weight.zero_point == "w_zero_points"
    bare = analysed(formats.matmul_nbits_model(zero_points=False))
    assert bare.quant_ops[0].operands[0].zero_point is None
    assert "default 8" in bare.quant_ops[0].note


#: Zero points of three rows (N = 3) of three blocks (K = 48, blocks of 16), 4-bit.
NBITS_ZERO_POINTS = [[1, 15, 6], [0, 8, 3], [9, 2, 14]]
#: The same packed by hand, two per byte, the first in the low nibble; each row takes
#: ceil(3 × 4 / 8) = 2 bytes, the last nibble is padding (0xA in the first row: ignored).
NBITS_PACKED = [0x1 | 0xF << 4, 0x6 | 0xA << 4, 0x0 | 0x8 << 4, 0x3, 0x9 | 0x2 << 4, 0xE]


def nbits_model(zero_points: list[int] | np.ndarray | None, bits: int = 4,
                n: int = 3, k: int = 48, block_size: int = 16) -> onnx.ModelProto:
    """MatMulNBits with the given stored zero points (UINT8 packed, or float)."""
    blocks = -(-k // block_size)
    initializers = [
        numpy_helper.from_array(np.zeros((n, blocks, block_size * bits // 8), np.uint8), "w"),
        numpy_helper.from_array(np.full(n * blocks, 0.5, np.float32), "w_scales")]
    inputs = ["a", "w", "w_scales"]
    if zero_points is not None:
        array = np.asarray(zero_points)
        initializers.append(numpy_helper.from_array(
            array if array.dtype.kind == "f" else array.astype(np.uint8), "w_zp"))
        inputs.append("w_zp")
    node = onnx.helper.make_node("MatMulNBits", inputs, ["y"], name="proj",
                                 domain="com.microsoft", K=k, N=n, bits=bits,
                                 block_size=block_size)
    return factories.make_model([node], [factories.tensor_input("a", [1, k])],
                                [factories.tensor_input("y", [1, n])], initializers,
                                name="nbits", extra_opsets=[("com.microsoft", 1)])


def test_matmul_nbits_zero_points_are_shown_unpacked() -> None:
    model = analysed(nbits_model(NBITS_PACKED))
    zero_point = model.param("w_zp")
    assert zero_point.values == tuple(v for row in NBITS_ZERO_POINTS for v in row)
    assert zero_point.dtype == "UINT4" and zero_point.shape == (9,)
    assert "packed (4 bits each, 2 per byte), shown unpacked" in model.quant_ops[0].note
    label = re.search(r'n0 \[label="([^"]*)"', render_dot(model, DotOptions())).group(1)
    assert label.split("\\n")[2:] == ["W: UINT4 4-bit blocks of 16", "  s=9× 0.5",
                                        "  zp=9× 0 … 15"]
    # 2-bit: four to a byte, one byte per row of three blocks
    two_bit = analysed(nbits_model([3 | 0 << 2 | 2 << 4, 1, 2 << 4 | 3 << 2], bits=2))
    assert two_bit.param("w_zp").values == (3, 0, 2, 1, 0, 0, 0, 3, 2)
    # not the packed size: shown as stored, and said so
    odd = analysed(nbits_model(NBITS_PACKED[:5]))
    assert odd.param("w_zp").values == tuple(NBITS_PACKED[:5])
    assert "5 bytes are not 3 rows of 2" in odd.quant_ops[0].note
    # zero points of the scales' type are not packed
    floats = analysed(nbits_model(np.full(9, 7.0, np.float32)))
    assert floats.param("w_zp").values == (7.0,) * 9
    # none: the op's default 2^(bits-1)
    bare = analysed(nbits_model(None))
    label = re.search(r'n0 \[label="([^"]*)"', render_dot(bare, DotOptions())).group(1)
    assert label.endswith("\\n  zp=8 (default)")
    assert bare.quant_ops[0].operands[0].zero_point_default == 8


def test_gather_block_quantized_zero_points_on_uint8_data_are_shown_unpacked() -> None:
    """UINT8 data with bits < 8: zero points packed along the last axis like the data."""
    proto = formats.gather_block_quantized_model(vocab=4, dim=32, block_size=16)
    node = proto.graph.node[0]
    zero_points = [[3, 12], [0, 15], [7, 7], [9, 1]]  # one per block: 4 rows of 2 blocks
    packed = np.array([[low | high << 4] for low, high in zero_points], np.uint8)
    proto.graph.initializer.append(numpy_helper.from_array(packed, "table_zp"))
    node.input.append("table_zp")
    model = analysed(proto)
    param = model.param("table_zp")
    assert param.values == (3, 12, 0, 15, 7, 7, 9, 1)
    assert (param.dtype, param.shape) == ("UINT4", (4, 2))
    assert "zp=8× 0 … 15" in render_dot(model, DotOptions())
    bare = analysed(formats.gather_block_quantized_model(vocab=4, dim=32, block_size=16))
    assert bare.quant_ops[0].operands[0].zero_point_default == 8  # 2^(bits-1) for UINT8


def test_gather_block_quantized_and_cast_mul_weights() -> None:
    model = analysed(formats.gather_block_quantized_model(block_size=16))
    (weight,) = model.quant_ops[0].operands
    assert (weight.bits, weight.block_size, weight.axis) == (4, 16, 1)
    proto = formats.cast_mul_model()
    model = analysed(proto)
    (op,) = model.quant_ops
    assert op.members == ("w_cast", "w_sub", "w_mul")
    (weight,) = op.operands
    assert (weight.tensor, weight.scale, weight.zero_point) == ("w_int8", "w_scale", "w_zp")
    assert (weight.granularity.value, weight.axis, weight.quant_dtype) == ("per-axis", 1, "INT8")
    assert [d.subtype for d in model.diagnostics] == []
    # a Cast of a computed tensor is no weight dequantization
    proto.graph.initializer.remove(next(t for t in proto.graph.initializer if t.name == "w_int8"))
    proto.graph.input.append(factories.tensor_input("w_int8", [4, 6], onnx.TensorProto.INT8))
    assert not analysed(proto).quant_ops


# -- subgraphs and functions ----------------------------------------------------------------------
def test_qdq_in_a_function_and_in_if_branches_say_where_they_live() -> None:
    model = analysed(formats.function_qdq_model())
    assert model.function_graphs == ("function:local.QuantRelu",)
    assert {q.graph for q in model.qdq_nodes} == {"function:local.QuantRelu"}
    assert not any(d.subtype == "float_model" for d in model.diagnostics)
    scale = model.param("s")  # a Constant node inside the function body
    assert scale.source is ParamSource.CONSTANT and math.isclose(scale.values[0], 0.05,
                                                                 rel_tol=1e-7)
    counts = qdq_counts(model, DotOptions())
    assert (counts["q_in_subgraphs"], counts["dq_in_subgraphs"]) == (1, 1)  # counted once
    nested = analysed(formats.if_qdq_model())
    assert {q.graph for q in nested.qdq_nodes} == {"branch:then_branch", "branch:else_branch"}


def _box(group: ElementTree.Element) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around the first polygon, path or ellipse of an SVG group."""
    shape = next(e for e in group.iter() if e.tag.rpartition("}")[2] in
                 ("polygon", "path", "ellipse"))
    if shape.tag.endswith("ellipse"):
        cx, cy, rx, ry = (float(shape.get(a)) for a in ("cx", "cy", "rx", "ry"))
        return cx - rx, cy - ry, cx + rx, cy + ry
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?",
                                            shape.get("points") or shape.get("d"))]
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _svg_groups(svg: bytes, kind: str) -> dict[str, tuple[list[str], tuple]]:
    """Title of each node / cluster of a dot SVG -> (its text lines, its box)."""
    root = ElementTree.fromstring(svg)
    return {group.find("svg:title", SVG_NS).text: (
        [t.text or "" for t in group.iter(f"{{{SVG_NS['svg']}}}text")], _box(group))
        for group in root.iter(f"{{{SVG_NS['svg']}}}g") if group.get("class") == kind}


def _inside(inner: tuple, outer: tuple) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] \
        and inner[3] <= outer[3]


def test_a_function_body_is_drawn_once_beside_its_first_caller() -> None:
    model = analysed(formats.function_qdq_model())
    svg = run_dot(render_dot(model, DotOptions()))
    clusters = _svg_groups(svg, "cluster")
    nodes = _svg_groups(svg, "node")
    (body,) = [box for lines, box in clusters.values() if lines == ["function local.QuantRelu"]]
    pairs = [(lines, box) for lines, box in nodes.values() if lines[0].startswith("Q→DQ")]
    assert len(pairs) == 1  # two callers, one body
    (lines, box), = pairs
    assert lines == ["Q→DQ UINT8", "s=0.05 zp=128"] and _inside(box, body)
    relu = next(box for lines, box in nodes.values() if lines == ["Relu", "f_relu"])
    assert _inside(relu, body)
    callers = {lines[1]: (lines, box) for lines, box in nodes.values()
               if lines[0] == "local.QuantRelu"}
    assert callers["call2"][0][2:] == ["same body as call1"] and len(callers["call1"][0]) == 2
    assert not _inside(callers["call1"][1], body)
    # full mode: the Q and the DQ of the body, each linking to its parameter row
    full = render_dot(model, DotOptions(mode="full"))
    assert full.count("subgraph cluster_") == 1
    assert {"node:f_q", "node:f_dq", "node:f_relu"} <= set(link_keys(model, DotOptions()))
    assert re.search(r'label="QuantizeLinear \(activation\)\\nf_q\\nscale s = 0\.05\\n'
                     r'zp z = 128 \(UINT8\)', full)
    # the body reads the caller's actual input and gives back the caller's result
    assert re.search(r'i0 -> g\d+ \[label="FP32".*tooltip="input\\nFP32 \[1, 4\]", '
                     r'style=dashed', full)
    assert re.search(r'g\d+ -> n0 \[label="FP32".*tooltip="mid\\nFP32 \[1, 4\]", '
                     r'style=dashed', full)


def nested_function_model() -> onnx.ModelProto:
    """``local.MaybeQuant(x, c)``: an If whose then branch quantizes the function's formal
    input ``x`` with the function's Constant scale and zero point (INT8)."""
    then_graph = onnx.helper.make_graph([
        onnx.helper.make_node("QuantizeLinear", ["x", "s", "z"], ["t_q"], name="inner_q"),
        onnx.helper.make_node("DequantizeLinear", ["t_q", "s", "z"], ["t_out"],
                              name="inner_dq")],
        "then_body", [], [factories.tensor_input("t_out", [1, 4])])
    else_graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["e_out"], name="inner_id")],
        "else_body", [], [factories.tensor_input("e_out", [1, 4])])
    body = [onnx.helper.make_node("Constant", [], ["s"], name="f_scale", value=onnx.helper
                                  .make_tensor("v", onnx.TensorProto.FLOAT, [], [0.1])),
            onnx.helper.make_node("Constant", [], ["z"], name="f_zp", value=onnx.helper
                                  .make_tensor("v", onnx.TensorProto.INT8, [], [0])),
            onnx.helper.make_node("If", ["c"], ["y"], name="f_if", then_branch=then_graph,
                                  else_branch=else_graph)]
    function = onnx.helper.make_function("local", "MaybeQuant", ["x", "c"], ["y"], body,
                                         [onnx.helper.make_opsetid("", 17)])
    model = factories.make_model(
        [onnx.helper.make_node("MaybeQuant", ["input", "cond"], ["out"], name="call",
                               domain="local")],
        [factories.tensor_input("input", [1, 4]),
         factories.tensor_input("cond", [], onnx.TensorProto.BOOL)],
        [factories.tensor_input("out", [1, 4])], name="nested_function",
        extra_opsets=[("local", 1)])
    model.functions.append(function)
    return model


def test_an_if_inside_a_function_is_drawn_inside_the_function_reading_the_callers_input(
        ) -> None:
    model = analysed(nested_function_model())
    counts = qdq_counts(model, DotOptions())
    assert (counts["q_in_subgraphs"], counts["dq_in_subgraphs"]) == (1, 1)
    text = render_dot(model, DotOptions())
    svg = run_dot(text)
    clusters = {lines[0]: box for lines, box in _svg_groups(svg, "cluster").values()}
    nodes = {lines[0]: (title, box) for title, (lines, box) in _svg_groups(svg, "node").items()}
    assert _inside(clusters["If then_branch"], clusters["function local.MaybeQuant"])
    pair, box = nodes["Q→DQ INT8"]
    assert _inside(box, clusters["If then_branch"])
    # the branch reads the function's formal input x: the caller's actual input, drawn
    assert re.search(rf'i0 -> {pair} \[label="FP32".*tooltip="input\\n.*style=dashed', text)


def test_a_function_called_inside_another_function_is_drawn_inside_it() -> None:
    """torch.onnx writes modules as functions calling functions; the inner one is listed
    first here, before the function calling it."""
    helper = onnx.helper
    inner = formats.function_qdq_model().functions[0]  # local.QuantRelu: Q -> DQ -> Relu
    outer = helper.make_function(
        "local", "Block", ["u"], ["v"],
        [helper.make_node("Neg", ["u"], ["w"], name="block_neg"),
         helper.make_node("QuantRelu", ["w"], ["v"], name="block_call", domain="local")],
        [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    proto = factories.make_model(
        [helper.make_node("Block", ["input"], ["out"], name="main_call", domain="local")],
        [factories.tensor_input("input", [1, 4])], [factories.tensor_input("out", [1, 4])],
        name="nested_functions", extra_opsets=[("local", 1)])
    proto.functions.extend([inner, outer])
    model = analysed(proto)
    counts = qdq_counts(model, DotOptions())
    assert (counts["q_in_subgraphs"], counts["dq_in_subgraphs"]) == (1, 1)
    svg = run_dot(render_dot(model, DotOptions()))
    clusters = {lines[0]: box for lines, box in _svg_groups(svg, "cluster").values()}
    nodes = {lines[0]: box for lines, box in _svg_groups(svg, "node").values()}
    assert _inside(clusters["function local.QuantRelu"], clusters["function local.Block"])
    assert _inside(nodes["Q→DQ UINT8"], clusters["function local.QuantRelu"])
    assert _inside(nodes["local.QuantRelu"], clusters["function local.Block"])
    # a function calling itself (not valid ONNX) is drawn once, without its own body
    proto.functions[1].node.append(helper.make_node("Block", ["v"], ["again"], name="self_call",
                                                    domain="local"))
    looping = analysed(proto)
    assert render_dot(looping, DotOptions()).count("subgraph cluster_fn_") == 2


def test_a_function_body_counts_against_the_node_cap() -> None:
    model = analysed(formats.function_qdq_model())
    # input, two callers, output; the body: two Constants, the pair, the Relu
    assert graph_node_count(model, DotOptions()) == 4 + 4
    assert "cluster_fn_0" in render_dot(model, DotOptions(max_nodes=8))
    capped = render_dot(model, DotOptions(max_nodes=7))
    assert "cluster_fn_0" not in capped and "call1" not in capped


# -- summaries against an independent count -------------------------------------------------------
#: onnx's backend node-test modules of the quantization ops and the subgraph ops.
BACKEND_MODULES = ("qlinearconv", "qlinearmatmul", "quantizelinear", "dequantizelinear",
                   "matmulinteger", "convinteger", "dynamicquantizelinear", "if_", "loop",
                   "scan")


def _backend_cases() -> list[tuple[str, onnx.ModelProto]]:
    """onnx's own node test cases of these ops. Each module registers its cases when it
    is imported; importing only these (1 s) rather than ``collect_testcases()`` (all
    1,900 cases, 20 s) gives the same cases."""
    import importlib

    from onnx.backend.test.case import node as backend_nodes

    with np.errstate(all="ignore"):
        for name in BACKEND_MODULES:
            importlib.import_module(f"onnx.backend.test.case.node.{name}")
    wanted = re.compile(r"qlinear|quantizelinear|integer|dynamicquantize|^test_if|^test_loop|"
                        r"^test_scan")
    cases = {case.name: case.model for case in backend_nodes._NodeTestCases
             if wanted.search(case.name)}
    return sorted(cases.items())


MODELS = {
    "qoperator": factories.tiny_resnet_qoperator,
    "qdq": factories.tiny_resnet_qdq,
    "float": factories.tiny_resnet_float,
    "dynamic": formats.tiny_resnet_dynamic,
    "nbits": formats.matmul_nbits_model,
    "gather": formats.gather_block_quantized_model,
    "cast-mul": formats.cast_mul_model,
    "function": formats.function_qdq_model,
    "if": formats.if_qdq_model,
    "loop": factories.loop_model,
    "mixed": formats.mixed_model,
    "contrib": formats.contrib_zoo_model,
}


def _summary_cases() -> list[tuple[str, onnx.ModelProto]]:
    return [(name, build_model()) for name, build_model in MODELS.items()] + _backend_cases()


@pytest.fixture(scope="module")
def summary_cases() -> list[tuple[str, onnx.ModelProto]]:
    return _summary_cases()


def test_every_summary_count_equals_an_independent_count(summary_cases) -> None:
    assert len(summary_cases) > len(MODELS) + 30  # the backend cases are there
    for name, proto in summary_cases:
        expected = formats.independent_counts(proto)
        summary = summarize(analysed(proto, name))
        assert summary.node_count == expected["node_count"], name
        assert dict(summary.nodes_by_op) == expected["nodes_by_op"], name
        assert summary.quantize_count == expected["quantize_count"], name
        assert summary.dequantize_count == expected["dequantize_count"], name
        assert summary.subgraph_count == expected["subgraph_count"], name
        assert summary.function_count == expected["function_count"], name
        by_format = dict(summary.ops_by_format)
        assert by_format.get("QDQ", 0) == formats.qdq_group_count(proto), name
        for fmt in ("QOperator", "dynamic", "weight-only"):
            assert by_format.get(fmt, 0) == expected[fmt], (name, fmt)


def test_every_contrib_op_gets_its_operands_by_schema_index() -> None:
    """Each op of the zoo: one QuantOp, and an operand for every tensor input the schema
    pairs with a scale (the variadic QLinearConcat: one per input triple)."""
    proto = formats.contrib_zoo_model()
    model = analysed(proto, "contrib")
    assert not [d for d in model.diagnostics if d.subtype != "inference"]
    ops = {op.op_type: op for op in model.quant_ops}
    expected = {"QLinearMul": 3, "QLinearSigmoid": 2, "QLinearLeakyRelu": 2,
                "QLinearSoftmax": 2, "QLinearAveragePool": 2, "QLinearConcat": 3,
                "QLinearWhere": 3, "QGemm": 2, "MatMulIntegerToFloat": 2,
                "DynamicQuantizeMatMul": 1, "DynamicQuantizeLSTM": 2}
    assert {op: len(ops[op].operands) for op in expected} == expected
    assert "float" in ops["QGemm"].note  # no y_scale: the output is float
    assert ops["DynamicQuantizeLSTM"].format is QuantFormat.DYNAMIC
    concat = next(n for n in proto.graph.node if n.op_type == "QLinearConcat")
    assert [(o.tensor, o.scale, o.zero_point) for o in ops["QLinearConcat"].operands] == [
        (concat.output[0], concat.input[0], concat.input[1]),
        (concat.input[2], concat.input[3], concat.input[4]),
        (concat.input[5], concat.input[6], concat.input[7])]
    assert not [r for r in requant_recipes(model) if r.op_type == "QGemm"]


def test_a_mixed_model_says_what_is_what() -> None:
    summary = summarize(analysed(formats.mixed_model(), "mixed"))
    assert dict(summary.ops_by_format) == {"QDQ": 2, "QOperator": 1, "dynamic": 1}
    # u8s8: the QDQ Conv and the dynamic MatMulInteger; s16s8: the 16-bit QDQ MatMul
    assert dict(summary.ops_by_precision) == {"u8s8": 2, "s16s8": 1, "s8s8": 1}
    assert summary.float_op_count == 2  # the Relu and the Flatten between the groups


# -- pages ------------------------------------------------------------------------------------------
PAGES = {
    "float.rst": """Float
=====

.. qdq-graph:: /models/float.onnx

.. qdq-params:: /models/float.onnx

.. qdq-params:: /models/float.onnx
   :layout: initializer
   :no-index:

.. qdq-summary:: /models/float.onnx

.. qdq-requant:: /models/float.onnx
""",
    "qop.rst": """QOperator
=========

.. qdq-graph:: /models/qop.onnx

.. qdq-params:: /models/qop.onnx

.. qdq-requant:: /models/qop.onnx
   :no-index:

.. qdq-summary:: /models/qop.onnx
""",
    "filters.rst": """Filters
=======

.. qdq-params:: /models/qop.onnx
   :qdq-ops: Conv
   :no-index:

.. qdq-requant:: /models/qop.onnx
   :nodes: nothing-is-called-this
   :no-index:

.. qdq-params:: /models/float.onnx
   :roles: weight
   :no-index:
""",
    "formats.rst": """Formats
=======

.. qdq-params:: /models/dynamic.onnx

.. qdq-params:: /models/function.onnx

.. qdq-params:: /models/nested.onnx

.. qdq-summary:: /models/mixed.onnx

.. qdq-graph:: /models/function.onnx
   :mode: full

.. qdq-params:: /models/nbits.onnx

.. qdq-params:: /models/nbits_bare.onnx
""",
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory):
    src = tmp_path_factory.mktemp("formats") / "src"
    (src / "models").mkdir(parents=True)
    (src / "conf.py").write_text('extensions = ["sphinxext_qdq"]\n'
                                 'graphviz_output_format = "svg"\n')
    (src / "index.rst").write_text("Formats\n=======\n\n.. toctree::\n\n   float\n   qop\n"
                                   "   filters\n   formats\n")
    for name, text in PAGES.items():
        (src / name).write_text(text)
    for name, proto in (("float", factories.tiny_resnet_float()),
                        ("qop", factories.tiny_resnet_qoperator()),
                        ("dynamic", formats.tiny_resnet_dynamic()),
                        ("function", formats.function_qdq_model()),
                        ("nested", formats.if_qdq_model()),
                        ("mixed", formats.mixed_model()),
                        ("nbits", nbits_model(NBITS_PACKED)),
                        ("nbits_bare", nbits_model(None))):
        factories.save(proto, src / "models" / f"{name}.onnx")
    return build(src, "html")


def page_warnings(result, page: str) -> list[tuple[int, str]]:
    """(line, subtype) of the warnings located in *page*."""
    found = []
    for line in result.warnings.splitlines():
        match = re.match(rf".*{re.escape(page)}:(\d+): WARNING: .*\[qdq\.([\w-]+)\]$", line)
        if match:
            found.append((int(match.group(1)), match.group(2)))
    return found


def test_a_float_model_gives_one_warning_per_page(pages) -> None:
    assert page_warnings(pages, "float.rst") == [(4, "float_model")]
    html = (pages.outdir / "float.html").read_text(encoding="utf-8")
    assert html.count("qdq-empty") == 3  # two tables and the recipes say why they are empty


def test_filters_warn_only_when_they_match_nothing_in_a_model_that_has_rows(pages) -> None:
    # the float model: its own warning once, no filter warning on top
    assert page_warnings(pages, "filters.rst") == [(4, "filter"), (8, "filter"),
                                                   (12, "float_model")]


def test_qoperator_and_dynamic_pages_table_every_operand(pages) -> None:
    assert page_warnings(pages, "qop.rst") == []
    assert page_warnings(pages, "formats.rst") == []
    qop = (pages.outdir / "qop.html").read_text(encoding="utf-8")
    assert "input[4]" in qop and "input[6]" in qop  # w_scale and y_scale of QLinearConv
    assert "<td><p>entry</p></td>" in qop and "<td><p>exit</p></td>" in qop
    assert "lone" not in qop
    assert "none: s_x·s_w by definition" in qop
    assert qop.count("QOperator") >= 3
    page = re.sub(r'</span><wbr><span class="pre">', "",  # names come with break points
                  (pages.outdir / "formats.html").read_text(encoding="utf-8"))
    assert "(scale computed at run time)" in page
    # the scales of a dynamic chain are read by its Mul, not by the ConvInteger: said so
    assert re.search(r"input\[1\] of <code[^>]*><span class=\"pre\">conv1_quant_scales_mul",
                     page)
    assert "function:local.QuantRelu" in page and "branch:then_branch" in page
    assert "s16s8 1" in page and "u8s8 2" in page


def test_the_table_of_a_matmul_nbits_shows_its_zero_points_unpacked(pages) -> None:
    text = re.sub(r"<[^>]+>", "", (pages.outdir / "formats.html").read_text(encoding="utf-8"))
    text = re.sub(r"\s+", " ", text)
    assert "input[3] w_zp 9× 0 … 15 UINT4 blocked (axis 1, block 16), 4 bits" in text
    assert "absent (default 8) UINT4 blocked (axis 1, block 16), 4 bits" in text


def test_the_nodes_of_a_drawn_function_body_link_to_their_parameter_rows(pages) -> None:
    """As in the main graph: the label of the edge leaving a Q or DQ node links to the
    node's row in the parameter table (the node itself to the operator's page)."""
    page = pages.outdir / "formats.html"
    html = page.read_text(encoding="utf-8")
    (image,) = [pages.outdir / src for src in re.findall(r'data="([^"]+\.svg)"', html)]
    svg = image.read_bytes()
    names = {title: lines[1] for title, (lines, _) in _svg_groups(svg, "node").items()
             if len(lines) > 1}
    row_links: dict[str, set[str]] = {}
    for group in ElementTree.fromstring(svg).iter(f"{{{SVG_NS['svg']}}}g"):
        if group.get("class") == "edge":
            tail = group.find("svg:title", SVG_NS).text.split("->")[0]
            row_links.setdefault(names.get(tail, tail), set()).update(
                value for anchor in group.iter(f"{{{SVG_NS['svg']}}}a")
                for key, value in anchor.attrib.items() if key.endswith("href"))
    for name in ("f_q", "f_dq"):
        (link,) = {href for href in row_links[name] if not href.startswith("https:")}
        target, anchor = follow(image, link)
        assert target == page and has_id(page, anchor), (name, link)
        row = html.split(f'id="{anchor}"', 1)[1].split("</tr>", 1)[0]
        row = re.sub(r'</span><wbr><span class="pre">', "", row)  # names' break points
        assert f'<span class="pre">{name}</span>' in row, name


def test_mutilated_models_of_every_format_never_crash() -> None:
    """Inputs and outputs cut short or emptied, names and attributes removed,
    initializers dropped: the analysis, summary, recipes, drawings and outline of 300
    such models run to the end (problems become diagnostics, never exceptions)."""
    from sphinxext_qdq.analysis.queries import describe
    from sphinxext_qdq.render.outline import outline

    rng = random.Random(15)
    bases = [formats.contrib_zoo_model(), formats.mixed_model(), formats.tiny_resnet_dynamic(),
             factories.tiny_resnet_qoperator(), formats.cast_mul_model(),
             formats.matmul_nbits_model(), formats.gather_block_quantized_model(),
             formats.function_qdq_model()]
    for _ in range(300):
        proto = onnx.ModelProto()
        proto.CopyFrom(rng.choice(bases))
        for _ in range(rng.randint(1, 4)):
            node = rng.choice(list(proto.graph.node))
            cut = rng.randint(0, 4)
            if cut == 0 and node.input:
                del node.input[rng.randrange(len(node.input)):]
            elif cut == 1 and node.output:
                del node.output[rng.randrange(len(node.output)):]
            elif cut == 2 and node.input:
                node.input[rng.randrange(len(node.input))] = ""
            elif cut == 3:
                node.name = ""
            elif node.attribute:
                del node.attribute[rng.randrange(len(node.attribute))]
        if proto.graph.initializer and rng.random() < 0.3:
            del proto.graph.initializer[rng.randrange(len(proto.graph.initializer))]
        model = analysed(proto)
        summarize(model)
        describe(model)
        requant_recipes(model)
        render_dot(model, DotOptions())
        render_dot(model, DotOptions(mode="full"))
        outline(model)
