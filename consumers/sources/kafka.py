"""The Kafka source: a consumer-group member (or, for replays, a reader of every partition).

Offsets are committed only through :meth:`KafkaSource.commit`, which the runner calls after the
sinks hold the data, so a crash or a rebalance replays at most the batch in flight; the
idempotent sinks absorb it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kafka import ConsumerRebalanceListener

from expstream.config import Settings
from expstream.consumers.runner import DeadLetter
from expstream.consumers.sources.base import Source
from expstream.eventlog.kafka import (
    DEAD_LETTER,
    MAX_MESSAGE_BYTES,
    ensure_topics,
    kafka_options,
    logical_topic,
    physical_topic,
)
from expstream.eventlog.records import TOPICS, Record, Watermark
from expstream.exceptions import TransportError

__all__ = ["KafkaSource", "kafka_dead_letter"]

log = logging.getLogger("expstream.consumer")

#: seconds a member of a group that stops heartbeating keeps its partitions (the broker's minimum)
SESSION_TIMEOUT = 6.0
#: seconds ``commit`` waits for this member to join its group, and ``committed`` for the coordinator
GROUP_TIMEOUT = 30.0
#: seconds between metadata refreshes of a member. A broker can list a topic created a moment ago with no
#: partitions yet; a group that assigned from that metadata stays without those partitions until the next
#: refresh, which kafka-python's default (300 s) puts far beyond any reader's patience. New partitions
#: added to a topic are picked up as quickly.
METADATA_MAX_AGE = 5.0
#: seconds a member's polls may return nothing while records that were already in one of its partitions stay
#: unread, before it rejoins the group as a new member (see :class:`_StallWatch`)
STALL_AFTER = 20.0
#: seconds between two looks at a member's lag, and the most one request of a look waits (a broker that does not
#: answer makes the look fail, not the poll)
STALL_CHECK, STALL_LOOK_TIMEOUT = 5.0, 2.0


class KafkaSource(Source):
    def __init__(
        self,
        settings: Settings,
        topics: Iterable[str] = TOPICS,
        *,
        group: str | None = None,
        stall_after: float = STALL_AFTER,
        stall_check: float = STALL_CHECK,
    ) -> None:
        """``group`` set: a member of that consumer group. ``group=None``: every partition of the
        topics is read from the beginning (replay, export), nothing is committed to Kafka.
        ``stall_after`` and ``stall_check``: see :class:`_StallWatch`."""
        from kafka import TopicPartition

        self._tp = TopicPartition
        self._pending_seeks: dict[Any, int] = {}
        #: next offset per partition, as the records returned and the seeks left it (for the stall watch)
        self._positions: dict[Any, int] = {}
        self.settings = settings
        self.topics = tuple(physical_topic(settings, t) for t in topics)
        self.group = group
        self._stall = _StallWatch(stall_after, stall_check)
        ensure_topics(settings)
        self._consumer: Any = None
        self._reopen = True  # until _open made a consumer that reads
        self._open()

    def _open(self) -> None:
        """A consumer that reads the topics: a member of the group, or the reader of every partition."""
        from kafka import KafkaConsumer

        consumer = None
        try:
            self._consumer = consumer = KafkaConsumer(
                **kafka_options(self.settings),
                group_id=self.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=16 << 20,
                fetch_max_bytes=64 << 20,
                max_poll_records=20_000,
                session_timeout_ms=int(SESSION_TIMEOUT * 1000),
                heartbeat_interval_ms=1_000,
                metadata_max_age_ms=int(METADATA_MAX_AGE * 1000),
            )
            partitions = self._all_partitions()
            if self.group is None:
                self._consumer.assign(partitions)
                self._consumer.seek_to_beginning(*partitions)
            else:  # joins with metadata that already lists every partition (see METADATA_MAX_AGE)
                self._consumer.subscribe(list(self.topics), listener=_SeekOnAssign(self))
        except Exception as exc:
            if consumer is not None:  # made here, then failed: its thread must not outlive the try
                _close_quietly(consumer)
            raise TransportError(f"cannot consume from Kafka: {type(exc).__name__}: {exc}") from exc
        self._reopen = False

    def _all_partitions(self, timeout: float = 10.0) -> list[Any]:
        """Every partition of the topics; waits for the metadata of topics created just now."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                found = {t: sorted(self._consumer.partitions_for_topic(t) or ()) for t in self.topics}
                if all(found.values()) or time.monotonic() > deadline:
                    return [self._tp(t, p) for t in self.topics for p in found[t]]
                time.sleep(0.05)
                self._consumer.topics()  # refreshes the metadata of every topic
        except Exception as exc:
            raise TransportError(f"cannot read Kafka topic metadata: {type(exc).__name__}: {exc}") from exc

    def poll(self, max_records: int = 10_000, timeout: float = 0.0) -> list[Record]:
        if self._reopen:  # a rejoin that could not reach Kafka: try again (raises while Kafka stays away)
            self._open()
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except Exception as exc:
            raise TransportError(f"Kafka poll failed: {type(exc).__name__}: {exc}") from exc
        records: list[Record] = []
        for tp, messages in batches.items():
            topic = logical_topic(self.settings, tp.topic)
            for m in messages:
                key = m.key.decode("utf-8", "replace") if m.key is not None else ""
                records.append(Record(topic, tp.partition, m.offset, m.offset + 1, key, m.value or b""))
        delivered = [tp for tp, messages in batches.items() if messages]
        for tp in delivered:
            self._positions[tp] = batches[tp][-1].offset + 1
        if self.group is not None and self._stall.stuck(delivered, self._waiting):
            self._rebuild()
            return []  # read again from the committed positions by the new member
        return records

    def _waiting(self) -> dict[Any, tuple[int, int]]:
        """Assigned partitions with records after this member's position: ``{tp: (position, end)}``.

        The position is where the last records returned or a seek left it; for a partition this member has not
        read yet, where the group committed. Records the log no longer holds (retention) never count as waiting.
        A look costs two ListOffsets requests, and an OffsetFetch per partition not read yet."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        wait = int(STALL_LOOK_TIMEOUT * 1000)
        ends = self._consumer.end_offsets(assigned, timeout_ms=wait)
        starts = self._consumer.beginning_offsets(assigned, timeout_ms=wait)
        waiting = {}
        for tp in assigned:
            position = self._positions.get(tp)
            if position is None:
                committed = self._consumer.committed(tp, timeout_ms=wait)
                position = -1 if committed is None else committed
            position = max(position, starts[tp])
            if position < ends[tp]:
                waiting[tp] = (int(position), int(ends[tp]))
        return waiting

    def _rebuild(self) -> None:
        """Leave the group and join it again as a new member, which starts from the committed positions:
        records read but not yet committed are read again, and the idempotent sinks absorb them."""
        stuck = self._stall.last_stuck
        log.warning(
            "Kafka consumer of group %r has returned none of the records waiting in %s for over %.0f s; "
            "rejoining the group as a new member. State: %s",
            self.group, ", ".join(f"{tp.topic}[{tp.partition}]" for tp in stuck), self._stall.stall_after,
            describe_member(self._consumer, stuck),
        )  # fmt: skip
        self._reopen = True
        _close_quietly(self._consumer)
        self._positions.clear()
        self._open()

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Seek assigned partitions now; others when the group assigns them to this member."""
        try:
            assigned = self._consumer.assignment()
            for (topic, partition), offset in positions.items():
                tp = self._tp(physical_topic(self.settings, topic), partition)
                if tp in assigned:
                    self._consumer.seek(tp, offset)
                    self._positions[tp] = offset
                else:
                    self._pending_seeks[tp] = offset
        except Exception as exc:  # e.g. the partition was revoked by a rebalance in between
            raise TransportError(f"Kafka seek failed: {type(exc).__name__}: {exc}") from exc

    def commit(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Commit as a member of the group: joins it first when it has not yet (commits of a
        member still joining are refused by the broker)."""
        if self.group is None or not positions:
            return
        from kafka.structs import OffsetAndMetadata

        offsets = {}
        for (topic, partition), offset in positions.items():
            offsets[self._tp(physical_topic(self.settings, topic), partition)] = OffsetAndMetadata(offset, "", -1)
        try:
            self._join_group()
            self._consumer.commit(offsets)
        except Exception as exc:  # a rebalance took the partition: the next owner replays, sinks absorb it
            raise TransportError(f"Kafka commit failed: {type(exc).__name__}: {exc}") from exc

    def _join_group(self, timeout: float = GROUP_TIMEOUT) -> None:
        """Complete joining the group (no records are fetched: positions stay where they are)."""
        coordinator = self._consumer._coordinator  # KafkaConsumer has no public "join without fetching"
        deadline = time.monotonic() + timeout
        while coordinator.generation_if_stable() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransportError(f"not a member of consumer group {self.group!r} after {timeout:.0f} s")
            coordinator.poll(timeout_ms=int(min(left, 1.0) * 1000))

    def committed(self) -> Watermark:
        """Positions the group committed, per partition that has one (nothing for ``group=None``)."""
        if self.group is None:
            return {}
        out: Watermark = {}
        try:
            for tp in self._all_partitions():
                offset = self._consumer.committed(tp, timeout_ms=int(GROUP_TIMEOUT * 1000))
                if offset is not None and offset >= 0:
                    out[(logical_topic(self.settings, tp.topic), tp.partition)] = int(offset)
        except Exception as exc:
            raise TransportError(f"cannot read committed offsets: {type(exc).__name__}: {exc}") from exc
        return out

    def end_offsets(self) -> Watermark:
        partitions = list(self._consumer.assignment()) or self._all_partitions()
        try:
            ends: dict[Any, int] = self._consumer.end_offsets(partitions)
        except Exception as exc:
            raise TransportError(f"cannot read the end offsets from Kafka: {type(exc).__name__}: {exc}") from exc
        return {(logical_topic(self.settings, tp.topic), tp.partition): int(offset) for tp, offset in ends.items()}

    def close(self) -> None:
        """Leave the group at once (its partitions go to the other members without a session timeout)."""
        _close_quietly(self._consumer)


def _close_quietly(consumer: Any) -> None:
    """Close a consumer this source gives up; a broker that is gone leaves the session timeout to free its
    partitions."""
    try:
        consumer.close(autocommit=False)
    except Exception as exc:  # kafka-python raises many kinds; closing is all that was asked
        log.warning("Leaving the Kafka consumer group failed: %s: %s", type(exc).__name__, exc)


class _StallWatch:
    """Notices a member that no longer returns the records of a partition it holds.

    A healthy member returns a partition's records within a fetch or two of their arrival. A partition of this
    member whose records have waited ``stall_after`` seconds, returned by no poll while the member's position
    in it stayed where it was, is stuck: the client's state for it no longer fetches. The source then rejoins
    the group as a new member. Every ``stall_check`` seconds of polling it looks at the lag (see
    ``KafkaSource._waiting``); between looks a poll costs nothing more.
    """

    def __init__(self, stall_after: float, stall_check: float) -> None:
        self.stall_after = stall_after
        self.stall_check = stall_check
        self._checked = time.monotonic()
        #: partitions with records waiting: since when, and the member's position then
        self._waiting: dict[Any, tuple[float, int]] = {}
        #: the partitions of the last stall found
        self.last_stuck: list[Any] = []

    def stuck(self, delivered: Iterable[Any], waiting: Callable[[], dict[Any, tuple[int, int]]]) -> bool:
        """Called after every poll with the partitions it returned records of; true when the member is stuck."""
        for tp in delivered:
            self._waiting.pop(tp, None)
        now = time.monotonic()
        if now - self._checked < self.stall_check:
            return False
        self._checked = now
        try:
            behind = waiting()
        except Exception as exc:  # a look that fails says nothing of a stall; the next poll raises if Kafka is gone
            log.debug("Could not read the lag of the consumer's partitions: %s: %s", type(exc).__name__, exc)
            return False
        still = {}
        for tp, (position, _end) in behind.items():
            since, then = self._waiting.get(tp, (now, position))
            still[tp] = (since, then) if position <= then else (now, position)
        self._waiting = still
        stuck = sorted(tp for tp, (since, _) in still.items() if now - since >= self.stall_after)
        if not stuck:
            return False
        self.last_stuck, self._waiting = stuck, {}
        return True


def describe_member(consumer: Any, partitions: Iterable[Any]) -> str:
    """What kafka-python holds for the group and for each partition, for the warning of a stall. It reads the
    client's private state, which may change between versions: whatever is missing reads as '?'."""
    assignment = _field(getattr(consumer, "_subscription", None), "assignment")
    cluster = getattr(consumer, "_cluster", None)
    parts = [
        f"generation={_field(getattr(consumer, '_coordinator', None), 'generation_if_stable')}",
        f"fetches in flight={_in_flight(consumer)}",
    ]
    for tp in partitions:
        state = assignment.get(tp) if isinstance(assignment, dict) else None
        fields = ("position", "reset_strategy", "awaiting_validation", "paused", "is_fetchable")
        described = " ".join(f"{name}={_field(state, name)}" for name in fields)
        try:
            leader: object = cluster.leader_for_partition(tp)  # type: ignore[union-attr]
        except Exception:  # no cluster metadata on this version
            leader = "?"
        parts.append(f"{tp.topic}[{tp.partition}]: {described} leader={leader}")
    return "; ".join(parts)


def _in_flight(consumer: Any) -> object:
    """Fetch requests the client has sent and not had answered; '?' where this version keeps them elsewhere."""
    try:
        return sum(not future.is_done for future in consumer._fetcher._fetch_futures)
    except Exception:  # a private attribute that this kafka-python version lacks
        return "?"


def _field(obj: object, name: str) -> object:
    """``obj.name``, called when it is a method; '?' where it is missing or fails."""
    try:
        value = getattr(obj, name)
        return value() if callable(value) else value
    except Exception:  # a private attribute that this kafka-python version lacks
        return "?"


class _SeekOnAssign(ConsumerRebalanceListener):
    """Applies seeks asked for before the group assigned the partition to this member, and forgets the positions
    of partitions it no longer holds."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        held = set(assigned)
        for tp in [tp for tp in self.source._positions if tp not in held]:  # gone to another member: when it
            del self.source._positions[tp]  # comes back, it starts from the group's committed position
        for tp in assigned:
            offset = self.source._pending_seeks.pop(tp, None)
            if offset is not None:
                self.source._consumer.seek(tp, offset)
                self.source._positions[tp] = offset


#: tries of one dead-letter send to Kafka, and the pause before the first retry (doubled each time)
DEAD_LETTER_ATTEMPTS, DEAD_LETTER_PAUSE = 4, 0.5


def kafka_dead_letter(
    settings: Settings,
    fallback: DeadLetter,
    *,
    attempts: int = DEAD_LETTER_ATTEMPTS,
    pause: float = DEAD_LETTER_PAUSE,
    timeout: float = 10.0,
) -> DeadLetter:
    """Dead letters to the ``<prefix>.dead-letter`` topic: the original bytes, where they came from and
    why, in headers, so nothing is lost and the partition moves on.

    A send that fails (Kafka unreachable, the topic refusing the record) is retried with backoff; if it
    keeps failing, the record goes to ``fallback`` (the consumer's ``$EXPSTREAM_HOME/dead-letter/`` folder)
    instead, so that a dead letter never ends ``expstream consume`` nor loses the record. ``timeout``: seconds
    one try waits for the brokers. The producer is made on the first letter: a consumer that never meets a
    bad record never opens it."""
    state: dict[str, Any] = {}
    topic = physical_topic(settings, DEAD_LETTER)

    def producer() -> Any:
        if "producer" not in state:
            from kafka import KafkaProducer

            state["producer"] = KafkaProducer(
                **kafka_options(settings),
                acks="all",
                max_request_size=MAX_MESSAGE_BYTES,
                max_block_ms=int(timeout * 1000),
                request_timeout_ms=int(timeout * 1000),
            )
        return state["producer"]

    def send(record: Record, reason: str) -> None:
        headers = [
            ("reason", reason.encode("utf-8", "replace")),
            ("topic", record.topic.encode()),
            ("partition", str(record.partition).encode()),
            ("offset", str(record.offset).encode()),
        ]
        wait = pause
        for attempt in range(1, attempts + 1):
            try:
                producer().send(topic, key=record.key.encode(), value=record.value, headers=headers).get(
                    timeout=timeout
                )
                return
            except Exception as exc:  # kafka-python raises many kinds; each is a failed send
                _discard(state.pop("producer", None))  # the next try starts afresh, nothing left queued
                log.warning("Dead letter to %s failed (try %d of %d): %s: %s", topic, attempt, attempts,
                            type(exc).__name__, exc)  # fmt: skip
                if attempt < attempts:
                    time.sleep(wait)
                    wait *= 2
        log.error("Kafka took no dead letter for %s[%d]@%d; kept locally instead", record.topic, record.partition,
                  record.offset)  # fmt: skip
        fallback(record, f"{reason} (kept here: the {topic} topic took no record)")

    return send


def _discard(producer: Any) -> None:
    """Close a producer whose send failed without waiting for what it still queues (kept elsewhere)."""
    if producer is not None:
        try:
            producer.close(timeout=0)
        except Exception as exc:  # closing a producer of a broker that is gone
            log.debug("Closing the dead-letter producer failed: %s", exc)
