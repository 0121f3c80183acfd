"""``expstream replay`` into the real secure services (TLS, passwords) with no secret on its command line."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest
from click.testing import CliRunner

import expstream
from expstream.cli import main
from expstream.config import Settings
from expstream.consumers.sinks.clickhouse import ClickHouseTables
from expstream.credentials import with_secret


def without_secret(url: str, path: str) -> tuple[str, str]:
    """``url`` with its password removed and its path replaced, and that password."""
    parts = urlsplit(url)
    user = parts.username or ""
    netloc = f"{user}@{parts.hostname}:{parts.port}" if user else f"{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, "/" + path, "", "")), unquote(parts.password or "")


def _experiment() -> expstream.Experiment:
    expstream.init("acme/secrets")
    exp = expstream.create_experiment("replayed", params={"p": 1}, upload_source_files=[])
    for i in range(250):
        exp.log_metric("loss", float(i))
    exp.log_artifact(io.BytesIO(b"w" * 10_000), "w.bin")
    exp.stop()
    exp.sync(timeout=120)
    return exp


def _check(exp: expstream.Experiment, tables: ClickHouseTables, settings: Settings, s3_url: str) -> None:
    from expstream.consumers.sinks.s3 import S3ObjectStore
    from expstream.query.reader import Reader

    rebuilt = Reader(tables, S3ObjectStore.from_url(s3_url, ca=settings.s3_ca))
    e = exp.internal_id
    assert rebuilt.numeric_values(e, ["loss"])["loss"].tolist() == [float(i) for i in range(250)]
    assert rebuilt.parameters(e) == {"p": 1.0}
    assert rebuilt.blob(rebuilt.artifacts(e)["w.bin"][0]) == b"w" * 10_000


@pytest.mark.usefixtures("secure_consumer")
def test_replay_into_secure_targets_with_secrets_from_a_file_and_the_environment(
    secure_cluster: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = _experiment()
    assert secure_cluster.clickhouse is not None and secure_cluster.s3 is not None
    tag = tmp_path.name[-12:].replace("-", "").replace("_", "").lower()
    clickhouse_url, password = without_secret(secure_cluster.clickhouse.get_secret_value(), f"db_r{tag}")
    s3_url, secret_key = without_secret(secure_cluster.s3.get_secret_value(), f"bucket-r{tag}")
    assert password and secret_key  # the secure services really want them
    password_file = tmp_path / "clickhouse-password"
    password_file.write_text(password + "\n")
    monkeypatch.setenv("EXPSTREAM_REPLAY_S3_SECRET_KEY", secret_key)
    args = ["replay", "--clickhouse", clickhouse_url, "--clickhouse-password-file", str(password_file), "--s3", s3_url]
    assert password not in " ".join(args) and secret_key not in " ".join(args)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert password not in result.output and secret_key not in result.output
    _check(exp, ClickHouseTables.from_url(with_secret(clickhouse_url, password), ca=secure_cluster.clickhouse_ca),
           secure_cluster, with_secret(s3_url, secret_key))  # fmt: skip


@pytest.mark.usefixtures("secure_consumer")
def test_replay_without_target_options_rebuilds_the_configured_services(secure_cluster: Settings) -> None:
    exp = _experiment()
    assert secure_cluster.clickhouse is not None and secure_cluster.s3 is not None
    result = CliRunner().invoke(main, ["replay"])
    assert result.exit_code == 0, result.output
    assert "replayed" in result.output
    url = secure_cluster.clickhouse.get_secret_value()
    _check(exp, ClickHouseTables.from_url(url, ca=secure_cluster.clickhouse_ca), secure_cluster,
           secure_cluster.s3.get_secret_value())  # fmt: skip
