"""What only chdb needs beyond the table-store contract (tests/contract): one folder, reopened, shared by
processes that take turns on it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from expstream.consumers.sinks.chdb import ChdbTables
from tests.contract.test_table_store import property_rows


@pytest.fixture
def tables(tmp_path: Path) -> Iterator[ChdbTables]:
    store = ChdbTables(tmp_path / "chdb")
    yield store
    store.close()


def test_a_new_object_on_the_same_folder_sees_the_data(tables: ChdbTables, tmp_path: Path) -> None:
    tables.insert("properties", property_rows(["persisted"]))
    tables.close()
    again = ChdbTables(tmp_path / "chdb")
    try:
        assert again.query_df("SELECT value FROM properties")["value"].tolist() == ["persisted"]
    finally:
        again.close()


def test_opening_a_folder_that_has_every_table_runs_no_ddl(
    tables: ChdbTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm materializer restarting on a home skips the ~50 ms of DDL; a missing table brings it back."""
    tables.insert("properties", property_rows(["kept"]))
    tables.close()
    ran: list[int] = []
    run_ddl = ChdbTables._run_ddl
    monkeypatch.setattr(ChdbTables, "_run_ddl", lambda self: (ran.append(1), run_ddl(self))[1])
    again = ChdbTables(tmp_path / "chdb")
    try:
        assert again.query_df("SELECT value FROM properties")["value"].tolist() == ["kept"]
        assert ran == []
        again.query_df("DROP TABLE tags")
    finally:
        again.close()
    third = ChdbTables(tmp_path / "chdb")
    try:
        assert third.query_df("SELECT count() AS n FROM tags")["n"].tolist() == [0]  # made again
        assert ran == [1]
    finally:
        third.close()


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
    assert got_in >= released - 0.05  # we got in only after the child let go
    assert rows["key"].tolist() == ["from-child"]  # and saw what it wrote
    assert "seen=1" in out  # the child, reopening after us, saw our row


def test_a_batch_larger_than_one_statement_goes_in_whole(tables: ChdbTables, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past twice ``CHUNK_ROWS`` an insert runs as statements of ``CHUNK_ROWS`` rows: every row lands once, in order
    of its columns, the dictionary-encoded ones included (a small size here stands for 262,144)."""
    import numpy as np
    import pandas as pd

    from expstream.consumers.sinks import chdb as module
    from expstream.consumers.sinks.columns import Coded

    monkeypatch.setattr(module, "CHUNK_ROWS", 7)
    n = 30  # more than twice CHUNK_ROWS: five statements, 7 + 7 + 7 + 7 + 2
    channels = Coded((np.arange(n) % 2).astype(np.int32), ["a", "b"])  # what the materializer sends
    one = pd.Categorical.from_codes(np.zeros(n, dtype=np.int32), categories=pd.Index(["e"]))  # what callers may
    tables.insert(
        "points_numeric",
        {
            "experiment_id": one, "namespace": pd.Categorical(["user"] * n), "channel": channels,
            "generation": np.zeros(n, dtype=np.uint32), "x": np.arange(n, dtype=np.float64),
            "y": np.arange(n, dtype=np.float64) * 2, "ts": np.zeros(n), "session_id": pd.Categorical(["s"] * n),
        },
    )  # fmt: skip
    got = tables.query_df("SELECT channel, x, y FROM points_numeric ORDER BY x")
    assert got["x"].tolist() == [float(i) for i in range(n)]
    assert got["y"].tolist() == [2.0 * i for i in range(n)]
    assert got["channel"].astype(str).tolist() == ["a", "b"] * (n // 2)


def test_a_batch_of_up_to_twice_a_statement_stays_one(tables: ChdbTables, monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to twice ``CHUNK_ROWS`` rows an insert is one statement (one part), whole."""
    from expstream.consumers.sinks import chdb as module

    monkeypatch.setattr(module, "CHUNK_ROWS", 2)
    tables.insert("properties", property_rows(["a", "b", "c", "d"]))
    got = tables.query_df("SELECT value, _part FROM properties ORDER BY value")
    assert got["value"].tolist() == ["a", "b", "c", "d"]
    assert got["_part"].nunique() == 1


def test_columns_that_cannot_become_arrow_are_refused_for_their_data(tables: ChdbTables) -> None:
    """The runner dead-letters the events behind them (it bisects on SinkDataError) instead of retrying forever."""
    import numpy as np

    from expstream.consumers.sinks.columns import Coded
    from expstream.exceptions import SinkDataError

    rows = property_rows(["a", "b"])
    for bad in (Coded(np.array([0, 5], dtype=np.int32), ["only one"]), ["text", 7], [None, None]):
        with pytest.raises(SinkDataError):
            tables.insert("properties", {**rows, "value": bad})
    tables.insert("properties", rows)
    assert tables.query_df("SELECT value FROM properties ORDER BY value")["value"].tolist() == ["a", "b"]
