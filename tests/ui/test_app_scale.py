"""The UI's whole-line and thumbnail URLs in-process (Starlette's test client over the real embedded store),
on the experiment at scale of :func:`tests.ui.conftest._populate_scale`.

A module of its own because one process opens one embedded folder at a time: test_app.py's client holds
acme/vision's for its whole module."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from expstream.config import load_settings
from expstream.ui.thumbnails import SIZE
from tests.ui.conftest import LONG_X, ODD_TEXT, SCALE_PROJECT, Scaled

P = f"/p/{SCALE_PROJECT}"


@pytest.fixture(scope="module")
def client(scaled: Scaled) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from expstream.ui.app import create_app
    from expstream.ui.server import open_browser

    opened = open_browser(load_settings())  # EXPSTREAM_HOME is the scaled home while the fixture lives
    with TestClient(create_app(opened.browser), raise_server_exceptions=False) as test_client:
        yield test_client
    opened.close()


def _line(client: Any, short_id: str, **params: Any) -> Any:
    return client.get(f"{P}/e/{short_id}/text/line", params=params)


def test_the_list_cuts_a_long_line_and_text_line_returns_it_whole(client: Any, scaled: Scaled) -> None:
    lines = client.get(f"{P}/e/{scaled.short_id}/api/text", params={"channel": "long"}).json()["lines"]
    long = next(line for line in lines if line["x"] == LONG_X)
    assert long["length"] == len(scaled.line) == 1_000_000
    assert len(long["text"]) < len(scaled.line) and scaled.line.startswith(long["text"])
    whole = _line(client, scaled.short_id, channel="long", x=LONG_X)
    assert whole.status_code == 200 and whole.headers["content-type"] == "text/plain; charset=utf-8"
    assert whole.text == scaled.line
    short = _line(client, scaled.short_id, channel="long", namespace="user", x="1")
    assert short.status_code == 200 and short.text == "another short line"
    odd = _line(client, scaled.short_id, channel=ODD_TEXT, x="0")  # the name escaped in the query
    assert odd.status_code == 200 and odd.text == "a log whose name a URL must escape"


@pytest.mark.parametrize(
    "params",
    [
        {"channel": "nope", "x": "2"},  # no such log
        {"channel": "long%2F", "x": "2"},  # escaped twice: a name no log has
        {"channel": "", "x": "2"},
        {"channel": "long", "x": "3"},  # no line at this x
        {"channel": "long", "x": "2", "namespace": "system"},
        {"channel": "long", "x": "2", "namespace": "../user"},
        {"channel": "long"},  # no x at all
    ],
)
def test_text_line_of_an_unknown_log_or_x_is_a_404_page(client: Any, scaled: Scaled, params: dict[str, str]) -> None:
    response = _line(client, scaled.short_id, **params)
    assert response.status_code == 404 and "Traceback" not in response.text
    assert "<h1>404</h1>" in response.text.replace(" ", "")


def test_text_line_of_an_unknown_experiment_is_a_404_page(client: Any) -> None:
    response = _line(client, "SCA-99", channel="long", x="2")
    assert response.status_code == 404 and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"channel": "long", "x": "two"}, 400),
        ({"channel": "long", "x": "nan"}, 400),
        ({"channel": "long", "x": "inf"}, 400),
        ({"channel": "metric/0001", "x": "0"}, 400),  # a numeric log, not a text one
        ({"channel": "big", "x": "0"}, 400),  # an image log
    ],
)
def test_text_line_with_bad_arguments_is_a_clear_4xx(
    client: Any, scaled: Scaled, params: dict[str, str], status: int
) -> None:
    response = _line(client, scaled.short_id, **params)
    assert response.status_code == status and "Traceback" not in response.text
    assert "Expected:" in response.text  # says what it wanted


def test_a_thumbnail_of_a_big_image_is_a_small_png(client: Any, scaled: Scaled) -> None:
    url = f"{P}/e/{scaled.short_id}/image"
    full = client.get(url, params={"channel": "big", "x": 0})
    assert full.status_code == 200 and full.content == scaled.image and len(full.content) > 15_000_000
    thumb = client.get(url, params={"channel": "big", "x": 0, "thumb": 1})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(thumb.content))
    assert picture.format == "PNG" and max(picture.size) == SIZE
    width, height = scaled.image_size
    assert picture.size == (SIZE, round(SIZE * height / width))  # the same shape, smaller
    assert len(thumb.content) < len(scaled.image) / 10
    again = client.get(url, params={"channel": "big", "x": 0, "thumb": 1})
    assert again.content == thumb.content  # from the cache: the same bytes
    assert client.get(url, params={"channel": "big", "x": 0, "thumb": 0}).content == scaled.image


def test_a_thumbnail_of_a_small_image_is_the_image_byte_for_byte(client: Any, scaled: Scaled) -> None:
    thumb = client.get(f"{P}/e/{scaled.short_id}/image", params={"channel": "big", "x": 1, "thumb": 1})
    assert thumb.status_code == 200 and thumb.content == scaled.small_image


def test_a_thumbnail_of_what_is_not_an_image_is_a_clear_error(client: Any, scaled: Scaled) -> None:
    url = f"{P}/e/{scaled.broken_id}/image"
    thumb = client.get(url, params={"channel": "broken", "x": 0, "thumb": 1})
    assert thumb.status_code == 422 and "Traceback" not in thumb.text
    assert "not an image the UI can read" in thumb.text and "without thumb=1" in thumb.text
    full = client.get(url, params={"channel": "broken", "x": 0})
    assert full.status_code == 200 and full.content == scaled.broken  # still there, as logged
    for bad in ("2", "yes", "true"):
        response = client.get(url, params={"channel": "broken", "x": 0, "thumb": bad})
        assert response.status_code == 400 and "thumb=1" in response.text
    missing = client.get(f"{P}/e/{scaled.short_id}/image", params={"channel": "big", "x": 5, "thumb": 1})
    assert missing.status_code == 404


def test_the_experiment_page_offers_a_chart_filter_at_scale(client: Any, scaled: Scaled) -> None:
    page = client.get(f"{P}/e/{scaled.short_id}")
    assert page.status_code == 200
    assert 'id="chart-filter"' in page.text and "Filter 5000 charts" in page.text
    assert page.text.count('class="chart-card"') == len(scaled.channels)
    assert 'id="chart-filter"' not in client.get(f"{P}/e/{scaled.broken_id}").text  # no numeric logs at all
