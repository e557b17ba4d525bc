"""The ResNet8 showcase models as plain numbers.

Initializers are read with ``onnx.numpy_helper``; the integer arithmetic the pages show
is the package's own: QuantizeLinear is :func:`sphinxext_qdq.integer.kernels.quantize_linear`
(float32 division, round half to even, saturation), the Q31 multiplier of
``M = s_x s_w / s_y`` is :func:`sphinxext_qdq.integer.requant.quantize_multiplier` and the
fixed-point requantization :func:`~sphinxext_qdq.integer.requant.requantize`; the integer
types come from :mod:`sphinxext_qdq.onnxio.dtypes`. An independent re-computation of these
numbers lives in ``tests/test_integer_reference.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from sphinxext_qdq.integer.kernels import quantize_linear
from sphinxext_qdq.integer.requant import (
    FixedPointMultiplier,
    TensorQuantization,
    quantize_multiplier,
    requantize,
)
from sphinxext_qdq.onnxio.dtypes import BY_NAME, integer_range

REPOSITORY = Path(__file__).resolve().parents[2]
MODELS = REPOSITORY / "models"

#: The integer types QuantizeLinear writes, in the order the ranges table lists them.
QUANTIZED_TYPES = ("INT2", "UINT2", "INT4", "UINT4", "INT8", "UINT8", "INT16", "UINT16", "INT32")

#: ONNX integer element types: (bits, signed), from the package's one dtype table.
INTEGER_TYPES: dict[str, tuple[int, bool]] = {
    name: (int(BY_NAME[name].bits or 0), BY_NAME[name].signed) for name in QUANTIZED_TYPES}

#: numpy dtype of a zero-point initializer -> ONNX element type name.
NUMPY_TO_ONNX = {np.dtype(np.int8): "INT8", np.dtype(np.uint8): "UINT8",
                 np.dtype(np.int16): "INT16", np.dtype(np.uint16): "UINT16",
                 np.dtype(np.int32): "INT32"}


@dataclass(frozen=True)
class Affine:
    """Scale, zero point and integer type of a per-tensor Q/DQ pair."""

    scale: np.float32
    zero_point: int
    dtype: str
    scale_name: str
    zero_point_name: str

    @property
    def qmin(self) -> int:
        return integer_range(self.dtype)[0]

    @property
    def qmax(self) -> int:
        return integer_range(self.dtype)[1]

    @property
    def real_range(self) -> tuple[float, float]:
        """The real interval the integers cover: ``[s (q_min - z), s (q_max - z)]``."""
        return (float(self.scale) * (self.qmin - self.zero_point),
                float(self.scale) * (self.qmax - self.zero_point))

    def quotient(self, x: np.ndarray) -> np.ndarray:
        """``x / s`` as QuantizeLinear computes it (float32)."""
        return np.asarray(x, np.float32) / self.scale

    @property
    def side(self) -> TensorQuantization:
        """The package's record of this scale and zero point."""
        return TensorQuantization(tensor="", qdq=self.scale_name, scale_name=self.scale_name,
                                  scales=(float(self.scale),),
                                  zero_point_name=self.zero_point_name,
                                  zero_points=(self.zero_point,), dtype=self.dtype)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """QuantizeLinear: ``saturate(round_half_to_even(x / s) + z)`` (the package's)."""
        return quantize_linear(np.asarray(x, np.float32), self.side).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """DequantizeLinear: ``(q - z) s`` in float32."""
        return (np.asarray(q, np.int64) - self.zero_point).astype(np.float32) * self.scale


class ShowcaseModel:
    """One committed ``.onnx`` file: its nodes and initializers as numpy arrays."""

    def __init__(self, file_name: str) -> None:
        self.path = MODELS / file_name
        self.proto = onnx.load(str(self.path))
        self.initializers = {t.name: numpy_helper.to_array(t)
                             for t in self.proto.graph.initializer}
        self.nodes = {node.name: node for node in self.proto.graph.node}

    @property
    def opset(self) -> int:
        return next(o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx"))

    def array(self, name: str) -> np.ndarray:
        return self.initializers[name]

    def producer(self, tensor: str) -> onnx.NodeProto:
        return next(node for node in self.proto.graph.node if tensor in node.output)

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return [node for node in self.proto.graph.node if tensor in node.input]

    def nodes_of(self, op_type: str) -> list[onnx.NodeProto]:
        return [node for node in self.proto.graph.node if node.op_type == op_type]

    def attribute(self, node: onnx.NodeProto, name: str, default: object = None) -> object:
        for attribute in node.attribute:
            if attribute.name == name:
                return onnx.helper.get_attribute_value(attribute)
        return default

    def affine(self, qdq_name: str) -> Affine:
        """Scale (input 1) and zero point (input 2) of a per-tensor Q/DQ node."""
        node = self.nodes[qdq_name]
        scale_name, zero_point_name = node.input[1], node.input[2]
        zero_point = self.array(zero_point_name)
        return Affine(np.float32(self.array(scale_name).reshape(-1)[0]),
                      int(zero_point.reshape(-1)[0]), NUMPY_TO_ONNX[zero_point.dtype],
                      scale_name, zero_point_name)

    def qdq_nodes(self) -> list[onnx.NodeProto]:
        return [node for node in self.proto.graph.node
                if node.op_type in ("QuantizeLinear", "DequantizeLinear")]


class IntegerGroup:
    """A QDQ group ``DQ(x), DQ(w), DQ(b) -> Conv/Gemm -> Q(y)`` as one integer kernel."""

    def __init__(self, model: ShowcaseModel, compute_name: str) -> None:
        self.model = model
        self.node = model.nodes[compute_name]
        self.input_dq = model.producer(self.node.input[0])
        self.weight_dq = model.producer(self.node.input[1])
        self.bias_dq = model.producer(self.node.input[2])
        self.output_q = next(c for c in model.consumers(self.node.output[0])
                             if c.op_type == "QuantizeLinear")
        self.x = model.affine(self.input_dq.name)
        self.y = model.affine(self.output_q.name)

    @property
    def name(self) -> str:
        return self.node.name

    @cached_property
    def weights(self) -> np.ndarray:
        """The INT8 weights as ``[output channels, K]`` (K = values summed per output)."""
        weights = self.model.array(self.weight_dq.input[0]).astype(np.int64)
        if self.node.op_type == "Gemm" and not self.model.attribute(self.node, "transB", 0):
            weights = weights.T
        return weights.reshape(weights.shape[0], -1)

    @property
    def weight_scale(self) -> np.ndarray:
        """One scale per output channel (repeated when the weight is per-tensor)."""
        scale = self.model.array(self.weight_dq.input[1]).astype(np.float32).reshape(-1)
        return np.broadcast_to(scale, (self.weights.shape[0],))

    @property
    def weight_zero_point(self) -> np.ndarray:
        zero_point = self.model.array(self.weight_dq.input[2]).astype(np.int64).reshape(-1)
        return np.broadcast_to(zero_point, (self.weights.shape[0],))

    @property
    def bias(self) -> np.ndarray:
        return self.model.array(self.bias_dq.input[0]).astype(np.int64)

    @property
    def bias_scale(self) -> np.ndarray:
        scale = self.model.array(self.bias_dq.input[1]).astype(np.float32).reshape(-1)
        return np.broadcast_to(scale, (self.weights.shape[0],))

    @property
    def accumulation_length(self) -> int:
        return self.weights.shape[1]

    @property
    def multiplier(self) -> np.ndarray:
        """``M = s_x s_w / s_y`` per output channel (float64)."""
        return (np.float64(self.x.scale) * self.weight_scale.astype(np.float64)
                / np.float64(self.y.scale))

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """INT32 accumulators for one input vector of length K: sum of
        ``(x - z_x)(w - z_w)`` plus the bias."""
        centred_x = np.asarray(x, np.int64).reshape(-1) - self.x.zero_point
        centred_w = self.weights - self.weight_zero_point[:, None]
        return centred_w @ centred_x + self.bias

    def requantize(self, acc: np.ndarray) -> np.ndarray:
        """``saturate(round_half_to_even(acc M) + z_y)`` with a real multiplier."""
        return np.clip(np.rint(acc * self.multiplier).astype(np.int64) + self.y.zero_point,
                       self.y.qmin, self.y.qmax)

    @property
    def fixed_point(self) -> list[FixedPointMultiplier]:
        """The package's Q31 multiplier and shift of each channel's ``M``."""
        return [quantize_multiplier(float(m)) for m in self.multiplier]

    def requantize_fixed_point(self, acc: np.ndarray) -> np.ndarray:
        """The same with integer-only arithmetic (one Q31 multiplier per channel, the
        package's :func:`requantize`, half to even)."""
        m0 = np.array([m.multiplier for m in self.fixed_point], np.int64)
        shifts = np.array([m.total_shift for m in self.fixed_point], np.int64)
        rounded = requantize(np.asarray(acc, np.int64), m0, shifts)
        return np.clip(rounded + self.y.zero_point, self.y.qmin, self.y.qmax)

    def float_reference(self, x: np.ndarray) -> np.ndarray:
        """What the QDQ graph computes: DequantizeLinear, the float op, QuantizeLinear."""
        real_x = self.x.dequantize(np.asarray(x).reshape(-1)).astype(np.float64)
        real_w = ((self.weights - self.weight_zero_point[:, None]).astype(np.float32)
                  * self.weight_scale[:, None]).astype(np.float64)
        real_b = (self.bias.astype(np.float32) * self.bias_scale).astype(np.float64)
        return self.y.quantize((real_w @ real_x + real_b).astype(np.float32))

    def accumulator_bound(self) -> tuple[int, int]:
        """(worst case over any weights of this size, bound with these weights)."""
        x_span = max(self.x.qmax - self.x.zero_point, self.x.zero_point - self.x.qmin)
        centred_w = np.abs(self.weights - self.weight_zero_point[:, None])
        any_weights = self.accumulation_length * x_span * int(centred_w.max()) \
            + int(np.abs(self.bias).max())
        these_weights = int((centred_w.sum(axis=1) * x_span + np.abs(self.bias)).max())
        return any_weights, these_weights


def signed_bits(bound: int) -> int:
    """Bits of a two's-complement integer holding every value in [-bound, bound]."""
    return int(bound).bit_length() + 1


def synthetic_activation(group: IntegerGroup, seed: int = 0, span: int = 40) -> np.ndarray:
    """A reproducible input vector for worked examples: ``z_x + [0, span)``, like the
    small non-negative values a ReLU leaves (seeded, not from the data set)."""
    rng = np.random.default_rng(seed)
    values = group.x.zero_point + rng.integers(0, span, size=group.accumulation_length)
    return np.clip(values, group.x.qmin, group.x.qmax)
