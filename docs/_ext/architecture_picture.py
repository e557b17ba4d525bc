"""The standalone ResNet8 architecture picture, drawn during the docs build.

The picture is the one ``qdq-graph`` (and ``scripts/annotate_qdq_graph.py``, which runs it)
draws: the compact drawing with its legend, through the package's own
:func:`~sphinxext_qdq.render.dot.render_dot` and
:func:`~sphinxext_qdq.render.graphviz.draw_files`. The build draws it into a temporary
folder and copies ``resnet8_qdq_architecture.svg`` / ``.png`` into ``docs/images/`` only
when they changed. The files are not committed: they always match the committed model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fragments import write_if_changed

from sphinxext_qdq.analysis import QdqModelError, load_qdq_model
from sphinxext_qdq.render.dot import DotOptions, render_dot
from sphinxext_qdq.render.graphviz import DotRunError, draw_files

REPOSITORY = Path(__file__).resolve().parents[2]
IMAGES = REPOSITORY / "docs" / "images"
MODEL = REPOSITORY / "models" / "resnet8_int8.onnx"
BASE_NAME = "resnet8_qdq_architecture"
FORMATS = ("svg", "png")


class PictureError(RuntimeError):
    """The picture could not be drawn; the message says why."""


def draw_architecture(images: Path = IMAGES) -> list[Path]:
    """Draw the picture; return the files of ``images`` that changed."""
    try:
        dot_text = render_dot(load_qdq_model(MODEL), DotOptions(legend=True))
        with tempfile.TemporaryDirectory() as scratch:
            drawn = [Path(scratch) / f"{BASE_NAME}.{fmt}" for fmt in FORMATS]
            draw_files(dot_text, list(zip(FORMATS, drawn)))
            return [images / path.name for path in drawn
                    if write_if_changed(images / path.name, path.read_bytes())]
    except (QdqModelError, DotRunError) as error:
        raise PictureError(f"{BASE_NAME}: {error}") from None
