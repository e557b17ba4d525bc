"""The integer reference's kernels of the 8-bit QOperator ops outside the requantization
recipes (QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax, QLinearConcat,
QLinearWhere) against ONNX Runtime running the same small models (built with
onnx.helper), every integer tensor compared.

ONNX Runtime computes Sigmoid, LeakyRelu and the requantized inputs of Concat / Where
through 256-entry tables built in float32, and Softmax through its own float32 exp
table: deterministic, so the reference must agree bit for bit. QLinearMul is the
exception: ONNX Runtime multiplies by the float32 ratio ``s_a s_b / s_y`` where the
reference uses a Q31 multiplier; they differ by one only where the exact result lies
within float32 rounding of a tie, which the last test checks element by element."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from onnx import TensorProto, helper

from sphinxext_qdq.analysis.loader import load_qdq_model
from sphinxext_qdq.integer.kernels import IntegerReferenceError
from sphinxext_qdq.integer.onnxruntime_check import compare_with_onnxruntime
from sphinxext_qdq.integer.program import build_integer_program
from sphinxext_qdq.integer.vectors import (
    c_header,
    group_input_shapes,
    kernel_vectors,
    random_group_inputs,
)

MS = "com.microsoft"
TYPES = {"UINT8": (TensorProto.UINT8, 0, 255), "INT8": (TensorProto.INT8, -128, 127)}


def params(dtype: str, **values: tuple[float, int]) -> list[onnx.TensorProto]:
    """A float scale ``s<name>`` and a zero point ``z<name>`` of *dtype* per name."""
    element = TYPES[dtype][0]
    found = []
    for name, (scale, zero_point) in values.items():
        found += [factories.scalar(f"s{name}", scale),
                  factories.scalar(f"z{name}", zero_point, element)]
    return found


def model(dtype: str, shape: list[int], nodes: list[onnx.NodeProto],
          initializers: list[onnx.TensorProto], last: str) -> onnx.ModelProto:
    """x -> QuantizeLinear (sx, zx) -> *nodes* -> DequantizeLinear of *last* (sy, zy)."""
    graph_nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["qx"], name="x_Q"),
                   *nodes,
                   helper.make_node("DequantizeLinear", [last, "sy", "zy"], ["y"], name="y_DQ")]
    return factories.make_model(graph_nodes, [factories.tensor_input("x", shape)],
                                [factories.tensor_input("y", None)], initializers,
                                extra_opsets=[(MS, 1)])


def every_code(dtype: str, scale: float, zero_point: int, rows: int = 1) -> np.ndarray:
    """Float inputs that QuantizeLinear maps onto every integer of *dtype*, once per row."""
    _, low, high = TYPES[dtype]
    codes = np.arange(low, high + 1, dtype=np.float64)
    return np.tile((codes - zero_point) * scale, (rows, 1)).astype(np.float32)


def assert_bit_exact(path: Path, inputs: np.ndarray) -> int:
    """Every integer tensor of the reference equals ONNX Runtime's; returns how many
    tensors were compared."""
    report = compare_with_onnxruntime(path, inputs)
    for layer in (*report.layers, *report.final):
        assert layer.exact == layer.elements > 0, (layer.node, layer.max_difference)
    return len(report.layers)


@pytest.mark.parametrize("dtype", ["UINT8", "INT8"])
@pytest.mark.parametrize(("op", "attributes"), [("QLinearSigmoid", {}),
                                                ("QLinearLeakyRelu", {"alpha": 0.1}),
                                                ("QLinearLeakyRelu", {})])
def test_a_lookup_op_agrees_with_onnxruntime_on_every_input_code(
        tmp_path: Path, dtype: str, op: str, attributes: dict) -> None:
    """All 256 input codes through the op: the whole table compared."""
    z_x, z_y = (7, 0) if dtype == "UINT8" else (-3, -128)
    node = helper.make_node(op, ["qx", "sx", "zx", "sy", "zy"], ["qy"], name="act",
                            domain=MS, **attributes)
    proto = model(dtype, [1, 256], [node], params(dtype, x=(0.0473, z_x), y=(0.0041, z_y)),
                  "qy")
    path = factories.save(proto, tmp_path / "act.onnx")
    assert assert_bit_exact(path, every_code(dtype, 0.0473, z_x)) == 2  # Q, the op


def test_the_sigmoid_table_follows_mlas_approximation_not_the_exact_function(
        tmp_path: Path) -> None:
    """With these scales the table of the exact logistic function (float64 exp) differs
    from ONNX Runtime's in one entry: ONNX Runtime evaluates MLAS's rational
    approximation in float32, and so must the reference."""
    s_x, s_y = 0.11142857372760773, 0.004
    codes = np.arange(256, dtype=np.float64)
    exact = 1 / (1 + np.exp(-(np.float32(s_x) * (codes - 128).astype(np.float32))
                            .astype(np.float64)))
    exact_table = np.clip(np.rint(exact.astype(np.float32) / np.float32(s_y)), 0, 255)
    node = helper.make_node("QLinearSigmoid", ["qx", "sx", "zx", "sy", "zy"], ["qy"],
                            name="act", domain=MS)
    proto = model("UINT8", [1, 256], [node], params("UINT8", x=(s_x, 128), y=(s_y, 0)), "qy")
    path = factories.save(proto, tmp_path / "sigmoid.onnx")
    assert assert_bit_exact(path, every_code("UINT8", s_x, 128)) == 2
    (table,) = build_integer_program(path).step("act").tables
    assert np.count_nonzero(table != exact_table) == 1


def test_a_table_rounds_ties_to_even_like_onnxruntime(tmp_path: Path) -> None:
    """s_x / s_y = 1/2 (powers of two): every odd code lands on a tie, which
    MlasQuantizeLinear rounds half to even (1.5 -> 2, 2.5 -> 2, -0.5 -> 0)."""
    node = helper.make_node("QLinearLeakyRelu", ["qx", "sx", "zx", "sy", "zy"], ["qy"],
                            name="act", domain=MS, alpha=0.5)
    proto = model("INT8", [1, 256], [node], params("INT8", x=(0.25, 0), y=(0.5, 0)), "qy")
    path = factories.save(proto, tmp_path / "ties.onnx")
    assert assert_bit_exact(path, every_code("INT8", 0.25, 0)) == 2
    (table,) = build_integer_program(path).step("act").tables
    by_value = dict(zip(np.arange(256, dtype=np.uint8).view(np.int8).tolist(), table.tolist()))
    assert [by_value[q] for q in (3, 5, -1, -2, -3)] == [2, 2, 0, 0, -1]  # 1.5, 2.5, -0.25, -0.5, -0.75


@pytest.mark.parametrize("dtype", ["UINT8", "INT8"])
@pytest.mark.parametrize(("opset", "axis"), [(13, -1), (13, 1), (12, 1)])
def test_softmax_agrees_with_onnxruntime(tmp_path: Path, dtype: str, opset: int,
                                         axis: int) -> None:
    """Softmax along one axis (opset 13) and over the flattened axes from ``axis`` on
    (opset 12), on random rows with one large value each."""
    z_x, z_y = (128, 0) if dtype == "UINT8" else (0, -128)
    node = helper.make_node("QLinearSoftmax", ["qx", "sx", "zx", "sy", "zy"], ["qy"],
                            name="softmax", domain=MS, axis=axis, opset=opset)
    proto = model(dtype, [6, 4, 8], [node],
                  params(dtype, x=(0.08, z_x), y=(1 / 256, z_y)), "qy")
    path = factories.save(proto, tmp_path / "softmax.onnx")
    inputs = np.random.default_rng(1).normal(0.0, 3.0, (6, 4, 8)).astype(np.float32)
    assert assert_bit_exact(path, inputs) == 2


def test_concat_copies_or_requantizes_each_input_like_onnxruntime(tmp_path: Path) -> None:
    """qx (the output's scale and zero point: copied) next to a LeakyRelu output on its
    own grid (requantized through a table), along axis 1."""
    nodes = [helper.make_node("QLinearLeakyRelu", ["qx", "sx", "zx", "sl", "zl"], ["ql"],
                              name="leaky", domain=MS, alpha=0.2),
             helper.make_node("QLinearConcat", ["sy", "zy", "qx", "sx", "zx", "ql", "sl", "zl"],
                              ["qy"], name="concat", domain=MS, axis=1)]
    initializers = params("UINT8", x=(0.05, 100), l=(0.031, 90), y=(0.05, 100))
    path = factories.save(model("UINT8", [1, 256], nodes, initializers, "qy"),
                          tmp_path / "concat.onnx")
    assert assert_bit_exact(path, every_code("UINT8", 0.05, 100)) == 3
    program = build_integer_program(path)
    copied, looked_up = program.step("concat").tables
    assert copied is None and looked_up is not None and looked_up.shape == (256,)


def test_where_selects_requantized_inputs_like_onnxruntime(tmp_path: Path) -> None:
    """A constant condition broadcast over the rows picks qx or a Sigmoid output, both
    requantized to the output's grid."""
    nodes = [helper.make_node("QLinearSigmoid", ["qx", "sx", "zx", "ss", "zs"], ["qs"],
                              name="sigmoid", domain=MS),
             helper.make_node("QLinearWhere", ["cond", "qx", "sx", "zx", "qs", "ss", "zs",
                                               "sy", "zy"], ["qy"], name="where", domain=MS)]
    condition = helper.make_tensor("cond", TensorProto.BOOL, [256],
                                   [i % 3 == 0 for i in range(256)])
    initializers = [*params("INT8", x=(0.06, -5), s=(1 / 256, -128), y=(0.02, 10)), condition]
    path = factories.save(model("INT8", [2, 256], nodes, initializers, "qy"),
                          tmp_path / "where.onnx")
    assert assert_bit_exact(path, every_code("INT8", 0.06, -5, rows=2)) == 3


def test_a_where_with_a_computed_condition_is_refused(tmp_path: Path) -> None:
    """The condition must be a constant of the model: the reference runs integers only."""
    nodes = [helper.make_node("Greater", ["x", "sx"], ["cond"], name="greater"),
             helper.make_node("QLinearWhere", ["cond", "qx", "sx", "zx", "qx", "sx", "zx",
                                               "sy", "zy"], ["qy"], name="where", domain=MS)]
    path = factories.save(model("UINT8", [1, 4], nodes,
                                params("UINT8", x=(0.1, 0), y=(0.1, 0)), "qy"),
                          tmp_path / "computed.onnx")
    with pytest.raises(IntegerReferenceError, match="'cond' is not computed in integers"):
        build_integer_program(path)


def silu_model(scale_x: float, scale_s: float, scale_y: float) -> onnx.ModelProto:
    """``x * sigmoid(x)`` as QLinearSigmoid then QLinearMul (INT8)."""
    nodes = [helper.make_node("QLinearSigmoid", ["qx", "sx", "zx", "ss", "zs"], ["qs"],
                              name="sigmoid", domain=MS),
             helper.make_node("QLinearMul", ["qx", "sx", "zx", "qs", "ss", "zs", "sy", "zy"],
                              ["qy"], name="mul", domain=MS)]
    initializers = params("INT8", x=(scale_x, 3), s=(scale_s, -128), y=(scale_y, -20))
    return model("INT8", [1, 256], nodes, initializers, "qy")


def test_mul_with_an_exact_ratio_agrees_with_onnxruntime(tmp_path: Path) -> None:
    """Scales that are powers of two times 3 make s_a s_b / s_y = 3/32 exact in float32
    and in Q31: the same products, the same ties (rounded half to even by both)."""
    path = factories.save(silu_model(0.375, 1 / 256, 1 / 64), tmp_path / "exact.onnx")
    assert assert_bit_exact(path, every_code("INT8", 0.375, 3)) == 3


def onnxruntime_tensor(proto: onnx.ModelProto, inputs: np.ndarray, tensor: str) -> np.ndarray:
    """*tensor* as ONNX Runtime computes it (exposed as an extra graph output)."""
    import onnxruntime

    exposed = onnx.ModelProto()
    exposed.CopyFrom(proto)
    exposed.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.INT8, None))
    session = onnxruntime.InferenceSession(exposed.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run([tensor], {"x": inputs})[0]


def test_mul_differs_from_onnxruntime_only_next_to_ties(tmp_path: Path) -> None:
    """With an inexact ratio the reference rounds the exact value ``M p`` once (stated
    here with fractions); ONNX Runtime's float32 ``p * ratio + z_y`` agrees except,
    by one, where ``M p`` lies within float32 rounding of a half."""
    s_x, s_s, s_y = 0.0473, 1 / 256, 0.1
    proto = silu_model(s_x, s_s, s_y)
    path = factories.save(proto, tmp_path / "mul.onnx")
    inputs = every_code("INT8", s_x, 3)
    values = build_integer_program(path).run(inputs)
    products = (values["qx"].astype(np.int64) - 3) * (values["qs"].astype(np.int64) + 128)
    ratio = Fraction(float(np.float32(s_x))) * Fraction(float(np.float32(s_s))) \
        / Fraction(float(np.float32(s_y)))
    theirs = onnxruntime_tensor(proto, inputs, "qy").astype(np.int64).ravel()
    differences = 0
    for p, ours, other in zip(products.ravel(), values["qy"].astype(np.int64).ravel(), theirs):
        exact = ratio * int(p)
        assert abs(ours + 20 - exact) <= Fraction(1, 2)  # one rounding, no saturation here
        if ours != other:
            differences += 1
            assert abs(other - ours) == 1
            assert abs(exact - int(exact) - Fraction(1, 2)) < Fraction(1, 10 ** 4) or \
                abs(exact - int(exact) + Fraction(1, 2)) < Fraction(1, 10 ** 4)
    assert differences < len(theirs) // 20


def test_vectors_of_a_table_kernel_carry_its_table(tmp_path: Path) -> None:
    """``qdq-graph vectors`` on a QLinearLeakyRelu: the header holds the 256-entry table
    and the output it gives for the random inputs."""
    node = helper.make_node("QLinearLeakyRelu", ["qx", "sx", "zx", "sy", "zy"], ["qy"],
                            name="act", domain=MS, alpha=0.25)
    proto = model("UINT8", [1, 8], [node], params("UINT8", x=(0.1, 128), y=(0.05, 64)), "qy")
    step = build_integer_program(factories.save(proto, tmp_path / "act.onnx")).step("act")
    x = np.array([[0, 100, 128, 129, 200, 255, 1, 127]], np.uint8)
    vectors = kernel_vectors(step, [x])
    table = vectors.arrays["table"]
    assert vectors.arrays["output"].tolist() == [[table[v] for v in x[0]]]
    # 128 is x = 0 -> 64; 129 is 0.1 -> 0.1 / 0.05 = 2 -> 66; 0 is -12.8 -> -3.2 / 0.05 -> 0
    assert [int(table[v]) for v in (128, 129, 0)] == [64, 66, 0]
    header = c_header(vectors, prefix="act")
    assert "static const uint8_t act_table[256]" in header and "table[(uint8_t) input]" in header


def test_a_table_op_mixing_int8_and_uint8_is_refused(tmp_path: Path) -> None:
    """ONNX Runtime requires one 8-bit type for the input and output zero points of a
    table op; the reference refuses the mix rather than read bytes as the wrong type."""
    node = helper.make_node("QLinearSigmoid", ["qx", "sx", "zx", "sy", "zy"], ["qy"],
                            name="act", domain=MS)
    initializers = [*params("UINT8", x=(0.05, 128)), *params("INT8", y=(1 / 256, -128))]
    path = factories.save(model("UINT8", [1, 4], [node], initializers, "qy"),
                          tmp_path / "mixed.onnx")
    with pytest.raises(IntegerReferenceError, match="one 8-bit type"):
        build_integer_program(path)
    assert build_integer_program(path, strict=False).steps == ()


def test_a_qlinearmul_without_its_second_input_is_refused(tmp_path: Path) -> None:
    node = helper.make_node("QLinearMul", ["qx", "sx", "zx", "", "sx", "zx", "sy", "zy"],
                            ["qy"], name="mul", domain=MS)
    path = factories.save(model("UINT8", [1, 4], [node],
                                params("UINT8", x=(0.1, 0), y=(0.1, 0)), "qy"),
                          tmp_path / "half.onnx")
    with pytest.raises(IntegerReferenceError, match="an input of QLinearMul is missing"):
        build_integer_program(path)


def test_random_vectors_of_a_where_keep_its_constant_condition(tmp_path: Path) -> None:
    """Random inputs for x and y; the condition stays the model's constant, and the output
    takes x where it holds (x and y have the output's grid here: copied)."""
    nodes = [helper.make_node("QLinearLeakyRelu", ["qx", "sx", "zx", "sy", "zy"], ["ql"],
                              name="leaky", domain=MS),
             helper.make_node("QLinearWhere", ["cond", "qx", "sx", "zx", "ql", "sy", "zy",
                                               "sy", "zy"], ["qy"], name="where", domain=MS)]
    condition = helper.make_tensor("cond", TensorProto.BOOL, [4], [True, False, True, False])
    initializers = [*params("UINT8", x=(0.1, 3), y=(0.1, 3)), condition]
    path = factories.save(model("UINT8", [2, 4], nodes, initializers, "qy"),
                          tmp_path / "where.onnx")
    step = build_integer_program(path).step("where")
    shapes = group_input_shapes(load_qdq_model(path), step, batch=2)
    assert shapes == [(4,), (2, 4), (2, 4)]
    condition_values, x, y = random_group_inputs(step, shapes, seed=5)
    assert condition_values.tolist() == [True, False, True, False]
    output = kernel_vectors(step, [condition_values, x, y]).arrays["output"]
    assert output.tolist() == np.where([True, False, True, False], x, y).tolist()
