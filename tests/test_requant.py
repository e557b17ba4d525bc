"""Requantization recipes: the fixed-point multiplier, the rounding, and the recipe of
every group, checked against exact rational arithmetic (``fractions.Fraction``) and
against the scales read from the models with ``onnx.numpy_helper``."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from docutils import nodes
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper
from sphinx_helpers import build, follow, has_id, make_project

from sphinxext_qdq.analysis import load_qdq_model
from sphinxext_qdq.integer.requant import (
    quantize_multiplier,
    requant_recipes,
    requantize,
    round_shift,
    saturate,
)
from sphinxext_qdq.onnxio.dtypes import integer_range
from sphinxext_qdq.render.text import format_scale

REPOSITORY = Path(__file__).resolve().parent.parent
RESNET8 = REPOSITORY / "models" / "resnet8_int8.onnx"


# -- the fixed-point multiplier ----------------------------------------------------------------
@pytest.mark.parametrize(("real", "multiplier", "shift"), [
    (0.5, 1 << 30, 0),           # 0.5 = 2^30 / 2^31
    (0.25, 1 << 30, 1),
    (1.0, 1 << 30, -1),          # a left shift
    (0.75, 3 << 29, 0),
    (2.0 ** -20, 1 << 30, 19),
    (1.5, 3 << 29, -1),
])
def test_quantize_multiplier_on_values_worked_by_hand(real: float, multiplier: int,
                                                      shift: int) -> None:
    m = quantize_multiplier(real)
    assert (m.multiplier, m.shift) == (multiplier, shift)
    assert m.total_shift == 31 + shift  # the bits dropped after the 64-bit product
    assert m.applied == real and m.relative_error == 0


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0 ** -40, max_value=2.0 ** 10, allow_nan=False,
                 allow_infinity=False))
def test_multiplier_is_q31_and_within_half_a_step_of_the_real_value(real: float) -> None:
    m = quantize_multiplier(real)
    assert (1 << 30) <= m.multiplier < (1 << 31)
    step = Fraction(1, 2 ** (31 + m.shift)) if m.shift >= -31 else Fraction(2 ** -(31 + m.shift))
    applied = m.multiplier * step
    assert abs(applied - Fraction(real)) <= step / 2
    assert abs(m.relative_error) <= 2.0 ** -31
    assert m.applied == float(applied)


def test_a_mantissa_rounding_up_to_two_to_the_31_is_halved() -> None:
    m = quantize_multiplier(1 - 2.0 ** -40)  # the Q31 mantissa rounds to exactly 2^31
    assert (m.multiplier, m.shift) == (1 << 30, -1)
    assert m.applied == 1.0


def test_zero_and_invalid_multipliers() -> None:
    zero = quantize_multiplier(0.0)
    assert (zero.multiplier, zero.shift, zero.relative_error) == (0, 0, 0.0)
    for bad in (-0.5, math.nan, math.inf):
        with pytest.raises(ValueError):
            quantize_multiplier(bad)


# -- rounding ------------------------------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(st.integers(-(2 ** 31) + 1, 2 ** 31 - 1), st.integers(1 << 30, (1 << 31) - 1),
       st.integers(1, 62))
def test_requantize_rounds_the_exact_quotient_once(accumulator: int, multiplier: int,
                                                  total_shift: int) -> None:
    exact = Fraction(accumulator * multiplier, 2 ** total_shift)
    values = np.array([accumulator])
    assert requantize(values, multiplier, total_shift, "half_even")[0] == round(exact)  # banker's
    assert requantize(values, multiplier, total_shift, "half_up")[0] == math.floor(exact + Fraction(1, 2))


def test_ties_go_to_even_or_up() -> None:
    halves = np.array([1, 3, 5, -1, -3, -5, 2])  # /2: 0.5 1.5 2.5 -0.5 -1.5 -2.5 1
    assert round_shift(halves, 1, "half_even").tolist() == [0, 2, 2, 0, -2, -2, 1]
    assert round_shift(halves, 1, "half_up").tolist() == [1, 2, 3, 0, -1, -2, 1]


def test_per_channel_constants_broadcast() -> None:
    accumulators = np.array([[100, 100], [-100, -100]])
    multipliers = np.array([1 << 30, 3 << 29])  # 0.5 and 0.75 at shift 0
    shifts = np.array([31, 31])
    assert requantize(accumulators, multipliers, shifts).tolist() == [[50, 75], [-50, -75]]


def test_bad_rounding_and_shift_are_refused() -> None:
    with pytest.raises(ValueError):
        requantize(np.array([1]), 1, 1, "nearest")
    with pytest.raises(ValueError):
        round_shift(np.array([1]), 0)


#: The ranges of ONNX's integer types, written out from the specification.
ONNX_RANGES = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767),
               "UINT16": (0, 65535), "INT32": (-2147483648, 2147483647), "INT4": (-8, 7),
               "UINT4": (0, 15)}


#: ...and of the integer types nothing saturates to in practice.
OTHER_RANGES = {"INT2": (-2, 1), "UINT2": (0, 3), "UINT32": (0, 2 ** 32 - 1),
                "INT64": (-(2 ** 63), 2 ** 63 - 1), "UINT64": (0, 2 ** 64 - 1), "BOOL": (0, 1)}


def test_saturation_ranges_exist_for_integer_types_only() -> None:
    for name, expected in {**ONNX_RANGES, **OTHER_RANGES}.items():
        assert integer_range(name) == expected, name
    for name in ("FLOAT", "DOUBLE", "FLOAT16", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT4E2M1",
                 "STRING", "COMPLEX64", "NOT_A_TYPE"):
        with pytest.raises(KeyError):
            integer_range(name)


@pytest.mark.parametrize("dtype", sorted(ONNX_RANGES))
def test_saturation_clamps_to_the_range_of_each_integer_type(dtype: str) -> None:
    low, high = ONNX_RANGES[dtype]
    values = np.array([-(2 ** 40), low - 1, low, low + 1, 0, high - 1, high, high + 1, 2 ** 40],
                      np.int64)
    assert saturate(values, dtype).tolist() == [low, low, low, low + 1, max(low, 0), high - 1,
                                                high, high, high]


# -- recipes read against the model files ----------------------------------------------------
class Initializers:
    """Scales and zero points of a model, read with numpy_helper, found through its Q/DQ nodes."""

    def __init__(self, proto: onnx.ModelProto) -> None:
        self.values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
        self.producer = {out: node for node in proto.graph.node for out in node.output}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for node in proto.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.nodes = {node.name: node for node in proto.graph.node}

    def dq_of(self, tensor: str) -> tuple[np.ndarray, np.ndarray]:
        """(scale, zero point) of the DequantizeLinear producing *tensor*."""
        dq = self.producer[tensor]
        assert dq.op_type == "DequantizeLinear"
        return self.values[dq.input[1]], self.values[dq.input[2]]

    def output_q(self, node: str) -> tuple[np.ndarray, np.ndarray]:
        (q,) = self.readers[self.nodes[node].output[0]]
        assert q.op_type == "QuantizeLinear"
        return self.values[q.input[1]], self.values[q.input[2]]


def analysed(model: onnx.ModelProto, folder: Path) -> tuple:
    path = factories.save(model, folder / "model.onnx")
    return load_qdq_model(path), Initializers(model)


@pytest.mark.parametrize("per_channel", [False, True])
def test_recipes_of_an_ort_quantized_model_use_its_scales(tmp_path: Path, per_channel: bool) -> None:
    model, inits = analysed(factories.tiny_resnet_qdq(per_channel=per_channel), tmp_path)
    recipes = {recipe.name: recipe for recipe in requant_recipes(model)}
    assert sorted(recipes) == ["add", "conv1", "conv2", "fc", "flatten", "pool", "skip"]
    for name in ("conv1", "conv2", "skip", "fc"):
        node = inits.nodes[name]
        s_x, _ = inits.dq_of(node.input[0])
        s_w, z_w = inits.dq_of(node.input[1])
        s_b, _ = inits.dq_of(node.input[2])
        s_y, z_y = inits.output_q(name)
        recipe = recipes[name]
        expected = [float(s_x) * float(s) / float(s_y) for s in np.atleast_1d(s_w)]
        assert [m.real for m in recipe.multipliers] == pytest.approx(expected, rel=1e-15)
        assert len(recipe.multipliers) == (s_w.size if per_channel else 1)
        assert all(abs(m.relative_error) <= 2.0 ** -31 for m in recipe.multipliers)
        assert recipe.output.zero_points == (int(z_y),)
        assert recipe.weight is not None and recipe.weight.zero_points == tuple(np.atleast_1d(z_w))
        assert recipe.bias is not None
        assert recipe.bias.tensor == inits.producer[node.input[2]].input[0]  # the INT32 initializer
        assert recipe.bias.scale_matches  # ORT writes s_b = s_x * s_w
        assert np.allclose(np.atleast_1d(s_b), np.float32(s_x) * np.atleast_1d(s_w), rtol=0)
    add = recipes["add"]
    s_a, _ = inits.dq_of(inits.nodes["add"].input[0])
    s_c, _ = inits.dq_of(inits.nodes["add"].input[1])
    s_y, _ = inits.output_q("add")
    assert [m.real for m in add.multipliers] == pytest.approx(
        [float(s_a) / float(s_y), float(s_c) / float(s_y)], rel=1e-15)
    pool = recipes["pool"]
    assert pool.kind == "pool" and pool.pool_size == 8 * 8  # the tiny input is 8x8, convs keep it
    s_x, _ = inits.dq_of(inits.nodes["pool"].input[0])
    s_y, _ = inits.output_q("pool")
    assert pool.multipliers[0].real == pytest.approx(float(s_x) / (float(s_y) * 64), rel=1e-15)
    flatten = recipes["flatten"]
    assert flatten.kind == "rescale"
    s_x, _ = inits.dq_of(inits.nodes["flatten"].input[0])
    s_y, _ = inits.output_q("flatten")
    assert [m.real for m in flatten.multipliers] == [float(s_x) / float(s_y)]


def test_resnet8_recipes_against_its_initializers() -> None:
    proto = onnx.load(str(RESNET8))
    inits = Initializers(proto)
    recipes = requant_recipes(load_qdq_model(RESNET8))
    ops = [recipe.op_type for recipe in recipes]
    assert ops.count("Conv") == 9 and ops.count("Add") == 3 and ops.count("Gemm") == 1
    assert {"AveragePool", "Reshape"} <= set(ops) and len(recipes) == 15
    kernel = [a for a in inits.nodes["pool/AveragePool"].attribute if a.name == "kernel_shape"]
    pool = next(r for r in recipes if r.op_type == "AveragePool")
    assert pool.pool_size == math.prod(helper.get_attribute_value(kernel[0]))
    for recipe in recipes:
        assert recipe.complete and not recipe.notes
        if recipe.bias is not None:
            assert recipe.bias.scale_matches
        s_y, z_y = inits.output_q(recipe.name)
        assert recipe.output.scales == (float(s_y),) and recipe.output.zero_points == (int(z_y),)


def test_a_bias_scale_other_than_sx_sw_is_reported(tmp_path: Path) -> None:
    good, _ = analysed(factories.weight_dq_model(bias_scale=0.1 * 0.02), tmp_path / "good")
    bad, _ = analysed(factories.weight_dq_model(bias_scale=0.5), tmp_path / "bad")
    (good_recipe,) = requant_recipes(good)
    (bad_recipe,) = requant_recipes(bad)
    assert good_recipe.bias is not None and good_recipe.bias.scale_matches
    assert bad_recipe.bias is not None and not bad_recipe.bias.scale_matches
    assert bad_recipe.bias.relative_difference == pytest.approx(0.5 / (0.1 * 0.02) - 1, rel=1e-6)


def float32_scale(value: float, ulps: int = 0) -> float:
    """The float32 nearest *value*, moved *ulps* float32 steps up."""
    scale = np.float32(value)
    for _ in range(ulps):
        scale = np.nextafter(scale, np.float32(np.inf))
    return float(scale)


#: s_x * s_w of ``weight_dq_model`` (float32 0.1 and 0.02), exactly, in float64.
PRODUCT = float(np.float32(0.1)) * float(np.float32(0.02))


@pytest.mark.parametrize(("bias_scale", "matches"), [
    (float32_scale(PRODUCT), True),  # the product rounded to float32, as quantizers store it
    (float32_scale(PRODUCT, ulps=1), True),  # one float32 step further: still s_x * s_w
    (float32_scale(PRODUCT * (1 + 2.0 ** -20)), False),  # 2^-20 away: another scale
    (float32_scale(PRODUCT * (1 - 2.0 ** -20)), False),
    (float32_scale(PRODUCT * (1 + 2.0 ** -12)), False),
])
def test_the_bias_scale_must_be_sx_sw_to_float32_precision(tmp_path: Path, bias_scale: float,
                                                           matches: bool) -> None:
    model, _ = analysed(factories.weight_dq_model(bias_scale=bias_scale), tmp_path)
    (recipe,) = requant_recipes(model)
    assert recipe.bias is not None
    assert recipe.bias.scale_matches is matches
    assert recipe.bias.relative_difference == pytest.approx(abs(bias_scale / PRODUCT - 1),
                                                            rel=1e-9, abs=1e-15)


def with_scale(model: onnx.ModelProto, name: str, value: float) -> onnx.ModelProto:
    scale = next(t for t in model.graph.initializer if t.name == name)
    scale.CopyFrom(numpy_helper.from_array(np.array(value, np.float32), name))
    return model


@pytest.mark.parametrize(("bias_scale", "matches"), [
    (1 + 2.0 ** -22, True),  # two float32 steps above s_x * s_w = 1: the tolerance itself
    (1 + 3 * 2.0 ** -23, False),  # three steps
])
def test_the_bias_scale_tolerance_is_two_float32_steps(tmp_path: Path, bias_scale: float,
                                                       matches: bool) -> None:
    proto = with_scale(factories.weight_dq_model(scale=1.0, bias_scale=bias_scale),
                       "x_scale", 1.0)
    (recipe,) = requant_recipes(analysed(proto, tmp_path)[0])
    assert recipe.bias is not None
    assert recipe.bias.relative_difference == bias_scale - 1
    assert recipe.bias.scale_matches is matches


def test_a_per_tensor_bias_scale_is_compared_with_every_weight_channel(tmp_path: Path) -> None:
    """Per-channel weights, one bias scale: right for channel 0 only, so not s_x * s_w."""
    s_x = float(np.float32(0.1))
    scales = [0.01, 0.02, 0.03, 0.04]
    model, _ = analysed(factories.weight_dq_model(
        scale=scales, zero_point=[0, 0, 0, 0], axis=0,
        bias_scale=float(np.float32(s_x * float(np.float32(0.01))))), tmp_path)
    (recipe,) = requant_recipes(model)
    assert recipe.bias is not None and not recipe.bias.scale_matches
    assert recipe.bias.relative_difference == pytest.approx(0.75, rel=1e-6)  # channel 3: 1/4 - 1


def test_per_axis_weights_give_one_multiplier_per_output_channel(tmp_path: Path) -> None:
    scales = [0.01, 0.02, 0.03, 0.04]
    model, _ = analysed(factories.weight_dq_model(scale=scales, zero_point=[0, 0, 0, 0], axis=0),
                        tmp_path)
    (recipe,) = requant_recipes(model)
    reals = [float(np.float32(0.1)) * float(np.float32(s)) / float(np.float32(0.2))
             for s in scales]
    assert [m.real for m in recipe.multipliers] == pytest.approx(reals, rel=1e-15)
    assert recipe.weight is not None and recipe.weight.per_channel


def with_scale_as_input(name: str) -> onnx.ModelProto:
    """``weight_dq_model`` with the scale *name* a graph input: known at run time only."""
    proto = factories.weight_dq_model()
    kept = [t for t in proto.graph.initializer if t.name != name]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    proto.graph.input.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, []))
    return proto


def test_an_unknown_scale_leaves_the_recipe_incomplete_with_a_note(tmp_path: Path) -> None:
    model, _ = analysed(with_scale_as_input("y_scale"), tmp_path)
    (recipe,) = requant_recipes(model)
    assert not recipe.complete and recipe.multipliers == ()
    assert any("y_scale" in note for note in recipe.notes)


@pytest.mark.parametrize("unknown", ["x_scale", "w_scale"])
def test_an_unknown_input_or_weight_scale_leaves_the_bias_check_open(tmp_path: Path,
                                                                     unknown: str) -> None:
    """s_x * s_w cannot be computed: the bias scale is neither confirmed nor refused."""
    model, _ = analysed(with_scale_as_input(unknown), tmp_path)
    (recipe,) = requant_recipes(model)
    assert recipe.bias is not None and recipe.bias.scales == (float(np.float32(0.001)),)
    assert math.isnan(recipe.bias.relative_difference) and not recipe.bias.scale_matches
    assert any(unknown in note for note in recipe.notes)


# -- the qdq-requant directive in a real Sphinx build ----------------------------------------
def table_rows(doctree: nodes.document, number: int) -> list[list[str]]:
    """Cell texts (paragraphs joined by ' | ') of the *number*-th table's body rows."""
    table = list(doctree.findall(nodes.table))[number]
    body = next(table.findall(nodes.tbody))
    return [[" | ".join(p.astext() for p in entry.findall(nodes.paragraph)) for entry in row]
            for row in body.children]


REQUANT_PAGE = """# Requantization

```{qdq-requant} tiny
:caption: Every group
```

```{qdq-requant} tiny
:compute-ops: Conv
:values: full
:no-index:
```

```{qdq-requant} tiny
:show: example
:node: conv1
:inputs: images.npy
:image: 1
:position: 2, 0, 7
```

```{qdq-requant} tiny
:show: agreement
:inputs: images.npy
:images: 3
```

```{qdq-requant} tiny
:nodes: ^nothing$
```

```{qdq-requant} tiny
:show: agreement
:inputs: no_such_module_xyz:images
```
"""


#: Options that do not fit the other options or the model: one qdq.option warning each
#: (lines 3, 8, 12, 17, 24), nothing drawn; the page goes on (the table of line 31).
OPTIONS_PAGE = """# Options

```{qdq-requant} tiny
:show: example
:node: conv1
```

```{qdq-requant} tiny
:show: agreement
```

```{qdq-requant} tiny
:show: example
:inputs: images.npy
```

```{qdq-requant} tiny
:show: example
:node: conv1
:inputs: images.npy
:position: 99, 0, 0
```

```{qdq-requant} tiny
:show: example
:node: conv1
:inputs: images.npy
:position: 0, 8, 0
```

```{qdq-requant} tiny
:compute-ops: Gemm
:no-index:
```
"""


@pytest.fixture(scope="module")
def requant_build(tmp_path_factory: pytest.TempPathFactory):
    src = make_project(tmp_path_factory.mktemp("requant") / "src", root=None, pages={
        "index.md": "# Root\n\n```{toctree}\nrequant\nrefs\noptions\n```\n",
        "requant.md": REQUANT_PAGE,
        "options.md": OPTIONS_PAGE,
        "refs.md": "# Refs\n\n{qdq:node}`tiny:conv1` and {qdq:node}`fc`.\n",
    })
    images = np.random.default_rng(4).normal(0, 1, (4, *factories.TINY_INPUT_SHAPE[1:]))
    np.save(src / "images.npy", images.astype(np.float32))
    return src, build(src, "html"), images.astype(np.float32)


def test_requant_table_rows_follow_the_model(requant_build) -> None:
    src, result, _ = requant_build
    inits = Initializers(onnx.load(str(src / "models" / "tiny.onnx")))
    doctree = result.app.env.get_doctree("requant")
    rows = table_rows(doctree, 0)
    assert [row[0] for row in rows] == ["conv1", "skip", "conv2", "add", "pool", "flatten", "fc"]
    conv1 = rows[0]
    s_x, z_x = inits.dq_of(inits.nodes["conv1"].input[0])
    assert conv1[2] == f"s {format_scale(float(s_x))} · z {int(z_x)} · UINT8"
    s_w, _ = inits.dq_of(inits.nodes["conv1"].input[1])
    s_y, _ = inits.output_q("conv1")
    assert float(conv1[5]) == pytest.approx(float(s_x) * float(s_w) / float(s_y), rel=1e-8)
    m0, shift, _error = conv1[6].split(" · ")
    assert int(m0) * 2.0 ** -(31 + int(shift)) == pytest.approx(float(conv1[5]), rel=1e-8)
    assert "s_b = s_x·s_w ✓" in conv1[7]
    add = rows[3]
    assert add[2].count(" · z ") == 2 and add[5].count("M") == 2
    assert "s_x/(s_y·64)" in rows[4][5]
    conv_only = table_rows(doctree, 1)
    assert [row[0] for row in conv_only] == ["conv1", "skip", "conv2"]


def test_requant_rows_are_node_targets(requant_build) -> None:
    _, result, _ = requant_build
    html = result.outdir / "refs.html"
    text = html.read_text(encoding="utf-8")
    hrefs = re.findall(r'href="(requant\.html#[^"]+)"', text)
    assert len(hrefs) == 2
    for href in hrefs:
        page, anchor = follow(html, href)
        assert has_id(page, anchor)


def test_requant_warnings_are_located_and_typed(requant_build) -> None:
    _, result, _ = requant_build
    lines = [line for line in result.warnings.splitlines() if "requant.md:" in line]
    assert len(lines) == 2, result.warnings
    assert "requant.md" in lines[0] and "no quantized-op group matches" in lines[0]
    assert "[qdq.filter]" in lines[0]
    assert "no_such_module_xyz" in lines[1] and "[qdq.reference]" in lines[1]


def test_worked_example_table_shows_the_element(requant_build) -> None:
    src, result, images = requant_build
    rows = {row[0]: row[1] for row in table_rows(result.app.env.get_doctree("requant"), 2)}
    assert rows["Output element"] == "image 1, channel 2, row 0, column 7"
    oracle_model = onnx.load(str(src / "models" / "tiny.onnx"))
    inits = Initializers(oracle_model)
    s_x, z_x = inits.dq_of(inits.nodes["conv1"].input[0])
    quantized = np.clip(np.rint(images[1] / s_x) + int(z_x), 0, 255).astype(int)
    first_channel = rows["Inputs x as stored"].split(" | ")[0].split()
    # pads 1: the window of (row 0, column 7) reads row -1 and column 8 from the padding (z_x)
    z = int(z_x)
    expected = [z] * 3 + [*quantized[0, 0, 6:8].tolist(), z] + [*quantized[0, 1, 6:8].tolist(), z]
    assert [int(v) for v in first_channel] == expected
    assert rows["Check: acc · M in real numbers"].endswith("(same)")


def test_agreement_table_covers_every_integer_tensor(requant_build) -> None:
    _, result, _ = requant_build
    doctree = result.app.env.get_doctree("requant")
    rows = table_rows(doctree, 3)
    assert [row[0] for row in rows] == ["input", "conv1", "skip", "conv2", "add", "pool",
                                        "flatten", "fc", "output logits"]
    assert rows[0][3] == f"{3 * 3 * 8 * 8:,}" and rows[0][4] == "100.000 %"
    assert rows[-1][3] == f"{3 * factories.TINY_CLASSES:,}"
    paragraphs = [p.astext() for p in doctree.findall(nodes.paragraph)]
    assert any(p.startswith("Top-1 class identical on ") and " of 3 inputs" in p
               for p in paragraphs)


@pytest.mark.parametrize(("line", "message"), [
    (3, "qdq-requant: :show: example needs :inputs: (module:attribute or a .npy file"),
    (8, "qdq-requant: :show: agreement needs :inputs:"),
    (12, "qdq-requant: :show: example needs :node: (a Conv or Gemm node)"),
    (17, "qdq-requant: :position: 99, 0, 0 lies outside the output of conv1"),
    # one row past the end: the window would read padding only (tiny's conv1: 4 x 8 x 8)
    (24, ("qdq-requant: :position: 0, 8, 0 lies outside the output of conv1 (channel, row, "
          "column below 4, 8, 8)")),
])
def test_an_option_problem_is_one_located_option_warning(requant_build, line: int,
                                                         message: str) -> None:
    _, result, _ = requant_build
    matches = [w for w in result.warnings.splitlines() if f"options.md:{line}:" in w]
    assert len(matches) == 1, result.warnings
    assert "WARNING:" in matches[0] and message in matches[0], matches[0]
    assert matches[0].endswith("[qdq.option]"), matches[0]


def test_option_problems_draw_nothing_and_the_page_goes_on(requant_build) -> None:
    _, result, _ = requant_build
    assert "ERROR" not in result.warnings
    assert sum("options.md:" in line for line in result.warnings.splitlines()) == 5
    doctree = result.app.env.get_doctree("options")
    assert [row[0] for row in table_rows(doctree, 0)] == ["fc"]  # the only table
    assert len(list(doctree.findall(nodes.table))) == 1
    assert (result.outdir / "options.html").is_file()
