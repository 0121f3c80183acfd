"""A Kafka cluster as the event log: connection options, topic names, topic admin.

Shared by the producer's transport and numbering and by the consumers' source and dead letter.
kafka-python is imported only inside the functions that talk to the cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from expstream.config import Settings
from expstream.eventlog.records import BLOBS, EVENTS
from expstream.exceptions import ConfigurationError, TransportError

__all__ = [
    "DEAD_LETTER",
    "MAX_MESSAGE_BYTES",
    "ensure_topics",
    "kafka_options",
    "logical_topic",
    "message_limit",
    "new_topic",
    "physical_topic",
    "topic_replication",
]

log = logging.getLogger("expstream.kafka")

#: undecodable events land here with the reason in a header
DEAD_LETTER = "expstream.dead-letter"
#: largest message: a blob chunk plus its envelope
MAX_MESSAGE_BYTES = 8 << 20


def physical_topic(settings: Settings, logical: str) -> str:
    """``expstream.events`` → ``<EXPSTREAM_KAFKA_TOPIC_PREFIX>.events``: several installations can share a cluster."""
    return settings.kafka_topic_prefix + logical.removeprefix("expstream")


def logical_topic(settings: Settings, physical: str) -> str:
    return "expstream" + physical.removeprefix(settings.kafka_topic_prefix)


#: passwords that must never reach a log record of kafka-python, as text and as escaped in a bytes repr
_LOG_SECRETS: set[str] = set()


def _keep_out_of_logs(password: str) -> None:
    """kafka-python's DEBUG logs print the SASL/PLAIN request bytes, password included. Records of
    its loggers (any ``kafka.*``, also ones created later) are rewritten without it when they are
    made; records are only made for enabled levels, so this costs nothing at the default WARNING."""
    if not password:
        return
    if not _LOG_SECRETS:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if record.name.startswith("kafka"):
                message = record.getMessage()
                if any(secret in message for secret in _LOG_SECRETS):
                    for secret in _LOG_SECRETS:
                        message = message.replace(secret, "***")
                    record.msg, record.args = message, None
            return record

        logging.setLogRecordFactory(factory)
    _LOG_SECRETS.update({password, repr(password.encode())[2:-1]})


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by producer, consumer and admin client (secrets stay in memory)."""
    if not settings.kafka:
        raise ConfigurationError("EXPSTREAM_KAFKA is not set")
    options: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.kafka.split(",") if s.strip()],
        "security_protocol": settings.kafka_security_protocol,
        "client_id": "expstream",
    }
    if settings.kafka_ssl_cafile is not None:
        options["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
            _keep_out_of_logs(options["sasl_plain_password"])
    return options


def topic_replication(settings: Settings, brokers: int) -> tuple[int, int]:
    """(replication factor, ``min.insync.replicas``) of the topics expstream creates on ``brokers`` brokers.

    Defaults survive one broker lost: 3 replicas of which 2 must acknowledge (``acks=all``) on three or more
    brokers, 2 and 1 on two, and 1 and 1 on a single broker, which keeps working alone.
    ``EXPSTREAM_KAFKA_REPLICATION_FACTOR`` / ``_MIN_INSYNC_REPLICAS`` choose otherwise; more replicas than
    brokers is refused here, where the reason is known, rather than by the broker."""
    replicas = settings.kafka_replication_factor or min(3, max(1, brokers))
    if replicas > brokers:
        raise ConfigurationError(
            f"EXPSTREAM_KAFKA_REPLICATION_FACTOR={replicas} but the Kafka cluster at {settings.kafka} has "
            f"{brokers} broker(s): lower it or add brokers"
        )
    return replicas, settings.kafka_min_insync_replicas or max(1, replicas - 1)


def new_topic(settings: Settings, name: str, partitions: int, brokers: int) -> Any:
    """A kafka-python ``NewTopic`` replicated as ``topic_replication`` says, taking our largest events."""
    from kafka.admin import NewTopic

    replicas, insync = topic_replication(settings, brokers)
    configs = {"max.message.bytes": str(message_limit(settings)), "min.insync.replicas": str(insync)}
    return NewTopic(name=name, num_partitions=partitions, replication_factor=replicas, topic_configs=configs)


def ensure_topics(settings: Settings, topics: Sequence[str] = (EVENTS, BLOBS, DEAD_LETTER)) -> dict[str, int]:
    """Create missing topics with ``EXPSTREAM_KAFKA_PARTITIONS`` partitions, replicated as
    ``topic_replication`` says (existing ones are kept)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(**kafka_options(settings), request_timeout_ms=10_000, bootstrap_timeout_ms=10_000)
    except KafkaError as exc:
        raise TransportError(f"cannot reach Kafka at {settings.kafka}: {type(exc).__name__}: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        brokers = len(admin.describe_cluster().get("brokers", []))
        missing = [
            new_topic(settings, physical_topic(settings, topic), settings.kafka_partitions, brokers)
            for topic in topics
            if physical_topic(settings, topic) not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing, timeout_ms=10_000)
            except TopicAlreadyExistsError:
                pass  # another process won the race
        return _check_message_limits(settings, admin, [t for t in topics if t != DEAD_LETTER])
    except KafkaError as exc:
        raise TransportError(f"cannot create the topics on Kafka: {type(exc).__name__}: {exc}") from exc
    finally:
        admin.close()


def message_limit(settings: Settings) -> int:
    """``max.message.bytes`` of the topics expstream creates: an event of the largest allowed size
    (``EXPSTREAM_MAX_EVENT_BYTES``) plus Kafka's record overhead, and never below 8 MiB."""
    return max(MAX_MESSAGE_BYTES, settings.max_event_bytes + (64 << 10))


#: topics whose limit was already found too small, so the error is logged once per process
_WARNED_LIMITS: set[str] = set()


def _check_message_limits(settings: Settings, admin: Any, topics: Sequence[str]) -> dict[str, int]:
    """``max.message.bytes`` of each of ``topics`` (logical names); says so loudly, once, where a topic
    made by someone else takes less than our events may need.

    The forwarder sets aside records larger than their topic takes (see ``undeliverable``) instead of
    blocking the spool; lowering ``EXPSTREAM_MAX_EVENT_BYTES`` or raising the topic's
    ``max.message.bytes`` avoids that."""
    from kafka.admin import ConfigResource, ConfigResourceType

    names = {physical_topic(settings, t): t for t in topics}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": None}) for name in names]
    found = admin.describe_configs(resources, config_filter="all").get("topic", {})
    limits: dict[str, int] = {}
    for name, logical in names.items():
        value = found.get(name, {}).get("max.message.bytes", {}).get("value")
        if value is None:
            continue
        limits[logical] = int(value)
        if int(value) < settings.max_event_bytes + 1024 and name not in _WARNED_LIMITS:
            _WARNED_LIMITS.add(name)
            log.error(
                "topic %s takes messages up to %s bytes (max.message.bytes), less than EXPSTREAM_MAX_EVENT_BYTES=%d: "
                "larger events will be set aside, not delivered; raise the topic's max.message.bytes or lower "
                "EXPSTREAM_MAX_EVENT_BYTES",
                name,
                value,
                settings.max_event_bytes,
            )
    return limits
