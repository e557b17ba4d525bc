"""A model's activations in ONNX Runtime, one batch at a time, in bounded memory.

:class:`ExposedModel` runs a copy of a model file in a temporary folder (ONNX Runtime's
helpers write next to the file they read; external data is refused, :func:`copy_model`)
with every float tensor made an output by ONNX Runtime's
``qdq_loss_debug.modify_model_output_intermediate_tensors`` (each flattened, named
``<tensor>_ReshapedSavedOutput``), in one ``InferenceSession`` (CPU, no graph optimisation,
the package's :func:`~sphinxext_qdq.integer.onnxruntime_check.session_options`), and
returns, batch by batch, only the tensors asked for. Callers fold each batch into running
figures and let it go (:func:`~sphinxext_qdq.numerics.error.tensor_errors`,
:func:`activation_grids` with :class:`~sphinxext_qdq.numerics.grid.ActivationGrid`): the
memory used is one batch's activations plus those figures, whatever the number of inputs.
``onnxruntime`` is imported on use.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sphinxext_qdq.analysis.records import Role
from sphinxext_qdq.integer.inputs import ModelInputs, input_count, input_feeds
from sphinxext_qdq.integer.kernels import IntegerReferenceError
from sphinxext_qdq.numerics import NumericsError
from sphinxext_qdq.numerics.grid import ActivationGrid
from sphinxext_qdq.onnxio.proto import parse_model_bytes, uses_external_data

if TYPE_CHECKING:
    from sphinxext_qdq.analysis.records import QdqModel, QdqNode

#: The suffix of the outputs ``modify_model_output_intermediate_tensors`` adds (ONNX
#: Runtime's ``qdq_loss_debug._TENSOR_SAVE_POSTFIX``).
SAVED_OUTPUT_SUFFIX = "_ReshapedSavedOutput"

_session_count = 0


def session_count() -> int:
    """How many ONNX Runtime sessions :class:`ExposedModel` opened in this process."""
    return _session_count


class ExposedModel:
    """The model at *path* (the *role* model: ``float`` or ``quantized``) in one ONNX
    Runtime session, every float tensor exposed; its files are written to *folder*."""

    def __init__(self, path: str | Path, role: str, folder: Path) -> None:
        global _session_count
        import onnxruntime
        from onnxruntime.quantization import qdq_loss_debug

        from sphinxext_qdq.integer.onnxruntime_check import session_options

        self.role = role
        copy, augmented = folder / f"{role}.onnx", folder / f"{role}-augmented.onnx"
        copy_model(path, copy, role)
        try:
            qdq_loss_debug.modify_model_output_intermediate_tensors(copy, augmented)
            self.session = onnxruntime.InferenceSession(
                str(augmented), sess_options=session_options(optimize=False),
                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (ONNX Runtime's errors have no common base)
            raise self.failure(exc) from None
        _session_count += 1
        #: Exposed tensor -> the output carrying it.
        self.outputs = {output.name.removesuffix(SAVED_OUTPUT_SUFFIX): output.name
                        for output in self.session.get_outputs()
                        if output.name.endswith(SAVED_OUTPUT_SUFFIX)}

    def failure(self, exc: BaseException) -> NumericsError:
        return NumericsError(f"ONNX Runtime cannot run the {self.role} model on these "
                             f"inputs: {first_line(exc)}")

    def run(self, feed: dict[str, np.ndarray], tensors: Iterable[str]
            ) -> dict[str, np.ndarray]:
        """The flattened values of *tensors* (exposed ones) on one batch *feed*."""
        names = list(dict.fromkeys(tensors))
        if not names:  # ONNX Runtime would return every output
            return {}
        try:
            values = self.session.run([self.outputs[name] for name in names], feed)
        except Exception as exc:  # noqa: BLE001  (ONNX Runtime's errors have no common base)
            raise self.failure(exc) from None
        return dict(zip(names, values))


def copy_model(path: str | Path, target: Path, role: str) -> None:
    """Copy a model file for ONNX Runtime's helpers, refusing external data: they would
    load it from wherever its ``location`` points (an absolute path, ``..``)."""
    data = Path(path).read_bytes()
    try:
        proto = parse_model_bytes(data, path)
    except Exception as exc:  # noqa: BLE001  (the loader has read it before; be safe)
        raise NumericsError(f"the {role} model cannot be read: {first_line(exc)}") from None
    tensors = list(proto.graph.initializer)
    tensors += [attribute.t for node in proto.graph.node for attribute in node.attribute
                if attribute.HasField("t")]
    if any(uses_external_data(tensor) for tensor in tensors):
        raise NumericsError(f"the {role} model keeps tensors in external data files, which "
                            "ONNX Runtime's helpers would follow; not supported here")
    target.write_bytes(data)


def input_batches(model: QdqModel, inputs: ModelInputs, batch_size: int) -> list[dict]:
    """ONNX Runtime feeds of *inputs* for *model*'s inputs, in batches of the size its
    first input declares (else *batch_size*); the batches are views of *inputs*."""
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


def first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"


def activation_grids(path: str | Path, inputs: ModelInputs, qdqs: list[QdqNode], *,
                     model: QdqModel, bins: int, batch_size: int = 32
                     ) -> dict[str, ActivationGrid]:
    """Q node key -> the grid statistics of the activation it quantizes, over *inputs*
    (the model at *path*, one batch at a time; a second pass for the histograms whose
    range the values widened). Activations the model does not expose are left out."""
    from onnxruntime.quantization import qdq_loss_debug  # noqa: F401  (missing: ImportError here)

    if len(model.inputs) != 1:
        raise NumericsError(f"the model has {len(model.inputs)} inputs; only models with "
                            "one input are fed")
    feeds = input_batches(model, inputs, batch_size)
    with tempfile.TemporaryDirectory(prefix="qdq-activations-") as folder:
        exposed = ExposedModel(path, "quantized", Path(folder))
    grids = {qdq.key: (qdq.input, ActivationGrid(model, qdq, bins)) for qdq in qdqs
             if qdq.role == Role.ACTIVATION and qdq.input in exposed.outputs}
    _fold(exposed, feeds, list(grids.values()), ActivationGrid.add)
    again = [(tensor, grid) for tensor, grid in grids.values() if grid.needs_second_pass]
    if again:
        _fold(exposed, feeds, again, ActivationGrid.recount)
    return {key: grid for key, (_tensor, grid) in grids.items()}


def _fold(exposed: ExposedModel, feeds: list[dict], grids: list[tuple[str, ActivationGrid]],
          step: Callable[[ActivationGrid, np.ndarray], None]) -> None:
    """Run every batch and give each grid its tensor's values (*step*: add or recount)."""
    for feed in feeds:
        values = exposed.run(feed, [tensor for tensor, _grid in grids])
        for tensor, grid in grids:
            step(grid, values[tensor])
