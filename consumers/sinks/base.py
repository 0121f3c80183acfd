"""The sink ports: a ClickHouse-dialect table store and an S3-like object store.

Both are written by the consumer runner and read by the query side. Every write is safe to repeat:
tables are ReplacingMergeTree keyed so that a replayed row replaces its twin, and objects are
content-addressed.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any

from expstream.exceptions import ArtifactPathError, BlobIntegrityError, ConfigurationError

if TYPE_CHECKING:  # pandas only for the readers: the warm materializer writes without ever loading it
    from importlib.resources.abc import Traversable

    import pandas as pd

__all__ = [
    "DATA_ERROR_CODES",
    "ObjectStore",
    "TableStore",
    "check_digest",
    "cluster_ddl_statements",
    "ddl_statements",
    "validate_key",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


#: ClickHouse error codes that blame the inserted data, not the server: a value the column cannot hold or
#: text that does not parse as its type. The same data fails the same way every time, so an insert that
#: fails with one of these raises ``SinkDataError`` (dead-letter the event), never ``StorageError`` (retry).
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,  # ATTEMPT_TO_READ_AFTER_EOF (a column shorter than its block)
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        43,  # ILLEGAL_TYPE_OF_ARGUMENT
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    }
)


def ddl_statements() -> list[str]:
    """The statements of ``deploy/clickhouse/*.sql`` in file order (one statement per ``;``)."""
    return _statements(resources.files("expstream.deploy") / "clickhouse")


def cluster_ddl_statements(cluster: str, database: str) -> list[str]:
    """The statements of ``deploy/clickhouse/cluster/*.sql`` for ``cluster`` and ``database`` (plain identifiers).

    The sharded layout: per table a ``ReplicatedReplacingMergeTree`` named ``<table>_local`` on every server and
    a ``Distributed`` table under the single-server name over them, sharded by experiment, all ``ON CLUSTER``.
    The files name the cluster and database as ``${cluster}`` and ``${database}`` (ClickHouse's own macros,
    ``{shard}`` and ``{replica}`` in the ZooKeeper paths, are left to the servers)."""
    for name in (cluster, database):
        if not _IDENTIFIER.fullmatch(name):
            raise ConfigurationError(f"ClickHouse cluster and database names must be plain identifiers, not {name!r}")
    folder = resources.files("expstream.deploy") / "clickhouse" / "cluster"
    return [Template(s).substitute(cluster=cluster, database=database) for s in _statements(folder)]


def _statements(folder: Traversable) -> list[str]:
    statements: list[str] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = "\n".join(line for line in entry.read_text().splitlines() if not line.lstrip().startswith("--"))
        statements.extend(s.strip() for s in text.split(";") if s.strip())
    return statements


def validate_key(key: str) -> str:
    """Return ``key`` if every adapter can store it, else raise ``ArtifactPathError`` (a ``ValueError``).

    A key is '/'-separated, relative, without empty, '.' or '..' components, backslashes or NUL, so
    a folder-backed store can map it to a path that never leaves its folder, and all adapters accept
    exactly the same keys.
    """
    if not isinstance(key, str) or not key:
        raise ArtifactPathError(f"Object key must be a non-empty str, got {key!r}.")
    if "\0" in key or "\\" in key:
        raise ArtifactPathError(f"Object key {key!r} contains a NUL or a backslash.")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ArtifactPathError(f"Object key {key!r} must be relative, without empty, '.' or '..' parts.")
    return key


def check_digest(key: str, digest: Any, expected: str | None) -> None:
    """Raise ``BlobIntegrityError`` when ``expected`` is given and ``digest`` (a hashlib object) differs."""
    if expected is not None and digest.hexdigest() != expected:
        raise BlobIntegrityError(
            f"Object {key!r} not written: its parts hash to sha256 {digest.hexdigest()}, not {expected}."
        )


class TableStore(ABC):
    """ClickHouse tables (server or chdb): columnar inserts, parameterized reads.

    SQL uses ClickHouse's ``{name:Type}`` placeholders; adapters bind them safely, never by
    pasting user values into the text.
    """

    database: str

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the database and tables of ``deploy/clickhouse`` if missing."""

    @abstractmethod
    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Insert one columnar batch; every column has the same length.

        ``SinkDataError`` when the data itself is refused (a value out of its column's range, text that does
        not parse): the same columns would fail again. Any other failure (server down, timeout, lock) is a
        ``StorageError`` worth retrying."""

    @abstractmethod
    def query_df(self, sql: str, params: Mapping[str, Any] | None = None, *, readonly: bool = False) -> pd.DataFrame:
        """Run a SELECT and return its rows as a DataFrame.

        ``readonly=True`` is for SQL from outside (``expstream sql``): the engine's ``readonly = 1`` guard is on
        and ``readonly.check_read_only`` refuses what it lets through, so the query can change no table, write
        no file and reach no other host. The materializer's own queries stay read-write.
        """

    def query_rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a small SELECT and return its rows as tuples of Python values (int, float, str).

        What the consumers read back (their progress) goes through here rather than :meth:`query_df`, so that a
        store can answer without pandas: the warm materializer never loads it (its start is on the critical path
        of a script's first ``sync()``). This default goes through :meth:`query_df`."""
        df = self.query_df(sql, params)
        return list(zip(*(df[name].tolist() for name in df.columns), strict=True))

    @contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        """Keep the store open across several calls (the embedded store locks a folder).

        ``timeout``: seconds to wait for another process's hold at most (``LockTimeout`` then);
        None means the default lock timeout."""
        yield

    def close(self) -> None:
        """Release resources. Idempotent."""


class ObjectStore(ABC):
    """Flat keys → bytes, like an S3 bucket."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Raise KeyError when the key is absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a key; absent keys are fine."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys that start with ``prefix``, sorted."""

    def compose(self, key: str, parts: Sequence[str], *, sha256: str | None = None) -> None:
        """Write ``key`` as the concatenation of ``parts`` (adapters may do it server-side).

        With ``sha256`` (hex), the concatenation must hash to it, checked before ``key`` is written:
        else ``BlobIntegrityError`` and ``key`` is untouched. That is how a blob assembled from
        chunks is verified before anyone can read it.
        """
        data = b"".join(self.get(p) for p in parts)
        check_digest(key, hashlib.sha256(data), sha256)
        self.put(key, data)

    def close(self) -> None:
        """Release resources. Idempotent."""
