"""Directives: parse options, resolve the model, note the dependency, emit nodes."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.ext.graphviz import align_spec, figure_wrapper
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.sphinx import backend
from sphinxext_qdq.sphinx.collector import (
    file_signature,
    file_state,
    known_states,
    note_input,
    page_record,
)
from sphinxext_qdq.sphinx.domain import QdqDomain, full_name, warn_duplicate
from sphinxext_qdq.sphinx.nodes import qdq_graph
from sphinxext_qdq.sphinx.presentation import table_box
from sphinxext_qdq.sphinx.tables import (
    AGREEMENT_HEADERS,
    AGREEMENT_WIDTHS,
    NODE_HEADERS,
    NODE_WIDTHS,
    PARAM_HEADERS,
    PARAM_WIDTHS,
    REQUANT_HEADERS,
    REQUANT_WIDTHS,
    Row,
    agreement_rows,
    anchors_for,
    build_table,
    example_rows,
    node_rows,
    param_rows,
    requant_rows,
    summary_rows,
)

if TYPE_CHECKING:
    from docutils.nodes import Node
    from sphinx.util.typing import OptionSpec

    from sphinxext_qdq.analysis.records import (
        QdqModel,
        QdqNode,
        QuantOperand,
        QuantParam,
        Role,
    )
    from sphinxext_qdq.integer.inputs import ModelInputs
    from sphinxext_qdq.integer.onnxruntime_check import AgreementReport
    from sphinxext_qdq.integer.requant import RequantRecipe
    from sphinxext_qdq.render.dot import DotOptions

logger = logging.getLogger(__name__)




class OptionProblem(Exception):
    """An option that does not fit the model, the other options or the configuration; the
    directive's ``run`` reports it as a ``qdq.option`` warning and draws nothing."""


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


def rankdir_option(argument: str | None) -> str:
    """``TB`` or ``LR`` (any case); ``directives.choice`` would lowercase it."""
    value = (argument or "").strip().upper()
    if value not in ("TB", "LR"):
        raise ValueError(f"{argument!r} unknown; choose from TB or LR")
    return value


def depth_option(argument: str | None) -> str | int:
    """``auto``, ``all`` (every node drawn) or a positive number of scope levels."""
    value = str(argument if argument is not None else "").strip().lower()
    if value in ("auto", "all"):
        return value
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise ValueError(f"{argument!r}: expected auto, all or a positive integer")


def scope_option(argument: str | None) -> tuple[str, ...]:
    """``:scope: features/denseblock2``: a scope path, ``/``-separated."""
    parts = tuple(part for part in (argument or "").split("/") if part.strip())
    if not parts:
        raise ValueError("expected a scope such as layer1/layer1.0")
    return parts


def resolved_path(path: str | Path) -> Path:
    """*path* with its symbolic links resolved; as given (absolute) when they cannot be
    (a loop): the loader then refuses it with a located warning."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(path))


#: The options every table directive takes: a caption (numbered, referable), a label, classes.
CAPTION_OPTIONS: OptionSpec = {
    "caption": directives.unchanged,
    "name": directives.unchanged,
    "class": directives.class_option,
}

#: (what an option takes, what it means) for the reference page (``option_docs``).
OptionDocs = dict[str, tuple[str, str]]

#: What the options of :data:`CAPTION_OPTIONS` take and mean.
CAPTION_OPTION_DOCS: OptionDocs = {
    "caption": ("text", "A caption; the graph or table becomes numbered and referable."),
    "name": ("label", "A label for `{ref}` (MyST) or `:ref:` (reST)."),
    "class": ("class names", "Extra CSS classes."),
}


class QdqModelDirective(SphinxDirective):
    """Shared argument handling: a path (page-relative or ``/``-rooted) or a
    ``qdq_models`` name."""

    required_arguments = 1
    final_argument_whitespace = True

    @classmethod
    def option_docs(cls) -> OptionDocs:
        """(what it takes, what it means; Markdown) of every option in ``option_spec``,
        said once, here: the reference page shows them and warns about an option
        without one. A method, so that a meaning may name what the analysis knows
        (imported only when the page asks)."""
        return {}

    @property
    def qdq_domain(self) -> QdqDomain:
        return self.env.domains["qdq"]  # type: ignore[return-value]

    def load_limits(self) -> dict[str, int]:
        """The caps every load of a model (and the integer reference's) goes by."""
        return {"max_bytes": self.qdq_config("qdq_max_model_bytes"),
                "max_param_values": self.qdq_config("qdq_max_param_values")}

    def qdq_config(self, name: str) -> Any:
        """A ``qdq_*`` configuration value; the page is read again when it changes."""
        value = self.config[name]
        page_record(self.env).config[name] = value
        return value

    def warn(self, message: str, subtype: str) -> None:
        """A ``qdq.<subtype>`` warning at this directive; the page is read again by the
        next build, so the warning comes back until the problem is fixed."""
        logger.warning("%s", message, location=self.get_location(), type="qdq",
                       subtype=subtype)
        page_record(self.env).warned = True

    def warn_option(self, message: str) -> list[Node]:
        """A ``qdq.option`` warning at this directive (an option that does not fit the
        model or the other options); returns the nothing a directive then returns."""
        self.warn(message, "option")
        return []

    def resolve_model_path(self, argument: str | None = None) -> tuple[str, Path]:
        """(model key, absolute path) for the directive's argument (or *argument*)."""
        argument = (self.arguments[0] if argument is None else argument).strip()
        registry: dict[str, str] = self.qdq_config("qdq_models")
        if argument in registry:
            return argument, self.registered_path(registry[argument])
        path = resolved_path(self.page_relative_path(argument))
        for key, registered in sorted(registry.items()):
            if self.registered_path(registered) == path:
                return key, path
        return path.stem, path

    def page_relative_path(self, argument: str) -> str:
        """``env.relfn2path``'s absolute path, also for a path it cannot resolve (a loop
        of symbolic links makes it raise)."""
        try:
            return self.env.relfn2path(argument, self.env.docname)[1]
        except (OSError, RuntimeError, ValueError):
            if argument.startswith("/"):
                return os.path.join(self.env.srcdir, argument.lstrip("/"))
            folder = os.path.dirname(self.env.doc2path(self.env.docname))
            return os.path.normpath(os.path.join(folder, argument))

    def registered_path(self, value: str) -> Path:
        """A ``qdq_models`` path: absolute, or relative to the source directory."""
        return resolved_path(Path(self.env.srcdir) / value)

    def load_model(self, argument: str | None = None, *, diagnose: bool = True
                   ) -> LoadedModel | None:
        """Load (cached) and analyse the model (the directive's argument, or *argument*);
        warn at this directive on failure. *diagnose*: report the model's problems."""
        key, path = self.resolve_model_path(argument)
        self.env.note_dependency(str(path))
        signature = file_signature(path)  # before reading: a later change is seen
        try:
            analysis = backend.load_qdq_model(path, **self.load_limits())
        except QdqModelError as exc:
            self.note_input(str(path), signature=signature)
            self.warn(str(exc), "model")
            return None
        self.note_input(str(path), analysis.content_hash or None, signature)
        self.qdq_domain.note_model_stem(path.stem, key)
        for data_file in analysis.data_files:
            self.env.note_dependency(data_file)
            self.note_input(data_file)
        if diagnose:
            self.report_diagnostics(key, analysis)
        return LoadedModel(key, path, analysis)

    def note_input(self, path: str, content_hash: str | None = None,
                   signature: tuple[int, int, int, int, int] | None = None) -> None:
        """Record that this page read *path*; its content is hashed only when neither the
        loader nor an earlier read with the same signature gives the hash."""
        note_input(self.env, path, file_state(path, content_hash, signature,
                                               known=known_states(self.env)))

    def report_diagnostics(self, key: str, analysis: QdqModel) -> None:
        """Each problem of a model once per page, at the first directive using it."""
        reported = self.env.temp_data.setdefault("qdq_diagnosed", set())
        if (analysis.path, analysis.file_status) in reported:
            return
        reported.add((analysis.path, analysis.file_status))
        for diagnostic in analysis.diagnostics:
            where = f" (node {diagnostic.node!r})" if diagnostic.node else ""
            self.warn(f"{key}{where}: {diagnostic.message}", diagnostic.subtype)


class QdqGraphDirective(QdqModelDirective):
    """``.. qdq-graph:: MODEL`` draws the annotated QDQ graph."""

    option_spec: ClassVar[OptionSpec] = {
        "mode": lambda arg: directives.choice(arg, ("compact", "full")),
        "rankdir": rankdir_option,
        "pairs": lambda arg: directives.choice(arg, backend.PAIR_STYLES),
        "from": name_list,
        "to": name_list,
        "depth": depth_option,
        "scope": scope_option,
        "width": directives.length_or_percentage_or_unitless,
        "scale": directives.percentage,
        "legend": directives.flag,
        "caption": directives.unchanged,
        "name": directives.unchanged,
        "align": align_spec,
        "alt": directives.unchanged,
        "class": directives.class_option,
    }

    @classmethod
    def option_docs(cls) -> OptionDocs:
        return {
            "mode": ("`compact` or `full`",
                     ("`compact`: weight / bias DequantizeLinear nodes are folded into their "
                     "Conv or Gemm and each activation Q→DQ pair is drawn small (see "
                     "`:pairs:`); `full`: every ONNX node. Default: `qdq_graph_mode`.")),
            "pairs": ("`edges` or `nodes`",
                      ("Compact mode: `edges` draws an activation Q→DQ pair on the edge it "
                      "quantizes (thick, in the quantized type's colour, labelled with the "
                      "type, scale and zero point; the line links to the QuantizeLinear "
                      "documentation, the label to the pair's `qdq-params` row); `nodes` "
                      "draws it as a node of its own. `edges` gives dot about half the nodes "
                      "to lay out. A pair fed by or feeding another Q/DQ node is always a "
                      "node. Default: `qdq_graph_pairs`.")),
            "rankdir": ("`TB` or `LR`", ("Top to bottom or left to right. Default: "
                                        "`qdq_graph_rankdir`.")),
            "from": ("node or tensor names, comma-separated",
                     "Draw only what lies downstream of these (between them and `:to:`)."),
            "to": ("node or tensor names, comma-separated",
                   "Draw only what lies upstream of these (between `:from:` and them)."),
            "depth": ("`auto`, `all` or a positive integer",
                      ("Scopes (the `/`-separated scopes of node names, or chunks of the "
                      "topological order when names carry none) with at least this many "
                      "levels are collapsed into one box showing their op counts, Q/DQ "
                      "counts, the dtypes entering and leaving, and the scale / zero point of "
                      "the pairs on their boundary; each box links to its scope drawn "
                      "expanded, added below the drawing. `all`: every node. `auto` "
                      "(default, `qdq_graph_depth`): every node when the estimated layout "
                      "time fits `qdq_layout_budget` and the drawing has at most 300 nodes, "
                      "else the deepest depth that fits.")),
            "scope": ("scope path, `/`-separated",
                      "Draw only the nodes inside this scope (`layer1/layer1.0`)."),
            "width": ("length or percentage", "Width of the drawing in HTML (as `image`)."),
            "scale": ("percentage", "Scale of the drawing in HTML (as `image`)."),
            "legend": ("flag", "Draw a legend of the node shapes and edge colours."),
            "align": ("`left`, `center` or `right`", "Horizontal alignment."),
            "alt": ("text", "Alternative text; default: a one-line description of the model."),
            **CAPTION_OPTION_DOCS,
        }

    def run(self) -> list[Node]:
        loaded = self.load_model()
        if loaded is None:
            return []
        try:
            options = self.drawing_options(loaded)
        except OptionProblem as problem:
            return self.warn_option(str(problem))
        self.check_size(loaded, options)
        node = self.graph_node(loaded, options, self.options.get("alt"))
        node["classes"] += self.options.get("class", [])
        if "align" in self.options:
            node["align"] = self.options["align"]
        if "caption" not in self.options:
            self.add_name(node)
            top: Node = node
        else:
            top = figure_wrapper(self, node, self.options["caption"])
            self.add_name(top)
        if not top["ids"]:
            top["ids"].append(f"qdq-graph-{self.env.new_serialno('qdq-graph')}")
        return [top, *self.scope_drawings(loaded, node, options, top["ids"][0])]

    def graph_node(self, loaded: LoadedModel, options: DotOptions, alt: str | None) -> qdq_graph:
        node = qdq_graph()
        # planned and written once, here: the page writer only puts the links in
        slots = backend.LinkSlots()
        node["code"] = backend.render_dot(loaded.analysis, options, slots)
        node["qdq_link_chains"] = slots.chains
        node["options"] = {}
        node["qdq_model"] = loaded.key
        node["qdq_path"] = str(loaded.path)
        node["qdq_options"] = options
        node["alt"] = alt or backend.describe(loaded.analysis)
        for name in ("width", "scale"):
            if name in self.options:
                node[f"qdq_{name}"] = self.options[name]
        # the pending_xrefs are added after the read transforms (add_link_requests)
        node["qdq_link_keys"] = [key for key in slots.link_keys() if not key.startswith("scope:")]
        self.set_source_info(node)
        return node

    def scope_drawings(self, loaded: LoadedModel, node: qdq_graph, options: DotOptions,
                       top_id: str) -> list[Node]:
        """The drawing of every collapsed box expanded (breadth first, at most
        ``qdq_max_scope_drawings``), each box linked to its drawing and back."""
        limit = self.qdq_config("qdq_max_scope_drawings")
        queue = [(node, options, top_id)]
        figures: list[Node] = []
        while queue:
            parent, parent_options, parent_id = queue.pop(0)
            for scope in backend.drawing_scopes(loaded.analysis, parent_options):
                if len(figures) >= limit:
                    break
                child_options = self.depth_for(loaded.analysis, dataclasses.replace(
                    parent_options, scope=scope, selection=None), "auto")
                child = self.graph_node(loaded, child_options,
                                        f"{loaded.key}: scope {' / '.join(scope)}")
                figure_id = f"qdq-scope-{self.env.new_serialno('qdq-scope')}"
                parent.append(nodes.reference("", "", refid=figure_id,
                                              qdq_link_key=backend.scope_key(scope)))
                caption = nodes.caption(
                    "", "", nodes.Text(f"{' / '.join(scope)} ({loaded.key}), drawn "
                                       f"{self.depth_text(child_options)}; "),
                    nodes.reference("", "back to the drawing it is a box of",
                                    refid=parent_id, internal=True))
                figures.append(nodes.figure("", child, caption, ids=[figure_id],
                                            classes=["qdq-scope-drawing"]))
                queue.append((child, child_options, figure_id))
        if not figures:
            return []
        # HTML only: a PDF cannot follow a link inside a picture, and a page of pictures
        # that float away from their section helps nobody there
        only = addnodes.only(expr="html")
        only += nodes.container("", *figures, classes=["qdq-scope-drawings"])
        self.set_source_info(only)
        return [only]

    @staticmethod
    def depth_text(options: DotOptions) -> str:
        return "in full" if not options.depth else f"at depth {options.depth}"

    def depth_for(self, analysis: QdqModel, options: DotOptions,
                  setting: str | int) -> DotOptions:
        """*options* with the depth *setting* asks for (``auto``: the deepest drawing whose
        estimated layout time fits ``qdq_layout_budget``)."""
        if setting == "all":
            return dataclasses.replace(options, depth=0)
        if isinstance(setting, int):
            return dataclasses.replace(options, depth=max(setting, len(options.scope) + 1))
        budget = float(self.qdq_config("qdq_layout_budget"))
        return dataclasses.replace(options, depth=backend.choose_depth(analysis, options, budget).depth)

    def dot_options(self, analysis: QdqModel) -> DotOptions:
        mode = self.options.get("mode") or self.qdq_config("qdq_graph_mode")
        rankdir = self.options.get("rankdir") or self.qdq_config("qdq_graph_rankdir")
        pairs = self.options.get("pairs") or (  # read (and depended on) in compact mode only
            self.qdq_config("qdq_graph_pairs") if mode == "compact" else backend.PAIR_STYLES[0])
        try:
            options = backend.DotOptions(mode=mode, rankdir=str(rankdir).upper(), pairs=pairs,
                                 legend="legend" in self.options,
                                 selection=self.selection(analysis),
                                 max_nodes=max(0, self.qdq_config("qdq_max_graph_nodes")),
                                 scope=self.scope(analysis))
            depth = self.options.get("depth") or depth_option(
                self.qdq_config("qdq_graph_depth"))
        except ValueError as exc:  # qdq_graph_mode / _rankdir / _pairs / _depth nonsense
            raise OptionProblem(f"qdq-graph: {exc} (the default of an option, from conf.py: "
                                "qdq_graph_mode, _rankdir, _pairs or _depth)") from None
        return self.depth_for(analysis, options, depth)

    def scope(self, analysis: QdqModel) -> tuple[str, ...]:
        """``:scope:``, checked against the model's grouping."""
        scope = self.options.get("scope", ())
        if scope and not backend.scope_paths(analysis).members(scope):
            grouping = backend.scope_paths(analysis)
            known = sorted({path[0] for path in grouping.paths.values() if path})[:8]
            raise OptionProblem(f"qdq-graph: :scope: no node lies in scope "
                                f"{'/'.join(scope)!r} (grouping: {grouping.kind}; top-level "
                                f"scopes: {', '.join(known) or 'none'})")
        return scope

    def drawing_options(self, loaded: LoadedModel) -> DotOptions:
        """The options of this drawing (an overlay subclass adds to them)."""
        return self.dot_options(loaded.analysis)

    def check_size(self, loaded: LoadedModel, options: DotOptions) -> None:
        """Warn when the drawing is replaced by a note (more than ``qdq_max_graph_nodes``)."""
        if not options.max_nodes:
            return
        count = backend.graph_node_count(loaded.analysis, options)
        if count > options.max_nodes:
            what = "the selection" if options.selection is not None else "the graph"
            self.warn(f"{loaded.key}: {what} has {count} nodes in {options.mode} mode, more "
                      f"than qdq_max_graph_nodes = {options.max_nodes}: a note is drawn "
                      "instead; select a region with :from: and :to: (or raise "
                      "qdq_max_graph_nodes)", "graph-size")

    def selection(self, analysis: QdqModel) -> frozenset[str] | None:
        """Node keys between ``:from:`` and ``:to:`` (None: the whole graph)."""
        sources = self.options.get("from")
        targets = self.options.get("to")
        if not sources and not targets:
            return None
        try:
            return backend.select_region(analysis, sources or [], targets or [])
        except backend.QdqSelectionError as exc:
            option = "from" if exc.name in (sources or []) else "to"
            raise OptionProblem(f"qdq-graph: :{option}: {exc}") from None


def add_link_requests(_app: object, doctree: nodes.document) -> None:
    """``doctree-read``: give each graph its ``pending_xref`` children. They are added
    after most read-phase transforms (``doctree-read`` is emitted by one of priority 880),
    each of which walks the whole page: a graph of 2,000 nodes asks for about 1,400 links,
    most of the page's nodes. Sphinx resolves them when the page is written, as any
    reference."""
    for graph in doctree.findall(qdq_graph):
        keys = graph.attributes.pop("qdq_link_keys", None)
        if keys:
            requests = link_requests(graph["qdq_model"], keys)
            # in groups: Sphinx replaces each resolved request in its parent's list of
            # children (a search of that list), quadratic for thousands of siblings
            graph.extend(nodes.inline("", "", *requests[start:start + LINK_GROUP])
                         for start in range(0, len(requests), LINK_GROUP))


#: Link requests held by one ``inline`` inside a graph (see :func:`add_link_requests`).
LINK_GROUP = 64


def link_requests(model_key: str, keys: list[str]) -> list[addnodes.pending_xref]:
    """One ``pending_xref`` per link a graph can carry; Sphinx resolves them. Each holds an
    empty ``inline`` (Sphinx wants a content node, nothing shows it): a graph has a link per
    node, and every transform, and the search index, walks every text node of the page."""
    requests = []
    for link_key in keys:
        kind, _, name = link_key.partition(":")
        target = name if kind == "op" else full_name(model_key, name)
        xref = addnodes.pending_xref(
            "", nodes.inline(), refdomain="qdq", reftype=kind,
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


def role_list(argument: str | None) -> frozenset[Role]:
    known = {role.value: role for role in backend.Role}
    roles = set()
    for name in name_list(argument):
        if name not in known:
            raise ValueError(f"unknown role {name!r}; expected one of {', '.join(known)}")
        roles.add(known[name])
    return frozenset(roles)


def used_params(analysis: QdqModel, qdqs: list[QdqNode | QuantOperand]) -> list[QuantParam]:
    """Scale and zero-point records of *qdqs* (Q/DQ nodes and operands of quantized
    operators), each once, in order of first use."""
    records = {param.name: param for param in analysis.params}
    names = dict.fromkeys(name for qdq in qdqs for name in (qdq.scale, qdq.zero_point) if name)
    return [records[name] for name in names if name in records]


class QdqParamsDirective(QdqModelDirective):
    """``.. qdq-params:: MODEL`` tabulates every scale and zero point."""

    option_spec: ClassVar[OptionSpec] = {
        "layout": lambda arg: directives.choice(arg, ("node", "initializer")),
        "values": lambda arg: directives.choice(arg, ("summary", "full")),
        "nodes": regex_option,
        "qdq-ops": name_list,
        "ops": name_list,  # deprecated: :qdq-ops:
        "roles": role_list,
        "limit": directives.positive_int,
        "no-index": directives.flag,
        "no-index-entry": directives.flag,
        **CAPTION_OPTIONS,
    }

    @classmethod
    def option_docs(cls) -> OptionDocs:
        roles = ", ".join(f"`{role.value}`" for role in backend.Role)
        return {
            "layout": ("`node` or `initializer`",
                       ("`node` (default): one row per QuantizeLinear / DequantizeLinear node, "
                       "with its role, the tensor it quantizes, scale, zero point, type and "
                       "granularity; `initializer`: one row per scale or zero-point tensor, "
                       "with its source and users (`input[1]` / `input[2]` of which node).")),
            "values": ("`summary` or `full`",
                       ("`summary` (default): a per-axis scale is shown as its count and "
                       "range; `full`: every value.")),
            "nodes": ("regular expression", ("Keep the Q/DQ nodes, and the operands of the "
                                            "quantized operators, whose node name matches "
                                            "(`re.search`).")),
            "qdq-ops": ("op types, comma-separated", ("Keep `QuantizeLinear` and / or "
                                                     "`DequantizeLinear` nodes, or the operands "
                                                     "of quantized operators of these types "
                                                     "(`QLinearConv`, `MatMulInteger`, "
                                                     "`MatMulNBits` …).")),
            "ops": ("op types, comma-separated", ("Deprecated name of `:qdq-ops:` (a "
                                                 "`qdq.deprecated` warning).")),
            "roles": ("roles, comma-separated", f"Keep the nodes of these roles: {roles}."),
            "limit": ("positive integer", "At most this many rows."),
            "no-index": ("flag", ("Rows are not cross-reference targets (for a second table "
                                 "of the same model).")),
            "no-index-entry": ("flag", ("No general-index entry; the rows stay targets "
                                       "(see `qdq_index_entries`).")),
            **CAPTION_OPTION_DOCS,
        }

    def run(self) -> list[Node]:
        loaded = self.load_model()
        if loaded is None:
            return []
        qdqs = self.selected_qdq_nodes(loaded.analysis)
        if not qdqs:
            return self.nothing_to_show(loaded, "scale or zero point")
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
        return [self.index_node(loaded.key, rows, anchors, "scales and zero points"),
                table_box(table, widths)]

    #: What ``:ops:`` was renamed to here (it filtered Q/DQ op types in qdq-params but
    #: compute op types in qdq-requant); ``:ops:`` still works, with a warning.
    ops_option: ClassVar[str] = "qdq-ops"

    def op_filter(self) -> list[str] | None:
        """The op-type filter, from its current name or (with a warning) ``:ops:``."""
        if "ops" in self.options:
            self.warn(f"{self.name}: :ops: is deprecated, write :{self.ops_option}: (the "
                      "same filter)", "deprecated")
            return self.options.get(self.ops_option) or self.options["ops"]
        return self.options.get(self.ops_option)

    def selected_qdq_nodes(self, analysis: QdqModel) -> list[QdqNode | QuantOperand]:
        """Q/DQ nodes and operands of quantized operators passing ``:nodes:`` (on the
        node's name), ``:ops:``, ``:roles:`` and ``:limit:``, in node order. A filter
        matching nothing warns only when the model has such rows at all (a model
        without any is reported once, by the model's own warning)."""
        pattern = self.options.get("nodes")
        ops = self.op_filter()
        roles = self.options.get("roles")
        order = {node.key: position for position, node in enumerate(analysis.nodes)}
        candidates = sorted([*analysis.qdq_nodes, *analysis.operands],
                            key=lambda item: order[getattr(item, "node", item.key)])
        selected = [
            item for item in candidates
            if (pattern is None or pattern.search(
                analysis.node(getattr(item, "node", item.key)).name or item.key))
            and (not ops or item.op_type in ops)
            and (not roles or item.role in roles)
        ][: self.options.get("limit")]
        if not selected and candidates and (pattern or ops or roles):
            self.warn(f"qdq-params: no Q/DQ node or quantized-operator operand matches the "
                      f"filters in {self.arguments[0]}; no table", "filter")
        return selected

    def nothing_to_show(self, loaded: LoadedModel, what: str) -> list[Node]:
        """A short paragraph instead of an empty table (the reason was warned already:
        a filter matching nothing, or the model's own warning)."""
        text = f"No {what} of {loaded.key} to show here."
        return [nodes.paragraph(text, text, classes=["qdq-empty"])]

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

    def index_node(self, model_key: str, rows: list[Row], anchors: list[list[str]],
                   what: str) -> Node:
        """General-index entries: none with ``:no-index-entry:``; else as
        ``qdq_index_entries`` says (``model``: one for the table, under the model's
        name; ``rows``: one per row; ``none``)."""
        style = self.qdq_config("qdq_index_entries")
        targets = [(row, ids[0]) for row, ids in zip(rows, anchors) if ids]
        if "no-index-entry" in self.options or style == "none" or not targets:
            entries = []
        elif style == "rows":
            entries = [("single", f"{row.index_text}; {model_key}", anchor, "", None)
                       for row, anchor in targets]
        else:
            entries = [("single", f"{model_key} (quantized model); {what}", targets[0][1],
                        "", None)]
        return addnodes.index(entries=entries, classes=["qdq-index"])


class QdqSummaryDirective(QdqModelDirective):
    """``.. qdq-summary:: MODEL``: counts a page about a model needs."""

    option_spec: ClassVar[OptionSpec] = {
        **CAPTION_OPTIONS,
    }

    @classmethod
    def option_docs(cls) -> OptionDocs:
        return dict(CAPTION_OPTION_DOCS)

    def run(self) -> list[Node]:
        loaded = self.load_model()
        if loaded is None:
            return []
        rows = summary_rows(backend.summarize(loaded.analysis))
        table = build_table(["Statistic", "Value"], rows, [30, 70],
                            classes=["qdq-summary", *self.options.get("class", [])],
                            title=self.options.get("caption"))
        self.set_source_info(table)
        self.add_name(table)
        return [table_box(table, [30, 70])]


# -- qdq-requant ------------------------------------------------------------------------------
def position_option(argument: str | None) -> tuple[int, ...]:
    """``:position: 3, 0, 17``: an output element (channel, row, column; or column)."""
    try:
        values = tuple(int(value) for value in name_list(argument))
    except ValueError:
        raise ValueError("expected comma-separated non-negative integers") from None
    if any(value < 0 for value in values):
        raise ValueError("expected comma-separated non-negative integers")
    return values


#: Agreement reports computed in this process: (content hash, inputs, images, rounding).
_agreement_cache: dict[tuple[str, str, int | None, str], AgreementReport] = {}
#: Float inputs named ``module:attribute``, loaded once per process.
_named_inputs_cache: dict[str, ModelInputs] = {}


class QdqRequantDirective(QdqParamsDirective):
    """``.. qdq-requant:: MODEL``: the integer recipe of every quantized-op group
    (``:show: table``, rows are ``qdq:node`` targets of the compute nodes), one Conv /
    Gemm output element computed step by step (``:show: example``), or the integer
    reference against ONNX Runtime on real inputs (``:show: agreement``)."""

    option_spec: ClassVar[OptionSpec] = {
        "show": lambda arg: directives.choice(arg, ("table", "example", "agreement")),
        "nodes": regex_option,
        "compute-ops": name_list,
        "ops": name_list,  # deprecated: :compute-ops:
        "values": lambda arg: directives.choice(arg, ("summary", "full")),
        "limit": directives.positive_int,
        "no-index": directives.flag,
        "no-index-entry": directives.flag,
        "node": directives.unchanged_required,
        "inputs": directives.unchanged_required,
        "images": directives.positive_int,
        "image": directives.nonnegative_int,
        "position": position_option,
        "rounding": lambda arg: directives.choice(arg, backend.ROUNDINGS),
        **CAPTION_OPTIONS,
    }
    ops_option: ClassVar[str] = "compute-ops"

    @classmethod
    def option_docs(cls) -> OptionDocs:
        return {
            "show": ("`table`, `example` or `agreement`",
                     ("`table` (default): the integer recipe of every quantized-op group "
                     "(rows are `qdq:node` targets of the compute nodes); `example`: one "
                     "Conv / Gemm output element computed step by step; `agreement`: the "
                     "integer reference against ONNX Runtime on real inputs.")),
            "nodes": ("regular expression", "Keep the groups whose compute node name matches."),
            "compute-ops": ("op types, comma-separated",
                            "Keep the groups of these compute op types (`Conv`, `Gemm`, …)."),
            "ops": ("op types, comma-separated", ("Deprecated name of `:compute-ops:` (a "
                                                 "`qdq.deprecated` warning).")),
            "values": ("`summary` or `full`", "As for `qdq-params`."),
            "limit": ("positive integer", "At most this many rows."),
            "no-index": ("flag", "Rows are not cross-reference targets."),
            "no-index-entry": ("flag", "No general-index entry; the rows stay targets."),
            "node": ("node name", "The Conv or Gemm node of `:show: example`."),
            "inputs": ("`module:attribute` or a `.npy` file",
                       ("Float model inputs for `example` and `agreement`, batch first: one "
                        "array, or (`module:attribute`) a dict of arrays by graph input name "
                        "for a model with several inputs.")),
            "images": ("positive integer", "How many inputs `agreement` runs."),
            "image": ("non-negative integer", "Which input `example` uses."),
            "position": ("integers, comma-separated",
                         ("The output element of `example`: channel, row, column of a Conv; "
                          "column of a Gemm (outside the output: a `qdq.option` warning).")),
            "rounding": ("`half_even` or `half_up`", "Rounding of the requantization."),
            **CAPTION_OPTION_DOCS,
        }

    def run(self) -> list[Node]:
        show = self.options.get("show", "table")
        if show != "table" and "inputs" not in self.options:
            return self.warn_option(f"qdq-requant: :show: {show} needs :inputs: "
                                    "(module:attribute or a .npy file of model inputs)")
        if show == "example" and "node" not in self.options:
            return self.warn_option("qdq-requant: :show: example needs :node: (a Conv or "
                                    "Gemm node)")
        loaded = self.load_model()
        if loaded is None:
            return []
        if show == "table":
            return self.recipe_table(loaded)
        try:
            return self.example(loaded) if show == "example" else self.agreement(loaded)
        except ImportError as exc:
            self.warn_reference(f"the integer reference needs {exc.name or exc}")
        except Exception as exc:  # noqa: BLE001  (the one boundary of the integer reference)
            self.warn_reference(f"{loaded.key}: {backend.integer_program.describe_failure(exc)}")
        return []

    def warn_reference(self, message: str) -> None:
        self.warn(f"qdq-requant: {message}", "reference")

    def recipe_table(self, loaded: LoadedModel) -> list[Node]:
        recipes = self.selected_recipes(loaded.analysis)
        if not recipes:
            return self.nothing_to_show(loaded, "requantization recipe")
        rows = requant_rows(loaded.key, recipes, full=self.options.get("values") == "full")
        anchors = self.register_targets(loaded.key, rows)
        return [self.index_node(loaded.key, rows, anchors, "requantization"),
                self.table(REQUANT_HEADERS, rows, REQUANT_WIDTHS, "qdq-requant", anchors)]

    def table(self, headers: list[str], rows: list[Row], widths: list[int], css: str,
              anchors: list[list[str]] | None = None) -> nodes.container:
        """The table, in its box (see :func:`presentation.table_box`)."""
        table = build_table(headers, rows, widths, anchors=anchors,
                            classes=[css, *self.options.get("class", [])],
                            title=self.options.get("caption"))
        self.set_source_info(table)
        self.add_name(table)
        return table_box(table, widths)

    def selected_recipes(self, analysis: QdqModel) -> list[RequantRecipe]:
        """Recipes passing ``:nodes:`` (on compute node names), ``:ops:`` and ``:limit:``."""
        pattern = self.options.get("nodes")
        ops = self.op_filter()
        recipes = backend.requant_recipes(analysis)
        selected = [recipe for recipe in recipes
                    if (pattern is None or pattern.search(recipe.name))
                    and (not ops or recipe.op_type in ops)][: self.options.get("limit")]
        if not selected and recipes and (pattern or ops):
            self.warn(f"qdq-requant: no quantized-op group matches the filters in "
                      f"{self.arguments[0]}; no table", "filter")
        return selected

    def model_inputs(self) -> ModelInputs | None:
        """The float inputs named by ``:inputs:`` (a .npy file or module:attribute)."""
        spec = self.options["inputs"].strip()
        try:
            if spec.endswith(".npy"):
                path = self.page_relative_path(spec)
                self.env.note_dependency(path)
                return backend.integer_inputs.load_input_file(path, self.qdq_config("qdq_max_model_bytes"))
            if spec not in _named_inputs_cache:
                _named_inputs_cache[spec] = backend.integer_inputs.load_named_inputs(
                    spec, self.qdq_config("qdq_max_model_bytes"))
            return _named_inputs_cache[spec]
        except ImportError:
            raise
        except Exception as exc:  # noqa: BLE001  (user code: never crash the build)
            self.warn_reference(f"cannot read the inputs {spec!r} ({type(exc).__name__}: {exc})")
            return None

    def example(self, loaded: LoadedModel) -> list[Node]:
        inputs = self.model_inputs()
        if inputs is None:
            return []
        image = self.options.get("image", 0)
        count = backend.integer_inputs.input_count(inputs)
        if image >= count:
            raise backend.integer_program.IntegerReferenceError(f":image: {image} but only {count} "
                                                  "inputs")
        program = backend.integer_program.build_integer_program(
            loaded.path, max_elements=self.qdq_config("qdq_max_elements"), **self.load_limits())
        rounding = self.options.get("rounding", "half_even")
        values = program.run(backend.integer_inputs.first_inputs(inputs, image + 1),
                             rounding=rounding)
        step = program.step(self.options["node"])
        try:
            example = backend.worked_example.worked_example(program, values, step.node, image=image,
                                               rounding=rounding,
                                               position=self.options.get("position"))
        except IndexError as exc:
            if "position" not in self.options:
                raise  # not the reader's position: the model's (a warning, below)
            position = ", ".join(map(str, self.options["position"]))
            return self.warn_option(f"qdq-requant: :position: {position} lies outside the "
                                    f"output of {step.recipe.name} ({exc})")
        per_line = step.weight.shape[-1] * step.weight.shape[-2] \
            if step.op_type == "Conv" and step.weight is not None else 16
        rows = example_rows(example, step.recipe, per_line)
        return [self.table(["Step", "Value"], rows, [30, 70], "qdq-requant-example")]

    def agreement(self, loaded: LoadedModel) -> list[Node]:
        inputs = self.model_inputs()
        if inputs is None:
            return []
        count = self.options.get("images")
        rounding = self.options.get("rounding", "half_even")
        key = (loaded.analysis.path, loaded.analysis.file_status, self.options["inputs"], count,
               rounding)
        report = _agreement_cache.get(key)
        if report is None:
            report = backend.onnxruntime_check.compare_with_onnxruntime(
                loaded.path, backend.integer_inputs.first_inputs(inputs, count), rounding=rounding,
                max_elements=self.qdq_config("qdq_max_elements"), **self.load_limits())
            _agreement_cache[key] = report
        rows = agreement_rows(loaded.key, report)
        summary = nodes.paragraph("", nodes.Text(
            f"Top-1 class identical on {report.top1_equal} of {report.images} inputs; "
            f"integer reference with {rounding.replace('_', ' ')} rounding against ONNX "
            f"Runtime {report.onnxruntime_version} (CPU provider, default optimisations)."))
        return [self.table(AGREEMENT_HEADERS, rows, AGREEMENT_WIDTHS, "qdq-requant-agreement"),
                summary]
