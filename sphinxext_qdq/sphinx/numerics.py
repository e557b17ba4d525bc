"""``qdq-histogram`` and ``qdq-error``: quantization numerics on the page.

The directives compute plain records (:mod:`sphinxext_qdq.numerics`) at read time and
return tables plus ``qdq_plot`` nodes carrying the picture's record; the builders' visitors
draw it (SVG in HTML, PDF in LaTeX) under a name hashed from that record, so a picture
already drawn is never drawn again. ONNX Runtime is imported by ``qdq-error`` and by
``qdq-histogram`` with ``:inputs:``, matplotlib when a picture is drawn: a build without
these directives imports neither.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging

from sphinxext_qdq.numerics import NumericsError
from sphinxext_qdq.sphinx import backend
from sphinxext_qdq.sphinx.directives import (
    CAPTION_OPTION_DOCS,
    CAPTION_OPTIONS,
    LoadedModel,
    OptionDocs,
    QdqGraphDirective,
    QdqModelDirective,
    name_list,
    regex_option,
    role_list,
)
from sphinxext_qdq.sphinx.presentation import table_box
from sphinxext_qdq.sphinx.tables import Row, build_table, code, node_link

if TYPE_CHECKING:
    from docutils.nodes import Node
    from sphinx.util.typing import OptionSpec
    from sphinx.writers.html5 import HTML5Translator
    from sphinx.writers.latex import LaTeXTranslator

    from sphinxext_qdq.analysis.records import QdqModel, QdqNode, Role
    from sphinxext_qdq.integer.inputs import ModelInputs
    from sphinxext_qdq.numerics.error import ErrorReport, TensorError
    from sphinxext_qdq.numerics.grid import ActivationGrid, GridStats, ModelConstants
    from sphinxext_qdq.render.dot import DotOptions

logger = logging.getLogger(__name__)

#: Default ``:bins:`` of the float histograms; ``:bins:`` above the limit is an error.
DEFAULT_BINS = 64
MAX_BINS = 1000

#: Error reports computed in this process: (float hash, quantized hash, inputs hash).
_error_cache: dict[tuple[str, str, str], ErrorReport] = {}
#: Float inputs named ``module:attribute``, loaded once per process.
_named_inputs: dict[str, ModelInputs] = {}


# -- the picture node ---------------------------------------------------------------------
class qdq_plot(nodes.General, nodes.Element):
    """A numerics picture: ``picture`` (a :mod:`~sphinxext_qdq.numerics.plots` record) and
    ``alt`` (the key numbers as text)."""


def _draw(translator: Any, node: qdq_plot, folder: Path, fmt: str) -> str | None:
    """Draw (unless drawn already) and return the file name; warn at the node on failure."""
    try:
        from sphinxext_qdq.numerics.plots import draw

        return draw(node["picture"], folder, fmt).name
    except ImportError as exc:
        problem = f"matplotlib is needed to draw it ({exc.name or exc})"
    except Exception as exc:  # noqa: BLE001  (a drawing failure never stops the build)
        problem = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    logger.warning("qdq: the picture is not drawn: %s", problem, location=node, type="qdq",
                   subtype="plot")
    return None


def html_visit_qdq_plot(self: HTML5Translator, node: qdq_plot) -> None:
    name = _draw(self, node, Path(self.builder.outdir, self.builder.imagedir), "svg")
    if name is None:
        self.body.append(f'<p class="qdq-plot-missing">{self.encode(node["alt"])}</p>')
    else:
        source = posixpath.join(self.builder.imgpath, name)
        self.body.append(f'<img src="{self.attval(source)}" alt="{self.attval(node["alt"])}" '
                         'class="qdq-plot" />\n')
    raise nodes.SkipNode


def latex_visit_qdq_plot(self: LaTeXTranslator, node: qdq_plot) -> None:
    name = _draw(self, node, Path(self.builder.outdir), "pdf")
    if name is not None:
        self.body.append(f"\n\\sphinxincludegraphics[width=\\linewidth]{{{name}}}\n")
    raise nodes.SkipNode


def text_visit_qdq_plot(self: Any, node: qdq_plot) -> None:
    """Builders without pictures: the alternative text."""
    paragraph = nodes.paragraph("", "", nodes.Text(f"[{node['alt']}]"))
    paragraph.document = node.document
    paragraph.walkabout(self)
    raise nodes.SkipNode


PLOT_VISITORS = {
    "html": (html_visit_qdq_plot, None),
    "latex": (latex_visit_qdq_plot, None),
    "text": (text_visit_qdq_plot, None),
    "man": (text_visit_qdq_plot, None),
    "texinfo": (text_visit_qdq_plot, None),
}


def figure(picture: object, alt: str, caption: str, classes: list[str]) -> nodes.figure:
    """A figure of one picture; the caption is text (never parsed as markup)."""
    plot = qdq_plot("", picture=picture, alt=alt)
    return nodes.figure("", plot, nodes.caption(caption, "", nodes.Text(caption)),
                        classes=["qdq-plot-figure", *classes])


# -- shared directive plumbing ---------------------------------------------------------------
def warn_numerics(directive: QdqModelDirective, message: str) -> None:
    directive.warn(f"{directive.name}: {message}", "numerics")


def read_inputs(directive: QdqModelDirective, spec: str, images: int | None
                ) -> ModelInputs | None:
    """The float inputs *spec* names (a ``.npy`` file or ``module:attribute``, as for
    ``qdq-requant``), the first *images* of them; None (warned) when unreadable."""
    from sphinxext_qdq.integer.inputs import (
        first_inputs,
        input_count,
        load_input_file,
        load_named_inputs,
    )

    spec = spec.strip()
    try:
        if spec.endswith(".npy"):
            _rel, path = directive.env.relfn2path(spec, directive.env.docname)
            directive.env.note_dependency(path)
            values = load_input_file(path)
        else:
            if spec not in _named_inputs:
                _named_inputs[spec] = load_named_inputs(spec)
            values = _named_inputs[spec]
    except Exception as exc:  # noqa: BLE001  (user code and files: never crash the build)
        warn_numerics(directive, f"cannot read the inputs {spec!r} "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
        return None
    if input_count(values) == 0:
        warn_numerics(directive, f"the inputs {spec!r} are empty")
        return None
    return first_inputs(values, images)


def error_report(directive: QdqModelDirective, loaded: LoadedModel, float_argument: str,
                 spec: str, images: int | None) -> tuple[LoadedModel, ErrorReport] | None:
    """(float model, report) of *loaded* against *float_argument* on the inputs *spec*;
    None when a warning said why not. Reports are kept for the process."""
    reference = directive.load_model(float_argument, diagnose=False)
    if reference is None:
        return None
    inputs = read_inputs(directive, spec, images)
    if inputs is None:
        return None
    key = (reference.analysis.path, reference.analysis.file_status, loaded.analysis.path,
           loaded.analysis.file_status, inputs_hash(inputs))
    report = _error_cache.get(key)
    if report is None:
        try:
            from sphinxext_qdq.numerics.error import tensor_errors

            report = tensor_errors(reference.path, loaded.path, inputs,
                                   quantized=loaded.analysis, reference=reference.analysis)
        except ImportError as exc:
            warn_numerics(directive, f"ONNX Runtime is needed ({exc.name or exc})")
            return None
        except NumericsError as exc:
            warn_numerics(directive, f"{loaded.key} against {reference.key}: {exc}")
            return None
        _error_cache[key] = report
    return reference, report


#: What ``:inputs:`` of ``qdq-error`` and ``qdq-histogram`` takes (their ``option_docs``).
INPUTS_MEANING = ("Float model inputs, batch first, as for `qdq-requant`: a `.npy` file "
                  "(relative to the page, or `/…` from the source directory; no pickles) or "
                  "`module:attribute` (attributes may end in `()`).")


class NumericsDirective(QdqModelDirective):
    """Model, float model and inputs as the numerics directives read them."""

    def warn_numerics(self, message: str) -> None:
        warn_numerics(self, message)

    def float_model(self) -> LoadedModel | None:
        """The ``:float:`` model (path or ``qdq_models`` name), loaded like the model."""
        return self.load_model(self.options["float"], diagnose=False)

    def model_inputs(self) -> ModelInputs | None:
        """The inputs of ``:inputs:``, the first ``:images:`` of them."""
        return read_inputs(self, self.options["inputs"], self.options.get("images"))

    def constants(self, path: Path) -> ModelConstants:
        """The weights of the model at *path*, read within the configured caps."""
        from sphinxext_qdq.numerics.grid import ModelConstants

        return ModelConstants(path, max_elements=self.qdq_config("qdq_max_elements"),
                              max_bytes=self.qdq_config("qdq_max_model_bytes"))

    def plot_classes(self) -> list[str]:
        return self.options.get("class", [])


def inputs_hash(values: ModelInputs) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    named = sorted(values.items()) if isinstance(values, Mapping) else [("", values)]
    for name, array in named:
        digest.update(f"{name}{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def images_option(argument: str | None) -> int:
    return directives.positive_int(argument)


def bins_option(argument: str | None) -> int:
    value = directives.positive_int(argument)
    if value > MAX_BINS:
        raise ValueError(f"at most {MAX_BINS} bins")
    return value


# -- qdq-error -------------------------------------------------------------------------------
ERROR_HEADERS = ["Tensor", "Written by", "Quantized by", "SQNR (dB)", "Max |error|",
                 "Relative error", "Clipped by Q"]
ERROR_WIDTHS = [22, 16, 18, 10, 10, 10, 10]


class QdqErrorDirective(NumericsDirective):
    """``.. qdq-error:: MODEL``: every quantized activation against the ``:float:`` model on
    ``:inputs:`` (SQNR, largest and relative error), as a table and a picture."""

    option_spec: ClassVar[OptionSpec] = {
        "float": directives.unchanged_required,
        "inputs": directives.unchanged_required,
        "images": images_option,
        "show": lambda arg: directives.choice(arg, ("both", "table", "plot", "none")),
        "compare": directives.unchanged_required,
        "worst-weights": directives.flag,
        "bins": bins_option,
        "layout": lambda arg: directives.choice(arg, ("row", "column")),
        **CAPTION_OPTIONS,
    }

    @classmethod
    def option_docs(cls) -> OptionDocs:
        return {
            "float": ("model", ("Required: the float model the quantized one was made from "
                               "(a path or a `qdq_models` name).")),
            "inputs": ("`module:attribute` or a `.npy` file", "Required. " + INPUTS_MEANING),
            "images": ("positive integer", "Use the first N inputs."),
            "show": ("`both`, `table`, `plot` or `none`",
                     ("The table, the SQNR picture, both (default), or neither (with "
                     "`:worst-weights:`).")),
            "compare": ("model", ("A second quantized model of the same float model: its "
                                 "SQNR in a column and in bars next to this one's (same "
                                 "inputs).")),
            "worst-weights": ("flag", ("Add the weight histogram (as `qdq-histogram` with "
                                      "`:float:`) of the weighted layer whose output has the "
                                      "lowest SQNR.")),
            "bins": ("positive integer", "Bins of that weight histogram (default 64)."),
            "layout": ("`row` or `column`",
                       "Panels of that weight histogram, as for `qdq-histogram`."),
            **CAPTION_OPTION_DOCS,
        }

    def run(self) -> list[Node]:
        for required in ("float", "inputs"):
            if required not in self.options:
                return self.warn_option(f"qdq-error: :{required}: is required (:float: the "
                                        "float model, :inputs: a .npy file or "
                                        "module:attribute)")
        found = self.error_report()
        if found is None:
            return []
        loaded, reference, report = found
        other = None
        if "compare" in self.options:
            other = self.error_report(self.options["compare"])
            if other is None:
                return []
        show = self.options.get("show", "both")
        result: list[Node] = []
        if show in ("both", "table"):
            result.append(self.error_table(loaded.key, loaded.analysis, report, other))
            if report.unmatched:
                names = ", ".join(report.unmatched)
                result.append(nodes.paragraph("", "", nodes.Text(
                    f"Not compared (no tensor of the same name and shape in {reference.key}): "
                    f"{names}.")))
        if show in ("both", "plot"):
            result.append(self.error_figure(loaded.key, reference.key, report, other))
        if "worst-weights" in self.options:
            result.extend(self.worst_weights(loaded, reference, report))
        return result

    def worst_weights(self, loaded: LoadedModel, reference: LoadedModel, report: ErrorReport
                      ) -> list[Node]:
        """The weights of the layer writing the lowest-SQNR tensor, against their grid."""
        from sphinxext_qdq.numerics.grid import grid_stats

        model = loaded.analysis
        for tensor in sorted(report.tensors, key=lambda row: (row.sqnr_db, row.tensor)):
            group = model.group_of(tensor.producer) if tensor.producer else None
            if group is not None and group.weight_dq:
                break
        else:
            self.warn_numerics(f"{loaded.key}: no tensor of the report is written by a layer "
                               "with weights; no weight histogram")
            return []
        try:
            stats = grid_stats(model, model.qdq(group.weight_dq), self.constants(loaded.path),
                               bins=self.options.get("bins", DEFAULT_BINS),
                               float_constants=self.constants(reference.path))
        except NumericsError as exc:
            self.warn_numerics(f"{loaded.key}: {exc}")
            return []
        name = _node_name(model, group.node)
        lead = nodes.paragraph("", "", nodes.Text(
            f"The lowest SQNR of the weighted layers: {tensor.tensor}, {tensor.sqnr_db:.2f} dB, "
            "written by "), node_link(loaded.key, group.node, name), nodes.Text(
            f" ({group.op_type}); its weights against their integer grid are in the next figure."))
        return [lead, histogram_figure(loaded.key, stats, self.options.get("layout", "row"),
                                       self.plot_classes(), self)]

    def error_report(self, argument: str | None = None
                     ) -> tuple[LoadedModel, LoadedModel, ErrorReport] | None:
        """(model, float model, report) of the directive's model (or *argument*, the
        ``:compare:`` model); None when a warning said why not."""
        loaded = self.load_model(argument)
        if loaded is None:
            return None
        found = error_report(self, loaded, self.options["float"], self.options["inputs"],
                             self.options.get("images"))
        return None if found is None else (loaded, *found)

    def error_table(self, key: str, model: QdqModel, report: ErrorReport,
                    other: tuple[LoadedModel, LoadedModel, ErrorReport] | None = None
                    ) -> nodes.container:
        rows = []
        others = {row.tensor: row for row in other[2].tensors} if other else {}
        for row in report.tensors:
            cells: list[Any] = [
                [code(row.tensor)],
                [node_link(key, row.producer, _node_name(model, row.producer))]
                if row.producer else "graph input",
                [node_link(key, row.quantize_node, _node_name(model, row.quantize_node))]
                if row.quantize_node else "",
                sqnr_cell(row, report),
            ]
            if other is not None:
                match = others.get(row.tensor)
                cells.append(sqnr_cell(match, other[2]) if match else "not compared")
            cells += [f"{row.max_abs_error:.4g}", f"{row.relative_error:.2%}",
                      f"{row.outside_range:.2%}"]
            rows.append(Row(cells=cells))
        headers, widths = list(ERROR_HEADERS), list(ERROR_WIDTHS)
        if other is not None:
            headers[3] = f"SQNR (dB), {key}"
            headers.insert(4, f"SQNR (dB), {other[0].key}")
            widths = [20, 14, 16, 11, 11, 9, 9, 10]
        table = build_table(headers, rows, widths,
                            classes=["qdq-error", *self.plot_classes()],
                            title=self.options.get("caption"))
        self.set_source_info(table)
        self.add_name(table)
        return table_box(table, widths)

    def error_figure(self, key: str, float_key: str, report: ErrorReport,
                     other: tuple[LoadedModel, LoadedModel, ErrorReport] | None = None
                     ) -> nodes.figure:
        from sphinxext_qdq.numerics.plots import sqnr_picture

        text = error_caption(key, float_key, report)
        if other is not None:
            text += " " + error_caption(other[0].key, other[1].key, other[2])
            picture = sqnr_picture(report, f"SQNR per tensor against {float_key}", key,
                                   other[2], other[0].key)
        else:
            picture = sqnr_picture(report, f"{key} against {float_key}: SQNR per tensor")
        node = figure(picture, text, text, self.plot_classes())
        self.set_source_info(node)
        return node


def sqnr_cell(row: TensorError, report: ErrorReport) -> str:
    """``25.19``, or ``25.19 (lowest 1)`` for the three lowest of the report."""
    worst = report.worst
    if row.tensor in worst:
        return f"{row.sqnr_db:.2f} (lowest {worst.index(row.tensor) + 1})"
    return f"{row.sqnr_db:.2f}"


def _node_name(model: QdqModel, key: str) -> str:
    return model.node(key).name or key


def error_caption(key: str, float_key: str, report: ErrorReport) -> str:
    """The key numbers of an error report in one sentence."""
    values = [row.sqnr_db for row in report.tensors]
    lowest = min(report.tensors, key=lambda row: (row.sqnr_db, row.tensor))
    return (f"SQNR of {len(values)} tensors of {key} against {float_key} on {report.images} "
            f"inputs (ONNX Runtime {report.onnxruntime_version}): {min(values):.2f} to "
            f"{max(values):.2f} dB; lowest {lowest.tensor} ({lowest.sqnr_db:.2f} dB, relative "
            f"error {lowest.relative_error:.2%}).")


# -- qdq-histogram ---------------------------------------------------------------------------
HISTOGRAM_HEADERS = ["Tensor", "Q/DQ node", "Type", "Values", "Representable", "Clipped",
                     "Grid span used", "Codes used"]
HISTOGRAM_WIDTHS = [20, 18, 12, 12, 12, 8, 10, 8]


def _tensor_set(argument: str | None) -> frozenset[str]:
    return frozenset(name_list(argument))


class QdqHistogramDirective(NumericsDirective):
    """``.. qdq-histogram:: MODEL``: each selected weight (and, with ``:inputs:``, activation)
    against its integer grid: a table of the key numbers and one picture per tensor."""

    option_spec: ClassVar[OptionSpec] = {
        "nodes": regex_option,
        "tensors": _tensor_set,
        "roles": role_list,
        "bins": bins_option,
        "layout": lambda arg: directives.choice(arg, ("row", "column")),
        "float": directives.unchanged_required,
        "inputs": directives.unchanged_required,
        "images": images_option,
        "limit": directives.positive_int,
        **CAPTION_OPTIONS,
    }

    @classmethod
    def option_docs(cls) -> OptionDocs:
        return {
            "nodes": ("regular expression", ("Keep the tensors whose Q/DQ node or consumer "
                                            "(the Conv, Gemm … reading a weight) has a "
                                            "matching name.")),
            "tensors": ("tensor names, comma-separated",
                        ("Keep these tensors (the float tensor, the stored integer "
                        "initializer, or a Q/DQ output).")),
            "roles": ("roles, comma-separated", ("Keep the tensors of these roles. Default: "
                                                "`weight`, `weight pair`, and `activation` "
                                                "when `:inputs:` are given.")),
            "bins": ("positive integer", ("Bins of the float histogram (default 64, at most "
                                         "1000); the integer histogram has one bin per code "
                                         "up to 256 codes.")),
            "layout": ("`row` or `column`", ("The panels (float values, per-channel strip, "
                                            "integer codes) side by side (`row`, default) or "
                                            "stacked.")),
            "float": ("model", ("The float model: a stored weight's float values come from it "
                               "(matched by the consumer node's name and input index), so the "
                               "clipped fraction is real; without it they are the dequantized "
                               "integers.")),
            "inputs": ("`module:attribute` or a `.npy` file",
                       INPUTS_MEANING + " Activations are collected on them with ONNX "
                                        "Runtime."),
            "images": ("positive integer", "Use the first N inputs."),
            "limit": ("positive integer", "At most this many tensors."),
            **CAPTION_OPTION_DOCS,
        }

    def run(self) -> list[Node]:
        loaded = self.load_model()
        if loaded is None:
            return []
        qdqs = self.selected(loaded.analysis)
        if not qdqs:
            return []
        try:
            stats = self.statistics(loaded, qdqs)
        except NumericsError as exc:  # the model's or the float model's constants
            self.warn_numerics(f"{loaded.key}: {exc}")
            return []
        if not stats:
            return []
        table = self.histogram_table(loaded.key, loaded.analysis, stats)
        return [table, *(self.histogram_figure(loaded.key, item) for item in stats)]

    def roles(self) -> frozenset[Role]:
        default = {backend.Role.WEIGHT, backend.Role.WEIGHT_PAIR}
        if "inputs" in self.options:
            default.add(backend.Role.ACTIVATION)
        return self.options.get("roles") or frozenset(default)

    def selected(self, model: QdqModel) -> list[QdqNode]:
        from sphinxext_qdq.numerics.grid import select_qdq_nodes

        roles = self.roles()
        chosen = select_qdq_nodes(model, roles, self.options.get("nodes"),
                                  self.options.get("tensors"))[: self.options.get("limit")]
        if not chosen:
            self.warn(f"qdq-histogram: no tensor of the roles {', '.join(sorted(roles))} "
                      f"matches the filters in {self.arguments[0]}; nothing drawn", "filter")
        if backend.Role.ACTIVATION in roles and "inputs" not in self.options \
                and any(qdq.role == backend.Role.ACTIVATION for qdq in chosen):
            self.warn_option("qdq-histogram: :roles: lists activation, and activations "
                             "need :inputs: (a .npy file or module:attribute)")
            return []
        return chosen

    def statistics(self, loaded: LoadedModel, qdqs: list[QdqNode]) -> list[GridStats]:
        """The grid statistics of each tensor; one that has none (a scale of zero,
        unreadable data) is named in a warning and skipped, the others are drawn."""
        from sphinxext_qdq.numerics.grid import each_grid_stats

        constants = self.constants(loaded.path)
        float_constants = None
        if "float" in self.options:
            reference = self.float_model()
            if reference is None:
                return []
            float_constants = self.constants(reference.path)
        bins = self.options.get("bins", DEFAULT_BINS)
        grids = self.activations(loaded, [q for q in qdqs if q.role == backend.Role.ACTIVATION],
                                 bins)
        if grids is None:
            return []
        stats, skipped = each_grid_stats(loaded.analysis, qdqs, constants, bins=bins,
                                         float_constants=float_constants, grids=grids)
        for message in skipped:
            self.warn_numerics(f"{loaded.key}: {message}; skipped")
        return stats

    def activations(self, loaded: LoadedModel, qdqs: list[QdqNode], bins: int
                    ) -> dict[str, ActivationGrid] | None:
        """Q node key -> its activation's statistics over ``:inputs:`` (batch by batch)."""
        if not qdqs:
            return {}
        inputs = self.model_inputs()
        if inputs is None:
            return None
        try:
            from sphinxext_qdq.numerics.activations import activation_grids

            return activation_grids(loaded.path, inputs, qdqs, model=loaded.analysis,
                                    bins=bins)
        except ImportError as exc:
            self.warn_numerics(f"ONNX Runtime is needed ({exc.name or exc})")
        except NumericsError as exc:
            self.warn_numerics(f"{loaded.key}: {exc}")
        return None

    def histogram_table(self, key: str, model: QdqModel, stats: list[GridStats]
                        ) -> nodes.container:
        rows = []
        for item in stats:
            granularity = item.granularity + (f", {len(item.channels)} ch."
                                              if item.per_channel else "")
            grid = f"{item.grid_used:.0%}"
            if item.per_channel:
                grid += f" (min {item.grid_used_min:.0%})"
            elif item.channels:
                grid += (f" (output channels: mean {item.channel_grid_mean:.0%}, "
                         f"min {item.grid_used_min:.0%})")
            rows.append(Row(cells=[
                [code(item.tensor)],
                [node_link(key, item.qdq, _node_name(model, item.qdq))],
                f"{backend.dtype_label(item.dtype)}, {granularity}",
                f"{item.low:.4g} … {item.high:.4g}",
                f"{item.representable_low:.4g} … {item.representable_high:.4g}",
                f"{item.clipped:.2%}", grid, f"{item.codes_used} of {item.levels}",
            ]))
        table = build_table(HISTOGRAM_HEADERS, rows, HISTOGRAM_WIDTHS,
                            classes=["qdq-histogram", *self.plot_classes()],
                            title=self.options.get("caption"))
        self.set_source_info(table)
        self.add_name(table)
        return table_box(table, HISTOGRAM_WIDTHS)

    def histogram_figure(self, key: str, stats: GridStats) -> nodes.figure:
        return histogram_figure(key, stats, self.options.get("layout", "row"),
                                self.plot_classes(), self)


def histogram_figure(key: str, stats: GridStats, layout: str, classes: list[str],
                     directive: NumericsDirective) -> nodes.figure:
    """One tensor against its grid; the caption and alt text carry the key numbers."""
    from sphinxext_qdq.numerics.grid import caption_numbers
    from sphinxext_qdq.numerics.plots import HistogramPicture

    text = caption_numbers(stats)
    picture = HistogramPicture(title=f"{key}: {stats.tensor}", layout=layout, stats=stats)
    node = figure(picture, text, text, classes)
    directive.set_source_info(node)
    return node


# -- the :color-by: sqnr overlay of qdq-graph ----------------------------------------------
#: (lowest SQNR of the bin in dB, fill colour), best first: a colour-blind-safe diverging scale.
SQNR_COLOURS = ((40.0, "#1a9850"), (35.0, "#91cf60"), (30.0, "#d9ef8b"), (25.0, "#fee08b"),
                (20.0, "#fc8d59"), (float("-inf"), "#d73027"))


def sqnr_colour(value: float) -> str:
    """The fill of an SQNR; NaN (NaN in the activations) gets the lowest bin's."""
    return next((colour for low, colour in SQNR_COLOURS if value >= low), SQNR_COLOURS[-1][1])


def sqnr_legend() -> tuple[tuple[str, str], ...]:
    """(label, colour) of every bin of :data:`SQNR_COLOURS`."""
    labels = []
    high = None
    for low, colour in SQNR_COLOURS:
        if high is None:
            text = f"SQNR ≥ {low:g} dB"
        elif low == float("-inf"):
            text = f"SQNR < {high:g} dB"
        else:
            text = f"SQNR {low:g}–{high:g} dB"
        labels.append((text, colour))
        high = low
    return tuple(labels)


def sqnr_fills(directive: QdqModelDirective, loaded: LoadedModel
               ) -> tuple[tuple[str, str], ...] | None:
    """(compute node key, fill colour) of every quantized group whose output was compared
    with ``:float:`` on ``:inputs:``; None (warned) when the report cannot be made."""
    options = directive.options
    if "float" not in options or "inputs" not in options:
        directive.warn_option(f"{directive.name}: :color-by: sqnr needs :float: and :inputs: "
                              "(drawn without the colours)")
        return None
    found = error_report(directive, loaded, options["float"], options["inputs"],
                         options.get("images"))
    if found is None:
        return None
    groups = {group.node for group in loaded.analysis.groups}
    return tuple(sorted((node, sqnr_colour(value)) for node, value in found[1].by_node().items()
                        if node in groups))


#: The options of ``qdq-graph`` that only ``:color-by: sqnr`` reads.
OVERLAY_INPUTS = ("float", "inputs", "images")
ONLY_WITH_SQNR = (" (read only with it: without `:color-by:` it is a `qdq.option` warning and "
                  "the graph is drawn without colours).")


class QdqGraphOverlayDirective(QdqGraphDirective):
    """``.. qdq-graph:: MODEL`` draws the annotated QDQ graph; with ``:color-by: sqnr``,
    ``:float:`` and ``:inputs:`` each quantized group is filled by the SQNR of its output."""

    option_spec: ClassVar[OptionSpec] = {
        **QdqGraphDirective.option_spec,
        "color-by": lambda arg: directives.choice(arg, ("sqnr",)),
        "float": directives.unchanged_required,
        "inputs": directives.unchanged_required,
        "images": directives.positive_int,
    }

    @classmethod
    def option_docs(cls) -> OptionDocs:
        drawing = super().option_docs()
        overlay = {
            "color-by": ("`sqnr`", ("Fill each quantized group (its compute node) by the SQNR "
                                   "of its output against `:float:` on `:inputs:` (as "
                                   "`qdq-error` computes it), with a legend of the colours.")),
            "float": ("model", "The float model of `:color-by: sqnr`" + ONLY_WITH_SQNR),
            "inputs": ("`module:attribute` or a `.npy` file", ("The inputs of "
                                                              "`:color-by: sqnr`"
                                                              + ONLY_WITH_SQNR)),
            "images": ("positive integer", ("Use the first N inputs for `:color-by: sqnr`"
                                           + ONLY_WITH_SQNR)),
        }
        shared = ("align", "alt", *CAPTION_OPTION_DOCS)  # listed last, as for every directive
        return {**{name: doc for name, doc in drawing.items() if name not in shared},
                **overlay, **{name: drawing[name] for name in shared}}

    def drawing_options(self, loaded: LoadedModel) -> DotOptions:
        options = super().drawing_options(loaded)
        if "color-by" not in self.options:
            self.warn_unused_overlay_options()
            return options
        fills = sqnr_fills(self, loaded)
        if fills is None:  # warned: the graph is drawn without the overlay
            return options
        return dataclasses.replace(options, fills=fills, fill_legend=sqnr_legend())

    def warn_unused_overlay_options(self) -> None:
        """A ``qdq.option`` warning naming the overlay's options given without
        ``:color-by:`` (they feed only ``:color-by: sqnr``); the graph is drawn."""
        unused = [f":{name}:" for name in OVERLAY_INPUTS if name in self.options]
        if unused:
            self.warn_option(f"{self.name}: {', '.join(unused)} ignored: used only with "
                             ":color-by: sqnr, which is not given (drawn without colours)")

