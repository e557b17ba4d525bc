"""``make mutate``: mutation testing of the critical code with cosmic-ray.

For each target below (a module, the functions and constants in it that matter, and
the few tests that are about them) cosmic-ray plants one small bug at a time (a
flipped comparison, a changed number, ``and`` for ``or``, a loop that never runs ...)
in a copy of the package under ``_build/mutation/tree`` and runs those tests; a
mutant the tests do not notice *survives*. Mutations outside the named functions are
skipped, so each mutant costs one short pytest run. The score and every survivor
are written to ``tests/mutation/RESULTS.md``; survivors known to be equivalent (no
test can tell them apart from the original) are listed in :data:`EQUIVALENT` with the
reason, and the score is given with and without them.

Usage: ``python tests/mutation/run.py [TARGET ...] [--jobs N]`` (all targets by
default); ``make mutate`` runs it under ``nice``. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import importlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
# This checkout's package, not an installed one, for the tests and for every worker.
sys.path.insert(0, str(REPOSITORY))
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH", "")]))
WORK = REPOSITORY / "_build" / "mutation"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
          "-p", "no:randomly", "--no-header", "-o", "addopts="]


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # path from the repository root
    symbols: tuple[str, ...]  # top-level functions / constants, or Class.method
    tests: tuple[str, ...]  # pytest arguments: the tests about these symbols
    timeout: float = 60.0
    note: str = ""


TARGETS = (
    Target("escaping", "sphinxext_qdq/render/dot.py",
           ("_DOT_ESCAPES", "_SURROGATES", "_TOOLTIP_ESCAPES", "_NEEDS_ESCAPE", "escape_dot",
            "escape_tooltip", "escape_url", "_clip", "_clip_name", "_lines", "_url_attribute"),
           ("tests/test_dot.py", "-k", "escape or hostile or cut or url or link or special"),
           note="DOT and tooltip escaping, and the cuts that keep a DOT string below "
                "graphviz's limit"),
    Target("requantization", "sphinxext_qdq/integer/requant.py",
           ("MULTIPLIER_BITS", "BIAS_SCALE_TOLERANCE",
            "FixedPointMultiplier", "quantize_multiplier", "requantize", "round_shift",
            "saturate", "BiasQuantization", "_multipliers", "_bias"),
           ("tests/test_requant.py", "-k",
            ("not requant_table and not rows and not warnings_are and not worked_example "
            "and not agreement and not example_without and not resnet8")),
           note="the fixed-point multiplier, the rounding shift, saturation, the recipes"),
    Target("integer-ranges", "sphinxext_qdq/onnxio/dtypes.py",
           ("ElementType.range", "integer_range"),
           ("tests/test_requant.py", "-k", "saturation"),
           note="the (q_min, q_max) of every integer type, which saturation clamps to"),
    Target("integer-kernels", "sphinxext_qdq/integer/kernels.py",
           ("_INT32_LIMIT", "quantize_linear", "zero_point", "run_step", "accumulate",
            "_matmul_kernel", "_ADD_TERM_LIMIT", "_add_kernel", "_pool_kernel",
            "_rescale_kernel", "centred", "_centred_weight", "_channel_shaped", "_fixed_point"),
           ("tests/test_integer_reference.py", "-k",
            "not resnet8 and not onnxruntime and not worked_example and not named_inputs"),
           note="the integer reference's quantize / accumulate / requantize kernels, "
                "against the float64 oracle and onnx's ReferenceEvaluator"),
    Target("containment", "sphinxext_qdq/onnxio/proto.py",
           ("external_data_file", "_contained_data_file", "_contained_location", "_has_drive",
            "_non_negative_int"),
           ("tests/test_loader.py", "-k",
            "external or location or symlink or folder or drive or offset or data_files"),
           note="external data must stay inside the model's folder"),
    Target("resolution", "sphinxext_qdq/sphinx/domain.py",
           ("warn_ambiguous", "QdqDomain.candidates",
            "QdqDomain.resolve_xref", "QdqDomain._resolve_graph_fallback",
            "QdqDomain.resolve_any_xref"),
           ("tests/test_sphinx_params.py", "tests/test_sphinx_graph.py", "-k",
            "ambiguous or target or anchor or removing or fallback or link or refs"),
           timeout=120.0,
           note="how qdq:op / qdq:param / qdq:node references and graph links resolve"),
    Target("drawing-ahead", "sphinxext_qdq/sphinx/nodes.py",
           ("page_before_writing", "_Ahead.submit", "_Ahead.wait", "_Ahead.close",
            "dot_jobs", "MAX_AUTO_DOT_JOBS", "draw_ahead", "draw_picture"),
           ("tests/test_dot_ahead.py",),
           timeout=120.0,
           note="the dot runs of a page started ahead of its writer (qdq_dot_jobs)"),
)

#: Selective mutation: each binary operator is replaced by its nearest neighbour, each
#: comparison by its boundary and its negation (``<`` -> ``<=``, ``<`` -> ``>=``);
#: cosmic-ray's other replacements (``+`` -> ``<<``, ``==`` -> ``is`` ...) are skipped.
#: Every other operator (numbers, ``not``, ``and``/``or``, loops run zero times,
#: exceptions, decorators, ``True``/``False``/``None``, break/continue) is kept whole.
BINARY_NEIGHBOURS = {"Add": "Sub", "Sub": "Add", "Mul": "Div", "Div": "Mul", "FloorDiv": "Div",
                     "Mod": "FloorDiv", "Pow": "Mul", "LShift": "RShift", "RShift": "LShift",
                     "BitAnd": "BitOr", "BitOr": "BitAnd", "BitXor": "BitOr", "MatMult": "Mul"}
COMPARISON_REPLACEMENTS = {"Lt": ("LtE", "GtE"), "LtE": ("Lt", "Gt"), "Gt": ("GtE", "LtE"),
                           "GtE": ("Gt", "Lt"), "Eq": ("NotEq",), "NotEq": ("Eq",),
                           "Is": ("IsNot",), "IsNot": ("Is",), "In": ("NotIn",),
                           "NotIn": ("In",)}


def selected(operator: str) -> bool:
    """Whether a cosmic-ray operator name is part of the selective set above."""
    kind, _, pair = operator.removeprefix("core/").partition("_")
    if kind == "ReplaceBinaryOperator":
        old, _, new = pair.partition("_")
        return BINARY_NEIGHBOURS.get(old) == new
    if kind == "ReplaceComparisonOperator":
        old, _, new = pair.partition("_")
        return new in COMPARISON_REPLACEMENTS.get(old, ())
    return True


#: Survivors no test can kill: (target, symbol, the mutated line, stripped) -> why the
#: mutant behaves exactly like the original in this program.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("escaping", "_clip_name", "head = (width - 2) // 2"):
        "(w - 1) // 2 == (w - 2) // 2 for every even w, and every caller passes an even "
        "width (LABEL_WIDTH = 36, 32, 24)",
    ("requantization", "_multipliers", "s_x = inputs[ -1].scales[0]"):
        "a Conv / Gemm / MatMul group reaches _multipliers only with its weight read "
        "through a DequantizeLinear, so its activation inputs are exactly one: "
        "inputs[-1] is inputs[0]",
    ("requantization", "_multipliers",
     "return (quantize_multiplier(inputs[ -1].scales[0] / (s_y * (pool_size or 1))),)"):
        "a pool has one input: inputs[-1] is inputs[0]",
    ("requantization", "_multipliers",
     "return (quantize_multiplier(inputs[ -1].scales[0] / s_y),)"):
        "a rescaling op (Relu, Reshape, Flatten ...) has one input: inputs[-1] is inputs[0]",
    ("integer-kernels", "accumulate", "assert weight is not None or recipe.weight is not None"):
        "an invariant of every matmul step (both are set together when the step is built)",
    ("integer-kernels", "_add_kernel",
     "if int(np.abs(values).max(initial= -1)) * m.multiplier << extra >= _ADD_TERM_LIMIT:"):
        "the largest |value| is at least 0, so an initial -1 changes the maximum only for "
        "an empty tensor, where both bounds are below the limit",
    ("integer-kernels", "_centred_weight", "if zero_points.size >= 1:"):
        "a single zero point reshaped to a broadcastable shape subtracts the same value "
        "from every weight as the scalar does",
    ("integer-kernels", "_centred_weight", "if zero_points.size > 0:"):
        "as `>= 1`: a single zero point reshaped or not gives the same difference",
    ("resolution", "QdqDomain.resolve_xref",
     "found = matches[ -1] if len(matches) == 1 else None"):
        "with exactly one match, matches[-1] is matches[0]",
    ("resolution", "QdqDomain._resolve_graph_fallback",
     'refnode = nodes.reference("", "", contnode, internal=True,'):
        "the reference made for a graph link is only read for its refuri by the graph's "
        "visitors; it is never written out, so its internal flag is never seen",
}


PER_TENSOR = ("[0] and [-1] differ only for a per-axis activation scale; activations are "
              "quantized per tensor in every model the recipes are made for (the integer "
              "reference refuses per-channel activations), where one multiplier per output "
              "would not even be defined")

#: Survivors that are not equivalent but left alone, with the reason (same keys).
LEFT_ALONE: dict[tuple[str, str, str], str] = {
    ("requantization", "_multipliers",
     "return (quantize_multiplier(inputs[0].scales[0] / (s_y * (pool_size or 2))),)"):
        "`or 1` only acts on a window of 0 elements (an unknown window blocks the recipe "
        "before): AveragePool with kernel_shape 0 or a spatial dimension 0, which ONNX "
        "does not allow",
    ("requantization", "_multipliers",
     "return (quantize_multiplier(inputs[0].scales[0] / (s_y * (pool_size or 0))),)"):
        "as `or 2` above: only a window of 0 elements, which ONNX does not allow",
    **{("requantization", symbol, line): PER_TENSOR for symbol, line in (
        ("_multipliers", "s_y = output.scales[ -1]"),
        ("_multipliers", "s_x = inputs[0].scales[ -1]"),
        ("_multipliers",
         "return (quantize_multiplier(inputs[0].scales[ -1] / (s_y * (pool_size or 1))),)"),
        ("_multipliers", "return (quantize_multiplier(inputs[0].scales[ -1] / s_y),)"),
        ("_bias", "exact = [activation.scales[ -1] * s_w for s_w in weight.scales]"))},
    ("requantization", "_multipliers", 'if kind == "matmul" or weight is not None:'):
        "differs only for a group that is not a Conv / Gemm / MatMul but has a weight-role "
        "DequantizeLinear input (an Add of a quantized constant, say); no test model has "
        "one, and what its recipe should be is an open question (noted in the report)",
}


@dataclass
class Outcome:
    target: Target
    total: int = 0  # mutants inside the named symbols
    killed: int = 0
    timeouts: int = 0
    incompetent: int = 0
    survivors: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    not_run: int = 0  # selected mutants the session has not run (an interrupted run)

    @property
    def equivalent(self) -> int:
        return sum(1 for s in self.survivors if s["equivalent"])


# -- where the mutants are ----------------------------------------------------------------------
def spans(path: Path, symbols: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """(first line, last line, symbol) of each named top-level definition or method."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        names = []
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        for name in names:
            if name in symbols:
                found.append((node.lineno, node.end_lineno, name))
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                qualified = f"{node.name}.{getattr(item, 'name', '')}"
                if isinstance(item, ast.FunctionDef) and qualified in symbols:
                    found.append((item.lineno, item.end_lineno, qualified))
    missing = set(symbols) - {name for _, _, name in found}
    if missing:
        raise SystemExit(f"{path}: no top-level {', '.join(sorted(missing))}")
    return found


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the type annotations are: with ``from __future__ import annotations`` they
    are never evaluated, so a mutant inside one is equivalent by construction."""
    found = []
    for node in ast.walk(ast.parse(source)):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                     *(a for a in (arguments.vararg, arguments.kwarg) if a)]
            annotations = [a.annotation for a in every if a.annotation] + (
                [node.returns] if node.returns else [])
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        found += [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset))
                  for a in annotations]
    return found


ANNOTATION = "inside a type annotation, which is never evaluated (from __future__ import annotations)"


def symbol_at(line: int, ranges: list[tuple[int, int, str]]) -> str | None:
    inner = [r for r in ranges if r[0] <= line <= r[1]]
    return min(inner, key=lambda r: r[1] - r[0])[2] if inner else None


# -- one target ------------------------------------------------------------------------------------
def config_text(target: Target) -> str:
    """cosmic-ray's TOML configuration (the module; the test command is ours, see below)."""
    command = " ".join(shlex.quote(part) for part in [*PYTEST, *target.tests])
    return "\n".join([
        "[cosmic-ray]",
        f'module-path = "{target.module}"',
        f"timeout = {target.timeout}",
        "excluded-modules = []",
        f"test-command = {json.dumps(command)}",  # a TOML basic string is JSON's
        "",
        "[cosmic-ray.distributor]",
        'name = "local"',
        "",
    ])


def preload(targets: list[Target]) -> None:
    """Import what every mutant's tests import, once, before the forks."""
    import pytest  # noqa: F401

    sys.path.insert(0, str(REPOSITORY / "tests"))
    for name in ("numpy", "onnx", "onnx.reference", "onnxruntime", "hypothesis", "docutils",
                 "sphinx.testing.fixtures", "sphinx.ext.graphviz", "myst_parser", "qdq_factories",
                 "sphinx_helpers", "hostile_corpus", "sphinxext_qdq.sphinx.extension",
                 "sphinxext_qdq.integer.kernels", "sphinxext_qdq.cli"):
        importlib.import_module(name)
    for target in targets:
        importlib.import_module(module_name(target.module))
    factories = sys.modules["qdq_factories"]  # ONNX Runtime's quantizer, cached per process
    for options in ({}, {"per_channel": True}, {"activation_type": "QInt8"}):
        factories.tiny_resnet_qdq(**options)
    factories.tiny_resnet_qdq_int16()


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def swap_in(module_path: str, mutated: str) -> None:
    """Run the mutated source in the live module's namespace and rebind every name other
    modules imported from it (``from x import f``) to the new objects."""
    module = sys.modules[module_name(module_path)]
    before = dict(vars(module))
    exec(compile(mutated, module.__file__, "exec", dont_inherit=True), vars(module))  # noqa: S102
    for name, old in before.items():
        new = getattr(module, name, old)
        if new is old or name.startswith("__"):
            continue
        for other in list(sys.modules.values()):
            if other is not module and getattr(other, name, None) is old:
                setattr(other, name, new)


def run_mutant(target: Target, mutated: str) -> tuple[str, int]:
    """("killed" | "survived" | "timeout", exit status) of the target's tests in a forked
    child running the mutated module (the files on disk are never changed)."""
    pid = os.fork()
    if pid == 0:  # the child
        status = 3
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.chdir(REPOSITORY)
            swap_in(target.module, mutated)
            import pytest

            status = int(pytest.main([*PYTEST[3:], *target.tests]))
        except BaseException:  # noqa: BLE001 - an incompetent mutant (it does not import): killed
            status = 1
        finally:
            os._exit(status)
    deadline = time.monotonic() + target.timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            if code not in (0, 1):  # 2-5: interrupted, internal error, usage, no tests
                raise SystemExit(f"{target.name}: pytest exit status {code} under a mutant")
            return ("killed" if code else "survived"), code
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "timeout", -1


def run_target(target: Target, count_only: bool = False, again: bool = False) -> Outcome:
    """Plant every selected mutant of *target* and run its tests. *again*: keep the kills
    of the last run of the same source and configuration, run only its survivors (tests
    were added since; a kill cannot be undone by adding tests)."""
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    started = time.monotonic()
    suffix = ".count" if count_only else ""  # counting never replaces a run's session
    config = WORK / f"{target.name}{suffix}.toml"
    session = WORK / f"{target.name}{suffix}.sqlite"
    stamp = WORK / f"{target.name}{suffix}.source"
    source = (REPOSITORY / target.module).read_text(encoding="utf-8")
    signature = hashlib.sha256((source + config_text(target)).encode()).hexdigest()
    again = again and session.exists() and stamp.exists() and stamp.read_text() == signature
    if not again:
        config.write_text(config_text(target), encoding="utf-8")
        session.unlink(missing_ok=True)
        stamp.unlink(missing_ok=True)
        cosmic = [str(Path(sys.executable).parent / "cosmic-ray")]
        subprocess.run([*cosmic, "init", str(config), str(session)], cwd=REPOSITORY, check=True)
    ranges = spans(REPOSITORY / target.module, target.symbols)
    outcome = Outcome(target)
    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = []
        for item in db.pending_work_items:
            mutation = item.mutations[0]
            if (symbol_at(mutation.start_pos[0], ranges) is None
                    or not selected(mutation.operator_name)):
                db.set_result(item.job_id, WorkResult(output="not a selected mutant",
                                                      worker_outcome=WorkerOutcome.SKIPPED))
            else:
                pending.append(item)
        for item, result in db.completed_work_items if again else ():
            if result.test_outcome == TestOutcome.SURVIVED:
                pending.append(item)
            elif result.worker_outcome != WorkerOutcome.SKIPPED:
                outcome.killed += 1
                outcome.timeouts += result.worker_outcome == WorkerOutcome.ABNORMAL
        outcome.total = outcome.killed + len(pending)
        if count_only:
            return outcome
        stamp.write_text(signature, encoding="utf-8")
        verdict, _ = run_mutant(target, source)
        if verdict != "survived":
            raise SystemExit(f"{target.name}: the tests fail without any mutant")
        for item in pending:
            mutation = item.mutations[0]
            mutated = mutate_code(source, get_operator(mutation.operator_name)(),
                                  mutation.occurrence)
            if mutated is None or mutated == source:
                raise SystemExit(f"{target.name}: {mutation} changes nothing")
            verdict, _ = run_mutant(target, mutated)
            diff = "\n".join(difflib.unified_diff(source.splitlines(), mutated.splitlines(),
                                                  lineterm="", n=0))
            db.set_result(item.job_id, WorkResult(
                worker_outcome=WorkerOutcome.NORMAL if verdict != "timeout" else
                WorkerOutcome.ABNORMAL, diff=diff,
                test_outcome=TestOutcome.SURVIVED if verdict == "survived" else
                TestOutcome.KILLED))
    return outcome_from_session(target, time.monotonic() - started)


def outcome_from_session(target: Target, seconds: float = 0.0) -> Outcome:
    """Counts and survivors of a target from its cosmic-ray session (finished or not)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    source = (REPOSITORY / target.module).read_text(encoding="utf-8")
    ranges = spans(REPOSITORY / target.module, target.symbols)
    lines = source.splitlines()
    annotations = annotation_spans(source)
    outcome = Outcome(target, seconds=seconds)
    with use_db(str(WORK / f"{target.name}.sqlite"), WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            mutation = item.mutations[0]
            if symbol_at(mutation.start_pos[0], ranges) and selected(mutation.operator_name):
                outcome.not_run += 1
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            mutation = item.mutations[0]
            if result.test_outcome != TestOutcome.SURVIVED:
                outcome.killed += 1
                outcome.timeouts += result.worker_outcome == WorkerOutcome.ABNORMAL
                continue
            added = [text[1:].strip() for text in (result.diff or "").splitlines()
                     if text.startswith("+") and not text.startswith("+++")]
            removed = [text[1:].strip() for text in (result.diff or "").splitlines()
                       if text.startswith("-") and not text.startswith("---")]
            # the mutated line in today's source (the module may have moved since the run)
            line = mutation.start_pos[0]
            same = [number for number, text in enumerate(lines, 1)
                    if removed and text.strip() == removed[0]]
            shift = min(same, key=lambda number: abs(number - line)) - line if same else 0
            line += shift
            symbol = symbol_at(line, ranges) or "?"
            position = (line, mutation.start_pos[1])
            in_annotation = any(start <= position < end for start, end in annotations)
            outcome.survivors.append({
                "symbol": symbol, "line": line, "operator": mutation.operator_name,
                "occurrence": mutation.occurrence, "text": lines[line - 1].strip(),
                "diff": _diff_lines(result.diff),
                "equivalent": ANNOTATION if in_annotation else EQUIVALENT.get(
                    (target.name, symbol, added[0] if added else "")),
                "left_alone": LEFT_ALONE.get((target.name, symbol, added[0] if added else ""))})
    outcome.total = outcome.killed + len(outcome.survivors)
    outcome.survivors.sort(key=lambda survivor: survivor["line"])
    return outcome


def _diff_lines(diff: str | None) -> str:
    """The changed lines of a mutant's unified diff."""
    lines = [line for line in (diff or "").splitlines()
             if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return "\n".join(lines)


# -- the report ----------------------------------------------------------------------------------
def score(killed: int, total: int) -> str:
    return f"{100 * killed / total:.1f} %" if total else "n/a"


def commit() -> str:
    """The commit measured: ``MUTATE_COMMIT`` (a snapshot), else this checkout's HEAD."""
    if os.environ.get("MUTATE_COMMIT"):
        return os.environ["MUTATE_COMMIT"][:12]
    result = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(REPOSITORY), "status", "--porcelain", "--",
                            "sphinxext_qdq", "tests"], capture_output=True, text=True,
                           check=False).stdout.strip()
    return (result.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def report(outcomes: list[Outcome], command: str) -> str:
    total = sum(o.total for o in outcomes)
    killed = sum(o.killed for o in outcomes)
    equivalent = sum(o.equivalent for o in outcomes)
    lines = [
        "# Mutation testing: results",
        "",
        "Produced by `" + command + f"` at commit {commit()} (cosmic-ray {version('cosmic-ray')}; "
        "see `tests/mutation/run.py` for the targets, the tests each mutant runs and the "
        "equivalent mutants).",
        "",
        (f"**Score: {score(killed, total - equivalent)}** — {killed} of {total - equivalent} "
        f"non-equivalent mutants killed ({total} mutants, {equivalent} equivalent; "
        f"{score(killed, total)} counting the equivalent ones as survivors)."),
        "",
        ("How: cosmic-ray lists the mutants of each module (its operators, with binary and "
        "comparison replacements cut to the nearest neighbour, boundary and negation); "
        "those outside the named functions and constants are skipped; each remaining "
        "mutant is swapped into the live module in a forked child, which runs only the "
        "target's tests (pytest, stopping at the first failure). A mutant is killed when "
        "a test fails, errors or runs out of time."),
        "",
        "| target | module | mutants | killed | equivalent | survived | not run | score |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        survived = len(o.survivors) - o.equivalent
        lines.append(f"| {o.target.name} | `{o.target.module}` | {o.total} | {o.killed} | "
                     f"{o.equivalent} | {survived} | {o.not_run} | "
                     f"{score(o.killed, o.total - o.equivalent)} |")
    not_run = sum(o.not_run for o in outcomes)
    if not_run:
        lines += ["", (f"**Incomplete:** {not_run} selected mutants were not run (the run was "
                  "stopped); the score is over the mutants that ran.")]
    lines += ["", "Killed includes mutants stopped by the time limit (an endless loop): "
              + ", ".join(f"{o.target.name} {o.timeouts}" for o in outcomes) + ".", ""]
    for o in outcomes:
        lines += [f"## {o.target.name}", "", (f"{o.target.note}. Tests: "
                  f"`pytest {' '.join(shlex.quote(t) for t in o.target.tests)}`."), ""]
        for title, wanted in (("Surviving mutants", False), ("Equivalent mutants", True)):
            chosen = [s for s in o.survivors if bool(s["equivalent"]) == wanted]
            if not chosen:
                continue
            lines += [f"{title}:", ""]
            for s in chosen:
                lines.append(f"- `{s['symbol']}` line {s['line']}, {s['operator']} "
                             f"#{s['occurrence']}: `{s['text']}`")
                lines += ["  " + ("  " + part if part else "") for part in
                          ["```diff", *s["diff"].splitlines(), "```"]]
                if wanted:
                    lines.append(f"  Equivalent: {s['equivalent']}")
                elif s.get("left_alone"):
                    lines.append(f"  Left alone: {s['left_alone']}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def outcome_json(outcome: Outcome) -> dict:
    return {"target": outcome.target.name, "seconds": outcome.seconds}


def outcome_from(data: dict) -> Outcome:
    target = next(t for t in TARGETS if t.name == data["target"])
    return outcome_from_session(target, data["seconds"])


def in_workers(chosen: list[Target], jobs: int, again: bool) -> list[Outcome]:
    """Each target in its own process (forks from one thread only), *jobs* at a time."""
    running: list[tuple[Target, subprocess.Popen, Path]] = []
    queue, results = list(chosen), {}
    while queue or running:
        while queue and len(running) < jobs:
            target = queue.pop(0)
            out = WORK / f"{target.name}.json"
            out.unlink(missing_ok=True)
            running.append((target, subprocess.Popen(
                [sys.executable, __file__, target.name, "--json", str(out),
                 *(["--again"] if again else [])]), out))
        for entry in list(running):
            target, process, out = entry
            if process.poll() is not None:
                running.remove(entry)
                if process.returncode != 0:
                    raise SystemExit(f"mutate: {target.name} failed ({process.returncode})")
                results[target.name] = outcome_from(json.loads(out.read_text()))
        time.sleep(0.5)
    return [results[t.name] for t in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="targets to run, of: " + ", ".join(t.name for t in TARGETS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--jobs", type=int, default=1, help="targets run side by side")
    parser.add_argument("--count", action="store_true", help="only count the mutants")
    parser.add_argument("--again", action="store_true",
                        help="run only the survivors of the last run (same source)")
    parser.add_argument("--report-only", action="store_true",
                        help="write the report from the sessions of the last run")
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)  # one worker's outcome
    args = parser.parse_args(argv)
    unknown = set(args.targets) - {t.name for t in TARGETS}
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    chosen = [t for t in TARGETS if not args.targets or t.name in args.targets]
    WORK.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        outcomes = [outcome_from_session(t) for t in chosen
                    if (WORK / f"{t.name}.sqlite").exists()]
    elif args.jobs > 1 and len(chosen) > 1 and not args.count:
        outcomes = in_workers(chosen, args.jobs, args.again)
    else:
        if not args.count:
            preload(chosen)
        outcomes = []
        for target in chosen:
            print(f"mutate: {target.name} ({target.module})", flush=True)
            o = run_target(target, count_only=args.count, again=args.again)
            outcomes.append(o)
            print(f"mutate: {target.name}: {o.killed} of {o.total} killed, "
                  f"{len(o.survivors)} survived ({o.equivalent} equivalent), "
                  f"{o.seconds / 60:.1f} min", flush=True)
    if args.count:
        return 0
    if args.json:
        (only,) = outcomes
        args.json.write_text(json.dumps(outcome_json(only)), encoding="utf-8")
        return 0
    command = ("python tests/mutation/run.py " + " ".join(
        [*args.targets, *(["--again"] if args.again else []),
         *(["--report-only"] if args.report_only else [])])).rstrip()
    if command == "python tests/mutation/run.py":
        command = "make mutate"
    args.output.write_text(report(outcomes, command), encoding="utf-8")
    print(f"mutate: results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
