"""Float model inputs named by a page or the command line: a ``.npy`` file (read
through :mod:`~sphinxext_qdq.onnxio.files`, no pickles) or a ``module:attribute``
(imports, attribute reads and argument-less calls only) giving one array or a dict of
arrays by graph input name; and the one place such inputs are matched to a model's graph
inputs (:func:`input_feeds`: every input fed, or a refusal naming those that cannot be).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sphinxext_qdq.integer.kernels import IntegerReferenceError
from sphinxext_qdq.onnxio.files import DEFAULT_MAX_BYTES, read_checked, regular_file
from sphinxext_qdq.render.text import one_line

#: Float model inputs, batch first: one array (a model with one graph input) or graph
#: input name -> array.
ModelInputs = np.ndarray | Mapping[str, np.ndarray]

_INPUT_SPEC = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):"
                         r"(?P<path>[A-Za-z_]\w*(?:\(\))?(?:\.[A-Za-z_]\w*(?:\(\))?)*)$")


def load_named_inputs(spec: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ModelInputs:
    """Float inputs named ``module:attribute`` (like a console-script entry point).

    The attribute path may call functions without arguments, e.g.
    ``scripts.resnet8_data:load_digits_splits().test_images``; the result is
    converted to a float32 array, or, when it is a mapping (a model with several graph
    inputs), to a dict of float32 arrays by input name. Nothing is evaluated beyond
    imports, attribute reads and argument-less calls."""
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
    if isinstance(value, Mapping):
        return {str(name): np.asarray(array, np.float32) for name, array in value.items()}
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


def _names(names: Sequence[str] | Mapping[str, Any]) -> str:
    return ", ".join(repr(one_line(name, 80)) for name in names)


def input_feeds(names: Sequence[str], inputs: ModelInputs) -> dict[str, np.ndarray]:
    """Graph input name -> float32 array for every one of *names* (the inputs a run must
    feed): one array feeds a model with one input; a mapping must hold each name (others
    are ignored), with one first (batch) dimension. Anything else is refused with an
    :class:`~sphinxext_qdq.integer.kernels.IntegerReferenceError` naming the inputs it
    cannot feed."""
    if not names:
        raise IntegerReferenceError("the model has no graph input to feed")
    if not isinstance(inputs, Mapping):
        if len(names) == 1:
            return {names[0]: np.asarray(inputs, np.float32)}
        raise IntegerReferenceError(
            f"the model has {len(names)} graph inputs and the inputs are one array: cannot "
            f"feed {_names(names)} (name a module:attribute giving a dict of arrays by input "
            "name)")
    missing = [name for name in names if name not in inputs]
    if missing:
        raise IntegerReferenceError(f"the inputs have no array for the graph input(s) "
                                    f"{_names(missing)} (they hold {_names(inputs) or 'none'})")
    feeds = {name: np.asarray(inputs[name], np.float32) for name in names}
    if len({array.shape[:1] for array in feeds.values()}) > 1:
        sizes = ", ".join(f"{name!r}: {array.shape[:1] or 'a scalar'}"
                          for name, array in feeds.items())
        raise IntegerReferenceError(f"the inputs differ in their first (batch) dimension "
                                    f"({sizes})")
    return feeds


def input_count(inputs: ModelInputs) -> int:
    """How many inputs (images) *inputs* hold along their first dimension (0: none, or a
    scalar)."""
    arrays = list(inputs.values()) if isinstance(inputs, Mapping) else [inputs]
    return min((len(array) if np.ndim(array) else 0 for array in arrays), default=0)


def first_inputs(inputs: ModelInputs, count: int | None) -> ModelInputs:
    """The first *count* inputs (images) of every array (None: all)."""
    if isinstance(inputs, Mapping):
        return {name: array[:count] for name, array in inputs.items()}
    return inputs[:count]
