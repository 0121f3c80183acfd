"""The UI's server side: a chart request over a 10M-point channel at 1,000 px (step, relative and absolute time
axes), and a leaderboard page.

Targets (issue 9): chart ≤ 100 ms server time on the embedded default (warm), the same order on a ClickHouse
server; leaderboard of 10,000 experiments x 20 channels ≤ 500 ms server time.

python bench/bench_ui.py [--points 10000000] [--experiments 10000] [--channels 20] [--clickhouse URL]

Rows are inserted straight into the tables (what the consumers would write: the points and their rollups, in
batches of 100,000 points), so the figures are the reads.
"Server time" is the request handled in-process through the app (Starlette's test client, the warm
materializer's answer and JSON included); "query" is the Browser call alone. With --clickhouse (a URL of a
fresh database, password included) the chart is measured on that server too.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from _common import fresh_home

from expstream.consumers.rollup import Rollups

T0 = 1.7e9  # when the experiments were created


def _experiments(tables: Any, project: str, n: int, created: float) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    key = project.split("/")[1][:3].upper()
    tables.insert(
        "experiments",
        {
            "experiment_id": ids,
            "project": [project] * n,
            "short_id": [f"{key}-{i + 1}" for i in range(n)],
            "number": np.arange(1, n + 1, dtype=np.uint64),
            "name": [f"run-{i}" for i in range(n)],
            "description": [""] * n,
            "owner": [("alice", "bob", "carol")[i % 3] for i in range(n)],
            "hostname": ["bench"] * n,
            "created": np.full(n, created),
        },
    )
    states = [("succeeded", "failed", "running")[i % 3] for i in range(n)]
    tables.insert(
        "states",
        {
            "experiment_id": ids + ids,
            "state": ["running"] * n + states,
            "traceback": [""] * (2 * n),
            "ts": np.concatenate([np.full(n, created), np.full(n, created + 60)]),
            "session_id": ["s"] * (2 * n),
            "seq": np.concatenate([np.zeros(n, dtype=np.uint64), np.ones(n, dtype=np.uint64)]),
        },
    )
    tables.insert(
        "parameters",
        {
            "experiment_id": ids + ids,
            "name": ["lr"] * n + ["depth"] * n,
            "value": [repr(0.001 * i) for i in range(n)] + [str(i % 7) for i in range(n)],
            "type": ["double"] * (2 * n),
        },
    )
    return ids


def _channel(
    tables: Any, experiment: str, channel: str, points: int, batch: int = 100_000, rollups: bool = True
) -> None:
    tables.insert(
        "channels",
        {"experiment_id": [experiment], "namespace": ["user"], "channel": [channel], "type": ["numeric"],
         "generation": np.zeros(1, dtype=np.uint32), "ts": np.zeros(1)},
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for start in range(0, points, batch):
        xs = np.arange(start, min(points, start + batch), dtype="float64")
        ys = rng.normal(0, 1, len(xs))
        if start <= points // 3 < start + len(xs):
            ys[points // 3 - start] = 1e9  # the outlier a chart must show
        tables.insert(
            "points_numeric",
            {"experiment_id": [experiment] * len(xs), "namespace": ["user"] * len(xs), "channel": [channel] * len(xs),
             "generation": np.zeros(len(xs), dtype=np.uint32), "x": xs, "y": ys, "ts": T0 + xs / 1000,
             "session_id": ["s"] * len(xs)},
        )  # fmt: skip
        if rollups:  # what the consumer writes beside the points (consumers/rollup.py)
            summary = Rollups()
            summary.add(experiment, "user", channel, 0, f"bench-{start}", xs, ys, T0 + xs / 1000)
            for table, columns in summary.columns().items():
                tables.insert(table, columns)


def _timed(fn: Any, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _report(label: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    print(f"{label}: median {statistics.median(ms):.1f} ms, min {ms[0]:.1f}, max {ms[-1]:.1f} ({len(ms)} rounds)")


def bench_chart_on(browser: Any, project: str, short_id: str, rounds: int, client: Any = None) -> None:
    chart = browser.chart(project, [short_id], "loss", width=1000)
    assert max(chart.series[0].y) == 1e9, "the outlier is not in the chart"
    print(f"  {chart.series[0].points:,} points → {len(chart.series[0].x)} polyline points")
    _report(
        "  chart, Browser.chart (warm)", _timed(lambda: browser.chart(project, [short_id], "loss", width=1000), rounds)
    )
    zoom = {"x_from": 1_000_000.0, "x_to": 1_500_000.0}
    _report(
        "  chart, zoomed to 500k points", _timed(lambda: browser.chart(project, [short_id], "loss", **zoom), rounds)
    )
    if client is not None:
        url = f"/p/{project}/api/chart?ids={short_id}&channel=loss&width=1000"
        _report("  chart, HTTP request through the app", _timed(lambda: client.get(url).raise_for_status(), rounds))
    # the time axes: the channel's points are 1 ms apart from the experiment's creation (t0)
    for axis, t0 in (("relative", 0.0), ("time", T0)):
        chart = browser.chart(project, [short_id], "loss", axis=axis, width=1000)
        assert max(chart.series[0].y) == 1e9, f"the outlier is not in the {axis} chart"
        print(f"  {axis} axis: {chart.series[0].points:,} points → {len(chart.series[0].x)} polyline points")
        _report(
            f"  chart, {axis} axis (warm)",
            _timed(lambda a=axis: browser.chart(project, [short_id], "loss", axis=a, width=1000), rounds),
        )
        zoom = {"x_from": t0 + 1000.0, "x_to": t0 + 1500.0}  # the same 500k points as the step zoom
        _report(
            f"  chart, {axis} axis, zoomed to 500k points",
            _timed(lambda a=axis, z=zoom: browser.chart(project, [short_id], "loss", axis=a, **z), rounds),
        )
    if client is not None:
        url = f"/p/{project}/api/chart?ids={short_id}&channel=loss&width=1000&axis=relative"
        _report(
            "  chart, relative axis, HTTP request through the app",
            _timed(lambda: client.get(url).raise_for_status(), rounds),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="timed calls per figure")
    parser.add_argument("--clickhouse", help="a fresh database URL: measure the chart on that server too")
    parser.add_argument(
        "--big-board",
        default="20,10,100000",
        help="EXPERIMENTS,LOGS,POINTS: a leaderboard whose logs are long (points and rollups as the consumer writes)",
    )
    args = parser.parse_args()
    with fresh_home():
        from starlette.testclient import TestClient

        from expstream.config import load_settings
        from expstream.consumers.sinks.chdb import ChdbTables
        from expstream.ui.app import create_app
        from expstream.ui.server import open_browser

        settings = load_settings()
        tables = ChdbTables(settings.home.expanduser().absolute() / "chdb")  # written here, read by the UI's daemon
        with tables.hold():
            tables.ensure_schema()
            t = time.perf_counter()
            (big,) = _experiments(tables, "bench/charts", 1, T0)
            _channel(tables, big, "loss", args.points)
            print(f"inserted {args.points:,} points in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            ids = _experiments(tables, "bench/board", args.experiments, 1.7e9)
            per = args.channels * 10
            tables.insert(
                "channels",
                {"experiment_id": [e for e in ids for _ in range(args.channels)],
                 "namespace": ["user"] * (len(ids) * args.channels),
                 "channel": [f"metric_{c:02d}" for _ in ids for c in range(args.channels)],
                 "type": ["numeric"] * (len(ids) * args.channels),
                 "generation": np.zeros(len(ids) * args.channels, dtype=np.uint32),
                 "ts": np.zeros(len(ids) * args.channels)},
            )  # fmt: skip
            n = len(ids) * per
            tables.insert(
                "points_numeric",
                {"experiment_id": [e for e in ids for _ in range(per)], "namespace": ["user"] * n,
                 "channel": [f"metric_{c:02d}" for _ in ids for c in range(args.channels) for _ in range(10)],
                 "generation": np.zeros(n, dtype=np.uint32), "x": np.tile(np.arange(10.0), len(ids) * args.channels),
                 "y": np.random.default_rng(1).random(n), "ts": np.full(n, 1.7e9), "session_id": ["s"] * n},
            )  # fmt: skip
            took = time.perf_counter() - t
            print(f"inserted {args.experiments:,} experiments x {args.channels} channels in {took:.1f} s")
            t = time.perf_counter()
            big_e, big_c, big_p = (int(v) for v in args.big_board.split(","))
            for experiment in _experiments(tables, "bench/bigboard", big_e, 1.7e9):
                for c in range(big_c):
                    _channel(tables, experiment, f"metric_{c:02d}", big_p)
            took = time.perf_counter() - t
            print(f"inserted {big_e} experiments x {big_c} logs of {big_p:,} points (and rollups) in {took:.1f} s")
            t = time.perf_counter()
            for table in ("experiments", "states", "parameters", "channels", "points_numeric"):
                tables.query_df(f"OPTIMIZE TABLE {table} FINAL")  # what the background merges do soon after
            print(f"merged the parts in {time.perf_counter() - t:.1f} s")
        tables.close()
        opened = open_browser(settings)
        with TestClient(create_app(opened.browser)) as client:
            print(f"embedded (chdb), {args.points:,}-point channel at 1,000 px:")
            bench_chart_on(opened.browser, "bench/charts", "CHA-1", args.rounds, client)
            print(f"embedded (chdb), leaderboard of {args.experiments:,} experiments x {args.channels} channels:")
            board = opened.browser.leaderboard("bench/board", limit=50)
            assert board["total"] == args.experiments and len(board["rows"]) == 50
            _report(
                "  Browser.leaderboard, first page",
                _timed(lambda: opened.browser.leaderboard("bench/board"), args.rounds),
            )
            _report(
                "  leaderboard sorted by a channel, filtered by state",
                _timed(
                    lambda: opened.browser.leaderboard("bench/board", states=["failed"], sort="channel_metric_03"), 5
                ),
            )
            _report(
                "  leaderboard sorted by a parameter, text search",
                _timed(lambda: opened.browser.leaderboard("bench/board", text="run-9", sort="parameter_lr"), 5),
            )
            _report(
                "  leaderboard, last page sorted by running time",
                _timed(lambda: opened.browser.leaderboard("bench/board", sort="running_time", offset=9950), 5),
            )
            _report(
                "  leaderboard page, HTTP request",
                _timed(lambda: client.get("/p/bench/board").raise_for_status(), args.rounds),
            )
            print(f"embedded (chdb), leaderboard of {big_e} experiments x {big_c} logs of {big_p:,} points:")
            assert opened.browser.leaderboard("bench/bigboard")["total"] == big_e
            _report(
                "  Browser.leaderboard, first page (every log's last value)",
                _timed(lambda: opened.browser.leaderboard("bench/bigboard"), args.rounds),
            )
            _report(
                "  sorted by a log's last value",
                _timed(lambda: opened.browser.leaderboard("bench/bigboard", sort="channel_metric_03"), args.rounds),
            )
        opened.close()
    if args.clickhouse:
        from expstream.consumers.sinks.clickhouse import ClickHouseTables
        from expstream.consumers.sinks.memory import MemoryObjectStore
        from expstream.query.browse import Browser
        from expstream.query.reader import Reader

        server = ClickHouseTables.from_url(args.clickhouse)
        server.ensure_schema()
        (big,) = _experiments(server, "bench/charts", 1, T0)
        _channel(server, big, "loss", args.points)
        print(f"ClickHouse server ({Path(args.clickhouse.split('@')[-1]).name}), {args.points:,}-point channel:")
        bench_chart_on(Browser(Reader(server, MemoryObjectStore())), "bench/charts", "CHA-1", args.rounds)
        server.close()


if __name__ == "__main__":
    main()
