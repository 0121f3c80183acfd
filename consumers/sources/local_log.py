"""Consumers' side of the embedded log: every partition of some topics, read by position.

Positions are committed to ``<positions_dir>/<group>.json`` (replaced atomically), so a consumer
that restarts continues where its sinks' data ends, as a Kafka consumer group would.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from expstream.consumers.sources.base import POLL_BYTES, PartitionedLogSource
from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.records import TOPICS, Record, Watermark
from expstream.exceptions import ExpstreamTimeoutError, TransportError
from expstream.localfiles import read_json_or_none, write_atomically

__all__ = ["LocalLogSource"]

logger = logging.getLogger("expstream.consumers")

_GROUP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


class LocalLogSource(PartitionedLogSource):
    """Reads each partition in offset order; partitions take turns leading a poll."""

    def __init__(
        self,
        log: LocalLog,
        topics: Iterable[str] = TOPICS,
        group: str = "default",
        positions_dir: Path | None = None,
    ) -> None:
        if not _GROUP_RE.match(group):
            raise ValueError(f"invalid consumer group name {group!r}")
        self.log = log
        self.group = group
        folder = Path(positions_dir) if positions_dir is not None else log.root.parent / "positions"
        self._file = folder / f"{group}.json"
        self._committed = self._load()
        super().__init__(topics, log.partitions, self._committed)

    def _load(self) -> Watermark:
        """Committed positions; damaged ones are ignored with a warning (the file is a cache of
        how far the sinks got: the embedded runner resumes from the tables' progress, and a group
        without positions rereads from the start, which the idempotent sinks absorb)."""
        what, instead = f"consumer positions of group {self.group!r}", "continuing from the tables' progress"
        try:
            data = read_json_or_none(self._file, what, instead)
        except OSError as exc:
            raise TransportError(f"cannot read committed positions {self._file}: {exc}") from exc
        if data is None:
            return {}
        try:
            positions = {(str(t), int(p)): int(o) for t, parts in data.items() for p, o in parts.items()}
        except (AttributeError, TypeError, ValueError) as exc:
            logger.warning("ignoring damaged %s %s (%s: %s); %s", what, self._file, type(exc).__name__, exc, instead)
            return {}
        if any(o < 0 for o in positions.values()):
            logger.warning("ignoring damaged %s %s (a negative offset); %s", what, self._file, instead)
            return {}
        return positions

    def poll(self, max_records: int = 10_000, timeout: float = 0.0) -> list[Record]:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            records = self._fetch(max_records, POLL_BYTES)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            time.sleep(min(delay, remaining))  # no notification across processes: poll the end
            delay = min(delay * 2, 0.05)

    def _read(self, topic: str, partition: int, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        try:
            return self.log.read(topic, partition, offset, max_records, max_bytes)
        except ExpstreamTimeoutError:  # a lock's deadline: not an I/O failure
            raise
        except OSError as exc:
            raise TransportError(f"cannot read {topic}/{partition} in {self.log.root}: {exc}") from exc

    def commit(self, positions: Mapping[tuple[str, int], int]) -> None:
        with self._lock:
            committed = {**self._committed, **positions}
            data: dict[str, dict[str, int]] = {}
            for (topic, partition), offset in sorted(committed.items()):
                data.setdefault(topic, {})[str(partition)] = offset
            try:
                write_atomically(self._file, json.dumps(data).encode())  # old positions or new, never half
            except OSError as exc:
                raise TransportError(f"cannot store positions in {self._file}: {exc}") from exc
            self._committed = committed

    def committed(self) -> Watermark:
        """Positions last committed by this group (read at open, updated by ``commit``)."""
        with self._lock:
            return dict(self._committed)

    def end_offsets(self) -> Watermark:
        try:
            return {(t, p): self.log.end_offset(t, p) for t, p in self._partitions}
        except ExpstreamTimeoutError:  # a lock's deadline: not an I/O failure
            raise
        except OSError as exc:
            raise TransportError(f"cannot read the end of {self.log.root}: {exc}") from exc
