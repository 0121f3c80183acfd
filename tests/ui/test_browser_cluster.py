"""The same UI over the distributed backend: Kafka → consumer → ClickHouse 18.16 + S3, in Chromium."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from expstream.config import Settings
from tests.ui.conftest import (
    PROJECT,
    SCALE_PROJECT,
    XSS,
    _populate,
    _populate_scale,
    drawn_series,
    start_server,
    stop_server,
    wait_until,
)
from tests.ui.test_browser_scale import check_charts_at_scale, check_long_line_and_big_image

P = f"/p/{PROJECT}"


def test_pages_charts_and_downloads_on_the_cluster(
    page: Any, cluster: Settings, consumer: object, tmp_path: Path
) -> None:
    populated = _populate(tmp_path / "home", tmp_path)
    server = start_server(tmp_path / "home")
    try:
        page.goto(server.url + "/")
        page.click(f'a[href="{P}"]')
        page.wait_for_selector("#leaderboard tbody tr")
        assert page.locator("#leaderboard tbody tr").count() == 2
        page.click(f'a[href="{P}/e/VIS-1"]')
        page.wait_for_selector('.chart-card[data-channel="train/loss"][data-drawn]')
        drawn = drawn_series(page, "train/loss")[0]
        expected = populated.values["train/loss"]
        assert drawn["x"] == expected["x"].tolist() and drawn["y"] == expected["train/loss"].tolist()
        assert XSS in page.locator(".chart-card figcaption").all_inner_texts()
        page.click('a[data-tab="logs"]')
        page.wait_for_selector("#log-lines .line")
        assert page.locator("#log-lines .line .text").first.inner_text() == "epoch 0 <img src=x onerror=alert(1)>"
        page.fill("#log-search", "EPOCH 7")
        page.wait_for_function("() => document.querySelectorAll('#log-lines .line').length === 1")
        page.click('a[data-tab="artifacts"]')
        with page.expect_download() as got:
            page.click('#artifact-tree a.file:text-is("weights.bin")')
        assert Path(got.value.path()).read_bytes() == populated.weights
        with page.expect_download() as got:
            page.click("#artifact-tree a.zip")
        assert zipfile.ZipFile(io.BytesIO(Path(got.value.path()).read_bytes())).read("weights.bin") == populated.weights
        image = page.request.get(f"{server.url}{P}/e/VIS-1/image?channel=samples&x=2")
        assert image.body() == populated.image_png[2]
        page.goto(f"{server.url}{P}/compare?ids=VIS-1,VIS-2")
        page.wait_for_selector('.chart-card[data-channel="train/loss"][data-drawn]')
        assert page.locator("#parameter-diff tbody tr:visible th").all_inner_texts() == ["lr"]
        loss = '.chart-card[data-channel="train/loss"]'
        for axis, title in (("relative", "seconds since start"), ("time", "time (UTC)")):
            # the time rollups, or the points they name, on the cluster's tables
            page.select_option("#axis", axis)
            page.wait_for_function(
                "([card, title]) => window.expstreamCharts.chartOf(document.querySelector(card))?.series[0].label"
                " === title",
                arg=[loss, title],
            )
            page.wait_for_selector('.chart-card[data-channel="train/loss"][data-points="300,150"]')
            names = sorted(t["name"] for t in drawn_series(page, "train/loss"))
            assert names == ["VIS-1", "VIS-2"]
        assert page.goto(f"{server.url}{P}/e/VIS-1/artifacts/..%2F..%2Fetc/passwd").status == 404
    finally:
        assert stop_server(server) == 0


def test_the_ui_at_scale_on_the_cluster(page: Any, cluster: Settings, consumer: object, tmp_path: Path) -> None:
    """test_browser_scale.py's checks (5,000 logs, a 1,000,000-character line, a 15 MB image) over ClickHouse + S3."""
    scaled = _populate_scale(tmp_path / "home", tmp_path)
    server = start_server(tmp_path / "home")
    try:
        status = f"{server.url}/p/{SCALE_PROJECT}/e/{scaled.short_id}/api/status"
        logs = len(scaled.channels) + 3  # and "long", ODD_TEXT, "big": the page lays out the logs it finds
        done = {"state": "succeeded", "channels": logs}  # stopped is its last event: the points before it are in
        wait_until(lambda: (r := page.request.get(status)).ok and done.items() <= r.json().items(), timeout=180)
        check_charts_at_scale(page, server.url, scaled)
        check_long_line_and_big_image(page, server.url, scaled)
    finally:
        assert stop_server(server) == 0
