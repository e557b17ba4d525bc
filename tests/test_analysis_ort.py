"""The analysis of models quantized by ONNX Runtime, checked against the protobuf itself.

Expected values are read from the ``onnx.ModelProto`` with ``onnx.numpy_helper``
and plain loops over ``graph.node``, never from the analysis under test.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from onnx import TensorProto, numpy_helper

from sphinxext_qdq.analysis import (
    Granularity,
    ParamSource,
    QdqModel,
    Role,
    analyze,
    describe,
    summarize,
)

Q, DQ = "QuantizeLinear", "DequantizeLinear"


# -- independent reading of the protobuf ----------------------------------------------
def initializers(proto: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in proto.graph.initializer}


def producers(proto: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in proto.graph.node for out in node.output}


def dtype_name(tensor: onnx.TensorProto) -> str:
    return TensorProto.DataType.Name(tensor.data_type)


def expected_values(tensor: onnx.TensorProto) -> list:
    array = numpy_helper.to_array(tensor)
    if array.dtype.kind in "iu":
        return [int(v) for v in array.ravel()]
    return [float(v) for v in array.astype(np.float32).ravel()]


def analysed(proto: onnx.ModelProto) -> QdqModel:
    return analyze(proto, path="/models/tiny_resnet_int8.onnx", model_dir=None)


@pytest.fixture(scope="module", params=["per_tensor", "per_channel", "int16", "tensorrt"])
def ort_case(request: pytest.FixtureRequest) -> tuple[str, onnx.ModelProto, QdqModel]:
    proto = {
        "per_tensor": factories.tiny_resnet_qdq,
        "per_channel": lambda: factories.tiny_resnet_qdq(per_channel=True),
        "int16": factories.tiny_resnet_qdq_int16,
        "tensorrt": factories.tiny_resnet_qdq_tensorrt,
    }[request.param]()
    return request.param, proto, analysed(proto)


# -- every QDQ flavour ORT writes ----------------------------------------------------------
def test_every_q_and_dq_node_is_recorded_with_its_edges(ort_case) -> None:
    _, proto, model = ort_case
    expected = [(n.name, n.op_type, n.input[0], n.output[0], n.input[1], n.input[2])
                for n in proto.graph.node if n.op_type in (Q, DQ)]
    got = [(q.key, q.op_type, q.input, q.output, q.scale, q.zero_point) for q in model.qdq_nodes]
    assert got == expected
    assert len(model.nodes) == len(proto.graph.node)


def test_scale_and_zero_point_records_match_numpy_helper(ort_case) -> None:
    _, proto, model = ort_case
    inits = initializers(proto)
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in proto.graph.node:
        if node.op_type in (Q, DQ):
            for index in (1, 2):
                uses.setdefault(node.input[index], []).append((node.name, index))
    assert [p.name for p in model.params] == list(uses)
    for param in model.params:
        tensor = inits[param.name]
        assert param.source is ParamSource.INITIALIZER
        assert param.dtype == dtype_name(tensor)
        assert param.shape == tuple(tensor.dims)
        assert list(param.values) == expected_values(tensor)
        assert [(u.node, u.input_index) for u in param.users] == uses[param.name]
        assert param.kind == ("scale" if uses[param.name][0][1] == 1 else "zero_point")


def test_roles_follow_the_graph_structure(ort_case) -> None:
    _, proto, model = ort_case
    inits, made_by = initializers(proto), producers(proto)
    for node in proto.graph.node:
        if node.op_type != DQ:
            continue
        record = model.qdq(node.name)
        source = node.input[0]
        if source in inits:
            stored = inits[source].data_type
            assert record.role is (Role.BIAS if stored == TensorProto.INT32 else Role.WEIGHT)
            assert record.partner is None
        else:
            q_node = made_by[source]
            assert q_node.op_type == Q
            kept_weight = q_node.input[0] in inits
            assert record.role is (Role.WEIGHT_PAIR if kept_weight else Role.ACTIVATION)
            assert record.partner == q_node.name
            assert model.qdq(q_node.name).role is record.role
            assert record.quantized_tensor == q_node.input[0]


def test_quantized_dtypes_come_from_zero_points(ort_case) -> None:
    _, proto, model = ort_case
    inits = initializers(proto)
    for node in proto.graph.node:
        if node.op_type in (Q, DQ):
            zero_point_type = dtype_name(inits[node.input[2]])
            record = model.qdq(node.name)
            assert record.quant_dtype == zero_point_type
            assert record.float_dtype == "FLOAT"
            quantized_edge = node.output[0] if node.op_type == Q else node.input[0]
            assert model.tensors[quantized_edge].dtype == zero_point_type
            float_edge = node.input[0] if node.op_type == Q else node.output[0]
            assert model.tensors[float_edge].dtype == "FLOAT"


def test_granularity_from_scale_shapes(ort_case) -> None:
    name, proto, model = ort_case
    inits = initializers(proto)
    for record in model.qdq_nodes:
        dims = tuple(inits[record.scale].dims)
        if int(np.prod(dims)) == 1:
            assert record.granularity is Granularity.PER_TENSOR
            assert record.axis is None
        else:
            assert name == "per_channel"
            assert record.granularity is Granularity.PER_AXIS
            assert record.axis == 0  # ORT quantizes output channels (Gemm uses transB=1)
            weight_shape = model.tensors[record.input].shape
            assert dims == (weight_shape[0],)
    if name == "per_channel":
        assert model.qdq("conv1.weight_DequantizeLinear").granularity is Granularity.PER_AXIS


def test_bias_scale_is_input_scale_times_weight_scale(ort_case) -> None:
    """ORT writes bias scale = activation scale x weight scale: the values we read agree."""
    _, _, model = ort_case
    for group in model.groups:
        if group.bias_dq is None:
            continue
        bias_scale = np.array(model.param(model.qdq(group.bias_dq).scale).values)
        input_scale = np.array(model.param(model.qdq(group.input_dqs[0]).scale).values)
        weight_scale = np.array(model.param(model.qdq(group.weight_dq).scale).values)
        np.testing.assert_allclose(bias_scale, input_scale * weight_scale, rtol=1e-6)


def test_groups_are_the_compute_nodes_between_dq_and_q(ort_case) -> None:
    _, proto, model = ort_case
    made_by = producers(proto)
    readers = Counter()
    for node in proto.graph.node:
        for name in node.input:
            readers[name] += 1
    expected = {}
    for node in proto.graph.node:
        if node.op_type in (Q, DQ):
            continue
        fed = [made_by[i].name for i in node.input if i in made_by and made_by[i].op_type == DQ]
        into_q = [n.name for n in proto.graph.node if n.op_type == Q and n.input[0] in node.output]
        if fed and into_q:
            expected[node.name] = (node.op_type, fed, into_q)
    got = {g.node: (g.op_type, [*g.input_dqs, *filter(None, [g.weight_dq, g.bias_dq])],
                    list(g.output_qs)) for g in model.groups}
    assert {k: (v[0], sorted(v[1]), v[2]) for k, v in got.items()} == \
        {k: (v[0], sorted(v[1]), v[2]) for k, v in expected.items()}
    for group in model.groups:
        if group.op_type in ("Conv", "Gemm"):
            node = next(n for n in proto.graph.node if n.name == group.node)
            assert group.weight_dq == made_by[node.input[1]].name
            assert group.bias_dq == made_by[node.input[2]].name


def test_one_region_from_input_quantizer_to_output_dequantizer(ort_case) -> None:
    _, proto, model = ort_case
    assert len(model.regions) == 1
    region = model.regions[0]
    input_qs = [n.name for n in proto.graph.node if n.op_type == Q and n.input[0] == "input"]
    output_dq = [n.name for n in proto.graph.node if "logits" in n.output]
    assert list(region.entry_qs) == input_qs
    assert list(region.exit_dqs) == output_dq
    assert set(region.nodes) == {n.name for n in proto.graph.node}


def test_compute_nodes_inside_and_boundaries_outside_the_region(ort_case) -> None:
    _, proto, model = ort_case
    for node in proto.graph.node:
        info = model.node(node.name)
        assert info.in_quantized_region is (node.op_type not in (Q, DQ))
        assert not info.qoperator


def test_shapes_and_types_from_inference(ort_case) -> None:
    _, proto, model = ort_case
    assert model.tensors["input"].shape == factories.TINY_INPUT_SHAPE
    assert model.tensors["input"].kind == "input"
    assert model.tensors["logits"].shape == (1, factories.TINY_CLASSES)
    assert model.tensors["logits"].kind == "output"
    channels = numpy_helper.to_array(next(
        t for t in proto.graph.initializer
        if t.name in ("conv1.weight", "conv1.weight_quantized"))).shape[0]
    conv1 = next(n for n in proto.graph.node if n.name == "conv1")
    assert model.tensors[conv1.output[0]].shape == (1, channels, 8, 8)
    assert model.tensors[conv1.output[0]].dtype == "FLOAT"
    for tensor in proto.graph.initializer:
        info = model.tensors[tensor.name]
        assert (info.dtype, info.shape, info.kind) == (dtype_name(tensor), tuple(tensor.dims),
                                                       "initializer")


def test_summary_counts_match_the_protobuf(ort_case) -> None:
    _, proto, model = ort_case
    summary = summarize(model)
    assert dict(summary.nodes_by_op) == Counter(n.op_type for n in proto.graph.node)
    assert summary.quantize_count == sum(n.op_type == Q for n in proto.graph.node)
    assert summary.dequantize_count == sum(n.op_type == DQ for n in proto.graph.node)
    assert summary.opset == proto.opset_import[0].version
    assert summary.producer == f"{proto.producer_name} {proto.producer_version}"
    assert summary.param_bytes == sum(numpy_helper.to_array(t).nbytes
                                      for t in proto.graph.initializer)
    assert sum(n for _, n in summary.qdq_by_role) == len(model.qdq_nodes)
    assert summary.count("groups_by_op", "Conv") == 3
    assert summary.diagnostic_count == 0 == len(model.diagnostics)


def test_describe_is_one_plain_sentence(ort_case) -> None:
    name, proto, model = ort_case
    text = describe(model)
    dtype = {"int16": "INT16", "tensorrt": "INT8"}.get(name, "UINT8")
    qdq = sum(n.op_type in (Q, DQ) for n in proto.graph.node)
    assert text.startswith("QDQ model tiny_resnet_int8 with 3 Conv")
    assert f"and {qdq} Q/DQ nodes: 1 input quantized to {dtype}" in text
    assert f"{len(model.groups)} quantized operators" in text
    assert "1 output dequantized to FLOAT" in text
    assert text.endswith(".") and "\n" not in text


# -- flavour-specific facts --------------------------------------------------------------
def test_int16_activations_use_opset_21() -> None:
    proto = factories.tiny_resnet_qdq_int16()
    model = analysed(proto)
    assert model.opset == 21
    activation = [q for q in model.qdq_nodes if q.role is Role.ACTIVATION]
    weights = [q for q in model.qdq_nodes if q.role is Role.WEIGHT]
    assert {q.quant_dtype for q in activation} == {"INT16"}
    assert {q.quant_dtype for q in weights} == {"INT8"}


def test_tensorrt_recipe_keeps_float_weights_in_pairs_one_per_consumer() -> None:
    proto = factories.tiny_resnet_qdq_tensorrt()
    model = analysed(proto)
    inits = initializers(proto)
    weight_qs = [n.name for n in proto.graph.node
                 if n.op_type == Q and n.input[0] in inits
                 and inits[n.input[0]].data_type == TensorProto.FLOAT]
    assert len(weight_qs) == 4
    assert sorted(q.key for q in model.qdq_nodes
                  if q.role is Role.WEIGHT_PAIR and q.op_type == Q) == sorted(weight_qs)
    # DedicatedQDQPair: the graph input feeds two convolutions, each through its own pair
    input_pairs = [q for q in model.qdq_nodes if q.op_type == Q and q.input == "input"]
    assert len(input_pairs) == 2
    assert len({q.partner for q in input_pairs}) == 2
    assert all(q.quant_dtype == "INT8" for q in model.qdq_nodes if q.role is not Role.BIAS)
    weight_zero_points = [model.param(q.zero_point) for q in model.qdq_nodes
                          if q.role is Role.WEIGHT_PAIR]
    assert {p.values for p in weight_zero_points} == {(0,)}  # symmetric


def test_qoperator_format_is_recognised_and_reported() -> None:
    proto = factories.tiny_resnet_qoperator()
    model = analysed(proto)
    qoperator_names = [n.name for n in proto.graph.node
                       if n.op_type.startswith(("QLinear", "QGemm"))]
    assert qoperator_names  # QLinearConv, QLinearAdd, ...
    assert list(model.qoperator_nodes) == qoperator_names
    for node in proto.graph.node:
        info = model.node(node.name)
        assert info.qoperator is (node.name in qoperator_names)
        if info.qoperator:
            assert info.in_quantized_region
    assert not model.diagnostics  # QOperator is a quantized model like any other
    assert [op.node for op in model.quant_ops] == qoperator_names
    assert not model.groups
    assert describe(model).startswith("QOperator-format model tiny_resnet_int8 with 3 QLinearConv")


def test_float_model_is_said_plainly() -> None:
    proto = factories.tiny_resnet_float()
    model = analysed(proto)
    assert not model.qdq_nodes and not model.params
    assert [d.subtype for d in model.diagnostics] == ["float_model"]
    assert "no quantization" in model.diagnostics[0].message
    assert not any(n.in_quantized_region for n in model.nodes)
    assert describe(model) == ("Float model tiny_resnet_int8 with 3 Conv, 2 Relu, 1 Add, "
                               "1 Flatten, 1 Gemm, 1 GlobalAveragePool: no quantization.")
    assert {t.dtype for t in model.tensors.values()} == {"FLOAT"}
