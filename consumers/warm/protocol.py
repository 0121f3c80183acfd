"""What the warm materializer and its clients agree on: where the socket and lock files are, and the messages.

Standard library only: a logging process imports this. Messages are ``multiprocessing.connection`` byte
frames (never pickles): a JSON header, and for a query's answer one more frame of Arrow IPC stream bytes.
The connection is authenticated by a random key the daemon writes (mode 0600) into its home on every start.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expstream import exceptions
from expstream.eventlog.records import Watermark

__all__ = ["ERRORS", "WarmPaths", "decode", "encode", "error_of", "watermark_from_wire", "watermark_to_wire"]

#: the longest path a unix socket can bind (sun_path is 108 bytes with its NUL; leave room)
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class WarmPaths:
    """The files of the warm materializer under one home."""

    home: Path

    @property
    def run_lock(self) -> Path:
        """Held (flock) by the live daemon for its whole life: free means no daemon, so any socket is stale."""
        return self.home / "materializer.lock"

    @property
    def start_lock(self) -> Path:
        """Held by a client while it starts a daemon, so that two clients starting at once start one."""
        return self.home / "materializer.start.lock"

    @property
    def key(self) -> Path:
        return self.home / "materializer.key"

    @property
    def pid(self) -> Path:
        return self.home / "materializer.pid"

    @property
    def log(self) -> Path:
        return self.home / "materializer.log"

    @property
    def socket(self) -> Path:
        return self.home / "materializer.sock"

    @property
    def address(self) -> str:
        """The socket file under the home; when its path is too long to bind, a Linux abstract socket named
        after the home (it vanishes with its process, so it is never stale; the key still guards it)."""
        path = str(self.socket)
        if len(path.encode()) <= _MAX_SOCKET_PATH:
            return path
        return "\0expstream-materializer-" + hashlib.sha256(str(self.home).encode()).hexdigest()[:32]

    @property
    def address_is_file(self) -> bool:
        return not self.address.startswith("\0")


def encode(header: dict[str, Any]) -> bytes:
    return json.dumps(header, default=_plain).encode()


def decode(frame: bytes) -> dict[str, Any]:
    value = json.loads(frame)
    if not isinstance(value, dict):
        raise ValueError("a message header must be a JSON object")
    return value


def _plain(value: Any) -> Any:
    """numpy scalars (``item``) and other JSON-foreign values of query parameters as plain Python values."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"a query parameter of type {type(value).__name__} cannot be sent to the materializer")


def watermark_to_wire(watermark: Watermark | None) -> list[list[Any]] | None:
    return None if watermark is None else [[t, p, o] for (t, p), o in watermark.items()]


def watermark_from_wire(value: Any) -> Watermark | None:
    if value is None:
        return None
    return {(str(t), int(p)): int(o) for t, p, o in value}


#: the errors an answer may carry, by name; anything else arrives as a StorageError
ERRORS: dict[str, type[exceptions.NeptuneException]] = {
    cls.__name__: cls
    for cls in (
        exceptions.StorageError,
        exceptions.SinkDataError,
        exceptions.LockTimeout,
        exceptions.ExpstreamTimeoutError,
        exceptions.TransportError,
    )
}


def error_of(header: dict[str, Any]) -> exceptions.NeptuneException:
    """The exception an error answer stands for."""
    cls = ERRORS.get(str(header.get("error")), exceptions.StorageError)
    return cls(str(header.get("message", "the warm materializer failed")))
