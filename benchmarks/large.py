"""Large models: calibrate the layout-cost estimate, and time a drawing with default settings.

    python benchmarks/large.py calibrate [--timeout 60]   # dot time vs. LayoutShape
    python benchmarks/large.py time [--runs 3]            # model file -> SVG, defaults

The models come from ``tests/model_zoo.py`` (generated, nothing downloaded). ``calibrate``
draws every model at every depth (0 = every node) and runs the real ``dot`` on each
drawing with a time limit, printing the estimate's inputs beside the time; the fit of
``sphinxext_qdq.render.cost`` comes from these rows. ``time`` measures what a user waits
for: load + analysis + choice of depth + DOT + ``dot -Tsvg``, as the ``qdq-graph`` command
line does it with its defaults. Results go to ``benchmarks/large-results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import model_zoo
import onnx

from sphinxext_qdq.analysis.loader import clear_cache, load_qdq_model
from sphinxext_qdq.render.cost import layout_shape
from sphinxext_qdq.render.dot import DotOptions, drawing_graph, render_dot
from sphinxext_qdq.render.scopes import scope_paths

RESULTS = HERE / "large-results.json"
TIMED = ("resnet-1k", "resnet-2k", "resnet-5k", "resnet-10k", "densenet", "transformer",
         "detector", "densenet-noscope")


def write_models(folder: Path, names) -> dict[str, Path]:
    paths = {}
    for name in names:
        path = folder / f"{name}.onnx"
        if not path.exists():
            onnx.save(model_zoo.ZOO[name](), str(path))
        paths[name] = path
    return paths


def run_dot(text: str, timeout: float) -> float | None:
    """CPU seconds ``dot -Tsvg`` takes (None: over *timeout* wall seconds). CPU time, not
    wall time: the machine is shared, and wall time measures the neighbours."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=text.encode(), check=True,
                       timeout=timeout, capture_output=True)
    except subprocess.TimeoutExpired:
        return None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def calibrate(folder: Path, timeout: float, names) -> list[dict]:
    rows = []
    for name, path in write_models(folder, names).items():
        model = load_qdq_model(path)
        levels = scope_paths(model).levels
        for depth in range(levels + 1):
            options = DotOptions(depth=depth)
            count, edges = drawing_graph(model, options)
            shape = layout_shape(count, edges, labelled=depth == 0)
            if shape.seconds > 20 * timeout:
                seconds = None  # certainly over: not worth the minutes
            else:
                seconds = run_dot(render_dot(model, options), timeout)
            row = {"model": name, "depth": depth, "estimate": round(shape.seconds, 3),
                   "dot_seconds": None if seconds is None else round(seconds, 3),
                   **{key: getattr(shape, key) for key in (
                       "nodes", "edges", "ranks", "virtual_nodes", "crossing_work",
                       "widest_gap")}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def time_defaults(folder: Path, runs: int, names) -> list[dict]:
    """Wall time of ``qdq-graph MODEL`` (defaults: compact, depth auto) to an SVG."""
    rows = []
    environment = dict(os.environ, PYTHONPYCACHEPREFIX=str(folder / "pycache"))
    environment.pop("PYTHONDONTWRITEBYTECODE", None)  # byte code cached, as when installed
    for name, path in write_models(folder, names).items():
        seconds, cpu = [], []
        load_start = os.getloadavg()[0]
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as out:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                result = subprocess.run([sys.executable, "-m", "sphinxext_qdq", str(path),
                                         "-o", out], capture_output=True, text=True,
                                        check=False, env=environment)
                seconds.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if result.returncode != 0:
                print(name, result.stderr.strip(), file=sys.stderr)
        clear_cache()
        model = load_qdq_model(path)
        row = {"model": name, "nodes": len(model.nodes), "runs": runs,
               "min_s": round(min(seconds), 2), "median_s": round(statistics.median(seconds), 2),
               "cpu_min_s": round(min(cpu), 2), "cpu_median_s": round(statistics.median(cpu), 2),
               "exit": result.returncode, "load_average_start": load_start,
               "load_average_end": os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("calibrate", "time"))
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(TIMED))
    parser.add_argument("--folder", type=Path, default=HERE / ".models")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.what == "calibrate":
        results["calibration"] = calibrate(args.folder, args.timeout, args.models)
    else:
        results["time_to_svg"] = time_defaults(args.folder, args.runs, args.models)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
