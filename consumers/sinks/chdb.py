"""chdb, the embedded ClickHouse: the same tables and SQL as a ClickHouse server, in-process.

chdb locks its folder for the whole life of a session, so processes take turns: :meth:`hold`
takes an ``flock`` on ``<folder>.lock`` (within the caller's timeout, see :mod:`expstream.locking`),
opens the session, and closes it again when the outermost ``hold`` ends. A writer process never
imports chdb; readers and the consumer do.

Read-only queries (``expstream sql``) set ``readonly = 1`` on the session. chdb cannot take that back
(``SET readonly = 0`` is refused in readonly mode, as it should be), so the next write in the same hold
reopens the session (~50 ms, the folder lock stays held): the materializer shares this store.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from expstream.consumers.sinks.base import DATA_ERROR_CODES, TableStore, ddl_statements
from expstream.consumers.sinks.columns import arrow_batch
from expstream.consumers.sinks.params import format_param
from expstream.consumers.sinks.readonly import check_read_only
from expstream.exceptions import LockTimeout, SinkDataError, StorageError
from expstream.locking import default_lock_timeout, flock, open_lock_file, try_flock

if TYPE_CHECKING:  # query_df's frames come from chdb, which imports pandas then: nothing here loads it
    import pandas as pd

__all__ = ["ChdbTables"]


#: chdb's errors carry the ClickHouse error code in their text: ``Code: 6. DB::Exception: ...``
_CODE = re.compile(r"\bCode: (\d+)\.")
#: a ``DateTime`` column as ``DESCRIBE`` names it, its time zone in group 1 (``DateTime64`` is already a timestamp)
_DATETIME = re.compile(r"(?:Nullable\()?DateTime(?:\('([^']+)'\))?\)?")


#: an insert of more than twice this many rows (a backlog: a script logged 1M points before the warm materializer
#: was up) goes in as statements of this many rows: the engine's working memory of one statement is then reused
#: by the next instead of being faulted in for the whole batch at once (1M points as one statement: 0.27-0.29 s,
#: ~84,000 page faults; as four: 0.21-0.25 s, ~24,000; as eight: 0.31-0.44 s; measured with pandas frames through
#: ``Python()``, and the same holds for Arrow streams). Smaller batches stay one statement: more, smaller parts made
#: the next read of them slower (bench_warm e2e_warm: read 0.35 -> 0.42 s)
CHUNK_ROWS = 262_144


#: an insert neither collapses twins within its block (``optimize_on_insert``: reads already deal with twins
#: across blocks, which a replay writes, so they deal with these too, and merges remove both) nor spreads over
#: threads: 1M points went in 0.21-0.25 s instead of 0.45-0.54 s with the defaults (2 cores, one run of 4)
_INSERT_SETTINGS = "optimize_on_insert = 0, max_threads = 1"


class ChdbTables(TableStore):
    def __init__(self, folder: Path, database: str = "expstream") -> None:
        try:
            import chdb.session  # noqa: F401 - fail early with a clear message
        except ImportError as exc:
            raise StorageError("the embedded default needs chdb: pip install chdb-core") from exc
        self.folder = Path(folder)
        self.database = database
        self._session: Any = None
        self._depth = 0
        self._lock_fd: int | None = None
        self._thread_lock = threading.RLock()
        self._schema_ready = False
        self._readonly = False  # whether the open session has readonly = 1 (set for SQL from outside)

    @contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        start = time.monotonic()
        if not self._thread_lock.acquire(blocking=False):  # another thread of this process holds it
            limit = default_lock_timeout() if timeout is None else max(0.0, timeout)
            if not self._thread_lock.acquire(timeout=limit):
                raise LockTimeout(f"the embedded database {self.folder} stayed in use by another thread ({limit:g} s)")
        try:
            if self._depth == 0:
                self._open(None if timeout is None else max(0.0, timeout - (time.monotonic() - start)))
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._close()
        finally:
            self._thread_lock.release()

    def _open(self, timeout: float | None) -> None:
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        lock_path = Path(str(self.folder) + ".lock")
        fd = open_lock_file(lock_path)
        try:  # other processes wait here instead of failing in chdb, but never past the deadline
            if not try_flock(fd):
                self._announce_wait()
                flock(fd, lock_path, timeout=timeout)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd
        try:
            self._start_session()
            if not self._schema_ready:
                if not self._has_every_table():
                    self._run_ddl()
                self._schema_ready = True
            self._session.query(f"USE {self.database}")
        except Exception as exc:
            self._close()
            raise StorageError(f"cannot open the embedded database at {self.folder}: {exc}") from exc

    @property
    def wanted_path(self) -> Path:
        """Touched by a process that found the folder locked and waits for it (see :meth:`wanted_since`)."""
        return Path(str(self.folder) + ".wanted")

    def _announce_wait(self) -> None:
        try:
            self.wanted_path.touch()
        except OSError:  # only a courtesy to a long-lived holder (the UI); the wait works without it
            pass

    def wanted_since(self, since: float) -> bool:
        """Whether another process started waiting for the folder after ``since`` (a ``time.time()``).

        A long-lived process that keeps the folder open between requests (``expstream ui``) asks this
        after every use and lets go at once when someone waits. File times are coarse (a clock tick),
        so a wait that began within ~10 ms before ``since`` counts too: at worst one needless reopen."""
        try:
            return self.wanted_path.stat().st_mtime > since - 0.01
        except OSError:
            return False

    def _start_session(self) -> None:
        from chdb import session as chs

        self._session = chs.Session(str(self.folder))
        self._readonly = False

    def _writable(self) -> None:
        """Reopen a session that a read-only query left with readonly = 1 (called inside ``hold``)."""
        if self._readonly:
            self._session.close()
            self._session = None
            try:
                self._start_session()
                self._session.query(f"USE {self.database}")
            except Exception as exc:
                self._close()
                raise StorageError(f"cannot reopen the embedded database at {self.folder}: {exc}") from exc

    def _read_only(self) -> None:
        if not self._readonly:
            self._session.query("SET readonly = 1")
            self._readonly = True

    def _parse(self, sql: str, params: Mapping[str, str] | None) -> str:
        bound = {k: format_param(v) for k, v in (params or {}).items()}
        return bytes(self._session.query(sql, "TSVRaw", params=bound).bytes()).decode()

    def _close(self) -> None:
        if self._session is not None:
            try:
                self._session.close()
            finally:
                self._session = None
                self._readonly = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _has_every_table(self) -> bool:
        """Whether every table of the DDL exists already. Its statements are all ``CREATE TABLE IF NOT EXISTS``,
        which then change nothing, and running them costs ~50 ms, one query on ``system.tables`` ~2 ms: a warm
        materializer that restarts on a home (after its idle exit) is ready that much sooner."""
        wanted = _ddl_tables()
        if wanted is None:
            return False
        found = self._parse("SELECT name FROM system.tables WHERE database = {d:String}", {"d": self.database})
        return wanted <= set(found.splitlines())

    def _run_ddl(self) -> None:
        self._writable()
        self._session.query(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._session.query(f"USE {self.database}")
        for statement in ddl_statements():
            self._session.query(statement)

    def ensure_schema(self) -> None:
        with self.hold():
            self._run_ddl()

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Every batch goes in as Arrow IPC through chdb's streaming insert, dictionary-encoded text as Arrow
        dictionaries (:mod:`expstream.consumers.sinks.columns`): no pandas, so the warm materializer never loads
        it, and ~3 ms a statement where the ``Python()`` table function cost ~6 ms (what a ``sync()`` after one
        point pays for each table it writes)."""
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise StorageError(f"insert into {table}: columns have different lengths {sorted(lengths)}")
        rows = lengths.pop() if lengths else 0
        if not rows:
            return
        try:  # what cannot become Arrow is the columns' fault: the same ones would fail again (dead-lettered)
            batch = arrow_batch(columns)
        except (SinkDataError, pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise SinkDataError(f"insert into {table} failed: {exc}") from exc
        step = CHUNK_ROWS if rows > 2 * CHUNK_ROWS else rows
        into = f"INSERT INTO {table} ({', '.join(columns)}) SETTINGS {_INSERT_SETTINGS}"
        with self.hold():
            self._writable()
            try:
                for start in range(0, rows, step):
                    payload = _ipc_stream(batch.slice(start, step))
                    with self._session.send_insert(into, "ArrowStream") as stream:
                        stream.append(memoryview(payload))
                        stream.finish()
            except Exception as exc:
                code = _CODE.search(str(exc))
                error = SinkDataError if code and int(code.group(1)) in DATA_ERROR_CODES else StorageError
                raise error(f"insert into {table} failed: {exc}") from exc

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None, *, readonly: bool = False) -> pd.DataFrame:
        frame: pd.DataFrame = self._query(sql, params, readonly, "DataFrame")  # chdb imports pandas for it
        return frame

    def query_rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows through Arrow, not pandas: the warm materializer reads its progress this way."""
        payload = self._query(sql, params, False, "ArrowStream").bytes()
        if not payload:  # no stream at all, not even a schema: no rows
            return []
        with pa.ipc.open_stream(pa.py_buffer(payload)) as stream:
            table = stream.read_all()
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None, *, readonly: bool = False) -> bytes:
        """The rows as Arrow IPC stream bytes, what the warm materializer sends to a reading process: chdb
        writes them straight from its columns, and the reader makes its DataFrame without loading chdb."""
        with self.hold():
            payload = bytes(self._query(sql, params, readonly, "ArrowStream").bytes())
            if not readonly:
                return payload  # the query side's own SQL casts its times to Float64 itself
            return _with_timestamps(payload, self._datetime_columns(sql, params))

    def _datetime_columns(self, sql: str, params: Mapping[str, Any] | None) -> dict[str, str]:
        """The ``DateTime`` columns of a user's query and their time zones. ClickHouse writes ``DateTime``
        to Arrow as plain ``uint32`` with no trace of its type, so ``expstream sql`` would print seconds;
        the types come from ``DESCRIBE`` of the same query (nothing runs). Empty for what ``DESCRIBE``
        cannot wrap (``SHOW``, ``EXISTS``)."""
        try:  # read-only like the query itself: its guard and its parameter binding, in one place
            described = self._query(f"DESCRIBE TABLE ({sql.strip().rstrip(';')})", params, True, "JSONCompact")
        except StorageError:
            return {}
        found: dict[str, str] = {}
        for name, kind, *_ in json.loads(bytes(described.bytes()) or b'{"data": []}')["data"]:
            match = _DATETIME.fullmatch(kind)
            if match:
                found[name] = match.group(1) or "UTC"
        return found

    def _query(self, sql: str, params: Mapping[str, Any] | None, readonly: bool, fmt: str) -> Any:
        bound = {k: format_param(v) for k, v in (params or {}).items()}
        with self.hold():
            if readonly:
                self._read_only()  # first: the parse below then runs under the guard too
                check_read_only(sql, self._parse)
            else:
                self._writable()
            try:
                return self._session.query(sql, fmt, params=bound)
            except Exception as exc:
                raise StorageError(f"query failed: {exc}") from exc

    def close(self) -> None:
        with self._thread_lock:
            self._depth = 0
            self._close()


#: what a statement of the DDL creates, when it is a table (and only then may it be skipped)
_CREATES_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\(")


@functools.cache
def _ddl_tables() -> frozenset[str] | None:
    """The tables the DDL creates, or None when one of its statements does something else (it must then run)."""
    names = set()
    for statement in ddl_statements():
        match = _CREATES_TABLE.match(statement)
        if match is None:
            return None
        names.add(match.group(1))
    return frozenset(names)


def _ipc_stream(batch: pa.RecordBatch) -> pa.Buffer:
    """A record batch as the bytes of one Arrow IPC stream (what chdb's ``ArrowStream`` input reads)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def _with_timestamps(payload: bytes, zones: Mapping[str, str]) -> bytes:
    """The Arrow stream with the ``uint32`` columns named in ``zones`` as second timestamps in that zone."""
    if not zones:
        return payload
    with pa.ipc.open_stream(pa.py_buffer(payload)) as stream:
        table = stream.read_all()
    for index, field in enumerate(table.schema):
        if field.name in zones and pa.types.is_uint32(field.type):
            column = table.column(index).cast(pa.int64()).cast(pa.timestamp("s", tz=zones[field.name]))
            table = table.set_column(index, pa.field(field.name, column.type, field.nullable), column)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())
