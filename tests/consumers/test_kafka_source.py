"""What only the Kafka source has to prove: group membership and replays over a real broker.

The contract it shares with every source is in tests/contract/test_transport_and_source.py.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from expstream.config import Settings, load_settings
from expstream.consumers.sources.kafka import KafkaSource
from expstream.eventlog.records import EVENTS, TOPICS, Record
from expstream.producer.transports.kafka import KafkaTransport


@pytest.fixture
def settings(services: dict[str, Any], tmp_path: Path) -> Settings:
    return load_settings(
        home=tmp_path,
        kafka=services["env"]["EXPSTREAM_KAFKA"],
        kafka_partitions=3,
        kafka_topic_prefix=f"source-{uuid.uuid4().hex[:10]}",
    )


@pytest.fixture
def sent(settings: Settings, tmp_path: Path) -> Iterator[dict[tuple[str, int], int]]:
    """Three records of key ``exp`` in Kafka; the watermark of the flush."""
    transport = KafkaTransport(settings, tmp_path / "spool")
    transport.send(EVENTS, "exp", [b"a", b"b", b"c"])
    yield transport.flush(timeout=30)
    transport.close()


def read(source: KafkaSource, n: int, timeout: float = 10.0) -> list[Record]:
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(records) < n and time.monotonic() < deadline:
        records += source.poll(timeout=0.1)
    return records


def test_a_seek_before_the_group_assigned_the_partition_applies_on_assignment(
    settings: Settings, sent: dict[tuple[str, int], int]
) -> None:
    ((_, partition),) = sent
    source = KafkaSource(settings, group="g")
    try:
        source.seek({(EVENTS, partition): 2})  # not a member yet: nothing is assigned

        assert [r.value for r in read(source, 1)] == [b"c"]
        assert source.poll(timeout=0.2) == []
    finally:
        source.close()


def test_without_a_group_every_partition_is_read_from_the_start_and_nothing_committed(
    settings: Settings, sent: dict[tuple[str, int], int]
) -> None:
    source = KafkaSource(settings, group=None)
    try:
        assert set(source.end_offsets()) == {(t, p) for t in TOPICS for p in range(3)}
        assert [r.value for r in read(source, 3)] == [b"a", b"b", b"c"]
        source.commit({tp: offset for tp, offset in sent.items()})
        assert source.committed() == {}
    finally:
        source.close()
    member = KafkaSource(settings, group="g")
    try:
        assert member.committed() == {}  # the replay left nothing in any group
    finally:
        member.close()


def test_a_member_takes_up_partitions_that_appear_after_it_joined(settings: Settings) -> None:
    """What a topic's metadata lacked when the group assigned (a topic created a moment before, or
    partitions added later) reaches the group within a metadata refresh, not kafka-python's 300 s."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewPartitions

    from expstream.eventlog.kafka import kafka_options, physical_topic

    source = KafkaSource(settings, group="g")
    try:
        assert source.poll(timeout=1.0) == []  # joined: the group assigned the three partitions
        topic = physical_topic(settings, EVENTS)
        admin = KafkaAdminClient(**kafka_options(settings))
        try:
            admin.create_partitions({topic: NewPartitions(total_count=4)})
        finally:
            admin.close()
        producer = KafkaProducer(**kafka_options(settings))
        try:
            producer.send(topic, b"new", key=b"exp", partition=3).get(timeout=30)
        finally:
            producer.close()

        records = read(source, 1, timeout=60.0)

        assert [(r.partition, r.value) for r in records] == [(3, b"new")]
    finally:
        source.close()


def _joined(source: KafkaSource, timeout: float = 30.0) -> set[Any]:
    """Poll until the group has assigned this member its partitions; those partitions."""
    deadline = time.monotonic() + timeout
    while not source._consumer.assignment() and time.monotonic() < deadline:
        assert source.poll(timeout=0.1) == []
    return set(source._consumer.assignment())


def test_a_member_that_stops_fetching_a_partition_rejoins_and_reads_it(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client whose state for a partition no longer fetches (here: paused, as kafka-python's own stalls
    leave it) is noticed by the records that wait there, and the member rejoins and reads them."""
    source = KafkaSource(settings, group=settings.kafka_topic_prefix, stall_after=2.0, stall_check=0.5)
    try:
        assigned = _joined(source)
        stalled = source._consumer
        stalled.pause(*assigned)
        transport = KafkaTransport(settings, tmp_path / "spool")
        try:
            transport.send(EVENTS, "exp", [b"a", b"b", b"c"])
            ((_, partition),) = transport.flush(timeout=30)
        finally:
            transport.close()

        with caplog.at_level(logging.WARNING, logger="expstream.consumer"):
            records = read(source, 3, timeout=60.0)

        assert [(r.partition, r.value) for r in records] == [(partition, b"a"), (partition, b"b"), (partition, b"c")]
        assert source._consumer is not stalled
        (warning,) = [r.getMessage() for r in caplog.records if "rejoining" in r.getMessage()]
        assert f".events[{partition}]" in warning and "paused=True" in warning
    finally:
        source.close()


def test_a_member_whose_records_are_all_returned_stays_in_its_group(
    settings: Settings, sent: dict[tuple[str, int], int], caplog: pytest.LogCaptureFixture
) -> None:
    """Waiting for new records is no stall, whether the records returned were committed or not."""
    source = KafkaSource(settings, group=settings.kafka_topic_prefix, stall_after=0.5, stall_check=0.1)
    try:
        member = source._consumer
        assert [r.value for r in read(source, 3)] == [b"a", b"b", b"c"]  # returned, never committed
        with caplog.at_level(logging.WARNING, logger="expstream.consumer"):
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                assert source.poll(timeout=0.1) == []

        assert source._consumer is member
        assert not [r for r in caplog.records if "rejoining" in r.getMessage()]
    finally:
        source.close()


def test_records_the_log_deleted_before_the_member_read_them_are_no_stall(
    settings: Settings, sent: dict[tuple[str, int], int], caplog: pytest.LogCaptureFixture
) -> None:
    """Retention (here: deleting records) can move a partition's start past where this member stopped reading;
    what is gone is not waiting, so the member stays."""
    from kafka import KafkaAdminClient, TopicPartition

    from expstream.eventlog.kafka import kafka_options, physical_topic

    ((_, partition),) = sent
    source = KafkaSource(settings, group=settings.kafka_topic_prefix, stall_after=0.5, stall_check=0.1)
    try:
        member = source._consumer
        assert [r.value for r in read(source, 1)][:1] == [b"a"]
        tp = TopicPartition(physical_topic(settings, EVENTS), partition)
        source._positions[tp] = 1  # as if only "a" had been returned
        member.pause(tp)
        admin = KafkaAdminClient(**kafka_options(settings))
        try:
            admin.delete_records({tp: 3}, timeout_ms=10_000)  # "b" and "c" are gone
        finally:
            admin.close()
        with caplog.at_level(logging.WARNING, logger="expstream.consumer"):
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                source.poll(timeout=0.1)

        assert source._consumer is member
        assert not [r for r in caplog.records if "rejoining" in r.getMessage()]
    finally:
        source.close()
