"""Fresh databases and buckets on the session's servers (the ``services`` fixture), dropped at the end."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest


def _with_path(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _drop_database(url: str) -> None:
    from clickhouse_driver import Client

    parts = urlsplit(url)
    client = Client(parts.hostname, port=parts.port, user=parts.username or "default", password=parts.password or "")
    try:
        client.execute(f"DROP DATABASE IF EXISTS `{parts.path.strip('/')}`")
    finally:
        client.disconnect()


def _drop_bucket(url: str, ca: Path | None) -> None:
    from expstream.consumers.sinks.s3 import S3ObjectStore

    client = S3ObjectStore.from_url(url, ca=ca)._client
    bucket = urlsplit(url).path.strip("/")
    if client.bucket_exists(bucket):
        for item in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, item.object_name)
        client.remove_bucket(bucket)


@pytest.fixture(scope="session")
def new_clickhouse_url(services: dict[str, Any]) -> Iterator[Callable[[], str]]:
    """``new_clickhouse_url()``: the session's ClickHouse with a database of its own (created by ensure_schema)."""
    made: list[str] = []

    def new() -> str:
        made.append(_with_path(services["env"]["EXPSTREAM_CLICKHOUSE"], f"expstream_test_{secrets.token_hex(6)}"))
        return made[-1]

    yield new
    for url in made:
        _drop_database(url)


@pytest.fixture(scope="session")
def s3_ca(services: dict[str, Any]) -> Path | None:
    """The CA bundle of the session's S3 server (it speaks https), if it has one."""
    ca = services["env"].get("EXPSTREAM_S3_CA")
    return Path(ca) if ca else None


@pytest.fixture(scope="session")
def new_s3_url(services: dict[str, Any], s3_ca: Path | None) -> Iterator[Callable[[], str]]:
    """``new_s3_url()``: the session's S3 server with a bucket of its own (created by the adapter)."""
    made: list[str] = []

    def new() -> str:
        made.append(_with_path(services["env"]["EXPSTREAM_S3"], f"expstream-test-{secrets.token_hex(6)}"))
        return made[-1]

    yield new
    for url in made:
        _drop_bucket(url, s3_ca)
