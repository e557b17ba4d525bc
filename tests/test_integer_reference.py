"""The integer-only reference: equal to the real-number semantics of every QDQ group
(an independent float64 oracle reading the protobuf), and to ONNX Runtime's integer
kernels on the ResNet8 test split."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper
from repository_scripts import script_module

from sphinxext_qdq.integer.example import worked_example
from sphinxext_qdq.integer.inputs import load_named_inputs
from sphinxext_qdq.integer.kernels import IntegerReferenceError, centred, zero_point
from sphinxext_qdq.integer.onnxruntime_check import compare_with_onnxruntime
from sphinxext_qdq.integer.program import build_integer_program
from sphinxext_qdq.integer.requant import TensorQuantization

REPOSITORY = Path(__file__).resolve().parent.parent
RESNET8 = REPOSITORY / "models" / "resnet8_int8.onnx"
resnet8_data = script_module("resnet8_data")  # the build's own data preparation


# -- an independent oracle: DQ -> float64 op -> Q ----------------------------------------------
class QdqOracle:
    """What DequantizeLinear -> op -> QuantizeLinear means in real numbers, computed in
    float64 from the protobuf's initializers (no code of the extension involved)."""

    RANGES: ClassVar[dict[int, tuple[int, int]]] = {TensorProto.INT8: (-128, 127), TensorProto.UINT8: (0, 255),
                                                    TensorProto.INT16: (-32768, 32767),
                                                    TensorProto.UINT16: (0, 65535)}

    def __init__(self, proto: onnx.ModelProto) -> None:
        self.values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
        self.producer = {out: node for node in proto.graph.node for out in node.output}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for node in proto.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.nodes = {node.name: node for node in proto.graph.node}

    def dequantized(self, tensor: str, ints: np.ndarray | None = None) -> np.ndarray:
        """Real values of the DQ output *tensor* (its integers given, or an initializer)."""
        dq = self.producer[tensor]
        q = self.values[dq.input[0]] if ints is None else ints
        scale = self.values[dq.input[1]].astype(np.float64)
        zero = self.values[dq.input[2]].astype(np.float64) if len(dq.input) > 2 else 0.0
        if np.ndim(scale) == 1 and scale.size > 1:  # per-axis (axis 0 for these weights)
            shape = [-1] + [1] * (q.ndim - 1)
            scale, zero = scale.reshape(shape), np.reshape(zero, shape)
        return (q.astype(np.float64) - zero) * scale

    def integer_input(self, tensor: str) -> str:
        return self.producer[tensor].input[0]

    def run(self, name: str, ints: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
        """(integer output tensor, its expected values) of the group of node *name*."""
        node = self.nodes[name]
        real = [self.dequantized(t, ints[self.integer_input(t)]) if i == 0 or node.op_type == "Add"
                else self.dequantized(t) if t in self.producer else self.values[t]
                for i, t in enumerate(node.input)]
        y = getattr(self, f"op_{node.op_type}")(node, *real)
        (q,) = self.readers[node.output[0]]
        scale, zero = self.values[q.input[1]], self.values[q.input[2]]
        low, high = self.RANGES[helper.np_dtype_to_tensor_dtype(zero.dtype)]
        return q.output[0], np.clip(np.rint(y / np.float64(scale)) + int(zero), low, high)

    @staticmethod
    def attributes(node: onnx.NodeProto) -> dict:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def op_Conv(self, node: onnx.NodeProto, x: np.ndarray, w: np.ndarray, b: np.ndarray
                ) -> np.ndarray:
        a = self.attributes(node)
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        sh, sw = a.get("strides", [1, 1])
        padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # real zero
        windows = sliding_window_view(padded, w.shape[2:], axis=(2, 3))[:, :, ::sh, ::sw]
        return np.einsum("nchwij,ocij->nohw", windows, w) + b.reshape(1, -1, 1, 1)

    def op_Gemm(self, node: onnx.NodeProto, x: np.ndarray, w: np.ndarray, b: np.ndarray
                ) -> np.ndarray:
        return x @ (w.T if self.attributes(node).get("transB") else w) + b

    def op_Add(self, node: onnx.NodeProto, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def op_AveragePool(self, node: onnx.NodeProto, x: np.ndarray) -> np.ndarray:
        a = self.attributes(node)
        kernel, strides = a["kernel_shape"], a.get("strides", [1, 1])
        windows = sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::strides[0], ::strides[1]]
        return windows.mean(axis=(-2, -1))

    def op_GlobalAveragePool(self, node: onnx.NodeProto, x: np.ndarray) -> np.ndarray:
        return x.mean(axis=(2, 3), keepdims=True)

    def op_Reshape(self, node: onnx.NodeProto, x: np.ndarray, shape: np.ndarray) -> np.ndarray:
        return x.reshape([int(d) for d in shape])

    def op_Flatten(self, node: onnx.NodeProto, x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)


def assert_every_group_matches_the_oracle(path: Path, inputs: np.ndarray) -> int:
    """Each group, fed the reference's own integer inputs, gives the oracle's integers."""
    program = build_integer_program(path)
    values = program.run(inputs)
    oracle = QdqOracle(onnx.load(str(path)))
    for step in program.steps:
        tensor, expected = oracle.run(step.recipe.name, values)
        assert tensor == step.outputs[0]
        np.testing.assert_array_equal(values[tensor], expected, err_msg=step.recipe.name)
    return len(program.steps)


@pytest.mark.parametrize("variant", ["uint8", "per_channel", "int8", "int16"])
def test_every_group_of_ort_quantized_models_equals_real_number_semantics(
        tmp_path: Path, variant: str) -> None:
    model = {"uint8": lambda: factories.tiny_resnet_qdq(),
             "per_channel": lambda: factories.tiny_resnet_qdq(per_channel=True),
             "int8": lambda: factories.tiny_resnet_qdq(activation_type="QInt8"),
             "int16": factories.tiny_resnet_qdq_int16}[variant]()
    path = factories.save(model, tmp_path / "tiny.onnx")
    inputs = np.random.default_rng(7).normal(0, 1.5, (6, *factories.TINY_INPUT_SHAPE[1:]))
    assert assert_every_group_matches_the_oracle(path, inputs.astype(np.float32)) == 7


@pytest.fixture(scope="module")
def test_images() -> np.ndarray:
    return resnet8_data.load_digits_splits().test_images


@pytest.mark.parametrize("name", ["resnet8_int8", "resnet8_uint8", "resnet8_int8_per_channel"])
def test_every_resnet8_group_equals_real_number_semantics(test_images: np.ndarray,
                                                          name: str) -> None:
    path = REPOSITORY / "models" / f"{name}.onnx"
    assert assert_every_group_matches_the_oracle(path, test_images[::45]) == 15


# -- against ONNX Runtime ---------------------------------------------------------------------
def test_resnet8_int8_agrees_with_onnxruntime_on_the_test_split(test_images: np.ndarray) -> None:
    assert len(test_images) == 360
    report = compare_with_onnxruntime(RESNET8, test_images)
    (final,) = report.final
    assert final.elements == 360 * 10
    assert final.exact_fraction >= 0.99
    assert final.max_difference <= 1
    assert report.top1_equal == report.images == 360
    layers = {layer.node: layer for layer in report.layers}
    assert len(layers) == 16  # the input QuantizeLinear and the 15 groups
    assert layers["input"].exact == layers["input"].elements  # QuantizeLinear is exact
    assert all(layer.exact_fraction >= 0.99 for layer in report.layers)
    kernels = dict(report.kernels)
    assert kernels["dense/Gemm"] == "QGemm"  # ORT ran the last group as an integer kernel


def test_onnxruntime_x64_precision_option_reaches_the_sessions(tmp_path: Path) -> None:
    path = factories.save(factories.tiny_resnet_qdq(activation_type="QInt8"), tmp_path / "t.onnx")
    inputs = np.random.default_rng(3).normal(0, 1, (4, *factories.TINY_INPUT_SHAPE[1:]))
    report = compare_with_onnxruntime(path, inputs.astype(np.float32),
                                      session_config={"session.x64quantprecision": "1"})
    assert report.images == 4 and report.final[0].max_difference <= 1


# -- worked example -----------------------------------------------------------------------------
@pytest.mark.parametrize(("node", "weight", "position"), [
    ("conv/Conv", "conv.weight_quantized", (0, 16, 16)),
    ("conv/Conv", "conv.weight_quantized", (5, 0, 31)),  # a corner: zero-point padding
    ("stack2/conv1/Conv", "stack2.conv1.weight_quantized", (7, 0, 0)),
    ("dense/Gemm", "dense.weight_quantized", (3,)),
])
def test_worked_example_recomputes_one_output(test_images: np.ndarray, node: str, weight: str,
                                              position: tuple[int, ...]) -> None:
    program = build_integer_program(RESNET8)
    values = program.run(test_images[:2])
    example = worked_example(program, values, node, image=1, position=position)
    step = program.step(node)
    assert example.output == values[step.outputs[0]][1][position]
    assert example.output == example.float_path
    proto = onnx.load(str(RESNET8))
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert example.weights == tuple(weights[weight][position[0]].reshape(-1))  # transB: row c
    if position[1:] == (0, 0) or position[1:] == (0, 31):
        z_x = example.input_zero_point
        assert example.inputs[:3] == (z_x, z_x, z_x)  # the first kernel row lies in the padding
    assert example.accumulator == example.dot + example.bias
    assert example.product == example.accumulator * example.multiplier.multiplier


@pytest.mark.parametrize(("node", "position"), [
    ("conv/Conv", (0, 32, 0)),  # one row past a 32-row output: the window reads padding only
    ("conv/Conv", (16, 0, 0)),  # the first conv has 16 channels
    ("conv/Conv", (0, 0)),
    ("dense/Gemm", (0, 3)),  # a Gemm element is a column
    ("dense/Gemm", (10,)),  # ten classes
])
def test_worked_example_refuses_a_position_outside_the_output(test_images: np.ndarray,
                                                              node: str, position) -> None:
    program = build_integer_program(RESNET8)
    values = program.run(test_images[:1])
    with pytest.raises(IndexError, match="below"):
        worked_example(program, values, node, position=position)


def test_worked_example_refuses_an_add(test_images: np.ndarray) -> None:
    program = build_integer_program(RESNET8)
    values = program.run(test_images[:1])
    with pytest.raises(IntegerReferenceError):
        worked_example(program, values, "stack1/Add")


# -- what the reference refuses ---------------------------------------------------------------
def qdq(name: str, source: str, scale: str, zero: str) -> list[onnx.NodeProto]:
    return [helper.make_node("QuantizeLinear", [source, scale, zero], [f"{name}_q"],
                             name=f"{name}_Q"),
            helper.make_node("DequantizeLinear", [f"{name}_q", scale, zero], [f"{name}_dq"],
                             name=f"{name}_DQ")]


def test_a_float_op_inside_the_path_is_refused(tmp_path: Path) -> None:
    nodes = [*qdq("x", "x", "s", "z"),
             helper.make_node("Sigmoid", ["x_dq"], ["sig"], name="sigmoid"),
             *qdq("y", "sig", "s", "z")]
    model = factories.make_model(
        nodes, [factories.tensor_input("x", [1, 4])], [factories.tensor_input("y_dq", [1, 4])],
        [factories.scalar("s", 0.05), factories.scalar("z", 0, TensorProto.INT8)])
    path = factories.save(model, tmp_path / "sigmoid.onnx")
    with pytest.raises(IntegerReferenceError, match="not computed in integers"):
        build_integer_program(path)
    assert build_integer_program(path, strict=False).steps == ()


def test_an_accumulator_leaving_int32_is_refused(tmp_path: Path) -> None:
    depth = 70_000  # 70000 * 255 * 127 > 2^31
    nodes = [*qdq("x", "x", "s", "zu"),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["w_dq"], name="w_DQ"),
             helper.make_node("MatMul", ["x_dq", "w_dq"], ["mm"], name="matmul"),
             *qdq("y", "mm", "s", "zu")]
    initializers = [factories.scalar("s", 1.0), factories.scalar("zu", 0, TensorProto.UINT8),
                    numpy_helper.from_array(np.full((depth, 1), 127, np.int8), "w"),
                    factories.scalar("ws", 1.0), factories.scalar("wz", 0, TensorProto.INT8)]
    model = factories.make_model(nodes, [factories.tensor_input("x", [1, depth])],
                                 [factories.tensor_input("y_dq", [1, 1])], initializers)
    program = build_integer_program(factories.save(model, tmp_path / "deep.onnx"))
    with pytest.raises(IntegerReferenceError, match="INT32"):
        program.run(np.full((1, depth), 255, np.float32))
    assert program.run(np.full((1, depth), 1, np.float32))["y_q"].tolist() == [[255]]  # saturated


def test_named_inputs_call_and_read_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    # importable by name for this test only (removed from sys.modules afterwards)
    monkeypatch.setitem(sys.modules, "resnet8_data", script_module("resnet8_data"))
    images = load_named_inputs("resnet8_data:load_digits_splits().test_images")
    assert images.shape == (360, 3, 32, 32) and images.dtype == np.float32
    for bad in ("resnet8_data", "resnet8_data:load_digits_splits(1)", "os:system('x')"):
        with pytest.raises(ValueError):
            load_named_inputs(bad)


# -- the input QuantizeLinear against onnx's reference evaluator ------------------------------
def onnx_quantize(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """What onnx's own ``ReferenceEvaluator`` computes for the model's QuantizeLinear."""
    from onnx.reference import ReferenceEvaluator

    (q,) = [node for node in model.graph.node if node.op_type == "QuantizeLinear"]
    return ReferenceEvaluator(model).run([q.output[0]], {"x": x})[0]


@pytest.mark.parametrize(("scale", "zero_point", "zp_dtype", "x", "expected"), [
    # ties go to the even integer: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0 (not floor(x + 0.5))
    (1.0, 0, TensorProto.INT8, [0.5, 1.5, 2.5, -0.5], [0, 2, 2, 0]),
    (1.0, 10, TensorProto.UINT8, [-1.5, -2.5, 3.5, 200.0], [8, 8, 14, 210]),
    # float32 x / s is exactly 45.5 (a tie: 46); the float64 quotient 45.4999990... gives 45
    (0.054818872, 0, TensorProto.INT8, [2.4942586, -2.4942586, 0.0, 1.0], [46, -46, 0, 18]),
    # saturation at both ends of INT8
    (0.5, -3, TensorProto.INT8, [1000.0, -1000.0, 63.0, -62.5], [127, -128, 123, -128]),
])
def test_input_quantization_equals_onnx_reference_evaluator(
        tmp_path: Path, scale: float, zero_point: int, zp_dtype: int, x: list[float],
        expected: list[int]) -> None:
    model = factories.qdq_pair_model(scale, zero_point, zp_dtype=zp_dtype, shape=(1, len(x)),
                                     opset=19)  # the oldest the evaluator implements
    program = build_integer_program(factories.save(model, tmp_path / "q.onnx"))
    inputs = np.array([x], np.float32)
    (ours,) = program.quantize_inputs(inputs).values()
    theirs = onnx_quantize(model, inputs)
    assert ours.dtype == theirs.dtype
    assert ours.tolist() == theirs.tolist() == [expected]


def test_the_float32_quotient_case_differs_in_float64() -> None:
    """The third case above only tests float32 division if float64 would round otherwise."""
    x, s = np.float32(2.4942586), np.float32(0.054818872)
    assert x / s == np.float32(45.5)
    assert np.rint(np.float64(x) / np.float64(s)) == 45


# -- the INT32 accumulator boundary ----------------------------------------------------------------
def gemm_with_bias_model(bias: int, weight: int) -> onnx.ModelProto:
    """``y = x * weight + bias`` through DQ -> Gemm -> Q, every scale 1 (the accumulator
    is the INT32 sum itself)."""
    nodes = [*qdq("x", "x", "s", "zu"),
             helper.make_node("DequantizeLinear", ["w", "s", "wz"], ["w_dq"], name="w_DQ"),
             helper.make_node("DequantizeLinear", ["b", "s", "bz"], ["b_dq"], name="b_DQ"),
             helper.make_node("Gemm", ["x_dq", "w_dq", "b_dq"], ["mm"], name="gemm"),
             *qdq("y", "mm", "s", "zu")]
    initializers = [factories.scalar("s", 1.0), factories.scalar("zu", 0, TensorProto.UINT8),
                    numpy_helper.from_array(np.array([[weight]], np.int8), "w"),
                    factories.scalar("wz", 0, TensorProto.INT8),
                    numpy_helper.from_array(np.array([bias], np.int32), "b"),
                    factories.vector("bz", [0], TensorProto.INT32)]
    return factories.make_model(nodes, [factories.tensor_input("x", [1, 1])],
                                [factories.tensor_input("y_dq", [1, 1])], initializers)


@pytest.mark.parametrize(("bias", "weight", "x", "in_range"), [
    (2 ** 31 - 3, 1, 2, True),  # 2^31 - 1: the largest INT32
    (2 ** 31 - 3, 1, 3, False),  # 2^31
    (-(2 ** 31) + 2, -1, 2, True),  # -2^31: the smallest INT32
    (-(2 ** 31) + 2, -1, 3, False),  # -2^31 - 1
])
def test_the_accumulator_may_reach_both_int32_limits_but_not_pass_them(
        tmp_path: Path, bias: int, weight: int, x: int, in_range: bool) -> None:
    path = factories.save(gemm_with_bias_model(bias, weight), tmp_path / "gemm.onnx")
    program = build_integer_program(path)
    inputs = np.array([[x]], np.float32)
    if in_range:
        expected = 255 if weight > 0 else 0  # saturated to UINT8
        assert program.run(inputs)["y_q"].tolist() == [[expected]]
    else:
        with pytest.raises(IntegerReferenceError, match="INT32"):
            program.run(inputs)


def add_model(scale_a: float, scale_b: float, scale_y: float = 1.0) -> onnx.ModelProto:
    """``y = a + b`` through DQ -> Add -> Q; *a* and *b* quantized with their own scales."""
    nodes = [*qdq("a", "a", "sa", "z"), *qdq("b", "b", "sb", "z"),
             helper.make_node("Add", ["a_dq", "b_dq"], ["sum"], name="add"),
             *qdq("y", "sum", "sy", "z")]
    initializers = [factories.scalar("sa", scale_a), factories.scalar("sb", scale_b),
                    factories.scalar("sy", scale_y), factories.scalar("z", 0, TensorProto.INT8)]
    return factories.make_model(nodes, [factories.tensor_input("a", [1, 2]),
                                        factories.tensor_input("b", [1, 2])],
                                [factories.tensor_input("y_dq", [1, 2])], initializers)


def test_an_add_whose_scales_differ_beyond_a_64_bit_grid_is_refused(tmp_path: Path) -> None:
    """The two rescaled inputs are summed on one fixed-point grid in int64: scales 2^40
    apart would overflow it, and are refused rather than wrapped around."""
    inputs = {"a": np.array([[100.0, -100.0]], np.float32),
              "b": np.array([[2.0 ** -34, 0.0]], np.float32)}
    near = build_integer_program(factories.save(add_model(1.0, 2.0 ** -8), tmp_path / "n.onnx"))
    assert near.run(inputs)["y_q"].tolist() == [[100, -100]]
    far = build_integer_program(factories.save(add_model(1.0, 2.0 ** -40), tmp_path / "f.onnx"))
    with pytest.raises(IntegerReferenceError, match="64-bit common grid"):
        far.run(inputs)


@pytest.mark.parametrize(("options", "why"), [
    ({"scale": [0.1, 0.2, 0.3, 0.4], "zero_point": 0, "axis": 1}, "per-axis scale"),
    ({"scale": 0.1, "zero_point": 0, "scale_from": "input"}, "scale known at run time only"),
])
def test_an_input_quantization_the_reference_cannot_apply_is_refused(
        tmp_path: Path, options: dict, why: str) -> None:
    model = factories.qdq_pair_model(zp_dtype=TensorProto.INT8, **options)
    program = build_integer_program(factories.save(model, tmp_path / "q.onnx"))
    with pytest.raises(IntegerReferenceError, match="only a known per-tensor quantization"):
        program.quantize_inputs(np.zeros((1, 4), np.float32))


def test_an_add_landing_on_a_tie_rounds_half_to_even(tmp_path: Path) -> None:
    """(a + b) / 2 with integers: ties at .5 go to the even integer, as QuantizeLinear does."""
    program = build_integer_program(factories.save(add_model(1.0, 1.0, 2.0), tmp_path / "t.onnx"))
    inputs = {"a": np.array([[1.0, 3.0]], np.float32), "b": np.array([[0.0, 2.0]], np.float32)}
    assert program.run(inputs)["y_q"].tolist() == [[0, 2]]  # 0.5 -> 0, 2.5 -> 2
    odd = {"a": np.array([[3.0, -3.0]], np.float32), "b": np.array([[0.0, 0.0]], np.float32)}
    assert program.run(odd)["y_q"].tolist() == [[2, -2]]  # 1.5 -> 2, -1.5 -> -2


@pytest.mark.parametrize(("scale_b", "refused"), [(2.0 ** -24, False), (2.0 ** -25, True)])
def test_an_add_term_may_not_reach_2_to_the_62(tmp_path: Path, scale_b: float,
                                               refused: bool) -> None:
    """Each rescaled input of the Add kernel is an int64 term ``(a - z_a) M0 2^extra``;
    two terms below 2^62 cannot overflow their sum. With s_a = s_y = 1 (M0 = 2^30, no
    shift) and s_b = 2^-k, a is moved k bits up to b's grid: a = -128 = -2^7 gives a
    term of 2^(7 + 30 + k), below 2^62 for k = 24, exactly 2^62 for k = 25."""
    program = build_integer_program(factories.save(add_model(1.0, scale_b), tmp_path / "a.onnx"))
    inputs = {"a": np.array([[-128.0, 5.0]], np.float32),
              "b": np.array([[0.0, 0.0]], np.float32)}
    if refused:
        with pytest.raises(IntegerReferenceError, match="64-bit common grid"):
            program.run(inputs)
    else:
        assert program.run(inputs)["y_q"].tolist() == [[-128, 5]]


def test_an_add_input_at_its_zero_point_is_no_overflow(tmp_path: Path) -> None:
    """Scales 2^40 apart are refused only when a value would overflow: an input that is
    all zero points contributes nothing, so a + b with a = 0 is just b rescaled."""
    program = build_integer_program(factories.save(add_model(1.0, 2.0 ** -40, 2.0 ** -40),
                                                   tmp_path / "z.onnx"))
    inputs = {"a": np.zeros((1, 2), np.float32),
              "b": np.array([[3.0 * 2.0 ** -40, -7.0 * 2.0 ** -40]], np.float32)}
    assert program.run(inputs)["y_q"].tolist() == [[3, -7]]


def per_channel_conv_model() -> onnx.ModelProto:
    """A Conv with two output channels whose UINT8 weights have their own scale and a
    non-zero zero point each (axis 0), with a per-channel INT32 bias."""
    nodes = [*qdq("x", "x", "sx", "zx"),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["w_dq"], name="w_DQ",
                              axis=0),
             helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["b_dq"], name="b_DQ",
                              axis=0),
             helper.make_node("Conv", ["x_dq", "w_dq", "b_dq"], ["conv"], name="conv",
                              pads=[1, 1, 1, 1]),
             *qdq("y", "conv", "sy", "zy")]
    weights = np.array([[[[90, 110], [100, 130]]], [[[200, 140], [60, 141]]]], np.uint8)
    initializers = [factories.scalar("sx", 0.1), factories.scalar("zx", 10, TensorProto.UINT8),
                    numpy_helper.from_array(weights, "w"),
                    factories.vector("sw", [0.02, 0.03]),
                    factories.vector("zw", [100, 140], TensorProto.UINT8),
                    factories.vector("b", [5, -7], TensorProto.INT32),
                    factories.vector("sb", [0.1 * 0.02, 0.1 * 0.03]),
                    factories.vector("zb", [0, 0], TensorProto.INT32),
                    factories.scalar("sy", 0.05), factories.scalar("zy", 20, TensorProto.UINT8)]
    return factories.make_model(nodes, [factories.tensor_input("x", [1, 1, 3, 3])],
                                [factories.tensor_input("y_dq", [1, 2, 3, 3])], initializers)


def test_per_channel_weight_zero_points_are_subtracted_channel_by_channel(tmp_path: Path
                                                                          ) -> None:
    """Channel c computes sum (x - z_x)(w - z_w[c]): checked against the float64 oracle,
    which dequantizes the weights itself."""
    path = factories.save(per_channel_conv_model(), tmp_path / "pc.onnx")
    inputs = np.random.default_rng(3).uniform(-1.0, 15.0, (4, 1, 3, 3)).astype(np.float32)
    assert assert_every_group_matches_the_oracle(path, inputs) == 1


def test_a_per_tensor_side_with_several_zero_points_is_refused() -> None:
    """One scale with two zero points is neither per tensor nor per axis (ONNX requires
    the same shape): the kernels refuse it rather than pick one of the two."""
    side = TensorQuantization(tensor="x_q", qdq="x_Q", scale_name="s", scales=(0.5,),
                              zero_point_name="z", zero_points=(1, 2), dtype="INT8")
    with pytest.raises(IntegerReferenceError, match="per-channel"):
        zero_point(side)
    with pytest.raises(IntegerReferenceError, match="per-channel"):
        centred(np.zeros(2, np.int8), side)
    single = dataclasses.replace(side, zero_points=(-3,))
    assert zero_point(single) == -3
    assert centred(np.array([0, 5], np.int8), single).tolist() == [3, 8]


# -- the showcase pages print the package's numbers: an independent re-computation ----------
def showcase_numbers(monkeypatch: pytest.MonkeyPatch):
    """docs/_ext/resnet8_numbers.py, loaded from its file (no sys.path change; in
    sys.modules for this test only, as its dataclasses need)."""
    path = REPOSITORY / "docs" / "_ext" / "resnet8_numbers.py"
    spec = importlib.util.spec_from_file_location("resnet8_numbers_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


#: (bits, signed) of the integer types QuantizeLinear writes, stated here by hand.
QUANTIZED_TYPES = {"INT2": (2, True), "UINT2": (2, False), "INT4": (4, True),
                   "UINT4": (4, False), "INT8": (8, True), "UINT8": (8, False),
                   "INT16": (16, True), "UINT16": (16, False), "INT32": (32, True)}


def independent_q31(multiplier: float) -> tuple[int, int]:
    """``M = M0 2^(-31-n)`` with ``M0`` in ``[2^30, 2^31)``: frexp, mantissa rounded."""
    mantissa, exponent = np.frexp(multiplier)
    q31 = round(float(mantissa) * (1 << 31))
    if q31 == 1 << 31:  # the mantissa rounded up to 1.0
        q31, exponent = 1 << 30, exponent + 1
    return q31, -int(exponent)


def independent_quantize(x: np.ndarray, scale: np.float32, zero_point: int, dtype: str
                         ) -> list[int]:
    """QuantizeLinear by the ONNX text: float32 division, half to even, saturation."""
    bits, signed = QUANTIZED_TYPES[dtype]
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    quotients = np.asarray(x, np.float32) / np.float32(scale)
    return [min(max(round(Fraction(float(q))) + zero_point, low), high) for q in quotients]


def test_the_showcase_numbers_are_the_packages_and_an_independent_computation_agrees(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages' Q31 multipliers, fixed-point outputs, QuantizeLinear results and integer
    ranges come from the package (docs/_ext/resnet8_numbers.py); here they are computed
    again from the ONNX text with Python integers and fractions."""
    numbers = showcase_numbers(monkeypatch)
    for name, (bits, signed) in QUANTIZED_TYPES.items():
        assert numbers.INTEGER_TYPES[name] == (bits, signed)
        assert numbers.integer_range(name) == ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                                               if signed else (0, (1 << bits) - 1))
    model = numbers.ShowcaseModel("resnet8_int8.onnx")
    groups = [numbers.IntegerGroup(model, node.name) for node in model.proto.graph.node
              if node.op_type in ("Conv", "Gemm")]
    assert len(groups) >= 8
    for group in groups:
        exact = [independent_q31(float(m)) for m in group.multiplier]
        assert [(m.multiplier, m.shift) for m in group.fixed_point] == exact
        acc = group.accumulate(numbers.synthetic_activation(group, 0, 40))
        expected = [min(max(round(Fraction(int(a) * q31, 1 << (31 + shift)))
                            + group.y.zero_point, group.y.qmin), group.y.qmax)
                    for a, (q31, shift) in zip(acc, exact)]
        assert group.requantize_fixed_point(acc).tolist() == expected
    affine = model.affine("input_QuantizeLinear")
    low, high = affine.real_range
    xs = np.concatenate([np.linspace(low * 1.1, high * 1.1, 2001, dtype=np.float32),
                         (np.arange(-5, 5) + np.float32(0.5)) * affine.scale])
    assert affine.quantize(xs).tolist() == independent_quantize(xs, affine.scale,
                                                                 affine.zero_point, affine.dtype)
