"""Float model inputs named by a page or the command line: a ``.npy`` file (read
through :mod:`~sphinxext_qdq.onnxio.files`, no pickles) or a ``module:attribute``
(imports, attribute reads and argument-less calls only).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import re
import sys
from typing import Any

import numpy as np

from sphinxext_qdq.onnxio.files import DEFAULT_MAX_BYTES, read_checked, regular_file

_INPUT_SPEC = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):"
                         r"(?P<path>[A-Za-z_]\w*(?:\(\))?(?:\.[A-Za-z_]\w*(?:\(\))?)*)$")


def load_named_inputs(spec: str, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Float inputs named ``module:attribute`` (like a console-script entry point).

    The attribute path may call functions without arguments, e.g.
    ``scripts.resnet8_data:load_digits_splits().test_images``; the result is
    converted to a float32 array. Nothing is evaluated beyond imports, attribute
    reads and argument-less calls."""
    match = _INPUT_SPEC.match(spec.strip())
    if match is None:
        raise ValueError(f"{spec!r} is not 'module:attribute' (attributes may end in '()')")
    _check_module_file(match["module"], max_bytes)
    value: Any = importlib.import_module(match["module"])
    for part in match["path"].split("."):
        call = part.endswith("()")
        value = getattr(value, part.removesuffix("()"))
        if call:
            value = value()
    return np.asarray(value, np.float32)


def _check_module_file(module: str, max_bytes: int) -> None:
    """The source of *module* (when it is a file) is a regular file within *max_bytes*."""
    if module in sys.modules:
        return
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ValueError(f"no module named {module!r}")
    if spec.origin and spec.has_location:
        regular_file(spec.origin, "a Python module")
        size = os.stat(spec.origin).st_size
        if size > max_bytes:
            raise ValueError(f"module {module!r} is {size} bytes, more than the limit of "
                             f"{max_bytes} bytes")


def load_input_file(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES
                    ) -> np.ndarray:
    """Float model inputs from a ``.npy`` file (a regular file within *max_bytes*, no
    pickles)."""
    data = read_checked(path, max_bytes, "a .npy file")
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False), np.float32)
