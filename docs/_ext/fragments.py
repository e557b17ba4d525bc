"""Markdown fragments generated at build time and included by the pages.

A fragment is a piece of MyST Markdown (a table, a worked example) whose numbers
come from the committed models, the build report or the extension's code. They are
written under ``docs/_generated/`` (ignored by git, excluded from the toctree and
pulled into pages with ``{include}``), and only when their text changes, so that
an unchanged model does not make Sphinx re-read the pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

GENERATED_DIR = Path(__file__).resolve().parent.parent / "_generated"


def write_if_changed(path: Path, content: str | bytes) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly that; True if written."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    return True


def write_fragments(fragments: dict[str, str], folder: Path = GENERATED_DIR) -> list[str]:
    """Write every ``{file name: Markdown}`` fragment; return the names that changed."""
    return [name for name, text in sorted(fragments.items())
            if write_if_changed(folder / name, text.rstrip() + "\n")]


def cell(text: object) -> str:
    """A table cell: no line breaks, pipes escaped."""
    return str(text).replace("\n", " ").replace("|", "\\|")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]],
          widths: Sequence[int] | None = None) -> str:
    """A Markdown pipe table; ``widths`` (relative) set its columns in the PDF."""
    lines = []
    if widths:
        total = sum(widths)
        columns = "".join(f"\\X{{{width}}}{{{total}}}" for width in widths)
        lines += ["```{tabularcolumns} " + columns, "```", ""]
    lines += ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def code(text: object) -> str:
    """Inline code, safe for any text without backticks."""
    return f"`{text}`"


def number(value: float, digits: int = 9) -> str:
    """A real number with ``digits`` significant digits (no trailing zeros)."""
    return f"{value:.{digits}g}"


def integer(value: int) -> str:
    """An integer with thousands separators."""
    return f"{value:,}"


def percent(fraction: float, decimals: int = 2) -> str:
    return f"{fraction * 100:.{decimals}f} %"
