"""The transport port: where the producer hands encoded events.

A transport behaves like a Kafka producer: messages with the same key (the experiment's internal
id) keep their order; ``flush`` makes everything sent so far durable and says up to which offset
of which partition, so a caller can later wait for consumers to get that far.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

__all__ = ["BLOBS", "EVENTS", "TOPICS", "Transport", "Watermark"]

#: Small events: experiments, points, tags, properties, states.
EVENTS = "expstream.events"
#: Artifact, image and source bytes, apart so that large uploads never delay metrics.
BLOBS = "expstream.blobs"
TOPICS = (EVENTS, BLOBS)

#: ``(topic, partition) -> next offset``: everything below it is durable.
Watermark = dict[tuple[str, int], int]


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
