"""Fixtures of the UI tests: two experiments with every kind of data, the UI in-process and as a process."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from PIL import Image

import expstream
from expstream.config import load_settings

XSS = "<script>alert(1)</script>"
PROJECT = "acme/vision"
SCALE_PROJECT = "acme/scale"
NESTED_SOURCE = "pkg/model/net.py"
T = TypeVar("T")


@dataclass
class Populated:
    home: Path
    ids: list[str]
    weights: bytes
    config: bytes
    source: bytes
    image_png: list[bytes] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    nested_source: bytes = b""  # of NESTED_SOURCE, a source file in folders


def _png(seed: int) -> Image.Image:
    pixels = (np.random.default_rng(seed).random((16, 16, 3)) * 255).astype("uint8")
    return Image.fromarray(pixels)


def drawn_series(page: Any, channel: str) -> list[dict[str, Any]]:
    """The series uPlot drew in the chart of ``channel`` (x, y, label), each at its own points only (a chart of
    several experiments shares one x column, a series holding null at the others' x)."""
    return list(
        page.evaluate(
            """(channel) => {
                const card = [...document.querySelectorAll('.chart-card')].find((c) => c.dataset.channel === channel);
                const u = window.expstreamCharts.chartOf(card);
                return u.series.slice(1).map((s, i) => {
                    const ys = u.data[i + 1], keep = ys.map((y) => y !== null);
                    return {x: u.data[0].filter((_, k) => keep[k]), y: ys.filter((_, k) => keep[k]), name: s.label};
                });
            }""",
            channel,
        )
    )


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:
    """acme/vision: VIS-1 succeeded (metrics, text, images, artifacts, a source file, an XSS channel),
    VIS-2 failed with a traceback; both read back through the legacy API for the expected values.

    Built once per module (the tests only read it), in a home of its own like the ``home`` fixture's."""
    yield from _in_own_home(tmp_path_factory.mktemp("ui"), _populate)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scaled]:
    """acme/scale: an experiment at the UI's scale (see :func:`_populate_scale`), in a home of its own."""
    yield from _in_own_home(tmp_path_factory.mktemp("ui-scale"), _populate_scale)


def _in_own_home(tmp_path: Path, populate: Callable[[Path, Path], T]) -> Iterator[T]:
    """``populate(home, tmp_path)`` on the embedded default in ``tmp_path/home``, legacy globals reset around it."""
    from tests.conftest import _reset

    home = tmp_path / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EXPSTREAM_HOME", str(home))
        for name in (
            "NEPTUNE_PROJECT",
            "EXPSTREAM_PROJECT",
            "NEPTUNE_BACKEND",
            "EXPSTREAM_KAFKA",
            "EXPSTREAM_CLICKHOUSE",
            "EXPSTREAM_S3",
        ):
            env.delenv(name, raising=False)
        env.chdir(tmp_path)
        _reset()
        try:
            yield populate(home, tmp_path)
        finally:
            _reset()


def _populate(home: Path, tmp_path: Path) -> Populated:
    (tmp_path / "train.py").write_text("print('training')\n")
    nested = "# a layer\nclass Net:  # é, ü\n    width = 64\n".encode()
    (tmp_path / NESTED_SOURCE).parent.mkdir(parents=True)
    (tmp_path / NESTED_SOURCE).write_bytes(nested)
    weights = np.random.default_rng(1).bytes(70_000)
    config = b'{"layers": 3}'
    expstream.init(PROJECT)
    one = expstream.create_experiment(
        name="baseline",
        description="first run",
        params={"lr": 0.01, "layers": 3, "optimizer": "adam"},
        properties={"dataset": "cifar"},
        tags=["resnet", "<b>bold</b>"],
        upload_source_files=["train.py", NESTED_SOURCE],
        send_hardware_metrics=True,
    )
    rng = np.random.default_rng(0)
    for step in range(300):
        one.log_metric("train/loss", float(2.0 * np.exp(-step / 80) + rng.normal(0, 0.01)))
    for epoch in range(10):
        one.log_metric("val/acc", epoch, 0.5 + epoch / 25)
        one.log_text("notes", f"epoch {epoch} <img src=x onerror=alert(1)>")
    one.log_metric(XSS, 1.0)
    one.log_metric(XSS, 2.0)
    images = []
    for step in range(3):
        picture = _png(step)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        images.append(buffer.getvalue())
        one.log_image("samples", step, picture, image_name=f"sample-{step}", description="input")
    one.log_artifact(io.BytesIO(weights), "model/weights.bin")
    one.log_artifact(io.BytesIO(config), "model/config.json")
    one.log_artifact(io.BytesIO(b"read me"), "README.txt")
    one.set_property("note", XSS)
    one.stop()
    two = expstream.create_experiment(
        name="wider",
        params={"lr": 0.02, "layers": 3, "optimizer": "adam"},
        tags=["resnet"],
        upload_source_files=[],
        send_hardware_metrics=False,
    )
    for step in range(150):
        two.log_metric("train/loss", float(1.5 * np.exp(-step / 60)))
    two.stop("Traceback (most recent call last):\n  ValueError: <diverged>")
    two.sync()
    one.sync()
    values = {
        "train/loss": one.get_numeric_channels_values("train/loss"),
        "val/acc": one.get_numeric_channels_values("val/acc"),
        "two/train/loss": two.get_numeric_channels_values("train/loss"),
        "hardware": one.get_hardware_utilization(),
    }
    ids = [one.id, two.id]
    return Populated(home, ids, weights, config, b"print('training')\n", images, values, nested)


@dataclass
class Scaled:
    """What :func:`_populate_scale` logged, for the tests to compare with."""

    home: Path
    short_id: str  # the experiment at scale
    broken_id: str  # an experiment whose one image is not an image
    channels: list[str]  # the numeric logs, 3 points each
    line: str  # the long text line, at x = LONG_X of log "long"
    image: bytes  # the big image (a PNG), at x = 0 of log "big"
    image_size: tuple[int, int]
    small_image: bytes  # a small PNG, at x = 1 of log "big"
    broken: bytes  # not an image, at x = 0 of log "broken" of broken_id


#: how many numeric logs the experiment at scale has, and the length of its long line
SCALE_CHANNELS = 5_000
LONG_CHARS = 1_000_000
LONG_X = 2.0
ODD_TEXT = "odd & name/ü?#=%"


def _populate_scale(home: Path, tmp_path: Path) -> Scaled:
    """acme/scale: SCA-1 with 5,000 numeric logs of 3 points each (``metric/0000`` .. ``metric/4999``, grouped
        by ``metric/``), a text log ``long`` whose line at x = 2 is 1,000,000 characters (and one named ODD_TEXT, which
    a URL must escape), an image log ``big``
        with a ~15 MB PNG (noise: it does not compress) at x = 0 and a small one at x = 1; SCA-2 with an image
        log ``broken`` whose one point is a text file (a path is logged as its raw bytes, unchecked, as legacy did).

        Logged through the legacy API in a loop, then synced: the cheapest way to the real shape."""
    expstream.init(SCALE_PROJECT)
    wide = expstream.create_experiment(name="wide", upload_source_files=[], send_hardware_metrics=False)
    channels = [f"metric/{i:04d}" for i in range(SCALE_CHANNELS)]
    for step in range(3):
        for i, name in enumerate(channels):
            wide.log_metric(name, step, float(i % 97) + step / 2)
    line = "".join(f"{i:07d} " for i in range(LONG_CHARS // 8))
    assert len(line) == LONG_CHARS
    wide.log_text("long", 0, "a short line")
    wide.log_text("long", 1, "another short line")
    wide.log_text("long", LONG_X, line)
    wide.log_text(ODD_TEXT, 0, "a log whose name a URL must escape")
    rng = np.random.default_rng(7)
    size = (2300, 2200)  # width, height: 15.2 MB of noise as PNG, under the 15 MiB image limit
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    big = tmp_path / "big.png"
    Image.fromarray(pixels).save(big, format="PNG", compress_level=1)
    image = big.read_bytes()
    small = tmp_path / "small.png"
    _png(3).save(small, format="PNG")
    wide.log_image("big", 0, str(big), image_name="big.png", description="2300 x 2200 noise")
    wide.log_image("big", 1, str(small), image_name="small.png")
    wide.stop()
    odd = expstream.create_experiment(name="broken", upload_source_files=[], send_hardware_metrics=False)
    text = tmp_path / "not-an-image.png"
    text.write_bytes(b"this is not a PNG\n")
    odd.log_image("broken", 0, str(text), image_name="not-an-image.png")
    odd.stop()
    odd.sync()
    wide.sync()
    return Scaled(home, wide.id, odd.id, channels, line, image, size, small.read_bytes(), text.read_bytes())


@pytest.fixture(scope="module")
def ui_browser(populated: Populated) -> Iterator[Any]:
    """The UI's :class:`~expstream.query.browse.Browser` over the populated home, caught up."""
    from expstream.ui.server import open_browser

    opened = open_browser(load_settings())
    yield opened.browser
    opened.close()


@pytest.fixture(scope="module")
def client(ui_browser: Any) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from expstream.ui.app import create_app

    with TestClient(create_app(ui_browser), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]


def start_server(home: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """``expstream ui --port 0`` as its own process; its URL read from the line it prints."""
    environment = dict(os.environ, EXPSTREAM_HOME=str(home), **(env or {}))
    process = subprocess.Popen(
        [sys.executable, "-m", "expstream", "ui", "--port", "0", *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=home.parent,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise AssertionError(f"the UI did not start: {line!r} {process.stderr.read() if process.stderr else ''}")
    url = line.split("at ", 1)[1].split("/", 3)
    return Server("/".join(url[:3]), process)


def stop_server(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise


@pytest.fixture
def ui_server(populated: Populated) -> Iterator[Server]:
    server = start_server(populated.home)
    yield server
    code = stop_server(server)
    assert code == 0, server.process.stderr.read() if server.process.stderr else code


def wait_until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


# --- a real browser -----------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
#: where a failing browser test leaves its screenshot (scripts/test prints nothing else about it)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "ui"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (no browser download); scripts/test installs it."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: scripts/test installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; a dialog (``alert``) fails the test; a screenshot is kept when the test fails."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.dialogs = dialogs
    tab.errors = errors
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in request.node.name)
        tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    context.close()
    assert not dialogs, f"a page opened a dialog: {dialogs}"
    assert not errors, f"page errors: {errors}"


@pytest.fixture(scope="module")
def module_server(populated: Populated) -> Iterator[Server]:
    server = start_server(populated.home)
    yield server
    assert stop_server(server) == 0
