"""Analysis of a QDQ ONNX model: Q/DQ roles, parameters, quantized groups and regions.

:func:`analyze` turns an ``onnx.ModelProto`` into the frozen records of
:mod:`.records`. It walks the graph and its ``If``/``Loop``/``Scan`` bodies with
explicit work lists (no recursion, so a 10,000-node chain is fine) and reads
tensor values only for scales and zero points.

Definitions used throughout:

* A node's **key** is its name when that name is non-empty and unique in the
  whole model; otherwise ``"<name>#<n>"`` (the n-th node with a duplicated name,
  from 1) or ``"<op_type>#<index>"`` for an unnamed node, prefixed with
  ``"<graph path>/"`` inside a subgraph. A subgraph's path is
  ``"<key of the node holding it>:<attribute name>"`` (``"...:body[i]"`` for a
  list of graphs).
* **Roles**: a DequantizeLinear reading a QuantizeLinear output forms a pair
  (``weight pair`` when the Q reads an initializer or ``Constant``, otherwise
  ``activation``); Q -> Clip -> DQ is ``clip``; a DQ reading a stored tensor is
  ``bias`` when that tensor is INT32 and ``weight`` otherwise; a Q whose output a
  QOperator-format node reads (directly or through layout ops such as ``Reshape``) is
  that node's ``entry``, a DQ of a QOperator node's output (likewise) its ``exit``;
  anything else is a ``lone Q`` / ``lone DQ``.
* A **quantized group** is a compute node with at least one input written by a
  DequantizeLinear and at least one output read by a QuantizeLinear.
* A node is **in the quantized region** when it is the compute node of a
  quantized group, a QOperator-format node, or a non-Q/DQ node reached from a
  QuantizeLinear output without passing a DequantizeLinear (the ``Clip`` of
  Q -> Clip -> DQ). Q and DQ nodes themselves are the region's boundary: they
  are listed in :class:`~.records.QuantRegion` but not marked inside.
"""

from __future__ import annotations

import math
import os
import struct
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnx
from onnx import helper, numpy_helper

from sphinxext_qdq.analysis.dynamic import find_dynamic_ops
from sphinxext_qdq.analysis.qoperator import fill_output_types, find_qoperator_ops
from sphinxext_qdq.analysis.records import (
    DEQUANTIZE_OPS,
    QDQ_DOMAINS,
    QOPERATOR_OPS,
    QUANTIZE_OPS,
    Diagnostic,
    Granularity,
    NodeInfo,
    ParamSource,
    ParamUse,
    QdqModel,
    QdqNode,
    QuantGroup,
    QuantOp,
    QuantParam,
    QuantRegion,
    Role,
    TensorInfo,
)
from sphinxext_qdq.analysis.weight_only import find_weight_only_ops
from sphinxext_qdq.onnxio import dtypes
from sphinxext_qdq.onnxio.files import DEFAULT_MAX_PARAM_VALUES
from sphinxext_qdq.onnxio.proto import (
    QdqModelError,
    external_data_file,
    read_tensor_array,
    repair_text_fields,
    tensor_nbytes,
    typed_nbytes,
    uses_external_data,
)

#: Initializers with more elements than this reach shape inference without their data...
_INFERENCE_ELEMENT_LIMIT = 1024
#: ...when the model's initializers hold more bytes than this.
_INFERENCE_COPY_BYTES = 4 * 1024 * 1024
#: Longest printable attribute value kept in ``NodeInfo.attributes``.
_ATTRIBUTE_TEXT_LIMIT = 80
#: Ops that may sit between a QuantizeLinear and its DequantizeLinear (QCDQ).
_BETWEEN_Q_AND_DQ = frozenset({"Clip"})
_SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
_GRAPH_ATTRIBUTES = frozenset({onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS})

Shape = tuple[int | str | None, ...]


# -- working records (mutable while the analysis runs) -------------------------
@dataclass
class _Graph:
    """A graph or subgraph while it is analysed."""

    proto: onnx.GraphProto
    parent: _Graph | None
    holder: _Node | None  # the If / Loop / Scan node holding this subgraph
    label: str  # its attribute name ("then_branch", "body[0]"...); a function's path
    #: a model-local function's body, or a subgraph inside one (no types from the file,
    #: not part of the main graph's shape inference)
    function: bool = False
    path: str = ""
    name: str = ""
    nodes: list[_Node] = field(default_factory=list)
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)
    #: (data_type, dims) of each initializer, read once
    tensor_types: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    constants: dict[str, onnx.NodeProto] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    input_set: set[str] = field(default_factory=set)
    outputs: list[str] = field(default_factory=list)
    output_set: set[str] = field(default_factory=set)
    producers: dict[str, _Node] = field(default_factory=dict)
    consumers: dict[str, list[tuple[_Node, int]]] = field(default_factory=dict)
    types: dict[str, tuple[str | None, Shape | None]] = field(default_factory=dict)

    def defines(self, name: str) -> bool:
        return name in self.initializers or name in self.producers or name in self.input_set


class _Node:
    """A node while it is analysed: protobuf fields read once (protobuf access is slow)."""

    __slots__ = ("attributes", "doc_string", "domain", "graph", "implicit_inputs", "index",
                 "inputs", "is_dequantize", "is_qdq", "is_quantize", "key", "name", "op_type",
                 "outputs", "proto")

    def __init__(self, proto: onnx.NodeProto, graph: _Graph, index: int, texts: list) -> None:
        """Read the fields of *proto* once; its string fields are added to *texts* (for the
        check that none came back as bytes, see :meth:`_Analysis.read`)."""
        self.proto = proto
        self.graph = graph
        self.index = index
        self.name = name = proto.name
        self.op_type = op_type = proto.op_type
        self.domain = domain = proto.domain
        self.doc_string = doc_string = proto.doc_string
        self.inputs: list[str] = proto.input[:]  # slicing is the fastest copy in upb
        self.outputs: list[str] = proto.output[:]
        texts += (name, op_type, domain, doc_string)
        texts += self.inputs
        texts += self.outputs
        #: (name, type, attribute) of each attribute, in order
        self.attributes: list[tuple[str, int, onnx.AttributeProto]] = []
        for attr in proto.attribute:
            attr_name = attr.name
            self.attributes.append((attr_name, attr.type, attr))
            texts += (attr_name, attr.doc_string, attr.ref_attr_name)
        qdq_domain = domain in QDQ_DOMAINS
        self.is_quantize = qdq_domain and op_type in QUANTIZE_OPS
        self.is_dequantize = qdq_domain and op_type in DEQUANTIZE_OPS
        self.is_qdq = self.is_quantize or self.is_dequantize
        self.key = ""
        self.implicit_inputs: set[str] = set()  # outer names its subgraphs read


@dataclass
class _Param:
    name: str
    kind: str
    source: ParamSource
    dtype: str | None
    shape: tuple[int, ...] | None
    values: tuple | None
    graph: str
    users: list[ParamUse] = field(default_factory=list)


# -- entry point ---------------------------------------------------------------
def analyze(proto: onnx.ModelProto, *, path: str, model_dir: str | os.PathLike[str] | None,
            content_hash: str = "", max_param_values: int = DEFAULT_MAX_PARAM_VALUES
            ) -> QdqModel:
    """Analyse *proto* (loaded without external data) into a :class:`QdqModel`.

    *model_dir* is the folder external data may be read from (``None``: none).
    *max_param_values*: a scale or zero point with more values is reported
    (``qdq.value``), never read. Strings of *proto* that are not valid UTF-8 are
    repaired in place first.
    """
    analysis = _Analysis(proto, path, model_dir, max_param_values)
    if not analysis.read():  # a string came back as bytes: repair, then read again
        repaired = repair_text_fields(proto)
        analysis = _Analysis(proto, path, model_dir, max_param_values)
        analysis.read()
        if repaired:
            analysis.diagnostics.append(Diagnostic(
                "encoding", f"{repaired} name(s) or doc string(s) in the file are not valid "
                            "UTF-8; their invalid bytes are shown as U+FFFD"))
    try:
        return analysis.run(content_hash)
    finally:
        analysis.release()


class _Analysis:
    """One pass over one model; :meth:`run` returns the frozen record."""

    def release(self) -> None:
        """Break the node ↔ graph cycles, so that the working state is freed as soon as
        the analysis ends (by reference counting, not by a later garbage collection)."""
        for node in self.nodes:
            node.graph = None  # type: ignore[assignment]

    def __init__(self, proto: onnx.ModelProto, path: str,
                 model_dir: str | os.PathLike[str] | None,
                 max_param_values: int = 0) -> None:
        self.proto = proto
        self.path = path
        self.model_dir = model_dir
        self.max_param_values = max_param_values or DEFAULT_MAX_PARAM_VALUES
        self.diagnostics: list[Diagnostic] = []
        self.graphs: list[_Graph] = []
        self.nodes: list[_Node] = []
        self.params: dict[str, _Param] = {}
        self.qdq: dict[str, QdqNode] = {}
        self.by_key: dict[str, _Node] = {}
        self.unreadable: dict[str, tuple[str, str]] = {}  # param -> (subtype, reason)
        self.data_files: set[str] = set()  # external data files of scales / zero points
        self.inferred = False
        self.texts: list = []  # every string field read (see read)
        self.producer: tuple[str, str] = ("", "")
        self.opsets: tuple[tuple[str, int], ...] = ()
        #: scales / zero points computed at run time by design (DynamicQuantizeLinear)
        self.runtime_params: set[str] = set()

    def read(self) -> bool:
        """Read the model's fields the analysis uses (each once: protobuf access is slow);
        False when a string field may have come back as ``bytes`` (not valid UTF-8).

        Every string field :func:`repair_text_fields` repairs is read here, and all of
        them are checked at once, so the repair runs only for a model that needs it.
        """
        proto, texts = self.proto, self.texts
        producer_name, producer_version = proto.producer_name, proto.producer_version
        texts += (producer_name, producer_version, proto.domain, proto.doc_string)
        opsets = [(o.domain, o.version) for o in proto.opset_import]
        texts += (domain for domain, _ in opsets)
        self.producer = (producer_name, producer_version)
        self.opsets = tuple(opsets)
        complete = self._collect_graphs()
        try:
            "".join(texts)  # a TypeError names the first bytes object
        except TypeError:
            return False
        finally:
            self.texts = []
        return complete

    def run(self, content_hash: str) -> QdqModel:
        """The frozen record of the model (after :meth:`read`)."""
        self._assign_keys()
        self._find_implicit_inputs()
        self._collect_types()
        qdq_nodes = self._analyse_qdq_nodes()
        self.qdq = {q.key: q for q in qdq_nodes}
        groups = self._find_groups()
        quant_ops = self._find_quant_ops()
        inside = self._quantized_region(groups)
        regions = self._regions(inside)
        qoperator = [n.key for n in self.nodes if _is_qoperator(n)]
        self._model_level_diagnostics(quant_ops)
        self._check_qdq_shapes()
        self._check_params()
        main = self.graphs[0]
        return QdqModel(
            path=self.path,
            producer=" ".join(p for p in self.producer if p),
            opsets=self.opsets,
            ir_version=self.proto.ir_version,
            graph_name=main.name,
            nodes=self._node_infos(inside, set(qoperator)),
            tensors=self._tensor_infos(),
            inputs=tuple(name for name in main.inputs if name not in main.initializers),
            outputs=tuple(main.outputs),
            qdq_nodes=tuple(qdq_nodes),
            params=tuple(self._freeze_param(p) for p in self.params.values()),
            groups=tuple(groups),
            diagnostics=tuple(self.diagnostics),
            param_bytes=sum(typed_nbytes(data_type, dims, g.initializers[name])
                            for g in self.graphs
                            for name, (data_type, dims) in g.tensor_types.items()),
            content_hash=content_hash,
            regions=tuple(regions),
            qoperator_nodes=tuple(qoperator),
            inferred_shapes=self.inferred,
            data_files=tuple(sorted(self.data_files - {self.path})),
            quant_ops=tuple(quant_ops),
            function_graphs=tuple(g.path for g in self.graphs if g.function and g.holder is None),
            subgraphs=tuple(g.path for g in self.graphs[1:]),
        )

    # -- graphs and nodes --------------------------------------------------------
    def _collect_graphs(self) -> bool:
        """Main graph, then every subgraph breadth first, then each model-local function
        (and its subgraphs); nodes in model order. False when a node that holds no
        subgraph has a graph attribute (:meth:`read` does not read its strings)."""
        complete = True
        roots: list[tuple[onnx.GraphProto, str]] = [(self.proto.graph, "")]
        roots += _function_graphs(self.proto)
        for root, function_path in roots:
            pending: deque[tuple[onnx.GraphProto, _Node | None, str]] = deque(
                [(root, None, function_path)])
            while pending:
                graph_proto, holder, label = pending.popleft()
                graph = _Graph(graph_proto, holder.graph if holder else None, holder, label,
                               function=bool(function_path))
                self.graphs.append(graph)
                self._index_graph(graph)
                for node in graph.nodes:
                    if not _may_hold_subgraphs(node.op_type, node.domain):
                        complete = complete and not any(kind in _GRAPH_ATTRIBUTES
                                                        for _, kind, _ in node.attributes)
                        continue
                    for name, kind, attr in node.attributes:
                        if kind == onnx.AttributeProto.GRAPH:
                            pending.append((attr.g, node, name))
                        elif kind == onnx.AttributeProto.GRAPHS:
                            pending.extend((g, node, f"{name}[{i}]")
                                           for i, g in enumerate(attr.graphs))
        return complete

    def _index_graph(self, graph: _Graph) -> None:
        """Nodes, initializers, inputs, outputs and declared types of *graph*."""
        proto, texts = graph.proto, self.texts
        graph.name = proto.name
        texts += (graph.name, proto.doc_string)
        initializers, tensor_types = graph.initializers, graph.tensor_types
        for tensor in proto.initializer:
            name = tensor.name
            texts += (name, tensor.doc_string)
            if tensor.external_data:  # iterating an empty one costs more than asking
                for entry in tensor.external_data:
                    texts += (entry.key, entry.value)
            initializers[name] = tensor
            tensor_types[name] = (tensor.data_type, tuple(tensor.dims[:]))
        declared = []  # (name, dtype, shape) written in the file
        for infos, names in ((proto.input, graph.inputs), (proto.output, graph.outputs),
                             (proto.value_info, None)):
            for info in infos:
                name = info.name
                texts += (name, info.doc_string)
                dtype, shape = _value_info_type(info)
                if shape:
                    texts += (d for d in shape if d.__class__ is not int and d is not None)
                if names is not None:
                    names.append(name)
                if dtype is not None or shape is not None:
                    declared.append((name, dtype, shape))
        graph.input_set = set(graph.inputs)
        graph.output_set = set(graph.outputs)
        for index, node_proto in enumerate(proto.node):
            node = _Node(node_proto, graph, index, texts)
            self.nodes.append(node)
            graph.nodes.append(node)
            for name in node.outputs:
                if name:
                    graph.producers[name] = node
            for position, name in enumerate(node.inputs):
                if name:
                    graph.consumers.setdefault(name, []).append((node, position))
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.outputs:
                graph.constants[node.outputs[0]] = node_proto
        types = graph.types
        for name, dtype, shape in declared:
            types[name] = (dtype, shape)
        for name, (data_type, dims) in tensor_types.items():
            types[name] = (dtypes.name_of(data_type), dims)
        for name, node_proto in graph.constants.items():
            constant_type = _constant_type(node_proto)
            if constant_type is not None:
                types[name] = constant_type

    def _find_implicit_inputs(self) -> None:
        """Outer-scope names read inside subgraphs, charged to the node holding them
        (innermost graphs first, so nested bodies pass their reads outwards)."""
        for graph in reversed(self.graphs[1:]):
            if graph.holder is None:  # a function body: its inputs are its own
                continue
            reads = {name for node in graph.nodes
                     for name in (*node.inputs, *node.implicit_inputs) if name}
            reads.update(graph.outputs)
            graph.holder.implicit_inputs.update(  # type: ignore[union-attr]
                name for name in reads if not graph.defines(name))

    def _assign_keys(self) -> None:
        """Unique, deterministic, non-empty keys; subgraph paths follow their holder."""
        counts = Counter(n.name for n in self.nodes if n.name)
        reserved = {name for name, count in counts.items() if count == 1}
        used: set[str] = set()
        seen: Counter[str] = Counter()
        for graph in self.graphs:
            graph.path = f"{graph.holder.key}:{graph.label}" if graph.holder else graph.label
            prefix = f"{graph.path}/" if graph.path else ""
            for node in graph.nodes:
                name = node.name
                if name and counts[name] == 1:
                    node.key = name
                else:
                    seen[name] += 1
                    base = f"{name}#{seen[name]}" if name else \
                        f"{prefix}{node.op_type or 'node'}#{node.index}"
                    node.key = _unused(base, used, reserved)
                used.add(node.key)
                self.by_key[node.key] = node

    # -- tensor types -------------------------------------------------------------
    def _collect_types(self) -> None:
        """Types beyond those the file declares (read with the graph)."""
        if any(_lacks_types(g) for g in self.graphs if not g.function):
            self._run_shape_inference()
        for node in self.nodes:
            if node.is_qdq:
                _qdq_output_type(node, self)
        fill_output_types(self)

    def _run_shape_inference(self) -> None:
        """ONNX shape inference where types are missing: on the few main-graph nodes
        lacking them when that is all (:meth:`_untyped_part`), else on the model (a
        copy without large weights when they are big); failures warn."""
        source = self._untyped_part()
        graphs = self.graphs[:1] if source is not None else \
            [g for g in self.graphs if not g.function]
        if source is None:
            weight_bytes = sum(tensor_nbytes(t) for t in self.graphs[0].initializers.values())
            source = self.proto if weight_bytes <= _INFERENCE_COPY_BYTES \
                else _without_large_weights(self.proto)
        try:
            inferred = onnx.shape_inference.infer_shapes(source, check_type=False,
                                                         strict_mode=False)
        except Exception as error:  # noqa: BLE001 - C++ errors surface as many types
            self.diagnostics.append(Diagnostic(
                "inference", f"ONNX shape inference failed ({type(error).__name__}: "
                             f"{_first_line(error)}); types come from the file and Q/DQ "
                             "semantics"))
            return
        self.inferred = True
        inferred_graphs = _graphs_breadth_first(inferred.graph)
        if len(inferred_graphs) != len(graphs):
            return
        for graph, inferred_graph in zip(graphs, inferred_graphs):
            for info in (*inferred_graph.value_info, *inferred_graph.output):
                known = graph.types.get(info.name)
                if known is None or known[0] is None:
                    dtype, shape = _value_info_type(info)
                    if dtype is not None or shape is not None:
                        graph.types[info.name] = (dtype, shape)

    def _untyped_part(self) -> onnx.ModelProto | None:
        """A model of the main-graph nodes whose outputs lack a type, the nodes giving
        them untyped inputs and the ``Constant`` nodes they read, with their other inputs
        declared with the types already known; None when subgraphs lack types too or
        the part is not small (ONNX Runtime's quantizer leaves one output untyped)."""
        main = self.graphs[0]
        if any(_lacks_types(g) for g in self.graphs[1:] if not g.function):
            return None
        chosen: dict[int, _Node] = {}
        pending = [n for n in main.nodes if not n.is_qdq and _has_untyped_output(n, main)]
        while pending:
            node = pending.pop()
            if node.index in chosen:
                continue
            if _may_hold_subgraphs(node.op_type, node.domain) or len(chosen) * 4 > len(main.nodes):
                return None
            chosen[node.index] = node
            for name in node.inputs:
                producer = main.producers.get(name)
                if producer is not None and (name in main.constants
                                             or main.types.get(name, (None,))[0] is None):
                    pending.append(producer)
        return _inference_model(self.proto, main, [chosen[i] for i in sorted(chosen)])

    def type_of(self, graph: _Graph, name: str) -> tuple[str | None, Shape | None]:
        """Type of *name* as seen from *graph* (outer scopes included)."""
        scope: _Graph | None = graph
        while scope is not None:
            if name in scope.types:
                return scope.types[name]
            scope = scope.parent
        return (None, None)

    # -- Q/DQ nodes and their parameters -----------------------------------------
    def _analyse_qdq_nodes(self) -> list[QdqNode]:
        roles = self._roles()
        return [self._qdq_record(node, *roles[node.key]) for node in self.nodes if node.is_qdq]

    def _qdq_record(self, node: _Node, role: Role, partner: str | None, tensor: str
                    ) -> QdqNode:
        attrs = {name: a for name, _, a in node.attributes}
        x = node.inputs[0] if node.inputs else ""
        y = node.outputs[0] if node.outputs else ""
        scale = node.inputs[1] if len(node.inputs) > 1 else ""
        zero_point = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        if not scale:
            self._diagnose("malformed", f"{node.op_type} {node.key!r} has no scale input", node)
        else:
            self._use_param(scale, "scale", node, 1)
        if zero_point:
            self._use_param(zero_point, "zero_point", node, 2)
        x_dtype, x_shape = self.type_of(node.graph, x)
        y_dtype, _ = self.type_of(node.graph, y)
        zp_dtype = self.params[zero_point].dtype if zero_point else None
        if node.is_quantize:
            quant_dtype, float_dtype = y_dtype, x_dtype
        else:
            quant_dtype, float_dtype = x_dtype or zp_dtype, y_dtype
        granularity, axis, block_size = self._granularity(node, attrs, scale, x_shape)
        return _record(
            QdqNode, key=node.key, op_type=node.op_type, domain=node.domain, input=x, output=y,
            scale=scale, zero_point=zero_point, quant_dtype=quant_dtype, float_dtype=float_dtype,
            granularity=granularity, axis=axis, block_size=block_size, role=role,
            partner=partner, quantized_tensor=tensor, graph=node.graph.path)

    def _granularity(self, node: _Node, attrs: dict[str, onnx.AttributeProto], scale: str,
                     x_shape: Shape | None) -> tuple[Granularity, int | None, int | None]:
        block_size = attrs["block_size"].i if "block_size" in attrs else 0
        axis = attrs["axis"].i if "axis" in attrs else 1
        rank = len(x_shape) if x_shape is not None else None
        if block_size < 0:
            self._diagnose("malformed", f"{node.op_type} {node.key!r} has a negative "
                                        f"block_size ({block_size})", node)
        param = self.params.get(scale)
        scale_shape = param.shape if param else None
        if block_size > 0 or (scale_shape is not None and len(scale_shape) > 1):
            kind = Granularity.BLOCKED
        elif scale_shape is None:
            return Granularity.UNKNOWN, None, None
        elif math.prod(scale_shape) == 1:
            return Granularity.PER_TENSOR, None, None
        else:
            kind = Granularity.PER_AXIS
        if rank is not None:
            if not -rank <= axis < rank:
                self._diagnose("malformed", f"{node.op_type} {node.key!r} has axis {axis} "
                                            f"outside the input's rank {rank}", node)
            elif axis < 0:
                axis += rank
        return kind, axis, (block_size if kind is Granularity.BLOCKED and block_size > 0
                            else None)

    def _use_param(self, name: str, kind: str, node: _Node, index: int) -> None:
        param = self.params.get(name)
        if param is None:
            param = self.params[name] = self._new_param(name, kind, node.graph)
        param.users.append(_record(ParamUse, node=node.key, input_index=index))

    def _new_param(self, name: str, kind: str, graph: _Graph) -> _Param:
        source, definition, scope = _resolve(name, graph)
        values = None
        if isinstance(definition, onnx.TensorProto):
            data_type, dims = scope.tensor_types[name]  # type: ignore[union-attr]
            values = self._tensor_values(definition, name, data_type, dims)
            return _Param(name, kind, source, dtypes.name_of(data_type), dims, values, graph.path)
        if isinstance(definition, onnx.NodeProto):
            values, dtype, shape = self._constant_values(definition, name)
        else:
            dtype, shape = self.type_of(graph, name)
        int_shape = None if shape is None or any(not isinstance(d, int) for d in shape) \
            else tuple(shape)  # type: ignore[arg-type]
        return _Param(name, kind, source, dtype, int_shape, values, graph.path)

    def _tensor_values(self, tensor: onnx.TensorProto, name: str, data_type: int,
                       dims: tuple[int, ...]) -> tuple | None:
        """Flattened values of a scale / zero-point tensor (of *data_type* and *dims*);
        None (and a reason) if unreadable."""
        count = math.prod(dims) if all(d >= 0 for d in dims) else 0
        if count > self.max_param_values:  # a value list this size is no scale: not read
            self.unreadable[name] = ("value", (f"it has {count:,} values, more than the "
                                              f"{self.max_param_values:,} a scale or zero "
                                              "point is read with (qdq_max_param_values, "
                                              "--max-param-values)"))
            return None
        values = _inline_values(tensor, data_type, dims)
        if values is not None:
            return values
        if uses_external_data(tensor):
            data_file = external_data_file(tensor, self.model_dir)
            if data_file is not None:
                self.data_files.add(str(data_file))
        try:
            array = read_tensor_array(tensor, self.model_dir)
        except QdqModelError as error:
            self.unreadable[name] = ("external_data", error.reason)
            return None
        except (ValueError, TypeError, KeyError) as error:  # malformed data, unknown type
            detail = f"unknown data type {tensor.data_type}" if isinstance(error, KeyError) \
                else _first_line(error)
            self.unreadable[name] = ("value", f"its data cannot be read ({detail})")
            return None
        return _flat_values(array, tensor.data_type)

    def _constant_values(self, node: onnx.NodeProto, name: str
                         ) -> tuple[tuple | None, str | None, tuple | None]:
        """(values, dtype, shape) of a ``Constant`` node's output."""
        for attr in node.attribute:
            if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                t = attr.t
                data_type, dims = t.data_type, tuple(t.dims)
                return self._tensor_values(t, name, data_type, dims), dtypes.name_of(data_type), dims
            if attr.name == "value_float":
                return (float(np.float32(attr.f)),), "FLOAT", ()
            if attr.name == "value_floats":
                return tuple(float(np.float32(v)) for v in attr.floats), "FLOAT", \
                    (len(attr.floats),)
            if attr.name == "value_int":
                return (int(attr.i),), "INT64", ()
            if attr.name == "value_ints":
                return tuple(int(v) for v in attr.ints), "INT64", (len(attr.ints),)
        return None, None, None

    # -- QOperator, dynamic and weight-only operators ------------------------------------
    def _find_quant_ops(self) -> list[QuantOp]:
        """Dynamic chains first (they claim their MatMulInteger), then QOperator nodes,
        then weight-only patterns; in node order."""
        ops = find_dynamic_ops(self)
        taken = {key for op in ops for key in op.members}
        ops += find_qoperator_ops(self, taken)
        taken.update(key for op in ops for key in op.members)
        ops += find_weight_only_ops(self, taken)
        order = {node.key: position for position, node in enumerate(self.nodes)}
        return sorted(ops, key=lambda op: order[op.node])

    def is_stored(self, name: str, graph: _Graph) -> bool:
        return _is_stored(name, graph)

    def use_param(self, name: str, kind: str, node: _Node, index: int) -> None:
        """Record that *node* reads *name* as a scale / zero point at input *index*
        (``-1``: *node* writes it, as DynamicQuantizeLinear does)."""
        self._use_param(name, kind, node, index)

    def param_record(self, name: str) -> _Param | None:
        """The scale / zero-point record of *name* (a pattern may restate its values:
        the packed zero points of MatMulNBits, unpacked)."""
        return self.params.get(name)

    def param_shape(self, name: str) -> tuple[int, ...] | None:
        param = self.params.get(name)
        return param.shape if param is not None else None

    def expect_runtime(self, *names: str) -> None:
        """*names* are computed at run time by design: no "value unknown" warning."""
        self.runtime_params.update(n for n in names if n)

    @staticmethod
    def int_attribute(node: _Node, name: str, default: int) -> int:
        for attr_name, kind, attr in node.attributes:
            if attr_name == name and kind == onnx.AttributeProto.INT:
                return attr.i
        return default

    # -- roles ----------------------------------------------------------------------
    def _roles(self) -> dict[str, tuple[Role, str | None, str]]:
        """(role, partner key, quantized tensor) of every Q and DQ node."""
        roles: dict[str, tuple[Role, str | None, str]] = {}
        for node in self.nodes:
            if not node.is_dequantize:
                continue
            role, q_node = self._dequantize_role(node)
            if q_node is not None:
                q_input = q_node.inputs[0] if q_node.inputs else ""
                roles.setdefault(q_node.key, (role, node.key, q_input))
                roles[node.key] = (role, q_node.key, q_input)
            else:
                roles[node.key] = (role, None, node.outputs[0] if node.outputs else "")
        for node in self.nodes:
            if node.is_quantize and node.key not in roles:
                role = Role.ENTRY if _feeds_qoperator(node) else Role.LONE_Q
                roles[node.key] = (role, None, node.inputs[0] if node.inputs else "")
        return roles

    def _dequantize_role(self, node: _Node) -> tuple[Role, _Node | None]:
        x = node.inputs[0] if node.inputs else ""
        graph = node.graph
        producer = graph.producers.get(x)
        if producer is not None and producer.is_quantize:
            q_input = producer.inputs[0] if producer.inputs else ""
            stored = _is_stored(q_input, graph)
            return (Role.WEIGHT_PAIR if stored else Role.ACTIVATION), producer
        if producer is not None and producer.op_type in _BETWEEN_Q_AND_DQ and producer.inputs:
            before = graph.producers.get(producer.inputs[0])
            if before is not None and before.is_quantize:
                return Role.CLIP, before
        if _is_stored(x, graph):
            dtype = self.type_of(graph, x)[0]
            return (Role.BIAS if dtype == "INT32" else Role.WEIGHT), None
        return (Role.EXIT if _fed_by_qoperator(node) else Role.LONE_DQ), None

    # -- groups and regions -------------------------------------------------------------
    def _find_groups(self) -> list[QuantGroup]:
        groups = []
        for node in self.nodes:
            if node.is_qdq or node.op_type == "Constant":
                continue
            graph = node.graph
            dqs = [graph.producers.get(name) for name in node.inputs]
            dqs = [d for d in dqs if d is not None and d.is_dequantize]
            output_qs = [c.key for name in node.outputs if name
                         for c, _ in graph.consumers.get(name, ()) if c.is_quantize]
            if dqs and output_qs:
                groups.append(self._group(node, dqs, output_qs))
        return groups

    def _group(self, node: _Node, dqs: list[_Node], output_qs: list[str]) -> QuantGroup:
        inputs: list[str] = []
        weight = bias = None
        for dq in dqs:
            role = self.qdq[dq.key].role
            if role in (Role.WEIGHT, Role.WEIGHT_PAIR) and weight is None:
                weight = dq.key
            elif role is Role.BIAS and bias is None:
                bias = dq.key
            else:
                inputs.append(dq.key)
        return QuantGroup(node.key, node.op_type, tuple(inputs), weight, bias,
                          tuple(dict.fromkeys(output_qs)), graph=node.graph.path)

    def _quantized_region(self, groups: list[QuantGroup]) -> set[str]:
        inside = {g.node for g in groups}
        inside.update(n.key for n in self.nodes if _is_qoperator(n))
        pending = deque(n for n in self.nodes if n.is_quantize)
        reached: set[str] = set()
        while pending:
            node = pending.popleft()
            for name in node.outputs:
                for consumer, _ in node.graph.consumers.get(name, ()):
                    if consumer.is_qdq or consumer.key in reached:
                        continue
                    reached.add(consumer.key)
                    pending.append(consumer)
        return inside | reached

    def _regions(self, inside: set[str]) -> list[QuantRegion]:
        members = [n for n in self.nodes if n.is_qdq or n.key in inside]
        parent = {n.key: n.key for n in members}

        def find(key: str) -> str:
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        for node in members:
            for name in node.outputs:
                for consumer, _ in node.graph.consumers.get(name, ()):
                    if consumer.key in parent and not (node.is_dequantize and consumer.is_qdq):
                        parent[find(consumer.key)] = find(node.key)
        components: dict[str, list[_Node]] = {}
        for node in members:
            components.setdefault(find(node.key), []).append(node)
        return [self._region(nodes) for nodes in components.values() if len(nodes) > 1]

    def _region(self, nodes: list[_Node]) -> QuantRegion:
        keys = {n.key for n in nodes}
        graph = nodes[0].graph
        outputs = graph.output_set
        entries, exits = [], []
        for node in nodes:
            role = self.qdq[node.key].role if node.is_qdq else None
            if node.is_quantize and role is not Role.WEIGHT_PAIR:
                producer = graph.producers.get(node.inputs[0] if node.inputs else "")
                if producer is None or producer.key not in keys:
                    entries.append(node.key)
            elif node.is_dequantize and role not in (Role.WEIGHT, Role.BIAS, Role.WEIGHT_PAIR):
                out = node.outputs[0] if node.outputs else ""
                readers = graph.consumers.get(out, ())
                if out in outputs or any(c.key not in keys for c, _ in readers):
                    exits.append(node.key)
        return QuantRegion(tuple(n.key for n in nodes), tuple(entries), tuple(exits),
                           graph=graph.path)

    # -- diagnostics ----------------------------------------------------------------------
    def _diagnose(self, subtype: str, message: str, node: _Node | str | None) -> None:
        key = node.key if isinstance(node, _Node) else node
        self.diagnostics.append(Diagnostic(subtype, message, key))

    def _model_level_diagnostics(self, quant_ops: list[QuantOp]) -> None:
        if not self.qdq and not quant_ops:
            name = self.graphs[0].name or Path(self.path).stem
            self._diagnose("float_model", f"model {name!r} has no quantization (no "
                                          "QuantizeLinear / DequantizeLinear, QOperator, "
                                          "dynamic or weight-only quantized operator): it is "
                                          "a float model", None)

    def _check_qdq_shapes(self) -> None:
        for record in self.qdq.values():
            graph_node = self.by_key[record.key]
            x_shape = self.type_of(graph_node.graph, record.input)[1]
            scale = self.params.get(record.scale)
            zero_point = self.params.get(record.zero_point) if record.zero_point else None
            if scale is None or scale.shape is None:
                continue
            problem = _scale_shape_problem(record, scale.shape, x_shape)
            if problem:
                self._diagnose("shape", f"{record.op_type} {record.key!r}: scale "
                                        f"{scale.name!r} {problem}", record.key)
            if zero_point is not None and zero_point.shape is not None \
                    and math.prod(zero_point.shape) != math.prod(scale.shape):
                self._diagnose("shape", f"{record.op_type} {record.key!r}: zero point "
                                        f"{zero_point.name!r} has shape {zero_point.shape} but "
                                        f"scale {scale.name!r} has shape {scale.shape}",
                               record.key)

    def _check_params(self) -> None:
        for param in self.params.values():
            user = param.users[0].node
            what = "scale" if param.kind == "scale" else "zero point"
            if param.name in self.unreadable:
                subtype, reason = self.unreadable[param.name]
                self._diagnose(subtype, f"{what} {param.name!r} of {user!r}: {reason}", user)
            elif param.values is None and param.name not in self.runtime_params:
                self._diagnose("value", f"{what} {param.name!r} of {user!r} comes from "
                                        f"{_source_phrase(param.source)}: its value is not "
                                        "known from the file", user)
            if param.kind == "scale" and param.values is not None:
                problem = _bad_scale(param.values)
                if problem:
                    self._diagnose("scale", f"scale {param.name!r} of {user!r} {problem}", user)

    # -- freezing -----------------------------------------------------------------------------
    def _node_infos(self, inside: set[str], qoperator: set[str]) -> tuple[NodeInfo, ...]:
        infos = []
        for node in self.nodes:
            key = node.key
            infos.append(_record(
                NodeInfo, key=key, name=node.name, op_type=node.op_type, domain=node.domain,
                inputs=tuple(node.inputs), outputs=tuple(node.outputs),
                attributes=tuple([(name, _attribute_text(a, kind))
                                  for name, kind, a in node.attributes]),
                index=node.index, graph=node.graph.path, in_quantized_region=key in inside,
                qoperator=key in qoperator, doc_string=node.doc_string,
                implicit_inputs=tuple(sorted(node.implicit_inputs))))
        return tuple(infos)

    def _tensor_infos(self) -> dict[str, TensorInfo]:
        tensors: dict[str, TensorInfo] = {}
        for graph in self.graphs:
            produced = (o for n in graph.nodes for o in n.outputs if o)
            names = [*graph.inputs, *graph.initializers, *produced, *graph.outputs]
            initializers, input_set, output_set = (graph.initializers, graph.input_set,
                                                   graph.output_set)
            type_of, path, outer = graph.types.get, graph.path, graph.parent is not None
            for name in dict.fromkeys(names):
                if outer and not graph.defines(name):
                    continue  # an outer-scope name: described by the outer graph
                if name in initializers:
                    kind = "initializer"
                elif name in input_set:
                    kind = "input"
                elif name in output_set:
                    kind = "output"
                else:
                    kind = "value"
                dtype, shape = type_of(name, (None, None))
                key = name if name not in tensors else f"{path}/{name}"
                tensors[key] = _record(TensorInfo, name=name, dtype=dtype, shape=shape,
                                       kind=kind, graph=path)
        return tensors

    @staticmethod
    def _freeze_param(param: _Param) -> QuantParam:
        return _record(QuantParam, name=param.name, kind=param.kind, source=param.source,
                       dtype=param.dtype, shape=param.shape, values=param.values,
                       users=tuple(param.users), graph=param.graph)


# -- helpers of the analysis -------------------------------------------------------------
def _record(cls: type[_R], **fields: object) -> _R:
    """The frozen dataclass ``cls(**fields)``, *fields* naming every field, built without
    the ``object.__setattr__`` call per field of a frozen ``__init__`` (an analysis builds
    thousands of records; the instance is the same, see test_records_are_complete)."""
    record = _new_object(cls)
    record.__dict__.update(fields)
    return record


_new_object = object.__new__
_R = TypeVar("_R")


def _unused(base: str, used: set[str], reserved: set[str]) -> str:
    candidate, n = base, 1
    while candidate in used or candidate in reserved:
        n += 1
        candidate = f"{base}~{n}"
    return candidate


def _may_hold_subgraphs(op_type: str, domain: str) -> bool:
    """Only these standard ops have graph attributes; other domains may have any."""
    return op_type in _SUBGRAPH_OPS or domain not in ("", "ai.onnx")


def _function_graphs(proto: onnx.ModelProto) -> list[tuple[onnx.GraphProto, str]]:
    """Each model-local function as a graph (its inputs and outputs untyped), with its
    path ``"function:<domain>.<name>"``; a function that cannot be copied is skipped."""
    graphs = []
    for function in proto.functions:
        try:
            graph = onnx.GraphProto()
            graph.name = function.name
            graph.node.extend(function.node)
            graph.input.extend(onnx.ValueInfoProto(name=name) for name in function.input)
            graph.output.extend(onnx.ValueInfoProto(name=name) for name in function.output)
            graph.value_info.extend(function.value_info)
        except (TypeError, ValueError):  # a name that is not valid UTF-8
            continue
        where = f"{function.domain}.{function.name}" if function.domain else function.name
        graphs.append((graph, f"function:{where}"))
    return graphs


def _graphs_breadth_first(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    """The same order as :meth:`_Analysis._collect_graphs`."""
    found, pending = [], deque([graph])
    while pending:
        current = pending.popleft()
        found.append(current)
        for node in current.node:
            if not _may_hold_subgraphs(node.op_type, node.domain):
                continue
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    pending.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    pending.extend(attr.graphs)
    return found


def _lacks_types(graph: _Graph) -> bool:
    for node in graph.nodes:
        if node.is_qdq:
            continue
        for name in node.outputs:
            if name and graph.types.get(name, (None,))[0] is None:
                return True
    return False


def _qdq_output_type(node: _Node, analysis: _Analysis) -> None:
    """Fill a Q/DQ output type from the operator's semantics when inference did not."""
    if not node.outputs or not node.outputs[0]:
        return
    graph = node.graph
    out = node.outputs[0]
    known_dtype, known_shape = graph.types.get(out, (None, None))
    x_shape = analysis.type_of(graph, node.inputs[0])[1] if node.inputs else None
    attrs = {name: a.i for name, kind, a in node.attributes if kind == onnx.AttributeProto.INT}
    if node.is_quantize:
        zero_point = node.inputs[2] if len(node.inputs) > 2 else ""
        dtype = analysis.type_of(graph, zero_point)[0] if zero_point else None
        if dtype is None and not zero_point:
            dtype = dtypes.name_of(attrs.get("output_dtype", 0)) or "UINT8"
    else:
        dtype = dtypes.name_of(attrs.get("output_dtype", 0))
        if dtype is None and len(node.inputs) > 1:
            dtype = analysis.type_of(graph, node.inputs[1])[0]
    graph.types[out] = (known_dtype or dtype, known_shape if known_shape is not None else x_shape)


def _has_untyped_output(node: _Node, graph: _Graph) -> bool:
    return any(name and graph.types.get(name, (None,))[0] is None for name in node.outputs)


def _inference_model(proto: onnx.ModelProto, graph: _Graph, nodes: list[_Node]
                     ) -> onnx.ModelProto:
    """A model of *nodes* (in model order) for shape inference: inputs they do not write
    are initializers (data only when small) or graph inputs of the known type."""
    part = onnx.ModelProto()
    part.ir_version = proto.ir_version
    part.opset_import.extend(proto.opset_import)
    part.functions.extend(proto.functions)
    part.graph.node.extend(n.proto for n in nodes)
    written = {name for node in nodes for name in node.outputs if name}
    declared: set[str] = set()
    for name in (name for node in nodes for name in node.inputs):
        if not name or name in written or name in declared:
            continue
        declared.add(name)
        tensor = graph.initializers.get(name)
        dtype, shape = graph.types.get(name, (None, None))
        if tensor is not None:
            _add_inference_initializer(part.graph, tensor)
        elif dtype in dtypes.BY_NAME:
            part.graph.input.append(helper.make_tensor_value_info(
                name, dtypes.BY_NAME[dtype].code, shape))
    return part


def _add_inference_initializer(graph: onnx.GraphProto, tensor: onnx.TensorProto) -> None:
    """*tensor* itself when small and inline, else a stub with its type and dims only."""
    if math.prod(tensor.dims) <= _INFERENCE_ELEMENT_LIMIT and not uses_external_data(tensor):
        graph.initializer.append(tensor)
    else:
        stub = graph.initializer.add()
        stub.name = tensor.name
        stub.data_type = tensor.data_type
        stub.dims.extend(tensor.dims)


def _without_large_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A shallow working copy for shape inference: big initializers keep type and dims only."""
    copy = onnx.ModelProto()
    copy.ir_version = proto.ir_version
    copy.opset_import.extend(proto.opset_import)
    copy.functions.extend(proto.functions)
    source, graph = proto.graph, copy.graph
    graph.name = source.name
    graph.node.extend(source.node)
    graph.input.extend(source.input)
    graph.output.extend(source.output)
    graph.value_info.extend(source.value_info)
    for tensor in source.initializer:
        _add_inference_initializer(graph, tensor)
    return copy


def _value_info_type(info: onnx.ValueInfoProto) -> tuple[str | None, Shape | None]:
    if not info.type.HasField("tensor_type"):
        return None, None
    tensor_type = info.type.tensor_type
    dtype = dtypes.name_of(tensor_type.elem_type)
    if not tensor_type.HasField("shape"):
        return dtype, None
    return dtype, tuple(map(_dimension, tensor_type.shape.dim))


def _dimension(dim: onnx.TensorShapeProto.Dimension) -> int | str | None:
    which = dim.WhichOneof("value")
    if which == "dim_value":
        return dim.dim_value
    return dim.dim_param if which == "dim_param" else None


def _constant_type(node: onnx.NodeProto) -> tuple[str | None, Shape] | None:
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return dtypes.name_of(attr.t.data_type), tuple(attr.t.dims)
        if attr.name in ("value_float", "value_int"):
            return ("FLOAT" if attr.name == "value_float" else "INT64"), ()
        if attr.name == "value_floats":
            return "FLOAT", (len(attr.floats),)
        if attr.name == "value_ints":
            return "INT64", (len(attr.ints),)
    return None


def _resolve(name: str, graph: _Graph
             ) -> tuple[ParamSource, onnx.TensorProto | onnx.NodeProto | None, _Graph | None]:
    """Where *name* comes from, seen from *graph*: (source, definition, defining graph)."""
    if not name:
        return ParamSource.ABSENT, None, None
    scope: _Graph | None = graph
    while scope is not None:
        local = scope is graph
        if name in scope.initializers:
            return (ParamSource.INITIALIZER if local else ParamSource.OUTER_SCOPE,
                    scope.initializers[name], scope)
        if name in scope.constants:
            return (ParamSource.CONSTANT if local else ParamSource.OUTER_SCOPE,
                    scope.constants[name], scope)
        if name in scope.input_set:
            return (ParamSource.GRAPH_INPUT if local else ParamSource.OUTER_SCOPE), None, scope
        if name in scope.producers:
            return (ParamSource.RUNTIME if local else ParamSource.OUTER_SCOPE), None, scope
        scope = scope.parent
    return ParamSource.RUNTIME, None, None


def _is_stored(name: str, graph: _Graph) -> bool:
    """True when *name* is an initializer or a ``Constant`` output (here or outside)."""
    return _resolve(name, graph)[1] is not None


_INLINE_VALUES_LIMIT = 4096


def _inline_values(tensor: onnx.TensorProto, data_type: int, dims: tuple[int, ...]
                   ) -> tuple | None:
    """The values :func:`_flat_values` would give for a small ``raw_data`` tensor of a
    plain type (*data_type*, *dims*: the tensor's), read without numpy (most scales and
    zero points are scalars); else None."""
    element = dtypes.BY_CODE.get(data_type)
    code = element.struct_code if element is not None else None
    raw = tensor.raw_data if code is not None else b""
    if not raw or uses_external_data(tensor):
        return None
    count = math.prod(dims)
    if count > _INLINE_VALUES_LIMIT:
        return None
    layout = _LAYOUTS.get((count, code))
    if layout is None:
        layout = _LAYOUTS[count, code] = struct.Struct(f"<{count}{code}")
    return layout.unpack(raw) if len(raw) == layout.size else None


#: ``struct.Struct`` of *count* values of *code*, by (count, code): at most
#: _INLINE_VALUES_LIMIT x 9 of them.
_LAYOUTS: dict[tuple[int, str], struct.Struct] = {}


def _flat_values(array: np.ndarray, data_type: int) -> tuple:
    if dtypes.is_integer(dtypes.name_of(data_type)):
        return tuple(array.astype(np.int64).ravel().tolist())
    return tuple(array.astype(np.float64).ravel().tolist())


def _is_qoperator(node: _Node) -> bool:
    return node.op_type in QOPERATOR_OPS and node.domain in QDQ_DOMAINS


#: Ops that move quantized values without computing on them (ONNX Runtime keeps them on
#: the integer side of a QOperator model): an entry / exit Q or DQ may sit beyond them.
_LAYOUT_OPS = frozenset({"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
                         "Identity", "MaxPool", "Slice", "Gather", "Split", "Concat", "Pad",
                         "Resize", "DepthToSpace", "SpaceToDepth", "Tile", "Expand"})
#: Layout ops followed at most from an entry Q or back from an exit DQ.
_LAYOUT_STEPS = 8


def _is_layout(node: _Node) -> bool:
    return node.op_type in _LAYOUT_OPS and node.domain in ("", "ai.onnx")


def _feeds_qoperator(quantize: _Node) -> bool:
    """*quantize*'s output reaches a QOperator-format node through layout ops only."""
    graph, tensors = quantize.graph, [t for t in quantize.outputs[:1] if t]
    for _ in range(_LAYOUT_STEPS):
        readers = [node for tensor in tensors for node, _ in graph.consumers.get(tensor, ())]
        if any(_is_qoperator(node) for node in readers):
            return True
        tensors = [t for node in readers if _is_layout(node) for t in node.outputs[:1] if t]
    return False


def _fed_by_qoperator(dequantize: _Node) -> bool:
    """*dequantize*'s input comes from a QOperator-format node through layout ops only."""
    graph, tensor = dequantize.graph, dequantize.inputs[0] if dequantize.inputs else ""
    for _ in range(_LAYOUT_STEPS):
        producer = graph.producers.get(tensor) if tensor else None
        if producer is None or _is_qoperator(producer):
            return producer is not None
        if not _is_layout(producer) or not producer.inputs:
            return False
        tensor = producer.inputs[0]
    return False


def _scale_shape_problem(record: QdqNode, scale_shape: tuple[int, ...],
                         x_shape: Shape | None) -> str:
    if x_shape is None or record.axis is None or not 0 <= record.axis < len(x_shape):
        return ""
    dim = x_shape[record.axis]
    if not isinstance(dim, int) or dim <= 0:
        return ""
    if record.granularity is Granularity.PER_AXIS:
        length = math.prod(scale_shape)
        if len(scale_shape) != 1 or length != dim:
            return (f"has {length} values but axis {record.axis} of {record.input!r} has "
                    f"{dim} elements")
    elif record.granularity is Granularity.BLOCKED and record.block_size:
        if len(scale_shape) != len(x_shape):
            return f"has rank {len(scale_shape)} but {record.input!r} has rank {len(x_shape)}"
        blocks = -(-dim // record.block_size)
        if scale_shape[record.axis] != blocks:
            return (f"has {scale_shape[record.axis]} blocks on axis {record.axis} but "
                    f"{record.input!r} needs {blocks} blocks of {record.block_size}")
    return ""


def _bad_scale(values: tuple) -> str:
    """"is zero at index 3; NaN at index 5" for the bad elements of a scale, else ""."""
    # Every value is positive and finite when the smallest is positive and the sum finite
    # (a NaN makes the sum NaN); a sum overflowing to infinity only costs the search below.
    if not values or (min(values) > 0 and sum(values) < math.inf):
        return ""
    problems = []
    for label, test in (("zero", lambda v: v == 0), ("negative", lambda v: v < 0),
                        ("NaN", math.isnan), ("infinite", math.isinf)):
        hits = [i for i, v in enumerate(values) if test(v)]
        if hits:
            where = "" if len(values) == 1 else f" at index {', '.join(map(str, hits[:8]))}" \
                f"{' ...' if len(hits) > 8 else ''}"
            problems.append(f"{label}{where}")
    return f"is {'; '.join(problems)}" if problems else ""


def _source_phrase(source: ParamSource) -> str:
    return {
        ParamSource.GRAPH_INPUT: "a graph input",
        ParamSource.RUNTIME: "a value computed at run time",
        ParamSource.OUTER_SCOPE: "the outer graph",
        ParamSource.ABSENT: "nowhere",
    }.get(source, f"a {source.value}")


def _attribute_text(attr: onnx.AttributeProto, kind: int) -> str:
    """Short printable value of *attr*, of type *kind*."""
    A = onnx.AttributeProto
    if kind == A.INT:
        text = str(attr.i)
    elif kind == A.FLOAT:
        text = str(np.float32(attr.f))
    elif kind == A.STRING:
        text = attr.s.decode("utf-8", "replace")
    elif kind == A.INTS:
        text = str(attr.ints[:])  # slicing copies upb fields fastest
    elif kind == A.FLOATS:
        text = "[" + ", ".join(str(np.float32(f)) for f in attr.floats) + "]"
    elif kind == A.STRINGS:
        text = str([s.decode("utf-8", "replace") for s in attr.strings])
    elif kind == A.TENSOR:
        text = _tensor_text(attr.t)
    elif kind in (A.GRAPH, A.GRAPHS):
        count = 1 if kind == A.GRAPH else len(attr.graphs)
        text = f"<{count} subgraph{'s' if count != 1 else ''}>"
    else:
        text = f"<{A.AttributeType.Name(kind).lower()}>"
    return text if len(text) <= _ATTRIBUTE_TEXT_LIMIT else text[:_ATTRIBUTE_TEXT_LIMIT - 1] + "…"


def _tensor_text(tensor: onnx.TensorProto) -> str:
    dtype = dtypes.name_of(tensor.data_type) or dtypes.UNKNOWN_LABEL
    count = math.prod(tensor.dims)
    if count <= 8 and not uses_external_data(tensor):
        try:
            values = _flat_values(numpy_helper.to_array(tensor), tensor.data_type)
        except (ValueError, TypeError, KeyError):
            values = None
        if values is not None:
            shown = ", ".join(str(np.float32(v)) if isinstance(v, float) else str(v)
                              for v in values)
            return f"{dtype}{list(tensor.dims)} [{shown}]"
    return f"{dtype}{list(tensor.dims)}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""
