"""How much each tensor of a quantized model loses against its float model.

Both models run in ONNX Runtime (CPU, no graph optimisation) on the same inputs, every
float activation exposed by ONNX Runtime's own debugging helpers
(:mod:`onnxruntime.quantization.qdq_loss_debug`, through
:class:`~sphinxext_qdq.numerics.activations.ExposedModel`: one session per model, one
batch at a time). ``create_activation_matching`` pairs each quantized activation (the
DequantizeLinear output) with the float model's tensor of the same name (given the
tensors' names once, it pairs names), and every batch is folded into running sums per
pair and dropped: Σx², Σ(x - x̂)², the largest |x - x̂|, the values Q saturates. The
SQNR is ``compute_signal_to_quantization_noice_ratio``'s definition::

    SQNR = 20 log10(max(||x||, eps) / max(||x - x̂||, eps))   (dB, all inputs at once)

with the norms from those sums in float64 (eps: float64's; ONNX Runtime's function takes
the norms of all values at once, in their float32).

Where the helpers do not fit, this module does the work itself: they write a
``-inferred`` copy next to the model they read (so they read copies in a temporary
folder), their matching relies on ONNX Runtime's tensor names (``_QuantizeLinear_Input``,
``_DequantizeLinear_Output``: other producers match nothing), ``collect_activations``
keeps every activation of every input (so batches are run here), and their pre/post Q→DQ
SQNR counts a fused Relu's clipping as noise (so the local figure reported here is the
fraction of values outside the representable range instead). The data-flow order, the
largest absolute error and the relative error come from the analysis records and numpy.

``onnxruntime`` is imported when :func:`tensor_errors` runs, never at import time.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sphinxext_qdq.analysis.records import Role
from sphinxext_qdq.integer.inputs import ModelInputs, input_count
from sphinxext_qdq.integer.requant import side_of
from sphinxext_qdq.numerics import NumericsError
from sphinxext_qdq.numerics.activations import ExposedModel, input_batches
from sphinxext_qdq.onnxio.dtypes import integer_range, is_integer

if TYPE_CHECKING:
    from sphinxext_qdq.analysis.records import QdqModel, QdqNode

#: ONNX Runtime's name for the input of a graph output's QuantizeLinear.
QUANTIZE_INPUT_SUFFIX = "_QuantizeLinear_Input"

#: Rows marked as the worst (lowest SQNR) in tables and plots.
WORST_COUNT = 3

_run_count = 0


def run_count() -> int:
    """How many times :func:`tensor_errors` ran both models in this process."""
    return _run_count


@dataclass(frozen=True)
class TensorError:
    """One activation: the quantized model's value (after Q→DQ) against the float model's."""

    tensor: str
    quantize_node: str | None  # key of the QuantizeLinear of this tensor (a qdq-params row)
    producer: str | None  # key of the node writing it in the quantized model (None: input)
    producer_op: str
    elements: int
    sqnr_db: float
    max_abs_error: float
    relative_error: float  # ||x_float - x_quantized|| / ||x_float||
    outside_range: float  # fraction of the quantized model's values its Q saturates


@dataclass(frozen=True)
class ErrorReport:
    float_model: str
    quantized_model: str
    images: int
    onnxruntime_version: str
    tensors: tuple[TensorError, ...]  # data-flow order
    unmatched: tuple[str, ...]  # quantized activations without a float counterpart

    @property
    def worst(self) -> tuple[str, ...]:
        """The tensors with the lowest SQNR (at most :data:`WORST_COUNT`, worst first)."""
        ranked = sorted(self.tensors, key=lambda row: (row.sqnr_db, row.tensor))
        return tuple(row.tensor for row in ranked[:WORST_COUNT])

    def by_node(self) -> dict[str, float]:
        """Producer node key -> SQNR of the tensor it writes (lowest when it writes several)."""
        table: dict[str, float] = {}
        for row in self.tensors:
            if row.producer is not None:
                table[row.producer] = min(row.sqnr_db, table.get(row.producer, math.inf))
        return table


def tensor_errors(float_path: str | Path, quantized_path: str | Path, inputs: ModelInputs, *,
                  quantized: QdqModel, reference: QdqModel, batch_size: int = 32
                  ) -> ErrorReport:
    """Run both models on *inputs* (batch first, the quantized model's one graph input) and
    compare every quantized activation with the float model's (*reference*: its analysis),
    one batch at a time."""
    global _run_count
    import onnxruntime

    if len(quantized.inputs) != 1:
        raise NumericsError(f"the quantized model has {len(quantized.inputs)} inputs; "
                            "qdq-error feeds models with one input")
    if reference.inputs != quantized.inputs:
        raise NumericsError(f"the float model's inputs {list(reference.inputs)} are not the "
                            f"quantized model's {list(quantized.inputs)}")
    feeds = input_batches(quantized, inputs, batch_size)
    with tempfile.TemporaryDirectory(prefix="qdq-error-") as folder:
        floating = ExposedModel(float_path, "float", Path(folder))
        integer = ExposedModel(quantized_path, "quantized", Path(folder))
    pairs, unmatched = _pairs(floating, integer)
    sums = {tensor: ErrorSums(_saturation(quantized, _quantize_node(quantized, tensor)))
            for tensor in pairs}
    for feed in feeds:
        _fold(floating.run(feed, [pair.float_tensor for pair in pairs.values()]),
              integer.run(feed, [name for pair in pairs.values()
                                 for name in (pair.pre_qdq, pair.post_qdq)]),
              pairs, sums)
    _run_count += 1
    producers = _producers(quantized)
    rows = [_tensor_error(quantized, tensor, sums[tensor], producers)
            for tensor in pairs if sums[tensor].sizes_agree]
    unmatched += [tensor for tensor in pairs if not sums[tensor].sizes_agree]
    if not any(row.producer for row in rows):
        raise NumericsError("no activation of the quantized model has a counterpart of the "
                            "same name and shape in the float model beyond the graph input (not the "
                            "same network, or not quantized by ONNX Runtime)")
    rows.sort(key=lambda row: _flow_position(quantized, row))
    return ErrorReport(float_model=str(float_path), quantized_model=str(quantized_path),
                       images=sum(input_count(feed) for feed in feeds),
                       onnxruntime_version=onnxruntime.__version__,
                       tensors=tuple(rows), unmatched=tuple(sorted(unmatched)))


class Pair(NamedTuple):
    """The exposed tensors compared for one activation."""

    float_tensor: str  # the float model's tensor
    pre_qdq: str  # the quantized model's tensor entering the QuantizeLinear
    post_qdq: str  # ... leaving the DequantizeLinear


def _pairs(floating: ExposedModel, integer: ExposedModel) -> tuple[dict[str, Pair], list[str]]:
    """Activation -> its :class:`Pair` (ONNX Runtime's ``create_activation_matching``, given
    each exposed tensor's name as its one value), and the activations without a float
    counterpart."""
    from onnxruntime.quantization import qdq_loss_debug

    matching = qdq_loss_debug.create_activation_matching(
        {name: (name,) for name in integer.outputs}, {name: (name,) for name in floating.outputs})
    pairs = {tensor: Pair(match["float"][0], match["pre_qdq"][0], match["post_qdq"][0])
             for tensor, match in matching.items() if "float" in match}
    return pairs, [tensor for tensor, match in matching.items() if "float" not in match]


def _fold(float_values: dict[str, np.ndarray], quantized_values: dict[str, np.ndarray],
          pairs: dict[str, Pair], sums: dict[str, ErrorSums]) -> None:
    """One batch of both models into the running sums of every pair."""
    for tensor, pair in pairs.items():
        sums[tensor].add(float_values[pair.float_tensor], quantized_values[pair.post_qdq],
                         quantized_values[pair.pre_qdq])


@dataclass
class ErrorSums:
    """Running figures of one activation over the batches: the reference x (float model),
    the approximation x̂ (after Q→DQ) and the values entering Q."""

    #: (scale, zero point, q_min, q_max) of its per-tensor integer Q, else None.
    saturation: tuple[float, int, int, int] | None
    elements: int = 0
    signal: float = 0.0  # Σ x²  (float64)
    noise: float = 0.0  # Σ (x - x̂)²
    largest: float = 0.0  # max |x - x̂| (NaN once a difference is NaN)
    before: int = 0  # values entering Q
    saturated: int = 0  # of which Q saturates
    sizes_agree: bool = True

    def add(self, reference: np.ndarray, approximation: np.ndarray, before: np.ndarray
            ) -> None:
        x = np.asarray(reference, np.float64).reshape(-1)
        y = np.asarray(approximation, np.float64).reshape(-1)
        if x.size != y.size:
            self.sizes_agree = False
        if not self.sizes_agree:
            return
        difference = x - y
        self.elements += x.size
        self.signal += _sum_of_squares(x)
        self.noise += _sum_of_squares(difference)
        self.largest = float(np.maximum(self.largest, np.abs(difference).max(initial=0.0)))
        self.before += before.size
        self.saturated += _saturated_count(self.saturation, before)

    @property
    def sqnr_db(self) -> float:
        """ONNX Runtime's ``compute_signal_to_quantization_noice_ratio`` of the sums."""
        epsilon = np.finfo(float).eps
        ratio = max(math.sqrt(self.signal), epsilon) / max(math.sqrt(self.noise), epsilon)
        return 20 * math.log10(ratio) if ratio != 0 else -math.inf

    @property
    def relative_error(self) -> float:
        norm = math.sqrt(self.signal)
        return math.sqrt(self.noise) / norm if norm else math.inf


def _sum_of_squares(values: np.ndarray) -> float:
    """Σ v² of a flat float64 array (numpy's own loop: BLAS's dot starts threads per call)."""
    return float(np.einsum("i,i->", values, values))


def _tensor_error(model: QdqModel, tensor: str, sums: ErrorSums, producers: dict[str, str]
                  ) -> TensorError:
    quantize = _quantize_node(model, tensor)
    producer = producers.get(quantize.input if quantize else tensor)
    return TensorError(
        tensor=tensor, quantize_node=quantize.key if quantize else None, producer=producer,
        producer_op=model.node(producer).op_type if producer else "graph input",
        elements=sums.elements, sqnr_db=sums.sqnr_db, max_abs_error=sums.largest,
        relative_error=sums.relative_error,
        outside_range=sums.saturated / sums.before if sums.before else 0.0,
    )


def _producers(model: QdqModel) -> dict[str, str]:
    """Tensor -> key of the main-graph node writing it."""
    return {output: node.key for node in model.main_nodes for output in node.outputs if output}


def _quantize_node(model: QdqModel, tensor: str) -> QdqNode | None:
    for qdq in model.qdq_nodes:
        if qdq.op_type == "QuantizeLinear" and not qdq.graph \
                and qdq.input in (tensor, tensor + QUANTIZE_INPUT_SUFFIX) \
                and qdq.role in (Role.ACTIVATION, Role.CLIP, Role.LONE_Q, Role.ENTRY):
            return qdq
    return None


def _saturation(model: QdqModel, quantize: QdqNode | None
                ) -> tuple[float, int, int, int] | None:
    """(scale, zero point, q_min, q_max) of a per-tensor integer Q, else None."""
    if quantize is None:
        return None
    side = side_of(model, quantize)
    if not side.known or side.per_channel or side.dtype is None or not is_integer(side.dtype):
        return None
    return (side.scales[0], side.zero_points[0], *integer_range(side.dtype))


def _saturated_count(saturation: tuple[float, int, int, int] | None, values: np.ndarray
                     ) -> int:
    """How many of *values* QuantizeLinear saturates (round(x / s) + z off the grid)."""
    if saturation is None or not values.size:
        return 0
    scale, zero_point, q_min, q_max = saturation
    codes = np.rint(values.astype(np.float32) / np.float32(scale)) + zero_point
    return int(np.count_nonzero((codes < q_min) | (codes > q_max)))


def _flow_position(model: QdqModel, row: TensorError) -> tuple[int, str]:
    if row.producer is None:
        return -1, row.tensor
    return model.node(row.producer).index, row.tensor
