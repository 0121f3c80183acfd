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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expstream import schemas
from expstream.backoff import Backoff
from expstream.consumers.blobs import Refusal, write_chunks
from expstream.consumers.materializer import Materializer
from expstream.consumers.sinks.base import ObjectStore, TableStore
from expstream.consumers.sinks.layout import read_progress
from expstream.consumers.sources.base import Source
from expstream.eventlog.records import Record, Watermark
from expstream.exceptions import EventDecodeError, ExpstreamIOError, SinkDataError, StorageError
from expstream.localfiles import write_atomically
from expstream.schemas.validation import validate

__all__ = ["DeadLetter", "Runner", "folder_dead_letter"]

log = logging.getLogger("expstream.consumer")

#: ``dead_letter(record, reason)``: keep a bad record somewhere a person can look at it
DeadLetter = Callable[[Record, str], None]


def folder_dead_letter(folder: Path) -> DeadLetter:
    """Dead letters as files: ``<topic>-<partition>-<offset>.bin`` (the record's bytes as they were read)
    and ``.reason.txt`` (why), each written atomically and fsynced. A folder that cannot take them raises
    ``StorageError``: the batch is then retried, its positions unmoved, so the record is never lost."""

    def write(record: Record, reason: str) -> None:
        # not Path.with_suffix: topics have dots ("expstream.events"), so every letter would be "expstream.bin"
        stem = f"{record.topic}-{record.partition}-{record.offset}"
        try:
            write_atomically(folder / f"{stem}.bin", bytes(record.value))
            write_atomically(folder / f"{stem}.reason.txt", (reason + "\n").encode("utf-8", "replace"))
        except OSError as exc:
            raise StorageError(f"cannot keep the dead letter {stem} in {folder}: {exc}") from exc

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
        self._refused = 0  # events of the current batch that the table store refused
        self._rejected: list[tuple[Record, str]] = []  # bad records of the current batch, with the reason
        #: how far the last ``catch_up`` got (next offset per partition)
        self.positions: Watermark = {}

    # --- public ----------------------------------------------------------------------------

    def catch_up(self, until: Watermark | None = None, *, resume: bool = True) -> int:
        """Materialize everything in the source now (or up to ``until``); returns events applied.

        ``resume=False``: continue from where the last ``catch_up`` left the source instead of reading the
        tables' progress first, for a caller that is the only materializer while it holds the tables (the warm
        materializer saves a query per batch)."""
        applied = 0
        empty_polls = 0
        with self.tables.hold():
            if not resume and self.positions:
                positions = dict(self.positions)
            else:
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
            self.positions = positions
        return applied

    def run(self, stop: threading.Event, poll_timeout: float = 0.5, max_backoff: float = 10.0) -> None:
        """Materialize continuously until ``stop`` is set.

        When a sink or the source fails (ClickHouse down, a rebalance in the middle of a commit),
        the batch is rewound and retried with exponential backoff: lag grows, nothing is lost.
        """
        backoff = Backoff(0.2, max_backoff)
        while not stop.is_set():
            records: list[Record] = []
            try:
                with self.tables.hold():
                    if self.resume_from_tables:
                        self._resume()
                    records = self.source.poll(self.max_records, timeout=poll_timeout)
                    if records:
                        self.process(records)
                backoff.reset()
            except ExpstreamIOError as exc:
                pause = backoff.next()
                log.warning("Materializing failed, retrying in %.1f s: %s", pause, exc)
                self._rewind(records)
                stop.wait(pause)
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
        """Write one batch of records to the sinks, then record how far they go.

        Nothing in the data can stop the batch: a record that does not decode, validate
        (:mod:`expstream.schemas.validation`) or materialize is dead-lettered on its own, and a table
        insert refused for its data (``SinkDataError``) is bisected down to the events that carry the
        data, which are dead-lettered while the rest of the batch is written. Only a sink or source
        that fails as a whole (``StorageError``, ``TransportError``) ends the call, before any position
        moves: the batch is then read again, and nothing was dead-lettered for it.
        """
        positions: dict[tuple[str, int], int] = {}
        self._rejected, self._refused = [], 0  # what a failed earlier try of this batch left
        accepted: list[_Accepted] = []
        batch = Materializer()
        for record in records:
            positions[(record.topic, record.partition)] = record.next_offset
            try:
                kind, event = schemas.decode(record.value)
                validate(kind, event)
            except EventDecodeError as exc:
                self._reject(record, str(exc))
                continue
            except Exception as exc:  # whatever bytes can make a decoder raise: the record's fault
                self._reject(record, f"malformed event: {exc!r}")
                continue
            try:
                batch.add(kind, event)
            except Exception as exc:  # rows of the event may be half added: build the batch again without it
                self._reject(record, str(exc) if isinstance(exc, EventDecodeError) else f"malformed event: {exc!r}")
                batch = _materialize(accepted)
                continue
            accepted.append(_Accepted(record, kind, event))
        self._write_objects(batch, records)
        self._insert(batch, accepted)
        self._send_dead_letters()
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
        applied = len(accepted) - self._refused
        self._refused = 0
        self.events += applied
        return applied

    def _insert(self, batch: Materializer, accepted: list[_Accepted]) -> None:
        """Insert the tables of ``batch`` (the events ``accepted``); on ``SinkDataError``, halve the events
        and insert each half, until the events the sink refuses are alone, and dead-letter those.

        Inserts are idempotent, so the rows of good events written before the error are simply written
        again. A refused event's rows that another table had already taken stay there (ClickHouse has no
        transaction across tables); validation keeps such events from reaching the sinks in the first place."""
        try:
            for table, columns in batch.columns().items():
                self.tables.insert(table, columns)
        except SinkDataError as exc:
            if len(accepted) <= 1:
                for item in accepted:
                    self._refused += 1
                    self._reject(item.record, f"refused by the table store: {exc}")
                return
            log.warning("A batch of %d events was refused for its data; narrowing it down: %s", len(accepted), exc)
            half = len(accepted) // 2
            for part in (accepted[:half], accepted[half:]):
                self._insert(_materialize(part), part)

    def _resume(self) -> Watermark:
        """Continue from what the tables hold; partitions they know nothing of start at 0."""
        progress = self.progress()
        positions = {tp: progress.get(tp, 0) for tp in self.source.end_offsets()}
        positions.update(progress)
        self.source.seek(positions)
        return positions

    def _reject(self, record: Record, reason: str) -> None:
        """Set a bad record aside; it is dead-lettered once the rest of its batch is in the sinks."""
        self._rejected.append((record, reason))

    def _send_dead_letters(self) -> None:
        """Dead-letter the batch's bad records, after its good events are written and before its positions
        move: a batch retried for an outage dead-letters nothing twice, and a dead letter that fails (raises)
        keeps the positions where they are, so the record is read again rather than lost."""
        rejected, self._rejected = self._rejected, []
        for record, reason in rejected:
            log.warning("Dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
            if self._dead_letter is not None:
                self._dead_letter(record, reason)
            self.dead_letters += 1

    def _write_objects(self, batch: Materializer, records: list[Record]) -> None:
        """Content-addressed, verified writes (:mod:`expstream.consumers.blobs`); a blob whose chunks
        do not hash to its digest is refused and its last chunk dead-lettered with the reason."""
        for refusal in write_chunks(self.objects, batch.chunks):
            record = _chunk_record(records, refusal)
            if record is not None:
                self._reject(record, f"ArtifactChunk refused: {refusal.reason}")


@dataclass(slots=True)
class _Accepted:
    """A record that decoded and validated, with its event: what a batch is rebuilt from."""

    record: Record
    kind: str
    event: dict[str, Any]


def _materialize(accepted: list[_Accepted]) -> Materializer:
    batch = Materializer()
    for item in accepted:
        batch.add(item.kind, item.event)
    return batch


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
