"""Quantized models shaped like real ones, generated with ``onnx.helper`` (nothing downloaded).

The layout is the one ONNX Runtime's ``quantize_static`` writes in QDQ format (u8s8:
UINT8 activations behind Q -> DQ pairs, INT8 weights and INT32 biases behind a
DequantizeLinear), the node names are torch.onnx's ``/``-scoped ones
(``/features/denseblock1/denselayer3/conv1/Conv``), or, with ``scoped=False``, names
that carry no scope at all (``Conv_12``). Channels and images are tiny: the files stay
small, the graphs have the size and the connectivity of the real thing.

- :func:`densenet` — DenseNet-121-like: every layer concatenates all the earlier
  feature maps of its block (the fan-in that makes ``dot`` slow), ~1,300 nodes.
- :func:`transformer` — a BERT-style encoder (attention + MLP, LayerNormalization),
  ~2,000 nodes with 18 layers.
- :func:`detector` — YOLOv8n-like: C2f blocks with Split/Concat, SPPF, an FPN neck with
  Resize and long skip connections, three detection heads, ~1,000 nodes.
- :func:`resnet` — a ResNet of basic blocks with about *nodes* nodes (1k ... 10k), from
  ``benchmarks/resnets.py`` (its names are scoped ``stage1/block0/conv1/Conv``).
- :func:`if_branch_model` — a small model whose ``If`` branches hold a Q -> DQ pair.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 9


class QdqWriter:
    """Nodes, initializers and names in ORT's QDQ layout, torch-style scopes or none."""

    def __init__(self, scoped: bool = True, seed: int = 0) -> None:
        self.scoped = scoped
        self.rng = np.random.default_rng(seed)
        self.weight_nodes: list[onnx.NodeProto] = []
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.numbers = itertools.count()
        self.used: set[str] = set()

    def node_name(self, scope: str, op: str) -> str:
        if not self.scoped:
            return f"{op}_{next(self.numbers)}"
        name = f"/{scope}/{op}" if scope else f"/{op}"
        base, number = name, 1
        while name in self.used:  # torch numbers repeated ops of one scope: Add_1
            name, number = f"{base}_{number}", number + 1
        self.used.add(name)
        return name

    def constant(self, array: np.ndarray, name: str) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def qdq(self, tensor: str) -> str:
        """A Q -> DQ pair (UINT8, per-tensor) on a float activation: the DQ output."""
        scale = self.constant(np.array(self.rng.uniform(0.005, 0.05), np.float32),
                              f"{tensor}_scale")
        zero_point = self.constant(np.array(int(self.rng.integers(100, 156)), np.uint8),
                                   f"{tensor}_zero_point")
        quantized, out = f"{tensor}_QuantizeLinear_Output", f"{tensor}_DequantizeLinear_Output"
        self.nodes.append(helper.make_node("QuantizeLinear", [tensor, scale, zero_point],
                                           [quantized], name=f"{tensor}_QuantizeLinear"))
        self.nodes.append(helper.make_node("DequantizeLinear", [quantized, scale, zero_point],
                                           [out], name=f"{tensor}_DequantizeLinear"))
        return out

    def weight(self, array: np.ndarray, name: str, dtype: type = np.int8) -> str:
        """An INT8 (or INT32 bias) initializer behind a DequantizeLinear: the DQ output."""
        stored = self.constant(array.astype(dtype), f"{name}_quantized")
        scale = self.constant(np.array(self.rng.uniform(0.001, 0.01), np.float32),
                              f"{name}_scale")
        zero_point = self.constant(np.array(0, dtype), f"{name}_zero_point")
        out = f"{name}_DequantizeLinear_Output"
        self.weight_nodes.append(helper.make_node(
            "DequantizeLinear", [stored, scale, zero_point], [out],
            name=f"{name}_DequantizeLinear"))
        return out

    def op(self, op_type: str, inputs: list[str], scope: str, *, quantize: bool = True,
           outputs: int = 1, **attributes) -> list[str]:
        """One operator; its outputs behind Q -> DQ pairs unless ``quantize=False``."""
        name = self.node_name(scope, op_type)
        raw = [f"{name}_output_{number}" for number in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, raw, name=name, **attributes))
        return [self.qdq(tensor) for tensor in raw] if quantize else raw

    def conv(self, x: str, scope: str, c_in: int, c_out: int, kernel: int = 3,
             stride: int = 1, group: int = 1, quantize: bool = True) -> str:
        prefix = scope.strip("/").replace("/", ".") or "conv"
        shape = (c_out, c_in // group, kernel, kernel)
        w = self.weight(self.rng.integers(-127, 128, shape), f"{prefix}.weight")
        b = self.weight(self.rng.integers(-500, 500, (c_out,)), f"{prefix}.bias", np.int32)
        pad = kernel // 2
        return self.op("Conv", [x, w, b], scope, quantize=quantize, group=group,
                       kernel_shape=[kernel, kernel], pads=[pad] * 4,
                       strides=[stride, stride])[0]

    def matmul(self, x: str, scope: str, c_in: int, c_out: int) -> str:
        prefix = scope.strip("/").replace("/", ".") or "linear"
        w = self.weight(self.rng.integers(-127, 128, (c_in, c_out)), f"{prefix}.weight")
        h = self.op("MatMul", [x, w], scope)[0]
        b = self.weight(self.rng.integers(-500, 500, (c_out,)), f"{prefix}.bias", np.int32)
        return self.op("Add", [b, h], scope)[0]

    def model(self, name: str, inputs: list[onnx.ValueInfoProto],
              outputs: list[tuple[str, str]], opset: int = OPSET) -> onnx.ModelProto:
        """The model; ``outputs`` are (tensor, graph output name) renamed through Identity."""
        graph = helper.make_graph(self.weight_nodes + self.nodes, name, inputs, [],
                                  self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="onnx.quantize", producer_version="0.1.0")
        model.ir_version = IR_VERSION
        inferred = {info.name: info for info in
                    onnx.shape_inference.infer_shapes(model).graph.value_info}
        for tensor, out_name in outputs:
            model.graph.node.append(helper.make_node(
                "Identity", [tensor], [out_name], name=self.node_name("", f"Identity_{out_name}")))
            info = onnx.ValueInfoProto()
            info.CopyFrom(inferred[tensor])
            info.name = out_name
            model.graph.output.append(info)
        return model


def _image_input(channels: int = 3, size: int = 32) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, size, size])


# -- DenseNet ------------------------------------------------------------------------------
def densenet(blocks: tuple[int, ...] = (6, 12, 24, 16), growth: int = 4, scoped: bool = True,
             seed: int = 0) -> onnx.ModelProto:
    """DenseNet-121-like (BN and Relu kept, as the exporter leaves them before a Conv)."""
    w = QdqWriter(scoped, seed)
    x = w.qdq("input")
    channels = 2 * growth
    x = w.conv(x, "features/conv0", 3, channels, 7, 2)
    x = w.op("MaxPool", [x], "features/pool0", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
             strides=[2, 2])[0]
    for number, layers in enumerate(blocks, start=1):
        features = [x]
        for layer in range(1, layers + 1):
            scope = f"features/denseblock{number}/denselayer{layer}"
            h = (w.op("Concat", features, scope, axis=1)[0] if len(features) > 1
                 else features[0])
            c_in = channels + (layer - 1) * growth
            h = _batch_norm_relu(w, h, f"{scope}/norm1", c_in)
            h = w.conv(h, f"{scope}/conv1", c_in, 4 * growth, 1)
            h = _batch_norm_relu(w, h, f"{scope}/norm2", 4 * growth)
            h = w.conv(h, f"{scope}/conv2", 4 * growth, growth, 3)
            features.append(h)
        x = w.op("Concat", features, f"features/denseblock{number}", axis=1)[0]
        channels += layers * growth
        if number < len(blocks):
            scope = f"features/transition{number}"
            x = _batch_norm_relu(w, x, f"{scope}/norm", channels)
            x = w.conv(x, f"{scope}/conv", channels, channels // 2, 1)
            channels //= 2
            x = w.op("AveragePool", [x], f"{scope}/pool", kernel_shape=[2, 2],
                     strides=[2, 2])[0]
    x = _batch_norm_relu(w, x, "features/norm5", channels)
    x = w.op("GlobalAveragePool", [x], "")[0]
    x = w.op("Flatten", [x], "", axis=1)[0]
    x = w.matmul(x, "classifier", channels, 10)
    return w.model("densenet_qdq", [_image_input(size=64)], [(x, "logits")])


def _batch_norm_relu(w: QdqWriter, x: str, scope: str, channels: int) -> str:
    prefix = scope.strip("/").replace("/", ".")
    params = [w.constant(w.rng.uniform(0.5, 1.5, channels).astype(np.float32),
                         f"{prefix}.{what}") for what in ("weight", "bias", "running_mean",
                                                          "running_var")]
    h = w.op("BatchNormalization", [x, *params], scope)[0]
    parent, _, last = scope.rpartition("/")
    return w.op("Relu", [h], f"{parent}/{last.replace('norm', 'relu')}")[0]


# -- transformer encoder --------------------------------------------------------------------
def transformer(layers: int = 18, hidden: int = 16, heads: int = 2, tokens: int = 8,
                scoped: bool = True, seed: int = 0) -> onnx.ModelProto:
    """A BERT-style encoder: embeddings, ``layers`` x (attention, MLP), a pooler."""
    w = QdqWriter(scoped, seed)
    x = w.qdq("input")
    x = w.matmul(x, "embeddings/projection", hidden, hidden)
    x = _layer_norm(w, x, "embeddings/LayerNorm", hidden)
    head = hidden // heads
    split_shape = w.constant(np.array([1, tokens, heads, head], np.int64), "split_heads_shape")
    merge_shape = w.constant(np.array([1, tokens, hidden], np.int64), "merge_heads_shape")
    for layer in range(layers):
        scope = f"encoder/layer.{layer}"
        attention = f"{scope}/attention/self"
        projected = {}
        for which in ("query", "key", "value"):
            h = w.matmul(x, f"{attention}/{which}", hidden, hidden)
            h = w.op("Reshape", [h, split_shape], f"{attention}/{which}")[0]
            perm = [0, 2, 3, 1] if which == "key" else [0, 2, 1, 3]
            projected[which] = w.op("Transpose", [h], f"{attention}/{which}", perm=perm)[0]
        scores = w.op("MatMul", [projected["query"], projected["key"]], attention)[0]
        divisor = w.constant(np.array(np.sqrt(head), np.float32), f"{scope}.attention.divisor")
        scores = w.op("Div", [scores, divisor], attention)[0]
        probs = w.op("Softmax", [scores], attention, axis=-1)[0]
        context = w.op("MatMul", [probs, projected["value"]], attention)[0]
        context = w.op("Transpose", [context], attention, perm=[0, 2, 1, 3])[0]
        context = w.op("Reshape", [context, merge_shape], attention)[0]
        h = w.matmul(context, f"{scope}/attention/output/dense", hidden, hidden)
        h = w.op("Add", [h, x], f"{scope}/attention/output")[0]
        x = _layer_norm(w, h, f"{scope}/attention/output/LayerNorm", hidden)
        h = w.matmul(x, f"{scope}/intermediate/dense", hidden, 4 * hidden)
        h = _gelu(w, h, f"{scope}/intermediate/intermediate_act_fn")
        h = w.matmul(h, f"{scope}/output/dense", 4 * hidden, hidden)
        h = w.op("Add", [h, x], f"{scope}/output")[0]
        x = _layer_norm(w, h, f"{scope}/output/LayerNorm", hidden)
    first = w.constant(np.array([0], np.int64), "pooler_index")
    x = w.op("Gather", [x, first], "pooler", axis=1)[0]
    x = w.matmul(x, "pooler/dense", hidden, hidden)
    x = w.op("Tanh", [x], "pooler/activation")[0]
    tokens_input = helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                 [1, tokens, hidden])
    return w.model("encoder_qdq", [tokens_input], [(x, "pooled")])


def _layer_norm(w: QdqWriter, x: str, scope: str, hidden: int) -> str:
    prefix = scope.strip("/").replace("/", ".")
    gamma = w.constant(np.ones(hidden, np.float32), f"{prefix}.weight")
    beta = w.constant(np.zeros(hidden, np.float32), f"{prefix}.bias")
    return w.op("LayerNormalization", [x, gamma, beta], scope, axis=-1, epsilon=1e-12)[0]


def _gelu(w: QdqWriter, x: str, scope: str) -> str:
    """GELU as torch.onnx writes it before opset 20: x * 0.5 * (1 + erf(x / sqrt 2))."""
    prefix = scope.strip("/").replace("/", ".")
    root2 = w.constant(np.array(np.sqrt(2), np.float32), f"{prefix}.sqrt2")
    one = w.constant(np.array(1, np.float32), f"{prefix}.one")
    half = w.constant(np.array(0.5, np.float32), f"{prefix}.half")
    h = w.op("Div", [x, root2], scope)[0]
    h = w.op("Erf", [h], scope)[0]
    h = w.op("Add", [h, one], scope)[0]
    h = w.op("Mul", [x, h], scope)[0]
    return w.op("Mul", [h, half], scope)[0]


# -- YOLO-like detector ------------------------------------------------------------------------
def detector(width: int = 4, depth: tuple[int, ...] = (2, 3, 3, 2), scoped: bool = True,
             seed: int = 0) -> onnx.ModelProto:
    """YOLOv8n-like: Conv+SiLU, C2f (Split, bottlenecks, Concat), SPPF, FPN/PAN neck, heads."""
    w = QdqWriter(scoped, seed)
    x = w.qdq("input")
    c = [width, 2 * width, 4 * width, 8 * width, 16 * width]
    x = _conv_silu(w, x, "model.0", 3, c[0], 3, 2)
    x = _conv_silu(w, x, "model.1", c[0], c[1], 3, 2)
    x = _c2f(w, x, "model.2", c[1], c[1], depth[0], True)
    x = _conv_silu(w, x, "model.3", c[1], c[2], 3, 2)
    p3 = _c2f(w, x, "model.4", c[2], c[2], depth[1], True)
    x = _conv_silu(w, p3, "model.5", c[2], c[3], 3, 2)
    p4 = _c2f(w, x, "model.6", c[3], c[3], depth[2], True)
    x = _conv_silu(w, p4, "model.7", c[3], c[4], 3, 2)
    x = _c2f(w, x, "model.8", c[4], c[4], depth[3], True)
    p5 = _sppf(w, x, "model.9", c[4])
    scales = w.constant(np.array([1, 1, 2, 2], np.float32), "upsample_scales")
    up = w.op("Resize", [p5, "", scales], "model.10", mode="nearest")[0]
    x = w.op("Concat", [up, p4], "model.11", axis=1)[0]
    n4 = _c2f(w, x, "model.12", c[4] + c[3], c[3], depth[0], False)
    up = w.op("Resize", [n4, "", scales], "model.13", mode="nearest")[0]
    x = w.op("Concat", [up, p3], "model.14", axis=1)[0]
    out3 = _c2f(w, x, "model.15", c[3] + c[2], c[2], depth[0], False)
    x = _conv_silu(w, out3, "model.16", c[2], c[2], 3, 2)
    x = w.op("Concat", [x, n4], "model.17", axis=1)[0]
    out4 = _c2f(w, x, "model.18", c[2] + c[3], c[3], depth[0], False)
    x = _conv_silu(w, out4, "model.19", c[3], c[3], 3, 2)
    x = w.op("Concat", [x, p5], "model.20", axis=1)[0]
    out5 = _c2f(w, x, "model.21", c[3] + c[4], c[4], depth[0], False)
    flat_shape = w.constant(np.array([1, 6, -1], np.int64), "detect_shape")
    flattened = []
    for number, (feature, channels) in enumerate(((out3, c[2]), (out4, c[3]), (out5, c[4]))):
        branches = []
        for branch, outputs in (("cv2", 4), ("cv3", 2)):
            scope = f"model.22/{branch}.{number}"
            h = _conv_silu(w, feature, f"{scope}/{branch}.{number}.0", channels, c[2], 3, 1)
            h = _conv_silu(w, h, f"{scope}/{branch}.{number}.1", c[2], c[2], 3, 1)
            branches.append(w.conv(h, f"{scope}/{branch}.{number}.2", c[2], outputs, 1))
        h = w.op("Concat", branches, "model.22", axis=1)[0]
        flattened.append(w.op("Reshape", [h, flat_shape], "model.22")[0])
    x = w.op("Concat", flattened, "model.22", axis=2)[0]
    box, cls = w.op("Split", [x, w.constant(np.array([4, 2], np.int64), "detect_split")],
                    "model.22", outputs=2, axis=1)
    cls = w.op("Sigmoid", [cls], "model.22")[0]
    x = w.op("Concat", [box, cls], "model.22", axis=1)[0]
    return w.model("detector_qdq", [_image_input(size=64)], [(x, "detections")])


def _conv_silu(w: QdqWriter, x: str, scope: str, c_in: int, c_out: int, kernel: int,
               stride: int) -> str:
    h = w.conv(x, f"{scope}/conv", c_in, c_out, kernel, stride)
    gate = w.op("Sigmoid", [h], f"{scope}/act")[0]
    return w.op("Mul", [h, gate], f"{scope}/act")[0]


def _c2f(w: QdqWriter, x: str, scope: str, c_in: int, c_out: int, bottlenecks: int,
         shortcut: bool) -> str:
    hidden = c_out // 2
    h = _conv_silu(w, x, f"{scope}/cv1", c_in, 2 * hidden, 1, 1)
    split = w.constant(np.array([hidden, hidden], np.int64), f"{scope.replace('/', '.')}.split")
    parts = w.op("Split", [h, split], scope, outputs=2, axis=1)
    last = parts[-1]
    for number in range(bottlenecks):
        inner = f"{scope}/m.{number}"
        b = _conv_silu(w, last, f"{inner}/cv1", hidden, hidden, 3, 1)
        b = _conv_silu(w, b, f"{inner}/cv2", hidden, hidden, 3, 1)
        last = w.op("Add", [last, b], inner)[0] if shortcut else b
        parts.append(last)
    h = w.op("Concat", parts, scope, axis=1)[0]
    return _conv_silu(w, h, f"{scope}/cv2", (2 + bottlenecks) * hidden, c_out, 1, 1)


def _sppf(w: QdqWriter, x: str, scope: str, channels: int) -> str:
    hidden = channels // 2
    h = _conv_silu(w, x, f"{scope}/cv1", channels, hidden, 1, 1)
    pooled = [h]
    for _ in range(3):
        pooled.append(w.op("MaxPool", [pooled[-1]], f"{scope}/m", kernel_shape=[5, 5],
                           pads=[2, 2, 2, 2], strides=[1, 1])[0])
    h = w.op("Concat", pooled, scope, axis=1)[0]
    return _conv_silu(w, h, f"{scope}/cv2", 4 * hidden, channels, 1, 1)


# -- ResNets (benchmarks/resnets.py) -----------------------------------------------------------
def resnet(nodes: int = 1000) -> onnx.ModelProto:
    """A narrow CIFAR-style ResNet of about *nodes* nodes (13 per basic block)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import resnets
    finally:
        sys.path.pop(0)
    per_stage = max(1, (nodes - 33) // 13 // 4)
    blocks = (per_stage,) * 4
    return resnets.build_model(resnets.ModelSpec(f"resnet-{nodes}", blocks, (8, 16, 32, 64)))


# -- a model with If branches ----------------------------------------------------------------------
def if_branch_model() -> onnx.ModelProto:
    """x -> Q -> DQ -> If(cond){then: Q -> DQ -> Relu on x's DQ output (outer scope);
    else: Identity} -> y. The then-branch pair reads ``outer_scale`` from the main graph."""
    scale = numpy_helper.from_array(np.array(0.02, np.float32), "outer_scale")
    zero = numpy_helper.from_array(np.array(128, np.uint8), "outer_zero_point")
    then_nodes = [
        helper.make_node("QuantizeLinear", ["x_dq", "outer_scale", "outer_zero_point"],
                         ["then_q"], name="/branch/then/QuantizeLinear"),
        helper.make_node("DequantizeLinear", ["then_q", "outer_scale", "outer_zero_point"],
                         ["then_dq"], name="/branch/then/DequantizeLinear"),
        helper.make_node("Relu", ["then_dq"], ["then_out"], name="/branch/then/Relu"),
    ]
    then_graph = helper.make_graph(then_nodes, "then_body", [],
                                   [helper.make_tensor_value_info("then_out", TensorProto.FLOAT,
                                                                  [1, 4])])
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["x_dq"], ["else_out"], name="/branch/else/Identity")],
        "else_body", [], [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [1, 4])])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "outer_scale", "outer_zero_point"], ["x_q"],
                         name="/input/QuantizeLinear"),
        helper.make_node("DequantizeLinear", ["x_q", "outer_scale", "outer_zero_point"],
                         ["x_dq"], name="/input/DequantizeLinear"),
        helper.make_node("If", ["cond"], ["y"], name="/branch/If", then_branch=then_graph,
                         else_branch=else_graph),
    ]
    graph = helper.make_graph(
        nodes, "if_qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [scale, zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


#: name -> builder of the zoo (benchmarks and tests use the same names).
ZOO = {
    "densenet": densenet,
    "densenet-noscope": lambda: densenet(scoped=False),
    "transformer": transformer,
    "detector": detector,
    "resnet-1k": lambda: resnet(1000),
    "resnet-2k": lambda: resnet(2000),
    "resnet-5k": lambda: resnet(5000),
    "resnet-10k": lambda: resnet(10000),
}


if __name__ == "__main__":
    for zoo_name, build in ZOO.items():
        built = build()
        onnx.checker.check_model(built, full_check=True)
        print(f"{zoo_name:18} {len(built.graph.node):6} nodes "
              f"{len(built.SerializeToString()) / 1e6:6.2f} MB")
