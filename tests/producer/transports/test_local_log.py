"""The embedded log on disk: framing, rolling, concurrent writers, and surviving damage.

The contract shared with other adapters is in tests/contract/test_transport_and_source.py;
here are the properties only a file-based log has to prove.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import defaultdict
from pathlib import Path

import pytest

from expstream.consumers.sources.local_log import LocalLogSource
from expstream.eventlog.local_log import HEADER_SIZE, LocalLog, frame_records
from expstream.eventlog.records import EVENTS, Record
from expstream.exceptions import TransportError
from expstream.producer.transports.local_log import LocalLogTransport

# A writer process: waits for <root>/go, then appends ``n`` records "<writer>:<seq>:<padding>"
# in batches of random size; with n < 0 it appends batches of 16 MiB forever (until killed).
WRITER = """
import random, sys, time
from pathlib import Path
from expstream.eventlog.local_log import LocalLog
root, key, writer, n, segment_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
log = LocalLog(Path(root), segment_bytes=segment_bytes)
rng = random.Random(writer)
while not (Path(root) / "go").exists():
    time.sleep(0.001)
seq = 0
while n < 0 or seq < n:
    count, pad = (min(rng.randint(1, 50), n - seq), rng.randint(0, 64)) if n >= 0 else (16, 1 << 20)
    log.append("expstream.events", key, [f"{writer}:{s}:".encode() + b"x" * pad for s in range(seq, seq + count)])
    seq += count
"""


def start_writers(root: Path, keys: list[str], n: int, segment_bytes: int = 256 << 20) -> list[subprocess.Popen]:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(root), key, str(w), str(n), str(segment_bytes)])
        for w, key in enumerate(keys)
    ]
    (root / "go").touch()
    return procs


def read_all(log: LocalLog, topic: str = EVENTS) -> list[Record]:
    records: list[Record] = []
    for partition in range(log.partitions):
        offset = 0
        while got := log.read(topic, partition, offset, max_records=1000):
            records += got
            offset = got[-1].next_offset
    return records


def segments(log: LocalLog, partition: int, topic: str = EVENTS) -> list[Path]:
    return sorted((log.root / topic / str(partition)).glob("*.seg"))


def writer_seqs(records: list[Record]) -> dict[int, list[int]]:
    seqs: dict[int, list[int]] = defaultdict(list)
    for r in records:
        writer, seq, _ = r.value.split(b":", 2)
        seqs[int(writer)].append(int(seq))
    return seqs


def assert_on_disk(log: LocalLog, record: Record) -> None:
    """The bytes at the record's offset are exactly its frame: magic, lengths and crc are valid."""
    base = max(int(p.stem) for p in segments(log, record.partition, record.topic) if int(p.stem) <= record.offset)
    path = log.root / record.topic / str(record.partition) / f"{base:020d}.seg"
    with open(path, "rb") as f:
        f.seek(record.offset - base)
        assert f.read(record.next_offset - record.offset) == frame_records(record.key, [record.value])


@pytest.fixture
def log(tmp_path: Path) -> LocalLog:
    return LocalLog(tmp_path / "log", partitions=2)


def test_partition_count_is_fixed_at_creation(tmp_path: Path) -> None:
    assert LocalLog(tmp_path / "log", partitions=3).partitions == 3
    assert LocalLog(tmp_path / "log", partitions=8).partitions == 3
    assert json.loads((tmp_path / "log" / "meta.json").read_text()) == {"partitions": 3}


def test_partition_for_is_a_stable_hash(log: LocalLog) -> None:
    assert log.partition_for("exp-42") == zlib.crc32(b"exp-42") % 2
    assert {log.partition_for(f"k{i}") for i in range(20)} == {0, 1}


def test_offsets_are_byte_positions(log: LocalLog) -> None:
    partition = log.partition_for("k")

    end = log.append(EVENTS, "k", [b"abc", b"de"])

    assert end == 2 * (HEADER_SIZE + 1) + 5
    assert [p.name for p in segments(log, partition)] == [f"{0:020d}.seg"]
    records = log.read(EVENTS, partition, 0)
    assert [(r.offset, r.next_offset, r.key, r.value) for r in records] == [
        (0, HEADER_SIZE + 4, "k", b"abc"),
        (HEADER_SIZE + 4, end, "k", b"de"),
    ]
    assert log.end_offset(EVENTS, partition) == end
    assert log.append(EVENTS, "k", []) == end


def test_reads_stop_at_limits(log: LocalLog) -> None:
    partition = log.partition_for("k")
    log.append(EVENTS, "k", [bytes([i]) * 100 for i in range(10)])

    assert len(log.read(EVENTS, partition, 0, max_records=3)) == 3
    assert len(log.read(EVENTS, partition, 0, max_bytes=250)) == 3
    assert len(log.read(EVENTS, partition, 0, max_bytes=1)) == 1  # always one, however large


def test_a_record_larger_than_a_read_chunk(log: LocalLog) -> None:
    partition = log.partition_for("k")
    big = os.urandom(3 << 20)
    log.append(EVENTS, "k", [b"small", big, b"after"])

    assert [r.value for r in log.read(EVENTS, partition, 0)] == [b"small", big, b"after"]


def test_segments_roll_and_writers_agree_on_them(tmp_path: Path) -> None:
    first = LocalLog(tmp_path / "log", partitions=1, segment_bytes=1000)
    second = LocalLog(tmp_path / "log", segment_bytes=1000)  # another process, with its own cache
    for i in range(100):
        (first if i % 3 else second).append(EVENTS, "k", [f"{i}:".encode() + b"y" * (i % 40)] * 3)

    files = segments(first, 0)
    assert len(files) > 10
    sizes = [p.stat().st_size for p in files]
    assert [int(p.stem) for p in files] == [sum(sizes[:i]) for i in range(len(files))]
    assert all(size <= 1000 for size in sizes)
    records = read_all(LocalLog(tmp_path / "log"))
    assert [r.value for r in records] == [f"{i}:".encode() + b"y" * (i % 40) for i in range(100) for _ in range(3)]
    assert records[-1].next_offset == first.end_offset(EVENTS, 0) == sum(sizes)


@pytest.mark.slow
@pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "different-keys"])
def test_concurrent_processes_lose_and_duplicate_nothing(tmp_path: Path, same_key: bool) -> None:
    root = tmp_path / "log"
    LocalLog(root, partitions=4)
    keys = ["shared"] * 4 if same_key else [f"run-{w}" for w in range(4)]

    procs = start_writers(root, keys, n=5000, segment_bytes=64 << 10)
    assert [p.wait(timeout=120) for p in procs] == [0] * 4

    records = read_all(LocalLog(root))
    seqs = writer_seqs(records)
    assert {w: sorted(s) for w, s in seqs.items()} == {w: list(range(5000)) for w in range(4)}
    assert all(s == sorted(s) for s in seqs.values())  # each writer's order kept
    assert max(len(segments(LocalLog(root), p)) for p in range(4)) > 2  # rolled while contended


def test_concurrent_threads_through_one_transport(log: LocalLog) -> None:
    transport = LocalLogTransport(log)
    stop = threading.Event()
    seen_ends: list[int] = []

    def write(w: int) -> None:
        for start in range(0, 2000, 20):
            transport.send(EVENTS, f"run-{w % 2}", [f"{w}:{s}:".encode() for s in range(start, start + 20)])

    def watch() -> None:
        while not stop.is_set():
            seen_ends.append(log.end_offset(EVENTS, 0))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    watcher = threading.Thread(target=watch)
    for t in [*threads, watcher]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    watermark = transport.flush()

    records = read_all(log)
    seqs = writer_seqs(records)
    assert seqs == {w: list(range(2000)) for w in range(4)}
    assert seen_ends == sorted(seen_ends)
    ends = {(EVENTS, p): log.end_offset(EVENTS, p) for p in range(2) if log.end_offset(EVENTS, p)}
    assert watermark == ends


def test_torn_record_is_skipped_and_later_appends_found(log: LocalLog, caplog: pytest.LogCaptureFixture) -> None:
    partition = log.partition_for("k")
    log.append(EVENTS, "k", [b"before-%d" % i for i in range(10)])
    torn_at = log.end_offset(EVENTS, partition)
    frame = frame_records("k", [b"z" * 100])
    with open(segments(log, partition)[0], "ab") as f:  # what a writer killed mid-write leaves
        f.write(frame[: len(frame) // 2])
    log.append(EVENTS, "k", [b"after-%d" % i for i in range(10)])

    with caplog.at_level(logging.WARNING, logger="expstream.log"):
        records = read_all(LocalLog(log.root))

    assert [r.value for r in records] == [b"before-%d" % i for i in range(10)] + [b"after-%d" % i for i in range(10)]
    assert any(str(segments(log, partition)[0]) in m and f"offset {torn_at}" in m for m in caplog.messages), (
        caplog.messages
    )


def test_garbage_in_the_middle_loses_only_the_damaged_records(log: LocalLog) -> None:
    partition = log.partition_for("k")
    log.append(EVENTS, "k", [b"%04d" % i + b"v" * 46 for i in range(200)])
    everything = log.read(EVENTS, partition, 0, max_records=1000)
    damaged = range(5000, 5300)
    with open(segments(log, partition)[0], "r+b") as f:
        f.seek(damaged.start)
        f.write(os.urandom(len(damaged)))

    records = read_all(LocalLog(log.root))

    intact = [r for r in everything if r.next_offset <= damaged.start or r.offset >= damaged.stop]
    assert records == intact
    assert len(intact) >= 200 - 300 // 70 - 2


def test_impossible_length_is_corruption(log: LocalLog) -> None:
    partition = log.partition_for("k")
    log.append(EVENTS, "k", [b"one"])
    with open(segments(log, partition)[0], "ab") as f:
        f.write(b"EXL1" + (2**31).to_bytes(4, "little") + bytes(8) + b"junk")
    log.append(EVENTS, "k", [b"two"])

    assert [r.value for r in read_all(log)] == [b"one", b"two"]


@pytest.mark.parametrize("cut", [5, HEADER_SIZE + 3], ids=["cut-in-payload", "cut-in-header"])
def test_truncated_tail_holds_the_reader_until_more_is_appended(
    log: LocalLog, caplog: pytest.LogCaptureFixture, cut: int
) -> None:
    partition = log.partition_for("k")
    log.append(EVENTS, "k", [b"r%d" % i + b"." * 20 for i in range(10)])
    path = segments(log, partition)[0]
    os.truncate(path, path.stat().st_size - cut)

    with caplog.at_level(logging.WARNING, logger="expstream.log"):
        kept = log.read(EVENTS, partition, 0)
        assert [r.value[:2] for r in kept] == [b"r%d" % i for i in range(9)]
        stuck = kept[-1].next_offset
        assert log.read(EVENTS, partition, stuck) == []
        assert log.read(EVENTS, partition, stuck) == []
    assert len([m for m in caplog.messages if f"offset {stuck}" in m]) == 1  # warned once, not per poll

    LocalLog(log.root).append(EVENTS, "k", [b"later-1", b"later-2"])

    assert [r.value for r in log.read(EVENTS, partition, stuck)] == [b"later-1", b"later-2"]


def test_source_waits_at_a_torn_tail_then_continues(tmp_path: Path) -> None:
    log = LocalLog(tmp_path / "log", partitions=1)
    log.append(EVENTS, "k", [b"a"])
    frame = frame_records("k", [b"lost"])
    with open(segments(log, 0)[0], "ab") as f:
        f.write(frame[:7])
    source = LocalLogSource(LocalLog(log.root), topics=[EVENTS])

    assert [r.value for r in source.poll()] == [b"a"]
    assert source.poll(timeout=0.05) == []
    log.append(EVENTS, "k", [b"b"])
    assert [r.value for r in source.poll(timeout=1)] == [b"b"]


@pytest.mark.slow
def test_writer_killed_mid_append_leaves_a_readable_log(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = LocalLog(root, partitions=1)
    (proc,) = start_writers(root, ["k"], n=-1)
    segment = root / EVENTS / "0" / f"{0:020d}.seg"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not segment.exists() or segment.stat().st_size < 20 << 20):
        time.sleep(0.0002)  # the size without the lock: the second 16 MiB write is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    log.append(EVENTS, "k", [b"9:0:after-the-crash"])
    records = read_all(LocalLog(root))

    assert len(records) >= 17
    for r in records:
        assert_on_disk(log, r)
    seqs = writer_seqs(records)
    assert seqs[0] == list(range(len(seqs[0])))  # nothing lost before the tear
    assert records[-1].value == b"9:0:after-the-crash"


def test_transport_turns_os_errors_into_transport_errors(log: LocalLog, monkeypatch: pytest.MonkeyPatch) -> None:
    transport = LocalLogTransport(log)
    transport.send(EVENTS, "k", [b"a"])

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log, "sync", broken)
    with pytest.raises(TransportError) as flush_error:
        transport.flush()
    assert isinstance(flush_error.value.__cause__, OSError)
    monkeypatch.setattr(log, "append", broken)
    with pytest.raises(TransportError) as send_error:
        transport.send(EVENTS, "k", [b"b"])
    assert isinstance(send_error.value.__cause__, OSError)

    monkeypatch.undo()
    assert transport.flush() == {(EVENTS, log.partition_for("k")): log.end_offset(EVENTS, log.partition_for("k"))}


def test_source_stores_positions_atomically_where_told(tmp_path: Path) -> None:
    log = LocalLog(tmp_path / "log")
    default = LocalLogSource(log, group="sinks")
    default.commit({(EVENTS, 1): 42})
    assert json.loads((tmp_path / "positions" / "sinks.json").read_text()) == {EVENTS: {"1": 42}}

    elsewhere = LocalLogSource(log, group="sinks", positions_dir=tmp_path / "other")
    assert elsewhere.committed() == {}
    elsewhere.commit({(EVENTS, 0): 7})
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["sinks.json"]  # no temp file left
    assert LocalLogSource(log, group="sinks").positions()[(EVENTS, 1)] == 42
