"""The source port: where consumers read events by position.

A source is a Kafka-like reader over the topics in :data:`producer.transports.base.TOPICS`:
records come in offset order per partition; ``seek`` moves to positions the sinks remember;
``commit`` stores how far the sinks hold the data, ``committed`` reads it back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from expstream.producer.transports.base import Watermark

__all__ = ["Record", "Source"]


@dataclass(slots=True)
class Record:  # not frozen: frozen dataclasses cost 3x to build, and a source makes millions
    topic: str
    partition: int
    offset: int
    #: offset of the record after this one: what to store as the position once this one is held
    next_offset: int
    key: str
    value: bytes


class Source(ABC):
    """Reads every partition of the topics it was opened on, by position."""

    @abstractmethod
    def poll(self, max_records: int = 10_000, timeout: float = 0.0) -> list[Record]:
        """Next records after the current positions; waits up to ``timeout`` seconds for some."""

    @abstractmethod
    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Continue the given partitions from these offsets (others keep their positions)."""

    @abstractmethod
    def commit(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Remember positions whose records the sinks hold (merged into what was committed before)."""

    @abstractmethod
    def committed(self) -> Watermark:
        """Positions committed for this source's group, per partition that has one: where a source
        reopened with the same group continues."""

    @abstractmethod
    def end_offsets(self) -> Watermark:
        """Current end of every partition: catching up means reaching these."""

    def close(self) -> None:
        """Release resources. Idempotent."""
