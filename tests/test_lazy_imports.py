"""Loading the extension imports neither onnx nor numpy (counted in ``sys.modules`` of a
fresh interpreter, never timed): a build pays for them only when a directive reads a model.

``benchmarks/run.py`` (section ``noop``) times what this saves on a rebuild with nothing
to read; here the same fact is checked as a count of modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "resnet8_int8.onnx"

#: Modules a build must not import until a directive reads a model.
HEAVY = ("onnx", "numpy", "google.protobuf")
#: Modules only ``qdq-requant`` needs (recipes; the integer reference's examples).
INTEGER = ("sphinxext_qdq.integer.requant", "sphinxext_qdq.integer.program")

#: Runs in a fresh interpreter; prints which heavy modules are loaded after each step.
SCRIPT = r"""
import json, sys
from pathlib import Path

heavy = {heavy!r}
def loaded():
    return sorted(name for name in heavy if name in sys.modules)

steps = {{"start": loaded()}}
import sphinxext_qdq
import sphinxext_qdq.sphinx.extension
steps["import"] = loaded()

from sphinx.application import Sphinx

source = Path({source!r})
app = Sphinx(str(source), str(source), str(source / "_build"), str(source / "_build" / ".d"),
             "html", status=None, warning=None, freshenv=True)
steps["setup"] = loaded()
app.build(filenames=[str(source / "plain.rst")])
steps["plain build"] = loaded()
(source / "model.rst").write_text(
    "Model\n=====\n\n.. qdq-summary:: {model}\n", encoding="utf-8")
app.build(filenames=[str(source / "model.rst")])
steps["directive"] = loaded()
print(json.dumps(steps))
"""


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    source = tmp_path_factory.mktemp("lazy")
    (source / "conf.py").write_text("extensions = ['sphinxext_qdq']\n", encoding="utf-8")
    (source / "index.rst").write_text("Index\n=====\n\n.. toctree::\n   :glob:\n\n   *\n",
                                      encoding="utf-8")
    (source / "plain.rst").write_text("Plain\n=====\n\nNo model here.\n", encoding="utf-8")
    script = SCRIPT.format(heavy=HEAVY + INTEGER, source=str(source), model=str(MODEL))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False, env=environment, cwd=source)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_package_imports_neither_onnx_nor_numpy(steps: dict) -> None:
    assert steps["start"] == []
    assert steps["import"] == []


def test_setup_and_a_build_without_directives_import_neither(steps: dict) -> None:
    assert steps["setup"] == []
    assert steps["plain build"] == []


def test_the_first_directive_that_reads_a_model_imports_them(steps: dict) -> None:
    """The check above can see the modules: a directive brings them in."""
    assert set(steps["directive"]) >= {"onnx", "numpy"}


def test_a_directive_other_than_qdq_requant_leaves_the_integer_modules_alone(steps: dict
                                                                            ) -> None:
    """A page with ``qdq-summary`` (and any other page but ``qdq-requant``'s) does not pay
    for the requantization recipes or the integer reference."""
    for step in ("import", "setup", "plain build", "directive"):
        assert not set(steps[step]) & set(INTEGER), step
