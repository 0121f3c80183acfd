"""Choose the adapters from the settings: unset services mean the embedded default.

Embedded default, all under ``EXPSTREAM_HOME``::

    log/        the append-only event log (transport and source)
    projects/   experiment counters
    chdb/       the embedded ClickHouse database (tables of deploy/clickhouse)
    objects/    artifacts, images and sources, content-addressed

Distributed (``EXPSTREAM_KAFKA``, ``EXPSTREAM_CLICKHOUSE``, ``EXPSTREAM_S3`` all set): Kafka
transport (spooling under ``EXPSTREAM_HOME/spool``), Kafka numbering, consumer groups writing to a
ClickHouse server and an S3 bucket, and a reader over those.
"""

from __future__ import annotations

import importlib.util
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expstream.config import Settings
from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.records import Watermark
from expstream.exceptions import ConfigurationError, ExpstreamTimeoutError
from expstream.producer.numbering import LocalFileNumbering
from expstream.producer.transports.local_log import LocalLogTransport

if TYPE_CHECKING:
    from expstream.consumers.runner import Runner
    from expstream.consumers.sinks.base import ObjectStore, TableStore
    from expstream.consumers.sources.base import Source
    from expstream.consumers.warm.client import WarmClient
    from expstream.query.reader import Reader

__all__ = [
    "EMBEDDED_GROUP",
    "OBJECT_STORES",
    "TABLE_STORES",
    "backend_parts",
    "consumer_runner",
    "create_object_store",
    "create_table_store",
    "embedded_runner",
    "embedded_stores",
    "open_reader",
    "replay_source",
    "server_stores",
    "stores_from_urls",
]

#: consumer group of the embedded materializer (its progress lives in the chdb tables)
EMBEDDED_GROUP = "embedded"


def _home(settings: Settings) -> Path:
    return settings.home.expanduser().absolute()


def _local_log(settings: Settings) -> LocalLog:
    return LocalLog(_home(settings) / "log", settings.log_partitions, settings.segment_bytes)


def _check_distributed(settings: Settings) -> None:
    missing = [
        name
        for name, value in (
            ("EXPSTREAM_KAFKA", settings.kafka),
            ("EXPSTREAM_CLICKHOUSE", settings.clickhouse),
            ("EXPSTREAM_S3", settings.s3),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(f"distributed mode needs all three services; not set: {', '.join(missing)}")
    require_distributed_extra()


def server_stores(settings: Settings) -> tuple[TableStore, ObjectStore]:
    """The ClickHouse server and the S3 bucket of the settings."""
    assert settings.clickhouse is not None and settings.s3 is not None
    return stores_from_urls(settings, settings.clickhouse.get_secret_value(), settings.s3.get_secret_value())


def embedded_runner(settings: Settings) -> Runner:
    """The consumer runner of the embedded default: local log → chdb + local folder."""
    from expstream.consumers.runner import Runner
    from expstream.consumers.sinks.chdb import ChdbTables
    from expstream.consumers.sinks.localfs import LocalFolderStore
    from expstream.consumers.sources.local_log import LocalLogSource

    home = _home(settings)
    return Runner(
        LocalLogSource(_local_log(settings), group=EMBEDDED_GROUP, positions_dir=home / "positions"),
        ChdbTables(home / "chdb"),
        LocalFolderStore(home / "objects"),
        group=EMBEDDED_GROUP,
        dead_letter_dir=home / "dead-letter",
    )


def consumer_runner(settings: Settings) -> Runner:
    """The runner ``expstream consume`` runs: embedded, or a member of the Kafka consumer group."""
    if not settings.distributed:
        return embedded_runner(settings)
    _check_distributed(settings)
    from expstream.consumers.runner import Runner, folder_dead_letter
    from expstream.consumers.sources.kafka import KafkaSource, kafka_dead_letter

    tables, objects = server_stores(settings)
    tables.ensure_schema()
    return Runner(
        KafkaSource(settings, group=settings.consumer_group),
        tables,
        objects,
        group=settings.consumer_group,
        dead_letter=kafka_dead_letter(settings, folder_dead_letter(_home(settings) / "dead-letter")),
        resume_from_tables=False,
        max_records=settings.consumer_batch_messages,
    )


def open_reader(settings: Settings) -> Reader:
    """The query side: over the servers, or over the embedded home's warm materializer, which holds chdb and
    answers in Arrow; every read first waits until it holds the local log up to its end at that moment."""
    from expstream.query.reader import Reader

    if settings.distributed:
        _check_distributed(settings)
        tables, objects = server_stores(settings)
        tables.ensure_schema()
        return Reader(tables, objects)
    from expstream.consumers.sinks.localfs import LocalFolderStore
    from expstream.consumers.warm.tables import WarmTables

    client = _warm_client(settings)
    barrier = settings.read_barrier_timeout
    return Reader(
        WarmTables(client), LocalFolderStore(_home(settings) / "objects"), refresh=lambda: client.sync(None, barrier)
    )


def _warm_client(settings: Settings) -> WarmClient:
    """The client of the home's warm materializer (which it starts on first use)."""
    from expstream.consumers.warm.client import WarmClient

    return WarmClient.for_home(_home(settings))


#: exit status of ``expstream consume --once`` when the tables' lock was not free in time
LOCK_TIMEOUT_EXIT = 75


def _wait_for_consumers(reader: Reader, group: str, watermark: Watermark, timeout: float | None) -> None:
    """Read-your-writes on the cluster: wait until the consumer group's progress covers the watermark."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.02
    while True:
        progress = reader.consumer_progress(group)
        if all(progress.get(tp, 0) >= offset for tp, offset in watermark.items()):
            return
        if deadline is not None and time.monotonic() > deadline:
            behind = {f"{t}[{p}]": o - progress.get((t, p), 0) for (t, p), o in watermark.items()}
            raise ExpstreamTimeoutError(
                f"consumers have not materialized everything within {timeout} s; behind: {behind}"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def backend_parts(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of :class:`expstream.backend.StreamBackend` for these settings."""
    state: dict[str, Reader] = {}

    def reader() -> Reader:
        state["reader"] = open_reader(settings)
        return state["reader"]

    if settings.distributed:
        _check_distributed(settings)
        from expstream.producer.numbering.kafka import KafkaNumbering
        from expstream.producer.transports.kafka import KafkaTransport

        def wait_for_consumers(watermark: Watermark, timeout: float | None) -> None:
            current = state.get("reader") or reader()
            _wait_for_consumers(current, settings.consumer_group, watermark, timeout)

        return {
            "transport": KafkaTransport(settings, _home(settings) / "spool"),
            "pending_dir": _home(settings) / "pending" / "kafka",
            "numbering": KafkaNumbering(settings),
            "open_reader": reader,
            "materializer": wait_for_consumers,
        }

    def materialize(watermark: Watermark, timeout: float | None) -> None:
        # The home's warm materializer holds chdb: this process never loads it (consumers/warm/)
        _warm_client(settings).sync(watermark, timeout)

    def warm_up() -> None:
        _warm_client(settings).start_in_background()

    from expstream.producer.numbering.recovery import numbers_in_log

    log = _local_log(settings)
    return {
        "transport": LocalLogTransport(log),
        "pending_dir": _home(settings) / "pending" / "log",
        "numbering": LocalFileNumbering(_home(settings) / "projects", numbers_in_log(log)),
        "open_reader": reader,
        "materializer": materialize,
        "warm_up": warm_up,
    }


# --- the adapter registry: every table and object store by name ------------------------------

OBJECT_STORES: tuple[str, ...] = ("memory", "localfs", "s3")
TABLE_STORES: tuple[str, ...] = ("chdb", "clickhouse")


def create_object_store(kind: str, **options: Any) -> ObjectStore:
    """The object store ``kind`` (one of ``OBJECT_STORES``) built from adapter options.

    ``memory`` takes none; ``localfs`` takes ``root`` (the folder); ``s3`` takes ``url``
    (``http(s)://access_key:secret_key@host:port/bucket``) and optionally ``ca`` (a CA bundle path).
    """
    if kind == "memory":
        from expstream.consumers.sinks.memory import MemoryObjectStore

        return MemoryObjectStore(**options)
    if kind == "localfs":
        from expstream.consumers.sinks.localfs import LocalFolderStore

        return LocalFolderStore(**options)
    if kind == "s3":
        from expstream.consumers.sinks.s3 import S3ObjectStore

        return S3ObjectStore.from_url(**options)
    raise ConfigurationError(f"Unknown object store {kind!r}; expected one of {', '.join(OBJECT_STORES)}.")


def create_table_store(kind: str, **options: Any) -> TableStore:
    """The table store ``kind`` (one of ``TABLE_STORES``) built from adapter options.

    ``chdb`` takes ``folder`` and optionally ``database``; ``clickhouse`` takes ``url``
    (``clickhouse[s]://user:password@host:port/database``) and optionally ``ca`` (a CA bundle path) and
    ``timeout`` (seconds one connect or request may take) and ``cluster`` (the sharded layout on that ClickHouse
    cluster).
    """
    if kind == "chdb":
        from expstream.consumers.sinks.chdb import ChdbTables

        return ChdbTables(**options)
    if kind == "clickhouse":
        from expstream.consumers.sinks.clickhouse import ClickHouseTables

        return ClickHouseTables.from_url(**options)
    raise ConfigurationError(f"Unknown table store {kind!r}; expected one of {', '.join(TABLE_STORES)}.")


def embedded_stores(folder: Path) -> tuple[TableStore, ObjectStore]:
    """chdb tables and a local object folder under ``folder`` (``chdb/``, ``objects/``), e.g. a replay target."""
    return create_table_store("chdb", folder=folder / "chdb"), create_object_store("localfs", root=folder / "objects")


def stores_from_urls(settings: Settings, clickhouse_url: str, s3_url: str) -> tuple[TableStore, ObjectStore]:
    """A ClickHouse server and an S3 bucket by URL, reached with the CA bundles of the settings (and, with
    ``EXPSTREAM_CLICKHOUSE_CLUSTER``, the sharded layout on that ClickHouse cluster)."""
    require_distributed_extra()
    return (
        create_table_store(
            "clickhouse",
            url=clickhouse_url,
            ca=settings.clickhouse_ca,
            timeout=settings.clickhouse_timeout,
            cluster=settings.clickhouse_cluster,
        ),
        create_object_store("s3", url=s3_url, ca=settings.s3_ca),
    )


def replay_source(settings: Settings) -> Source:
    """Every partition of the event stream from its first event (nothing is committed): replay, export."""
    if settings.distributed:
        _check_distributed(settings)
        from expstream.consumers.sources.kafka import KafkaSource

        return KafkaSource(settings, group=None)
    from expstream.consumers.sources.local_log import LocalLogSource

    home = _home(settings)
    group = f"replay-{uuid.uuid4().hex[:12]}"
    source = LocalLogSource(_local_log(settings), group=group, positions_dir=home / "positions" / "replays")
    source.seek({tp: 0 for tp in source.end_offsets()})
    return source


#: what distributed mode imports, and the distribution that brings each
_DISTRIBUTED_MODULES = {
    "kafka": "kafka-python",
    "clickhouse_driver": "clickhouse-driver",
    "minio": "minio",
    "certifi": "certifi",
    "tenacity": "tenacity",
    "lz4": "lz4",
}


def require_distributed_extra() -> None:
    """A missing client library is a ConfigurationError with the install line, not a ModuleNotFoundError later."""
    missing = [dist for module, dist in _DISTRIBUTED_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigurationError(f"distributed mode needs {', '.join(missing)}: pip install 'expstream[distributed]'")
