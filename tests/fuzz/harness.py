"""Run fuzz inputs against every entry point, in child processes with a memory limit and
a per-input timeout, and count what went wrong.

Entry points per input (:func:`mutators.make_input`):

* **Sphinx** (in-process, a batch of inputs per build): a page per input using
  ``qdq-graph`` (compact and full), ``qdq-params`` (both layouts, full values),
  ``qdq-summary``, ``qdq-requant`` (table and ``:show: example`` on a ``.npy`` input;
  ``:show: agreement`` for one input in eight); builders in turn: ``html`` (graphviz
  drawings), ``text`` (the outline) and ``latex`` (the LaTeX writer and its
  post-transform).
* **CLI** (in-process ``cli.main``): ``qdq-graph MODEL --format dot`` (``svg`` for one
  input in eight) and ``qdq-graph vectors MODEL --node NAME``.

A failure is: a traceback (an exception out of a build or of ``cli.main``, an
``Exception occurred`` / ``Traceback`` / ``unexpected`` message in any output), a page
not written, a hang (the per-input timeout, by ``SIGALRM`` and, as a last resort, the
parent killing the child) or a CLI exit status other than 0 and 2. Each child runs
under ``RLIMIT_AS``; the parent reads the children's peak RSS from ``getrusage``.
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

    def add(self, other: Tally) -> None:
        self.inputs += other.inputs
        for key, value in other.runs.items():
            self.runs[key] = self.runs.get(key, 0) + value
        for key, value in other.exits.items():
            self.exits[key] = self.exits.get(key, 0) + value
        self.failures += other.failures
        self.warnings += other.warnings
        self.peak_rss_kib = max(self.peak_rss_kib, other.peak_rss_kib)

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
def _page(number: int, fuzz_input, agreement: bool) -> str:
    model = f"/inputs/{number}/model.onnx"
    node = fuzz_input.compute_node.replace("\n", " ").strip() or "conv"
    blocks = [
        [f".. qdq-graph:: {model}", "   :mode: compact", "   :legend:"],
        [f".. qdq-graph:: {model}", "   :mode: full", "   :pairs: nodes"],
        [f".. qdq-params:: {model}", "   :values: full", "   :no-index:"],
        [f".. qdq-params:: {model}", "   :layout: initializer"],
        [f".. qdq-summary:: {model}"],
        [f".. qdq-requant:: {model}", "   :no-index:", "   :values: full"],
        [f".. qdq-requant:: {model}", "   :show: example", f"   :node: {node}",
         "   :inputs: /inputs.npy"],
    ]
    if agreement:
        blocks.append([f".. qdq-requant:: {model}", "   :show: agreement",
                       "   :inputs: /inputs.npy", "   :images: 1"])
    lines = [f"Input {fuzz_input.seed}", "=" * 30, ""]
    for block in blocks:
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
        (src / f"p{number}.rst").write_text(_page(number, fuzz_input, seed % 8 == 0))
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


def run_cli_batch(seeds: list[int], folder: Path, timeout: float, tally: Tally) -> None:
    from mutators import make_input

    from sphinxext_qdq import cli

    for seed in seeds:
        fuzz_input = make_input(seed, folder / f"cli-{seed}")
        out = folder / f"cli-out-{seed}"
        fmt = "svg" if seed % 8 == 0 else "dot"
        runs = [("cli-graph", [str(fuzz_input.path), "-o", str(out), "--format", fmt,
                               "--max-nodes", "80", "--timeout", "20"]),
                ("cli-vectors", ["vectors", str(fuzz_input.path), "--node",
                                 fuzz_input.compute_node or "conv", "-o", str(out),
                                 "--max-elements", str(1 << 20)])]
        for entry, argv in runs:
            tally.runs[entry] = tally.runs.get(entry, 0) + 1
            err = io.StringIO()
            try:
                with alarm(timeout), contextlib.redirect_stderr(err), \
                        contextlib.redirect_stdout(io.StringIO()):
                    status = cli.main(argv)
            except Hang:
                tally.failures.append(Failure("hang", entry, [seed], " ".join(argv)))
                continue
            except BaseException:  # noqa: BLE001
                tally.failures.append(Failure("traceback", entry, [seed],
                                              traceback.format_exc()[-2000:]))
                continue
            tally.exits[str(status)] = tally.exits.get(str(status), 0) + 1
            message = err.getvalue()
            if status not in (0, 2):
                tally.failures.append(Failure("exit", entry, [seed], f"{status}: {message}"))
            elif any(marker in message for marker in CRASH_MARKERS):
                tally.failures.append(Failure("traceback", entry, [seed], message[-2000:]))
            elif status == 2 and message.count("\n") != 1 + message.count("warning:"):
                tally.failures.append(Failure("traceback", entry, [seed],
                                              f"not one error line: {message[-1000:]}"))
        shutil.rmtree(folder / f"cli-{seed}", ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def _child(job: dict, connection) -> None:
    """One batch: limits set, work done, tally sent back."""
    resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tally = Tally(inputs=len(job["seeds"]))
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


def run_batch(kind: str, seeds: list[int], workdir: Path, *, timeout: float = 30.0,
              memory: int = MEMORY_LIMIT) -> Tally:
    """Run one batch in a fresh child; a child that dies or outlives every timeout
    counts as a hang (or a crash) of the whole batch."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    job = {"kind": kind, "seeds": seeds, "workdir": str(workdir), "timeout": timeout,
           "memory": memory}
    child = context.Process(target=_child, args=(job, sender))
    child.start()
    sender.close()
    deadline = timeout * len(seeds) * (3 if kind == "cli" else 1) + 120
    payload = receiver.recv() if receiver.poll(deadline) else None
    child.join(10)
    if child.is_alive():
        child.kill()
        child.join()
    tally = Tally()
    if payload is None:
        tally.inputs = len(seeds)
        kind_of = "hang" if child.exitcode in (None, -signal.SIGKILL) else "traceback"
        tally.failures.append(Failure(kind_of, f"batch-{kind}", seeds,
                                      f"the child ended without a report (exit {child.exitcode})"))
    else:
        data = json.loads(payload)
        data["failures"] = [Failure(**f) for f in data["failures"]]
        tally = Tally(**data)
    tally.peak_rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return tally


def run(count: int, *, first_seed: int = 0, sphinx_batch: int = 25, cli_batch: int = 50,
        timeout: float = 30.0, workdir: Path | None = None, memory: int = MEMORY_LIMIT,
        progress=None, stop_at: float | None = None) -> Tally:
    """*count* inputs through Sphinx (the builders in turn) and, the same seeds, through
    the CLI; returns the tally. *stop_at*: a ``time.time()`` after which no new batch
    starts (the inputs run so far are reported)."""
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="qdq-fuzz-")) if own else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    total = Tally()
    started = time.time()
    try:
        seed = first_seed
        batch_number = 0
        while seed < first_seed + count:
            if stop_at is not None and time.time() >= stop_at:
                break
            size = min(sphinx_batch, first_seed + count - seed)
            seeds = list(range(seed, seed + size))
            builder = BUILDERS[batch_number % len(BUILDERS)]
            tally = run_batch(builder, seeds, workdir, timeout=timeout, memory=memory)
            for start in range(0, size, cli_batch):
                cli_tally = run_batch("cli", seeds[start:start + cli_batch], workdir,
                                      timeout=timeout, memory=memory)
                cli_tally.inputs = 0  # the same inputs: counted once
                tally.add(cli_tally)
            total.add(tally)
            total.seconds = time.time() - started
            if progress:
                progress(total)
            seed += size
            batch_number += 1
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    total.seconds = time.time() - started
    return total
