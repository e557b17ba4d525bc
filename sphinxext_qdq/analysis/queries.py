"""Questions asked of a finished analysis: counts, a one-sentence description, regions.

Everything here reads the frozen :class:`~sphinxext_qdq.analysis.records.QdqModel` and
returns plain values; nothing parses or changes a model.
"""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path

from sphinxext_qdq.analysis.records import (
    DEQUANTIZE_OPS,
    QDQ_DOMAINS,
    QUANTIZE_OPS,
    ModelSummary,
    QdqModel,
    QuantFormat,
    Role,
)


class QdqSelectionError(ValueError):
    """A ``:from:``/``:to:`` name that is no node key, node name or tensor name."""

    def __init__(self, name: str, close_matches: list[str] | tuple[str, ...]) -> None:
        self.name = name
        self.close_matches = tuple(close_matches)
        hint = f"; did you mean {', '.join(repr(m) for m in self.close_matches)}?" \
            if self.close_matches else ""
        super().__init__(f"no node or tensor named {name!r} in the model{hint}")


def summarize(model: QdqModel) -> ModelSummary:
    """Counts of nodes, Q/DQ roles, tensor dtypes and groups of *model*."""
    return ModelSummary(
        name=model.graph_name or Path(model.path).stem,
        producer=model.producer,
        opset=model.opset,
        opsets=model.opsets,
        node_count=len(model.nodes),
        nodes_by_op=_ranked(n.op_type for n in model.nodes),
        qdq_by_role=_ranked(q.role.value for q in model.qdq_nodes),
        tensors_by_dtype=_ranked(t.dtype or "unknown" for t in model.tensors.values()),
        groups_by_op=_ranked(g.op_type for g in model.groups),
        quantize_count=sum(q.op_type in QUANTIZE_OPS for q in model.qdq_nodes),
        dequantize_count=sum(q.op_type in DEQUANTIZE_OPS for q in model.qdq_nodes),
        param_count=len(model.params),
        param_bytes=model.param_bytes,
        qoperator_count=len(model.qoperator_nodes),
        diagnostic_count=len(model.diagnostics),
        ops_by_format=_ops_by_format(model),
        ops_by_precision=_ranked(precisions(model)),
        float_op_count=len(float_ops(model)),
        subgraph_count=len(model.subgraphs) - len(model.function_graphs),
        function_count=len(model.function_graphs),
        quantized_by_graph=_ranked([*(q.graph for q in model.qdq_nodes if q.graph),
                                    *(op.graph for op in model.quant_ops if op.graph)]),
    )


def _ops_by_format(model: QdqModel) -> tuple[tuple[str, int], ...]:
    counts = Counter({QuantFormat.QDQ.value: len(model.groups)})
    counts.update(op.format.value for op in model.quant_ops)
    return tuple((fmt.value, counts[fmt.value]) for fmt in QuantFormat if counts[fmt.value])


#: Short names of element types in a precision label (``u8s8``).
_PRECISION_NAMES = {
    "UINT8": "u8", "INT8": "s8", "UINT16": "u16", "INT16": "s16", "UINT4": "u4", "INT4": "s4",
    "UINT2": "u2", "INT2": "s2", "INT32": "s32", "FLOAT8E4M3FN": "e4m3", "FLOAT8E5M2": "e5m2",
    "FLOAT8E4M3FNUZ": "e4m3fnuz", "FLOAT8E5M2FNUZ": "e5m2fnuz", "FLOAT4E2M1": "e2m1",
}


def precision_label(activation: str | None, weight: str | None) -> str:
    """``u8s8`` (activation, weight), ``u8`` (no weight), ``w-only u4`` (no activation)."""
    def short(dtype: str | None) -> str:
        return _PRECISION_NAMES.get(dtype or "", "?") if dtype else "?"
    if activation is None and weight is not None:
        return f"w-only {short(weight)}"
    return short(activation) + (short(weight) if weight is not None else "")


def precisions(model: QdqModel) -> list[str]:
    """The precision label of every quantized operator (QDQ groups first, in node order)."""
    labels = []
    for group in model.groups:
        activation = model.qdq(group.input_dqs[0]).quant_dtype if group.input_dqs else None
        if activation is None and group.output_qs:
            activation = model.qdq(group.output_qs[0]).quant_dtype
        weight = model.qdq(group.weight_dq).quant_dtype if group.weight_dq else None
        labels.append(precision_label(activation or "", weight))
    for op in model.quant_ops:
        inputs = [o for o in op.operands if o.role is Role.INPUT]
        weight = op.operand(Role.WEIGHT)
        activation = inputs[0].quant_dtype if inputs else None
        if activation is None and op.format is not QuantFormat.WEIGHT_ONLY:
            output = op.operand(Role.OUTPUT)
            activation = output.quant_dtype if output else ""
        labels.append(precision_label(activation, weight.quant_dtype if weight else None))
    return labels


def float_ops(model: QdqModel) -> list[str]:
    """Keys of compute nodes that run in float: not Q/DQ, not ``Constant``, not part of a
    quantized operator (QDQ group, QOperator, dynamic or weight-only pattern) and not
    inside a quantized region."""
    members = {key for op in model.quant_ops for key in op.members}
    return [n.key for n in model.nodes
            if not (n.op_type in _QDQ_OP_TYPES and n.domain in QDQ_DOMAINS)
            and n.op_type != "Constant" and not n.in_quantized_region
            and n.key not in members]


def _ranked(items: object) -> tuple[tuple[str, int], ...]:
    counts = Counter(items)  # type: ignore[call-overload]
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def describe(model: QdqModel) -> str:
    """One plain sentence about *model* (the default alt text of a graph), e.g.
    "QDQ model resnet8 with 9 Conv, 3 Add, 1 Gemm and 40 Q/DQ nodes: 1 input
    quantized to INT8, 14 quantized operators, 1 output dequantized to FLOAT."."""
    name = Path(model.path).stem if model.path else (model.graph_name or "model")
    compute = _ranked(n.op_type for n in model.nodes
                      if not (n.op_type in _QDQ_OP_TYPES and n.domain in QDQ_DOMAINS))
    ops = _count_list(list(compute), limit=6)
    if model.quant_ops and not model.groups:
        formats = _ranked(op.format.value for op in model.quant_ops)
        kind = _FORMAT_MODEL_NAMES.get(formats[0][0], "Quantized") if len(formats) == 1 \
            else "Quantized"
        return (f"{kind} model {name} with {ops}: "
                f"{_count_list(list(formats), limit=4)} quantized "
                f"operator{'s' if len(model.quant_ops) != 1 else ''}.")
    if not model.qdq_nodes:
        return f"Float model {name} with {ops or 'no nodes'}: no quantization."
    qdq = _plural(len(model.qdq_nodes), "Q/DQ node")
    return f"QDQ model {name} with {f'{ops} and {qdq}' if ops else qdq}: {_flow_phrase(model)}."


_QDQ_OP_TYPES = QUANTIZE_OPS | DEQUANTIZE_OPS
_FORMAT_MODEL_NAMES = {"QOperator": "QOperator-format", "dynamic": "Dynamically quantized",
                       "weight-only": "Weight-only quantized"}


def _flow_phrase(model: QdqModel) -> str:
    """Where float data becomes integers, how many groups, where it becomes float again."""
    entries = {model.qdq(k).input: model.qdq(k) for r in model.regions for k in r.entry_qs}
    exits = {model.qdq(k).output: model.qdq(k) for r in model.regions for k in r.exit_dqs}
    parts = []
    if entries:
        noun = "input" if set(entries) <= set(model.inputs) else "tensor"
        dtypes = sorted({q.quant_dtype or "an unknown type" for q in entries.values()})
        parts.append(f"{_plural(len(entries), noun)} quantized to {' / '.join(dtypes)}")
    parts.append(_plural(len(model.groups), "quantized operator"))
    if exits:
        noun = "output" if set(exits) <= set(model.outputs) else "tensor"
        dtypes = sorted({q.float_dtype or "an unknown type" for q in exits.values()})
        parts.append(f"{_plural(len(exits), noun)} dequantized to {' / '.join(dtypes)}")
    weights = sum(q.role in (Role.WEIGHT, Role.WEIGHT_PAIR) for q in model.qdq_nodes
                  if q.op_type in DEQUANTIZE_OPS)
    if weights:
        parts.append(f"{_plural(weights, 'quantized weight')}")
    return ", ".join(parts)


def _count_list(pairs: list[tuple[str, int]], limit: int) -> str:
    shown = [f"{n} {op}" for op, n in pairs[:limit]]
    rest = sum(n for _, n in pairs[limit:])
    if rest:
        shown.append(f"{rest} other node{'s' if rest != 1 else ''}")
    return ", ".join(shown)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def nodes_between(model: QdqModel, sources: list[str], targets: list[str]) -> frozenset[str]:
    """Keys of main-graph nodes on a path from any source to any target, inclusive.

    A name is a node key, a node name or a tensor name (in that order of
    preference). A tensor source starts at the nodes reading it, a tensor
    target ends at the node writing it. An empty list does not restrict that
    end. Raises :class:`QdqSelectionError` for an unknown name.
    """
    main = [n for n in model.nodes if not n.graph]
    producers = {o: n.key for n in main for o in n.outputs if o}
    consumers: dict[str, list[str]] = {}
    for n in main:
        for i in dict.fromkeys(x for x in (*n.inputs, *n.implicit_inputs) if x):
            consumers.setdefault(i, []).append(n.key)
    by_key = {n.key: n for n in main}
    by_name: dict[str, list[str]] = {}
    for n in main:
        if n.name:
            by_name.setdefault(n.name, []).append(n.key)
    tensors = set(producers) | set(consumers) | set(model.inputs) | set(model.outputs)

    def start_nodes(name: str, forward: bool) -> list[str]:
        if name in by_key:
            return [name]
        if name in by_name:
            return by_name[name]
        if name in tensors:
            if forward:
                return consumers.get(name, [])
            return [producers[name]] if name in producers else []
        choices = list(dict.fromkeys([*by_key, *by_name, *sorted(tensors)]))
        raise QdqSelectionError(name, difflib.get_close_matches(name, choices, n=3))

    def reach(starts: list[str], forward: bool) -> set[str]:
        seen = set(starts)
        pending = list(starts)
        while pending:
            node = by_key[pending.pop()]
            if forward:
                nxt = [c for o in node.outputs if o for c in consumers.get(o, ())]
            else:
                nxt = [producers[i] for i in (*node.inputs, *node.implicit_inputs)
                       if i in producers]
            for key in nxt:
                if key not in seen:
                    seen.add(key)
                    pending.append(key)
        return seen

    source_keys = [k for s in sources for k in start_nodes(s, True)]
    target_keys = [k for t in targets for k in start_nodes(t, False)]
    forward = reach(source_keys, True) if sources else set(by_key)
    backward = reach(target_keys, False) if targets else set(by_key)
    return frozenset(forward & backward)


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
