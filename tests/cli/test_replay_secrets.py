"""``expstream replay`` never needs a password on its command line (every local user can read it there).

Target URLs come without their secret; the secret comes from a file or an EXPSTREAM_* variable. A URL
that embeds one is refused with an error that says how to pass it instead, and never echoes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from expstream.cli import main
from expstream.consumers.sinks.clickhouse import ClickHouseTables
from expstream.credentials import refuse_secret_in_url, with_secret
from expstream.exceptions import ConfigurationError

SECRET = "s3cr3t-Zq9"


@pytest.mark.parametrize(
    ("args", "option", "how"),
    [
        (
            ["--clickhouse", f"clickhouse://expstream:{SECRET}@127.0.0.1:9000/db", "--s3", "http://key@127.0.0.1:9/b"],
            "--clickhouse",
            "--clickhouse-password-file",
        ),
        (
            ["--clickhouse", "clickhouse://expstream@127.0.0.1:9000/db", "--s3", f"http://key:{SECRET}@127.0.0.1:9/b"],
            "--s3",
            "--s3-secret-file",
        ),
    ],
    ids=["clickhouse", "s3"],
)
def test_a_url_with_a_password_is_refused_without_echoing_it(
    home: Path, args: list[str], option: str, how: str
) -> None:
    result = CliRunner().invoke(main, ["replay", *args])
    assert result.exit_code == 2, result.output  # a usage error, before anything is contacted
    assert f"{option}: the URL contains a password" in result.output and how in result.output
    assert SECRET not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--clickhouse", "clickhouse://u@127.0.0.1:9000/db"],
        ["--s3", "http://k@127.0.0.1:9/b"],
        ["--clickhouse-password-file", "pw.txt"],
        ["--into", "x", "--clickhouse", "clickhouse://u@127.0.0.1:9000/db", "--s3", "http://k@127.0.0.1:9/b"],
    ],
    ids=["clickhouse-only", "s3-only", "file-only", "into-and-cluster"],
)
def test_incomplete_or_mixed_targets_are_usage_errors(home: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["replay", *args])
    assert result.exit_code == 2 and "--clickhouse and --s3" in result.output


def test_an_empty_or_missing_password_file_is_a_usage_error(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    for path, problem in ((empty, "is empty"), (tmp_path / "missing", "cannot read")):
        result = CliRunner().invoke(
            main,
            ["replay", "--clickhouse", "clickhouse://u@127.0.0.1:9000/db", "--s3", "http://k@127.0.0.1:9/b",
             "--clickhouse-password-file", str(path)],
        )  # fmt: skip
        assert result.exit_code == 2 and problem in result.output and str(path) in result.output


@pytest.mark.parametrize("secret", [SECRET, "p@ss:w/rd?#%", "with space"])
def test_a_secret_is_put_into_the_url_in_memory_only(secret: str) -> None:
    url = with_secret("clickhouses://expstream@127.0.0.1:9440/db", secret)
    tables = ClickHouseTables.from_url(url)
    assert (tables.user, tables._password, tables.database, tables.secure) == ("expstream", secret, "db", True)
    assert secret not in repr(tables)
    assert with_secret("clickhouse://127.0.0.1:9000/db", None) == "clickhouse://127.0.0.1:9000/db"


def test_urls_without_passwords_are_accepted() -> None:
    for url in ("clickhouse://u@h:9000/db", "clickhouse://h:9000/db", "https://key@h:9/b", "clickhouse://u:@h/db"):
        refuse_secret_in_url(url, "--x", "somehow")
    with pytest.raises(ConfigurationError, match="somehow"):
        refuse_secret_in_url("https://key:secret@h:9/b", "--x", "somehow")
