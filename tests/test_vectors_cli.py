"""``qdq-graph vectors``: one group's test vectors as .npy files and a C header, checked
against the model's initializers (numpy_helper), exact fixed-point arithmetic and the
float64 QDQ oracle of test_integer_reference."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from onnx import numpy_helper
from test_integer_reference import QdqOracle

from sphinxext_qdq import cli

C_ARRAY = re.compile(r"static const (\w+) (\w+)\[(\d+)\] = \{([^}]*)\};")
C_DEFINE = re.compile(r"#define (\w+) \((-?\d+)\)")
C_TYPES = {"int8_t": np.int8, "uint8_t": np.uint8, "int32_t": np.int32, "int16_t": np.int16,
           "uint16_t": np.uint16}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factories.save(factories.tiny_resnet_qdq(), tmp_path_factory.mktemp("vec") / "tiny.onnx")


def run_vectors(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, list[str], str]:
    status = cli.main(["vectors", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def parse_header(text: str) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    arrays = {name: np.array([int(v) for v in body.replace("\n", " ").split(",") if v.strip()],
                             C_TYPES[c_type])
              for c_type, name, _size, body in C_ARRAY.findall(text)}
    for c_type, name, size, _body in C_ARRAY.findall(text):
        assert arrays[name].size == int(size), name
    return arrays, {name: int(value) for name, value in C_DEFINE.findall(text)}


def test_conv_vectors_match_the_model_and_the_oracle(tiny: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    status, written, err = run_vectors(capsys, tiny, "--node", "conv1", "-o", tmp_path,
                                       "--seed", 5)
    assert status == 0 and err == ""
    names = ["input", "weight", "bias", "multiplier", "shift", "output"]
    assert written == [str(tmp_path / f"conv1_{n}.npy") for n in names] + [str(tmp_path / "conv1.h")]
    arrays = {n: np.load(tmp_path / f"conv1_{n}.npy", allow_pickle=False) for n in names}
    proto = onnx.load(str(tiny))
    oracle = QdqOracle(proto)
    conv = oracle.nodes["conv1"]
    weight_dq, bias_dq = oracle.producer[conv.input[1]], oracle.producer[conv.input[2]]
    np.testing.assert_array_equal(arrays["weight"], oracle.values[weight_dq.input[0]])
    np.testing.assert_array_equal(arrays["bias"], oracle.values[bias_dq.input[0]])
    assert arrays["input"].dtype == np.uint8 and arrays["input"].shape == factories.TINY_INPUT_SHAPE
    assert arrays["input"].min() < 20 and arrays["input"].max() > 235  # spread over the range
    # the multiplier: M0 * 2^-(31+n) is s_x s_w / s_y to half a Q31 step
    x_dq = oracle.producer[conv.input[0]]
    (y_q,) = oracle.readers[conv.output[0]]
    real = Fraction(float(oracle.values[x_dq.input[1]])) * Fraction(float(
        oracle.values[weight_dq.input[1]])) / Fraction(float(oracle.values[y_q.input[1]]))
    (m0,), (n,) = arrays["multiplier"].tolist(), arrays["shift"].tolist()
    assert abs(Fraction(m0, 2 ** (31 + n)) - real) <= Fraction(1, 2 ** (32 + n))
    _, expected = oracle.run("conv1", {x_dq.input[0]: arrays["input"]})
    np.testing.assert_array_equal(arrays["output"], expected)
    header_arrays, defines = parse_header((tmp_path / "conv1.h").read_text())
    for name in names:
        np.testing.assert_array_equal(header_arrays[f"conv1_{name}"], arrays[name].reshape(-1))
        assert header_arrays[f"conv1_{name}_shape"].tolist() == list(arrays[name].shape)
    assert defines["CONV1_INPUT_ZERO_POINT"] == int(oracle.values[x_dq.input[2]])
    assert defines["CONV1_OUTPUT_ZERO_POINT"] == int(oracle.values[y_q.input[2]])
    assert (defines["CONV1_OUTPUT_MIN"], defines["CONV1_OUTPUT_MAX"]) == (0, 255)
    assert header_arrays["conv1_pads"].tolist() == [1, 1, 1, 1]


def test_add_vectors_have_two_inputs(tiny: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    status, written, _ = run_vectors(capsys, tiny, "--node", "add", "-o", tmp_path,
                                     "--batch", 3, "--name", "residual")
    assert status == 0
    assert [Path(p).name for p in written] == [
        "residual_input0.npy", "residual_input1.npy", "residual_multiplier.npy",
        "residual_shift.npy", "residual_output.npy", "residual.h"]
    oracle = QdqOracle(onnx.load(str(tiny)))
    add = oracle.nodes["add"]
    a, b = (np.load(tmp_path / f"residual_input{i}.npy") for i in (0, 1))
    assert a.shape[0] == 3 and not np.array_equal(a, b)
    _, expected = oracle.run("add", {oracle.integer_input(add.input[0]): a,
                                     oracle.integer_input(add.input[1]): b})
    np.testing.assert_array_equal(np.load(tmp_path / "residual_output.npy"), expected)
    assert np.load(tmp_path / "residual_multiplier.npy").shape == (2,)


def test_inputs_from_model_inputs_follow_the_quantized_path(tiny: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    images = np.random.default_rng(2).normal(0, 1, (2, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    status, _, _ = run_vectors(capsys, tiny, "--node", "conv2", "-o", tmp_path / "out",
                               "--inputs", tmp_path / "images.npy")
    assert status == 0
    oracle = QdqOracle(onnx.load(str(tiny)))
    x_q = next(n for n in oracle.nodes.values()
               if n.op_type == "QuantizeLinear" and n.input[0] == "input")
    scale, zero = oracle.values[x_q.input[1]], oracle.values[x_q.input[2]]
    quantized = np.clip(np.rint(images / scale) + int(zero), 0, 255)  # QuantizeLinear, uint8
    _, conv1 = oracle.run("conv1", {x_q.output[0]: quantized})
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "conv2_input.npy"), conv1)


def test_awkward_node_names_become_safe_c(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = factories.tiny_resnet_qdq()
    awkward = 'conv*/1 "x"\n<b>'
    next(n for n in model.graph.node if n.name == "conv1").name = awkward
    path = factories.save(model, tmp_path / "awkward.onnx")
    status, written, _ = run_vectors(capsys, path, "--node", awkward, "-o", tmp_path / "out")
    assert status == 0
    header = Path(written[-1])
    assert header.name == "conv_1_x_b.h"
    text = header.read_text()
    assert text.count("*/") == text.count("/*")  # the name cannot close a comment early
    assert "#ifndef QDQ_CONV_1_X_B_H" in text and awkward not in text


@pytest.mark.parametrize(("argv", "fragments"), [
    (["--node", "nope"], ["'nope' is not the compute node", "conv1", "fc"]),
    (["--node", "input_QuantizeLinear"], ["is not the compute node"]),
    (["--node", "conv1", "--inputs", "missing.npy"], ["missing.npy", "not a readable .npy"]),
    (["--node", "conv1", "--rounding", "nearest"], ["--rounding"]),
    ([], ["--node"]),
])
def test_errors_are_one_line(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                             argv: list[str], fragments: list[str]) -> None:
    status, _, err = run_vectors(capsys, tiny, *argv, "-o", tmp_path)
    assert status == 2 and err.count("\n") == 1 and err.startswith("qdq-graph: error: ")
    for fragment in fragments:
        assert fragment in err


def test_inputs_of_the_wrong_shape_are_an_error(tiny: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((2, 5), np.float32))
    status, _, err = run_vectors(capsys, tiny, "--node", "conv1", "-o", tmp_path / "out",
                                 "--inputs", tmp_path / "flat.npy")
    assert status == 2 and err.startswith("qdq-graph: error: ")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_numpy_helper_reads_the_written_weights_back(tiny: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    status, _, _ = run_vectors(capsys, tiny, "--node", "fc", "-o", tmp_path)
    assert status == 0
    initializers = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tiny)).graph.initializer}
    weight = np.load(tmp_path / "fc_weight.npy")
    assert any(np.array_equal(weight, value) for value in initializers.values())
    assert np.load(tmp_path / "fc_output.npy").shape == (1, factories.TINY_CLASSES)
