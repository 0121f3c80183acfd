"""Poison never blocks a stream on the cluster: real Kafka, a ClickHouse 18.16 server, S3, `expstream consume`.

Every kind of poison of tests/consumers/poison.py is written straight into the events topic between good
events; the consumer process goes on (and is still alive), the tables hold every good point and event once,
the dead-letter topic holds every poison record with its reason, topic, partition and offset, and a
restarted consumer neither reprocesses nor loops. A ClickHouse of this test's own, stopped in the middle of
a consume and started again, makes the consumer wait and retry: nothing is dead-lettered, everything
arrives once.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import expstream
from expstream.config import Settings, load_settings
from expstream.eventlog.kafka import DEAD_LETTER, kafka_options, physical_topic
from expstream.eventlog.records import EVENTS
from tests.conftest import _provision, with_path
from tests.consumers import poison
from tests.distributed.conftest import start_consumer


def read_topic(settings: Settings, logical: str, wait: float = 5.0) -> list[Any]:
    """Every record of a topic, from the start (kafka-python ConsumerRecords)."""
    from kafka import KafkaConsumer

    reader = KafkaConsumer(physical_topic(settings, logical), **kafka_options(settings),
                           auto_offset_reset="earliest", consumer_timeout_ms=int(wait * 1000))  # fmt: skip
    try:
        return list(reader)
    finally:
        reader.close()


def counts(exp: expstream.Experiment) -> tuple[int, int]:
    """(events, points of 'loss') of ``exp`` in the ClickHouse tables, replayed twins merged."""
    frame = exp._backend.reader.tables.query_df(
        "SELECT (SELECT count() FROM events FINAL WHERE experiment_id = {e:String}) AS events, "
        "(SELECT count() FROM points_numeric FINAL WHERE experiment_id = {e:String} AND channel = 'loss') AS points",
        {"e": exp.internal_id},
    )
    return int(frame["events"].iloc[0]), int(frame["points"].iloc[0])


def test_poison_in_the_events_topic_is_dead_lettered_and_the_consumer_goes_on(
    cluster: Settings, consumers: list[subprocess.Popen[bytes]]
) -> None:
    from kafka import KafkaProducer

    consumers.append(start_consumer())
    expstream.init("acme/poison")
    exp = expstream.create_experiment("poisoned", upload_source_files=[], send_hardware_metrics=False)
    e = exp.internal_id
    intruder = KafkaProducer(**kafka_options(cluster))
    topic = physical_topic(cluster, EVENTS)
    sent: dict[tuple[int, int], tuple[poison.Poison, bytes]] = {}
    x = 0
    for item in poison.CATALOGUE:
        for _ in range(5):
            exp.log_metric("loss", x, x * 0.5)
            x += 1
        exp.wait(timeout=60)
        value = item.build(e)
        meta = intruder.send(topic, key=e.encode(), value=value).get(timeout=30)
        sent[(meta.partition, meta.offset)] = (item, value)
    intruder.close()
    for _ in range(5):
        exp.log_metric("loss", x, x * 0.5)
        x += 1
    exp.append_tag("after-poison")
    exp.stop()
    exp.sync(timeout=120)  # returns: no partition is blocked

    assert consumers[0].poll() is None  # it did not crash on any of them
    values = exp.get_numeric_channels_values("loss")
    assert values["x"].tolist() == [float(i) for i in range(x)]
    assert values["loss"].tolist() == [i * 0.5 for i in range(x)]
    assert exp.get_tags() == ["after-poison"]
    poisoned = {value for _, value in sent.values()}
    good = [r for r in read_topic(cluster, EVENTS) if r.key == e.encode() and (r.value or b"") not in poisoned]
    assert counts(exp) == (len(good), x)

    letters = read_topic(cluster, DEAD_LETTER)
    assert len(letters) == len(sent)
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        assert headers["topic"] == EVENTS
        item, value = sent[(int(headers["partition"]), int(headers["offset"]))]
        assert (letter.value or b"") == value, item.name
        assert item.reason in headers["reason"].lower(), item.name

    # a restarted consumer continues after the poison: nothing is dead-lettered again, nothing reprocessed
    consumers[0].terminate()
    consumers[0].wait(timeout=30)
    consumers.append(start_consumer())
    later = expstream.create_experiment("after-restart", upload_source_files=[], send_hardware_metrics=False)
    later.log_metric("loss", 0, 1.0)
    later.stop()
    later.sync(timeout=120)
    assert later.get_numeric_channels_values("loss")["loss"].tolist() == [1.0]
    assert consumers[1].poll() is None
    assert len(read_topic(cluster, DEAD_LETTER, wait=3.0)) == len(sent)
    assert counts(exp) == (len(good), x)


@pytest.fixture
def own_clickhouse(tmp_path: Path) -> Iterator[tuple[Any, Path, str]]:
    """A ClickHouse server of this test only (the shared one is never stopped): provision, its state file, URL."""
    provision = _provision()
    state = tmp_path / "svc.json"
    started = provision.start(["clickhouse"], state)
    try:
        yield provision, state, started["env"]["EXPSTREAM_CLICKHOUSE"]
    finally:
        provision.stop(None, state)


def test_a_clickhouse_outage_is_waited_out_and_dead_letters_nothing(
    cluster: Settings,
    own_clickhouse: tuple[Any, Path, str],
    consumers: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provision, state, url = own_clickhouse
    monkeypatch.setenv("EXPSTREAM_CLICKHOUSE", with_path(url, "outage"))
    settings = load_settings()
    consumers.append(start_consumer())
    expstream.init("acme/outage")
    exp = expstream.create_experiment("ch-down", upload_source_files=[], send_hardware_metrics=False)
    for i in range(500):
        exp.log_metric("loss", i, i * 0.5)
    exp.sync(timeout=120)
    provision.stop(["clickhouse"], state, keep_data=True)
    try:
        for i in range(500, 5000):
            exp.log_metric("loss", i, i * 0.5)
        exp.wait(timeout=60)  # Kafka holds it all; the consumer meets a server that is down
        time.sleep(8)
        assert consumers[0].poll() is None  # it backs off and retries, it does not end
    finally:
        provision.start(["clickhouse"], state)
    exp.stop()
    exp.sync(timeout=180)
    values = exp.get_numeric_channels_values("loss")
    assert values["x"].tolist() == [float(i) for i in range(5000)]
    assert counts(exp)[1] == 5000
    assert read_topic(settings, DEAD_LETTER, wait=3.0) == []
    assert not (settings.home / "dead-letter").exists()
