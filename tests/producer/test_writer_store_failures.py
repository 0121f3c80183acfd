"""The writer when its store refuses writes (a fake transport: the full-disk run is tests/faults).

Without a pending folder refused batches wait in memory; with one (what the wiring gives every real
transport) they wait on disk and outlive the process."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

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

    def __init__(self, log: MemoryLog | None = None) -> None:
        super().__init__(log or MemoryLog(partitions=1))
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


def _writer(transport: Refusing, pending: Path | None = None, **settings: object) -> Writer:
    return Writer(transport, Settings(flush_interval=60.0, **settings), pending)  # type: ignore[arg-type]


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
    while writer._pending.memory_bytes <= 4096 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    stalled = logged
    assert stalled < 20_000  # the logging thread waits for the store...
    assert writer._pending.memory_bytes < 4096 + 3 * 100 * 8 * 10  # ...and memory stays near the bound
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


def _batch_files(pending: Path) -> list[Path]:
    return sorted(pending.glob("*/*.batch"))


def _log_refused(writer: Writer, refusing: Refusing, points: int, *, batches: int = 1) -> None:
    """Log x = 0..points-1 on ``exp-1`` while the store refuses, drained into ``batches`` batches."""
    stream = writer.open_stream("exp-1")
    refusing.refuse.set()
    per_batch = points // batches
    for x in range(points):
        stream.log_metric("loss", x, float(x))
        if batches > 1 and x % per_batch == per_batch - 1:
            writer.drain()


def test_refused_batches_wait_on_disk_not_in_memory(refusing: Refusing, tmp_path: Path) -> None:
    pending = tmp_path / "pending"
    writer = _writer(refusing, pending, batch_points=10)
    _log_refused(writer, refusing, 70)
    with pytest.raises(DurabilityError, match=r"kept on disk in .*pending.*by the next one of this EXPSTREAM_HOME"):
        writer.flush()
    assert writer.pending_failed() == 7 and writer._pending.memory_bytes == 0
    assert len(_batch_files(pending)) == 1  # one drain: one batch of 7 events
    refusing.refuse.clear()
    writer.flush()
    assert _xs(refusing) == [float(x) for x in range(70)]
    assert _batch_files(pending) == []
    writer.close()
    assert list(pending.iterdir()) == []  # the writer's folder goes with it once empty


def test_logging_goes_on_while_the_disk_takes_what_the_store_refuses(
    refusing: Refusing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "FAILED_BYTES_LIMIT", 4096)  # the memory bound does not apply to files
    writer = _writer(refusing, tmp_path / "pending", batch_points=100, buffer_points=1000)
    _log_refused(writer, refusing, 20_000)  # 200 batches, far past the memory bound: nothing waits
    with pytest.raises(DurabilityError):
        writer.flush()
    assert writer.pending_failed() == 200 and writer._pending.memory_bytes == 0
    refusing.refuse.clear()
    writer.flush()
    assert _xs(refusing) == [float(x) for x in range(20_000)]
    writer.close()


def test_the_next_writer_of_the_home_sends_what_an_ended_one_left_first(
    refusing: Refusing, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pending = tmp_path / "pending"
    first = _writer(refusing, pending, batch_points=10)
    _log_refused(first, refusing, 30, batches=3)  # three drains: three batches, three files
    first.close()  # the store still refuses: the batches stay on disk
    assert "the next expstream process of this EXPSTREAM_HOME writes them first" in caplog.text
    assert "are lost" not in caplog.text
    assert len(_batch_files(pending)) == 3
    second = _writer(Refusing(refusing.log), pending, batch_points=10)  # a new process, the same store
    later = second.open_stream("exp-1")
    for x in range(30, 40):
        later.log_metric("loss", x, float(x))
    second.flush()
    assert _xs(refusing) == [float(x) for x in range(40)]  # the ended writer's points first, in order
    assert _batch_files(pending) == []
    second.close()


def test_a_living_writers_batches_are_not_taken_by_another(refusing: Refusing, tmp_path: Path) -> None:
    pending = tmp_path / "pending"
    owner = _writer(refusing, pending, batch_points=10)
    _log_refused(owner, refusing, 20)
    with pytest.raises(DurabilityError):
        owner.flush()
    other = _writer(Refusing(), pending)
    assert other.pending_failed() == 0  # the owner's lock is held: its batches stay its own
    other.close()
    refusing.refuse.clear()
    owner.flush()
    assert _xs(refusing) == [float(x) for x in range(20)]
    owner.close()


def test_batches_wait_in_memory_when_the_disk_refuses_them_too(refusing: Refusing, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    writer = _writer(refusing, blocker / "pending", batch_points=10)
    _log_refused(writer, refusing, 20)
    with pytest.raises(DurabilityError, match=r"kept in memory.*while this process lives"):
        writer.flush()
    assert writer._pending.memory_bytes > 0
    refusing.refuse.clear()
    writer.flush()
    assert _xs(refusing) == [float(x) for x in range(20)]
    writer.close()


def test_a_damaged_pending_file_is_set_aside_and_the_rest_is_sent(
    refusing: Refusing, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pending = tmp_path / "pending"
    first = _writer(refusing, pending, batch_points=10)
    _log_refused(first, refusing, 30, batches=3)  # three drains: three batches, three files
    first.close()
    files = _batch_files(pending)
    damaged = files[1]
    damaged.write_bytes(damaged.read_bytes()[:-3] + b"xyz")  # one batch's bytes no longer match its crc
    caplog.set_level(logging.ERROR)
    second = _writer(Refusing(refusing.log), pending)
    second.flush()
    assert _xs(refusing) == [float(x) for x in (*range(10), *range(20, 30))]
    assert damaged.with_suffix(".damaged").exists() and "damaged" in caplog.text
    second.close()


def test_a_forked_child_leaves_the_parents_waiting_batches_alone(refusing: Refusing, tmp_path: Path) -> None:
    pending = tmp_path / "pending"
    writer = _writer(refusing, pending, batch_points=10)
    _log_refused(writer, refusing, 20)
    with pytest.raises(DurabilityError):
        writer.flush()
    pid = os.fork()
    if pid == 0:  # the child: owns nothing of the parent's, and closing its copy of the lock releases nothing
        os._exit(0 if writer.pending_failed() == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    other = _writer(Refusing(), pending)
    assert other.pending_failed() == 0  # the parent still holds its folder
    other.close()
    refusing.refuse.clear()
    writer.flush()
    assert _xs(refusing) == [float(x) for x in range(20)]
    writer.close()
