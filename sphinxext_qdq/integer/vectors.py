"""Test vectors of one group for a hardware test bench: integer inputs (random over
their full range, or computed from model inputs), the kernel's output, and a
self-contained C header (``qdq-graph vectors``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sphinxext_qdq.integer.kernels import IntegerReferenceError, IntegerStep, run_step
from sphinxext_qdq.onnxio.dtypes import c_type_of, integer_range, numpy_integer
from sphinxext_qdq.onnxio.files import DEFAULT_MAX_ELEMENTS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sphinxext_qdq.analysis.records import QdqModel


@dataclass(frozen=True, eq=False)
class KernelVectors:
    """Everything a hardware test bench needs for one group: integer arrays by name
    (``input`` or ``input0``/``input1``, ``weight``, ``bias``, ``multiplier``,
    ``shift``, ``output``) and scalar constants (zero points, pool size)."""

    step: IntegerStep
    arrays: dict[str, np.ndarray]
    constants: dict[str, int]
    rounding: str


def kernel_vectors(step: IntegerStep, inputs: Sequence[np.ndarray], *,
                   rounding: str = "half_even") -> KernelVectors:
    """The test vectors of *step* for integer *inputs* (one array per input, as stored)."""
    recipe = step.recipe
    if len(inputs) != len(step.inputs):
        raise IntegerReferenceError(f"{recipe.name} reads {len(step.inputs)} input(s), "
                                    f"{len(inputs)} given")
    values = dict(zip(step.inputs, inputs))
    output = run_step(step, values, rounding)[0]
    names = ["input"] if len(inputs) == 1 else [f"input{i}" for i in range(len(inputs))]
    arrays: dict[str, np.ndarray] = {name: np.asarray(x) for name, x in zip(names, inputs)}
    if step.weight is not None:
        arrays["weight"] = _c_typed(np.asarray(step.weight))
    if step.bias is not None:
        arrays["bias"] = np.asarray(step.bias, np.int32)
    arrays["multiplier"] = np.array([m.multiplier for m in recipe.multipliers], np.int32)
    arrays["shift"] = np.array([m.shift for m in recipe.multipliers], np.int32)
    for index, table in enumerate(step.tables):
        if table is not None:
            arrays[f"table{index}" if len(step.tables) > 1 else "table"] = table
    arrays["output"] = output
    quantized = names[len(names) - len(recipe.inputs):]  # a Where's condition has none
    constants = {f"{name}_zero_point": side.zero_points[0]
                 for name, side in zip(quantized, recipe.inputs)}
    if recipe.weight is not None and len(recipe.weight.zero_points) == 1:
        constants["weight_zero_point"] = recipe.weight.zero_points[0]
    constants["output_zero_point"] = recipe.output.zero_points[0]
    low, high = integer_range(recipe.output.dtype or "INT8")
    constants.update(output_min=low, output_max=high)
    if recipe.pool_size:
        constants["pool_size"] = recipe.pool_size
    return KernelVectors(step=step, arrays=arrays, constants=constants, rounding=rounding)


def _c_typed(array: np.ndarray) -> np.ndarray:
    """*array* in a numpy integer type C has (a packed INT4 / UINT4 weight widened to
    int8 / uint8, values unchanged)."""
    try:
        c_type_of(array.dtype)
        return array
    except KeyError:
        signed = array.size == 0 or int(np.asarray(array, np.int64).min()) < 0 or \
            not str(array.dtype).startswith("u")
        return np.asarray(array, np.int64).astype(np.int8 if signed else np.uint8)


def group_input_shapes(model: QdqModel, step: IntegerStep, batch: int = 1, *,
                       max_elements: int = DEFAULT_MAX_ELEMENTS) -> list[tuple[int, ...]]:
    """Shapes of a step's integer inputs with *batch* as the first (batch) dimension;
    refused when the model declares a shape of more than *max_elements* elements."""
    shapes = []
    for name in step.inputs:
        if name in step.constants:  # a constant of the model keeps its own shape
            shapes.append(tuple(np.shape(step.constants[name])))
            continue
        tensor = model.tensors.get(name)
        if tensor is None or not tensor.shape or not all(
                isinstance(d, int) for d in tensor.shape[1:]):
            raise IntegerReferenceError(f"{step.recipe.name}: the shape of {name!r} is unknown; "
                                        "give model inputs instead")
        shape = (batch, *tensor.shape[1:])
        if any(d < 0 for d in shape):  # type: ignore[operator]
            raise IntegerReferenceError(f"{step.recipe.name}: {name!r} has a negative "
                                        f"dimension in its declared shape {list(shape)}")
        count = math.prod(shape)  # type: ignore[arg-type]
        if count > max_elements:
            raise IntegerReferenceError(f"{step.recipe.name}: {name!r} would have {count} "
                                        f"elements (declared shape {list(shape)}), more than "
                                        f"the limit of {max_elements}")
        shapes.append(shape)
    return shapes


def random_group_inputs(step: IntegerStep, shapes: Sequence[tuple[int, ...]], seed: int = 0
                        ) -> list[np.ndarray]:
    """Uniform integers over each input's full range (seeded); an input that is a
    constant of the model (a Where's condition) is that constant."""
    rng = np.random.default_rng(seed)
    offset = len(step.inputs) - len(step.recipe.inputs)  # inputs before the quantized ones
    arrays = []
    for index, (name, shape) in enumerate(zip(step.inputs, shapes)):
        if name in step.constants:
            arrays.append(np.asarray(step.constants[name]))
            continue
        dtype = step.recipe.inputs[index - offset].dtype or "INT8"
        low, high = integer_range(dtype)
        arrays.append(rng.integers(low, high, size=shape, endpoint=True).astype(numpy_integer(dtype)))
    return arrays


def c_identifier(text: str) -> str:
    """A C identifier (lower case) made of *text*: other characters become ``_``."""
    identifier = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in text).strip("_")
    identifier = "_".join(part for part in identifier.split("_") if part).lower() or "group"
    return f"g_{identifier}" if identifier[0].isdigit() else identifier


def c_comment(text: str) -> str:
    """*text* safe inside ``/* ... */`` on one line."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text)).replace("*/", "* /")


_FORMULAS = {
    "matmul": "acc[c] = sum (input - INPUT_ZERO_POINT)(weight - WEIGHT_ZERO_POINT) + bias[c]; "
              "output = clamp(OUTPUT_ZERO_POINT + round(acc[c] * multiplier[c] / "
              "2^(31 + shift[c])))",
    "add": "output = clamp(OUTPUT_ZERO_POINT + round(sum_i (input_i - INPUTi_ZERO_POINT) "
           "* multiplier[i] / 2^(31 + shift[i])))",
    "pool": "acc = sum over the window of (input - INPUT_ZERO_POINT); output = "
            "clamp(OUTPUT_ZERO_POINT + round(acc * multiplier[0] / 2^(31 + shift[0])))",
    "rescale": "output = clamp(OUTPUT_ZERO_POINT + round((input - INPUT_ZERO_POINT) "
               "* multiplier[0] / 2^(31 + shift[0])))",
    "mul": "output = clamp(OUTPUT_ZERO_POINT + round((input0 - INPUT0_ZERO_POINT) "
           "* (input1 - INPUT1_ZERO_POINT) * multiplier[0] / 2^(31 + shift[0])))",
    "lookup": "output = table[(uint8_t) input] (the table holds the output zero point)",
    "concat": "output = the inputs side by side along the axis, each through its table "
              "(tableI[(uint8_t) inputI]) unless it has the output's scale and zero point",
    "where": "output = input0 ? table1[(uint8_t) input1] : table2[(uint8_t) input2] "
             "(an input without a table is copied)",
    "softmax": "per row: e = ONNX Runtime's float32 exp table at (input - max + 255), "
               "output = clamp(OUTPUT_ZERO_POINT + round(e * floor(1 / s_y) / sum(e)))",
}


def c_header(vectors: KernelVectors, *, prefix: str, source: str = "") -> str:
    """A self-contained C header: constants as ``#define``, arrays as ``static const``."""
    recipe = vectors.step.recipe
    guard = f"QDQ_{prefix.upper()}_H"
    lines = [
        f"/* Test vectors for {c_comment(recipe.name)} ({c_comment(recipe.op_type)})"
        + (f" of {c_comment(source)}" if source else "") + ".",
        " * Generated by qdq-graph vectors: the integer-only reference of sphinxext_qdq.",
        f" * {_FORMULAS[recipe.kind]}",
        (f" * round: {vectors.rounding.replace('_', ' ')} of the exact quotient; clamp to "
        "[OUTPUT_MIN, OUTPUT_MAX]."),
        " * multiplier is Q31, shift a right shift (negative: a left shift). */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
    ]
    for name, value in vectors.constants.items():
        lines.append(f"#define {prefix.upper()}_{name.upper()} ({value})")
    for name, value in _int_attributes(vectors.step).items():
        lines.append(f"static const int32_t {prefix}_{name}[{len(value)}] = "
                     f"{{{', '.join(map(str, value))}}};")
    lines.append("")
    for name, array in vectors.arrays.items():
        lines.extend(_c_array(f"{prefix}_{name}", array))
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def _int_attributes(step: IntegerStep) -> dict[str, list[int]]:
    """Integer attributes of the node (strides, pads, kernel_shape …) for the header."""
    found = {}
    for name, value in sorted(step.attributes.items()):
        if isinstance(value, int):
            value = [value]
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            found[c_identifier(name)] = value
    return found


def _c_array(name: str, array: np.ndarray) -> list[str]:
    array = np.asarray(array)
    c_type = c_type_of(array.dtype)
    shape = ", ".join(str(d) for d in array.shape) or "scalar"
    lines = [f"/* {name}: shape [{shape}], row-major */",
             (f"static const int32_t {name}_shape[{max(array.ndim, 1)}] = "
             f"{{{', '.join(str(d) for d in array.shape) or '1'}}};"),
             f"static const {c_type} {name}[{max(array.size, 1)}] = {{"]
    flat = [str(int(v)) for v in array.reshape(-1)] or ["0"]
    for start in range(0, len(flat), 16):
        lines.append("    " + ", ".join(flat[start:start + 16]) + ",")
    lines += ["};", ""]
    return lines
