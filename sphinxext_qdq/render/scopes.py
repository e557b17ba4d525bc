"""Group the nodes of a model's main graph into a hierarchy a reader can follow.

Pure: reads the analysis records only. Two groupings:

``name scopes``
    the ``/``-separated scopes that torch.onnx, tf2onnx and paddle2onnx write
    (``/layer1/layer1.0/conv1/Conv`` lies in ``layer1`` > ``layer1.0`` > ``conv1``).
    QuantizeLinear / DequantizeLinear nodes whose names carry no scope (ONNX Runtime
    names a weight's DQ ``layer1.0.conv1.weight_DequantizeLinear``) join the scope of the
    node they quantize: a weight or bias DQ its consumer's, an activation Q its input's
    producer's, a DQ its Q's. A first scope every scoped node shares (``/model/…``) is
    dropped: it would be one box holding everything.
``topological chunks``
    when fewer than half the compute nodes carry a scope: the topological order cut into
    about :data:`CHUNKS` pieces per level, each cut at the gap (near the ideal place) that
    the fewest tensors cross (one tensor whenever the graph has such a cut there); pieces
    of more than :data:`LEAF_SIZE` nodes are cut again, one level down.

:func:`scope_paths` gives every main-graph node key its path (a tuple of scope names,
``()`` for a node at the top). A drawing at depth *N* collapses every node whose path has
at least *N* parts into the box of its first *N* parts.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

from sphinxext_qdq.analysis.records import (
    DEQUANTIZE_OPS,
    QUANTIZE_OPS,
    NodeInfo,
    QdqModel,
)

#: Pieces per level of the topological-chunk grouping.
CHUNKS = 16
#: A piece of at most this many nodes is not cut further.
LEAF_SIZE = 12

SCOPES = "name scopes"
CHUNKED = "topological chunks"


@dataclass(frozen=True)
class Grouping:
    """The scope path of every main-graph node, and how it was found."""

    kind: str  # SCOPES | CHUNKED
    paths: dict[str, tuple[str, ...]]
    #: The deepest path length (0: nothing to group, the drawing is the graph).
    levels: int
    #: Chunk name -> "first node … last node" (topological chunks only), for tooltips.
    spans: dict[str, str]

    def members(self, scope: tuple[str, ...]) -> frozenset[str]:
        """Keys of the nodes inside *scope* (its sub-scopes included)."""
        size = len(scope)
        return frozenset(key for key, path in self.paths.items() if path[:size] == scope)

    def scopes_at(self, depth: int, within: tuple[str, ...] = ()) -> Counter[tuple[str, ...]]:
        """Boxes at *depth* (inside *within*) -> how many nodes each collapses."""
        size = len(within)
        return Counter(path[:depth] for path in self.paths.values()
                       if len(path) >= depth and path[:size] == within)


_cache: OrderedDict[int, tuple[QdqModel, Grouping]] = OrderedDict()
_lock = threading.Lock()
_CACHE_SIZE = 8


def scope_paths(model: QdqModel) -> Grouping:
    """The grouping of *model*'s main graph (computed once per analysis)."""
    with _lock:
        known = _cache.get(id(model))
    if known is not None and known[0] is model:
        return known[1]
    grouping = _group(model)
    with _lock:
        _cache[id(model)] = (model, grouping)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return grouping


def _group(model: QdqModel) -> Grouping:
    main = [node for node in model.nodes if not node.graph]
    named = {node.key: name_scope(node.name) for node in main}
    compute = [node for node in main if not _is_qdq(node)]
    scoped = sum(1 for node in compute if named[node.key])
    if compute and scoped * 2 >= len(compute):
        paths = _attach_qdq(main, named)
        paths = _drop_shared_root(paths)
        return Grouping(SCOPES, paths, max((len(p) for p in paths.values()), default=0), {})
    paths, spans = _chunks(main)
    return Grouping(CHUNKED, paths, max((len(p) for p in paths.values()), default=0), spans)


def name_scope(name: str) -> tuple[str, ...]:
    """``/layer1/layer1.0/conv1/Conv`` -> ``("layer1", "layer1.0", "conv1")``."""
    parts = [part for part in name.split("/") if part]
    return tuple(parts[:-1])


def _is_qdq(node: NodeInfo) -> bool:
    return node.op_type in QUANTIZE_OPS or node.op_type in DEQUANTIZE_OPS


def _attach_qdq(main: list[NodeInfo], named: dict[str, tuple[str, ...]]
                ) -> dict[str, tuple[str, ...]]:
    """Unscoped Q/DQ nodes take the scope of the node they quantize."""
    producer: dict[str, NodeInfo] = {}
    consumers: dict[str, list[NodeInfo]] = {}
    for node in main:
        for tensor in node.outputs:
            producer.setdefault(tensor, node)
        for tensor in node.inputs:
            consumers.setdefault(tensor, []).append(node)
    paths = dict(named)
    pending = [node for node in main if _is_qdq(node) and not named[node.key]]
    for _ in range(3):  # Q -> DQ -> consumer chains settle in a few passes
        still = []
        for node in pending:
            source = producer.get(node.inputs[0]) if node.inputs else None
            if source is not None and paths[source.key]:
                paths[node.key] = paths[source.key]
                continue
            users = [user for output in node.outputs for user in consumers.get(output, [])]
            scoped_users = [paths[user.key] for user in users if paths[user.key]]
            if scoped_users:
                paths[node.key] = min(scoped_users, key=len)
            else:
                still.append(node)
        pending = still
    return paths


def _drop_shared_root(paths: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    while True:
        firsts = {path[0] for path in paths.values() if path}
        if len(firsts) != 1 or any(len(path) == 1 for path in paths.values()):
            return paths
        paths = {key: path[1:] for key, path in paths.items()}


# -- topological chunks -------------------------------------------------------------------
def _chunks(main: list[NodeInfo]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Chunks of the topological order, cut where the fewest tensors cross."""
    produced = {tensor for node in main for tensor in node.outputs}
    # Nodes reading only constants (weight / bias DQs, Constant) go with their first reader.
    constant = {node.key for node in main if not any(t in produced for t in node.inputs if t)}
    flow = [node for node in main if node.key not in constant]
    position = {node.key: number for number, node in enumerate(flow)}
    crossing = _crossings(flow, position)
    paths: dict[str, tuple[str, ...]] = {}
    spans: dict[str, str] = {}
    _cut(flow, 0, len(flow), (), crossing, paths, spans)
    first_reader: dict[str, str] = {}
    for node in main:
        for tensor in node.inputs:
            first_reader.setdefault(tensor, node.key)
    by_key = {node.key: node for node in main}
    for node in main:
        if node.key not in constant:
            continue
        reader: str | None = node.key
        for _ in range(4):  # Constant -> DQ -> reader: follow a few constant steps
            reader = next((first_reader[t] for t in by_key[reader].outputs
                           if t in first_reader), None)
            if reader is None or reader not in constant:
                break
        paths[node.key] = paths.get(reader, ()) if reader else ()
    return paths, spans


def _crossings(flow: list[NodeInfo], position: dict[str, int]) -> list[int]:
    """``crossing[g]``: tensors produced before position *g* and read at or after it."""
    producer_at: dict[str, int] = {}
    last_use: dict[str, int] = {}
    for number, node in enumerate(flow):
        for tensor in node.outputs:
            producer_at.setdefault(tensor, number)
        for tensor in node.inputs:
            if tensor in producer_at:
                last_use[tensor] = number
    delta = [0] * (len(flow) + 1)
    for tensor, end in last_use.items():
        start = producer_at[tensor] + 1
        if start <= end:
            delta[start] += 1
            delta[end + 1] -= 1
    crossing, running = [], 0
    for value in delta:
        running += value
        crossing.append(running)
    return crossing


def _cut(flow: list[NodeInfo], start: int, end: int, prefix: tuple[str, ...],
         crossing: list[int], paths: dict[str, tuple[str, ...]], spans: dict[str, str]) -> None:
    size = end - start
    if size <= LEAF_SIZE:
        for node in flow[start:end]:
            paths[node.key] = prefix
        return
    target = max(LEAF_SIZE // 2, -(-size // CHUNKS))
    bounds = [start]
    while end - bounds[-1] > target * 3 // 2:
        low = bounds[-1] + max(1, target // 2)
        high = min(end - 1, bounds[-1] + target * 3 // 2)
        ideal = bounds[-1] + target
        best = min(range(low, high + 1), key=lambda gap: (crossing[gap], abs(gap - ideal)))
        bounds.append(best)
    bounds.append(end)
    if len(bounds) == 2:  # one piece: nothing to cut at this level
        for node in flow[start:end]:
            paths[node.key] = prefix
        return
    for number, (lo, hi) in enumerate(itertools.pairwise(bounds), start=1):
        name = f"{prefix[-1]}.{number}" if prefix else f"part {number}"
        first, last = flow[lo], flow[hi - 1]
        spans[name] = f"{first.name or first.key} … {last.name or last.key}"
        _cut(flow, lo, hi, (*prefix, name), crossing, paths, spans)
