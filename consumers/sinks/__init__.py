"""Sinks: where consumers write and the query side reads (ports in ``base``, one adapter module per technology).

``OBJECT_STORES`` and ``TABLE_STORES`` list the adapters; the contract tests are parametrized over them, so
an adapter added here is tested like the others.
"""

from __future__ import annotations

from typing import Any

from expstream.consumers.sinks.base import ObjectStore, TableStore, validate_key
from expstream.exceptions import ConfigurationError

__all__ = ["OBJECT_STORES", "TABLE_STORES", "create_object_store", "create_table_store", "validate_key"]

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
    (``clickhouse[s]://user:password@host:port/database``) and optionally ``ca`` (a CA bundle path).
    """
    if kind == "chdb":
        from expstream.consumers.sinks.chdb import ChdbTables

        return ChdbTables(**options)
    if kind == "clickhouse":
        from expstream.consumers.sinks.clickhouse import ClickHouseTables

        return ClickHouseTables.from_url(**options)
    raise ConfigurationError(f"Unknown table store {kind!r}; expected one of {', '.join(TABLE_STORES)}.")
