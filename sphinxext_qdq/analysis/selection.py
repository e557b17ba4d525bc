"""Regions of a graph chosen by the reader (``:from:`` / ``:to:``)."""

from __future__ import annotations

from sphinxext_qdq.analysis.model import QdqModel, Role
from sphinxext_qdq.analysis.patterns import nodes_between


def select_region(model: QdqModel, sources: list[str], targets: list[str]) -> frozenset[str]:
    """Keys of the nodes on paths between *sources* and *targets*, plus the weight and
    bias dequantizers (and the quantizers of float weights) of every quantized-op group
    in it: a region drawn in full shows the constants its kernels use."""
    keys = nodes_between(model, sources, targets)
    constants = set()
    for key in keys:
        group = model.group_of(key)
        if group is None:
            continue
        for dq in (group.weight_dq, group.bias_dq):
            if dq is None:
                continue
            constants.add(dq)
            partner = model.qdq(dq).partner
            if partner and model.qdq(dq).role is Role.WEIGHT_PAIR:
                constants.add(partner)
    return keys | constants
