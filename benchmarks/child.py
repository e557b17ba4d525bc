"""Measurements that run in a fresh Python process (``run.py`` starts one per task).

``python benchmarks/child.py TASK JSON-ARGUMENTS`` prints one JSON object. A fresh
process per task keeps caches, imports and peak memory of one measurement out of
the next.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def analysis(path: str, runs: int) -> dict:
    """``onnx.load`` and a cold ``load_qdq_model`` of the same file, interleaved."""
    import onnx

    from sphinxext_qdq.analysis import loader

    onnx.load(path)  # warm the page cache and both code paths
    loader.load_qdq_model(path)
    load, analyse = [], []
    for _ in range(runs):
        start = time.perf_counter()
        onnx.load(path)
        load.append(time.perf_counter() - start)
        loader.clear_cache()
        start = time.perf_counter()
        loader.load_qdq_model(path)
        analyse.append(time.perf_counter() - start)
    return {"onnx_load": load, "analysis": analyse}


def peak_rss() -> int:
    """Bytes: the high-water mark of this process's resident memory (``VmHWM``; unlike
    ``ru_maxrss``, it starts afresh at ``exec``, so the parent's size does not count)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory(path: str, what: str) -> dict:
    """Peak RSS of this process after imports, then after analysing (or loading) *path*."""
    import onnx

    from sphinxext_qdq.analysis import loader

    before = peak_rss()
    start = time.perf_counter()
    if what == "analysis":
        model = loader.load_qdq_model(path)
        kept = len(model.nodes)
    else:
        kept = len(onnx.load(path).graph.node)
    seconds = time.perf_counter() - start
    after = peak_rss()
    return {"maxrss_after_imports": before, "maxrss": after, "seconds": seconds, "nodes": kept}


def layout(path: str, drawings: list[list[str]], runs: int, max_nodes: int) -> dict:
    """DOT generation once per drawing (``[name, mode, pairs]``), then ``dot -Tsvg``
    *runs* times each, the drawings interleaved (A B C A B C …) so that drifting machine
    load hits them alike (wall and CPU seconds)."""
    from sphinxext_qdq.analysis.loader import load_qdq_model
    from sphinxext_qdq.render.dot import DotOptions, graph_node_count, render_dot

    model = load_qdq_model(path)
    found: dict[str, dict] = {}
    codes: dict[str, bytes] = {}
    for name, mode, pairs in drawings:
        options = DotOptions(mode=mode, max_nodes=max_nodes, pairs=pairs)
        start = time.perf_counter()
        code = render_dot(model, options)
        found[name] = {"generate_dot": time.perf_counter() - start, "dot_wall": [],
                       "dot_cpu": [], "graph_nodes": graph_node_count(model, options),
                       "dot_bytes": len(code), "fallback": "Select a region with" in code}
        codes[name] = code.encode()
    for _ in range(runs):
        for name, code in codes.items():
            cpu_before, start = _cpu_children(), time.perf_counter()
            subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=code, check=True)
            found[name]["dot_wall"].append(time.perf_counter() - start)
            found[name]["dot_cpu"].append(_cpu_children() - cpu_before)
    return found


def capped(path: str, max_nodes: int, source: str, target: str) -> dict:
    """What a build does for one ``qdq-graph`` of a model (cold): analyse, ask the link
    keys, write DOT, run dot; for the whole model and for a ``:from:``/``:to:`` region."""
    from sphinxext_qdq.analysis.loader import load_qdq_model
    from sphinxext_qdq.analysis.queries import nodes_between
    from sphinxext_qdq.render.dot import DotOptions, link_keys, render_dot

    timings = {}
    start = time.perf_counter()
    model = load_qdq_model(path)
    timings["analysis"] = time.perf_counter() - start
    results = {}
    for name in ("whole", "region"):
        start = time.perf_counter()
        selection = None if name == "whole" else nodes_between(model, [source], [target])
        options = DotOptions(mode="compact", max_nodes=max_nodes, selection=selection)
        link_keys(model, options)
        code = render_dot(model, options)
        subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=code.encode(), check=True)
        results[name] = {"seconds": time.perf_counter() - start,
                         "fallback": "Select a region with" in code}
    return {"analysis": timings["analysis"], **results}


def directives(srcdir: str, outdir: str) -> dict:
    """One ``sphinx-build`` in this process, counting model parses and dot processes."""
    import sphinx.ext.graphviz
    from sphinx.cmd.build import build_main

    from sphinxext_qdq.analysis import loader

    dot_runs = 0
    real_run = sphinx.ext.graphviz.subprocess.run

    def counting_run(args, *rest, **kwargs):
        nonlocal dot_runs
        if args and str(args[0]).endswith("dot"):
            dot_runs += 1
        return real_run(args, *rest, **kwargs)

    sphinx.ext.graphviz.subprocess.run = counting_run
    start = time.perf_counter()
    status = build_main(["-b", "html", "-q", srcdir, outdir])
    seconds = time.perf_counter() - start
    return {"status": status, "seconds": seconds, "parses": loader.parse_count(),
            "dot_runs": dot_runs}


def sphinx_build(srcdir: str, outdir: str) -> dict:
    """One ``sphinx-build -b html`` in this process (no ``-E``: a rebuild when *outdir*
    holds a previous build); its status, seconds and peak resident memory."""
    from sphinx.cmd.build import build_main

    start = time.perf_counter()
    status = build_main(["-b", "html", "-q", srcdir, outdir])
    usage = resource.getrusage(resource.RUSAGE_SELF)  # the whole process, imports included
    return {"status": status, "seconds": time.perf_counter() - start, "maxrss": peak_rss(),
            "cpu": usage.ru_utime + usage.ru_stime,
            "onnx_imported": "onnx" in sys.modules, "numpy_imported": "numpy" in sys.modules}


def to_dot(path: str, svg: str) -> dict:
    """The onnx-array-api way: ``onnx.load``, ``to_dot``, then ``dot -Tsvg``."""
    import onnx
    from onnx_array_api.plotting.dot_plot import to_dot as array_api_to_dot

    code = array_api_to_dot(onnx.load(path))
    subprocess.run(["dot", "-Tsvg", "-o", svg], input=code.encode(), check=True)
    return {"dot_bytes": len(code)}


def net_drawer(path: str, svg: str) -> dict:
    """onnx's own ``onnx.tools.net_drawer`` (gone after onnx 1.16; run in a virtual
    environment of its own), as its command line does, then ``dot -Tsvg``."""
    import onnx
    from onnx.tools.net_drawer import OP_STYLE, GetOpNodeProducer, GetPydotGraph

    model = onnx.load(path)
    graph = GetPydotGraph(model.graph, name=model.graph.name, rankdir="TB",
                          node_producer=GetOpNodeProducer(embed_docstring=False, **OP_STYLE))
    code = graph.to_string()
    subprocess.run(["dot", "-Tsvg", "-o", svg], input=code.encode(), check=True)
    return {"dot_bytes": len(code), "onnx": onnx.__version__}


TASKS = {"analysis": analysis, "memory": memory, "layout": layout, "capped": capped,
         "directives": directives, "sphinx_build": sphinx_build, "to_dot": to_dot,
         "net_drawer": net_drawer}


def main() -> None:
    task, arguments = sys.argv[1], json.loads(sys.argv[2])
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(json.dumps(TASKS[task](**arguments)))


if __name__ == "__main__":
    main()
