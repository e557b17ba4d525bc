"""Models in the other quantization formats (QOperator, dynamic, weight-only, nested),
built with ``onnx.helper`` and ONNX Runtime's quantizers; and an independent count of a
model's nodes made with the onnx library only (subgraphs and functions included).

Quick reference::

    tiny_resnet_dynamic()        ORT quantize_dynamic: ConvInteger / MatMulInteger chains
    matmul_nbits_model()         com.microsoft MatMulNBits, 4-bit, blocks of 16
    gather_block_quantized_model()  com.microsoft GatherBlockQuantized (embedding table)
    cast_mul_model()             INT8 weight -> Cast -> Sub(zp) -> Mul(scale) -> MatMul
    function_qdq_model()         Q -> DQ inside a model-local function called twice
    if_qdq_model()               Q -> DQ in both branches of an If
    mixed_model()                u8s8 QDQ Conv, s16s8 QDQ MatMul, QLinearMatMul, dynamic
                                 MatMulInteger and a float Relu side by side
"""

from __future__ import annotations

import functools
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import qdq_factories as factories
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
INT8, UINT8, INT16, INT32 = TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16, \
    TensorProto.INT32
MS = ("com.microsoft", 1)


def tiny_resnet_dynamic() -> onnx.ModelProto:
    """The tiny ResNet quantized by ``quantize_dynamic`` (Conv and Gemm, INT8 weights)."""
    fresh = onnx.ModelProto()
    fresh.CopyFrom(_dynamic())
    return fresh


@functools.cache
def _dynamic() -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "float.onnx"), Path(folder, "dynamic.onnx")
        factories.save(factories.tiny_resnet_float(), source)
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["Conv", "MatMul", "Gemm"])
        return onnx.load(str(target))


def matmul_nbits_model(k: int = 32, n: int = 8, block_size: int = 16,
                       zero_points: bool = True) -> onnx.ModelProto:
    """``y = A @ W`` with W [K, N] stored as 4-bit blocks: B [N, K/bs, bs/2] uint8."""
    blocks = k // block_size
    rng = np.random.default_rng(3)
    packed = rng.integers(0, 256, (n, blocks, block_size // 2), dtype=np.uint8)
    scales = rng.uniform(0.01, 0.1, (n * blocks,)).astype(np.float32)
    inputs = ["a", "w_packed", "w_scales"]
    initializers = [numpy_helper.from_array(packed, "w_packed"),
                    numpy_helper.from_array(scales, "w_scales")]
    if zero_points:
        zp = rng.integers(0, 256, (n * ((blocks + 1) // 2),), dtype=np.uint8)
        initializers.append(numpy_helper.from_array(zp, "w_zero_points"))
        inputs.append("w_zero_points")
    node = helper.make_node("MatMulNBits", inputs, ["y"], name="proj", domain="com.microsoft",
                            K=k, N=n, bits=4, block_size=block_size)
    return factories.make_model([node], [factories.tensor_input("a", [1, k])],
                                [factories.tensor_input("y", [1, n])], initializers,
                                name="nbits", extra_opsets=[MS])


def gather_block_quantized_model(vocab: int = 16, dim: int = 32, block_size: int = 16
                                 ) -> onnx.ModelProto:
    """An embedding table of packed 4-bit values, one scale per block of the row."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 256, (vocab, dim // 2), dtype=np.uint8)
    scales = rng.uniform(0.01, 0.1, (vocab, dim // block_size)).astype(np.float32)
    node = helper.make_node("GatherBlockQuantized", ["table", "ids", "table_scales"], ["emb"],
                            name="embed", domain="com.microsoft", gather_axis=0,
                            quantize_axis=1, block_size=block_size, bits=4)
    return factories.make_model(
        [node], [factories.tensor_input("ids", [1, 3], TensorProto.INT64)],
        [factories.tensor_input("emb", [1, 3, dim])],
        [numpy_helper.from_array(data, "table"), numpy_helper.from_array(scales, "table_scales")],
        name="embedding", extra_opsets=[MS])


def cast_mul_model() -> onnx.ModelProto:
    """A MiniLM-style weight: INT8 initializer -> Cast -> Sub(zero point) -> Mul(per-column
    scale [1, 6]) -> MatMul with a float activation."""
    rng = np.random.default_rng(5)
    weight = rng.integers(-127, 128, (4, 6), dtype=np.int8)
    scale = rng.uniform(0.01, 0.05, (1, 6)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["w_int8"], ["w_cast"], name="w_cast", to=FLOAT),
        helper.make_node("Sub", ["w_cast", "w_zp"], ["w_centred"], name="w_sub"),
        helper.make_node("Mul", ["w_centred", "w_scale"], ["w_float"], name="w_mul"),
        helper.make_node("MatMul", ["x", "w_float"], ["y"], name="matmul"),
    ]
    return factories.make_model(
        nodes, [factories.tensor_input("x", [1, 4])], [factories.tensor_input("y", [1, 6])],
        [numpy_helper.from_array(weight, "w_int8"), factories.scalar("w_zp", 1.0),
         numpy_helper.from_array(scale, "w_scale")], name="cast_mul")


def function_qdq_model() -> onnx.ModelProto:
    """``local.QuantRelu`` (Constant scale, Q -> DQ -> Relu) called twice."""
    body = [
        helper.make_node("Constant", [], ["s"], name="f_scale",
                         value=helper.make_tensor("v", FLOAT, [], [0.05])),
        helper.make_node("Constant", [], ["z"], name="f_zero_point",
                         value=helper.make_tensor("v", UINT8, [], [128])),
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="f_q"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="f_dq"),
        helper.make_node("Relu", ["d"], ["y"], name="f_relu"),
    ]
    function = helper.make_function("local", "QuantRelu", ["x"], ["y"], body,
                                    [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("QuantRelu", ["input"], ["mid"], name="call1", domain="local"),
             helper.make_node("QuantRelu", ["mid"], ["out"], name="call2", domain="local")]
    model = factories.make_model(nodes, [factories.tensor_input("input", [1, 4])],
                                 [factories.tensor_input("out", [1, 4])], name="with_function",
                                 extra_opsets=[("local", 1)])
    model.functions.append(function)
    return model


def if_qdq_model() -> onnx.ModelProto:
    return factories.if_outer_scope_model()


def mixed_model() -> onnx.ModelProto:
    """Side by side: a u8s8 QDQ Conv, an s16s8 QDQ MatMul (16-bit activations, opset 21),
    a QLinearMatMul (QOperator), a dynamic MatMulInteger chain and a float Relu."""
    rng = np.random.default_rng(6)

    def init(name: str, array: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(array, name)

    initializers = [
        init("conv_w", rng.integers(-127, 128, (4, 1, 1, 1), dtype=np.int8)),
        factories.scalar("conv_w_s", 0.02), factories.scalar("conv_w_z", 0, INT8),
        factories.scalar("a_s", 0.03), factories.scalar("a_z", 128, UINT8),
        factories.scalar("c_s", 0.05), factories.scalar("c_z", 128, UINT8),
        factories.scalar("h_s", 0.001), factories.scalar("h_z", 0, INT16),
        init("mm_w", rng.integers(-127, 128, (4, 4), dtype=np.int8)),
        factories.scalar("mm_w_s", 0.01), factories.scalar("mm_w_z", 0, INT8),
        factories.scalar("m_s", 0.002), factories.scalar("m_z", 0, INT16),
        init("ql_w", rng.integers(-127, 128, (4, 4), dtype=np.int8)),
        factories.scalar("ql_w_s", 0.015), factories.scalar("ql_w_z", 0, INT8),
        factories.scalar("ql_a_s", 0.02), factories.scalar("ql_a_z", 0, INT8),
        factories.scalar("ql_y_s", 0.04), factories.scalar("ql_y_z", 0, INT8),
        init("dyn_w", rng.integers(-127, 128, (4, 4), dtype=np.int8)),
        factories.scalar("dyn_w_s", 0.012), factories.scalar("dyn_w_z", 0, INT8),
    ]
    nodes = [
        # u8s8 QDQ Conv
        helper.make_node("QuantizeLinear", ["x", "a_s", "a_z"], ["x_q"], name="x_q"),
        helper.make_node("DequantizeLinear", ["x_q", "a_s", "a_z"], ["x_dq"], name="x_dq"),
        helper.make_node("DequantizeLinear", ["conv_w", "conv_w_s", "conv_w_z"], ["w_dq"],
                         name="conv_w_dq"),
        helper.make_node("Conv", ["x_dq", "w_dq"], ["c"], name="conv"),
        helper.make_node("QuantizeLinear", ["c", "c_s", "c_z"], ["c_q"], name="c_q"),
        helper.make_node("DequantizeLinear", ["c_q", "c_s", "c_z"], ["c_dq"], name="c_dq"),
        helper.make_node("Relu", ["c_dq"], ["r"], name="float_relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        # s16s8 QDQ MatMul
        helper.make_node("QuantizeLinear", ["f", "h_s", "h_z"], ["f_q"], name="f_q"),
        helper.make_node("DequantizeLinear", ["f_q", "h_s", "h_z"], ["f_dq"], name="f_dq"),
        helper.make_node("DequantizeLinear", ["mm_w", "mm_w_s", "mm_w_z"], ["mm_w_dq"],
                         name="mm_w_dq"),
        helper.make_node("MatMul", ["f_dq", "mm_w_dq"], ["m"], name="matmul16"),
        helper.make_node("QuantizeLinear", ["m", "m_s", "m_z"], ["m_q"], name="m_q"),
        helper.make_node("DequantizeLinear", ["m_q", "m_s", "m_z"], ["m_dq"], name="m_dq"),
        # QOperator
        helper.make_node("QuantizeLinear", ["m_dq", "ql_a_s", "ql_a_z"], ["ql_in"], name="ql_q"),
        helper.make_node("QLinearMatMul", ["ql_in", "ql_a_s", "ql_a_z", "ql_w", "ql_w_s",
                                           "ql_w_z", "ql_y_s", "ql_y_z"], ["ql_out"],
                         name="qlinear_matmul"),
        helper.make_node("DequantizeLinear", ["ql_out", "ql_y_s", "ql_y_z"], ["ql_dq"],
                         name="ql_dq"),
        # dynamic
        helper.make_node("DynamicQuantizeLinear", ["ql_dq"], ["d_q", "d_s", "d_z"],
                         name="d_quantize"),
        helper.make_node("Mul", ["d_s", "dyn_w_s"], ["d_scales"], name="d_scales"),
        helper.make_node("MatMulInteger", ["d_q", "dyn_w", "d_z", "dyn_w_z"], ["d_acc"],
                         name="dyn_matmul"),
        helper.make_node("Cast", ["d_acc"], ["d_float"], name="d_cast", to=FLOAT),
        helper.make_node("Mul", ["d_float", "d_scales"], ["y"], name="d_rescale"),
    ]
    return factories.make_model(nodes, [factories.tensor_input("x", [1, 1, 2, 2])],
                                [factories.tensor_input("y", [1, 4])], initializers,
                                name="mixed", opset=21)


def contrib_zoo_model() -> onnx.ModelProto:
    """One of each ``com.microsoft`` quantized op not covered elsewhere, wired in a chain
    (a model to analyse, not to run): QLinearMul, QLinearSigmoid, QLinearLeakyRelu,
    QLinearSoftmax, QLinearAveragePool, QLinearConcat, QLinearWhere, QGemm with a float
    output, MatMulIntegerToFloat, DynamicQuantizeMatMul and DynamicQuantizeLSTM."""
    rng = np.random.default_rng(7)
    inits = [factories.scalar("s", 0.02), factories.scalar("z", 128, UINT8),
             factories.scalar("s2", 0.04), factories.scalar("z2", 120, UINT8),
             numpy_helper.from_array(rng.integers(0, 255, (4, 4), dtype=np.uint8), "w"),
             numpy_helper.from_array(np.full((4,), 0.01, np.float32), "w_s"),
             numpy_helper.from_array(np.zeros((4,), np.uint8), "w_z"),
             numpy_helper.from_array(rng.integers(-127, 127, (1, 16, 4), dtype=np.int8), "lstm_w"),
             numpy_helper.from_array(rng.integers(-127, 127, (1, 16, 4), dtype=np.int8), "lstm_r"),
             factories.scalar("lstm_ws", 0.01), factories.scalar("lstm_wz", 0, INT8),
             factories.scalar("lstm_rs", 0.01), factories.scalar("lstm_rz", 0, INT8)]

    def ms(op: str, inputs: list[str], output: str, **attrs: object) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [output], name=op.lower(), domain="com.microsoft",
                                **attrs)

    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q0"], name="q"),
        ms("QLinearMul", ["q0", "s", "z", "q0", "s", "z", "s2", "z2"], "q1"),
        ms("QLinearSigmoid", ["q1", "s2", "z2", "s", "z"], "q2"),
        ms("QLinearLeakyRelu", ["q2", "s", "z", "s", "z"], "q3", alpha=0.1),
        ms("QLinearSoftmax", ["q3", "s", "z", "s", "z"], "q4", opset=13),
        ms("QLinearAveragePool", ["q4", "s", "z", "s2", "z2"], "q5", kernel_shape=[1]),
        ms("QLinearConcat", ["s", "z", "q5", "s2", "z2", "q4", "s", "z"], "q6", axis=1),
        ms("QLinearWhere", ["cond", "q6", "s", "z", "q6", "s", "z", "s2", "z2"], "q7"),
        ms("QGemm", ["q7", "s2", "z2", "w", "w_s", "w_z"], "f0"),
        ms("MatMulIntegerToFloat", ["q7", "w", "s2", "w_s", "z2", "w_z"], "f1"),
        ms("DynamicQuantizeMatMul", ["f1", "w", "w_s", "w_z"], "f2"),
        ms("DynamicQuantizeLSTM", ["seq", "lstm_w", "lstm_r", "", "", "", "", "",
                                   "lstm_ws", "lstm_wz", "lstm_rs", "lstm_rz"], "f3",
           hidden_size=4),
    ]
    return factories.make_model(
        nodes, [factories.tensor_input("x", [1, 4]),
                factories.tensor_input("cond", [1, 8], TensorProto.BOOL),
                factories.tensor_input("seq", [2, 1, 4])],
        [factories.tensor_input(n, None) for n in ("f0", "f2", "f3")], inits,
        name="contrib_zoo", extra_opsets=[MS])


# -- the independent count ---------------------------------------------------------------------
QOPERATOR_TYPES = frozenset({
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearConcat", "QLinearLeakyRelu", "QLinearSigmoid",
    "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere", "QGemm", "QAttention",
    "MatMulIntegerToFloat", "ConvInteger", "MatMulInteger",
})


def all_graphs(model: onnx.ModelProto) -> list[tuple[onnx.GraphProto | onnx.FunctionProto, bool]]:
    """(graph, is the main graph) for the main graph, every subgraph at any depth, every
    model-local function and every subgraph inside one (recursion: test models are small)."""
    found: list[tuple[onnx.GraphProto | onnx.FunctionProto, bool]] = []

    def visit(graph: onnx.GraphProto | onnx.FunctionProto, main: bool) -> None:
        found.append((graph, main))
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    visit(attr.g, False)
                for sub in attr.graphs:
                    visit(sub, False)

    visit(model.graph, True)
    for function in model.functions:
        visit(function, False)
    return found


def independent_counts(model: onnx.ModelProto) -> dict[str, object]:
    """Counts a summary must equal, made from the protobuf alone."""
    graphs = all_graphs(model)
    nodes = [node for graph, _ in graphs for node in graph.node]
    by_op = Counter(node.op_type for node in nodes)
    producers = {out: node for graph, _ in graphs for node in graph.node for out in node.output}
    dynamic_integer = sum(1 for node in nodes if node.op_type in ("MatMulInteger", "ConvInteger")
                          and producers.get(node.input[0]) is not None
                          and producers[node.input[0]].op_type == "DynamicQuantizeLinear")
    dynamic = dynamic_integer + by_op["DynamicQuantizeMatMul"] + by_op["DynamicQuantizeLSTM"]
    qoperator = sum(by_op[op] for op in QOPERATOR_TYPES) - dynamic_integer
    return {
        "node_count": len(nodes),
        "nodes_by_op": dict(by_op),
        "quantize_count": by_op["QuantizeLinear"],
        "dequantize_count": by_op["DequantizeLinear"],
        "subgraph_count": sum(1 for graph, main in graphs
                              if not main and isinstance(graph, onnx.GraphProto)),
        "function_count": len(model.functions),
        "QOperator": qoperator,
        "dynamic": dynamic,
        "weight-only": by_op["MatMulNBits"] + by_op["GatherBlockQuantized"]
        + _cast_mul_count(graphs),
    }


def qdq_group_count(proto: onnx.ModelProto) -> int:
    """Compute nodes with an input written by a DequantizeLinear and an output read by a
    QuantizeLinear, in any graph."""
    count = 0
    for graph, _ in all_graphs(proto):
        producers = {o: n.op_type for n in graph.node for o in n.output}
        readers: dict[str, list[str]] = {}
        for n in graph.node:
            for name in n.input:
                readers.setdefault(name, []).append(n.op_type)
        for n in graph.node:
            if n.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant"):
                continue
            if any(producers.get(i) == "DequantizeLinear" for i in n.input) and any(
                    "QuantizeLinear" in readers.get(o, ()) for o in n.output):
                count += 1
    return count


def _cast_mul_count(graphs: list) -> int:
    """Cast nodes reading an integer initializer whose result a Mul (after an optional
    Sub) scales by an initializer: the hand-written weight dequantization."""
    count = 0
    for graph, _ in graphs:
        stored = {t.name: t.data_type for t in getattr(graph, "initializer", ())}
        readers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node)
        for node in graph.node:
            if node.op_type != "Cast" or stored.get(node.input[0]) not in (INT8, UINT8):
                continue
            nxt = readers.get(node.output[0], [])
            if len(nxt) == 1 and nxt[0].op_type == "Sub":
                nxt = readers.get(nxt[0].output[0], [])
            if len(nxt) == 1 and nxt[0].op_type == "Mul" and any(
                    stored.get(name) == FLOAT for name in nxt[0].input):
                count += 1
    return count
