"""Light and dark mode inside an SVG drawn by dot.

An SVG embedded with ``<object>`` is a document of its own: the page's CSS (a theme's
dark mode) never reaches it. :func:`theme_style` writes a ``<style>`` for the SVG
itself: a transparent background always, and the dark palette (a map from the colours
the drawing uses to the colours it uses on a dark page) when

- the SVG is shown with the fragment ``#qdq-dark`` (the page's theme is dark: the
  bridge script ``qdq-theme.js`` sets it), or
- the system prefers a dark colour scheme and the SVG is not shown with ``#qdq-light``
  (an SVG opened on its own follows the system).

Pure text: no Sphinx here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.sax.saxutils import escape

#: Ids of the two empty markers put before the drawing: ``#qdq-dark:target ~ g`` is the
#: drawing when the SVG is shown as ``picture.svg#qdq-dark``.
DARK_ID = "qdq-dark"
LIGHT_ID = "qdq-light"

#: Default of ``qdq_graph_dark_palette``: colours of the light drawing (as dot writes
#: them) -> colours on a dark page. ``text`` is the colour of text dot writes without
#: a colour (black).
DEFAULT_DARK_PALETTE: dict[str, str] = {
    "text": "#e6e6e6",
    "black": "#c8c8c8",
    # node fills and borders
    "#ffffff": "#23262d",
    "#4d4d4d": "#b4b4b4",
    "#f8c471": "#6e4a0c",
    "#b9770e": "#f0b04a",
    "#aed6f1": "#18425f",
    "#2e86c1": "#7cc0ee",
    "#d5f5e3": "#174a30",
    "#1e8449": "#5fd08f",
    "#fadbd8": "#5a231e",
    "#943126": "#f08c80",
    "#7f8c8d": "#a8b3b4",
    "#566573": "#b7c3cf",
    "#fdf2d0": "#332d1a",
    "#d4ac0d": "#e3c03d",
    "#aaaaaa": "#8a8a8a",
    "#fef9e7": "#35311f",
    # tensor-type colours too dark to read on a dark page
    "#3b6ea5": "#7aa7dd",
    "#1b3a5c": "#8fb3df",
    "#c0392b": "#f07167",
    "#8e44ad": "#c490dc",
    "#168070": "#4fc8b4",
    "#6e6e6e": "#b0b0b0",
    "#37474f": "#b0bec5",
    "#455a64": "#a6b8c2",
    "#5d4037": "#c9aca4",
    "#795548": "#c4a59a",
    "#6b5a00": "#d4c04a",
    "#7d6608": "#d9bf4a",
    "#9a7d0a": "#dcc04f",
    "#ad1457": "#f06aa0",
    "#000000": "#e6e6e6",
}

_COLOUR = re.compile(r"#[0-9A-Fa-f]{3,8}|[A-Za-z]{3,20}")
_SHAPES = ("polygon", "ellipse", "path", "polyline", "rect", "circle")


class PaletteError(ValueError):
    """A ``qdq_graph_dark_palette`` entry that is not a colour."""


def dark_palette(overrides: Mapping[str, str] | None) -> dict[str, str]:
    """The default dark palette updated with *overrides* (colours checked: they end up
    in CSS)."""
    palette = dict(DEFAULT_DARK_PALETTE)
    for light, dark in (overrides or {}).items():
        for colour in (light, dark):
            if not isinstance(colour, str) or not _COLOUR.fullmatch(colour):
                raise PaletteError(f"{colour!r} is not a colour (#rrggbb or a name)")
        palette[light.lower() if light.startswith("#") else light] = dark
    return palette


def _dark_rules(palette: Mapping[str, str]) -> list[tuple[str, str]]:
    """(selector inside the drawing, declarations) for the dark mode."""
    rules = [("text:not([fill])", f"fill: {palette['text']}")] if "text" in palette else []
    for light, dark in palette.items():
        if light == "text":
            continue
        shapes = ", ".join(f"{shape}[fill=\"{light}\"]" for shape in _SHAPES)
        rules.append((shapes, f"fill: {dark}"))
        rules.append((f'[stroke="{light}"]', f"stroke: {dark}"))
        if light.lower() not in ("#ffffff", "white"):  # white text on a coloured box stays
            rules.append((f'text[fill="{light}"]', f"fill: {dark}"))
        rules.append((f'stop[style*="stop-color:{light};"]', f"stop-color: {dark} !important"))
    return rules


def theme_style(palette: Mapping[str, str] | None) -> str:
    """The CSS text of the SVG's ``<style>``; ``palette`` None: light drawing only."""
    # The colour scheme of the SVG must be the one of the <object> showing it: where
    # they differ, browsers paint an opaque backdrop (white or black) behind the SVG.
    lines = ["#graph0 > polygon:first-of-type { fill: transparent; }",
             ":root { color-scheme: light; }"]
    if palette:
        lines += [":root { color-scheme: light dark; }",
                  f":root:has(#{DARK_ID}:target) {{ color-scheme: dark; }}",
                  f":root:has(#{LIGHT_ID}:target) {{ color-scheme: light; }}"]
        rules = _dark_rules(palette)
        scoped = [(", ".join(f"#{DARK_ID}:target ~ g {part.strip()}"
                             for part in selector.split(", ")), body)
                  for selector, body in rules]
        lines += [f"{selector} {{ {body}; }}" for selector, body in scoped]
        lines.append("@media (prefers-color-scheme: dark) {")
        lines += [f"  {', '.join(f'#{LIGHT_ID}:not(:target) ~ g {part.strip()}' for part in selector.split(', '))} {{ {body}; }}"
                  for selector, body in rules]
        lines.append("}")
    return "\n".join(lines) + "\n"


def theme_markup(style_text: str) -> str:
    """The ``<style>`` (:func:`theme_style`) and the two fragment markers, as SVG text."""
    markers = "".join(f'<g id="{marker}"/>' for marker in (DARK_ID, LIGHT_ID))
    return f'<style type="text/css">{escape(style_text)}</style>{markers}'


def add_theme_style(svg: bytes, root_start: int, style_text: str) -> bytes:
    """*svg* with :func:`theme_markup` first inside its root element, whose start tag
    begins at byte *root_start* (the caller has parsed the file). dot's text is kept
    as it is: no XML tree is built and written again (a 2,000-node drawing took
    ~0.2 s that way)."""
    end = _start_tag_end(svg, root_start)
    return svg[:end] + theme_markup(style_text).encode("utf-8") + svg[end:]


def _start_tag_end(svg: bytes, start: int) -> int:
    """The offset just after the start tag at *start* (``>`` inside a quoted attribute
    value does not end it)."""
    quote = 0
    for offset in range(start, len(svg)):
        byte = svg[offset]
        if quote:
            quote = 0 if byte == quote else quote
        elif byte in b"\"'":
            quote = byte
        elif byte == ord(">"):
            return offset + 1
    raise ValueError("unterminated start tag")
