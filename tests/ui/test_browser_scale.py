"""The UI at scale in headless Chromium over a real ``expstream ui`` process on the embedded default:
an experiment of 5,000 numeric logs, a 1,000,000-character text line and a 15 MB image
(:func:`tests.ui.conftest._populate_scale`). test_browser_cluster.py runs the same checks on the cluster.

Nothing here times anything: the timeouts are generous on purpose (two shared cores), and what is checked is
what the page does (charts asked only in view, at most MAX_DRAWN kept, the filter, the cut line, thumbnails)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from tests.ui.conftest import LONG_X, SCALE_PROJECT, Scaled, Server, drawn_series, start_server, stop_server

P = f"/p/{SCALE_PROJECT}"
#: charts.js's MAX_DRAWN: how many charts stay drawn at most
MAX_DRAWN = 60
SLOW = 60_000  # ms: generous, never a latency bound


@pytest.fixture(scope="module")
def scale_server(scaled: Scaled) -> Iterator[Server]:
    server = start_server(scaled.home)
    yield server
    assert stop_server(server) == 0


def _card(channel: str) -> str:
    return f'.chart-card[data-channel="{channel}"][data-drawn]'


def _drawn(page: Any) -> int:
    return int(page.locator(".chart-card[data-drawn]").count())


def _y(page: Any, channel: str) -> list[float]:
    return list(drawn_series(page, channel)[0]["y"])


def _expected_y(index: int) -> list[float]:
    return [float(index % 97) + step / 2 for step in range(3)]  # as _populate_scale logged them


def check_charts_at_scale(page: Any, url: str, scaled: Scaled) -> None:
    """The page of 5,000 logs opens, draws the first charts, keeps at most MAX_DRAWN and filters by name."""
    response = page.goto(f"{url}{P}/e/{scaled.short_id}", timeout=SLOW)
    assert response.status == 200
    assert page.locator("#tab-charts .chart-card").count() == len(scaled.channels)
    page.wait_for_selector(_card("metric/0000"), timeout=SLOW)
    assert _y(page, "metric/0000") == _expected_y(0)
    assert _drawn(page) < 100  # only the cards near the view were asked for, not 5,000
    # scroll down through ~150 charts, a screen at a time: the ones left behind are purged past MAX_DRAWN
    for index in range(12, 160, 12):
        page.locator(f'.chart-card[data-channel="metric/{index:04d}"]').scroll_into_view_if_needed()
        page.wait_for_selector(_card(f"metric/{index:04d}"), timeout=SLOW)
    page.wait_for_function(f"() => document.querySelectorAll('.chart-card[data-drawn]').length <= {MAX_DRAWN}")
    assert page.locator(_card("metric/0000")).count() == 0  # purged: out of view and the oldest
    assert _y(page, "metric/0156") == _expected_y(156)
    page.locator('.chart-card[data-channel="metric/0000"]').scroll_into_view_if_needed()
    page.wait_for_selector(_card("metric/0000"), timeout=SLOW)  # drawn again when back in view
    assert _y(page, "metric/0000") == _expected_y(0)
    # the filter: only the matching cards stay, and those in view are drawn
    page.fill("#chart-filter", "metric/498")
    page.wait_for_function(
        "() => document.querySelectorAll('#tab-charts .chart-card:not([hidden])').length === 10", timeout=SLOW
    )
    shown = page.locator("#tab-charts .chart-card:not([hidden])").evaluate_all(
        "(cards) => cards.map((c) => c.dataset.channel)"
    )
    assert shown == [f"metric/{i}" for i in range(4980, 4990)]
    page.wait_for_selector(_card("metric/4980"), timeout=SLOW)
    page.locator('.chart-card[data-channel="metric/4989"]').scroll_into_view_if_needed()
    page.wait_for_selector(_card("metric/4989"), timeout=SLOW)
    assert _y(page, "metric/4989") == _expected_y(4989)
    page.fill("#chart-filter", "no such log")
    page.wait_for_function("() => document.querySelectorAll('#tab-charts .group-box:not([hidden])').length === 0")
    page.fill("#chart-filter", "")
    page.wait_for_function(
        f"() => document.querySelectorAll('#tab-charts .chart-card:not([hidden])').length === {len(scaled.channels)}"
    )


def check_long_line_and_big_image(page: Any, url: str, scaled: Scaled) -> None:
    """The 1,000,000-character line shows cut, with a link to the whole of it; the 15 MB image shows as a
    thumbnail, and whole on a click."""
    page.goto(f"{url}{P}/e/{scaled.short_id}#logs", timeout=SLOW)
    page.select_option("#log-channel", "long")
    row = page.locator("#log-lines .line").filter(has=page.locator(f'.x:text-is("{LONG_X:g}")'))
    row.locator("a.cut").wait_for(timeout=SLOW)
    assert page.locator("#log-lines .line").count() == 3
    shown = row.locator(".text").inner_text()
    assert 0 < len(shown) < 10_000 and scaled.line.startswith(shown)
    assert "1,000,000 characters" in row.locator("a.cut").inner_text()
    with page.context.expect_page(timeout=SLOW) as opened:
        row.locator("a.cut").click()
    whole = opened.value
    whole.wait_for_load_state(timeout=SLOW)
    assert whole.evaluate("() => document.body.textContent") == scaled.line
    whole.close()

    page.click('a[data-tab="images"]')
    gallery = page.locator('.gallery[data-channel="big"]')
    gallery.locator(".gallery-strip img").wait_for(timeout=SLOW)
    gallery.locator(".step").fill("0")  # the big one (the last, x = 1, is a small image)
    thumb = gallery.locator(".gallery-strip img")
    page.wait_for_function(
        "() => { const img = document.querySelector('.gallery[data-channel=\"big\"] .gallery-strip img');"
        " return img.src.includes('x=0') && img.complete && img.naturalWidth > 0; }",
        timeout=SLOW,
    )
    assert "thumb=1" in (thumb.get_attribute("src") or "")
    assert "pixels" not in (thumb.get_attribute("class") or "")  # shown smaller than it is: smoothed
    width, height = scaled.image_size
    assert thumb.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [720, round(720 * height / width)]
    assert gallery.locator(".step-label").inner_text().startswith("x = 0 · big.png")
    thumb.click()
    assert page.locator("#lightbox").is_visible()
    page.wait_for_function(
        "() => { const img = document.querySelector('#lightbox img'); return img.complete && img.naturalWidth > 0; }",
        timeout=SLOW,
    )
    full = page.locator("#lightbox img")
    assert full.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == list(scaled.image_size)
    source = full.get_attribute("src") or ""
    assert "thumb" not in source
    assert page.request.get(url + source, timeout=SLOW).body() == scaled.image
    assert Image.open(io.BytesIO(scaled.image)).size == scaled.image_size
    page.click("#lightbox")
    assert not page.locator("#lightbox").is_visible()


def test_charts_of_5000_logs(page: Any, scale_server: Server, scaled: Scaled) -> None:
    check_charts_at_scale(page, scale_server.url, scaled)


def test_a_long_line_and_a_big_image(page: Any, scale_server: Server, scaled: Scaled) -> None:
    check_long_line_and_big_image(page, scale_server.url, scaled)
