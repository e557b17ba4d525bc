"""Pictures of the numerics, drawn with matplotlib (Agg) only when one is asked for.

A picture is described by a small frozen record (:class:`HistogramPicture`,
:class:`SqnrPicture`): plain numbers, picklable, so a Sphinx node can carry it. Its file
name is a hash of that record and the format, so a picture already drawn is never drawn
again (:func:`draw_count` counts the drawings of this process). Output is deterministic:
no dates in the files, a fixed SVG id salt.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinxext_qdq.numerics.error import ErrorReport
    from sphinxext_qdq.numerics.grid import GridStats

#: Bump when the drawing code changes what a record looks like on paper.
DRAWING_VERSION = "1"

FORMATS = ("svg", "pdf", "png")

_draw_count = 0
_lock = threading.Lock()


def draw_count() -> int:
    """Pictures drawn by matplotlib in this process."""
    return _draw_count


@dataclass(frozen=True)
class HistogramPicture:
    """A tensor against its grid: float histogram (range marked), per-channel strip, codes."""

    title: str
    layout: str  # "row" (panels side by side) | "column" (stacked)
    stats: GridStats


@dataclass(frozen=True)
class SqnrPicture:
    """SQNR of each tensor along the data flow, the worst ones marked."""

    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    worst: tuple[int, ...]  # indices into labels
    label: str = ""  # the model of ``values`` (a legend when there is a second model)
    other_label: str = ""
    other_values: tuple[float | None, ...] = ()  # a second quantized model, by label


def sqnr_picture(report: ErrorReport, title: str, label: str = "",
                 other: ErrorReport | None = None, other_label: str = "") -> SqnrPicture:
    worst = set(report.worst)
    others: tuple[float | None, ...] = ()
    if other is not None:
        by_tensor = {row.tensor: round(row.sqnr_db, 6) for row in other.tensors}
        others = tuple(by_tensor.get(row.tensor) for row in report.tensors)
    return SqnrPicture(title=title, labels=tuple(row.tensor for row in report.tensors),
                       values=tuple(round(row.sqnr_db, 6) for row in report.tensors),
                       worst=tuple(i for i, row in enumerate(report.tensors)
                                   if row.tensor in worst),
                       label=label, other_label=other_label, other_values=others)


def file_name(picture: HistogramPicture | SqnrPicture, fmt: str) -> str:
    """``qdq-plot-<hash>.<fmt>``: the same record and format always give the same name."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}; expected one of {', '.join(FORMATS)}")
    key = f"{DRAWING_VERSION}|{fmt}|{picture!r}".encode()
    return f"qdq-plot-{hashlib.sha1(key, usedforsecurity=False).hexdigest()}.{fmt}"


def draw(picture: HistogramPicture | SqnrPicture, folder: str | os.PathLike[str], fmt: str
         ) -> Path:
    """The picture's file in *folder*, drawn unless it is there already (written to a
    temporary name and renamed: a reader never sees half a file)."""
    target = Path(folder) / file_name(picture, fmt)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    return save(picture, target, fmt)


def save(picture: HistogramPicture | SqnrPicture, target: str | os.PathLike[str], fmt: str
         ) -> Path:
    """Draw *picture* into the file *target* (replaced whole)."""
    global _draw_count
    target = Path(target)
    figure = _figure(picture)
    temporary = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} \
            if fmt == "pdf" else {}
        figure.savefig(temporary, format=fmt, metadata=metadata)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
        _pyplot().close(figure)
    with _lock:
        _draw_count += 1
    return target


def _pyplot():  # matplotlib.pyplot, Agg backend, imported on first use
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams["svg.hashsalt"] = "sphinxext_qdq"
    matplotlib.rcParams["svg.fonttype"] = "path"
    import matplotlib.pyplot as plt

    return plt


def _figure(picture: HistogramPicture | SqnrPicture):
    if isinstance(picture, SqnrPicture):
        return _sqnr_figure(picture)
    return _histogram_figure(picture)


FLOAT_COLOUR = "#2e86c1"
CODE_COLOUR = "#b9770e"
CLIP_COLOUR = "#c0392b"


def _histogram_figure(picture: HistogramPicture):
    plt = _pyplot()
    stats = picture.stats
    panels = 3 if stats.channels else 2
    if picture.layout == "column":
        figure, axes = plt.subplots(panels, 1, figsize=(6.4, 2.4 * panels))
    else:
        figure, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 2.8))
    _float_panel(axes[0], stats)
    if stats.channels:
        _strip_panel(axes[1], stats)
    _code_panel(axes[-1], stats)
    figure.suptitle(picture.title, fontsize=9)
    figure.tight_layout()
    return figure


def _float_panel(ax, stats: GridStats) -> None:
    edges = stats.float_edges
    ax.stairs(stats.float_counts, edges, fill=True, color=FLOAT_COLOUR, alpha=0.8)
    ax.axvspan(edges[0], stats.representable_low, color=CLIP_COLOUR, alpha=0.12, lw=0)
    ax.axvspan(stats.representable_high, edges[-1], color=CLIP_COLOUR, alpha=0.12, lw=0)
    for bound in (stats.representable_low, stats.representable_high):
        ax.axvline(bound, color=CLIP_COLOUR, lw=1, ls="--")
    ax.set_title(f"float values ({stats.float_source}); {stats.clipped:.2%} clipped",
                 fontsize=8)
    ax.set_xlabel("value (dashed: representable range)", fontsize=7)
    ax.set_ylabel("count", fontsize=7)
    ax.tick_params(labelsize=7)


def _strip_panel(ax, stats: GridStats) -> None:
    from sphinxext_qdq.numerics.grid import STRIP_CHANNELS

    channels = stats.channels[:STRIP_CHANNELS]
    rows = range(len(channels))
    ax.barh(rows, [c.representable_high - c.representable_low for c in channels],
            left=[c.representable_low for c in channels], height=0.9, color=CLIP_COLOUR,
            alpha=0.18, lw=0)
    ax.barh(rows, [c.high - c.low for c in channels], left=[c.low for c in channels],
            height=0.6, color=FLOAT_COLOUR, lw=0)
    shown = f" (first {len(channels)})" if len(channels) < len(stats.channels) else ""
    what = "its scale" if stats.per_channel else "the one scale"
    ax.set_title(f"per output channel{shown}: values (blue), range of {what} (red)",
                 fontsize=8)
    ax.set_xlabel("value", fontsize=7)
    ax.set_ylabel("channel", fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)


def _code_panel(ax, stats: GridStats) -> None:
    ax.stairs(stats.code_counts, stats.code_edges, fill=True, color=CODE_COLOUR, alpha=0.85)
    ax.set_xlim(min(stats.code_edges[0], stats.q_min - 0.5),
                max(stats.code_edges[-1], stats.q_max + 0.5))
    used = f"grid span used {stats.grid_used:.0%}"
    if stats.channels:
        used += f" (narrowest channel {stats.grid_used_min:.0%})"
    ax.set_title(f"{stats.dtype} codes: {used}", fontsize=8)
    ax.set_xlabel(f"code ({stats.q_min} … {stats.q_max})", fontsize=7)
    ax.set_ylabel("count", fontsize=7)
    ax.tick_params(labelsize=7)


def _sqnr_figure(picture: SqnrPicture):
    plt = _pyplot()
    count = len(picture.labels)
    figure, ax = plt.subplots(figsize=(max(6.4, 0.35 * count + 1.5), 3.4))
    colours = [CLIP_COLOUR if i in picture.worst else FLOAT_COLOUR for i in range(count)]
    width = 0.4 if picture.other_values else 0.8
    shift = -width / 2 if picture.other_values else 0.0
    positions = [i + shift for i in range(count)]
    ax.bar(positions, picture.values, width=width, color=colours,
           label=f"{picture.label} (lowest three in red)" if picture.label else None)
    for index in picture.worst:
        ax.annotate(f"{picture.values[index]:.1f}", (positions[index], picture.values[index]),
                    ha="center", va="bottom", fontsize=7, color=CLIP_COLOUR)
    if picture.other_values:
        shown = [(i + width / 2, v) for i, v in enumerate(picture.other_values) if v is not None]
        ax.bar([x for x, _ in shown], [v for _, v in shown], width=width, color=CODE_COLOUR,
               label=picture.other_label)
        ax.legend(fontsize=7, loc="upper right", ncols=2, framealpha=0.95)
        ax.set_ylim(top=max([*picture.values, *shown_values(picture)]) * 1.3)
    ax.set_xticks(range(count))
    ax.set_xticklabels(_short_labels(picture.labels), rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("SQNR (dB), higher is better", fontsize=7)
    ax.set_title(picture.title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    return figure


def shown_values(picture: SqnrPicture) -> list[float]:
    return [value for value in picture.other_values if value is not None]


def _short_labels(labels: tuple[str, ...], limit: int = 32) -> list[str]:
    return [label if len(label) <= limit else "…" + label[-(limit - 1):] for label in labels]
