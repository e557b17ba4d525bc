"""Build the ResNet8 showcase models: train, fold BatchNorm, export to ONNX, quantize to QDQ.

ResNet8 follows the MLPerf Tiny image-classification topology (32x32x3 input,
a 16-filter stem, three residual stacks of 16/32/64 filters with strides 1/2/2,
8x8 average pooling, a 10-way dense layer). It is trained deterministically on
scikit-learn's bundled handwritten digits (or on a local CIFAR-10 copy with
``--cifar10 DIR``), exported with BatchNorm folded into the convolutions, and
quantized with ONNX Runtime's ``quantize_static`` in QDQ format, MinMax
calibrated on the calibration split. Outputs, all under ``--output-dir``::

    resnet8_fp32.onnx               float model, BatchNorm folded
    resnet8_int8.onnx               QInt8 activations, QInt8 weights, per-tensor
    resnet8_uint8.onnx              QUInt8 activations, QInt8 weights, per-tensor
    resnet8_int8_per_channel.onnx   QInt8 activations, QInt8 weights, per-channel
    resnet8_report.json             data, seeds, tool versions, accuracies, graph counts

Rebuild with ``.venv/bin/python scripts/build_resnet8.py`` (``make models``). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import ast
import collections
import hashlib
import json
import logging
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import sklearn
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

sys.path.insert(0, str(Path(__file__).resolve().parent))
import resnet8_data  # sits next to this script

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPOSITORY_ROOT / "models"
REPORT_NAME = "resnet8_report.json"
FP32_NAME = "resnet8_fp32.onnx"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 18
TORCH_THREADS = 2
EXPORT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that decides the trained weights, recorded verbatim in the report."""

    epochs: int
    seed: int
    batch_size: int = 32
    optimizer: str = "Adam"
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine annealing to 0 over all epochs, stepped per epoch"
    loss: str = "cross-entropy"
    torch_threads: int = TORCH_THREADS


@dataclass(frozen=True)
class QuantizationVariant:
    """One ``quantize_static`` configuration and the file it writes."""

    key: str
    file_name: str
    activation_type: QuantType
    weight_type: QuantType
    per_channel: bool

    def settings(self) -> dict[str, object]:
        """The configuration as plain JSON values."""
        return {
            "quant_format": "QDQ",
            "calibrate_method": "MinMax",
            "activation_type": self.activation_type.name,
            "weight_type": self.weight_type.name,
            "per_channel": self.per_channel,
        }


QUANTIZATION_VARIANTS = (
    QuantizationVariant("int8", "resnet8_int8.onnx", QuantType.QInt8, QuantType.QInt8, False),
    QuantizationVariant("uint8", "resnet8_uint8.onnx", QuantType.QUInt8, QuantType.QInt8, False),
    QuantizationVariant(
        "int8_per_channel", "resnet8_int8_per_channel.onnx", QuantType.QInt8, QuantType.QInt8, True
    ),
)


# --------------------------------------------------------------------------- model


class ResidualStack(nn.Module):
    """Two 3x3 conv + BN layers, a 1x1 projection shortcut when the shape changes, Add, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(residual + self.shortcut(x))


class ResNet8(nn.Module):
    """ResNet8 in the MLPerf Tiny image-classification topology."""

    def __init__(self, num_classes: int = resnet8_data.NUM_CLASSES) -> None:
        super().__init__()
        self.conv = nn.Conv2d(resnet8_data.CHANNELS, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.stack1 = ResidualStack(16, 16, stride=1)
        self.stack2 = ResidualStack(16, 32, stride=2)
        self.stack3 = ResidualStack(32, 64, stride=2)
        self.pool = nn.AvgPool2d(resnet8_data.IMAGE_SIZE // 4)
        self.flatten = nn.Flatten()
        self.dense = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        x = self.stack3(self.stack2(self.stack1(x)))
        return self.dense(self.flatten(self.pool(x)))


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable parameters, and the count Keras reports (BatchNorm running statistics included)."""
    trainable = sum(parameter.numel() for parameter in model.parameters())
    running_statistics = sum(
        module.running_mean.numel() + module.running_var.numel()
        for module in model.modules()
        if isinstance(module, nn.BatchNorm2d)
    )
    return {"trainable": trainable, "with_batchnorm_statistics": trainable + running_statistics}


def fold_batch_norms(model: ResNet8) -> ResNet8:
    """Fold every BatchNorm into the convolution before it (eval mode), in place."""
    model.eval()
    pairs = [(model, "conv", "bn")]
    for stack in (model.stack1, model.stack2, model.stack3):
        pairs += [(stack, "conv1", "bn1"), (stack, "conv2", "bn2")]
    for owner, conv_name, bn_name in pairs:
        folded = fuse_conv_bn_eval(getattr(owner, conv_name), getattr(owner, bn_name))
        setattr(owner, conv_name, folded)
        setattr(owner, bn_name, nn.Identity())
    return model


# --------------------------------------------------------------------------- training


class _PreProcessingAdviceFilter(logging.Filter):
    """Mute ONNX Runtime's advice to run ``quant_pre_process``: the export already folded and shape-inferred."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quiet_tool_logging() -> None:
    """Keep the console to our summary: no torchvision-missing notes, no pre-processing advice."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger().addFilter(_PreProcessingAdviceFilter())


def make_deterministic(seed: int) -> None:
    """Fixed seeds, deterministic kernels, a fixed thread count."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(TORCH_THREADS)


def train(model: ResNet8, splits: resnet8_data.ImageSplits, settings: TrainingSettings) -> dict[str, float]:
    """Train in place; returns the last epoch's mean loss and accuracy on the training split."""
    images = torch.from_numpy(splits.train_images)
    labels = torch.from_numpy(splits.train_labels)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    shuffle = torch.Generator().manual_seed(settings.seed)
    loss_function = nn.CrossEntropyLoss()
    epoch_loss = epoch_accuracy = float("nan")
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(labels), generator=shuffle)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            optimizer.zero_grad()
            logits = model(images[batch])
            loss = loss_function(logits, labels[batch])
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(batch)
            correct += int((logits.argmax(dim=1) == labels[batch]).sum())
        scheduler.step()
        epoch_loss, epoch_accuracy = loss_sum / len(order), correct / len(order)
        print(f"  epoch {epoch + 1:3d}/{settings.epochs}: loss {epoch_loss:.4f}, train top-1 {epoch_accuracy:.2%}")
    return {"final_train_loss": round(epoch_loss, 6), "final_train_top1": round(epoch_accuracy, 6)}


def torch_logits(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """Eval-mode logits for a batch of images."""
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


# --------------------------------------------------------------------------- export


def export_fp32(model: ResNet8, path: Path) -> onnx.ModelProto:
    """Export the folded model (dynamic batch), give it stable readable names, infer shapes, save."""
    example = torch.zeros(1, resnet8_data.CHANNELS, resnet8_data.IMAGE_SIZE, resnet8_data.IMAGE_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,
            verbose=False,
        )
    exported = program.model_proto
    name_nodes_by_module(exported.graph)
    strip_export_metadata(exported)
    inferred = onnx.shape_inference.infer_shapes(exported, check_type=True, strict_mode=True)
    onnx.checker.check_model(inferred, full_check=True)
    if any(node.op_type == "BatchNormalization" for node in inferred.graph.node):
        raise RuntimeError("BatchNormalization survived the export; folding failed")
    onnx.save_model(inferred, path)
    return inferred


def module_path_of(node: onnx.NodeProto) -> str:
    """The PyTorch module that produced a node ('stack2.shortcut'), from the exporter's metadata."""
    for entry in node.metadata_props:
        if entry.key == "pkg.torch.onnx.name_scopes":
            scopes = [scope for scope in ast.literal_eval(entry.value) if scope]
            return scopes[-2] if len(scopes) >= 2 else ""
    return ""


def name_nodes_by_module(graph: onnx.GraphProto) -> None:
    """Rename nodes to 'stack1/conv1/Conv', their outputs to '<node>_output_<i>', helper constants by schema.

    Parameters keep their PyTorch names ('stack1.conv1.weight'); the graph input
    and output keep theirs. The names depend only on the module tree, so they are
    stable across exporter versions and reruns.
    """
    kept = {value.name for value in graph.input} | {value.name for value in graph.output}
    parameters = {initializer.name for initializer in graph.initializer if "." in initializer.name}
    renamed: dict[str, str] = {}
    used: set[str] = set()
    for node in graph.node:
        base = "/".join([*module_path_of(node).split("."), node.op_type]).lstrip("/")
        name, suffix = base, 1
        while name in used:
            name, suffix = f"{base}_{suffix}", suffix + 1
        used.add(name)
        node.name = name
        for index, output in enumerate(node.output):
            if output not in kept:
                renamed[output] = f"{name}_output_{index}"
        schema = onnx.defs.get_schema(node.op_type, OPSET, node.domain)
        for index, value in enumerate(node.input):
            if value and value not in kept and value not in parameters and value not in renamed:
                renamed[value] = f"{name}_{schema.inputs[min(index, len(schema.inputs) - 1)].name}"
    for node in graph.node:
        node.input[:] = [renamed.get(value, value) for value in node.input]
        node.output[:] = [renamed.get(value, value) for value in node.output]
    for initializer in graph.initializer:
        initializer.name = renamed.get(initializer.name, initializer.name)
    del graph.value_info[:]


def strip_export_metadata(model: onnx.ModelProto) -> None:
    """Drop exporter metadata (stack traces with absolute paths, FX dumps) and doc strings."""
    del model.metadata_props[:]
    model.doc_string = ""
    model.graph.doc_string = ""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in [*model.graph.input, *model.graph.output, *model.graph.initializer]:
        del value.metadata_props[:]
        value.doc_string = ""


# --------------------------------------------------------------------------- quantization


class ImageBatchReader(CalibrationDataReader):
    """Feeds the calibration split to ``quantize_static`` in fixed-size batches."""

    def __init__(self, images: np.ndarray, batch_size: int = 50) -> None:
        self._batches = iter([images[start : start + batch_size] for start in range(0, len(images), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantize_variant(fp32_path: Path, variant: QuantizationVariant, output_dir: Path, images: np.ndarray) -> Path:
    """Write one QDQ model, MinMax-calibrated on ``images``."""
    path = output_dir / variant.file_name
    quantize_static(
        model_input=fp32_path,
        model_output=path,
        calibration_data_reader=ImageBatchReader(images),
        quant_format=QuantFormat.QDQ,
        activation_type=variant.activation_type,
        weight_type=variant.weight_type,
        per_channel=variant.per_channel,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return path


# --------------------------------------------------------------------------- evaluation and report


def onnxruntime_logits(path: Path, images: np.ndarray) -> np.ndarray:
    """Logits from ONNX Runtime on the CPU (QDQ models run as integer kernels after fusion)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = TORCH_THREADS
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]


def describe_model(path: Path, logits: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Graph facts and test accuracy of one written model."""
    model = onnx.load(path)
    op_counts = collections.Counter(node.op_type for node in model.graph.node)
    default_opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    data = path.read_bytes()
    return {
        "file": path.name,
        "file_size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "opset": default_opset,
        "ir_version": model.ir_version,
        "inputs": [value.name for value in model.graph.input],
        "outputs": [value.name for value in model.graph.output],
        "node_count": len(model.graph.node),
        "initializer_count": len(model.graph.initializer),
        "op_counts": dict(sorted(op_counts.items())),
        "quantize_linear_count": op_counts["QuantizeLinear"],
        "dequantize_linear_count": op_counts["DequantizeLinear"],
        "node_names": [node.name for node in model.graph.node],
        "test_correct": int(np.sum(np.argmax(logits, axis=1) == labels)),
        "test_top1_accuracy": resnet8_data.top1_accuracy(logits, labels),
    }


def tool_versions() -> dict[str, str]:
    """Versions of everything that shapes the outputs."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def dataset_record(splits: resnet8_data.ImageSplits) -> dict[str, object]:
    """What the report says about the data."""
    if splits.dataset == "sklearn-digits":
        preparation = (
            "sklearn.datasets.load_digits 8x8 images (0..16), nearest-neighbour upscaled x4 to 32x32, "
            "grey repeated to 3 channels, divided by 16 to [0, 1]; stratified train_test_split"
        )
    else:
        preparation = "CIFAR-10 python batches divided by 255 to [0, 1]; calibration split stratified from data_batch_*"
    return {
        "name": splits.dataset,
        "preparation": preparation,
        "input_layout": "NCHW float32 [batch, 3, 32, 32]",
        "split_seed": splits.split_seed,
        "split_sizes": splits.split_sizes(),
    }


def write_report(path: Path, report: dict[str, object]) -> None:
    """Pretty-printed JSON with sorted keys, so reruns differ only where results differ."""
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- command line


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where the models and report go")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weight init and shuffling (default 0)")
    parser.add_argument("--cifar10", type=Path, metavar="DIR", help="train on a local CIFAR-10 copy instead of digits")
    return parser.parse_args(argv)


def build(arguments: argparse.Namespace) -> dict[str, object]:
    """Train, export, quantize, evaluate; returns the report (also written to disk)."""
    output_dir: Path = arguments.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    settings = TrainingSettings(epochs=arguments.epochs, seed=arguments.seed)
    quiet_tool_logging()
    make_deterministic(settings.seed)
    if arguments.cifar10:
        splits = resnet8_data.load_cifar10_splits(arguments.cifar10)
    else:
        splits = resnet8_data.load_digits_splits()
    print(f"data: {splits.dataset}, splits {splits.split_sizes()}")

    model = ResNet8()
    counts = parameter_counts(model)
    print(f"ResNet8: {counts['trainable']:,} trainable parameters "
          f"({counts['with_batchnorm_statistics']:,} with BatchNorm statistics, as Keras counts)")
    started = time.perf_counter()
    training_result = train(model, splits, settings)
    training_seconds = time.perf_counter() - started

    reference = torch_logits(model, splits.test_images)
    fold_batch_norms(model)
    folded_difference = float(np.max(np.abs(torch_logits(model, splits.test_images) - reference)))
    fp32_path = output_dir / FP32_NAME
    export_fp32(model, fp32_path)
    logits = {"fp32": onnxruntime_logits(fp32_path, splits.test_images)}
    export_difference = float(np.max(np.abs(logits["fp32"] - reference)))
    if max(folded_difference, export_difference) > EXPORT_TOLERANCE:
        raise RuntimeError(f"folded/exported logits drift from PyTorch: {folded_difference}, {export_difference}")

    paths = {"fp32": fp32_path}
    for variant in QUANTIZATION_VARIANTS:
        paths[variant.key] = quantize_variant(fp32_path, variant, output_dir, splits.calibration_images)
        logits[variant.key] = onnxruntime_logits(paths[variant.key], splits.test_images)

    models = {key: describe_model(path, logits[key], splits.test_labels) for key, path in paths.items()}
    models["fp32"]["quantization"] = None
    fp32_predictions = np.argmax(logits["fp32"], axis=1)
    for variant in QUANTIZATION_VARIANTS:
        models[variant.key]["quantization"] = variant.settings()
        agreement = np.mean(np.argmax(logits[variant.key], axis=1) == fp32_predictions)
        models[variant.key]["test_agreement_with_fp32"] = float(agreement)

    report = {
        "command": rebuild_command(arguments),
        "dataset": dataset_record(splits),
        "seeds": {"training": settings.seed, "split": splits.split_seed},
        "tools": tool_versions(),
        "training": {**asdict(settings), **training_result},
        "model": {
            "topology": "ResNet8, MLPerf Tiny image classification (stem 16; stacks 16/32/64, strides 1/2/2; "
            "1x1 projection shortcuts; 8x8 average pool; dense 10)",
            "parameters": counts["trainable"],
            "parameters_with_batchnorm_statistics": counts["with_batchnorm_statistics"],
            "parameters_after_batchnorm_folding": parameter_counts(model)["trainable"],
            "input_name": INPUT_NAME,
            "input_shape": ["batch", resnet8_data.CHANNELS, resnet8_data.IMAGE_SIZE, resnet8_data.IMAGE_SIZE],
            "output_name": OUTPUT_NAME,
            "output_shape": ["batch", resnet8_data.NUM_CLASSES],
        },
        "test_top1_accuracy": {key: description["test_top1_accuracy"] for key, description in models.items()},
        "models": models,
    }
    write_report(output_dir / REPORT_NAME, report)
    print_summary(report, training_seconds, max(folded_difference, export_difference), output_dir)
    return report


def rebuild_command(arguments: argparse.Namespace) -> str:
    """The command line that rebuilds these outputs (output directory left at its default)."""
    command = f".venv/bin/python scripts/build_resnet8.py --epochs {arguments.epochs} --seed {arguments.seed}"
    return command + (" --cifar10 DIR" if arguments.cifar10 else "")


def print_summary(report: dict, training_seconds: float, logit_drift: float, output_dir: Path) -> None:
    print(f"training took {training_seconds:.1f} s; folded/exported logits within {logit_drift:.2e} of PyTorch")
    for description in report["models"].values():
        print(
            f"  {description['file']:32s} top-1 {description['test_top1_accuracy']:.2%}  "
            f"{description['node_count']:3d} nodes  Q {description['quantize_linear_count']:2d}  "
            f"DQ {description['dequantize_linear_count']:2d}  {description['file_size_bytes']:,} bytes"
        )
    print(f"report: {output_dir / REPORT_NAME}")


def main(argv: list[str] | None = None) -> int:
    build(parse_arguments(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
