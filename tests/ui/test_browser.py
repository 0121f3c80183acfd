"""The UI in headless Chromium over a real ``expstream ui`` process on the embedded default."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from tests.ui.conftest import (
    NESTED_SOURCE,
    PROJECT,
    XSS,
    Populated,
    Server,
    drawn_series,
    start_server,
    stop_server,
    wait_until,
)

P = f"/p/{PROJECT}"


def _series(page: Any, channel: str) -> list[dict[str, Any]]:
    return drawn_series(page, channel)


def _card(channel: str) -> str:
    return f'.chart-card[data-channel="{channel}"][data-drawn]'


def test_click_from_projects_to_an_experiment_to_a_comparison(
    page: Any, module_server: Server, populated: Populated
) -> None:
    page.goto(module_server.url + "/")
    page.click(f'a[href="{P}"]')
    page.wait_for_selector("#leaderboard tbody tr")
    assert page.locator("#leaderboard tbody tr").count() == 2
    assert page.locator('#leaderboard tr[data-id="VIS-2"] .state').inner_text() == "failed"

    page.click(f'a[href="{P}/e/VIS-1"]')
    page.wait_for_selector(_card("train/loss"))
    expected = populated.values["train/loss"]
    drawn = _series(page, "train/loss")[0]
    assert drawn["x"] == expected["x"].tolist() and drawn["y"] == expected["train/loss"].tolist()
    page.locator(".chart-card[data-channel='val/acc']").scroll_into_view_if_needed()
    page.wait_for_selector(_card("val/acc"))
    acc = _series(page, "val/acc")[0]
    assert acc["y"] == populated.values["val/acc"]["val/acc"].tolist()
    assert {"train/", "val/"} <= set(page.locator("h2.group").all_inner_texts())  # grouped by prefix

    page.go_back()
    page.wait_for_selector("#leaderboard tbody tr")
    for short_id in ("VIS-1", "VIS-2"):
        page.check(f'input.pick[value="{short_id}"]')
    page.click("#compare-button")
    page.wait_for_url(f"**{P}/compare?ids=*")
    page.wait_for_selector(_card("train/loss"))
    traces = {t["name"]: t for t in _series(page, "train/loss")}
    assert {name: len(t["x"]) for name, t in traces.items()} == {"VIS-1": 300, "VIS-2": 150}
    assert traces["VIS-2"]["y"] == populated.values["two/train/loss"]["train/loss"].tolist()
    differing = page.locator("#parameter-diff tbody tr:visible th").all_inner_texts()
    assert differing == ["lr"]


def test_user_strings_show_as_text_and_never_run(page: Any, module_server: Server) -> None:
    page.goto(f"{module_server.url}{P}/e/VIS-1")
    page.locator(f'.chart-card[data-channel="{XSS}"]').scroll_into_view_if_needed()
    page.wait_for_selector(f'.chart-card[data-drawn] figcaption:text-is("{XSS}")')
    assert XSS in page.locator(".chart-card figcaption").all_inner_texts()
    assert "<b>bold</b>" in page.locator(".head .tag").all_inner_texts()
    page.click('a[data-tab="logs"]')
    page.wait_for_selector("#log-lines .line")
    assert page.locator("#log-lines .line .text").first.inner_text() == "epoch 0 <img src=x onerror=alert(1)>"
    assert page.locator("#log-lines img").count() == 0
    page.click('a[data-tab="details"]')
    assert XSS in page.locator("#properties").inner_text()
    assert page.locator("main script").count() == 0  # only the page's own scripts, none from data
    page.wait_for_timeout(300)
    # the page fixture fails the test if any dialog (alert) opened


def test_zoom_asks_for_the_range_again(page: Any, module_server: Server, populated: Populated) -> None:
    page.goto(f"{module_server.url}{P}/e/VIS-1")
    page.wait_for_selector(_card("train/loss"))
    card = '.chart-card[data-channel="train/loss"]'
    page.evaluate(f"() => window.expstreamCharts.zoom(document.querySelector('{card}'), [100, 149])")
    page.wait_for_selector(f'{card}[data-points="50"]')
    zoomed = _series(page, "train/loss")[0]
    assert zoomed["x"] == [float(x) for x in range(100, 150)]

    # a shift-drag to the right pans towards smaller x and asks for the new range
    box = page.locator(f"{card} .u-over").bounding_box()
    drawn = int(page.locator(card).get_attribute("data-drawn"))
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function(f"() => Number(document.querySelector('{card}').dataset.drawn) > {drawn}")
    panned = _series(page, "train/loss")[0]
    assert panned["x"][0] < 100 and panned["x"][-1] < 149 and len(panned["x"]) > 10

    # a drag across the middle of the plot asks for that range: fewer points, all inside it
    page.dblclick(f"{card} .u-over")  # the whole range again
    page.wait_for_selector(f'{card}[data-points="300"]')
    box = page.locator(f"{card} .u-over").bounding_box()
    drawn = int(page.locator(card).get_attribute("data-drawn"))
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => Number(document.querySelector('{card}').dataset.drawn) > {drawn}")
    dragged = _series(page, "train/loss")[0]
    assert 0 < len(dragged["x"]) < 300 and 50 < dragged["x"][0] < dragged["x"][-1] < 200

    page.select_option("#axis", "relative")
    page.wait_for_selector(f'{card}[data-points="300"]')
    page.check("#ylog")
    page.wait_for_function(
        f"() => window.expstreamCharts.chartOf(document.querySelector('{card}')).scales.y.distr === 3"
    )


def test_hover_shows_the_same_step_on_every_chart_and_a_drag_zooms_one(page: Any, module_server: Server) -> None:
    page.set_viewport_size({"width": 1400, "height": 2000})  # both charts in view
    page.goto(f"{module_server.url}{P}/e/VIS-1")
    loss, acc = '.chart-card[data-channel="train/loss"]', '.chart-card[data-channel="val/acc"]'
    page.wait_for_selector(f"{loss}[data-drawn]")
    page.wait_for_selector(f"{acc}[data-drawn]")
    hovered = "(card) => window.expstreamCharts.chartOf(document.querySelector(card)).cursor.idx"
    assert page.evaluate(hovered, acc) is None
    box = page.locator(f"{loss} .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.02, box["y"] + box["height"] / 2)
    page.wait_for_function(f"(card) => ({hovered})(card) !== null", arg=acc)  # the other chart's legend follows
    before = page.locator(acc).get_attribute("data-drawn")
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2, steps=4)
    page.mouse.up()
    page.wait_for_function(f"() => document.querySelector('{loss}').dataset.drawn !== '1'")
    assert page.locator(acc).get_attribute("data-drawn") == before  # only the dragged chart asked again


def test_images_and_artifacts_download_byte_for_byte(page: Any, module_server: Server, populated: Populated) -> None:
    page.goto(f"{module_server.url}{P}/e/VIS-1#images")
    page.wait_for_selector(".gallery-strip img")
    page.locator(".gallery .step").fill("1")
    page.wait_for_function("() => document.querySelector('.gallery-strip img').src.includes('x=1')")
    source = page.locator(".gallery-strip img").get_attribute("src")
    assert page.request.get(module_server.url + source).body() == populated.image_png[1]
    page.wait_for_selector(".gallery-strip img.pixels")  # 16 px shown at 240: its pixels kept sharp
    page.click(".gallery-strip img")
    assert page.locator("#lightbox").is_visible()
    page.click("#lightbox")

    page.click('a[data-tab="artifacts"]')
    with page.expect_download() as got:
        page.click('#artifact-tree a.file:text-is("weights.bin")')
    assert Path(got.value.path()).read_bytes() == populated.weights
    with page.expect_download() as got:
        page.click("#artifact-tree a.zip")
    archive = zipfile.ZipFile(io.BytesIO(Path(got.value.path()).read_bytes()))
    assert archive.read("weights.bin") == populated.weights and archive.read("config.json") == populated.config
    page.click('a[data-tab="sources"]')
    with page.expect_download() as got:
        page.click('#source-list a.file:text-is("train.py")')
    assert Path(got.value.path()).read_bytes() == populated.source


def test_sources_tab_lists_nested_files_and_downloads_them_byte_for_byte(
    page: Any, module_server: Server, populated: Populated
) -> None:
    page.goto(f"{module_server.url}{P}/e/VIS-1")
    page.click('a[data-tab="sources"]')
    assert page.locator("#source-list a.file").all_inner_texts() == [NESTED_SOURCE, "train.py"]
    with page.expect_download() as got:
        page.click(f'#source-list a.file:text-is("{NESTED_SOURCE}")')
    assert Path(got.value.path()).read_bytes() == populated.nested_source
    with page.expect_download() as got:
        page.click("#tab-sources a.button")  # all as zip
    assert got.value.suggested_filename.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(Path(got.value.path()).read_bytes()))
    assert sorted(archive.namelist()) == [NESTED_SOURCE, "train.py"]
    assert archive.read(NESTED_SOURCE) == populated.nested_source and archive.read("train.py") == populated.source


def test_monitoring_tab_draws_the_hardware_charts(page: Any, module_server: Server, populated: Populated) -> None:
    page.goto(f"{module_server.url}{P}/e/VIS-1#monitoring")
    for name in ("cpu", "ram"):
        page.wait_for_selector(f'#tab-monitoring .chart-card[data-channel="{name}"][data-drawn]')
        expected = populated.values["hardware"][f"y_{name}"].dropna().tolist()
        assert expected and _series(page, name)[0]["y"] == expected
    assert page.locator("#tab-charts").is_hidden()


def test_unknown_pages_are_404_pages(page: Any, module_server: Server) -> None:
    for path in ("/p/acme/none", f"{P}/e/VIS-404", f"{P}/e/VIS-1/artifacts/..%2F..%2Fetc/passwd"):
        response = page.goto(module_server.url + path)
        assert response.status == 404
        assert page.locator(".error h1").inner_text() == "404"


SLOW_LOGGER = """
import sys, time
import expstream as neptune
neptune.init("acme/vision")
exp = neptune.create_experiment(name="slow", upload_source_files=[], send_hardware_metrics=False)
exp.log_metric("live/loss", 1.0)
exp.log_text("progress", "started")
exp.wait()
print(exp.id, flush=True)
for line in sys.stdin:  # one point per line the test sends
    exp.log_metric("live/loss", float(line))
    exp.log_text("progress", "value " + line.strip())
    exp.wait()
exp.stop()
"""


def test_a_running_experiment_updates_by_itself(page: Any, populated: Populated) -> None:
    server = start_server(populated.home)
    logger = subprocess.Popen(
        [sys.executable, "-c", SLOW_LOGGER],
        env=dict(os.environ, EXPSTREAM_HOME=str(populated.home)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=populated.home.parent,
    )
    try:
        assert logger.stdout is not None and logger.stdin is not None
        short_id = logger.stdout.readline().strip()
        status = f"{server.url}{P}/e/{short_id}/api/status"
        wait_until(lambda: page.request.get(status).ok)  # durable in the log: materialized within a moment
        page.goto(f"{server.url}{P}/e/{short_id}")
        page.wait_for_selector('.chart-card[data-channel="live/loss"][data-points="1"]', timeout=20_000)
        assert page.locator("#state").inner_text() == "running"
        page.click('a[data-tab="logs"]')
        page.wait_for_selector("#log-lines .line")
        page.click('a[data-tab="charts"]')
        delays = []
        for value in (0.5, 0.25):
            logger.stdin.write(f"{value}\n")
            logger.stdin.flush()
            started = time.monotonic()
            count = 2 if value == 0.5 else 3
            page.wait_for_selector(f'.chart-card[data-channel="live/loss"][data-points="{count}"]', timeout=20_000)
            delays.append(time.monotonic() - started)
        assert _series(page, "live/loss")[0]["y"] == [1.0, 0.5, 0.25]
        page.click('a[data-tab="logs"]')
        page.wait_for_selector('#log-lines .line .text:text-is("value 0.25")')
        logger.stdin.close()
        assert logger.wait(timeout=60) == 0
        page.wait_for_selector('#state:text-is("succeeded")', timeout=20_000)
        print(f"live delays: {[round(d, 2) for d in delays]} s")
    finally:
        if logger.poll() is None:
            logger.kill()
        assert stop_server(server) == 0


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_pages_of_the_demo(page: Any, tmp_path: Path) -> None:
    """The demo's data on every main page; screenshots kept under test-results/ui/demo (docs/ui-*.png with
    EXPSTREAM_UI_DOCS=1: how the README's pictures are made)."""
    home = tmp_path / "demo-home"
    env = dict(os.environ, EXPSTREAM_HOME=str(home))
    for steps in (200, 140):  # two runs of different length, so that the comparison shows two lines
        done = subprocess.run(
            [sys.executable, "-m", "expstream", "demo", "--steps", str(steps), "--output", str(tmp_path / "out")],
            env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    server = start_server(home)
    shots = Path(__file__).resolve().parents[2] / "test-results" / "ui" / "demo"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        page.set_viewport_size({"width": 1280, "height": 760})
        demo = "/p/demo/mnist-toy"
        views = [
            ("projects", "/", "#projects"),
            ("leaderboard", demo, "#leaderboard tbody tr"),
            ("experiment", f"{demo}/e/MNI-2", '.chart-card[data-channel="epoch/accuracy"][data-drawn]'),
            ("images", f"{demo}/e/MNI-2#images", ".gallery-strip img"),
            ("compare", f"{demo}/compare?ids=MNI-1,MNI-2", '.chart-card[data-channel="batch/loss"][data-drawn]'),
        ]
        for name, path, ready in views:
            page.goto(server.url + path)
            page.wait_for_selector(ready)
            page.wait_for_function(  # every chart in view drawn
                "() => [...document.querySelectorAll('.chart-card')].every((c) => !c.offsetParent || c.dataset.drawn)"
            )
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / f"ui-{name}.png"))
            if os.environ.get("EXPSTREAM_UI_DOCS") == "1":
                page.screenshot(path=str(DOCS / f"ui-{name}.png"))
        assert page.locator(".chart-card").count() >= 2
    finally:
        assert stop_server(server) == 0
