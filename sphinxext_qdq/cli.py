"""``qdq-graph``: draw a QDQ ONNX model as SVG / PNG / DOT, without Sphinx.

``qdq-graph MODEL [-o DIR] [--format svg,png,dot] [--mode compact|full] [--pairs edges|nodes] ...``
writes ``DIR/BASE.svg`` (and the other formats asked for) with the same
analysis and DOT code the ``qdq-graph`` directive uses, by running graphviz's
``dot``. Problems with the input (a missing or unreadable model, graphviz
missing or failing, a bad option) end with one line on stderr,
``qdq-graph: error: ...``, and exit status 2; diagnostics of the analysis are
printed as one-line warnings.

The first argument may later name a subcommand (``qdq-graph vectors ...``):
:data:`SUBCOMMANDS` maps such names to their entry points; anything else is a
model path, so ``qdq-graph MODEL`` keeps working (``./vectors`` reaches a model
file that happens to be called ``vectors``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from sphinxext_qdq._version import __version__
from sphinxext_qdq.analysis.loader import (
    DEFAULT_MAX_BYTES,
    QdqModelError,
    load_qdq_model,
)
from sphinxext_qdq.analysis.queries import QdqSelectionError, select_region
from sphinxext_qdq.analysis.records import Diagnostic, QdqModel
from sphinxext_qdq.integer.inputs import load_input_file
from sphinxext_qdq.integer.kernels import IntegerStep
from sphinxext_qdq.integer.program import (
    IntegerProgram,
    build_integer_program,
    describe_failure,
)
from sphinxext_qdq.integer.requant import ROUNDINGS
from sphinxext_qdq.integer.vectors import (
    KernelVectors,
    c_header,
    c_identifier,
    group_input_shapes,
    kernel_vectors,
    random_group_inputs,
)
from sphinxext_qdq.onnxio.files import DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_PARAM_VALUES
from sphinxext_qdq.render.cost import DEFAULT_LAYOUT_BUDGET
from sphinxext_qdq.render.depth import choose_depth
from sphinxext_qdq.render.dot import (
    MODES,
    PAIR_STYLES,
    RANKDIRS,
    DotOptions,
    graph_node_count,
    render_dot,
)
from sphinxext_qdq.render.graphviz import DEFAULT_DOT_TIMEOUT, DotRunError, draw_files
from sphinxext_qdq.render.scopes import scope_paths
from sphinxext_qdq.render.text import one_line

PROG = "qdq-graph"
FORMATS = ("svg", "png", "dot")

#: Subcommand name -> entry point taking the remaining arguments, returning an exit status.
SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {}


class CliError(Exception):
    """A problem to report as ``qdq-graph: error: <message>`` with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become :class:`CliError` (one line, no usage)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


# -- messages -------------------------------------------------------------------


def report_error(message: object) -> None:
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)


def report_warning(message: object) -> None:
    print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr)


def diagnostic_text(diagnostic: Diagnostic) -> str:
    where = f" (node {diagnostic.node})" if diagnostic.node else ""
    return f"{diagnostic.message}{where} [qdq.{diagnostic.subtype}]"


# -- arguments ------------------------------------------------------------------


def _formats(text: str) -> tuple[str, ...]:
    """``svg,png`` -> ("svg", "png"); unknown or empty names are an error."""
    names = [name.strip().lower() for name in text.split(",")]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(map(repr, unknown))} (choose from {', '.join(FORMATS)})")
    return tuple(dict.fromkeys(names))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    if text.strip() == "0":
        return 0
    return _positive_int(text)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _depth(text: str) -> str | int:
    value = text.strip().lower()
    if value in ("auto", "all"):
        return value
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"{text!r}: expected auto, all or a positive integer")


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected one or more comma-separated names")
    return names


def _scope(text: str) -> tuple[str, ...]:
    parts = tuple(part for part in text.split("/") if part.strip())
    if not parts:
        raise argparse.ArgumentTypeError("expected a scope such as layer1/layer1.0")
    return parts


def _base_name(text: str) -> str:
    if not text or text in (".", "..") or "/" in text or os.sep in text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain file name")
    return text


def add_max_param_values(parser: argparse.ArgumentParser) -> None:
    """``--max-param-values N``, for every subcommand that analyses a model."""
    parser.add_argument("--max-param-values", metavar="N", type=_positive_int,
                        default=DEFAULT_MAX_PARAM_VALUES,
                        help="most values read for one scale or zero point; a larger one "
                             "is reported as a warning and not read "
                             f"(default: {DEFAULT_MAX_PARAM_VALUES})")


def graph_parser() -> argparse.ArgumentParser:
    """Arguments of ``qdq-graph MODEL``."""
    parser = _Parser(prog=PROG, description="Draw a quantized (QDQ) ONNX model with graphviz.")
    parser.add_argument("model", metavar="MODEL", help="the .onnx file")
    parser.add_argument("-o", "--output-dir", metavar="DIR", default=".", type=Path,
                        help="folder for the output files (created if needed; default: .)")
    parser.add_argument("--format", metavar="LIST", type=_formats, default=("svg",),
                        dest="formats", help="comma-separated: svg, png, dot (default: svg)")
    parser.add_argument("--mode", choices=MODES, default="compact",
                        help="compact: weight DQs folded, Q→DQ pairs drawn small (default); "
                             "full: every ONNX node")
    parser.add_argument("--pairs", choices=PAIR_STYLES, default="edges",
                        help="compact mode: a Q→DQ pair drawn on the edge it quantizes "
                             "(edges, the default) or as a node (nodes)")
    parser.add_argument("--rankdir", choices=RANKDIRS, default="TB", type=str.upper,
                        help="layout direction, top-bottom or left-right (default: TB)")
    parser.add_argument("--legend", action="store_true", help="draw a legend")
    parser.add_argument("--from", metavar="NAMES", type=_names, dest="sources",
                        help="comma-separated node or tensor names: draw only what lies "
                             "downstream of them (and upstream of --to)")
    parser.add_argument("--to", metavar="NAMES", type=_names, dest="targets",
                        help="comma-separated node or tensor names: draw only what lies "
                             "upstream of them (and downstream of --from)")
    parser.add_argument("--depth", metavar="auto|all|N", type=_depth, default="auto",
                        help="scopes N levels deep drawn as one box each; auto (default): "
                             "every node if the estimated layout time fits --budget, else "
                             "the deepest depth that fits; all: every node")
    parser.add_argument("--scope", metavar="PATH", type=_scope,
                        help="draw only the nodes inside this scope (e.g. layer1/layer1.0)")
    parser.add_argument("--budget", metavar="SECONDS", type=_positive_seconds,
                        default=DEFAULT_LAYOUT_BUDGET,
                        help="estimated dot time --depth auto may spend "
                             f"(default: {DEFAULT_LAYOUT_BUDGET:g})")
    parser.add_argument("--name", metavar="BASE", type=_base_name,
                        help="base name of the output files (default: the model file's stem)")
    parser.add_argument("--max-bytes", metavar="N", type=_positive_int, default=DEFAULT_MAX_BYTES,
                        help=f"largest model file to read (default: {DEFAULT_MAX_BYTES})")
    add_max_param_values(parser)
    parser.add_argument("--max-nodes", metavar="N", type=_non_negative_int, default=0,
                        help="draw a short note instead of a graph above N nodes (0: no limit)")
    parser.add_argument("--dot", metavar="PATH", default="dot", dest="dot_binary",
                        help="the graphviz dot program (default: dot)")
    parser.add_argument("--timeout", metavar="SECONDS", type=_positive_seconds,
                        default=DEFAULT_DOT_TIMEOUT,
                        help=f"time limit of one dot run (default: {DEFAULT_DOT_TIMEOUT:g})")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


# -- work -----------------------------------------------------------------------


def load_limits(args: argparse.Namespace) -> dict[str, int]:
    """The caps of ``--max-bytes`` and ``--max-param-values``, as the loader takes them."""
    return {"max_bytes": args.max_bytes, "max_param_values": args.max_param_values}


def analysed_model(path: str | os.PathLike[str], args: argparse.Namespace) -> QdqModel:
    """The model a subcommand works on, loaded with the caps of *args*; each of its
    diagnostics printed as a one-line warning (a float reference model is loaded with
    :func:`load_model` and not diagnosed: "no quantization" is what it should say)."""
    model = load_model(path, **load_limits(args))
    for diagnostic in model.diagnostics:
        report_warning(diagnostic_text(diagnostic))
    return model


def load_model(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES,
               max_param_values: int = DEFAULT_MAX_PARAM_VALUES) -> QdqModel:
    """The analysed model; every loading problem becomes a :class:`CliError`."""
    try:
        return load_qdq_model(path, max_bytes=max_bytes, max_param_values=max_param_values)
    except QdqModelError as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"{path}: {error.strerror or error}") from None


def run_dot(dot_text: str, output_format: str, target: Path, *, dot_binary: str = "dot",
            timeout: float = DEFAULT_DOT_TIMEOUT,
            advice: Callable[[], str] | None = None) -> None:
    """Render ``dot_text`` to ``target`` with graphviz (written whole or not at all);
    *advice* says, after a timeout, what draws less."""
    try:
        draw_files(dot_text, [(output_format, target)], dot=dot_binary, timeout=timeout)
    except DotRunError as error:
        less = advice() if advice and error.reason == "timeout" else ""
        hints = {"timeout": f" ({less or 'draw less with --depth, --from/--to or '}"
                            "raise --timeout)",
                 "missing": ": install graphviz (Debian: apt-get install graphviz) or pass "
                            "--dot PATH"}
        raise CliError(f"{error}{hints.get(error.reason, '')}") from None


def timeout_advice(model: QdqModel, options: DotOptions, budget: float) -> str:
    """What draws less than *options*: a smaller depth, a region, a node cap."""
    hints = []
    smaller = choose_depth(model, dataclasses.replace(options, depth=0), budget)
    if smaller.depth and (not options.depth or smaller.depth < options.depth):
        hints.append(f"--depth {smaller.depth} (estimated {smaller.estimate:.2g} s)")
    hints.append("a region with --from/--to")
    if not options.max_nodes:
        hints.append("--max-nodes N for a note instead")
    return "draw less: " + ", ".join(hints) + ", or "


def output_folder(path: Path) -> Path:
    """``path`` as an existing folder (created if needed)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CliError(f"{path}: exists and is not a folder") from None
    except OSError as error:
        raise CliError(f"{path}: cannot create the output folder ({error.strerror or error})") \
            from None
    if not path.is_dir():
        raise CliError(f"{path}: exists and is not a folder")
    return path


def write_graph_files(model: QdqModel, output_dir: Path, base: str, formats: Sequence[str],
                      options: DotOptions, *, dot_binary: str = "dot",
                      timeout: float = DEFAULT_DOT_TIMEOUT,
                      budget: float = DEFAULT_LAYOUT_BUDGET) -> list[Path]:
    """Write ``output_dir/base.<format>`` for each format; return the paths written."""
    folder = output_folder(output_dir)
    dot_text = render_dot(model, options)
    written = []
    for output_format in formats:
        target = folder / f"{base}.{output_format}"
        if output_format == "dot":
            try:
                target.write_text(dot_text, encoding="utf-8")
            except OSError as error:
                raise CliError(f"{target}: cannot be written ({error.strerror or error})") from None
        else:
            run_dot(dot_text, output_format, target, dot_binary=dot_binary, timeout=timeout,
                    advice=lambda: timeout_advice(model, options, min(budget, timeout / 4)))
        written.append(target)
    return written


def run_graph(argv: Sequence[str]) -> int:
    """``qdq-graph MODEL ...``: draw one model."""
    args = graph_parser().parse_args(list(argv))
    model = analysed_model(args.model, args)
    options = graph_options(model, args)
    count = graph_node_count(model, options)
    if args.max_nodes and count > args.max_nodes:
        report_warning(f"{args.model}: the {args.mode} graph has {count} nodes, more than "
                       f"--max-nodes {args.max_nodes}: drawing a note instead")
    base = args.name or Path(args.model).stem or "model"
    for path in write_graph_files(model, args.output_dir, base, args.formats, options,
                                  dot_binary=args.dot_binary, timeout=args.timeout,
                                  budget=args.budget):
        print(path)
    return 0


def graph_options(model: QdqModel, args: argparse.Namespace) -> DotOptions:
    """The drawing the arguments ask for, its depth chosen (``auto``: a collapsed drawing
    says in its title which depth and which grouping)."""
    selection = None
    if args.sources or args.targets:
        try:
            selection = select_region(model, args.sources or [], args.targets or [])
        except QdqSelectionError as error:
            raise CliError(str(error)) from None
    grouping = scope_paths(model)
    if args.scope and not grouping.members(args.scope):
        raise CliError(f"no node lies in scope {'/'.join(args.scope)!r} "
                       f"(grouping: {grouping.kind})")
    options = DotOptions(mode=args.mode, rankdir=args.rankdir, legend=args.legend,
                         max_nodes=args.max_nodes, pairs=args.pairs, selection=selection,
                         scope=args.scope or ())
    if args.depth == "all":
        return options
    if isinstance(args.depth, int):
        return dataclasses.replace(options, depth=max(args.depth, len(options.scope) + 1))
    choice = choose_depth(model, options, args.budget)  # the drawing says what it chose
    return dataclasses.replace(options, depth=choice.depth)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``qdq-graph`` and ``python -m sphinxext_qdq``; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        with np.errstate(all="ignore"):  # a hostile model's overflows: no stray stderr lines
            if arguments and arguments[0] in SUBCOMMANDS:
                return SUBCOMMANDS[arguments[0]](arguments[1:])
            return run_graph(arguments)
    except CliError as error:
        report_error(error)
        return 2
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        report_error("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001  (a bug: still one line, never a traceback)
        report_error(f"unexpected {type(error).__name__}: {error}")
        return 2


# -- qdq-graph vectors ----------------------------------------------------------------


def vectors_parser() -> argparse.ArgumentParser:
    """Arguments of ``qdq-graph vectors MODEL --node NAME``."""
    parser = _Parser(prog=f"{PROG} vectors",
                     description="Write the integer test vectors of one quantized-op group "
                                 "(input, weights, bias, multiplier, shift, expected output) "
                                 "as .npy files and a C header.")
    parser.add_argument("model", metavar="MODEL", help="the .onnx file")
    parser.add_argument("--node", required=True, metavar="NAME",
                        help="the compute node of the group (its Conv, Gemm, Add ...)")
    parser.add_argument("-o", "--output-dir", metavar="DIR", default=".", type=Path,
                        help="folder for the output files (created if needed; default: .)")
    parser.add_argument("--inputs", metavar="FILE", type=Path,
                        help="float model inputs (.npy, batch first): the group's integer "
                             "inputs are computed from them by the integer reference "
                             "(default: random integers over the input type's range)")
    parser.add_argument("--batch", metavar="N", type=_positive_int, default=1,
                        help="first (batch) dimension of random inputs (default: 1)")
    parser.add_argument("--seed", metavar="N", type=_non_negative_int, default=0,
                        help="seed of random inputs (default: 0)")
    parser.add_argument("--rounding", choices=ROUNDINGS, default="half_even",
                        help="rounding of the requantization (default: half_even, as "
                             "QuantizeLinear)")
    parser.add_argument("--name", metavar="BASE", type=_base_name,
                        help="base name of the files (default: the node name as a C identifier)")
    parser.add_argument("--max-bytes", metavar="N", type=_positive_int, default=DEFAULT_MAX_BYTES,
                        help=f"largest model (or .npy) file to read (default: {DEFAULT_MAX_BYTES})")
    add_max_param_values(parser)
    parser.add_argument("--max-elements", metavar="N", type=_positive_int,
                        default=DEFAULT_MAX_ELEMENTS,
                        help="largest array (elements) allocated from a size the model "
                             f"declares: input shapes, weights (default: {DEFAULT_MAX_ELEMENTS})")
    return parser


def run_vectors(argv: Sequence[str]) -> int:
    """``qdq-graph vectors MODEL --node NAME -o DIR``: one group's test vectors."""
    args = vectors_parser().parse_args(list(argv))
    model = analysed_model(args.model, args)
    try:
        program = build_integer_program(args.model, strict=args.inputs is not None,
                                        max_elements=args.max_elements, **load_limits(args))
        step = _vectors_step(program, args.node, args.model)
        if args.inputs is not None:
            values = program.run(_float_inputs(args.inputs, args.max_bytes),
                                 rounding=args.rounding)
            inputs = [values[name] for name in step.inputs]
        else:
            shapes = group_input_shapes(model, step, args.batch,
                                                  max_elements=args.max_elements)
            inputs = random_group_inputs(step, shapes, args.seed)
        vectors = kernel_vectors(step, inputs, rounding=args.rounding)
    except CliError:
        raise
    except Exception as error:  # noqa: BLE001  (the one boundary of the integer reference)
        raise CliError(f"{args.model}: {describe_failure(error)}") from None
    base = args.name or c_identifier(step.recipe.name)
    try:
        written = write_vectors(vectors, output_folder(args.output_dir), base,
                                source=Path(args.model).name)
    except CliError:
        raise
    except Exception as error:  # noqa: BLE001  (the header is the reference's too)
        raise CliError(f"{args.model}: {describe_failure(error)}") from None
    for path in written:
        print(path)
    return 0


def _vectors_step(program: IntegerProgram, node: str, model_path: str
                  ) -> IntegerStep:
    try:
        return program.step(node)
    except KeyError:
        names = ", ".join(step.recipe.name for step in program.steps)
        raise CliError(f"{model_path}: {node!r} is not the compute node of a quantized-op group "
                       f"the integer reference runs (choose from: {names or 'none'})") from None


def _float_inputs(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    try:
        return load_input_file(path, max_bytes)
    except QdqModelError as error:
        raise CliError(f"{path}: not a readable .npy array ({error.reason})") from None
    except (OSError, ValueError, EOFError) as error:
        raise CliError(f"{path}: not a readable .npy array ({one_line(error)})") from None


def write_vectors(vectors: KernelVectors, folder: Path, base: str, *,
                  source: str = "") -> list[Path]:
    """``BASE_<array>.npy`` for each array and ``BASE.h``; return the paths written."""
    written = []
    try:
        for name, array in vectors.arrays.items():
            target = folder / f"{base}_{name}.npy"
            np.save(target, array, allow_pickle=False)
            written.append(target)
        header = folder / f"{base}.h"
        header.write_text(c_header(vectors, prefix=c_identifier(base),
                                             source=source), encoding="utf-8")
    except OSError as error:
        raise CliError(f"{folder}: cannot write the test vectors ({error.strerror or error})") \
            from None
    written.append(header)
    return written


SUBCOMMANDS["vectors"] = run_vectors


# -- qdq-graph error / histogram (quantization numerics) --------------------------------

ERROR_FORMATS = ("csv", "json", "md")
PICTURE_FORMATS = ("svg", "png", "pdf")


def error_parser() -> argparse.ArgumentParser:
    """Arguments of ``qdq-graph error FLOAT QUANTIZED --inputs X.npy``."""
    parser = _Parser(prog=f"{PROG} error",
                     description="Compare every quantized activation with the float model on "
                                 "the same inputs (ONNX Runtime): SQNR, largest and relative "
                                 "error, in data-flow order.")
    parser.add_argument("float_model", metavar="FLOAT", help="the float .onnx file")
    parser.add_argument("model", metavar="QUANTIZED", help="the quantized (QDQ) .onnx file")
    parser.add_argument("--inputs", required=True, type=Path, metavar="X.npy",
                        help="float model inputs, batch first (.npy, no pickles)")
    parser.add_argument("--images", type=_positive_int, metavar="N",
                        help="use the first N inputs (default: all)")
    parser.add_argument("--format", choices=ERROR_FORMATS, default="csv",
                        help="csv (default), json or md (a Markdown table)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write here instead of standard output")
    parser.add_argument("--max-bytes", metavar="N", type=_positive_int, default=DEFAULT_MAX_BYTES,
                        help=f"largest model file to read (default: {DEFAULT_MAX_BYTES})")
    add_max_param_values(parser)
    return parser


def run_error(argv: Sequence[str]) -> int:
    """``qdq-graph error FLOAT QUANTIZED --inputs X.npy``: the per-tensor error report."""
    from sphinxext_qdq.numerics import NumericsError
    from sphinxext_qdq.numerics.error import tensor_errors

    args = error_parser().parse_args(list(argv))
    reference_model = load_model(args.float_model, **load_limits(args))
    model = analysed_model(args.model, args)
    inputs = _float_inputs(args.inputs, args.max_bytes)[: args.images]
    try:
        report = tensor_errors(args.float_model, args.model, inputs, quantized=model,
                               reference=reference_model)
    except NumericsError as error:
        raise CliError(f"{args.model} against {args.float_model}: {error}") from None
    except ImportError as error:
        raise CliError(f"ONNX Runtime is needed ({error.name or error})") from None
    text = {"csv": error_csv, "json": error_json, "md": error_markdown}[args.format](report)
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as error:
            raise CliError(f"{args.output}: cannot be written ({error.strerror or error})") \
                from None
        print(args.output)
    return 0


ERROR_COLUMNS = ("tensor", "written_by", "op", "quantized_by", "elements", "sqnr_db",
                 "max_abs_error", "relative_error", "saturated_fraction", "lowest_rank")


def error_records(report: Any) -> list[dict[str, Any]]:
    """One dict per tensor (keys :data:`ERROR_COLUMNS`), in data-flow order."""
    worst = report.worst
    return [{"tensor": row.tensor, "written_by": row.producer or "", "op": row.producer_op,
             "quantized_by": row.quantize_node or "", "elements": row.elements,
             "sqnr_db": row.sqnr_db, "max_abs_error": row.max_abs_error,
             "relative_error": row.relative_error, "saturated_fraction": row.outside_range,
             "lowest_rank": worst.index(row.tensor) + 1 if row.tensor in worst else None}
            for row in report.tensors]


def error_csv(report: Any) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ERROR_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in error_records(report):
        writer.writerow({key: ("" if value is None else repr(value) if isinstance(value, float)
                               else value) for key, value in record.items()})
    return buffer.getvalue()


def error_json(report: Any) -> str:
    import json

    return json.dumps({"float_model": report.float_model,
                       "quantized_model": report.quantized_model, "images": report.images,
                       "onnxruntime_version": report.onnxruntime_version,
                       "tensors": error_records(report), "unmatched": list(report.unmatched)},
                      indent=2) + "\n"


def _markdown_cell(text: object) -> str:
    return one_line(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def error_markdown(report: Any) -> str:
    header = ("| Tensor | Written by | Quantized by | SQNR (dB) | Max abs error "
              "| Relative error | Saturated by Q |")
    lines = [header, "|---|---|---|---:|---:|---:|---:|"]
    for record in error_records(report):
        sqnr = f"{record['sqnr_db']:.2f}"
        if record["lowest_rank"]:
            sqnr += f" (lowest {record['lowest_rank']})"
        cells = [record["tensor"], record["written_by"] or "graph input",
                 record["quantized_by"], sqnr, f"{record['max_abs_error']:.4g}",
                 f"{record['relative_error']:.2%}", f"{record['saturated_fraction']:.2%}"]
        lines.append("| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _role_names(text: str) -> frozenset[Any]:
    from sphinxext_qdq.analysis.records import Role

    roles = {role.value: role for role in Role}
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in roles]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown role {', '.join(map(repr, unknown))} "
                                         f"(choose from {', '.join(roles)})")
    return frozenset(roles[name] for name in names)


def _regex(text: str) -> Any:
    import re

    try:
        return re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {error}") \
            from None


def histogram_parser() -> argparse.ArgumentParser:
    """Arguments of ``qdq-graph histogram MODEL -o DIR``."""
    parser = _Parser(prog=f"{PROG} histogram",
                     description="Draw each weight (and, with --inputs, activation) of a "
                                 "quantized model against its integer grid, one file per "
                                 "tensor.")
    parser.add_argument("model", metavar="MODEL", help="the quantized (QDQ) .onnx file")
    parser.add_argument("-o", "--output-dir", metavar="DIR", default=".", type=Path,
                        help="folder for the pictures (created if needed; default: .)")
    parser.add_argument("--format", choices=PICTURE_FORMATS, default="svg",
                        help="svg (default), png or pdf")
    parser.add_argument("--float", dest="float_model", metavar="FLOAT",
                        help="the float model: weights' float values come from it")
    parser.add_argument("--inputs", type=Path, metavar="X.npy",
                        help="float model inputs (.npy): activations are drawn too")
    parser.add_argument("--roles", type=_role_names, metavar="ROLES",
                        help="comma-separated roles (default: weight, weight pair; and "
                             "activation with --inputs)")
    parser.add_argument("--nodes", type=_regex, metavar="REGEX",
                        help="keep tensors whose Q/DQ or compute node name matches")
    parser.add_argument("--bins", type=_positive_int, default=64, metavar="N",
                        help="bins of the float histogram (default: 64)")
    parser.add_argument("--layout", choices=("row", "column"), default="row",
                        help="panels side by side (row, default) or stacked (column)")
    parser.add_argument("--max-bytes", metavar="N", type=_positive_int, default=DEFAULT_MAX_BYTES,
                        help=f"largest model file to read (default: {DEFAULT_MAX_BYTES})")
    parser.add_argument("--max-elements", metavar="N", type=_positive_int,
                        default=DEFAULT_MAX_ELEMENTS,
                        help="largest weight (elements) read from the model "
                             f"(default: {DEFAULT_MAX_ELEMENTS})")
    add_max_param_values(parser)
    return parser


def run_histogram(argv: Sequence[str]) -> int:
    """``qdq-graph histogram MODEL -o DIR``: one picture per tensor; prints each path and
    the tensor's key numbers."""
    from sphinxext_qdq.analysis.records import Role
    from sphinxext_qdq.numerics import NumericsError, grid, plots

    args = histogram_parser().parse_args(list(argv))
    model = analysed_model(args.model, args)
    roles = args.roles or frozenset({Role.WEIGHT, Role.WEIGHT_PAIR} | (
        {Role.ACTIVATION} if args.inputs is not None else set()))
    chosen = grid.select_qdq_nodes(model, roles, args.nodes)
    if not chosen:
        raise CliError(f"{args.model}: no tensor of the roles "
                       f"{', '.join(sorted(r.value for r in roles))} matches")
    activations = [qdq for qdq in chosen if qdq.role == Role.ACTIVATION]
    if activations and args.inputs is None:
        raise CliError("activations need --inputs X.npy")
    if args.float_model is not None:
        load_model(args.float_model, **load_limits(args))  # the same checks as the model
    try:
        grids = _activation_grids(args, model, activations)
        limits = {"max_elements": args.max_elements, "max_bytes": args.max_bytes}
        constants = grid.ModelConstants(args.model, **limits)
        float_constants = grid.ModelConstants(args.float_model, **limits) \
            if args.float_model else None
    except NumericsError as error:
        raise CliError(f"{args.model}: {error}") from None
    stats = _histogram_stats(args, model, chosen, grids,
                             {"constants": constants, "float_constants": float_constants})
    folder = output_folder(args.output_dir)
    used: set[str] = set()
    for item in stats:
        base = c_identifier(item.tensor)
        name, number = base, 2
        while name in used:
            name, number = f"{base}_{number}", number + 1
        used.add(name)
        picture = plots.HistogramPicture(title=f"{Path(args.model).stem}: {item.tensor}",
                                         layout=args.layout, stats=item)
        try:
            path = plots.save(picture, folder / f"{name}.{args.format}", args.format)
        except OSError as error:
            raise CliError(f"{folder}: cannot write {name}.{args.format} "
                           f"({error.strerror or error})") from None
        print(f"{path}\t{one_line(grid.caption_numbers(item))}")
    return 0


def _histogram_stats(args: argparse.Namespace, model: QdqModel, chosen: list[Any],
                     grids: dict[str, Any], constants: dict[str, Any]) -> list[Any]:
    """The grid statistics of every chosen tensor that has them; each other one is named
    in a warning and skipped, unless none has them: then the first is the error."""
    from sphinxext_qdq.numerics import grid

    stats, skipped = grid.each_grid_stats(model, chosen, bins=args.bins, grids=grids,
                                          **constants)
    if not stats:
        more = f"; {len(skipped) - 1} more tensor(s) fail too" if len(skipped) > 1 else ""
        raise CliError(f"{args.model}: {skipped[0]}{more}")
    for message in skipped:
        report_warning(f"{args.model}: {message}; skipped, the others are drawn "
                       "[qdq.numerics]")
    return stats


def _activation_grids(args: argparse.Namespace, model: QdqModel, activations: list[Any]
                      ) -> dict[str, Any]:
    """Q node key -> the activation's grid statistics over ``--inputs``, batch by batch."""
    if not activations:
        return {}
    from sphinxext_qdq.numerics.activations import activation_grids

    try:
        return activation_grids(args.model, _float_inputs(args.inputs, args.max_bytes),
                                activations, model=model, bins=args.bins)
    except ImportError as error:
        raise CliError(f"ONNX Runtime is needed ({error.name or error})") from None


SUBCOMMANDS["error"] = run_error
SUBCOMMANDS["histogram"] = run_histogram
