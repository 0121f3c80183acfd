"""An in-process log with the local log's semantics: the test double that is a real adapter.

Offsets are list indices, so they grow by one per record; everything else (partition per key,
order per partition, committed positions per group) behaves as in :mod:`.local_log`.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Mapping, Sequence

from expstream.eventlog.records import Record, Watermark

__all__ = ["MemoryLog"]


class MemoryLog:
    """Topics → partitions → ``(key, payload)`` lists, shared by transports and sources of one process."""

    def __init__(self, partitions: int = 4) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.partitions = partitions
        self._topics: dict[str, list[list[tuple[str, bytes]]]] = {}
        self._commits: dict[str, Watermark] = {}
        self._changed = threading.Condition()
        self.version = 0  # appends so far: lets a reader wait without missing one

    def partition_for(self, key: str) -> int:
        """The local log's rule, so that tests see the same spread of keys."""
        return zlib.crc32(key.encode()) % self.partitions

    def _partition(self, topic: str, partition: int) -> list[tuple[str, bytes]]:
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} out of range 0..{self.partitions - 1}")
        parts = self._topics.get(topic)
        if parts is None:
            parts = self._topics[topic] = [[] for _ in range(self.partitions)]
        return parts[partition]

    def append(self, topic: str, key: str, payloads: Sequence[bytes]) -> int:
        """Append in order; return the partition's end offset right after it."""
        with self._changed:
            records = self._partition(topic, self.partition_for(key))
            records.extend((key, bytes(p)) for p in payloads)
            self.version += 1
            self._changed.notify_all()
            return len(records)

    def end_offset(self, topic: str, partition: int) -> int:
        with self._changed:
            return len(self._partition(topic, partition))

    def read(self, topic: str, partition: int, offset: int, max_records: int = 10_000) -> list[Record]:
        with self._changed:
            chunk = self._partition(topic, partition)[max(offset, 0) : max(offset, 0) + max_records]
        start = max(offset, 0)
        return [Record(topic, partition, start + i, start + i + 1, k, v) for i, (k, v) in enumerate(chunk)]

    def wait(self, version: int, timeout: float) -> None:
        """Sleep until there were appends after ``version`` or ``timeout`` passes."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != version, timeout)

    def commit(self, group: str, positions: Mapping[tuple[str, int], int]) -> None:
        with self._changed:
            self._commits.setdefault(group, {}).update(positions)

    def committed(self, group: str) -> Watermark:
        with self._changed:
            return dict(self._commits.get(group, {}))
