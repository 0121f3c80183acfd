"""Fixtures for the distributed mode: a private slice of the real Kafka, ClickHouse and S3."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import expstream
from expstream.config import Settings, load_settings


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, "", ""))


def _installation(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Environment of a fresh installation on the shared services: own topics, database, bucket."""
    tag = uuid.uuid4().hex[:10]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EXPSTREAM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EXPSTREAM_KAFKA_TOPIC_PREFIX", f"t{tag}")
    monkeypatch.setenv("EXPSTREAM_KAFKA_PARTITIONS", "4")
    monkeypatch.setenv("EXPSTREAM_CONSUMER_GROUP", f"g{tag}")
    monkeypatch.setenv("EXPSTREAM_CLICKHOUSE", with_path(env["EXPSTREAM_CLICKHOUSE"], f"db_{tag}"))
    monkeypatch.setenv("EXPSTREAM_S3", with_path(env["EXPSTREAM_S3"], f"bucket-{tag}"))
    monkeypatch.delenv("NEPTUNE_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    _reset()
    yield load_settings()
    _reset()


@pytest.fixture
def cluster(services: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A fresh installation on the shared services, over their plain endpoints where they have one."""
    yield from _installation(services["env"], tmp_path, monkeypatch)


@pytest.fixture
def secure_cluster(services: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The same, reached only over TLS: Kafka with SASL/PLAIN, ClickHouse and S3 with passwords."""
    env = services.get("secure_env", {})
    if env.get("EXPSTREAM_KAFKA_SECURITY_PROTOCOL") != "SASL_SSL" or "EXPSTREAM_CLICKHOUSE_CA" not in env:
        pytest.skip("these services have no TLS endpoints (EXPSTREAM_TEST_SERVICES names services started elsewhere)")
    yield from _installation(env, tmp_path, monkeypatch)


def _reset() -> None:
    for backend in list(expstream._backends.values()):
        backend.writer.close()
    expstream._backends.clear()
    expstream.session = None
    expstream.project = None


@pytest.fixture
def consumer(cluster: Settings) -> Iterator[object]:
    """One consumer service (a member of the cluster's group) materializing in a thread."""
    yield from _consumer(cluster)


def _consumer(settings: Settings) -> Iterator[object]:
    from expstream.wiring import consumer_runner

    runner = consumer_runner(settings)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    yield runner
    stop.set()
    thread.join(timeout=30)
    runner.source.close()


@pytest.fixture
def secure_consumer(secure_cluster: Settings) -> Iterator[object]:
    yield from _consumer(secure_cluster)
