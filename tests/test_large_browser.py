"""Large drawings seen by a reader: pan and zoom, a click on a collapsed box, the first view.

A small DenseNet-style model drawn at ``:depth: 2`` (boxes) in five themes, served on
127.0.0.1 to Debian's Chromium through Playwright; nothing is fetched from the network.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator

import model_zoo
import pytest
import qdq_factories
from browser_helpers import chromium_browser
from playwright.sync_api import Browser, Frame, Page
from sphinx_helpers import build, make_project

pytestmark = pytest.mark.browser

THEMES = ("alabaster", "furo", "pydata_sphinx_theme", "sphinx_book_theme", "sphinx_rtd_theme")
PAGE = ("Dense\n=====\n\nThe model, drawn with its blocks collapsed.\n\n"
        ".. qdq-graph:: /dense.onnx\n   :depth: 2\n   :caption: blocks\n\nAfter the drawing.\n")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> Iterator[dict[str, str]]:
    """One HTML build per theme, each served on 127.0.0.1: {theme: base URL}."""
    model = model_zoo.densenet(blocks=(3, 4), growth=2)
    urls, servers = {}, []
    for theme in THEMES:
        src = make_project(tmp_path_factory.mktemp(theme) / "src", root=None,
                           pages={"index.rst": PAGE},
                           conf=f"html_theme = {theme!r}\nqdq_max_scope_drawings = 4\n")
        qdq_factories.save(model, src / "dense.onnx")
        result = build(src, "html")
        assert "WARNING" not in result.warnings, result.warnings
        handler = functools.partial(QuietHandler, directory=str(result.outdir))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[theme] = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield urls
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium_browser() as chromium:
        yield chromium  # type: ignore[misc]


def open_page(browser: Browser, base: str, width: int = 1280) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                  else route.abort())
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(base + "index.html")
    page.wait_for_function("document.querySelector('div.qdq-zoom')"
                           ".classList.contains('qdq-zoom-ready')")
    return page


def main_frame(page: Page) -> Frame:
    src = page.eval_on_selector("div.qdq-zoom object", "o => o.data")
    # qdq-theme.js shows the SVG as <src>#qdq-light or #qdq-dark (the page's mode)
    return next(frame for frame in page.frames if frame.url.split("#")[0] == src)


def on_screen_box(page: Page, frame: Frame, selector: str) -> dict[str, float]:
    """Where an element of the drawing is in the page (the zoom transform applied)."""
    inner = frame.eval_on_selector(selector, "e => { const r = e.getBoundingClientRect(); "
                                             "return {x: r.x, y: r.y, w: r.width, h: r.height}; }")
    outer = page.eval_on_selector("div.qdq-zoom object", "o => o.getBoundingClientRect().toJSON()")
    scale = float(page.eval_on_selector("div.qdq-zoom", "d => d.dataset.qdqScaleNow"))
    return {"x": outer["x"] + inner["x"] * scale, "y": outer["y"] + inner["y"] * scale,
            "w": inner["w"] * scale, "h": inner["h"] * scale}


def input_node(frame: Frame) -> str:
    """A selector for the drawing's graph input (the DOT node ``i0``)."""
    index = frame.evaluate("() => Array.from(document.querySelectorAll('g.node')).findIndex("
                           "g => g.querySelector('title').textContent === 'i0')")
    assert index >= 0
    return f"g.node >> nth={index}"


@pytest.mark.parametrize("theme", THEMES)
def test_first_view_shows_the_graph_input_within_the_drawing_frame(browser, sites, theme):
    page = open_page(browser, sites[theme])
    frame = main_frame(page)
    node = on_screen_box(page, frame, input_node(frame))
    viewport = page.eval_on_selector("div.qdq-zoom .qdq-zoom-viewport",
                                     "v => v.getBoundingClientRect().toJSON()")
    assert viewport["width"] > 300
    assert viewport["x"] <= node["x"] and node["x"] + node["w"] <= viewport["x"] + viewport["width"]
    assert viewport["y"] <= node["y"] and node["y"] + node["h"] <= viewport["y"] + viewport["height"]
    page.context.close()


def test_zoom_buttons_keys_and_wheel_change_the_drawing_scale(browser, sites):
    page = open_page(browser, sites["furo"])
    frame = main_frame(page)
    selector = input_node(frame)
    scale = lambda: float(page.eval_on_selector("div.qdq-zoom", "d => d.dataset.qdqScaleNow"))
    first, width = scale(), on_screen_box(page, frame, selector)["w"]
    page.click("div.qdq-zoom button[data-qdq-zoom='in']")
    assert scale() == pytest.approx(first * 1.25, rel=1e-3)
    assert on_screen_box(page, frame, selector)["w"] == pytest.approx(width * 1.25, rel=0.02)
    page.focus("div.qdq-zoom .qdq-zoom-viewport")
    page.keyboard.press("-")
    assert scale() == pytest.approx(first, rel=1e-3)
    box = page.eval_on_selector("div.qdq-zoom .qdq-zoom-viewport",
                                "v => v.getBoundingClientRect().toJSON()")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 50)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    page.wait_for_timeout(200)
    assert scale() > first * 1.5
    page.context.close()


def test_a_click_on_a_collapsed_box_lands_on_its_expanded_drawing(browser, sites):
    page = open_page(browser, sites["sphinx_rtd_theme"])
    frame = main_frame(page)
    link = frame.locator("a", has=frame.locator("polygon")).filter(
        has_text="denseblock1").first
    href = link.evaluate("a => a.getAttributeNS('http://www.w3.org/1999/xlink', 'href')"
                         " || a.getAttribute('href')")
    assert "#qdq-scope-" in href
    link.click()
    page.wait_for_url("**#qdq-scope-*")
    anchor = page.url.rsplit("#", 1)[1]
    figure = page.locator(f"figure#{anchor}")
    assert "denseblock1" in figure.locator("figcaption").inner_text()
    box = figure.bounding_box()
    assert box is not None and -5 <= box["y"] < 900
    # the expanded drawing links back up
    figure.locator("a", has_text="back to the drawing").click()
    page.wait_for_url("**#qdq-graph-*")
    page.context.close()
