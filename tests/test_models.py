"""The committed ResNet8 showcase models agree with their build report and with the issue's spec.

Every fact is recomputed here from the files themselves (onnx, onnx.numpy_helper,
onnxruntime) or from the topology's arithmetic, then compared with
``models/resnet8_report.json``; nothing is copied from the build script.
"""

from __future__ import annotations

import collections
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, numpy_helper
from repository_scripts import script_module

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
MODELS = REPOSITORY_ROOT / "models"
resnet8_data = script_module("resnet8_data")  # the build's own data preparation, numpy + scikit-learn only

MODEL_FILES = {
    "fp32": "resnet8_fp32.onnx",
    "int8": "resnet8_int8.onnx",
    "uint8": "resnet8_uint8.onnx",
    "int8_per_channel": "resnet8_int8_per_channel.onnx",
}
QUANTIZED = ("int8", "uint8", "int8_per_channel")
ACTIVATION_ZERO_POINT_TYPE = {
    "int8": TensorProto.INT8,
    "uint8": TensorProto.UINT8,
    "int8_per_channel": TensorProto.INT8,
}
ACCURACY_TOLERANCE = 0.005


def conv_parameters(in_channels: int, out_channels: int, kernel: int) -> int:
    return kernel * kernel * in_channels * out_channels + out_channels


# MLPerf Tiny ResNet8 after BatchNorm folding: stem, three stacks (two 3x3 convs, 1x1 projections in 2 and 3), dense.
FOLDED_PARAMETERS = (
    conv_parameters(3, 16, 3)
    + 2 * conv_parameters(16, 16, 3)
    + conv_parameters(16, 32, 3) + conv_parameters(32, 32, 3) + conv_parameters(16, 32, 1)
    + conv_parameters(32, 64, 3) + conv_parameters(64, 64, 3) + conv_parameters(32, 64, 1)
    + 64 * 10 + 10
)
BATCHNORM_CHANNELS = 16 + 2 * 16 + 2 * 32 + 2 * 64


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads((MODELS / "resnet8_report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def models() -> dict[str, onnx.ModelProto]:
    return {key: onnx.load(MODELS / name) for key, name in MODEL_FILES.items()}


@pytest.fixture(scope="module")
def digits() -> resnet8_data.ImageSplits:
    return resnet8_data.load_digits_splits()


def initializers_of(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {initializer.name: numpy_helper.to_array(initializer) for initializer in model.graph.initializer}


def constant_dequantizers(model: onnx.ModelProto) -> dict[str, tuple[onnx.NodeProto, int]]:
    """DQ nodes fed by an initializer, keyed by node name, with the input index their consumer reads them at."""
    initializer_names = {initializer.name for initializer in model.graph.initializer}
    consumer_slot = {
        value: index for node in model.graph.node for index, value in enumerate(node.input) if value
    }
    return {
        node.name: (node, consumer_slot[node.output[0]])
        for node in model.graph.node
        if node.op_type == "DequantizeLinear" and node.input[0] in initializer_names
    }


def axis_of(node: onnx.NodeProto) -> int:
    return next((attribute.i for attribute in node.attribute if attribute.name == "axis"), 1)


def run_on_test_split(path: Path, images: np.ndarray) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (input_name,) = [value.name for value in session.get_inputs()]
    return session.run(None, {input_name: images})[0]


# --------------------------------------------------------------------------- report vs files


def test_report_describes_exactly_the_committed_models(report: dict) -> None:
    assert {key: entry["file"] for key, entry in report["models"].items()} == MODEL_FILES
    # resnet18_half_int8.onnx (the "Large models" page) and resnet8_qoperator.onnx /
    # resnet8_dynamic.onnx (scripts/build_formats.py) have reports of their own
    other_formats = json.loads((MODELS / "resnet8_formats.json").read_text(encoding="utf-8"))
    assert sorted(path.name for path in MODELS.glob("resnet8_*.onnx")) == sorted(
        [*MODEL_FILES.values(), *(other_formats[key]["file"] for key in FORMAT_KEYS)])


def test_the_large_models_page_model_matches_its_report() -> None:
    report = json.loads((MODELS / "resnet18_half_report.json").read_text())
    path = MODELS / report["file"]
    assert sorted(p.name for p in MODELS.glob("*.onnx") if not p.name.startswith("resnet8_")) \
        == [report["file"]]
    assert path.stat().st_size == report["bytes"] < 4_000_000
    graph = onnx.load(str(path)).graph
    assert len(graph.node) == report["nodes"]
    assert "/layer2/layer2.0/conv1/Conv" in {node.name for node in graph.node}


# --------------------------------------------------------------------------- other formats
FORMAT_KEYS = ("qoperator", "dynamic")


@pytest.mark.parametrize("key", FORMAT_KEYS)
def test_other_format_models_match_their_report(digits: resnet8_data.ImageSplits,
                                                key: str) -> None:
    """resnet8_qoperator.onnx and resnet8_dynamic.onnx (scripts/build_formats.py): size,
    hash, op counts and test accuracy recomputed from the files."""
    entry = json.loads((MODELS / "resnet8_formats.json").read_text(encoding="utf-8"))[key]
    path = MODELS / entry["file"]
    data = path.read_bytes()
    assert (entry["file_size_bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    model = onnx.load(path)
    counts = collections.Counter(
        (f"{n.domain}." if n.domain not in ("", "ai.onnx") else "") + n.op_type
        for n in model.graph.node)
    assert entry["op_counts"] == dict(counts)
    expected_ops = {"qoperator": {"QLinearConv": 9, "com.microsoft.QLinearAdd": 3,
                                  "com.microsoft.QGemm": 1},
                    "dynamic": {"ConvInteger": 9, "MatMulInteger": 1}}[key]
    assert expected_ops.items() <= counts.items()
    logits = run_on_test_split(path, digits.test_images)
    accuracy = resnet8_data.top1_accuracy(logits, digits.test_labels)
    assert accuracy == pytest.approx(entry["test_top1_accuracy"], abs=ACCURACY_TOLERANCE)
    assert accuracy > 0.95


@pytest.mark.parametrize("key", MODEL_FILES)
def test_file_size_and_hash_match_report(report: dict, key: str) -> None:
    data = (MODELS / MODEL_FILES[key]).read_bytes()
    assert report["models"][key]["file_size_bytes"] == len(data)
    assert report["models"][key]["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(data) < 400_000


@pytest.mark.parametrize("key", MODEL_FILES)
def test_graph_counts_and_names_match_report(report: dict, models: dict, key: str) -> None:
    graph = models[key].graph
    op_counts = collections.Counter(node.op_type for node in graph.node)
    entry = report["models"][key]
    assert entry["op_counts"] == dict(op_counts)
    assert entry["quantize_linear_count"] == op_counts["QuantizeLinear"]
    assert entry["dequantize_linear_count"] == op_counts["DequantizeLinear"]
    assert entry["node_count"] == len(graph.node)
    assert entry["initializer_count"] == len(graph.initializer)
    assert entry["node_names"] == [node.name for node in graph.node]
    assert len(set(entry["node_names"])) == len(graph.node)


@pytest.mark.parametrize("key", MODEL_FILES)
def test_opset_io_and_self_containment(report: dict, models: dict, key: str) -> None:
    model = models[key]
    (opset,) = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    assert report["models"][key]["opset"] == opset >= 17
    assert report["models"][key]["ir_version"] == model.ir_version
    onnx.checker.check_model(model)
    assert not any(
        initializer.data_location == TensorProto.EXTERNAL for initializer in model.graph.initializer
    )
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    assert (graph_input.name, graph_output.name) == (report["model"]["input_name"], report["model"]["output_name"])
    input_dims = [dim.dim_param or dim.dim_value for dim in graph_input.type.tensor_type.shape.dim]
    output_dims = [dim.dim_param or dim.dim_value for dim in graph_output.type.tensor_type.shape.dim]
    assert input_dims == report["model"]["input_shape"] == ["batch", 3, 32, 32]
    assert output_dims == report["model"]["output_shape"] == ["batch", 10]


# --------------------------------------------------------------------------- topology


def test_fp32_model_is_resnet8_with_batchnorm_folded(models: dict) -> None:
    counts = collections.Counter(node.op_type for node in models["fp32"].graph.node)
    assert counts == {"Conv": 9, "Relu": 7, "Add": 3, "AveragePool": 1, "Reshape": 1, "Gemm": 1}
    float_parameters = sum(
        array.size for array in initializers_of(models["fp32"]).values() if array.dtype == np.float32
    )
    assert float_parameters == FOLDED_PARAMETERS


def test_parameter_counts_follow_the_topology(report: dict) -> None:
    assert report["model"]["parameters_after_batchnorm_folding"] == FOLDED_PARAMETERS
    assert report["model"]["parameters"] == FOLDED_PARAMETERS + 2 * BATCHNORM_CHANNELS
    assert report["model"]["parameters_with_batchnorm_statistics"] == FOLDED_PARAMETERS + 4 * BATCHNORM_CHANNELS
    assert 75_000 < report["model"]["parameters"] < 80_000


def test_shortcuts_project_only_where_the_shape_changes(models: dict) -> None:
    adds = {node.name: list(node.input) for node in models["fp32"].graph.node if node.op_type == "Add"}
    assert adds == {
        "stack1/Add": ["stack1/conv2/Conv_output_0", "relu/Relu_output_0"],
        "stack2/Add": ["stack2/conv2/Conv_output_0", "stack2/shortcut/Conv_output_0"],
        "stack3/Add": ["stack3/conv2/Conv_output_0", "stack3/shortcut/Conv_output_0"],
    }
    strides = {
        node.name: [list(attribute.ints) for attribute in node.attribute if attribute.name == "strides"]
        for node in models["fp32"].graph.node
        if node.op_type == "Conv"
    }
    assert strides["stack1/conv1/Conv"] == [[1, 1]]
    assert strides["stack2/conv1/Conv"] == strides["stack2/shortcut/Conv"] == [[2, 2]]
    assert strides["stack3/conv1/Conv"] == strides["stack3/shortcut/Conv"] == [[2, 2]]


@pytest.mark.parametrize("key", QUANTIZED)
def test_float_operators_read_only_dequantized_tensors(models: dict, key: str) -> None:
    graph = models[key].graph
    producer = {output: node for node in graph.node for output in node.output}
    initializer_names = {initializer.name for initializer in graph.initializer}
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for value in node.input:
            if value not in initializer_names:
                assert producer[value].op_type == "DequantizeLinear", (node.name, value)
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            consumers = [other.op_type for other in graph.node if node.output[0] in other.input]
            assert consumers == ["DequantizeLinear"], node.name


@pytest.mark.parametrize("key", QUANTIZED)
def test_names_the_documentation_refers_to(models: dict, key: str) -> None:
    nodes = {node.name: node for node in models[key].graph.node}
    assert list(nodes["conv/Conv"].input) == [
        "input_DequantizeLinear_Output",
        "conv.weight_DequantizeLinear_Output",
        "conv.bias",
    ]
    assert list(nodes["input_QuantizeLinear"].input) == ["input", "input_scale", "input_zero_point"]
    assert nodes["stack2/Add"].op_type == "Add"
    assert list(nodes["dense/Gemm"].input)[1:] == ["dense.weight_DequantizeLinear_Output", "dense.bias"]
    assert list(nodes["conv.weight_DequantizeLinear"].input) == [
        "conv.weight_quantized",
        "conv.weight_scale",
        "conv.weight_zero_point",
    ]


# --------------------------------------------------------------------------- quantization data types


@pytest.mark.parametrize("key", QUANTIZED)
def test_activation_zero_points_have_the_activation_type(models: dict, key: str) -> None:
    tensors = {initializer.name: initializer for initializer in models[key].graph.initializer}
    quantizers = [node for node in models[key].graph.node if node.op_type == "QuantizeLinear"]
    assert quantizers
    for node in quantizers:
        assert tensors[node.input[2]].data_type == ACTIVATION_ZERO_POINT_TYPE[key], node.name
        assert numpy_helper.to_array(tensors[node.input[1]]).ndim == 0, node.name


@pytest.mark.parametrize("key", QUANTIZED)
def test_weights_are_int8_and_biases_int32(models: dict, key: str) -> None:
    arrays = initializers_of(models[key])
    slots = collections.Counter()
    for name, (node, slot) in constant_dequantizers(models[key]).items():
        stored, zero_point = arrays[node.input[0]], arrays[node.input[2]]
        expected = np.int8 if slot == 1 else np.int32
        assert stored.dtype == zero_point.dtype == expected, name
        assert not zero_point.any(), name
        slots[slot] += 1
    assert slots == {1: 10, 2: 10}


@pytest.mark.parametrize("key", ("int8", "uint8"))
def test_per_tensor_models_have_one_weight_scale_per_tensor(models: dict, key: str) -> None:
    arrays = initializers_of(models[key])
    for name, (node, slot) in constant_dequantizers(models[key]).items():
        if slot == 1:
            assert arrays[node.input[1]].ndim == 0, name


def test_per_channel_model_has_one_weight_scale_per_output_channel(models: dict) -> None:
    arrays = initializers_of(models["int8_per_channel"])
    weights = 0
    for name, (node, slot) in constant_dequantizers(models["int8_per_channel"]).items():
        if slot != 1:
            continue
        scale, stored = arrays[node.input[1]], arrays[node.input[0]]
        assert scale.ndim == 1 and axis_of(node) == 0, name
        assert scale.shape == (stored.shape[0],), name
        assert np.all(scale > 0), name
        weights += 1
    assert weights == 10


# --------------------------------------------------------------------------- accuracy


def test_report_names_the_split_the_tests_use(report: dict, digits: resnet8_data.ImageSplits) -> None:
    assert report["dataset"]["name"] == digits.dataset == "sklearn-digits"
    assert report["dataset"]["split_seed"] == report["seeds"]["split"] == digits.split_seed
    assert report["dataset"]["split_sizes"] == {
        "train": len(digits.train_labels),
        "calibration": len(digits.calibration_labels),
        "test": len(digits.test_labels),
    }


@pytest.mark.parametrize("key", MODEL_FILES)
def test_accuracy_recomputed_with_onnxruntime(report: dict, digits: resnet8_data.ImageSplits, key: str) -> None:
    logits = run_on_test_split(MODELS / MODEL_FILES[key], digits.test_images)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == digits.test_labels))
    assert abs(accuracy - report["models"][key]["test_top1_accuracy"]) <= ACCURACY_TOLERANCE
    assert report["test_top1_accuracy"][key] == report["models"][key]["test_top1_accuracy"]
    assert accuracy > 0.9


def test_quantized_accuracy_is_close_to_fp32(report: dict) -> None:
    fp32 = report["test_top1_accuracy"]["fp32"]
    for key in QUANTIZED:
        assert abs(report["test_top1_accuracy"][key] - fp32) <= 0.02, key


# --------------------------------------------------------------------------- data preparation


def test_upscaling_turns_each_digit_pixel_into_a_4x4_block_on_three_channels() -> None:
    digit = np.zeros((1, 8, 8))
    digit[0, 2, 5] = 16.0
    digit[0, 7, 0] = 4.0
    images = resnet8_data.upscale_digits(digit)
    expected = np.zeros((1, 3, 32, 32), dtype=np.float32)
    expected[0, :, 8:12, 20:24] = 1.0
    expected[0, :, 28:32, 0:4] = 0.25
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, expected)


def test_digits_split_is_fixed_and_covers_every_class(digits: resnet8_data.ImageSplits) -> None:
    again = resnet8_data.load_digits_splits()
    np.testing.assert_array_equal(again.test_images, digits.test_images)
    np.testing.assert_array_equal(again.calibration_labels, digits.calibration_labels)
    assert sum(digits.split_sizes().values()) == 1797
    for labels in (digits.train_labels, digits.calibration_labels, digits.test_labels):
        assert set(labels.tolist()) == set(range(10))
    assert digits.test_images.shape == (len(digits.test_labels), 3, 32, 32)
    assert 0.0 <= digits.test_images.min() and digits.test_images.max() <= 1.0


def write_cifar10_batch(path: Path, pixels: np.ndarray, labels: list[int]) -> None:
    path.write_bytes(pickle.dumps({b"data": pixels, b"labels": labels}, protocol=2))


def test_cifar10_batches_are_read_as_nchw_in_unit_range(tmp_path: Path) -> None:
    count = 1100
    pixels = np.zeros((count, 3072), dtype=np.uint8)
    pixels[:, 1024] = 255  # green plane, row 0, column 0
    labels = [index % 10 for index in range(count)]
    write_cifar10_batch(tmp_path / "data_batch_1", pixels, labels)
    write_cifar10_batch(tmp_path / "test_batch", pixels[:20], labels[:20])
    splits = resnet8_data.load_cifar10_splits(tmp_path)
    assert splits.split_sizes() == {"train": 100, "calibration": 1000, "test": 20}
    assert splits.test_images.shape == (20, 3, 32, 32)
    assert np.all(splits.test_images[:, 1, 0, 0] == 1.0)
    assert splits.test_images.sum() == 20.0
    assert splits.test_labels.tolist() == labels[:20]


def test_cifar10_reader_refuses_pickles_that_name_other_globals(tmp_path: Path) -> None:
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": collections.OrderedDict()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        resnet8_data.read_cifar10_batch(tmp_path / "data_batch_1")


def test_cifar10_directory_without_batches_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 python batches"):
        resnet8_data.load_cifar10_splits(tmp_path)
