"""One contract for every transport/source adapter: what producer and consumers rely on.

Each test runs over every adapter in ``ADAPTERS``; a new adapter (Kafka) only has to be opened
in ``expstream.consumers.sources.pairs`` to be held to the same semantics.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from expstream.consumers.sources.base import Source
from expstream.consumers.sources.pairs import ADAPTERS, NEEDS_SERVICES, SourceFactory, open_pair
from expstream.eventlog.records import BLOBS, EVENTS, TOPICS, Record
from expstream.producer.transports.base import Transport

PARTITIONS = 4


@pytest.fixture(params=ADAPTERS)
def pair(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Transport, SourceFactory]]:
    if request.param in NEEDS_SERVICES:
        monkeypatch.setenv("EXPSTREAM_KAFKA", request.getfixturevalue("services")["env"]["EXPSTREAM_KAFKA"])
    transport, open_source = open_pair(request.param, tmp_path, partitions=PARTITIONS)
    opened: list[Source] = []

    def sources(group: str = "default") -> Source:
        opened.append(open_source(group))
        return opened[-1]

    yield transport, sources
    transport.close()
    for source in opened:  # a Kafka consumer left open would stay in its group
        source.close()


def read_n(source: Source, n: int, timeout: float = 10.0) -> list[Record]:
    """Poll until ``n`` records came (or fail), then check that nothing more is there."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(records) < n and time.monotonic() < deadline:
        records += source.poll(max_records=1000, timeout=0.1)
    assert len(records) == n
    assert source.poll(timeout=0.05) == []
    return records


def values_by_key(records: list[Record]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for r in records:
        out[r.key].append(r.value)
    return out


def send_interleaved(transport: Transport, keys: list[str], per_key: int, batch: int = 7) -> None:
    for start in range(0, per_key, batch):
        for key in keys:
            messages = [f"{key}#{i}".encode() for i in range(start, min(start + batch, per_key))]
            transport.send(EVENTS, key, messages)


def test_order_per_key_and_offsets_grow(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    keys = [f"exp-{i}" for i in range(5)]
    send_interleaved(transport, keys, per_key=100)
    transport.flush()

    records = read_n(sources(), 500)

    assert values_by_key(records) == {k: [f"{k}#{i}".encode() for i in range(100)] for k in keys}
    by_partition: dict[tuple[str, int], list[Record]] = defaultdict(list)
    for r in records:
        assert r.offset < r.next_offset
        by_partition[(r.topic, r.partition)].append(r)
    for rs in by_partition.values():
        for before, after in pairwise(rs):
            assert before.next_offset <= after.offset


def test_a_key_stays_in_one_partition_and_keys_spread(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    keys = [f"exp-{i}" for i in range(16)]
    send_interleaved(transport, keys, per_key=3)
    transport.flush()

    records = read_n(sources(), 48)

    partitions_of: dict[str, set[int]] = defaultdict(set)
    for r in records:
        partitions_of[r.key].add(r.partition)
    assert all(len(ps) == 1 for ps in partitions_of.values())
    assert len(set().union(*partitions_of.values())) >= 2  # two keys in different partitions


def test_topics_are_separate(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    transport.send(EVENTS, "exp-1", [b"event"])
    transport.send(BLOBS, "exp-1", [b"blob"])
    transport.flush()

    records = read_n(sources(), 2)

    assert {(r.topic, r.value) for r in records} == {(EVENTS, b"event"), (BLOBS, b"blob")}
    assert len({r.partition for r in records}) == 1  # same key, same partition number


def test_flush_watermark_covers_what_was_sent(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    assert transport.flush() == {}
    send_interleaved(transport, ["a", "b", "c"], per_key=20)
    transport.send(BLOBS, "a", [b"x" * 10_000])

    watermark = transport.flush()
    records = read_n(sources(), 61)

    ends: dict[tuple[str, int], int] = {}
    for r in records:
        ends[(r.topic, r.partition)] = max(ends.get((r.topic, r.partition), 0), r.next_offset)
    assert watermark == ends
    end_offsets = sources().end_offsets()
    assert all(end_offsets[tp] >= offset for tp, offset in watermark.items())


def test_watermark_grows_and_keeps_earlier_partitions(pair: tuple[Transport, SourceFactory]) -> None:
    transport, _ = pair
    transport.send(EVENTS, "a", [b"1"])
    first = transport.flush()
    transport.send(EVENTS, "a", [b"2"])
    transport.send(BLOBS, "b", [b"3"])
    second = transport.flush()

    assert set(first) <= set(second)
    assert all(second[tp] > first[tp] for tp in first)


def test_end_offsets_cover_every_partition(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    source = sources()
    assert source.end_offsets() == {(t, p): 0 for t in TOPICS for p in range(PARTITIONS)}

    transport.send(EVENTS, "exp-1", [b"a", b"b"])
    watermark = transport.flush()

    ends = source.end_offsets()
    assert set(ends) == {(t, p) for t in TOPICS for p in range(PARTITIONS)}
    for tp, offset in ends.items():
        assert offset == watermark.get(tp, 0)


def test_empty_poll_waits_for_the_timeout(pair: tuple[Transport, SourceFactory]) -> None:
    _, sources = pair
    source = sources()
    assert source.poll(timeout=0) == []
    start = time.monotonic()
    assert source.poll(timeout=0.2) == []
    assert time.monotonic() - start >= 0.15  # it waited instead of returning at once; how long: bench/bench_poll.py


def test_poll_returns_records_sent_while_waiting(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    source = sources()
    timer = threading.Timer(0.1, lambda: (transport.send(EVENTS, "late", [b"hello"]), transport.flush()))
    timer.start()
    try:
        records = source.poll(timeout=10)  # how soon it returns: bench/bench_poll.py
        assert [r.value for r in records] == [b"hello"]
    finally:
        timer.join()


def test_poll_respects_max_records(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    send_interleaved(transport, ["a", "b"], per_key=10)
    transport.flush()
    source = sources()

    batches: list[list[Record]] = []
    deadline = time.monotonic() + 10
    while sum(len(b) for b in batches) < 20 and time.monotonic() < deadline:
        batches.append(source.poll(max_records=3, timeout=0.1))

    assert all(len(b) <= 3 for b in batches)
    assert sorted(r.value for b in batches for r in b) == sorted(f"{k}#{i}".encode() for k in "ab" for i in range(10))
    assert source.poll(timeout=0.05) == []
    # that a poll without a timeout returns what is already there at once is adapter-specific:
    # tests/consumers/test_embedded_sources.py (a Kafka consumer may still be joining or fetching)


def test_seek_replays_from_a_position(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    transport.send(EVENTS, "exp-1", [b"a", b"b", b"c"])
    transport.flush()
    source = sources()
    first = read_n(source, 3)

    source.seek({(EVENTS, first[1].partition): first[1].offset})

    assert [r.value for r in read_n(source, 2)] == [b"b", b"c"]


def test_committed_positions_survive_reopening(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    transport.send(EVENTS, "exp-1", [b"a", b"b", b"c", b"d"])
    transport.flush()
    source = sources()
    assert source.committed() == {}
    first = read_n(source, 4)
    held = {(EVENTS, first[1].partition): first[1].next_offset}

    source.commit(held)
    source.close()

    reopened = sources()
    assert reopened.committed() == held
    assert [r.value for r in read_n(reopened, 2)] == [b"c", b"d"]
    assert [r.value for r in read_n(sources(group="other"), 4)] == [b"a", b"b", b"c", b"d"]


def test_commit_keeps_other_partitions(pair: tuple[Transport, SourceFactory]) -> None:
    _, sources = pair
    source = sources()
    source.commit({(EVENTS, 0): 5})
    source.commit({(BLOBS, 1): 7})

    assert sources().committed() == {(EVENTS, 0): 5, (BLOBS, 1): 7}


def test_close_is_idempotent(pair: tuple[Transport, SourceFactory]) -> None:
    transport, sources = pair
    transport.send(EVENTS, "exp-1", [b"a"])
    transport.close()
    transport.close()
    source = sources()
    assert [r.value for r in read_n(source, 1)] == [b"a"]
    source.close()
    source.close()
