"""The TableStore contract for ChdbTables: schema, inserts, bound parameters, processes taking turns."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expstream.consumers.materializer import TABLE_COLUMNS, Runs
from expstream.consumers.sinks.base import ddl_statements
from expstream.consumers.sinks.chdb import ChdbTables

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
    "ünïcödé ✓ 日本語 🚀",
    "{e:String} looks like a placeholder",
    "[1,2]",
    "",
]


@pytest.fixture
def tables(tmp_path: Path) -> Iterator[ChdbTables]:
    store = ChdbTables(tmp_path / "chdb")
    yield store
    store.close()


def property_rows(values: list[str], experiment_id: str = "e1") -> dict[str, list[object]]:
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


def table_names() -> set[str]:
    return {m.group(1) for s in ddl_statements() if (m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s))}


def test_ddl_creates_every_table_the_materializer_writes() -> None:
    assert table_names() == set(TABLE_COLUMNS) | {"consumer_progress"}


def test_ensure_schema_is_idempotent_and_keeps_data(tables: ChdbTables) -> None:
    tables.ensure_schema()
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
        described = tables.query_df(f"DESCRIBE TABLE {table}")
        assert tuple(described["name"]) == columns, table


def test_a_new_object_on_the_same_folder_sees_the_data(tables: ChdbTables, tmp_path: Path) -> None:
    tables.insert("properties", property_rows(["persisted"]))
    tables.close()
    again = ChdbTables(tmp_path / "chdb")
    try:
        assert again.query_df("SELECT value FROM properties")["value"].tolist() == ["persisted"]
    finally:
        again.close()


def test_strings_round_trip_through_insert_and_select(tables: ChdbTables) -> None:
    tables.insert("properties", property_rows(TRICKY))
    df = tables.query_df("SELECT value FROM properties ORDER BY seq")
    assert df["value"].tolist() == TRICKY


def test_a_string_parameter_is_bound_exactly(tables: ChdbTables) -> None:
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


def test_an_array_parameter_is_bound_exactly(tables: ChdbTables) -> None:
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
    assert some["key"].tolist() == sorted(f"k{TRICKY.index(v):02d}" for v in ("new\nline", "\\'escaped quote"))
    assert int(empty["n"].iloc[0]) == 0


def test_numeric_parameters(tables: ChdbTables) -> None:
    tables.insert("properties", property_rows(["a", "b", "c"]))
    df = tables.query_df(
        "SELECT key FROM properties WHERE seq >= {lo:UInt64} AND ts < {hi:Float64} ORDER BY key", {"lo": 1, "hi": 2.5}
    )
    assert df["key"].tolist() == ["k01", "k02"]
    arrays = tables.query_df(
        "SELECT {xs:Array(Float64)} AS xs, {ns:Array(UInt32)} AS ns", {"xs": [0.5, -1e300], "ns": [1, 2]}
    )
    assert list(arrays["xs"].iloc[0]) == [0.5, -1e300]
    assert list(arrays["ns"].iloc[0]) == [1, 2]


def test_insert_takes_categoricals_and_numpy_columns(tables: ChdbTables) -> None:
    n = 1000
    channel = Runs()
    channel.extend("loss", 600)
    channel.extend("acc 'quoted'", 400)
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
    df = tables.query_df(
        "SELECT channel, generation, count() AS n, sum(x) AS sx, max(y) AS my FROM points_numeric "
        "WHERE experiment_id = {e:String} GROUP BY channel, generation ORDER BY channel",
        {"e": "e1"},
    )
    assert df["channel"].tolist() == ["acc 'quoted'", "loss"]
    assert df["generation"].tolist() == [1, 0]
    assert df["n"].tolist() == [400, 600]
    assert df["sx"].tolist() == [float(sum(range(600, 1000))), float(sum(range(600)))]
    assert df["my"].tolist() == [999 / 3.0, 599 / 3.0]


def test_hold_is_reentrant_and_closing_twice_is_fine(tables: ChdbTables) -> None:
    with tables.hold(), tables.hold():
        tables.insert("properties", property_rows(["x"]))
    with tables.hold():
        assert tables.query_df("SELECT count() AS n FROM properties")["n"].tolist() == [1]
    tables.close()
    tables.close()
    assert tables.query_df("SELECT count() AS n FROM properties")["n"].tolist() == [1]  # reopens


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from expstream.consumers.sinks.chdb import ChdbTables

    folder, marker = Path(sys.argv[1]), Path(sys.argv[2])
    tables = ChdbTables(folder)
    with tables.hold():
        tables.insert("properties", {"experiment_id": ["e1"], "key": ["from-child"], "value": ["child"],
                                     "removed": [0], "ts": [1.0], "session_id": ["child"], "seq": [1]})
        marker.write_text(str(time.time()))
        time.sleep(1.0)
        released = time.time()
    # then wait for the parent's row: the parent can only insert it once this process let go
    deadline = time.time() + 60
    while time.time() < deadline:
        with tables.hold():
            seen = tables.query_df("SELECT key FROM properties WHERE key = 'from-parent'")
        if len(seen):
            break
        time.sleep(0.05)
    tables.close()
    print(f"released={released!r} seen={len(seen)}")
    """
)


def test_two_processes_take_turns_on_one_folder(tables: ChdbTables, tmp_path: Path) -> None:
    tables.ensure_schema()  # this process had the folder open before: it must let go, and reopen later
    marker = tmp_path / "holding"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "chdb"), str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never took the store"
            time.sleep(0.02)
        waited_from = time.time()
        with tables.hold():  # blocks in flock until the child lets go, instead of failing in chdb
            got_in = time.time()
            rows = tables.query_df("SELECT key, value FROM properties ORDER BY key")
            tables.insert(
                "properties",
                {
                    "experiment_id": ["e1"],
                    "key": ["from-parent"],
                    "value": ["parent"],
                    "removed": [0],
                    "ts": [2.0],
                    "session_id": ["parent"],
                    "seq": [1],
                },
            )
        out, err = child.communicate(timeout=90)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert "Cannot lock file" not in err
    released = float(re.search(r"released=([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    assert got_in >= released - 0.05  # we got in only after the child let go ...
    assert got_in - waited_from >= 0.5  # ... having waited most of its second
    assert rows["key"].tolist() == ["from-child"]  # and saw what it wrote
    assert "seen=1" in out  # the child, reopening after us, saw our row
