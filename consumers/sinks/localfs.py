"""An object store over a local folder: the embedded default, no server needed.

Layout: ``<root>/data/<key>`` holds each object (the key's '/' become folders) and ``<root>/tmp``
holds objects being written. Every write goes to a temporary file that is renamed over the object
(``os.replace``), so a reader sees the old object or the new one, never half of one; keeping
temporary files outside ``data/`` keeps them out of ``list`` without reserving any key names.
A key cannot be both an object and a folder of other keys (``a`` and ``a/b``): that put raises
``StorageError``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from expstream.consumers.sinks.base import ObjectStore, check_digest, validate_key
from expstream.exceptions import StorageError

__all__ = ["LocalFolderStore"]

_COPY_BUFFER = 1024 * 1024


class LocalFolderStore(ObjectStore):
    """Objects as files below ``root``; safe for several threads and processes writing at once."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._objects = self.root / "data"
        self._tmp = self.root / "tmp"
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"Cannot use {self.root} as an object store folder: {e}") from e

    def __repr__(self) -> str:
        return f"LocalFolderStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self._objects.joinpath(*validate_key(key).split("/"))

    def put(self, key: str, data: bytes) -> None:
        self._write(key, lambda f: f.write(data))

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None
        except OSError as e:
            raise StorageError(f"Cannot read object {key!r}: {e}") from e

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        except OSError as e:
            raise StorageError(f"Cannot delete object {key!r}: {e}") from e
        self._prune(path.parent)

    def list(self, prefix: str) -> list[str]:
        # Walk only the deepest folder the prefix names; a folder part that is not a valid key
        # cannot prefix any valid key.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if folder:
            try:
                start = self._path(folder)
            except ValueError:
                return []
        else:
            start = self._objects
        keys = []
        for dirpath, _, files in os.walk(start):
            base = Path(dirpath).relative_to(self._objects).as_posix()
            for name in files:
                key = name if base == "." else f"{base}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def compose(self, key: str, parts: Sequence[str], *, sha256: str | None = None) -> None:
        """Concatenate ``parts`` into ``key`` by streaming file to file (never the whole object in memory);
        with ``sha256`` the copy is hashed on the way and renamed into place only if it matches."""
        sources = [self._path(p) for p in parts]

        def copy(out: BinaryIO) -> None:
            digest = hashlib.sha256()
            for part, source in zip(parts, sources, strict=True):
                try:
                    with open(source, "rb") as f:
                        while block := f.read(_COPY_BUFFER):
                            digest.update(block)
                            out.write(block)
                except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                    raise KeyError(part) from None
            check_digest(key, digest, sha256)

        self._write(key, copy)

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        """Fill a temporary file, flush it to disk, then rename it over the object in one step."""
        path = self._path(key)
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            for attempt in range(2):
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(tmp, path)
                    break
                except FileNotFoundError:  # a concurrent delete pruned the folder we just made
                    if attempt:
                        raise
        except BaseException as e:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(e, OSError):  # disk full, permissions, a key that is also a folder ...
                raise StorageError(f"Cannot write object {key!r}: {e}") from e
            raise

    def _prune(self, folder: Path) -> None:
        """Remove folders emptied by a delete, so the key can later be an object again."""
        while folder != self._objects:
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                return
            folder = folder.parent
