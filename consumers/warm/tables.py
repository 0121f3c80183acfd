"""The query side's table store over the warm materializer: SQL goes there, Arrow comes back.

A reading process (a notebook, a script that logs and then reads, ``expstream sql``) so needs pyarrow and
pandas but never chdb: the daemon runs the parameterized SQL on the chdb it already holds and answers with
Arrow IPC stream bytes, which become the DataFrame here without another copy of the engine in memory.
Parameters travel as data and are bound by the daemon's chdb store exactly as in-process (``{name:Type}``
placeholders, never pasted into the text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from expstream.consumers.sinks.base import TableStore
from expstream.consumers.warm.client import WarmClient
from expstream.exceptions import StorageError

__all__ = ["WarmTables", "arrow_to_frame"]


def arrow_to_frame(payload: bytes) -> pd.DataFrame:
    """An Arrow IPC stream as a DataFrame (zero-copy for the numeric columns without nulls)."""
    with pa.ipc.open_stream(pa.py_buffer(payload)) as stream:
        table = stream.read_all()
    return table.to_pandas()


class WarmTables(TableStore):
    """Reads through the home's warm materializer; it alone writes the tables."""

    database = "expstream"

    def __init__(self, client: WarmClient) -> None:
        self.client = client

    def ensure_schema(self) -> None:
        """The daemon checks the tables when it opens them: asking it is enough."""
        self.client.ping()

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        raise StorageError(f"insert into {table}: the embedded tables are written by the warm materializer only")

    def query_df(self, sql: str, params: Mapping[str, Any] | None = None, *, readonly: bool = False) -> pd.DataFrame:
        return arrow_to_frame(self.client.query(sql, dict(params or {}), readonly=readonly))

    def close(self) -> None:
        self.client.close()
