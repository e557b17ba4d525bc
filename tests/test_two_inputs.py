"""Models with several graph inputs in the integer reference's ONNX Runtime comparison:
every graph input is fed (an array per input name, from ``module:attribute`` on a page),
or the refusal names the inputs that cannot be fed; never a partial run.

The model is written here with ``onnx.helper`` in QDQ form: ``y = a + b`` (each input
quantized to INT8 with its own scale), optionally with a float side branch
``c -> Relu -> c_relu`` that ONNX Runtime needs fed although the integer reference never
reads it.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import qdq_factories as factories
from docutils import nodes
from onnx import TensorProto, helper
from sphinx_helpers import build, make_project

from sphinxext_qdq.integer.inputs import load_named_inputs
from sphinxext_qdq.integer.kernels import IntegerReferenceError
from sphinxext_qdq.integer.onnxruntime_check import compare_with_onnxruntime

SCALES = {"a": 0.02, "b": 0.03, "y": 0.05}
WIDTH = 8
IMAGES = 5


def qdq(name: str, source: str) -> list:
    return [helper.make_node("QuantizeLinear", [source, f"s_{name}", "zero"], [f"{name}_q"],
                             name=f"{name}_Q"),
            helper.make_node("DequantizeLinear", [f"{name}_q", f"s_{name}", "zero"],
                             [f"{name}_dq"], name=f"{name}_DQ")]


def add_model(side_input: bool = False):
    nodes_ = [*qdq("a", "a"), *qdq("b", "b"),
              helper.make_node("Add", ["a_dq", "b_dq"], ["sum"], name="add"), *qdq("y", "sum")]
    inputs = [factories.tensor_input(name, ["N", WIDTH]) for name in ("a", "b")]
    outputs = [factories.tensor_input("y_dq", ["N", WIDTH])]
    if side_input:
        nodes_.append(helper.make_node("Relu", ["c"], ["c_relu"], name="side_relu"))
        inputs.append(factories.tensor_input("c", ["N", 3]))
        outputs.append(factories.tensor_input("c_relu", ["N", 3]))
    initializers = [factories.scalar(f"s_{name}", scale) for name, scale in SCALES.items()]
    initializers.append(factories.scalar("zero", 0, TensorProto.INT8))
    return factories.make_model(nodes_, inputs, outputs, initializers)


def feeds(side_input: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    arrays = {"a": rng.uniform(-2, 2, (IMAGES, WIDTH)), "b": rng.uniform(-3, 3, (IMAGES, WIDTH))}
    if side_input:
        arrays["c"] = rng.normal(0, 1, (IMAGES, 3))
    return {name: array.astype(np.float32) for name, array in arrays.items()}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("two-inputs")
    return {"add": factories.save(add_model(), folder / "add.onnx"),
            "side": factories.save(add_model(side_input=True), folder / "side.onnx")}


def expected_sum(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """QuantizeLinear of each input, DequantizeLinear, Add, QuantizeLinear: numpy, float64
    (ties cannot occur with these random values)."""
    def quantize(x: np.ndarray, scale: float) -> np.ndarray:
        return np.clip(np.rint(x / np.float32(scale)), -128, 127)

    total = (quantize(arrays["a"], SCALES["a"]) * np.float32(SCALES["a"])
             + quantize(arrays["b"], SCALES["b"]) * np.float32(SCALES["b"]))
    return quantize(total, SCALES["y"])


@pytest.mark.parametrize("model", ["add", "side"])
def test_every_graph_input_is_fed(models, model: str) -> None:
    arrays = feeds(side_input=model == "side")
    report = compare_with_onnxruntime(models[model], arrays)
    assert report.images == IMAGES
    layers = {layer.node: layer for layer in report.layers}
    assert sorted(layers) == ["a", "add", "b"]  # both QuantizeLinear entries and the Add
    for name in ("a", "b", "add"):
        assert layers[name].elements == IMAGES * WIDTH
    assert layers["a"].exact_fraction == layers["b"].exact_fraction == 1.0
    (final,) = report.final
    assert final.elements == IMAGES * WIDTH and final.max_difference <= 1
    # ONNX Runtime saw the real b: its output agrees with the sum computed here
    assert expected_sum(arrays).std() > 10 and final.exact_fraction >= 0.9


@pytest.mark.parametrize(("model", "inputs", "named", "not_named"), [
    ("add", "one array", ["'a'", "'b'"], []),
    ("side", "one array", ["'a'", "'b'", "'c'"], []),
    ("side", "without c", ["'c'"], ["'a', 'b'"]),
    ("add", "without b", ["'b'"], []),
])
def test_inputs_that_cannot_be_fed_are_named(models, model: str, inputs: str,
                                             named: list[str], not_named: list[str]) -> None:
    arrays = feeds(side_input=model == "side")
    given = {"one array": arrays["a"],
             "without c": {"a": arrays["a"], "b": arrays["b"]},
             "without b": {"a": arrays["a"]}}[inputs]
    with pytest.raises(IntegerReferenceError) as refusal:
        compare_with_onnxruntime(models[model], given)
    message = str(refusal.value)
    assert "\n" not in message and ("cannot feed" in message or "no array for" in message)
    assert all(name in message.split("(they hold")[0] for name in named), message
    assert not any(name in message.split("(they hold")[0] for name in not_named), message


def test_arrays_of_different_batch_sizes_are_refused(models) -> None:
    arrays = feeds()
    arrays["b"] = arrays["b"][:2]
    with pytest.raises(IntegerReferenceError, match="first .batch. dimension"):
        compare_with_onnxruntime(models["add"], arrays)


# -- on a page: module:attribute giving a dict ------------------------------------------------
PAGE = """# Two inputs

```{qdq-requant} /models/add.onnx
:show: agreement
:inputs: qdq_two_input_feeds:arrays()
```

```{qdq-requant} /models/add.onnx
:show: agreement
:inputs: one.npy
```
"""


@pytest.fixture(scope="module")
def page_build(models, tmp_path_factory: pytest.TempPathFactory):
    src = make_project(tmp_path_factory.mktemp("two-inputs-page") / "src", root=None,
                       pages={"index.md": PAGE})
    (src / "models" / "add.onnx").write_bytes(models["add"].read_bytes())
    np.save(src / "one.npy", feeds()["a"])
    module = types.ModuleType("qdq_two_input_feeds")
    module.arrays = feeds  # arrays() -> {"a": ..., "b": ...}
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, module.__name__, module)
        assert sorted(load_named_inputs("qdq_two_input_feeds:arrays()")) == ["a", "b"]
        return build(src, "html")


def test_a_page_feeds_both_inputs_from_a_dict(page_build) -> None:
    doctree = page_build.app.env.get_doctree("index")
    (table,) = doctree.findall(nodes.table)
    rows = [[entry.astext() for entry in row] for row in next(table.findall(nodes.tbody))]
    assert [row[0] for row in rows] == ["a", "b", "add", "output y_dq"]
    assert rows[0][3] == rows[1][3] == f"{IMAGES * WIDTH:,}" and rows[0][4] == "100.000 %"
    paragraphs = [p.astext() for p in doctree.findall(nodes.paragraph)]
    assert any(f" of {IMAGES} inputs" in p for p in paragraphs)


def test_a_page_with_one_array_gets_a_located_warning_naming_the_inputs(page_build) -> None:
    (line,) = [line for line in page_build.warnings.splitlines() if line.strip()]
    assert "index.md:8" in line and "[qdq.reference]" in line
    assert "cannot feed 'a', 'b'" in line
