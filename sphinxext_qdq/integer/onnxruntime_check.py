"""The integer reference against ONNX Runtime: per-layer and top-1 agreement.

:func:`compare_with_onnxruntime` runs the same images through the integer program and
through ONNX Runtime (CPU, default optimisations) and compares every integer tensor.
It imports ``onnxruntime`` lazily and owns its session options (:func:`session_options`:
also used by :mod:`sphinxext_qdq.numerics.error`, whose sessions ONNX Runtime's debugging
helpers open).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import helper

from sphinxext_qdq.integer.inputs import ModelInputs, input_count, input_feeds
from sphinxext_qdq.integer.kernels import IntegerReferenceError, quantize_linear
from sphinxext_qdq.integer.program import IntegerProgram, build_integer_program
from sphinxext_qdq.onnxio.files import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_MAX_PARAM_VALUES,
)
from sphinxext_qdq.onnxio.proto import read_model_proto

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import onnx


@dataclass(frozen=True)
class LayerAgreement:
    """How one integer tensor of the reference compares with ONNX Runtime's."""

    node: str  # the compute node (or the QuantizeLinear) writing the tensor
    op_type: str
    tensor: str
    elements: int
    exact: int  # elements equal
    max_difference: int  # largest |difference| in LSB (units of the output scale)
    ort_kernel: str = ""  # what ONNX Runtime ran for this node after optimisation

    @property
    def exact_fraction(self) -> float:
        return self.exact / self.elements if self.elements else 1.0


@dataclass(frozen=True)
class AgreementReport:
    """Reference against ONNX Runtime on a set of inputs."""

    model: str
    images: int
    rounding: str
    onnxruntime_version: str
    layers: tuple[LayerAgreement, ...]  # every integer tensor (ORT run exposing them all)
    final: tuple[LayerAgreement, ...]  # the unmodified model's outputs, before DequantizeLinear
    top1_equal: int  # images whose arg-max (first output) is the same
    #: (compute node, op ONNX Runtime runs for it) in the unmodified model
    kernels: tuple[tuple[str, str], ...] = ()


def layer_agreement(node: str, op_type: str, tensor: str, ours: np.ndarray, theirs: np.ndarray,
                    ort_kernel: str = "") -> LayerAgreement:
    if ours.shape != theirs.shape:
        raise IntegerReferenceError(f"{tensor}: shapes differ ({ours.shape} vs {theirs.shape})")
    difference = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    return LayerAgreement(node=node, op_type=op_type, tensor=tensor, elements=int(difference.size),
                          exact=int(np.count_nonzero(difference == 0)),
                          max_difference=int(difference.max(initial=0)), ort_kernel=ort_kernel)


def compare_with_onnxruntime(path: str | os.PathLike[str], inputs: ModelInputs, *,
                             rounding: str = "half_even", batch_size: int = 16,
                             session_config: dict[str, str] | None = None,
                             max_bytes: int = DEFAULT_MAX_BYTES,
                             max_elements: int = DEFAULT_MAX_ELEMENTS,
                             max_param_values: int = DEFAULT_MAX_PARAM_VALUES
                             ) -> AgreementReport:
    """Run the integer reference and ONNX Runtime (CPU, default optimisations) on
    *inputs* (one array for a model with one graph input, else an array per input name:
    every graph input is fed, see :func:`~sphinxext_qdq.integer.inputs.input_feeds`);
    compare every integer tensor and the top-1 class.

    *session_config* entries go to ``SessionOptions.add_session_config_entry``
    (e.g. ``{"session.x64quantprecision": "1"}``: ONNX Runtime's U8U8 fallback for x86
    CPUs without VNNI, whose U8S8 kernels can saturate 16-bit intermediate sums)."""
    import onnxruntime

    config = dict(session_config or {})

    program = build_integer_program(path, max_bytes=max_bytes, max_elements=max_elements,
                                    max_param_values=max_param_values)
    _resolved, proto = read_model_proto(path, max_bytes)
    feeds = input_feeds(graph_inputs(proto), inputs)
    ours = program.run(feeds, rounding=rounding, batch_size=batch_size)
    final_float = _ort_run(proto, feeds, [e.graph_output for e in program.exits], config=config)
    final = []
    for exit, values in zip(program.exits, final_float):
        theirs = quantize_linear(values, exit.quantization)  # exact: undoes DequantizeLinear
        final.append(layer_agreement(exit.graph_output, "DequantizeLinear input",
                                     exit.quantization.tensor, ours[exit.quantization.tensor],
                                     theirs))
    first = program.exits[0].quantization.tensor
    first_theirs = quantize_linear(final_float[0], program.exits[0].quantization)
    top1 = int(np.count_nonzero(_top1(ours[first]) == _top1(first_theirs)))
    kernels = onnxruntime_kernels(proto, config)
    layers = _tapped_layers(program, proto, feeds, ours, config)
    return AgreementReport(model=str(path), images=input_count(feeds), rounding=rounding,
                           onnxruntime_version=onnxruntime.__version__, layers=tuple(layers),
                           final=tuple(final), top1_equal=top1,
                           kernels=tuple((step.node, kernels.get(step.recipe.name, ""))
                                         for step in program.steps))


def graph_inputs(proto: onnx.ModelProto) -> list[str]:
    """The inputs ONNX Runtime must be fed: the graph's, less initializers (which older
    files also list as inputs)."""
    initializers = {tensor.name for tensor in proto.graph.initializer}
    return [value.name for value in proto.graph.input if value.name not in initializers]


def _top1(values: np.ndarray) -> np.ndarray:
    return np.argmax(values.reshape(len(values), -1), axis=1)


def _tapped_layers(program: IntegerProgram, proto: onnx.ModelProto,
                   feeds: dict[str, np.ndarray], ours: dict[str, np.ndarray],
                   config: dict[str, str]) -> list[LayerAgreement]:
    """Every integer tensor, read from an ORT session that exposes them as outputs
    (exposing a tensor changes which groups ORT fuses: ``ort_kernel`` is this run's)."""
    taps = [(entry.quantization.tensor, entry.graph_input, "QuantizeLinear")
            for entry in program.entries]
    taps += [(step.outputs[0], step.recipe.name, step.recipe.op_type) for step in program.steps]
    tapped = _with_outputs(proto, [(tensor, ours[tensor].dtype) for tensor, *_ in taps])
    kernels = onnxruntime_kernels(tapped, config)
    values = _ort_run(tapped, feeds, [tensor for tensor, *_ in taps], config=config)
    return [layer_agreement(node, op_type, tensor, ours[tensor], theirs, kernels.get(node, ""))
            for (tensor, node, op_type), theirs in zip(taps, values)]


def _with_outputs(proto: onnx.ModelProto, tensors: Iterable[tuple[str, np.dtype]]
                  ) -> onnx.ModelProto:
    tapped = type(proto)()
    tapped.CopyFrom(proto)
    present = {output.name for output in tapped.graph.output}
    for name, dtype in tensors:
        if name not in present:
            element = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            tapped.graph.output.append(helper.make_tensor_value_info(name, element, None))
    return tapped


#: ``SessionOptions.log_severity_level`` of every session: errors only (ONNX Runtime's
#: native warnings, such as "Error merging shape info for output", would reach stderr).
LOG_SEVERITY_ERROR = 3


def session_options(*, optimize: bool = True, config: dict[str, str] | None = None) -> Any:
    """ONNX Runtime's session options as every session of the package is made: native
    log messages below errors kept off stderr; *optimize* False: no graph optimisation;
    *config*: ``add_session_config_entry`` pairs."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = LOG_SEVERITY_ERROR
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    if not optimize:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options


def _ort_session(proto: onnx.ModelProto, optimized_path: str | None = None, *,
                 optimize: bool = True, config: dict[str, str] | None = None) -> Any:
    import onnxruntime

    options = session_options(optimize=optimize, config=config)
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    return onnxruntime.InferenceSession(proto.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def _ort_run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray], outputs: Sequence[str],
             batch_size: int = 64, *, optimize: bool = True,
             config: dict[str, str] | None = None) -> list[np.ndarray]:
    session = _ort_session(proto, optimize=optimize, config=config)
    fixed = session.get_inputs()[0].shape[0]
    batch_size = fixed if isinstance(fixed, int) and fixed > 0 else batch_size
    batches = [session.run(list(outputs), {name: images[i:i + batch_size]
                                           for name, images in feeds.items()})
               for i in range(0, input_count(feeds), batch_size)]
    return [np.concatenate([batch[k] for batch in batches]) for k in range(len(outputs))]


def onnxruntime_kernels(proto: onnx.ModelProto, config: dict[str, str] | None = None
                        ) -> dict[str, str]:
    """Compute-node name -> the op ONNX Runtime runs for it after its optimisations
    (``QLinearConv``, ``QGemm``… for an integer kernel, the float op otherwise)."""
    import tempfile

    import onnx as onnx_module

    with tempfile.TemporaryDirectory() as folder:
        optimized = str(Path(folder) / "optimized.onnx")
        _ort_session(proto, optimized, config=config)
        graph = onnx_module.load(optimized, load_external_data=False).graph
    kernels: dict[str, str] = {}
    for node in graph.node:
        original = node.name.split("_token_")[0]
        kernels.setdefault(original, node.op_type)
    return kernels
