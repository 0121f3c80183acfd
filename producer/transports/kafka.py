"""The Kafka transport: spool to local disk first, forward to Kafka second.

``send`` appends to a local spool (the same append-only log as the embedded default, under
``$EXPSTREAM_HOME/spool``) and returns; a forwarder thread ships the spool to Kafka with an
idempotent ``acks=all`` producer, keyed by experiment so each experiment stays ordered. When Kafka
is unreachable or slow, events wait in the spool (bounded by ``EXPSTREAM_SPOOL_BYTES``, reported
in the logs) and drain when it is back — also from the next process that opens the same
``EXPSTREAM_HOME``, since the spool and its forwarding position live on disk. One process at a
time forwards a spool (an flock decides); the others only append.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expstream.backoff import Backoff
from expstream.config import Settings
from expstream.eventlog.kafka import (
    MAX_MESSAGE_BYTES,
    ensure_topics,
    kafka_options,
    logical_topic,
    message_limit,
    physical_topic,
)
from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.records import BLOBS, EVENTS, Watermark
from expstream.exceptions import TransportError
from expstream.localfiles import read_json_or_none, write_atomically
from expstream.locking import try_flock, unlock
from expstream.producer import undeliverable
from expstream.producer.transports.base import Transport
from expstream.producer.transports.local_log import LocalLogTransport

if TYPE_CHECKING:
    from expstream.eventlog.records import Record

__all__ = ["KafkaTransport"]

log = logging.getLogger("expstream.kafka")

#: bytes Kafka's record batch framing adds around one record (key, headers, batch header)
_RECORD_OVERHEAD = 1024
#: "no deadline" for a producer setting in milliseconds (a Java int)
_FOREVER_MS = 2**31 - 1


class _ForwardState:
    """How far the spool has been shipped, and the Kafka offsets it reached (shared on disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[Watermark, Watermark]:
        """Damaged state is ignored with a warning: the spool is shipped again from what it still
        holds, and the duplicates that makes in Kafka are absorbed by the idempotent sinks."""
        try:
            data = read_json_or_none(self.path, "spool state", "shipping the spool again from what it holds")
        except OSError as exc:
            raise TransportError(f"cannot read the spool state {self.path}: {exc}") from exc
        if data is None:
            return {}, {}

        def pairs(items: list[list[Any]]) -> Watermark:
            return {(str(t), int(p)): int(o) for t, p, o in items}

        try:
            return pairs(data.get("spool", [])), pairs(data.get("kafka", []))
        except (AttributeError, TypeError, ValueError) as exc:
            log.warning("ignoring damaged spool state %s (%s: %s); shipping the spool again from what it holds",
                           self.path, type(exc).__name__, exc)  # fmt: skip
            return {}, {}

    def save(self, spool: Watermark, kafka: Watermark) -> None:
        body = {
            "spool": [[t, p, o] for (t, p), o in sorted(spool.items())],
            "kafka": [[t, p, o] for (t, p), o in sorted(kafka.items())],
        }
        write_atomically(self.path, json.dumps(body).encode())  # a crash leaves the old state or the new


class KafkaTransport(Transport):
    """Never blocks the caller on the network; every event reaches Kafka once it is reachable."""

    def __init__(
        self,
        settings: Settings,
        spool_dir: Path,
        *,
        producer_options: dict[str, Any] | None = None,
        segment_bytes: int = 64 << 20,
        close_timeout: float = 10.0,
        undeliverable_dir: Path | None = None,
    ) -> None:
        """``segment_bytes``: size of the spool's segment files, the unit in which shipped events are
        deleted. ``close_timeout``: how long :meth:`close` waits for Kafka to take what is spooled."""
        self.settings = settings
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.spool = LocalLog(self.spool_dir / "log", settings.log_partitions, segment_bytes)
        self.close_timeout = close_timeout
        self.undeliverable_dir = undeliverable_dir or self.spool_dir.parent / "undeliverable"
        #: spool partition -> offset of a record Kafka refused as too large in a batch (sent alone next)
        self._suspects: dict[tuple[str, int], int] = {}
        #: max.message.bytes of the topics, as Kafka said when the producer was made
        self._topic_limits: dict[str, int] = {}
        self._spool_writer = LocalLogTransport(self.spool)
        self._state = _ForwardState(self.spool_dir / "forwarded.json")
        self._options = kafka_options(settings)
        self._producer_options = producer_options or {}
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._closed = False
        self._producer: Any = None
        self._down_since: float | None = None
        #: uncompressed message bytes this process shipped (Avro events as on the wire)
        self.forwarded_bytes = 0
        self._lock_fd = os.open(self.spool_dir / "forwarder.lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._thread = threading.Thread(target=self._run, name="expstream-kafka-forwarder", daemon=True)
        self._thread.start()

    # --- the Transport port ------------------------------------------------------------------

    def send(self, topic: str, key: str, messages: Sequence[bytes]) -> None:
        self._wait_for_spool_room()
        self._spool_writer.send(topic, key, messages)
        self._wake.set()

    def flush(self, timeout: float | None = None) -> Watermark:
        """Durable in Kafka: waits until the forwarder shipped everything spooled so far — what this
        process sent and what an earlier process left in the spool — and returns the Kafka offsets."""
        self._spool_writer.flush()
        target = self._spool_ends()  # at least this process's sends: they are in the spool already
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._progress:
            while True:
                shipped, kafka = self._state.load()
                if all(shipped.get(tp, 0) >= end for tp, end in target.items()):
                    return kafka
                left = None if deadline is None else deadline - time.monotonic()
                if self._closed or (left is not None and left <= 0):  # closed: no forwarder runs any more
                    raise TimeoutError(
                        f"events are spooled in {self.spool_dir} but not yet in Kafka; they will be "
                        "delivered when Kafka is reachable, also by the next process using this EXPSTREAM_HOME"
                    )
                self._progress.wait(0.05 if left is None else min(0.05, left))

    def close(self) -> None:
        """Ship what can be shipped within ``close_timeout``; the rest stays spooled for the next process."""
        if self._closed:
            return
        try:
            self.flush(timeout=self.close_timeout)
        except TimeoutError as exc:
            log.warning("%s", exc)
        finally:
            self._closed = True
            self._wake.set()
            self._thread.join(timeout=5)
            if self._producer is not None:  # abort what is still in flight: it stays spooled
                self._producer.close(timeout=0)
            if not self._thread.is_alive():  # a forwarder stuck in a send still unlocks this descriptor
                os.close(self._lock_fd)

    # --- the forwarder -----------------------------------------------------------------------

    def _spool_ends(self) -> Watermark:
        return {(t, p): self.spool.end_offset(t, p) for t in (EVENTS, BLOBS) for p in range(self.spool.partitions)}

    def spooled_bytes(self) -> int:
        """Bytes in the spool that Kafka has not acknowledged yet."""
        shipped, _ = self._state.load()
        return sum(max(0, end - shipped.get(tp, 0)) for tp, end in self._spool_ends().items())

    def _wait_for_spool_room(self) -> None:
        warned = False
        while self.spooled_bytes() > self.settings.spool_bytes and not self._closed:
            if not warned:
                log.warning(
                    "expstream spool %s is full (EXPSTREAM_SPOOL_BYTES=%d): logging waits until Kafka takes events",
                    self.spool_dir,
                    self.settings.spool_bytes,
                )
                warned = True
            self._wake.set()
            time.sleep(0.1)

    def _run(self) -> None:
        backoff = Backoff(0.1, 5.0)
        while not self._closed:
            self._wake.wait(0.2)
            self._wake.clear()
            if not try_flock(self._lock_fd):
                continue  # another process forwards this spool
            pause = 0.0
            try:
                while self._forward_batch():
                    pass
                if self._down_since is not None:
                    log.warning("Kafka is reachable again; spooled events delivered")
                    self._down_since = None
                backoff.reset()
            except Exception as exc:  # Kafka down or refusing: keep everything spooled and retry
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("Kafka unreachable (%s): events are spooled in %s", type(exc).__name__, self.spool_dir)
                self._reset_producer()
                pause = backoff.next()
            finally:
                unlock(self._lock_fd)
            resume = time.monotonic() + pause  # back off unlocked: another process may get through
            while not self._closed and time.monotonic() < resume:
                time.sleep(0.05)

    def _producer_instance(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._topic_limits = ensure_topics(self.settings)
            options = {
                "acks": "all",
                "enable_idempotence": True,
                "compression_type": None
                if self.settings.kafka_compression == "none"
                else self.settings.kafka_compression,
                "linger_ms": 5,
                "batch_size": 1 << 20,
                "max_request_size": message_limit(self.settings),
                "request_timeout_ms": 10_000,
                # a send in flight is never given up while this process lives: retried by the same
                # idempotent producer, it is written once even when Kafka was down for hours
                "delivery_timeout_ms": _FOREVER_MS,
            }
            options.update(self._producer_options)
            self._producer = KafkaProducer(**self._options, **options)
        return self._producer

    def _reset_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:
                pass

    def _forward_batch(self, max_records: int = 5_000) -> bool:
        """Ship one batch from every spool partition; True when anything was shipped."""
        # answers no retry can change (too large for the topic): that record is set aside, the rest go on
        from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

        shipped, kafka = self._state.load()
        producer = None
        sent: dict[tuple[str, int], list[tuple[Record, Any]]] = {}  # spool partition -> (record, future)
        skipped: Watermark = {}
        for topic in (EVENTS, BLOBS):
            for partition in range(self.spool.partitions):
                start = shipped.get((topic, partition), 0)
                end = self.spool.end_offset(topic, partition)
                alone = self._suspects.get((topic, partition)) == start  # see below: sent by itself
                records = self.spool.read(topic, partition, start, max_records=1 if alone else max_records)
                if not records:
                    if start < end:  # only torn bytes up to the end seen before the read: step over them
                        skipped[(topic, partition)] = end
                    continue
                producer = producer or self._producer_instance()
                futures = sent[(topic, partition)] = []
                for record in records:
                    self.forwarded_bytes += len(record.value)
                    if len(record.value) + _RECORD_OVERHEAD > self._topic_limits.get(topic, MAX_MESSAGE_BYTES << 4):
                        # larger than the topic takes, before compression: never sent, so it cannot
                        # abort the producer's batches (it might have passed compressed; we do not bet)
                        self._set_aside(topic, record, TransportError(f"larger than max.message.bytes of {topic}"))
                        futures.append((record, None))
                        continue
                    try:
                        future = producer.send(
                            physical_topic(self.settings, topic), key=record.key.encode(), value=record.value
                        )
                    except MessageSizeTooLargeError as exc:  # never deliverable: set aside, go on
                        self._set_aside(topic, record, exc)
                        future = None
                    futures.append((record, future))
        if not sent and not skipped:
            return False
        if producer is not None:
            self._await_acks(producer, [f for futures in sent.values() for _, f in futures if f is not None])
        # Progress per spool partition: up to the first record Kafka has not acknowledged, so that
        # nothing unacknowledged is skipped; only records after a rejected one are sent again.
        failure: BaseException | None = None
        moved: Watermark = dict(skipped)
        for tp, futures in sent.items():
            for record, future in futures:
                if future is not None and not future.is_done:
                    failure = failure or TransportError("Kafka did not acknowledge the batch (producer aborted)")
                    break
                if future is not None and not future.succeeded():
                    # "too large" fails a whole produce batch (the idempotent producer aborts all it
                    # holds), so it does not say which record is too large. The first failed record is
                    # sent again by itself: refused alone, it is set aside; taken, it was only collateral.
                    too_large = isinstance(future.exception, (MessageSizeTooLargeError, RecordListTooLargeError))
                    if not too_large or self._suspects.get(tp) != record.offset:
                        if too_large:
                            self._suspects[tp] = record.offset
                        failure = failure or future.exception
                        break
                    self._set_aside(tp[0], record, future.exception)  # the broker will never take it
                self._suspects.pop(tp, None)
                moved[tp] = record.next_offset
            for _, future in futures:
                if future is not None and future.succeeded():
                    meta = future.value
                    ktp = (logical_topic(self.settings, meta.topic), meta.partition)
                    kafka[ktp] = max(kafka.get(ktp, 0), meta.offset + 1)
        if moved:
            shipped.update(moved)
            self._state.save(shipped, kafka)
            for (topic, partition), offset in moved.items():
                self.spool.drop_segments_before(topic, partition, offset)
            with self._progress:
                self._progress.notify_all()
        if failure is not None:
            raise failure
        return bool(moved) and not self._closed

    def _set_aside(self, topic: str, record: Any, exc: BaseException) -> None:
        """A record Kafka refuses for good (too large for the topic) must not hold back the ones after it."""
        undeliverable.keep(self.undeliverable_dir, topic, record.key, record.value, f"{type(exc).__name__}: {exc}")

    def _await_acks(self, producer: Any, futures: list[Any]) -> None:
        """Wait until Kafka acknowledged (or rejected) every send; give up only when closing."""
        from kafka.errors import KafkaError, KafkaTimeoutError

        waited = time.monotonic()
        while not all(f.is_done for f in futures) and not self._closed:
            try:
                producer.flush(timeout=0.2)
            except KafkaTimeoutError:
                if self._down_since is None and time.monotonic() - waited > 5.0:
                    self._down_since = waited
                    log.warning("Kafka is not acknowledging events: they are spooled in %s", self.spool_dir)
            except KafkaError:  # the producer gave up (a fatal error aborted its batches): the caller sees it
                return
