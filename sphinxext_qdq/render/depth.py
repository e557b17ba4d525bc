"""``depth: auto``: the deepest drawing of a model whose estimated layout cost fits a budget.

Pure: plans drawings (:mod:`sphinxext_qdq.render.dot`), groups nodes
(:mod:`.scopes`) and estimates ``dot``'s time (:mod:`.cost`); no graphviz run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sphinxext_qdq.analysis.records import QdqModel
from sphinxext_qdq.render.cost import DEFAULT_LAYOUT_BUDGET, layout_shape
from sphinxext_qdq.render.dot import DotOptions, drawing_graph
from sphinxext_qdq.render.scopes import scope_paths

__all__ = ["DEFAULT_LAYOUT_BUDGET", "MAX_BOXES", "DepthChoice", "choose_depth", "estimate"]

#: At most this many nodes (boxes included) in a drawing chosen by ``auto``.
MAX_BOXES = 300


@dataclass(frozen=True)
class DepthChoice:
    """The depth ``auto`` chose (0: every node drawn) and why."""

    depth: int
    estimate: float  # seconds
    drawn: int  # DOT nodes of the chosen drawing
    fits: bool  # within the budget and MAX_BOXES
    grouping: str  # "name scopes" | "topological chunks"
    #: (depth, estimated seconds, DOT nodes) of every drawing considered, in order
    tried: tuple[tuple[int, float, int], ...]


def estimate(model: QdqModel, options: DotOptions) -> tuple[float, int]:
    """(estimated dot seconds, DOT nodes) of the drawing *options* describe."""
    count, edges = drawing_graph(model, dataclasses.replace(options, max_nodes=0))
    return layout_shape(count, edges, labelled=options.depth == 0).seconds, count


def choose_depth(model: QdqModel, options: DotOptions, budget: float,
                 max_boxes: int = MAX_BOXES) -> DepthChoice:
    """Every node when that fits, else the deepest depth that fits *budget* seconds and
    *max_boxes* nodes, else the smallest drawing (the dot timeout still guards it)."""
    grouping = scope_paths(model)
    first = len(options.scope) + 1
    tried: list[tuple[int, float, int]] = []
    for depth in (0, *range(grouping.levels, first - 1, -1)):
        seconds, drawn = estimate(model, dataclasses.replace(options, depth=depth))
        tried.append((depth, seconds, drawn))
        if seconds <= budget and drawn <= max_boxes:
            return DepthChoice(depth, seconds, drawn, True, grouping.kind, tuple(tried))
    depth, seconds, drawn = min(tried, key=lambda row: (row[1] > budget, row[2]))
    return DepthChoice(depth, seconds, drawn, False, grouping.kind, tuple(tried))
