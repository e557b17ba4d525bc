"""Every bound and equality the quantization pages state, attacked (issue #20).

Each test names the sentence or formula of the page it checks (``claim``: the text must be
on the page, so a reworded page fails here until its test is revisited), then searches for
a counterexample: exhaustively over the input grid where that is feasible, at the inputs
where a bound is tightest (next to rounding ties, at the corners of a linear form)
elsewhere. The oracles are independent of the pages' generators: ONNX's reference
implementation (``onnx.reference.ReferenceEvaluator``), its operator schemas
(``onnx.defs.get_schema``), ONNX Runtime, and exact rational arithmetic.
"""

from __future__ import annotations

import platform
import re
import sys
from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx import defs as onnx_defs
from onnx.reference import ReferenceEvaluator

from sphinxext_qdq.integer.requant import quantize_multiplier

REPOSITORY = Path(__file__).resolve().parent.parent
MODELS = REPOSITORY / "models"
PAGES = REPOSITORY / "docs" / "quantization"
MODEL_FILES = ("resnet8_int8.onnx", "resnet8_uint8.onnx", "resnet8_int8_per_channel.onnx")
NP_TYPES = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8}
EPSILON = 2.0 ** -24  # float32 unit roundoff
INT16_MAX = 32767


def claim(page: str, *texts: str) -> None:
    """The page states each text (whitespace-insensitive)."""
    source = " ".join((PAGES / page).read_text(encoding="utf-8").split())
    for text in texts:
        assert " ".join(text.split()) in source, f"{page} no longer says: {text}"


def no_claim(page: str, text: str) -> None:
    source = " ".join((PAGES / page).read_text(encoding="utf-8").split())
    assert " ".join(text.split()) not in source, f"{page} still says: {text}"


def run(nodes: list, inputs: dict[str, np.ndarray], initializers: dict[str, np.ndarray],
        outputs: list[str], opset: int = 21) -> list[np.ndarray]:
    """A one-off graph evaluated by ONNX's reference implementation."""
    graph = helper.make_graph(
        nodes, "claim",
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), None)
         for name, value in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None) for name in outputs],
        [numpy_helper.from_array(np.asarray(value), name)
         for name, value in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, inputs)


# -- the models' Q/DQ pairs ---------------------------------------------------------------


def activation_pairs() -> list[tuple[str, str, np.float32, np.ndarray]]:
    """(model, node, scale, zero point) of every per-tensor activation QuantizeLinear."""
    pairs = []
    for file_name in MODEL_FILES:
        model = onnx.load(str(MODELS / file_name))
        values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type == "QuantizeLinear" and values[node.input[1]].size == 1:
                pairs.append((file_name, node.name, np.float32(values[node.input[1]]),
                              values[node.input[2]].reshape(())))
    return pairs


PAIRS = activation_pairs()


def tie_neighbourhood(scale: np.float32, zero_point: np.ndarray, ulps: int = 16) -> np.ndarray:
    """Every float32 within ``ulps`` of each tie ``(k + 1/2) s`` of the covered interval."""
    info = np.iinfo(zero_point.dtype)
    ks = np.arange(info.min - int(zero_point), info.max - int(zero_point))
    bits = ((ks + 0.5) * np.float64(scale)).astype(np.float32).view(np.int32)
    return np.concatenate([(bits + step).view(np.float32) for step in range(-ulps, ulps + 1)])


def round_trip(x: np.ndarray, scale: np.float32, zero_point: np.ndarray):
    """(q, x_hat) by the reference QuantizeLinear and DequantizeLinear."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["x_hat"])]
    return run(nodes, {"x": x.astype(np.float32)}, {"s": scale, "z": zero_point}, ["q", "x_hat"])


@pytest.fixture(scope="module")
def round_trips() -> list[tuple[str, np.float32, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Every activation pair of the three models, at every input next to a tie and on a grid."""
    results = []
    for _, name, scale, zero_point in PAIRS:
        info = np.iinfo(zero_point.dtype)
        low = float(scale) * (info.min - int(zero_point))
        high = float(scale) * (info.max - int(zero_point))
        xs = np.concatenate([tie_neighbourhood(scale, zero_point),
                             np.linspace(low, high, 4001, dtype=np.float32)])
        xs = xs[(xs >= low) & (xs <= high)]
        q, x_hat = round_trip(xs, scale, zero_point)
        results.append((name, scale, zero_point, xs, q, x_hat))
    return results


def test_the_round_trip_bound_holds_next_to_every_tie(round_trips) -> None:
    claim("01-boundary-operations.md",
          r"\lvert x - \hat x \rvert \le \frac{s}{2} + 2^{-24}\,\big(\lvert x\rvert "
          r"+ \lvert\hat x\rvert\big)",
          r"so the excess over $s/2$ is below $2^{-15}\,s$")
    assert len(round_trips) == 48
    for name, scale, _, xs, _, x_hat in round_trips:
        x, y = xs.astype(np.float64), x_hat.astype(np.float64)
        error = np.abs(x - y)
        bound = float(scale) / 2 + EPSILON * (np.abs(x) + np.abs(y))
        assert (error <= bound).all(), (name, xs[error > bound][:3])
        assert (error - float(scale) / 2 < 2.0 ** -15 * float(scale)).all(), name


def test_half_a_step_is_exceeded_only_where_the_float32_quotient_is_a_tie(round_trips) -> None:
    claim("01-boundary-operations.md",
          "when that quotient lands exactly on a tie $k + \\tfrac12$ that the exact one is not on")
    no_claim("01-boundary-operations.md", "because rounding picks the nearest integer")
    exceeded = 0
    for name, scale, zero_point, xs, q, _ in round_trips:
        n = q.astype(np.int64) - int(zero_point)
        # exact in float64: n s needs 24 + 9 bits, and x - n s cancels to a few more
        exact = np.abs(xs.astype(np.float64) - n * np.float64(scale))
        assert abs(Fraction(float(xs[0])) - int(n[0]) * Fraction(float(scale))) == exact[0]
        over = exact > np.float64(scale) / 2
        quotient = xs / scale  # float32, as QuantizeLinear divides
        assert (quotient[over] % 1 == 0.5).all(), name
        exceeded += int(over.sum())
    assert exceeded > 0  # the old "within s/2" has counterexamples in these models


@pytest.mark.parametrize(("node", "value", "tie"), [("input_QuantizeLinear", 0.70000005, 178.5),
                                                    ("logits_QuantizeLinear", -5.0280986, -66.5)])
def test_the_issue_tie_cases_exceed_half_a_step(node: str, value: float, tie: float) -> None:
    claim("01-boundary-operations.md", "{include} ../_generated/boundary-roundtrip-ties.md")
    (_, _, scale, zero_point), = [p for p in PAIRS if p[0] == MODEL_FILES[0] and p[1] == node]
    x = np.array([value], np.float32)
    q, _ = round_trip(x, scale, zero_point)
    assert np.float32(x[0]) / scale == np.float32(tie)
    exact_quotient = Fraction(float(x[0])) / Fraction(float(scale))
    assert exact_quotient != Fraction(tie) and abs(exact_quotient - Fraction(tie)) < Fraction(1, 10**5)
    error = abs(Fraction(float(x[0])) - (int(q[0]) - int(zero_point)) * Fraction(float(scale)))
    assert error > Fraction(float(scale)) / 2
    sys.path.insert(0, str(REPOSITORY / "docs" / "_ext"))
    try:
        import implementer_fragments
    finally:
        sys.path.remove(str(REPOSITORY / "docs" / "_ext"))
    assert implementer_fragments.ROUNDTRIP_TIES[node] == value


def test_dequantize_rounds_integers_beyond_two_to_the_24() -> None:
    claim("01-boundary-operations.md", r"exact only while $\lvert x - z\rvert \le 2^{24}$",
          "(16,777,217 becomes 16,777,216)")
    for start in range(-(1 << 24), (1 << 24) + 1, 1 << 22):  # exhaustive, in chunks
        integers = np.arange(start, min(start + (1 << 22), (1 << 24) + 1), dtype=np.int64)
        assert (integers.astype(np.float32).astype(np.int64) == integers).all()
    assert np.int64(np.float32((1 << 24) + 1)) != (1 << 24) + 1
    (y,) = run([helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])],
               {"x": np.array([(1 << 24) + 1, (1 << 24) - 1], np.int32)},
               {"s": np.float32(1), "z": np.int32(0)}, ["y"])
    assert y.tolist() == [16777216.0, 16777215.0]


def test_quantize_linear_types_are_those_of_the_schema() -> None:
    claim("01-boundary-operations.md", "`x` (float32, float16, bfloat16 or int32)",
          "Up to opset 21 `x` and `y_scale` have one type; from opset 23 they may differ",
          "The division is carried out in the scale's type")
    v21, v23 = onnx_defs.get_schema("QuantizeLinear", 21), onnx_defs.get_schema("QuantizeLinear", 23)
    assert v21.inputs[0].type_str == v21.inputs[1].type_str == "T1"
    assert "tensor(int32)" in next(c for c in v21.type_constraints
                                   if c.type_param_str == "T1").allowed_type_strs
    assert v23.inputs[0].type_str != v23.inputs[1].type_str
    assert "precision" in v23.attributes and "precision" not in v21.attributes
    assert "type of `y_scale` determines the precision" in v23.doc
    (q,) = run([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])],
               {"x": np.array([-7, 5, 1000], np.int32)},
               {"s": np.int32(2), "z": np.int8(0)}, ["q"], opset=23)
    assert q.tolist() == [-4, 2, 127]  # -3.5 -> -4 (even), 2.5 -> 2, saturated


# -- granularity ----------------------------------------------------------------------


def test_a_rank_one_scale_of_a_rank_one_tensor_is_per_axis_unless_blocked() -> None:
    claim("01-boundary-operations.md", "has the tensor's rank and is still per-axis, because "
          "`block_size` is 0", "blocked when `block_size` is positive")
    rng = np.random.default_rng(0)
    x = rng.integers(-1000, 1000, 16).astype(np.int32)
    scales = rng.uniform(0.5, 2, 16).astype(np.float32)
    dequantize = [helper.make_node("DequantizeLinear", ["x", "s"], ["y"], axis=0)]
    (per_axis,) = run(dequantize, {"x": x}, {"s": scales}, ["y"])
    assert (per_axis == x.astype(np.float32) * scales).all()
    blocked = [helper.make_node("DequantizeLinear", ["x", "s"], ["y"], axis=0, block_size=4)]
    (y,) = run(blocked, {"x": x}, {"s": scales[:4]}, ["y"])
    assert (y == x.astype(np.float32) * np.repeat(scales[:4], 4)).all()
    with pytest.raises(ValueError, match="broadcast"):  # 4 scales, no block_size: refused
        run(dequantize, {"x": x}, {"s": scales[:4]}, ["y"])


def test_a_rank_one_input_is_quantized_per_element_despite_the_axis_text() -> None:
    claim("01-boundary-operations.md", "its reference implementation and ONNX Runtime both "
          "apply a 1-D scale of the input's length element by element")
    axis_text = onnx_defs.get_schema("QuantizeLinear", 21).attributes["axis"].description
    assert "When the rank of the input is 1, per-tensor quantization is applied" in axis_text
    x = np.full(4, 8, np.float32)
    values = {"s": np.array([1, 2, 4, 8], np.float32), "z": np.zeros(4, np.int8)}
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=0)
    (reference,) = run([node], {"x": x}, values, ["y"])
    graph = helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, None)],
        [numpy_helper.from_array(v, k) for k, v in values.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    (runtime,) = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert reference.tolist() == runtime.tolist() == [8, 4, 2, 1]


def test_the_per_channel_bias_is_analysed_as_per_axis() -> None:
    from sphinxext_qdq.analysis import analyze
    from sphinxext_qdq.analysis.records import Granularity

    path = MODELS / "resnet8_int8_per_channel.onnx"
    model = analyze(onnx.load(str(path)), path=str(path), model_dir=None)
    bias = next(node for node in model.qdq_nodes if node.input == "stack1.conv1.bias_quantized")
    assert bias.granularity == Granularity.PER_AXIS and bias.axis == 0
    assert not bias.block_size


# -- float8 and packed types -------------------------------------------------------------


FLOAT8 = {  # Cast's schema tables: largest finite; overflow and +inf with saturate = 0
    TensorProto.FLOAT8E4M3FN: (448, "nan"), TensorProto.FLOAT8E4M3FNUZ: (240, "nan"),
    TensorProto.FLOAT8E5M2: (57344, "inf"), TensorProto.FLOAT8E5M2FNUZ: (57344, "nan"),
}


@pytest.mark.parametrize("element_type", list(FLOAT8))
def test_float8_saturation_follows_the_cast_tables(element_type: int) -> None:
    claim("01-boundary-operations.md", "With `saturate=1` an overflow, and even $+\\infty$, "
          "becomes the largest finite value", "except for E5M2, the only one of the four with "
          "an infinity", "The FNUZ types have no negative zero ($-0$ becomes $+0$)",
          "the reference QuantizeLinear ignores its value, and the reference "
          "DequantizeLinear rejects a non-zero one")
    largest, wrapped = FLOAT8[element_type]
    dtype = helper.tensor_dtype_to_np_dtype(element_type)
    assert float(ml_dtypes.finfo(dtype).max) == largest
    x = np.array([1e6, -1e6, np.inf, np.nan], np.float32)
    quantize = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], saturate=1)]
    (q,) = run(quantize, {"x": x}, {"s": np.float32(1), "z": np.zeros((), dtype)}, ["q"])
    assert q.astype(np.float32)[:3].tolist() == [largest, -largest, largest]
    assert np.isnan(q.astype(np.float32)[3])
    quantize[0] = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], saturate=0)
    (q,) = run(quantize, {"x": x[:1]}, {"s": np.float32(1), "z": np.zeros((), dtype)}, ["q"])
    assert str(q.astype(np.float32)[0]) == wrapped
    # the zero point's value: ignored by QuantizeLinear, refused by DequantizeLinear
    one = np.ones((), dtype)
    (shifted,) = run([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])],
                     {"x": np.array([3.0], np.float32)}, {"s": np.float32(1), "z": one}, ["q"])
    assert shifted.astype(np.float32).tolist() == [3.0]
    with pytest.raises(ValueError, match="should be zero"):
        run([helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])],
            {"q": np.array([3.0], np.float32).astype(dtype)}, {"s": np.float32(1), "z": one},
            ["y"])
    # negative zero: kept by the FN types, +0 in the FNUZ types (no sign bit on zero)
    (zero,) = run(quantize, {"x": np.array([-0.0], np.float32)},
                  {"s": np.float32(1), "z": np.zeros((), dtype)}, ["q"])
    sign_bit = int(zero.view(np.uint8)[0]) == 0x80
    assert sign_bit == (element_type in (TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2))
    assert "Inf" in onnx_defs.get_schema("Cast").doc


@pytest.mark.parametrize(("dtype", "per_byte"), [(ml_dtypes.int4, 2), (ml_dtypes.uint4, 2),
                                                 (ml_dtypes.int2, 4), (ml_dtypes.uint2, 4)])
def test_packed_types_put_the_first_element_in_the_low_bits(dtype, per_byte: int) -> None:
    claim("01-boundary-operations.md", "the first element in the least significant bits, and "
          "a last byte that the elements do not fill (an odd length of INT4) padded with zero "
          "bits")
    bits = 8 // per_byte
    info = ml_dtypes.iinfo(dtype)
    rng = np.random.default_rng(per_byte)
    for length in range(1, 9):
        values = rng.integers(info.min, info.max + 1, length)
        tensor = numpy_helper.from_array(values.astype(dtype), "t")
        packed = int.from_bytes(tensor.raw_data, "little")
        assert len(tensor.raw_data) == -(-length // per_byte)
        for i, value in enumerate(values):  # element i in bits [i * bits, (i + 1) * bits)
            assert (packed >> (i * bits)) & ((1 << bits) - 1) == int(value) & ((1 << bits) - 1)
        assert packed >> (length * bits) == 0  # the padding is zero bits
        assert (numpy_helper.to_array(tensor).astype(np.int64) == values).all()


def test_the_ranges_table_lists_every_integer_type_of_quantize_linear() -> None:
    claim("01-boundary-operations.md", "For the integer types ONNX defines (the list of "
          "QuantizeLinear's schema):")
    sys.path.insert(0, str(REPOSITORY / "docs" / "_ext"))
    try:
        from resnet8_numbers import INTEGER_TYPES, integer_range
    finally:
        sys.path.remove(str(REPOSITORY / "docs" / "_ext"))
    schema = onnx_defs.get_schema("QuantizeLinear", onnx_defs.onnx_opset_version())
    output_types = next(c.allowed_type_strs for c in schema.type_constraints
                        if c.type_param_str == schema.outputs[0].type_str)
    integer_types = {t[len("tensor("):-1].upper() for t in output_types if "int" in t}
    assert integer_types <= set(INTEGER_TYPES)
    for name in integer_types:  # the saturation list of the schema's own text
        low, high = integer_range(name)
        assert f"- {name.lower()}: [{low}, {high}]" in schema.doc


# -- the standard's operators ------------------------------------------------------------


def test_the_standard_has_five_integer_operators_and_qlinearadd_is_not_one() -> None:
    claim("04-architecture.md", "the standard has few: {{ standard_integer_ops }}",
          "`QLinearAdd`, `QLinearMul`, `QLinearAveragePool`, `QLinearGlobalAveragePool`, "
          "`QLinearConcat` and `QGemm` are ONNX Runtime operators of the `com.microsoft` domain")
    standard = {s.name for s in onnx_defs.get_all_schemas_with_history()
                if s.domain in ("", "ai.onnx")}
    assert {"ConvInteger", "DynamicQuantizeLinear", "MatMulInteger", "QLinearConv",
            "QLinearMatMul"} <= standard
    contrib = {s.name for s in onnxruntime.capi.onnxruntime_pybind11_state.get_all_operator_schema()
               if s.domain == "com.microsoft"}
    for name in ("QLinearAdd", "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool",
                 "QLinearConcat", "QGemm"):
        assert name not in standard and name in contrib, name
    assert not {name for name in standard if name.startswith("QLinear")} - {
        "QLinearConv", "QLinearMatMul"}


def test_the_32_bit_rule_is_quoted_from_the_schemas() -> None:
    rule = "The production MUST never overflow. The accumulation may overflow if and only if in 32 bits."
    claim("02-qlinearconv.md", f'"{rule}"')
    for op in ("ConvInteger", "MatMulInteger", "QLinearMatMul"):
        doc = " ".join(onnx_defs.get_schema(op).doc.split())
        assert "MUST never overflow" in doc or "must never overflow" in doc, op
        assert "may overflow if and only if in 32 bits" in doc, op


def test_qlinearmatmul_allows_per_row_a_and_float8_from_opset_21() -> None:
    claim("03-qlinearmatmul.md", "per row of `a`: shape $[\\ldots, M, 1]$",
          "From opset 21 the integers may also be float8")
    v21, v10 = onnx_defs.get_schema("QLinearMatMul", 21), onnx_defs.get_schema("QLinearMatMul", 10)
    assert "per row quantization" in v21.doc
    allowed = {t for c in v21.type_constraints for t in c.allowed_type_strs}
    assert "tensor(float8e4m3fn)" in allowed and "tensor(bfloat16)" in allowed
    assert "tensor(float8e4m3fn)" not in {t for c in v10.type_constraints for t in c.allowed_type_strs}
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (3, 4)).astype(np.uint8)
    b = rng.integers(0, 256, (4, 2)).astype(np.uint8)
    a_scale = np.array([[0.5], [0.25], [1.0]], np.float32)  # one per row of a
    nodes = [helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"],
                              ["y"])]
    (y,) = run(nodes, {"a": a, "b": b},
               {"sa": a_scale, "za": np.full((3, 1), 3, np.uint8), "sb": np.float32(1),
                "zb": np.uint8(5), "sy": np.float32(64), "zy": np.uint8(0)}, ["y"])
    exact = (a.astype(np.int64) - 3) @ (b.astype(np.int64) - 5) * a_scale.astype(np.float64) / 64
    assert (y == np.clip(np.rint(exact), 0, 255)).all()


def test_dynamic_quantize_linear_follows_the_page_formula() -> None:
    claim("03-qlinearmatmul.md", r"$s = (\max(0, \max x) - \min(0, \min x)) / 255$",
          r"$z = \operatorname{saturate}(\operatorname{round}(-\min(0, \min x)/s))$")
    rng = np.random.default_rng(4)
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    for x in (rng.normal(size=50), rng.uniform(0.5, 3, 50), -rng.uniform(0.5, 3, 50),
              rng.normal(size=50) * 1e3, np.array([0.0, 1e-3, -2e-3])):
        x = x.astype(np.float32)
        y, scale, zero_point = run([node], {"x": x}, {}, ["y", "s", "z"], opset=11)
        high, low = np.float32(max(0, x.max())), np.float32(min(0, x.min()))
        expected_scale = (high - low) / np.float32(255)
        assert scale == expected_scale
        assert int(zero_point) == int(np.clip(np.rint(-low / expected_scale), 0, 255))
        assert (y == np.clip(np.rint(x / expected_scale) + int(zero_point), 0, 255)).all()
    claim("03-qlinearmatmul.md", "ONNX Runtime takes $s = 1$, ONNX's reference implementation "
          "$1/255$ (the integers are 0 either way)")
    zeros = np.zeros(5, np.float32)
    y, scale, zero_point = run([node], {"x": zeros}, {}, ["y", "s", "z"], opset=11)
    assert scale == np.float32(1) / np.float32(255) and not y.any() and zero_point == 0
    graph = helper.make_graph([node], "dq", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                           [None])],
                              [helper.make_tensor_value_info(n, t, None) for n, t in (
                                  ("y", TensorProto.UINT8), ("s", TensorProto.FLOAT),
                                  ("z", TensorProto.UINT8))])
    session = onnxruntime.InferenceSession(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]).SerializeToString(),
        providers=["CPUExecutionProvider"])
    y, scale, zero_point = session.run(None, {"x": zeros})
    assert scale == 1 and not y.any() and zero_point == 0


# -- the average pool and the reshape -------------------------------------------------------


@pytest.fixture(scope="module")
def tail_constants():
    model = onnx.load(str(MODELS / "resnet8_int8.onnx"))
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = {node.name: node for node in model.graph.node}
    pool = nodes["pool/AveragePool"]
    q = nodes["pool/AveragePool_output_0_QuantizeLinear"]
    kernel = next(helper.get_attribute_value(a) for a in pool.attribute if a.name == "kernel_shape")
    return np.float32(values[q.input[1]]), values[q.input[2]].reshape(()), list(kernel)


def pool_tail(x: np.ndarray, scale, zero_point, kernel, pool_pair: bool, reshape_pair: bool):
    """DQ -> AveragePool -> [Q -> DQ] -> Reshape -> [Q -> DQ], as ResNet8 ends."""
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["f"]),
             helper.make_node("AveragePool", ["f"], ["p"], kernel_shape=kernel, strides=kernel)]
    last = "p"
    if pool_pair:
        nodes += [helper.make_node("QuantizeLinear", ["p", "s", "z"], ["pq"]),
                  helper.make_node("DequantizeLinear", ["pq", "s", "z"], ["pd"])]
        last = "pd"
    nodes.append(helper.make_node("Reshape", [last, "shape"], ["r"]))
    last = "r"
    if reshape_pair:
        nodes += [helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"]),
                  helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["rd"])]
        last = "rd"
    (y,) = run(nodes, {"x": x}, {"s": scale, "z": zero_point,
                                 "shape": np.array([x.shape[0], -1], np.int64)}, [last])
    return y


def test_one_of_the_two_pairs_after_the_pool_is_redundant_not_both(tail_constants) -> None:
    claim("03-qlinearmatmul.md", "So one of the two pairs is redundant, not both: removing "
          "either one changes no integer, but without both the dense layer would read the "
          "unrounded average.")
    no_claim("03-qlinearmatmul.md", "so the pairs could be removed without changing a single integer")
    scale, zero_point, kernel = tail_constants
    window = int(np.prod(kernel))
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (4, 64, *kernel)).astype(np.int8)
    # make a quarter of the windows exact ties: sum of (x - z) = 32 mod 64
    centred = x.astype(np.int64) - int(zero_point)
    sums = centred.reshape(4, 64, -1).sum(axis=2)
    adjust = (window // 2 - sums % window)[:2]
    corner = x[:2, :, 0, 0].astype(np.int64) + adjust
    fits = (corner >= -128) & (corner <= 127)
    x[:2, :, 0, 0] = np.where(fits, corner, x[:2, :, 0, 0]).astype(np.int8)
    both = pool_tail(x, scale, zero_point, kernel, True, True)
    assert (pool_tail(x, scale, zero_point, kernel, True, False) == both).all()
    assert (pool_tail(x, scale, zero_point, kernel, False, True) == both).all()
    neither = pool_tail(x, scale, zero_point, kernel, False, False)
    assert (neither != both).mean() > 0.5  # the unrounded average reaches the dense layer
    # the pair after the pool is where round(sum (x - z) / K) + z happens: exactly so in
    # real numbers; the float32 graph (float sums) may resolve an exact tie either way
    integers = (np.rint(both / scale).astype(np.int64) + int(zero_point)).ravel()
    sums = (x.astype(np.int64) - int(zero_point)).reshape(4, 64, -1).sum(axis=2).ravel()
    exact = np.clip([round(Fraction(int(s), window)) + int(zero_point) for s in sums], -128, 127)
    tie = sums % window == window // 2
    assert tie.sum() > 100
    assert (integers[~tie] == exact[~tie]).all()
    assert (np.abs(integers[tie] - exact[tie]) <= 1).all()


def test_a_shared_scale_pair_returns_every_integer_unchanged() -> None:
    claim("03-qlinearmatmul.md", "QuantizeLinear(DequantizeLinear($q$)) $= q$ for every integer $q$")
    for _, name, scale, zero_point in PAIRS:  # every pair, every integer: exhaustive
        info = np.iinfo(zero_point.dtype)
        q = np.arange(info.min, info.max + 1).astype(zero_point.dtype)
        (again,) = run([helper.make_node("DequantizeLinear", ["q", "s", "z"], ["f"]),
                        helper.make_node("QuantizeLinear", ["f", "s", "z"], ["r"])],
                       {"q": q}, {"s": scale, "z": zero_point}, ["r"])
        assert (again == q).all(), name


def test_average_pool_divisor_at_the_border_and_past_the_end() -> None:
    claim("05-integer-pipeline.md", "With `pads` and the default `count_include_pad` = 0, a "
          "window at the border divides by the number of its taps inside the input",
          "`ceil_mode` = 1 adds windows that overhang the input's end, divided the same way")
    ones = np.ones((1, 1, 5, 5), np.float32)
    pool = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    (excluded,) = run([helper.make_node("AveragePool", ["x"], ["y"], **pool)], {"x": ones}, {},
                      ["y"])
    (included,) = run([helper.make_node("AveragePool", ["x"], ["y"], count_include_pad=1,
                                        **pool)], {"x": ones}, {}, ["y"])
    assert (excluded == 1).all()
    assert included[0, 0, 0, 0] == pytest.approx(4 / 9) and included[0, 0, 2, 2] == 1
    (ceil,) = run([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2],
                                    strides=[2, 2], ceil_mode=1)],
                  {"x": np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)}, {}, ["y"])
    assert ceil.shape == (1, 1, 3, 3)
    assert ceil[0, 0, 2, 2] == 24  # the one tap inside, divided by 1
    assert ceil[0, 0, 0, 2] == pytest.approx((4 + 9) / 2)


# -- convolution ------------------------------------------------------------------------


def test_accumulator_bounds_hold_at_the_worst_inputs() -> None:
    claim("02-qlinearconv.md", r"and INT32 cannot overflow while $K \cdot 255 \cdot 127 + "
          r"\lvert b_c\rvert < 2^{31}$", r"the accumulator bound becomes $K \cdot 128 \cdot "
          r"127 + \lvert b'_c\rvert$")
    sys.path.insert(0, str(REPOSITORY / "docs" / "_ext"))
    try:
        import resnet8_fragments
        from resnet8_numbers import IntegerGroup, ShowcaseModel
    finally:
        sys.path.remove(str(REPOSITORY / "docs" / "_ext"))
    model = ShowcaseModel("resnet8_int8.onnx")
    rows = {row.split("|")[1].strip(" `"): row.split("|")
            for row in resnet8_fragments.accumulator_table(
                resnet8_fragments.integer_groups(model)).splitlines()[2:]}
    for group in resnet8_fragments.integer_groups(model):
        assert isinstance(group, IntegerGroup)
        w = group.weights - group.weight_zero_point[:, None]
        low, high = group.x.qmin - group.x.zero_point, group.x.qmax - group.x.zero_point
        # a linear form over a box is extreme at a corner chosen by the signs of w
        largest = np.where(w > 0, high, low) * w
        smallest = np.where(w > 0, low, high) * w
        extremes = np.concatenate([largest.sum(1) + group.bias, smallest.sum(1) + group.bias])
        page_any = int(rows[group.name][5].strip().replace(",", ""))
        page_these = int(rows[group.name][7].strip().replace(",", ""))
        assert np.abs(extremes).max() <= page_these <= page_any < 2**31 - 1
        assert group.accumulation_length * 255 * 127 + int(np.abs(group.bias).max()) == page_any
        # the folded form: x in [qmin, qmax], the bias b' = b - z_x sum w
        folded_bias = group.bias - group.x.zero_point * w.sum(1)
        folded = np.concatenate([np.where(w > 0, group.x.qmax, group.x.qmin) * w,
                                 np.where(w > 0, group.x.qmin, group.x.qmax) * w])
        folded_extremes = folded.reshape(2, *w.shape).sum(2) + folded_bias
        assert (folded_extremes[0] == extremes[:len(w)]).all()  # the same accumulator
        assert (np.abs(folded_extremes) <= group.accumulation_length * 128 * 127
                + np.abs(folded_bias)).all()
        assert (np.abs(w * np.where(w > 0, group.x.qmin, group.x.qmax)) <= 128 * 127).all()


def conv_integer(x, w, x_zero_point, w_zero_point, **attributes):
    inputs = {"x": x, "w": w}
    (y,) = run([helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attributes)],
               inputs, {"xz": x_zero_point, "wz": w_zero_point}, ["y"], opset=10)
    return y


def expanded_accumulator(x, w, x_zero_point, w_zero_points, group: int, pad_value: int):
    """sum x w - z_w sum x - z_x sum w + K z_x z_w over 3x3 windows with padding 1."""
    channels = x.shape[1]
    padded = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=pad_value)
    out = np.zeros((1, w.shape[0], x.shape[2], x.shape[3]), np.int64)
    per_group = channels // group
    k = per_group * 9
    for c in range(w.shape[0]):
        g = c // (w.shape[0] // group)
        weights = w[c].astype(np.int64)
        for i in range(x.shape[2]):
            for j in range(x.shape[3]):
                window = padded[0, g * per_group:(g + 1) * per_group, i:i + 3, j:j + 3]
                out[0, c, i, j] = ((window * weights).sum() - w_zero_points[c] * window.sum()
                                   - x_zero_point * weights.sum()
                                   + k * x_zero_point * w_zero_points[c])
    return out


@pytest.mark.parametrize("group", [1, 2, 4])
def test_weight_zero_points_need_the_window_sum_with_padded_taps(group: int) -> None:
    claim("02-qlinearconv.md", "so $K = (C/g) \\cdot k_h \\cdot k_w$",
          "the kernel must compute the window sum $\\sum_k x_k$ at run time, once per output "
          "position (shared by all output channels), and the padded taps count in it with the "
          "value $z_x$")
    rng = np.random.default_rng(group)
    x = rng.integers(0, 256, (1, 4, 5, 5)).astype(np.uint8)
    w = rng.integers(0, 256, (4, 4 // group, 3, 3)).astype(np.uint8)
    w_zero_points = np.array([0, 17, 128, 255], np.uint8)
    x_zero_point = np.uint8(37)
    y = conv_integer(x, w, x_zero_point, w_zero_points, pads=[1, 1, 1, 1], group=group)
    right = expanded_accumulator(x, w, 37, w_zero_points.astype(np.int64), group, 37)
    wrong = expanded_accumulator(x, w, 37, w_zero_points.astype(np.int64), group, 0)
    assert (y == right).all()
    border = np.zeros(y.shape, bool)
    border[..., 0, :] = border[..., -1, :] = border[..., :, 0] = border[..., :, -1] = True
    assert (y != wrong)[border].all() and (y == wrong)[~border].all()


def test_onnxruntime_qlinearconv_takes_differing_per_channel_weight_zero_points() -> None:
    claim("02-qlinearconv.md", "ONNX Runtime's CPU `QLinearConv` accepts per-channel weight "
          "zero points that differ from each other; the test suite checks its results against "
          "this expansion.")
    rng = np.random.default_rng(7)
    x = rng.integers(3, 10, (1, 3, 5, 5)).astype(np.uint8)  # x - z_x in [0, 6]
    w_zero_points = np.array([0, 1, -2], np.int8)
    w = (rng.integers(-2, 3, (3, 1, 3, 3)) + w_zero_points[:, None, None, None]).astype(np.int8)
    initializers = {"xs": np.float32(0.5), "xz": np.uint8(3), "w": w,
                    "ws": np.full(3, 0.25, np.float32), "wz": w_zero_points,
                    "ys": np.float32(0.125), "yz": np.uint8(100)}  # M = 1: no rounding
    graph = helper.make_graph(
        [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                          pads=[1, 1, 1, 1], group=3)], "conv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    acc = expanded_accumulator(x, w, 3, w_zero_points.astype(np.int64), 3, 3)
    assert np.abs(acc).max() < 100 and len(np.unique(acc)) > 10
    assert (y.astype(np.int64) == acc + 100).all()


# -- rounding and fixed point -------------------------------------------------------------


def test_half_up_sends_every_tie_up() -> None:
    claim("05-integer-pipeline.md", r"$-2.5 \to -2$ but $2.5 \to 3$",
          "so over many ties it adds half a step on average instead of cancelling out")
    p = np.arange(-(1 << 16), (1 << 16) + 1, dtype=np.int64)
    for shift in range(1, 9):  # exhaustive over the products in this range
        half_up = (p + (1 << (shift - 1))) >> shift
        exact = p / float(1 << shift)  # exact in float64
        tie = exact % 1 == 0.5
        assert (half_up[~tie] == np.rint(exact[~tie])).all()  # not a tie: the nearest
        assert (half_up[tie] == exact[tie] + 0.5).all()  # a tie: up
        even = np.rint(exact)  # numpy: half to even
        assert (half_up[tie] - exact[tie]).mean() == 0.5
        assert (even[tie] - exact[tie]).mean() == 0
    assert ((np.array([-5, 5]) + 1) >> 1).tolist() == [-2, 3]  # -2.5 and 2.5 in halves


def fragments_module():
    sys.path.insert(0, str(REPOSITORY / "docs" / "_ext"))
    try:
        import implementer_fragments
    finally:
        sys.path.remove(str(REPOSITORY / "docs" / "_ext"))
    return implementer_fragments


def test_the_doubling_high_multiply_overflows_only_for_int32_min_squared() -> None:
    claim("05-integer-pipeline.md", "the only pair whose result does not fit in `int32` is "
          "$a = b = -2^{31}$ (the exact result is $2^{31}$), and it returns $2^{31} - 1$ there")
    module = fragments_module()
    extremes = [-(1 << 31), -(1 << 31) + 1, -(1 << 30), -3, -1, 0, 1, 3, (1 << 30),
                (1 << 31) - 2, (1 << 31) - 1]
    rng = np.random.default_rng(8)
    values = extremes + rng.integers(-(1 << 31), 1 << 31, 40).tolist()
    for b in values:
        a = np.array(values, np.int64)
        result = module.saturating_rounding_doubling_high_mul(a, b)
        for x, y in zip(values, result):
            exact = Fraction(2 * x * b, 1 << 32)
            fits = -(1 << 31) <= exact <= (1 << 31) - 1
            assert fits == (not (x == b == -(1 << 31))), (x, b)
            if fits:  # the nearest integer (a tie may go either way)
                assert abs(int(y) - exact) <= Fraction(1, 2), (x, b)
            else:
                assert y == (1 << 31) - 1


def test_multipliers_above_one_shift_left() -> None:
    claim("05-integer-pipeline.md", "(negative: a left shift, for the Add factors above 1)",
          "the accumulator is shifted left by $-n$ before the multiplication")
    sys.path.insert(0, str(REPOSITORY / "docs" / "_ext"))
    try:
        from resnet8_numbers import ShowcaseModel
    finally:
        sys.path.remove(str(REPOSITORY / "docs" / "_ext"))
    module = fragments_module()
    model = ShowcaseModel("resnet8_int8.onnx")
    factors = [c[0] / c[4] for c in (module.add_constants(model, node.name)
                                     for node in model.nodes_of("Add"))]
    assert any(f >= 1 for f in factors)
    for factor in factors:
        fixed = quantize_multiplier(factor)
        assert (fixed.shift < 0) == (factor >= 1)
        q31, exponent = module.quantize_multiplier(factor)
        assert exponent == -fixed.shift and abs(q31 - fixed.multiplier) <= 1
        values = np.arange(-255, 256)
        result = module.multiply_by_quantized_multiplier(values, q31, exponent)
        assert (np.abs(result - values * factor) <= 0.5 + 1e-6).all()
    assert (1 << 30) << 1 > (1 << 31) - 1  # an accumulator of 2^30 no longer fits after one shift


def test_add_is_not_bit_exact_across_runtimes() -> None:
    claim("05-integer-pipeline.md", "TensorFlow Lite's int8 Add shifts both inputs left by 20 "
          "bits, scales each by its own Q31 multiplier and the sum by a third: three "
          "roundings", "With ResNet8's scales all three agree.")
    module = fragments_module()
    model = module.ShowcaseModel("resnet8_int8.onnx")
    a, b = module.every_int8_pair()
    cases = {node.name: module.add_constants(model, node.name) for node in model.nodes_of("Add")}
    cases.update(module.CONSTRUCTED_ADDS)
    differences = {}
    for name, (sa, za, sb, zb, sy, zy) in cases.items():
        assert all(np.float32(s) == s for s in (sa, sb, sy))  # float32 scales, as a model holds
        exact = np.clip(exact_add_rounding(a - za, b - zb, sa, sb, sy) + zy, -128, 127)
        one = module.single_rounding_add(a, b, sa, za, sb, zb, sy, zy)
        assert (one == exact).all(), name
        tflite = module.tflite_add(a, b, sa, za, sb, zb, sy, zy)
        runtime = module.onnxruntime_add(a, b, sa, za, sb, zb, sy, zy).astype(np.int64)
        differences[name] = (int((tflite != exact).sum()), int((runtime != exact).sum()))
    assert all(differences[node.name] == (0, 0) for node in model.nodes_of("Add"))
    assert differences["ratios"][0] > 1000  # ties: away from zero vs to even
    assert min(differences["arbitrary"]) > 0  # both runtimes part from one rounding
    # a scalar transcription of TFLite's reference kernel agrees with the vectorised one
    sa, za, sb, zb, sy, zy = module.CONSTRUCTED_ADDS["arbitrary"]
    for i, j in zip(a[::997], b[::997]):
        assert tflite_scalar(int(i), int(j), sa, za, sb, zb, sy, zy) == \
            module.tflite_add(np.array([i]), np.array([j]), sa, za, sb, zb, sy, zy)[0]


def exact_add_rounding(i: np.ndarray, j: np.ndarray, sa: float, sb: float,
                       sy: float) -> np.ndarray:
    """round_half_to_even((sa i + sb j) / sy) in integers: the scales as dyadic fractions."""
    fractions = [Fraction(v) for v in (sa, sb, sy)]
    denominator = max(f.denominator for f in fractions)
    A, B, Y = (int(f * denominator) for f in fractions)
    numerator = A * i.astype(np.int64) + B * j.astype(np.int64)
    quotient, remainder = np.divmod(numerator, Y)
    up = (2 * remainder > Y) | ((2 * remainder == Y) & (quotient % 2 == 1))
    return quotient + up


def tflite_scalar(i: int, j: int, sa, za, sb, zb, sy, zy) -> int:
    """``reference_integer_ops::AddElementwise`` for one pair, in Python integers."""
    def quantize(real: float) -> tuple[int, int]:
        import math
        mantissa, exponent = math.frexp(real)
        q = int(Fraction(mantissa) * (1 << 31) + Fraction(1, 2))
        return (q // 2, exponent + 1) if q == 1 << 31 else (q, exponent)

    def high_mul(x: int, m: int) -> int:
        if x == m == -(1 << 31):
            return (1 << 31) - 1
        product = x * m
        nudged = product + ((1 << 30) if product >= 0 else 1 - (1 << 30))
        return nudged // (1 << 31) if nudged >= 0 else -((-nudged) // (1 << 31))

    def divide(x: int, exponent: int) -> int:
        mask = (1 << exponent) - 1
        return (x >> exponent) + (1 if (x & mask) > (mask >> 1) + (x < 0) else 0)

    def scale(x: int, real: float) -> int:
        m, e = quantize(real)
        return divide(high_mul(x << max(e, 0), m), max(-e, 0))

    twice = 2 * max(sa, sb)
    total = scale((i - za) << 20, sa / twice) + scale((j - zb) << 20, sb / twice)
    return min(127, max(-128, scale(total, twice / ((1 << 20) * sy)) + zy))


# -- VPMADDUBSW and ONNX Runtime's rewrites ------------------------------------------------


def pair_sums(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return activations[:, None, :] * weights[None, :, :]


def test_vpmaddubsw_saturates_only_for_large_same_sign_weight_pairs() -> None:
    claim("05-integer-pipeline.md", r"$2 \cdot 255 \cdot 127 = 64770 > 32767$",
          r"it takes $a_1 + a_2 \ge 257$ and $\lvert w_1 + w_2\rvert \ge 129$",
          r"One product never saturates ($255 \cdot 128 = 32640$), and neither does a pair of "
          "products of opposite sign")
    assert 2 * 255 * 127 == 64770 and 64770 > INT16_MAX
    assert 255 * 128 == 32640 and 255 * 128 <= INT16_MAX
    grid = np.arange(-128, 128)
    w1, w2 = (v.ravel() for v in np.meshgrid(grid, grid, indexing="ij"))
    # the sum is linear in (a1, a2) in [0, 255]^2: its extremes are at the four corners
    corners = np.array([[0, 0], [0, 255], [255, 0], [255, 255]])
    sums = corners[:, 0, None] * w1 + corners[:, 1, None] * w2
    saturates = ((sums > INT16_MAX) | (sums < -INT16_MAX - 1)).any(axis=0)
    same_sign = (w1 * w2 > 0)
    assert (saturates == (same_sign & (np.abs(w1 + w2) >= 129))).all()  # all 65,536 pairs
    # and the activations: exhaustive over (a1, a2), weights at their extremes
    a1, a2 = (v.ravel() for v in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    extremes = np.array([[-128, -128], [127, 127], [-128, 127], [127, -128]])
    sums = a1[None] * extremes[:, 0, None] + a2[None] * extremes[:, 1, None]
    can_saturate = ((sums > INT16_MAX) | (sums < -INT16_MAX - 1)).any(axis=0)
    assert (can_saturate == (a1 + a2 >= 257)).all()


def test_reduce_range_weights_fit_a_pair_sum() -> None:
    claim("05-integer-pipeline.md", r"`reduce_range=True` quantizes weights to $[-64, 64]$, and "
          r"$2 \cdot 255 \cdot 64 = 32640$ fits")
    from onnxruntime.quantization.quant_utils import get_qmin_qmax_for_qType

    low, high = get_qmin_qmax_for_qType(TensorProto.INT8, reduce_range=True, symmetric=True)
    assert (int(low), int(high)) == (-64, 64)
    assert 2 * 255 * max(-int(low), int(high)) == 32640
    assert 2 * 255 * max(-int(low), int(high)) <= INT16_MAX


def optimized(model: onnx.ModelProto | Path, path: Path,
              level=onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED) -> onnx.ModelProto:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = level
    options.optimized_model_filepath = str(path)
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return onnx.load(str(path))


def qdq_conv(activation_type, bias_factor: float = 1.0, second_consumer: bool = False):
    """Q -> DQ -> Conv (DQ weight, DQ INT32 bias) -> Q -> DQ, optionally the input DQ read twice."""
    x_scale, w_scale = np.float32(0.02), np.float32(0.01)
    weights = np.random.default_rng(9).integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    values = {"xs": x_scale, "xz": np.zeros((), activation_type), "w": weights, "ws": w_scale,
              "wz": np.int8(0), "b": np.arange(4, dtype=np.int32) * 100,
              "bs": np.float32(np.float32(x_scale * w_scale) * np.float32(bias_factor)),
              "bz": np.int32(0), "ys": np.float32(0.05), "yz": np.zeros((), activation_type)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bd"]),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if second_consumer:
        nodes.append(helper.make_node("Relu", ["xd"], ["r"]))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 8, 8])], outputs,
        [numpy_helper.from_array(np.asarray(v), k) for k, v in values.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def fused(model: onnx.ModelProto, path: Path) -> bool:
    return any(node.op_type == "QLinearConv" for node in optimized(model, path).graph.node)


def test_onnxruntime_fuses_only_under_conditions(tmp_path: Path) -> None:
    claim("05-integer-pipeline.md", "in ONNX Runtime {{ onnxruntime_version }}, tested in the "
          "test suite", "a bias whose stored scale differs from $s_x s_w$ by 2 % keeps the "
          "convolution in float, while a difference of 1 % is fused")
    path = tmp_path / "optimized.onnx"
    assert fused(qdq_conv(np.uint8), path)
    assert fused(qdq_conv(np.uint8, 1.01), path) and fused(qdq_conv(np.uint8, 0.99), path)
    assert not fused(qdq_conv(np.uint8, 1.02), path)
    assert not fused(qdq_conv(np.uint8, 0.98), path)
    arm = platform.machine().lower() in ("aarch64", "arm64")
    # a second consumer of the input DQ: UINT8 still fuses; INT8 off ARM is left in float,
    # because the S8 -> U8 rewrite it needs there takes single-consumer DQs only
    assert fused(qdq_conv(np.uint8, second_consumer=True), path)
    assert fused(qdq_conv(np.int8, second_consumer=True), path) == arm
    assert fused(qdq_conv(np.int8), path)


def test_onnxruntime_turns_int8_activations_into_uint8_off_arm(tmp_path: Path) -> None:
    claim("05-integer-pipeline.md", "Off ARM, ONNX Runtime's `QDQS8ToU8Transformer` rewrites "
          "INT8 activation pairs to UINT8 (zero point plus 128)")
    model = optimized(MODELS / "resnet8_int8.onnx", tmp_path / "int8.onnx")
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    first = next(node for node in model.graph.node
                 if node.op_type == "QuantizeLinear" and node.input[0] == "input")
    zero_point = values[first.input[2]]
    if platform.machine().lower() in ("aarch64", "arm64"):
        assert zero_point.dtype == np.int8
    else:
        assert zero_point.dtype == np.uint8 and int(zero_point) == -128 + 128
    assert re.search(r"s8_to_u8", " ".join(first.input)) or zero_point.dtype == np.int8
