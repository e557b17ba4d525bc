"""Quantize the committed FP32 ResNet8 in the two other ONNX formats.

The QDQ models come from ``build_resnet8.py``; this script starts from the same
``models/resnet8_fp32.onnx`` and the same calibration split and writes::

    resnet8_qoperator.onnx   quantize_static, QuantFormat.QOperator, QInt8 activations and
                             weights, per-tensor, MinMax (the settings of resnet8_int8.onnx)
    resnet8_dynamic.onnx     quantize_dynamic, QInt8 weights (Conv and Gemm)
    resnet8_formats.json     tool versions, op counts, sha256 and test accuracy of each

Nothing is trained or downloaded (the data are scikit-learn's bundled digits); the
outputs are deterministic for given tool versions. Run from the repository root::

    .venv/bin/python scripts/build_formats.py
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import resnet8_data  # sits next to this script

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
MODELS = REPOSITORY_ROOT / "models"
FP32_NAME = "resnet8_fp32.onnx"
QOPERATOR_NAME = "resnet8_qoperator.onnx"
DYNAMIC_NAME = "resnet8_dynamic.onnx"
REPORT_NAME = "resnet8_formats.json"
INPUT_NAME = "input"


class ImageBatchReader(CalibrationDataReader):
    """The calibration split in batches of 50 (as build_resnet8.py feeds it)."""

    def __init__(self, images: np.ndarray, batch_size: int = 50) -> None:
        self._batches = iter([images[i:i + batch_size] for i in range(0, len(images), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def build_qoperator(fp32: Path, target: Path, calibration: np.ndarray) -> None:
    quantize_static(model_input=fp32, model_output=target,
                    calibration_data_reader=ImageBatchReader(calibration),
                    quant_format=QuantFormat.QOperator, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=False,
                    calibrate_method=CalibrationMethod.MinMax)


def build_dynamic(fp32: Path, target: Path) -> None:
    quantize_dynamic(model_input=fp32, model_output=target, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["Conv", "Gemm", "MatMul"])


def accuracy(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    logits = session.run(None, {INPUT_NAME: images})[0]
    return resnet8_data.top1_accuracy(logits, labels)


def describe(path: Path, images: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    model = onnx.load(str(path))
    counts = collections.Counter(
        (f"{n.domain}." if n.domain not in ("", "ai.onnx") else "") + n.op_type
        for n in model.graph.node)
    return {
        "file": path.name,
        "file_size_bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "node_count": len(model.graph.node),
        "op_counts": dict(sorted(counts.items())),
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "test_top1_accuracy": accuracy(path, images, labels),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=MODELS,
                        help="where the models and report go (default: models/)")
    arguments = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's pre-processing advice
    output = arguments.output_dir
    output.mkdir(parents=True, exist_ok=True)
    fp32 = MODELS / FP32_NAME
    splits = resnet8_data.load_digits_splits()
    build_qoperator(fp32, output / QOPERATOR_NAME, splits.calibration_images)
    build_dynamic(fp32, output / DYNAMIC_NAME)
    report = {
        "command": "scripts/build_formats.py",
        "source": FP32_NAME,
        "tools": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "qoperator": {"settings": "quantize_static, QOperator, QInt8/QInt8, per-tensor, "
                                  "MinMax on the calibration split",
                      **describe(output / QOPERATOR_NAME, splits.test_images,
                                 splits.test_labels)},
        "dynamic": {"settings": "quantize_dynamic, QInt8 weights, Conv/Gemm/MatMul",
                    **describe(output / DYNAMIC_NAME, splits.test_images, splits.test_labels)},
    }
    (output / REPORT_NAME).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    for key in ("qoperator", "dynamic"):
        entry = report[key]
        print(f"{entry['file']}: {entry['node_count']} nodes, {entry['file_size_bytes']:,} "
              f"bytes, test top-1 {entry['test_top1_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
