"""The producer's side of the embedded event log (:mod:`expstream.eventlog.local_log`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.records import Watermark
from expstream.exceptions import ExpstreamTimeoutError, TransportError
from expstream.producer.transports.base import Transport

__all__ = ["LocalLogTransport"]


class LocalLogTransport(Transport):
    """The producer's side of the embedded log: appends at once, fsyncs on ``flush``.

    The caller (the background flusher) already batches, so buffering here would only add latency.
    """

    def __init__(self, log: LocalLog) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._written: Watermark = {}
        self._unsynced: set[tuple[str, int]] = set()
        self._closed = False

    def send(self, topic: str, key: str, messages: Sequence[bytes]) -> None:
        if self._closed:
            raise TransportError("transport is closed")
        if not messages:
            return
        tp = (topic, self.log.partition_for(key))
        try:
            end = self.log.append(topic, key, messages)
        except ExpstreamTimeoutError:  # a lock's deadline: not an I/O failure
            raise
        except OSError as exc:
            raise TransportError(f"cannot append to {topic}/{tp[1]} in {self.log.root}: {exc}") from exc
        with self._lock:
            self._written[tp] = max(end, self._written.get(tp, 0))
            self._unsynced.add(tp)

    def flush(self, timeout: float | None = None) -> Watermark:
        """fsync what was sent; ``timeout`` is not enforced (an fsync cannot be interrupted)."""
        with self._lock:  # the watermark must not claim sends that this flush does not sync
            pending, mark = self._unsynced, dict(self._written)
            self._unsynced = set()
        for i, tp in enumerate(sorted(pending)):
            try:
                self.log.sync(*tp)
            except OSError as exc:
                with self._lock:
                    self._unsynced.update(sorted(pending)[i:])
                raise TransportError(f"cannot fsync {tp[0]}/{tp[1]} in {self.log.root}: {exc}") from exc
        return mark

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True
