"""Directives: parse options, resolve the model, note the dependency, emit nodes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.ext.graphviz import align_spec, figure_wrapper
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from sphinxext_qdq.analysis.dot import DotOptions, link_keys
from sphinxext_qdq.analysis.loader import QdqModelError, load_qdq_model
from sphinxext_qdq.analysis.model import Role
from sphinxext_qdq.analysis.patterns import (
    QdqSelectionError,
    describe,
    nodes_between,
    summarize,
)
from sphinxext_qdq.domain import QdqDomain, full_name, warn_duplicate
from sphinxext_qdq.nodes import qdq_graph
from sphinxext_qdq.tables import (
    NODE_HEADERS,
    NODE_WIDTHS,
    PARAM_HEADERS,
    PARAM_WIDTHS,
    Row,
    anchors_for,
    build_table,
    node_rows,
    param_rows,
    summary_rows,
)

if TYPE_CHECKING:
    from docutils.nodes import Node
    from sphinx.util.typing import OptionSpec

    from sphinxext_qdq.analysis.model import QdqModel, QdqNode, QuantParam

logger = logging.getLogger(__name__)


class LoadedModel(NamedTuple):
    """A model as a directive sees it: its key for cross-references, its path, its analysis."""

    key: str
    path: Path
    analysis: QdqModel


def name_list(argument: str | None) -> list[str]:
    """Comma-separated names (node or tensor names) of an option."""
    names = [name.strip() for name in (argument or "").split(",")]
    names = [name for name in names if name]
    if not names:
        raise ValueError("expected one or more comma-separated names")
    return names


class QdqModelDirective(SphinxDirective):
    """Shared argument handling: a path (page-relative or ``/``-rooted) or a
    ``qdq_models`` name."""

    required_arguments = 1
    final_argument_whitespace = True

    def resolve_model_path(self) -> tuple[str, Path]:
        """(model key, absolute path) for the directive's argument."""
        argument = self.arguments[0].strip()
        registry: dict[str, str] = self.config.qdq_models
        if argument in registry:
            return argument, self.registered_path(registry[argument])
        _rel, absolute = self.env.relfn2path(argument, self.env.docname)
        path = Path(absolute).resolve()
        for key, registered in sorted(registry.items()):
            if self.registered_path(registered) == path:
                return key, path
        return path.stem, path

    def registered_path(self, value: str) -> Path:
        """A ``qdq_models`` path: absolute, or relative to the source directory."""
        return (Path(self.env.srcdir) / value).resolve()

    def load_model(self) -> LoadedModel | None:
        """Load (cached) and analyse the model; warn at this directive on failure."""
        key, path = self.resolve_model_path()
        self.env.note_dependency(str(path))
        try:
            analysis = load_qdq_model(path, max_bytes=self.config.qdq_max_model_bytes)
        except QdqModelError as exc:
            logger.warning("%s", exc, location=self.get_location(), type="qdq", subtype="model")
            return None
        self.report_diagnostics(key, analysis)
        return LoadedModel(key, path, analysis)

    def report_diagnostics(self, key: str, analysis: QdqModel) -> None:
        """Each problem of a model once per page, at the first directive using it."""
        reported = self.env.temp_data.setdefault("qdq_diagnosed", set())
        if analysis.content_hash in reported:
            return
        reported.add(analysis.content_hash)
        for diagnostic in analysis.diagnostics:
            where = f" (node {diagnostic.node!r})" if diagnostic.node else ""
            logger.warning(
                "%s%s: %s", key, where, diagnostic.message,
                location=self.get_location(), type="qdq", subtype=diagnostic.subtype,
            )


class QdqGraphDirective(QdqModelDirective):
    """``.. qdq-graph:: MODEL`` draws the annotated QDQ graph."""

    option_spec: ClassVar[OptionSpec] = {
        "mode": lambda arg: directives.choice(arg, ("compact", "full")),
        "rankdir": lambda arg: directives.choice(arg, ("TB", "LR")),
        "from": name_list,
        "to": name_list,
        "legend": directives.flag,
        "caption": directives.unchanged,
        "name": directives.unchanged,
        "align": align_spec,
        "alt": directives.unchanged,
        "class": directives.class_option,
    }

    def run(self) -> list[Node]:
        loaded = self.load_model()
        if loaded is None:
            return []
        options = DotOptions(
            mode=self.options.get("mode", self.config.qdq_graph_mode),
            rankdir=self.options.get("rankdir", self.config.qdq_graph_rankdir),
            legend="legend" in self.options,
            selection=self.selection(loaded.analysis),
            max_nodes=self.config.qdq_max_graph_nodes,
        )
        node = qdq_graph()
        node["code"] = ""
        node["options"] = {}  # rendering does not depend on the page: one image per picture
        node["qdq_model"] = loaded.key
        node["qdq_path"] = str(loaded.path)
        node["qdq_options"] = options
        node["alt"] = self.options.get("alt") or describe(loaded.analysis)
        node["classes"] += self.options.get("class", [])
        if "align" in self.options:
            node["align"] = self.options["align"]
        node.extend(link_requests(loaded.key, link_keys(loaded.analysis, options)))
        self.set_source_info(node)
        if "caption" not in self.options:
            self.add_name(node)
            return [node]
        figure = figure_wrapper(self, node, self.options["caption"])
        self.add_name(figure)
        return [figure]

    def selection(self, analysis: QdqModel) -> frozenset[str] | None:
        """Node keys between ``:from:`` and ``:to:`` (None: the whole graph)."""
        sources = self.options.get("from")
        targets = self.options.get("to")
        if not sources and not targets:
            return None
        try:
            return nodes_between(analysis, sources or [], targets or [])
        except QdqSelectionError as exc:
            raise self.error(f"qdq-graph: {exc}") from None


def link_requests(model_key: str, keys: list[str]) -> list[addnodes.pending_xref]:
    """One ``pending_xref`` per link a graph can carry; Sphinx resolves them."""
    requests = []
    for link_key in keys:
        kind, _, name = link_key.partition(":")
        target = name if kind == "op" else full_name(model_key, name)
        xref = addnodes.pending_xref(
            "", nodes.inline("", link_key), refdomain="qdq", reftype=kind,
            reftarget=target, refexplicit=False, refwarn=False, qdq_link_key=link_key,
        )
        requests.append(xref)
    return requests


def regex_option(argument: str | None) -> re.Pattern[str]:
    """A regular expression option (``:nodes:``); a bad pattern is a located error."""
    try:
        return re.compile(argument or "")
    except re.error as exc:
        raise ValueError(f"invalid regular expression {argument!r}: {exc}") from None


ROLE_NAMES = {role.value: role for role in Role}


def role_list(argument: str | None) -> frozenset[Role]:
    roles = set()
    for name in name_list(argument):
        if name not in ROLE_NAMES:
            raise ValueError(f"unknown role {name!r}; expected one of {', '.join(ROLE_NAMES)}")
        roles.add(ROLE_NAMES[name])
    return frozenset(roles)


def used_params(analysis: QdqModel, qdqs: list[QdqNode]) -> list[QuantParam]:
    """Scale and zero-point records of *qdqs*, each once, in order of first use."""
    records = {param.name: param for param in analysis.params}
    names = dict.fromkeys(name for qdq in qdqs for name in (qdq.scale, qdq.zero_point) if name)
    return [records[name] for name in names if name in records]


class QdqParamsDirective(QdqModelDirective):
    """``.. qdq-params:: MODEL`` tabulates every scale and zero point."""

    option_spec: ClassVar[OptionSpec] = {
        "layout": lambda arg: directives.choice(arg, ("node", "initializer")),
        "values": lambda arg: directives.choice(arg, ("summary", "full")),
        "nodes": regex_option,
        "ops": name_list,
        "roles": role_list,
        "limit": directives.positive_int,
        "no-index": directives.flag,
        "caption": directives.unchanged,
        "name": directives.unchanged,
        "class": directives.class_option,
    }

    def run(self) -> list[Node]:
        loaded = self.load_model()
        if loaded is None:
            return []
        qdqs = self.selected_qdq_nodes(loaded.analysis)
        if not qdqs:
            return []
        full = self.options.get("values") == "full"
        if self.options.get("layout") == "initializer":
            rows = param_rows(loaded.analysis, used_params(loaded.analysis, qdqs), full=full)
            headers, widths = PARAM_HEADERS, PARAM_WIDTHS
        else:
            rows = node_rows(loaded.analysis, qdqs, full=full)
            headers, widths = NODE_HEADERS, NODE_WIDTHS
        anchors = self.register_targets(loaded.key, rows)
        table = build_table(headers, rows, widths, anchors=anchors,
                            classes=["qdq-params", *self.options.get("class", [])],
                            title=self.options.get("caption"))
        self.set_source_info(table)
        self.add_name(table)
        return [self.index_node(loaded.key, rows, anchors), table]

    def selected_qdq_nodes(self, analysis: QdqModel) -> list[QdqNode]:
        """Q/DQ nodes passing ``:nodes:``, ``:ops:``, ``:roles:`` and ``:limit:``."""
        pattern = self.options.get("nodes")
        ops = self.options.get("ops")
        roles = self.options.get("roles")
        selected = [
            qdq for qdq in analysis.qdq_nodes
            if (pattern is None or pattern.search(analysis.node(qdq.key).name or qdq.key))
            and (not ops or qdq.op_type in ops)
            and (not roles or qdq.role in roles)
        ][: self.options.get("limit")]
        if not selected:
            what = "the filters" if pattern or ops or roles else "this model"
            logger.warning("qdq-params: no QuantizeLinear or DequantizeLinear node matches %s "
                           "in %s; no table", what, self.arguments[0],
                           location=self.get_location(), type="qdq", subtype="filter")
        return selected

    def register_targets(self, model_key: str, rows: list[Row]) -> list[list[str]]:
        """Rows become ``qdq`` targets unless ``:no-index:``; duplicates warn once."""
        if "no-index" in self.options:
            return [[] for _ in rows]
        domain: QdqDomain = self.env.domains["qdq"]  # type: ignore[assignment]
        anchors = anchors_for(rows, model_key)
        elsewhere = sorted({doc for row in rows if row.target
                            for doc in [domain.documented_elsewhere(row.target[0], model_key,
                                                                    row.target[1])] if doc})
        if elsewhere:
            warn_duplicate("model", model_key, elsewhere[0], self.get_location())
            return [[] for _ in rows]
        for row, ids in zip(rows, anchors):
            if row.target:
                domain.note_object(row.target[0], model_key, row.target[1], ids[0])
            for objtype, name in row.extra_targets:  # a node row also answers for its params
                if not domain.has_object(objtype, model_key, name):
                    domain.note_object(objtype, model_key, name, ids[0])
        return anchors

    def index_node(self, model_key: str, rows: list[Row], anchors: list[list[str]]) -> Node:
        entries = [("single", f"{row.index_text}; {model_key}", ids[0], "", None)
                   for row, ids in zip(rows, anchors) if ids]
        return addnodes.index(entries=entries)


class QdqSummaryDirective(QdqModelDirective):
    """``.. qdq-summary:: MODEL``: counts a page about a model needs."""

    option_spec: ClassVar[OptionSpec] = {
        "caption": directives.unchanged,
        "name": directives.unchanged,
        "class": directives.class_option,
    }

    def run(self) -> list[Node]:
        loaded = self.load_model()
        if loaded is None:
            return []
        rows = summary_rows(summarize(loaded.analysis))
        table = build_table(["Statistic", "Value"], rows, [30, 70],
                            classes=["qdq-summary", *self.options.get("class", [])],
                            title=self.options.get("caption"))
        self.set_source_info(table)
        self.add_name(table)
        return [table]
