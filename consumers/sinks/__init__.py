"""Sinks: where consumers write and the query side reads (ports in ``base``, one adapter module per technology).

``OBJECT_STORES`` lists the object-store adapters; the contract tests are parametrized over it, so an
adapter added here is tested like the others.
"""

from __future__ import annotations

from typing import Any

from expstream.consumers.sinks.base import ObjectStore
from expstream.exceptions import ArtifactPathError, ConfigurationError

__all__ = ["OBJECT_STORES", "create_object_store", "validate_key"]

OBJECT_STORES: tuple[str, ...] = ("memory", "localfs")


def create_object_store(kind: str, **options: Any) -> ObjectStore:
    """The object store ``kind`` (one of ``OBJECT_STORES``) built from adapter options.

    ``memory`` takes none; ``localfs`` takes ``root`` (the folder).
    """
    if kind == "memory":
        from expstream.consumers.sinks.memory import MemoryObjectStore

        return MemoryObjectStore(**options)
    if kind == "localfs":
        from expstream.consumers.sinks.localfs import LocalFolderStore

        return LocalFolderStore(**options)
    raise ConfigurationError(f"Unknown object store {kind!r}; expected one of {', '.join(OBJECT_STORES)}.")


def validate_key(key: str) -> str:
    """Return ``key`` if every adapter can store it, else raise ``ArtifactPathError`` (a ``ValueError``).

    A key is '/'-separated, relative, without empty, '.' or '..' components, backslashes or NUL, so
    a folder-backed store can map it to a path that never leaves its folder, and all adapters accept
    exactly the same keys.
    """
    if not isinstance(key, str) or not key:
        raise ArtifactPathError(f"Object key must be a non-empty str, got {key!r}.")
    if "\0" in key or "\\" in key:
        raise ArtifactPathError(f"Object key {key!r} contains a NUL or a backslash.")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ArtifactPathError(f"Object key {key!r} must be relative, without empty, '.' or '..' parts.")
    return key
