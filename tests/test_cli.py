"""The ``qdq-graph`` command line: every exit path, output files, one-line errors."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
import qdq_factories as factories  # tests/ is on sys.path (pytest rootdir conftest)

from sphinxext_qdq import cli
from sphinxext_qdq.analysis import load_qdq_model
from sphinxext_qdq.render.dot import DotOptions, render_dot

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
    # the .dot file is exactly the DOT the directive would get for these options
    expected = render_dot(load_qdq_model(model_path), DotOptions(legend=True))
    assert (out / "tiny_resnet.dot").read_text(encoding="utf-8") == expected


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
    expected = render_dot(load_qdq_model(model_path), DotOptions(mode="full", rankdir="LR"))
    assert (tmp_path / "picture.dot").read_text(encoding="utf-8") == expected
    assert_valid_outputs(tmp_path, "picture", ("dot", "svg"))


@pytest.mark.parametrize("pairs", ["edges", "nodes"])
def test_pairs_reach_the_drawing(model_path, tmp_path, capsys, pairs):
    status, _, err = run_main(capsys, model_path, "-o", tmp_path, "--format", "dot",
                              "--pairs", pairs)
    assert (status, err) == (0, "")
    model = load_qdq_model(model_path)
    written = (tmp_path / "tiny_resnet.dot").read_text(encoding="utf-8")
    assert written == render_dot(model, DotOptions(pairs=pairs))
    other = "nodes" if pairs == "edges" else "edges"
    assert written != render_dot(model, DotOptions(pairs=other))
    if pairs == "edges":  # the default
        status, _, _ = run_main(capsys, model_path, "-o", tmp_path / "default", "--format", "dot")
        assert (tmp_path / "default" / "tiny_resnet.dot").read_text(encoding="utf-8") == written


def test_analysis_diagnostics_are_one_line_warnings(tmp_path, capsys):
    bad = factories.save(factories.qdq_pair_model([0.0, float("nan"), 0.5, 1.0], 0, axis=1),
                         tmp_path / "bad scales.onnx")
    model = load_qdq_model(bad)
    assert model.diagnostics  # the analysis reports the zero / NaN scale
    status, _, err = run_main(capsys, bad, "-o", tmp_path, "--format", "dot")
    assert status == 0
    lines = err.splitlines()
    assert len(lines) == len(model.diagnostics)
    for line, diagnostic in zip(lines, model.diagnostics, strict=True):
        assert line.startswith("qdq-graph: warning: ")
        assert f"[qdq.{diagnostic.subtype}]" in line


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
