"""An in-memory object store: the test double, and a real adapter that passes the contract suite."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

from expstream.consumers.sinks.base import ObjectStore, check_digest, validate_key

__all__ = ["MemoryObjectStore"]


class MemoryObjectStore(ObjectStore):
    """Keys → bytes in a dict guarded by a lock, so threads see whole objects only."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        data = bytes(data)
        with self._lock:
            self._objects[key] = data

    def get(self, key: str) -> bytes:
        validate_key(key)
        with self._lock:
            return self._objects[key]

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._lock:
            return key in self._objects

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))

    def compose(self, key: str, parts: Sequence[str], *, sha256: str | None = None) -> None:
        validate_key(key)
        for part in parts:
            validate_key(part)
        with self._lock:
            data = b"".join(self._objects[p] for p in parts)
            check_digest(key, hashlib.sha256(data), sha256)
            self._objects[key] = data
