"""Consumers' side of :class:`MemoryLog`: the same semantics as the local log source, in memory."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from expstream.consumers.sources.base import POLL_BYTES, PartitionedLogSource
from expstream.eventlog.memory import MemoryLog
from expstream.eventlog.records import TOPICS, Record, Watermark

__all__ = ["MemorySource"]


class MemorySource(PartitionedLogSource):
    """Reads each partition in offset order; commits live in the log, per group."""

    def __init__(self, log: MemoryLog, topics: Iterable[str] = TOPICS, group: str = "default") -> None:
        self.log = log
        self.group = group
        super().__init__(topics, log.partitions, log.committed(group))

    def poll(self, max_records: int = 10_000, timeout: float = 0.0) -> list[Record]:
        deadline = time.monotonic() + timeout
        while True:
            version = self.log.version
            records = self._fetch(max_records, POLL_BYTES)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            self.log.wait(version, remaining)

    def _read(self, topic: str, partition: int, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        return self.log.read(topic, partition, offset, max_records)

    def commit(self, positions: Mapping[tuple[str, int], int]) -> None:
        self.log.commit(self.group, positions)

    def committed(self) -> Watermark:
        return self.log.committed(self.group)

    def end_offsets(self) -> Watermark:
        return {(t, p): self.log.end_offset(t, p) for t, p in self._partitions}
