"""Frozen, picklable records describing a QDQ ONNX model.

Everything here is plain data: the analysis (:mod:`.patterns`) fills it from an
``onnx.ModelProto``; DOT generation, the command line and the Sphinx directives
only read it. No record holds a protobuf object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class ParamSource(str, Enum):
    """Where the value of a scale or zero point comes from."""

    INITIALIZER = "initializer"
    CONSTANT = "Constant node"
    GRAPH_INPUT = "graph input"
    OUTER_SCOPE = "outer scope"
    RUNTIME = "computed at run time"
    ABSENT = "absent"


class Granularity(str, Enum):
    PER_TENSOR = "per-tensor"
    PER_AXIS = "per-axis"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


class Role(str, Enum):
    """What a QuantizeLinear / DequantizeLinear node does in the graph."""

    ACTIVATION = "activation"      # Q -> DQ pair on an activation
    WEIGHT = "weight"              # DQ of a weight stored quantized (initializer)
    BIAS = "bias"                  # DQ of an INT32 bias stored quantized
    WEIGHT_PAIR = "weight pair"    # Q -> DQ pair on a float weight kept in the model
    CLIP = "clip"                  # Q -> Clip -> DQ (narrow range, Brevitas QCDQ)
    LONE_Q = "lone Q"
    LONE_DQ = "lone DQ"


QUANTIZE_OPS = frozenset({"QuantizeLinear"})
DEQUANTIZE_OPS = frozenset({"DequantizeLinear"})
QDQ_DOMAINS = frozenset({"", "ai.onnx", "com.microsoft"})

#: QOperator-format and integer ops: recognised and reported, not QDQ.
QOPERATOR_OPS = frozenset({
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearConcat", "QLinearLeakyRelu", "QLinearSigmoid",
    "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere", "QGemm", "QAttention",
    "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul", "MatMulNBits",
})


@dataclass(frozen=True)
class TensorInfo:
    """A tensor (edge) of the graph. ``dtype`` is an ONNX type name such as
    ``"FLOAT"``, ``"INT8"``, ``"UINT8"``, ``"INT32"``, ``"FLOAT8E4M3FN"``; ``None``
    when it cannot be known. ``shape`` is ``None`` when unknown; dimensions are
    ints, symbolic names, or ``None``."""

    name: str
    dtype: str | None
    shape: tuple[int | str | None, ...] | None
    kind: str  # "input" | "output" | "initializer" | "value"
    graph: str = ""  # "" for the main graph, else the subgraph path


@dataclass(frozen=True)
class ParamUse:
    """One use of a scale / zero-point tensor: ``input[index]`` of a node."""

    node: str  # NodeInfo.key
    input_index: int


@dataclass(frozen=True)
class QuantParam:
    """A scale or zero-point tensor, one record however many nodes use it."""

    name: str
    kind: str  # "scale" | "zero_point"
    source: ParamSource
    dtype: str | None
    shape: tuple[int, ...] | None
    values: tuple[float, ...] | tuple[int, ...] | None  # flattened; None = unknown
    users: tuple[ParamUse, ...]
    graph: str = ""

    @property
    def known(self) -> bool:
        return self.values is not None


@dataclass(frozen=True)
class QdqNode:
    """A QuantizeLinear or DequantizeLinear node."""

    key: str  # NodeInfo.key of the same node
    op_type: str  # "QuantizeLinear" | "DequantizeLinear"
    domain: str
    input: str  # tensor read
    output: str  # tensor written
    scale: str  # QuantParam.name
    zero_point: str | None  # QuantParam.name, None when absent
    quant_dtype: str | None  # the integer / float8 side: Q's output, DQ's input
    float_dtype: str | None  # the float side: Q's input, DQ's output
    granularity: Granularity
    axis: int | None  # normalised (non-negative) when the rank is known
    block_size: int | None
    role: Role
    partner: str | None = None  # key of the paired Q or DQ node
    quantized_tensor: str = ""  # the float tensor this node quantizes / reconstructs
    graph: str = ""


@dataclass(frozen=True)
class NodeInfo:
    """Any ONNX node. ``key`` is unique in the model (the node name when it is
    unique and non-empty, otherwise a derived name); ``name`` is the original."""

    key: str
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: tuple[tuple[str, str], ...]  # (name, short printable value)
    index: int  # topological position in its graph
    graph: str = ""
    in_quantized_region: bool = False
    qoperator: bool = False
    doc_string: str = ""


@dataclass(frozen=True)
class QuantGroup:
    """A compute node fed by DequantizeLinear nodes whose output goes into a
    QuantizeLinear: the unit an integer kernel implements."""

    node: str  # NodeInfo.key of the compute node
    op_type: str
    input_dqs: tuple[str, ...]  # activation DQ keys, in input order
    weight_dq: str | None
    bias_dq: str | None
    output_qs: tuple[str, ...]


@dataclass(frozen=True)
class Diagnostic:
    """A problem found in the model. ``subtype`` is the Sphinx warning subtype
    (``qdq.<subtype>``); ``node`` names the node concerned, when there is one."""

    subtype: str
    message: str
    node: str | None = None


@dataclass(frozen=True)
class QdqModel:
    """Everything the directives and the command line need to know about a model."""

    path: str
    producer: str
    opsets: tuple[tuple[str, int], ...]  # (domain, version); "" is the default domain
    ir_version: int
    graph_name: str
    nodes: tuple[NodeInfo, ...]  # main graph first, then subgraphs; topological
    tensors: dict[str, TensorInfo]
    inputs: tuple[str, ...]  # graph inputs that are not initializers
    outputs: tuple[str, ...]
    qdq_nodes: tuple[QdqNode, ...]  # in node order
    params: tuple[QuantParam, ...]  # in order of first use
    groups: tuple[QuantGroup, ...]
    diagnostics: tuple[Diagnostic, ...]
    param_bytes: int = 0  # bytes of all initializers
    content_hash: str = ""
    _index: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    # -- lookups -----------------------------------------------------------
    def node(self, key: str) -> NodeInfo:
        return self._lookup("node", self.nodes)[key]

    def qdq(self, key: str) -> QdqNode:
        return self._lookup("qdq", self.qdq_nodes)[key]

    def param(self, name: str) -> QuantParam:
        return self._lookup("param", self.params, attr="name")[name]

    def _lookup(self, kind: str, records: tuple, attr: str = "key") -> dict:
        table = self._index.get(kind)
        if table is None:
            table = {getattr(r, attr): r for r in records}
            self._index[kind] = table
        return table  # type: ignore[return-value]

    @property
    def opset(self) -> int | None:
        """Version of the default ONNX domain."""
        for domain, version in self.opsets:
            if domain in ("", "ai.onnx"):
                return version
        return None

    @property
    def is_quantized(self) -> bool:
        return bool(self.qdq_nodes)
