"""Secrets for command-line tools: from a file or the environment, never from the command line.

Why: every local user can read any process's arguments (``ps``, ``/proc/<pid>/cmdline``), so a
password passed as ``--clickhouse clickhouse://u:secret@...`` is disclosed. Target URLs given on a
command line must come without their secret; the secret comes from a file (``--...-file``) or an
``EXPSTREAM_*`` variable, and is put into the URL here, in memory only.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from expstream.exceptions import ConfigurationError

__all__ = ["read_secret_file", "refuse_secret_in_url", "with_secret"]


def refuse_secret_in_url(url: str, option: str, how: str) -> None:
    """Refuse a URL whose user part carries a password (``user:password@``); ``how`` says what to use instead."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return  # not a URL at all: the adapter's own check names the expected form
    if password:
        raise ConfigurationError(
            f"{option}: the URL contains a password, which other local users can read from the process list; "
            f"give the URL without it (user@host) and pass the password {how}"
        )


def with_secret(url: str, secret: str | None) -> str:
    """``url`` with ``secret`` as the password of its user part (no change when ``secret`` is None)."""
    if secret is None:
        return url
    parts = urlsplit(url)
    if parts.hostname is None:
        return url  # invalid: left to the adapter to refuse
    user = parts.netloc.rpartition("@")[0].partition(":")[0] if "@" in parts.netloc else ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{quote(secret, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def read_secret_file(path: Path, option: str) -> str:
    """The secret in ``path``: its first line, without the line break (a file may end in one)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{option}: cannot read {path}: {type(exc).__name__}") from None
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise ConfigurationError(f"{option}: {path} is empty")
    return secret
