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
    """What a QuantizeLinear / DequantizeLinear node does in the graph, or what an
    operand is to a quantized operator (QOperator, dynamic, weight-only: ``input``,
    ``weight``, ``bias``, ``output``)."""

    ACTIVATION = "activation"      # Q -> DQ pair on an activation
    WEIGHT = "weight"              # DQ of a weight stored quantized (initializer)
    BIAS = "bias"                  # DQ of an INT32 bias stored quantized
    WEIGHT_PAIR = "weight pair"    # Q -> DQ pair on a float weight kept in the model
    CLIP = "clip"                  # Q -> Clip -> DQ (narrow range, Brevitas QCDQ)
    LONE_Q = "lone Q"
    LONE_DQ = "lone DQ"
    ENTRY = "entry"                # Q whose output a QOperator op reads: its input quantization
    EXIT = "exit"                  # DQ of a QOperator op's output: back to float
    INPUT = "input"                # an activation input of a quantized operator
    OUTPUT = "output"              # the quantized output of a quantized operator


class QuantFormat(str, Enum):
    """How a model carries a quantized operator."""

    QDQ = "QDQ"                    # DequantizeLinear -> float op -> QuantizeLinear
    QOPERATOR = "QOperator"        # QLinearConv, QLinearMatMul, QGemm, MatMulInteger ...
    DYNAMIC = "dynamic"            # DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul
    WEIGHT_ONLY = "weight-only"    # MatMulNBits, GatherBlockQuantized, Cast(INT8) -> Mul


#: Warning subtypes of :class:`Diagnostic` (Sphinx emits them as ``type='qdq',
#: subtype=<key>``; users silence one with ``suppress_warnings = ['qdq.<key>']``).
DIAGNOSTIC_SUBTYPES: dict[str, str] = {
    "scale": "a scale is zero, negative, NaN or infinite",
    "shape": "a per-axis or blocked scale / zero point whose length does not match the "
             "quantized tensor's axis, or a zero point whose shape differs from its scale's",
    "value": "the value of a scale or zero point is not available in the file (graph input, "
             "computed at run time, unreadable external data)",
    "external_data": "external data refused: absolute path, '..', a symlink leaving the "
                     "model's folder, a missing file or a wrong length",
    "float_model": "the model has no quantization at all: no QuantizeLinear / "
                   "DequantizeLinear, QOperator, dynamic or weight-only quantized operator",
    "malformed": "a QuantizeLinear / DequantizeLinear node without its scale input, or with "
                 "an attribute the specification does not allow",
    "inference": "ONNX shape inference failed; types come from the file and Q/DQ semantics",
    "encoding": "names or doc strings in the file are not valid UTF-8 (shown with U+FFFD)",
}

QUANTIZE_OPS = frozenset({"QuantizeLinear"})
DEQUANTIZE_OPS = frozenset({"DequantizeLinear"})
QDQ_DOMAINS = frozenset({"", "ai.onnx", "com.microsoft"})

#: QOperator-format and integer ops: recognised and reported, not QDQ.
QOPERATOR_OPS = frozenset({
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearConcat", "QLinearLeakyRelu", "QLinearSigmoid",
    "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere", "QGemm", "QAttention",
    "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul", "MatMulNBits", "GatherBlockQuantized", "DynamicQuantizeLSTM",
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
    graph: str = ""  # graph of the first user ("" = main graph)

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
    #: The float tensor this node quantizes / reconstructs: a Q's input; for a DQ in a
    #: pair, its Q's input; for a weight / bias / lone DQ, the DQ's (float) output.
    quantized_tensor: str = ""
    graph: str = ""


@dataclass(frozen=True)
class NodeInfo:
    """Any ONNX node. ``key`` is unique in the model (the node name when it is
    unique and non-empty, otherwise a derived name); ``name`` is the original.

    ``in_quantized_region`` is true for the compute node of a :class:`QuantGroup`
    (fed by DequantizeLinear, read by QuantizeLinear: the op an integer kernel
    runs), for a QOperator-format node, and for a node reached from a
    QuantizeLinear output without passing a DequantizeLinear (the ``Clip`` of
    Q -> Clip -> DQ). QuantizeLinear / DequantizeLinear nodes are the region's
    boundary and are *not* marked inside; :class:`QuantRegion` lists them."""

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
    #: Outer-scope tensors read inside this node's subgraphs (If / Loop / Scan bodies),
    #: sorted: data the node depends on without listing it in ``inputs``.
    implicit_inputs: tuple[str, ...] = ()


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
    graph: str = ""


@dataclass(frozen=True)
class QuantRegion:
    """A connected part of the graph that runs on quantized tensors: the compute
    nodes between Q and DQ nodes plus the Q/DQ nodes bounding them.

    ``entry_qs`` are the QuantizeLinear nodes where float activations enter the
    region (their input comes from outside it); ``exit_dqs`` the
    DequantizeLinear nodes whose float output leaves it (read by a node outside
    the region or a graph output)."""

    nodes: tuple[str, ...]  # NodeInfo keys, in node order (compute and Q/DQ nodes)
    entry_qs: tuple[str, ...]
    exit_dqs: tuple[str, ...]
    graph: str = ""


@dataclass(frozen=True)
class QuantOperand:
    """One operand of a quantized operator (QOperator, dynamic or weight-only) and the
    scale / zero point its schema pairs with it, by input index.

    ``tensor`` is the quantized tensor (for a dynamic input: the float tensor
    DynamicQuantizeLinear quantizes at run time); ``scale`` / ``zero_point`` are
    :class:`QuantParam` names, ``None`` when the op has none (the INT32 bias of
    QLinearConv, whose scale is ``s_x * s_w`` by definition; the scales of a bare
    MatMulInteger). ``index`` is the tensor's input index (an output's: ``-1``)."""

    key: str  # "<op key>:<label>", unique in the model (a ``qdq:node`` target)
    node: str  # NodeInfo.key of the quantized operator
    op_type: str
    role: Role  # INPUT, WEIGHT, BIAS or OUTPUT
    label: str  # "input", "input 1", "weight", "bias", "output"
    index: int
    tensor: str
    scale: str | None
    scale_index: int | None
    zero_point: str | None
    zero_point_index: int | None
    quant_dtype: str | None
    granularity: Granularity
    axis: int | None
    block_size: int | None
    bits: int | None = None
    runtime: bool = False  # scale and zero point computed at run time (dynamic)
    graph: str = ""
    #: Key of the node that reads (``scale_index`` >= 0) or writes (``-1``) the scale when
    #: it is not ``node`` itself: the Mul of a dynamic chain, its DynamicQuantizeLinear.
    scale_reader: str = ""
    #: The zero point the op uses when the model gives none (MatMulNBits: 2^(bits-1)).
    zero_point_default: int | None = None


@dataclass(frozen=True)
class QuantOp:
    """A quantized operator that is not a QDQ group: a QOperator node, a dynamic
    quantization chain or a weight-only dequantization, with its operands.

    ``members`` are the keys of every node of the pattern (the DynamicQuantizeLinear,
    Cast and Mul nodes of a dynamic chain; the Cast, Sub and Mul of a weight
    dequantized by hand), ``node`` first."""

    node: str  # NodeInfo.key of the integer op (the Cast of Cast -> Mul)
    op_type: str
    format: QuantFormat
    operands: tuple[QuantOperand, ...]
    members: tuple[str, ...]
    note: str = ""
    graph: str = ""

    def operand(self, role: Role) -> QuantOperand | None:
        """The first operand of *role*."""
        return next((o for o in self.operands if o.role is role), None)


@dataclass(frozen=True)
class Diagnostic:
    """A problem found in the model. ``subtype`` is the Sphinx warning subtype
    (``qdq.<subtype>``, a key of :data:`DIAGNOSTIC_SUBTYPES`); ``node`` is the
    key of the node concerned; it is ``None`` only for model-wide findings
    (``float_model``, ``inference``)."""

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
    #: Keyed by tensor name; a subgraph tensor whose name the main graph (or an
    #: earlier subgraph) already uses is keyed ``"<graph path>/<name>"``.
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
    regions: tuple[QuantRegion, ...] = ()  # main graph first, then subgraphs
    qoperator_nodes: tuple[str, ...] = ()  # keys of QOperator-format nodes
    inferred_shapes: bool = False  # ONNX shape inference ran (value_info lacked types)
    #: External data files (inside the model's folder, existing or not) the values of
    #: scales and zero points were read from: the model depends on them too.
    data_files: tuple[str, ...] = ()
    #: QOperator, dynamic and weight-only quantized operators, in node order.
    quant_ops: tuple[QuantOp, ...] = ()
    #: Paths of the model-local functions analysed (``"function:<domain>.<name>"``).
    function_graphs: tuple[str, ...] = ()
    #: Paths of every graph but the main one (subgraph bodies and functions).
    subgraphs: tuple[str, ...] = ()
    #: (size, mtime_ns, ctime_ns, inode, device) of the file when the loader read it: with
    #: ``path``, what identifies this analysis in caches (``content_hash`` is computed only
    #: when the file's status could not tell a change).
    file_status: tuple[int, ...] = field(default=(), compare=False)

    # -- lookups -----------------------------------------------------------
    def node(self, key: str) -> NodeInfo:
        return self._lookup("node", self.nodes)[key]

    def qdq(self, key: str) -> QdqNode:
        return self._lookup("qdq", self.qdq_nodes)[key]

    def param(self, name: str) -> QuantParam:
        return self._lookup("param", self.params, attr="name")[name]

    def tensor(self, name: str) -> TensorInfo:
        return self.tensors[name]

    def qdq_params(self, key: str) -> tuple[QuantParam | None, QuantParam | None]:
        """(scale, zero point) records of a Q/DQ node; ``None`` where unknown/absent."""
        qdq = self.qdq(key)
        params = self._lookup("param", self.params, attr="name")
        zero_point = params.get(qdq.zero_point) if qdq.zero_point else None
        return params.get(qdq.scale), zero_point

    def consumers_of(self, tensor: str) -> tuple[str, ...]:
        """Keys of the nodes reading *tensor* (implicit inputs included), in node order."""
        table = self._index.get("consumers")
        if table is None:
            table = {}
            for n in self.nodes:
                for name in dict.fromkeys(i for i in (*n.inputs, *n.implicit_inputs) if i):
                    table.setdefault(name, []).append(n.key)
            table = {name: tuple(keys) for name, keys in table.items()}
            self._index["consumers"] = table
        return table.get(tensor, ())  # type: ignore[union-attr]

    def quant_op(self, key: str) -> QuantOp | None:
        """The QOperator / dynamic / weight-only op whose node is *key*, if any."""
        return self._lookup("quant_op", self.quant_ops, attr="node").get(key)

    @property
    def operands(self) -> tuple[QuantOperand, ...]:
        """Every operand of every quantized operator, in node order."""
        return tuple(o for op in self.quant_ops for o in op.operands)

    def operand(self, key: str) -> QuantOperand | None:
        return self._lookup("operand", self.operands).get(key)

    def group_of(self, key: str) -> QuantGroup | None:
        """The quantized-op group whose compute node is *key*, if any."""
        return self._lookup("group", self.groups, attr="node").get(key)

    @property
    def main_nodes(self) -> tuple[NodeInfo, ...]:
        """Nodes of the main graph only (subgraph nodes excluded)."""
        return tuple(n for n in self.nodes if not n.graph)

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


@dataclass(frozen=True)
class ModelSummary:
    """Counts describing a model at a glance (see ``queries.summarize``).
    Every ``*_by_*`` field is a tuple of ``(name, count)`` pairs, most frequent
    first, ties in name order."""

    name: str
    producer: str
    opset: int | None
    opsets: tuple[tuple[str, int], ...]
    node_count: int  # main graph and subgraphs
    nodes_by_op: tuple[tuple[str, int], ...]
    qdq_by_role: tuple[tuple[str, int], ...]  # Role values
    tensors_by_dtype: tuple[tuple[str, int], ...]  # "unknown" for dtype None
    groups_by_op: tuple[tuple[str, int], ...]
    quantize_count: int
    dequantize_count: int
    param_count: int  # scale / zero-point records
    param_bytes: int
    qoperator_count: int
    diagnostic_count: int
    #: Quantized operators by format: ``QDQ`` (groups), ``QOperator``, ``dynamic``,
    #: ``weight-only`` (:class:`QuantFormat` values).
    ops_by_format: tuple[tuple[str, int], ...] = ()
    #: Quantized operators by precision: ``u8s8`` (UINT8 activations, INT8 weights),
    #: ``s16s8``, ``u8`` (no weight), ``w-only u4`` ...
    ops_by_precision: tuple[tuple[str, int], ...] = ()
    #: Compute nodes outside every quantized operator and region (float compute).
    float_op_count: int = 0
    subgraph_count: int = 0  # If / Loop / Scan bodies (functions' included)
    function_count: int = 0  # model-local functions
    #: Q/DQ nodes plus quantized operators in each subgraph or function, by path.
    quantized_by_graph: tuple[tuple[str, int], ...] = ()

    def count(self, table: str, name: str) -> int:
        """``count("nodes_by_op", "Conv")``: one entry of a ``*_by_*`` table, 0 if absent."""
        return dict(getattr(self, table)).get(name, 0)
