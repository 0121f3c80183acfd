"""The consumer runner: source → decode → materialize → sinks, then remember the positions.

One runner serves the local log and Kafka alike. Positions are written to the table store's
``consumer_progress`` *after* the data they cover, and the runner resumes from there; a crash in
between replays some events, which the idempotent sinks absorb. Undecodable or malformed events
go to a dead letter and never block their partition.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from expstream import schemas
from expstream.consumers.blobs import Refusal, write_chunks
from expstream.consumers.materializer import Materializer
from expstream.consumers.sinks.base import ObjectStore, TableStore
from expstream.consumers.sinks.layout import read_progress
from expstream.consumers.sources.base import Source
from expstream.eventlog.records import Record, Watermark
from expstream.exceptions import EventDecodeError, ExpstreamIOError

__all__ = ["DeadLetter", "Runner", "folder_dead_letter"]

log = logging.getLogger("expstream.consumer")

#: ``dead_letter(record, reason)``: keep a bad record somewhere a person can look at it
DeadLetter = Callable[[Record, str], None]


def folder_dead_letter(folder: Path) -> DeadLetter:
    """Dead letters as files: ``<topic>-<partition>-<offset>.bin`` and ``.reason.txt``."""

    def write(record: Record, reason: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # not Path.with_suffix: topics have dots ("expstream.events"), so every letter would be "expstream.bin"
        stem = f"{record.topic}-{record.partition}-{record.offset}"
        (folder / f"{stem}.bin").write_bytes(record.value)
        (folder / f"{stem}.reason.txt").write_text(reason + "\n")

    return write


class Runner:
    def __init__(
        self,
        source: Source,
        tables: TableStore,
        objects: ObjectStore,
        *,
        group: str,
        dead_letter: DeadLetter | None = None,
        dead_letter_dir: Path | None = None,
        max_records: int = 20_000,
        resume_from_tables: bool = True,
        progress_callback: Callable[[int], None] | None = None,
    ) -> None:
        """``resume_from_tables``: before each turn, continue from the progress the tables hold —
        right for the embedded default, where processes take turns materializing one log. A Kafka
        consumer group keeps its own committed offsets instead (False)."""
        self.source = source
        self.resume_from_tables = resume_from_tables
        self._on_progress = progress_callback
        self.tables = tables
        self.objects = objects
        self.group = group
        self.max_records = max_records
        if dead_letter is None and dead_letter_dir is not None:
            dead_letter = folder_dead_letter(dead_letter_dir)
        self._dead_letter = dead_letter
        self.dead_letters = 0
        self.events = 0

    # --- public ----------------------------------------------------------------------------

    def catch_up(self, until: Watermark | None = None) -> int:
        """Materialize everything in the source now (or up to ``until``); returns events applied."""
        applied = 0
        empty_polls = 0
        with self.tables.hold():
            positions = self._resume() if self.resume_from_tables else {}
            target = until if until is not None else self.source.end_offsets()
            # a local log answers at once; a Kafka consumer may need a few polls to fetch
            timeout, patience = (0.0, 1) if self.resume_from_tables else (1.0, 5)
            while any(positions.get(tp, 0) < end for tp, end in target.items()):
                records = self.source.poll(self.max_records, timeout=timeout)
                if not records:
                    empty_polls += 1
                    if empty_polls >= patience:
                        break
                    continue
                empty_polls = 0
                applied += self.process(records)
                for r in records:
                    positions[(r.topic, r.partition)] = r.next_offset
                if self._on_progress is not None:
                    self._on_progress(sum(positions.values()))
        return applied

    def run(self, stop: threading.Event, poll_timeout: float = 0.5, max_backoff: float = 10.0) -> None:
        """Materialize continuously until ``stop`` is set.

        When a sink or the source fails (ClickHouse down, a rebalance in the middle of a commit),
        the batch is rewound and retried with exponential backoff: lag grows, nothing is lost.
        """
        backoff = 0.2
        while not stop.is_set():
            records: list[Record] = []
            try:
                with self.tables.hold():
                    if self.resume_from_tables:
                        self._resume()
                    records = self.source.poll(self.max_records, timeout=poll_timeout)
                    if records:
                        self.process(records)
                backoff = 0.2
            except ExpstreamIOError as exc:
                log.warning("Materializing failed, retrying in %.1f s: %s", backoff, exc)
                self._rewind(records)
                stop.wait(backoff)
                backoff = min(backoff * 2, max_backoff)
                continue
            if not records:
                time.sleep(0.05)

    def _rewind(self, records: list[Record]) -> None:
        """Seek back to the first record of a failed batch, so that it is read again."""
        first: dict[tuple[str, int], int] = {}
        for r in records:
            first.setdefault((r.topic, r.partition), r.offset)
        if first:
            try:
                self.source.seek(first)
            except ExpstreamIOError as exc:  # the partition moved to another member: it replays there
                log.warning("Could not rewind after a failed batch: %s", exc)

    def progress(self) -> Watermark:
        return read_progress(self.tables, self.group)

    # --- one batch -------------------------------------------------------------------------

    def process(self, records: list[Record]) -> int:
        """Write one batch of records to the sinks, then record how far they go."""
        batch = Materializer()
        positions: dict[tuple[str, int], int] = {}
        for record in records:
            positions[(record.topic, record.partition)] = record.next_offset
            try:
                kind, event = schemas.decode(record.value)
                batch.add(kind, event)
            except EventDecodeError as exc:
                self._reject(record, str(exc))
            except (KeyError, TypeError, ValueError) as exc:
                self._reject(record, f"malformed event: {exc!r}")
        self._write_objects(batch, records)
        for table, columns in batch.columns().items():
            self.tables.insert(table, columns)
        now = time.time()
        self.tables.insert(
            "consumer_progress",
            {
                "consumer_group": [self.group] * len(positions),
                "topic": [tp[0] for tp in positions],
                "partition": [tp[1] for tp in positions],
                "offset": list(positions.values()),
                "ts": [now] * len(positions),
            },
        )
        self.source.commit(positions)
        self.events += batch.events
        return batch.events

    def _resume(self) -> Watermark:
        """Continue from what the tables hold; partitions they know nothing of start at 0."""
        progress = self.progress()
        positions = {tp: progress.get(tp, 0) for tp in self.source.end_offsets()}
        positions.update(progress)
        self.source.seek(positions)
        return positions

    def _reject(self, record: Record, reason: str) -> None:
        self.dead_letters += 1
        log.warning("Dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
        if self._dead_letter is not None:
            self._dead_letter(record, reason)

    def _write_objects(self, batch: Materializer, records: list[Record]) -> None:
        """Content-addressed, verified writes (:mod:`expstream.consumers.blobs`); a blob whose chunks
        do not hash to its digest is refused and its last chunk dead-lettered with the reason."""
        for refusal in write_chunks(self.objects, batch.chunks):
            record = _chunk_record(records, refusal)
            if record is not None:
                self._reject(record, f"ArtifactChunk refused: {refusal.reason}")


def _chunk_record(records: list[Record], refusal: Refusal) -> Record | None:
    """The record of the refused blob chunk: its blob, offset and bytes (decoded again: refusals are rare)."""
    for record in reversed(records):
        try:
            kind, event = schemas.decode(record.value)
        except (EventDecodeError, KeyError, TypeError, ValueError):
            continue
        if (
            kind == "ArtifactChunk"
            and (event["sha256"], event["offset"]) == (refusal.sha256, refusal.offset)
            and hashlib.sha256(event["data"]).hexdigest() == refusal.data_sha256
        ):
            return record
    return None
