"""ResNet-style QDQ models for the benchmarks, generated here (nothing is downloaded).

The models have the layout ONNX Runtime's ``quantize_static`` writes in QDQ format
(see ``models/resnet8_int8.onnx``): weights stored as INT8 initializers behind a
DequantizeLinear, biases as INT32 behind a DequantizeLinear (scale = input scale x
weight scale), a QuantizeLinear -> DequantizeLinear pair on every activation, Relu
fused into the Conv / Add before it, pooling and Reshape sharing their input's
scale, float ``value_info`` for compute outputs (as the quantizer keeps them from the
pre-processed float model) and none for the Q/DQ outputs or for the renamed last
output (``logits_QuantizeLinear_Input``), all names in ORT's scheme.

Building them with ONNX Runtime's quantizer would need a calibration run of a
10,000-node network; writing the same structure directly takes a second and is
deterministic (fixed seeds). :func:`ensure_models` caches the files by spec.

Node count of a network: stem 7 (input Q/DQ + Conv with its DQs and output Q/DQ),
13 per basic block (two convolutions of 5 nodes, Add + Q/DQ), 5 more for a block
with a projection shortcut, head 11 (pool, Reshape, Gemm, each with its Q/DQ, plus
the Gemm's weight and bias DQs).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
IR_VERSION = 10


@dataclass(frozen=True)
class ModelSpec:
    """A ResNet with basic blocks: ``blocks[i]`` blocks of ``widths[i]`` channels."""

    name: str
    blocks: tuple[int, ...]
    widths: tuple[int, ...]
    image: int = 32  # input height and width
    classes: int = 10
    per_channel: bool = False  # per-output-channel weight scales (axis 0)
    imagenet_stem: bool = False  # 7x7/2 Conv + 3x3/2 MaxPool instead of a 3x3 Conv
    seed: int = 0

    def file_name(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return f"{self.name}-{digest[:10]}.onnx"


#: The benchmark models: about 250 (5 MB), 700, 2,000 and 10,000 nodes, and one of about
#: 50 MB. The two weight-heavy ones are ImageNet-style (ResNet-34 layout at half width,
#: and a deeper full-width one, per-channel weights); the three node-heavy ones are
#: narrow CIFAR-style networks (per-tensor weights, ORT's default).
SPECS = (
    ModelSpec("resnet-250", (3, 4, 6, 3), (32, 64, 128, 256), image=224, classes=1000,
              per_channel=True, imagenet_stem=True),
    ModelSpec("resnet-700", (13, 13, 13, 13), (8, 16, 32, 64)),
    ModelSpec("resnet-2k", (38, 38, 38, 37), (8, 16, 32, 64)),
    ModelSpec("resnet-10k", (192, 192, 192, 191), (8, 16, 32, 64)),
    ModelSpec("resnet-50mb", (3, 4, 14, 7), (64, 128, 256, 512), image=224, classes=1000,
              per_channel=True, imagenet_stem=True),
)


def spec_named(name: str) -> ModelSpec:
    return next(spec for spec in SPECS if spec.name == name)


class _ResNetWriter:
    """Accumulates nodes, initializers and value_info in ORT's order and naming."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.weight_nodes: list[onnx.NodeProto] = []  # ORT lists weight/bias DQs first
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.value_info: list[onnx.ValueInfoProto] = []
        self.scales: dict[str, float] = {}  # activation tensor -> its scale

    # -- parameters --------------------------------------------------------------
    def _init(self, array: np.ndarray, name: str) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def activation_qdq(self, tensor: str, share: str | None = None) -> str:
        """Q -> DQ on a float activation; returns the DQ output. ``share`` reuses the
        scale and zero point of another tensor (pooling, Reshape)."""
        name = tensor.removesuffix("_QuantizeLinear_Input")
        base = share or name
        if share is None:
            scale = float(self.rng.uniform(0.01, 0.1))
            self.scales[tensor] = scale
            self._init(np.array(scale, np.float32), f"{base}_scale")
            self._init(np.array(0, np.int8), f"{base}_zero_point")
        else:
            self.scales[tensor] = self.scales[share]
        quantized = f"{name}_QuantizeLinear_Output"
        out = f"{name}_DequantizeLinear_Output" if name == tensor else name
        inputs = [f"{base}_scale", f"{base}_zero_point"]
        self.nodes.append(helper.make_node("QuantizeLinear", [tensor, *inputs], [quantized],
                                           name=f"{name}_QuantizeLinear"))
        self.nodes.append(helper.make_node("DequantizeLinear", [quantized, *inputs], [out],
                                           name=f"{name}_DequantizeLinear"))
        return out

    def quantized_weight(self, prefix: str, shape: tuple[int, ...], input_scale: float
                         ) -> tuple[str, str]:
        """INT8 weight and INT32 bias initializers with their DQ nodes: (weight, bias)."""
        out_channels = shape[0]
        count = out_channels if self.spec.per_channel else 1
        w_scale = self.rng.uniform(0.001, 0.01, count).astype(np.float32)
        weight = self.rng.integers(-127, 128, shape, dtype=np.int8)
        bias = self.rng.integers(-2000, 2000, out_channels, dtype=np.int32)
        per = {"axis": 0} if self.spec.per_channel else {}
        w_name, b_name = f"{prefix}.weight", f"{prefix}.bias"
        self._init(weight, f"{w_name}_quantized")
        scalar_shape = (count,) if self.spec.per_channel else ()
        self._init(w_scale.reshape(scalar_shape), f"{w_name}_scale")
        self._init(np.zeros(scalar_shape, np.int8), f"{w_name}_zero_point")
        self._init(bias, f"{b_name}_quantized")
        self._init((w_scale * np.float32(input_scale)).astype(np.float32),
                   f"{b_name}_quantized_scale")
        self._init(np.zeros(scalar_shape, np.int32), f"{b_name}_quantized_zero_point")
        self.weight_nodes.append(helper.make_node(
            "DequantizeLinear", [f"{b_name}_quantized", f"{b_name}_quantized_scale",
                                 f"{b_name}_quantized_zero_point"], [b_name],
            name=f"{b_name}_DequantizeLinear", **per))
        w_out = f"{w_name}_DequantizeLinear_Output"
        self.weight_nodes.append(helper.make_node(
            "DequantizeLinear", [f"{w_name}_quantized", f"{w_name}_scale",
                                 f"{w_name}_zero_point"], [w_out],
            name=f"{w_name}_DequantizeLinear", **per))
        return w_out, b_name

    def float_type(self, tensor: str, shape: list) -> None:
        self.value_info.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, shape))

    # -- layers --------------------------------------------------------------------
    def conv(self, x: str, x_raw: str, prefix: str, out: str, c_in: int, c_out: int,
             kernel: int, stride: int, size: int) -> tuple[str, int]:
        """Conv (Relu fused when ``out`` names a Relu) + output Q/DQ: (DQ output, size)."""
        weight, bias = self.quantized_weight(prefix, (c_out, c_in, kernel, kernel),
                                             self.scales[x_raw])
        pad = kernel // 2
        self.nodes.append(helper.make_node(
            "Conv", [x, weight, bias], [out], name=f"{prefix.replace('.', '/')}/Conv",
            dilations=[1, 1], group=1, kernel_shape=[kernel, kernel], pads=[pad] * 4,
            strides=[stride, stride]))
        size = (size + 2 * pad - kernel) // stride + 1
        shape = ["batch", c_out, size, size]
        self.float_type(out, shape)
        return self.activation_qdq(out), size

    def block(self, x: str, x_raw: str, prefix: str, c_in: int, c_out: int, stride: int,
              size: int) -> tuple[str, str, int]:
        """A basic block; returns (DQ output, float output, spatial size)."""
        path = prefix.replace(".", "/")
        h, out_size = self.conv(x, x_raw, f"{prefix}.conv1", f"{path}/relu1/Relu_output_0",
                                c_in, c_out, 3, stride, size)
        h, _ = self.conv(h, f"{path}/relu1/Relu_output_0", f"{prefix}.conv2",
                         f"{path}/conv2/Conv_output_0", c_out, c_out, 3, 1, out_size)
        shortcut = x
        if stride != 1 or c_in != c_out:
            shortcut, _ = self.conv(x, x_raw, f"{prefix}.shortcut",
                                    f"{path}/shortcut/Conv_output_0", c_in, c_out, 1, stride,
                                    size)
        raw = f"{path}/relu2/Relu_output_0"
        self.nodes.append(helper.make_node("Add", [h, shortcut], [raw], name=f"{path}/Add"))
        shape = ["batch", c_out, out_size, out_size]
        self.float_type(raw, shape)
        return self.activation_qdq(raw), raw, out_size

    def stem(self, size: int) -> tuple[str, str, int]:
        spec = self.spec
        x = self.activation_qdq("input")
        width = spec.widths[0]
        if not spec.imagenet_stem:
            h, size = self.conv(x, "input", "conv", "relu/Relu_output_0", 3, width, 3, 1, size)
            return h, "relu/Relu_output_0", size
        h, size = self.conv(x, "input", "conv", "relu/Relu_output_0", 3, width, 7, 2, size)
        raw = "maxpool/MaxPool_output_0"
        self.nodes.append(helper.make_node("MaxPool", [h], [raw], name="maxpool/MaxPool",
                                           kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                           strides=[2, 2]))
        size = (size + 2 - 3) // 2 + 1
        self.float_type(raw, ["batch", width, size, size])
        return self.activation_qdq(raw, share="relu/Relu_output_0"), raw, size

    def head(self, x: str, x_raw: str, width: int) -> None:
        pooled = "pool/GlobalAveragePool_output_0"
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled],
                                           name="pool/GlobalAveragePool"))
        self.float_type(pooled, ["batch", width, 1, 1])
        h = self.activation_qdq(pooled, share=x_raw)
        self._init(np.array([-1, width], np.int64), "flatten/Reshape_shape")
        flat = "flatten/Reshape_output_0"
        self.nodes.append(helper.make_node("Reshape", [h, "flatten/Reshape_shape"], [flat],
                                           name="flatten/Reshape", allowzero=0))
        self.float_type(flat, ["batch", width])
        h = self.activation_qdq(flat, share=x_raw)
        weight, bias = self.quantized_weight("dense", (self.spec.classes, width),
                                             self.scales[x_raw])
        logits = "logits_QuantizeLinear_Input"  # ORT renames it; no value_info
        self.nodes.append(helper.make_node("Gemm", [h, weight, bias], [logits],
                                           name="dense/Gemm", alpha=1.0, beta=1.0, transA=0,
                                           transB=1))
        self.activation_qdq(logits)

    def model(self) -> onnx.ModelProto:
        spec = self.spec
        h, raw, size = self.stem(spec.image)
        c_in = spec.widths[0]
        for stage, (count, width) in enumerate(zip(spec.blocks, spec.widths), start=1):
            for number in range(count):
                stride = 2 if stage > 1 and number == 0 else 1
                h, raw, size = self.block(h, raw, f"stage{stage}.block{number}", c_in, width,
                                          stride, size)
                c_in = width
        self.head(h, raw, c_in)
        graph = helper.make_graph(
            self.weight_nodes + self.nodes, f"{spec.name.replace('-', '_')}_qdq",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                           ["batch", 3, spec.image, spec.image])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                           ["batch", spec.classes])],
            self.initializers, value_info=self.value_info)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="onnx.quantize", producer_version="0.1.0")
        model.ir_version = IR_VERSION
        return model


def build_model(spec: ModelSpec) -> onnx.ModelProto:
    """The QDQ ResNet described by *spec*."""
    return _ResNetWriter(spec).model()


def expected_node_count(spec: ModelSpec) -> int:
    """Nodes of :func:`build_model` (*spec*), counted from the topology alone."""
    projections = sum(1 for stage, width in enumerate(spec.widths)
                      if stage > 0 or width != spec.widths[0])
    stem = 7 + (3 if spec.imagenet_stem else 0)
    return stem + 13 * sum(spec.blocks) + 5 * projections + 11


def ensure_models(folder: Path, specs: tuple[ModelSpec, ...] = SPECS) -> dict[str, Path]:
    """Write every model of *specs* into *folder* unless already there: {name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for spec in specs:
        path = folder / spec.file_name()
        if not path.exists():
            model = build_model(spec)
            if len(model.graph.node) != expected_node_count(spec):
                raise AssertionError(f"{spec.name}: {len(model.graph.node)} nodes, expected "
                                     f"{expected_node_count(spec)}")
            onnx.checker.check_model(model, full_check=False)
            partial = path.with_suffix(".tmp")
            partial.write_bytes(model.SerializeToString())
            partial.replace(path)
        paths[spec.name] = path
    return paths


def describe_models(paths: dict[str, Path]) -> list[dict]:
    """Name, node count, file size and parameter bytes of each model (for the report)."""
    rows = []
    for name, path in paths.items():
        model = onnx.load(str(path))
        rows.append({
            "name": name,
            "nodes": len(model.graph.node),
            "file_bytes": path.stat().st_size,
            "weight_bytes": sum(math.prod(t.dims) * (4 if t.data_type in (1, 6) else 1)
                                for t in model.graph.initializer),
            "ops": dict(sorted(_op_counts(model).items())),
        })
    return rows


def _op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / ".models")
    for row in describe_models(ensure_models(target)):
        print(f"{row['name']:12} {row['nodes']:6} nodes {row['file_bytes'] / 1e6:8.2f} MB")
