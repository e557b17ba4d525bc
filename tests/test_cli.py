"""The ``qdq-graph`` command line: every exit path, output files, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import onnx
import pytest
import qdq_factories as factories  # tests/ is on sys.path (pytest rootdir conftest)
from onnx import numpy_helper

from sphinxext_qdq import cli

REPOSITORY = Path(__file__).resolve().parent.parent
PYTHON = REPOSITORY / ".venv" / "bin" / "python"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factories.save(factories.tiny_resnet_qdq(),
                          tmp_path_factory.mktemp("cli") / "tiny_resnet.onnx")


def run_main(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    assert status == 2
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("qdq-graph: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def assert_valid_outputs(folder: Path, base: str, formats: tuple[str, ...]) -> None:
    for fmt in formats:
        path = folder / f"{base}.{fmt}"
        assert path.is_file() and path.stat().st_size > 0, path
    if "svg" in formats:
        root = ElementTree.parse(folder / f"{base}.svg").getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    if "png" in formats:
        assert (folder / f"{base}.png").read_bytes().startswith(PNG_MAGIC)
    if "dot" in formats:
        result = subprocess.run(["dot", "-Tcanon", str(folder / f"{base}.dot")],
                                capture_output=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr


# -- what a DOT file means, read by graphviz (dot -Tjson) -----------------------------------
@dataclass
class Graph:
    attributes: dict
    nodes: dict[str, list[str]]  # DOT name -> the label lines graphviz draws
    shapes: dict[str, str]
    clusters: set[str]
    edge_labels: list[str]


def read_dot(path: Path) -> Graph:
    result = subprocess.run(["dot", "-Tjson", str(path)], capture_output=True, timeout=60,
                            check=True)
    data = json.loads(result.stdout)
    nodes, shapes, clusters = {}, {}, set()
    for obj in data.get("objects", []):
        if "nodes" in obj or obj["name"].startswith("cluster"):
            clusters.add(obj["name"])
            continue
        nodes[obj["name"]] = [op["text"] for op in obj.get("_ldraw_", []) if op["op"] == "T"]
        shapes[obj["name"]] = obj.get("shape", "")
    edge_labels = [edge.get("label", "") for edge in data.get("edges", [])]
    return Graph(data, nodes, shapes, clusters, edge_labels)


class Proto:
    """Facts of the model read from its protobuf, not from the analysis."""

    QDQ = ("QuantizeLinear", "DequantizeLinear")

    def __init__(self, path: Path) -> None:
        model = onnx.load(str(path))
        self.nodes = list(model.graph.node)
        self.inputs = [v.name for v in model.graph.input]
        self.outputs = [v.name for v in model.graph.output]
        values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.operators = {n.name for n in self.nodes if n.op_type not in self.QDQ}
        self.quantizers = [n for n in self.nodes if n.op_type == "QuantizeLinear"]
        #: "s=<scale> zp=<zero point>" of every activation QuantizeLinear
        self.pair_parameters = {f"s={np.float32(values[q.input[1]])!s} "  # shortest float32
                                f"zp={int(values[q.input[2]])}" for q in self.quantizers}


def operator_names(graph: Graph) -> set[str]:
    """The second label line (the node name) of the box nodes that draw the model."""
    return {lines[1] for name, lines in graph.nodes.items()
            if graph.shapes[name] == "box" and not name.startswith("legend") and len(lines) > 1
            and not lines[0].startswith("Q→DQ")}


def assert_compact_drawing(graph: Graph, proto: Proto) -> None:
    """One box per operator, Q/DQ nodes folded away, the graph's inputs and outputs as
    ellipses, every Q→DQ pair's parameters on an edge."""
    assert operator_names(graph) == proto.operators
    assert {lines[0] for name, lines in graph.nodes.items()
            if graph.shapes[name] == "ellipse" and not name.startswith("legend")} == {
        *proto.inputs, *proto.outputs}
    assert not any(line.startswith(Proto.QDQ) for name, lines in graph.nodes.items()
                   if not name.startswith("legend") for line in lines)
    # a pair's first edge carries its parameters (DOT's "\\n" still in -Tjson's label)
    on_edges = {label.split("\\n")[1] for label in graph.edge_labels
                if label.startswith("Q→DQ") and "\\n" in label}
    assert on_edges == proto.pair_parameters


# -- success ------------------------------------------------------------------------------


def test_python_dash_m_writes_svg_png_and_dot(model_path, tmp_path):
    out = tmp_path / "images"
    result = subprocess.run(
        [str(PYTHON), "-m", "sphinxext_qdq", str(model_path), "-o", str(out),
         "--format", "svg,png,dot", "--legend"],
        capture_output=True, text=True, timeout=300, cwd=REPOSITORY, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_valid_outputs(out, "tiny_resnet", ("svg", "png", "dot"))
    assert result.stdout.splitlines() == [str(out / f"tiny_resnet.{f}") for f in ("svg", "png", "dot")]
    # the .dot file: the compact drawing, with its legend
    graph = read_dot(out / "tiny_resnet.dot")
    assert_compact_drawing(graph, Proto(model_path))
    assert "cluster_legend" in graph.clusters


def test_console_script_is_installed_and_runs(model_path, tmp_path):
    script = REPOSITORY / ".venv" / "bin" / "qdq-graph"
    result = subprocess.run([str(script), str(model_path), "-o", str(tmp_path), "--format", "dot"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert_valid_outputs(tmp_path, "tiny_resnet", ("dot",))


def test_default_is_one_svg_named_after_the_model_in_a_new_folder(model_path, tmp_path, capsys):
    out = tmp_path / "a" / "b"
    status, stdout, err = run_main(capsys, model_path, "-o", out)
    assert (status, err) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == ["tiny_resnet.svg"]
    assert_valid_outputs(out, "tiny_resnet", ("svg",))
    assert stdout == f"{out / 'tiny_resnet.svg'}\n"


def test_name_mode_rankdir_and_legend_reach_the_drawing(model_path, tmp_path, capsys):
    status, _, err = run_main(capsys, model_path, "-o", tmp_path, "--format", "dot,svg",
                              "--mode", "full", "--rankdir", "lr", "--name", "picture")
    assert (status, err) == (0, "")
    graph = read_dot(tmp_path / "picture.dot")
    proto = Proto(model_path)
    assert graph.attributes["rankdir"] == "LR"
    assert operator_names(graph) == proto.operators | {  # full: every Q/DQ node drawn too
        n.name for n in proto.nodes if n.op_type in Proto.QDQ}
    assert len(graph.nodes) == len(proto.nodes) + len(proto.inputs) + len(proto.outputs)
    assert "cluster_legend" not in graph.clusters
    assert_valid_outputs(tmp_path, "picture", ("dot", "svg"))


@pytest.mark.parametrize("pairs", ["edges", "nodes"])
def test_pairs_reach_the_drawing(model_path, tmp_path, capsys, pairs):
    status, _, err = run_main(capsys, model_path, "-o", tmp_path, "--format", "dot",
                              "--pairs", pairs)
    assert (status, err) == (0, "")
    proto = Proto(model_path)
    written = tmp_path / "tiny_resnet.dot"
    graph = read_dot(written)
    pair_nodes = {" ".join(lines[1:]) for lines in graph.nodes.values()
                  if lines and lines[0].startswith("Q→DQ")}
    pair_edges = [label for label in graph.edge_labels if label.startswith("Q→DQ")]
    assert operator_names(graph) == proto.operators
    if pairs == "edges":  # the default
        assert_compact_drawing(graph, proto)
        assert not pair_nodes
        status, _, _ = run_main(capsys, model_path, "-o", tmp_path / "default", "--format", "dot")
        assert (tmp_path / "default" / "tiny_resnet.dot").read_bytes() == written.read_bytes()
    else:  # one node per QuantizeLinear of a pair, no pair on an edge
        assert pair_nodes == proto.pair_parameters and not pair_edges
        assert len(graph.nodes) == (len(proto.operators) + len(proto.quantizers)
                                    + len(proto.inputs) + len(proto.outputs))


def test_analysis_diagnostics_are_one_line_warnings(tmp_path, capsys):
    bad = factories.save(factories.qdq_pair_model([0.0, float("nan"), 0.5, 1.0], 0, axis=1),
                         tmp_path / "bad scales.onnx")
    status, _, err = run_main(capsys, bad, "-o", tmp_path, "--format", "dot")
    assert status == 0
    (line,) = err.splitlines()  # one problem: the scale's zero and NaN elements
    assert line.startswith("qdq-graph: warning: ") and line.endswith("[qdq.scale]")
    assert "'scale'" in line


def test_node_cap_warns_and_draws_a_note(model_path, tmp_path, capsys):
    status, _, err = run_main(capsys, model_path, "-o", tmp_path, "--format", "dot",
                              "--max-nodes", "5")
    assert status == 0
    assert err.count("\n") == 1 and err.startswith("qdq-graph: warning: ") and "5" in err
    text = (tmp_path / "tiny_resnet.dot").read_text(encoding="utf-8")
    assert ":from: and :to:" in text and "Conv" not in text


def test_help_and_version_exit_zero(capsys):
    status, out, _ = run_main(capsys, "--help")
    assert status == 0 and "--format" in out and "MODEL" in out
    status, out, _ = run_main(capsys, "--version")
    assert status == 0 and out.startswith("qdq-graph ")


def test_subcommands_are_dispatched_before_model_paths(model_path, tmp_path, capsys,
                                                       monkeypatch):
    calls = []
    monkeypatch.setitem(cli.SUBCOMMANDS, "vectors", lambda args: calls.append(args) or 0)
    assert cli.main(["vectors", "--some", "thing"]) == 0
    assert calls == [["--some", "thing"]]
    # a model file called like a subcommand is still reachable as ./vectors
    (tmp_path / "vectors").write_bytes(model_path.read_bytes())
    monkeypatch.chdir(tmp_path)
    status, _, err = run_main(capsys, "./vectors", "--format", "dot")
    assert (status, err) == (0, "")
    assert (tmp_path / "vectors.dot").stat().st_size > 0


# -- failures: one line on stderr, exit status 2, nothing written ------------------------


def test_missing_model(tmp_path, capsys):
    status, out, err = run_main(capsys, tmp_path / "absent.onnx", "-o", tmp_path / "out")
    assert_one_line_error(status, err, "absent.onnx", "no such file")
    assert out == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage\xff" * 50, b"not an onnx model\n"],
                         ids=["empty", "random bytes", "text"])
def test_corrupt_model(tmp_path, capsys, content):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(content)
    status, _, err = run_main(capsys, path, "-o", tmp_path / "out")
    assert_one_line_error(status, err, "corrupt.onnx")
    assert not (tmp_path / "out").exists()


def test_truncated_model(model_path, tmp_path, capsys):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(model_path.read_bytes()[: model_path.stat().st_size // 2])
    status, _, err = run_main(capsys, path, "-o", tmp_path)
    assert_one_line_error(status, err, "truncated.onnx")


def test_directory_as_model(tmp_path, capsys):
    status, _, err = run_main(capsys, tmp_path, "-o", tmp_path / "out")
    assert_one_line_error(status, err, "directory")


def test_model_larger_than_max_bytes(model_path, tmp_path, capsys):
    status, _, err = run_main(capsys, model_path, "-o", tmp_path, "--max-bytes", "100")
    assert_one_line_error(status, err, "100")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, fragment", [
    (["--format", "jpg"], "jpg"),
    (["--format", "svg,,png"], "format"),
    (["--mode", "tiny"], "tiny"),
    (["--rankdir", "BT"], "BT"),
    (["--max-bytes", "0"], "positive"),
    (["--max-bytes", "lots"], "lots"),
    (["--max-nodes", "-3"], "-3"),
    (["--name", "../escape"], "plain file name"),
    (["--timeout", "0"], "seconds"),
    (["--no-such-option"], "unrecognized"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_bad_options(model_path, tmp_path, capsys, argv, fragment):
    status, out, err = run_main(capsys, model_path, "-o", tmp_path, *argv)
    assert_one_line_error(status, err, fragment)
    assert out == "" and list(tmp_path.iterdir()) == []


def test_no_model_argument(capsys):
    status, _, err = run_main(capsys)
    assert_one_line_error(status, err, "MODEL")


def test_output_folder_is_a_file(model_path, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status, _, err = run_main(capsys, model_path, "-o", blocker)
    assert_one_line_error(status, err, "not a folder")
    status, _, err = run_main(capsys, model_path, "-o", blocker / "below")
    assert_one_line_error(status, err, "below")


def test_dot_missing(model_path, tmp_path, capsys):
    status, _, err = run_main(capsys, model_path, "-o", tmp_path, "--dot",
                              tmp_path / "no-graphviz" / "dot")
    assert_one_line_error(status, err, "not found", "graphviz")
    assert list(tmp_path.iterdir()) == []


def fake_dot(folder: Path, body: str) -> Path:
    script = folder / "fake-dot"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_dot_failure(model_path, tmp_path, capsys):
    dot = fake_dot(tmp_path, 'echo "Error: syntax error in line 1" >&2\necho more >&2\nexit 3')
    out = tmp_path / "out"
    status, _, err = run_main(capsys, model_path, "-o", out, "--dot", dot)
    assert_one_line_error(status, err, "exit status 3", "syntax error in line 1")
    assert list(out.iterdir()) == []  # no partial or temporary file is left


def test_dot_writing_nothing(model_path, tmp_path, capsys):
    dot = fake_dot(tmp_path, "exit 0")
    out = tmp_path / "out"
    status, _, err = run_main(capsys, model_path, "-o", out, "--dot", dot, "--format", "png")
    assert_one_line_error(status, err, "empty png")
    assert list(out.iterdir()) == []


def test_dot_timeout(model_path, tmp_path, capsys):
    dot = fake_dot(tmp_path, "exec sleep 30")
    out = tmp_path / "out"
    status, _, err = run_main(capsys, model_path, "-o", out, "--dot", dot, "--timeout", "0.5")
    assert_one_line_error(status, err, "longer than 0.5 s")
    assert list(out.iterdir()) == []


def test_dot_not_executable(model_path, tmp_path, capsys):
    dot = tmp_path / "dot"
    dot.write_text("not a program")
    status, _, err = run_main(capsys, model_path, "-o", tmp_path / "out", "--dot", dot)
    assert_one_line_error(status, err, "permission denied")


def test_error_about_a_hostile_file_name_stays_on_one_line(tmp_path, capsys):
    path = tmp_path / "evil\nname\r\x1b[31m.onnx"
    path.write_bytes(b"junk")
    status, _, err = run_main(capsys, path, "-o", tmp_path / "out")
    assert_one_line_error(status, err, "evil\\nname\\r\\x1b[31m.onnx")


def test_unexpected_exception_is_one_line_too(model_path, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "render_dot", broken)
    status, _, err = run_main(capsys, model_path, "-o", tmp_path)
    assert_one_line_error(status, err, "RuntimeError", "boom\\nsecond line")


def test_subprocess_error_path_has_no_traceback(tmp_path):
    result = subprocess.run([str(PYTHON), "-m", "sphinxext_qdq", str(tmp_path / "none.onnx")],
                            capture_output=True, text=True, timeout=300, cwd=REPOSITORY,
                            check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("qdq-graph: error: ")


# -- the documentation picture --------------------------------------------------------------


def test_annotate_script_writes_png_and_svg_through_the_cli(model_path, tmp_path):
    result = subprocess.run(
        [str(PYTHON), str(REPOSITORY / "scripts" / "annotate_qdq_graph.py"),
         "--model", str(model_path), "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
        env=dict(os.environ, PYTHONPATH=""))
    assert result.returncode == 0, result.stderr
    assert_valid_outputs(tmp_path, "resnet8_qdq_architecture", ("png", "svg"))
    svg = (tmp_path / "resnet8_qdq_architecture.svg").read_text(encoding="utf-8")
    assert "legend" in svg  # the legend is on by default
