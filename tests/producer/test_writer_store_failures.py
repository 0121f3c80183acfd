"""The writer when its store refuses writes (a fake transport: the full-disk run is tests/faults)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from expstream import schemas
from expstream.config import Settings
from expstream.eventlog.memory import MemoryLog
from expstream.eventlog.records import EVENTS, Watermark
from expstream.exceptions import DurabilityError, TransportError
from expstream.producer import writer as writer_module
from expstream.producer.transports.memory import MemoryTransport
from expstream.producer.writer import Writer


class Refusing(MemoryTransport):
    """A memory log that refuses every send while ``refuse`` is set, like a full disk."""

    def __init__(self) -> None:
        super().__init__(MemoryLog(partitions=1))
        self.refuse = threading.Event()

    def send(self, topic: str, key: str, messages: Sequence[bytes]) -> None:
        if self.refuse.is_set():
            raise TransportError("cannot append: [Errno 28] No space left on device")
        super().send(topic, key, messages)

    def flush(self, timeout: float | None = None) -> Watermark:
        return super().flush(timeout)


def _xs(transport: Refusing) -> list[float]:
    """x of every numeric point in the log, in log order."""
    out: list[float] = []
    for record in transport.log.read(EVENTS, 0, 0, max_records=1_000_000):
        kind, event = schemas.decode(record.value)
        if kind == "NumericPoints":
            for series in event["series"]:
                out.extend(series["xs"])
    return out


@pytest.fixture
def refusing() -> Refusing:
    return Refusing()


def _writer(transport: Refusing, **settings: object) -> Writer:
    return Writer(transport, Settings(flush_interval=60.0, **settings))  # type: ignore[arg-type]


def test_flush_raises_while_the_store_refuses_then_writes_everything_in_order(refusing: Refusing) -> None:
    writer = _writer(refusing, batch_points=10)
    stream = writer.open_stream("exp-1")
    for x in range(50):
        stream.log_metric("loss", x, float(x))
    writer.flush()
    refusing.refuse.set()
    for x in range(50, 120):
        stream.log_metric("loss", x, float(x))
    with pytest.raises(DurabilityError, match=r"not durable.*No space left") as raised:
        writer.flush()
    assert not isinstance(raised.value, OSError)  # an expstream error, not the driver's
    assert writer.pending_failed() == 7  # 70 points in batches of 10: every one kept
    refusing.refuse.clear()
    writer.flush()
    assert writer.pending_failed() == 0
    assert _xs(refusing) == [float(x) for x in range(120)]  # all, once, in the order logged
    writer.close()


def test_logging_waits_instead_of_filling_memory(refusing: Refusing, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "FAILED_BYTES_LIMIT", 4096)
    writer = _writer(refusing, batch_points=100, buffer_points=1000)
    stream = writer.open_stream("exp-1")
    refusing.refuse.set()
    logged = 0

    def log() -> None:
        nonlocal logged
        for x in range(20_000):
            stream.log_metric("loss", x, float(x))
            logged += 1

    thread = threading.Thread(target=log, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while writer._failed_bytes <= 4096 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    stalled = logged
    assert stalled < 20_000  # the logging thread waits for the store...
    assert writer._failed_bytes < 4096 + 3 * 100 * 8 * 10  # ...and memory stays near the bound
    refusing.refuse.clear()  # space is back
    thread.join(timeout=60)
    assert not thread.is_alive()
    writer.flush()
    assert _xs(refusing) == [float(x) for x in range(20_000)]
    writer.close()


def test_close_reports_what_the_store_never_took(refusing: Refusing, caplog: pytest.LogCaptureFixture) -> None:
    writer = _writer(refusing)
    stream = writer.open_stream("exp-1")
    refusing.refuse.set()
    for x in range(10):
        stream.log_metric("loss", x, float(x))
    writer.close()
    assert "still refuses writes at exit" in caplog.text and "are lost" in caplog.text
