"""The analysis of hand-made models, one per case of QDQ-NOTES.md.

Each model is built with ``onnx.helper`` in :mod:`qdq_factories`; expected
values come from what the builder put in (read back with ``numpy_helper``).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import subprocess
import sys

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from onnx import TensorProto, helper, numpy_helper

from sphinxext_qdq.analysis import (
    DIAGNOSTIC_SUBTYPES,
    Granularity,
    ParamSource,
    QdqModel,
    QdqSelectionError,
    Role,
    analyze,
    describe,
    nodes_between,
    summarize,
)
from sphinxext_qdq.onnxio.proto import repair_text_fields


def analysed(proto: onnx.ModelProto) -> QdqModel:
    return analyze(proto, path="/models/case.onnx", model_dir=None)


def initializer_values(proto: onnx.ModelProto, name: str) -> list:
    tensor = next(t for t in proto.graph.initializer if t.name == name)
    return numpy_helper.to_array(tensor).ravel().tolist()


def subtypes(model: QdqModel) -> list[str]:
    return [d.subtype for d in model.diagnostics]


# -- zero points and scales: every source ---------------------------------------------
def test_plain_pair_per_tensor() -> None:
    proto = factories.qdq_pair_model(0.05, 128)
    model = analysed(proto)
    q, dq = model.qdq("q"), model.qdq("dq")
    assert (q.role, dq.role) == (Role.ACTIVATION, Role.ACTIVATION)
    assert (q.partner, dq.partner) == ("dq", "q")
    assert (q.quant_dtype, q.float_dtype) == ("UINT8", "FLOAT")
    assert q.granularity is Granularity.PER_TENSOR and q.axis is None and q.block_size is None
    scale = model.param("scale")
    assert scale.values == tuple(initializer_values(proto, "scale"))
    assert scale.values == (float(np.float32(0.05)),)
    assert model.param("zero_point").values == (128,)
    assert model.tensors["x_q"].dtype == "UINT8" and model.tensors["x_q"].shape == (1, 4)
    assert model.diagnostics == ()


@pytest.mark.parametrize("how", ["absent", "empty"])
def test_zero_point_absent_defaults_to_uint8(how: str) -> None:
    model = analysed(factories.qdq_pair_model(zero_point_from=how))
    for key in ("q", "dq"):
        record = model.qdq(key)
        assert record.zero_point is None
        assert record.quant_dtype == "UINT8"
    assert model.tensors["x_q"].dtype == "UINT8"
    assert [p.name for p in model.params] == ["scale"]
    assert model.diagnostics == ()


def test_scale_from_constant_node() -> None:
    proto = factories.qdq_pair_model(0.3, scale_from="constant")
    model = analysed(proto)
    scale = model.param("scale")
    constant = next(n for n in proto.graph.node if n.op_type == "Constant")
    expected = numpy_helper.to_array(constant.attribute[0].t).ravel().tolist()
    assert scale.source is ParamSource.CONSTANT
    assert list(scale.values) == expected
    assert (scale.dtype, scale.shape) == ("FLOAT", ())
    assert model.diagnostics == ()


@pytest.mark.parametrize(("how", "source"), [("input", ParamSource.GRAPH_INPUT),
                                              ("runtime", ParamSource.RUNTIME)])
def test_scale_without_a_value_in_the_file_is_said(how: str, source: ParamSource) -> None:
    model = analysed(factories.qdq_pair_model(scale_from=how))
    scale = model.param("scale")
    assert scale.source is source
    assert scale.values is None and not scale.known
    assert scale.dtype == "FLOAT"
    assert model.qdq("q").granularity is Granularity.PER_TENSOR  # from the declared shape
    [diagnostic] = model.diagnostics
    assert (diagnostic.subtype, diagnostic.node) == ("value", "q")
    assert "'scale'" in diagnostic.message and "not known" in diagnostic.message


def test_constant_value_attribute_forms() -> None:
    nodes = [
        helper.make_node("Constant", [], ["s"], name="c_s", value_float=0.125),
        helper.make_node("Constant", [], ["z"], name="c_z",
                         value=helper.make_tensor("v", TensorProto.INT8, [], [-3])),
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
    ]
    model = analysed(factories.make_model(nodes, [factories.tensor_input("x", [2])],
                                          [factories.tensor_input("xq", [2], TensorProto.INT8)]))
    assert model.param("s").values == (0.125,) and model.param("s").source is ParamSource.CONSTANT
    assert model.param("z").values == (-3,) and model.param("z").dtype == "INT8"
    assert model.qdq("q").role is Role.LONE_Q and model.qdq("q").quant_dtype == "INT8"


def test_outer_scope_scale_inside_if_branches() -> None:
    proto = factories.if_outer_scope_model()
    model = analysed(proto)
    then_q, else_q = model.qdq("then_q"), model.qdq("else_q")
    assert then_q.graph == "branch:then_branch" and else_q.graph == "branch:else_branch"
    assert model.node("then_q").graph == "branch:then_branch"
    outer = model.param("outer_scale")
    assert outer.source is ParamSource.OUTER_SCOPE
    assert list(outer.values) == initializer_values(proto, "outer_scale")
    inner = model.param("inner_scale")
    assert inner.source is ParamSource.CONSTANT and inner.values == (0.25,)
    zero_point = model.param("outer_zero_point")
    assert zero_point.source is ParamSource.OUTER_SCOPE
    assert zero_point.values == (7,)
    assert sorted((u.node, u.input_index) for u in zero_point.users) == [
        ("else_dq", 2), ("else_q", 2), ("then_dq", 2), ("then_q", 2)]
    assert then_q.role is Role.ACTIVATION and then_q.partner == "then_dq"
    assert model.inputs == ("x", "cond")
    assert [n.key for n in model.main_nodes] == ["branch"]
    assert model.diagnostics == ()


def test_q_dq_inside_loop_body() -> None:
    model = analysed(factories.loop_model())
    body_q = model.qdq("body_q")
    assert body_q.graph == "loop:body"
    assert body_q.zero_point is None and body_q.quant_dtype == "UINT8"
    assert model.param("loop_scale").source is ParamSource.OUTER_SCOPE
    assert model.param("loop_scale").values == (0.5,)
    assert model.tensors["v_q"].dtype == "UINT8" and model.tensors["v_q"].graph == "loop:body"
    assert model.diagnostics == ()


@pytest.mark.parametrize("domain", ["", "ai.onnx", "com.microsoft"])
def test_quantize_ops_of_every_domain(domain: str) -> None:
    model = analysed(factories.qdq_pair_model(domain=domain))
    assert [(q.key, q.domain, q.role) for q in model.qdq_nodes] == [
        ("q", domain, Role.ACTIVATION), ("dq", domain, Role.ACTIVATION)]
    assert model.qdq("q").quant_dtype == "UINT8"


# -- sharing and fan-out ------------------------------------------------------------------
def test_shared_scale_is_one_record_with_every_user() -> None:
    proto = factories.shared_params_model(pairs=3)
    model = analysed(proto)
    expected_users = [(n.name, i) for n in proto.graph.node
                      if n.op_type in ("QuantizeLinear", "DequantizeLinear") for i in (1, 2)]
    scale, zero_point = model.param("shared_scale"), model.param("shared_zero_point")
    assert len(model.params) == 2
    assert [(u.node, u.input_index) for u in scale.users] == [u for u in expected_users
                                                                if u[1] == 1]
    assert [(u.node, u.input_index) for u in zero_point.users] == [u for u in expected_users
                                                                     if u[1] == 2]
    assert zero_point.values == (3,) and zero_point.dtype == "INT8"
    assert model.qdq("w_q").role is Role.WEIGHT_PAIR
    assert model.qdq("w_dq").role is Role.WEIGHT_PAIR
    assert model.qdq("w_dq").quantized_tensor == "fc_weight"


def test_one_dequantizer_feeding_several_consumers_and_qcdq_clip() -> None:
    model = analysed(factories.fanout_clip_model())
    assert model.qdq("dq").role is Role.ACTIVATION
    assert model.consumers_of("xdq") == ("relu", "sigmoid", "clip_float")
    assert not model.groups  # nothing re-quantizes the consumers' outputs
    assert (model.qdq("q2").role, model.qdq("dq2").role) == (Role.CLIP, Role.CLIP)
    assert model.qdq("dq2").partner == "q2" and model.qdq("q2").partner == "dq2"
    assert model.qdq("dq2").quant_dtype == "INT8"
    assert model.node("clip_q").in_quantized_region
    assert not model.node("clip_float").in_quantized_region
    assert model.tensors["x2c"].dtype == "INT8"


# -- granularity ---------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, -4])
def test_per_axis_weight_with_normalised_axis(axis: int) -> None:
    scales = [0.5, 0.25, 0.125, 0.0625]
    proto = factories.weight_dq_model(scale=scales, zero_point=[0, 1, 2, 3], axis=axis)
    model = analysed(proto)
    weight = model.qdq("w_dq")
    assert weight.role is Role.WEIGHT and weight.quant_dtype == "INT8"
    assert weight.granularity is Granularity.PER_AXIS and weight.axis == 0
    assert model.param("w_scale").values == tuple(scales)
    assert model.param("w_zero_point").values == (0, 1, 2, 3)
    assert model.qdq("b_dq").role is Role.BIAS and model.qdq("b_dq").quant_dtype == "INT32"
    [group] = model.groups
    assert (group.node, group.input_dqs, group.weight_dq, group.bias_dq, group.output_qs) == (
        "conv", ("x_dq",), "w_dq", "b_dq", ("y_q",))
    assert model.group_of("conv") == group
    assert model.diagnostics == ()


def test_per_axis_length_mismatch_is_a_shape_diagnostic() -> None:
    model = analysed(factories.weight_dq_model(scale=[0.1, 0.2, 0.3], zero_point=None, axis=0))
    [diagnostic] = model.diagnostics
    assert (diagnostic.subtype, diagnostic.node) == ("shape", "w_dq")
    assert "3 values" in diagnostic.message and "4 elements" in diagnostic.message


def test_blocked_int4_weight() -> None:
    proto = factories.blocked_int4_model(rows=4, cols=8, block_size=4)
    model = analysed(proto)
    record = model.qdq("w_dq")
    assert record.granularity is Granularity.BLOCKED
    assert (record.axis, record.block_size) == (1, 4)
    assert record.quant_dtype == "INT4" and record.role is Role.WEIGHT
    assert model.param("w_scale").shape == (4, 2)
    assert list(model.param("w_scale").values) == initializer_values(proto, "w_scale")
    assert model.param("w_zero_point").dtype == "INT4"
    assert model.tensors["w_int4"].dtype == "INT4"
    assert model.param_bytes == 4 * 8 // 2 + 4 * 2 * 4 + 4 * 2 // 2
    assert model.diagnostics == ()


def test_blocked_scale_with_wrong_block_count() -> None:
    model = analysed(factories.blocked_int4_model(scale_blocks=3))
    assert subtypes(model) == ["shape"]  # one problem: the scale's block count
    assert all(d.node == "w_dq" for d in model.diagnostics)
    assert "needs 2 blocks of 4" in model.diagnostics[0].message


# -- newer types -------------------------------------------------------------------------------
def test_float8_zero_point_gives_the_quantized_type() -> None:
    model = analysed(factories.float8_model())
    assert model.qdq("q").quant_dtype == "FLOAT8E4M3FN"
    assert model.tensors["xq"].dtype == "FLOAT8E4M3FN"
    assert model.param("z").values == (0.0,)
    assert model.opset == 19


def test_output_dtype_attribute_without_zero_point() -> None:
    model = analysed(factories.output_dtype_model())
    assert model.qdq("q").quant_dtype == "INT8"
    assert model.qdq("dq").quant_dtype == "INT8"
    assert model.tensors["xq"].dtype == "INT8"


# -- bad values ---------------------------------------------------------------------------------
def test_zero_negative_nan_and_infinite_scales() -> None:
    model = analysed(factories.qdq_pair_model([0.0, -1.0, math.nan, math.inf], 0, axis=1))
    [diagnostic] = model.diagnostics
    assert (diagnostic.subtype, diagnostic.node) == ("scale", "q")
    for word in ("zero at index 0", "negative at index 1", "NaN at index 2",
                 "infinite at index 3"):
        assert word in diagnostic.message
    values = model.param("scale").values
    assert values[:2] == (0.0, -1.0) and math.isnan(values[2]) and math.isinf(values[3])


@pytest.mark.parametrize("value", [0.0, -0.5, math.nan, -math.inf])
def test_single_bad_scale(value: float) -> None:
    model = analysed(factories.qdq_pair_model(value))
    assert subtypes(model) == ["scale"]
    assert model.diagnostics[0].node == "q"


def test_scale_with_corrupt_data_has_no_value() -> None:
    proto = factories.qdq_pair_model([0.5, 0.25], 0, axis=1, shape=(1, 2))
    scale = next(t for t in proto.graph.initializer if t.name == "scale")
    scale.ClearField("float_data")
    scale.raw_data = b"\0\0\0"  # 3 bytes for 2 floats
    model = analysed(proto)
    assert model.param("scale").values is None
    assert [(d.subtype, d.node) for d in model.diagnostics] == [("value", "q")]
    assert "cannot be read" in model.diagnostics[0].message


def test_q_without_scale_input_is_malformed_not_a_crash() -> None:
    nodes = [helper.make_node("QuantizeLinear", ["x"], ["xq"], name="broken")]
    model = analysed(factories.make_model(nodes, [factories.tensor_input("x", [2])],
                                          [factories.tensor_input("xq", [2], TensorProto.UINT8)]))
    assert subtypes(model) == ["malformed"]
    assert model.diagnostics[0].node == "broken"
    assert model.qdq("broken").scale == "" and model.qdq_params("broken") == (None, None)


def test_axis_outside_the_rank_is_malformed() -> None:
    model = analysed(factories.qdq_pair_model([0.1, 0.2, 0.3, 0.4], 0, axis=5))
    assert "malformed" in subtypes(model)


# -- keys and awkward names --------------------------------------------------------------------
def test_keys_are_unique_deterministic_and_never_empty() -> None:
    proto = factories.awkward_names_model()
    model = analysed(proto)
    keys = [n.key for n in model.nodes]
    assert all(keys) and len(set(keys)) == len(keys)
    assert keys == [n.key for n in analysed(factories.awkward_names_model()).nodes]
    names = [n.name for n in proto.graph.node]
    for node, key in zip(proto.graph.node, keys):
        if node.name and names.count(node.name) == 1:
            assert key == node.name
    empty = [k for n, k in zip(proto.graph.node, keys) if not n.name]
    dup = [k for n, k in zip(proto.graph.node, keys) if n.name == "dup"]
    assert len(empty) == 2 and len(set(empty)) == 2
    assert len(dup) == 2 and len(set(dup)) == 2 and all(k != "dup" for k in dup)
    assert [n.name for n in model.nodes] == names  # the original name is kept as data
    assert model.node(factories.AWKWARD_NAMES[5]).doc_string == factories.AWKWARD_NAMES[5]


def test_derived_keys_do_not_collide_with_real_names() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"], name=""),
             helper.make_node("Relu", ["a"], ["b"], name="Relu#0"),
             helper.make_node("Relu", ["b"], ["c"], name="")]
    model = analysed(factories.make_model(nodes, [factories.tensor_input("x", [2])],
                                          [factories.tensor_input("c", [2])]))
    keys = [n.key for n in model.nodes]
    assert keys[1] == "Relu#0"
    assert len(set(keys)) == 3 and all(keys)


def test_everything_refers_to_nodes_by_key() -> None:
    model = analysed(factories.awkward_names_model())
    keys = {n.key for n in model.nodes}
    assert {q.key for q in model.qdq_nodes} <= keys
    assert {q.partner for q in model.qdq_nodes if q.partner} <= keys
    assert {u.node for p in model.params for u in p.users} <= keys
    assert {g.node for g in model.groups} | {k for g in model.groups for k in g.output_qs} <= keys
    assert {k for r in model.regions for k in r.nodes} <= keys


def test_records_are_picklable_and_frozen() -> None:
    model = analysed(factories.tiny_resnet_qdq())
    again = pickle.loads(pickle.dumps(model))
    assert again == model
    assert again.qdq("input_QuantizeLinear") == model.qdq("input_QuantizeLinear")
    with pytest.raises(AttributeError):
        model.nodes[0].key = "other"  # type: ignore[misc]
    summary = summarize(model)
    assert pickle.loads(pickle.dumps(summary)) == summary


def test_records_are_complete() -> None:
    """Every record holds each of its fields, as its own constructor would build it."""
    model = analysed(factories.if_outer_scope_model())
    records = [*model.nodes, *model.tensors.values(), *model.qdq_nodes, *model.params,
               *(use for param in model.params for use in param.users)]
    assert {type(r).__name__ for r in records} == {"NodeInfo", "TensorInfo", "QdqNode",
                                                   "QuantParam", "ParamUse"}
    for record in records:
        assert vars(record).keys() == {f.name for f in dataclasses.fields(record)}
        rebuilt = type(record)(**vars(record))
        assert rebuilt == record and hash(rebuilt) == hash(record)
        assert pickle.dumps(rebuilt) == pickle.dumps(record)


# -- text fields that are not valid UTF-8 ----------------------------------------------------------
MARK = "MARK_XYZ"


def _conv(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == "Conv")


def _with_attribute(model: onnx.ModelProto, **fields: object) -> None:
    attr = helper.make_attribute("group", 1)
    for name, value in fields.items():
        setattr(attr, name, value)
    _conv(model).attribute.append(attr)


def _with_graph_attribute(model: onnx.ModelProto) -> None:
    """A graph attribute on a node that holds no subgraph (the analysis does not walk it)."""
    body = helper.make_graph([helper.make_node("Relu", ["a"], ["b"], name=MARK)], "body",
                             [], [factories.tensor_input("b", [1])])
    _conv(model).attribute.append(helper.make_attribute("g", body))


def _in_if_branch(model: onnx.ModelProto) -> None:
    branch = model.graph.node[0].attribute[0].g
    branch.node[0].name = MARK


TEXT_FIELDS = {
    "model doc": lambda m: setattr(m, "doc_string", MARK),
    "model domain": lambda m: setattr(m, "domain", MARK),
    "producer": lambda m: setattr(m, "producer_name", MARK),
    "opset domain": lambda m: m.opset_import.add(domain=MARK, version=1),
    "graph doc": lambda m: setattr(m.graph, "doc_string", MARK),
    "graph name": lambda m: setattr(m.graph, "name", MARK),
    "node name": lambda m: setattr(_conv(m), "name", MARK),
    "node doc": lambda m: setattr(_conv(m), "doc_string", MARK),
    "node input": lambda m: _conv(m).input.append(MARK),
    "attribute name": lambda m: _with_attribute(m, name=MARK),
    "attribute doc": lambda m: _with_attribute(m, doc_string=MARK),
    "attribute reference": lambda m: _with_attribute(m, ref_attr_name=MARK),
    "initializer name": lambda m: setattr(m.graph.initializer[0], "name", MARK),
    "initializer doc": lambda m: setattr(m.graph.initializer[0], "doc_string", MARK),
    "external data entry": lambda m: m.graph.initializer[0].external_data.add(key="k",
                                                                              value=MARK),
    "value info doc": lambda m: setattr(m.graph.input[0], "doc_string", MARK),
    "dim param": lambda m: setattr(m.graph.input[0].type.tensor_type.shape.dim[0],
                                   "dim_param", MARK),
    "subgraph node": _in_if_branch,
    "graph attribute of a plain node": _with_graph_attribute,
}


@pytest.mark.parametrize("where", sorted(TEXT_FIELDS))
def test_invalid_utf8_anywhere_is_repaired_and_counted(where: str) -> None:
    """One string field of any kind with an invalid byte: one ``encoding`` diagnostic, and
    otherwise the analysis of the repaired model."""
    model = factories.if_outer_scope_model() if where == "subgraph node" \
        else factories.weight_dq_model()
    TEXT_FIELDS[where](model)
    data = model.SerializeToString()
    assert data.count(MARK.encode()) == 1
    data = data.replace(MARK.encode(), b"\xff" + MARK[1:].encode())
    repaired = onnx.ModelProto.FromString(data)
    assert repair_text_fields(repaired) == 1
    result = analysed(onnx.ModelProto.FromString(data))
    [encoding] = [d for d in result.diagnostics if d.subtype == "encoding"]
    assert encoding.message.startswith("1 name(s) or doc string(s)")
    assert result.diagnostics[0] == encoding
    expected = analysed(repaired)
    assert expected.diagnostics == result.diagnostics[1:]
    assert pickle.dumps(expected.nodes) == pickle.dumps(result.nodes)
    assert (expected.tensors, expected.params, expected.producer, expected.opsets,
            expected.graph_name) == (result.tensors, result.params, result.producer,
                                     result.opsets, result.graph_name)


# -- types: inferred, never guessed -----------------------------------------------------------
def test_unknown_types_stay_unknown() -> None:
    nodes = [helper.make_node("Mystery", ["x"], ["int8_looking_name"], name="m", domain="my.ops"),
             helper.make_node("Identity", ["int8_looking_name"], ["y"], name="i")]
    proto = factories.make_model(nodes, [factories.tensor_input("x", [2])],
                                 [helper.make_tensor_value_info("y", 0, None)],
                                 extra_opsets=[("my.ops", 1)])
    model = analysed(proto)
    assert model.tensors["int8_looking_name"].dtype is None
    assert model.tensors["int8_looking_name"].shape is None
    assert model.tensors["y"].dtype is None


def test_shape_inference_runs_only_when_types_are_missing(monkeypatch) -> None:
    calls = []
    real = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    complete = factories.qdq_pair_model()  # Q/DQ outputs need no inference
    assert not analysed(complete).inferred_shapes and calls == []
    analysed(factories.weight_dq_model())  # Conv output has no value_info
    assert calls == [1]


def test_shape_inference_failure_is_a_diagnostic(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise onnx.shape_inference.InferenceError("[ShapeInferenceError] broken")

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", fail)
    model = analysed(factories.weight_dq_model())
    assert subtypes(model) == ["inference"]
    assert model.tensors["conv_out"].dtype is None  # not guessed
    assert model.qdq("y_q").quant_dtype == "INT8"  # Q/DQ semantics still apply
    assert model.tensors["y_q_out"].dtype == "INT8"
    assert model.qdq("w_dq").role is Role.WEIGHT


def test_inference_never_sees_large_weights(monkeypatch) -> None:
    channels = 4400  # 4400 x 1024 INT8 weights: more than 4 MiB
    proto = factories.weight_dq_model(weight=np.ones((channels, 1024, 1, 1), np.int8),
                                      bias=np.zeros(channels, np.int32))
    seen = []
    real = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes",
                        lambda model, **kw: seen.append(model) or real(model, **kw))
    model = analysed(proto)
    [stripped] = seen
    kept = {t.name: t for t in stripped.graph.initializer}
    assert kept["w_int8"].raw_data == b"" and tuple(kept["w_int8"].dims) == (channels, 1024, 1, 1)
    assert kept["x_scale"] == next(t for t in proto.graph.initializer if t.name == "x_scale")
    assert model.tensors["conv_out"].shape == (1, channels, 4, 4)
    assert model.tensors["conv_out"].dtype == "FLOAT"


# -- selection and description --------------------------------------------------------------------
def test_nodes_between_node_names_and_tensors() -> None:
    model = analysed(factories.tiny_resnet_qdq())
    assert nodes_between(model, ["conv2"], ["add"]) == {
        "conv2", "conv2_out_QuantizeLinear", "conv2_out_DequantizeLinear", "add"}
    # a tensor source starts at its readers, a tensor target ends at its writer
    assert nodes_between(model, ["relu1_out"], ["conv2_out"]) == {
        "relu1_out_QuantizeLinear", "relu1_out_DequantizeLinear", "conv2"}
    everything = nodes_between(model, [], [])
    assert everything == {n.key for n in model.nodes}
    downstream = nodes_between(model, ["pool"], [])
    assert downstream == {"pool", "pool_out_QuantizeLinear", "pool_out_DequantizeLinear",
                          "flatten", "flat_out_QuantizeLinear", "flat_out_DequantizeLinear",
                          "fc", "logits_QuantizeLinear", "logits_DequantizeLinear"}
    assert nodes_between(model, ["fc"], ["conv1"]) == frozenset()


def test_nodes_between_unknown_name_suggests_close_matches() -> None:
    model = analysed(factories.tiny_resnet_qdq())
    with pytest.raises(QdqSelectionError) as caught:
        nodes_between(model, ["conv3"], ["add"])
    assert caught.value.name == "conv3"
    assert caught.value.close_matches == ("conv2", "conv1")  # closest first
    assert "conv3" in str(caught.value)
    with pytest.raises(QdqSelectionError):
        nodes_between(model, ["conv1"], ["nothing_like_it_at_all"])


def test_nodes_between_main_graph_only() -> None:
    model = analysed(factories.if_outer_scope_model())
    assert nodes_between(model, ["x"], ["y"]) == {"branch"}  # x is read inside the branches
    assert nodes_between(model, ["cond"], ["y"]) == {"branch"}


def test_outer_scope_reads_are_implicit_inputs_of_the_holder() -> None:
    model = analysed(factories.if_outer_scope_model())
    assert model.node("branch").inputs == ("cond",)
    assert model.node("branch").implicit_inputs == ("outer_scale", "outer_zero_point", "x")
    assert model.consumers_of("x") == ("branch", "else_q", "then_q")  # all graphs
    loop = analysed(factories.loop_model()).node("loop")
    assert loop.implicit_inputs == ("loop_scale",)


def test_summary_of_hand_made_model() -> None:
    proto = factories.weight_dq_model()
    summary = summarize(analysed(proto))
    assert dict(summary.qdq_by_role) == {"activation": 4, "weight": 1, "bias": 1}
    assert summary.groups_by_op == (("Conv", 1),)
    assert summary.quantize_count == 2 and summary.dequantize_count == 4
    assert summary.count("nodes_by_op", "Conv") == 1
    assert summary.count("nodes_by_op", "Gemm") == 0
    expected_bytes = sum(numpy_helper.to_array(t).nbytes for t in proto.graph.initializer)
    assert summary.param_bytes == expected_bytes
    assert dict(summary.tensors_by_dtype)["INT32"] == 1  # the bias


def test_describe_a_float_chain_and_a_pair() -> None:
    pair = analysed(factories.qdq_pair_model())
    assert describe(pair) == ("QDQ model case with 2 Q/DQ nodes: 1 input quantized to UINT8, "
                              "0 quantized operators, 1 output dequantized to FLOAT.")


# -- every diagnostic is documented and located ------------------------------------------------
def test_every_diagnostic_subtype_is_documented_and_names_a_node() -> None:
    cases = [factories.qdq_pair_model(scale_from="input"),
             factories.qdq_pair_model([0.0, 1.0], 0, axis=1, shape=(1, 3)),
             factories.weight_dq_model(scale=[0.1, 0.2], zero_point=None, axis=0),
             factories.tiny_resnet_float(), factories.tiny_resnet_qoperator()]
    seen = set()
    for proto in cases:
        model = analysed(proto)
        keys = {n.key for n in model.nodes}
        for diagnostic in model.diagnostics:
            seen.add(diagnostic.subtype)
            assert diagnostic.subtype in DIAGNOSTIC_SUBTYPES
            assert diagnostic.node is None or diagnostic.node in keys
            if diagnostic.subtype != "float_model":
                assert diagnostic.node is not None
    assert {"value", "scale", "shape", "float_model"} <= seen


# -- size and depth ------------------------------------------------------------------------------
def test_ten_thousand_node_chain_without_recursion() -> None:
    proto = factories.chain_model(10_000, quantized_every=100)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(150)  # any recursion over the graph would hit this
    try:
        model = analysed(proto)
        selected = nodes_between(model, ["relu0"], ["relu9999"])
    finally:
        sys.setrecursionlimit(limit)
    assert len(model.nodes) == 10_000 + 2 * 100
    assert len(selected) == len(model.nodes)
    assert model.groups == ()  # no Relu is both fed by a DQ and read by a Q
    assert len(model.regions) == 100  # one per Q -> DQ pair
    assert model.regions[-1].entry_qs == ("q9900",)
    assert model.tensors["t9999"].shape == (1, 4)


def test_analysis_package_never_imports_sphinx() -> None:
    code = ("import sys, sphinxext_qdq.analysis, sphinxext_qdq.analysis.loader, "
            "sphinxext_qdq.analysis.patterns, sphinxext_qdq.analysis.records; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('sphinx', 'docutils')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
