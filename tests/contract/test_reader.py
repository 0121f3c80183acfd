"""The query side over every table store: one event stream, materialized by the Runner, read by every Reader method.

chdb (with a local object folder) and a ClickHouse 18.16 server (with the S3 server) are filled from the
same events, replayed once more by a second consumer group; every read must give the same answer,
types included, and the answers are checked against what the events say.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from expstream import schemas
from expstream.consumers.runner import Runner
from expstream.consumers.sinks.base import ObjectStore, TableStore
from expstream.consumers.sources.memory import MemorySource
from expstream.eventlog.memory import MemoryLog
from expstream.eventlog.records import BLOBS, EVENTS
from expstream.exceptions import ExperimentNotFound, FileNotFound, InvalidChannelValue
from expstream.producer.transports.memory import MemoryTransport
from expstream.query.reader import Reader
from expstream.wiring import TABLE_STORES, create_object_store, create_table_store

PROJECT, OTHER = "acme/sandbox", "acme/other ✓"
E1 = "0a0a0a0a-0000-4000-8000-000000000001"
E2 = "0b0b0b0b-0000-4000-8000-000000000002"
E3 = "0c0c0c0c-0000-4000-8000-000000000003"
E4 = "0d0d0d0d-0000-4000-8000-000000000004"
T0 = 1_700_000_000.0
NOW = 2e9
TRICKY = 'it\'s "q" \\ ; DROP TABLE x; -- ünï ✓ 日本'
CHANNELS = ["loss", TRICKY, "reset;me\\"]
WEIGHTS = bytes(range(256)) * 5
HARDWARE = ["cpu", "gpu_mem_0", "gpu_util_0", "ram", "cpu_pid42"]


@dataclasses.dataclass
class Producer:
    """Hand-made events of one session, numbered and timed like the real producer's."""

    experiment_id: str
    ts: float = T0
    session_id: str = "5e55" * 8
    seq: int = 0
    sent: list[tuple[str, str, bytes]] = dataclasses.field(default_factory=list)

    def event(self, kind: str, topic: str = EVENTS, **fields: Any) -> None:
        self.seq += 1
        self.ts += 1.0
        header = {"event_id": f"{self.experiment_id[:4]}{self.seq:028x}", "experiment_id": self.experiment_id,
                  "session_id": self.session_id, "seq": self.seq, "ts": self.ts, "host": "h", "pid": 42}  # fmt: skip
        self.sent.append((topic, self.experiment_id, schemas.encode(kind, {"header": header, **fields})))

    def created(self, number: int, owner: str, tags: list[str], project: str = PROJECT) -> None:
        params = [{"name": "lr", "value": "0.01", "type": "double"},
                  {"name": TRICKY, "value": TRICKY, "type": "string"}]  # fmt: skip
        self.event("ExperimentCreated", project=project, short_id=f"SAN-{number}", number=number, name=f"run {number}",
                   description=f"notes of {number}: {TRICKY}", owner=owner, hostname="node-1", params=params,
                   properties={"from": "creation", TRICKY: TRICKY}, tags=tags, system={"python": "3.11"})  # fmt: skip
        self.event("StateChanged", state="running", traceback=None)

    def points(self, channel: str, xs: list[float], namespace: str = "user", generation: int = 0) -> None:
        series = {"channel": channel, "namespace": namespace, "generation": generation, "xs": xs,
                  "ys": [value(channel, x, generation) for x in xs], "ts": [self.ts] * len(xs)}  # fmt: skip
        self.event("NumericPoints", series=[series])

    def texts(self, channel: str, xs: list[float], namespace: str = "user") -> None:
        series = {"channel": channel, "namespace": namespace, "generation": 0, "xs": xs,
                  "ys": [f"line {x:g}: {TRICKY}\nnext" for x in xs], "ts": [self.ts] * len(xs)}  # fmt: skip
        self.event("TextPoints", series=[series])

    def blob(self, data: bytes, chunk: int) -> str:
        sha = hashlib.sha256(data).hexdigest()
        for offset in range(0, max(len(data), 1), chunk):
            self.event("ArtifactChunk", topic=BLOBS, sha256=sha, offset=offset, size=len(data),
                       data=data[offset : offset + chunk])  # fmt: skip
        return sha


def value(channel: str, x: float, generation: int = 0) -> float:
    return (len(channel) * 1000.0 + x) / 7.0 + generation * 1e6


def history(p: Producer, number: int, owner: str, tags: list[str], end: str | None) -> None:
    """Everything an experiment goes through; ``end``: its last state (None: still running)."""
    p.created(number, owner, tags)
    p.points("loss", [float(x) for x in range(40)])
    p.points(TRICKY, [0.5, 1.5, 2.5])
    p.points("reset;me\\", [0.0, 1.0, 2.0, 3.0])
    p.event("ChannelReset", channel="reset;me\\", namespace="user", type="numeric", generation=1)
    p.points("reset;me\\", [0.0, 1.0], generation=1)
    p.event("ChannelReset", channel="reset;me\\", namespace="user", type="numeric", generation=2)
    p.points("reset;me\\", [5.0], generation=2)
    p.points("loss", [float(x) for x in range(40, 50)])
    p.texts("notes 'n'", [0.0, 1.0, 2.0])
    image = b"\x89PNG fake image " + p.experiment_id.encode()
    sha_image = p.blob(image, chunk=7)
    p.event("ImagePoints", series=[{"channel": "pictures ✓", "namespace": "user", "generation": 0, "xs": [0.0, 1.0],
                                    "ts": [p.ts, p.ts], "names": ["first;'", None], "descriptions": [None, "d\\2"],
                                    "sha256s": [sha_image] * 2, "sizes": [len(image)] * 2}])  # fmt: skip
    for i, name in enumerate(HARDWARE):
        p.points(name, [float(x) for x in range(3 + i)], namespace="system")
    p.texts("stdout", [0.0], namespace="system")
    p.event("TagsAdded", tags=["extra", "gone", TRICKY])
    p.event("TagsRemoved", tags=["gone"])
    p.event("PropertySet", key="k", value="v1")
    p.event("PropertySet", key="k", value=f"v2 {TRICKY}")
    p.event("PropertySet", key="tmp", value="x")
    p.event("PropertyRemoved", key="tmp")
    sha_weights = p.blob(WEIGHTS + p.experiment_id.encode(), chunk=100)
    p.event("ArtifactCommitted", path="model/weights ✓.bin", sha256=sha_weights, size=len(WEIGHTS) + 36)
    sha_small = p.blob(b"small", chunk=100)
    p.event("ArtifactCommitted", path="notes.txt", sha256=sha_small, size=5)
    sha_old = p.blob(b"to be deleted", chunk=4)
    p.event("ArtifactCommitted", path="old/file", sha256=sha_old, size=13)
    p.event("ArtifactDeleted", path="old/file")
    source = p.blob(b"print('hi')\n", chunk=100)
    p.event("SourceFiles", files=[{"path": "train ✓.py", "sha256": source, "size": 12, "mode": 0o644}])
    p.event("Heartbeat")
    if end is not None:
        p.event("StateChanged", state=end, traceback="Traceback: boom ✓" if end == "failed" else None)


def all_events() -> list[tuple[str, str, bytes]]:
    p1 = Producer(E1)
    history(p1, 1, "alice", ["base", "shared"], "succeeded")
    p2 = Producer(E2, ts=T0 + 10_000, session_id="6e66" * 8)
    history(p2, 2, "bob's", ["shared"], "failed")
    p3 = Producer(E3, ts=T0 + 20_000, session_id="7e77" * 8)
    history(p3, 3, "alice", [], None)  # running, heartbeats long gone: reads as aborted
    p4 = Producer(E4, ts=T0 + 30_000, session_id="8e88" * 8)
    p4.created(1, "carol", ["shared"], project=OTHER)
    return p1.sent + p2.sent + p3.sent + p4.sent


# --- the stores ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    kind: str
    reader: Reader
    tables: TableStore
    objects: ObjectStore
    _snapshot: dict[str, Any] | None = None

    def snapshot(self) -> dict[str, Any]:
        """Every read (:func:`everything`), taken once: the stores do not change after :func:`fill`."""
        if self._snapshot is None:
            self._snapshot = everything(self.reader)
        return self._snapshot


def fill(tables: TableStore, objects: ObjectStore) -> None:
    """The events through the Runner, then all of them again through a second consumer group (a replay)."""
    log = MemoryLog(partitions=3)
    transport = MemoryTransport(log)
    events = all_events()
    for topic, key, message in events:
        transport.send(topic, key, [message])
    for group, batch in (("materializer", 40), ("replay", 17)):
        assert Runner(MemorySource(log, group=group), tables, objects, group=group, max_records=batch).catch_up() == (
            len(events)
        )


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, pytest.FixtureRequest], World]]:
    """Builds the world of a store kind once per module: chdb + local folder, or ClickHouse + S3."""
    built: dict[str, World] = {}

    def get(kind: str, request: pytest.FixtureRequest) -> World:
        if kind not in built:
            if kind == "chdb":
                folder = tmp_path_factory.mktemp("reader")
                tables = create_table_store(kind, folder=folder / "chdb")
                objects = create_object_store("localfs", root=folder / "objects")
            else:
                tables = create_table_store(kind, url=request.getfixturevalue("new_clickhouse_url")())
                tables.ensure_schema()
                objects = create_object_store(
                    "s3", url=request.getfixturevalue("new_s3_url")(), ca=request.getfixturevalue("s3_ca")
                )
            fill(tables, objects)
            built[kind] = World(kind, Reader(tables, objects, refresh=None), tables, objects)
        return built[kind]

    yield get
    for world in built.values():
        world.tables.close()
        world.objects.close()


@pytest.fixture(params=TABLE_STORES)
def world(request: pytest.FixtureRequest, worlds: Callable[[str, pytest.FixtureRequest], World]) -> World:
    return worlds(request.param, request)


# --- every read, as plain comparable values ------------------------------------------------------------


def canon(obj: Any) -> Any:
    """A value with its type spelled out, so that equal canons mean equal values of equal types."""
    if isinstance(obj, pd.DataFrame):
        return {"columns": [str(c) for c in obj.columns], "dtypes": [str(t) for t in obj.dtypes],
                "rows": [[canon(v) for v in row] for row in obj.itertuples(index=False)]}  # fmt: skip
    if isinstance(obj, np.ndarray):
        return ("ndarray", str(obj.dtype), [canon(v) for v in obj.tolist()])
    if isinstance(obj, np.generic):
        return (type(obj).__name__, canon(obj.item()))
    if isinstance(obj, float):
        return "nan" if np.isnan(obj) else obj
    if isinstance(obj, dict):
        return {str(k): canon(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [canon(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return canon(dataclasses.asdict(obj))
    if isinstance(obj, dt.datetime):
        return obj.isoformat()
    if obj is pd.NaT:
        return "NaT"
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


FILTERS: dict[str, dict[str, Any]] = {
    "all": {},
    "ids": {"ids": ["SAN-2", "SAN-3", "SAN-9"]},
    "states": {"states": ["succeeded", "aborted"]},
    "owners": {"owners": ["bob's", "nobody"]},
    "tags": {"tags": ["shared", TRICKY]},
    "one_tag": {"tags": ["base"]},
    "removed_tag": {"tags": ["gone"]},
    "min_running_time": {"min_running_time": 100},
    "combined": {"owners": ["alice"], "tags": ["shared"], "states": ["succeeded"], "ids": ["SAN-1"]},
}


def system_properties(reader: Reader, internal_id: str) -> dict[str, Any]:
    """``system_properties`` without the running time of a running experiment (it grows while we look)."""
    props = reader.system_properties(internal_id)
    if props["finished"] is None:
        assert props.pop("running_time") > 0
    return props


def everything(reader: Reader) -> dict[str, Any]:
    """Every Reader method, every filter, every experiment."""
    with reader.tables.hold():
        out: dict[str, Any] = {"projects": reader.projects(), "owners": reader.owners(PROJECT)}
        for name, filters in FILTERS.items():
            out[f"find {name}"] = reader.find_experiments(PROJECT, now=NOW, **filters)
            out[f"leaderboard {name}"] = reader.leaderboard(PROJECT, now=NOW, **filters)
        out["find other"] = reader.find_experiments(OTHER, now=NOW)
        for e in (E1, E2, E3, E4):
            out[e] = {
                "experiment": reader.experiment(e),
                "system": system_properties(reader, e),
                "tags": reader.tags(e),
                "properties": reader.properties(e),
                "parameters": reader.parameters(e),
                "channels": reader.channels(e),
                "system_channels": reader.channels(e, "system"),
                "artifacts": reader.artifacts(e),
                "sources": reader.sources(e),
                "hardware": reader.hardware_utilization(e),
            }
            if e != E4:
                out[e]["numeric"] = reader.numeric_values(e, [*CHANNELS, "loss"])
                out[e]["numeric one"] = reader.numeric_values(e, [TRICKY])
                out[e]["numeric system"] = reader.numeric_values(e, ["cpu", "ram"], namespace="system")
                out[e]["blobs"] = {path: reader.blob(sha) for path, (sha, _) in reader.artifacts(e).items()}
                out[e]["source blobs"] = {path: reader.blob(sha) for path, (sha, _) in reader.sources(e).items()}
    return out


@pytest.fixture
def snap(world: World) -> dict[str, Any]:
    return world.snapshot()


# --- both stores answer alike ------------------------------------------------------------------------


def test_every_read_is_identical_on_every_store(
    request: pytest.FixtureRequest, worlds: Callable[[str, pytest.FixtureRequest], World]
) -> None:
    snaps = {kind: canon(worlds(kind, request).snapshot()) for kind in TABLE_STORES}
    first, *others = TABLE_STORES
    for kind in others:
        for key in snaps[first]:
            assert snaps[kind][key] == snaps[first][key], f"{kind} differs from {first} in {key!r}"


# --- and they answer what the events say ---------------------------------------------------------------


def test_experiments(snap: dict[str, Any]) -> None:
    assert snap["projects"] == sorted([PROJECT, OTHER])
    assert snap["owners"] == ["alice", "bob's"]
    assert snap["find all"] == [("SAN-1", E1), ("SAN-2", E2), ("SAN-3", E3)]
    assert snap["find other"] == [("SAN-1", E4)]
    e1, e2, e3 = snap[E1]["experiment"], snap[E2]["experiment"], snap[E3]["experiment"]
    assert (e1["state"], e2["state"], e3["state"]) == ("succeeded", "failed", "aborted")
    assert e1["name"] == "run 1" and e1["description"] == f"notes of 1: {TRICKY}" and e1["owner"] == "alice"
    assert e1["finished"] == e1["state_ts"] and e1["created"] == T0 + 1
    assert e3["finished"] == e3["heartbeat"] + 60  # aborted when the heartbeats stopped
    system = snap[E1]["system"]
    assert system["id"] == "SAN-1" and system["tags"] == snap[E1]["tags"]
    assert system["created"] == dt.datetime.fromtimestamp(T0 + 1, tz=dt.timezone.utc)
    assert system["size"] == system["storage_size"] + system["channels_size"] > 0


def test_find_experiments_with_every_filter(snap: dict[str, Any]) -> None:
    assert snap["find ids"] == [("SAN-2", E2), ("SAN-3", E3)]
    assert snap["find states"] == [("SAN-1", E1), ("SAN-3", E3)]
    assert snap["find owners"] == [("SAN-2", E2)]
    assert snap["find tags"] == [("SAN-1", E1), ("SAN-2", E2)]
    assert snap["find one_tag"] == [("SAN-1", E1)]
    assert snap["find removed_tag"] == []
    assert snap["find min_running_time"] == [("SAN-3", E3)]  # aborted a minute after its last heartbeat
    assert snap["find combined"] == [("SAN-1", E1)]


def test_leaderboard(snap: dict[str, Any]) -> None:
    board = snap["leaderboard all"]
    assert board["id"].tolist() == ["SAN-1", "SAN-2", "SAN-3"]
    assert board["owner"].tolist() == ["alice", "bob's", "alice"]
    assert board["tags"].tolist()[1] == sorted(["shared", "extra", TRICKY])
    assert board[f"channel_{TRICKY}"].tolist() == [str(value(TRICKY, 2.5))] * 3
    assert board["channel_reset;me\\"].tolist() == [str(value("reset;me\\", 5.0, 2))] * 3
    assert board["channel_notes 'n'"].tolist() == [f"line 2: {TRICKY}\nnext"[:255]] * 3
    assert board[f"parameter_{TRICKY}"].tolist() == [TRICKY] * 3
    assert board[f"property_{TRICKY}"].tolist() == [TRICKY] * 3
    assert board["property_k"].tolist() == [f"v2 {TRICKY}"] * 3
    assert "property_tmp" not in board.columns
    assert snap["leaderboard removed_tag"].empty
    assert snap["leaderboard owners"]["id"].tolist() == ["SAN-2"]


def test_tags_properties_parameters(snap: dict[str, Any]) -> None:
    s = snap[E1]
    assert s["tags"] == sorted(["base", "shared", "extra", TRICKY])
    assert s["properties"] == {"from": "creation", TRICKY: TRICKY, "k": f"v2 {TRICKY}"}
    assert s["parameters"] == {"lr": 0.01, TRICKY: TRICKY}
    assert snap[E3]["tags"] == sorted(["extra", TRICKY])


def test_channels_and_values(snap: dict[str, Any]) -> None:
    s = snap[E1]
    kinds = {c.name: (c.channelType, c.lastX, c.y, c.generation) for c in s["channels"]}
    assert kinds == {
        "loss": ("numeric", 49.0, value("loss", 49.0), 0),
        TRICKY: ("numeric", 2.5, value(TRICKY, 2.5), 0),
        "reset;me\\": ("numeric", 5.0, value("reset;me\\", 5.0, 2), 2),
        "notes 'n'": ("text", 2.0, f"line 2: {TRICKY}\nnext", 0),
        "pictures ✓": ("image", 1.0, "", 0),
    }
    assert [c.name for c in s["system_channels"]] == sorted([*HARDWARE, "stdout"])
    numeric = s["numeric"]
    points = {"loss": [float(x) for x in range(50)], TRICKY: [0.5, 1.5, 2.5], "reset;me\\": [5.0]}
    xs = sorted({x for v in points.values() for x in v})
    assert list(numeric.columns) == ["x", *CHANNELS]
    assert numeric["x"].tolist() == xs
    for name, generation in (("loss", 0), (TRICKY, 0), ("reset;me\\", 2)):  # only the current generation
        expected = [value(name, x, generation) if x in points[name] else None for x in xs]
        assert [None if np.isnan(v) else v for v in numeric[name]] == expected, name
    one = s["numeric one"]
    assert one.to_dict("list") == {"x": [0.5, 1.5, 2.5], TRICKY: [value(TRICKY, x) for x in (0.5, 1.5, 2.5)]}
    assert s["numeric system"]["cpu"].tolist()[:3] == [value("cpu", x) for x in range(3)]


def test_hardware_utilization(snap: dict[str, Any]) -> None:
    hardware = snap[E1]["hardware"]
    order = ["ram", "cpu", "gpu_util_0", "gpu_mem_0", "cpu_pid42"]
    assert list(hardware.columns) == [f"{axis}_{name}" for name in order for axis in ("x", "y")]
    sizes = {name: 3 + HARDWARE.index(name) for name in order}
    for name, n in sizes.items():
        got = hardware[f"y_{name}"].dropna().tolist()
        assert got == [value(name, x) for x in range(n)], name
    assert snap[E4]["hardware"].empty


def test_artifacts_sources_and_blobs(snap: dict[str, Any]) -> None:
    s = snap[E1]
    weights = WEIGHTS + E1.encode()
    assert s["artifacts"] == {
        "model/weights ✓.bin": (hashlib.sha256(weights).hexdigest(), len(weights)),
        "notes.txt": (hashlib.sha256(b"small").hexdigest(), 5),
    }
    assert s["blobs"] == {"model/weights ✓.bin": weights, "notes.txt": b"small"}
    assert s["sources"] == {"train ✓.py": (hashlib.sha256(b"print('hi')\n").hexdigest(), 12)}
    assert s["source blobs"] == {"train ✓.py": b"print('hi')\n"}
    assert snap[E4]["artifacts"] == {} and snap[E4]["sources"] == {}


def test_missing_things(world: World) -> None:
    reader = world.reader
    with pytest.raises(ExperimentNotFound):
        reader.experiment("no-such-experiment", "SAN-404", PROJECT)
    with pytest.raises(ExperimentNotFound):
        reader.created("no-such-experiment", "SAN-404", PROJECT)
    with pytest.raises(FileNotFound):
        reader.blob("0" * 64)
    with pytest.raises(KeyError):
        reader.numeric_values(E1, ["no such log"])
    with pytest.raises(InvalidChannelValue):
        reader.numeric_values(E1, ["notes 'n'"])
    assert reader.find_experiments("no/project", now=NOW) == []
    assert reader.leaderboard("no/project", now=NOW).empty
    assert reader.tags("no-such-experiment") == [] and reader.properties("no-such-experiment") == {}


# --- an experiment whose ExperimentCreated was lost ----------------------------------------------------

LOST = "acme/lost 'n' ✓"
E5 = "0e0e0e0e-0000-4000-8000-000000000005"
E6 = "0f0f0f0f-0000-4000-8000-000000000006"


@pytest.mark.parametrize("kind", TABLE_STORES)
def test_an_experiment_known_only_from_its_identified_event(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Shown from ExperimentIdentified, with defaults for what only ExperimentCreated held; replayed twice."""
    if kind == "chdb":
        tables = create_table_store(kind, folder=tmp_path / "chdb")
        objects = create_object_store("localfs", root=tmp_path / "objects")
    else:
        tables = create_table_store(kind, url=request.getfixturevalue("new_clickhouse_url")())
        s3_url, ca = request.getfixturevalue("new_s3_url")(), request.getfixturevalue("s3_ca")
        objects = create_object_store("s3", url=s3_url, ca=ca)
    lost, kept = Producer(E5), Producer(E6, ts=T0 + 100, session_id="9e99" * 8)
    lost.event("ExperimentIdentified", project=LOST, short_id="LOS-1", number=1)  # its ExperimentCreated is gone
    lost.event("StateChanged", state="running", traceback=None)
    lost.points("loss", [0.0, 1.0, 2.0])
    lost.event("StateChanged", state="succeeded", traceback=None)
    kept.created(2, "dave", ["t"], project=LOST)
    kept.event("ExperimentIdentified", project=LOST, short_id="SAN-2", number=2)
    log = MemoryLog(partitions=2)
    for topic, key, message in lost.sent + kept.sent:
        MemoryTransport(log).send(topic, key, [message])
    try:
        tables.ensure_schema()
        for group in ("materializer", "replay"):
            Runner(MemorySource(log, group=group), tables, objects, group=group).catch_up()
        reader = Reader(tables, objects)
        with tables.hold():
            assert reader.find_experiments(LOST, now=NOW) == [("LOS-1", E5), ("SAN-2", E6)]
            row = reader.experiment(E5)
            assert (row["short_id"], int(row["number"]), row["project"]) == ("LOS-1", 1, LOST)
            assert row["state"] == "succeeded"
            assert (row["name"], row["owner"], row["description"], row["created"]) == ("Untitled", "", "", T0 + 1)
            assert reader.experiment(E6)["name"] == "run 2"  # a created record wins over the identified one
            assert (reader.created(E5), reader.created(E6)) == (T0 + 1, reader.experiment(E6)["created"])
            assert reader.numeric_values(E5, ["loss"])["loss"].tolist() == [value("loss", x) for x in (0.0, 1.0, 2.0)]
            assert reader.leaderboard(LOST, now=NOW)["id"].tolist() == ["LOS-1", "SAN-2"]
            assert LOST in reader.projects()
            assert reader.find_experiments(LOST, now=NOW, states=["succeeded"]) == [("LOS-1", E5)]
    finally:
        tables.close()
        objects.close()
