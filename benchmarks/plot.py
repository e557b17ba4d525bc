"""The benchmark plot: build time and layout time against model size (matplotlib, PNG).

``python benchmarks/plot.py [RESULTS.json [OUT.png]]`` draws it from the results; ``make
bench`` draws ``benchmarks/performance.png`` next to the results it writes. The PNG
records the SHA-256 of the results it was drawn from, so :func:`ensure_plot` (for a
documentation build) redraws it only when the results changed, never because of file
times or another matplotlib version.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results.json"
DEFAULT_PNG = HERE / "performance.png"

_EXT, _STATIC = "#c0392b", "#3b6ea5"


def ensure_plot(results_json: Path = DEFAULT_JSON, png: Path = DEFAULT_PNG) -> Path:
    """Draw *png* from *results_json* unless it was drawn from these very results."""
    text = results_json.read_bytes()
    if drawn_from(png) != _digest(text):
        write_plot(json.loads(text), png, _digest(text))
    return png


def drawn_from(png: Path) -> str | None:
    """The results digest recorded in *png* (None if absent or unreadable)."""
    try:
        from PIL import Image

        with Image.open(png) as image:
            return image.text.get("Description", "").removeprefix("results sha256 ") or None
    except (OSError, ValueError, ImportError):
        return None


def _digest(results_text: bytes) -> str:
    return hashlib.sha256(results_text).hexdigest()


def write_plot(results: dict, png: Path, digest: str | None = None) -> None:
    """Two panels: cold builds (one graph page, and four pages, with the extension vs the
    pre-rendered twin), dot layout (compact vs full, the capped 10,000-node model) and the
    peers' drawing from file to SVG, both against ONNX node count."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    nodes = {m["name"]: m["nodes"] for m in results["models"]}
    figure, (build, layout) = pyplot.subplots(1, 2, figsize=(9, 5.0), dpi=110)
    _build_panel(build, results.get("build", []), nodes, results["models"],
                 results.get("graph_page", []))
    _layout_panel(layout, results.get("layout", []), results.get("capped"), nodes,
                  results.get("peers", []))
    machine = results.get("machine", {})
    figure.suptitle(f"sphinxext_qdq cost, median of {results.get('runs', '?')} runs "
                    f"({machine.get('cores', '?')} cores, {results.get('date', '')})", fontsize=9)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    if digest is None:  # as run.py writes results.json
        digest = _digest((json.dumps(results, indent=1, sort_keys=True) + "\n").encode())
    figure.savefig(png, metadata={"Software": None,
                                  "Description": f"results sha256 {digest}"})
    pyplot.close(figure)


def _build_panel(axes, rows: list[dict], nodes: dict[str, int], models: list[dict],
                 page_rows: list[dict]) -> None:
    page_rows = sorted(page_rows, key=lambda r: nodes[r["model"]])
    x = [nodes[r["model"]] for r in page_rows]
    if page_rows:
        axes.plot(x, [statistics.median(r["ext_wall"]) for r in page_rows], "o:", color=_EXT,
                  alpha=0.6, label="one qdq-graph page")
        axes.plot(x, [statistics.median(r["static_wall"]) for r in page_rows], "s:",
                  color=_STATIC, alpha=0.6, label="the same page, pre-rendered")
    rows = sorted(rows, key=lambda r: nodes[r["model"]])
    x = [nodes[r["model"]] for r in rows]
    axes.plot(x, [statistics.median(r["ext_wall"]) for r in rows], "o-", color=_EXT,
              label="with the directives")
    axes.plot(x, [statistics.median(r["static_wall"]) for r in rows], "s--", color=_STATIC,
              label="static SVG + tables")
    for row, position in zip(rows, x):
        size = next(m for m in models if m["name"] == row["model"])["file_bytes"]
        axes.annotate(f"{row['ratio']:.2f}×\n{size / 1e6:.0f} MB",
                      (position, statistics.median(row["ext_wall"])), textcoords="offset points",
                      xytext=(0, 6), ha="center", fontsize=6.5)
    _axes(axes, "cold sphinx-build (s)")


def _layout_panel(axes, rows: list[dict], capped: dict | None, nodes: dict[str, int],
                  peers: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: nodes[r["model"]])
    x = [nodes[r["model"]] for r in rows]
    for drawing, style, colour, label in (
            ("full", "s--", _STATIC, "full mode"),
            ("pair_nodes", "^:", "#1e8449", "compact, a node per Q→DQ pair"),
            ("compact", "o-", _EXT, "compact (default: pairs on edges)")):
        axes.plot(x, [statistics.median(r[drawing]["dot_wall"]) for r in rows], style,
                  color=colour, label=label)
    if capped:
        axes.plot([nodes[capped["model"]]], [statistics.median(capped["whole"])], "D",
                  color="#7d6608", label="over the node cap (note)")
    peers = sorted(peers, key=lambda r: nodes[r["model"]])
    x = [nodes[r["model"]] for r in peers]
    for tool, style, colour, label in (
            ("ours", "o-.", "#6c3483", "qdq-graph command line, file to SVG"),
            ("to_dot", "v-.", "#7f8c8d", "onnx-array-api to_dot + dot"),
            ("net_drawer", "x-.", "#2c3e50", "onnx 1.16 net_drawer + dot")):
        if peers:
            axes.plot(x, [statistics.median(r[tool]) for r in peers], style, color=colour,
                      label=label)
    _axes(axes, "seconds: dot layout, or file to SVG", legend="upper left")


def _axes(axes, ylabel: str, legend: str = "upper left") -> None:
    from matplotlib.ticker import FuncFormatter

    axes.set_xscale("log")
    axes.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(
            lambda value, _: f"{value:g}" if f"{value:g}"[0] in "25" else ""))
    axes.set_xlabel("ONNX nodes in the model", fontsize=8)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
                frameon=False)


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_JSON
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_PNG
    write_plot(json.loads(source.read_text()), target)
    print(target)
