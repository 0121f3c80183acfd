"""A read while ClickHouse is unreachable (Kafka up) raises ``StorageError`` within a bounded time instead of
hanging, and nothing logged is lost: once ClickHouse is back, the same read returns every point.

The ClickHouse here is this test's own (``deploy/services/provision.py`` with a private state file), so
stopping and freezing it disturbs nobody; Kafka and S3 are the shared ones. Two kinds of unreachable: a
stopped server (connections refused) and a frozen one (SIGSTOP: it accepts connections and never
answers), which only ``EXPSTREAM_CLICKHOUSE_TIMEOUT`` turns into an error.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import expstream
from expstream.config import load_settings
from expstream.exceptions import NeptuneException, StorageError
from tests.conftest import with_path

REPO = Path(__file__).resolve().parents[2]


def _provision() -> Any:
    spec = importlib.util.spec_from_file_location("expstream_provision", REPO / "deploy" / "services" / "provision.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def own_clickhouse(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    provision = _provision()
    state_path = tmp_path / "svc" / "svc.json"
    state_path.parent.mkdir()
    provision.start(["clickhouse"], state_path)
    try:
        yield provision, state_path
    finally:
        pid = provision.load_state(state_path)["services"].get("clickhouse", {}).get("pid")
        if pid:
            try:
                os.kill(pid, signal.SIGCONT)  # never leave it frozen for stop()
            except ProcessLookupError:
                pass
        provision.stop(["clickhouse"], state_path)


@pytest.fixture
def installation(
    services: dict, own_clickhouse: tuple[Any, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Path]]:
    """Shared Kafka and S3, own ClickHouse, a consumer service in a thread; short ClickHouse deadlines."""
    provision, state_path = own_clickhouse
    tag = uuid.uuid4().hex[:10]
    own = provision.load_state(state_path)["services"]["clickhouse"]["env"]["EXPSTREAM_CLICKHOUSE"]
    for name, value in services["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EXPSTREAM_CLICKHOUSE", with_path(own, f"db_{tag}"))
    monkeypatch.setenv("EXPSTREAM_S3", with_path(services["env"]["EXPSTREAM_S3"], f"bucket-{tag}"))
    monkeypatch.setenv("EXPSTREAM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EXPSTREAM_KAFKA_TOPIC_PREFIX", f"t{tag}")
    monkeypatch.setenv("EXPSTREAM_KAFKA_PARTITIONS", "2")
    monkeypatch.setenv("EXPSTREAM_CONSUMER_GROUP", f"g{tag}")
    monkeypatch.setenv("EXPSTREAM_CLICKHOUSE_TIMEOUT", "2")
    monkeypatch.setenv("EXPSTREAM_READ_BARRIER_TIMEOUT", "60")
    monkeypatch.delenv("NEPTUNE_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    from expstream.wiring import consumer_runner

    _reset()
    runner = consumer_runner(load_settings())
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield own_clickhouse
    finally:
        if isinstance(expstream.project, expstream.Project):
            expstream.project._stop_all()
        stop.set()
        thread.join(timeout=60)
        runner.source.close()
        _reset()


def _reset() -> None:
    for backend in list(expstream._backends.values()):
        backend.writer.close()
    expstream._backends.clear()
    expstream.session = None
    expstream.project = None


def test_read_fails_clearly_while_clickhouse_is_down_and_loses_nothing(installation: tuple[Any, Path]) -> None:
    provision, state_path = installation
    expstream.init("acme/outage")
    exp = expstream.create_experiment(name="outage", upload_source_files=[], send_hardware_metrics=False)
    for step in range(10):
        exp.log_metric("loss", step, 1.0 / (step + 1))
    assert len(exp.get_numeric_channels_values("loss")) == 10

    # stopped: connections are refused
    provision.stop(["clickhouse"], state_path, keep_data=True)
    for step in range(10, 20):
        exp.log_metric("loss", step, 1.0 / (step + 1))
    with pytest.raises(StorageError) as refused:
        exp.get_numeric_channels_values("loss")
    assert isinstance(refused.value, NeptuneException)
    assert "ClickHouse" in str(refused.value)
    exp.append_tag("during-outage")  # writes still go to Kafka

    # frozen: the port accepts connections and nothing answers; the deadline makes it an error
    provision.start(["clickhouse"], state_path)
    pid = provision.load_state(state_path)["services"]["clickhouse"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        exp.log_metric("loss", 20, 1.0 / 21)
        with pytest.raises(StorageError) as frozen:
            exp.get_numeric_channels_values("loss")
        assert "ClickHouse" in str(frozen.value)
    finally:
        os.kill(pid, signal.SIGCONT)

    # back: the same read returns every point, none lost, none twice
    frame = exp.get_numeric_channels_values("loss")
    assert list(frame["x"]) == list(range(21))
    assert list(frame["loss"]) == [1.0 / (step + 1) for step in range(21)]
    assert exp.get_tags() == ["during-outage"]
    exp.stop()
