"""The UI's leaderboard page in SQL (query/leaderboard.py) against a pure-Python reference, on every table store.

Sixty experiments with varied owners, tags (some removed), states (some aborted by stale heartbeats), parameters
and properties (numbers, numeric-looking and other text, some missing, some removed) and logs (numeric and text,
some reset, some missing) go through the Runner twice (a replay). Every sort column in both directions, every
filter and several page cuts must give exactly the rows, values and counts that the legacy reader's rows give
when filtered, sorted and cut in Python.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from expstream.consumers.runner import Runner
from expstream.consumers.sinks.base import TableStore
from expstream.consumers.sources.memory import MemorySource
from expstream.eventlog.memory import MemoryLog
from expstream.producer.transports.memory import MemoryTransport
from expstream.query import leaderboard
from expstream.query.reader import Reader
from expstream.wiring import TABLE_STORES, create_object_store, create_table_store
from tests.contract.test_reader import TRICKY, Producer

PROJECT, OTHER = "acme/board", "acme/elsewhere"
T0 = 1_700_000_000.0
N = 60
OWNERS = ["alice", "bob's", "carol", TRICKY]
TAGS = ["a", "b", "shared", "<b>x</b>", TRICKY]
WORDS = ["7", "10", "-2.5", "1e-05", "abc", "Zeta", "", "éclair", "9.0"]


def _events() -> list[tuple[str, str, bytes]]:
    rng = random.Random(9)
    sent: list[tuple[str, str, bytes]] = []
    for i in range(1, N + 1):
        p = Producer(f"{i:08x}-0000-4000-8000-{i:012x}", ts=T0 + i * 100.0 + rng.random(), session_id=f"{i:032x}")
        params = [{"name": "lr", "value": repr(rng.choice([0.1, 0.01, 0.001, 0.5])), "type": "double"}]
        if rng.random() < 0.7:
            params.append({"name": "opt", "value": rng.choice(WORDS), "type": "string"})
        properties = {"seed": rng.choice(WORDS)} if rng.random() < 0.8 else {}
        tags = rng.sample(TAGS, rng.randint(0, 3))
        word = rng.choice(["WIDER", "narrow", "wide ✓", TRICKY])
        p.event("ExperimentCreated", project=PROJECT, short_id=f"BOA-{i}", number=i, name=f"run {i} {word}",
                description=f"notes {rng.choice(WORDS)}", owner=rng.choice(OWNERS), hostname="h", params=params,
                properties=properties, tags=tags, system={})  # fmt: skip
        p.event("StateChanged", state="running", traceback=None)
        if rng.random() < 0.8:
            xs = [float(x) for x in range(rng.randint(1, 5))]
            p.event("NumericPoints", series=[{"channel": "loss", "namespace": "user", "generation": 0, "xs": xs,
                                              "ys": [rng.choice([0.5, 0.25, 1.0, -3.0, 1e-7]) for _ in xs],
                                              "ts": [p.ts] * len(xs)}])  # fmt: skip
            if rng.random() < 0.3:
                p.event("ChannelReset", channel="loss", namespace="user", type="numeric", generation=1)
                p.event("NumericPoints", series=[{"channel": "loss", "namespace": "user", "generation": 1,
                                                  "xs": [0.0], "ys": [rng.random() * 10], "ts": [p.ts]}])  # fmt: skip
        if rng.random() < 0.6:
            p.event("TextPoints", series=[{"channel": "note", "namespace": "user", "generation": 0, "xs": [0.0, 1.0],
                                           "ys": ["first", rng.choice(WORDS) or "x"], "ts": [p.ts] * 2}])  # fmt: skip
        if rng.random() < 0.2:
            p.event("NumericPoints", series=[{"channel": TRICKY, "namespace": "user", "generation": 0, "xs": [1.0],
                                              "ys": [float(i % 4)], "ts": [p.ts]}])  # fmt: skip
        if tags and rng.random() < 0.3:
            p.event("TagsRemoved", tags=[tags[0]])
        if properties and rng.random() < 0.2:
            p.event("PropertyRemoved", key="seed")
        if rng.random() < 0.3:
            p.event("PropertySet", key="stage", value=rng.choice(WORDS))
        end = rng.choice(["succeeded", "failed", None, "beat"])
        if end == "beat":  # running with a heartbeat years old: aborted
            p.event("Heartbeat")
        elif end is not None:
            p.event("StateChanged", state=end, traceback=None)
        sent += p.sent
    other = Producer("ffffffff-0000-4000-8000-000000000000", ts=T0)
    other.event("ExperimentCreated", project=OTHER, short_id="ELS-1", number=1, name="elsewhere", description="",
                owner="alice", hostname="h", params=[{"name": "other", "value": "1", "type": "double"}],
                properties={}, tags=["a"], system={})  # fmt: skip
    return sent + other.sent


@pytest.fixture(scope="module", params=TABLE_STORES)
def tables(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TableStore]:
    kind = request.param
    if kind == "chdb":
        folder: Path = tmp_path_factory.mktemp("board")
        store = create_table_store(kind, folder=folder / "chdb")
        objects = create_object_store("localfs", root=folder / "objects")
    else:
        store = create_table_store(kind, url=request.getfixturevalue("new_clickhouse_url")())
        objects = create_object_store(
            "s3", url=request.getfixturevalue("new_s3_url")(), ca=request.getfixturevalue("s3_ca")
        )
    store.ensure_schema()
    log = MemoryLog(partitions=3)
    for topic, key, message in _events():
        MemoryTransport(log).send(topic, key, [message])
    for group, batch in (("materializer", 50), ("replay", 13)):
        Runner(MemorySource(log, group=group), store, objects, group=group, max_records=batch).catch_up()
    _stored_before_the_rollups(store)
    with store.hold():
        yield store
    store.close()
    objects.close()


def _stored_before_the_rollups(store: TableStore) -> None:
    """A numeric log ``old`` in every third experiment whose points have no rollups (written before they existed):
    its last value must come from the points, the others' from the rollups."""
    ids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, N + 1, 3)]
    n = len(ids)
    store.insert("channels", {"experiment_id": ids, "namespace": ["user"] * n, "channel": ["old"] * n,
                              "type": ["numeric"] * n, "generation": [0] * n, "ts": [T0] * n})  # fmt: skip
    xs = [0.0, 1.0, 2.0]
    store.insert(
        "points_numeric",
        {"experiment_id": [e for e in ids for _ in xs], "namespace": ["user"] * (3 * n),
         "channel": ["old"] * (3 * n), "generation": [0] * (3 * n), "x": xs * n,
         "y": [float(i * 10 + x) for i in range(n) for x in xs], "ts": [T0] * (3 * n), "session_id": ["s"] * (3 * n)},
    )  # fmt: skip


# --- the reference: the legacy reader's rows, filtered, sorted and cut in Python ------------------------------


def reference_rows(tables: TableStore, now: float) -> pd.DataFrame:
    reader = Reader(tables, create_object_store("memory"))
    board = reader.leaderboard(PROJECT, now=now)
    states = reader.project_experiments(PROJECT)
    board["state"] = board["id"].map(dict(zip(states["short_id"], states["state"], strict=True)))
    board["number"] = board["id"].map(dict(zip(states["short_id"], states["number"].astype(int), strict=True)))
    board["created"] = board["id"].map(dict(zip(states["short_id"], states["created"].astype(float), strict=True)))
    return board


def reference(
    board: pd.DataFrame,
    *,
    states: Any = None,
    owners: Any = None,
    tags: Any = None,
    text: str = "",
    sort: str = "id",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Any], int]:
    """The page and the count as the legacy rows give them, filtered, sorted and cut in plain Python."""
    rows = board.to_dict("records")
    if states:
        rows = [r for r in rows if r["state"] in states]
    if owners:
        rows = [r for r in rows if r["owner"] in owners]
    if tags:
        rows = [r for r in rows if set(tags) <= set(r["tags"])]
    if text:
        hay = lambda r: "\n".join([r["id"], r["name"], r["owner"], r["notes"], " ".join(r["tags"])])  # noqa: E731
        rows = [r for r in rows if text.lower() in hay(r).lower()]
    system = {"id": (), "name": ("name",), "state": ("state",), "owner": ("owner",), "created": ("created",),
              "running_time": ("running_time",), "tags": ("tags",)}  # fmt: skip
    if sort in system:
        fields = system[sort]

        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return (*(" ".join(r[f]) if f == "tags" else r[f] for f in fields), r["number"])

        ordered = sorted(rows, key=key, reverse=descending)
    elif sort in board.columns:
        present = [r for r in rows if isinstance(r[sort], str)]
        missing = [r for r in rows if not isinstance(r[sort], str)]
        ordered = sorted(
            present, key=lambda r: (*leaderboard.sort_key_of_text(r[sort]), r["number"]), reverse=descending
        ) + sorted(missing, key=lambda r: r["number"], reverse=descending)
    else:
        ordered = sorted(rows, key=lambda r: r["number"], reverse=descending)
    return ordered[offset : offset + limit], len(rows)


def check(tables: TableStore, board: pd.DataFrame, now: float, **query: Any) -> None:
    got = leaderboard.page(tables, PROJECT, now=now, **query)
    want, total = reference(board, **query)
    assert (got.total, got.all) == (total, N), query
    assert [r["id"] for r in got.rows] == [r["id"] for r in want], query
    for mine, theirs in zip(got.rows, want, strict=True):
        for column in got.columns:
            expected = theirs.get(column)
            expected = None if isinstance(expected, float) and column.startswith(leaderboard.DYNAMIC) else expected
            assert mine[column] == expected, (query, mine["id"], column)


def test_columns_are_the_projects(tables: TableStore) -> None:
    now = time.time()
    board = reference_rows(tables, now)
    got = leaderboard.page(tables, PROJECT, now=now)
    dynamic = [c for c in board.columns if c.startswith(("channel_", "parameter_", "property_"))]
    assert got.columns == list(leaderboard.SYSTEM_COLUMNS) + dynamic
    assert "parameter_other" not in got.columns  # another project's
    assert {"channel_loss", "channel_old"} <= set(got.columns)  # last values from the rollups, and from the points
    assert {r["state"] for r in board.to_dict("records")} == {"succeeded", "failed", "running", "aborted"}


def test_every_sort_both_ways_and_page_cuts(tables: TableStore) -> None:
    now = time.time()
    board = reference_rows(tables, now)
    columns = leaderboard.page(tables, PROJECT, now=now).columns
    for sort in [*columns, "no_such_column"]:
        for descending in (True, False):
            check(tables, board, now, sort=sort, descending=descending, limit=N)
    for offset, limit in ((0, 1), (7, 10), (55, 10), (60, 5), (100, 5)):
        check(tables, board, now, sort="property_seed", descending=False, offset=offset, limit=limit)
        check(tables, board, now, sort="channel_loss", offset=offset, limit=limit)


@pytest.mark.parametrize(
    "filters",
    [
        {"states": ["failed", "aborted"]},
        {"states": ["running"]},
        {"owners": ["bob's", TRICKY]},
        {"tags": ["shared"]},
        {"tags": ["a", "<b>x</b>"]},
        {"text": "wider"},
        {"text": "ÉCLAIR"},
        {"text": "'; DROP TABLE experiments; --"},
        {"text": TRICKY},
        {"states": ["succeeded"], "owners": ["alice"], "tags": ["b"], "text": "run"},
        {"states": ["no such state"]},
    ],
    ids=lambda f: "-".join(f),
)
def test_filters(tables: TableStore, filters: dict[str, Any]) -> None:
    now = time.time()
    board = reference_rows(tables, now)
    for sort, descending in (("id", True), ("channel_note", False), ("parameter_opt", True), ("state", False)):
        check(tables, board, now, sort=sort, descending=descending, limit=N, **filters)
    check(tables, board, now, offset=3, limit=4, **filters)
