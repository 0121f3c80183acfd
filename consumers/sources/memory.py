"""Consumers' side of :class:`MemoryLog`: the same semantics as the local log source, in memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping

from expstream.consumers.sources.base import Record, Source
from expstream.producer.transports.base import TOPICS, Watermark
from expstream.producer.transports.memory import MemoryLog

__all__ = ["MemorySource"]


class MemorySource(Source):
    """Reads each partition in offset order; commits live in the log, per group."""

    def __init__(self, log: MemoryLog, topics: Iterable[str] = TOPICS, group: str = "default") -> None:
        self.log = log
        self.topics = tuple(topics)
        self.group = group
        self._partitions = [(t, p) for t in self.topics for p in range(log.partitions)]
        self._lock = threading.Lock()
        committed = log.committed(group)
        self._positions = {tp: committed.get(tp, 0) for tp in self._partitions}
        self._turn = 0

    def poll(self, max_records: int = 10_000, timeout: float = 0.0) -> list[Record]:
        deadline = time.monotonic() + timeout
        while True:
            version = self.log.version
            records = self._fetch(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            self.log.wait(version, remaining)

    def _fetch(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        with self._lock:
            n = len(self._partitions)
            start, self._turn = self._turn, (self._turn + 1) % n
            for i in range(n):
                if len(out) >= max_records:
                    break
                topic, partition = tp = self._partitions[(start + i) % n]
                got = self.log.read(topic, partition, self._positions[tp], max_records - len(out))
                if got:
                    out.extend(got)
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

    def commit(self, positions: Mapping[tuple[str, int], int]) -> None:
        self.log.commit(self.group, positions)

    def committed(self) -> Watermark:
        return self.log.committed(self.group)

    def end_offsets(self) -> Watermark:
        return {(t, p): self.log.end_offset(t, p) for t, p in self._partitions}
