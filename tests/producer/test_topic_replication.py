"""Replication of the topics expstream creates: defaults that survive one broker lost, one broker alone works."""

from __future__ import annotations

import pytest

from expstream.config import load_settings
from expstream.eventlog.kafka import new_topic, topic_replication
from expstream.exceptions import ConfigurationError


@pytest.mark.parametrize("brokers, expected", [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (7, (3, 2))])
def test_defaults_by_cluster_size(brokers: int, expected: tuple[int, int]) -> None:
    assert topic_replication(load_settings(kafka="k:9092"), brokers) == expected


def test_settings_choose_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPSTREAM_KAFKA_REPLICATION_FACTOR", "5")
    monkeypatch.setenv("EXPSTREAM_KAFKA_MIN_INSYNC_REPLICAS", "3")
    settings = load_settings(kafka="k:9092")
    assert topic_replication(settings, 5) == (5, 3)
    topic = new_topic(settings, "p.events", 12, 5)
    assert (topic.num_partitions, topic.replication_factor) == (12, 5)
    assert topic.topic_configs["min.insync.replicas"] == "3"


def test_more_replicas_than_brokers_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPSTREAM_KAFKA_REPLICATION_FACTOR", "3")
    with pytest.raises(ConfigurationError, match="has 1 broker"):
        topic_replication(load_settings(kafka="k:9092"), 1)


def test_insync_above_replicas_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPSTREAM_KAFKA_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("EXPSTREAM_KAFKA_MIN_INSYNC_REPLICAS", "3")
    with pytest.raises(ConfigurationError, match="MIN_INSYNC_REPLICAS=3 is more than"):
        load_settings()


@pytest.mark.parametrize("name", ["bad name", "1x", "a;b"])
def test_cluster_name_must_be_an_identifier(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("EXPSTREAM_CLICKHOUSE_CLUSTER", name)
    with pytest.raises(ConfigurationError, match="EXPSTREAM_CLICKHOUSE_CLUSTER"):
        load_settings()


def test_empty_cluster_name_means_one_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPSTREAM_CLICKHOUSE_CLUSTER", "")
    assert load_settings().clickhouse_cluster is None
