"""The source port: where consumers read events by position.

A source is a Kafka-like reader over the topics in :data:`expstream.eventlog.records.TOPICS`:
records come in offset order per partition; ``seek`` moves to positions the sinks remember;
``commit`` stores how far the sinks hold the data, ``committed`` reads it back.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping

from expstream.eventlog.records import Record, Watermark

__all__ = ["POLL_BYTES", "PartitionedLogSource", "Source"]

#: Payload bytes one poll of an embedded source returns at most (besides one record): bounds memory with blobs.
POLL_BYTES = 64 << 20


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


class PartitionedLogSource(Source):
    """The embedded sources' shared reading: every partition of the topics, by position, with the
    partitions taking turns leading a poll so that a busy partition never starves the others."""

    def __init__(self, topics: Iterable[str], partitions: int, committed: Watermark) -> None:
        self.topics = tuple(topics)
        self._partitions = [(t, p) for t in self.topics for p in range(partitions)]
        self._lock = threading.Lock()
        self._positions = {tp: committed.get(tp, 0) for tp in self._partitions}
        self._turn = 0

    @abstractmethod
    def _read(self, topic: str, partition: int, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        """Records of one partition from ``offset`` on (at least one if any, however large)."""

    def _fetch(self, max_records: int, max_bytes: int) -> list[Record]:
        out: list[Record] = []
        budget = max_bytes
        with self._lock:
            n = len(self._partitions)
            start, self._turn = self._turn, (self._turn + 1) % n
            for i in range(n):
                if len(out) >= max_records or budget <= 0:
                    break
                topic, partition = tp = self._partitions[(start + i) % n]
                got = self._read(topic, partition, self._positions[tp], max_records - len(out), budget)
                if got:
                    out.extend(got)
                    budget -= sum(len(r.value) for r in got)
                    self._positions[tp] = got[-1].next_offset
        return out

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        with self._lock:
            unknown = set(positions) - set(self._positions)
            if unknown:
                raise ValueError(f"not partitions of this source: {sorted(unknown)}")
            self._positions.update(positions)

    def positions(self) -> Watermark:
        """Where the next poll continues, per partition."""
        with self._lock:
            return dict(self._positions)
