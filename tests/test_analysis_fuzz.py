"""Random, often invalid, QDQ graphs: the analysis reports, it never crashes."""

from __future__ import annotations

import pickle

import numpy as np
import qdq_factories as factories
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from sphinxext_qdq.analysis import (
    DIAGNOSTIC_SUBTYPES,
    analyze,
    describe,
    nodes_between,
    summarize,
)

OPS = ["QuantizeLinear", "DequantizeLinear", "Relu", "Clip", "Add", "Conv", "MatMul",
       "QLinearConv", "If"]
ZERO_POINT_TYPES = [TensorProto.UINT8, TensorProto.INT8, TensorProto.INT16, TensorProto.INT32,
                    TensorProto.INT4, TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT]
SCALE_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                         st.sampled_from([0.0, -1.0, 1e-12]))


@st.composite
def random_models(draw: st.DrawFn):
    tensors = ["x"]
    initializers, nodes = [], []
    for i in range(draw(st.integers(0, 4))):
        size = draw(st.sampled_from([0, 1, 3, 4]))
        values = draw(st.lists(SCALE_VALUES, min_size=max(size, 1), max_size=max(size, 1)))
        dims = [] if size == 0 else [size]
        initializers.append(helper.make_tensor(f"s{i}", TensorProto.FLOAT, dims, values))
        zp_type = draw(st.sampled_from(ZERO_POINT_TYPES))
        initializers.append(helper.make_tensor(f"z{i}", zp_type, dims, [0] * max(size, 1)))
        tensors += [f"s{i}", f"z{i}"]
    for i in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(OPS))
        arity = draw(st.integers(0, 4))
        inputs = [draw(st.sampled_from([*tensors, "", "undefined"])) for _ in range(arity)]
        attrs = {}
        if draw(st.booleans()):
            attrs["axis"] = draw(st.integers(-6, 6))
        if op in ("QuantizeLinear", "DequantizeLinear") and draw(st.booleans()):
            attrs["block_size"] = draw(st.integers(-2, 8))
        if op == "If":
            body = helper.make_graph(
                [helper.make_node("QuantizeLinear", [tensors[-1], "s0", "z0"], ["inner"],
                                  name="inner_q")],
                "body", [], [helper.make_tensor_value_info("inner", TensorProto.UINT8, None)])
            attrs = {"then_branch": body, "else_branch": body}
        name = draw(st.sampled_from(["", "n", f"node{i}", 'we"ird\n<name>']))
        domain = draw(st.sampled_from(["", "", "com.microsoft"]))
        nodes.append(helper.make_node(op, inputs, [f"t{i}"], name=name, domain=domain, **attrs))
        tensors.append(f"t{i}")
    opset = draw(st.sampled_from([10, 13, 19, 21, 23]))
    return factories.make_model(
        nodes, [factories.tensor_input("x", draw(st.sampled_from([None, [1, 4], [2, 3, 4]])))],
        [helper.make_tensor_value_info(tensors[-1], 0, None)], initializers, opset=opset,
        extra_opsets=[("com.microsoft", 1)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_models())
def test_random_graphs_never_crash_the_analysis(proto) -> None:
    model = analyze(proto, path="/fuzz/random.onnx", model_dir=None)
    keys = [n.key for n in model.nodes]
    assert all(keys) and len(set(keys)) == len(keys)
    assert all(d.subtype in DIAGNOSTIC_SUBTYPES for d in model.diagnostics)
    assert all(d.node is None or d.node in set(keys) for d in model.diagnostics)
    assert describe(model).endswith(".")
    summarize(model)
    main = [n.key for n in model.nodes if not n.graph]
    if main:
        assert nodes_between(model, [main[0]], [main[-1]]) <= set(main)
    for param in model.params:
        assert param.values is None or len(param.values) == int(np.prod(param.shape or ()))
    pickle.loads(pickle.dumps(model))
