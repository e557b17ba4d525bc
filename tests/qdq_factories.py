"""Model builders shared by the analysis, DOT and Sphinx tests.

Every builder returns a fresh ``onnx.ModelProto`` (mutate it freely) or writes
one to a path. Models quantized by ONNX Runtime are built once per test session
(``functools.lru_cache``) and copied on every call.

Quick reference::

    tiny_resnet_float()             float Conv-Relu-Conv-Add-GlobalAveragePool-Gemm
    tiny_resnet_qdq()               ORT quantize_static, QDQ, per-tensor INT8 (U8 acts)
    tiny_resnet_qdq(per_channel=True)
    tiny_resnet_qdq_int16()         QInt16 activations, QInt8 weights (opset 21)
    tiny_resnet_qoperator()         ORT QOperator format (QLinearConv...)
    tiny_resnet_qdq_tensorrt()      AddQDQPairToWeight + DedicatedQDQPair
    qdq_pair_model(...)             x -> Q -> DQ -> y with any scale / zero point
    save(model, path)               write a model, returns the path
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Shape of the tiny ResNet input (NCHW).
TINY_INPUT_SHAPE = (1, 3, 8, 8)
TINY_CLASSES = 5
DEFAULT_OPSET = 17
FLOAT = TensorProto.FLOAT


# -- writing ---------------------------------------------------------------------
def save(model: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Write *model* (serialized as is, no external data) to *path*; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def make_model(nodes: Sequence[onnx.NodeProto], inputs: Sequence[onnx.ValueInfoProto],
               outputs: Sequence[onnx.ValueInfoProto],
               initializers: Sequence[onnx.TensorProto] = (), *, name: str = "test_graph",
               opset: int = DEFAULT_OPSET, extra_opsets: Iterable[tuple[str, int]] = (),
               value_info: Sequence[onnx.ValueInfoProto] = ()) -> onnx.ModelProto:
    """``helper.make_model`` with a chosen default opset and IR version that ORT accepts."""
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs),
                              list(initializers), value_info=list(value_info))
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(domain, version) for domain, version in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="qdq-tests")
    model.ir_version = min(model.ir_version, 10)
    return model


def tensor_input(name: str, shape: Sequence[int | str | None] | None,
                 dtype: int = FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def scalar(name: str, value: float, dtype: int = FLOAT) -> onnx.TensorProto:
    """A 0-d initializer (how ORT stores per-tensor scales and zero points)."""
    return helper.make_tensor(name, dtype, [], [value])


def vector(name: str, values: Sequence[float | int], dtype: int = FLOAT) -> onnx.TensorProto:
    return helper.make_tensor(name, dtype, [len(values)], list(values))


# -- the float tiny ResNet ---------------------------------------------------------
def tiny_resnet_float(seed: int = 0, channels: int = 4) -> onnx.ModelProto:
    """Conv -> Relu -> Conv -> Add (residual) -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name)

    c_in = TINY_INPUT_SHAPE[1]
    initializers = [
        weight("conv1.weight", channels, c_in, 3, 3), weight("conv1.bias", channels),
        weight("conv2.weight", channels, channels, 3, 3), weight("conv2.bias", channels),
        weight("skip.weight", channels, c_in, 1, 1), weight("skip.bias", channels),
        weight("fc.weight", TINY_CLASSES, channels), weight("fc.bias", TINY_CLASSES),
    ]
    pads = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["conv1_out"],
                         name="conv1", **pads),
        helper.make_node("Relu", ["conv1_out"], ["relu1_out"], name="relu1"),
        helper.make_node("Conv", ["relu1_out", "conv2.weight", "conv2.bias"], ["conv2_out"],
                         name="conv2", **pads),
        helper.make_node("Conv", ["input", "skip.weight", "skip.bias"], ["skip_out"],
                         name="skip"),
        helper.make_node("Add", ["conv2_out", "skip_out"], ["add_out"], name="add"),
        helper.make_node("Relu", ["add_out"], ["relu2_out"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["relu2_out"], ["pool_out"], name="pool"),
        helper.make_node("Flatten", ["pool_out"], ["flat_out"], name="flatten"),
        helper.make_node("Gemm", ["flat_out", "fc.weight", "fc.bias"], ["logits"], name="fc",
                         transB=1),
    ]
    return make_model(nodes, [tensor_input("input", TINY_INPUT_SHAPE)],
                      [tensor_input("logits", [1, TINY_CLASSES])], initializers,
                      name="tiny_resnet", opset=DEFAULT_OPSET)


def calibration_batches(count: int = 4, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"input": rng.normal(0, 1, TINY_INPUT_SHAPE).astype(np.float32)}
            for _ in range(count)]


# -- ONNX Runtime quantizer (cached per session) -------------------------------------
def tiny_resnet_qdq(*, per_channel: bool = False, activation_type: str = "QUInt8",
                    weight_type: str = "QInt8", extra_options: tuple = ()) -> onnx.ModelProto:
    """The tiny ResNet quantized by ``quantize_static`` in QDQ format (a fresh copy)."""
    return _copy(_ort_quantized("QDQ", per_channel, activation_type, weight_type,
                                extra_options))


def tiny_resnet_qdq_with_stray_zero_scale() -> onnx.ModelProto:
    """:func:`tiny_resnet_qdq` plus a stray DequantizeLinear ``stray_dq`` of the constant
    ``stray_q`` (four INT8 values) whose scale ``stray_scale`` is zero: a ``qdq.scale``
    diagnostic of the analysis; ONNX Runtime still runs the model."""
    model = tiny_resnet_qdq()
    model.graph.initializer.extend([
        numpy_helper.from_array(np.arange(4, dtype=np.int8), "stray_q"),
        numpy_helper.from_array(np.array(0.0, np.float32), "stray_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "stray_zp")])
    model.graph.node.append(helper.make_node(
        "DequantizeLinear", ["stray_q", "stray_scale", "stray_zp"], ["stray_out"],
        name="stray_dq"))
    return model


def tiny_resnet_qdq_int16() -> onnx.ModelProto:
    """16-bit activations (QInt16) with INT8 weights: opset 21 Q/DQ."""
    return tiny_resnet_qdq(activation_type="QInt16", weight_type="QInt8")


def tiny_resnet_qoperator() -> onnx.ModelProto:
    """QOperator format: QLinearConv, QLinearAdd, QGemm... and no DequantizeLinear pairs."""
    return _copy(_ort_quantized("QOperator", False, "QUInt8", "QInt8", ()))


def tiny_resnet_qdq_tensorrt() -> onnx.ModelProto:
    """TensorRT recipe: float weights kept with Q->DQ pairs, one pair per consumer."""
    return tiny_resnet_qdq(activation_type="QInt8", weight_type="QInt8", extra_options=(
        ("AddQDQPairToWeight", True), ("DedicatedQDQPair", True),
        ("ActivationSymmetric", True), ("WeightSymmetric", True)))


def save_tiny_resnet_qdq(path: str | os.PathLike[str], **options: object) -> Path:
    """Write :func:`tiny_resnet_qdq` (with *options*) to *path*."""
    return save(tiny_resnet_qdq(**options), path)  # type: ignore[arg-type]


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    fresh = onnx.ModelProto()
    fresh.CopyFrom(model)
    return fresh


@functools.cache
def _ort_quantized(fmt: str, per_channel: bool, activation_type: str, weight_type: str,
                   extra_options: tuple) -> onnx.ModelProto:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration_batches())

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "float.onnx")
        target = Path(folder, "quantized.onnx")
        save(tiny_resnet_float(), source)
        quantize_static(
            str(source), str(target), Reader(), quant_format=QuantFormat[fmt],
            per_channel=per_channel, activation_type=QuantType[activation_type],
            weight_type=QuantType[weight_type], extra_options=dict(extra_options))
        return onnx.load(str(target))


# -- hand-made QDQ cases (QDQ-NOTES.md) ------------------------------------------------
def qdq_pair_model(scale: float | Sequence[float] = 0.05, zero_point: int | None = 128, *,
                   zp_dtype: int = TensorProto.UINT8, shape: Sequence[int] = (1, 4),
                   axis: int | None = None, scale_from: str = "initializer",
                   zero_point_from: str = "initializer", domain: str = "",
                   opset: int = 13) -> onnx.ModelProto:
    """``x -> QuantizeLinear -> DequantizeLinear -> y`` (nodes ``q`` and ``dq``).

    *scale_from*: ``"initializer"``, ``"constant"`` (a ``Constant`` node named
    ``scale_const``), ``"input"`` (a graph input) or ``"runtime"`` (``Mul`` of
    the initializer ``scale_base`` by 1). *zero_point_from*: ``"initializer"``,
    ``"absent"`` (two inputs) or ``"empty"`` (an empty-string third input).
    A sequence *scale* gives a 1-D scale (per-axis with *axis*).
    """
    per_axis = not isinstance(scale, (int, float))
    scale_values = list(scale) if per_axis else [scale]  # type: ignore[arg-type]
    scale_dims = [len(scale_values)] if per_axis else []
    zp_values = [zero_point] * len(scale_values) if zero_point is not None else []
    nodes, inputs, initializers = [], [tensor_input("x", shape)], []
    if scale_from == "initializer":
        initializers.append(helper.make_tensor("scale", FLOAT, scale_dims, scale_values))
    elif scale_from == "constant":
        nodes.append(helper.make_node("Constant", [], ["scale"], name="scale_const",
                                      value=helper.make_tensor("v", FLOAT, scale_dims,
                                                               scale_values)))
    elif scale_from == "input":
        inputs.append(tensor_input("scale", scale_dims))
    elif scale_from == "runtime":
        initializers += [helper.make_tensor("scale_base", FLOAT, scale_dims, scale_values),
                         scalar("one", 1.0)]
        nodes.append(helper.make_node("Mul", ["scale_base", "one"], ["scale"], name="scale_mul"))
    else:
        raise ValueError(scale_from)
    qdq_inputs = ["scale"]
    if zero_point_from == "initializer" and zero_point is not None:
        initializers.append(helper.make_tensor("zero_point", zp_dtype, scale_dims, zp_values))
        qdq_inputs.append("zero_point")
    elif zero_point_from == "empty":
        qdq_inputs.append("")
    attrs = {} if axis is None else {"axis": axis}
    nodes += [
        helper.make_node("QuantizeLinear", ["x", *qdq_inputs], ["x_q"], name="q",
                         domain=domain, **attrs),
        helper.make_node("DequantizeLinear", ["x_q", *qdq_inputs], ["y"], name="dq",
                         domain=domain, **attrs),
    ]
    extra = [("com.microsoft", 1)] if domain == "com.microsoft" else []
    return make_model(nodes, inputs, [tensor_input("y", shape)], initializers, name="qdq_pair",
                      opset=opset, extra_opsets=extra)


def weight_dq_model(weight: np.ndarray | None = None, scale: Sequence[float] | float = 0.02,
                    zero_point: Sequence[int] | int | None = 0, *, axis: int | None = None,
                    bias: np.ndarray | None = None, bias_scale: float = 0.001,
                    opset: int = 13) -> onnx.ModelProto:
    """ORT style Conv: ``x -> Q -> DQ -> Conv(W: DQ(int8), B: DQ(int32)) -> Q -> DQ -> y``.

    Node names: ``x_q``, ``x_dq``, ``w_dq``, ``b_dq``, ``conv``, ``y_q``, ``y_dq``;
    weight initializer ``w_int8`` (shape [4, 3, 1, 1] by default).
    """
    weight = np.arange(-6, 6, dtype=np.int8).reshape(4, 3, 1, 1) if weight is None else weight
    channels = weight.shape[0]
    bias = np.arange(channels, dtype=np.int32) * 100 if bias is None else bias
    per_axis = not isinstance(scale, (int, float))
    scale_dims = [len(scale)] if per_axis else []  # type: ignore[arg-type]
    scale_values = list(scale) if per_axis else [scale]  # type: ignore[arg-type]
    initializers = [
        numpy_helper.from_array(weight, "w_int8"),
        helper.make_tensor("w_scale", FLOAT, scale_dims, scale_values),
        numpy_helper.from_array(bias, "b_int32"), scalar("b_scale", bias_scale),
        scalar("x_scale", 0.1), scalar("x_zero_point", 0, TensorProto.INT8),
        scalar("y_scale", 0.2), scalar("y_zero_point", 0, TensorProto.INT8),
    ]
    w_inputs = ["w_int8", "w_scale"]
    if zero_point is not None:
        zp = list(zero_point) if not isinstance(zero_point, int) else [zero_point]
        initializers.append(helper.make_tensor("w_zero_point", TensorProto.INT8,
                                               scale_dims if len(zp) > 1 or per_axis else [],
                                               zp))
        w_inputs.append("w_zero_point")
    attrs = {} if axis is None else {"axis": axis}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero_point"], ["x_q_out"],
                         name="x_q"),
        helper.make_node("DequantizeLinear", ["x_q_out", "x_scale", "x_zero_point"],
                         ["x_dq_out"], name="x_dq"),
        helper.make_node("DequantizeLinear", w_inputs, ["w_float"], name="w_dq", **attrs),
        helper.make_node("DequantizeLinear", ["b_int32", "b_scale"], ["b_float"], name="b_dq"),
        helper.make_node("Conv", ["x_dq_out", "w_float", "b_float"], ["conv_out"], name="conv"),
        helper.make_node("QuantizeLinear", ["conv_out", "y_scale", "y_zero_point"],
                         ["y_q_out"], name="y_q"),
        helper.make_node("DequantizeLinear", ["y_q_out", "y_scale", "y_zero_point"], ["y"],
                         name="y_dq"),
    ]
    c_in = weight.shape[1]
    return make_model(nodes, [tensor_input("x", [1, c_in, 4, 4])],
                      [tensor_input("y", [1, channels, 4, 4])], initializers,
                      name="weight_dq", opset=opset)


def shared_params_model(pairs: int = 3) -> onnx.ModelProto:
    """NNCF habit: *pairs* Q->DQ pairs (activations and one float weight) sharing ONE
    scale ``shared_scale`` and ONE zero point ``shared_zero_point``."""
    initializers = [scalar("shared_scale", 0.125), scalar("shared_zero_point", 3, TensorProto.INT8),
                    numpy_helper.from_array(np.full((4, 4), 0.5, np.float32), "fc_weight")]
    nodes, previous = [], "x"
    for i in range(pairs):
        nodes += [
            helper.make_node("QuantizeLinear", [previous, "shared_scale", "shared_zero_point"],
                             [f"a{i}_q"], name=f"act{i}_q"),
            helper.make_node("DequantizeLinear", [f"a{i}_q", "shared_scale", "shared_zero_point"],
                             [f"a{i}_dq"], name=f"act{i}_dq"),
            helper.make_node("Relu", [f"a{i}_dq"], [f"a{i}_relu"], name=f"relu{i}"),
        ]
        previous = f"a{i}_relu"
    nodes += [
        helper.make_node("QuantizeLinear", ["fc_weight", "shared_scale", "shared_zero_point"],
                         ["w_q"], name="w_q"),
        helper.make_node("DequantizeLinear", ["w_q", "shared_scale", "shared_zero_point"],
                         ["w_dq_out"], name="w_dq"),
        helper.make_node("MatMul", [previous, "w_dq_out"], ["y"], name="matmul"),
    ]
    return make_model(nodes, [tensor_input("x", [1, 4])], [tensor_input("y", [1, 4])],
                      initializers, name="shared_params")


def fanout_clip_model() -> onnx.ModelProto:
    """One DQ (``dq``) feeding three consumers, one of them ``Clip``; plus Brevitas QCDQ
    ``x2 -> q2 -> clip_q (Clip on INT8) -> dq2``."""
    initializers = [scalar("s", 0.5), scalar("z", 0, TensorProto.INT8),
                    scalar("lo", -100, TensorProto.INT8), scalar("hi", 100, TensorProto.INT8),
                    scalar("flo", 0.0), scalar("fhi", 6.0)]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xdq"], name="dq"),
        helper.make_node("Relu", ["xdq"], ["r"], name="relu"),
        helper.make_node("Sigmoid", ["xdq"], ["sg"], name="sigmoid"),
        helper.make_node("Clip", ["xdq", "flo", "fhi"], ["c"], name="clip_float"),
        helper.make_node("QuantizeLinear", ["x2", "s", "z"], ["x2q"], name="q2"),
        helper.make_node("Clip", ["x2q", "lo", "hi"], ["x2c"], name="clip_q"),
        helper.make_node("DequantizeLinear", ["x2c", "s", "z"], ["y2"], name="dq2"),
    ]
    outputs = [tensor_input(n, [1, 4]) for n in ("r", "sg", "c", "y2")]
    return make_model(nodes, [tensor_input("x", [1, 4]), tensor_input("x2", [1, 4])], outputs,
                      initializers, name="fanout_clip")


def if_outer_scope_model() -> onnx.ModelProto:
    """Q/DQ inside both branches of an ``If`` (node ``branch``) using the main graph's
    initializers ``outer_scale`` / ``outer_zero_point``; the else branch also has its
    own local scale ``inner_scale`` (a Constant node ``inner_const``)."""
    then_graph = helper.make_graph([
        helper.make_node("QuantizeLinear", ["x", "outer_scale", "outer_zero_point"], ["t_q"],
                         name="then_q"),
        helper.make_node("DequantizeLinear", ["t_q", "outer_scale", "outer_zero_point"],
                         ["t_out"], name="then_dq"),
    ], "then_body", [], [tensor_input("t_out", [1, 4])])
    else_graph = helper.make_graph([
        helper.make_node("Constant", [], ["inner_scale"], name="inner_const",
                         value=helper.make_tensor("v", FLOAT, [], [0.25])),
        helper.make_node("QuantizeLinear", ["x", "inner_scale", "outer_zero_point"], ["e_q"],
                         name="else_q"),
        helper.make_node("DequantizeLinear", ["e_q", "inner_scale", "outer_zero_point"],
                         ["e_out"], name="else_dq"),
    ], "else_body", [], [tensor_input("e_out", [1, 4])])
    nodes = [helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_graph,
                              else_branch=else_graph)]
    return make_model(nodes, [tensor_input("x", [1, 4]), tensor_input("cond", [], TensorProto.BOOL)],
                      [tensor_input("y", [1, 4])],
                      [scalar("outer_scale", 0.75), scalar("outer_zero_point", 7, TensorProto.UINT8)],
                      name="if_outer_scope")


def loop_model() -> onnx.ModelProto:
    """A ``Loop`` (node ``loop``) whose body quantizes its carried value with the outer
    scale ``loop_scale`` (zero point absent: UINT8 by default)."""
    body = helper.make_graph([
        helper.make_node("QuantizeLinear", ["v_in", "loop_scale"], ["v_q"], name="body_q"),
        helper.make_node("DequantizeLinear", ["v_q", "loop_scale"], ["v_out"], name="body_dq"),
        helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
    ], "loop_body", [tensor_input("i", [], TensorProto.INT64),
                     tensor_input("cond_in", [], TensorProto.BOOL), tensor_input("v_in", [1, 4])],
        [tensor_input("cond_out", [], TensorProto.BOOL), tensor_input("v_out", [1, 4])])
    nodes = [helper.make_node("Loop", ["trip", "", "x"], ["y"], name="loop", body=body)]
    return make_model(nodes, [tensor_input("x", [1, 4]), tensor_input("trip", [], TensorProto.INT64)],
                      [tensor_input("y", [1, 4])], [scalar("loop_scale", 0.5)], name="loop")


def blocked_int4_model(rows: int = 4, cols: int = 8, block_size: int = 4,
                       scale_blocks: int | None = None) -> onnx.ModelProto:
    """Opset 21 weight-only INT4: ``DQ(w_int4 [rows, cols], scale [rows, cols/bs], axis=1,
    block_size)`` -> MatMul. *scale_blocks* overrides the (correct) number of blocks."""
    blocks = scale_blocks if scale_blocks is not None else -(-cols // block_size)
    rng = np.random.default_rng(3)
    weight = rng.integers(-8, 8, (rows, cols))
    scales = (np.arange(rows * blocks, dtype=np.float32).reshape(rows, blocks) + 1) / 64
    initializers = [
        helper.make_tensor("w_int4", TensorProto.INT4, [rows, cols], weight.ravel().tolist()),
        numpy_helper.from_array(scales, "w_scale"),
        helper.make_tensor("w_zero_point", TensorProto.INT4, [rows, blocks],
                           [0] * (rows * blocks)),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["w_int4", "w_scale", "w_zero_point"], ["w"],
                         name="w_dq", axis=1, block_size=block_size),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul"),
    ]
    return make_model(nodes, [tensor_input("x", [1, rows])], [tensor_input("y", [1, cols])],
                      initializers, name="blocked_int4", opset=21)


def float8_model() -> onnx.ModelProto:
    """Opset 19 FP8: Q with a FLOAT8E4M3FN zero point, then DQ back to float."""
    initializers = [scalar("s", 0.5),
                    helper.make_tensor("z", TensorProto.FLOAT8E4M3FN, [], [0.0])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q", saturate=1),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["y"], name="dq")]
    return make_model(nodes, [tensor_input("x", [2, 3])], [tensor_input("y", [2, 3])],
                      initializers, name="float8", opset=19)


def output_dtype_model() -> onnx.ModelProto:
    """Opset 23: Q without zero point whose ``output_dtype`` says INT8; DQ reads it."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s"], ["xq"], name="q",
                              output_dtype=TensorProto.INT8),
             helper.make_node("DequantizeLinear", ["xq", "s"], ["y"], name="dq")]
    return make_model(nodes, [tensor_input("x", [2, 3])], [tensor_input("y", [2, 3])],
                      [scalar("s", 0.5)], name="output_dtype", opset=23)


#: Node and tensor names that must stay data everywhere (DOT, HTML, LaTeX, reST).
AWKWARD_NAMES = (
    'quote"d', "back\\slash", "<angle>", "{brace|pipe}", "new\nline", "\\N escape",
    "<b>html</b>", "*reST* `markup`_ :role:`x`", "ünïcödé ✓ 量子化", "x" * 300,
)


def awkward_names_model() -> onnx.ModelProto:
    """A Q->DQ->Relu chain whose node / tensor names and doc strings are
    :data:`AWKWARD_NAMES`, with two empty node names and two duplicated ones."""
    names = list(AWKWARD_NAMES)
    nodes, previous = [], "input"
    initializers = [scalar('scale "<s>"', 0.5), scalar("zp\n{z}", 1, TensorProto.UINT8)]
    for i, name in enumerate(names):
        op = ("QuantizeLinear", "DequantizeLinear", "Relu")[i % 3] if i < 9 else "Relu"
        inputs = [previous] + (['scale "<s>"', "zp\n{z}"] if op != "Relu" else [])
        node = helper.make_node(op, inputs, [f"{name}:0"], name=name, doc_string=name)
        nodes.append(node)
        previous = f"{name}:0"
    nodes += [helper.make_node("Relu", [previous], ["e1"], name=""),
              helper.make_node("Relu", ["e1"], ["e2"], name=""),
              helper.make_node("Relu", ["e2"], ["d1"], name="dup"),
              helper.make_node("Relu", ["d1"], ["out"], name="dup")]
    return make_model(nodes, [tensor_input("input", [1, 4])], [tensor_input("out", [1, 4])],
                      initializers, name="awkward <names>")


def chain_model(length: int = 10_000, *, quantized_every: int = 0) -> onnx.ModelProto:
    """A linear chain of *length* Relu nodes (``relu0`` ...); with *quantized_every* = k,
    every k-th Relu is followed by a Q->DQ pair sharing one scale."""
    nodes, previous = [], "x"
    for i in range(length):
        nodes.append(helper.make_node("Relu", [previous], [f"t{i}"], name=f"relu{i}"))
        previous = f"t{i}"
        if quantized_every and i % quantized_every == 0:
            nodes += [helper.make_node("QuantizeLinear", [previous, "s", "z"], [f"t{i}_q"],
                                       name=f"q{i}"),
                      helper.make_node("DequantizeLinear", [f"t{i}_q", "s", "z"], [f"t{i}_dq"],
                                       name=f"dq{i}")]
            previous = f"t{i}_dq"
    initializers = [scalar("s", 0.1), scalar("z", 0, TensorProto.UINT8)] if quantized_every \
        else []
    return make_model(nodes, [tensor_input("x", [1, 4])], [tensor_input(previous, [1, 4])],
                      initializers, name="chain")


def external_scale_model(folder: str | os.PathLike[str], location: str, *,
                         write_data: bool = True, offset: int = 0,
                         scale_values: Sequence[float] = (0.5, 0.25, 0.125, 2.0),
                         filename: str = "model.onnx") -> Path:
    """Write to *folder* a per-axis Q->DQ model whose scale lives in external data at
    *location* (relative to *folder*, written there unless *write_data* is False or the
    location leaves the folder); returns the model path."""
    folder = Path(folder)
    values = np.asarray(scale_values, dtype=np.float32)
    model = qdq_pair_model(list(values), 0, shape=(1, len(values)), axis=1)
    scale = next(t for t in model.graph.initializer if t.name == "scale")
    scale.ClearField("float_data")
    scale.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)),
                       ("length", str(values.nbytes))):
        entry = scale.external_data.add()
        entry.key, entry.value = key, value
    if write_data:
        target = folder / location
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\0" * offset + values.tobytes())
    return save(model, folder / filename)
