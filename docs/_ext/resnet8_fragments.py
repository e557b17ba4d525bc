"""Fragments of the ResNet8 pages: provenance, worked examples and tables.

Every number here is read from ``models/*.onnx`` (with ``onnx.numpy_helper``) or
``models/resnet8_report.json``, or computed from them; the pages include the
fragments and never repeat a number by hand.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fragments import code, integer, number, percent, table
from onnx import TensorProto, helper, numpy_helper
from onnx import defs as onnx_defs
from onnx.reference import ReferenceEvaluator
from resnet8_numbers import (
    INTEGER_TYPES,
    MODELS,
    IntegerGroup,
    ShowcaseModel,
    integer_range,
    signed_bits,
    synthetic_activation,
)

from sphinxext_qdq.render.text import format_scale

REPORT = MODELS / "resnet8_report.json"

#: The group the QLinearConv page works through, and the one of the QLinearMatMul page.
CONV_EXAMPLE = "stack1/conv1/Conv"
GEMM_EXAMPLE = "dense/Gemm"
#: Seed and span of the synthetic activations of the worked examples.
EXAMPLE_SEED = 0
EXAMPLE_SPAN = 40

MODEL_ORDER = ("fp32", "int8", "uint8", "int8_per_channel")


def load_report() -> dict[str, Any]:
    return json.loads(REPORT.read_text(encoding="utf-8"))


def scale(value: float) -> str:
    """A float32 scale exactly as the ``qdq-params`` tables print it."""
    return format_scale(float(value))


# -- index page -------------------------------------------------------------------------


def top1(report: dict[str, Any], key: str) -> str:
    entry = report["models"][key]
    total = report["dataset"]["split_sizes"]["test"]
    return f"{entry['test_correct']} / {total} ({percent(entry['test_top1_accuracy'])})"


def models_table(report: dict[str, Any]) -> str:
    rows = []
    for key in MODEL_ORDER:
        entry = report["models"][key]
        settings = entry["quantization"]
        if settings is None:
            types, granularity = "FP32 / FP32", "none"
        else:
            types = f"{settings['activation_type']} / {settings['weight_type']}"
            granularity = "per-channel" if settings["per_channel"] else "per-tensor"
        agreement = entry.get("test_agreement_with_fp32")
        rows.append([
            code(entry["file"]), types, granularity, entry["node_count"],
            f"{entry['quantize_linear_count']} / {entry['dequantize_linear_count']}",
            f"{integer(entry['file_size_bytes'])} bytes", top1(report, key),
            percent(agreement) if agreement is not None else "(reference)",
        ])
    return table(["File", "Activations / weights", "Weights", "Nodes",
                  "QuantizeLinear / DequantizeLinear", "Size", "Test top-1",
                  "Same class as FP32"], rows)


def shape(dimensions: list[object]) -> str:
    return "[" + ", ".join(map(str, dimensions)) + "]"


def provenance_table(report: dict[str, Any]) -> str:
    data, model, training = report["dataset"], report["model"], report["training"]
    sizes = data["split_sizes"]
    int8 = report["models"]["int8"]["quantization"]
    tools = ", ".join(f"{name} {version}" for name, version in sorted(report["tools"].items()))
    rows = [
        ("Topology", model["topology"]),
        ("Parameters", (f"{integer(model['parameters'])} trainable; "
                       f"{integer(model['parameters_after_batchnorm_folding'])} after folding "
                       "batch normalization into the convolutions")),
        ("Input / output", (f"{code(model['input_name'])} {shape(model['input_shape'])}, "
                           f"{code(model['output_name'])} {shape(model['output_shape'])}")),
        ("Data set", f"{data['name']}: {data['preparation']}"),
        ("Split", (f"{sizes['train']} training, {sizes['calibration']} calibration, "
                  f"{sizes['test']} test images (seed {data['split_seed']})")),
        ("Training", (f"{training['optimizer']}, learning rate {training['learning_rate']}, "
                     f"weight decay {training['weight_decay']}, {training['epochs']} epochs of "
                     f"batches of {training['batch_size']}, {training['schedule']}; "
                     f"{training['loss']} loss; seed {training['seed']}")),
        ("End of training", (f"loss {training['final_train_loss']}, training top-1 "
                            f"{percent(training['final_train_top1'])}")),
        ("Quantization", (f"ONNX Runtime static quantization, {int8['quant_format']} format, "
                         f"{int8['calibrate_method']} calibration on the "
                         f"{sizes['calibration']} calibration images")),
        ("Tools", tools),
        ("Command", code(report["command"])),
    ]
    return table(["", "ResNet8 showcase"], rows)


def substitutions(report: dict[str, Any] | None = None) -> dict[str, str]:
    """Values for ``{{ name }}`` in the pages (MyST substitutions)."""
    report = report or load_report()
    return {
        "test_images": str(report["dataset"]["split_sizes"]["test"]),
        "dataset_name": report["dataset"]["name"],
        "fp32_top1": top1(report, "fp32"),
        "int8_top1": top1(report, "int8"),
        "uint8_top1": top1(report, "uint8"),
        "per_channel_top1": top1(report, "int8_per_channel"),
        "int8_agreement": percent(report["models"]["int8"]["test_agreement_with_fp32"]),
        "int8_size_ratio": number(report["models"]["fp32"]["file_size_bytes"]
                                  / report["models"]["int8"]["file_size_bytes"], 3),
        "opset": str(report["models"]["int8"]["opset"]),
        "fp32_relu_count": str(report["models"]["fp32"]["op_counts"].get("Relu", 0)),
        **model_substitutions(ShowcaseModel("resnet8_int8.onnx")),
    }


def model_substitutions(model: ShowcaseModel) -> dict[str, str]:
    """A few constants of the INT8 model that the prose names inline."""
    first = model.affine("input_QuantizeLinear")
    conv = IntegerGroup(model, CONV_EXAMPLE)
    graph_inputs = {value.name for value in model.proto.graph.input}
    graph_outputs = {value.name for value in model.proto.graph.output}
    return {
        "input_scale": scale(first.scale),
        "input_zero_point": str(first.zero_point),
        "input_scale_inverse": scale(np.float32(1) / first.scale),
        "input_range": f"[{number(first.real_range[0], 6)}, {number(first.real_range[1], 6)}]",
        "conv_example": CONV_EXAMPLE,
        "conv_k": str(conv.accumulation_length),
        "conv_input_zero_point": str(conv.x.zero_point),
        "gemm_example": GEMM_EXAMPLE,
        "example_seed": str(EXAMPLE_SEED),
        # MyST does not substitute inside a code span: the value carries its backticks
        "region_entry": ", ".join(f"`{node.name}`" for node in model.nodes_of("QuantizeLinear")
                                  if node.input[0] in graph_inputs),
        "region_exit": ", ".join(f"`{node.name}`" for node in model.nodes_of("DequantizeLinear")
                                 if node.output[0] in graph_outputs),
    }


# -- 01: boundary operations --------------------------------------------------------------


def dtype_ranges() -> str:
    uses = {"INT8": "activations and weights (this model)", "UINT8": "activations (the UINT8 model)",
            "INT16": "16-bit activations (opset 21)", "UINT16": "16-bit activations (opset 21)",
            "INT2": "packed four per byte (opset 25)", "UINT2": "packed four per byte (opset 25)",
            "INT4": "weight-only quantization, packed two per byte (opset 21)",
            "UINT4": "weight-only quantization, packed two per byte (opset 21)",
            "INT32": "bias, dequantized only (zero point 0)"}
    rows = []
    for dtype, (bits, signed) in INTEGER_TYPES.items():
        low, high = integer_range(dtype)
        rows.append([dtype, bits, "signed" if signed else "unsigned", integer(low), integer(high),
                     uses[dtype]])
    return table(["Type", "Bits", "", "$q_{\\min}$", "$q_{\\max}$", "Used for"], rows)


def opset_history(ops: tuple[str, ...] = ("QuantizeLinear", "DequantizeLinear")) -> str:
    """When each attribute and integer type arrived, from the installed ONNX schemas."""
    rows = []
    for op in ops:
        previous_attributes: set[str] = set()
        previous_types: set[str] = set()
        versions = sorted({onnx_defs.get_schema(op, v).since_version
                           for v in range(1, onnx_defs.onnx_opset_version() + 1)
                           if _has_schema(op, v)})
        for version in versions:
            schema = onnx_defs.get_schema(op, version)
            attributes = set(schema.attributes)
            types = {t.replace("tensor(", "").replace(")", "").upper()
                     for constraint in schema.type_constraints
                     for t in constraint.allowed_type_strs}
            rows.append([op, version,
                         ", ".join(code(a) for a in sorted(attributes - previous_attributes))
                         or "",
                         ", ".join(sorted(types - previous_types)) or ""])
            previous_attributes, previous_types = attributes, types
    return table(["Operator", "Opset", "New attributes", "New element types"], rows)


def _has_schema(op: str, version: int) -> bool:
    try:
        onnx_defs.get_schema(op, version)
    except onnx_defs.SchemaError:
        return False
    return True


def tie_inputs(model: ShowcaseModel, qdq_name: str, count: int = 2) -> list[np.float32]:
    """Float32 inputs whose quotient ``x / s`` is exactly ``k + 0.5`` (ties), for
    successive k from 0."""
    affine = model.affine(qdq_name)
    ties = []
    for k in range(affine.qmax - affine.qmin):
        x = np.float32((k + 0.5) * np.float64(affine.scale))
        if affine.quotient(np.array([x]))[0] == np.float32(k + 0.5):
            ties.append(x)
            if len(ties) == count:
                break
    return ties


def reference_quantize(affine, x: np.ndarray, opset: int) -> np.ndarray:
    """QuantizeLinear evaluated by ONNX's reference implementation."""
    zero_point = np.array(affine.zero_point, dtype=np.int8 if affine.dtype == "INT8" else np.uint8)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    graph = helper.make_graph(
        [node], "quantize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(zero_point.dtype),
                                       [None])],
        [numpy_helper.from_array(np.array(affine.scale, np.float32), "s"),
         numpy_helper.from_array(zero_point, "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, {"x": np.asarray(x, np.float32)})[0]


def quantize_example(model: ShowcaseModel, qdq_name: str = "input_QuantizeLinear") -> str:
    affine = model.affine(qdq_name)
    low, high = affine.real_range
    xs = np.array([0.0, *tie_inputs(model, qdq_name), round(high / 2, 2), high,
                   round(high * 1.25, 2), round(low - (high - low) / 10, 2)], np.float32)
    quotient = affine.quotient(xs)
    rounded = np.rint(quotient).astype(np.int64)
    q = affine.quantize(xs)
    checked = reference_quantize(affine, xs, model.opset)
    if not np.array_equal(q, checked.astype(np.int64)):
        raise ValueError(f"QuantizeLinear example disagrees with onnx.reference: {q} {checked}")
    rows = []
    for x, quo, r, qq in zip(xs, quotient, rounded, q):
        real = affine.dequantize(np.array([qq]))[0]
        rows.append([scale(x), scale(quo), integer(int(r)), integer(int(r) + affine.zero_point),
                     integer(int(qq)), scale(real), number(float(x) - float(real), 3)])
    text = table(["$x$", "$x / s$ (float32)", "round half to even", "$+\\,z$",
                  "$q$ (saturated)", "$\\hat x = (q - z)\\,s$", "$x - \\hat x$"], rows)
    away = np.sign(quotient) * np.floor(np.abs(quotient) + 0.5)
    ties = [(scale(quo), integer(int(a)), integer(int(r)))
            for quo, a, r in zip(quotient, away, rounded) if a != r]
    text += ("\nThe $q$ column was checked at build time against ONNX's reference "
             f"implementation of QuantizeLinear (`onnx.reference`, opset {model.opset}): "
             "identical.")
    if ties:
        listing = "; ".join(f"$x/s = {quo}$ rounds to {r}, not {a}" for quo, a, r in ties)
        text += (f" Rounding half away from zero would differ on the tie rows: {listing}.")
    return text


def near_ties(affine) -> np.ndarray:
    """The float32 inputs closest to every tie ``(k + 0.5) s`` and their two neighbours."""
    ks = np.arange(affine.qmin - affine.zero_point, affine.qmax - affine.zero_point)
    centre = ((ks + 0.5) * np.float64(affine.scale)).astype(np.float32)
    return np.concatenate([np.nextafter(centre, np.float32(-np.inf)), centre,
                           np.nextafter(centre, np.float32(np.inf))])


def reciprocal_pitfall(model: ShowcaseModel) -> str:
    """How often ``x * (1/s)`` instead of ``x / s`` changes q, next to the ties."""
    tried = differ = 0
    example = None
    for node in model.nodes_of("QuantizeLinear"):
        affine = model.affine(node.name)
        xs = near_ties(affine)
        divided = affine.quantize(xs)
        multiplied = np.clip(np.rint(xs * (np.float32(1) / affine.scale)).astype(np.int64)
                             + affine.zero_point, affine.qmin, affine.qmax)
        wrong = np.flatnonzero(divided != multiplied)
        tried, differ = tried + len(xs), differ + len(wrong)
        if example is None and len(wrong):
            i = wrong[0]
            example = (node.name, xs[i], affine, divided[i], multiplied[i])
    text = (f"Over the {len(model.nodes_of('QuantizeLinear'))} QuantizeLinear nodes of the "
            f"model, {integer(differ)} of the {integer(tried)} float32 inputs nearest to a "
            "tie quantize differently when $x$ is multiplied by the float32 reciprocal "
            "$1/s$ instead of divided by $s$")
    if example is None:
        return text + "."
    name, x, affine, divided, multiplied = example
    return text + (f". For instance {code(name)} ($s = {scale(affine.scale)}$) maps "
                   f"$x = {scale(x)}$ to {integer(int(divided))}; the reciprocal gives "
                   f"{integer(int(multiplied))}.")


def roundtrip_inputs(affine, samples: int, ulps: int = 16) -> np.ndarray:
    """Evenly spaced inputs of the covered interval, and every float32 within ``ulps`` of a
    tie ``(k + 1/2) s``, where the round-trip error is largest."""
    low, high = affine.real_range
    ks = np.arange(affine.qmin - affine.zero_point, affine.qmax - affine.zero_point)
    bits = ((ks + 0.5) * np.float64(affine.scale)).astype(np.float32).view(np.int32)
    near = [(bits + step).view(np.float32) for step in range(-ulps, ulps + 1)]
    return np.concatenate([np.linspace(low, high, samples, dtype=np.float32), *near])


def roundtrip_table(model: ShowcaseModel, qdq_names: list[str], samples: int = 100_001) -> str:
    rows = []
    for name in qdq_names:
        affine = model.affine(name)
        low, high = affine.real_range
        xs = roundtrip_inputs(affine, samples)
        q = affine.quantize(xs)
        error = np.abs(xs.astype(np.float64) - affine.dequantize(q))
        exact = np.abs(xs.astype(np.float64) - (q - affine.zero_point) * np.float64(affine.scale))
        over = int((exact > np.float64(affine.scale) / 2).sum())
        beyond = np.float32(high + 10 * float(affine.scale))
        outside = abs(float(beyond) - float(affine.dequantize(affine.quantize(beyond))))
        rows.append([code(name), scale(affine.scale), integer(affine.zero_point),
                     f"[{number(low, 6)}, {number(high, 6)}]",
                     number(float(affine.scale) / 2, 8), number(float(error.max()), 8),
                     f"{integer(over)} of {integer(len(xs))}",
                     f"{number(outside, 6)} at $x = {number(float(beyond), 6)}$"])
    return table(["Q/DQ pair", "$s$", "$z$", "Covered range", "$s/2$", "Largest error",
                  "Over $s/2$ with an exact product", "Error past the range"], rows,
                 [22, 11, 5, 13, 11, 11, 13, 14])


def weight_table(model: ShowcaseModel) -> str:
    rows = []
    for node in model.nodes_of("DequantizeLinear"):
        values = model.initializers.get(node.input[0])
        if values is None or values.dtype != np.int8:
            continue
        affine = model.affine(node.name)
        largest = int(np.abs(values.astype(np.int64) - affine.zero_point).max())
        rows.append([code(node.input[0]), "×".join(map(str, values.shape)),
                     scale(affine.scale), integer(affine.zero_point),
                     integer(int(values.min())), integer(int(values.max())),
                     number(largest * float(affine.scale), 6)])
    return table(["Weight initializer", "Shape", "Scale", "Zero point", "Smallest $q$",
                  "Largest $q$", "Largest $|w|$"], rows)


def activation_zero_points(int8: ShowcaseModel, uint8: ShowcaseModel) -> str:
    rows = []
    for node in int8.nodes_of("QuantizeLinear"):
        signed, unsigned = int8.affine(node.name), uint8.affine(node.name)
        relu = "yes" if signed.zero_point == signed.qmin else ""
        rows.append([code(node.input[0]), scale(signed.scale), integer(signed.zero_point),
                     scale(unsigned.scale), integer(unsigned.zero_point),
                     integer(unsigned.zero_point - signed.zero_point), relu])
    return table(["Quantized tensor", "$s$ (INT8)", "$z$ (INT8)", "$s$ (UINT8)", "$z$ (UINT8)",
                  "$z_{\\mathrm{UINT8}} - z_{\\mathrm{INT8}}$", "$z = q_{\\min}$"], rows)


def per_channel_table(per_tensor: ShowcaseModel, per_channel: ShowcaseModel) -> str:
    rows = []
    for node in per_channel.nodes_of("DequantizeLinear"):
        weights = per_channel.initializers.get(node.input[0])
        if weights is None or weights.dtype != np.int8:
            continue
        scales = per_channel.array(node.input[1]).reshape(-1)
        tensor_scale = per_tensor.array(per_tensor.nodes[node.name].input[1]).reshape(-1)[0]
        rows.append([code(node.input[0]), len(scales), per_channel.attribute(node, "axis", 1),
                     scale(tensor_scale), scale(scales.min()), scale(scales.max()),
                     number(float(tensor_scale / scales.min()), 3)])
    return table(["Weight", "Scales", "Axis", "Per-tensor $s$", "Smallest channel $s$",
                  "Largest channel $s$", "Finer by (smallest channel)"], rows)


def granularity_counts(models: dict[str, ShowcaseModel]) -> str:
    rows = []
    for label, model in models.items():
        counts = {"per-tensor": 0, "per-axis": 0, "blocked": 0}
        for node in model.qdq_nodes():
            if model.attribute(node, "block_size", 0):
                counts["blocked"] += 1
            elif model.array(node.input[1]).size > 1:
                counts["per-axis"] += 1
            else:
                counts["per-tensor"] += 1
        rows.append([code(model.path.name), label, *counts.values()])
    return table(["Model", "", "Per-tensor Q/DQ", "Per-axis Q/DQ", "Blocked Q/DQ"], rows)


# -- 02 / 03: integer Conv and Gemm -----------------------------------------------------


def integer_groups(model: ShowcaseModel) -> list[IntegerGroup]:
    return [IntegerGroup(model, node.name) for node in model.proto.graph.node
            if node.op_type in ("Conv", "Gemm")]


def group_constants(group: IntegerGroup) -> str:
    fixed = group.fixed_point[0]
    product = np.float32(group.x.scale) * np.float32(group.weight_scale[0])
    rows = [
        ("Input scale", "$s_x$", code(group.x.scale_name), scale(group.x.scale)),
        ("Input zero point", "$z_x$", code(group.x.zero_point_name),
         integer(group.x.zero_point)),
        ("Weight scale", "$s_w$", code(group.weight_dq.input[1]),
         scale(group.weight_scale[0])),
        ("Weight zero point", "$z_w$", code(group.weight_dq.input[2]),
         integer(int(group.weight_zero_point[0]))),
        ("Bias scale", "$s_b$", code(group.bias_dq.input[1]), scale(group.bias_scale[0])),
        ("$s_x \\cdot s_w$ (float32)", "", "", scale(product)),
        ("Output scale", "$s_y$", code(group.y.scale_name), scale(group.y.scale)),
        ("Output zero point", "$z_y$", code(group.y.zero_point_name),
         integer(group.y.zero_point)),
        ("Values summed per output", "$K$", "", integer(group.accumulation_length)),
        ("Requantization multiplier", "$M = s_x s_w / s_y$", "",
         number(float(group.multiplier[0]))),
        ("… as fixed point", "$M_0 \\cdot 2^{-31-n}$", "",
         f"$M_0 = {fixed.multiplier}$, $n = {fixed.shift}$"),
    ]
    return table(["Quantity", "Symbol", "Initializer", "Value"], rows)


def worked_example(group: IntegerGroup) -> str:
    x = synthetic_activation(group, EXAMPLE_SEED, EXAMPLE_SPAN)
    acc = group.accumulate(x)
    real = group.requantize(acc)
    fixed = group.requantize_fixed_point(acc)
    reference = group.float_reference(x)
    rows = [[c, integer(int(a)), number(float(a * m), 6), integer(int(r)), integer(int(f)),
             integer(int(ref)), number(float(group.y.dequantize(np.array([r]))[0]), 6)]
            for c, (a, m, r, f, ref) in enumerate(zip(acc, group.multiplier, real, fixed,
                                                      reference))]
    text = (f"The input vector ($K = {group.accumulation_length}$ values) is "
            f"`numpy.random.default_rng({EXAMPLE_SEED}).integers(0, {EXAMPLE_SPAN}, "
            f"size={group.accumulation_length}) + z_x` with $z_x = {group.x.zero_point}$: "
            f"small non-negative real values as a ReLU leaves them, in "
            f"$[0, {number(float(group.x.scale) * (EXAMPLE_SPAN - 1), 6)}]$. "
            f"Its first values are {', '.join(str(int(v)) for v in x[:9])}, ….\n\n")
    text += table(["Output channel", "INT32 accumulator", "acc · M", "$y$ (real $M$)",
                   "$y$ (Q31 fixed point)", "$y$ (DQ → float op → Q)", "$\\hat y$ (real)"],
                  rows)
    same_fixed = int((real == fixed).sum())
    same_reference = int((real == reference).sum())
    text += (f"\nThe integer kernel with the real multiplier agrees with the fixed-point "
             f"one in {same_fixed} of {len(acc)} outputs and with the float QDQ graph in "
             f"{same_reference} of {len(acc)}.")
    if group.y.zero_point == group.y.qmin:
        saturated = int((real == group.y.qmin).sum())
        text += (f" {saturated} outputs saturate at $q_{{\\min}} = {group.y.qmin}$, which is "
                 "also the zero point: real value 0. This saturation is the ReLU that the "
                 "quantizer removed from the graph.")
    return text


def padding_pitfall(group: IntegerGroup) -> str:
    """The corner output of a padded 3x3 conv: padding with z_x (right) or 0 (wrong)."""
    pads = group.model.attribute(group.node, "pads", [0, 0, 0, 0])
    kernel = group.model.attribute(group.node, "kernel_shape")
    channels = group.accumulation_length // (kernel[0] * kernel[1])
    x = synthetic_activation(group, EXAMPLE_SEED, EXAMPLE_SPAN).reshape(channels, *kernel)
    border = np.zeros(kernel, bool)
    border[: pads[0], :] = True
    border[:, : pads[1]] = True
    right, wrong = x.copy(), x.copy()
    right[:, border] = group.x.zero_point
    wrong[:, border] = 0
    y_right = group.requantize(group.accumulate(right))
    y_wrong = group.requantize(group.accumulate(wrong))
    differ = int((y_right != y_wrong).sum())
    worst = int(np.abs(y_right - y_wrong).max())
    padded_real = float(group.x.dequantize(np.array([0]))[0])
    return (f"In {code(group.name)} (pads {list(pads)}, kernel {kernel[0]}×{kernel[1]}), "
            f"the top-left output reads {int(border.sum())} padded positions per input "
            f"channel. Padding them with $z_x = {group.x.zero_point}$ (real 0) and with the "
            f"integer 0 (real $(0 - z_x)\\,s_x = {number(padded_real, 6)}$) gives different "
            f"outputs in {differ} of {len(y_right)} channels, by up to {worst} steps of "
            f"$s_y$, for the example input below.")


def zero_point_folding(group: IntegerGroup, channels: int = 4) -> str:
    sums = (group.weights - group.weight_zero_point[:, None]).sum(axis=1)
    rows = [[c, integer(int(group.bias[c])), integer(int(sums[c])),
             integer(int(group.bias[c] - group.x.zero_point * sums[c]))]
            for c in range(channels)]
    return table(["Output channel", "$b$", "$\\sum_k (w_k - z_w)$",
                  "$b' = b - z_x \\sum_k (w_k - z_w)$"], rows)


def bias_scale_table(groups: list[IntegerGroup]) -> str:
    rows = []
    for group in groups:
        product = (np.float32(group.x.scale) * group.weight_scale.astype(np.float32))
        stored = group.bias_scale
        exact = int((product == stored).sum())
        relative = float(np.max(np.abs(product.astype(np.float64) - stored) / stored))
        rows.append([code(group.name), scale(group.x.scale), scale(group.weight_scale[0]),
                     scale(product[0]), scale(stored[0]),
                     "equal" if exact == len(stored) else
                     f"{exact}/{len(stored)} equal, rel. diff. {number(relative, 2)}",
                     integer(int(np.abs(group.bias).max()))])
    return table(["Group", "$s_x$", "$s_w$", "$s_x s_w$ (float32)", "Stored $s_b$",
                  "Stored vs product", "Largest $|b|$"], rows)


def multiplier_table(groups: list[IntegerGroup]) -> str:
    rows = []
    for group in groups:
        multiplier = float(group.multiplier[0])
        fixed = group.fixed_point[0]
        rows.append([code(group.name), scale(group.y.scale), number(multiplier),
                     integer(fixed.multiplier), fixed.shift])
    return table(["Group", "$s_y$", "$M = s_x s_w / s_y$", "$M_0$ (Q31)", "$n$"], rows)


def accumulator_table(groups: list[IntegerGroup]) -> str:
    rows = []
    for group in groups:
        any_weights, these_weights = group.accumulator_bound()
        x_span = max(group.x.qmax - group.x.zero_point, group.x.zero_point - group.x.qmin)
        w_span = int(np.abs(group.weights - group.weight_zero_point[:, None]).max())
        rows.append([code(group.name), integer(group.accumulation_length), x_span, w_span,
                     integer(any_weights), signed_bits(any_weights), integer(these_weights),
                     signed_bits(these_weights)])
    return table(["Group", "$K$", "max $\\lvert x - z_x\\rvert$", "max $\\lvert w - z_w\\rvert$",
                  "Bound (any weights)", "Bits", "Bound (these weights)", "Bits"], rows)


# -- 04: architecture -------------------------------------------------------------------


def residual_adds(model: ShowcaseModel) -> str:
    rows = []
    for node in model.nodes_of("Add"):
        a, b = (model.affine(model.producer(name).name) for name in node.input[:2])
        y = model.affine(next(c for c in model.consumers(node.output[0])
                              if c.op_type == "QuantizeLinear").name)
        rows.append([code(node.name), f"{scale(a.scale)} / {integer(a.zero_point)}",
                     f"{scale(b.scale)} / {integer(b.zero_point)}",
                     f"{scale(y.scale)} / {integer(y.zero_point)}",
                     number(float(a.scale / y.scale), 6), number(float(b.scale / y.scale), 6)])
    return table(["Add", "Input A: $s_a$ / $z_a$", "Input B: $s_b$ / $z_b$",
                  "Output: $s_y$ / $z_y$", "$s_a / s_y$", "$s_b / s_y$"], rows)


def naming_table(model: ShowcaseModel) -> str:
    """The naming convention of ONNX Runtime's quantizer, with a checked example each."""
    activation, parameter = "input", "stack1.conv1"
    patterns = [
        ("QuantizeLinear of an activation", "node", "<tensor>_QuantizeLinear", activation),
        ("… its INT8 output", "tensor", "<tensor>_QuantizeLinear_Output", activation),
        ("DequantizeLinear of an activation", "node", "<tensor>_DequantizeLinear", activation),
        ("… its FP32 output", "tensor", "<tensor>_DequantizeLinear_Output", activation),
        ("Activation scale (input 1)", "initializer", "<tensor>_scale", activation),
        ("Activation zero point (input 2)", "initializer", "<tensor>_zero_point", activation),
        ("INT8 weight", "initializer", "<param>.weight_quantized", parameter),
        ("Weight scale", "initializer", "<param>.weight_scale", parameter),
        ("Weight zero point", "initializer", "<param>.weight_zero_point", parameter),
        ("DequantizeLinear of the weight", "node", "<param>.weight_DequantizeLinear", parameter),
        ("INT32 bias", "initializer", "<param>.bias_quantized", parameter),
        ("Bias scale", "initializer", "<param>.bias_quantized_scale", parameter),
        ("Bias zero point", "initializer", "<param>.bias_quantized_zero_point", parameter),
        ("FP32 bias, output of its DequantizeLinear", "tensor", "<param>.bias", parameter),
    ]
    tensors = {name for node in model.proto.graph.node for name in node.output}
    rows = []
    for what, kind, pattern, stem in patterns:
        example = pattern.replace("<tensor>", stem).replace("<param>", stem)
        known = {"node": model.nodes, "tensor": tensors, "initializer": model.initializers}[kind]
        if example not in known:
            raise ValueError(f"naming convention: no {kind} {example!r} in {model.path.name}")
        rows.append([what, kind, code(pattern), code(example)])
    return table(["What", "Kind", "Name", "Example in ResNet8"], rows)


def shared_parameters(model: ShowcaseModel) -> str:
    uses: dict[str, list[str]] = {}
    for node in model.qdq_nodes():
        uses.setdefault(node.input[1], []).append(node.name)
    shared = {name: users for name, users in uses.items() if len(users) > 2}
    rows = [[code(name), len(users), ", ".join(code(user) for user in users)]
            for name, users in shared.items()]
    return table(["Scale", "Q/DQ nodes", "Used by"], rows)


def relu_fusion_count(model: ShowcaseModel) -> str:
    fused = [node for node in model.nodes_of("QuantizeLinear")
             if model.affine(node.name).zero_point == model.affine(node.name).qmin]
    relu_outputs = [node for node in fused if "Relu" in node.input[0]]
    return (f"{len(fused)} of {len(model.nodes_of('QuantizeLinear'))} QuantizeLinear nodes "
            f"have $z = q_{{\\min}}$; {len(relu_outputs)} of them quantize a tensor still named "
            f"after a ReLU, and the graph holds {len(model.nodes_of('Relu'))} Relu nodes.")


# -- all fragments ------------------------------------------------------------------------


def all_fragments() -> dict[str, str]:
    report = load_report()
    int8 = ShowcaseModel("resnet8_int8.onnx")
    uint8 = ShowcaseModel("resnet8_uint8.onnx")
    per_channel = ShowcaseModel("resnet8_int8_per_channel.onnx")
    groups = integer_groups(int8)
    conv, gemm = IntegerGroup(int8, CONV_EXAMPLE), IntegerGroup(int8, GEMM_EXAMPLE)
    return {
        "index-models.md": models_table(report),
        "index-provenance.md": provenance_table(report),
        "boundary-dtype-ranges.md": dtype_ranges(),
        "boundary-opset-history.md": opset_history(),
        "boundary-quantize-input.md": quantize_example(int8),
        "boundary-reciprocal.md": reciprocal_pitfall(int8),
        "boundary-roundtrip.md": roundtrip_table(
            int8, ["input_QuantizeLinear", "stack1/conv2/Conv_output_0_QuantizeLinear",
                   "logits_QuantizeLinear"]),
        "boundary-weights.md": weight_table(int8),
        "boundary-activation-zero-points.md": activation_zero_points(int8, uint8),
        "boundary-per-channel.md": per_channel_table(int8, per_channel),
        "boundary-granularity.md": granularity_counts(
            {"INT8": int8, "UINT8": uint8, "INT8, per-channel weights": per_channel}),
        "conv-constants.md": group_constants(conv),
        "conv-worked-example.md": worked_example(conv),
        "conv-padding.md": padding_pitfall(conv),
        "conv-zero-point-folding.md": zero_point_folding(conv),
        "groups-bias-scales.md": bias_scale_table(groups),
        "groups-multipliers.md": multiplier_table(groups),
        "groups-accumulators.md": accumulator_table(groups),
        "gemm-constants.md": group_constants(gemm),
        "gemm-worked-example.md": worked_example(gemm),
        "architecture-residual-adds.md": residual_adds(int8),
        "architecture-naming.md": naming_table(int8),
        "architecture-shared-scales.md": shared_parameters(int8),
        "architecture-relu.md": relu_fusion_count(int8),
    }
