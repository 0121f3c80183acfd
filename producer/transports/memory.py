"""The producer's side of the in-process log (:mod:`expstream.eventlog.memory`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from expstream.eventlog.memory import MemoryLog
from expstream.eventlog.records import Watermark
from expstream.exceptions import TransportError
from expstream.producer.transports.base import Transport

__all__ = ["MemoryTransport"]


class MemoryTransport(Transport):
    """Appends at once; ``flush`` has nothing to make durable and returns what was written."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log
        self._written: Watermark = {}
        self._lock = threading.Lock()
        self._closed = False

    def send(self, topic: str, key: str, messages: Sequence[bytes]) -> None:
        if self._closed:
            raise TransportError("transport is closed")
        if not messages:
            return
        end = self.log.append(topic, key, messages)
        tp = (topic, self.log.partition_for(key))
        with self._lock:
            self._written[tp] = max(end, self._written.get(tp, 0))

    def flush(self, timeout: float | None = None) -> Watermark:
        with self._lock:
            return dict(self._written)

    def close(self) -> None:
        self._closed = True
