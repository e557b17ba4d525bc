"""Hostile inputs for the fuzz harness, each decided by one integer (its seed).

:func:`make_input` writes one input into a folder: a seed model (small QDQ models of
:mod:`qdq_factories` and the showcase ResNet8) mutated through the onnx API
(dimensions, data types, values NaN/Inf/0/empty/huge, ``axis``, ``block_size``, names
and encodings, attributes including ``ref_attr_name``, subgraphs and functions,
external data with links, loops and special files), then, for some seeds, at the byte
level (flips, cuts, splices, insertions); a few seeds make the model path itself a
FIFO, a device link, a symbolic-link loop or a folder. The same seed always writes the
same files.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import qdq_factories as factories
from onnx import AttributeProto, TensorProto, helper

REPOSITORY = Path(__file__).resolve().parents[2]

_SEEDS: dict[str, bytes] = {}


def _function_model() -> onnx.ModelProto:
    """A local function holding a Q -> DQ pair whose ``axis`` is a function attribute."""
    function = helper.make_function(
        "local", "QdqFn", ["x", "s", "z"], ["y"],
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="fq"),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="fdq")],
        [helper.make_opsetid("", 17)], attributes=["ax"])
    axis = AttributeProto(name="axis", type=AttributeProto.INT, ref_attr_name="ax")
    function.node[0].attribute.append(axis)
    model = factories.make_model(
        [helper.make_node("QdqFn", ["x", "s", "z"], ["y"], name="call", domain="local", ax=1)],
        [factories.tensor_input("x", [1, 4])], [factories.tensor_input("y", [1, 4])],
        [factories.scalar("s", 0.5), factories.scalar("z", 3, TensorProto.UINT8)],
        name="function", extra_opsets=[("local", 1)])
    model.functions.append(function)
    return model


SEED_BUILDERS: dict[str, Callable[[], onnx.ModelProto]] = {
    "conv": factories.weight_dq_model,
    "conv-per-channel": lambda: factories.weight_dq_model(
        scale=[0.1, 0.2, 0.3, 0.4], zero_point=[0, 0, 0, 0], axis=0),
    "pair": factories.qdq_pair_model,
    "pair-per-axis": lambda: factories.qdq_pair_model([0.5, 0.25, 0.125, 2.0], 0, axis=1),
    "shared": factories.shared_params_model,
    "if": factories.if_outer_scope_model,
    "loop": factories.loop_model,
    "int4": factories.blocked_int4_model,
    "float8": factories.float8_model,
    "output-dtype": factories.output_dtype_model,
    "awkward": factories.awkward_names_model,
    "function": _function_model,
}


def seed_bytes(name: str) -> bytes:
    if name not in _SEEDS:
        if name == "resnet8":
            _SEEDS[name] = (REPOSITORY / "models" / "resnet8_int8.onnx").read_bytes()
        else:
            _SEEDS[name] = SEED_BUILDERS[name]().SerializeToString()
    return _SEEDS[name]


SEED_NAMES = (*SEED_BUILDERS, "resnet8")

DATA_TYPES = [value for value in TensorProto.DataType.values() if value] + [0, 99, -1]
ODD_DIMS = (0, -1, 1, 2, 3, 7, 255, 1 << 20, 1 << 31, 1 << 40, 1 << 62)
ODD_FLOATS = (float("nan"), float("inf"), -float("inf"), 0.0, -0.0, -1.0, 1e-45, 3.4e38, 1e30)
ODD_INTS = (0, -1, 1, -129, 256, 1 << 31, -(1 << 31), 1 << 62, -(1 << 63))
ODD_NAMES = ("", " ", "x" * 5000, "名前", "new\nline", "a\0b", "\\N{x}", "<b>", "{|}",
             "`*x*`", ":role:`y`", "..", "/etc/passwd", "\x1b[31m", "\udcff" * 0 + "é" * 300)


@dataclass(frozen=True)
class FuzzInput:
    """One input written to disk: the model path a page or the CLI names, and what
    was done to make it (for the report)."""

    seed: int
    path: Path
    mutations: tuple[str, ...]
    compute_node: str  # a node name for :node: / --node ("" when none)
    #: the first graph input's declared shape (symbolic or odd dimensions as 1), for
    #: ``.npy`` inputs that fit; None when there is none or it is larger than 65,536 values
    input_shape: tuple[int, ...] | None = None


# -- mutations through the onnx API -----------------------------------------------------
def _tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    found = list(model.graph.initializer)
    for node in _all_nodes(model):
        for attribute in node.attribute:
            if attribute.type == AttributeProto.TENSOR:
                found.append(attribute.t)
    return found


def _all_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    nodes, pending = [], [model.graph]
    while pending:
        graph = pending.pop()
        for node in graph.node:
            nodes.append(node)
            for attribute in node.attribute:
                if attribute.type == AttributeProto.GRAPH:
                    pending.append(attribute.g)
                elif attribute.type == AttributeProto.GRAPHS:
                    pending.extend(attribute.graphs)
    for function in model.functions:
        nodes.extend(function.node)
    return nodes


def _value_infos(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    graph = model.graph
    return [*graph.input, *graph.output, *graph.value_info]


def mutate_dims(model: onnx.ModelProto, rng: random.Random) -> str:
    if rng.random() < 0.5 and _value_infos(model):
        info = rng.choice(_value_infos(model))
        shape = info.type.tensor_type.shape
        if not shape.dim:
            shape.dim.add()
        dim = rng.choice(shape.dim)
        if rng.random() < 0.2:
            dim.dim_param = rng.choice(ODD_NAMES)
        else:
            dim.dim_value = rng.choice(ODD_DIMS)
        return f"declared dim of {info.name[:20]!r}"
    tensors = _tensors(model)
    if not tensors:
        return "no tensor"
    tensor = rng.choice(tensors)
    choice = rng.random()
    if choice < 0.3 or not tensor.dims:
        tensor.dims.append(rng.choice(ODD_DIMS))
    elif choice < 0.6:
        del tensor.dims[:]
    else:
        tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice(ODD_DIMS)
    return f"dims of {tensor.name[:20]!r}"


def mutate_dtype(model: onnx.ModelProto, rng: random.Random) -> str:
    if rng.random() < 0.3 and _value_infos(model):
        info = rng.choice(_value_infos(model))
        info.type.tensor_type.elem_type = rng.choice(DATA_TYPES)
        return f"declared dtype of {info.name[:20]!r}"
    tensors = _tensors(model)
    if not tensors:
        return "no tensor"
    tensor = rng.choice(tensors)
    tensor.data_type = rng.choice(DATA_TYPES)
    return f"dtype of {tensor.name[:20]!r}"


def mutate_values(model: onnx.ModelProto, rng: random.Random) -> str:
    tensors = _tensors(model)
    if not tensors:
        return "no tensor"
    tensor = rng.choice(tensors)
    count = int(np.prod(tensor.dims)) if tensor.dims and all(0 <= d < 4096 for d in tensor.dims) \
        else 1
    choice = rng.random()
    tensor.ClearField("float_data")
    tensor.ClearField("int32_data")
    tensor.ClearField("int64_data")
    tensor.ClearField("double_data")
    if choice < 0.2:
        tensor.ClearField("raw_data")  # empty
    elif choice < 0.5:
        tensor.raw_data = np.array([rng.choice(ODD_FLOATS) for _ in range(max(count, 1))],
                                   np.float32).tobytes()
    elif choice < 0.7:
        tensor.raw_data = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 3, 7, 64))))
    elif choice < 0.85:
        tensor.ClearField("raw_data")
        tensor.int64_data.extend(rng.choice(ODD_INTS) for _ in range(max(count, 1)))
    else:
        tensor.ClearField("raw_data")
        tensor.float_data.extend(rng.choice(ODD_FLOATS) for _ in range(rng.choice((0, 1, 5))))
    return f"values of {tensor.name[:20]!r}"


def _set_int_attribute(node: onnx.NodeProto, name: str, value: int) -> None:
    for attribute in node.attribute:
        if attribute.name == name:
            attribute.type = AttributeProto.INT
            attribute.i = value
            return
    node.attribute.append(helper.make_attribute(name, value))


def mutate_axis(model: onnx.ModelProto, rng: random.Random) -> str:
    nodes = [n for n in _all_nodes(model) if "Linear" in n.op_type] or _all_nodes(model)
    if not nodes:
        return "no node"
    node = rng.choice(nodes)
    name = rng.choice(("axis", "axis", "block_size", "saturate", "output_dtype"))
    _set_int_attribute(node, name, rng.choice((-5, -1, 0, 1, 2, 3, 4, 9, 1 << 40, -(1 << 40))))
    return f"{name} of {node.op_type}"


def mutate_names(model: onnx.ModelProto, rng: random.Random) -> str:
    nodes = _all_nodes(model)
    if not nodes:
        return "no node"
    node = rng.choice(nodes)
    new = rng.choice(ODD_NAMES)
    choice = rng.random()
    if choice < 0.4:
        node.name = new
        return "node name"
    if choice < 0.7 and node.input:
        node.input[rng.randrange(len(node.input))] = new  # dangling (or renamed) input
        return "node input name"
    if node.output:
        old = node.output[0]
        node.output[0] = new
        for other in nodes:  # rename consistently: only the names change
            for index, name in enumerate(other.input):
                if name == old:
                    other.input[index] = new
        return "tensor name"
    node.op_type = rng.choice(("QuantizeLinear", "DequantizeLinear", "Conv", "If", "Loop",
                               "x" * 300, "QLinearConv"))
    return "op type"


def mutate_attributes(model: onnx.ModelProto, rng: random.Random) -> str:
    nodes = _all_nodes(model)
    if not nodes:
        return "no node"
    node = rng.choice(nodes)
    choice = rng.random()
    name = rng.choice(("axis", "strides", "pads", "kernel_shape", "group", "dilations",
                       "block_size", "alpha", "transB", "body", "then_branch", "value"))
    if choice < 0.35:
        attribute = AttributeProto(name=name, ref_attr_name=rng.choice(("a", "", "x" * 100)),
                                   type=rng.choice((AttributeProto.INT, AttributeProto.INTS,
                                                    AttributeProto.GRAPH, AttributeProto.FLOAT)))
        node.attribute.append(attribute)
        return f"ref_attr_name {name}"
    if choice < 0.55:
        values = [rng.choice(ODD_INTS + (0, 1, 2)) for _ in range(rng.choice((0, 1, 2, 4, 8)))]
        node.attribute.append(helper.make_attribute(name, values) if values
                              else AttributeProto(name=name, type=AttributeProto.INTS))
        return f"ints {name}"
    if choice < 0.7 and node.attribute:
        del node.attribute[rng.randrange(len(node.attribute))]
        return "attribute removed"
    if choice < 0.85:
        node.attribute.append(AttributeProto(name=name, type=rng.choice(
            list(AttributeProto.AttributeType.values()))))
        return f"typed-empty {name}"
    garbage = helper.make_graph([helper.make_node("DequantizeLinear", ["nowhere", "s"], ["o"],
                                                  name="inner")], "garbage", [], [])
    node.attribute.append(helper.make_attribute(name, garbage))
    return f"subgraph {name}"


def mutate_subgraph(model: onnx.ModelProto, rng: random.Random) -> str:
    """Move the main graph into an ``If`` branch, or call a function that is missing /
    present, or nest graphs."""
    graph = model.graph
    choice = rng.random()
    if choice < 0.5 and graph.node:
        body = helper.make_graph(list(graph.node), "inner", [], list(graph.output))
        del graph.node[:]
        graph.node.append(helper.make_node("If", ["cond"], [o.name for o in graph.output],
                                           name="wrap", then_branch=body, else_branch=body))
        graph.input.append(factories.tensor_input("cond", [], TensorProto.BOOL))
        return "graph moved into If"
    if choice < 0.8:
        function = helper.make_function("local", "F", ["a"], ["b"], list(graph.node[:3]),
                                        [helper.make_opsetid("", 17)])
        model.functions.append(function)
        model.opset_import.append(helper.make_opsetid("local", 1))
        graph.node.append(helper.make_node("F", [graph.input[0].name if graph.input else "x"],
                                           ["f_out"], name="call_f", domain="local"))
        return "function"
    graph.node.append(helper.make_node("Loop", ["", ""], ["l_out"], name="empty_loop",
                                       body=helper.make_graph([], "empty", [], [])))
    return "empty Loop"


def mutate(model: onnx.ModelProto, rng: random.Random) -> str:
    """One mutation; one the onnx API itself refuses is skipped (and said so)."""
    mutation = rng.choice(MUTATIONS)
    try:
        return mutation(model, rng)
    except (ValueError, TypeError, IndexError) as error:
        return f"{mutation.__name__} refused by onnx ({type(error).__name__})"


MUTATIONS = (mutate_dims, mutate_dtype, mutate_values, mutate_values, mutate_axis,
             mutate_names, mutate_attributes, mutate_attributes, mutate_subgraph)


# -- external data and special files ------------------------------------------------------
EXTERNAL_KINDS = ("plain", "link-outside", "link-loop", "fifo", "dev-zero", "folder", "missing",
                  "dotdot", "absolute", "bad-offset", "bad-length", "short")


def make_external(model: onnx.ModelProto, folder: Path, rng: random.Random) -> str:
    """Move a scale (or any initializer) into external data of a hostile kind."""
    tensors = [t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT] \
        or list(model.graph.initializer)
    if not tensors:
        return "no initializer"
    tensor = rng.choice(tensors)
    raw = tensor.raw_data or np.asarray(tensor.float_data, np.float32).tobytes()
    kind = rng.choice(EXTERNAL_KINDS)
    location = f"data-{kind}.bin"
    target = folder / location
    offset, length = 0, len(raw)
    if kind in ("plain", "bad-offset", "bad-length", "short"):
        target.write_bytes(raw[: len(raw) // 2] if kind == "short" else raw)
        offset = {"bad-offset": rng.choice((-1, 1 << 40, 3))}.get(kind, 0)
        length = {"bad-length": rng.choice((-5, 0, 1 << 50, len(raw) + 1))}.get(kind, length)
    elif kind == "link-outside":
        outside = folder.parent / "outside.bin"
        outside.write_bytes(raw * 4)
        target.symlink_to(outside)
    elif kind == "link-loop":
        target.symlink_to(location)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero":
        target.symlink_to("/dev/zero")
    elif kind == "folder":
        target.mkdir()
    elif kind == "dotdot":
        location = "../outside.bin"
    elif kind == "absolute":
        location = "/etc/hostname"
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return f"external data {kind}"


# -- bytes ----------------------------------------------------------------------------------
def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buffer = bytearray(data)
    choice = rng.random()
    if not buffer:
        return bytes(rng.getrandbits(8) for _ in range(64)), "random bytes"
    if choice < 0.35:
        for _ in range(rng.choice((1, 1, 2, 4, 16))):
            position = rng.randrange(len(buffer))
            buffer[position] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else 0xFF
        return bytes(buffer), "bit flips"
    if choice < 0.55:
        return bytes(buffer[: rng.randrange(len(buffer))]), "truncated"
    if choice < 0.75:
        other = seed_bytes(rng.choice(SEED_NAMES[:-1]))
        cut, start = rng.randrange(len(buffer)), rng.randrange(len(other))
        return bytes(buffer[:cut]) + other[start:], "spliced"
    if choice < 0.9:
        position = rng.randrange(len(buffer))
        insert = bytes(rng.choice((0x00, 0xFF, 0x7F, 0x80, 0x0A, 0x12, 0x1A))
                       for _ in range(rng.choice((1, 2, 8, 32))))
        return bytes(buffer[:position]) + insert + bytes(buffer[position:]), "inserted"
    start = rng.randrange(len(buffer))
    chunk = buffer[start:start + rng.choice((4, 16, 64))]
    return bytes(buffer[:start]) + bytes(chunk) * rng.choice((2, 8)) + bytes(buffer[start:]), \
        "duplicated"


SPECIAL_PATHS = ("fifo", "dev-zero", "loop", "folder", "missing", "dangling")


def _special_model_path(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling":
        path.symlink_to("nowhere.onnx")


def _compute_node(model: onnx.ModelProto, rng: random.Random) -> str:
    names = [n.name for n in model.graph.node if n.op_type not in
             ("QuantizeLinear", "DequantizeLinear", "Constant") and n.name]
    if not names:
        names = [n.name for n in model.graph.node if n.name]
    if not names:
        return ""
    return rng.choice(names)


def make_input(seed: int, folder: Path) -> FuzzInput:
    """Write input *seed* into *folder* (created) and describe it."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    if rng.random() < 0.02:
        kind = rng.choice(SPECIAL_PATHS)
        _special_model_path(path, kind)
        return FuzzInput(seed, path, (f"model path {kind}",), "conv")
    seed_name = rng.choice(SEED_NAMES)
    model = onnx.ModelProto()
    model.ParseFromString(seed_bytes(seed_name))
    mutations = [seed_name]
    for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3, 5))):
        mutations.append(mutate(model, rng))
    if rng.random() < 0.15:
        mutations.append(make_external(model, folder, rng))
    node = _compute_node(model, rng)
    data = model.SerializeToString()
    if rng.random() < 0.3:
        data, what = mutate_bytes(data, rng)
        mutations.append(what)
    path.write_bytes(data)
    return FuzzInput(seed, path, tuple(mutations), node, _input_shape(model))


def _input_shape(model: onnx.ModelProto) -> tuple[int, ...] | None:
    if not model.graph.input:
        return None
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if 0 < d.dim_value <= 4096 else 1 for d in dims)
    return shape if len(shape) <= 6 and int(np.prod(shape)) <= 1 << 16 else None


def make_sibling(fuzz_input: FuzzInput, path: Path) -> Path:
    """A float-model stand-in for *fuzz_input* at *path*: its seed model (the same tensor
    names) with one other mutation through the onnx API, no byte-level damage; the
    input's own path when it has no seed model (a special path)."""
    seed_name = fuzz_input.mutations[0] if fuzz_input.mutations else ""
    if seed_name not in SEED_NAMES:
        return fuzz_input.path
    model = onnx.ModelProto()
    model.ParseFromString(seed_bytes(seed_name))
    mutate(model, random.Random(-1 - fuzz_input.seed))
    path.write_bytes(model.SerializeToString())
    return path
