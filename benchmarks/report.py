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
    """Median and minimum of *values* (seconds)."""
    return f"{median(values):.2f} s (min {min(values):.2f})"


def _ms(values: list[float]) -> str:
    return f"{median(values) * 1000:.1f} ms (min {min(values) * 1000:.1f})"


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f} MB"


def _mib(count: float) -> str:
    return f"{count / 2**20:.0f} MiB"


def _mibs(values: list[float]) -> str:
    return f"{median(values) / 2**20:.0f} MiB (min {min(values) / 2**20:.0f})"


def _load(results: dict, section: str) -> str:
    """The load average (1 minute) at the start and the end of a section."""
    found = results.get("load_average", {}).get(section)
    if not found:
        return ""
    return (f"Load average {found['start']:.2f} at the start of this section, "
            f"{found['end']:.2f} at its end ({found['seconds'] / 60:.1f} min).")


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
    for row in results.get("graph_page", []):
        found.append(((f"one graph page {row['model']} <= {targets['graph_page_ratio']} x "
                      "pre-rendered"), row["ratio"] <= targets["graph_page_ratio"],
                      f"{row['ratio']:.2f}"))
    noop = results.get("noop")
    if noop:
        for what, key in (("time", "ratio"), ("peak memory", "memory_ratio")):
            found.append((f"no-op rebuild {what} <= {targets['noop_ratio']} x plain project",
                          noop[key] <= targets["noop_ratio"], f"{noop[key]:.2f}"))
    for row in results.get("build", []):
        found.append((f"build ratio {row['model']} <= {targets['build_ratio']}",
                      row["ratio"] <= targets["build_ratio"], f"{row['ratio']:.2f}"))
    limits = _analysis_limits(targets)
    for row in results.get("analysis", []):
        if row["model"] in limits:
            limit = limits[row["model"]]
            found.append((f"analysis / onnx.load {row['model']} <= {limit:g}",
                          row["ratio"] <= limit, f"{row['ratio']:.2f}"))
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


def _analysis_limits(targets: dict) -> dict[str, float]:
    """{model: largest analysis / onnx.load ratio} (one number for all in older results)."""
    limit = targets["analysis_ratio"]
    if isinstance(limit, dict):
        return limit
    return dict.fromkeys(targets["analysis_models"], limit)


def tables(results: dict) -> str:
    """The result tables as Markdown."""
    machine = results["machine"]
    nodes = {m["name"]: m["nodes"] for m in results["models"]}
    lines = [(f"Measured {results.get('date', '')} on {machine['cpu']}, {machine['cores']} cores, "
             f"{machine['memory_gb']} GB RAM; {machine['os']}; Python {machine['python']}, "
             f"Sphinx {machine['sphinx']}, onnx {machine['onnx']}, graphviz "
             f"{machine['graphviz']}. Load average {machine['load_average_start']:.2f} at the "
             f"start, {machine.get('load_average_end', float('nan')):.2f} at the end (and "
             f"under each table, for its section). Every figure is the median of "
             f"{results['runs']} runs, the minimum in brackets (peers: 3 runs, 1 for the 2,000-node model); "
             f"ratios divide medians."), ""]
    lines += ["**Models**", ""]
    lines += _table(["model", "ONNX nodes", "file", "ops"], [
        [m["name"], str(m["nodes"]), _mb(m["file_bytes"]),
         ", ".join(f"{op} {n}" for op, n in sorted(m["ops"].items(), key=lambda i: -i[1]))]
        for m in results["models"]])
    if results.get("graph_page"):
        lines += [("**A. Cold `sphinx-build` of one page with one `qdq-graph` vs the same page "
                  "with the drawing pre-rendered**"), ""]
        floor = all("floor_wall" in r for r in results["graph_page"])
        lines += _table(["model", "nodes", "with qdq-graph", "pre-rendered twin", "ratio",
                         "CPU ratio", "<= 1.25", *(["floor", "floor ratio"] if floor else [])], [
            [r["model"], str(nodes[r["model"]]), _s(r["ext_wall"]), _s(r["static_wall"]),
             f"{r['ratio']:.2f}", f"{r['cpu_ratio']:.2f}", _ok(r["ratio"] <= 1.25),
             *([_s(r["floor_wall"]), f"{r['floor_ratio']:.2f}"] if floor else [])]
            for r in results["graph_page"]])
        if floor:
            lines += [("*Floor*: the twin whose `conf.py` also imports onnx (and numpy with "
                           "it), loads the model and runs dot once on the same DOT: the least "
                           "any build that draws the model at build time pays, none of it our "
                           "code. *Floor ratio* = floor / twin: where it is above 1.25 the "
                           "target is out of reach of anything done in the extension."), ""]
        lines += [_load(results, "graph_page"), ""]
    noop = results.get("noop")
    if noop:
        lines += [(f"**B. Rebuild with nothing changed ({noop['model']} graph page project, new "
                  "process each)**"), ""]
        cpu = "ext_cpu" in noop
        lines += _table(["project", "time", "CPU time" if cpu else "", "peak memory"], [
            ["with the extension", _s(noop["ext_wall"]), _s(noop["ext_cpu"]) if cpu else "",
             _mibs(noop["ext_maxrss"])],
            ["plain (no extension)", _s(noop["static_wall"]),
             _s(noop["static_cpu"]) if cpu else "", _mibs(noop["static_maxrss"])],
            ["ratio (target <= 1.05)", f"{noop['ratio']:.2f}",
             f"{noop['cpu_ratio']:.2f}" if cpu else "", f"{noop['memory_ratio']:.2f}"]])
        lines += [("onnx or numpy imported by the rebuild with the extension: "
                   f"{'yes' if noop['ext_imports_onnx'] else 'no'}. " + _load(results, "noop")),
                  ""]
    if results.get("peers"):
        first = results["peers"][0]
        lines += ["**C. Drawing a whole model as SVG, side by side with the peers**", "",
                  ("Each a fresh process from the ONNX file to the SVG file: the `qdq-graph` "
                   "command line (compact drawing); onnx-array-api "
                   f"{first['onnx_array_api']} `to_dot` + dot; onnx {first['peer_onnx']} "
                   f"`onnx.tools.net_drawer` + dot (pydot {first['pydot']}, in a virtual "
                   "environment of its own, as net_drawer is gone from later onnx)."), ""]
        lines += _table(["model", "nodes", "qdq-graph", "to_dot + dot", "net_drawer + dot",
                         "to_dot / ours", "net_drawer / ours"], [
            [r["model"], str(nodes[r["model"]]), _s(r["ours"]), _s(r["to_dot"]),
             _s(r["net_drawer"]), f"{r['to_dot_speedup']:.1f}×",
             f"{r['net_drawer_speedup']:.1f}×"] for r in results["peers"]])
        lines += [_load(results, "peers"), ""]
    if results.get("build"):
        lines += ["**1. Cold `sphinx-build`, directives vs static SVG + tables**", ""]
        lines += _table(["model", "nodes", "with directives", "static twin", "ratio",
                         "CPU ratio", "<= 1.25"], [
            [r["model"], str(nodes[r["model"]]), _s(r["ext_wall"]), _s(r["static_wall"]),
             f"{r['ratio']:.2f}", f"{r['cpu_ratio']:.2f}", _ok(r["ratio"] <= 1.25)]
            for r in results["build"]])
        lines += [_load(results, "build"), ""]
    ahead = results.get("ahead")
    if ahead:
        lines += [(f"**1b. Many pictures on one page: dot started ahead ({ahead['model']}, "
                   f"default `:depth: auto`, {ahead['pictures']} pictures)**"), ""]
        lines += _table(["dot runs", "time", "CPU time", "ratio"], [
            ["started ahead, `qdq_dot_jobs` = 0 (default)", _s(ahead["ahead_wall"]),
             _s(ahead["ahead_cpu"]), f"{ahead['ratio']:.2f}"],
            ["one after another in the writer, `qdq_dot_jobs` = 1", _s(ahead["serial_wall"]),
             _s(ahead["serial_cpu"]), "1"]])
        lines += [_load(results, "ahead"), ""]
    if results.get("analysis"):
        limits = _analysis_limits(results["targets"])
        size = {m["name"]: m["file_bytes"] for m in results["models"]}
        lines += ["**2. Analysis (`load_qdq_model`, cold cache) vs `onnx.load`**", ""]
        lines += _table(["model", "nodes", "file", "onnx.load", "analysis", "ratio", "target"], [
            [r["model"], str(nodes[r["model"]]), _mb(size[r["model"]]), _ms(r["onnx_load"]),
             _ms(r["analysis"]), f"{r['ratio']:.2f}",
             f"<= {limits[r['model']]:g}: {_ok(r['ratio'] <= limits[r['model']])}"
             if r["model"] in limits else "(none)"]
            for r in results["analysis"]])
        lines += [_load(results, "analysis"), ""]
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
        lines += [_load(results, "layout"), ""]
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
        lines += [_load(results, "directives"), ""]
    memory = results.get("memory")
    if memory:
        lines += ["**5. Peak memory (max RSS of a fresh process)**", ""]
        lines += _table(["model", "file", "after imports", "analysing", "onnx.load", "limit"], [
            [memory["model"], _mb(memory["file_bytes"]),
             _mibs(memory["analysis_maxrss_after_imports"]),
             _mibs(memory["analysis_maxrss"]), _mibs(memory["onnx_load_maxrss"]),
             _mib(memory["limit"])]])
        lines += [_load(results, "memory"), ""]
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
