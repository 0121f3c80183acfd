"""Materializer: decoded events → the rows of each table, checked whole before anything is added."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from expstream import schemas
from expstream.consumers.materializer import TABLE_COLUMNS, Materializer, Runs
from expstream.consumers.sinks.columns import Coded
from expstream.exceptions import EventDecodeError

E = "6d1f0a52-0000-4000-8000-000000000001"
SESSION = "a" * 32


def header(seq: int = 1, ts: float = 100.0, experiment_id: str = E) -> dict[str, Any]:
    return {
        "event_id": f"{seq:032x}",
        "experiment_id": experiment_id,
        "session_id": SESSION,
        "seq": seq,
        "ts": ts,
        "host": "node-1",
        "pid": 77,
    }


def decoded(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """What the runner hands the materializer: the record after a trip over the wire."""
    got_kind, got = schemas.decode(schemas.encode(kind, record))
    assert got_kind == kind
    return got


def rows(columns: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A table's columns as row tuples, plain Python values."""
    lists = [v.tolist() if isinstance(v, (np.ndarray, Coded)) else list(v) for v in columns.values()]
    return list(zip(*lists, strict=True))


def materialize(*events: tuple[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    batch = Materializer()
    for kind, record in events:
        batch.add(kind, decoded(kind, record))
    assert batch.events == len(events)
    out = batch.columns()
    for name, columns in out.items():
        assert tuple(columns) == TABLE_COLUMNS[name], name
    return out


def test_experiment_created_fills_every_creation_table() -> None:
    out = materialize(
        (
            "ExperimentCreated",
            {
                "header": header(),
                "project": "acme/sandbox",
                "short_id": "SAN-3",
                "number": 3,
                "name": "run",
                "description": "desc",
                "owner": "alice",
                "hostname": "h",
                "params": [
                    {"name": "lr", "value": "0.1", "type": "double"},
                    {"name": "opt", "value": "adam", "type": "string"},
                ],
                "properties": {"k": "v"},
                "tags": ["t1", "t2"],
                "system": {"python": "3.11", "git_commit": "abc"},
            },
        )
    )
    assert set(out) == {"experiments", "system_properties", "parameters", "properties", "tags", "events"}
    assert rows(out["experiments"]) == [(E, "acme/sandbox", "SAN-3", 3, "run", "desc", "alice", "h", 100.0)]
    assert sorted(rows(out["system_properties"])) == [(E, "git_commit", "abc"), (E, "python", "3.11")]
    assert rows(out["parameters"]) == [(E, "lr", "0.1", "double"), (E, "opt", "adam", "string")]
    assert rows(out["properties"]) == [(E, "k", "v", 0, 100.0, SESSION, 1)]
    assert rows(out["tags"]) == [(E, "t1", 1, 100.0, SESSION, 1), (E, "t2", 1, 100.0, SESSION, 1)]
    (event,) = rows(out["events"])
    assert event[:8] == (E, 100.0, "ExperimentCreated", SESSION, 1, f"{1:032x}", "node-1", 77)
    assert json.loads(event[8]) == {"short_id": "SAN-3", "name": "run", "project": "acme/sandbox"}


def test_state_heartbeat_tags_properties_artifacts_sources_and_resets() -> None:
    sha = "c" * 64
    out = materialize(
        ("StateChanged", {"header": header(1), "state": "running", "traceback": None}),
        ("StateChanged", {"header": header(2), "state": "failed", "traceback": "boom"}),
        ("Heartbeat", {"header": header(3, ts=103.0)}),
        ("TagsAdded", {"header": header(4), "tags": ["a", "b"]}),
        ("TagsRemoved", {"header": header(5), "tags": ["a"]}),
        ("PropertySet", {"header": header(6), "key": "k", "value": "v1"}),
        ("PropertyRemoved", {"header": header(7), "key": "k"}),
        ("ArtifactCommitted", {"header": header(8), "path": "m/w.bin", "sha256": sha, "size": 5}),
        ("ArtifactDeleted", {"header": header(9), "path": "m/w.bin"}),
        ("SourceFiles", {"header": header(10), "files": [{"path": "train.py", "sha256": sha, "size": 5, "mode": 420}]}),
        (
            "ChannelReset",
            {"header": header(11), "channel": "loss", "namespace": "user", "type": "numeric", "generation": 2},
        ),
    )
    assert rows(out["states"]) == [(E, "running", "", 100.0, SESSION, 1), (E, "failed", "boom", 100.0, SESSION, 2)]
    assert rows(out["heartbeats"]) == [(E, SESSION, "node-1", 77, 103.0)]
    assert rows(out["tags"]) == [
        (E, "a", 1, 100.0, SESSION, 4),
        (E, "b", 1, 100.0, SESSION, 4),
        (E, "a", 0, 100.0, SESSION, 5),
    ]
    assert rows(out["properties"]) == [(E, "k", "v1", 0, 100.0, SESSION, 6), (E, "k", "", 1, 100.0, SESSION, 7)]
    assert rows(out["artifacts"]) == [
        (E, "m/w.bin", sha, 5, 0, 100.0, SESSION, 8),
        (E, "m/w.bin", "", 0, 1, 100.0, SESSION, 9),
    ]
    assert rows(out["sources"]) == [(E, "train.py", sha, 5, 420, 100.0)]
    assert rows(out["channels"]) == [(E, "user", "loss", "numeric", 2, 100.0)]
    assert [r[2] for r in rows(out["events"])] == [
        "StateChanged",
        "StateChanged",
        "Heartbeat",
        "TagsAdded",
        "TagsRemoved",
        "PropertySet",
        "PropertyRemoved",
        "ArtifactCommitted",
        "ArtifactDeleted",
        "SourceFiles",
        "ChannelReset",
    ]
    assert [r[4] for r in rows(out["events"])] == list(range(1, 12))


def test_numeric_points_become_one_row_per_point_and_a_channel_row_per_series() -> None:
    out = materialize(
        (
            "NumericPoints",
            {
                "header": header(1),
                "series": [
                    {
                        "channel": "loss",
                        "namespace": "user",
                        "generation": 0,
                        "xs": [0.0, 1.0, 2.0],
                        "ys": [3.0, 2.0, 1.0],
                        "ts": [10.0, 11.0, 12.0],
                    },
                    {"channel": "empty", "namespace": "user", "generation": 0, "xs": [], "ys": [], "ts": []},
                    {"channel": "cpu", "namespace": "system", "generation": 1, "xs": [5.0], "ys": [0.25], "ts": [13.0]},
                ],
            },
        ),
        (
            "NumericPoints",
            {
                "header": header(2),
                "series": [
                    {"channel": "loss", "namespace": "user", "generation": 0, "xs": [3.0], "ys": [0.5], "ts": [14.0]},
                ],
            },
        ),
    )
    # in the order of the table's key (ClickHouse then skips its own sort)
    assert rows(out["points_numeric"]) == [
        (E, "system", "cpu", 1, 5.0, 0.25, 13.0, SESSION),
        (E, "user", "loss", 0, 0.0, 3.0, 10.0, SESSION),
        (E, "user", "loss", 0, 1.0, 2.0, 11.0, SESSION),
        (E, "user", "loss", 0, 2.0, 1.0, 12.0, SESSION),
        (E, "user", "loss", 0, 3.0, 0.5, 14.0, SESSION),
    ]
    # no channel row for a series without points
    assert rows(out["channels"]) == [
        (E, "user", "loss", "numeric", 0, 100.0),
        (E, "system", "cpu", "numeric", 1, 100.0),
        (E, "user", "loss", "numeric", 0, 100.0),
    ]
    assert [json.loads(r[8]) for r in rows(out["events"])] == [
        {"points": {"loss": 3, "cpu": 1}},
        {"points": {"loss": 1}},
    ]
    columns = out["points_numeric"]
    assert columns["x"].dtype == np.float64 and columns["y"].dtype == np.float64
    for name in ("experiment_id", "namespace", "channel", "session_id"):
        assert isinstance(columns[name], Coded), name
    assert list(columns["channel"].values) == ["loss", "cpu"]
    assert isinstance(columns["generation"], np.ndarray) and columns["generation"].tolist() == [1, 0, 0, 0, 0]


def test_text_and_image_points() -> None:
    out = materialize(
        (
            "TextPoints",
            {
                "header": header(1),
                "series": [
                    {
                        "channel": "notes",
                        "namespace": "user",
                        "generation": 0,
                        "xs": [1.0, 2.0],
                        "ys": ["a", "ü\nb"],
                        "ts": [1.0, 2.0],
                    }
                ],
            },
        ),
        (
            "ImagePoints",
            {
                "header": header(2),
                "series": [
                    {
                        "channel": "img",
                        "namespace": "user",
                        "generation": 0,
                        "xs": [1.0, 2.0],
                        "ts": [1.0, 2.0],
                        "names": ["first", None],
                        "descriptions": [None, "second"],
                        "sha256s": ["0" * 64, "1" * 64],
                        "sizes": [10, 20],
                    }
                ],
            },
        ),
    )
    assert rows(out["points_text"]) == [
        (E, "user", "notes", 0, 1.0, "a", 1.0, SESSION),
        (E, "user", "notes", 0, 2.0, "ü\nb", 2.0, SESSION),
    ]
    assert rows(out["points_image"]) == [
        (E, "user", "img", 0, 1.0, "first", "", "0" * 64, 10, 1.0, SESSION),
        (E, "user", "img", 0, 2.0, "", "second", "1" * 64, 20, 2.0, SESSION),
    ]
    assert [(r[2], r[3]) for r in rows(out["channels"])] == [("notes", "text"), ("img", "image")]


def test_artifact_chunks_go_to_the_object_queue_not_to_a_table() -> None:
    batch = Materializer()
    sha = "d" * 64
    batch.add(
        "ArtifactChunk",
        decoded("ArtifactChunk", {"header": header(1), "sha256": sha, "offset": 0, "size": 6, "data": b"abc"}),
    )
    batch.add(
        "ArtifactChunk",
        decoded("ArtifactChunk", {"header": header(2), "sha256": sha, "offset": 3, "size": 6, "data": b"def"}),
    )
    assert batch.chunks == [(sha, 0, 6, b"abc"), (sha, 3, 6, b"def")]
    assert set(batch.columns()) == {"events"}
    assert [json.loads(r[8]) for r in rows(batch.columns()["events"])] == [
        {"sha256": sha, "offset": 0, "bytes": 3, "size": 6},
        {"sha256": sha, "offset": 3, "bytes": 3, "size": 6},
    ]


@pytest.mark.parametrize(
    "chunk",
    [
        {"offset": -1, "size": 3, "data": b"a"},
        {"offset": 2, "size": 3, "data": b"ab"},
        {"offset": 0, "size": 3, "data": b"abc", "sha256": "short"},
    ],
    ids=["negative-offset", "past-the-end", "bad-digest"],
)
def test_a_bad_chunk_raises_and_adds_nothing(chunk: dict[str, Any]) -> None:
    batch = Materializer()
    batch.add("TagsAdded", decoded("TagsAdded", {"header": header(1), "tags": ["kept"]}))
    before = batch.columns()
    record = {"header": header(2), "sha256": "e" * 64, **chunk}
    with pytest.raises(EventDecodeError):
        batch.add("ArtifactChunk", decoded("ArtifactChunk", record))
    assert batch.chunks == []
    assert batch.events == 1
    assert {t: rows(c) for t, c in batch.columns().items()} == {t: rows(c) for t, c in before.items()}


_SHORT_COLUMNS = (
    [("NumericPoints", c) for c in ("xs", "ys", "ts")]
    + [("TextPoints", c) for c in ("xs", "ys", "ts")]
    + [("ImagePoints", c) for c in ("xs", "ts", "names", "descriptions", "sha256s", "sizes")]
)


@pytest.mark.parametrize(("kind", "short"), _SHORT_COLUMNS)
def test_a_series_with_columns_of_different_lengths_raises_and_adds_nothing(kind: str, short: str) -> None:
    good: dict[str, Any] = {"channel": "ok", "namespace": "user", "generation": 0, "xs": [1.0, 2.0], "ts": [1.0, 2.0]}
    if kind == "ImagePoints":
        good.update(names=["a", "b"], descriptions=["", ""], sha256s=["0" * 64] * 2, sizes=[1, 2])
    else:
        good["ys"] = [1.0, 2.0] if kind == "NumericPoints" else ["a", "b"]
    bad = {**good, "channel": "bad", short: good[short][:1]}
    batch = Materializer()
    batch.add("PropertySet", decoded("PropertySet", {"header": header(1), "key": "k", "value": "v"}))
    before = {t: rows(c) for t, c in batch.columns().items()}
    # the good series comes first: it must not be half-added either
    record = decoded(kind, {"header": header(2), "series": [good, bad]})
    with pytest.raises(EventDecodeError, match="different lengths"):
        batch.add(kind, record)
    assert batch.events == 1
    assert {t: rows(c) for t, c in batch.columns().items()} == before
    # the batch stays usable: a valid event afterwards lands normally
    batch.add(kind, decoded(kind, {"header": header(3), "series": [good]}))
    table = {"NumericPoints": "points_numeric", "TextPoints": "points_text", "ImagePoints": "points_image"}[kind]
    assert [r[2] for r in rows(batch.columns()[table])] == ["ok", "ok"]


def test_an_event_without_experiment_id_or_of_unknown_kind_raises() -> None:
    batch = Materializer()
    with pytest.raises(EventDecodeError, match="without an experiment id"):
        batch.add("TagsAdded", {"header": header(experiment_id=""), "tags": ["x"]})
    with pytest.raises(EventDecodeError, match="no materializer"):
        batch.add("Bogus", {"header": header()})
    assert batch.events == 0
    assert batch.columns() == {}


def _series(channel: str, xs: list[float], generation: int = 0) -> dict[str, Any]:
    return {"channel": channel, "namespace": "user", "generation": generation, "xs": xs, "ys": xs, "ts": xs}


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    e, namespace, channel, generation, x, _, _, session = row
    return (e, namespace, channel, generation, x, session)


def test_point_rows_come_out_in_the_order_of_the_table_key() -> None:
    """Batches interleave channels and processes; sorted rows spare ClickHouse its insert sort."""
    other = "b" * 32
    events = [
        ("NumericPoints", {"header": header(1), "series": [_series("b", [0.0, 1.0]), _series("a", [0.0, 1.0])]}),
        ("NumericPoints", {"header": {**header(1), "session_id": other}, "series": [_series("a", [0.5, 2.0])]}),
        ("NumericPoints", {"header": header(2), "series": [_series("b", [2.0]), _series("a", [3.0], generation=1)]}),
        ("NumericPoints", {"header": header(3, experiment_id="0" + E[1:]), "series": [_series("z", [9.0])]}),
    ]
    out = rows(materialize(*events)["points_numeric"])
    assert len(out) == 9
    # runs are ordered by their first x: two sessions overlapping in one channel stay nearly sorted
    assert [(r[2], r[4]) for r in out] == [
        ("z", 9.0), ("a", 0.0), ("a", 1.0), ("a", 0.5), ("a", 2.0), ("a", 3.0), ("b", 0.0), ("b", 1.0), ("b", 2.0)
    ]  # fmt: skip
    assert sorted(out, key=_key) == sorted(out)  # nothing lost or duplicated, every column moved along
    assert all(r[4] == r[5] == r[6] for r in out)


def test_a_sorted_batch_keeps_its_rows_in_place() -> None:
    out = materialize(("NumericPoints", {"header": header(1), "series": [_series("a", [0.0]), _series("b", [0.0])]}))
    assert [r[2] for r in rows(out["points_numeric"])] == ["a", "b"]


def test_text_rows_are_ordered_with_their_values() -> None:
    def text(channel: str, x: float, y: str) -> dict[str, Any]:
        return {"channel": channel, "namespace": "user", "generation": 0, "xs": [x], "ys": [y], "ts": [x]}

    out = materialize(("TextPoints", {"header": header(1), "series": [text("b", 1.0, "B"), text("a", 2.0, "A")]}))
    assert [(r[2], r[5]) for r in rows(out["points_text"])] == [("a", "A"), ("b", "B")]


def test_runs_build_dictionary_encoded_columns() -> None:
    runs = Runs()
    runs.extend("exp-b", 3)
    runs.extend("exp-a", 2)
    runs.extend("exp-b", 1)
    runs.extend("exp-c", 0)
    assert len(runs) == 6
    built = runs.build()
    assert isinstance(built, Coded)
    assert list(built.values) == ["exp-b", "exp-a", "exp-c"]  # first-seen order
    assert list(built) == ["exp-b"] * 3 + ["exp-a"] * 2 + ["exp-b"]
    assert built.codes.tolist() == [0, 0, 0, 1, 1, 0]


def test_runs_of_numbers_build_plain_arrays() -> None:
    runs = Runs()
    runs.extend(0, 2)
    runs.extend(3, 1)
    built = runs.build()
    assert isinstance(built, np.ndarray)
    assert built.tolist() == [0, 0, 3]


def test_empty_runs_build_an_empty_column() -> None:
    built = Runs().build()
    assert len(built) == 0


def test_a_large_batch_keeps_one_category_per_distinct_value() -> None:
    batch = Materializer()
    for i in range(50):
        xs = [float(i * 100 + j) for j in range(100)]
        batch.add(
            "NumericPoints",
            {
                "header": header(i + 1),
                "series": [{"channel": "loss", "namespace": "user", "generation": 0, "xs": xs, "ys": xs, "ts": xs}],
            },
        )
    columns = batch.columns()["points_numeric"]
    assert len(columns["x"]) == 5000
    assert columns["x"].tolist() == [float(i) for i in range(5000)]
    assert list(columns["channel"].values) == ["loss"]
    assert list(columns["experiment_id"].values) == [E]
