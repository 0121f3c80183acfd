"""Numbering for a fleet: a single-partition Kafka topic is the sequencer.

To get a number a process appends a claim ``(project, run id)`` and reads the topic up to its own
claim: the claims are totally ordered, so every reader counts the same and each claim gets the
next number of its project — no gaps, no duplicates, no central server. Claims for a run id that
already has a number reuse it. A process reads the (small: one message per experiment) topic once,
then only the claims it has not seen.

Numbers stop at a limit (:data:`~expstream.producer.numbering.base.MAX_NUMBER`): a claim past it
gets no number, every reader agrees on that, and ``create_experiment`` raises
``ExperimentNumbersExhausted`` before the experiment records anything. A claim that is not valid
JSON (written by something else) is skipped, by every reader alike.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from expstream.config import Settings
from expstream.eventlog.kafka import ensure_topics, kafka_options, new_topic, physical_topic
from expstream.exceptions import ExperimentNumbersExhausted, TransportError
from expstream.producer.numbering.base import MAX_NUMBER, Numbering

__all__ = ["NUMBERING_TOPIC", "KafkaNumbering"]

NUMBERING_TOPIC = "expstream.numbering"

logger = logging.getLogger("expstream.numbering")


class KafkaNumbering(Numbering):
    def __init__(self, settings: Settings, *, limit: int = MAX_NUMBER) -> None:
        self.settings = settings
        self.limit = min(int(limit), MAX_NUMBER)
        self._lock = threading.Lock()
        self._offset = 0  # claims before this offset are counted below
        self._counts: dict[str, int] = {}
        self._runs: dict[tuple[str, str], int] = {}
        self._producer: Any = None
        self._consumer: Any = None

    def _clients(self) -> tuple[Any, Any]:
        if self._producer is None:
            from kafka import KafkaConsumer, KafkaProducer, TopicPartition

            options = kafka_options(self.settings)
            self._ensure_topic()
            self._producer = KafkaProducer(**options, acks="all", enable_idempotence=True)
            self._consumer = KafkaConsumer(**options, enable_auto_commit=False, group_id=None)
            self._topic = physical_topic(self.settings, NUMBERING_TOPIC)
            self._tp = TopicPartition(self._topic, 0)
            self._consumer.assign([self._tp])
            self._consumer.seek(self._tp, self._offset)
        return self._producer, self._consumer

    def _ensure_topic(self) -> None:
        from kafka import KafkaAdminClient
        from kafka.errors import TopicAlreadyExistsError

        ensure_topics(self.settings)
        admin = KafkaAdminClient(**kafka_options(self.settings))
        try:
            topic = physical_topic(self.settings, NUMBERING_TOPIC)
            if topic not in set(admin.list_topics()):
                try:
                    brokers = len(admin.describe_cluster().get("brokers", []))  # replicated like the others
                    admin.create_topics([new_topic(self.settings, topic, 1, brokers)], timeout_ms=10_000)
                except TopicAlreadyExistsError:
                    pass
        finally:
            admin.close()

    def next_number(self, project: str) -> int:
        return self._claim(project, None)[0]

    def number_for_run(self, project: str, run_id: str) -> tuple[int, bool]:
        return self._claim(project, run_id)

    def _claim(self, project: str, run_id: str | None) -> tuple[int, bool]:
        nonce = uuid.uuid4().hex
        claim = json.dumps({"project": project, "run": run_id, "nonce": nonce}).encode()
        with self._lock:
            try:
                producer, consumer = self._clients()
                mine = producer.send(self._topic, key=project.encode(), value=claim).get(timeout=30).offset
                result: tuple[int | None, bool] | None = None
                while self._offset <= mine:
                    for messages in consumer.poll(timeout_ms=1000).values():
                        for message in messages:
                            if message.offset < self._offset:
                                continue
                            counted = self._count_message(message.offset, message.value)
                            self._offset = message.offset + 1
                            if message.offset == mine:
                                result = counted
            except Exception as exc:
                raise TransportError(f"cannot number a new experiment through Kafka: {type(exc).__name__}") from exc
        assert result is not None
        number, created = result
        if number is None:
            raise ExperimentNumbersExhausted(project, self.limit)
        return number, created

    def _count_message(self, offset: int, value: bytes | None) -> tuple[int | None, bool]:
        try:
            claim = json.loads(value or b"")
            if not isinstance(claim, dict) or not isinstance(claim.get("project"), str):
                raise ValueError("not a claim object")
            if not isinstance(claim.get("run"), (str, type(None))):
                raise ValueError("not a claim object")
        except ValueError as exc:
            logger.warning("skipping a damaged claim at offset %d of the numbering topic (%s)", offset, exc)
            return None, False
        return self._count(claim)

    def _count(self, claim: dict[str, Any]) -> tuple[int | None, bool]:
        """Number of a claim: None past the limit (the count stays there, so all readers agree)."""
        project, run = claim["project"], claim.get("run")
        if run is not None and (project, run) in self._runs:
            return self._runs[(project, run)], False
        number = self._counts.get(project, 0) + 1
        if number > self.limit:
            return None, False
        self._counts[project] = number
        if run is not None:
            self._runs[(project, run)] = number
        return number, True
