"""The chart envelope on chdb and on the shared ClickHouse 18.16: outliers kept, counts add up, work bounded."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest

from expstream.consumers.sinks.base import TableStore
from expstream.exceptions import InvalidChannelValue
from expstream.query import charts
from expstream.query.browse import _polyline

N = 200_000
OUTLIER_AT = 123_457


@pytest.fixture(params=["chdb", "clickhouse"])
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TableStore]:
    if request.param == "chdb":
        from expstream.consumers.sinks.chdb import ChdbTables

        store: TableStore = ChdbTables(tmp_path / "chdb")
        store.ensure_schema()
        with store.hold():
            yield store
        store.close()
        return
    services: dict[str, Any] = request.getfixturevalue("services")
    from expstream.consumers.sinks.clickhouse import ClickHouseTables

    url = urlunsplit(
        urlsplit(services["env"]["EXPSTREAM_CLICKHOUSE"])._replace(path=f"/ui_charts_{secrets.token_hex(5)}")
    )
    store = ClickHouseTables.from_url(url, ca=services["env"].get("EXPSTREAM_CLICKHOUSE_CA"))
    store.ensure_schema()
    try:
        yield store
    finally:
        store.query_df(f"DROP DATABASE IF EXISTS {urlsplit(url).path.strip('/')}")
        store.close()


def _insert(tables: TableStore, xs: np.ndarray, ys: np.ndarray, channel: str = "loss", generation: int = 0) -> None:
    n = len(xs)
    tables.insert(
        "points_numeric",
        {
            "experiment_id": ["e1"] * n,
            "namespace": ["user"] * n,
            "channel": [channel] * n,
            "generation": np.full(n, generation, dtype=np.uint32),
            "x": xs.astype("float64"),
            "y": ys.astype("float64"),
            "ts": 1_700_000_000.0 + xs.astype("float64") / 1000,
            "session_id": ["s"] * n,
        },
    )


def test_outlier_is_kept_and_counts_sum_to_n(tables: TableStore) -> None:
    rng = np.random.default_rng(3)
    xs = np.arange(N, dtype="float64")
    ys = rng.normal(0.0, 1.0, N)
    ys[OUTLIER_AT] = 1e6
    ys[OUTLIER_AT + 1] = -1e6
    _insert(tables, xs, ys)
    _insert(tables, xs[:10], ys[:10] + 5, channel="other")  # another channel: not counted

    df = charts.envelope(tables, "e1", "user", "loss", 0, x_from=0, x_to=N - 1, width=700)

    assert len(df) == 700
    assert int(df["count"].sum()) == N
    assert df["y_max"].max() == 1e6 and df["y_min"].min() == -1e6
    spike = df[df["y_max"] == 1e6].iloc[0]
    assert spike["x_at_max"] == OUTLIER_AT
    assert df["y_first"].iloc[0] == ys[0] and df["y_last"].iloc[-1] == ys[-1]
    assert df["x_first"].iloc[0] == 0 and df["x_last"].iloc[-1] == N - 1
    # every bucket's extremes are the extremes of its points
    edges = np.floor(xs * (700 / (N - 1))).clip(max=699).astype(int)
    assert np.array_equal(df["y_max"].to_numpy(), np.maximum.reduceat(ys, np.searchsorted(edges, np.arange(700))))


def test_a_zoomed_range_reads_only_that_range(tables: TableStore) -> None:
    xs = np.arange(10_000, dtype="float64")
    _insert(tables, xs, xs * 2)
    df = charts.envelope(tables, "e1", "user", "loss", 0, x_from=1000, x_to=1999, width=100)
    assert int(df["count"].sum()) == 1000
    assert df["x_first"].min() == 1000 and df["x_last"].max() == 1999
    assert len(df) == 100 and (df["count"] == 10).all()


def test_small_channel_polyline_is_every_point(tables: TableStore) -> None:
    xs = np.array([0, 1, 2, 5, 8, 13, 21, 34], dtype="float64")
    ys = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    _insert(tables, xs, ys)
    span = charts.span(tables, "e1", "user", "loss", 0)
    assert (span.count, span.x_min, span.x_max) == (8, 0.0, 34.0)
    px, py = _polyline(charts.envelope(tables, "e1", "user", "loss", 0, x_from=0, x_to=34, width=1000))
    assert px.tolist() == xs.tolist() and py.tolist() == ys.tolist()


def test_time_axis_buckets_by_timestamp(tables: TableStore) -> None:
    xs = np.arange(1000, dtype="float64")
    _insert(tables, xs, xs)
    t0 = 1_700_000_000.0
    df = charts.envelope(tables, "e1", "user", "loss", 0, x_from=t0, x_to=t0 + 0.999, width=10, axis="time")
    assert int(df["count"].sum()) == 1000
    assert df["x_first"].iloc[0] == pytest.approx(t0)


def test_bad_requests_are_refused(tables: TableStore) -> None:
    for kwargs in ({"width": 0}, {"width": charts.MAX_WIDTH + 1}, {"axis": "x; DROP TABLE experiments"}):
        args: dict[str, Any] = {"x_from": 0.0, "x_to": 1.0, "width": 10, "axis": "step"} | kwargs
        with pytest.raises(InvalidChannelValue):
            charts.envelope(tables, "e1", "user", "loss", 0, **args)
    with pytest.raises(InvalidChannelValue):
        charts.envelope(tables, "e1", "user", "loss", 0, x_from=2.0, x_to=1.0, width=10)
    assert charts.span(tables, "e1", "user", "missing", 0).count == 0
