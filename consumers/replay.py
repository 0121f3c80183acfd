"""Replay and export: read an event stream from its start, into fresh tables or into a file.

Replaying rebuilds the ClickHouse tables and the object store from the beginning of the topics (or
of the local log); because sinks are idempotent and events carry everything, the result queries
like the original. Export writes one experiment's events to an Avro container file; import (see
:mod:`expstream.transfer`) sends them into another installation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import fastavro

from expstream.consumers.runner import Runner
from expstream.consumers.sinks.base import ObjectStore, TableStore
from expstream.consumers.sources.base import Source
from expstream.eventlog.records import Record, Watermark

__all__ = ["EXPORT_SCHEMA", "export_experiment", "read_export", "replay"]

#: one exported message: the topic and key it travelled with and its single-object encoded bytes
EXPORT_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "ExportedEvent",
        "namespace": "expstream.export",
        "doc": "An expstream event as it was in the stream; message is Avro single-object encoded.",
        "fields": [
            {"name": "topic", "type": "string"},
            {"name": "key", "type": "string"},
            {"name": "message", "type": "bytes"},
        ],
    }
)


def replay(
    source: Source,
    tables: TableStore,
    objects: ObjectStore,
    *,
    group: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Materialize everything ``source`` holds into ``tables`` / ``objects``; returns events applied.

    ``on_progress(done, total)`` is called with the stream position reached and the end position
    (summed over partitions: messages for Kafka, bytes for the local log).
    """
    tables.ensure_schema()
    end = source.end_offsets()
    total = sum(end.values())

    def progress(position: int) -> None:
        if on_progress is not None:
            on_progress(position, total)

    runner = Runner(source, tables, objects, group=group, resume_from_tables=False, progress_callback=progress)
    return runner.catch_up(until=end)


def _records_of(source: Source, key: str, end: Watermark) -> Iterator[Record]:
    positions: dict[tuple[str, int], int] = {}
    empty = 0
    while any(positions.get(tp, 0) < offset for tp, offset in end.items()) and empty < 5:
        records = source.poll(10_000, timeout=0.5)
        empty = 0 if records else empty + 1
        for record in records:
            positions[(record.topic, record.partition)] = record.next_offset
            if record.key == key:
                yield record


def export_experiment(source: Source, experiment_id: str, out: BinaryIO) -> int:
    """Write every event of one experiment (both topics, stream order per topic) to ``out``."""
    end = source.end_offsets()
    rows = ({"topic": r.topic, "key": r.key, "message": r.value} for r in _records_of(source, experiment_id, end))
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    fastavro.writer(out, EXPORT_SCHEMA, counted(), codec="deflate")
    return count


def read_export(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as handle:
        yield from fastavro.reader(handle)  # type: ignore[misc]
