"""``make bench``: what the extension costs, side by side with what users would do otherwise.

Generates its models (:mod:`models`), builds benchmark Sphinx projects (:mod:`project`)
in a temporary folder, and measures, each figure with the minimum and median of
``--runs`` runs (5 by default) and the load average at the start and end of its section,
every ratio from medians of the same run:

0. ``graph_page`` cold ``sphinx-build`` of a project with one ``qdq-graph`` page vs its
                  twin with the same drawing pre-rendered; target ratio <= 1.25 for the
                  67-, 244-, 709- and 2,000-node models
   ``noop``       a rebuild with nothing changed of that project (resnet-250) vs the twin
                  without the extension: time and peak memory, target <= 1.05 each
   ``peers``      drawing a whole model as SVG: the ``qdq-graph`` command line vs
                  onnx-array-api's ``to_dot`` + dot and onnx 1.16's ``net_drawer`` + dot
                  (in a virtual environment of its own under ``_build/bench-peers``)
1. ``build``      cold ``sphinx-build`` of the project using the directives vs its static
                  twin (pre-rendered SVG, plain tables); target ratio <= 1.25
   ``ahead``      a page with many pictures (2,000 nodes at ``:depth: auto``): dot runs
                  started ahead of the writer (``qdq_dot_jobs``) vs one after another
2. ``analysis``   ``load_qdq_model`` (cold) vs ``onnx.load`` of the same file; target
                  <= 3 on the 5 MB model and <= 1.0 on the 50 MB model
3. ``layout``     dot layout of the compact vs the full drawing; compact >= 5x faster on
                  the ~700-node model, the ~2,000-node model compact < 20 s; ``capped``:
                  the 10,000-node model handled within the node cap in < 5 s
4. ``directives`` 20 directives on one model: parses and dot runs of a cold build and of
                  a no-op rebuild (1 parse, then 0 parses and 0 dot runs)
5. ``memory``     peak RSS while analysing the 50 MB model <= 2 x file size + 200 MB

Writes ``benchmarks/results.json``, the tables of ``benchmarks/RESULTS.md`` (between
its ``results`` markers) and the plot (:mod:`plot`). ``--only`` runs some sections and
keeps the others from the previous results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import plot
import report
import resnets

RESULTS = HERE / "results.json"
MODEL_DIR = HERE / ".models"
SECTIONS = ("graph_page", "noop", "peers", "build", "ahead", "analysis", "layout",
            "capped", "directives", "memory")
#: The 10,000-node model is left out of the four-page builds (over the node cap it shows a
#: note; ``capped`` times that): its builds alone took ten minutes of ``make bench``.
BUILD_MODELS = ("resnet-250", "resnet-700", "resnet-2k", "resnet-50mb")
#: The showcase ResNet8 (67 nodes) and three generated models, one graph page each.
GRAPH_PAGE_MODELS = ("resnet8", "resnet-250", "resnet-700", "resnet-2k")
PEER_MODELS = ("resnet-250", "resnet-700", "resnet-2k")
#: Peers are slow: at most this many runs each, and one for the 2,000-node model (where
#: net_drawer + dot takes half a minute on a quiet machine, and minutes on a busy one).
PEER_RUNS = 3
PEER_RUNS_LARGEST = 1
SHOWCASE = ROOT / "models" / "resnet8_int8.onnx"
PEER_VENV = ROOT / "_build" / "bench-peers"
PEER_REQUIREMENTS = ("onnx==1.16.2", "numpy<2", "pydot")
LAYOUT_MODELS = ("resnet-250", "resnet-700", "resnet-2k")
#: (name, mode, pairs) of the drawings timed by ``layout``: the default compact drawing
#: (Q→DQ pairs on edges), compact with a node per pair, full.
LAYOUTS = (("compact", "compact", "edges"), ("pair_nodes", "compact", "nodes"),
           ("full", "full", "edges"))
PYTHON = sys.executable
SPHINX_BUILD = str(Path(PYTHON).with_name("sphinx-build"))

TARGETS = {
    "graph_page_ratio": 1.25,
    "noop_ratio": 1.05,
    "build_ratio": 1.25,
    "analysis_ratio": {"resnet-250": 3.0, "resnet-50mb": 1.0},  # the ~5 MB and ~50 MB models
    "analysis_models": ["resnet-250", "resnet-50mb"],
    "layout_speedup": 5.0,
    "layout_speedup_model": "resnet-700",
    "compact_2k_seconds": 20.0,
    "capped_seconds": 5.0,
    "memory_model": "resnet-50mb",
}


def median(values: list[float]) -> float:
    return statistics.median(values)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child_environment(work: Path) -> dict[str, str]:
    """Environment of every timed process: byte code cached (in *work*, not in the
    repository) as in an installed package, even where ``PYTHONDONTWRITEBYTECODE`` is set."""
    environment = dict(os.environ, PYTHONPYCACHEPREFIX=str(work / "pycache"))
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


ENVIRONMENT: dict[str, str] = dict(os.environ)


def child(task: str, **arguments: object) -> dict:
    """Run one :mod:`child` task in a fresh interpreter; its JSON answer."""
    result = subprocess.run([PYTHON, str(HERE / "child.py"), task, json.dumps(arguments)],
                            capture_output=True, text=True, check=False, cwd=ROOT,
                            env=ENVIRONMENT)
    if result.returncode != 0:
        raise RuntimeError(f"child {task} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- machine ------------------------------------------------------------------------
def machine() -> dict:
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    import onnx
    import sphinx

    dot = subprocess.run(["dot", "-V"], capture_output=True, text=True, check=False).stderr.strip()
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory_gb": round(int(first("/proc/meminfo", "MemTotal").split()[0]) / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sphinx": sphinx.__version__,
        "onnx": onnx.__version__,
        "graphviz": dot.replace("dot - graphviz version ", ""),
        "load_average_start": os.getloadavg()[0],
    }


# -- 1. builds --------------------------------------------------------------------------
def timed_build(srcdir: Path, outdir: Path, *extra: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one cold ``sphinx-build`` (with *extra* arguments) into an
    empty *outdir*."""
    shutil.rmtree(outdir, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([SPHINX_BUILD, "-b", "html", "-q", "-E", "-W", *extra, "-d",
                    str(outdir / ".doctrees"), str(srcdir), str(outdir)], check=True,
                   capture_output=True, env=ENVIRONMENT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def bench_build(paths: dict[str, Path], work: Path, runs: int) -> list[dict]:
    import project

    rows = []
    for name in BUILD_MODELS:
        spec = resnets.spec_named(name)
        ext, static = project.write_projects(paths[name], project.block_region(spec.blocks[0]),
                                             work / f"build-{name}")
        times: dict[str, list[tuple[float, float]]] = {"ext": [], "static": []}
        for src in (ext, static):  # untimed: byte code, page cache, fontconfig cache
            timed_build(src, work / f"out-{name}-warm-up")
        for _ in range(runs):  # interleaved, so that drifting load hits both alike
            for kind, src in (("ext", ext), ("static", static)):
                times[kind].append(timed_build(src, work / f"out-{name}-{kind}"))
        row = {"model": name}
        for kind in ("ext", "static"):
            row[f"{kind}_wall"] = [w for w, _ in times[kind]]
            row[f"{kind}_cpu"] = [c for _, c in times[kind]]
        row["ratio"] = median(row["ext_wall"]) / median(row["static_wall"])
        row["cpu_ratio"] = median(row["ext_cpu"]) / median(row["static_cpu"])
        log(f"build {name}: ext {median(row['ext_wall']):.2f} s, static "
            f"{median(row['static_wall']):.2f} s, ratio {row['ratio']:.2f}")
        rows.append(row)
    return rows


# -- 0. one graph page, a no-op rebuild, the peers ---------------------------------------
def bench_graph_page(paths: dict[str, Path], work: Path, runs: int) -> list[dict]:
    import project

    rows = []
    for name in GRAPH_PAGE_MODELS:
        ext, static = project.write_graph_page_projects(paths[name], work / f"page-{name}")
        kinds = (("ext", ext), ("static", static), ("floor", ext.with_name("floor")))
        times: dict[str, list[tuple[float, float]]] = {kind: [] for kind, _ in kinds}
        for _, src in kinds:  # untimed: byte code, page cache, fontconfig cache
            timed_build(src, work / f"out-page-{name}-warm-up")
        for _ in range(runs):
            for kind, src in kinds:
                times[kind].append(timed_build(src, work / f"out-page-{name}-{kind}"))
        row = {"model": name}
        for kind, _ in kinds:
            row[f"{kind}_wall"] = [w for w, _ in times[kind]]
            row[f"{kind}_cpu"] = [c for _, c in times[kind]]
        row["ratio"] = median(row["ext_wall"]) / median(row["static_wall"])
        row["cpu_ratio"] = median(row["ext_cpu"]) / median(row["static_cpu"])
        row["floor_ratio"] = median(row["floor_wall"]) / median(row["static_wall"])
        log(f"graph page {name}: ext {median(row['ext_wall']):.2f} s (min "
            f"{min(row['ext_wall']):.2f}), static {median(row['static_wall']):.2f} s (min "
            f"{min(row['static_wall']):.2f}), floor {median(row['floor_wall']):.2f} s, "
            f"ratio {row['ratio']:.2f}, floor ratio {row['floor_ratio']:.2f}")
        rows.append(row)
    return rows


def bench_ahead(paths: dict[str, Path], work: Path, runs: int) -> dict:
    """The 2,000-node model at the default ``:depth: auto`` (a collapsed drawing and a
    drawing per box on one page): cold builds with the dot runs of the page started ahead
    (``qdq_dot_jobs`` default) against one after another in the writer
    (``qdq_dot_jobs = 1``), interleaved."""
    import project

    name = "resnet-2k"
    src = project.write_auto_page_project(paths[name], work / "ahead")
    kinds = (("ahead", ()), ("serial", ("-D", "qdq_dot_jobs=1")))
    times: dict[str, list[tuple[float, float]]] = {kind: [] for kind, _ in kinds}
    for _, extra in kinds:  # untimed: byte code, page cache
        timed_build(src, work / "out-ahead-warm-up", *extra)
    for _ in range(runs):
        for kind, extra in kinds:
            times[kind].append(timed_build(src, work / f"out-ahead-{kind}", *extra))
    pictures = len(list((work / "out-ahead-serial" / "_images").glob("qdq-*.svg")))
    row: dict = {"model": name, "pictures": pictures}
    for kind, _ in kinds:
        row[f"{kind}_wall"] = [w for w, _ in times[kind]]
        row[f"{kind}_cpu"] = [c for _, c in times[kind]]
    row["ratio"] = median(row["ahead_wall"]) / median(row["serial_wall"])
    log(f"ahead {name} ({pictures} pictures): {median(row['ahead_wall']):.2f} s against "
        f"{median(row['serial_wall']):.2f} s, ratio {row['ratio']:.2f}")
    return row


def bench_noop(paths: dict[str, Path], work: Path, runs: int) -> dict:
    """A rebuild with nothing changed: each project built once, then rebuilt *runs* times
    (interleaved), each rebuild a fresh process (wall time from here, peak memory inside)."""
    import project

    name = "resnet-250"
    ext, static = project.write_graph_page_projects(paths[name], work / "noop")
    found: dict[str, list[dict]] = {"ext": [], "static": []}
    outs = {"ext": work / "noop-out-ext", "static": work / "noop-out-static"}
    for kind, src in (("ext", ext), ("static", static)):
        shutil.rmtree(outs[kind], ignore_errors=True)
        child("sphinx_build", srcdir=str(src), outdir=str(outs[kind]))  # the first build
    for _ in range(runs):
        for kind, src in (("ext", ext), ("static", static)):
            start = time.perf_counter()
            answer = child("sphinx_build", srcdir=str(src), outdir=str(outs[kind]))
            answer["wall"] = time.perf_counter() - start
            found[kind].append(answer)
    row = {"model": name}
    for kind in ("ext", "static"):
        row[f"{kind}_wall"] = [a["wall"] for a in found[kind]]
        row[f"{kind}_maxrss"] = [a["maxrss"] for a in found[kind]]
        row[f"{kind}_cpu"] = [a["cpu"] for a in found[kind]]
    row["ext_imports_onnx"] = any(a["onnx_imported"] or a["numpy_imported"] for a in found["ext"])
    row["ratio"] = median(row["ext_wall"]) / median(row["static_wall"])
    row["memory_ratio"] = median(row["ext_maxrss"]) / median(row["static_maxrss"])
    row["cpu_ratio"] = median(row["ext_cpu"]) / median(row["static_cpu"])
    log(f"no-op rebuild: ext {median(row['ext_wall']):.2f} s, {median(row['ext_maxrss']) / 2**20:.0f}"
        f" MiB; plain {median(row['static_wall']):.2f} s, "
        f"{median(row['static_maxrss']) / 2**20:.0f} MiB; ratios {row['ratio']:.2f} / "
        f"{row['memory_ratio']:.2f}")
    return row


def peer_python() -> str:
    """The Python of the peers' own virtual environment (onnx 1.16, which still has
    ``onnx.tools.net_drawer``), created on first use from PyPI."""
    python = PEER_VENV / "bin" / "python"
    check = [str(python), "-c", "import onnx, pydot; assert onnx.__version__.startswith('1.16')"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return str(python)
    log(f"creating {PEER_VENV} ({', '.join(PEER_REQUIREMENTS)})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS],
                   check=True)
    return str(python)


def bench_peers(paths: dict[str, Path], work: Path, runs: int) -> list[dict]:
    """Whole-model SVG, each a fresh process from the ONNX file to the SVG file, interleaved:
    ours (the ``qdq-graph`` command line, compact), onnx-array-api ``to_dot`` + dot,
    onnx 1.16 ``net_drawer`` + dot."""
    peer = peer_python()
    out = work / "peers"
    out.mkdir(parents=True, exist_ok=True)
    commands = {
        "ours": lambda p: [PYTHON, "-m", "sphinxext_qdq", str(p), "-o", str(out),
                           "--name", "ours"],
        "to_dot": lambda p: [PYTHON, str(HERE / "child.py"), "to_dot",
                             json.dumps({"path": str(p), "svg": str(out / "to_dot.svg")})],
        "net_drawer": lambda p: [peer, str(HERE / "child.py"), "net_drawer",
                                 json.dumps({"path": str(p), "svg": str(out / "net.svg")})],
    }
    versions = subprocess.run([peer, "-c", ("import onnx, pydot; print(onnx.__version__, "
                               "pydot.__version__)")], capture_output=True, text=True,
                              check=True).stdout.split()
    import onnx_array_api

    rows = []
    for name in PEER_MODELS:
        row: dict = {"model": name, "peer_onnx": versions[0], "pydot": versions[1],
                     "onnx_array_api": onnx_array_api.__version__}
        for tool in commands:
            row[tool] = []
        for _ in range(min(runs, PEER_RUNS if name != PEER_MODELS[-1] else PEER_RUNS_LARGEST)):
            for tool, command in commands.items():
                start = time.perf_counter()
                done = subprocess.run(command(paths[name]), check=False, capture_output=True,
                                      text=True, env=ENVIRONMENT, cwd=ROOT)
                row[tool].append(time.perf_counter() - start)
                if done.returncode != 0:
                    raise RuntimeError(f"{tool} on {name} failed:\n{done.stderr[-2000:]}")
        row["to_dot_speedup"] = median(row["to_dot"]) / median(row["ours"])
        row["net_drawer_speedup"] = median(row["net_drawer"]) / median(row["ours"])
        log(f"peers {name}: ours {median(row['ours']):.2f} s, to_dot "
            f"{median(row['to_dot']):.2f} s, net_drawer {median(row['net_drawer']):.2f} s")
        rows.append(row)
    return rows


# -- 2. analysis ------------------------------------------------------------------------
def bench_analysis(paths: dict[str, Path], runs: int) -> list[dict]:
    rows = []
    for name, path in paths.items():
        answer = child("analysis", path=str(path), runs=runs)
        row = {"model": name, **answer,
               "ratio": median(answer["analysis"]) / median(answer["onnx_load"])}
        log(f"analysis {name}: {median(answer['analysis']) * 1000:.1f} ms vs onnx.load "
            f"{median(answer['onnx_load']) * 1000:.1f} ms, ratio {row['ratio']:.2f}")
        rows.append(row)
    return rows


# -- 3. layout ----------------------------------------------------------------------------
def bench_layout(paths: dict[str, Path], runs: int) -> list[dict]:
    rows = []
    for name in LAYOUT_MODELS:
        row: dict = {"model": name}
        row.update(child("layout", path=str(paths[name]), drawings=LAYOUTS, runs=runs,
                         max_nodes=0))
        full = row["full"]
        for drawing in ("compact", "pair_nodes"):
            row[f"{drawing}_speedup"] = median(full["dot_wall"]) / median(row[drawing]["dot_wall"])
            row[f"{drawing}_cpu_speedup"] = (median(full["dot_cpu"])
                                             / median(row[drawing]["dot_cpu"]))
        log(f"layout {name}: " + ", ".join(
            f"{d} {median(row[d]['dot_wall']):.2f} s ({row[d]['graph_nodes']} nodes)"
            for d, _, _ in LAYOUTS)
            + f"; speedup {row['compact_speedup']:.1f} / {row['pair_nodes_speedup']:.1f}")
        rows.append(row)
    return rows


def bench_capped(paths: dict[str, Path], runs: int) -> dict:
    import project

    spec = resnets.spec_named("resnet-10k")
    region = project.block_region(spec.blocks[0])
    answers = [child("capped", path=str(paths["resnet-10k"]), max_nodes=project.MAX_GRAPH_NODES,
                     source=region.source, target=region.target) for _ in range(runs)]
    row = {"model": "resnet-10k", "max_nodes": project.MAX_GRAPH_NODES,
           "analysis": [a["analysis"] for a in answers],
           "whole": [a["whole"]["seconds"] for a in answers],
           "region": [a["region"]["seconds"] for a in answers],
           "whole_fallback": answers[0]["whole"]["fallback"],
           "region_fallback": answers[0]["region"]["fallback"]}
    log(f"capped 10k: analysis {median(row['analysis']):.2f} s, whole {median(row['whole']):.2f} s "
        f"(fallback {row['whole_fallback']}), region {median(row['region']):.2f} s")
    return row


# -- 4. twenty directives -------------------------------------------------------------------
def bench_directives(paths: dict[str, Path], work: Path, runs: int) -> dict:
    import project

    name = "resnet-250"
    spec = resnets.spec_named(name)
    src = project.write_directive_project(paths[name], project.block_region(spec.blocks[0]),
                                          work / "directives")
    cold, noop = [], []
    for _ in range(runs):
        out = work / "directives-out"
        shutil.rmtree(out, ignore_errors=True)
        cold.append(child("directives", srcdir=str(src), outdir=str(out)))
        noop.append(child("directives", srcdir=str(src), outdir=str(out)))
    row = {"model": name, "directives": 20, "pages": 4,
           "cold_seconds": [c["seconds"] for c in cold],
           "noop_seconds": [n["seconds"] for n in noop],
           "cold_parses": max(c["parses"] for c in cold),
           "cold_dot_runs": max(c["dot_runs"] for c in cold),
           "noop_parses": max(n["parses"] for n in noop),
           "noop_dot_runs": max(n["dot_runs"] for n in noop)}
    log(f"directives: cold {median(row['cold_seconds']):.2f} s ({row['cold_parses']} parse, "
        f"{row['cold_dot_runs']} dot), no-op {median(row['noop_seconds']):.2f} s "
        f"({row['noop_parses']} parses, {row['noop_dot_runs']} dot)")
    return row


# -- 5. memory ------------------------------------------------------------------------------
def bench_memory(paths: dict[str, Path], runs: int) -> dict:
    name = TARGETS["memory_model"]
    path = paths[name]
    analysis = [child("memory", path=str(path), what="analysis") for _ in range(runs)]
    load = [child("memory", path=str(path), what="onnx_load") for _ in range(runs)]
    row = {"model": name, "file_bytes": path.stat().st_size,
           "analysis_maxrss": [a["maxrss"] for a in analysis],
           "analysis_maxrss_after_imports": [a["maxrss_after_imports"] for a in analysis],
           "onnx_load_maxrss": [a["maxrss"] for a in load]}
    row["limit"] = 2 * row["file_bytes"] + 200 * 2**20
    log(f"memory {name}: peak {median(row['analysis_maxrss']) / 2**20:.0f} MiB (imports "
        f"{median(row['analysis_maxrss_after_imports']) / 2**20:.0f} MiB), onnx.load "
        f"{median(row['onnx_load_maxrss']) / 2**20:.0f} MiB, limit {row['limit'] / 2**20:.0f} MiB")
    return row


# -- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if shutil.which("dot") is None:
        parser.error("graphviz 'dot' is needed (make bench installs it)")

    paths = {"resnet8": SHOWCASE, **resnets.ensure_models(MODEL_DIR)}
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    results.update({"machine": machine(), "runs": args.runs, "targets": TARGETS,
                    "models": resnets.describe_models(paths)})
    work = args.work or Path(tempfile.mkdtemp(prefix="qdq-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    environment = child_environment(work)
    ENVIRONMENT.clear()
    ENVIRONMENT.update(environment)
    child("analysis", path=str(paths["resnet-250"]), runs=1)  # compiles the byte code
    steps: dict[str, Callable[[], object]] = {
        "graph_page": lambda: bench_graph_page(paths, work, args.runs),
        "noop": lambda: bench_noop(paths, work, args.runs),
        "peers": lambda: bench_peers(paths, work, args.runs),
        "build": lambda: bench_build(paths, work, args.runs),
        "ahead": lambda: bench_ahead(paths, work, args.runs),
        "analysis": lambda: bench_analysis(paths, args.runs),
        "layout": lambda: bench_layout(paths, args.runs),
        "capped": lambda: bench_capped(paths, args.runs),
        "directives": lambda: bench_directives(paths, work, args.runs),
        "memory": lambda: bench_memory(paths, args.runs),
    }
    try:
        load = results.setdefault("load_average", {})
        for section in SECTIONS:
            if section in sections:
                started, began = os.getloadavg()[0], time.perf_counter()
                results[section] = steps[section]()
                load[section] = {"start": started, "end": os.getloadavg()[0],
                                 "seconds": time.perf_counter() - began}
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_end"] = os.getloadavg()[0]
    results["date"] = time.strftime("%Y-%m-%d")
    args.results.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    if args.results == RESULTS:
        report.update_results_md(results, HERE / "RESULTS.md")
        plot.write_plot(results, plot.DEFAULT_PNG)
    print(report.summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
