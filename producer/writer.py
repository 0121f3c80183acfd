"""The process-wide writer: one background flusher hands every stream's batches to the transport.

The training loop never waits on I/O: ``log_*`` only appends, and this thread encodes and sends
every ``flush_interval`` seconds. When a buffer is full the logging thread drains it itself
(backpressure), so memory stays bounded and nothing is dropped.

When the store refuses writes (disk full, quota, permissions, I/O errors) the batches that could
not be written wait on disk, in order (:mod:`expstream.producer.pending`), and are retried on every
cycle; ``flush`` (``wait()`` and ``sync()``) raises :class:`~expstream.exceptions.DurabilityError`
meanwhile instead of claiming durability. What waits on disk outlives the process: the next writer of
the same home sends it first. Only when the disk refuses those files too do batches wait in memory;
past :data:`FAILED_BYTES_LIMIT` of those the flusher stops taking points from the buffers, so a full
buffer makes ``log_*`` wait for the store, as a full spool does: memory stays bounded and nothing is
dropped while the process lives.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import weakref
from pathlib import Path

from expstream.backoff import Backoff
from expstream.config import Settings
from expstream.eventlog.records import BLOBS, Watermark
from expstream.exceptions import DurabilityError
from expstream.producer import undeliverable
from expstream.producer.pending import PendingBatches
from expstream.producer.stream import ExperimentStream, Origin
from expstream.producer.transports.base import Transport
from expstream.weakhooks import call_if_alive

__all__ = ["FAILED_BYTES_LIMIT", "HEARTBEAT_INTERVAL", "Writer"]

log = logging.getLogger("expstream")

#: seconds between heartbeats of a running experiment
HEARTBEAT_INTERVAL = 5.0
#: bytes of unwritten batches kept in memory (the disk refused them too) before logging waits for the store
FAILED_BYTES_LIMIT = 64 << 20
#: longest pause between two attempts of a logging thread waiting for the store
_MAX_BACKOFF = 2.0


class Writer:
    """Owns the transport and the flusher thread of one process."""

    def __init__(self, transport: Transport, settings: Settings, pending_dir: Path | None = None) -> None:
        """``pending_dir``: where refused batches wait (``None``: in memory, for a transport that has
        no disk of its own); batches that ended writers left there are sent before anything else."""
        self.transport = transport
        self.settings = settings
        self.origin = Origin(socket.gethostname(), os.getpid())
        self._streams: list[ExperimentStream] = []
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._pending = PendingBatches(pending_dir)
        self._pending.adopt_ended()
        self._failure: BaseException | None = None
        self._detached: set[ExperimentStream] = set()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self._forked = False
        ref = weakref.ref(self)
        atexit.register(call_if_alive, ref, Writer.close)
        os.register_at_fork(after_in_child=lambda: call_if_alive(ref, Writer._after_fork))

    def open_stream(self, experiment_id: str) -> ExperimentStream:
        stream = ExperimentStream(
            experiment_id,
            self.origin,
            batch_points=self.settings.batch_points,
            buffer_points=self.settings.buffer_points,
            backpressure=self._relieve,
            max_event_bytes=self.settings.max_event_bytes,
        )
        with self._send_lock:
            self._streams.append(stream)
        self._start()
        return stream

    def detach(self, stream: ExperimentStream) -> None:
        """Forget a finished stream once everything it buffered has been sent (now, or by a later
        cycle when the store refuses writes at the moment)."""
        with self._send_lock:
            self._detached.add(stream)
        self.drain()

    def send_blob(self, stream: ExperimentStream, messages: list[bytes]) -> None:
        """Blob chunks bypass the buffers: they are large and already batched by the caller."""
        if self._forked:
            return
        with self._send_lock:
            self._send(BLOBS, stream.experiment_id, messages)
        if self._pending.memory_bytes > FAILED_BYTES_LIMIT:
            self._relieve()  # an upload is synchronous: it waits for the store rather than fill memory

    def _after_fork(self) -> None:
        """A forked child must not send what its parent buffered (nor anything it logs itself)."""
        self._forked = True
        self._send_lock = threading.Lock()  # the parent's lock may have been held at fork time
        for stream in self._streams:
            stream.abandon()
        self._streams = []
        self._detached = set()
        self._pending.forget_after_fork()
        self._thread = None

    def drain(self) -> None:
        """Encode and send everything buffered by every stream, now, in this thread.

        While too much is waiting for a failing store, the buffers are left as they are: they fill,
        and ``log_*`` waits in :meth:`_relieve` instead of memory growing."""
        if self._forked:
            return
        with self._send_lock:
            self._retry_failed()
            if self._pending.memory_bytes > FAILED_BYTES_LIMIT:
                return
            for stream in list(self._streams):
                for topic, messages in stream.drain():
                    self._send(topic, stream.experiment_id, messages)
                if stream in self._detached:
                    self._detached.discard(stream)
                    self._streams.remove(stream)

    def flush(self, timeout: float | None = None) -> Watermark:
        """Everything logged so far is durable when this returns; the watermark says where.

        Raises :class:`DurabilityError` while batches of this process could not be written."""
        self.drain()
        if self._pending:
            self.drain()
        if self._pending:
            raise DurabilityError(
                f"{self.pending_failed()} events ({self._pending.bytes} bytes) are not durable in the store: "
                f"{self._failure}. They are kept {self._pending.where}, in order, and written as soon as the store "
                f"takes them again ({self._who_writes_them()})"
            )
        return self.transport.flush(timeout)

    def pending_failed(self) -> int:
        """Events (Avro messages) that could not be written yet."""
        return self._pending.events

    def _who_writes_them(self) -> str:
        if self._pending.memory_bytes:
            return "while this process lives"
        return "by this process, or by the next one of this EXPSTREAM_HOME if this one ends first"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        try:
            self.drain()  # everything into the transport; its close() bounds the wait for the network
            if self._pending:
                self.drain()  # a last go for what the store refused, and the points behind it
            if self._pending.memory_bytes or any(stream.has_data() for stream in self._streams):
                log.error(
                    "expstream: the store still refuses writes at exit (%s): %d events (%d bytes) "
                    "and the points buffered behind them are lost",
                    self._failure,
                    self.pending_failed(),
                    self._pending.memory_bytes,
                )
            elif self._pending:
                log.error(
                    "expstream: the store still refuses writes at exit (%s): %d events (%d bytes) wait %s; "
                    "the next expstream process of this EXPSTREAM_HOME writes them first",
                    self._failure,
                    self.pending_failed(),
                    self._pending.bytes,
                    self._pending.where,
                )
        finally:
            self._pending.close()
            self.transport.close()

    # --- internals -------------------------------------------------------------------------

    def _send(self, topic: str, key: str, messages: list[bytes]) -> None:
        limit = self.settings.max_event_bytes
        too_large = [m for m in messages if len(m) > limit]  # checked at the call; this is the net under it
        if too_large:
            reason = f"larger than EXPSTREAM_MAX_EVENT_BYTES={limit}"
            for message in too_large:
                undeliverable.keep(self.settings.home / "undeliverable", topic, key, message, reason)
            messages = [m for m in messages if len(m) <= limit]
            if not messages:
                return
        if self._pending:  # behind earlier batches that are still waiting: keep each key in order
            self._pending.put(topic, key, messages)
            return
        try:
            self.transport.send(topic, key, messages)
        except Exception as exc:  # keep the batch; it is retried on the next cycle
            self._failure = exc
            self._pending.put(topic, key, messages)
            log.error(
                "expstream could not write events (will retry, nothing is dropped; they wait %s): %s",
                self._pending.where,
                exc,
            )

    def _retry_failed(self) -> None:
        """Resend the waiting batches in order; stop at the first the store still refuses."""
        had = bool(self._pending)
        while (first := self._pending.first()) is not None:
            batch, messages = first
            try:
                self.transport.send(batch.topic, batch.key, messages)
            except Exception as exc:
                self._failure = exc
                return
            self._pending.pop()
        if had:
            log.warning("expstream: the store takes writes again; the events that waited are written")

    def _relieve(self) -> None:
        """Backpressure of a full buffer: drain it; while the store refuses writes, wait for it."""
        self.drain()
        backoff = Backoff(0.05, _MAX_BACKOFF)
        warned = False
        while self._pending.memory_bytes > FAILED_BYTES_LIMIT and not self._closed:
            if not warned:
                log.warning(
                    "expstream: %d bytes of events wait in memory for the store and the disk (%s): "
                    "logging waits until one takes them",
                    self._pending.memory_bytes,
                    self._failure,
                )
                warned = True
            time.sleep(backoff.next())
            self.drain()

    def _start(self) -> None:
        if self._thread is None and not self._forked:
            self._thread = threading.Thread(target=self._run, name="expstream-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        interval = self.settings.flush_interval
        while not self._closed:
            self._wake.wait(interval)
            if self._closed:
                return
            try:
                self._heartbeat()
                self.drain()
            except Exception:  # the flusher must survive anything a stream throws at it
                log.exception("expstream flusher cycle failed")

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self._last_heartbeat < HEARTBEAT_INTERVAL:
            return
        self._last_heartbeat = now
        for stream in list(self._streams):
            if not stream.closed and stream.heartbeats:
                stream.add_event("Heartbeat", {})
