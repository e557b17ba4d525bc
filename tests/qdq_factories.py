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
