"""The service URLs of distributed mode, parsed in one place.

The settings check them when they load (a typo fails at ``init``, naming the variable, not at the
first insert), and the adapters build their clients from the same parse. Messages never repeat the
URL: it carries a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from expstream.exceptions import ConfigurationError

__all__ = ["S3URL", "ClickHouseURL", "parse_clickhouse_url", "parse_s3_url"]

_CLICKHOUSE_FORM = "expected clickhouse://user:password@host:port/database (or clickhouses://)"
_S3_FORM = "expected http(s)://access_key:secret_key@host:port/bucket"


@dataclass(frozen=True)
class ClickHouseURL:
    host: str
    port: int | None
    user: str
    password: str
    database: str
    secure: bool


@dataclass(frozen=True)
class S3URL:
    endpoint: str  # host[:port], IPv6 hosts bracketed
    bucket: str
    access_key: str
    secret_key: str
    secure: bool
    region: str | None


def _split(url: str) -> tuple[SplitResult, int | None] | None:
    try:
        parts = urlsplit(url)
        return parts, parts.port
    except ValueError:  # a port that is not a number, an unbalanced IPv6 bracket
        return None


def parse_clickhouse_url(url: str) -> ClickHouseURL:
    """``clickhouse[s]://user:password@host:port/database``; ``ConfigurationError`` otherwise."""
    split = _split(url)
    if split is None or split[0].scheme not in ("clickhouse", "clickhouses") or not split[0].hostname:
        raise ConfigurationError(f"invalid ClickHouse URL: {_CLICKHOUSE_FORM}")
    parts, port = split
    assert parts.hostname is not None
    return ClickHouseURL(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or "") or "default",
        password=unquote(parts.password or ""),
        database=parts.path.strip("/") or "expstream",
        secure=parts.scheme == "clickhouses",
    )


def parse_s3_url(url: str) -> S3URL:
    """``http(s)://access_key:secret_key@host:port/bucket[?region=...]``; ``ConfigurationError`` otherwise."""
    split = _split(url)
    bucket = split[0].path.strip("/") if split is not None else ""
    if split is None or split[0].scheme not in ("http", "https") or not split[0].hostname or not bucket:
        raise ConfigurationError(f"invalid S3 URL: {_S3_FORM}")
    parts, port = split
    assert parts.hostname is not None
    region = dict(p.partition("=")[::2] for p in parts.query.split("&") if p).get("region") or None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return S3URL(
        endpoint=f"{host}:{port}" if port else host,
        bucket=bucket,
        access_key=unquote(parts.username or ""),
        secret_key=unquote(parts.password or ""),
        secure=parts.scheme == "https",
        region=region,
    )
