"""Experiment numbers on the Kafka sequencer: bounded, agreed by every reader, robust to damaged claims."""

from __future__ import annotations

import pytest

import expstream
from expstream.config import Settings
from expstream.eventlog.kafka import kafka_options, physical_topic
from expstream.exceptions import ExperimentNumbersExhausted
from expstream.producer.numbering.kafka import NUMBERING_TOPIC, KafkaNumbering


def test_numbers_stop_at_the_limit_and_every_reader_agrees(cluster: Settings) -> None:
    first = KafkaNumbering(cluster, limit=2)
    assert [first.next_number("acme/a"), first.number_for_run("acme/a", "job")] == [1, (2, True)]
    with pytest.raises(ExperimentNumbersExhausted, match="acme/a"):
        first.next_number("acme/a")
    second = KafkaNumbering(cluster, limit=2)  # another process reading the topic from its start
    with pytest.raises(ExperimentNumbersExhausted):
        second.number_for_run("acme/a", "new-job")
    assert second.number_for_run("acme/a", "job") == (2, False)  # attaching needs no new number
    assert second.next_number("acme/b") == 1
    assert first.next_number("acme/b") == 2


def test_a_damaged_claim_is_skipped_by_every_reader(cluster: Settings) -> None:
    from kafka import KafkaProducer

    numbering = KafkaNumbering(cluster)
    assert numbering.next_number("acme/c") == 1
    producer = KafkaProducer(**kafka_options(cluster), acks="all")
    for garbage in (b"\xff not json", b"[1, 2]", b'{"project": 7}', b'{"project": "acme/c", "run": [1]}'):
        producer.send(physical_topic(cluster, NUMBERING_TOPIC), value=garbage).get(timeout=30)
    producer.close()
    assert numbering.next_number("acme/c") == 2
    assert KafkaNumbering(cluster).next_number("acme/c") == 3


def test_create_experiment_refuses_past_the_limit_and_records_nothing(cluster: Settings, consumer: object) -> None:
    project = expstream.init("acme/full")
    project._backend.numbering.limit = 1
    exp = project.create_experiment(name="only", upload_source_files=[])
    exp.log_metric("m", 1.0)
    exp.stop()
    with pytest.raises(ExperimentNumbersExhausted):
        project.create_experiment(name="refused", upload_source_files=[])
    exp.sync(timeout=120)
    assert [(e.id, e.name) for e in project.get_experiments()] == [("FUL-1", "only")]
