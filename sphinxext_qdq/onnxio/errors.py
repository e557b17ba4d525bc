"""The one error a model file can cause; imports neither onnx nor numpy, so that code
which only catches it (the Sphinx glue, at setup) does not load them."""

from __future__ import annotations

import os


class QdqModelError(Exception):
    """A model file that cannot be used: the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
