"""Issue 16: the crash and hang classes found by fuzzing, each reproduced here.

One Sphinx project holds one page per hostile model, each page using the model with
``qdq-params`` (full values), ``qdq-summary``, ``qdq-requant`` (table) and
``qdq-requant :show: example``. It is built once with the HTML and the text builder
(the outline) and once with LaTeX + pdflatex. Every page must be written, each problem
be one warning at the page and line of a directive with a ``qdq.*`` subtype, and no
traceback or "unexpected" message may reach the user. The command line's ``vectors``
subcommand and the file checks are tested directly.
"""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import qdq_factories as factories
from hostile_corpus import parse_warnings
from onnx import helper
from sphinx_helpers import build, make_project

from sphinxext_qdq import cli
from sphinxext_qdq.integer.inputs import load_input_file, load_named_inputs
from sphinxext_qdq.integer.program import build_integer_program, describe_failure
from sphinxext_qdq.onnxio.errors import QdqModelError
from sphinxext_qdq.onnxio.files import read_checked, regular_file
from sphinxext_qdq.sphinx.collector import file_hash

#: A build that hangs is stopped (with every thread's stack) after this many seconds.
HANG_SECONDS = 600


# -- the hostile models ----------------------------------------------------------------
def empty_per_axis() -> onnx.ModelProto:
    """A per-axis scale and zero point with no element at all."""
    model = factories.qdq_pair_model([0.5, 0.25], 0, shape=(1, 2), axis=1)
    for tensor in model.graph.initializer:
        del tensor.dims[:]
        tensor.dims.append(0)
        tensor.ClearField("float_data")
        tensor.ClearField("int32_data")
    return model


def float8_nan_zero_point() -> onnx.ModelProto:
    """A FLOAT8E4M3FN zero point whose bits are NaN (0x7F)."""
    model = factories.float8_model()
    zero_point = next(t for t in model.graph.initializer if t.name == "z")
    zero_point.ClearField("int32_data")
    zero_point.int32_data.append(0x7F)
    return model


def conv(**options: object) -> onnx.ModelProto:
    return factories.weight_dq_model(**options)  # type: ignore[arg-type]


def weight_dims_mismatch() -> onnx.ModelProto:
    model = conv()
    next(t for t in model.graph.initializer if t.name == "w_int8").dims[1] = 5
    return model


def ref_attr_outside_function() -> onnx.ModelProto:
    model = conv()
    node = next(n for n in model.graph.node if n.op_type == "Conv")
    attribute = onnx.AttributeProto(name="strides", type=onnx.AttributeProto.INTS,
                                    ref_attr_name="s")
    node.attribute.append(attribute)
    return model


def huge_declared_input() -> onnx.ModelProto:
    """A Conv whose declared input would take 2^40 int8 elements (a few hundred bytes)."""
    model = conv()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, 1 << 19, 1 << 19)):
        dim.dim_value = value
    return model


def long_names() -> onnx.ModelProto:
    model = conv()
    for node in model.graph.node:
        node.name = f"{node.name}_" + "x" * 100_000
    return model


@dataclass(frozen=True)
class Hostile:
    name: str
    write: object  # (folder) -> None: writes models/<name>.onnx (and companions)
    subtypes: frozenset[str]  # each must be warned (at least once)
    fragments: tuple[str, ...] = ()  # each must appear in this page's warnings


def model_file(build_model):
    def write(models: Path, name: str) -> None:
        (models / f"{name}.onnx").write_bytes(build_model().SerializeToString())
    return write


def special(kind: str):
    def write(models: Path, name: str) -> None:
        path = models / f"{name}.onnx"
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "zero":
            path.symlink_to("/dev/zero")
        else:
            path.symlink_to(path.name)  # a link to itself: a loop
    return write


def external_loop(models: Path, name: str) -> None:
    factories.external_scale_model(models, f"{name}.bin", write_data=False,
                                   filename=f"{name}.onnx")
    (models / f"{name}.bin").symlink_to(f"{name}.bin")


CASES = (
    Hostile("empty-axis", model_file(empty_per_axis), frozenset({"shape"})),
    Hostile("float8-nan", model_file(float8_nan_zero_point), frozenset({"reference"})),
    Hostile("zero-weight-scale", model_file(lambda: conv(scale=0.0)),
            frozenset({"scale", "reference"}), ("not a positive number",)),
    Hostile("axis-out-of-range", model_file(lambda: conv(scale=[0.1, 0.2, 0.3, 0.4],
                                                         zero_point=[0, 0, 0, 0], axis=7)),
            frozenset({"malformed", "reference"}), ("per-channel axis 7 is outside",)),
    Hostile("weight-dims", model_file(weight_dims_mismatch), frozenset({"reference"}),
            ("does not match its type and shape",)),
    Hostile("ref-attr", model_file(ref_attr_outside_function), frozenset({"reference"}),
            ("refers to the function attribute 's' outside a function",)),
    Hostile("fifo", special("fifo"), frozenset({"model"}), ("named pipe",)),
    Hostile("dev-zero", special("zero"), frozenset({"model"}), ("is a device",)),
    Hostile("symlink-loop", special("loop"), frozenset({"model"}), ("loop of symbolic links",)),
    Hostile("external-loop", external_loop, frozenset({"external_data"}),
            ("loop of symbolic links",)),
    Hostile("long-names", model_file(long_names), frozenset()),
)


def page(case: Hostile) -> tuple[str, list[int]]:
    """The page of one case and the line of each directive."""
    model = f"/models/{case.name}.onnx"
    blocks = [
        [f".. qdq-graph:: {model}"],
        [f".. qdq-params:: {model}", "   :values: full"],
        [f".. qdq-summary:: {model}"],
        [f".. qdq-requant:: {model}", "   :no-index:"],
        [f".. qdq-requant:: {model}", "   :show: example", "   :node: conv",
         "   :inputs: /inputs.npy"],
    ]
    lines = [f"Case {case.name}", "=" * 40, ""]
    positions = []
    for block in blocks:
        positions.append(len(lines) + 1)
        lines += [*block, "", "After.", ""]
    return "\n".join(lines), positions


def all_page() -> tuple[str, list[int]]:
    """One page holding every hostile model (``:no-index:`` on the tables: the case pages
    document the same rows), and the line of each directive."""
    lines = ["Every hostile model", "=" * 40, ""]
    for case in CASES:
        for line in page(case)[0].splitlines()[3:]:
            lines.append(line)
            if line.startswith(".. qdq-params::"):
                lines.append("   :no-index:")
        lines.append("")  # the next case's first directive starts a new block
    positions = [number + 1 for number, line in enumerate(lines) if line.startswith(".. qdq-")]
    assert len(positions) == 5 * len(CASES)
    return "\n".join(lines), positions


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("never-crash") / "src"
    pages = {"index.rst": "Hostile\n=======\n\n.. toctree::\n\n   all\n"
             + "".join(f"   cases/{case.name}\n" for case in CASES)}
    pages.update({f"cases/{case.name}.rst": page(case)[0] for case in CASES})
    pages["all.rst"] = all_page()[0]
    make_project(src, None, pages, conf="latex_documents = [('index', 'hostile.tex', "
                                        "'Hostile', 'qdq', 'manual')]")
    for case in CASES:
        case.write(src / "models", case.name)  # type: ignore[operator]
    np.save(src / "inputs.npy", np.random.default_rng(0).random((1, 3, 4, 4), np.float32))
    return src


def guarded_build(src: Path, builder: str, **options: object):
    """A build that cannot hang the test run for ever."""
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    try:
        return build(src, builder, **options)
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def html(project: Path):
    return guarded_build(project, "html", freshenv=True)


def page_warnings(result, case: Hostile):
    return [w for w in parse_warnings(result.warnings)
            if Path(w.file).name == f"{case.name}.rst"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_problem_is_one_located_warning(html, case: Hostile) -> None:
    assert (html.outdir / "cases" / f"{case.name}.html").is_file()
    warnings = page_warnings(html, case)
    _text, positions = page(case)
    for warning in warnings:
        assert warning.line in positions, warning
        assert warning.subtype is not None and not warning.continuation, warning
        assert "unexpected" not in warning.message and "Traceback" not in warning.message
    assert case.subtypes <= {w.subtype for w in warnings}, warnings
    text = "\n".join(w.message for w in warnings)
    for fragment in case.fragments:
        assert fragment in text
    assert "Traceback" not in html.warnings and "Exception occurred" not in html.status


def test_keep_going_build_of_every_hostile_model(project: Path, tmp_path: Path) -> None:
    """``sphinx-build -W --keep-going`` on the page holding every hostile model: the build
    ends (status 1: warnings are errors), every page is written, and every warning of the
    page is one line at one of its directives."""
    done = subprocess.run([str(Path(sys.executable).parent / "sphinx-build"), "-b", "html",
                           "-W", "--keep-going", "-q", "--no-color",  # CI=true colours
                           str(project), str(tmp_path / "out")],
                          check=False, capture_output=True, text=True, timeout=HANG_SECONDS)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Exception occurred" not in done.stderr
    assert (tmp_path / "out" / "all.html").is_file()
    for case in CASES:
        assert (tmp_path / "out" / "cases" / f"{case.name}.html").is_file()
    _text, positions = all_page()
    warnings = [w for w in parse_warnings(done.stderr) if w.level == "WARNING"]
    on_page = [w for w in warnings if Path(w.file).name == "all.rst"]
    assert on_page and all(w.line in positions and w.subtype and not w.continuation
                           for w in on_page), on_page
    subtypes = {w.subtype for w in on_page}
    assert set().union(*(case.subtypes for case in CASES)) <= subtypes


def test_odd_parameter_tensors_are_tabulated(html) -> None:
    empty = (html.outdir / "cases" / "empty-axis.html").read_text()
    assert "[] (empty)" in empty
    nan = (html.outdir / "cases" / "float8-nan.html").read_text()
    assert "<p>nan</p>" in nan


def test_zero_weight_scale_keeps_its_requant_table(html) -> None:
    text = (html.outdir / "cases" / "zero-weight-scale.html").read_text()
    assert 'class="qdq-table longtable qdq-requant' in text


def test_text_outline_of_odd_tensors(project: Path) -> None:
    result = guarded_build(project, "text", freshenv=True)
    for case in CASES:
        assert (result.outdir / "cases" / f"{case.name}.txt").is_file(), case.name
    text = " ".join((result.outdir / "cases" / "empty-axis.txt").read_text().split())
    assert "[] (empty)" in text and "QDQ graph qdq_pair: 2 nodes" in text


def test_long_names_do_not_stop_pdflatex(project: Path) -> None:
    result = guarded_build(project, "latex", freshenv=True)
    tex = result.outdir / "hostile.tex"
    longest = max(map(len, tex.read_text().splitlines()))
    assert longest < 5000, longest  # TeX's input buffer holds 200,000 characters
    done = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error",
                           "hostile.tex"], check=False, cwd=result.outdir, capture_output=True,
                          timeout=HANG_SECONDS)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (result.outdir / "hostile.pdf").stat().st_size > 0


# -- the integer reference -----------------------------------------------------------------
def test_reference_parses_through_the_loader_repair(tmp_path: Path) -> None:
    """An attribute name with invalid UTF-8 reaches the reference repaired (a str)."""
    model = conv()
    node = next(n for n in model.graph.node if n.op_type == "Conv")
    node.attribute.append(helper.make_attribute("marker", 1))
    data = model.SerializeToString().replace(b"marker", b"mark\xffr")
    path = tmp_path / "bad-utf8.onnx"
    path.write_bytes(data)
    program = build_integer_program(path, strict=False)
    names = list(program.step("conv").attributes)
    assert all(type(name) is str for name in names) and "mark\ufffdr" in names


def test_every_reference_failure_is_one_message() -> None:
    for error in (IndexError("list index out of range"), AttributeError("x"), TypeError("y"),
                  MemoryError(), KeyError("conv"), ValueError("a\nb")):
        message = describe_failure(error)
        assert "\n" not in message and message


# -- qdq-graph vectors --------------------------------------------------------------------
def one_error_line(err: str) -> str:
    """The one error line of *err*, after the model's diagnostics (one-line warnings)."""
    *warnings, error = err.splitlines()
    assert err.endswith("\n") and error.startswith("qdq-graph: error: "), err
    assert all(line.startswith("qdq-graph: warning: ") for line in warnings), err
    assert "unexpected" not in error and "Traceback" not in err
    return error


def run_vectors(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str]:
    status = cli.main(["vectors", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.err


@pytest.mark.parametrize(("build_model", "fragment"), [
    (huge_declared_input, "more than the limit of"),
    (lambda: conv(scale=[0.1, 0.2, 0.3, 0.4], zero_point=[0, 0, 0, 0], axis=7),
     "per-channel axis 7"),
    (weight_dims_mismatch, "does not match its type and shape"),
    (ref_attr_outside_function, "outside a function"),
    (lambda: conv(scale=0.0), "no quantized-op group"),
], ids=["huge-input", "axis", "weight-dims", "ref-attr", "zero-scale"])
def test_vectors_fail_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, build_model,
                                    fragment: str) -> None:
    path = factories.save(build_model(), tmp_path / "model.onnx")
    status, err = run_vectors(capsys, path, "--node", "conv", "-o", tmp_path / "out")
    assert status == 2
    error = one_error_line(err)
    assert fragment in error or (fragment == "no quantized-op group" and "conv" in error), err


def test_max_elements_flag_sets_the_cap(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = factories.save(conv(), tmp_path / "model.onnx")  # input [1, 3, 4, 4]: 48 elements
    status, err = run_vectors(capsys, path, "--node", "conv", "-o", tmp_path / "a",
                              "--max-elements", "47")
    assert status == 2 and "48 elements" in err and "limit of 47" in err
    status, err = run_vectors(capsys, path, "--node", "conv", "-o", tmp_path / "b",
                              "--max-elements", "48")
    assert status == 0, err


def test_vectors_refuse_a_fifo_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = factories.save(conv(), tmp_path / "model.onnx")
    os.mkfifo(tmp_path / "inputs.npy")
    status, err = run_vectors(capsys, path, "--node", "conv", "--inputs",
                              tmp_path / "inputs.npy", "-o", tmp_path / "out")
    assert status == 2 and "named pipe" in err


# -- files ---------------------------------------------------------------------------------
@pytest.fixture
def special_files(tmp_path: Path) -> dict[str, Path]:
    files = {"fifo": tmp_path / "fifo", "zero": tmp_path / "zero", "loop": tmp_path / "loop",
             "folder": tmp_path / "folder"}
    os.mkfifo(files["fifo"])
    files["zero"].symlink_to("/dev/zero")
    files["loop"].symlink_to("loop")
    files["folder"].mkdir()
    return files


def test_special_files_are_refused_before_they_are_opened(special_files: dict[str, Path]
                                                          ) -> None:
    reasons = {"fifo": "named pipe", "zero": "device", "loop": "loop of symbolic links",
               "folder": "directory"}
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)  # a regression would block
    for name, path in special_files.items():
        with pytest.raises(QdqModelError, match=reasons[name]):
            regular_file(path)
        with pytest.raises(QdqModelError, match=reasons[name]):
            read_checked(path, 1 << 20)
        assert file_hash(path) is None  # the freshness check never blocks on them
    faulthandler.cancel_dump_traceback_later()


def test_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    np.save(path, np.zeros(1000, np.float32))
    with pytest.raises(QdqModelError, match="more than the limit"):
        load_input_file(path, max_bytes=100)
    assert load_input_file(path, max_bytes=1 << 20).shape == (1000,)


def test_module_inputs_must_come_from_a_regular_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    os.mkfifo(tmp_path / "fifo_inputs_module.py")
    (tmp_path / "plain_inputs_module.py").write_text("values = [[1.0, 2.0]]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises((QdqModelError, ValueError), match="named pipe|no module named"):
        load_named_inputs("fifo_inputs_module:values")  # never opened
    assert load_named_inputs("plain_inputs_module:values").shape == (1, 2)
    (tmp_path / "big_inputs_module.py").write_text("values = [[1.0]]\n" + "#" * 100)
    with pytest.raises(ValueError, match="more than the limit"):
        load_named_inputs("big_inputs_module:values", max_bytes=50)


def test_value_lists_are_capped(tmp_path: Path) -> None:
    """A scale with more values than the cap is a qdq.value diagnostic, never a list;
    the cap is part of the loader's cache key (the same file, another answer)."""
    from sphinxext_qdq.analysis.loader import clear_cache, load_qdq_model

    clear_cache()
    path = factories.save(four_value_scale(), tmp_path / "m.onnx")
    capped = load_qdq_model(path, max_param_values=3)
    default = load_qdq_model(path)
    clear_cache()
    assert {p.name: p.values for p in capped.params} == {"scale": None, "zero_point": None}
    assert [d.subtype for d in capped.diagnostics] == ["value", "value"]
    assert "more than the 3" in capped.diagnostics[0].message
    assert {p.name: p.values for p in default.params} == {
        "scale": (0.5, 0.25, 0.125, 2.0), "zero_point": (0, 0, 0, 0)}
    assert default.diagnostics == ()


def four_value_scale() -> onnx.ModelProto:
    """A per-axis Q -> DQ pair: its scale and zero point hold 4 values each."""
    model = factories.qdq_pair_model([0.5, 0.25, 0.125, 2.0], 0, axis=1)
    scale = model.graph.initializer[0]  # raw data, as exporters write it (read inline)
    scale.raw_data = np.asarray(scale.float_data, np.float32).tobytes()
    scale.ClearField("float_data")
    return model


def test_max_param_values_config_sets_the_cap(tmp_path: Path) -> None:
    src = make_project(tmp_path / "src", root=None, conf="qdq_max_param_values = 3", pages={
        "index.rst": "Caps\n====\n\n.. qdq-params:: models/pair.onnx\n"})
    factories.save(four_value_scale(), src / "models" / "pair.onnx")
    result = build(src, "dummy")
    found = parse_warnings(result.warnings)
    assert [(w.type, w.line) for w in found] == [("qdq.value", 4)] * 2, result.warnings
    assert all("more than the 3" in w.message for w in found)


def test_max_param_values_flag_sets_the_cap(tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    path = factories.save(four_value_scale(), tmp_path / "m.onnx")
    graph = [str(path), "--format", "dot", "-o", str(tmp_path / "out")]
    assert cli.main([*graph, "--max-param-values", "3"]) == 0
    err = capsys.readouterr().err
    assert err.count("more than the 3") == 2 and err.count("[qdq.value]") == 2, err
    assert cli.main(graph) == 0 and capsys.readouterr().err == ""
    per_channel = conv(scale=[0.1, 0.2, 0.3, 0.4], zero_point=[0, 0, 0, 0], axis=0)
    histogram = ["histogram", str(factories.save(per_channel, tmp_path / "conv.onnx")),
                 "-o", str(tmp_path / "out")]
    assert cli.main(histogram) == 0
    capsys.readouterr()
    assert cli.main([*histogram, "--max-param-values", "3"]) == 2  # the scale is not read
    assert "scale or zero point is not known" in capsys.readouterr().err
def test_vectors_of_a_packed_4_bit_weight(tmp_path: Path, capsys: pytest.CaptureFixture
                                          ) -> None:
    """A UINT4 weight (found by the fuzz run, seed 471): the C header had no type for it
    and the command ended with "unexpected KeyError"; it is written as uint8."""
    model = conv()
    for tensor in model.graph.initializer:
        if tensor.name == "w_int8":
            tensor.CopyFrom(helper.make_tensor("w_int8", onnx.TensorProto.UINT4, [4, 3, 1, 1],
                                               list(range(12))))
        if tensor.name == "w_zero_point":
            tensor.CopyFrom(helper.make_tensor("w_zero_point", onnx.TensorProto.UINT4, [], [8]))
    path = factories.save(model, tmp_path / "model.onnx")
    status, err = run_vectors(capsys, path, "--node", "conv", "-o", tmp_path / "out")
    assert status == 0, err
    weight = np.load(tmp_path / "out" / "conv_weight.npy")
    assert weight.dtype == np.uint8 and weight.ravel().tolist() == list(range(12))
    assert "static const uint8_t conv_weight[12]" in (tmp_path / "out" / "conv.h").read_text()


# -- qdq-graph histogram ------------------------------------------------------------------
def weight_without_data() -> onnx.ModelProto:
    """Fuzz seed 114: a Conv weight whose dims say 4x3x1x1 and whose data is empty."""
    model = conv()
    weight = next(t for t in model.graph.initializer if len(t.dims) == 4)
    for data in ("raw_data", "int32_data"):
        weight.ClearField(data)
    return model


def test_histogram_max_elements_caps_the_weights(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    path = factories.save(conv(), tmp_path / "model.onnx")  # weight 4x3x1x1: 12 values
    argv = ["histogram", str(path), "-o", str(tmp_path / "out"), "--max-elements"]
    assert cli.main([*argv, "11"]) == 2
    assert "has 12 values, more than the limit of 11" in capsys.readouterr().err
    assert cli.main([*argv, "12"]) == 0, capsys.readouterr().err


def blocks_too_large() -> onnx.ModelProto:
    """Fuzz seeds 525 and 541: blocked scales (4 x 2) that a block size does not fit."""
    model = factories.blocked_int4_model()  # w_dq: weight 4 x 8, blocks of 4 on axis 1
    next(a for a in model.graph.node[0].attribute if a.name == "block_size").i = 100
    return model


@pytest.mark.parametrize(("build_model", "fragment"), [
    (weight_without_data, "its data cannot be read"),
    (lambda: conv(scale=float("nan")), "a scale is zero, negative, NaN or infinite"),
    (lambda: conv(scale=0.0), "a scale is zero, negative, NaN or infinite"),
    (blocks_too_large, "8 blocked scales for a tensor of shape (4, 8) in blocks of 100"),
    (lambda: conv(scale=[0.1, 0.2, 0.3, 0.4], zero_point=[0, 0, 0, 0], axis=-5),
     "4 scales but no usable axis"),
], ids=["no-data", "nan-scale", "zero-scale", "blocks", "axis-below-rank"])
def test_histogram_of_odd_weights_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              build_model, fragment: str) -> None:
    """Fuzz seeds 114, 392 (NaN range of the histogram), 525 / 541, 5300 / 5320 (axis -5
    of a rank-4 weight: IndexError)."""
    path = factories.save(build_model(), tmp_path / "model.onnx")
    assert cli.main(["histogram", str(path), "-o", str(tmp_path / "out")]) == 2
    assert fragment in one_error_line(capsys.readouterr().err)


# -- text fields that are not UTF-8 -------------------------------------------------------
def test_names_inside_a_function_are_repaired(tmp_path: Path) -> None:
    """Fuzz seed 2052: a flipped byte in the name of a node inside a model-local function
    came out of the analysis as ``bytes`` (the repair skipped functions), and
    ``qdq-params :nodes:`` failed on it with a TypeError."""
    from sphinxext_qdq.analysis.loader import clear_cache, load_qdq_model

    function = helper.make_function(
        "local", "QdqFn", ["x", "s", "z"], ["y"],
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="fqZZ"),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="fdqZZ")],
        [helper.make_opsetid("", 17)])
    model = factories.make_model(
        [helper.make_node("QdqFn", ["x", "s", "z"], ["y"], name="call", domain="local")],
        [factories.tensor_input("x", [1, 4])], [factories.tensor_input("y", [1, 4])],
        [factories.scalar("s", 0.5), factories.scalar("z", 3, onnx.TensorProto.UINT8)],
        name="function", extra_opsets=[("local", 1)])
    model.functions.append(function)
    data = model.SerializeToString()
    assert data.count(b"fqZZ") == 1
    path = tmp_path / "model.onnx"
    path.write_bytes(data.replace(b"fqZZ", b"fq\x8c\x8c"))
    clear_cache()
    analysis = load_qdq_model(path)
    clear_cache()
    assert all(isinstance(node.name, str) and isinstance(node.key, str)
               for node in analysis.nodes)
    assert "fq\ufffd\ufffd" in {node.name for node in analysis.nodes}
    assert "encoding" in {d.subtype for d in analysis.diagnostics}


def test_nan_sqnr_has_the_lowest_colour() -> None:
    """Fuzz seed 4450-4459: an SQNR of NaN (NaN activations) matched no colour bin and the
    overlay ended in ``RuntimeError: generator raised StopIteration``."""
    from sphinxext_qdq.sphinx.numerics import sqnr_colour

    assert sqnr_colour(float("nan")) == "#d73027"  # the red of "SQNR < 20 dB"
    assert sqnr_colour(-float("inf")) == "#d73027"
    assert sqnr_colour(45.0) == "#1a9850"


def test_histogram_of_a_range_wider_than_float32(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    """Fuzz seeds 6175-6184, 6197: a scale near float32's largest value makes the
    representable range wider than float32 holds; numpy's float32 bins overflowed
    ("Too many bins for data range") with a RuntimeWarning on stderr. Now the histogram
    is binned in float64 and the command prints its picture and nothing on stderr."""
    path = factories.save(conv(scale=1e37), tmp_path / "model.onnx")  # range ±1.3e39
    assert cli.main(["histogram", str(path), "-o", str(tmp_path / "out"), "--bins", "16"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count(".svg") == 1, captured


def test_a_range_without_finite_bounds_is_a_numerics_error() -> None:
    """Fuzz seeds 6450-6459: ``supplied range of [-inf, inf] is not finite``."""
    from types import SimpleNamespace

    from sphinxext_qdq.numerics import NumericsError
    from sphinxext_qdq.numerics.grid import _float_histogram

    stand_in = SimpleNamespace(key="w_dq")
    for low, high in ((-np.inf, np.inf), (np.inf, -np.inf), (0.0, np.nan)):
        with pytest.raises(NumericsError, match="w_dq: .* which has no finite histogram"):
            _float_histogram(stand_in, np.zeros(3), 4, low, high)  # type: ignore[arg-type]
