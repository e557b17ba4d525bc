"""Run fuzz inputs against every entry point, in child processes with a memory limit and
a per-input timeout, and count what went wrong.

Every input (:func:`mutators.make_input`) goes through (options marked *turn* rotate
with ``seed % 4``, so four seeds in a row cover them all):

* **Sphinx** (in-process, a batch of pages per build; the builders in turn: ``html``
  with graphviz drawings and matplotlib pictures, ``text`` (the outline, the pictures'
  alternative text) and ``latex`` (the LaTeX writer, its post-transforms, PDF
  pictures)). One page per input holds:

  - ``qdq-graph`` ``:mode: compact`` ``:legend:``; ``:mode: full`` ``:pairs: nodes``;
    ``:depth: 1`` ``:scope:`` (the compute node's first scope) ``:rankdir: LR`` with the
    figure options ``:width:`` ``:align:`` ``:alt:`` ``:caption:`` ``:name:``
    ``:class:``; ``:depth: auto`` (odd seeds) / ``all`` with ``:from:`` or ``:to:`` the
    compute node and ``:scale:``; the SQNR overlay ``:color-by: sqnr`` ``:float:``
    ``:inputs:`` ``:images: 1``;
  - ``qdq-params`` ``:values: full`` ``:no-index:`` with, by turn, ``:nodes:``,
    ``:qdq-ops:``, ``:roles:`` + ``:no-index-entry:`` or ``:limit:``; and
    ``:layout: initializer`` ``:caption:`` (odd seeds: the deprecated ``:ops:``);
  - ``qdq-summary`` with ``:caption:`` ``:name:`` ``:class:``;
  - ``qdq-requant`` table (``:values: full``; by turn ``:nodes:``, ``:compute-ops:``,
    ``:limit:`` + ``:rounding:``, the deprecated ``:ops:`` + ``:no-index-entry:`` +
    ``:caption:``), ``:show: example`` ``:node:`` ``:inputs:`` (by turn ``:position:``,
    ``:image:``, ``:rounding:``) and, one page in eight, ``:show: agreement``;
  - ``qdq-histogram`` ``:limit: 2`` ``:bins:`` ``:layout:`` ``:caption:`` ``:name:``
    ``:class:`` with, by turn, ``:nodes:``, ``:inputs:`` + ``:roles:``, ``:float:`` +
    ``:tensors:``, ``:float:`` + ``:inputs:`` + ``:images:``;
  - ``qdq-error`` ``:float:`` ``:inputs:`` ``:images:`` ``:bins:`` ``:caption:``
    ``:name:`` ``:class:`` with, by turn, ``:show: both`` + ``:worst-weights:``,
    ``table``, ``plot`` + ``:layout:``, ``none`` + ``:compare:``.

  The float model is the input itself (even seeds) or a mutated sibling of it
  (:func:`mutators.make_sibling`: the same seed model, another mutation; odd seeds); the
  ``.npy`` inputs fit the model's declared input shape when it is small.
* **CLI** (in-process ``cli.main``), every subcommand of ``cli.SUBCOMMANDS`` and the
  graph, each with, by turn, ``--max-param-values 64`` or ``--max-bytes 65536``:
  ``qdq-graph MODEL --max-nodes --timeout`` (by turn: ``--format svg|dot --legend``;
  ``--depth 1 --scope --rankdir LR --name``; ``--from --depth auto --budget --pairs
  nodes``; ``--to --depth all --mode full --dot``), ``vectors --node --max-elements``
  (by turn ``--name``, ``--inputs --rounding``, ``--batch --seed``), ``error FLOAT MODEL
  --inputs`` (by turn ``--format csv|json|md``, ``-o``, ``--images``) and ``histogram
  MODEL --nodes --bins`` (by turn ``--format svg|png|pdf``, ``--inputs --roles``,
  ``--float --max-elements``, ``--layout``).

Not given: ``--version`` and ``--help`` (no model is read).

A failure is: a traceback (an exception out of a build or of ``cli.main``, an
``Exception occurred`` / ``Traceback`` / ``unexpected`` message in any output), a page
not written, a hang (the per-input timeout, by ``SIGALRM`` and, as a last resort, the
parent killing the child) or a CLI exit status other than 0 and 2. Each batch is one
fresh forked child under ``RLIMIT_AS``; ``jobs`` children run at a time; the parent reads
the largest peak RSS of any one child from ``getrusage``.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
for folder in (str(TESTS), str(HERE)):
    if folder not in sys.path:
        sys.path.insert(0, folder)

#: Address-space limit of a child (Sphinx, onnx, numpy and ONNX Runtime mapped in).
MEMORY_LIMIT = 3 << 30
CRASH_MARKERS = ("Traceback (most recent call last)", "Exception occurred", "unexpected ",
                 "qdq-graph: error: unexpected")
BUILDERS = ("html", "text", "latex")


@dataclass
class Failure:
    kind: str  # "traceback" | "hang" | "exit" | "page" | "harness" (a bug of the harness)
    entry: str
    seeds: list[int]
    detail: str


@dataclass
class Tally:
    inputs: int = 0  # fuzz inputs (models) written
    runs: dict[str, int] = field(default_factory=dict)  # entry point -> inputs run through it
    failures: list[Failure] = field(default_factory=list)
    exits: dict[str, int] = field(default_factory=dict)  # CLI exit status -> count
    warnings: int = 0
    seconds: float = 0.0
    peak_rss_kib: int = 0
    jobs: int = 1  # batch children at a time
    seeds: list[int] = field(default_factory=list)  # [lowest, highest] seed of a Sphinx batch

    def add(self, other: Tally) -> None:
        self.inputs += other.inputs
        for key, value in other.runs.items():
            self.runs[key] = self.runs.get(key, 0) + value
        for key, value in other.exits.items():
            self.exits[key] = self.exits.get(key, 0) + value
        self.failures += other.failures
        self.warnings += other.warnings
        self.peak_rss_kib = max(self.peak_rss_kib, other.peak_rss_kib)
        if other.inputs and other.seeds:
            ends = self.seeds + other.seeds
            self.seeds = [min(ends), max(ends)]

    def count(self, kind: str) -> int:
        return sum(len(f.seeds) if kind == "hang" else 1 for f in self.failures
                   if f.kind == kind)

    @property
    def entry_runs(self) -> int:
        return sum(self.runs.values())


class Hang(BaseException):
    """Raised by SIGALRM when one input outlives its timeout."""


@contextlib.contextmanager
def alarm(seconds: float):
    def ring(signum, frame):
        raise Hang()
    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- one batch, in a child process ---------------------------------------------------------
def _scope(node: str) -> str:
    """A scope to ask for: the first ``/`` or ``.`` part of the node's name."""
    parts = [part for part in node.replace(".", "/").split("/") if part.strip()]
    return parts[0] if parts else "conv"


def _files(number: int, fuzz_input, folder: Path) -> tuple[str, str, str]:
    """(model, float model, inputs) as a page names them: the float model is the input
    itself (even seeds) or a mutated sibling (odd seeds); the inputs fit the model's
    declared input shape when it has a small one, else the batch's ``/inputs.npy``."""
    import numpy as np
    from mutators import make_sibling

    model = f"/inputs/{number}/model.onnx"
    float_model = model
    if fuzz_input.seed % 2 and make_sibling(fuzz_input, folder / "float.onnx") != fuzz_input.path:
        float_model = f"/inputs/{number}/float.onnx"
    inputs = "/inputs.npy"
    if fuzz_input.input_shape is not None:
        rng = np.random.default_rng(fuzz_input.seed)
        np.save(folder / "x.npy", rng.standard_normal(fuzz_input.input_shape, np.float32))
        inputs = f"/inputs/{number}/x.npy"
    return model, float_model, inputs


def _blocks(model: str, float_model: str, inputs: str, fuzz_input) -> list[list[str]]:
    """The directive uses of one page; options rotate with the seed (``turn``)."""
    seed = fuzz_input.seed
    turn = seed % 4
    node = fuzz_input.compute_node.replace("\n", " ").strip() or "conv"
    params_filter = (["   :nodes: ."], ["   :qdq-ops: QuantizeLinear, DequantizeLinear"],
                     ["   :roles: weight, activation", "   :no-index-entry:"],
                     ["   :limit: 3"])[turn]
    requant_filter = (["   :nodes: ."], ["   :compute-ops: Conv, Gemm, MatMul"],
                      ["   :limit: 2", "   :rounding: half_up"],
                      ["   :ops: Conv", "   :no-index-entry:", f"   :caption: {node}"])[turn]
    example = (["   :position: 0, 0, 0", "   :image: 0"], ["   :rounding: half_up"], [],
               ["   :position: 1"])[turn]
    histogram = (["   :nodes: ."], ["   :inputs: " + inputs, "   :roles: activation, weight"],
                 ["   :float: " + float_model, f"   :tensors: {node}"],
                 ["   :float: " + float_model, "   :inputs: " + inputs, "   :images: 1"])[turn]
    error = (["   :show: both", "   :worst-weights:"], ["   :show: table"],
             ["   :show: plot", "   :layout: column"],
             ["   :show: none", f"   :compare: {model}"])[turn]
    blocks = [
        [f".. qdq-graph:: {model}", "   :mode: compact", "   :legend:"],
        [f".. qdq-graph:: {model}", "   :mode: full", "   :pairs: nodes"],
        [f".. qdq-graph:: {model}", "   :depth: 1", f"   :scope: {_scope(node)}",
         "   :rankdir: LR", "   :width: 50%", "   :align: center", f"   :alt: {node}",
         f"   :caption: {node}", f"   :name: graph-{seed}", "   :class: fuzz"],
        [f".. qdq-graph:: {model}", "   :depth: " + ("auto" if seed % 2 else "all"),
         f"   :{'from' if turn < 2 else 'to'}: {node}", "   :scale: 50"],
        [f".. qdq-graph:: {model}", "   :color-by: sqnr", f"   :float: {float_model}",
         f"   :inputs: {inputs}", "   :images: 1"],
        [f".. qdq-params:: {model}", "   :values: full", "   :no-index:", *params_filter],
        [f".. qdq-params:: {model}", "   :layout: initializer", f"   :caption: {node}",
         *(["   :ops: QuantizeLinear"] if seed % 2 else [])],
        [f".. qdq-summary:: {model}", f"   :caption: Summary of {node}",
         f"   :name: summary-{seed}", "   :class: fuzz"],
        [f".. qdq-requant:: {model}", "   :no-index:", "   :values: full", *requant_filter],
        [f".. qdq-requant:: {model}", "   :show: example", f"   :node: {node}",
         f"   :inputs: {inputs}", *example],
        [f".. qdq-histogram:: {model}", "   :limit: 2", "   :bins: 16",
         "   :layout: " + ("row", "column")[seed % 2], f"   :caption: {node}",
         f"   :name: histogram-{seed}", "   :class: fuzz", *histogram],
        [f".. qdq-error:: {model}", f"   :float: {float_model}", f"   :inputs: {inputs}",
         "   :images: 1", "   :bins: 16", f"   :caption: {node}", f"   :name: error-{seed}",
         "   :class: fuzz", *error],
    ]
    if seed % 8 == 0:
        blocks.append([f".. qdq-requant:: {model}", "   :show: agreement",
                       f"   :inputs: {inputs}", "   :images: 1"])
    return blocks


def _page(number: int, fuzz_input, folder: Path) -> str:
    lines = [f"Input {fuzz_input.seed}", "=" * 30, ""]
    for block in _blocks(*_files(number, fuzz_input, folder), fuzz_input):
        lines += [*block, "", "After.", ""]
    return "\n".join(lines)


def run_sphinx_batch(seeds: list[int], folder: Path, builder: str, timeout: float,
                     tally: Tally) -> None:
    import numpy as np
    from mutators import make_input
    from sphinx.testing.util import SphinxTestApp

    src = folder / "src"
    src.mkdir(parents=True)
    (src / "conf.py").write_text(
        "extensions = ['sphinxext_qdq']\ngraphviz_output_format = 'svg'\n"
        "qdq_max_graph_nodes = 80\nqdq_dot_timeout = 20\nqdq_max_elements = 1 << 20\n"
        "latex_documents = [('index', 'fuzz.tex', 'Fuzz', 'qdq', 'manual')]\n")
    np.save(src / "inputs.npy", np.random.default_rng(0).random((1, 3, 4, 4), np.float32))
    toctree = []
    for number, seed in enumerate(seeds):
        fuzz_input = make_input(seed, src / "inputs" / str(number))
        page = _page(number, fuzz_input, src / "inputs" / str(number))
        (src / f"p{number}.rst").write_text(page)
        toctree.append(f"   p{number}")
    (src / "index.rst").write_text("Fuzz\n====\n\n.. toctree::\n\n" + "\n".join(toctree) + "\n")
    status, warnings = io.StringIO(), io.StringIO()
    entry = f"sphinx-{builder}"
    tally.runs[entry] = tally.runs.get(entry, 0) + len(seeds)
    try:
        with alarm(timeout * len(seeds)):
            app = SphinxTestApp(builder, srcdir=src, builddir=folder / "build", status=status,
                                warning=warnings, freshenv=True)
            try:
                app.build()
            finally:
                app.cleanup()
    except Hang:
        tally.failures.append(Failure("hang", entry, seeds, "the build outlived its timeout"))
        return
    except Exception:  # noqa: BLE001
        tally.failures.append(Failure("traceback", entry, seeds, traceback.format_exc()[-2000:]))
        return
    text = warnings.getvalue() + status.getvalue()
    tally.warnings += warnings.getvalue().count("WARNING")
    for marker in CRASH_MARKERS:
        if marker in text:
            at = text.index(marker)
            tally.failures.append(Failure("traceback", entry, seeds, text[max(0, at - 600):at + 600]))
            break
    suffix = {"html": ".html", "text": ".txt"}.get(builder)
    if suffix:
        out = Path(app.outdir)
        missing = [seed for number, seed in enumerate(seeds)
                   if not (out / f"p{number}{suffix}").is_file()]
        if missing:
            tally.failures.append(Failure("page", entry, missing, "page not written"))


def _cli_runs(fuzz_input, folder: Path, out: Path) -> list[tuple[str, list[str]]]:
    """The subcommands one input goes through; options rotate with the seed (``turn``)."""
    import re

    import numpy as np
    from mutators import make_sibling

    seed, model = fuzz_input.seed, str(fuzz_input.path)
    turn = seed % 4
    node = fuzz_input.compute_node or "conv"
    float_model = str(make_sibling(fuzz_input, folder / "float.onnx")) if seed % 2 else model
    inputs = folder / "x.npy"
    np.save(inputs, np.random.default_rng(seed).standard_normal(
        fuzz_input.input_shape or (1, 3, 4, 4), np.float32))
    caps = [["--max-param-values", "64"], ["--max-bytes", "65536"], [], []][turn]
    graph = ([["--format", "svg" if seed % 8 == 0 else "dot", "--legend"],
              ["--depth", "1", "--scope", _scope(node), "--rankdir", "LR", "--name", "g"],
              ["--from", node, "--depth", "auto", "--budget", "0.5", "--pairs", "nodes"],
              ["--to", node, "--depth", "all", "--mode", "full", "--dot", "dot"]][turn])
    histogram = [["--format", "svg"], ["--inputs", str(inputs), "--roles", "activation,weight"],
                 ["--float", float_model, "--format", "png", "--max-elements", "64"],
                 ["--float", float_model, "--inputs", str(inputs), "--layout", "column",
                  "--format", "pdf"]][turn]
    vectors = [[], ["--name", "v"], ["--inputs", str(inputs), "--rounding", "half_up"],
               ["--batch", "2", "--seed", "3", "--max-elements", "4096"]][turn]
    error = [[], ["--format", "json", "-o", str(out / "error.json")],
             ["--format", "md", "--images", "1"], ["-o", str(out / "error.csv")]][turn]
    return [
        ("cli-graph", [model, "-o", str(out), "--format", "dot", "--max-nodes", "80",
                       "--timeout", "20", *graph, *caps]),
        ("cli-vectors", ["vectors", model, "--node", node, "-o", str(out),
                         "--max-elements", str(1 << 20), *vectors, *caps]),
        ("cli-error", ["error", float_model, model, "--inputs", str(inputs), *error, *caps]),
        ("cli-histogram", ["histogram", model, "-o", str(out), "--bins", "16",
                           "--nodes", re.escape(node), *histogram, *caps]),
    ]


def _run_cli(entry: str, argv: list[str], seed: int, timeout: float, tally: Tally) -> None:
    from sphinxext_qdq import cli

    tally.runs[entry] = tally.runs.get(entry, 0) + 1
    err = io.StringIO()
    try:
        with alarm(timeout), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):
            status = cli.main(argv)
    except Hang:
        tally.failures.append(Failure("hang", entry, [seed], " ".join(argv)))
        return
    except BaseException:  # noqa: BLE001
        tally.failures.append(Failure("traceback", entry, [seed], traceback.format_exc()[-2000:]))
        return
    tally.exits[str(status)] = tally.exits.get(str(status), 0) + 1
    message = err.getvalue()
    if status not in (0, 2):
        tally.failures.append(Failure("exit", entry, [seed], f"{status}: {message}"))
    elif any(marker in message for marker in CRASH_MARKERS):
        tally.failures.append(Failure("traceback", entry, [seed], message[-2000:]))
    elif status == 2 and message.count("\n") != 1 + message.count("warning:"):
        tally.failures.append(Failure("traceback", entry, [seed],
                                      f"not one error line: {message[-1000:]}"))


def run_cli_batch(seeds: list[int], folder: Path, timeout: float, tally: Tally) -> None:
    from mutators import make_input

    for seed in seeds:
        fuzz_input = make_input(seed, folder / f"cli-{seed}")
        out = folder / f"cli-out-{seed}"
        for entry, argv in _cli_runs(fuzz_input, folder / f"cli-{seed}", out):
            _run_cli(entry, argv, seed, timeout, tally)
        shutil.rmtree(folder / f"cli-{seed}", ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def _child(job: dict, connection) -> None:
    """One batch: limits set, work done, tally sent back."""
    resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tally = Tally(inputs=len(job["seeds"]), seeds=[min(job["seeds"]), max(job["seeds"])])
    folder = Path(tempfile.mkdtemp(prefix="qdq-fuzz-", dir=job["workdir"]))
    try:
        if job["kind"] == "cli":
            run_cli_batch(job["seeds"], folder, job["timeout"], tally)
        else:
            run_sphinx_batch(job["seeds"], folder, job["kind"], job["timeout"], tally)
    except BaseException:  # noqa: BLE001  (the harness itself: still reported)
        tally.failures.append(Failure("harness", f"harness-{job['kind']}", job["seeds"],
                                      traceback.format_exc()[-2000:]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    connection.send(json.dumps(asdict(tally)))
    connection.close()


@dataclass
class Running:
    """A batch child under way."""

    kind: str
    seeds: list[int]
    child: multiprocessing.Process
    receiver: Any
    deadline: float  # time.time() after which it counts as a hang


def start_batch(kind: str, seeds: list[int], workdir: Path, *, timeout: float = 30.0,
                memory: int = MEMORY_LIMIT) -> Running:
    """Fork a fresh child for one batch (``kind``: a builder or ``cli``)."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    job = {"kind": kind, "seeds": seeds, "workdir": str(workdir), "timeout": timeout,
           "memory": memory}
    child = context.Process(target=_child, args=(job, sender))
    child.start()
    sender.close()
    allowed = timeout * len(seeds) * (3 if kind == "cli" else 1) + 120
    return Running(kind, seeds, child, receiver, time.time() + allowed)


def finish_batch(running: Running) -> Tally:
    """The tally of a batch whose child reported (or outlived its deadline: killed); a
    child that dies or outlives every timeout counts as a hang (or a crash) of the whole
    batch. Peak RSS: the largest of any one child waited for (``RUSAGE_CHILDREN``)."""
    payload = running.receiver.recv() if running.receiver.poll(0) else None
    running.receiver.close()
    child = running.child
    child.join(10)
    if child.is_alive():
        child.kill()
        child.join()
    tally = Tally()
    if payload is None:
        tally.inputs = len(running.seeds)
        tally.seeds = [min(running.seeds), max(running.seeds)]
        kind_of = "hang" if child.exitcode in (None, -signal.SIGKILL) else "traceback"
        tally.failures.append(Failure(kind_of, f"batch-{running.kind}", running.seeds,
                                      f"the child ended without a report (exit {child.exitcode})"))
    else:
        data = json.loads(payload)
        data["failures"] = [Failure(**f) for f in data["failures"]]
        tally = Tally(**data)
    if running.kind == "cli":
        tally.inputs = 0  # the same inputs as a Sphinx batch: counted once
    tally.peak_rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return tally


def run_batch(kind: str, seeds: list[int], workdir: Path, *, timeout: float = 30.0,
              memory: int = MEMORY_LIMIT) -> Tally:
    """Run one batch in a fresh child and wait for it."""
    running = start_batch(kind, seeds, workdir, timeout=timeout, memory=memory)
    running.receiver.poll(max(0.0, running.deadline - time.time()))
    return finish_batch(running)


def batches(count: int, first_seed: int, sphinx_batch: int, cli_batch: int):
    """(kind, seeds) of every batch, in order: a Sphinx batch (the builders in turn),
    then the CLI batches of the same seeds."""
    for number, seed in enumerate(range(first_seed, first_seed + count, sphinx_batch)):
        seeds = list(range(seed, min(seed + sphinx_batch, first_seed + count)))
        yield BUILDERS[number % len(BUILDERS)], seeds
        for start in range(0, len(seeds), cli_batch):
            yield "cli", seeds[start:start + cli_batch]


def next_batch(pending, stop_at: float | None) -> tuple[str, list[int]] | None:
    """The next (kind, seeds) of :func:`batches` to start; None when none is left or
    *stop_at* has passed: then no Sphinx batch starts any more, nor the CLI batches of
    its seeds (those of a Sphinx batch already started still do)."""
    kind, seeds = next(pending, (None, []))
    if kind is not None and kind != "cli" and stop_at is not None and time.time() >= stop_at:
        pending.close()
        return None
    return None if kind is None else (kind, seeds)


def _wait_any(running: list[Running]) -> list[Running]:
    """The batches that reported or outlived their deadline (waits for one)."""
    from multiprocessing.connection import wait

    soonest = min(item.deadline for item in running)
    wait([item.receiver for item in running], timeout=max(0.0, soonest - time.time()))
    now = time.time()
    return [item for item in running if item.receiver.poll(0) or now >= item.deadline]


def run(count: int, *, first_seed: int = 0, sphinx_batch: int = 25, cli_batch: int = 50,
        timeout: float = 30.0, workdir: Path | None = None, memory: int = MEMORY_LIMIT,
        jobs: int = 2, progress=None, stop_at: float | None = None) -> Tally:
    """*count* inputs through Sphinx (the builders in turn) and, the same seeds, through
    the CLI, *jobs* batch children at a time; returns the tally. *stop_at*: a
    ``time.time()`` after which no new batch starts (the batches under way finish; a
    Sphinx batch's CLI batches still run, so every input counted went through both)."""
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="qdq-fuzz-")) if own else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    total = Tally(jobs=max(1, jobs))
    started = time.time()
    pending = batches(count, first_seed, sphinx_batch, cli_batch)
    running: list[Running] = []
    try:
        while True:
            while len(running) < total.jobs:
                batch = next_batch(pending, stop_at)
                if batch is None:
                    break
                kind, seeds = batch
                running.append(start_batch(kind, seeds, workdir, timeout=timeout,
                                           memory=memory))
            if not running:
                break
            for done in _wait_any(running):
                running.remove(done)
                total.add(finish_batch(done))
                total.seconds = time.time() - started
                if progress:
                    progress(total)
    finally:
        for item in running:
            item.child.kill()
            item.child.join()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    total.seconds = time.time() - started
    return total
