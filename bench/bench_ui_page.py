"""The experiment page in headless Chromium: 20 channels of 1M points each, every chart drawn.

Target (issue 9): the experiment page of a run with 20 channels of 1,000,000 points fully drawn in headless
Chromium <= 1.5 s.

python bench/bench_ui_page.py [--channels 20] [--points 1000000] [--runs 5] [--height 4000]

Set-up (timed and printed, not part of the figure): a fresh embedded home, one experiment logged through the
legacy API (``exp.log_metric`` in loops, then ``exp.sync()``), then ``expstream ui --port 0`` as its own
process on that home. Measured: from the start of ``page.goto`` of ``/p/<ns>/<project>/e/<ID>`` until every
chart card of the charts tab carries ``data-drawn`` (charts.js sets it once uPlot has drawn the chart's
answer), in a fresh browser context each run (so no cache; ``--warm``: one context whose cache holds the chart
library, as after any first page of the UI), browser started once. Charts are drawn only when in view, so the
viewport is ``--height`` px tall (default 4,000: all 20 cards in view at 1,400 px wide); with a normal window the
rest are drawn as they are scrolled to. Also measured: one chart request (the whole range
at 1,000 px) for one channel over HTTP with urllib, what the server takes per chart.
Needs /usr/bin/chromium (scripts/test installs it) and the test venv (Playwright).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from _common import fresh_home

CHROMIUM = "/usr/bin/chromium"
PROJECT = "bench/page"


def _log(channels: int, points: int, start: float) -> str:
    """One experiment with ``channels`` numeric logs of ``points`` points each (a noisy decay); its short id."""
    import expstream

    expstream.init(PROJECT)
    exp = expstream.create_experiment(
        "page", upload_source_files=[], send_hardware_metrics=False, handle_uncaught_exceptions=False
    )
    rng = np.random.default_rng(0)
    curve = np.exp(-np.arange(points) / max(1, points / 5))
    log = exp.log_metric
    for i in range(channels):
        name = f"train/metric-{i:02d}"
        for value in (curve * (1 + i / 10) + rng.normal(0, 0.01, points)).tolist():
            log(name, value)
    logged = time.perf_counter()
    exp.sync()
    print(f"  log {logged - start:.1f} s, sync {time.perf_counter() - logged:.1f} s")
    short_id = str(exp.id)
    exp.stop()
    return short_id


def _start_ui(home: str) -> tuple[subprocess.Popen[str], str]:
    """``expstream ui --port 0`` on ``home``; its base URL from the line it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "expstream", "ui", "--port", "0"],
        env=dict(os.environ, EXPSTREAM_HOME=home),
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(home).parent,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise SystemExit(f"the UI did not start: {line!r}")
    return process, "/".join(line.split("at ", 1)[1].strip().split("/", 3)[:3])


def _page_runs(url: str, channels: int, runs: int, height: int, warm: bool) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": height}) if warm else None
        if context is not None:  # the bundle in the cache, as after a first page of the UI (not timed)
            _one_run(browser, url, channels, height, context)
        for _ in range(runs):
            times.append(_one_run(browser, url, channels, height, context))
        browser.close()
    return times


def _one_run(browser: Any, url: str, channels: int, height: int, warm: Any = None) -> float:
    """Seconds from ``goto`` until all ``channels`` charts are drawn: in a fresh context (empty cache), or in the
    ``warm`` one."""
    context = warm or browser.new_context(viewport={"width": 1400, "height": height})
    page = context.new_page()
    errors: list[str] = []  # uncaught exceptions of the page's scripts
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    drawn = "(n) => document.querySelectorAll('#tab-charts .chart-card[data-drawn]').length >= n"
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function(drawn, arg=channels, timeout=300_000)
    took = time.perf_counter() - start
    print("  " + _breakdown(page))
    cards = page.locator("#tab-charts .chart-card").count()
    failed = page.locator("#tab-charts .chart-card.failed").count()
    assert cards == channels and not failed and not errors, (cards, failed, errors)
    page.close()
    if warm is None:
        context.close()
    return took


def _breakdown(page: Any) -> str:
    """Where a run's time went, from the page's own timings (ms since navigation start)."""
    timing = page.evaluate(
        """() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const charts = performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/chart'));
            const library = performance.getEntriesByType('resource').find((r) => r.name.includes('uPlot'));
            const took = charts.map((r) => r.responseEnd - r.startTime).sort((a, b) => a - b);
            return {html: nav.responseEnd, library: library ? library.responseEnd : NaN,
                    ready: nav.domContentLoadedEventEnd, n: charts.length,
                    first: Math.min(...charts.map((r) => r.startTime)),
                    last: Math.max(...charts.map((r) => r.responseEnd)),
                    median: took[Math.floor(took.length / 2)]};
        }"""
    )
    return (
        f"HTML {timing['html'] / 1000:.2f} s, uPlot in by {timing['library'] / 1000:.2f} s, "
        f"DOM ready {timing['ready'] / 1000:.2f} s, {timing['n']} chart requests "
        f"from {timing['first'] / 1000:.2f} s to {timing['last'] / 1000:.2f} s (median {timing['median']:.0f} ms each)"
    )


def _chart_request(base: str, short_id: str, channel: str, rounds: int = 5) -> list[float]:
    query = urllib.parse.urlencode(
        {"ids": short_id, "channel": channel, "namespace": "user", "axis": "step", "width": "1000"}
    )
    url = f"{base}/p/{PROJECT}/api/chart?{query}"
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            body = response.read()
        times.append(time.perf_counter() - start)
        assert response.status == 200 and b'"series"' in body, body[:200]
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--height", type=int, default=4000, help="viewport height, px (charts draw when in view)")
    parser.add_argument("--warm", action="store_true", help="one browser context: the chart library cached")
    args = parser.parse_args()
    with fresh_home() as folder:
        home = os.path.join(folder, "home")
        print(f"set-up: {args.channels} channels x {args.points:,} points")
        start = time.perf_counter()
        short_id = _log(args.channels, args.points, start)
        print(f"  set-up {time.perf_counter() - start:.1f} s")
        process, base = _start_ui(home)
        try:
            url = f"{base}/p/{PROJECT}/e/{short_id}"
            times = _page_runs(url, args.channels, args.runs, args.height, args.warm)
            print(f"page, all {args.channels} charts drawn: " + ", ".join(f"{t:.2f}" for t in times) + " s")
            print(f"  median {statistics.median(times):.2f} s (target <= 1.5 s)")
            chart = _chart_request(base, short_id, "train/metric-00")
            print(
                f"one chart request ({args.points:,} points, 1,000 px), HTTP: "
                + ", ".join(f"{t * 1000:.0f}" for t in chart)
                + f" ms, median {statistics.median(chart) * 1000:.0f} ms"
            )
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
            print(f"UI stopped with SIGTERM, exit code {code}")


if __name__ == "__main__":
    main()
