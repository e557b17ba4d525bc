"""The standalone ResNet8 architecture picture, drawn during the docs build.

``scripts/annotate_qdq_graph.py`` is the one place that knows how the picture is
drawn; the build runs that same script (into a temporary folder) and copies
``resnet8_qdq_architecture.svg`` / ``.png`` into ``docs/images/`` only when they
changed. The files are not committed: they always match the committed model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
from pathlib import Path
from types import ModuleType

from fragments import write_if_changed

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY / "scripts" / "annotate_qdq_graph.py"
IMAGES = REPOSITORY / "docs" / "images"
MODEL = REPOSITORY / "models" / "resnet8_int8.onnx"
SUFFIXES = (".svg", ".png")


class PictureError(RuntimeError):
    """The script failed; the message is what it printed."""


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("annotate_qdq_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def draw_architecture(images: Path = IMAGES) -> list[Path]:
    """Run the script; return the files of ``images`` that changed."""
    script = load_script()
    with tempfile.TemporaryDirectory() as scratch:
        output, errors = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(errors):
            status = script.main(["--model", str(MODEL), "--output-dir", scratch])
        if status != 0:
            raise PictureError(f"{SCRIPT.name} exited with status {status}: "
                               f"{errors.getvalue().strip()}")
        changed = []
        for suffix in SUFFIXES:
            drawn = Path(scratch) / f"{script.BASE_NAME}{suffix}"
            target = images / drawn.name
            if write_if_changed(target, drawn.read_bytes()):
                changed.append(target)
        return changed
