"""Time-axis chart rollups (``points_rollup_time``) against the raw points, on every table store.

Logs with irregular timestamps (out of order and tied within batches, two outliers), a log spread over three
months, a reset log, and a second experiment created later go through the Runner twice (two consumer groups: every
batch delivered twice). One log was half written by a consumer from before the time rollups (points and step
rollups only) and one by a consumer from before any rollup: those must still draw right, from their points. For
many ranges and widths, each bucket's count, first, last, smallest and largest point must equal what the raw
points in that bucket's time interval give (first / last by (ts, y), at-min / at-max the smallest ts), in numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from expstream.consumers.runner import Runner
from expstream.consumers.sinks.base import TableStore
from expstream.consumers.sources.memory import MemorySource
from expstream.eventlog.memory import MemoryLog
from expstream.exceptions import ChannelDoesNotExist
from expstream.producer.transports.memory import MemoryTransport
from expstream.query import charts
from expstream.query.browse import Browser, Chart, _polyline
from expstream.query.reader import Reader
from expstream.wiring import TABLE_STORES, create_object_store, create_table_store
from tests.contract.rollup_cuts import edges_of, raw_points, whole_edges
from tests.contract.test_reader import T0, Producer

E1, E2 = "0b0b0b0b-0000-4000-8000-0000000000b1", "0b0b0b0b-0000-4000-8000-0000000000b2"
PROJECT = "acme/timecharts"
CREATED = {E1: T0 + 1.0, E2: T0 + 5001.0}  # the header time of each ExperimentCreated (Producer: +1 s an event)
SHORT = {E1: "TIM-1", E2: "TIM-2"}
N = 200_000


def _series(channel: str, xs: np.ndarray, ys: np.ndarray, ts: np.ndarray, generation: int = 0) -> dict[str, Any]:
    return {"channel": channel, "namespace": "user", "generation": generation, "xs": xs.tolist(), "ys": ys.tolist(),
            "ts": ts.tolist()}  # fmt: skip


def _created(p: Producer, number: int) -> None:
    p.event("ExperimentCreated", project=PROJECT, short_id=f"TIM-{number}", number=number, name="t", description="",
            owner="o", hostname="h", params=[], properties={}, tags=[], system={})  # fmt: skip


def _log(p: Producer, channel: str, ts: np.ndarray, ys: np.ndarray, batch: int, generation: int = 0) -> None:
    for start in range(0, len(ts), batch):
        end = min(len(ts), start + batch)
        xs = np.arange(start, end, dtype="float64")
        p.event("NumericPoints", series=[_series(channel, xs, ys[start:end], ts[start:end], generation)])


def _events() -> tuple[list[Any], list[Any], list[Any]]:
    """(events for today's consumer, for one from before the time rollups, for one from before any rollup)."""
    rng = np.random.default_rng(7)
    p = Producer(E1)
    _created(p, 1)
    ts = CREATED[E1] + 7.3 + np.cumsum(rng.exponential(0.01, N))  # ~2,000 s, irregular
    ts[5000:5010] = ts[5000]  # ten points at one timestamp
    for start in (21_000, 140_000):  # out of time order within a batch (x still increases)
        picked = np.arange(start, start + 300)
        ts[picked] = ts[rng.permutation(picked)]
    ys = rng.normal(0, 1, N)
    ys[N // 3] = 1e9
    ys[2 * N // 3 + 5] = -1e9
    ys[100:110] = 7.5  # ties at a maximum
    _log(p, "big", ts, ys, 7000)
    slow = CREATED[E1] + np.sort(rng.uniform(0.0, 90 * 86400.0, 20_000))  # three months
    slow[slow > CREATED[E1] + 40 * 86400] += 86400.0 * 3  # and a gap of three days
    _log(p, "slow", slow, rng.normal(0, 1, len(slow)), 3000)
    _log(p, "reset", CREATED[E1] + np.linspace(0.0, 50.0, 5000), np.full(5000, 3.0), 5000)
    p.event("ChannelReset", channel="reset", namespace="user", type="numeric", generation=1)
    _log(p, "reset", CREATED[E1] + 60 + np.linspace(0.0, 300.0, 3000), rng.normal(0, 1, 3000), 1000, generation=1)
    today = list(p.sent)
    p.sent.clear()
    upgraded_ts = CREATED[E1] + np.sort(rng.uniform(0.0, 600.0, 30_000))
    upgraded_ys = rng.normal(0, 1, 30_000)
    upgraded_ys[1234] = 5e8
    _log(p, "upgraded", upgraded_ts[:20_000], upgraded_ys[:20_000], 5000)
    before_time = list(p.sent)
    p.sent.clear()
    _log(p, "ancient", CREATED[E1] + np.sort(rng.uniform(0.0, 100.0, 10_000)), rng.normal(0, 1, 10_000), 5000)
    before_any = list(p.sent)
    p.sent.clear()
    for start in range(20_000, 30_000, 5000):  # the rest of "upgraded", logged after the upgrade
        xs = np.arange(start, start + 5000, dtype="float64")
        series = _series("upgraded", xs, upgraded_ys[start : start + 5000], upgraded_ts[start : start + 5000])
        p.event("NumericPoints", series=[series])
    today += p.sent
    q = Producer(E2, ts=T0 + 5000.0)
    _created(q, 2)
    ys2 = rng.normal(0, 1, 50_000)
    ys2[777] = 5e8
    _log(q, "big", CREATED[E2] + 3.0 + np.cumsum(rng.exponential(0.03, 50_000)), ys2, 10_000)
    return today + q.sent, before_time, before_any


class _Without:
    """A table store whose inserts into ``tables`` vanish: what a consumer from before those tables wrote."""

    def __init__(self, store: TableStore, tables: set[str]) -> None:
        self._store, self._tables = store, tables

    def insert(self, table: str, columns: Any) -> None:
        if table not in self._tables:
            self._store.insert(table, columns)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _deliver(events: list[Any], store: Any, objects: Any, groups: tuple[str, ...]) -> None:
    log = MemoryLog(partitions=2)
    for topic, key, message in events:
        MemoryTransport(log).send(topic, key, [message])
    for group in groups:
        Runner(MemorySource(log, group=group), store, objects, group=group, max_records=5).catch_up()


@pytest.fixture(scope="module", params=TABLE_STORES)
def tables(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TableStore]:
    kind = request.param
    if kind == "chdb":
        folder: Path = tmp_path_factory.mktemp("time_rollups")
        store = create_table_store(kind, folder=folder / "chdb")
        objects = create_object_store("localfs", root=folder / "objects")
    else:
        store = create_table_store(kind, url=request.getfixturevalue("new_clickhouse_url")())
        s3_url, ca = request.getfixturevalue("new_s3_url")(), request.getfixturevalue("s3_ca")
        objects = create_object_store("s3", url=s3_url, ca=ca)
    store.ensure_schema()
    today, before_time, before_any = _events()
    _deliver(before_any, _Without(store, {"points_rollup", "points_rollup_time"}), objects, ("ancient",))
    _deliver(before_time, _Without(store, {"points_rollup_time"}), objects, ("older",))
    _deliver(today, store, objects, ("materializer", "replay"))  # every batch twice
    with store.hold():
        yield store
    store.close()
    objects.close()


def raw(tables: TableStore, channel: str, generation: int = 0, experiment: str = E1) -> pd.DataFrame:
    return raw_points(tables, experiment, channel, generation)


def reference(points: pd.DataFrame, edges: list[float], t_to: float) -> pd.DataFrame:
    t, y = points["ts"].to_numpy(), points["y"].to_numpy()
    keep = (t >= edges[0]) & (t <= t_to)
    t, y = t[keep], y[keep]
    rows = []
    for lo, hi in itertools.pairwise(edges):
        inside = (t >= lo) & (t < hi)
        if not inside.any():
            continue
        bt, by = t[inside], y[inside]
        first, last = bt.min(), bt.max()
        rows.append({"count": len(bt), "x_first": first, "y_first": by[bt == first].min(), "x_last": last,
                     "y_last": by[bt == last].max(), "y_min": by.min(), "x_at_min": bt[by == by.min()].min(),
                     "y_max": by.max(), "x_at_max": bt[by == by.max()].min()})  # fmt: skip
    return pd.DataFrame(rows)


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    columns = list(want.columns)
    assert got[columns].astype("float64").to_dict("records") == want.astype("float64").to_dict("records")


def polyline(df: pd.DataFrame, origin: float = 0.0) -> tuple[list[float], list[float]]:
    xs, ys = _polyline(df)
    return (xs - origin).tolist(), ys.tolist()


def browser(tables: TableStore) -> Browser:
    return Browser(Reader(tables, create_object_store("memory")))


def test_the_time_rollups_cover_the_logs_written_with_them(tables: TableStore) -> None:
    generations = {"big": 0, "slow": 0, "reset": 1, "upgraded": 0, "ancient": 0}
    got = charts.rolled_x_ranges(tables, E1, "user", generations, axis="time")
    want = {c: (raw(tables, c, g)["ts"].min(), raw(tables, c, g)["ts"].max()) for c, g in generations.items()}
    assert got == {c: want[c] for c in ("big", "slow", "reset")}  # half of "upgraded" predates them
    assert charts.rolled_x_range(tables, E1, "user", "upgraded", 0, axis="time") is None
    assert charts.rolled_x_range(tables, E1, "user", "upgraded", 0) == (0.0, 29_999.0)  # step rollups: all of it
    assert charts.rolled_x_range(tables, E1, "user", "ancient", 0) is None
    assert charts.rolled_x_range(tables, E2, "user", "big", 0, axis="time") == tuple(
        raw(tables, "big", 0, E2)["ts"].agg(["min", "max"])
    )


# (channel, generation, start, end as offsets from the log's first timestamp (None: its last), width)
RANGES = [
    ("big", 0, 0.0, None, 1000),  # the whole log
    ("big", 0, 0.0, None, 333),
    ("big", 0, 100.3, 900.7, 1000),
    ("big", 0, 500.01, 540.2, 500),  # 0.08 s a pixel: the finest level
    ("big", 0, -50.0, 2500.0, 700),  # beyond both ends
    ("slow", 0, 0.0, None, 1000),
    ("slow", 0, 30 * 86400.0 + 0.5, 50 * 86400.0, 800),  # across the gap
    ("reset", 1, 0.0, None, 100),
]


@pytest.mark.parametrize(("channel", "generation", "start", "end", "width"), RANGES)
def test_rolled_time_envelope_equals_the_raw_points(
    tables: TableStore, channel: str, generation: int, start: float, end: float | None, width: int
) -> None:
    points = raw(tables, channel, generation)
    first, last = points["ts"].min(), points["ts"].max()
    lo, hi = first + start, (last if end is None else first + end)
    edges = edges_of(lo, hi, width, axis="time")
    assert edges is not None
    got = charts.rolled_envelope(tables, E1, "user", channel, generation, x_from=lo, x_to=hi, width=width, axis="time")
    assert got is not None
    assert len(got) <= 2 * width + 2  # bounded by the width, not by the points
    same(got, reference(points, edges, hi))


def test_the_whole_log_shows_both_outliers_and_counts_each_point_once(tables: TableStore) -> None:
    for axis in ("time", "relative"):
        chart = browser(tables).chart(PROJECT, ["TIM-1"], "big", axis=axis, width=1000)
        (series,) = chart.series
        assert series.points == N  # every batch was delivered twice
        assert max(series.y) == 1e9 and min(series.y) == -1e9
        assert series.buckets <= 2 * 1000 + 2
    points = raw(tables, "big")
    assert (chart.x_from, chart.x_to) == (points["ts"].min() - CREATED[E1], points["ts"].max() - CREATED[E1])


def test_zoomed_in_below_the_finest_level_reads_the_points(tables: TableStore) -> None:
    """Under 1/16 s a pixel: the points, found by the x range of the finest level's rows (a few granules)."""
    points = raw(tables, "big")
    for lo, hi in ((points["ts"].min() + 300.0, points["ts"].min() + 320.0), (CREATED[E1] - 30.0, CREATED[E1] - 10.0)):
        got = charts.rolled_envelope(tables, E1, "user", "big", 0, x_from=lo, x_to=hi, width=1000, axis="time")
        want = charts.envelope(tables, E1, "user", "big", 0, x_from=lo, x_to=hi, width=1000, axis="time", final=True)
        assert got is not None and got.to_dict("records") == want.to_dict("records")
        inside = points[(points["ts"] >= lo) & (points["ts"] <= hi)]
        assert int(got["count"].sum()) == len(inside)  # twins collapsed
        chart = browser(tables).chart(PROJECT, ["TIM-1"], "big", axis="time", x_from=lo, x_to=hi, width=1000)
        assert (chart.series[0].x, chart.series[0].y) == polyline(got)
    assert len(inside) == 0  # the second range is before the log


@pytest.mark.parametrize("width", [1000, 333, 100])
@pytest.mark.parametrize("wider", [0.0, 1000.0])  # a chart of several experiments: a range wider than the log
def test_many_whole_logs_in_one_query_equal_the_raw_points(tables: TableStore, width: int, wider: float) -> None:
    generations = {"big": 0, "slow": 0, "reset": 1}
    spans = charts.rolled_x_ranges(tables, E1, "user", generations, axis="time")
    asked = {c: (g, spans[c][0] - wider, spans[c][1] + wider) for c, g in generations.items()}
    got = charts.rolled_wholes(tables, E1, "user", asked, width=width, axis="time")
    for channel, (generation, lo, hi) in asked.items():
        edges = whole_edges(lo, hi, width, axis="time")
        assert edges is not None
        assert len(got[channel]) <= 2 * width + 2
        same(got[channel], reference(raw(tables, channel, generation), edges, hi))
        assert list(got[channel]["bucket"]) == list(range(len(got[channel])))


def test_the_relative_axis_is_the_time_axis_shifted_by_the_creation(tables: TableStore) -> None:
    b = browser(tables)
    absolute = b.chart(PROJECT, ["TIM-1"], "big", axis="time", width=800)
    relative = b.chart(PROJECT, ["TIM-1"], "big", axis="relative", width=800)
    (a,), (r,) = absolute.series, relative.series
    assert r.x == [x - CREATED[E1] for x in a.x] and r.y == a.y and r.points == a.points == N
    # zoomed: the rollups in the middle, the points at the two partial ends
    x_from, x_to = 150.25, 1234.5
    zoomed = b.chart(PROJECT, ["TIM-1"], "big", axis="relative", x_from=x_from, x_to=x_to, width=600)
    lo, hi = x_from + CREATED[E1], x_to + CREATED[E1]
    edges = edges_of(lo, hi, 600, axis="time")
    assert edges is not None
    want = reference(raw(tables, "big"), edges, hi)
    assert (zoomed.series[0].x, zoomed.series[0].y) == polyline(want, CREATED[E1])
    assert zoomed.series[0].points == int(want["count"].sum())


def test_logs_stored_before_the_time_rollups_draw_from_their_points(tables: TableStore) -> None:
    b = browser(tables)
    for channel in ("upgraded", "ancient"):
        points = raw(tables, channel)
        lo, hi = points["ts"].min(), points["ts"].max()
        want = charts.envelope(tables, E1, "user", channel, 0, x_from=lo, x_to=hi, width=700, axis="time")
        for axis, origin in (("time", 0.0), ("relative", CREATED[E1])):
            chart = b.chart(PROJECT, ["TIM-1"], channel, axis=axis, width=700)
            assert (chart.x_from, chart.x_to) == (lo - origin, hi - origin)
            assert (chart.series[0].x, chart.series[0].y) == polyline(want, origin)
            assert len(points) <= chart.series[0].points <= 2 * len(points)  # twins count until merged
    assert max(b.chart(PROJECT, ["TIM-1"], "upgraded", axis="time").series[0].y) == 5e8


@pytest.mark.parametrize("axis", ["time", "relative"])
def test_a_page_of_time_charts_equals_each_chart_alone_and_the_points(tables: TableStore, axis: str) -> None:
    b = browser(tables)
    asked = ["big", "nope", "slow", "reset", "upgraded", "ancient"]
    many = b.charts(PROJECT, ["TIM-1"], asked, axis=axis, width=700)
    assert isinstance(many[1], ChannelDoesNotExist)
    origin = CREATED[E1] if axis == "relative" else 0.0
    for channel, chart in zip(asked, many, strict=True):
        if channel == "nope":
            continue
        assert isinstance(chart, Chart) and chart.axis == axis
        assert chart == b.chart(PROJECT, ["TIM-1"], channel, axis=axis, width=700)
        if channel in ("upgraded", "ancient"):
            continue  # from the points: the test above
        generation = 1 if channel == "reset" else 0
        points = raw(tables, channel, generation)
        lo, hi = points["ts"].min(), points["ts"].max()
        assert (chart.x_from, chart.x_to) == (lo - origin, hi - origin)
        edges = whole_edges(lo, hi, 700, axis="time")
        assert edges is not None
        assert (chart.series[0].x, chart.series[0].y) == polyline(reference(points, edges, hi), origin)
        assert chart.series[0].points == len(points)


def test_the_page_reads_a_few_queries_per_experiment_whatever_its_charts(tables: TableStore) -> None:
    b = browser(tables)
    b.resolve(PROJECT, "TIM-1")
    b.resolve(PROJECT, "TIM-2")
    counted = []
    query_df = tables.query_df

    def counting(sql: str, params: Any = None, **kw: Any) -> pd.DataFrame:
        counted.append(sql)
        return query_df(sql, params, **kw)

    tables.query_df = counting  # type: ignore[method-assign]
    try:
        for axis in ("time", "relative"):
            for channels in (["big"], ["big", "slow", "reset"]):
                counted.clear()
                b.charts(PROJECT, ["TIM-1", "TIM-2"], channels, axis=axis, width=500)
                assert len(counted) == 2 * (4 if axis == "time" else 5), (axis, channels, counted)
    finally:
        del tables.query_df


def test_two_experiments_on_the_relative_axis(tables: TableStore) -> None:
    b = browser(tables)
    chart = b.chart(PROJECT, ["TIM-1", "TIM-2"], "big", axis="relative", width=900)
    assert chart == b.charts(PROJECT, ["TIM-1", "TIM-2"], ["big"], axis="relative", width=900)[0]
    starts = {e: raw(tables, "big", 0, e)["ts"].agg(["min", "max"]) - CREATED[e] for e in (E1, E2)}
    assert chart.x_from == min(s["min"] for s in starts.values()) and chart.x_to == max(
        s["max"] for s in starts.values()
    )
    for series, e, spike in zip(chart.series, (E1, E2), (1e9, 5e8), strict=True):
        assert series.experiment == SHORT[e] and series.points == len(raw(tables, "big", 0, e))
        assert max(series.y) == spike and series.buckets <= 2 * 900 + 2
        assert chart.x_from <= min(series.x) and max(series.x) <= chart.x_to


@pytest.mark.parametrize("kind", TABLE_STORES)
def test_a_replay_writes_the_time_rollups_of_older_logs(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A store from before the time rollups draws its logs from their points; ``expstream replay`` (the whole log
    again, through today's consumer) writes their rows, and from then on the chart reads those."""
    if kind == "chdb":
        store = create_table_store(kind, folder=tmp_path / "chdb")
        objects = create_object_store("localfs", root=tmp_path / "objects")
    else:
        store = create_table_store(kind, url=request.getfixturevalue("new_clickhouse_url")())
        s3_url, ca = request.getfixturevalue("new_s3_url")(), request.getfixturevalue("s3_ca")
        objects = create_object_store("s3", url=s3_url, ca=ca)
    rng = np.random.default_rng(11)
    p = Producer(E1)
    _created(p, 1)
    ts = CREATED[E1] + np.sort(rng.uniform(0.0, 900.0, 40_000))
    ys = rng.normal(0, 1, len(ts))
    ys[4321] = -7e8
    _log(p, "loss", ts, ys, 8000)
    try:
        store.ensure_schema()
        _deliver(p.sent, _Without(store, {"points_rollup_time"}), objects, ("materializer",))
        with store.hold():
            assert charts.rolled_x_range(store, E1, "user", "loss", 0, axis="time") is None
            before = browser(store).chart(PROJECT, ["TIM-1"], "loss", axis="relative", width=500)
            assert min(before.series[0].y) == -7e8
        _deliver(p.sent, store, objects, ("replay",))  # what `expstream replay` does: every event again
        with store.hold():
            points = raw(store, "loss")
            lo, hi = points["ts"].min(), points["ts"].max()
            assert charts.rolled_x_range(store, E1, "user", "loss", 0, axis="time") == (lo, hi)
            after = browser(store).chart(PROJECT, ["TIM-1"], "loss", axis="relative", width=500)
            edges = whole_edges(lo, hi, 500, axis="time")
            assert edges is not None
            assert (after.series[0].x, after.series[0].y) == polyline(reference(points, edges, hi), CREATED[E1])
            assert after.series[0].points == len(points) and min(after.series[0].y) == -7e8
    finally:
        store.close()
        objects.close()
