"""``qdq-error`` and the activation histograms in bounded memory.

The figures folded batch by batch (:func:`tensor_errors`, :func:`activation_grids`) must
equal the same figures computed here with numpy over every activation at once (the
models' tensors exposed with ``onnx.helper``, run in ONNX Runtime directly, in the same
batches, the values concatenated), the memory they use must not grow with the number of
inputs (``tracemalloc`` peaks, counted, not timed), and each call opens one ONNX Runtime
session per model.

Tolerances: counts, extremes, histogram edges and counts are exact (each is a per-element
decision or a min / max). The norms come from float64 sums of squares added batch by
batch instead of over all values at once: both sums carry at most n·2⁻⁵³ relative
rounding (n ≤ 400,000 values per tensor here: < 5e-11), so the SQNR, 10 log10(Σx² /
Σ(x - x̂)²), agrees within 1e-9 dB and the relative error within 1e-10 (relative).
"""

from __future__ import annotations

import math
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from onnx import helper, numpy_helper

from sphinxext_qdq.analysis.loader import load_qdq_model
from sphinxext_qdq.analysis.records import Role
from sphinxext_qdq.numerics import NumericsError, activations, grid
from sphinxext_qdq.numerics.activations import activation_grids
from sphinxext_qdq.numerics.error import ErrorSums, tensor_errors

MODELS = Path(__file__).resolve().parents[1] / "models"
FLOAT = MODELS / "resnet8_fp32.onnx"
INT8 = MODELS / "resnet8_int8.onnx"
RANGES = {onnx.TensorProto.UINT8: (0, 255), onnx.TensorProto.INT8: (-128, 127),
          onnx.TensorProto.INT16: (-32768, 32767)}


def images(count: int, seed: int = 3) -> np.ndarray:
    """Inputs of ResNet8's shape, in [0, 1] like its test images."""
    return np.random.default_rng(seed).random((count, 3, 32, 32), dtype=np.float32)


# -- independent figures --------------------------------------------------------------------
def collect(path: Path, names: list[str], inputs: np.ndarray, batch: int
            ) -> dict[str, np.ndarray]:
    """Every value of the float tensors *names* on *inputs* (run in batches of *batch*),
    flattened and concatenated: all at once in memory."""
    import onnxruntime

    model = onnx.load(str(path))
    present = {output.name for output in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in names if name not in present)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    wanted = [name for name in names if name != "input"]
    runs = [session.run(wanted, {"input": inputs[i:i + batch]})
            for i in range(0, len(inputs), batch)]
    values = {name: np.concatenate([run[k].reshape(-1) for run in runs])
              for k, name in enumerate(wanted)}
    if "input" in names:
        values["input"] = inputs.reshape(-1)
    return values


def quantize_nodes(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, float, int, int, int]]:
    """(QuantizeLinear feeding a DequantizeLinear, scale, zero point, q_min, q_max)."""
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dequantized = {node.input[0] for node in model.graph.node
                   if node.op_type == "DequantizeLinear"}
    found = []
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.output[0] in dequantized:
            zero = constants[node.input[2]]
            q_min, q_max = RANGES[numpy_helper.from_array(zero).data_type]
            found.append((node, float(constants[node.input[1]]), int(zero), q_min, q_max))
    return found


def expected_errors(quantized: Path, inputs: np.ndarray, batch: int) -> dict[str, dict]:
    """Tensor -> SQNR, largest and relative error, saturated fraction, elements (numpy,
    float64, all values at once)."""
    model = onnx.load(str(quantized))
    after = {node.input[0]: node.output[0] for node in model.graph.node
             if node.op_type == "DequantizeLinear"}
    pairs = {q.input[0].removesuffix("_QuantizeLinear_Input"): (q.input[0], after[q.output[0]],
                                                                 rest)
             for q, *rest in quantize_nodes(model)}
    reference = collect(FLOAT, list(pairs), inputs, batch)
    ours = collect(quantized, [name for pre, post, _ in pairs.values() for name in (pre, post)],
                   inputs, batch)
    result = {}
    for tensor, (pre, post, (scale, zero, q_min, q_max)) in pairs.items():
        x, y = reference[tensor].astype(np.float64), ours[post].astype(np.float64)
        codes = np.rint(ours[pre] / np.float32(scale)) + zero
        result[tensor] = {
            "elements": x.size,
            "sqnr_db": 20 * math.log10(np.linalg.norm(x) / np.linalg.norm(x - y)),
            "max_abs_error": float(np.abs(x - y).max()),
            "relative_error": float(np.linalg.norm(x - y) / np.linalg.norm(x)),
            "outside_range": np.count_nonzero((codes < q_min) | (codes > q_max)) / codes.size,
        }
    return result


def expected_grid(values: np.ndarray, scale: float, zero: int, q_min: int, q_max: int,
                  bins: int) -> dict:
    """The grid statistics of an activation, from all its values at once."""
    unclipped = np.rint(values / np.float32(scale)) + zero
    codes = np.clip(unclipped, q_min, q_max).astype(np.int64)
    low, high = scale * (q_min - zero), scale * (q_max - zero)
    smallest, largest = float(values.min()), float(values.max())
    counts, edges = np.histogram(values.astype(np.float64), bins=bins,
                                 range=(min(smallest, low), max(largest, high)))
    levels = q_max - q_min + 1
    if levels <= 256:
        code_counts = np.bincount(codes - q_min, minlength=levels)
    else:
        code_counts, _ = np.histogram(codes, bins=bins,
                                      range=(codes.min() - 0.5, codes.max() + 0.5))
    return {"elements": values.size, "low": min(smallest, 0.0),
            "high": max(largest, 0.0), "representable_low": min(low, 0.0),
            "representable_high": max(high, 0.0),
            "clipped": np.count_nonzero((unclipped < q_min) | (unclipped > q_max)) / values.size,
            "codes_used": np.unique(codes).size,
            "grid_used": (codes.max() - codes.min() + 1) / levels,
            "float_edges": tuple(edges.tolist()), "float_counts": tuple(counts.tolist()),
            "code_counts": tuple(code_counts.tolist())}


# -- equality with the figures of all values at once --------------------------------------
def test_error_report_equals_numpy_over_all_activations_at_once() -> None:
    inputs = images(20)
    report = tensor_errors(FLOAT, INT8, inputs, quantized=load_qdq_model(INT8),
                           reference=load_qdq_model(FLOAT), batch_size=6)  # 6, 6, 6, 2
    expected = expected_errors(INT8, inputs, 6)
    assert report.images == 20 and report.unmatched == ()
    assert {row.tensor for row in report.tensors} == set(expected)
    for row in report.tensors:
        figures = expected[row.tensor]
        assert row.elements == figures["elements"], row.tensor
        assert row.max_abs_error == figures["max_abs_error"], row.tensor
        assert row.outside_range == figures["outside_range"], row.tensor
        assert abs(row.sqnr_db - figures["sqnr_db"]) <= 1e-9, row.tensor
        assert row.relative_error == pytest.approx(figures["relative_error"], rel=1e-10)
    assert any(row.outside_range > 0 for row in report.tensors)  # the count is exercised


@pytest.mark.parametrize("case", ["noisy", "exact", "silent", "infinite"])
def test_sqnr_of_the_sums_is_onnx_runtimes_definition(case: str) -> None:
    """ONNX Runtime's function on float64 arrays (norms floored at float64's eps) against
    the sums folded in three batches."""
    from onnxruntime.quantization.qdq_loss_debug import (
        compute_signal_to_quantization_noice_ratio as onnxruntime_sqnr,
    )

    x = np.random.default_rng(11).normal(0, 1, 1000)
    y = {"noisy": x + 0.01, "exact": x, "silent": x, "infinite": np.full(1000, np.inf)}[case]
    x = np.zeros(1000) if case == "silent" else x
    sums = ErrorSums(saturation=None)
    for part in (slice(0, 300), slice(300, 301), slice(301, None)):
        sums.add(x[part], y[part], np.zeros(0, np.float32))
    if case == "infinite":  # ONNX Runtime: log10(0), a ValueError
        assert sums.sqnr_db == -math.inf and sums.largest == math.inf
    else:
        assert abs(sums.sqnr_db - onnxruntime_sqnr(x, y)) <= 1e-9
    assert sums.elements == 1000


@pytest.mark.parametrize(("factory", "bins"), [
    (factories.tiny_resnet_qdq, 64),  # UINT8: one bin per code
    (factories.tiny_resnet_qdq_int16, 16),  # INT16: bins over the codes used
])
def test_activation_grids_equal_numpy_over_all_values_at_once(tmp_path: Path, factory,
                                                              bins: int) -> None:
    path = factories.save(factory(), tmp_path / "model.onnx")
    inputs = np.random.default_rng(7).normal(0, 1, (9, 3, 8, 8)).astype(np.float32)
    check_grids(path, inputs, bins, batch=1)  # the model's batch is 1: nine batches


def test_resnet8_activation_grids_take_a_second_pass_and_stay_exact() -> None:
    """A fused Relu clips half of a convolution's output: the histogram's range is wider
    than the representable range, so the values are counted again over it."""
    grids = check_grids(INT8, images(10), 64, batch=4)
    recounted = [key for key, found in grids.items() if found.recounted]
    assert recounted and len(recounted) < len(grids)  # both paths ran


def check_grids(path: Path, inputs: np.ndarray, bins: int, batch: int
                ) -> dict[str, grid.ActivationGrid]:
    model = load_qdq_model(path)
    chosen = grid.select_qdq_nodes(model, frozenset({Role.ACTIVATION}))
    grids = activation_grids(path, inputs, chosen, model=model, bins=bins, batch_size=batch)
    assert set(grids) == {qdq.key for qdq in chosen}
    nodes = {node.name: params for node, *params in quantize_nodes(onnx.load(str(path)))}
    values = collect(path, [qdq.input for qdq in chosen], inputs, batch)
    for qdq in chosen:
        stats = grids[qdq.key].stats()
        figures = expected_grid(values[qdq.input], *nodes[qdq.key], bins)
        shown = {name: getattr(stats, name) for name in figures}
        assert shown == figures, qdq.key
    return grids


def test_too_many_distinct_codes_is_a_numerics_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = factories.save(factories.tiny_resnet_qdq_int16(), tmp_path / "model.onnx")
    model = load_qdq_model(path)
    chosen = grid.select_qdq_nodes(model, frozenset({Role.ACTIVATION}))
    monkeypatch.setattr(grid, "MAX_DISTINCT_CODES", 50)
    inputs = np.random.default_rng(2).normal(0, 1, (2, 3, 8, 8)).astype(np.float32)
    grids = activation_grids(path, inputs, chosen, model=model, bins=8)
    with pytest.raises(NumericsError, match="more than 50 distinct integer codes"):
        grids[chosen[0].key].stats()


# -- bounded memory, one session per model ------------------------------------------------
class LiveOutputs:
    """The most bytes of ONNX Runtime outputs alive at once (their buffers are ONNX
    Runtime's, which tracemalloc does not see): every array :meth:`ExposedModel.run`
    returns is followed until it is freed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.alive = self.peak = 0
        run = activations.ExposedModel.run

        def counted(exposed, feed, tensors):
            values = run(exposed, feed, tensors)
            for array in values.values():
                self.alive += array.nbytes
                weakref.finalize(array, self.freed, array.nbytes)
            self.peak = max(self.peak, self.alive)
            return values

        monkeypatch.setattr(activations.ExposedModel, "run", counted)

    def freed(self, size: int) -> None:
        self.alive -= size


def peaks(monkeypatch: pytest.MonkeyPatch, run, inputs: np.ndarray) -> tuple[int, int]:
    """(tracemalloc's peak: numpy's arrays and Python's objects, ONNX Runtime's outputs
    alive at once) while *run(inputs)* runs."""
    live = LiveOutputs(monkeypatch)
    tracemalloc.start()
    try:
        run(inputs)
        return tracemalloc.get_traced_memory()[1], live.peak
    finally:
        tracemalloc.stop()
        monkeypatch.undo()


def assert_bounded(monkeypatch: pytest.MonkeyPatch, run) -> None:
    """*run(inputs)* on 2 and on 16 batches of 4 inputs: neither peak grows by half."""
    run(images(4))  # imports and first-call allocations out of the way
    (two, two_live), (sixteen, sixteen_live) = (peaks(monkeypatch, run, images(4 * n))
                                                for n in (2, 16))
    assert two_live > 0  # the outputs are followed
    # every activation of all inputs kept: ~0.8 MiB more per batch of 4 (~5x from 2 to 16)
    assert sixteen < 1.5 * two, (two, sixteen)
    assert sixteen_live < 1.5 * two_live, (two_live, sixteen_live)


def test_error_report_memory_does_not_grow_with_the_inputs(monkeypatch) -> None:
    quantized, reference = load_qdq_model(INT8), load_qdq_model(FLOAT)

    def report(inputs: np.ndarray) -> None:
        tensor_errors(FLOAT, INT8, inputs, quantized=quantized, reference=reference,
                      batch_size=4)

    assert_bounded(monkeypatch, report)


def test_activation_grids_memory_does_not_grow_with_the_inputs(monkeypatch) -> None:
    model = load_qdq_model(INT8)
    chosen = grid.select_qdq_nodes(model, frozenset({Role.ACTIVATION}))

    def histograms(inputs: np.ndarray) -> None:
        activation_grids(INT8, inputs, chosen, model=model, bins=64, batch_size=4)

    assert_bounded(monkeypatch, histograms)


def test_one_onnx_runtime_session_per_model_per_call() -> None:
    quantized, reference = load_qdq_model(INT8), load_qdq_model(FLOAT)
    before = activations.session_count()
    tensor_errors(FLOAT, INT8, images(12), quantized=quantized, reference=reference,
                  batch_size=4)
    assert activations.session_count() == before + 2  # three batches, two models
    chosen = grid.select_qdq_nodes(quantized, frozenset({Role.ACTIVATION}))
    grids = activation_grids(INT8, images(12), chosen, model=quantized, bins=64, batch_size=4)
    assert any(found.recounted for found in grids.values())  # two passes, one session
    assert activations.session_count() == before + 3


def test_the_suffix_of_exposed_tensors_is_onnx_runtimes() -> None:
    from onnxruntime.quantization import qdq_loss_debug

    assert activations.SAVED_OUTPUT_SUFFIX == qdq_loss_debug._TENSOR_SAVE_POSTFIX
