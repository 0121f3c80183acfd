"""A ClickHouse server (18.16 and later) through clickhouse-driver's native protocol.

The SQL is the one the chdb adapter runs. ClickHouse 18.16 has no server-side parameters, so each
``{name:Type}`` placeholder becomes a client-side ``%(name)s`` binding, which clickhouse-driver
escapes; values that are not strings are ``CAST`` to the placeholder's type so that results have
the same types as on chdb. Results come back as DataFrames with chdb's dtypes. Transient network
errors are retried a few times; every failure leaves as a :class:`StorageError` without the password.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from expstream.consumers.sinks.base import DATA_ERROR_CODES, TableStore, cluster_ddl_statements, ddl_statements
from expstream.consumers.sinks.columns import Coded
from expstream.consumers.sinks.readonly import check_read_only, parse_with_chdb
from expstream.exceptions import ConfigurationError, SinkDataError, StorageError
from expstream.service_urls import parse_clickhouse_url

__all__ = ["ClickHouseTables"]

log = logging.getLogger("expstream.clickhouse")
_T = TypeVar("_T")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: the table a statement of the sharded layout creates (``CREATE TABLE IF NOT EXISTS db.table ON CLUSTER ...``)
_CREATED = re.compile(r"CREATE TABLE IF NOT EXISTS \w+\.(\w+) ON CLUSTER")
#: a string literal or quoted identifier (left alone), a ``{name:Type}`` placeholder, or a ``%``
_TOKEN = re.compile(r"""'(?:\\.|''|[^'\\])*'|`(?:\\.|[^`\\])*`|"(?:\\.|[^"\\])*"|\{(\w+):([^{}]+)\}|%""", re.S)
_NUMPY: dict[str, str] = {
    **{f"UInt{b}": f"uint{b}" for b in (8, 16, 32, 64)},
    **{f"Int{b}": f"int{b}" for b in (8, 16, 32, 64)},
    "Float32": "float32",
    "Float64": "float64",
}
#: the dtype pandas gives a column of str (``str`` on pandas 3, ``object`` before), as chdb returns it
_STR_DTYPE = pd.Series(["x"]).dtype
#: server error codes worth another try: too many simultaneous queries, socket timeout, network error
_TRANSIENT_CODES = {202, 209, 210}
_SECURE_PORT, _PLAIN_PORT = 9440, 9000


class _NoNumpyFallbackNotice(logging.Filter):
    """clickhouse-driver warns on every Array(String) column that it reads it without numpy: expected here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "NumPy support is not implemented" not in record.getMessage()


logging.getLogger("clickhouse_driver.columns.service").addFilter(_NoNumpyFallbackNotice())


def _transient(exc: BaseException) -> bool:
    from clickhouse_driver import errors

    if isinstance(exc, (errors.NetworkError, errors.SocketTimeoutError, EOFError, ConnectionError, socket.timeout)):
        return True
    return isinstance(exc, errors.ServerException) and exc.code in _TRANSIENT_CODES


def _data_error(exc: BaseException) -> bool:
    """Whether the insert failed on its data (a type or range the column refuses), not on the server:
    the driver's client-side conversions (numpy, struct packing) and the server's parse and type errors."""
    from clickhouse_driver import errors

    if isinstance(exc, (errors.TypeMismatchError, errors.TooLargeStringSize, OverflowError, struct.error)):
        return True
    return isinstance(exc, errors.ServerException) and exc.code in DATA_ERROR_CODES


def _bind(sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``{name:Type}`` → ``%(name)s`` (String) or ``CAST(%(name)s AS Type)``; values converted to Type."""
    bound: dict[str, Any] = {}

    def replace(match: re.Match[str]) -> str:
        name, type_ = match.group(1), match.group(2)
        if name is None:
            return "%%" if match.group(0) == "%" else match.group(0).replace("%", "%%")
        if name not in params:
            raise StorageError(f"query parameter {name!r} has no value")
        type_ = type_.strip()
        bound[name] = _convert(params[name], type_)
        return f"%({name})s" if type_ == "String" else f"CAST(%({name})s AS {type_})"

    return _TOKEN.sub(replace, sql), bound


def _convert(value: Any, type_: str) -> Any:
    """A Python value of ClickHouse type ``type_`` that clickhouse-driver escapes as a literal."""
    if type_.startswith("Array(") and type_.endswith(")"):
        return [_convert(v, type_[6:-1]) for v in value]
    if type_ == "String":
        return value if isinstance(value, str) else str(value)
    if type_.startswith(("UInt", "Int")):
        return int(value)
    if type_.startswith("Float"):
        return float(value)
    return value


def _column(values: Any, type_: str) -> Any:
    """One result column with the dtype chdb gives the same ClickHouse type."""
    if type_ in _NUMPY:
        return np.asarray(values, dtype=_NUMPY[type_])
    if type_ in ("String", "LowCardinality(String)") or type_.startswith("FixedString("):
        return pd.Series(np.asarray(values, dtype=object), dtype=_STR_DTYPE)
    if type_.startswith("Array("):
        inner = _NUMPY.get(type_[6:-1], object)
        return _objects([np.asarray(v, dtype=inner) for v in values])
    return _objects(values)


def _objects(items: Any) -> np.ndarray:
    """A 1-d object array of ``items``, even when they are sequences of equal length."""
    column = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        column[i] = item
    return column


def _insert_column(values: Any, type_: str) -> np.ndarray:
    """An insert column (list, numpy array, :class:`Coded`, pandas Categorical or Series) as numpy of the
    column's type.

    Hot path of every consumer batch: dictionary-encoded columns (``Coded``, Categorical) are expanded with one
    numpy ``take`` over their few values, never element by element.
    """
    if isinstance(values, pd.Categorical):
        values = Coded(np.asarray(values.codes), list(values.categories))
    if isinstance(values, Coded):
        if type_ in _NUMPY:
            return values.expand(_NUMPY[type_])
        return np.asarray([str(v) for v in values.values], dtype=object).take(values.codes)
    if isinstance(values, (pd.Series, pd.Index)):
        values = np.asarray(values, dtype=object if type_ not in _NUMPY else None)
    if type_ in _NUMPY:
        return np.asarray(values, dtype=_NUMPY[type_])
    if type_ == "String":
        column = np.asarray(values, dtype=object)
        if column.size and not isinstance(column[0], str):  # the materializer only sends str
            column = np.array([v if isinstance(v, str) else str(v) for v in column], dtype=object)
        return column
    return _objects(values)


#: session settings on a cluster: an insert returns once every shard holds its rows (so progress is never
#: recorded before the data), subqueries over the tables read each shard's local table (an experiment lives on
#: one shard, so IN and JOIN by experiment stay exact), and reads and writes go to the same first healthy
#: replica of each shard (a read sees what the consumers wrote, before the other replica has fetched it)
CLUSTER_SETTINGS: dict[str, Any] = {
    "insert_distributed_sync": 1,
    "distributed_product_mode": "local",
    "load_balancing": "in_order",
}


class ClickHouseTables(TableStore):
    """The tables of ``deploy/clickhouse`` in one database of a ClickHouse server.

    With ``cluster`` (a cluster of the servers' ``remote_servers``), the sharded layout of
    ``deploy/clickhouse/cluster`` instead: the same table names are ``Distributed`` tables over replicated
    local tables, sharded by experiment, and every query and insert goes through them with
    :data:`CLUSTER_SETTINGS`; the SQL of the query side is unchanged.

    One connection per thread (a clickhouse-driver client is not thread-safe); the server handles
    concurrency, so :meth:`hold` stays the no-op of the port.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        user: str = "default",
        password: str = "",
        database: str = "expstream",
        secure: bool = False,
        ca: Path | None = None,
        connect_timeout: float = 10.0,
        timeout: float = 300.0,
        attempts: int = 3,
        cluster: str | None = None,
    ) -> None:
        if not _IDENTIFIER.fullmatch(database):
            raise ConfigurationError(f"ClickHouse database name {database!r} is not a plain identifier")
        if cluster is not None and not _IDENTIFIER.fullmatch(cluster):
            raise ConfigurationError(f"ClickHouse cluster name {cluster!r} is not a plain identifier")
        self.cluster = cluster
        self.host = host
        self.port = port or (_SECURE_PORT if secure else _PLAIN_PORT)
        self.user = user
        self.database = database
        self.secure = secure
        self.ca = ca
        self._password = password
        # A server that accepts connections but never answers (stopped, hung, a black-holed port) must
        # give an error, not a read that hangs: every connect and every request has a deadline, and
        # ``attempts`` bounds the retries, so one call fails within about attempts x timeout.
        self._connect_timeout = min(connect_timeout, timeout)
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._column_types: dict[str, dict[str, str]] = {}

    @classmethod
    def from_url(
        cls, url: str, ca: Path | None = None, timeout: float = 300.0, cluster: str | None = None
    ) -> ClickHouseTables:
        """``clickhouse://user:password@host:port/database``; ``clickhouses://`` for TLS (``ca``: CA bundle);
        ``cluster``: the sharded layout on that ClickHouse cluster."""
        parsed = parse_clickhouse_url(url)
        return cls(
            parsed.host,
            parsed.port,
            user=parsed.user,
            password=parsed.password,
            database=parsed.database,
            secure=parsed.secure,
            ca=ca,
            timeout=timeout,
            cluster=cluster,
        )

    def __repr__(self) -> str:
        scheme = "clickhouses" if self.secure else "clickhouse"
        on = f", cluster={self.cluster!r}" if self.cluster else ""
        return f"ClickHouseTables('{scheme}://{self.user}@{self.host}:{self.port}/{self.database}'{on})"

    # --- connections -----------------------------------------------------------------------

    def _new_client(self, database: str) -> Any:
        from clickhouse_driver import Client

        tls: dict[str, Any] = {"secure": True, "verify": True} if self.secure else {}
        if self.secure and self.ca is not None:
            tls["ca_certs"] = str(self.ca)
        client = Client(
            self.host,
            port=self.port,
            user=self.user,
            password=self._password,
            database=database,
            connect_timeout=self._connect_timeout,
            send_receive_timeout=self._timeout,
            sync_request_timeout=self._timeout,
            settings={"use_numpy": True, **(CLUSTER_SETTINGS if self.cluster else {})},
            **tls,
        )
        with self._lock:
            self._clients.append(client)
        return client

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client(self.database)
        return client

    def _call(self, what: str, action: Callable[[], _T], *, data: bool = False) -> _T:
        """Run ``action`` with a few retries on transient errors; failures become StorageError, or
        SinkDataError when ``data`` (an insert) and the error blames the data."""
        retrying = retry(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            reraise=True,
        )
        try:
            return retrying(action)()
        except StorageError:
            raise
        except Exception as exc:
            error = SinkDataError if data and _data_error(exc) else StorageError
            raise error(f"ClickHouse {what} failed on {self!r}: {self._scrub(exc)}") from exc

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc).split("Stack trace:", 1)[0].strip() or type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text

    # --- the port --------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        def create() -> None:
            bootstrap = self._new_client("")  # the user's default database: ours may not exist yet
            on_cluster = f" ON CLUSTER {self.cluster}" if self.cluster else ""
            try:
                if self.cluster and self._cluster_schema_present(bootstrap):
                    return
                bootstrap.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}`{on_cluster}")
            finally:
                self._forget(bootstrap)
            client = self._client()
            if self.cluster:
                statements = cluster_ddl_statements(self.cluster, self.database)
            else:
                statements = ddl_statements()
            for statement in statements:
                client.execute(statement)

        self._call("schema creation", create)
        self._column_types.clear()

    def _cluster_schema_present(self, client: Any) -> bool:
        """Every table of the sharded layout exists on this server: then no ``ON CLUSTER`` DDL is sent.

        Each such statement waits for every server of the cluster, so a consumer or reader starting while one
        replica is down would otherwise wait out ``distributed_ddl_task_timeout`` (180 s) on tables that exist."""
        assert self.cluster is not None
        wanted = {
            match.group(1)
            for statement in cluster_ddl_statements(self.cluster, self.database)
            if (match := _CREATED.match(statement))
        }
        rows = client.execute(
            "SELECT name FROM system.tables WHERE database = %(d)s", {"d": self.database}, settings={"use_numpy": False}
        )
        return wanted <= {str(name) for (name,) in rows}

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        if not _IDENTIFIER.fullmatch(table) or not all(_IDENTIFIER.fullmatch(c) for c in columns):
            raise StorageError(f"insert into {table!r}: table and column names must be plain identifiers")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise StorageError(f"insert into {table}: columns have different lengths {sorted(lengths)}")
        if not columns or not lengths or lengths == {0}:
            return
        types = self._types(table)
        unknown = [c for c in columns if c not in types]
        if unknown:
            raise StorageError(f"insert into {table}: no columns {unknown}")
        try:
            data = [_insert_column(values, types[name]) for name, values in columns.items()]
        except (TypeError, ValueError, OverflowError) as exc:  # e.g. -1 for a UInt32 column: numpy refuses it
            raise SinkDataError(f"insert into {table}: a value does not fit its column ({exc})") from exc
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        self._call(
            f"insert into {table}",
            lambda: self._client().execute(sql, data, columnar=True, settings={"use_numpy": True}),
            data=True,
        )

    def _types(self, table: str) -> dict[str, str]:
        types = self._column_types.get(table)
        if types is None:
            rows = self._call(
                f"describe {table}",
                lambda: self._client().execute(
                    "SELECT name, type FROM system.columns WHERE database = %(d)s AND table = %(t)s",
                    {"d": self.database, "t": table},
                    settings={"use_numpy": False},
                ),
            )
            if not rows:
                raise StorageError(f"insert into {table}: no such table in {self.database} (ensure_schema first?)")
            types = self._column_types[table] = {str(n): str(t) for n, t in rows}
        return types

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None, *, readonly: bool = False) -> pd.DataFrame:
        settings: dict[str, Any] = {"use_numpy": True}
        if readonly:
            with parse_with_chdb() as parse:  # 18.16 cannot parse without running: modern ClickHouse parses
                check_read_only(sql, parse)
            settings["readonly"] = 1  # per query: the server refuses writes, DDL, SET, SYSTEM, table functions
        text, bound = _bind(sql, params or {})
        if not bound:  # nothing to substitute: the driver leaves the text alone, '%' included
            text = sql

        def run() -> tuple[Any, list[tuple[str, str]]]:
            return self._client().execute(text, bound or None, columnar=True, with_column_types=True, settings=settings)

        data, columns = self._call("query", run)
        if not columns:
            return pd.DataFrame()
        if not data:
            data = [[] for _ in columns]
        return pd.DataFrame({name: _column(values, type_) for (name, type_), values in zip(columns, data, strict=True)})

    def _forget(self, client: Any) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        try:
            client.disconnect()
        except Exception:  # closing a broken connection
            log.debug("ClickHouse disconnect failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            self._forget(client)
        self._local = threading.local()
