"""Poison never blocks a stream, on the embedded default: local event log → chdb + local folder.

Every kind of poison of :mod:`poison` is written into the log between good events of a real
experiment; the consumer goes on, every good point and event is in the tables exactly once, every
poison record is in ``$EXPSTREAM_HOME/dead-letter/`` with its reason, topic, partition and offset, and a
restarted consumer neither reprocesses nor loops. Further down: a batch the table store refuses for its
data is bisected, a table store that is down dead-letters nothing, and a dead letter Kafka does not
take is kept in the local folder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import expstream
from expstream import schemas
from expstream.config import Settings, load_settings
from expstream.consumers.runner import Runner, folder_dead_letter
from expstream.consumers.sinks.base import TableStore
from expstream.consumers.sinks.chdb import ChdbTables
from expstream.consumers.sinks.localfs import LocalFolderStore
from expstream.consumers.sources.local_log import LocalLogSource
from expstream.consumers.sources.memory import MemorySource
from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.memory import MemoryLog
from expstream.eventlog.records import EVENTS, Record
from expstream.exceptions import SinkDataError, StorageError
from expstream.producer.transports.local_log import LocalLogTransport
from expstream.producer.transports.memory import MemoryTransport
from expstream.query.reader import Reader
from expstream.wiring import embedded_runner
from tests.consumers import poison

E1 = "0a0a0a0a-0000-4000-8000-000000000001"


def all_records(log: LocalLog, tmp: Path) -> list[Record]:
    source = LocalLogSource(log, group="inspect", positions_dir=tmp)
    records: list[Record] = []
    while batch := source.poll(10_000):
        records.extend(batch)
    return records


def test_every_poison_between_good_events_is_dead_lettered_and_the_stream_goes_on(
    project: expstream.Project, home: Path, tmp_path: Path
) -> None:
    assert len(poison.CATALOGUE) >= 10
    exp = project.create_experiment("poisoned", upload_source_files=[], send_hardware_metrics=False)
    e = exp.internal_id
    log = LocalLog(home / "log")
    intruder = LocalLogTransport(log)
    sent: list[bytes] = []
    x = 0
    for item in poison.CATALOGUE:  # good points, a poison record, good points, ... in one partition
        for _ in range(7):
            exp.log_metric("loss", x, x * 0.5)
            x += 1
        exp.wait(timeout=30)
        sent.append(item.build(e))
        intruder.send(EVENTS, e, [sent[-1]])
        intruder.flush()
    for _ in range(7):
        exp.log_metric("loss", x, x * 0.5)
        x += 1
    exp.append_tag("after-poison")
    exp.stop()
    exp.sync(timeout=60)  # returns: nothing blocks the partition

    values = exp.get_numeric_channels_values("loss")
    assert values["x"].tolist() == [float(i) for i in range(x)]
    assert values["loss"].tolist() == [i * 0.5 for i in range(x)]
    assert exp.get_tags() == ["after-poison"] and exp.state == "succeeded"
    records = all_records(log, tmp_path / "inspect")
    good = [r for r in records if r.topic == EVENTS and r.key == e and r.value not in sent]
    tables = exp._backend.reader.tables
    with tables.hold():
        counts = tables.query_df(
            "SELECT (SELECT count() FROM events FINAL WHERE experiment_id = {e:String}) AS events, "
            "(SELECT count() FROM points_numeric FINAL WHERE experiment_id = {e:String} AND channel = 'loss') "
            "AS points",
            {"e": e},
        )
    assert int(counts["events"].iloc[0]) == len(good)
    assert int(counts["points"].iloc[0]) == x

    dead = home / "dead-letter"
    where = {r.value: r for r in records if r.value in sent}
    assert len(where) == len(sent)
    for item, value in zip(poison.CATALOGUE, sent, strict=True):
        r = where[value]
        stem = f"{r.topic}-{r.partition}-{r.offset}"
        assert (dead / f"{stem}.bin").read_bytes() == value, item.name
        assert item.reason in (dead / f"{stem}.reason.txt").read_text().lower(), item.name
    assert len(list(dead.glob("*.bin"))) == len(sent)

    letters = {p.name: p.stat().st_mtime_ns for p in dead.iterdir()}
    restarted = embedded_runner(load_settings())
    assert restarted.catch_up() == 0  # nothing reprocessed, no loop
    assert restarted.dead_letters == 0
    assert {p.name: p.stat().st_mtime_ns for p in dead.iterdir()} == letters


def test_events_of_an_experiment_not_created_yet_are_stored(home: Path, tmp_path: Path) -> None:
    """Decision: the creation may arrive later (another partition, a replay): nothing is dead-lettered."""
    log = LocalLog(home / "log")
    transport = LocalLogTransport(log)
    h = poison.header
    transport.send(EVENTS, E1, [
        schemas.encode("TagsAdded", {"header": h(E1, 1), "tags": ["early"]}),
        schemas.encode("NumericPoints", poison.numeric(E1, [0.0, 1.0], [3.0, 4.0]) | {"header": h(E1, 2)}),
    ])  # fmt: skip
    transport.flush()
    runner = embedded_runner(load_settings())
    assert runner.catch_up() == 2
    assert runner.dead_letters == 0
    with runner.tables.hold():
        reader = Reader(runner.tables, runner.objects)
        assert reader.tags(E1) == ["early"]
        assert reader.numeric_values(E1, ["loss"])["loss"].tolist() == [3.0, 4.0]
    assert not (home / "dead-letter").exists()


# --- data errors of a sink: the batch is bisected -----------------------------------------------------


class RefusingTables(TableStore):
    """The chdb store, refusing (as a real sink does a value its column cannot hold) every insert that
    holds a point of the channel ``refused``, and counting the inserts it was asked for."""

    def __init__(self, inner: ChdbTables) -> None:
        self.inner = inner
        self.database = inner.database
        self.inserts = 0

    def ensure_schema(self) -> None:
        self.inner.ensure_schema()

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        self.inserts += 1
        if "channel" in columns and "refused" in [str(c) for c in columns["channel"]]:
            raise SinkDataError(f"insert into {table}: Code: 53. Type mismatch (simulated)")
        self.inner.insert(table, columns)

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None, *, readonly: bool = False) -> Any:
        return self.inner.query_df(sql, params, readonly=readonly)

    def hold(self, timeout: float | None = None) -> Any:
        return self.inner.hold(timeout)


@pytest.fixture
def chdb(tmp_path: Path) -> Iterator[ChdbTables]:
    tables = ChdbTables(tmp_path / "chdb")
    tables.ensure_schema()
    yield tables
    tables.close()


def _points(seq: int, channel: str, x: float) -> bytes:
    record = poison.numeric(E1, [x], [x * 2]) | {"header": poison.header(E1, seq)}
    record["series"][0]["channel"] = channel
    return schemas.encode("NumericPoints", record)


def test_a_batch_refused_for_its_data_is_bisected_down_to_the_bad_events(chdb: ChdbTables, tmp_path: Path) -> None:
    log = MemoryLog(partitions=1)
    transport = MemoryTransport(log)
    messages = [_points(i + 1, "refused" if i in (5, 11) else "loss", float(i)) for i in range(16)]
    transport.send(EVENTS, E1, messages)
    tables = RefusingTables(chdb)
    dead = tmp_path / "dead-letter"
    runner = Runner(MemorySource(log, group="g"), tables, LocalFolderStore(tmp_path / "objects"), group="g",
                    dead_letter_dir=dead, max_records=100)  # fmt: skip
    assert runner.catch_up() == 14
    assert runner.dead_letters == 2
    assert sorted(p.name for p in dead.glob("*.bin")) == [f"{EVENTS}-0-11.bin", f"{EVENTS}-0-5.bin"]
    assert "refused by the table store" in (dead / f"{EVENTS}-0-5.reason.txt").read_text()
    with chdb.hold():
        values = Reader(chdb, runner.objects).numeric_values(E1, ["loss"])
        assert values["x"].tolist() == [float(i) for i in range(16) if i not in (5, 11)]
        assert runner.progress() == {(EVENTS, 0): 16}
    assert tables.inserts < 16 * 4  # a bisection, not one insert per event and table


# --- an outage of the sink: retried, nothing dead-lettered ---------------------------------------------


class FlakyTables(RefusingTables):
    """The chdb store, down (connection refused) for its first ``down`` inserts."""

    def __init__(self, inner: ChdbTables, down: int) -> None:
        super().__init__(inner)
        self.down = down

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        self.inserts += 1
        if self.inserts <= self.down:
            raise StorageError("ClickHouse insert failed: Connection refused (simulated outage)")
        self.inner.insert(table, columns)


def test_a_sink_outage_is_retried_and_dead_letters_nothing_twice(chdb: ChdbTables, tmp_path: Path) -> None:
    """The table store is down for a while: the batches are retried until it is back; the one poison record
    among them is dead-lettered once (after its batch is written), the good events arrive once."""
    log = MemoryLog(partitions=1)
    messages = [_points(i + 1, "loss", float(i)) for i in range(30)]
    messages.insert(3, b"\x00garbage among good events")
    MemoryTransport(log).send(EVENTS, E1, messages)
    tables = FlakyTables(chdb, down=5)
    letters: list[tuple[int, str]] = []
    runner = Runner(MemorySource(log, group="g"), tables, LocalFolderStore(tmp_path / "objects"), group="g",
                    dead_letter=lambda record, reason: letters.append((record.offset, reason)), max_records=7,
                    resume_from_tables=False)  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop, 0.05, 0.2), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while runner.events < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=30)
    assert tables.inserts > 5  # it did meet the outage, and went on
    assert runner.events == 30
    assert runner.dead_letters == 1 and [offset for offset, _ in letters] == [3]
    assert "bad magic" in letters[0][1]
    with chdb.hold():
        counts = chdb.query_df("SELECT count() AS n, uniqExact(x) AS u FROM points_numeric FINAL")
    assert (int(counts["n"].iloc[0]), int(counts["u"].iloc[0])) == (30, 30)


# --- the dead letter itself ------------------------------------------------------------------------------


def test_a_dead_letter_kafka_does_not_take_is_kept_in_the_local_folder(tmp_path: Path) -> None:
    pytest.importorskip("kafka")
    from expstream.consumers.sources.kafka import kafka_dead_letter

    settings = Settings(home=tmp_path / "home", kafka="127.0.0.1:9")  # nothing listens on the discard port
    folder = tmp_path / "home" / "dead-letter"
    send = kafka_dead_letter(settings, folder_dead_letter(folder), attempts=2, pause=0.01, timeout=1.0)
    record = Record(EVENTS, 3, 41, 42, E1, b"\x00garbage")
    send(record, "not an Avro single-object message (bad magic)")
    assert (folder / f"{EVENTS}-3-41.bin").read_bytes() == b"\x00garbage"
    reason = (folder / f"{EVENTS}-3-41.reason.txt").read_text()
    assert "bad magic" in reason and "took no record" in reason


def test_a_dead_letter_folder_that_refuses_writes_raises_an_expstream_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StorageError, match="cannot keep the dead letter"):
        folder_dead_letter(blocker / "dead-letter")(Record(EVENTS, 0, 1, 2, E1, b"x"), "why")
