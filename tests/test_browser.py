"""The built HTML seen by a reader: Debian's Chromium driven by Playwright.

The architecture page is served on 127.0.0.1; its graphs must render with a real size,
show their QuantizeLinear / DequantizeLinear nodes (or Q→DQ pairs on edges), and a
click on a QuantizeLinear node or on a pair's edge must land on the QuantizeLinear
section of the boundary-operations page; a click on the edge's label on the pair's row.
Screenshots go to ``_build/screenshots/``. Nothing is fetched from the network: every
request that is not for the local server is aborted.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_helpers import chromium_browser
from docs_builds import REPOSITORY, build
from playwright.sync_api import Browser, Frame, Page, Route

pytestmark = pytest.mark.browser

SCREENSHOTS = REPOSITORY / "_build" / "screenshots"
ARCHITECTURE = "docs/quantization/04-architecture.html"
BOUNDARY = "docs/quantization/01-boundary-operations.html"
TIMEOUT_MS = 30_000
XLINK = "http://www.w3.org/1999/xlink"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The HTML build, served on 127.0.0.1; yields the base URL."""
    html = build("html", tmp_path_factory)
    assert html.returncode == 0, html.output[-3000:]
    handler = functools.partial(QuietHandler, directory=str(html.outdir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium_browser() as chromium:
        yield chromium  # type: ignore[misc]


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})

    def local_only(route: Route) -> None:
        if route.request.url.startswith(site):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def graph_frames(page: Page) -> dict[str, Frame]:
    """``{absolute SVG URL: frame}`` for every graph object of the page (an SVG inside
    ``<object>`` is its own frame; ``content_frame()`` does not reach it). The frame's
    URL has the ``#qdq-light`` / ``#qdq-dark`` the page's theme script gives it: the keys
    are without it."""
    return {frame.url.split("#")[0]: frame for frame in page.frames
            if urlsplit(frame.url).path.endswith(".svg")}


def object_urls(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "object.qdq-graph",
        "objects => objects.map(o => new URL(o.data, document.baseURI).href.split('#')[0])")


def open_architecture(page: Page, site: str) -> None:
    page.goto(site + ARCHITECTURE, wait_until="load")
    # the theme script has shown every graph in the page's mode
    page.wait_for_function("() => [...document.querySelectorAll('object.qdq-graph')]"
                           ".every(o => o.dataset.qdqMode)")
    urls = object_urls(page)
    page.wait_for_function(
        "count => [...document.querySelectorAll('object.qdq-graph')]"
        ".filter(o => o.contentDocument && o.contentDocument.querySelector('svg')).length"
        " === count", arg=len(urls))


def test_graphs_render_with_their_qdq_nodes(page: Page, site: str) -> None:
    open_architecture(page, site)
    objects = page.locator("object.qdq-graph")
    assert objects.count() >= 3
    for index in range(objects.count()):
        box = objects.nth(index).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
    frames = graph_frames(page)
    urls = object_urls(page)
    assert set(urls) <= set(frames)
    for url in urls:
        nodes = frames[url].locator("g.node")
        assert nodes.count() > 0
        # Q/DQ nodes, or (compact) Q→DQ pairs drawn on edges: their tooltips name them
        titles = " ".join(frames[url].eval_on_selector_all(
            "g.node a, g.edge a", "links => links.map(a => a.getAttributeNS(XLINK, 'title') || '')"
            .replace("XLINK", repr(XLINK))))
        assert "QuantizeLinear" in titles and "DequantizeLinear" in titles
    screenshot(page, "architecture")


def compact_graph(page: Page) -> Frame:
    """The frame of the first graph with a Q→DQ pair drawn on an edge."""
    frames = graph_frames(page)
    return next(frames[url] for url in object_urls(page)
                if frames[url].locator("g.edge", has_text="Q→DQ").count())


def test_pair_edge_leads_to_the_specification_and_its_label_to_the_row(page: Page,
                                                                       site: str) -> None:
    open_architecture(page, site)
    graph = compact_graph(page)
    edge = graph.locator("g.edge", has_text="s=").first  # a pair's first edge: the full label
    pair = edge.locator("text").first.text_content()
    assert pair.startswith("Q→DQ INT8")
    # the label links to the pair's row of the parameter table on this page
    label = edge.locator("a", has_text="Q→DQ").first
    assert label.get_attribute("target") == "_top"
    label.click()
    page.wait_for_url(f"**/{ARCHITECTURE}#qdq-node-*")
    row = page.locator(f"[id='{page.url.split('#', 1)[1]}']")
    assert row.evaluate("e => e.closest('tr') !== null")
    cells = row.evaluate("e => e.closest('tr').innerText")
    assert "QuantizeLinear" in cells
    scale = edge.locator("text").nth(1).text_content().split()[0][2:]  # s=<scale> zp=<zp>
    assert scale in cells
    # the line itself links to the QuantizeLinear specification
    open_architecture(page, site)
    line = compact_graph(page).locator("g.edge", has_text="s=").first.locator("a").first
    assert line.evaluate(f"a => a.getAttributeNS({XLINK!r}, 'href')").split("#")[0].endswith(
        BOUNDARY.rsplit("/", 1)[1])
    line.locator("polygon").first.click()  # the arrowhead: a filled shape on the line
    page.wait_for_url(f"**/{BOUNDARY}#*")
    target = page.locator(f"[id='{page.url.split('#', 1)[1]}']")
    assert target.locator(".sig-name").inner_text().strip() == "QuantizeLinear"


def test_quantizelinear_node_leads_to_its_specification(page: Page, site: str) -> None:
    open_architecture(page, site)
    frames = graph_frames(page)
    block = next(frames[url] for url in object_urls(page)
                 if frames[url].locator("g.node", has_text="QuantizeLinear (activation)").count())
    node = block.locator("g.node", has_text="QuantizeLinear (activation)").filter(
        has_not_text="DequantizeLinear").first
    link = node.locator("a").first
    assert link.get_attribute("target") == "_top"
    node.click()
    page.wait_for_url(f"**/{BOUNDARY}#*")
    anchor = page.url.split("#", 1)[1]
    target = page.locator(f"[id='{anchor}']")
    assert target.locator(".sig-name").inner_text().strip() == "QuantizeLinear"
    assert target.evaluate("e => e.closest('dl').classList.contains('op')")
    page.wait_for_function(  # the scroll to the anchor has brought it to the top half
        "e => e.getBoundingClientRect().top >= -1 && "
        "e.getBoundingClientRect().top < window.innerHeight / 2", arg=target.element_handle())
    box = target.bounding_box()
    assert box is not None and -1 <= box["y"] < page.viewport_size["height"] / 2
    screenshot(page, "after-click-quantizelinear", full_page=False)  # what the reader sees
