"""Consumers under faults: every point materialized exactly once, none missing."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import expstream
from expstream import schemas
from expstream.config import Settings
from expstream.eventlog.kafka import kafka_options, physical_topic
from tests.conftest import with_path
from tests.distributed.conftest import start_consumer


def log_points(name: str, n: int, channels: int = 4) -> expstream.Experiment:
    expstream.init("acme/faults")
    exp = expstream.create_experiment(name, upload_source_files=[], send_hardware_metrics=False)
    for i in range(n):
        for c in range(channels):
            exp.log_metric(f"m{c}", i, float(i * 10 + c))
    exp.stop()
    exp.wait(timeout=120)
    return exp


def assert_exact(exp: expstream.Experiment, n: int, channels: int = 4) -> None:
    exp.sync(timeout=180)
    values = exp.get_numeric_channels_values(*[f"m{c}" for c in range(channels)])
    assert len(values) == n
    assert values["x"].tolist() == [float(i) for i in range(n)]
    for c in range(channels):
        assert values[f"m{c}"].tolist() == [float(i * 10 + c) for i in range(n)]
    counts = exp._backend.reader.tables.query_df(
        "SELECT count() AS n FROM points_numeric FINAL WHERE experiment_id = {e:String}", {"e": exp.internal_id}
    )
    assert int(counts["n"].iloc[0]) == n * channels


def test_consumer_killed_mid_batch_and_restarted(cluster: Settings, consumers: list) -> None:
    exp = log_points("kill", 60_000)
    consumers.append(start_consumer())
    reader = exp._backend.reader
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it is part-way through
        progress = sum(reader.consumer_progress(cluster.consumer_group).values())
        if progress > 0:
            break
        time.sleep(0.05)
    consumers[0].send_signal(signal.SIGKILL)
    consumers[0].wait()
    consumers.append(start_consumer())
    assert_exact(exp, 60_000)


def test_second_consumer_joins_mid_stream(cluster: Settings, consumers: list) -> None:
    consumers.append(start_consumer())
    expstream.init("acme/faults")
    exp = expstream.create_experiment("rebalance", upload_source_files=[], send_hardware_metrics=False)
    for i in range(40_000):
        for c in range(4):
            exp.log_metric(f"m{c}", i, float(i * 10 + c))
        if i == 20_000:
            exp.wait(timeout=120)
            consumers.append(start_consumer())  # the group rebalances while events keep coming
    exp.stop()
    assert_exact(exp, 40_000)


def test_clickhouse_down_for_20_seconds(cluster: Settings, services: dict, consumers: list) -> None:
    provision = services.get("provision")
    if provision is None:
        pytest.skip("needs services started by this test session (to stop and restart ClickHouse)")
    consumers.append(start_consumer())
    expstream.init("acme/faults")
    exp = expstream.create_experiment("ch-down", upload_source_files=[], send_hardware_metrics=False)
    for i in range(1000):
        exp.log_metric("m0", i, float(i * 10))
    exp.sync(timeout=120)
    provision.stop(["clickhouse"], services["state_path"], keep_data=True)
    try:
        for i in range(1000, 20_000):
            exp.log_metric("m0", i, float(i * 10))
        exp.wait(timeout=60)  # Kafka has everything; the consumer keeps retrying
        time.sleep(20)
        assert consumers[0].poll() is None  # it backs off, it does not die
    finally:
        provision.start(["clickhouse"], services["state_path"])
    exp.stop()
    assert_exact(exp, 20_000, channels=1)


def test_garbage_message_is_dead_lettered(cluster: Settings, consumers: list) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    consumers.append(start_consumer())
    expstream.init("acme/faults")
    exp = expstream.create_experiment("garbage", upload_source_files=[], send_hardware_metrics=False)
    exp.log_metric("m0", 0, 0.0)
    exp.wait(timeout=60)
    producer = KafkaProducer(**kafka_options(cluster))
    topic = physical_topic(cluster, "expstream.events")
    producer.send(topic, key=exp.internal_id.encode(), value=b"\xc3\x01 definitely not avro").get(timeout=30)
    valid = schemas.encode("PropertySet", {"header": {"event_id": "e", "experiment_id": exp.internal_id,
        "session_id": "s", "seq": 1, "ts": time.time(), "host": "h", "pid": 1}, "key": "k", "value": ""})  # fmt: skip
    producer.send(topic, key=exp.internal_id.encode(), value=valid[:12]).get(timeout=30)  # truncated
    producer.flush()
    for i in range(1, 1000):
        exp.log_metric("m0", i, float(i * 10))
    exp.stop()
    assert_exact(exp, 1000, channels=1)
    dead = KafkaConsumer(
        physical_topic(cluster, "expstream.dead-letter"), **kafka_options(cluster), auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )  # fmt: skip
    letters = list(dead)
    assert [m.value for m in letters] == [b"\xc3\x01 definitely not avro", valid[:12]]
    assert all(dict(m.headers)["reason"] for m in letters)


def test_replay_rebuilds_identical_results(cluster: Settings, consumer: object, services: dict) -> None:
    from expstream.consumers.replay import replay
    from expstream.consumers.sinks.clickhouse import ClickHouseTables
    from expstream.consumers.sinks.s3 import S3ObjectStore
    from expstream.query.reader import Reader
    from expstream.wiring import replay_source

    expstream.init("acme/faults")
    exp = expstream.create_experiment("replay", tags=["r"], params={"p": 1}, upload_source_files=[])
    for i in range(3000):
        exp.log_metric("m0", i, float(i * 10))
    exp.log_text("t", "text")
    exp.log_artifact(__import__("io").BytesIO(b"a" * 2_500_000), "a.bin")
    exp.stop()
    exp.sync(timeout=120)
    env = services["env"]
    tag = f"replay{os.getpid()}{threading.get_ident() % 1000}"
    tables = ClickHouseTables.from_url(with_path(env["EXPSTREAM_CLICKHOUSE"], f"db_{tag}"))
    objects = S3ObjectStore.from_url(with_path(env["EXPSTREAM_S3"], f"bucket-{tag}"), ca=cluster.s3_ca)
    applied = replay(replay_source(cluster), tables, objects, group="replay")
    assert applied > 0
    original, rebuilt = exp._backend.reader, Reader(tables, objects)
    e = exp.internal_id
    assert rebuilt.numeric_values(e, ["m0"]).equals(original.numeric_values(e, ["m0"]))
    assert rebuilt.tags(e) == original.tags(e) and rebuilt.parameters(e) == original.parameters(e)
    assert rebuilt.artifacts(e) == original.artifacts(e)
    assert rebuilt.blob(rebuilt.artifacts(e)["a.bin"][0]) == b"a" * 2_500_000
    assert [c.name for c in rebuilt.channels(e)] == [c.name for c in original.channels(e)]
