"""Graphviz DOT for a QDQ model: analysis records (+ a ``{key: url}`` map) -> DOT text.

Pure: imports numpy and the analysis records only, never Sphinx. Every string that
comes from a model reaches the DOT text through :func:`escape_dot`, inside a
double-quoted string; no HTML-like label is ever produced, and DOT identifiers are
generated here (``n12``, ``i0`` …), never taken from the model.

Two drawings:

``full``
    one DOT node per ONNX node of the main graph (or of the selection);
    QuantizeLinear and DequantizeLinear nodes have their own shape and colour and
    show their scale / zero-point names and values.
``compact``
    weight and bias DequantizeLinear nodes (and Q→DQ pairs on float weights) are
    folded into the compute node they feed. An activation Q→DQ pair is drawn on the
    edge it quantizes (``pairs="edges"``, the default: a thick edge in the quantized
    dtype's colour, labelled with the pair's dtype, scale and zero point) or as one
    small node (``pairs="nodes"``); a pair that cannot sit on an edge (fed by another
    Q/DQ node or an initializer, or feeding one) is always a node. Folded nodes and
    pairs are listed, so the Q and DQ counts of the drawing still add up to the model's.
    The entry Q and exit DQ of QOperator ops sit on their edge the same way.

``If`` / ``Loop`` / ``Scan`` bodies and model-local functions are dashed clusters beside
the node holding them (a function's beside its first caller; later callers say "same body
as …"), nested as the bodies are, with dashed edges for the outer tensors they read (a
function's formal inputs: the caller's actual tensors) and for their results. A collapsed
box counts the Q/DQ of the bodies its nodes hold or call.

Every edge carries the dtype of its tensor; the quantized regions of the analysis
(:attr:`QdqModel.regions`) are shaded clusters; graph inputs and outputs are drawn.

Links: :func:`render_dot` takes a map from :func:`link_keys` keys to URLs.
A compute node links to ``"node:<NodeInfo.key>"`` when the map has it, else to
``"op:<op_type>"``. A Q/DQ node (or a compact pair, on an edge or as a node) links to
its operator's documentation (``"op:QuantizeLinear"`` …); the label of the edge leaving
it links to its parameter row (``"node:<key>"``) when a ``qdq-params`` table documents it.
Scales and zero points are never drawn as their own elements, so no ``"param:"``
key is ever asked for. A linked node gets ``URL``, ``target="_top"`` (the SVG
sits in an ``<object>``) and, like every node, a tooltip with the full names and
parameter values.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from sphinxext_qdq.analysis.records import (
    DEQUANTIZE_OPS,
    QDQ_DOMAINS,
    QUANTIZE_OPS,
    Granularity,
    NodeInfo,
    QdqModel,
    QdqNode,
    QuantOp,
    QuantOperand,
    QuantParam,
    Role,
)
from sphinxext_qdq.onnxio.dtypes import UNKNOWN_LABEL
from sphinxext_qdq.onnxio.dtypes import label as dtype_label
from sphinxext_qdq.render.scopes import scope_paths
from sphinxext_qdq.render.text import format_values

MODES = ("compact", "full")
RANKDIRS = ("TB", "LR")
#: How compact mode draws an activation Q→DQ pair: on the edge it quantizes, or as a node.
PAIR_STYLES = ("edges", "nodes")

#: Characters of model text on one label line before it is cut with an ellipsis.
LABEL_WIDTH = 36
#: Values of a per-axis / blocked parameter listed in a tooltip before "… N more".
TOOLTIP_VALUES = 16

FONT = "Helvetica"


@dataclass(frozen=True)
class DotOptions:
    """How to draw a model. ``selection`` holds :attr:`NodeInfo.key` values."""

    mode: str = "compact"  # "compact" | "full"
    rankdir: str = "TB"  # "TB" | "LR"
    legend: bool = False
    selection: frozenset[str] | None = None  # None = the whole main graph
    max_nodes: int = 0  # 0 = no cap; above it a fallback graph is drawn
    #: compact mode, ``"edges"``: an activation Q→DQ pair between two drawn nodes is drawn
    #: on the edge it quantizes (a thick edge in the quantized dtype's colour, labelled
    #: with the pair); about half the DOT nodes of ``"nodes"`` (a node per pair), and
    #: several times faster to lay out.
    pairs: str = "edges"
    #: 0: every node drawn; N: every node whose scope path (:mod:`sphinxext_qdq.render.scopes`)
    #: has N parts or more is collapsed into the box of its first N parts
    depth: int = 0
    #: draw only the nodes inside this scope (the drawing a scope's box links to)
    scope: tuple[str, ...] = ()
    #: (compute node key, ``#rrggbb``): fills replacing a compute node's white (an overlay
    #: such as ``:color-by: sqnr``), and the (label, ``#rrggbb``) entries of its legend.
    fills: tuple[tuple[str, str], ...] = ()
    fill_legend: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.rankdir not in RANKDIRS:
            raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {self.rankdir!r}")
        if self.pairs not in PAIR_STYLES:
            raise ValueError(f"pairs must be one of {', '.join(PAIR_STYLES)}, not {self.pairs!r}")
        if self.max_nodes < 0:
            raise ValueError(f"max_nodes must be >= 0, not {self.max_nodes}")
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0, not {self.depth}")
        for _, colour in (*self.fills, *self.fill_legend):
            if not _FILL_COLOUR.fullmatch(colour):
                raise ValueError(f"fill colours are #rrggbb, not {colour!r}")


_FILL_COLOUR = re.compile("#[0-9a-fA-F]{6}")


# -- escaping ----------------------------------------------------------------

_DOT_ESCAPES = {
    ord("\\"): "\\\\",  # also neutralises graphviz escapes: \N \G \l \n …
    ord('"'): '\\"',
    ord("&"): "&amp;",  # graphviz decodes entities such as &lt; in plain labels
    ord("\n"): "\\\\n",  # newlines stay visible text: shown as \n
    ord("\r"): "\\\\r",
    ord("\t"): "\\\\t",
    0x7F: "\\\\x7f",
}
_DOT_ESCAPES.update({c: f"\\\\x{c:02x}" for c in range(0x20) if c not in _DOT_ESCAPES})
#: Lone surrogates, and the two non-characters no XML document (an SVG) may contain.
_SURROGATES = re.compile("[\ud800-\udfff\ufffe\uffff]")
#: In a tooltip graphviz replaces ``\\N``, ``\\G``... *after* reading ``\\\\`` as one
#: backslash: a literal backslash takes four.
_TOOLTIP_ESCAPES = {**_DOT_ESCAPES, ord("\\"): "\\\\\\\\"}
#: A character :func:`escape_dot` or :func:`escape_tooltip` changes: most text has none,
#: and one search costs less than ``translate`` and the surrogate pass.
_NEEDS_ESCAPE = re.compile('[\\\\"&\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]')


def escape_dot(text: str) -> str:
    """Escape any text for the inside of a double-quoted DOT string.

    The result is shown literally by graphviz: quotes and backslashes cannot end
    the string or start an escape (``\\N``, ``\\l`` …), ``&lt;``-style entities are
    not decoded, control characters (newlines included) appear as visible
    ``\\n``-style text, and lone surrogates and U+FFFE / U+FFFF become U+FFFD.
    """
    text = str(text)
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return _SURROGATES.sub("\ufffd", text.translate(_DOT_ESCAPES))


def escape_tooltip(text: str) -> str:
    """:func:`escape_dot` for a ``tooltip``, where graphviz expands ``\\N`` (the node's
    DOT name), ``\\G``... even after an escaped backslash."""
    text = str(text)
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return _SURROGATES.sub("\ufffd", text.translate(_TOOLTIP_ESCAPES))


#: URL characters kept as they are; anything else (quotes, spaces, <, >, backslashes,
#: control and non-ASCII characters) is percent-encoded: graphviz copies a URL into
#: the SVG ``xlink:href`` attribute without escaping its quotes.
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


def escape_url(url: str) -> str:
    """A link target for a DOT ``URL``: percent-encoded where graphviz would not escape it,
    then :func:`escape_dot`-escaped like every other string."""
    encoded = quote(_SURROGATES.sub("\ufffd", url), safe=_URL_SAFE)
    return escape_dot(encoded)


def _clip(text: str, width: int = LABEL_WIDTH) -> str:
    """Cut ``text`` to ``width`` characters with an ellipsis (the tooltip keeps it all)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _clip_name(name: str, width: int = LABEL_WIDTH) -> str:
    """Cut a name in the middle, where ONNX names repeat least (``/b/b.0/Re…_scale``)."""
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head):]


#: graphviz refuses a quoted string of 16 KiB or more (UTF-8 bytes, escapes included):
#: one string of model text stays below this many bytes...
DOT_STRING_BYTES = 8000
#: ...and one line of it below this many characters (5 bytes at most each once escaped).
DOT_LINE_CHARS = 1000


def _quoted(text: str) -> str:
    return _lines([text])


def _lines(lines: Iterable[str], escape: Callable[[str], str] = escape_dot) -> str:
    """Quoted DOT string of several lines of model text (centred lines), cut to fit
    :data:`DOT_STRING_BYTES` (a tooltip listing thousands of consumers, a name of
    100,000 characters)."""
    escaped: list[str] = []
    size = 0
    for line in lines:
        text = escape(_clip(line, DOT_LINE_CHARS))
        size += len(text.encode("utf-8")) + 2
        if size > DOT_STRING_BYTES:
            escaped.append("…")
            break
        escaped.append(text)
    return '"' + "\\n".join(escaped) + '"'


def _url_attribute(name: str, url: str) -> str:
    """``name="url"``, or nothing for a URL too long for graphviz (never cut: a cut
    link would lead somewhere else)."""
    escaped = escape_url(url)
    return f'{name}="{escaped}"' if len(escaped.encode("utf-8")) <= DOT_STRING_BYTES else ""


# -- dtypes ------------------------------------------------------------------

#: One colour per dtype label, in legend order.
DTYPE_COLOURS = {
    "FP32": "#3b6ea5",
    "FP64": "#1b3a5c",
    "FP16": "#1f9aa8",
    "BF16": "#168070",
    "INT8": "#c0392b",
    "UINT8": "#d35400",
    "INT16": "#8e44ad",
    "UINT16": "#a569bd",
    "INT32": "#1e8449",
    "UINT32": "#52be80",
    "INT64": "#6e6e6e",
    "UINT64": "#8c8c8c",
    "INT4": "#c2185b",
    "UINT4": "#e91e63",
    "INT2": "#ad1457",
    "UINT2": "#f06292",
    "FP8E4M3FN": "#9a7d0a",
    "FP8E4M3FNUZ": "#b7950b",
    "FP8E5M2": "#7d6608",
    "FP8E5M2FNUZ": "#a08a1a",
    "FP8E8M0": "#6b5a00",
    "FP4E2M1": "#5d4037",
    "BOOL": "#795548",
    "STRING": "#455a64",
}
_OTHER_COLOUR = "#37474f"
_UNKNOWN_COLOUR = "#000000"


def dtype_colour(label: str) -> str:
    if label == UNKNOWN_LABEL:
        return _UNKNOWN_COLOUR
    return DTYPE_COLOURS.get(label, _OTHER_COLOUR)


# -- numbers -----------------------------------------------------------------


def _param_values_text(param: QuantParam) -> str:
    """Values for a tooltip: all of them up to :data:`TOOLTIP_VALUES`."""
    shown = format_values(param, full=True, limit=TOOLTIP_VALUES)
    if param.values is None:
        return shown
    return f"[{shown}]" if len(param.values) != 1 or param.shape else shown


# -- the drawing plan --------------------------------------------------------


@dataclass
class _Element:
    """One DOT node: an ONNX node, a folded group, a pair, or a graph input/output."""

    id: str
    kind: str  # compute | quantize | dequantize | pair | input | output | boundary
    members: list[str] = field(default_factory=list)  # NodeInfo keys, principal first
    label: list[str] = field(default_factory=list)
    tooltip: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # URL-map keys, best first
    region: int | None = None  # index in QdqModel.regions
    tensor: str = ""  # for inputs, outputs and boundaries: the tensor drawn


@dataclass(frozen=True)
class _Edge:
    tail: str
    head: str
    tensor: str
    pair: str = ""  # key of the QuantizeLinear of a Q→DQ pair drawn on this edge
    full_label: bool = True  # a pair's first edge shows its scale and zero point
    outer: bool = False  # a subgraph reads an outer-scope tensor, or returns a result


@dataclass
class _QdqCounts:
    """How the drawn Q and DQ nodes appear in the drawing."""

    q_alone: int = 0
    dq_alone: int = 0
    q_in_pairs: int = 0
    dq_in_pairs: int = 0
    q_folded: int = 0
    dq_folded_weight: int = 0
    dq_folded_bias: int = 0
    q_in_subgraphs: int = 0
    dq_in_subgraphs: int = 0
    q_entry: int = 0  # entry Q of a QOperator op, drawn on its edge
    dq_exit: int = 0  # exit DQ of a QOperator op, drawn on its edge

    @property
    def quantize(self) -> int:
        return self.q_alone + self.q_in_pairs + self.q_folded + self.q_in_subgraphs \
            + self.q_entry

    @property
    def dequantize(self) -> int:
        return (self.dq_alone + self.dq_in_pairs + self.dq_folded_weight + self.dq_folded_bias
                + self.dq_in_subgraphs + self.dq_exit)


@dataclass
class _Drawing:
    elements: list[_Element]
    edges: list[_Edge]
    counts: _QdqCounts
    onnx_nodes: int  # ONNX nodes drawn (main graph or selection)
    size: int  # DOT nodes of the whole drawing
    over_cap: bool = False  # more than max_nodes: only inputs and outputs were planned
    #: Q→DQ pairs drawn on edges (``pairs="edges"``), by QuantizeLinear key: label,
    #: tooltip and links of the pair, as a pair node would have them (never a DOT node)
    edge_pairs: dict[str, _Element] = field(default_factory=dict)
    #: edge labels as ``xlabel`` (placed after the layout, which they do not slow down:
    #: a ``label`` makes dot double the ranks; collapsed drawings use these)
    external_labels: bool = False
    #: If / Loop / Scan bodies of drawn nodes (every-node drawings only)
    clusters: list[_Cluster] = field(default_factory=list)
    #: a line above the drawing (collapsed drawings: the depth and the grouping used)
    title: str = ""
    #: node key -> (Q, DQ) in the bodies it holds or calls (:attr:`_GraphIndex.subgraph_qdq`)
    nested_qdq: dict[str, tuple[int, int]] = field(default_factory=dict)


class _GraphIndex:
    """Producer / consumer tables of the main graph, built once (linear)."""

    def __init__(self, model: QdqModel, options: DotOptions) -> None:
        self.model = model
        self.main = [n for n in model.nodes if not n.graph]
        selection = options.selection
        if options.scope:
            inside = scope_paths(model).members(options.scope)
            selection = inside if selection is None else selection & inside
        if selection is None:
            self.selected = list(self.main)
        else:
            self.selected = [n for n in self.main if n.key in selection]
        self.selected_keys = {n.key for n in self.selected}
        self.position = {n.key: i for i, n in enumerate(self.main)}
        self.producer: dict[str, NodeInfo] = {}
        self.consumers: dict[str, list[NodeInfo]] = {}
        for node in self.main:
            for tensor in node.outputs:
                if tensor:
                    self.producer.setdefault(tensor, node)
            for tensor in dict.fromkeys(t for t in node.inputs if t):
                self.consumers.setdefault(tensor, []).append(node)
        #: main-graph nodes whose bodies read a tensor of the main graph (If / Loop / Scan
        #: outer-scope reads): never an edge of the main graph, but a selection's boundary
        self.implicit_readers: dict[str, list[NodeInfo]] = {}
        for node in self.main:
            for tensor in node.implicit_inputs:
                self.implicit_readers.setdefault(tensor, []).append(node)
        self.qdq = {q.key: q for q in model.qdq_nodes if not q.graph}
        self.params: dict[str, QuantParam] = {}
        for param in model.params:
            if not param.graph or param.name not in self.params:
                self.params[param.name] = param
        self.graph_inputs = set(model.inputs)
        self.graph_outputs = set(model.outputs)
        self.nodes = {node.key: node for node in model.nodes}
        self.subgraph_qdq = self._subgraph_qdq_counts()

    def _subgraph_qdq_counts(self) -> dict[str, tuple[int, int]]:
        """Main-graph node key -> (Q, DQ) nodes inside its subgraphs (If / Loop bodies)
        or inside the model-local function it calls (charged to the first selected caller,
        beside which the body is drawn: :attr:`function_callers` names the others)."""
        callers = self.function_calls = self._function_callers()
        self.calls_function = {key for keys in callers.values() for key in keys}
        self.function_callers: dict[str, str] = {  # later caller -> first caller
            other: keys[0] for keys in callers.values() for other in keys[1:]}
        counts: dict[str, tuple[int, int]] = {}
        for qdq in self.model.qdq_nodes:
            owner = self._owner(qdq.graph) if qdq.graph else None
            if owner is not None:
                quantize, dequantize = counts.get(owner, (0, 0))
                is_q = qdq.op_type in QUANTIZE_OPS
                counts[owner] = (quantize + is_q, dequantize + (not is_q))
        return counts

    def _owner(self, path: str) -> str | None:
        """The main-graph node holding the body at *path* (a subgraph's
        ``"<holder key>:<attribute>"``, or a function's path: its first caller), through
        any nesting (a Loop in an If branch, an If in a function)."""
        functions = self.model.function_graphs
        for _ in range(len(self.model.subgraphs) + 1):  # each step leaves one body
            if path in functions:
                callers = self.function_calls.get(path)
                holder = self.nodes.get(callers[0]) if callers else None
            else:
                holder = self.nodes.get(path.rpartition(":")[0])
            if holder is None or not holder.graph:
                return holder.key if holder is not None else None
            path = holder.graph
        return None  # a function calling itself

    def _function_callers(self) -> dict[str, list[str]]:
        """``function:<domain>.<name>`` -> keys of the nodes calling it: the selected
        main-graph ones, then those in bodies (the first one draws the body)."""
        paths = set(self.model.function_graphs)
        callers: dict[str, list[str]] = {}
        if not paths:
            return callers
        for node in (*self.selected, *(n for n in self.model.nodes if n.graph)):
            path = f"function:{node.domain}.{node.op_type}" if node.domain \
                else f"function:{node.op_type}"
            if path in paths:
                callers.setdefault(path, []).append(node.key)
        return callers

    def is_quantize(self, node: NodeInfo) -> bool:
        return node.op_type in QUANTIZE_OPS and node.domain in QDQ_DOMAINS

    def is_dequantize(self, node: NodeInfo) -> bool:
        return node.op_type in DEQUANTIZE_OPS and node.domain in QDQ_DOMAINS

    def is_qdq(self, node: NodeInfo) -> bool:
        return self.is_quantize(node) or self.is_dequantize(node)

    def selection_is_partial(self) -> bool:
        return len(self.selected) != len(self.main)

    def sole_consumer(self, tensor: str) -> NodeInfo | None:
        """The one selected consumer of ``tensor`` when it has exactly one and is not an output."""
        users = self.consumers.get(tensor, [])
        if len(users) != 1 or tensor in self.graph_outputs:
            return None
        user = users[0]
        return user if user.key in self.selected_keys else None


_WEIGHT_ROLES = {Role.WEIGHT: "W", Role.WEIGHT_PAIR: "W", Role.BIAS: "B"}


@dataclass
class _Fold:
    """Weight / bias quantization nodes folded into the compute node they feed."""

    slot: str  # "W" | "B"
    chain: tuple[QdqNode, ...]  # (DQ,) or (Q, DQ)


def _find_folds(index: _GraphIndex) -> dict[str, list[_Fold]]:
    """Compute-node key -> weight / bias DQs (and weight Q→DQ pairs) folded into it."""
    folds: dict[str, list[_Fold]] = {}
    for node in index.selected:
        dq = index.qdq.get(node.key)
        if dq is None or not index.is_dequantize(node) or dq.role not in _WEIGHT_ROLES:
            continue
        target = index.sole_consumer(dq.output)
        if target is None or index.is_qdq(target):
            continue
        chain: tuple[QdqNode, ...] = (dq,)
        if dq.role is Role.WEIGHT_PAIR:
            quantizer = _weight_pair_quantizer(index, dq)
            if quantizer is None:
                continue
            chain = (quantizer, dq)
        folds.setdefault(target.key, []).append(_Fold(_WEIGHT_ROLES[dq.role], chain))
    return folds


def _find_chains(index: _GraphIndex) -> dict[str, list[str]]:
    """Op key -> the other nodes of its dynamic-quantization chain (DynamicQuantizeLinear,
    Cast, Mul) drawn inside it in compact mode: the selected members only the chain reads,
    plus the one whose result leaves the chain (the last Mul). A DynamicQuantizeLinear
    shared by several MatMulIntegers stays a node of its own."""
    chains: dict[str, list[str]] = {}
    for op in index.model.quant_ops:
        if op.graph or len(op.members) < 2 or op.node not in index.selected_keys:
            continue
        members = set(op.members)

        def leaves(key: str, members: set[str] = members) -> bool:
            outputs = [t for t in index.model.node(key).outputs if t]
            return any(t in index.graph_outputs for t in outputs) or any(
                user.key not in members for t in outputs for user in index.consumers.get(t, ()))

        selected = [key for key in op.members[1:] if key in index.selected_keys]
        exits = [key for key in selected if leaves(key)]
        if leaves(op.node) or len(exits) > 1 or any(
                index.model.node(key).op_type == "DynamicQuantizeLinear" for key in exits):
            selected = [key for key in selected if key not in exits]
        if selected:
            chains[op.node] = selected
    return chains


def _weight_pair_quantizer(index: _GraphIndex, dq: QdqNode) -> QdqNode | None:
    producer = index.producer.get(dq.input)
    if producer is None or producer.key not in index.selected_keys:
        return None
    quantizer = index.qdq.get(producer.key)
    if quantizer is None or not index.is_quantize(producer):
        return None
    if index.sole_consumer(dq.input) is None:
        return None
    return quantizer


def _find_pairs(index: _GraphIndex, taken: set[str]) -> dict[str, list[QdqNode]]:
    """Q key -> the DQ nodes reading its output directly (compact Q→DQ pair nodes)."""
    pairs: dict[str, list[QdqNode]] = {}
    for node in index.selected:
        quantizer = index.qdq.get(node.key)
        if quantizer is None or node.key in taken or not index.is_quantize(node):
            continue
        partners = []
        for user in index.consumers.get(quantizer.output, []):
            dq = index.qdq.get(user.key)
            if (dq is not None and index.is_dequantize(user) and user.key in index.selected_keys
                    and user.key not in taken and dq.input == quantizer.output):
                partners.append(dq)
        if partners:
            pairs[node.key] = partners
    return pairs


_plans: OrderedDict[tuple[int, DotOptions], tuple[QdqModel, _Drawing]] = OrderedDict()
_plans_lock = threading.Lock()
#: Drawings remembered: a directive asks several questions of one drawing (its size, its
#: boxes, depth estimates, its DOT); the page writer asks none (it fills in links only).
_PLAN_CACHE_SIZE = 16


def _plan(model: QdqModel, options: DotOptions) -> _Drawing:
    """The drawing of *model* with *options*, planned once (plans are never mutated)."""
    key = (id(model), options)
    with _plans_lock:
        known = _plans.get(key)
        if known is not None and known[0] is model:
            _plans.move_to_end(key)
            return known[1]
    drawing = _new_plan(model, options)
    with _plans_lock:
        _plans[key] = (model, drawing)
        while len(_plans) > _PLAN_CACHE_SIZE:
            _plans.popitem(last=False)
    return drawing


def _new_plan(model: QdqModel, options: DotOptions) -> _Drawing:
    """Decide the DOT nodes and edges of a drawing (linear in the graph size). Over
    ``max_nodes``, only the graph inputs and outputs are planned (for the fallback)."""
    if options.depth:
        return _collapsed_plan(model, options)
    index = _GraphIndex(model, options)
    counts = _QdqCounts()
    folds: dict[str, list[_Fold]] = {}
    pairs: dict[str, list[QdqNode]] = {}
    chains: dict[str, list[str]] = {}
    if options.mode == "compact":
        folds = _find_folds(index)
        taken = {q.key for fs in folds.values() for f in fs for q in f.chain}
        chains = _find_chains(index)
        taken.update(key for keys in chains.values() for key in keys)
        pairs = _find_pairs(index, taken)
        taken.update(dq.key for dqs in pairs.values() for dq in dqs)
    else:
        taken = set()
    on_edges = {key: dqs for key, dqs in pairs.items()
                if options.pairs == "edges" and _fits_on_an_edge(index, index.qdq[key], dqs)}
    if options.mode == "compact" and options.pairs == "edges":
        on_edges.update(_entries_and_exits(index, taken))
    taken.update(on_edges)

    elements: list[_Element] = []
    owner: dict[str, _Element] = {}
    tensor_source: dict[str, _Element] = {}
    _add_graph_inputs(index, elements, tensor_source)
    _add_boundary_inputs(index, elements, tensor_source)
    outputs: list[_Element] = []
    sinks = _add_graph_outputs(index, outputs) + _add_boundary_outputs(index, outputs)
    drawn = [node for node in index.selected if node.key not in taken]
    size = len(elements) + len(drawn) + len(outputs)
    if options.max_nodes and size > options.max_nodes:
        return _Drawing(elements + outputs, [], counts, len(index.selected), size, over_cap=True)
    for node in drawn:
        element = _node_element(index, node, folds.get(node.key, ()), pairs.get(node.key), counts)
        element.members += chains.get(node.key, ())
        elements.append(element)
        for key in element.members:
            owner[key] = element
    for key, element in owner.items():
        for tensor in model.node(key).outputs:
            if tensor:
                tensor_source.setdefault(tensor, element)
    edge_pairs, pair_of = _edge_pairs(index, on_edges, tensor_source, counts)
    elements += outputs
    edges = _edges(index, elements, tensor_source, sinks, pair_of)
    _mark_region(index, elements)
    clusters, inner_edges = _subgraph_clusters(index, owner, tensor_source,
                                               options.mode == "compact")
    size += sum(len(c.elements) for c in clusters)  # bodies count against the cap
    if options.max_nodes and size > options.max_nodes:
        kept = [e for e in elements if e.kind in ("input", "output", "boundary")]
        return _Drawing(kept, [], counts, len(index.selected), size, over_cap=True)
    return _Drawing(elements, edges + inner_edges, counts, len(index.selected), size,
                    edge_pairs=edge_pairs, clusters=clusters, nested_qdq=index.subgraph_qdq)


def _fits_on_an_edge(index: _GraphIndex, quantizer: QdqNode, partners: list[QdqNode]) -> bool:
    """A pair can be drawn on an edge when its input comes from a drawn node, a graph
    input or outside the selection, and each of its outputs goes to operators (never
    a Q/DQ node) or out of the graph: there is always an edge to carry it."""
    producer = index.producer.get(quantizer.input)
    if producer is None:
        if quantizer.input not in index.graph_inputs:
            return False  # an initializer or Constant: nothing to draw the edge from
    elif producer.key in index.selected_keys and index.is_qdq(producer):
        return False
    for dq in partners:
        users = index.consumers.get(dq.output, [])
        if not users and dq.output not in index.graph_outputs:
            return False  # read by nothing: no edge would show the pair
        if any(index.is_qdq(user) for user in users):
            return False
    return True


_ENTRY_EXIT = (Role.ENTRY, Role.EXIT)


def _entries_and_exits(index: _GraphIndex, taken: set[str]) -> dict[str, list[QdqNode]]:
    """The entry Q and exit DQ nodes of QOperator ops that can sit on their edge (key ->
    no partners): drawn like a Q→DQ pair on an edge, in the op's group."""
    return {node.key: [] for node in index.selected
            if node.key not in taken and node.key in index.qdq
            and index.qdq[node.key].role in _ENTRY_EXIT
            and _fits_on_an_edge(index, index.qdq[node.key], [index.qdq[node.key]])}


def _edge_pairs(index: _GraphIndex, on_edges: dict[str, list[QdqNode]],
                tensor_source: dict[str, _Element], counts: _QdqCounts
                ) -> tuple[dict[str, _Element], dict[str, str]]:
    """Records of the pairs (and entry / exit nodes) drawn on edges, and {DQ output
    tensor: Q key}; the DQ outputs are drawn from wherever the pair's input comes from."""
    records: dict[str, _Element] = {}
    pair_of: dict[str, str] = {}
    for key, partners in on_edges.items():
        quantizer = index.qdq[key]
        if partners:
            record = _pair_element(index, "", quantizer, partners, counts)
            record.tensor = quantizer.output
        else:  # an entry Q or an exit DQ alone
            record = _entry_exit_element(index, quantizer, counts)
            partners = [quantizer]
        records[key] = record
        source = tensor_source.get(quantizer.input)
        for dq in partners:
            pair_of[dq.output] = key
            if source is not None:
                tensor_source[dq.output] = source
    return records, pair_of


def _entry_exit_element(index: _GraphIndex, qdq: QdqNode, counts: _QdqCounts) -> _Element:
    """The label of an entry Q (``entry Q UINT8`` and its scale and zero point) or an exit
    DQ drawn on the edge between a QOperator op and the float side."""
    quantize = qdq.op_type in QUANTIZE_OPS
    if quantize:
        counts.q_entry += 1
    else:
        counts.dq_exit += 1
    head = f"{qdq.role.value} {'Q' if quantize else 'DQ'} {dtype_label(qdq.quant_dtype)}"
    label = [head, _scale_zp_text(index, qdq)] if qdq.granularity is Granularity.PER_TENSOR \
        else [head, _scale_text(index, qdq), _zero_point_text(index, qdq),
              _granularity_text(qdq)]
    what = "the input quantization of the QOperator op reading it" if quantize else \
        "back to float from the QOperator op writing its input"
    tooltip = [f"{qdq.op_type} {index.model.node(qdq.key).name or qdq.key}: {what}",
               *("  " + line for line in _qdq_tooltip_details(index, qdq))]
    return _Element("", "pair", [qdq.key], label, tooltip,
                    [f"op:{qdq.op_type}", f"node:{qdq.key}"],
                    tensor=qdq.output if quantize else qdq.input)


def _add_graph_inputs(index: _GraphIndex, elements: list[_Element],
                      tensor_source: dict[str, _Element]) -> None:
    for number, name in enumerate(index.model.inputs):
        if index.selection_is_partial() and not any(
                c.key in index.selected_keys for c in (*index.consumers.get(name, []),
                                                      *index.implicit_readers.get(name, []))):
            continue
        element = _Element(f"i{number}", "input", label=[_clip_name(name)],
                           tooltip=["graph input", name, _tensor_text(index, name)], tensor=name)
        elements.append(element)
        tensor_source[name] = element


def _add_graph_outputs(index: _GraphIndex, elements: list[_Element]) -> list[tuple[str, _Element]]:
    sinks = []
    for number, name in enumerate(index.model.outputs):
        producer = index.producer.get(name)
        if index.selection_is_partial() and (producer is None or producer.key not in index.selected_keys):
            continue
        element = _Element(f"o{number}", "output", label=[_clip_name(name)],
                           tooltip=["graph output", name, _tensor_text(index, name)], tensor=name)
        elements.append(element)
        sinks.append((name, element))
    return sinks


def _add_boundary_inputs(index: _GraphIndex, elements: list[_Element],
                         tensor_source: dict[str, _Element]) -> None:
    """Tensors a selection reads from nodes outside it."""
    if not index.selection_is_partial():
        return
    seen: set[str] = set()
    for node in index.selected:
        for tensor in (*node.inputs, *node.implicit_inputs):
            producer = index.producer.get(tensor) if tensor else None
            if producer is None or producer.key in index.selected_keys or tensor in seen:
                continue
            seen.add(tensor)
            element = _Element(f"b{len(seen) - 1}", "boundary", label=["… " + _clip_name(tensor)],
                               tooltip=["from outside the selection", tensor,
                                        _tensor_text(index, tensor)])
            elements.append(element)
            tensor_source[tensor] = element


def _add_boundary_outputs(index: _GraphIndex, elements: list[_Element]) -> list[tuple[str, _Element]]:
    """Tensors of a selection read by nodes outside it."""
    if not index.selection_is_partial():
        return []
    sinks = []
    for node in index.selected:
        for tensor in node.outputs:
            users = [*index.consumers.get(tensor, []), *index.implicit_readers.get(tensor, [])]
            if not tensor or tensor in index.graph_outputs or all(
                    u.key in index.selected_keys for u in users):
                continue
            element = _Element(f"x{len(sinks)}", "boundary", label=[_clip_name(tensor) + " …"],
                               tooltip=["read outside the selection", tensor,
                                        _tensor_text(index, tensor)])
            elements.append(element)
            sinks.append((tensor, element))
    return sinks


def _edges(index: _GraphIndex, elements: list[_Element], tensor_source: dict[str, _Element],
           sinks: list[tuple[str, _Element]], pair_of: Mapping[str, str]) -> list[_Edge]:
    """One edge per (source element, target element, tensor), in element order."""
    edges: list[_Edge] = []
    seen: set[tuple[str, str, str]] = set()
    labelled: set[str] = set()  # pairs whose first edge is drawn

    def connect(tensor: str, head: _Element) -> None:
        tail = tensor_source.get(tensor)
        if tail is None or tail is head:
            return
        key = (tail.id, head.id, tensor)
        if key not in seen:
            seen.add(key)
            pair = pair_of.get(tensor, "")
            edges.append(_Edge(tail.id, head.id, tensor, pair, pair not in labelled))
            labelled.add(pair)

    for element in elements:
        for member in element.members:
            for tensor in index.model.node(member).inputs:
                if tensor:
                    connect(tensor, element)
    for tensor, sink in sinks:
        connect(tensor, sink)
    return edges


def _mark_region(index: _GraphIndex, elements: list[_Element]) -> None:
    """Number each element with the quantized region (of the analysis) it lies in."""
    region_of = {key: number for number, region in enumerate(index.model.regions)
                 if not region.graph for key in region.nodes}
    for element in elements:
        numbers = [region_of[key] for key in element.members if key in region_of]
        element.region = min(numbers) if numbers else None


# -- labels --------------------------------------------------------------------


def _tensor_text(index: _GraphIndex, name: str) -> str:
    info = index.model.tensors.get(name)
    if info is None:
        return dtype_label(None)
    shape = "" if info.shape is None else " [" + ", ".join(
        "?" if d is None else str(d) for d in info.shape) + "]"
    return dtype_label(info.dtype) + shape


def _node_element(index: _GraphIndex, node: NodeInfo, folds: Sequence[_Fold],
                  partners: list[QdqNode] | None, counts: _QdqCounts) -> _Element:
    element_id = f"n{index.position[node.key]}"
    qdq = index.qdq.get(node.key)
    if partners:
        return _pair_element(index, element_id, qdq, partners, counts)  # type: ignore[arg-type]
    if index.is_qdq(node):
        return _qdq_element(index, element_id, node, qdq, counts)
    return _compute_element(index, element_id, node, folds, counts)


def _op_text(node: NodeInfo) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


_KEY_ATTRIBUTES = {
    "kernel_shape": "kernel",
    "strides": "stride",
    "pads": "pad",
    "dilations": "dilation",
    "group": "group",
    "axis": "axis",
    "perm": "perm",
    "to": "to",
}
_INT_LIST = re.compile(r"^\s*[\[(]?\s*-?\d+(\s*,\s*-?\d+)*\s*,?\s*[\])]?\s*$")


def _attribute_text(name: str, value: str) -> str | None:
    """``kernel 3×3``, ``stride 2``; None for attributes at their usual default."""
    short = _KEY_ATTRIBUTES[name]
    if _INT_LIST.match(value):
        numbers = re.findall(r"-?\d+", value)
        if name in ("pads", "dilations", "group") and set(numbers) <= {"0" if name == "pads" else "1"}:
            return None
        if name in ("strides", "dilations", "pads") and len(set(numbers)) == 1:
            return f"{short} {numbers[0]}"
        joiner = "×" if name in ("kernel_shape", "strides", "dilations") else ","
        return f"{short} {joiner.join(numbers)}"
    return f"{short} {value}"


def _key_attributes(index: _GraphIndex, node: NodeInfo) -> str:
    """``kernel 3×3  stride 2  pad 1``: the attributes a reader looks for first."""
    parts = []
    names = {name for name, _ in node.attributes}
    order = list(_KEY_ATTRIBUTES)
    if node.op_type in ("Conv", "ConvTranspose") and "kernel_shape" not in names:
        kernel = _kernel_from_weight(index, node)
        if kernel:
            parts.append(kernel)
    for name, value in sorted((a for a in node.attributes if a[0] in _KEY_ATTRIBUTES),
                              key=lambda attribute: order.index(attribute[0])):
        text = _attribute_text(name, value)
        if text:
            parts.append(text)
    return "  ".join(parts)


def _kernel_from_weight(index: _GraphIndex, node: NodeInfo) -> str | None:
    """``kernel 3×3`` read from the weight's shape when the attribute is left out."""
    info = index.model.tensors.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if info is None or info.shape is None or len(info.shape) < 3:
        return None
    spatial = info.shape[2:]
    if not all(isinstance(d, int) for d in spatial):
        return None
    return "kernel " + "×".join(str(d) for d in spatial)


def _compute_element(index: _GraphIndex, element_id: str, node: NodeInfo,
                     folds: Sequence[_Fold], counts: _QdqCounts) -> _Element:
    label = [_clip(_op_text(node))]
    if node.name:
        label.append(_clip_name(node.name))
    attributes = _key_attributes(index, node)
    if attributes:
        label.append(_clip(attributes, LABEL_WIDTH + 8))
    tooltip = [node.name or "(unnamed node)", f"op: {_op_text(node)}"]
    tooltip += [f"{name} = {value}" for name, value in node.attributes]
    inside = index.subgraph_qdq.get(node.key)
    first_caller = index.function_callers.get(node.key)
    if first_caller is not None:  # the same function body, drawn beside its first caller
        shown = index.subgraph_qdq.get(first_caller, (0, 0))
        name = index.model.node(first_caller).name or first_caller
        label.append(_clip_name(f"same body as {name}"))
        tooltip.append(f"calls the function drawn beside {name} ({shown[0]} QuantizeLinear "
                       f"and {shown[1]} DequantizeLinear nodes, counted there)")
    elif inside:  # drawn in the clusters beside it (_subgraph_clusters), counted here
        what = "the function it calls holds" if node.key in index.calls_function \
            else "subgraphs hold"
        tooltip.append(f"{what} {inside[0]} QuantizeLinear and {inside[1]} "
                       "DequantizeLinear nodes (drawn in the dashed cluster beside it)")
        counts.q_in_subgraphs += inside[0]
        counts.dq_in_subgraphs += inside[1]
    links = [f"node:{node.key}", f"op:{node.op_type}"]
    op = index.model.quant_op(node.key)
    if op is not None and not op.graph:
        label[0] += f" ({op.format.value})"
        label += [_clip(line, LABEL_WIDTH + 8) for line in _operand_lines(index, op)]
        tooltip += [f"{op.format.value} quantized operator", *([op.note] if op.note else [])]
        links[1:1] = [f"node:{o.key}" for o in op.operands]
    members = [node.key]
    slot_order = {tensor: number for number, tensor in enumerate(node.inputs)}
    folds = sorted(folds, key=lambda f: slot_order.get(f.chain[-1].output, len(slot_order)))
    for fold in folds:
        label += _fold_lines(index, fold)
        tooltip += _fold_tooltip(index, fold)
        members += [q.key for q in fold.chain]
        _count_fold(fold, counts)
    return _Element(element_id, "compute", members, label, tooltip, links=links)


_OPERAND_TAGS = {"input": "x", "weight": "W", "bias": "B", "output": "y"}


def _operand_lines(index: _GraphIndex, op: QuantOp) -> list[str]:
    """``W: INT8 s=0.0189 zp=0`` per operand of a QOperator / dynamic / weight-only op;
    ``x: UINT8 s, zp at run time`` for a dynamically quantized input."""
    lines = []
    for operand in op.operands:
        tag = _OPERAND_TAGS.get(operand.role.value, operand.role.value)
        if operand.label[-1:].isdigit():
            tag += operand.label[-1]
        head = f"{tag}: {dtype_label(operand.quant_dtype)}"
        if operand.runtime:
            lines.append(f"{head} s, zp at run time")
            continue
        if operand.scale is None and operand.zero_point is None:
            lines.append(head + (" (s_x·s_w)" if operand.role.value == "bias" else ""))
            continue
        lines += _operand_value_lines(index, operand, head)
    if op.format.value == "dynamic" and len(op.members) > 2:
        lines.append("y: FP32 = acc·s_x·s_w (Cast, Mul)")
    return lines


def _operand_value_lines(index: _GraphIndex, operand: QuantOperand, head: str) -> list[str]:
    """``W: INT8 s=0.0189 zp=0`` on one line when it fits; else the granularity after the
    head and the scale and zero point on lines of their own (``zp=8 (default)`` when the
    op has a default for a zero point the model leaves out)."""
    values = []
    if operand.scale:
        values.append(f"s={format_values(index.params.get(operand.scale))}")
    if operand.zero_point:
        values.append(f"zp={format_values(index.params.get(operand.zero_point))}")
    elif operand.zero_point_default is not None:
        values.append(f"zp={operand.zero_point_default} (default)")
    if operand.granularity is Granularity.BLOCKED:
        head += (f" {operand.bits}-bit" if operand.bits else "") + \
            f" blocks of {operand.block_size}"
    elif operand.granularity is Granularity.PER_AXIS:
        head += f" per-axis {operand.axis}"
    line = " ".join([head, *values])
    return [line] if len(line) <= LABEL_WIDTH + 8 else [head, *(f"  {v}" for v in values)]


def _count_fold(fold: _Fold, counts: _QdqCounts) -> None:
    counts.q_folded += len(fold.chain) - 1
    if fold.slot == "B":
        counts.dq_folded_bias += 1
    else:
        counts.dq_folded_weight += 1


def _fold_lines(index: _GraphIndex, fold: _Fold) -> list[str]:
    """``W: DQ INT8 s=0.00391 zp=0`` — one folded weight or bias (two lines if per-axis)."""
    dq = fold.chain[-1]
    head = f"{fold.slot}: {'Q→DQ' if len(fold.chain) == 2 else 'DQ'} {dtype_label(dq.quant_dtype)}"
    if dq.granularity is Granularity.PER_TENSOR:
        return [f"{head} {_scale_zp_text(index, dq)}"]
    return [f"{head} {dq.granularity.value} {_zero_point_text(index, dq)}", _scale_text(index, dq)]


def _scale_text(index: _GraphIndex, qdq: QdqNode) -> str:
    return f"s={format_values(index.params.get(qdq.scale))}"


def _zero_point_text(index: _GraphIndex, qdq: QdqNode) -> str:
    if not qdq.zero_point:
        return "zp=absent"
    return f"zp={format_values(index.params.get(qdq.zero_point))}"


def _scale_zp_text(index: _GraphIndex, qdq: QdqNode) -> str:
    return f"{_scale_text(index, qdq)} {_zero_point_text(index, qdq)}"


def _fold_tooltip(index: _GraphIndex, fold: _Fold) -> list[str]:
    lines = []
    for qdq in fold.chain:
        lines.append(f"{fold.slot}: {qdq.op_type} {index.model.node(qdq.key).name or qdq.key}")
        lines += ["  " + line for line in _qdq_tooltip_details(index, qdq)]
    return lines


def _qdq_tooltip_details(index: _GraphIndex, qdq: QdqNode) -> list[str]:
    lines = [f"role: {qdq.role.value}", f"input: {qdq.input}", f"output: {qdq.output}",
             f"quantized dtype: {dtype_label(qdq.quant_dtype)}, float dtype: {dtype_label(qdq.float_dtype)}",
             _granularity_text(qdq)]
    for name, what in ((qdq.scale, "scale"), (qdq.zero_point, "zero point")):
        if not name:
            lines.append(f"{what}: absent")
            continue
        param = index.params.get(name)
        values = _param_values_text(param) if param is not None else "unknown"
        lines.append(f"{what} {name} = {values}")
    return lines


def _granularity_text(qdq: QdqNode) -> str:
    text = qdq.granularity.value
    if qdq.axis is not None and qdq.granularity is not Granularity.PER_TENSOR:
        text += f", axis {qdq.axis}"
    if qdq.block_size:
        text += f", block size {qdq.block_size}"
    return text


_ROLE_TAGS = {Role.ACTIVATION: "activation", Role.WEIGHT: "weight", Role.BIAS: "bias",
              Role.WEIGHT_PAIR: "weight", Role.CLIP: "clip", Role.LONE_Q: "lone",
              Role.LONE_DQ: "lone", Role.ENTRY: "entry", Role.EXIT: "exit"}


def _qdq_element(index: _GraphIndex, element_id: str, node: NodeInfo, qdq: QdqNode | None,
                 counts: _QdqCounts) -> _Element:
    quantize = index.is_quantize(node)
    if quantize:
        counts.q_alone += 1
    else:
        counts.dq_alone += 1
    kind = "quantize" if quantize else "dequantize"
    head = _op_text(node)
    label = [head + (f" ({_ROLE_TAGS[qdq.role]})" if qdq is not None else "")]
    if node.name:
        label.append(_clip_name(node.name))
    tooltip = [node.name or "(unnamed node)", f"op: {head}"]
    if qdq is not None:
        label += _param_lines(index, qdq)
        tooltip += _qdq_tooltip_details(index, qdq)
        if qdq.input not in index.producer and qdq.input not in index.graph_inputs:
            label.append(f"in {_clip_name(qdq.input, 24)} {_tensor_text(index, qdq.input)}")
    return _Element(element_id, kind, [node.key], label, tooltip,
                    links=[f"op:{node.op_type}", f"node:{node.key}"])


def _param_lines(index: _GraphIndex, qdq: QdqNode) -> list[str]:
    """Label lines naming the scale and zero point, with their values."""
    scale = format_values(index.params.get(qdq.scale))
    lines = [f"scale {_clip_name(qdq.scale, 32)} = {scale}"]
    if qdq.zero_point:
        zero_point = format_values(index.params.get(qdq.zero_point))
        lines.append(f"zp {_clip_name(qdq.zero_point, 32)} = {zero_point} "
                     f"({dtype_label(qdq.quant_dtype)})")
    else:
        lines.append(f"zp absent ({dtype_label(qdq.quant_dtype)})")
    if qdq.granularity is not Granularity.PER_TENSOR:
        lines.append(_granularity_text(qdq))
    return lines


def _pair_element(index: _GraphIndex, element_id: str, quantizer: QdqNode,
                  partners: list[QdqNode], counts: _QdqCounts) -> _Element:
    counts.q_in_pairs += 1
    counts.dq_in_pairs += len(partners)
    arrow = "Q→DQ" if len(partners) == 1 else f"Q→{len(partners)}×DQ"
    head = f"{arrow} {dtype_label(quantizer.quant_dtype)}"
    if quantizer.role not in (Role.ACTIVATION,):
        head += f" ({_ROLE_TAGS.get(quantizer.role, quantizer.role.value)})"
    if quantizer.granularity is Granularity.PER_TENSOR:
        label = [head, _scale_zp_text(index, quantizer)]
    else:
        label = [head, _scale_text(index, quantizer), _zero_point_text(index, quantizer),
                 _granularity_text(quantizer)]
    tooltip = [f"Q→DQ pair on {quantizer.quantized_tensor or quantizer.input}"]
    for qdq in (quantizer, *partners):
        tooltip.append(f"{qdq.op_type} {index.model.node(qdq.key).name or qdq.key}")
        tooltip += ["  " + line for line in _qdq_tooltip_details(index, qdq)]
    links = ["op:QuantizeLinear", "op:DequantizeLinear", f"node:{quantizer.key}",
             *(f"node:{dq.key}" for dq in partners)]
    return _Element(element_id, "pair", [quantizer.key, *(dq.key for dq in partners)],
                    label, tooltip, links)


# -- DOT text ------------------------------------------------------------------

_REGION_FILL = "#fdf2d0"
_REGION_BORDER = "#d4ac0d"

_STYLES = {
    "compute": 'shape=box, style=filled, fillcolor="#ffffff", color="#4d4d4d", penwidth=1.3',
    "quantize": 'shape=box, style="filled,diagonals", fillcolor="#f8c471", color="#b9770e"',
    "dequantize": 'shape=box, style="filled,rounded", fillcolor="#aed6f1", color="#2e86c1"',
    "pair": ('shape=box, style="rounded,filled", fillcolor="#f8c471:#aed6f1", '
             'gradientangle=0, color="#7d6608", fontsize=8, height=0.25'),
    "input": 'shape=ellipse, style=filled, fillcolor="#d5f5e3", color="#1e8449"',
    "output": 'shape=ellipse, style=filled, fillcolor="#fadbd8", color="#943126"',
    "boundary": 'shape=ellipse, style=dashed, color="#7f8c8d", fontcolor="#566573"',
    "scope": ('shape=box3d, style=filled, fillcolor="#eaf2f8", color="#1b4f72", '
              'fontcolor="#1b2631", penwidth=1.4'),
}


def _header(options: DotOptions) -> list[str]:
    return [
        "digraph qdq {",
        (f'  graph [rankdir={options.rankdir}, fontname="{FONT}", fontsize=10, '
         'nodesep=0.25, ranksep=0.3, newrank=true];'),
        f'  node [fontname="{FONT}", fontsize=9, margin="0.1,0.04", height=0.3, penwidth=1];',
        f'  edge [fontname="{FONT}", fontsize=7, arrowsize=0.6, penwidth=1.1];',
    ]


def _url_for(element: _Element, urls: Mapping[str, str] | LinkSlots | None,
             prefix: str = "") -> str | None:
    """The first URL the map has for the element's link keys (starting with *prefix*);
    with :class:`LinkSlots`, the placeholder of that whole list of keys."""
    if not urls:
        return None
    keys = [key for key in element.links if key.startswith(prefix)]
    if isinstance(urls, LinkSlots):
        return urls.slot(keys)
    for key in keys:
        url = urls.get(key)
        if url:
            return url
    return None


class LinkSlots:
    """A URL map for a drawing whose link targets are known only later (Sphinx resolves
    them when the page is written): :func:`render_dot` writes a placeholder URL for each
    list of link keys (best first) an element offers; :func:`fill_links` puts in the
    final URLs. The drawing is planned and written once."""

    def __init__(self) -> None:
        #: the link keys of each placeholder, best first (placeholder *n* is ``chains[n]``)
        self.chains: list[tuple[str, ...]] = []
        self._numbers: dict[tuple[str, ...], int] = {}

    def __bool__(self) -> bool:
        return True

    def slot(self, keys: Sequence[str]) -> str | None:
        chain = tuple(keys)
        if not chain:
            return None
        number = self._numbers.setdefault(chain, len(self.chains))
        if number == len(self.chains):
            self.chains.append(chain)
        return f"{_SLOT_PREFIX}{number}"

    def link_keys(self) -> list[str]:
        """Every link key of the drawing, sorted (as :func:`link_keys`)."""
        return sorted({key for chain in self.chains for key in chain})


_SLOT_PREFIX = "qdq-link:"
#: A placeholder's link attributes as ``_node_statement``, ``_row_link`` and
#: ``_pair_edge_statement`` write them (quotes in model text are always escaped, so
#: ``URL="`` never comes from a name).
_SLOT_ATTRIBUTES = re.compile(
    r', (URL|labelURL)="' + re.escape(_SLOT_PREFIX) + r'(\d+)"'
    r'(, (?:label)?target="_top"(?:, labeltooltip="(?:[^"\\]|\\.)*")?)')


def fill_links(dot_text: str, chains: Sequence[Sequence[str]], urls: Mapping[str, str]) -> str:
    """DOT of a drawing written with :class:`LinkSlots` (*chains*: its ``chains``) as
    :func:`render_dot` would have written it with *urls*: each placeholder becomes the
    first URL *urls* has for its keys; one with none loses its link attributes."""
    def final(match: re.Match[str]) -> str:
        url = next((urls[key] for key in chains[int(match.group(2))] if urls.get(key)), None)
        attribute = _url_attribute(match.group(1), url) if url is not None else ""
        return f", {attribute}{match.group(3)}" if attribute else ""

    return _SLOT_ATTRIBUTES.sub(final, dot_text)


#: Elements that are Q/DQ nodes: they link to the operator documentation, and the
#: label of the edge leaving them links to their parameter row (``node:`` key).
_QDQ_KINDS = frozenset({"quantize", "dequantize", "pair"})


def _row_link(tail: _Element | None, urls: Mapping[str, str] | None) -> str:
    """Edge attributes linking the edge label to the tail's parameter row, if any."""
    if tail is None or tail.kind not in _QDQ_KINDS:
        return ""
    url = _url_for(tail, urls, prefix="node:")
    link = _url_attribute("labelURL", url) if url is not None else ""
    if not link:
        return ""
    return (f', {link}, labeltarget="_top", '
            f'labeltooltip="{escape_dot("scale and zero point: see the parameter table")}"')


def _node_statement(element: _Element, urls: Mapping[str, str] | None, indent: str,
                    fills: Mapping[str, str] | None = None) -> str:
    style = _STYLES[element.kind]
    fill = fills.get(element.members[0]) if fills and element.kind == "compute" \
        and element.members else None
    if fill is not None:  # checked #rrggbb (DotOptions)
        style = style.replace('fillcolor="#ffffff"', f'fillcolor="{fill}"')
    attributes = [f"label={_lines(element.label)}", style,
                  f"tooltip={_lines(element.tooltip, escape_tooltip)}"]
    url = _url_for(element, urls)
    link = _url_attribute("URL", url) if url is not None else ""
    if link:
        attributes += [link, 'target="_top"']
    return f"{indent}{element.id} [{', '.join(attributes)}];"


def _edge_statement(index_tensors: Mapping, edge: _Edge, link: str = "",
                    label_attribute: str = "label") -> str:
    info = index_tensors.get(edge.tensor)
    label = dtype_label(info.dtype if info is not None else None)
    colour = dtype_colour(label)
    style = ", style=dashed" if label == UNKNOWN_LABEL else ""
    shape = ""
    if info is not None and info.shape is not None:
        shape = " [" + ", ".join("?" if d is None else str(d) for d in info.shape) + "]"
    tooltip = f"{edge.tensor}\n{label}{shape}"
    if edge.outer:
        link += ", style=dashed, arrowhead=empty"
    return (f"  {edge.tail} -> {edge.head} [{label_attribute}={_quoted(label)}, "
            f"color=\"{colour}\", fontcolor=\"{colour}\", "
            f"tooltip={_lines(tooltip.split(chr(10)), escape_tooltip)}"
            f"{style}{link}];")


def _regions(drawing: _Drawing) -> list[list[_Element]]:
    """Elements grouped by quantized region, in region order."""
    groups: dict[int, list[_Element]] = {}
    for element in drawing.elements:
        if element.region is not None:
            groups.setdefault(element.region, []).append(element)
    return [groups[number] for number in sorted(groups)]


def _body(drawing: _Drawing, model: QdqModel, urls: Mapping[str, str] | None,
          fills: Mapping[str, str] | None = None) -> list[str]:
    lines = []
    for number, region in enumerate(_regions(drawing)):
        lines += [f"  subgraph cluster_quantized_{number} {{",
                  (f'    graph [label="quantized region", labeljust=l, fontsize=9, '
                   f'fontcolor="{_REGION_BORDER}", style="rounded,filled", '
                   f'fillcolor="{_REGION_FILL}", color="{_REGION_BORDER}"];')]
        lines += [_node_statement(e, urls, "    ", fills) for e in region]
        lines.append("  }")
    lines += [_node_statement(e, urls, "  ", fills) for e in drawing.elements
              if e.region is None]
    lines += _cluster_lines(drawing, urls)
    by_id = {element.id: element for element in (
        *drawing.elements, *(e for cluster in drawing.clusters for e in cluster.elements))}
    label = "xlabel" if drawing.external_labels else "label"
    lines += [_pair_edge_statement(model.tensors, edge, drawing.edge_pairs[edge.pair], urls,
                                   label)
              if edge.pair else
              _edge_statement(model.tensors, edge, _row_link(by_id.get(edge.tail), urls), label)
              for edge in drawing.edges]
    return lines


def _pair_edge_statement(index_tensors: Mapping, edge: _Edge, pair: _Element,
                         urls: Mapping[str, str] | None, label_attribute: str = "label") -> str:
    """An edge carrying a Q→DQ pair: the quantized dtype's colour, thick, labelled with the
    pair (its first edge in full); the line links to the operator, the label to the row."""
    info = index_tensors.get(pair.tensor)
    colour = dtype_colour(dtype_label(info.dtype if info is not None else None))
    label = pair.label if edge.full_label else pair.label[:1]
    links = ""
    op_url = _url_for(pair, urls, prefix="op:")
    if op_url is not None and _url_attribute("URL", op_url):
        links += f', {_url_attribute("URL", op_url)}, target="_top"'
    row_url = _url_for(pair, urls, prefix="node:")
    if row_url is not None and _url_attribute("labelURL", row_url):
        links += (f', {_url_attribute("labelURL", row_url)}, labeltarget="_top", labeltooltip='
                  f'"{escape_dot("scale and zero point: see the parameter table")}"')
    return (f"  {edge.tail} -> {edge.head} [{label_attribute}={_lines(label)}, "
            f"color=\"{colour}\", fontcolor=\"{colour}\", penwidth=2.2, "
            f"tooltip={_lines(pair.tooltip, escape_tooltip)}{links}];")


def _count_lines(drawing: _Drawing) -> list[str]:
    counts = drawing.counts
    q_parts = [f"{counts.q_in_pairs} in Q→DQ pairs" if counts.q_in_pairs else "",
               f"{counts.q_folded} folded (weights)" if counts.q_folded else "",
               f"{counts.q_alone} drawn alone" if counts.q_alone else "",
               f"{counts.q_in_subgraphs} inside If/Loop/Scan or function bodies" if counts.q_in_subgraphs else "",
               f"{counts.q_entry} entering QOperator ops" if counts.q_entry else ""]
    dq_parts = [f"{counts.dq_in_pairs} in Q→DQ pairs" if counts.dq_in_pairs else "",
                f"{counts.dq_folded_weight} folded (weights)" if counts.dq_folded_weight else "",
                f"{counts.dq_folded_bias} folded (biases)" if counts.dq_folded_bias else "",
                f"{counts.dq_alone} drawn alone" if counts.dq_alone else "",
                f"{counts.dq_in_subgraphs} inside If/Loop/Scan or function bodies" if counts.dq_in_subgraphs else "",
                f"{counts.dq_exit} leaving QOperator ops" if counts.dq_exit else ""]
    lines = [f"QuantizeLinear: {counts.quantize}" + _parts(q_parts),
             f"DequantizeLinear: {counts.dequantize}" + _parts(dq_parts)]
    if counts.quantize + counts.dequantize == 0:
        lines.append("no QDQ nodes: a float model")
    return lines


def _parts(parts: list[str]) -> str:
    shown = [p for p in parts if p]
    return f" ({', '.join(shown)})" if shown else ""


#: Legend items side by side; more go on the next row, so the legend stays narrow.
_LEGEND_ROW = 3


def _legend(drawing: _Drawing, model: QdqModel) -> list[str]:
    """Shapes, dtype colours and the Q/DQ counts of this drawing, under the graph."""
    kinds = {e.kind for e in drawing.elements}
    samples = [("compute", "operator"), ("quantize", "QuantizeLinear"),
               ("dequantize", "DequantizeLinear"), ("pair", "Q→DQ pair"),
               ("input", "graph input"), ("output", "graph output")]
    lines = ["  subgraph cluster_legend {",
             '    graph [label="legend", labeljust=l, fontsize=9, style=rounded, color="#aaaaaa"];']
    shapes = []
    for kind, text in samples:
        if kind in kinds:
            lines.append(f"    legend_{kind} [label={_quoted(text)}, {_STYLES[kind]}];")
            shapes.append(f"legend_{kind}")
    lines.append(f'    legend_region [label="quantized region", shape=box, style="rounded,filled", '
                 f'fillcolor="{_REGION_FILL}", color="{_REGION_BORDER}"];')
    shapes.append("legend_region")
    dtypes = []
    for number, label in enumerate(_legend_dtypes(drawing, model)):
        colour = dtype_colour(label)
        lines.append(f'    legend_dtype_{number} [label={_quoted(label)}, shape=box, style=filled, '
                     f'fillcolor="{colour}", color="{colour}", fontcolor="#ffffff", '
                     'fontsize=8, height=0.2];')
        dtypes.append(f"legend_dtype_{number}")
    counts = "\\l".join(escape_dot(line) for line in _count_lines(drawing)) + "\\l"
    lines.append(f'    legend_counts [label="{counts}", shape=note, fontsize=8];')
    rows = [shapes[i:i + _LEGEND_ROW] for i in range(0, len(shapes), _LEGEND_ROW)]
    rows += [dtypes[i:i + _LEGEND_ROW] for i in range(0, len(dtypes), _LEGEND_ROW)]
    rows.append(["legend_counts"])
    for row in rows:
        lines.append(f"    {{rank=same; {'; '.join(row)}}}")
        lines += [f"    {tail} -> {head} [style=invis];" for tail, head in itertools.pairwise(row)]
    lines += [f"    {upper[0]} -> {lower[0]} [style=invis];"
              for upper, lower in itertools.pairwise(rows)]
    lines.append("  }")
    # below the drawing: after every node of the last rank-ish (the graph outputs)
    lines += [f"  {e.id} -> {rows[0][0]} [style=invis];" for e in drawing.elements
              if e.kind == "output" or (e.kind == "boundary" and e.id.startswith("x"))]
    return lines


def _fill_legend(entries: tuple[tuple[str, str], ...]) -> list[str]:
    """A row of filled boxes explaining the fills of an overlay."""
    frame = ('    graph [label="colours", labeljust=l, fontsize=9, style=rounded, '
             'color="#aaaaaa"];')
    lines = ["  subgraph cluster_fill_legend {", frame]
    names = []
    for number, (label, colour) in enumerate(entries):
        lines.append(f"    fill_legend_{number} [label={_quoted(label)}, shape=box, "
                     f'style=filled, fillcolor="{colour}", fontsize=9];')
        names.append(f"fill_legend_{number}")
    lines.append(f"    {{rank=same; {'; '.join(names)}}}")
    lines.append("  }")
    return lines


def _legend_dtypes(drawing: _Drawing, model: QdqModel) -> list[str]:
    """Dtype labels on the drawn edges, in :data:`DTYPE_COLOURS` order."""
    used = {dtype_label(_tensor_dtype(model, drawing.edge_pairs[e.pair].tensor if e.pair
                                      else e.tensor)) for e in drawing.edges}
    return [label for label in DTYPE_COLOURS if label in used] + sorted(used - set(DTYPE_COLOURS))


def _tensor_dtype(model: QdqModel, tensor: str) -> str | None:
    info = model.tensors.get(tensor)
    return info.dtype if info is not None else None


def _fallback(model: QdqModel, drawing: _Drawing, options: DotOptions) -> str:
    """A small graph in place of one with more than ``max_nodes`` nodes."""
    what = "selection" if options.selection is not None else "model"
    note = [f"This {what} has {drawing.onnx_nodes} ONNX nodes",
            f"({drawing.size} graph nodes in {options.mode} mode),",
            f"more than the limit of {options.max_nodes}.",
            "Select a region with :from: and :to:."]
    return _note_graph(model, drawing, options, note)


def _note_graph(model: QdqModel, drawing: _Drawing, options: DotOptions,
                note: Sequence[str]) -> str:
    """The graph's inputs and outputs around a note (lines of text, escaped here)."""
    lines = _header(options)
    lines.append(f"  note [label={_lines(note)}, shape=note, style=filled, fillcolor=\"#fef9e7\"];")
    for element in drawing.elements:
        if element.kind in ("input", "output"):
            lines.append(_node_statement(element, None, "  "))
            tail, head = (element.id, "note") if element.kind == "input" else ("note", element.id)
            label = dtype_label(_tensor_dtype(model, element.tensor))
            colour = dtype_colour(label)
            lines.append(f"  {tail} -> {head} [label={_quoted(label)}, color=\"{colour}\", "
                         f"fontcolor=\"{colour}\"];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_note(model: QdqModel, options: DotOptions, note: Sequence[str]) -> str:
    """DOT of a note for the reader (*note*: lines of plain text) between the graph
    inputs and outputs of the drawing *options* describe: what a page shows when ``dot``
    failed or ran out of time on the drawing itself."""
    inner = _plan(model, dataclasses.replace(options, depth=0, max_nodes=1))
    return _note_graph(model, inner, options, note)


# -- subgraphs ---------------------------------------------------------------------

_CLUSTER_COLOUR = "#7d3c98"


@dataclass
class _Cluster:
    """An If / Loop / Scan body or a model-local function's body (or one nested in
    either) drawn as a cluster beside the node holding or first calling it."""

    id: str
    label: str
    tooltip: list[str]
    parent: str  # id of the enclosing cluster; "" at the top
    holder: str  # id of the element holding (or calling) the body
    elements: list[_Element] = field(default_factory=list)


def _subgraph_clusters(index: _GraphIndex, owner: Mapping[str, _Element],
                       tensor_source: Mapping[str, _Element], compact: bool
                       ) -> tuple[list[_Cluster], list[_Edge]]:
    """Every body a drawn node holds or calls: its nodes (Q and DQ with their scale, zero
    point and dtypes; Q→DQ pairs as one node in compact mode), the edges inside it,
    dashed edges for the outer-scope tensors it reads (for a function: the caller's
    actual inputs) and for its results going back to the node holding it."""
    if not index.model.subgraphs:
        return [], []
    bodies = _Bodies(index, owner, tensor_source, compact)
    bodies.add_all(list(bodies.members))
    return list(bodies.clusters.values()), bodies.edges


class _Bodies:
    """The clusters of :func:`_subgraph_clusters`, built one body at a time (outer first)."""

    def __init__(self, index: _GraphIndex, owner: Mapping[str, _Element],
                 tensor_source: Mapping[str, _Element], compact: bool) -> None:
        self.index, self.model, self.compact = index, index.model, compact
        self.holders: dict[str, _Element] = dict(owner)  # node key -> element drawing it
        self.members: dict[str, list[NodeInfo]] = {}  # body path -> its nodes
        for node in self.model.nodes:
            if node.graph:
                self.members.setdefault(node.graph, []).append(node)
        #: graph path ("" the main one) -> {tensor seen there: (element drawing its
        #: producer, the tensor's name as the edge shows it)}
        self.scopes: dict[str, dict[str, tuple[_Element, str]]] = {
            "": {tensor: (element, tensor) for tensor, element in tensor_source.items()}}
        self.cluster_of: dict[str, str] = {}  # element id -> id of the cluster holding it
        #: (function path, "input" | "output") -> its formal tensors, in order
        self.formals: dict[tuple[str, str], list[str]] | None = None
        self.clusters: dict[str, _Cluster] = {}
        self.edges: list[_Edge] = []
        self.seen: set[tuple[str, str, str]] = set()
        self.qdq = {q.key: q for q in self.model.qdq_nodes}
        self.number = itertools.count()
        self.spare = _QdqCounts()  # the holder's label already counts them

    def add_all(self, paths: list[str]) -> None:
        """Every body, each after the body holding (or first calling) it: a function
        called from inside another function's body comes after that body."""
        done: set[str] = {""}
        for path in paths:
            stack, on_stack = [path], {path}
            while stack:
                current = stack[-1]
                outer = self._holder_graph(current)
                if current not in done and outer is not None and outer not in done \
                        and outer not in on_stack:  # (a function calling itself: drop it)
                    stack.append(outer)
                    on_stack.add(outer)
                    continue
                stack.pop()
                if current not in done:
                    done.add(current)
                    self.add(current)

    def _holder_key(self, path: str) -> str | None:
        if path in self.model.function_graphs:
            callers = self.index.function_calls.get(path)
            return callers[0] if callers else None
        return path.rpartition(":")[0]

    def _holder_graph(self, path: str) -> str | None:
        """The path of the graph holding the node that holds (or first calls) *path*."""
        holder = self.index.nodes.get(self._holder_key(path) or "")
        return holder.graph if holder is not None else None

    def add(self, path: str) -> None:
        function = path in self.model.function_graphs
        callers = self.index.function_calls.get(path, []) if function else []
        holder_key = self._holder_key(path)
        holder = self.holders.get(holder_key) if holder_key else None
        if holder is None:
            return  # its holder is not drawn (outside the selection, or in a box)
        node = self.model.node(holder_key)  # type: ignore[arg-type]
        cluster = self._cluster(path, node, self.cluster_of.get(holder.id, ""), holder, callers)
        self.clusters[path] = cluster
        members = self.members.get(path, [])
        self._elements(cluster, members)
        outer = self.scopes.get(node.graph, {})
        results = None
        if function:  # a function sees its formal inputs only: the caller's tensors
            inputs, results = self._actual_tensors(path, node)
            outer = {formal: outer[tensor] for formal, tensor in inputs.items()
                     if tensor in outer}
        self._edges(path, members, holder, outer, results)

    def _cluster(self, path: str, node: NodeInfo, parent: str, holder: _Element,
                 callers: list[str]) -> _Cluster:
        name = node.name or node.key
        if callers:
            function = path[len("function:"):]
            others = [self.model.node(key).name or key for key in callers[1:]]
            tooltip = [f"model-local function {function}, called by {name}",
                       *([f"also called by {', '.join(others)} (same body)"] if others else [])]
            return _Cluster(f"cluster_fn_{len(self.clusters)}", _clip(f"function {function}"),
                            tooltip, parent, holder.id)
        attribute = path.rpartition(":")[2]
        return _Cluster(f"cluster_sub_{len(self.clusters)}", _clip(f"{node.op_type} {attribute}"),
                        [f"{attribute} of {name} ({_op_text(node)})"], parent, holder.id)

    def _elements(self, cluster: _Cluster, members: list[NodeInfo]) -> None:
        pairs = self._pairs(members) if self.compact else {}
        paired = {dq.key for partners in pairs.values() for dq in partners}
        index = self.index
        for member in members:
            if member.key in paired:
                continue
            element_id = f"g{next(self.number)}"
            qdq = self.qdq.get(member.key)
            if member.key in pairs:
                element = _pair_element(index, element_id, qdq, pairs[member.key],  # type: ignore[arg-type]
                                        self.spare)
            elif index.is_qdq(member):
                element = _qdq_element(index, element_id, member, qdq, self.spare)
            else:
                element = _compute_element(index, element_id, member, (), self.spare)
            cluster.elements.append(element)
            self.cluster_of[element.id] = cluster.id
            for key in element.members:
                self.holders[key] = element

    def _pairs(self, members: list[NodeInfo]) -> dict[str, list[QdqNode]]:
        """Q key -> the DQ nodes of the same body that alone read its output."""
        readers: dict[str, list[NodeInfo]] = {}
        for member in members:
            for tensor in dict.fromkeys(t for t in member.inputs if t):
                readers.setdefault(tensor, []).append(member)
        pairs: dict[str, list[QdqNode]] = {}
        for member in members:
            quantizer = self.qdq.get(member.key)
            if quantizer is None or not self.index.is_quantize(member):
                continue
            users = readers.get(quantizer.output, [])
            partners = [self.qdq.get(user.key) for user in users]
            if users and all(dq is not None and self.index.is_dequantize(user)
                             and dq.input == quantizer.output
                             for user, dq in zip(users, partners)):
                pairs[member.key] = partners  # type: ignore[assignment]
        return pairs

    def _actual_tensors(self, path: str, caller: NodeInfo
                        ) -> tuple[dict[str, str], dict[str, str]]:
        """A function's formal inputs, and its formal outputs -> the caller's actual ones."""
        if self.formals is None:  # every function's, in one pass over the tensors
            functions = set(self.model.function_graphs)
            self.formals = {}
            for tensor in self.model.tensors.values():
                if tensor.graph in functions and tensor.kind in ("input", "output"):
                    self.formals.setdefault((tensor.graph, tensor.kind), []).append(tensor.name)
        inputs, outputs = (self.formals.get((path, kind), []) for kind in ("input", "output"))
        return ({name: actual for name, actual in zip(inputs, caller.inputs) if actual},
                {name: actual for name, actual in zip(outputs, caller.outputs) if actual})

    def _edges(self, path: str, members: list[NodeInfo], holder: _Element,
               outer: Mapping[str, tuple[_Element, str]], results: Mapping[str, str] | None
               ) -> None:
        """Edges inside the body, from the outer tensors it reads (never a scale or zero
        point: the labels show them) and from its results back to *holder* (a function's
        formal outputs, named as the caller's actual outputs in *results*)."""
        produced = {t: (self.holders[m.key], _scoped_tensor(self.model, path, t))
                    for m in members for t in m.outputs if t}
        self.scopes[path] = {**outer, **produced}
        read: set[str] = set()
        for member in members:
            head = self.holders[member.key]
            for tensor in dict.fromkeys(t for t in member.inputs if t):
                read.add(tensor)
                if tensor in produced:
                    self._edge(produced[tensor][0], head, produced[tensor][1])
                elif tensor in outer and tensor not in self.index.params:
                    self._edge(outer[tensor][0], head, outer[tensor][1], outer=True)
        for tensor, (element, shown) in produced.items():
            if results is not None and tensor in results:
                self._edge(element, holder, results[tensor], outer=True)
            elif results is None and tensor not in read:  # a result of the body
                self._edge(element, holder, shown, outer=True)

    def _edge(self, tail: _Element, head: _Element, tensor: str, outer: bool = False) -> None:
        key = (tail.id, head.id, tensor)
        if tail is not head and key not in self.seen:
            self.seen.add(key)
            self.edges.append(_Edge(tail.id, head.id, tensor, outer=outer))


def _scoped_tensor(model: QdqModel, path: str, tensor: str) -> str:
    """The key of a subgraph tensor in ``model.tensors`` (prefixed when its name clashes)."""
    scoped = f"{path}/{tensor}"
    return scoped if scoped in model.tensors else tensor


def _cluster_lines(drawing: _Drawing, urls: Mapping[str, str] | None) -> list[str]:
    """The subgraph clusters, nested as their holders are."""
    children: dict[str, list[_Cluster]] = {}
    for cluster in drawing.clusters:
        children.setdefault(cluster.parent, []).append(cluster)

    def lines_of(cluster: _Cluster, indent: str) -> list[str]:
        lines = [f"{indent}subgraph {cluster.id} {{",
                 (f"{indent}  graph [label={_quoted(cluster.label)}, "
                  f"tooltip={_lines(cluster.tooltip, escape_tooltip)}, labeljust=l, "
                  f'fontsize=9, style="dashed,rounded", color="{_CLUSTER_COLOUR}", '
                  f'fontcolor="{_CLUSTER_COLOUR}"];')]
        lines += [_node_statement(e, urls, indent + "  ") for e in cluster.elements]
        for child in children.get(cluster.id, []):
            lines += lines_of(child, indent + "  ")
        lines.append(f"{indent}}}")
        return lines

    return [line for cluster in children.get("", []) for line in lines_of(cluster, "  ")]


# -- collapsed scopes ------------------------------------------------------------

#: Op types listed in a box's label before "+N more" (the tooltip lists them all).
_BOX_OPS = 4
#: Scale / zero point lines of boundary pairs in a box's label, per direction.
_BOX_PAIRS = 2


def scope_key(scope: Sequence[str]) -> str:
    """The link key of a scope's box (``scope:features/denseblock1``)."""
    return "scope:" + "/".join(scope)


def _collapsed_plan(model: QdqModel, options: DotOptions) -> _Drawing:
    """The drawing with every scope of ``options.depth`` parts or more collapsed into a box
    (built from the drawing of every node: folds and pairs stay as they are)."""
    inner = _plan(model, dataclasses.replace(options, depth=0, max_nodes=0))
    grouping = scope_paths(model)
    depth = max(options.depth, len(options.scope) + 1)
    box_path: dict[str, tuple[str, ...]] = {}
    groups: dict[tuple[str, ...], list[_Element]] = {}
    for element in inner.elements:
        path = grouping.paths.get(element.members[0], ()) if element.members else ()
        if len(path) >= depth:
            box_path[element.id] = path[:depth]
            groups.setdefault(path[:depth], []).append(element)
    elements: list[_Element] = []
    boxes: dict[tuple[str, ...], _Element] = {}
    moved: dict[str, str] = {}  # element id -> id of the box holding it
    for element in inner.elements:
        path = box_path.get(element.id)
        if path is None or len(groups[path]) == 1:  # no shaded regions: boxes cut across them
            elements.append(dataclasses.replace(element, region=None))
            continue
        box = boxes.get(path)
        if box is None:
            box = boxes[path] = _Element(f"s{len(boxes)}", "scope", links=[scope_key(path)])
            elements.append(box)
        box.members += element.members
        moved[element.id] = box.id
    size = len(elements)
    if options.max_nodes and size > options.max_nodes:
        kept = [e for e in inner.elements if e.kind in ("input", "output")]
        return _Drawing(kept, [], inner.counts, inner.onnx_nodes, size, over_cap=True)
    clusters = _clusters_outside_boxes(inner.clusters, moved)
    size += sum(len(cluster.elements) for cluster in clusters)
    kept = {element.id for element in inner.elements}
    kept.update(element.id for cluster in clusters for element in cluster.elements)
    edges = _box_edges([e for e in inner.edges if e.tail in kept and e.head in kept], moved)
    drawn = [key for record in (*inner.elements, *inner.edge_pairs.values())
             for key in record.members]
    inside: dict[tuple[str, ...], list[str]] = {}
    for key in drawn:  # every node a box holds, the pairs drawn on its edges included
        path = grouping.paths.get(key, ())[:depth]
        if path in boxes:
            inside.setdefault(path, []).append(key)
    for path, box in boxes.items():
        _box_text(model, box, path, inside[path], grouping.spans.get(path[-1]), edges,
                  inner.edge_pairs, inner.nested_qdq)
    where = f"scope {' / '.join(options.scope)}: " if options.scope else ""
    title = (f"{where}scopes {depth} level{'s' if depth > 1 else ''} deep drawn as boxes "
             f"(grouped by {grouping.kind}); click a box for its drawing")
    return _Drawing(elements, edges, inner.counts, inner.onnx_nodes, size,
                    edge_pairs=inner.edge_pairs, external_labels=True, title=title,
                    clusters=clusters)


def _clusters_outside_boxes(clusters: list[_Cluster], moved: Mapping[str, str]
                            ) -> list[_Cluster]:
    """The bodies still drawn once boxes are made: those whose holder is not in a box
    (nor in a body whose holder is); the others are counted in their box's label."""
    kept: list[_Cluster] = []
    ids: set[str] = set()
    for cluster in clusters:  # outer bodies come first
        if cluster.holder not in moved and (not cluster.parent or cluster.parent in ids):
            kept.append(cluster)
            ids.add(cluster.id)
    return kept


def _box_edges(edges: list[_Edge], moved: Mapping[str, str]) -> list[_Edge]:
    """The edges between drawn elements once boxes replace what they hold (one per tail,
    head and tensor; edges inside a box disappear)."""
    result: list[_Edge] = []
    seen: set[tuple[str, str, str]] = set()
    labelled: set[str] = set()
    for edge in edges:
        tail, head = moved.get(edge.tail, edge.tail), moved.get(edge.head, edge.head)
        if tail == head or (tail, head, edge.tensor) in seen:
            continue
        seen.add((tail, head, edge.tensor))
        result.append(_Edge(tail, head, edge.tensor, edge.pair, edge.pair not in labelled))
        labelled.add(edge.pair)
    return result


def _box_text(model: QdqModel, box: _Element, path: tuple[str, ...], keys: list[str],
              span: str | None, edges: list[_Edge], edge_pairs: Mapping[str, _Element],
              nested: Mapping[str, tuple[int, int]]) -> None:
    """Label and tooltip of a box: its scope, op counts, Q / DQ counts (those in the bodies
    its nodes hold or call included), the dtypes that enter and leave it, the scale /
    zero point of the pairs on its boundary edges."""
    ops: dict[str, int] = {}
    quantize = dequantize = 0
    for key in keys:
        node = model.node(key)
        if node.op_type in QUANTIZE_OPS and node.domain in QDQ_DOMAINS:
            quantize += 1
        elif node.op_type in DEQUANTIZE_OPS and node.domain in QDQ_DOMAINS:
            dequantize += 1
        else:
            ops[_op_text(node)] = ops.get(_op_text(node), 0) + 1
    ranked = sorted(ops.items(), key=lambda item: (-item[1], item[0]))
    op_parts = [f"{count} {op}" for op, count in ranked]
    shown = op_parts[:_BOX_OPS] + ([f"+{len(op_parts) - _BOX_OPS} more"]
                                   if len(op_parts) > _BOX_OPS else [])
    entering = [edge for edge in edges if edge.head == box.id]
    leaving = [edge for edge in edges if edge.tail == box.id]
    dtypes_in = _edge_dtypes(model, entering, edge_pairs)
    dtypes_out = _edge_dtypes(model, leaving, edge_pairs)
    qdq_line, qdq_tooltip = _box_qdq_text(quantize, dequantize, keys, nested)
    label = [_clip_name(path[-1]), *_wrap(shown), qdq_line,
             f"in {dtypes_in or '-'} → out {dtypes_out or '-'}"]
    pairs_in = _boundary_pairs(entering, edge_pairs)
    pairs_out = _boundary_pairs(leaving, edge_pairs)
    label += [f"in {text}" for text in pairs_in[:_BOX_PAIRS]]
    label += [f"out {text}" for text in pairs_out[:_BOX_PAIRS]]
    hidden = max(0, len(pairs_in) - _BOX_PAIRS) + max(0, len(pairs_out) - _BOX_PAIRS)
    if hidden:
        label.append(f"+{hidden} boundary pairs (tooltip)")
    box.label = label
    box.tooltip = ["scope " + " / ".join(path), *([span] if span else []),
                   f"{len(keys)} ONNX nodes: " + ", ".join(op_parts),
                   qdq_tooltip,
                   f"enters: {dtypes_in or 'nothing'}; leaves: {dtypes_out or 'nothing'}",
                   *(f"entering pair {text}" for text in pairs_in),
                   *(f"leaving pair {text}" for text in pairs_out),
                   "click (when it links): this scope drawn expanded"]


def _box_qdq_text(quantize: int, dequantize: int, keys: list[str],
                  nested: Mapping[str, tuple[int, int]]) -> tuple[str, str]:
    """A box's Q / DQ counts (label line, tooltip line), with those of the If / Loop / Scan
    bodies and called functions of its nodes (drawn in its expanded drawing)."""
    in_q = sum(nested.get(key, (0, 0))[0] for key in keys)
    in_dq = sum(nested.get(key, (0, 0))[1] for key in keys)
    label = f"Q {quantize + in_q} · DQ {dequantize + in_dq}"
    tooltip = f"{quantize + in_q} QuantizeLinear, {dequantize + in_dq} DequantizeLinear inside"
    if in_q or in_dq:
        label += f" ({in_q} Q + {in_dq} DQ in bodies)"
        tooltip += (f" ({in_q} and {in_dq} of them in the subgraph bodies or functions its "
                    "nodes hold or call, drawn in its expanded drawing)")
    return label, tooltip


def _wrap(parts: list[str], width: int = LABEL_WIDTH) -> list[str]:
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return lines


def _edge_dtypes(model: QdqModel, edges: list[_Edge], edge_pairs: Mapping[str, _Element]) -> str:
    """Dtype labels on *edges* (a pair's quantized dtype for an edge carrying a pair)."""
    labels = dict.fromkeys(
        dtype_label(_tensor_dtype(model, edge_pairs[edge.pair].tensor if edge.pair
                                  else edge.tensor)) for edge in edges)
    return ", ".join(labels)


def _boundary_pairs(edges: list[_Edge], edge_pairs: Mapping[str, _Element]) -> list[str]:
    """``UINT8 s=0.0123 zp=128`` for each Q→DQ pair on *edges*, once each."""
    texts = []
    for pair in dict.fromkeys(edge.pair for edge in edges if edge.pair):
        label = edge_pairs[pair].label
        dtype = label[0].rsplit(" ", 1)[-1]
        texts.append(" ".join([dtype, *label[1:2]]))
    return texts


def drawing_scopes(model: QdqModel, options: DotOptions) -> list[tuple[str, ...]]:
    """The scopes drawn as boxes, in drawing order (each links to :func:`scope_key`)."""
    drawing = _plan(model, options)
    return [tuple(element.links[0][len("scope:"):].split("/"))
            for element in drawing.elements if element.kind == "scope"]


def drawing_graph(model: QdqModel, options: DotOptions = DotOptions()
                  ) -> tuple[int, list[tuple[int, int]]]:
    """The graph ``dot`` will lay out: (node count, edges as index pairs), legend excluded."""
    drawing = _plan(model, options)
    drawn = [*drawing.elements, *(e for cluster in drawing.clusters for e in cluster.elements)]
    number = {element.id: position for position, element in enumerate(drawn)}
    return len(drawn), [(number[edge.tail], number[edge.head])
                                   for edge in drawing.edges
                                   if edge.tail in number and edge.head in number]


# -- public API ------------------------------------------------------------------


def render_dot(model: QdqModel, options: DotOptions = DotOptions(),
               urls: Mapping[str, str] | LinkSlots | None = None) -> str:
    """DOT text of ``model``; ``urls`` maps :func:`link_keys` keys to link targets (or
    is a :class:`LinkSlots`, the targets given later to :func:`fill_links`)."""
    drawing = _plan(model, options)
    if drawing.over_cap:
        return _fallback(model, drawing, options)
    lines = _header(options)
    if drawing.title:
        lines.append(f'  graph [label={_quoted(drawing.title)}, labelloc=t, labeljust=l, '
                     'fontsize=9, fontcolor="#1b4f72", ranksep=0.5];  # room for xlabels')
    lines += _body(drawing, model, urls, dict(options.fills))
    if options.legend:
        lines += _legend(drawing, model)
    if options.fill_legend:
        lines += _fill_legend(options.fill_legend)
    lines.append("}")
    return "\n".join(lines) + "\n"


def link_keys(model: QdqModel, options: DotOptions = DotOptions()) -> list[str]:
    """Sorted URL-map keys (``op:…``, ``node:…``) the drawing would use if given."""
    drawing = _plan(model, options)
    if drawing.over_cap:
        return []
    records = [*drawing.elements, *drawing.edge_pairs.values(),
               *(element for cluster in drawing.clusters for element in cluster.elements)]
    return sorted({key for record in records for key in record.links})


def graph_node_count(model: QdqModel, options: DotOptions = DotOptions()) -> int:
    """DOT nodes of the drawing (inputs and outputs included, legend excluded)."""
    return _plan(model, options).size


def qdq_counts(model: QdqModel, options: DotOptions = DotOptions()) -> dict[str, int]:
    """How the drawn Q / DQ nodes are shown: alone, in pairs, or folded."""
    counts = _plan(model, dataclasses.replace(options, max_nodes=0)).counts
    return {name: getattr(counts, name) for name in (
        "q_alone", "dq_alone", "q_in_pairs", "dq_in_pairs", "q_folded",
        "dq_folded_weight", "dq_folded_bias", "q_in_subgraphs", "dq_in_subgraphs",
        "q_entry", "dq_exit")}
