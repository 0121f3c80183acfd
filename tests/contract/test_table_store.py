"""The TableStore contract over every adapter in ``expstream.wiring.TABLE_STORES`` (chdb, a ClickHouse 18.16 server).

The server adapter gets a fresh database per test, named in its URL, and drops it afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pytest

from expstream.consumers.materializer import STORE_COLUMNS, TABLE_COLUMNS, Runs
from expstream.consumers.sinks.base import TableStore, ddl_statements
from expstream.exceptions import ConfigurationError, SinkDataError, StorageError
from expstream.wiring import TABLE_STORES, create_table_store

TRICKY = [
    "plain",
    "it's",
    'double "quoted"',
    "back\\slash",
    "\\n is not a newline",
    "ends with a backslash\\",
    "\\'escaped quote",
    "semi;colon; DROP TABLE properties; --",
    "' OR 1=1 --",
    "new\nline",
    "tab\there",
    "carriage\rreturn",
    "nul\0byte",
    "100% %(e)s %s",
    "ünïcödé ✓ 日本語 🚀",
    "{e:String} looks like a placeholder",
    "[1,2]",
    "",
]
STR = pd.Series(["x"]).dtype  # what pandas (and chdb) give a column of str


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> TableStore:
    """A store of ``kind`` on empty storage (a database of its own on the session's server)."""
    if kind == "chdb":
        return create_table_store("chdb", folder=tmp_path / "chdb")
    store = create_table_store("clickhouse", url=request.getfixturevalue("new_clickhouse_url")())
    store.ensure_schema()
    return store


@pytest.fixture(params=TABLE_STORES)
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TableStore]:
    store = make_store(request.param, request, tmp_path)
    yield store
    store.close()
    store.close()  # idempotent


def table_names() -> set[str]:
    return {m.group(1) for s in ddl_statements() if (m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s))}


def property_rows(values: list[str], experiment_id: str = "e1") -> dict[str, list[Any]]:
    n = len(values)
    return {
        "experiment_id": [experiment_id] * n,
        "key": [f"k{i:02d}" for i in range(n)],
        "value": values,
        "removed": [0] * n,
        "ts": [float(i) for i in range(n)],
        "session_id": ["s"] * n,
        "seq": list(range(n)),
    }


def column_types(tables: TableStore, table: str) -> dict[str, str]:
    described = tables.query_df(f"DESCRIBE TABLE {table}")
    return dict(zip(described["name"], described["type"], strict=True))


def sample_value(type_: str, i: int) -> Any:
    """Row ``i`` of a column: a tricky string, or a number that needs the type's whole range."""
    if type_ == "String":
        return TRICKY[i % len(TRICKY)]
    if type_ == "Float64":
        return [0.0, -1.5, 1e300, 1 / 3, 1_700_000_000.123456][i % 5]
    bits = int(type_.removeprefix("UInt"))
    return [0, 1, 2**bits - 1, 7][i % 4]


# --- schema ----------------------------------------------------------------------------------------


def test_ddl_creates_every_table_the_materializer_writes() -> None:
    assert table_names() == set(TABLE_COLUMNS) | {"consumer_progress"}


def test_ensure_schema_is_idempotent_and_keeps_data(tables: TableStore) -> None:
    tables.ensure_schema()
    tables.insert("properties", property_rows(["kept"]))
    tables.ensure_schema()
    with tables.hold():
        tables.ensure_schema()  # also inside an open hold
        shown = set(tables.query_df("SHOW TABLES")["name"])
        kept = tables.query_df("SELECT value FROM properties")
    assert shown == table_names()
    assert kept["value"].tolist() == ["kept"]
    for table, columns in TABLE_COLUMNS.items():
        assert tuple(column_types(tables, table)) == columns + STORE_COLUMNS.get(table, ()), table


# --- inserts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(table_names()))
def test_every_table_round_trips_tricky_values(tables: TableStore, table: str) -> None:
    filled = STORE_COLUMNS.get(table, ())
    types = {c: t for c, t in column_types(tables, table).items() if c not in filled}
    n = len(TRICKY)  # one row per string: distinct keys, so no ReplacingMergeTree merge may drop one
    rows = {c: [sample_value(t, i) for i in range(n)] for c, t in types.items()}
    rows = {c: rows[c] for c in reversed(types)}  # the insert names its columns: any order works
    tables.insert(table, rows)
    order = ", ".join(types)
    df = tables.query_df(f"SELECT {order} FROM {table} ORDER BY {order}")
    assert len(df) == n
    expected = pd.DataFrame(rows)[list(types)].sort_values(list(types), ignore_index=True)
    got = df.sort_values(list(types), ignore_index=True)
    for column, type_ in types.items():
        assert got[column].tolist() == expected[column].tolist(), column
        assert got[column].dtype == (STR if type_ == "String" else np.dtype(type_.lower())), column
    for column in filled:  # filled by the store at insert, by its own clock: now
        stamps = tables.query_df(f"SELECT toUInt32({column}) AS at, toUInt32(now()) AS now FROM {table}")
        assert len(stamps) == n
        assert all(0 <= now - at < 600 for at, now in zip(stamps["at"], stamps["now"], strict=True)), column


def test_insert_takes_categoricals_and_numpy_columns(tables: TableStore) -> None:
    n = 1000
    channel = Runs()
    channel.extend("loss", 600)
    channel.extend("acc 'quoted'\\;ü", 400)
    experiment = Runs()
    experiment.extend("e1", n)
    generation = Runs()
    generation.extend(0, 600)
    generation.extend(1, 400)
    xs = np.arange(n, dtype=np.float64)
    tables.insert(
        "points_numeric",
        {
            "experiment_id": experiment.build(),
            "namespace": pd.Categorical(["user"] * n),
            "channel": channel.build(),
            "generation": generation.build(),
            "x": xs,
            "y": xs / 3.0,
            "ts": xs + 0.5,
            "session_id": pd.Categorical(["s"] * n),
        },
    )
    tables.insert("points_text", {"experiment_id": np.array(["e1"]), "namespace": pd.Series(["user"]),
                                  "channel": ("t",), "generation": np.array([3], dtype=np.int64), "x": [1],
                                  "y": pd.array(["text"]), "ts": np.array([1], dtype=np.int32),
                                  "session_id": ["s"]})  # fmt: skip
    df = tables.query_df(
        "SELECT channel, generation, count() AS n, sum(x) AS sx, max(y) AS my FROM points_numeric "
        "WHERE experiment_id = {e:String} GROUP BY channel, generation ORDER BY channel",
        {"e": "e1"},
    )
    assert df["channel"].tolist() == ["acc 'quoted'\\;ü", "loss"]
    assert df["generation"].tolist() == [1, 0]
    assert df["n"].tolist() == [400, 600]
    assert df["sx"].tolist() == [float(sum(range(600, 1000))), float(sum(range(600)))]
    assert df["my"].tolist() == [999 / 3.0, 599 / 3.0]
    text = tables.query_df("SELECT channel, generation, x, y, ts FROM points_text")
    assert text.to_dict("list") == {"channel": ["t"], "generation": [3], "x": [1.0], "y": ["text"], "ts": [1.0]}


def test_an_empty_insert_is_fine(tables: TableStore) -> None:
    tables.insert("properties", property_rows([]))
    assert tables.query_df("SELECT count() AS n FROM properties")["n"].tolist() == [0]


# --- parameters ------------------------------------------------------------------------------------


def test_a_string_parameter_is_bound_exactly(tables: TableStore) -> None:
    tables.insert("properties", property_rows(TRICKY))
    with tables.hold():
        for i, text in enumerate(TRICKY):
            echoed = tables.query_df("SELECT {v:String} AS v, length({v:String}) AS n", {"v": text})
            found = tables.query_df("SELECT key FROM properties WHERE value = {v:String}", {"v": text})
            assert echoed["v"].tolist() == [text], text
            assert int(echoed["n"].iloc[0]) == len(text.encode()), text
            assert found["key"].tolist() == [f"k{i:02d}"], text
        total = tables.query_df("SELECT count() AS n FROM properties")
    assert int(total["n"].iloc[0]) == len(TRICKY)  # nothing was dropped by a value that looks like SQL


def test_an_array_parameter_is_bound_exactly(tables: TableStore) -> None:
    tables.insert("properties", property_rows(TRICKY))
    with tables.hold():
        every = tables.query_df(
            "SELECT key FROM properties WHERE has({vs:Array(String)}, value) ORDER BY key", {"vs": TRICKY}
        )
        echoed = tables.query_df("SELECT {vs:Array(String)} AS vs", {"vs": TRICKY})
        some = tables.query_df(
            "SELECT key FROM properties WHERE has({vs:Array(String)}, value) ORDER BY key",
            {"vs": ["new\nline", "\\'escaped quote", "absent"]},
        )
        empty = tables.query_df("SELECT count() AS n FROM properties WHERE has({vs:Array(String)}, value)", {"vs": []})
    assert every["key"].tolist() == [f"k{i:02d}" for i in range(len(TRICKY))]
    assert list(echoed["vs"].iloc[0]) == TRICKY
    assert isinstance(echoed["vs"].iloc[0], np.ndarray)
    assert some["key"].tolist() == sorted(f"k{TRICKY.index(v):02d}" for v in ("new\nline", "\\'escaped quote"))
    assert int(empty["n"].iloc[0]) == 0


def test_numeric_parameters(tables: TableStore) -> None:
    tables.insert("properties", property_rows(["a", "b", "c"]))
    df = tables.query_df(
        "SELECT key FROM properties WHERE seq >= {lo:UInt64} AND ts < {hi:Float64} ORDER BY key", {"lo": 1, "hi": 2.5}
    )
    assert df["key"].tolist() == ["k01", "k02"]
    big = tables.query_df("SELECT {n:UInt64} AS n, {f:Float64} AS f", {"n": 2**64 - 1, "f": -1e300})
    assert big.to_dict("list") == {"n": [2**64 - 1], "f": [-1e300]}
    assert dict(big.dtypes) == {"n": np.dtype("uint64"), "f": np.dtype("float64")}
    arrays = tables.query_df(
        "SELECT {xs:Array(Float64)} AS xs, {ns:Array(UInt32)} AS ns", {"xs": [0.5, -1e300], "ns": [1, 2]}
    )
    assert list(arrays["xs"].iloc[0]) == [0.5, -1e300]
    assert list(arrays["ns"].iloc[0]) == [1, 2]


def test_sql_text_with_percent_signs_and_placeholder_lookalikes_in_literals(tables: TableStore) -> None:
    tables.insert("properties", property_rows(TRICKY))
    df = tables.query_df(
        "SELECT '100%' AS pct, '{v:String}' AS literal, {v:String} AS v, key FROM properties "
        "WHERE value LIKE '100\\\\%%' OR value = {v:String} ORDER BY key",
        {"v": "it's"},
    )
    assert df.to_dict("list") == {
        "pct": ["100%", "100%"],
        "literal": ["{v:String}", "{v:String}"],
        "v": ["it's", "it's"],
        "key": ["k01", f"k{TRICKY.index('100% %(e)s %s'):02d}"],
    }
    assert tables.query_df("SELECT '5%' AS p")["p"].tolist() == ["5%"]


# --- results ---------------------------------------------------------------------------------------


def test_result_dtypes_are_the_same_on_every_store(tables: TableStore) -> None:
    tables.insert("properties", property_rows(["v1", "v2"]))
    sql = (
        "SELECT key, removed, ts, seq, count() AS n, sum(seq) AS total, max(ts) AS latest, "
        "argMax(value, seq) AS last, groupArray(value) AS values, toString(seq) AS text "
        "FROM properties WHERE experiment_id = {e:String} GROUP BY key, removed, ts, seq ORDER BY key"
    )
    expected = {
        "key": STR, "removed": np.dtype("uint8"), "ts": np.dtype("float64"), "seq": np.dtype("uint64"),
        "n": np.dtype("uint64"), "total": np.dtype("uint64"), "latest": np.dtype("float64"), "last": STR,
        "values": np.dtype(object), "text": STR,
    }  # fmt: skip
    full = tables.query_df(sql, {"e": "e1"})
    empty = tables.query_df(sql, {"e": "absent"})
    assert dict(full.dtypes) == expected
    assert dict(empty.dtypes) == expected  # an empty result keeps its column types
    assert list(full.columns) == list(expected) and list(empty.columns) == list(expected) and empty.empty
    assert [list(v) for v in full["values"]] == [["v1"], ["v2"]]
    assert full["text"].tolist() == ["0", "1"]


def test_a_bad_query_is_a_storage_error(tables: TableStore) -> None:
    with pytest.raises(StorageError):
        tables.query_df("SELECT nope FROM properties")
    with pytest.raises(StorageError):
        tables.query_df("SELECT 1 FROM no_such_table")


def test_an_insert_refused_for_its_data_is_a_sink_data_error_and_writes_nothing(tables: TableStore) -> None:
    """What the consumer dead-letters (after narrowing the batch down) instead of retrying forever."""
    bad = {"experiment_id": ["e1", "e2"], "session_id": ["s", "s"], "host": ["h", "h"], "pid": ["seven", "not a pid"],
           "ts": [1.0, 2.0]}  # fmt: skip
    with pytest.raises(SinkDataError):
        tables.insert("heartbeats", bad)
    tables.insert("heartbeats", {k: v[:1] for k, v in bad.items()} | {"pid": [7]})
    rows = tables.query_df("SELECT experiment_id, pid FROM heartbeats FINAL")
    assert rows["experiment_id"].tolist() == ["e1"] and rows["pid"].tolist() == [7]


# --- the server adapter ------------------------------------------------------------------------------


def test_clickhouse_keeps_the_password_out_of_repr_and_errors(new_clickhouse_url: Callable[[], str]) -> None:
    from expstream.consumers.sinks.clickhouse import ClickHouseTables

    parts = urlsplit(new_clickhouse_url())
    wrong = urlunsplit(parts._replace(netloc=f"default:t0p%3Asecret@{parts.hostname}:{parts.port}"))
    store = ClickHouseTables.from_url(wrong)
    assert "secret" not in repr(store) and "t0p" not in repr(store)
    with pytest.raises(StorageError) as caught:
        store.query_df("SELECT 1")
    assert "secret" not in str(caught.value) and "t0p" not in str(caught.value)
    assert caught.value.__cause__ is not None
    with pytest.raises(ConfigurationError) as bad:
        ClickHouseTables.from_url("http://user:t0psecret@host/db")
    assert "t0psecret" not in str(bad.value)
    with pytest.raises(ConfigurationError):
        ClickHouseTables.from_url(f"clickhouse://{parts.hostname}:{parts.port}/bad-name")


def test_clickhouse_unreachable_server_is_a_storage_error_after_retries() -> None:
    from expstream.consumers.sinks.clickhouse import ClickHouseTables

    store = ClickHouseTables.from_url("clickhouse://default:t0psecret@127.0.0.1:9/expstream")
    with pytest.raises(StorageError) as caught:
        store.query_df("SELECT 1")
    assert "t0psecret" not in str(caught.value)
    assert "t0psecret" not in repr(store)
    store._column_types["heartbeats"] = {"experiment_id": "String", "pid": "UInt32"}  # as if it had been up
    with pytest.raises(StorageError) as down:
        store.insert("heartbeats", {"experiment_id": ["e"], "pid": [1]})
    assert not isinstance(down.value, SinkDataError)  # an outage: retried by the consumer, never dead-lettered


def test_clickhouse_url_forms() -> None:
    from expstream.consumers.sinks.clickhouse import ClickHouseTables

    plain = ClickHouseTables.from_url("clickhouse://alice:pw@db.example:9001/metrics")
    assert (plain.host, plain.port, plain.user, plain.database, plain.secure) == (
        "db.example", 9001, "alice", "metrics", False
    )  # fmt: skip
    tls = ClickHouseTables.from_url("clickhouses://db.example", ca=Path("/etc/ca.pem"))
    assert (tls.port, tls.user, tls.database, tls.secure, tls.ca) == (
        9440, "default", "expstream", True, Path("/etc/ca.pem")
    )  # fmt: skip
