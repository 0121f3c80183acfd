"""Shared fixtures: every test gets its own EXPSTREAM_HOME and a clean module state."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import expstream
from expstream.backend import StreamBackend
from expstream.config import Settings, load_settings

# a warm materializer that a test's child process started goes away soon after the test (see stop_materializers)
os.environ.setdefault("EXPSTREAM_MATERIALIZER_IDLE", "5")

#: create_experiment arguments of a test that wants no output capture, monitoring, hooks or source upload
QUIET: dict[str, object] = {
    "upload_source_files": [],
    "upload_stdout": False,
    "upload_stderr": False,
    "send_hardware_metrics": False,
    "run_monitoring_thread": False,
    "handle_uncaught_exceptions": False,
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty embedded home, with legacy globals reset before and after the test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("EXPSTREAM_HOME", str(folder))
    monkeypatch.delenv("NEPTUNE_PROJECT", raising=False)
    monkeypatch.delenv("EXPSTREAM_PROJECT", raising=False)
    monkeypatch.delenv("NEPTUNE_BACKEND", raising=False)
    for service in ("EXPSTREAM_KAFKA", "EXPSTREAM_CLICKHOUSE", "EXPSTREAM_S3"):
        monkeypatch.delenv(service, raising=False)  # the embedded default
    monkeypatch.chdir(tmp_path)
    _reset()
    yield folder
    _reset()
    stop_materializers(folder)


def stop_materializers(*homes: Path) -> None:
    """Stop the warm materializers of ``homes`` and every one this process started: no test leaves one running."""
    from expstream.consumers.warm.client import stop_daemons

    stop_daemons(*homes)


def _reset() -> None:
    for backend in list(expstream._backends.values()):
        backend.writer.close()
        reader = backend._reader
        if reader is not None:
            reader.tables.close()
    expstream._backends.clear()
    expstream.session = None
    expstream.project = None


@pytest.fixture
def backend(home: Path) -> StreamBackend:
    """The embedded backend of ``home``, as ``expstream.init`` builds it."""
    backend = expstream._default_backend(None, None)
    assert isinstance(backend, StreamBackend)
    return backend


@pytest.fixture
def project(home: Path) -> expstream.Project:
    return expstream.init("acme/sandbox")


# --- real services (Kafka, ClickHouse, S3) for the distributed adapters -------------------------


def _provision():  # type: ignore[no-untyped-def]
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "deploy" / "services" / "provision.py"
    spec = importlib.util.spec_from_file_location("expstream_provision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Kafka, ClickHouse and S3 started once for the session on free loopback ports.

    Installed (and cached) on first use by ``deploy/services/provision.py``; set
    ``EXPSTREAM_TEST_SERVICES=<state file>`` to use services that provision.py already runs, or
    ``EXPSTREAM_TEST_SERVICES=env`` to use ``EXPSTREAM_KAFKA`` / ``_CLICKHOUSE`` / ``_S3`` (and their TLS
    variables) from the environment, e.g. ``docker compose up``; tests that stop a server then skip.
    """
    import os

    provision = _provision()
    existing = os.environ.get("EXPSTREAM_TEST_SERVICES")
    if existing == "env":  # e.g. `docker compose up -d` and the README's exports: used as they are
        names = ("EXPSTREAM_KAFKA", "EXPSTREAM_CLICKHOUSE", "EXPSTREAM_S3")
        missing = [name for name in names if not os.environ.get(name)]
        if missing:
            raise pytest.UsageError(f"EXPSTREAM_TEST_SERVICES=env needs {', '.join(missing)} set")
        env = {k: v for k, v in os.environ.items() if k.startswith(names)}
        yield {"services": {}, "env": env, "state_path": None}  # nothing to stop and restart
        return
    if existing:
        yield provision.load_state(existing) | {"state_path": existing, "provision": provision}
        return
    state_path = tmp_path_factory.mktemp("services") / "services.json"
    provision.install()
    state = provision.start(None, state_path)
    try:
        yield state | {"state_path": str(state_path), "provision": provision}
    finally:
        provision.stop(None, state_path)


# --- a private installation on those services, for tests of the distributed mode (any folder) -----


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


@pytest.fixture
def consumer(cluster: Settings) -> Iterator[object]:
    """One consumer service (a member of the cluster's group) materializing in a thread."""
    yield from _consumer(cluster)


#: the consumer services running in this process's threads, for the report of a test that fails beside them
_CONSUMERS: list[tuple[object, threading.Thread]] = []


def _consumer(settings: Settings) -> Iterator[object]:
    from expstream.wiring import consumer_runner

    runner = consumer_runner(settings)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True, name="consumer")
    thread.start()
    _CONSUMERS.append((runner, thread))
    yield runner
    stop.set()
    thread.join(timeout=30)
    if thread.is_alive():  # closed under a running poll or commit: say where it was
        logging.getLogger("tests").warning("consumer thread still running 30 s after stop:\n%s", _describe_consumers())
    _CONSUMERS.remove((runner, thread))
    runner.source.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test that fails while a consumer service runs in a thread reports where that thread is and what its
    Kafka client holds: a consumer that fell behind leaves no other trace."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and _CONSUMERS:
        report.sections.append(("consumer services", _describe_consumers()))


def _describe_consumers() -> str:
    import sys
    import traceback

    from expstream.consumers.sources.kafka import KafkaSource, describe_member

    frames = sys._current_frames()
    out = []
    for runner, thread in _CONSUMERS:
        source = getattr(runner, "source", None)
        out.append(f"{thread.name} alive={thread.is_alive()} events={getattr(runner, 'events', '?')}")
        frame = frames.get(thread.ident) if thread.ident is not None else None
        if frame is not None:
            out.append("".join(traceback.format_stack(frame)))
        if isinstance(source, KafkaSource):
            consumer = source._consumer
            out.append(describe_member(consumer, sorted(consumer.assignment())))
    return "\n".join(out)


@pytest.fixture
def secure_consumer(secure_cluster: Settings) -> Iterator[object]:
    yield from _consumer(secure_cluster)
