"""`expstream sql` is read-only on a ClickHouse 18.16 server: the catalogue of hostile statements through the CLI.

The statements, data and checks are those of ``tests/cli/test_sql_readonly.py`` (embedded); here the CLI reads
the cluster's database. A second test sends the statements that the server's own ``readonly = 1`` must refuse
straight to the server, without expstream's parser check in front, so that guard is verified on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from expstream.config import Settings
from tests.cli.test_sql_readonly import COUNTS, HOSTILE, MAKE_DATA, assert_refused, check_reads, counts

#: what the server's per-query readonly = 1 refuses by itself (code 164, READONLY), verified on 18.16
ENGINE_REFUSES = [
    "DROP TABLE experiments",
    "TRUNCATE TABLE points_numeric",
    "INSERT INTO experiments SELECT * FROM experiments",
    "ALTER TABLE experiments DELETE WHERE 1",
    "CREATE TABLE evil (a UInt8) ENGINE = Memory",
    "RENAME TABLE experiments TO gone",
    "OPTIMIZE TABLE points_numeric FINAL",
    "SET readonly = 0",
    "SELECT count() FROM experiments SETTINGS readonly = 0",
    "SYSTEM FLUSH LOGS",
    "SELECT * FROM file('/etc/passwd', 'TSV', 'line String')",
    "SELECT * FROM url('http://127.0.0.1:9/secret', 'TSV', 'line String')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM mysql('127.0.0.1:3306', 'db', 'table', 'user', 'password')",
    "INSERT INTO FUNCTION file('/tmp/expstream-never-written.csv', 'CSV') SELECT 1",
]


@pytest.fixture
def server_data(cluster: Settings, consumer: object, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Two experiments on the cluster, written by a separate process and materialized by the consumer."""
    env = dict(os.environ)  # the cluster's variables, set by the fixture
    made = subprocess.run([sys.executable, "-c", MAKE_DATA], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert counts(env, tmp_path) == COUNTS
    return env, tmp_path


def test_hostile_statements_are_refused_on_the_server(server_data: tuple[dict[str, str], Path]) -> None:
    env, folder = server_data
    out = folder / "must-stay-empty"
    out.mkdir()
    for statement, expected in HOSTILE:
        assert_refused(statement, expected, env, folder, out)


def test_plain_reads_still_work_on_the_server(server_data: tuple[dict[str, str], Path]) -> None:
    check_reads(*server_data)


def test_the_server_itself_refuses_under_readonly(cluster: Settings, server_data: tuple[dict[str, str], Path]) -> None:
    from clickhouse_driver.errors import ServerException

    from expstream.wiring import server_stores

    statements = list(ENGINE_REFUSES)
    if not os.environ.get("EXPSTREAM_TEST_SERVICES"):  # never on shared services, in case the guard regressed
        statements.append("SYSTEM SHUTDOWN")
    tables, objects = server_stores(cluster)
    try:
        client = tables._client()
        for statement in statements:
            with pytest.raises(ServerException) as refused:
                client.execute(statement, settings={"readonly": 1})
            assert refused.value.code == 164, (statement, refused.value.message)  # READONLY
        assert client.execute("SELECT 1") == [(1,)]
    finally:
        tables.close()
        objects.close()
    assert counts(*server_data) == COUNTS
    assert not Path("/tmp/expstream-never-written.csv").exists()
