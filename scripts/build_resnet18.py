"""Build the "Large models" showcase: a ResNet-18 (half width) from PyTorch, quantized by ONNX Runtime.

    .venv/bin/python scripts/build_resnet18.py [--out models]

A real architecture, not a generated graph: torchvision's ResNet-18 layout written out
here (torchvision is not needed), at half width (32-64-128-256 channels, so the INT8
file stays a few MB), batch normalisation folded away (each convolution carries a bias,
as after folding), random weights from a fixed seed. Exported with ``torch.onnx.export``
(dynamo), its nodes renamed the way torch.onnx's TorchScript exporter names them
(``/layer1/layer1.0/conv1/Conv``, from the exporter's ``name_scopes`` metadata), then
quantized with ONNX Runtime's ``quantize_static`` (QDQ, UINT8 activations, INT8
per-tensor weights) calibrated on 16 random images. Nothing is downloaded.

Needs the ``model`` extra (``torch==2.13.0``, onnxscript, onnxruntime).
"""

from __future__ import annotations

import argparse
import ast
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from torch import nn

SEED = 0
IMAGE = 224
WIDTHS = (32, 64, 128, 256)
CALIBRATION_IMAGES = 16
NAME = "resnet18_half_int8.onnx"


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride))
                           if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.relu(self.conv1(x))) + identity)


class ResNet18(nn.Module):
    """torchvision's ResNet-18 module names (conv1, layer1.0.conv1 ... fc), BN folded."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, c_in = [], widths[0]
        for number, width in enumerate(widths):
            stride = 1 if number == 0 else 2
            layers.append(nn.Sequential(BasicBlock(c_in, width, stride),
                                        BasicBlock(width, width, 1)))
            c_in = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_float_model(path: Path) -> None:
    torch.manual_seed(SEED)
    model = ResNet18().eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (torch.zeros(1, 3, IMAGE, IMAGE),), dynamo=True,
                                    input_names=["input"], output_names=["logits"],
                                    external_data=False, verbose=False)
    proto = program.model_proto
    name_by_scope(proto.graph)
    for node in proto.graph.node:
        del node.metadata_props[:]
    del proto.metadata_props[:]
    onnx.save_model(onnx.shape_inference.infer_shapes(proto), path)


def name_by_scope(graph: onnx.GraphProto) -> None:
    """``/layer1/layer1.0/conv1/Conv``: the module path from the exporter's metadata, as
    the TorchScript exporter named nodes (a numbered child keeps its parent's name)."""
    used: dict[str, int] = {}
    for node in graph.node:
        scopes: list[str] = []
        for entry in node.metadata_props:
            if entry.key == "pkg.torch.onnx.name_scopes":
                scopes = [scope for scope in ast.literal_eval(entry.value) if scope][:-1]
        parts, previous = [], ""
        for scope in scopes:
            relative = scope[len(previous) + 1:] if previous and scope.startswith(
                previous + ".") else scope
            parts.append(f"{previous.rsplit('.', 1)[-1]}.{relative}" if relative.isdigit()
                         else relative)
            previous = scope
        base = "/" + "/".join([*parts, node.op_type])
        count = used.get(base, 0)
        used[base] = count + 1
        node.name = base if count == 0 else f"{base}_{count}"


class RandomImages(CalibrationDataReader):
    def __init__(self) -> None:
        rng = np.random.default_rng(SEED)
        self.batches = iter([{"input": rng.standard_normal((1, 3, IMAGE, IMAGE),
                                                           dtype=np.float32)}
                             for _ in range(CALIBRATION_IMAGES)])

    def get_next(self) -> dict | None:
        return next(self.batches, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent
                        / "models")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / NAME
    with tempfile.TemporaryDirectory() as folder:
        float_path = Path(folder) / "resnet18_half_fp32.onnx"
        build_float_model(float_path)
        quantize_static(str(float_path), str(target), RandomImages(),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=False)
    model = onnx.load(str(target))
    report = {"file": NAME, "nodes": len(model.graph.node), "bytes": target.stat().st_size,
              "torch": torch.__version__, "onnx": onnx.__version__,
              "onnxruntime": __import__("onnxruntime").__version__, "seed": SEED}
    (args.out / "resnet18_half_report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
