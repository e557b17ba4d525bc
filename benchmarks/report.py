"""Markdown tables of the benchmark results, and the target check.

:func:`tables` renders ``results.json`` as the tables that ``RESULTS.md`` (and the
documentation page, which includes them) show between the ``results`` markers.
"""

from __future__ import annotations

import re
from pathlib import Path
from statistics import median

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _s(values: list[float]) -> str:
    return f"{median(values):.2f} s"


def _ms(values: list[float]) -> str:
    return f"{median(values) * 1000:.1f} ms"


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f} MB"


def _mib(count: float) -> str:
    return f"{count / 2**20:.0f} MiB"


def _ok(passed: bool) -> str:
    return "yes" if passed else "**no**"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def checks(results: dict) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for every target of the issue that was measured."""
    targets = results["targets"]
    found = []
    for row in results.get("build", []):
        found.append((f"build ratio {row['model']} <= {targets['build_ratio']}",
                      row["ratio"] <= targets["build_ratio"], f"{row['ratio']:.2f}"))
    for row in results.get("analysis", []):
        if row["model"] in targets["analysis_models"]:
            found.append((f"analysis / onnx.load {row['model']} <= {targets['analysis_ratio']}",
                          row["ratio"] <= targets["analysis_ratio"], f"{row['ratio']:.2f}"))
    for row in results.get("layout", []):
        if row["model"] == targets["layout_speedup_model"]:
            speedup = row["compact_speedup"]  # the default compact drawing
            found.append(((f"compact layout >= {targets['layout_speedup']:g}x faster than "
                          f"full ({row['model']})"), speedup >= targets["layout_speedup"],
                          f"{speedup:.1f}x"))
        if row["model"] == "resnet-2k":
            seconds = median(row["compact"]["dot_wall"])
            found.append((f"resnet-2k compact < {targets['compact_2k_seconds']:g} s",
                          seconds < targets["compact_2k_seconds"], f"{seconds:.2f} s"))
    capped = results.get("capped")
    if capped:
        for part in ("whole", "region"):
            total = median(capped["analysis"]) + median(capped[part])
            found.append((f"resnet-10k {part} (analysis + drawing) < {targets['capped_seconds']:g} s",
                          total < targets["capped_seconds"], f"{total:.2f} s"))
    directives = results.get("directives")
    if directives:
        found.append(("20 directives: 1 parse, no-op rebuild 0 parses and 0 dot runs",
                      directives["cold_parses"] == 1 and directives["noop_parses"] == 0
                      and directives["noop_dot_runs"] == 0,
                      (f"{directives['cold_parses']} / {directives['noop_parses']} / "
                      f"{directives['noop_dot_runs']}")))
    memory = results.get("memory")
    if memory:
        peak = median(memory["analysis_maxrss"])
        found.append((f"peak memory {memory['model']} <= 2 x file + 200 MB",
                      peak <= memory["limit"], f"{_mib(peak)} (limit {_mib(memory['limit'])})"))
    return found


def tables(results: dict) -> str:
    """The result tables as Markdown."""
    machine = results["machine"]
    nodes = {m["name"]: m["nodes"] for m in results["models"]}
    lines = [(f"Measured {results.get('date', '')} on {machine['cpu']}, {machine['cores']} cores, "
             f"{machine['memory_gb']} GB RAM; {machine['os']}; Python {machine['python']}, "
             f"Sphinx {machine['sphinx']}, onnx {machine['onnx']}, graphviz "
             f"{machine['graphviz']}. Load average {machine['load_average_start']:.2f} at the "
             f"start, {machine.get('load_average_end', float('nan')):.2f} at the end. Every "
             f"figure is the median of {results['runs']} runs."), ""]
    lines += ["**Models**", ""]
    lines += _table(["model", "ONNX nodes", "file", "ops"], [
        [m["name"], str(m["nodes"]), _mb(m["file_bytes"]),
         ", ".join(f"{op} {n}" for op, n in sorted(m["ops"].items(), key=lambda i: -i[1]))]
        for m in results["models"]])
    if results.get("build"):
        lines += ["**1. Cold `sphinx-build`, directives vs static SVG + tables**", ""]
        lines += _table(["model", "nodes", "with directives", "static twin", "ratio",
                         "CPU ratio", "<= 1.25"], [
            [r["model"], str(nodes[r["model"]]), _s(r["ext_wall"]), _s(r["static_wall"]),
             f"{r['ratio']:.2f}", f"{r['cpu_ratio']:.2f}", _ok(r["ratio"] <= 1.25)]
            for r in results["build"]])
    if results.get("analysis"):
        wanted = results["targets"]["analysis_models"]
        size = {m["name"]: m["file_bytes"] for m in results["models"]}
        lines += ["**2. Analysis (`load_qdq_model`, cold cache) vs `onnx.load`**", ""]
        lines += _table(["model", "nodes", "file", "onnx.load", "analysis", "ratio", "<= 1.5"], [
            [r["model"], str(nodes[r["model"]]), _mb(size[r["model"]]), _ms(r["onnx_load"]),
             _ms(r["analysis"]), f"{r['ratio']:.2f}",
             _ok(r["ratio"] <= 1.5) if r["model"] in wanted else "(no target)"]
            for r in results["analysis"]])
    if results.get("layout"):
        lines += ["**3. dot layout (`dot -Tsvg`): compact, compact with pair nodes, full**",
                  "", ("Compact is the default drawing (`:pairs: edges`: each activation Q→DQ "
                  "pair on the edge it quantizes); compact with pair nodes is `:pairs: nodes`. "
                  "Graph nodes are the DOT nodes dot lays out; speedups are full / compact "
                  "and full / compact with pair nodes (wall clock, and CPU time of the dot "
                  "process)."), ""]
        lines += _table(["model", "compact", "pair nodes", "full", "speedup", "CPU speedup"], [
            [r["model"]] + [f"{_s(r[d]['dot_wall'])} ({r[d]['graph_nodes']} nodes)"
                            for d in ("compact", "pair_nodes", "full")]
            + [f"{r['compact_speedup']:.1f}× / {r['pair_nodes_speedup']:.1f}×",
               f"{r['compact_cpu_speedup']:.1f}× / {r['pair_nodes_cpu_speedup']:.1f}×"]
            for r in results["layout"]])
    capped = results.get("capped")
    if capped:
        lines += [(f"The {nodes[capped['model']]:,}-node model with the default node cap "
                  f"({capped['max_nodes']}), fresh process: analysis {_s(capped['analysis'])}; "
                  f"whole graph (link keys, DOT, dot) {_s(capped['whole'])}"
                  f"{' (the note that replaces it)' if capped['whole_fallback'] else ''}; "
                  f"one block with `:from:`/`:to:` {_s(capped['region'])}."), ""]
    directives = results.get("directives")
    if directives:
        lines += ["**4. Twenty directives on one model (4 pages)**", ""]
        lines += _table(["build", "time", "model parses", "dot runs"], [
            ["cold (new process, empty output)", _s(directives["cold_seconds"]),
             str(directives["cold_parses"]), str(directives["cold_dot_runs"])],
            ["no-op rebuild (new process)", _s(directives["noop_seconds"]),
             str(directives["noop_parses"]), str(directives["noop_dot_runs"])]])
    memory = results.get("memory")
    if memory:
        lines += ["**5. Peak memory (max RSS of a fresh process)**", ""]
        lines += _table(["model", "file", "after imports", "analysing", "onnx.load", "limit"], [
            [memory["model"], _mb(memory["file_bytes"]),
             _mib(median(memory["analysis_maxrss_after_imports"])),
             _mib(median(memory["analysis_maxrss"])), _mib(median(memory["onnx_load_maxrss"])),
             _mib(memory["limit"])]])
    lines += ["**Targets**", ""]
    lines += _table(["target", "measured", "met"],
                    [[name, measured, _ok(met)] for name, met, measured in checks(results)])
    return "\n".join(lines)


def update_results_md(results: dict, path: Path) -> None:
    """Replace the text between the markers of *path* with :func:`tables`."""
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    block = f"{START}\n{tables(results)}\n{END}"
    path.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text,
                           flags=re.DOTALL))


def summary(results: dict) -> str:
    return "\n".join(f"{'ok  ' if met else 'MISS'} {name}: {measured}"
                     for name, met, measured in checks(results))
