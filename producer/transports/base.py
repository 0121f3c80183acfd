"""The transport port: where the producer hands encoded events.

A transport behaves like a Kafka producer: messages with the same key (the experiment's internal
id) keep their order; ``flush`` makes everything sent so far durable and says up to which offset
of which partition, so a caller can later wait for consumers to get that far.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from expstream.eventlog.records import Watermark

__all__ = ["Transport"]


class Transport(ABC):
    """Ordered-per-key, durable-on-flush message log, written by one process."""

    @abstractmethod
    def send(self, topic: str, key: str, messages: Sequence[bytes]) -> None:
        """Append messages for one key, in order. May buffer; must not lose them."""

    @abstractmethod
    def flush(self, timeout: float | None = None) -> Watermark:
        """Block until everything sent is durable; return the end offsets this process wrote to."""

    def close(self) -> None:
        """Flush and release resources. Idempotent."""
        self.flush()
