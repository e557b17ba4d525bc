"""Fragments of what an implementer otherwise looks up elsewhere (issue #20).

The numbers come from the committed models, from ONNX's operator schemas
(``onnx.defs``) and reference implementation (``onnx.reference``), and from
ONNX Runtime run on this machine; ``tests/test_page_claims.py`` tries to break
every bound and equality the pages state with them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
from fragments import code, integer, number, table
from onnx import TensorProto, helper, numpy_helper
from onnx import defs as onnx_defs
from onnx.reference import ReferenceEvaluator
from resnet8_numbers import Affine, IntegerGroup, ShowcaseModel

from sphinxext_qdq.render.text import format_scale

#: The inputs whose float32 quotient lands on a tie that ties-to-even resolves away
#: from the exact quotient (issue #20), by Q/DQ pair.
ROUNDTRIP_TIES = {"input_QuantizeLinear": 0.70000005, "logits_QuantizeLinear": -5.0280986}

FLOAT8_TYPES = {"FLOAT8E4M3FN": TensorProto.FLOAT8E4M3FN,
                "FLOAT8E4M3FNUZ": TensorProto.FLOAT8E4M3FNUZ,
                "FLOAT8E5M2": TensorProto.FLOAT8E5M2,
                "FLOAT8E5M2FNUZ": TensorProto.FLOAT8E5M2FNUZ}

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# -- 01: the round trip ---------------------------------------------------------------


def exact_error(affine: Affine, x: np.float32) -> float:
    """``|x - (q - z) s|`` with the product computed exactly (no DequantizeLinear rounding)."""
    q = int(affine.quantize(np.array([x]))[0])
    return float(abs(Fraction(float(x)) - (q - affine.zero_point) * Fraction(float(affine.scale))))


def roundtrip_ties(model: ShowcaseModel) -> str:
    """The tie cases: exact quotient, float32 quotient, q, error against s/2."""
    rows = []
    for name, value in ROUNDTRIP_TIES.items():
        affine = model.affine(name)
        x = np.float32(value)
        exact = Fraction(float(x)) / Fraction(float(affine.scale))
        quotient = affine.quotient(np.array([x]))[0]
        q = int(affine.quantize(np.array([x]))[0])
        nearest = math.floor(exact + Fraction(1, 2)) + affine.zero_point
        error, half = exact_error(affine, x), float(affine.scale) / 2
        if not error > half:
            raise ValueError(f"{name}: x = {x} no longer exceeds s/2")
        rows.append([code(name), format_scale(float(x)), number(float(exact), 10),
                     format_scale(float(quotient)), integer(q), integer(nearest),
                     number(error, 8), number(half, 8)])
    return table(["Q/DQ pair", "$x$", "exact $x / s$", "float32 $x / s$", "$q$",
                  "nearest $q$", "$\\lvert x - (q - z)\\,s\\rvert$ (exact)", "$s/2$"], rows,
                 [22, 11, 13, 11, 6, 8, 15, 14])


# -- 01: float8 and packed types --------------------------------------------------------


def quantize_reference(x: np.ndarray, element_type: int, saturate: int, opset: int = 21):
    """QuantizeLinear (scale 1, zero point 0 of ``element_type``) by ``onnx.reference``."""
    zero = numpy_helper.from_array(np.zeros((), helper.tensor_dtype_to_np_dtype(element_type)), "z")
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], saturate=saturate)
    graph = helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", element_type, [None])],
        [numpy_helper.from_array(np.array(1, np.float32), "s"), zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, {"x": np.asarray(x, np.float32)})[0]


def float8_table() -> str:
    """Largest finite value and what happens to overflow, Inf and NaN, per float8 type."""
    probes = np.array([1e6, np.inf, np.nan], np.float32)
    rows = []
    for name, element_type in FLOAT8_TYPES.items():
        finfo = ml_dtypes.finfo(helper.tensor_dtype_to_np_dtype(element_type))
        saturated = quantize_reference(probes, element_type, 1).astype(np.float32)
        wrapped = quantize_reference(probes, element_type, 0).astype(np.float32)
        rows.append([name, number(float(finfo.max)),
                     *(number(float(v)) for v in saturated[:2]),
                     *(number(float(v)) for v in wrapped[:2]),
                     number(float(saturated[2]))])
    return table(["Type", "Largest finite", "$10^6$, `saturate=1`", "$+\\infty$, `saturate=1`",
                  "$10^6$, `saturate=0`", "$+\\infty$, `saturate=0`", "NaN"], rows)


def packing_example() -> str:
    """How ``onnx.numpy_helper`` packs INT4 and INT2 tensors of odd length."""
    rows = []
    for name, dtype, values in (("INT4", ml_dtypes.int4, [1, -2, 3]),
                                ("UINT4", ml_dtypes.uint4, [1, 14, 3]),
                                ("INT2", ml_dtypes.int2, [1, -2, 1])):
        tensor = numpy_helper.from_array(np.array(values, dtype), "t")
        rows.append([name, ", ".join(map(str, values)),
                     " ".join(f"`{byte:08b}`" for byte in tensor.raw_data),
                     len(tensor.raw_data)])
    return table(["Type", "Elements (in order)", "Bytes of `raw_data` (most significant bit first)",
                  "Bytes"], rows)


# -- 04: the standard's integer operators ---------------------------------------------------


def standard_integer_operators() -> list[str]:
    """Operators of the default ONNX domain that take or return quantized integers."""
    return sorted({schema.name for schema in onnx_defs.get_all_schemas_with_history()
                   if schema.domain in ("", "ai.onnx")
                   and (schema.name.startswith("QLinear") or schema.name.endswith("Integer")
                        or schema.name == "DynamicQuantizeLinear")})


# -- 05: Add across runtimes ------------------------------------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: Q31 mantissa (rounded half away) and exponent."""
    mantissa, exponent = math.frexp(real)
    q31 = math.floor(abs(mantissa) * (1 << 31) + 0.5)
    if q31 == 1 << 31:
        q31, exponent = q31 // 2, exponent + 1
    return q31, exponent


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` on int64 arrays holding int32."""
    a = np.asarray(a, np.int64)
    product = a * np.int64(b)
    nudged = product + np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))  # C division: toward 0
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: arithmetic shift, ties away from zero."""
    x = np.asarray(x, np.int64)
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, q31: int, exponent: int) -> np.ndarray:
    left, right = max(exponent, 0), max(-exponent, 0)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(np.asarray(x, np.int64) << left, q31), right)


def tflite_add(a: np.ndarray, b: np.ndarray, sa: float, za: int, sb: float, zb: int,
               sy: float, zy: int) -> np.ndarray:
    """TFLite's int8 Add (``kernels/add.cc``, ``reference_integer_ops/add.h``): both inputs
    shifted left by 20, each scaled by its own Q31 multiplier, the sum by a third."""
    left_shift = 20
    twice_max = 2 * max(sa, sb)
    ma, mb = quantize_multiplier(sa / twice_max), quantize_multiplier(sb / twice_max)
    my = quantize_multiplier(twice_max / ((1 << left_shift) * sy))
    scaled_a = multiply_by_quantized_multiplier((np.asarray(a, np.int64) - za) << left_shift, *ma)
    scaled_b = multiply_by_quantized_multiplier((np.asarray(b, np.int64) - zb) << left_shift, *mb)
    raw = multiply_by_quantized_multiplier(scaled_a + scaled_b, *my) + zy
    return np.clip(raw, -128, 127)


def single_rounding_add(a: np.ndarray, b: np.ndarray, sa: float, za: int, sb: float, zb: int,
                        sy: float, zy: int) -> np.ndarray:
    """``saturate(round_half_to_even((sa (a - za) + sb (b - zb)) / sy) + zy)``, exactly."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    value = (sa * (a - za) + sb * (b - zb)) / sy  # float64; exact ties are re-checked below
    rounded = np.rint(value)
    near = np.flatnonzero(np.abs(np.abs(value - np.floor(value)) - 0.5) < 1e-6)
    fa, fb, fy = Fraction(sa), Fraction(sb), Fraction(sy)
    for i in near:
        exact = (fa * int(a[i] - za) + fb * int(b[i] - zb)) / fy
        rounded[i] = round(exact)  # Python's round of a Fraction: half to even
    return np.clip(rounded.astype(np.int64) + zy, -128, 127)


def onnxruntime_add(a: np.ndarray, b: np.ndarray, sa: float, za: int, sb: float, zb: int,
                    sy: float, zy: int) -> np.ndarray:
    """A lone DQ, DQ -> Add -> Q group run by ONNX Runtime's CPU provider (fused by it)."""
    import onnxruntime

    def pair(prefix: str, s: float, z: int) -> list:
        return [numpy_helper.from_array(np.array(s, np.float32), f"{prefix}_s"),
                numpy_helper.from_array(np.array(z, np.int8), f"{prefix}_z")]

    nodes = [helper.make_node("DequantizeLinear", ["a", "a_s", "a_z"], ["fa"]),
             helper.make_node("DequantizeLinear", ["b", "b_s", "b_z"], ["fb"]),
             helper.make_node("Add", ["fa", "fb"], ["sum"]),
             helper.make_node("QuantizeLinear", ["sum", "y_s", "y_z"], ["y"])]
    graph = helper.make_graph(
        nodes, "add", [helper.make_tensor_value_info(n, TensorProto.INT8, [None]) for n in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [None])],
        pair("a", sa, za) + pair("b", sb, zb) + pair("y", sy, zy))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"a": np.asarray(a, np.int8), "b": np.asarray(b, np.int8)})[0]


def add_constants(model: ShowcaseModel, add_name: str) -> tuple:
    """(s_a, z_a, s_b, z_b, s_y, z_y) of a residual Add, as Python floats and ints."""
    node = model.nodes[add_name]
    a, b = (model.affine(model.producer(name).name) for name in node.input[:2])
    y = model.affine(next(c for c in model.consumers(node.output[0])
                          if c.op_type == "QuantizeLinear").name)
    return (float(a.scale), a.zero_point, float(b.scale), b.zero_point,
            float(y.scale), y.zero_point)


def every_int8_pair() -> tuple[np.ndarray, np.ndarray]:
    grid = np.arange(-128, 128, dtype=np.int64)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    return a.reshape(-1), b.reshape(-1)


#: Two Adds that are not ResNet8's: input scales 1/2 and 3/4 of the output scale (exact
#: sums land on ties), and arbitrary float32 scales found by a seeded search (seed 1) for
#: inputs on which the runtimes part.
CONSTRUCTED_ADDS = {
    "ratios": (0.03125, -128, 0.046875, 5, 0.0625, -128),
    "arbitrary": (0.05484588444232941, 50, 0.19666393101215363, -80, 0.0862298533320427, 108),
}


def add_exactness(model: ShowcaseModel) -> str:
    """For every residual Add, and two constructed ones, over all 65,536 input pairs: where
    TFLite's and ONNX Runtime's integer Adds differ from one rounding of the exact sum."""
    a, b = every_int8_pair()
    cases = [(code(node.name), add_constants(model, node.name))
             for node in model.nodes_of("Add")]
    for name, constants in CONSTRUCTED_ADDS.items():
        sa, _, sb, _, sy, _ = constants
        label = (f"constructed ({name}): $s_a / s_y$ = {number(sa / sy, 6)}, "
                 f"$s_b / s_y$ = {number(sb / sy, 6)}")
        cases.append((label, constants))
    rows = []
    for label, constants in cases:
        exact = single_rounding_add(a, b, *constants)
        tflite = tflite_add(a, b, *constants)
        runtime = onnxruntime_add(a, b, *constants).astype(np.int64)
        rows.append([label, integer(int((tflite != exact).sum())),
                     integer(int(np.abs(tflite - exact).max())),
                     integer(int((runtime != exact).sum())),
                     integer(int(np.abs(runtime - exact).max()))])
    return table(["Add", "TFLite int8 Add ≠ one rounding (of 65,536)", "by up to",
                  "ONNX Runtime (this machine) ≠ one rounding", "by up to"], rows)


def onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def pool_window(model: ShowcaseModel) -> int:
    """Values averaged by the model's (one) AveragePool: the product of its kernel shape."""
    (pool,) = model.nodes_of("AveragePool")
    return int(np.prod(model.attribute(pool, "kernel_shape")))


FLOAT32_EXACT_INTEGERS = 1 << 24


def accumulator_float32(model: ShowcaseModel) -> str:
    """Whether the model's INT32 accumulators stay where float32 holds every integer."""
    groups = [IntegerGroup(model, node.name) for node in model.proto.graph.node
              if node.op_type in ("Conv", "Gemm")]
    bounds = {group.name: group.accumulator_bound() for group in groups}
    these = max(bounds, key=lambda name: bounds[name][1])
    worst = max(bounds, key=lambda name: bounds[name][0])
    def side(value: int) -> str:
        return "below" if value <= FLOAT32_EXACT_INTEGERS else "above"
    return (f"the largest accumulator bound of ResNet8 with its actual weights is "
            f"{integer(bounds[these][1])} ({code(these)}), {side(bounds[these][1])} "
            f"$2^{{24}}$ = {integer(FLOAT32_EXACT_INTEGERS)}; with any weights of their size "
            f"{code(worst)} could reach {integer(bounds[worst][0])}, "
            f"{side(bounds[worst][0])} it.")


def substitutions(model: ShowcaseModel | None = None) -> dict[str, str]:
    """Values for ``{{ name }}`` in the pages, next to ``resnet8_fragments.substitutions``."""
    model = model or ShowcaseModel("resnet8_int8.onnx")
    return {
        "standard_integer_ops": ", ".join(code(name) for name in standard_integer_operators()),
        "pool_window": str(pool_window(model)),
        "accumulator_float32": accumulator_float32(model),
        "onnxruntime_version": onnxruntime_version(),
    }


def all_fragments(model: ShowcaseModel | None = None) -> dict[str, str]:
    model = model or ShowcaseModel("resnet8_int8.onnx")
    return {
        "boundary-roundtrip-ties.md": roundtrip_ties(model),
        "boundary-float8.md": float8_table(),
        "boundary-packing.md": packing_example(),
        "pipeline-add-exactness.md": add_exactness(model),
    }
