"""What the embedded event log already records about experiment numbers: the source a damaged
counter file is rebuilt from (see :mod:`expstream.producer.numbering.local_file`).

Every ExperimentCreated event carries its project and number, and so does the ExperimentIdentified
event written beside it (in case one of the two is damaged), so a scan of the events topic finds
the highest number handed out. It reads the whole topic, which is why it only runs when a counter
is missing or damaged (once per project and home), never on the path of a healthy counter.
"""

from __future__ import annotations

from expstream import schemas
from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.records import EVENTS
from expstream.exceptions import EventDecodeError
from expstream.producer.numbering.base import KnownNumbers, NumberSource

__all__ = ["numbers_in_log"]

_NUMBERED = ("ExperimentCreated", "ExperimentIdentified")
_BATCH_RECORDS = 10_000
_BATCH_BYTES = 16 << 20


def numbers_in_log(log: LocalLog) -> NumberSource:
    """A lookup of :class:`KnownNumbers` per project over the events topic of ``log``."""

    def lookup(project: str) -> KnownNumbers:
        highest = 0
        numbers: dict[str, int] = {}
        for partition in range(log.partitions):
            offset, end = 0, log.end_offset(EVENTS, partition)
            while offset < end:
                records = log.read(EVENTS, partition, offset, _BATCH_RECORDS, _BATCH_BYTES)
                if not records:
                    break  # a torn tail: nothing valid follows yet
                for record in records:
                    if schemas.registry.kind_of(record.value) not in _NUMBERED:
                        continue
                    try:
                        _, event = schemas.decode(record.value)
                    except EventDecodeError:
                        continue  # damaged: the other of the two records has the number
                    if event["project"] == project:
                        numbers[event["header"]["experiment_id"]] = event["number"]
                        highest = max(highest, event["number"])
                offset = records[-1].next_offset
        return KnownNumbers(highest, numbers)

    return lookup
