"""The Kafka transport's spool, against a real broker that is stopped and started again.

Logging must never wait for Kafka: events go to a spool under ``EXPSTREAM_HOME/spool`` and a
forwarder ships them once Kafka takes them — exactly once, also from the next process when the
one that logged them was killed. The spool is bounded and its shipped segments are deleted.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import expstream
from expstream import schemas
from expstream.config import Settings, load_settings
from expstream.consumers.sources.kafka import KafkaSource
from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.records import BLOBS, EVENTS, Record
from expstream.producer.transports.kafka import KafkaTransport

ROOT = Path(__file__).resolve().parents[3]
#: seconds the broker stays down while a client logs
OUTAGE = 20.0


# --- helpers ------------------------------------------------------------------------------------


def _provision(services: dict[str, Any]) -> ModuleType:
    """The fixture's provisioner, or (services reused through EXPSTREAM_TEST_SERVICES) our own."""
    if "provision" in services:
        return services["provision"]
    spec = importlib.util.spec_from_file_location("expstream_provision", ROOT / "deploy" / "services" / "provision.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def kafka_stopped(services: dict[str, Any]) -> Iterator[None]:
    """The broker is down inside; it runs again (same port and data) after, whatever happened."""
    provision, state = _provision(services), services["state_path"]
    if state is None:
        pytest.skip("needs services started by provision.py (to stop and restart the broker)")
    provision.stop(["kafka"], state, keep_data=True)
    try:
        yield
    finally:
        provision.start(["kafka"], state)


@pytest.fixture
def distributed(services: dict[str, Any], home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh installation on the session's services: its own topics, under ``home``."""
    env = services["env"]
    for name in ("EXPSTREAM_KAFKA", "EXPSTREAM_CLICKHOUSE", "EXPSTREAM_S3"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("EXPSTREAM_KAFKA_TOPIC_PREFIX", f"spool-{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("EXPSTREAM_KAFKA_PARTITIONS", "4")
    return load_settings()


def read_kafka(settings: Settings, timeout: float = 60.0) -> list[Record]:
    """Every record of the installation's topics, from the beginning up to their current end."""
    source = KafkaSource(settings, group=None)
    try:
        end = source.end_offsets()
        positions: dict[tuple[str, int], int] = {}
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while any(positions.get(tp, 0) < offset for tp, offset in end.items()):
            assert time.monotonic() < deadline, f"read {positions} of {end}"
            for record in source.poll(10_000, timeout=0.5):
                records.append(record)
                positions[(record.topic, record.partition)] = record.next_offset
        return records
    finally:
        source.close()


def points(records: list[Record], experiment_id: str, channel: str) -> list[tuple[float, float]]:
    """``(x, y)`` of a numeric channel in stream order; also checks that no event came twice."""
    events = [schemas.decode(r.value) for r in records if r.key == experiment_id]
    ids = [event["header"]["event_id"] for _, event in events]
    assert len(ids) == len(set(ids)), "an event reached Kafka twice"
    out: list[tuple[float, float]] = []
    for kind, event in events:
        if kind == "NumericPoints":
            for series in event["series"]:
                if series["channel"] == channel:
                    out += zip(series["xs"], series["ys"], strict=True)
    return out


def y(i: int) -> float:
    return i * 0.25 - 7.0


# --- (a) the broker down while a client logs ----------------------------------------------------


class _Logger:
    """A training loop in a thread: ``log_metric`` about every millisecond, each call counted.

    How long the calls take while the broker is down is a figure for bench/bench_broker_down.py.
    """

    def __init__(self, log_metric: Any) -> None:
        self.log_metric = log_metric
        self.calls = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        log_metric = self.log_metric
        try:
            i = 0
            while not self.stop.is_set():
                log_metric("loss", i, y(i))
                i += 1
                self.calls = i
                time.sleep(0.001)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(timeout=10)
        assert self.error is None, self.error
        return self.calls


def _open_experiment(settings: Settings) -> tuple[Any, str, Any, Any]:
    """``(log_metric, experiment id, wait, stop)`` through the public API; straight over the
    transport while the distributed sinks cannot be imported (the API needs them to wire a backend)."""
    try:
        importlib.import_module("expstream.consumers.sinks.clickhouse")
        importlib.import_module("expstream.consumers.sinks.s3")
    except ImportError:
        from expstream.producer.writer import Writer

        writer = Writer(KafkaTransport(settings, settings.home / "spool"), settings)
        stream = writer.open_stream(uuid.uuid4().hex)
        return stream.log_metric, stream.experiment_id, writer.flush, writer.close
    expstream.init("acme/spool")
    exp = expstream.create_experiment("broker-down", upload_source_files=[])
    return exp.log_metric, exp.internal_id, exp.wait, exp.stop


@pytest.mark.slow
def test_logging_never_waits_while_the_broker_is_down_and_every_point_arrives_once(
    distributed: Settings, services: dict[str, Any]
) -> None:
    log_metric, experiment_id, wait, stop = _open_experiment(distributed)
    wait(timeout=60)
    logger = _Logger(log_metric)
    time.sleep(1.0)
    try:
        with kafka_stopped(services):
            down_from = logger.calls
            time.sleep(OUTAGE)
            down_to = logger.calls
            with pytest.raises(TimeoutError):
                wait(timeout=0.1)  # nothing logged during the outage is in Kafka yet
        time.sleep(1.0)  # the broker is back: keep logging while the spool drains
    finally:
        logged = logger.finish()
    wait(timeout=120)
    stop()

    got = points(read_kafka(distributed), experiment_id, "loss")

    assert down_to > down_from  # the training loop kept logging while the broker was down
    assert len(got) == logged
    assert got == [(float(i), y(i)) for i in range(logged)]


# --- (b) a training process killed while the broker is down --------------------------------------

TRAINING = """
import sys, time
import expstream
expstream.init("acme/spool")
exp = expstream.create_experiment(
    "killed", upload_source_files=[], upload_stdout=False, upload_stderr=False,
    send_hardware_metrics=False, run_monitoring_thread=False,
)
exp.wait(timeout=60)
print("created", exp.internal_id, flush=True)
sys.stdin.readline()  # the broker is stopped now
n = int(sys.argv[1])
for i in range(n):
    exp.log_metric("loss", i, i * 0.25 - 7.0)
try:
    exp.wait(timeout=0.5)
except TimeoutError:
    print("spooled", flush=True)
else:
    print("delivered while Kafka was down?", flush=True)
time.sleep(600)
"""

# Opens the same EXPSTREAM_HOME and logs nothing: exiting flushes, so it delivers the spool first.
NEXT_PROCESS = """
import expstream
expstream.init("acme/spool")
print("opened", flush=True)
"""


@pytest.mark.slow
def test_events_of_a_process_killed_while_the_broker_is_down_are_delivered_by_the_next(
    distributed: Settings, services: dict[str, Any]
) -> None:
    n = 5_000
    env = dict(os.environ)
    training = subprocess.Popen(
        [sys.executable, "-c", TRAINING, str(n)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert training.stdout is not None and training.stdin is not None
        word, experiment_id = training.stdout.readline().split()
        assert word == "created"
        with kafka_stopped(services):
            training.stdin.write("go\n")
            training.stdin.flush()
            assert training.stdout.readline().strip() == "spooled"
            training.send_signal(signal.SIGKILL)
            assert training.wait(timeout=10) == -signal.SIGKILL
    finally:
        if training.poll() is None:
            training.kill()
            training.wait()

    done = subprocess.run([sys.executable, "-c", NEXT_PROCESS], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "opened"

    got = points(read_kafka(distributed), experiment_id, "loss")
    assert got == [(float(i), y(i)) for i in range(n)]


# --- (c) the spool is bounded ----------------------------------------------------------------------


class _AcceptingProducer:
    """Stands in for a KafkaProducer of a broker that takes everything at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> Any:
        from kafka.future import Future

        self.sent.append((topic, key, value))
        return Future().success(SimpleNamespace(topic=topic, partition=0, offset=len(self.sent) - 1))

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def test_a_full_spool_makes_send_wait_with_a_warning_until_kafka_takes_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from kafka.errors import KafkaTimeoutError

    monkeypatch.setenv("EXPSTREAM_SPOOL_BYTES", str(1 << 20))
    settings = load_settings(kafka="127.0.0.1:9", kafka_topic_prefix="bounded")
    assert settings.spool_bytes == 1 << 20

    def unreachable() -> Any:
        raise KafkaTimeoutError("Unable to bootstrap")  # what kafka-python raises for a broker that is down

    monkeypatch.setattr(KafkaTransport, "_producer_instance", lambda self: unreachable())
    transport = KafkaTransport(settings, tmp_path / "spool", close_timeout=5)
    chunk = [b"x" * (100 << 10)] * 3  # 300 KiB a send
    caplog.set_level(logging.WARNING, logger="expstream.kafka")
    for _ in range(4):
        transport.send(EVENTS, "exp", chunk)  # 1.2 MiB: over the bound after the fourth
    full = transport.spooled_bytes()
    assert full > 1 << 20

    fifth = threading.Thread(target=transport.send, args=(BLOBS, "exp", chunk), daemon=True)
    fifth.start()
    fifth.join(timeout=0.6)

    assert fifth.is_alive(), "send went on although the spool is full"
    assert transport.spooled_bytes() == full  # waits: neither dropped nor grown
    assert any("spool" in r.getMessage() and "is full" in r.getMessage() for r in caplog.records)

    producer = _AcceptingProducer()
    monkeypatch.setattr(KafkaTransport, "_producer_instance", lambda self: producer)
    fifth.join(timeout=10)  # Kafka takes events: the spool drains, the waiting send goes on

    assert not fifth.is_alive()
    transport.flush(timeout=10)
    assert transport.spooled_bytes() == 0
    assert [(t, v) for t, _, v in producer.sent] == [("bounded.events", chunk[0])] * 12 + [
        ("bounded.blobs", chunk[0])
    ] * 3
    transport.close()


# --- (d) shipped segments are deleted ------------------------------------------------------------


def spool_segments(spool: Path, topic: str = EVENTS) -> list[Path]:
    return sorted((spool / "log" / topic).glob("*/*.seg"))


def open_deleted_files(folder: Path) -> list[str]:
    """Files under ``folder`` this process holds open although they are deleted (disk not freed)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)) and target.endswith("(deleted)"):
                out.append(target)
    return out


def test_shipped_spool_segments_are_deleted_and_a_next_process_goes_on_after_them(
    distributed: Settings, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    message = [f"{i:05d}".encode() + b"." * 4000 for i in range(8)]
    transport = KafkaTransport(distributed, spool, segment_bytes=64 << 10, close_timeout=30)
    other = LocalLog(spool / "log", segment_bytes=64 << 10)  # a second process logging to the same spool
    for _ in range(40):  # 2.6 MiB to one partition: about forty 64 KiB segments
        transport.send(EVENTS, "exp", message)
        other.append(EVENTS, "exp", message)
    transport.flush(timeout=60)
    other.append(EVENTS, "exp", message)  # appenders let go of the segments they wrote before
    transport.flush(timeout=60)

    left = spool_segments(spool)
    assert len(left) == 1  # only the active segment of the partition stays
    assert int(left[0].stem) > 0
    assert open_deleted_files(spool) == []
    transport.close()
    other.close()

    again = KafkaTransport(distributed, spool, segment_bytes=64 << 10, close_timeout=30)  # as the next process
    again.send(EVENTS, "exp", [b"after"])
    again.flush(timeout=60)
    again.close()

    values = [r.value for r in read_kafka(distributed) if r.topic == EVENTS]
    assert values == message * 81 + [b"after"]  # nothing shipped twice, nothing lost


@pytest.mark.parametrize("damage", [b"{torn", b"", b'{"spool": [["t", "x", 1]]}', b'{"spool": 5}'])
def test_a_damaged_spool_state_is_ignored_with_a_warning_and_the_spool_still_ships(
    distributed: Settings, home: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    spool = home / "spool"
    first = KafkaTransport(distributed, spool)
    first.send(EVENTS, "exp-1", [b"one"])
    first.flush(60)
    first.close()
    state = spool / "forwarded.json"
    assert state.exists()
    state.write_bytes(damage)
    with caplog.at_level(logging.WARNING):
        second = KafkaTransport(distributed, spool)
        second.send(EVENTS, "exp-1", [b"two"])
        mark = second.flush(60)
        second.close()
    assert str(state) in caplog.text
    assert mark  # flushed: everything the spool holds reached Kafka
    values = [r.value for r in read_kafka(distributed) if r.key == "exp-1"]
    assert values.count(b"two") == 1 and set(values) == {b"one", b"two"}  # shipped again at worst, never lost
    assert not [p for p in spool.iterdir() if p.name.endswith(".tmp")]
