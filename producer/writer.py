"""The process-wide writer: one background flusher hands every stream's batches to the transport.

The training loop never waits on I/O: ``log_*`` only appends, and this thread encodes and sends
every ``flush_interval`` seconds. When a buffer is full the logging thread drains it itself
(backpressure), so memory stays bounded and nothing is dropped.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import weakref

from expstream.config import Settings
from expstream.producer.stream import ExperimentStream, Origin
from expstream.producer.transports.base import BLOBS, Transport, Watermark

__all__ = ["HEARTBEAT_INTERVAL", "Writer"]

log = logging.getLogger("expstream")

#: seconds between heartbeats of a running experiment
HEARTBEAT_INTERVAL = 5.0


class Writer:
    """Owns the transport and the flusher thread of one process."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self.transport = transport
        self.settings = settings
        self.origin = Origin(socket.gethostname(), os.getpid())
        self._streams: list[ExperimentStream] = []
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._failed: list[tuple[str, str, list[bytes]]] = []
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self._forked = False
        ref = weakref.ref(self)
        atexit.register(lambda: (w := ref()) is not None and w.close())
        os.register_at_fork(after_in_child=lambda: (w := ref()) is not None and w._after_fork())

    def open_stream(self, experiment_id: str) -> ExperimentStream:
        stream = ExperimentStream(
            experiment_id,
            self.origin,
            batch_points=self.settings.batch_points,
            buffer_points=self.settings.buffer_points,
            backpressure=self.drain,
        )
        with self._send_lock:
            self._streams.append(stream)
        self._start()
        return stream

    def detach(self, stream: ExperimentStream) -> None:
        """Forget a finished stream once everything it buffered has been sent."""
        self.drain()
        with self._send_lock:
            if stream in self._streams:
                self._streams.remove(stream)

    def send_blob(self, stream: ExperimentStream, messages: list[bytes]) -> None:
        """Blob chunks bypass the buffers: they are large and already batched by the caller."""
        if self._forked:
            return
        with self._send_lock:
            self._send(BLOBS, stream.experiment_id, messages)

    def _after_fork(self) -> None:
        """A forked child must not send what its parent buffered (nor anything it logs itself)."""
        self._forked = True
        self._send_lock = threading.Lock()  # the parent's lock may have been held at fork time
        for stream in self._streams:
            stream.abandon()
        self._streams = []
        self._failed = []
        self._thread = None

    def drain(self) -> None:
        """Encode and send everything buffered by every stream, now, in this thread."""
        if self._forked:
            return
        with self._send_lock:
            self._retry_failed()
            for stream in list(self._streams):
                for topic, messages in stream.drain():
                    self._send(topic, stream.experiment_id, messages)

    def flush(self, timeout: float | None = None) -> Watermark:
        """Everything logged so far is durable when this returns; the watermark says where."""
        self.drain()
        if self._failed:
            self.drain()
        return self.transport.flush(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        try:
            self.drain()  # everything into the transport; its close() bounds the wait for the network
        finally:
            self.transport.close()

    # --- internals -------------------------------------------------------------------------

    def _send(self, topic: str, key: str, messages: list[bytes]) -> None:
        try:
            self.transport.send(topic, key, messages)
        except Exception as exc:  # keep the batch; it is retried on the next cycle
            if not self._failed:
                log.error("expstream could not write events (will retry, nothing is dropped): %s", exc)
            self._failed.append((topic, key, messages))

    def _retry_failed(self) -> None:
        failed, self._failed = self._failed, []
        for topic, key, messages in failed:
            self._send(topic, key, messages)

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
