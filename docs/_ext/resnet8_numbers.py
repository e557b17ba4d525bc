"""The ResNet8 showcase models as plain numbers.

Initializers are read with ``onnx.numpy_helper`` (independently of the extension),
and the integer arithmetic is the one of the ONNX specification: QuantizeLinear
divides in float32, rounds half to even and saturates; an integer Conv or Gemm
accumulates ``(x - z_x)(w - z_w)`` in INT32, adds the INT32 bias and requantizes
with ``M = s_x s_w / s_y``. The pages show what these functions compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

REPOSITORY = Path(__file__).resolve().parents[2]
MODELS = REPOSITORY / "models"

#: ONNX integer element types: (bits, signed).
INTEGER_TYPES: dict[str, tuple[int, bool]] = {
    "INT2": (2, True), "UINT2": (2, False), "INT4": (4, True), "UINT4": (4, False), "INT8": (8, True), "UINT8": (8, False),
    "INT16": (16, True), "UINT16": (16, False), "INT32": (32, True),
}

#: numpy dtype of a zero-point initializer -> ONNX element type name.
NUMPY_TO_ONNX = {np.dtype(np.int8): "INT8", np.dtype(np.uint8): "UINT8",
                 np.dtype(np.int16): "INT16", np.dtype(np.uint16): "UINT16",
                 np.dtype(np.int32): "INT32"}


def integer_range(dtype: str) -> tuple[int, int]:
    """(q_min, q_max) of an ONNX integer type."""
    bits, signed = INTEGER_TYPES[dtype]
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


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

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """QuantizeLinear: ``saturate(round_half_to_even(x / s) + z)``."""
        rounded = np.rint(self.quotient(x)).astype(np.int64)
        return np.clip(rounded + self.zero_point, self.qmin, self.qmax)

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


@dataclass(frozen=True)
class FixedPoint:
    """``M = m0 * 2**-shift`` with ``m0`` in [0.5, 1) held as a Q31 integer."""

    q31: int
    shift: int

    @classmethod
    def of(cls, multiplier: float) -> FixedPoint:
        mantissa, exponent = np.frexp(multiplier)
        q31 = round(float(mantissa) * (1 << 31))
        if q31 == 1 << 31:  # mantissa rounded up to 1.0
            q31, exponent = 1 << 30, exponent + 1
        return cls(q31, -int(exponent))

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """``round(acc * M)`` in integers only, ties away from zero."""
        total = 31 + self.shift
        product = np.asarray(acc, dtype=object) * self.q31
        half = 1 << (total - 1)
        return np.array([(p + half) >> total if p >= 0 else -((-p + half) >> total)
                         for p in product], dtype=np.int64)


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

    def requantize_fixed_point(self, acc: np.ndarray) -> np.ndarray:
        """The same with integer-only arithmetic (one Q31 multiplier per channel)."""
        rounded = np.array([FixedPoint.of(m).apply(np.array([a]))[0]
                            for a, m in zip(acc, self.multiplier)])
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
