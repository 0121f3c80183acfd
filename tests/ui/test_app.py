"""The UI's pages and JSON in-process (Starlette's test client over the real embedded store)."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest

from expstream.exceptions import ConfigurationError
from expstream.ui.auth import check_bind
from tests.ui.conftest import PROJECT, XSS, Populated

P = f"/p/{PROJECT}"


def test_projects_page_and_json(client: Any) -> None:
    data = client.get("/api/projects").json()
    assert data["projects"][0]["project"] == PROJECT and data["projects"][0]["experiments"] == 2
    page = client.get("/")
    assert page.status_code == 200 and f'href="/p/{PROJECT}"' in page.text


def test_leaderboard_columns_filters_sort_and_pages(client: Any, populated: Populated) -> None:
    board = client.get(f"{P}/api/leaderboard").json()
    assert [r["id"] for r in board["rows"]] == ["VIS-2", "VIS-1"]
    first = {r["id"]: r for r in board["rows"]}
    assert first["VIS-1"]["state"] == "succeeded" and first["VIS-2"]["state"] == "failed"
    assert first["VIS-1"]["parameter_lr"] == "0.01" and first["VIS-1"]["property_dataset"] == "cifar"
    last_loss = populated.values["train/loss"]["train/loss"].iloc[-1]
    assert float(first["VIS-1"]["channel_train/loss"]) == pytest.approx(last_loss)
    assert client.get(f"{P}/api/leaderboard?state=failed").json()["total"] == 1
    assert [r["id"] for r in client.get(f"{P}/api/leaderboard?tag=%3Cb%3Ebold%3C/b%3E").json()["rows"]] == ["VIS-1"]
    assert [r["id"] for r in client.get(f"{P}/api/leaderboard?q=WIDER").json()["rows"]] == ["VIS-2"]
    by_lr = client.get(f"{P}/api/leaderboard?sort=parameter_lr&order=asc").json()["rows"]
    assert [r["id"] for r in by_lr] == ["VIS-1", "VIS-2"]
    paged = client.get(f"{P}/api/leaderboard?limit=1&offset=1").json()
    assert paged["total"] == 2 and [r["id"] for r in paged["rows"]] == ["VIS-1"]
    page = client.get(f"{P}?state=succeeded")
    assert page.status_code == 200 and 'href="/p/acme/vision/e/VIS-1"' in page.text
    assert "<b>bold</b>" not in page.text and "&lt;b&gt;bold&lt;/b&gt;" in page.text


def test_experiment_page_and_details(client: Any) -> None:
    details = client.get(f"{P}/e/VIS-1/api").json()
    assert details["parameters"] == {"layers": 3.0, "lr": 0.01, "optimizer": "adam"}
    assert details["properties"]["note"] == XSS and details["state"] == "succeeded"
    assert "model/weights.bin" in details["artifacts"] and "train.py" in details["sources"]
    names = {(c["namespace"], c["name"]) for c in details["channels"]}
    assert {("user", "train/loss"), ("user", "val/acc"), ("user", XSS), ("user", "notes")} <= names
    page = client.get(f"{P}/e/VIS-1")
    assert page.status_code == 200
    assert XSS not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "train/" in page.text and "val/" in page.text  # grouped by prefix
    failed = client.get(f"{P}/e/VIS-2")
    assert "ValueError: &lt;diverged&gt;" in failed.text


def test_chart_json_equals_the_legacy_values(client: Any, populated: Populated) -> None:
    expected = populated.values["train/loss"]
    chart = client.get(f"{P}/api/chart", params={"ids": "VIS-1", "channel": "train/loss", "width": 1000}).json()
    series = chart["series"][0]
    assert series["points"] == len(expected)
    assert series["x"] == expected["x"].tolist() and series["y"] == expected["train/loss"].tolist()
    narrow = client.get(f"{P}/api/chart", params={"ids": "VIS-1", "channel": "train/loss", "width": 30}).json()
    s = narrow["series"][0]
    assert s["points"] == 300 and len(s["x"]) <= 4 * 30 and max(s["y"]) == expected["train/loss"].max()
    zoom = client.get(
        f"{P}/api/chart", params={"ids": "VIS-1", "channel": "train/loss", "x_from": 100, "x_to": 149, "width": 500}
    ).json()
    assert zoom["series"][0]["x"] == list(np.arange(100.0, 150.0))
    both = client.get(f"{P}/api/chart", params={"ids": "VIS-1,VIS-2", "channel": "train/loss"}).json()
    assert [s["points"] for s in both["series"]] == [300, 150]
    relative = client.get(f"{P}/api/chart", params={"ids": "VIS-1", "channel": "train/loss", "axis": "relative"})
    assert 0 <= relative.json()["series"][0]["x"][0] < 60


def test_text_log_tail_search_and_follow(client: Any) -> None:
    lines = client.get(f"{P}/e/VIS-1/api/text", params={"channel": "notes"}).json()["lines"]
    assert [line["x"] for line in lines] == list(range(10))
    assert lines[0]["text"] == "epoch 0 <img src=x onerror=alert(1)>"
    found = client.get(f"{P}/e/VIS-1/api/text", params={"channel": "notes", "q": "EPOCH 7"}).json()["lines"]
    assert [line["x"] for line in found] == [7]
    after = client.get(f"{P}/e/VIS-1/api/text", params={"channel": "notes", "after": 7}).json()["lines"]
    assert [line["x"] for line in after] == [8, 9]


def test_images_and_downloads_byte_for_byte(client: Any, populated: Populated) -> None:
    images = client.get(f"{P}/e/VIS-1/api/images", params={"channel": "samples"}).json()["images"]
    assert [i["name"] for i in images] == ["sample-0", "sample-1", "sample-2"]
    got = client.get(f"{P}/e/VIS-1/image", params={"channel": "samples", "x": 1})
    assert got.status_code == 200 and got.content == populated.image_png[1]
    assert client.get(f"{P}/e/VIS-1/artifacts/model/weights.bin").content == populated.weights
    assert client.get(f"{P}/e/VIS-1/sources/train.py").content == populated.source
    folder = zipfile.ZipFile(io.BytesIO(client.get(f"{P}/e/VIS-1/artifacts.zip?path=model").content))
    assert sorted(folder.namelist()) == ["config.json", "weights.bin"]
    assert folder.read("weights.bin") == populated.weights
    everything = zipfile.ZipFile(io.BytesIO(client.get(f"{P}/e/VIS-1/artifacts.zip").content))
    assert sorted(everything.namelist()) == ["README.txt", "model/config.json", "model/weights.bin"]


@pytest.mark.parametrize(
    "path",
    [
        f"{P}/e/VIS-1/artifacts/../../../etc/passwd",
        f"{P}/e/VIS-1/artifacts/%2e%2e/%2e%2e/etc/passwd",
        f"{P}/e/VIS-1/artifacts/%252e%252e/README.txt",
        f"{P}/e/VIS-1/artifacts//etc/passwd",
        f"{P}/e/VIS-1/artifacts/%2Fetc%2Fpasswd",
        f"{P}/e/VIS-1/artifacts/model/..%2F..%2Fsources/train.py",
        f"{P}/e/VIS-1/sources/..%5c..%5cetc/passwd",
        f"{P}/e/VIS-1/artifacts.zip?path=../model",
        f"{P}/e/VIS-1/artifacts.zip?path=/etc",
        f"{P}/e/VIS-1/secrets/x",
        f"{P}/e/VIS-2/artifacts/model/weights.bin",  # another experiment's file
    ],
)
def test_downloads_cannot_leave_the_experiment(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/p/acme/nothing",
        f"{P}/e/VIS-99",
        f"{P}/e/VIS-99/api",
        f"{P}/api/chart?ids=VIS-1&channel=nope",
        f"{P}/api/chart?ids=VIS-99&channel=train/loss",
        f"{P}/e/VIS-1/api/text?channel=nope",
        f"{P}/e/VIS-1/image?channel=samples&x=99",
        f"{P}/compare?ids=VIS-1,VIS-99",
        "/no/such/page",
    ],
)
def test_unknown_things_are_404_pages(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and "Traceback" not in response.text
    if "/api/" in path:
        assert response.json()["status"] == 404


def test_bad_arguments_are_400(client: Any) -> None:
    for query in (
        "channel=train/loss&width=abc",
        "channel=notes",
        "channel=train/loss&axis=sideways",
        "channel=train/loss&x_from=nan",
    ):
        response = client.get(f"{P}/api/chart?ids=VIS-1&{query}")
        assert response.status_code == 400, query


def test_compare_lists_differing_parameters(client: Any) -> None:
    data = client.get(f"{P}/api/compare?ids=VIS-1,VIS-2").json()
    differs = {row["name"]: row for row in data["parameters"]}
    assert differs["lr"]["differs"] and differs["lr"]["values"] == [0.01, 0.02]
    assert not differs["layers"]["differs"]
    assert "train/loss" in data["channels"]
    assert client.get(f"{P}/compare?ids=VIS-1,VIS-2").status_code == 200


def test_status_for_live_pages(client: Any) -> None:
    status = client.get(f"{P}/e/VIS-1/api/status").json()
    assert status["state"] == "succeeded" and status["events"] > 0
    details = client.get(f"{P}/e/VIS-1/api").json()
    assert status["channels"] == len(details["channels"])  # one generation each: no reset_log


def test_status_long_poll_answers_on_a_change_or_after_the_wait(client: Any) -> None:
    """The live page's long poll (the browser test times the whole path)."""
    now = client.get(f"{P}/e/VIS-1/api/status").json()
    same = f"{P}/e/VIS-1/api/status?events={now['events']}&state={now['state']}&wait=0.6"
    started = time.monotonic()
    assert client.get(same).json() == now  # nothing changes: it waits (re-checking), then answers
    assert 0.5 <= time.monotonic() - started < 5
    started = time.monotonic()
    behind = client.get(f"{P}/e/VIS-1/api/status?events={now['events'] - 1}&wait=2").json()
    assert behind == now and time.monotonic() - started < 1.5  # the page is behind: at once
    moved = client.get(f"{P}/e/VIS-1/api/status?events={now['events']}&state=running&wait=2").json()
    assert moved["state"] == "succeeded"


def test_token_is_required_beyond_loopback_and_checked(ui_browser: Any) -> None:
    from starlette.testclient import TestClient

    from expstream.ui.app import create_app

    with pytest.raises(ConfigurationError, match="EXPSTREAM_UI_TOKEN"):
        check_bind("0.0.0.0", None)
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "s3cret")
    with TestClient(create_app(ui_browser, token="s3cret; x")) as guarded:
        assert guarded.get("/api/projects").status_code == 401
        assert guarded.get("/api/projects?token=wrong").status_code == 401
        assert guarded.get("/api/projects", headers={"Authorization": "Bearer s3cret; x"}).status_code == 200
        assert guarded.get("/?token=" + quote("s3cret; x")).status_code == 200  # sets the cookie
        assert guarded.get("/api/projects").status_code == 200  # the cookie carries on
        assert "s3cret" not in str(guarded.cookies.get("expstream_ui_token"))


def test_many_charts_in_one_request(client: Any, populated: Populated) -> None:
    """A page asks for every chart in view at once: each answer equals the chart asked alone, and a channel that
    cannot be drawn holds its error in its place while the others are drawn."""
    asked = ["train/loss", "nope", "val/acc", "notes"]
    many = client.get(f"{P}/api/charts", params={"ids": "VIS-1", "channel": asked, "width": 500}).json()["charts"]
    assert len(many) == 4
    for channel, index in (("train/loss", 0), ("val/acc", 2)):
        alone = client.get(f"{P}/api/chart", params={"ids": "VIS-1", "channel": channel, "width": 500}).json()
        assert many[index] == alone
    assert many[0]["series"][0]["y"] == populated.values["train/loss"]["train/loss"].tolist()
    assert many[1]["status"] == 404 and "nope" in many[1]["error"]
    assert many[3]["status"] == 400 and "numeric" in many[3]["error"]
    both = client.get(f"{P}/api/charts", params={"ids": "VIS-1,VIS-2", "channel": ["train/loss"]}).json()
    assert [s["points"] for s in both["charts"][0]["series"]] == [300, 150]
    assert client.get(f"{P}/api/charts?ids=VIS-1").status_code == 400  # no channel
    too_many = "&".join(f"channel=c{i}" for i in range(51))
    assert client.get(f"{P}/api/charts?ids=VIS-1&{too_many}").status_code == 400
    assert client.get(f"{P}/api/charts?ids=VIS-99&channel=train/loss").status_code == 404
    assert client.get(f"{P}/api/charts?ids=VIS-1&channel=train/loss&width=abc").status_code == 400
