"""`expstream sql` is read-only on the embedded default (chdb): hostile statements through the real CLI.

Each statement of the catalogue runs as ``python -m expstream sql ...`` in a subprocess; it must exit
non-zero with one ``Error: ...`` line on stderr and no traceback, and afterwards every table still holds
exactly its rows and no file was written. The same catalogue runs against a ClickHouse 18.16 server in
``tests/distributed/test_sql_readonly_server.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

#: (statement, a fragment its error must contain); ``{out}`` is a folder where nothing may appear
HOSTILE: list[tuple[str, str]] = [
    ("DROP TABLE experiments", "read-only SQL"),
    ("TRUNCATE TABLE points_numeric", "read-only SQL"),
    ("INSERT INTO experiments SELECT * FROM experiments", "read-only SQL"),
    ("ALTER TABLE experiments DELETE WHERE 1", "read-only SQL"),
    ("CREATE TABLE evil (a UInt8) ENGINE = Memory", "read-only SQL"),
    ("RENAME TABLE experiments TO gone", "read-only SQL"),
    ("OPTIMIZE TABLE points_numeric FINAL", "read-only SQL"),
    ("SET readonly = 0", "read-only SQL"),
    ("SELECT count() FROM experiments SETTINGS readonly = 0", "readonly"),
    ("SYSTEM SHUTDOWN", "read-only SQL"),
    ("SYSTEM FLUSH LOGS", "read-only SQL"),
    ("KILL QUERY WHERE 1", "read-only SQL"),
    ("USE system", "read-only SQL"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "read-only SQL"),
    ("SELECT file('/etc/passwd')", "read-only SQL"),
    ("SELECT * FROM url('http://127.0.0.1:9/secret', 'LineAsString')", "read-only SQL"),
    ("SELECT * FROM s3('http://127.0.0.1:9/bucket/key', 'LineAsString')", "read-only SQL"),
    ("SELECT * FROM remote('127.0.0.1:9000', system.one)", "read-only SQL"),
    ("SELECT * FROM mysql('127.0.0.1:3306', 'db', 'table', 'user', 'password')", "read-only SQL"),
    ("SELECT * FROM Python(df)", "read-only SQL"),
    ("INSERT INTO FUNCTION file('{out}/written.csv', 'CSV') SELECT 1", "read-only SQL"),
    ("SELECT short_id FROM experiments INTO OUTFILE '{out}/outfile.csv'", "INTO OUTFILE"),
    ("SELECT 'INTO OUTFILE' AS x INTO OUTFILE '{out}/quoted.csv' FORMAT CSV", "INTO OUTFILE"),
    ("SHOW TABLES INTO OUTFILE '{out}/tables.txt'", "INTO OUTFILE"),
    ("SELECT 1; DROP TABLE experiments", "Multi-statements"),
    ("SELECT 1; SELECT 2", "Multi-statements"),
    ("SELEC short_id FROM experiments", "Error: "),
    ("SELECT FROM WHERE", "Error: "),
    ("", "Empty query"),
]

#: exact row counts of the data below, read through the CLI itself
COUNTS_SQL = (
    "SELECT (SELECT count() FROM experiments) AS experiments, (SELECT count() FROM points_numeric) AS points, "
    "(SELECT count() FROM parameters) AS parameters, (SELECT count() FROM tags) AS tags"
)
COUNTS = {"experiments": 2, "points": 200, "parameters": 2, "tags": 2}

#: the README's SQL examples (and a few more reads): they must keep working
README_QUERIES = [
    "SELECT short_id, name, owner FROM experiments ORDER BY number",
    "SELECT channel, count() AS points, max(y) FROM points_numeric FINAL GROUP BY channel",
    "SELECT channel, argMax(y, x) AS last\nFROM points_numeric FINAL\n"
    "WHERE experiment_id = (SELECT experiment_id FROM experiments WHERE short_id = 'SAN-1')\n"
    "  AND namespace = 'user'\nGROUP BY channel",
]

MAKE_DATA = """
import expstream
expstream.init("acme/sandbox")
for name in ("first", "second"):
    exp = expstream.create_experiment(
        name, params={"lr": 0.1}, tags=["resnet"], upload_source_files=[], send_hardware_metrics=False,
        upload_stdout=False, upload_stderr=False,
    )
    for i in range(100):
        exp.log_metric("loss", 1.0 / (i + 1))
    exp.stop()
    exp.sync(timeout=120)
"""


def run_cli(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "expstream", *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=180
    )


def counts(env: Mapping[str, str], cwd: Path) -> dict[str, int]:
    done = run_cli("sql", COUNTS_SQL, "--format", "json", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {k: int(v) for k, v in json.loads(done.stdout)[0].items()}


def assert_refused(statement: str, expected: str, env: Mapping[str, str], cwd: Path, out: Path) -> None:
    """Refused with one error line and no traceback; the data and the folder ``out`` untouched."""
    done = run_cli("sql", statement.format(out=out), env=env, cwd=cwd)
    assert done.returncode != 0, (statement, done.stdout)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), (statement, done.stderr)
    assert expected in lines[0], (statement, lines[0])
    assert "Traceback" not in done.stdout + done.stderr and done.stdout == "", (statement, done.stdout)
    assert list(out.iterdir()) == [], statement
    assert counts(env, cwd) == COUNTS, statement  # also: the engine still answers


def check_reads(env: Mapping[str, str], cwd: Path) -> None:
    """The README's examples and other plain reads still work, with the engine's read-only guard on."""
    listed = run_cli("sql", README_QUERIES[0], env=env, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[:3] == ["short_id", "name", "owner"] and "SAN-2" in listed.stdout
    per_channel = run_cli("sql", README_QUERIES[1], "--format", "csv", env=env, cwd=cwd)
    assert per_channel.returncode == 0, per_channel.stderr
    assert per_channel.stdout.splitlines() == ["channel,points,max(y)", "loss,200,1.0"]
    last = run_cli("sql", README_QUERIES[2], "--format", "json", env=env, cwd=cwd)
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout) == [{"channel": "loss", "last": 0.01}]
    shown = run_cli("sql", "SHOW TABLES", "--format", "csv", env=env, cwd=cwd)
    assert shown.returncode == 0 and "experiments" in shown.stdout.split(), shown.stderr
    guard = run_cli(
        "sql", "SELECT value FROM system.settings WHERE name = 'readonly'", "--format", "csv", env=env, cwd=cwd
    )
    assert guard.returncode == 0 and guard.stdout.split() == ["value", "1"], guard.stderr


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """One embedded home with two experiments, shared by the catalogue (building it takes seconds)."""
    folder = tmp_path_factory.mktemp("sql")
    names = ("EXPSTREAM_KAFKA", "EXPSTREAM_CLICKHOUSE", "EXPSTREAM_S3", "NEPTUNE_BACKEND", "NEPTUNE_PROJECT")
    env = {k: v for k, v in os.environ.items() if k not in names} | {"EXPSTREAM_HOME": str(folder / "home")}
    made = subprocess.run([sys.executable, "-c", MAKE_DATA], env=env, cwd=folder, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert counts(env, folder) == COUNTS
    return env, folder


@pytest.mark.parametrize(("statement", "expected"), HOSTILE, ids=[s or "empty" for s, _ in HOSTILE])
def test_hostile_statement_is_refused_on_chdb(
    embedded: tuple[dict[str, str], Path], tmp_path: Path, statement: str, expected: str
) -> None:
    env, folder = embedded
    assert_refused(statement, expected, env, folder, tmp_path)


def test_plain_reads_still_work_on_chdb(embedded: tuple[dict[str, str], Path]) -> None:
    check_reads(*embedded)


def test_the_materializer_writes_again_after_a_read_only_query(tmp_path: Path) -> None:
    """One hold, read-only then writes: the session is reopened read-write, and reads see the write."""
    from expstream.consumers.sinks.chdb import ChdbTables
    from expstream.exceptions import StorageError
    from tests.contract.test_table_store import property_rows

    tables = ChdbTables(tmp_path / "chdb")
    try:
        with tables.hold():
            with pytest.raises(StorageError, match="read-only SQL"):
                tables.query_df("INSERT INTO properties SELECT * FROM properties", readonly=True)
            readonly = tables.query_df("SELECT value FROM system.settings WHERE name = 'readonly'", readonly=True)
            assert readonly["value"].tolist() == ["1"]
            tables.insert("properties", property_rows(["v"]))
            assert tables.query_df("SELECT count() AS n FROM properties")["n"].tolist() == [1]
            assert tables.query_df("SELECT count() AS n FROM properties", readonly=True)["n"].tolist() == [1]
            writable = tables.query_df("SELECT value FROM system.settings WHERE name = 'readonly'")
            assert writable["value"].tolist() == ["0"]
    finally:
        tables.close()


#: reads that look like refused ones to a keyword filter, or have literals where INTO OUTFILE would be
LOOKALIKES = [
    "SELECT 'INTO OUTFILE' AS a, 'DROP TABLE experiments; SET readonly = 0' AS b",
    "SELECT toString(file) AS f FROM (SELECT 1 AS file)",
    "SELECT number FROM system.numbers LIMIT 3",
    "SELECT key FROM properties UNION ALL SELECT 'x' LIMIT 5",
    "WITH 2 AS two SELECT two * count() AS n FROM properties WHERE key IN (SELECT key FROM properties)",
    "SHOW TABLES LIKE 'point%'",
    "DESCRIBE TABLE properties",
    "EXISTS TABLE properties",
    "SHOW CREATE TABLE properties",
    "SELECT 1 AS one;",
]


@pytest.mark.parametrize("statement", LOOKALIKES)
def test_reads_that_look_hostile_are_not_refused(tmp_path: Path, statement: str) -> None:
    from expstream.consumers.sinks.chdb import ChdbTables

    tables = ChdbTables(tmp_path / "chdb")
    try:
        assert not tables.query_df(statement, readonly=True).empty
    finally:
        tables.close()


#: what chdb's session-wide readonly = 1 refuses by itself (READONLY), checked on chdb 26.9
CHDB_ENGINE_REFUSES = [
    "DROP TABLE properties",
    "TRUNCATE TABLE properties",
    "INSERT INTO properties SELECT * FROM properties",
    "ALTER TABLE properties DELETE WHERE 1",
    "CREATE TABLE evil (a UInt8) ENGINE = Memory",
    "RENAME TABLE properties TO gone",
    "OPTIMIZE TABLE properties FINAL",
    "SET readonly = 0",
    "SELECT count() FROM properties SETTINGS readonly = 0",
    "SYSTEM SHUTDOWN",
    "SYSTEM FLUSH LOGS",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/secret', 'LineAsString')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM mysql('127.0.0.1:3306', 'db', 'table', 'user', 'password')",
    "INSERT INTO FUNCTION file('{out}/written.csv', 'CSV') SELECT 1",
]


def test_the_chdb_session_itself_refuses_under_readonly(tmp_path: Path) -> None:
    """The engine's guard on its own, without the parser check in front (which refuses these first)."""
    from expstream.consumers.sinks.chdb import ChdbTables
    from tests.contract.test_table_store import property_rows

    tables = ChdbTables(tmp_path / "chdb")
    out = tmp_path / "out"
    out.mkdir()
    try:
        tables.insert("properties", property_rows(["a", "b"]))
        with tables.hold():
            tables.query_df("SELECT 1", readonly=True)  # turns the session read-only
            for statement in CHDB_ENGINE_REFUSES:
                with pytest.raises(Exception, match="READONLY") as refused:
                    tables._session.query(statement.format(out=out))
                assert "readonly mode" in str(refused.value), statement
        assert tables.query_df("SELECT count() AS n FROM properties")["n"].tolist() == [2]
        assert list(out.iterdir()) == []
    finally:
        tables.close()


def test_times_print_as_times_and_integers_as_integers(embedded: tuple[dict[str, str], Path]) -> None:
    """ClickHouse sends ``DateTime`` through Arrow as a bare ``uint32``: the CLI still prints a time."""
    env, folder = embedded
    query = "SELECT toDateTime(0) AS t, toDateTime(86400, 'Asia/Tokyo') AS tokyo, toUInt32(7) AS u"
    as_csv = run_cli("sql", query, "--format", "csv", env=env, cwd=folder)
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines() == ["t,tokyo,u", "1970-01-01 00:00:00+00:00,1970-01-02 09:00:00+09:00,7"]
    as_json = run_cli("sql", query, "--format", "json", env=env, cwd=folder)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [
        {"t": "1970-01-01T00:00:00.000Z", "tokyo": "1970-01-02T00:00:00.000Z", "u": 7}
    ]
