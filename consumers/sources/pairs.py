"""Transport and source of each adapter, opened together: what the contract tests run over.

To add an adapter, write an opener and list it in ``_OPENERS``; every contract test then runs
against it too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from expstream.consumers.sources.base import Source
from expstream.consumers.sources.local_log import LocalLogSource
from expstream.consumers.sources.memory import MemorySource
from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.memory import MemoryLog
from expstream.producer.transports.base import Transport
from expstream.producer.transports.local_log import LocalLogTransport
from expstream.producer.transports.memory import MemoryTransport

__all__ = ["ADAPTERS", "NEEDS_SERVICES", "SourceFactory", "open_pair"]


class SourceFactory(Protocol):
    """Opens a new source on the transport's log, as a restarted consumer would."""

    def __call__(self, group: str = "default") -> Source: ...


def _open_memory(folder: Path, partitions: int) -> tuple[Transport, SourceFactory]:
    log = MemoryLog(partitions)

    def source(group: str = "default") -> Source:
        return MemorySource(log, group=group)

    return MemoryTransport(log), source


def _open_local_log(folder: Path, partitions: int) -> tuple[Transport, SourceFactory]:
    root = Path(folder) / "log"

    def source(group: str = "default") -> Source:
        return LocalLogSource(LocalLog(root), group=group)  # a fresh LocalLog: nothing cached

    return LocalLogTransport(LocalLog(root, partitions)), source


def _open_kafka(folder: Path, partitions: int) -> tuple[Transport, SourceFactory]:
    """Kafka of ``EXPSTREAM_KAFKA``, with topics and groups of a fresh prefix so every pair starts empty."""
    import uuid

    from expstream.config import load_settings
    from expstream.consumers.sources.kafka import KafkaSource
    from expstream.producer.transports.kafka import KafkaTransport

    prefix = f"contract-{uuid.uuid4().hex[:12]}"
    settings = load_settings(home=Path(folder), kafka_partitions=partitions, kafka_topic_prefix=prefix)

    def source(group: str = "default") -> Source:
        # groups of this pair only: a member of an earlier pair's group would hold up the join
        return KafkaSource(settings, group=f"{prefix}.{group}")

    return KafkaTransport(settings, Path(folder) / "spool"), source


_OPENERS: dict[str, Callable[[Path, int], tuple[Transport, SourceFactory]]] = {
    "memory": _open_memory,
    "local_log": _open_local_log,
    "kafka": _open_kafka,
}
#: adapters that need a service running (tests start it first)
NEEDS_SERVICES = frozenset({"kafka"})
ADAPTERS = tuple(_OPENERS)


def open_pair(kind: str, folder: Path, partitions: int = 4) -> tuple[Transport, SourceFactory]:
    """A transport and a factory of sources over one fresh log of ``kind`` stored under ``folder``."""
    try:
        opener = _OPENERS[kind]
    except KeyError:
        raise ValueError(f"unknown adapter {kind!r}; known: {', '.join(ADAPTERS)}") from None
    return opener(folder, partitions)
