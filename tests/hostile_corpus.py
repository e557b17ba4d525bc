"""A corpus of bad and hostile model files, and the tools to drive it through Sphinx.

Every :class:`Case` writes one model (or a file pretending to be one) into its own
folder. The corpus holds every case of ``QDQ-NOTES.md`` plus mutations of real
quantized models: the showcase ``models/resnet8_int8.onnx`` and the tiny model
quantized by ONNX Runtime (truncations at many offsets, flipped bytes, removed
initializers, wrong dtypes, dangling inputs, broken structure).

Each case says what is true of it, decided from how it was built (never from what
the code under test answers):

``refused``
    no usable model (the loader must refuse it; directives warn ``qdq.model``, the
    CLI exits 2);
``readable``
    a model whose analysis must succeed; ``subtypes`` are diagnostics it must
    report (``exact``: and no others);
``either``
    a mutation whose bytes may or may not still decode (a flipped byte, a cut at a
    field boundary); only consistency is required.

:func:`case_page` writes the page that drives one case through every directive;
:func:`parse_warnings` maps Sphinx's warning text back to (page, line, subtype);
:class:`OpenAudit` records every file Python opens (``sys.addaudithook``).
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import qdq_factories as factories
from onnx import TensorProto, helper, numpy_helper

REPOSITORY = Path(__file__).resolve().parent.parent
RESNET8 = REPOSITORY / "models" / "resnet8_int8.onnx"

#: Subtypes the Sphinx glue emits besides the analysis diagnostics.
GLUE_SUBTYPES = frozenset({"model", "filter", "duplicate", "dot", "graph-size", "reference"})

#: Name of the file outside every model folder that no model may make us open.
SECRET_NAME = "secret.bin"


@dataclass(frozen=True)
class Case:
    """One hostile input: ``write(folder)`` returns the path a page will name."""

    name: str
    write: Callable[[Path], Path]
    outcome: str  # "refused" | "readable" | "either"
    subtypes: frozenset[str] = frozenset()
    exact: bool = False
    no_qdq: bool = False  # readable without any Q/DQ node: qdq-params has no table
    big: bool = False  # more graph nodes than the corpus project's qdq_max_graph_nodes
    note: str = ""

    def model_path(self, models_dir: Path) -> Path:
        return self.write(models_dir / self.name)


@dataclass
class Corpus:
    cases: list[Case] = field(default_factory=list)

    def add(self, name: str, write: Callable[[Path], Path], outcome: str, *subtypes: str,
            exact: bool = False, **extra: object) -> None:
        assert re.fullmatch(r"[a-z0-9-]+", name) and name not in self.names(), name
        self.cases.append(Case(name, write, outcome, frozenset(subtypes), exact, **extra))

    def names(self) -> list[str]:
        return [case.name for case in self.cases]


# -- writers ---------------------------------------------------------------------------------
def model_writer(build: Callable[[], onnx.ModelProto]) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        return factories.save(build(), folder / f"{folder.name}.onnx")
    return write


def bytes_writer(build: Callable[[], bytes]) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / f"{folder.name}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(build())
        return path
    return write


def missing_writer(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{folder.name}.onnx"


def directory_writer(folder: Path) -> Path:
    path = folder / f"{folder.name}.onnx"
    path.mkdir(parents=True, exist_ok=True)
    return path


def secret_file(models_dir: Path) -> Path:
    """The file outside every model folder (next to ``models/``) hostile models aim at."""
    secret = models_dir.parent / "outside" / SECRET_NAME
    if not secret.exists():
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_bytes(np.asarray([0.5, 0.25, 0.125, 2.0], np.float32).tobytes() * 64)
    return secret


def external_writer(location: Callable[[Path], str], *, write_data: bool = True,
                    offset: int = 0, prepare: Callable[[Path], None] | None = None,
                    entries: dict[str, str] | None = None) -> Callable[[Path], Path]:
    """A per-axis Q->DQ model whose scale lives in external data at ``location(folder)``;
    ``entries`` overrides the external-data key/value pairs afterwards."""
    def write(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        secret_file(folder.parent)
        if prepare:
            prepare(folder)
        path = factories.external_scale_model(folder, location(folder), write_data=write_data,
                                              offset=offset, filename=f"{folder.name}.onnx")
        if entries:
            model = onnx.load(str(path), load_external_data=False)
            scale = next(t for t in model.graph.initializer if t.name == "scale")
            for entry in scale.external_data:
                if entry.key in entries:
                    entry.value = entries[entry.key]
            factories.save(model, path)
        return path
    return write


def _symlink_to_secret(folder: Path) -> None:
    link = folder / "linked.bin"
    if not link.is_symlink():
        link.symlink_to(Path(os.path.relpath(secret_file(folder.parent), folder)))


def _symlinked_folder_to_outside(folder: Path) -> None:
    link = folder / "escape"
    if not link.is_symlink():
        link.symlink_to(secret_file(folder.parent).parent, target_is_directory=True)


# -- mutations of real models ---------------------------------------------------------------
def tiny() -> onnx.ModelProto:
    return factories.tiny_resnet_qdq()


def tiny_bytes() -> bytes:
    return tiny().SerializeToString()


def resnet8_bytes() -> bytes:
    return RESNET8.read_bytes()


def truncated(source: Callable[[], bytes], fraction: float | None = None,
              offset: int | None = None) -> Callable[[], bytes]:
    def build() -> bytes:
        data = source()
        cut = offset if offset is not None else int(len(data) * fraction)  # type: ignore[operator]
        return data[:cut]
    return build


def flipped(source: Callable[[], bytes], fraction: float, mask: int = 0xFF) -> Callable[[], bytes]:
    def build() -> bytes:
        data = bytearray(source())
        data[int(len(data) * fraction)] ^= mask
        return bytes(data)
    return build


def mutated(mutate: Callable[[onnx.ModelProto], None],
            source: Callable[[], onnx.ModelProto] = tiny) -> Callable[[], onnx.ModelProto]:
    def build() -> onnx.ModelProto:
        model = source()
        mutate(model)
        return model
    return build


def first_node(model: onnx.ModelProto, op_type: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op_type)


def initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def remove_initializer(model: onnx.ModelProto, name: str) -> None:
    tensors = [t for t in model.graph.initializer if t.name != name]
    assert len(tensors) == len(model.graph.initializer) - 1, name
    del model.graph.initializer[:]
    model.graph.initializer.extend(tensors)


def activation_scale(model: onnx.ModelProto) -> str:
    """The scale of the first QuantizeLinear (an activation scale in ORT's output)."""
    return first_node(model, "QuantizeLinear").input[1]


def weight_dq(model: onnx.ModelProto) -> onnx.NodeProto:
    """The first DequantizeLinear reading a stored tensor of rank 2 or more (a weight)
    with a zero point."""
    weights = {t.name for t in model.graph.initializer if len(t.dims) >= 2}
    return next(n for n in model.graph.node if n.op_type == "DequantizeLinear"
                and n.input[0] in weights and len(n.input) > 2 and n.input[2])


def retype(name_of: Callable[[onnx.ModelProto], str], data_type: int, *,
           keep_data: bool = True, dims: list[int] | None = None
           ) -> Callable[[onnx.ModelProto], None]:
    def mutate(model: onnx.ModelProto) -> None:
        tensor = initializer(model, name_of(model))
        tensor.data_type = data_type
        if dims is not None:
            del tensor.dims[:]
            tensor.dims.extend(dims)
        if not keep_data:
            tensor.ClearField("raw_data")
            tensor.ClearField("float_data")
            tensor.ClearField("int32_data")
    return mutate


def negate_scale_in_bytes() -> bytes:
    """The tiny model's bytes with the sign bit of its first activation scale flipped
    where it sits in the file (the float32 is searched for in the serialized bytes)."""
    model = tiny()
    tensor = initializer(model, activation_scale(model))
    value = numpy_helper.to_array(tensor).astype(np.float32).reshape(())
    data = bytearray(model.SerializeToString())
    packed = struct.pack("<f", float(value))
    name = tensor.name.encode()
    # float_data (field 4, packed: tag 0x22, length 4) is written just before name (field 8)
    position = data.find(b'"\x04' + packed + b"B" + bytes([len(name)]) + name)
    assert position >= 0 and data.count(packed) >= 1, "scale bytes not found"
    sign_byte = position + 2 + 3  # little-endian float32: the sign is in the last byte
    data[sign_byte] ^= 0x80
    return bytes(data)


def missing_scale_input(model: onnx.ModelProto) -> None:
    node = first_node(model, "QuantizeLinear")
    del node.input[1:]


def axis_out_of_range(model: onnx.ModelProto) -> None:
    """A per-channel weight DequantizeLinear whose ``axis`` exceeds the weight's rank."""
    node = weight_dq(model)
    axis = next(a for a in node.attribute if a.name == "axis")
    axis.i = 7


def dangling_q_input(model: onnx.ModelProto) -> None:
    first_node(model, "QuantizeLinear").input[0] = "tensor that nothing produces"


def dangling_dq_input(model: onnx.ModelProto) -> None:
    node = [n for n in model.graph.node if n.op_type == "DequantizeLinear"][-1]
    node.input[0] = "quantized tensor that nothing produces"


def dangling_scale(model: onnx.ModelProto) -> None:
    node = first_node(model, "QuantizeLinear")
    node.input[1] = "scale that nothing defines"


def invalid_utf8_name() -> bytes:
    """The tiny model with one byte of a node name made invalid UTF-8 (0xFF)."""
    model = tiny()
    name = first_node(model, "Conv").name.encode()
    data = bytearray(model.SerializeToString())
    position = data.find(b"\x1a" + bytes([len(name)]) + name)  # NodeProto.name is field 3
    assert position >= 0
    data[position + 2] = 0xFF
    return bytes(data)


def cycle(model: onnx.ModelProto) -> None:
    """The first Q reads the graph's last output: a cycle through the whole graph."""
    first_node(model, "QuantizeLinear").input[0] = model.graph.output[0].name


def duplicate_producers(model: onnx.ModelProto) -> None:
    relu = next(n for n in model.graph.node if n.op_type in ("Relu", "Conv"))
    clone = model.graph.node.add()
    clone.CopyFrom(relu)
    clone.name = relu.name + "_twin"


def empty_op_type(model: onnx.ModelProto) -> None:
    model.graph.node[2].op_type = ""


def no_opset(model: onnx.ModelProto) -> None:
    del model.opset_import[:]


def ir_version(value: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(model: onnx.ModelProto) -> None:
        model.ir_version = value
    return mutate


def huge_opset(model: onnx.ModelProto) -> None:
    model.opset_import[0].version = 100_000


def empty_names(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        node.name = ""


def hostile_doc_strings(model: onnx.ModelProto) -> None:
    text = ('<script>alert(1)</script> *emph* `link <https://evil.example/>`_ '
            ':ref:`x` {ref}`y` $\\input{/etc/passwd}$ ]]> "\' \\N \\G' + "\n.. raw:: html\n")
    model.doc_string = text
    model.graph.doc_string = text
    for node in model.graph.node:
        node.doc_string = text


def giant_name(model: onnx.ModelProto) -> None:
    node = first_node(model, "Conv")
    node.name = "n" * 100_000
    node.doc_string = "d" * 100_000


def unknown_domain_with_garbage_graph(model: onnx.ModelProto) -> None:
    body = helper.make_graph([helper.make_node("", [], [])], "garbage", [], [])
    node = helper.make_node("Mystery", [model.graph.input[0].name], ["mystery_out"],
                            name="mystery", domain="vendor.example", body=body)
    model.graph.node.append(node)
    model.opset_import.append(helper.make_opsetid("vendor.example", 1))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (written by hand: the Python protobuf runtime
    refuses to build messages nested deeper than its parser accepts)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_if(depth: int) -> Callable[[], bytes]:
    """``depth`` nested ``If`` nodes (then branch: the next level; else branch: an
    Identity), the innermost holding a Q->DQ pair on the outer scale ``s``."""
    def build() -> bytes:
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
        graph = helper.make_graph([
            helper.make_node("QuantizeLinear", ["x", "s"], ["xq"], name="deep_q"),
            helper.make_node("DequantizeLinear", ["xq", "s"], ["y"], name="deep_dq")],
            "level0", [], [out]).SerializeToString()
        plain = helper.make_graph([helper.make_node("Identity", ["x"], ["y"], name="plain")],
                                  "plain", [], [out]).SerializeToString()
        node = b""
        for level in range(1, depth + 1):
            branches = b"".join(
                _field(5, onnx.AttributeProto(name=name, type=onnx.AttributeProto.GRAPH
                                              ).SerializeToString() + _field(6, body))
                for name, body in (("then_branch", graph), ("else_branch", plain)))
            node = helper.make_node("If", ["cond"], ["y"], name=f"if{level}"
                                    ).SerializeToString() + branches
            graph = onnx.GraphProto(name=f"level{level}", output=[out]).SerializeToString() \
                + _field(1, node)
        model = factories.make_model([], [factories.tensor_input("x", [1, 4]),
                                          factories.tensor_input("cond", [], TensorProto.BOOL)],
                                     [out], [factories.scalar("s", 0.5)], name="nested")
        top = model.graph.SerializeToString() + _field(1, node)
        model.ClearField("graph")
        return model.SerializeToString() + _field(7, top)
    return build


def no_graph_model() -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.ir_version = 8
    model.opset_import.append(helper.make_opsetid("", 17))
    return model


def negative_dims(model: onnx.ModelProto) -> None:
    tensor = initializer(model, activation_scale(model))
    del tensor.dims[:]
    tensor.dims.extend([-1])


def weight_outside_folder(folder: Path) -> Path:
    """A weight (not a scale: never needed) whose external data names the secret file."""
    folder.mkdir(parents=True, exist_ok=True)
    secret = secret_file(folder.parent)
    model = factories.weight_dq_model()
    weight = initializer(model, "w_int8")
    weight.ClearField("raw_data")
    weight.ClearField("int32_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", os.path.relpath(secret, folder)), ("offset", "0"),
                       ("length", "12")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    return factories.save(model, folder / f"{folder.name}.onnx")


# -- the corpus ------------------------------------------------------------------------------
def build_corpus() -> Corpus:
    c = Corpus()
    pair = factories.qdq_pair_model
    # QDQ-NOTES.md: parameters
    c.add("zp-absent", model_writer(lambda: pair(0.05, None)), "readable", exact=True)
    c.add("zp-empty-input", model_writer(lambda: pair(0.05, 3, zero_point_from="empty")),
          "readable", exact=True)
    c.add("scale-constant", model_writer(lambda: pair(scale_from="constant")), "readable",
          exact=True)
    c.add("scale-graph-input", model_writer(lambda: pair(scale_from="input")), "readable",
          "value", exact=True)
    c.add("scale-runtime", model_writer(lambda: pair(scale_from="runtime")), "readable",
          "value", exact=True)
    c.add("scale-outer-if", model_writer(factories.if_outer_scope_model), "readable")
    c.add("scale-loop-body", model_writer(factories.loop_model), "readable")
    c.add("shared-scale", model_writer(factories.shared_params_model), "readable", exact=True)
    c.add("fanout-clip", model_writer(factories.fanout_clip_model), "readable", exact=True)
    c.add("per-axis-mismatch", model_writer(lambda: pair([0.1, 0.2, 0.3], 0, shape=(1, 4),
                                                         axis=1)), "readable", "shape",
          exact=True)
    for label, value in (("zero", 0.0), ("negative", -0.5), ("nan", math.nan),
                         ("inf", math.inf)):
        c.add(f"scale-{label}", model_writer(lambda v=value: pair(v, 0)), "readable", "scale",
              exact=True)
    c.add("scale-per-axis-bad", model_writer(lambda: pair([0.1, 0.0, -1.0, math.nan], 0,
                                                          shape=(1, 4), axis=1)),
          "readable", "scale", exact=True)
    c.add("blocked-int4", model_writer(factories.blocked_int4_model), "readable", exact=True)
    c.add("blocked-int4-bad-blocks", model_writer(
        lambda: factories.blocked_int4_model(scale_blocks=3)), "readable", "shape")
    c.add("float8", model_writer(factories.float8_model), "readable", exact=True)
    c.add("output-dtype", model_writer(factories.output_dtype_model), "readable", exact=True)
    c.add("com-microsoft", model_writer(lambda: pair(domain="com.microsoft")), "readable",
          exact=True)
    c.add("ort-int16", model_writer(factories.tiny_resnet_qdq_int16), "readable")
    c.add("ort-tensorrt", model_writer(factories.tiny_resnet_qdq_tensorrt), "readable")
    c.add("ort-per-channel", model_writer(lambda: factories.tiny_resnet_qdq(per_channel=True)),
          "readable")
    c.add("qoperator", model_writer(factories.tiny_resnet_qoperator), "readable", exact=True)
    c.add("float-model", model_writer(factories.tiny_resnet_float), "readable", "float_model",
          exact=True, no_qdq=True)
    # QDQ-NOTES.md: names
    c.add("awkward-names", model_writer(factories.awkward_names_model), "readable")
    c.add("hostile-doc-strings", model_writer(mutated(hostile_doc_strings)), "readable")
    c.add("giant-name", model_writer(mutated(giant_name)), "readable")
    c.add("empty-node-names", model_writer(mutated(empty_names)), "readable")
    # QDQ-NOTES.md: files that are not models
    c.add("empty-file", bytes_writer(lambda: b""), "refused")
    c.add("random-bytes", bytes_writer(lambda: np.random.default_rng(7).bytes(4096)), "refused")
    c.add("text-file", bytes_writer(lambda: b"ir_version: 8\ngraph { node { op_type: 'Relu' }}\n"),
          "refused")
    c.add("png-file", bytes_writer(lambda: b"\x89PNG\r\n\x1a\n" + bytes(64)), "refused")
    c.add("zip-file", bytes_writer(lambda: b"PK\x03\x04" + bytes(200)), "refused")
    c.add("no-such-file", missing_writer, "refused")
    c.add("directory", directory_writer, "refused")
    c.add("no-graph", model_writer(no_graph_model), "refused")
    # QDQ-NOTES.md: external data aiming outside the folder
    c.add("ext-dotdot", external_writer(lambda f: f"../outside/{SECRET_NAME}",
                                        write_data=False), "readable", "external_data",
          exact=True)
    c.add("ext-absolute", external_writer(lambda f: str(secret_file(f.parent)),
                                          write_data=False), "readable", "external_data",
          exact=True)
    c.add("ext-symlink-file", external_writer(lambda f: "linked.bin", write_data=False,
                                              prepare=_symlink_to_secret),
          "readable", "external_data", exact=True)
    c.add("ext-symlink-folder", external_writer(lambda f: f"escape/{SECRET_NAME}",
                                                write_data=False,
                                                prepare=_symlinked_folder_to_outside),
          "readable", "external_data", exact=True)
    c.add("ext-missing", external_writer(lambda f: "absent.bin", write_data=False),
          "readable", "external_data", exact=True)
    c.add("ext-beyond-end", external_writer(lambda f: "data.bin",
                                            entries={"offset": str(2**62)}),
          "readable", "external_data", exact=True)
    c.add("ext-bad-length", external_writer(lambda f: "data.bin", entries={"length": "3"}),
          "readable", "external_data", exact=True)
    c.add("ext-bad-offset", external_writer(lambda f: "data.bin", entries={"offset": "-x"}),
          "readable", "external_data", exact=True)
    c.add("ext-location-is-folder", external_writer(lambda f: ".", write_data=False),
          "readable", "external_data", exact=True)
    c.add("ext-weight-outside", weight_outside_folder, "readable", exact=True)
    # QDQ-NOTES.md: size
    c.add("big-qdq-chain", model_writer(lambda: factories.chain_model(40, quantized_every=1)),
          "readable", big=True)
    c.add("deep-chain", model_writer(lambda: factories.chain_model(3000)), "readable",
          "float_model", no_qdq=True, big=True)
    c.add("nested-if-20", bytes_writer(nested_if(20)), "readable")
    c.add("nested-if-40", bytes_writer(nested_if(40)), "either")
    c.add("nested-if-400", bytes_writer(nested_if(400)), "either")
    # mutations of the showcase ResNet8 and of the tiny ORT model
    for percent in (0.001, 1, 5, 25, 50, 75, 99.9):
        c.add(f"resnet8-cut-{str(percent).replace('.', 'p')}",
              bytes_writer(truncated(resnet8_bytes, percent / 100)), "either")
    c.add("resnet8-cut-1-byte", bytes_writer(truncated(resnet8_bytes, offset=1)), "refused")
    c.add("resnet8-cut-last-byte", bytes_writer(truncated(resnet8_bytes, offset=-1)), "either")
    for percent in (0, 10, 50, 97):
        c.add(f"resnet8-flip-{percent}", bytes_writer(flipped(resnet8_bytes, percent / 100)),
              "either")
    for percent in (3, 40, 80):
        c.add(f"tiny-cut-{percent}", bytes_writer(truncated(tiny_bytes, percent / 100)),
              "either")
    c.add("tiny-flip-2", bytes_writer(flipped(tiny_bytes, 0.02)), "either")
    c.add("tiny-scale-sign-flipped", bytes_writer(negate_scale_in_bytes), "readable", "scale",
          exact=True)
    c.add("tiny-no-activation-scale", model_writer(mutated(
        lambda m: remove_initializer(m, activation_scale(m)))), "readable", "value")
    c.add("tiny-no-weight", model_writer(mutated(
        lambda m: remove_initializer(m, weight_dq(m).input[0]))), "readable")
    c.add("tiny-no-weight-zero-point", model_writer(mutated(
        lambda m: remove_initializer(m, weight_dq(m).input[2]))), "readable", "value")
    c.add("tiny-scale-int8-raw", model_writer(mutated(retype(activation_scale,
                                                             TensorProto.INT8))),
          "readable", "value")
    c.add("tiny-scale-string", model_writer(mutated(retype(activation_scale,
                                                           TensorProto.STRING))),
          "readable", "value")
    c.add("tiny-scale-undefined-type", model_writer(mutated(retype(activation_scale, 0))),
          "readable", "value")
    c.add("tiny-scale-type-999", model_writer(mutated(retype(activation_scale, 999))),
          "readable", "value")
    c.add("tiny-scale-huge-dims", model_writer(mutated(retype(
        activation_scale, TensorProto.FLOAT, keep_data=False, dims=[2**40]))), "readable",
          "value")
    c.add("tiny-scale-negative-dims", model_writer(mutated(negative_dims)), "either")
    c.add("tiny-zero-point-float", model_writer(mutated(retype(
        lambda m: weight_dq(m).input[2], TensorProto.FLOAT))), "readable")
    c.add("tiny-missing-scale-input", model_writer(mutated(missing_scale_input)), "readable",
          "malformed")
    c.add("tiny-axis-out-of-range", model_writer(mutated(
        axis_out_of_range, lambda: factories.tiny_resnet_qdq(per_channel=True))), "readable",
          "malformed")
    c.add("tiny-dangling-q-input", model_writer(mutated(dangling_q_input)), "readable")
    c.add("tiny-dangling-dq-input", model_writer(mutated(dangling_dq_input)), "readable")
    c.add("tiny-dangling-scale", model_writer(mutated(dangling_scale)), "readable", "value")
    c.add("tiny-invalid-utf8-name", bytes_writer(invalid_utf8_name), "readable", "encoding",
          exact=True)
    c.add("tiny-cycle", model_writer(mutated(cycle)), "readable")
    c.add("tiny-duplicate-producers", model_writer(mutated(duplicate_producers)), "readable")
    c.add("tiny-vendor-op-garbage-body", model_writer(mutated(
        unknown_domain_with_garbage_graph)), "either")
    c.add("tiny-empty-op-type", model_writer(mutated(empty_op_type)), "refused")
    c.add("tiny-no-opset", model_writer(mutated(no_opset)), "refused")
    c.add("tiny-ir-version-0", model_writer(mutated(ir_version(0))), "refused")
    c.add("tiny-ir-version-1000", model_writer(mutated(ir_version(1000))), "refused")
    c.add("tiny-opset-100000", model_writer(mutated(huge_opset)), "readable")
    return c


CORPUS = build_corpus()

#: A case whose model every directive refuses: one ``model`` warning per directive.
REFUSED = "refused"

#: The warnings each case's page must carry, declared here (not read from the analysis
#: under test): the subtype of each warning, one entry per warning, at the first
#: directive of the page (where the analysis' diagnostics are reported) or at directive
#: ``@i`` of :data:`DIRECTIVES` (``graph-size@1``: the full drawing exceeds the project's
#: limit of 100 nodes). The byte-level mutations are seeded, so their outcome is fixed too.
EXPECTED_WARNINGS: dict[str, str | tuple[str, ...]] = {
    "zp-absent": (),
    "zp-empty-input": (),
    "scale-constant": (),
    "scale-graph-input": ("value",),
    "scale-runtime": ("value",),
    "scale-outer-if": (),
    "scale-loop-body": (),
    "shared-scale": (),
    "fanout-clip": (),
    "per-axis-mismatch": ("shape", "shape"),
    "scale-zero": ("scale",),
    "scale-negative": ("scale",),
    "scale-nan": ("scale",),
    "scale-inf": ("scale",),
    "scale-per-axis-bad": ("scale",),
    "blocked-int4": (),
    "blocked-int4-bad-blocks": ("shape",),
    "float8": (),
    "output-dtype": (),
    "com-microsoft": (),
    "ort-int16": (),
    "ort-tensorrt": (),
    "ort-per-channel": (),
    "qoperator": (),
    "float-model": ("float_model",),
    "awkward-names": (),
    "hostile-doc-strings": (),
    "giant-name": (),
    "empty-node-names": (),
    "empty-file": REFUSED,
    "random-bytes": REFUSED,
    "text-file": REFUSED,
    "png-file": REFUSED,
    "zip-file": REFUSED,
    "no-such-file": REFUSED,
    "directory": REFUSED,
    "no-graph": REFUSED,
    "ext-dotdot": ("external_data",),
    "ext-absolute": ("external_data",),
    "ext-symlink-file": ("external_data",),
    "ext-symlink-folder": ("external_data",),
    "ext-missing": ("external_data",),
    "ext-beyond-end": ("external_data",),
    "ext-bad-length": ("external_data",),
    "ext-bad-offset": ("external_data",),
    "ext-location-is-folder": ("external_data",),
    "ext-weight-outside": (),
    "big-qdq-chain": ("graph-size@1",),
    "deep-chain": ("float_model", "graph-size@0", "graph-size@1"),
    "nested-if-20": (),
    "nested-if-40": REFUSED,
    "nested-if-400": REFUSED,
    "resnet8-cut-0p001": REFUSED,
    "resnet8-cut-1": REFUSED,
    "resnet8-cut-5": REFUSED,
    "resnet8-cut-25": REFUSED,
    "resnet8-cut-50": REFUSED,
    "resnet8-cut-75": REFUSED,
    "resnet8-cut-99p9": REFUSED,
    "resnet8-cut-1-byte": REFUSED,
    "resnet8-cut-last-byte": REFUSED,
    "resnet8-flip-0": REFUSED,
    "resnet8-flip-10": ("encoding",),
    "resnet8-flip-50": (),
    "resnet8-flip-97": (),
    "tiny-cut-3": REFUSED,
    "tiny-cut-40": REFUSED,
    "tiny-cut-80": REFUSED,
    "tiny-flip-2": ("encoding",),
    "tiny-scale-sign-flipped": ("scale",),
    "tiny-no-activation-scale": ("value",),
    "tiny-no-weight": (),
    "tiny-no-weight-zero-point": ("value",),
    "tiny-scale-int8-raw": ("value",),
    "tiny-scale-string": ("value",),
    "tiny-scale-undefined-type": ("value",),
    "tiny-scale-type-999": ("value",),
    "tiny-scale-huge-dims": ("shape", "shape", "shape", "shape", "value"),
    "tiny-scale-negative-dims": ("shape", "shape", "shape", "shape"),
    "tiny-zero-point-float": ("value",),
    "tiny-missing-scale-input": ("malformed",),
    "tiny-axis-out-of-range": ("malformed",),
    "tiny-dangling-q-input": (),
    "tiny-dangling-dq-input": (),
    "tiny-dangling-scale": ("value",),
    "tiny-invalid-utf8-name": ("encoding",),
    "tiny-cycle": (),
    "tiny-duplicate-producers": (),
    "tiny-vendor-op-garbage-body": (),
    "tiny-empty-op-type": REFUSED,
    "tiny-no-opset": REFUSED,
    "tiny-ir-version-0": REFUSED,
    "tiny-ir-version-1000": REFUSED,
    "tiny-opset-100000": (),
}


# -- pages -----------------------------------------------------------------------------------
#: The directives every case goes through, in page order.
DIRECTIVES = (
    ("qdq-graph", {"mode": "compact"}),
    ("qdq-graph", {"mode": "full"}),
    ("qdq-params", {"layout": "node"}),
    ("qdq-params", {"layout": "initializer", "values": "full"}),
    ("qdq-summary", {}),
)


@dataclass(frozen=True)
class CasePage:
    docname: str
    text: str
    directive_lines: tuple[int, ...]  # 1-based line of each directive of DIRECTIVES


def case_page(case: Case, model_argument: str) -> CasePage:
    """An orphan reST page using the model with every directive (line numbers recorded)."""
    lines = [":orphan:", "", f"Case {case.name}", "=" * (5 + len(case.name)), ""]
    positions = []
    for directive, options in DIRECTIVES:
        positions.append(len(lines) + 1)
        lines.append(f".. {directive}:: {model_argument}")
        lines += [f"   :{key}: {value}" for key, value in options.items()]
        lines += ["", "Text after the directive.", ""]
    return CasePage(f"cases/{case.name}", "\n".join(lines), tuple(positions))


# -- warnings ---------------------------------------------------------------------------------
WARNING_START = re.compile(r"^(?P<file>\S[^\n]*?):(?P<line>\d+)?:? ?(?P<level>WARNING|ERROR|"
                           r"CRITICAL): (?P<message>.*)$")
SUFFIX = re.compile(r" \[(?P<type>[\w.-]+)\]$")


@dataclass(frozen=True)
class Warning_:
    file: str
    line: int | None
    level: str
    message: str
    type: str | None  # "qdq.model" ...
    continuation: tuple[str, ...] = ()

    @property
    def subtype(self) -> str | None:
        if self.type and self.type.startswith("qdq."):
            return self.type[4:]
        return None


def parse_warnings(text: str) -> list[Warning_]:
    """Sphinx warning text -> records; lines that do not start a warning are kept as the
    continuation of the previous one (a warning must have none)."""
    records: list[Warning_] = []
    pending: list[str] = []
    for line in text.splitlines():
        match = WARNING_START.match(line)
        if match is None:
            if records:
                pending.append(line)
            else:
                records.append(Warning_("", None, "?", line, None))
            continue
        if records and pending:
            records[-1] = _with_continuation(records[-1], pending)
        pending = []
        message = match["message"]
        suffix = SUFFIX.search(message)
        records.append(Warning_(match["file"], int(match["line"]) if match["line"] else None,
                                match["level"], message, suffix["type"] if suffix else None))
    if records and pending:
        records[-1] = _with_continuation(records[-1], pending)
    return records


def _with_continuation(record: Warning_, lines: list[str]) -> Warning_:
    last = lines[-1]
    suffix = SUFFIX.search(last)
    return Warning_(record.file, record.line, record.level, record.message,
                    suffix["type"] if suffix else record.type, tuple(lines))


# -- file-open audit ----------------------------------------------------------------------------
_audit_lock = threading.Lock()
_audit_recording: list[list[str]] = []  # the lists of the OpenAudit blocks now recording
_audit_installed = False


def _audit_hook(event: str, args: tuple) -> None:
    if event != "open" or not _audit_recording:
        return
    path = args[0] if args else None
    if isinstance(path, int) or path is None:
        return
    try:
        text = os.fsdecode(path)
    except (TypeError, ValueError):
        return
    with _audit_lock:
        for opened in _audit_recording:
            opened.append(text)


@contextmanager
def open_audit() -> Iterator[list[str]]:
    """Record every path opened by this process (``open``, ``os.open``, ``io``...) inside
    the block. Audit hooks cannot be removed: the hook is installed once and only
    records while a block is active."""
    global _audit_installed
    if not _audit_installed:
        sys.addaudithook(_audit_hook)
        _audit_installed = True
    opened: list[str] = []
    with _audit_lock:
        _audit_recording.append(opened)
    try:
        yield opened
    finally:
        with _audit_lock:
            _audit_recording.remove(opened)


def resolved(paths: list[str], cwd: Path) -> set[Path]:
    """Opened paths made absolute (relative ones against *cwd*) and resolved."""
    result = set()
    for text in paths:
        path = Path(text)
        if not path.is_absolute():
            path = cwd / path
        try:
            result.add(path.resolve())
        except (OSError, RuntimeError):
            result.add(path)
    return result
