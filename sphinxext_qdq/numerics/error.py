"""How much each tensor of a quantized model loses against its float model.

Both models run in ONNX Runtime (CPU, no graph optimisation) on the same inputs, every
float activation exposed, with ONNX Runtime's own debugging helpers
(:mod:`onnxruntime.quantization.qdq_loss_debug`): ``modify_model_output_intermediate_tensors``
and ``collect_activations`` collect the activations, ``create_activation_matching`` pairs
each quantized activation (the DequantizeLinear output) with the float model's tensor of
the same name, and ``compute_signal_to_quantization_noice_ratio`` gives the SQNR::

    SQNR = 20 log10(||x_float|| / ||x_float - x_quantized||)   (dB, all inputs at once)

Where they do not fit, this module does the work itself: the helpers write a
``-inferred`` copy next to the model they read (so they read copies in a temporary
folder), their matching relies on ONNX Runtime's tensor names (``_QuantizeLinear_Input``,
``_DequantizeLinear_Output``: other producers match nothing), and their pre/post Q→DQ
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
from typing import TYPE_CHECKING

import numpy as np

from sphinxext_qdq.analysis.records import Role
from sphinxext_qdq.integer.inputs import ModelInputs, input_count, input_feeds
from sphinxext_qdq.integer.kernels import IntegerReferenceError
from sphinxext_qdq.integer.requant import side_of
from sphinxext_qdq.numerics import NumericsError
from sphinxext_qdq.onnxio.dtypes import integer_range, is_integer
from sphinxext_qdq.onnxio.proto import parse_model_bytes, uses_external_data

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
    compare every quantized activation with the float model's (*reference*: its analysis)."""
    global _run_count
    import onnxruntime
    from onnxruntime.quantization import qdq_loss_debug

    if len(quantized.inputs) != 1:
        raise NumericsError(f"the quantized model has {len(quantized.inputs)} inputs; "
                            "qdq-error feeds models with one input")
    if reference.inputs != quantized.inputs:
        raise NumericsError(f"the float model's inputs {list(reference.inputs)} are not the "
                            f"quantized model's {list(quantized.inputs)}")
    feeds = _feeds(quantized, inputs, batch_size)
    with tempfile.TemporaryDirectory(prefix="qdq-error-") as folder:
        collected = []
        for role, path in (("float", float_path), ("quantized", quantized_path)):
            copy = Path(folder) / f"{role}.onnx"  # the helpers write next to what they read
            copy_model(path, copy, role)
            augmented = Path(folder) / f"{role}-augmented.onnx"
            try:
                collected.append(_collect_activations(copy, augmented, feeds))
            except Exception as exc:  # noqa: BLE001  (ONNX Runtime's errors have no common base)
                raise NumericsError(f"ONNX Runtime cannot run the {role} model on these "
                                    f"inputs: {_first_line(exc)}") from None
    _run_count += 1
    float_values, quantized_values = collected
    matching = qdq_loss_debug.create_activation_matching(quantized_values, float_values)
    rows, unmatched = [], []
    producers = _producers(quantized)
    for tensor, match in matching.items():
        if "float" not in match:
            unmatched.append(tensor)
            continue
        row = _tensor_error(quantized, tensor, match, producers)
        (rows if row is not None else unmatched).append(row or tensor)
    if not any(row.producer for row in rows):
        raise NumericsError("no activation of the quantized model has a counterpart of the "
                            "same name and shape in the float model beyond the graph input (not the "
                            "same network, or not quantized by ONNX Runtime)")
    rows.sort(key=lambda row: _flow_position(quantized, row))
    return ErrorReport(float_model=str(float_path), quantized_model=str(quantized_path),
                       images=sum(input_count(feed) for feed in feeds),
                       onnxruntime_version=onnxruntime.__version__,
                       tensors=tuple(rows), unmatched=tuple(sorted(unmatched)))


def copy_model(path: str | Path, target: Path, role: str) -> None:
    """Copy a model file for ONNX Runtime's helpers, refusing external data: they would
    load it from wherever its ``location`` points (an absolute path, ``..``)."""
    data = Path(path).read_bytes()
    try:
        proto = parse_model_bytes(data, path)
    except Exception as exc:  # noqa: BLE001  (the loader has read it before; be safe)
        raise NumericsError(f"the {role} model cannot be read: {_first_line(exc)}") from None
    tensors = list(proto.graph.initializer)
    tensors += [attribute.t for node in proto.graph.node for attribute in node.attribute
                if attribute.HasField("t")]
    if any(uses_external_data(tensor) for tensor in tensors):
        raise NumericsError(f"the {role} model keeps tensors in external data files, which "
                            "ONNX Runtime's helpers would follow; not supported here")
    target.write_bytes(data)


def _collect_activations(copy: Path, augmented: Path, feeds: list[dict]
                         ) -> dict[str, list[np.ndarray]]:
    """Every activation of the model at *copy* on *feeds* (ONNX Runtime's helpers: the
    model with them as outputs written to *augmented*, run without graph optimisation)."""
    from onnxruntime.quantization import qdq_loss_debug

    from sphinxext_qdq.integer.onnxruntime_check import session_options

    qdq_loss_debug.modify_model_output_intermediate_tensors(copy, augmented)
    return qdq_loss_debug.collect_activations(str(augmented), feeds,
                                              session_options(optimize=False))


def _feeds(model: QdqModel, inputs: ModelInputs, batch_size: int) -> list[dict]:
    """ONNX Runtime feeds of *inputs* for *model*'s one input, in batches of the size its
    input declares (else *batch_size*)."""
    try:
        feeds = input_feeds(list(model.inputs), inputs)
    except IntegerReferenceError as error:
        raise NumericsError(str(error)) from None
    count = input_count(feeds)
    if count == 0:
        raise NumericsError("no inputs (an empty array)")
    size = _batch_size(model, batch_size)
    return [{name: array[i:i + size] for name, array in feeds.items()}
            for i in range(0, count, size)]


def _batch_size(model: QdqModel, default: int) -> int:
    tensor = model.tensors.get(model.inputs[0])
    if tensor is not None and tensor.shape and isinstance(tensor.shape[0], int) \
            and tensor.shape[0] > 0:
        return tensor.shape[0]
    return default


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"


def _tensor_error(model: QdqModel, tensor: str, match: dict, producers: dict[str, str]
                  ) -> TensorError | None:
    reference = np.concatenate([np.asarray(a).reshape(-1) for a in match["float"]])
    approximation = np.concatenate([np.asarray(a).reshape(-1) for a in match["post_qdq"]])
    before = np.concatenate([np.asarray(a).reshape(-1) for a in match["pre_qdq"]])
    if reference.shape != approximation.shape:
        return None
    from onnxruntime.quantization import qdq_loss_debug

    difference = reference.astype(np.float64) - approximation.astype(np.float64)
    norm = float(np.linalg.norm(reference.astype(np.float64)))
    quantize = _quantize_node(model, tensor)
    producer = producers.get(quantize.input if quantize else tensor)
    return TensorError(
        tensor=tensor, quantize_node=quantize.key if quantize else None, producer=producer,
        producer_op=model.node(producer).op_type if producer else "graph input",
        elements=int(reference.size),
        sqnr_db=float(qdq_loss_debug.compute_signal_to_quantization_noice_ratio(
            list(match["float"]), list(match["post_qdq"]))),
        max_abs_error=float(np.abs(difference).max(initial=0.0)),
        relative_error=float(np.linalg.norm(difference) / norm) if norm else math.inf,
        outside_range=_outside(model, quantize, before),
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


def _outside(model: QdqModel, quantize: QdqNode | None, values: np.ndarray) -> float:
    if quantize is None or not values.size:
        return 0.0
    side = side_of(model, quantize)
    if not side.known or side.per_channel or side.dtype is None or not is_integer(side.dtype):
        return 0.0
    q_min, q_max = integer_range(side.dtype)
    codes = np.rint(values.astype(np.float32) / np.float32(side.scales[0])) + side.zero_points[0]
    return float(np.count_nonzero((codes < q_min) | (codes > q_max)) / values.size)


def _flow_position(model: QdqModel, row: TensorError) -> tuple[int, str]:
    if row.producer is None:
        return -1, row.tensor
    return model.node(row.producer).index, row.tensor


def activation_values(path: str | Path, inputs: ModelInputs, tensors: list[str], *,
                      model: QdqModel, batch_size: int = 32) -> dict[str, np.ndarray]:
    """The float values of *tensors* (activations of the model at *path*) on *inputs*,
    collected with ONNX Runtime's ``collect_activations``."""
    from onnxruntime.quantization import qdq_loss_debug  # noqa: F401  (missing: ImportError here)

    if len(model.inputs) != 1:
        raise NumericsError(f"the model has {len(model.inputs)} inputs; only models with "
                            "one input are fed")
    feeds = _feeds(model, inputs, batch_size)
    with tempfile.TemporaryDirectory(prefix="qdq-activations-") as folder:
        copy = Path(folder) / "model.onnx"
        copy_model(path, copy, "quantized")
        augmented = Path(folder) / "augmented.onnx"
        try:
            collected = _collect_activations(copy, augmented, feeds)
        except Exception as exc:  # noqa: BLE001  (ONNX Runtime's errors have no common base)
            raise NumericsError(f"ONNX Runtime cannot run the model on these inputs: "
                                f"{_first_line(exc)}") from None
    return {name: np.concatenate([np.asarray(a) for a in collected[name]])
            for name in tensors if name in collected}
