"""The consumer runner over real adapters: chdb tables, a local object folder, memory and local logs.

What is checked is what a reader sees: every guarantee is stated as query results through
:class:`expstream.query.reader.Reader`, before and after replays, bad records and corrupted logs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from expstream import schemas
from expstream.config import Settings
from expstream.consumers.runner import Runner
from expstream.consumers.sinks.chdb import ChdbTables
from expstream.consumers.sinks.layout import part_prefix
from expstream.consumers.sinks.localfs import LocalFolderStore
from expstream.consumers.sources.local_log import LocalLogSource
from expstream.consumers.sources.memory import MemorySource
from expstream.eventlog.local_log import LocalLog, frame_records
from expstream.eventlog.memory import MemoryLog
from expstream.eventlog.records import BLOBS, EVENTS, Record
from expstream.exceptions import FileNotFound, StorageError
from expstream.producer.blobs import send_bytes
from expstream.producer.transports.local_log import LocalLogTransport
from expstream.producer.transports.memory import MemoryTransport
from expstream.producer.writer import Writer
from expstream.query.reader import Reader

PROJECT = "acme/sandbox"
E1 = "0a0a0a0a-0000-4000-8000-000000000001"
E2 = "0b0b0b0b-0000-4000-8000-000000000002"


# --- building event streams ---------------------------------------------------------------------


@dataclass
class Producer:
    """Hand-made events of one session, numbered and timed like the real producer's."""

    experiment_id: str
    session_id: str = "5e55" * 8
    seq: int = 0
    ts: float = 1_700_000_000.0
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)

    def event(self, kind: str, topic: str = EVENTS, **fields: Any) -> bytes:
        self.seq += 1
        self.ts += 1.0
        header = {
            "event_id": f"{self.seq:032x}",
            "experiment_id": self.experiment_id,
            "session_id": self.session_id,
            "seq": self.seq,
            "ts": self.ts,
            "host": "node-1",
            "pid": 4242,
        }
        message = schemas.encode(kind, {"header": header, **fields})
        self.sent.append((topic, self.experiment_id, message))
        return message

    def created(self, number: int, tags: list[str]) -> None:
        self.event(
            "ExperimentCreated",
            project=PROJECT,
            short_id=f"SAN-{number}",
            number=number,
            name=f"run {number}",
            description="a run",
            owner="alice",
            hostname="node-1",
            params=[
                {"name": "lr", "value": "0.01", "type": "double"},
                {"name": "opt", "value": "adam", "type": "string"},
            ],
            properties={"from": "creation"},
            tags=tags,
            system={"python": "3.11"},
        )
        self.event("StateChanged", state="running", traceback=None)

    def points(self, channel: str, start: int, n: int, namespace: str = "user", generation: int = 0) -> None:
        xs = [float(x) for x in range(start, start + n)]
        self.event(
            "NumericPoints",
            series=[
                {
                    "channel": channel,
                    "namespace": namespace,
                    "generation": generation,
                    "xs": xs,
                    "ys": [value(channel, x) for x in xs],
                    "ts": xs,
                }
            ],
        )

    def texts(self, channel: str, start: int, n: int) -> None:
        xs = [float(x) for x in range(start, start + n)]
        self.event(
            "TextPoints",
            series=[
                {
                    "channel": channel,
                    "namespace": "user",
                    "generation": 0,
                    "xs": xs,
                    "ys": [f"line {x:g} ✓ 'q' \\ ;" for x in xs],
                    "ts": xs,
                }
            ],
        )

    def blob(self, data: bytes, path: str, chunk: int) -> str:
        sha = hashlib.sha256(data).hexdigest()
        for offset in range(0, len(data), chunk):
            self.event(
                "ArtifactChunk",
                topic=BLOBS,
                sha256=sha,
                offset=offset,
                size=len(data),
                data=data[offset : offset + chunk],
            )
        self.event("ArtifactCommitted", path=path, sha256=sha, size=len(data))
        return sha


def value(channel: str, x: float) -> float:
    return (len(channel) * 1000.0 + x) / 7.0


def full_history(p: Producer, number: int) -> None:
    """Every kind of change an experiment goes through, ending succeeded."""
    p.created(number, ["base", "shared"])
    p.points("loss", 0, 50)
    p.points("acc", 0, 20)
    p.points("loss", 50, 50)
    p.points("cpu", 0, 5, namespace="system")
    p.texts("notes", 0, 3)
    p.event("TagsAdded", tags=["extra", "gone"])
    p.event("TagsRemoved", tags=["gone"])
    p.event("PropertySet", key="k", value="v1")
    p.event("PropertySet", key="k", value="v2")
    p.event("PropertySet", key="tmp", value="x")
    p.event("PropertyRemoved", key="tmp")
    p.points("reset-me", 0, 10)
    p.event("ChannelReset", channel="reset-me", namespace="user", type="numeric", generation=1)
    p.points("reset-me", 0, 3, generation=1)
    p.blob(bytes(range(256)) * 3 + p.experiment_id.encode(), "model/weights.bin", chunk=100)
    p.blob(b"small", "notes.txt", chunk=100)
    p.blob(b"to be deleted", "old/file", chunk=4)
    p.event("ArtifactDeleted", path="old/file")
    p.event(
        "SourceFiles",
        files=[{"path": "train.py", "sha256": hashlib.sha256(b"print()").hexdigest(), "size": 7, "mode": 0o644}],
    )
    p.event("Heartbeat")
    p.event("StateChanged", state="succeeded", traceback=None)


def send_all(transport: Any, sent: list[tuple[str, str, bytes]]) -> None:
    for topic, key, message in sent:
        transport.send(topic, key, [message])


# --- what a reader sees -----------------------------------------------------------------------------


def plain(df: pd.DataFrame) -> dict[str, list[Any]]:
    """A frame as comparable lists: NaN (never equal to itself) becomes None."""
    return df.astype(object).where(df.notna(), None).to_dict("list")


def snapshot(reader: Reader, experiment_ids: list[str]) -> dict[str, Any]:
    """Every read of the query side, as plain values."""
    with reader.tables.hold():
        out: dict[str, Any] = {
            "projects": reader.projects(),
            "owners": reader.owners(PROJECT),
            "find": reader.find_experiments(PROJECT, now=2e9),
            "find_tagged": reader.find_experiments(PROJECT, tags=["shared", "extra"], now=2e9),
            "leaderboard": plain(reader.leaderboard(PROJECT, now=2e9)),
        }
        for e in experiment_ids:
            row = reader.experiment(e)
            out[e] = {
                "experiment": {
                    k: row[k] for k in ("short_id", "number", "name", "owner", "created", "state", "finished")
                },
                "system": reader.system_properties(e),
                "tags": reader.tags(e),
                "properties": reader.properties(e),
                "parameters": reader.parameters(e),
                "channels": reader.channels(e),
                "system_channels": reader.channels(e, "system"),
                "numeric": plain(reader.numeric_values(e, ["loss", "acc", "reset-me"])),
                "artifacts": reader.artifacts(e),
                "sources": reader.sources(e),
                "blobs": {path: reader.blob(sha) for path, (sha, _) in reader.artifacts(e).items()},
                "hardware": plain(reader.hardware_utilization(e)),
            }
    return out


def count(tables: ChdbTables, sql: str) -> int:
    return int(tables.query_df(sql).iloc[0, 0])


@pytest.fixture
def tables(tmp_path: Path) -> Iterator[ChdbTables]:
    store = ChdbTables(tmp_path / "chdb")
    yield store
    store.close()


@pytest.fixture
def objects(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "objects")


def expected_points(n_loss: int = 100, n_acc: int = 20) -> dict[str, list[float]]:
    xs = [float(x) for x in range(n_loss)]
    return {
        "x": xs,
        "loss": [value("loss", x) for x in xs],
        "acc": [value("acc", x) if x < n_acc else float("nan") for x in xs],
    }


def check_history(snap: dict[str, Any], e: str, number: int) -> None:
    """The snapshot of one experiment holds exactly what :func:`full_history` logged."""
    s = snap[e]
    assert s["experiment"]["short_id"] == f"SAN-{number}" and s["experiment"]["state"] == "succeeded"
    assert s["tags"] == ["base", "extra", "shared"]
    assert s["properties"] == {"from": "creation", "k": "v2"}
    assert s["parameters"] == {"lr": 0.01, "opt": "adam"}
    assert s["numeric"]["x"] == [float(x) for x in range(100)]
    assert s["numeric"]["loss"] == [value("loss", x) for x in range(100)]
    assert s["numeric"]["acc"] == [value("acc", x) for x in range(20)] + [None] * 80
    assert s["numeric"]["reset-me"] == [value("reset-me", x) for x in range(3)] + [None] * 97  # generation 1 only
    assert {c.name: (c.channelType, c.lastX) for c in s["channels"]} == {
        "loss": ("numeric", 99.0),
        "acc": ("numeric", 19.0),
        "reset-me": ("numeric", 2.0),
        "notes": ("text", 2.0),
    }
    assert [c.name for c in s["system_channels"]] == ["cpu"]
    weights = bytes(range(256)) * 3 + e.encode()
    assert s["artifacts"] == {
        "model/weights.bin": (hashlib.sha256(weights).hexdigest(), len(weights)),
        "notes.txt": (hashlib.sha256(b"small").hexdigest(), 5),
    }
    assert s["blobs"] == {"model/weights.bin": weights, "notes.txt": b"small"}
    assert list(s["sources"]) == ["train.py"]
    # 100 loss + 20 acc + 5 cpu (numeric, 16 bytes each) + 3 texts + 13 reset-me points of both generations
    texts = sum(len(f"line {x:g} ✓ 'q' \\ ;".encode()) + 8 for x in range(3))
    assert s["system"]["channels_size"] == (100 + 20 + 5 + 10 + 3) * 16 + texts


# --- (a) idempotent replay --------------------------------------------------------------------------


def test_replaying_every_event_changes_no_query_result(tables: ChdbTables, objects: LocalFolderStore) -> None:
    log = MemoryLog(partitions=2)
    p1, p2 = Producer(E1), Producer(E2, session_id="6e66" * 8)
    full_history(p1, 1)
    full_history(p2, 2)
    send_all(MemoryTransport(log), p1.sent + p2.sent)
    runner = Runner(MemorySource(log, group="g"), tables, objects, group="g", max_records=30)
    assert runner.catch_up() == len(p1.sent) + len(p2.sent)
    reader = Reader(tables, objects)
    first = snapshot(reader, [E1, E2])
    check_history(first, E1, 1)
    check_history(first, E2, 2)
    assert first["find"] == [("SAN-1", E1), ("SAN-2", E2)]
    assert first["find_tagged"] == first["find"]

    # every record again, in one batch, straight into process()
    everything = [r for tp in sorted(log.committed("g")) for r in log.read(*tp, 0, 10_000)]
    assert len(everything) == len(p1.sent) + len(p2.sent)
    assert runner.process(everything) == len(everything)
    assert snapshot(reader, [E1, E2]) == first

    # and a third time through a consumer group that starts from offset 0
    again = Runner(MemorySource(log, group="other"), tables, objects, group="other", max_records=25)
    assert again.catch_up() == len(everything)
    assert snapshot(reader, [E1, E2]) == first
    with tables.hold():
        # the history has one row per event however often it was applied (twins replace each other)
        assert count(tables, "SELECT count() FROM events FINAL") == len(everything)
        assert count(tables, "SELECT count() FROM points_numeric FINAL") == 2 * (100 + 20 + 5 + 10 + 3)
    assert objects.list("parts/") == []


def test_a_crash_between_data_and_progress_replays_without_a_trace(
    tables: ChdbTables, objects: LocalFolderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = MemoryLog(partitions=1)
    p = Producer(E1)
    full_history(p, 1)
    send_all(MemoryTransport(log), p.sent)
    runner = Runner(MemorySource(log, group="g"), tables, objects, group="g", max_records=10)
    insert = tables.insert
    calls = {"progress": 0}

    def crash_on_third_progress(table: str, columns: Any) -> None:
        if table == "consumer_progress":
            calls["progress"] += 1
            if calls["progress"] == 3:
                raise StorageError("simulated crash after the data, before the position")
        insert(table, columns)

    monkeypatch.setattr(tables, "insert", crash_on_third_progress)
    with pytest.raises(StorageError, match="simulated crash"):
        runner.catch_up()
    monkeypatch.setattr(tables, "insert", insert)
    with tables.hold():
        assert sum(runner.progress().values()) == 20  # two batches of ten made it (offsets are indices)
    restarted = Runner(MemorySource(log, group="g"), tables, objects, group="g", max_records=10)
    assert restarted.catch_up() == len(p.sent) - 20
    check_history(snapshot(Reader(tables, objects), [E1]), E1, 1)


# --- (b) dead letters -------------------------------------------------------------------------------


def test_bad_records_are_dead_lettered_and_the_catch_up_goes_on(
    tables: ChdbTables, objects: LocalFolderStore, tmp_path: Path
) -> None:
    log = MemoryLog(partitions=1)
    transport = MemoryTransport(log)
    p = Producer(E1)
    p.created(1, ["t"])
    p.points("loss", 0, 10)
    send_all(transport, p.sent)
    garbage = b"\x00not an avro message at all"
    transport.send(EVENTS, E1, [garbage])
    malformed = schemas.encode(
        "NumericPoints",
        {
            "header": {
                "event_id": "f" * 32,
                "experiment_id": E1,
                "session_id": "s",
                "seq": 99,
                "ts": 1.0,
                "host": "h",
                "pid": 1,
            },
            "series": [
                {
                    "channel": "loss",
                    "namespace": "user",
                    "generation": 0,
                    "xs": [10.0, 11.0],
                    "ys": [1.0],
                    "ts": [1.0, 2.0],
                }
            ],
        },
    )
    transport.send(EVENTS, E1, [malformed])
    after = len(p.sent)
    p.points("loss", 10, 10)
    p.event("TagsAdded", tags=["after"])
    p.event("PropertySet", key="after", value="yes")
    p.event("StateChanged", state="succeeded", traceback=None)
    send_all(transport, p.sent[after:])

    dead = tmp_path / "dead-letter"
    runner = Runner(MemorySource(log, group="g"), tables, objects, group="g", dead_letter_dir=dead, max_records=3)
    assert runner.catch_up() == len(p.sent)
    assert runner.dead_letters == 2

    garbage_at, malformed_at = after, after + 1  # memory log offsets are record indices
    stems = {f"{EVENTS}-0-{garbage_at}", f"{EVENTS}-0-{malformed_at}"}
    assert sorted(f.name for f in dead.iterdir()) == sorted(
        [f"{s}.bin" for s in stems] + [f"{s}.reason.txt" for s in stems]
    )
    assert (dead / f"{EVENTS}-0-{garbage_at}.bin").read_bytes() == garbage
    assert (dead / f"{EVENTS}-0-{malformed_at}.bin").read_bytes() == malformed
    assert "magic" in (dead / f"{EVENTS}-0-{garbage_at}.reason.txt").read_text()
    assert "different lengths" in (dead / f"{EVENTS}-0-{malformed_at}.reason.txt").read_text()

    reader = Reader(tables, objects)
    with tables.hold():
        values = reader.numeric_values(E1, ["loss"])
        assert values["x"].tolist() == [float(x) for x in range(20)]  # nothing of the malformed batch
        assert values["loss"].tolist() == [value("loss", x) for x in range(20)]
        assert reader.tags(E1) == ["after", "t"]
        assert reader.properties(E1) == {"after": "yes", "from": "creation"}
        assert reader.experiment(E1)["state"] == "succeeded"
        assert runner.progress() == {(EVENTS, 0): len(p.sent) + 2}
    # the positions moved past the bad records: a later catch-up does not meet them again
    assert runner.catch_up() == 0
    assert runner.dead_letters == 2


# --- (c) blobs in many chunks -----------------------------------------------------------------------


def test_a_blob_in_many_chunks_is_reassembled_across_batches(
    tables: ChdbTables, objects: LocalFolderStore, tmp_path: Path
) -> None:
    log = MemoryLog(partitions=1)
    writer = Writer(MemoryTransport(log), Settings(home=tmp_path / "home"))
    try:
        stream = writer.open_stream(E1)
        big = hashlib.sha512(b"seed").digest() * 200  # 12,800 bytes
        sha_big, size_big = send_bytes(writer, stream, big, chunk_bytes=1000)  # 13 chunks, the last one short
        exact = bytes(range(256)) * 8  # 2,048 bytes: two whole chunks
        sha_exact, _ = send_bytes(writer, stream, exact, chunk_bytes=1024)
        sha_again, _ = send_bytes(writer, stream, big, chunk_bytes=1000)  # the same blob twice
    finally:
        writer.close()
    assert (sha_big, size_big) == (hashlib.sha256(big).hexdigest(), len(big)) and sha_again == sha_big
    assert log.end_offset(BLOBS, 0) == 13 + 2 + 13

    runner = Runner(MemorySource(log, group="g"), tables, objects, group="g", max_records=4)
    assert runner.catch_up() == 28 + log.end_offset(EVENTS, 0)  # the flusher may have sent a heartbeat
    assert runner.dead_letters == 0
    reader = Reader(tables, objects)
    for sha, data in ((sha_big, big), (sha_exact, exact)):
        got = reader.blob(sha)
        assert hashlib.sha256(got).hexdigest() == sha
        assert got == data
    assert objects.list("parts/") == []
    assert objects.list("blobs/") == sorted([f"blobs/{sha_big}", f"blobs/{sha_exact}"])


def test_chunks_of_two_blobs_interleaved_are_kept_apart(tables: ChdbTables, objects: LocalFolderStore) -> None:
    log = MemoryLog(partitions=1)
    a, b = Producer(E1), Producer(E1)
    data_a, data_b = b"A" * 50 + b"a" * 45, b"B" * 30 + b"b" * 31
    sha_a = a.blob(data_a, "a.bin", chunk=10)
    sha_b = b.blob(data_b, "b.bin", chunk=7)
    chunks_a = [m for m in a.sent if m[0] == BLOBS]
    chunks_b = [m for m in b.sent if m[0] == BLOBS]
    interleaved = [m for pair in zip(chunks_a, chunks_b, strict=False) for m in pair]
    interleaved += chunks_a[len(chunks_b) :]
    send_all(MemoryTransport(log), interleaved)
    runner = Runner(MemorySource(log, group="g"), tables, objects, group="g", max_records=3)
    assert runner.catch_up() == len(chunks_a) + len(chunks_b)
    assert objects.get(f"blobs/{sha_a}") == data_a
    assert objects.get(f"blobs/{sha_b}") == data_b
    assert objects.list(part_prefix(sha_a)) == [] and objects.list(part_prefix(sha_b)) == []


def blob_chunks_of(p: Producer) -> list[tuple[str, str, bytes]]:
    return [m for m in p.sent if m[0] == BLOBS]


@pytest.mark.parametrize("first", [5, 0, 14], ids=["b-half-sent", "a-alone-first", "b-all-but-its-last-first"])
def test_one_blob_uploaded_twice_in_chunks_of_different_sizes(
    tables: ChdbTables, objects: LocalFolderStore, first: int
) -> None:
    """Two producers (different EXPSTREAM_CHUNK_BYTES) upload the same bytes at once: parts overlap."""
    log = MemoryLog(partitions=1)
    a, b = Producer(E1), Producer(E2)
    data = bytes(range(100))
    sha = a.blob(data, "a", chunk=10)
    assert b.blob(data, "b", chunk=7) == sha
    chunks_a, chunks_b = blob_chunks_of(a), blob_chunks_of(b)
    send_all(MemoryTransport(log), chunks_b[:first] + chunks_a + chunks_b[first:])
    runner = Runner(MemorySource(log, group="g"), tables, objects, group="g", max_records=4)
    assert runner.catch_up() == len(chunks_a) + len(chunks_b)
    got = Reader(tables, objects).blob(sha)
    assert hashlib.sha256(got).hexdigest() == sha
    assert got == data
    assert objects.list(part_prefix(sha)) == []


def test_a_blob_missing_a_chunk_is_not_stored_until_a_later_upload_completes_it(
    tables: ChdbTables, objects: LocalFolderStore, tmp_path: Path
) -> None:
    log = MemoryLog(partitions=1)
    transport = MemoryTransport(log)
    p = Producer(E1)
    data = hashlib.sha512(b"x").digest() * 3  # 192 bytes in 20-byte chunks
    sha = p.blob(data, "a", chunk=20)
    chunks = blob_chunks_of(p)
    send_all(transport, chunks[:4] + chunks[5:])  # chunk 4 never arrives (a damaged log, a dead letter)
    runner = Runner(MemorySource(log, group="g"), tables, objects, group="g")
    assert runner.catch_up() == len(chunks) - 1
    reader = Reader(tables, objects)
    with pytest.raises(FileNotFound):  # absent, rather than 172 bytes under the digest of 192
        reader.blob(sha)
    assert not objects.exists(f"blobs/{sha}")

    send_all(transport, chunks)  # uploaded again (same bytes, same digest)
    assert runner.catch_up() == len(chunks)
    got = reader.blob(sha)
    assert hashlib.sha256(got).hexdigest() == sha
    assert got == data
    assert objects.list(part_prefix(sha)) == []


# --- (d) progress -----------------------------------------------------------------------------------


def test_a_second_runner_continues_where_the_first_stopped(tmp_path: Path, objects: LocalFolderStore) -> None:
    log = MemoryLog(partitions=2)
    transport = MemoryTransport(log)
    p1, p2 = Producer(E1), Producer(E2, session_id="6e66" * 8)
    full_history(p1, 1)
    full_history(p2, 2)
    half1, half2 = len(p1.sent) // 2, len(p2.sent) // 2
    send_all(transport, p1.sent[:half1] + p2.sent[:half2])

    first = Runner(MemorySource(log, group="g"), ChdbTables(tmp_path / "chdb"), objects, group="g", max_records=6)
    assert first.catch_up() == half1 + half2
    first.tables.close()
    send_all(transport, p1.sent[half1:] + p2.sent[half2:])

    # a new runner with new objects on the same folders; its source group has never committed anything,
    # so where it starts can only come from the tables' consumer_progress
    tables = ChdbTables(tmp_path / "chdb")
    try:
        second = Runner(MemorySource(log, group="never-committed"), tables, objects, group="g", max_records=6)
        total = len(p1.sent) + len(p2.sent)
        assert second.catch_up() == total - half1 - half2
        assert second.catch_up() == 0
        with tables.hold():
            assert count(tables, "SELECT count() FROM events") == total  # no event applied twice
            assert count(tables, "SELECT count() FROM points_numeric") == 2 * (100 + 20 + 5 + 10 + 3)
            assert count(tables, "SELECT count() FROM experiments") == 2
            assert second.progress() == {
                tp: log.end_offset(*tp) for tp in second.source.end_offsets() if log.end_offset(*tp)
            }
        snap = snapshot(Reader(tables, objects), [E1, E2])
        check_history(snap, E1, 1)
        check_history(snap, E2, 2)
    finally:
        tables.close()


# --- (e) a corrupted local log ----------------------------------------------------------------------


def _local_runner(root: Path, tables: ChdbTables, objects: LocalFolderStore, dead: Path) -> Runner:
    source = LocalLogSource(LocalLog(root / "log"), group="embedded", positions_dir=root / "positions")
    return Runner(source, tables, objects, group="embedded", dead_letter_dir=dead)


def test_a_corrupted_segment_loses_only_the_damaged_records(
    tmp_path: Path, tables: ChdbTables, objects: LocalFolderStore, caplog: pytest.LogCaptureFixture
) -> None:
    log = LocalLog(tmp_path / "log", partitions=1, segment_bytes=4096)
    transport = LocalLogTransport(log)
    p = Producer(E1)
    p.created(1, [])
    keys = [f"key-{i:03d}" for i in range(120)]
    for key in keys:  # one append per event: one record each
        transport.send(EVENTS, E1, [p.event("PropertySet", key=key, value=f"value of {key}")])
    transport.send(EVENTS, E1, [m for _, _, m in p.sent[:2]])  # creation last: it is in no damaged spot
    transport.flush()
    records: list[Record] = log.read(EVENTS, 0, 0, 10_000)
    assert len(records) == 122
    segments = sorted((tmp_path / "log" / EVENTS / "0").glob("*.seg"))
    assert len(segments) >= 4
    bases = [int(s.stem) for s in segments]

    def damage(index: int, where: str) -> str:
        """Overwrite bytes inside record ``index`` in its segment file; return its property key."""
        r = records[index]
        seg = max(b for b in bases if b <= r.offset)
        start = r.offset - seg + (2 if where == "header" else (r.next_offset - r.offset) // 2)
        with open(tmp_path / "log" / EVENTS / "0" / f"{seg:020d}.seg", "r+b") as f:
            f.seek(start)
            f.write(b"\xab" * 12)
        return schemas.decode(r.value)[1]["key"]

    # the last record of a segment: the reader must go on with the next segment
    closing = next(i for i, r in enumerate(records) if 65 < i < 95 and r.next_offset in bases)
    # two neighbours (a resync must not skip the record after them), lone ones, a segment's last
    lost = {damage(i, where) for i, where in ((10, "payload"), (11, "header"), (60, "payload"), (100, "header"))}
    lost.add(damage(closing, "payload"))
    assert len(lost) == 5
    dead = tmp_path / "dead-letter"
    runner = _local_runner(tmp_path, tables, objects, dead)
    with caplog.at_level("WARNING", logger="expstream.log"):
        applied = runner.catch_up()
    assert applied == 122 - len(lost)
    assert "corrupt or torn record" in caplog.text
    assert not dead.exists()  # the log skipped the damaged bytes; nothing reached the decoder

    reader = Reader(tables, objects)
    with tables.hold():
        got = reader.properties(E1)
    assert set(got) == {"from"} | (set(keys) - lost)
    assert all(got[k] == f"value of {k}" for k in set(keys) - lost)

    # the log goes on after the damage: later appends are materialized by a later catch-up
    transport.send(EVENTS, E1, [p.event("PropertySet", key="late", value="still read")])
    transport.flush()
    assert _local_runner(tmp_path, tables, objects, dead).catch_up() == 1
    with tables.hold():
        assert reader.properties(E1)["late"] == "still read"


def test_a_torn_tail_is_waited_at_then_skipped_once_more_data_follows(
    tmp_path: Path, tables: ChdbTables, objects: LocalFolderStore
) -> None:
    log = LocalLog(tmp_path / "log", partitions=1)
    transport = LocalLogTransport(log)
    p = Producer(E1)
    p.created(1, [])
    transport.send(EVENTS, E1, [m for _, _, m in p.sent])
    torn = p.event("PropertySet", key="torn", value="x" * 100)
    # a writer killed mid-append: half of a framed record at the end of the segment
    frame = frame_records(E1, [torn])
    seg = next((tmp_path / "log" / EVENTS / "0").glob("*.seg"))
    with open(seg, "ab") as f:
        f.write(frame[: len(frame) // 2])
    dead = tmp_path / "dead-letter"
    # returns (does not spin on the torn bytes) with the two whole events
    assert _local_runner(tmp_path, tables, objects, dead).catch_up() == 2
    transport.send(EVENTS, E1, [p.event("PropertySet", key="after", value="y")])
    transport.flush()
    assert _local_runner(tmp_path, tables, objects, dead).catch_up() == 1
    with tables.hold():
        assert Reader(tables, objects).properties(E1) == {"from": "creation", "after": "y"}
