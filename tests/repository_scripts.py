"""The repository's ``scripts/`` modules for the tests, read from their files: nothing
is added to ``sys.path`` or ``sys.modules`` for the rest of the session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def script_module(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a fresh module object (registered only while it runs:
    dataclasses look their module up while the class body is processed)."""
    spec = importlib.util.spec_from_file_location(f"_qdq_script_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module
