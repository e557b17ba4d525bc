"""How long ``dot`` will take to lay out a drawing, estimated from the graph itself.

Pure: no Sphinx, no graphviz run. Node count alone does not predict ``dot``'s time (a
2,000-node chain lays out in a second, a 1,300-node DenseNet not in two minutes): what
costs is the crossing minimisation over ranks that many long edges cross. The estimate
layers the graph as ``dot`` does (longest path), counts the edges crossing every gap
between two ranks (an edge spanning *k* ranks becomes *k* - 1 virtual nodes; a ``label``
on an edge doubles the ranks, an ``xlabel`` does not) and combines

``work = Σ over gaps of (edges crossing the gap)²``  (the pairs crossing minimisation
compares) and ``size = nodes + virtual nodes`` (network simplex, run twice, grows about
with its square) as

``seconds = A · size² + B · work + C · size + D``

with *A* ... *D* fitted (least relative error) on ``dot``'s CPU time for the generated
models of ``tests/model_zoo.py`` at every depth (``benchmarks/large.py calibrate``; the
rows are in ``benchmarks/large-results.json``, the summary in ``benchmarks/RESULTS.md``).
The estimate is CPU seconds of this machine class; on a busy machine the wall time is
longer. It is meant to be right within a factor of two or three, which is what choosing
a depth needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Default of ``qdq_layout_budget``: seconds of estimated ``dot`` time per drawing.
DEFAULT_LAYOUT_BUDGET = 5.0  # here, not in .depth: Sphinx's setup reads it (no numpy)

#: Seconds per (node, virtual nodes included)² (calibrated, see the module docstring).
SECONDS_PER_SQUARED_NODE = 3.8e-8
#: Seconds per unit of crossing work.
SECONDS_PER_WORK = 4.8e-6
#: Seconds per node, virtual nodes included.
SECONDS_PER_NODE = 1.3e-4
#: Seconds of any dot run (start, parse, write).
SECONDS_PER_RUN = 0.02


@dataclass(frozen=True)
class LayoutShape:
    """What drives ``dot``'s time for one drawing."""

    nodes: int
    edges: int
    ranks: int
    virtual_nodes: int
    #: Σ over the gaps between ranks of (edges crossing the gap)²
    crossing_work: int
    widest_gap: int

    @property
    def seconds(self) -> float:
        """The estimated ``dot`` time on this machine class (2 cores, shared)."""
        size = self.nodes + self.virtual_nodes
        return (SECONDS_PER_SQUARED_NODE * size * size + SECONDS_PER_WORK * self.crossing_work
                + SECONDS_PER_NODE * size + SECONDS_PER_RUN)


def layout_shape(nodes: int, edges: Sequence[tuple[int, int]], *,
                 labelled: bool = True) -> LayoutShape:
    """Layer the graph (*nodes* numbered 0..n-1, *edges* as (tail, head)) by longest path
    and measure it. ``labelled``: the edges carry ``label`` (dot doubles the ranks)."""
    rank = _longest_path_ranks(nodes, edges)
    stretch = 2 if labelled else 1
    ranks = (max(rank, default=0) + 1) * stretch
    through = [0] * (ranks + 1)
    virtual = 0
    for tail, head in edges:
        low, high = sorted((rank[tail] * stretch, rank[head] * stretch))
        if high == low:
            continue
        virtual += high - low - 1
        through[low] += 1
        through[high] -= 1
    work = widest = running = 0
    for delta in through:
        running += delta
        work += running * running
        widest = max(widest, running)
    return LayoutShape(nodes, len(edges), ranks, virtual, work, widest)


def _longest_path_ranks(nodes: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Rank of each node: the longest path reaching it (Kahn's order; nodes on a cycle,
    which a drawing of an ONNX graph never has, keep the rank reached so far)."""
    successors: list[list[int]] = [[] for _ in range(nodes)]
    waiting = [0] * nodes
    for tail, head in edges:
        if tail != head:
            successors[tail].append(head)
            waiting[head] += 1
    rank = [0] * nodes
    ready = [node for node in range(nodes) if waiting[node] == 0]
    while ready:
        node = ready.pop()
        for successor in successors[node]:
            rank[successor] = max(rank[successor], rank[node] + 1)
            waiting[successor] -= 1
            if waiting[successor] == 0:
                ready.append(successor)
    return rank
