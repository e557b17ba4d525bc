"""Rules of the house, checked on the package's own source: no import cycles, Sphinx and
docutils imported only below ``sphinx/``, every module saying what it owns.

The import graph is read by ``docs/_ext/package_map.py`` (the same code draws it on the
page "How the extension works"), loaded here by file path so that nothing is added to
``sys.path``.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "sphinxext_qdq"
SPHINX_ONLY = ("sphinx", "docutils")


def _load_package_map():
    spec = importlib.util.spec_from_file_location(
        "package_map", REPOSITORY / "docs" / "_ext" / "package_map.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("package_map", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


package_map = _load_package_map()


@pytest.fixture(scope="module")
def modules():
    return package_map.import_graph(PACKAGE)


def test_the_graph_sees_imports_of_every_kind(modules) -> None:
    """The reader must see the imports the rules are about, or the rules prove nothing."""
    loader = modules["sphinxext_qdq.analysis.loader"]
    assert "sphinxext_qdq.analysis.patterns" in loader.internal  # from ... import name
    assert "sphinxext_qdq.onnxio.proto" in loader.internal  # from package import module
    assert "onnx" in modules["sphinxext_qdq.onnxio.proto"].external
    # an import inside a function counts; one under TYPE_CHECKING does not
    assert "sphinxext_qdq.sphinx.extension" in modules["sphinxext_qdq"].internal
    assert "sphinx" not in modules["sphinxext_qdq"].external


def test_cycles_are_found_when_there_are_some(tmp_path: Path) -> None:
    package = tmp_path / "sphinxext_qdq"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Top."""\n')
    (package / "inner" / "__init__.py").write_text('"""Inner."""\n')
    (package / "inner" / "a.py").write_text("def f():\n    from sphinxext_qdq.inner import b\n")
    (package / "inner" / "b.py").write_text("from .a import f\n")
    graph = package_map.import_graph(package)
    assert package_map.cycles(graph) == [["sphinxext_qdq.inner.a", "sphinxext_qdq.inner.b"]]


def test_no_import_cycles_inside_the_package(modules) -> None:
    assert package_map.cycles(modules) == []


def test_sphinx_and_docutils_only_below_the_sphinx_folder(modules) -> None:
    offenders = {name: sorted(record.external & set(SPHINX_ONLY))
                 for name, record in modules.items()
                 if record.folder != "sphinx" and record.external & set(SPHINX_ONLY)}
    assert offenders == {}


def test_nothing_outside_the_sphinx_folder_loads_sphinx_at_run_time() -> None:
    """Importing every module outside ``sphinx/`` (the command line included) leaves
    Sphinx and docutils unloaded."""
    names = [package_map.module_name(path, PACKAGE) for path in sorted(PACKAGE.rglob("*.py"))
             if "sphinx" not in path.relative_to(PACKAGE).parts[:-1]
             and path.name != "__main__.py"]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {SPHINX_ONLY!r})\n"
            "print(bad)\nsys.exit(1 if bad else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, cwd=REPOSITORY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(names) > 15


def test_every_module_says_what_it_owns() -> None:
    missing = [str(path.relative_to(REPOSITORY)) for path in sorted(PACKAGE.rglob("*.py"))
               if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == []
