"""Every ``qdq-graph`` subcommand reports the model's diagnostics as the drawing does, and
ONNX Runtime's own log lines stay off stderr.

One quantized model carries two defects: a stray DequantizeLinear whose scale is zero (a
``qdq.scale`` diagnostic of the analysis; ONNX Runtime runs it) and a graph output
declared with a wrong shape (ONNX Runtime logs "Error merging shape info" at warning
level when it opens a session). stderr is read at the file descriptor (``capfd``): ONNX
Runtime writes there from C++, past ``sys.stderr``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import qdq_factories as factories

from sphinxext_qdq import cli

#: The warning the graph subcommand prints for the stray DequantizeLinear.
WARNING_FRAGMENTS = ("qdq-graph: warning: ", "'stray_scale'", "'stray_dq'", "zero",
                     "[qdq.scale]")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli-diagnostics")
    model = factories.tiny_resnet_qdq_with_stray_zero_scale()
    (output,) = model.graph.output
    output.type.tensor_type.shape.dim[-1].dim_value = factories.TINY_CLASSES + 94
    inputs = np.random.default_rng(3).normal(0, 1, (2, *factories.TINY_INPUT_SHAPE[1:]))
    np.save(folder / "inputs.npy", inputs.astype(np.float32))
    return {"model": factories.save(model, folder / "stray.onnx"),
            "float": factories.save(factories.tiny_resnet_float(), folder / "float.onnx"),
            "inputs": folder / "inputs.npy", "folder": folder}


def run(capfd: pytest.CaptureFixture, *argv: object) -> tuple[int, str, list[str]]:
    status = cli.main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return status, out, err.splitlines()


def subcommand_arguments(files: dict[str, Path], name: str, out_dir: Path) -> list[object]:
    return {
        "graph": [files["model"], "-o", out_dir, "--format", "dot"],
        "vectors": ["vectors", files["model"], "--node", "conv1", "-o", out_dir],
        "error": ["error", files["float"], files["model"], "--inputs", files["inputs"]],
        # activations run through ONNX Runtime; --nodes keeps the stray weight out
        "histogram": ["histogram", files["model"], "--inputs", files["inputs"], "--nodes",
                      "conv", "-o", out_dir],
    }[name]


def test_graph_prints_the_diagnostic_as_one_warning_line(files, tmp_path, capfd) -> None:
    status, _, err = run(capfd, *subcommand_arguments(files, "graph", tmp_path))
    assert status == 0
    (line,) = err
    assert line.startswith(WARNING_FRAGMENTS[0])
    assert all(fragment in line for fragment in WARNING_FRAGMENTS), line


@pytest.mark.parametrize("name", ["vectors", "error", "histogram"])
def test_every_subcommand_prints_the_same_warning_and_nothing_from_onnx_runtime(
        files, tmp_path, capfd, name) -> None:
    status, _, graph_err = run(capfd, *subcommand_arguments(files, "graph", tmp_path / "g"))
    assert status == 0 and len(graph_err) == 1
    status, out, err = run(capfd, *subcommand_arguments(files, name, tmp_path / "out"))
    assert status == 0
    assert err == graph_err  # the diagnostic, once; no "[W:onnxruntime" line
    if name == "error":
        assert out.startswith("tensor,written_by,") and "\nrelu1_out,conv1,Conv," in out
    else:
        written = [Path(line.split("\t")[0]) for line in out.splitlines()]
        assert written and all(path.parent == tmp_path / "out" for path in written)
        assert all(path.stat().st_size > 0 for path in written)


def test_a_refusal_still_follows_the_warning(files, tmp_path, capfd) -> None:
    """The stray weight itself cannot be drawn: exit 2 with its error, after the warning."""
    status, out, err = run(capfd, "histogram", files["model"], "--nodes", "stray",
                           "-o", tmp_path)
    assert status == 2 and out == ""
    assert len(err) == 2 and all(fragment in err[0] for fragment in WARNING_FRAGMENTS)
    assert err[1].startswith("qdq-graph: error: ") and "stray_dq" in err[1]


def test_histogram_skips_the_stray_weight_and_draws_the_others(files, tmp_path, capfd) -> None:
    """Without --nodes the zero scale costs its own picture only: one warning naming the
    tensor and why, the model's four weights drawn, exit 0."""
    status, out, err = run(capfd, "histogram", files["model"], "-o", tmp_path)
    assert status == 0
    assert len(err) == 2 and all(fragment in err[0] for fragment in WARNING_FRAGMENTS)
    skipped = err[1]
    assert skipped.startswith("qdq-graph: warning: ") and skipped.endswith("[qdq.numerics]")
    assert "'stray_q'" in skipped and "scale is zero" in skipped and "skipped" in skipped
    written = sorted(Path(line.split("\t")[0]).name for line in out.splitlines())
    assert written == ["conv1_weight_quantized.svg", "conv2_weight_quantized.svg",
                       "fc_weight_quantized.svg", "skip_weight_quantized.svg"]
    assert sorted(path.name for path in tmp_path.iterdir()) == written
