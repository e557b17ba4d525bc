"""The bugs that once passed the whole suite, planted again one at a time: each must make
the test written to catch it fail (``make mutate`` measures the rest; see
``tests/mutation/RESULTS.md``).

A mutant replaces a piece of text in one function, method or constant of the package;
the changed definition is compiled in the module's namespace and swapped in for the
duration of the test (``monkeypatch``), then the killing test is called directly.
"""

from __future__ import annotations
import __future__

import ast
import importlib
import inspect
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import qdq_factories as factories
import test_dot
import test_integer_reference
import test_loader
import test_requant
import test_sphinx_params

from sphinxext_qdq.analysis import load_qdq_model
from sphinxext_qdq.integer.kernels import IntegerReferenceError


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str
    symbol: str  # a top-level function or constant, or Class.method
    edits: tuple[tuple[str, str], ...]  # (text found exactly once, its replacement)
    killer: Callable[[Path], None]
    error: type[BaseException] = AssertionError


def definition_source(module, symbol: str) -> str:
    """The source of a top-level assignment, function or class method, dedented."""
    owner, _, member = symbol.rpartition(".")
    if owner:
        function = inspect.getattr_static(getattr(module, owner), member)
        return textwrap.dedent(inspect.getsource(getattr(function, "fget", function)))
    text = inspect.getsource(module)
    body = ast.parse(text).body
    for index, node in enumerate(body):
        names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if getattr(node, "name", None) == symbol or symbol in names:
            parts = [node]
            for after in body[index + 1:]:  # and the statements completing it: NAME.update(...)
                call = after.value if isinstance(after, ast.Expr) else None
                target = getattr(getattr(call, "func", None), "value", None)
                if not (isinstance(target, ast.Name) and target.id == symbol):
                    break
                parts.append(after)
            return "\n".join(ast.get_source_segment(text, part) for part in parts)
    raise LookupError(symbol)


def plant(monkeypatch: pytest.MonkeyPatch, mutant: Mutant) -> None:
    module = importlib.import_module(mutant.module)
    source = definition_source(module, mutant.symbol)
    for old, new in mutant.edits:
        assert source.count(old) == 1, (mutant.name, old)
        source = source.replace(old, new)
    namespace = dict(vars(module))
    code = compile(source, module.__file__, "exec", dont_inherit=True,
                   flags=__future__.annotations.compiler_flag)  # as the module compiles it
    exec(code, namespace)  # noqa: S102 - the package's own source, one edit applied
    owner, _, member = mutant.symbol.rpartition(".")
    if owner:
        monkeypatch.setattr(getattr(module, owner), member, namespace[member])
        return
    original = getattr(module, member)
    for other in list(sys.modules.values()):  # and wherever it was imported by name
        if getattr(other, member, None) is original:
            monkeypatch.setattr(other, member, namespace[member])


# -- the killing tests, called with what their fixtures would give ------------------------------
def svg_escapes(mode: str, pairs: str = "edges") -> Callable[[Path], None]:
    def check(tmp_path: Path) -> None:
        proto = factories.weight_dq_model()
        names = test_dot.with_escapes_in_every_name(proto)
        model = load_qdq_model(factories.save(proto, tmp_path / "escapes.onnx"))
        test_dot.test_graphviz_escapes_in_names_stay_literal_in_svg_labels_and_tooltips(
            (proto, names, model), mode, pairs)
    return check


def input_quantization(case: int) -> Callable[[Path], None]:
    arguments = test_integer_reference.test_input_quantization_equals_onnx_reference_evaluator
    cases = next(m.args for m in arguments.pytestmark if m.name == "parametrize")[1]
    return lambda tmp_path: arguments(tmp_path, *cases[case])


def int32_limit(case: int) -> Callable[[Path], None]:
    limits = test_integer_reference.test_the_accumulator_may_reach_both_int32_limits_but_not_pass_them
    cases = next(m.args for m in limits.pytestmark if m.name == "parametrize")[1]
    return lambda tmp_path: limits(tmp_path, *cases[case])


def bias_scale(tmp_path: Path) -> None:
    scale = test_requant.float32_scale(test_requant.PRODUCT * (1 + 2.0 ** -20))
    test_requant.test_the_bias_scale_must_be_sx_sw_to_float32_precision(tmp_path, scale, False)


MUTANTS = (
    Mutant("tooltips escaped like labels", "sphinxext_qdq.render.dot", "escape_tooltip",
           (("translate(_TOOLTIP_ESCAPES)", "translate(_DOT_ESCAPES)"),),
           svg_escapes("compact")),
    Mutant("labels leave backslashes unescaped", "sphinxext_qdq.render.dot", "_DOT_ESCAPES",
           ((r'ord("\\"): "\\\\",', ""),), svg_escapes("full")),
    Mutant("QuantizeLinear rounds half up", "sphinxext_qdq.integer.kernels",
           "quantize_linear", (("np.rint(quotient)", "np.floor(quotient + 0.5)"),),
           input_quantization(0)),
    Mutant("QuantizeLinear divides in float64", "sphinxext_qdq.integer.kernels",
           "quantize_linear", (("np.asarray(x, np.float32) / np.float32(scale)",
                                "np.asarray(x, np.float64) / np.float64(scale)"),),
           input_quantization(2)),
    Mutant("accumulator may reach 2^31", "sphinxext_qdq.integer.kernels", "accumulate",
           ((">= _INT32_LIMIT", "> _INT32_LIMIT"),), int32_limit(1), pytest.fail.Exception),
    Mutant("accumulator may not reach -2^31", "sphinxext_qdq.integer.kernels", "accumulate",
           (("< -_INT32_LIMIT", "<= -_INT32_LIMIT"),), int32_limit(2), IntegerReferenceError),
    Mutant("bias scale tolerance 2^-8", "sphinxext_qdq.integer.requant",
           "BIAS_SCALE_TOLERANCE", (("2.0 ** -22", "2.0 ** -8"),), bias_scale),
    Mutant("ambiguous name resolves to the first model", "sphinxext_qdq.sphinx.domain",
           "QdqDomain.resolve_xref",
           (('if len(matches) > 1 and not node.get("qdq_link_key"):', "if False:"),
            ("found = matches[0] if len(matches) == 1 else None",
             "found = matches[0] if matches else None")),
           test_sphinx_params.test_a_bare_name_in_two_models_is_ambiguous_and_names_both),
    Mutant("ties of the requantization round up", "sphinxext_qdq.integer.requant",
           "round_shift", (("(remainder == half) & (floor % 2 == 1)", "(remainder == half)"),),
           lambda tmp_path: test_requant.test_ties_go_to_even_or_up()),
    Mutant("external data may leave the folder through a link", "sphinxext_qdq.onnxio.proto",
           "_contained_location",
           (("if candidate != folder and folder not in candidate.parents:", "if False:"),),
           test_loader.test_symlink_leaving_the_folder_is_refused),
)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_the_planted_bug_fails_its_test(mutant: Mutant, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "original").mkdir()
    (tmp_path / "mutant").mkdir()
    mutant.killer(tmp_path / "original")  # the test passes on the real code...
    plant(monkeypatch, mutant)
    with pytest.raises(mutant.error):  # ...and fails with the bug planted
        mutant.killer(tmp_path / "mutant")


def test_a_planted_definition_replaces_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planting itself works: the mutated function is the one the package calls."""
    from sphinxext_qdq.integer import requant

    plant(monkeypatch, Mutant("x", "sphinxext_qdq.integer.requant", "saturate",
                              (("np.clip(values, low, high)", "values"),), bias_scale))
    assert requant.saturate(np.array([1000]), "INT8").tolist() == [1000]
