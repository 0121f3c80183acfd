"""What both sides of the event log share: topic names, positions, records.

The producer writes records into a topic partition; consumers read them back by position. These
names are the vocabulary of both, so they live below both.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BLOBS", "EVENTS", "TOPICS", "Record", "Watermark"]

#: Small events: experiments, points, tags, properties, states.
EVENTS = "expstream.events"
#: Artifact, image and source bytes, apart so that large uploads never delay metrics.
BLOBS = "expstream.blobs"
TOPICS = (EVENTS, BLOBS)

#: ``(topic, partition) -> next offset``: everything below it is durable.
Watermark = dict[tuple[str, int], int]


@dataclass(slots=True)
class Record:  # not frozen: frozen dataclasses cost 3x to build, and a source makes millions
    topic: str
    partition: int
    offset: int
    #: offset of the record after this one: what to store as the position once this one is held
    next_offset: int
    key: str
    value: bytes
