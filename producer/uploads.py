"""Files the experiment uploads: artifact paths, streams, blob chunking and source-file selection.

Pure functions over the local filesystem (rules: docs/legacy-behaviour.md#artifacts-and-sources); the
experiment turns their results into ``ArtifactChunk`` / ``ArtifactCommitted`` / ``SourceFiles`` events.
Nothing here holds a whole artifact in memory: files are opened lazily and read in chunks.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import posixpath
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import IO, Any, BinaryIO, NamedTuple, cast

from expstream.exceptions import ArtifactPathError, FileNotFound, StorageError
from expstream.paths import clean_artifact_path
from expstream.paths import to_posix as _to_posix

__all__ = [
    "SOURCES_WARNING_BYTES",
    "ArtifactFile",
    "Blob",
    "artifact_files",
    "blob_chunks",
    "delete_paths",
    "normalize_destination",
    "resolve_source_files",
    "sources_size_warning",
    "sources_total_size",
]

SOURCES_WARNING_BYTES = 100 * 1024 * 1024


class ArtifactFile(NamedTuple):
    """One file to upload: where it goes in the experiment's storage and how to read it."""

    destination: str
    """Clean relative '/'-separated path (already through :func:`normalize_destination`)."""
    open: Callable[[], BinaryIO]
    """Returns a binary stream to read; closing it never closes a stream the caller passed in.
    For a file on disk each call opens it afresh; for a caller's stream, call it once."""


class Blob(NamedTuple):
    """A blob ready to be sent as ``ArtifactChunk`` events: every chunk carries ``sha256`` and ``size``."""

    sha256: str
    size: int
    chunks: Iterator[tuple[int, bytes]]
    """``(offset, data)`` pairs; at least one pair, ``(0, b'')``, for an empty blob."""


# --- destinations -------------------------------------------------------------------------------


def normalize_destination(destination: str) -> str:
    """The clean relative '/'-separated form of an artifact destination (see :mod:`expstream.paths`).

    Raises ``ArtifactPathError`` (a ``ValueError``) for paths that are absolute, escape the artifacts
    root after normalisation (``../x``, ``a/../../x``), name the root itself (``''``, ``'.'``) or
    contain NUL, so that no upload can land outside the experiment's storage. The consumer applies
    the same rule to every event, whoever wrote it.
    """
    if not isinstance(destination, str):
        raise ArtifactPathError(f"Artifact destination must be a str, not {type(destination).__name__}.")
    return clean_artifact_path(destination)


def delete_paths(path: str | list[str]) -> list[str]:
    """Validate ``delete_artifacts``' argument; return the normalised relative paths, in order, deduplicated.

    Every path is checked before the caller deletes anything. A leading '/' is allowed and stripped
    (``'/../x'`` is ``'x'``, as legacy's ``normpath`` made it); ``'a/../../x'`` escapes and is refused.
    Raises ``ArtifactPathError`` (a ``ValueError``).
    """
    if path is None:
        raise ArtifactPathError("delete_artifacts needs a path (a str or a list of str), got None.")
    paths = [path] if isinstance(path, str) else path
    if not isinstance(paths, (list, tuple)):
        raise ArtifactPathError(f"delete_artifacts takes a str or a list of str, not {type(path).__name__}.")
    result: list[str] = []
    for p in paths:
        if not isinstance(p, str):
            raise ArtifactPathError(f"delete_artifacts takes str paths, got {type(p).__name__} ({p!r}).")
        if "\0" in p:
            raise ArtifactPathError(f"Artifact path {p!r} contains a NUL character.")
        clean = posixpath.normpath(_to_posix(p)) if p else "."
        if clean == ".." or clean.startswith("../"):
            raise ArtifactPathError(f"Artifact path {p!r} points outside the artifacts directory.")
        clean = clean.lstrip("/")
        if clean in ("", "."):
            raise ArtifactPathError(f"Artifact path {p!r}: cannot delete the whole artifacts directory.")
        if clean not in result:
            result.append(clean)
    return result


# --- artifacts ----------------------------------------------------------------------------------


def artifact_files(artifact: Any, destination: str | None = None) -> list[ArtifactFile]:
    """The files ``log_artifact(artifact, destination)`` uploads, each with its destination.

    * a path (``str`` or ``os.PathLike``) to a file → one entry, under ``destination`` or the basename;
    * a path to a directory → every file below it (sorted), its path relative to the directory
      placed under ``destination`` (default: the directory's basename); an empty directory → ``[]``;
    * a missing path → ``FileNotFound(path)``;
    * an object with ``.read()`` → one entry under ``destination`` (required, else ``ValueError``);
      read from its current position, ``str`` data UTF-8 encoded, the caller's stream left open;
    * anything else → ``ValueError``.
    """
    if isinstance(artifact, (str, os.PathLike)):
        return _path_files(os.fspath(artifact), destination)
    if callable(getattr(artifact, "read", None)):
        if destination is None:
            raise ValueError("log_artifact of a stream needs a destination (the path to store it under).")
        reader = _CallerStream(artifact)
        # a RawIOBase with read/seek/tell as the uploader uses them; typeshed does not call it BinaryIO
        return [ArtifactFile(normalize_destination(destination), lambda: cast(BinaryIO, reader))]
    raise ValueError(
        f"log_artifact takes a file or directory path, or an object with .read(), not {type(artifact).__name__}."
    )


def _path_files(path: str, destination: str | None) -> list[ArtifactFile]:
    if not os.path.exists(path):
        raise FileNotFound(path)
    absolute = os.path.abspath(path)
    base = normalize_destination(destination if destination is not None else os.path.basename(absolute))
    if not os.path.isdir(absolute):
        return [ArtifactFile(base, partial(_open_binary, absolute))]
    return [
        ArtifactFile(normalize_destination(f"{base}/{_to_posix(rel)}"), partial(_open_binary, full))
        for full, rel in _walk_files(absolute)
    ]


def _open_binary(path: str) -> BinaryIO:
    return open(path, "rb")  # the caller closes it


def _walk_files(directory: str) -> Iterator[tuple[str, str]]:
    """(absolute path, path relative to ``directory``) of every file below it, in a stable order.

    A symlink that stays inside ``directory`` is followed like the file or folder it names; one
    that leads outside it (or dangles) is skipped with a warning naming the link, so logging a
    folder never uploads a file from elsewhere on the machine (``data -> /etc``). A folder link
    back to a folder being walked is skipped too (it would never end).
    """
    root = os.path.realpath(directory)
    yield from _walk(directory, "", root, {root})


def _walk(folder: str, relative: str, root: str, ancestors: set[str]) -> Iterator[tuple[str, str]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        warnings.warn(f"Skipped folder {folder!r}: cannot list it ({e}).", stacklevel=4)
        return
    subfolders = []
    for entry in entries:
        rel = f"{relative}{entry.name}"
        if entry.is_symlink() and not _link_stays_inside(entry.path, root):
            warnings.warn(
                f"Skipped symlink {entry.path!r}: it points outside {root!r} ({os.readlink(entry.path)!r}).",
                stacklevel=4,
            )
            continue
        if entry.is_dir():
            subfolders.append((entry.path, rel))
        elif entry.is_file():
            yield os.path.abspath(entry.path), rel
    for path, rel in subfolders:
        real = os.path.realpath(path)
        if real in ancestors:
            warnings.warn(f"Skipped symlink {path!r}: it loops back to a folder above it.", stacklevel=4)
            continue
        yield from _walk(path, f"{rel}{os.sep}", root, ancestors | {real})


def _link_stays_inside(link: str, root: str) -> bool:
    """True when ``link`` resolves (through every further link) to ``root`` or something below it."""
    target = os.path.realpath(link)
    return os.path.exists(target) and (target == root or target.startswith(root.rstrip(os.sep) + os.sep))


class _CallerStream(io.RawIOBase):
    """A binary view of a caller's stream: encodes ``str`` reads as UTF-8 and never closes the stream.

    Legacy closed the caller's stream after uploading it; closing this view does not
    (docs/legacy-behaviour.md#artifacts-and-sources).
    """

    def __init__(self, inner: IO[Any]) -> None:
        super().__init__()
        self._inner = inner
        self._pending = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        try:
            return bool(self._inner.seekable())
        except (AttributeError, OSError, ValueError):
            return False

    def tell(self) -> int:
        if self._pending:
            raise OSError("position unknown inside a partially read character")
        return self._inner.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pending = b""
        return self._inner.seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data = self._pending + _as_bytes(self._inner.read())
            self._pending = b""
            return data
        while len(self._pending) < size:
            data = self._inner.read(size - len(self._pending))
            if not data:
                break
            self._pending += _as_bytes(data)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _as_bytes(data: str | bytes | None) -> bytes:
    if data is None:
        return b""
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


# --- blobs --------------------------------------------------------------------------------------


def blob_chunks(source: bytes | BinaryIO, chunk_bytes: int) -> Blob:
    """Hash ``source`` and return its sha256, size and a lazy iterator of ``(offset, data)`` chunks.

    Every ``ArtifactChunk`` event carries the hash of the whole blob, so the hash must be known
    before the first chunk is sent. We read twice rather than hold the blob: a seekable stream is
    hashed from its current position, then rewound there and read again chunk by chunk; a
    non-seekable stream is copied to a temporary file (in memory up to ``chunk_bytes``) while being
    hashed, and the chunks come from that copy. Memory stays bounded by ``chunk_bytes``. The second
    pass re-hashes what it sends; if the source changed in between, the iterator raises
    ``StorageError`` after the last chunk and the blob must not be committed. The stream is not
    closed, and must stay open until the chunks have been consumed.
    """
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return Blob(hashlib.sha256(data).hexdigest(), len(data), _bytes_chunks(data, chunk_bytes))
    start = _start_position(source)
    if start is None:
        spool = tempfile.SpooledTemporaryFile(max_size=chunk_bytes)  # closed by the chunk iterator
        try:
            digest, size = _hash_stream(source, chunk_bytes, copy_to=spool)
        except BaseException:
            spool.close()
            raise
        return Blob(digest, size, _stream_chunks(spool, 0, digest, size, chunk_bytes, close=True))
    digest, size = _hash_stream(source, chunk_bytes)
    return Blob(digest, size, _stream_chunks(source, start, digest, size, chunk_bytes, close=False))


def _start_position(stream: BinaryIO) -> int | None:
    """The position to rewind to for the second pass, or ``None`` when the stream cannot rewind."""
    try:
        if not stream.seekable():
            return None
        return stream.tell()
    except (AttributeError, OSError, ValueError):
        return None


def _hash_stream(stream: BinaryIO, chunk_bytes: int, copy_to: IO[bytes] | None = None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while data := stream.read(chunk_bytes):
        data = _as_bytes(data)
        digest.update(data)
        size += len(data)
        if copy_to is not None:
            copy_to.write(data)
    return digest.hexdigest(), size


def _bytes_chunks(data: bytes, chunk_bytes: int) -> Iterator[tuple[int, bytes]]:
    if not data:
        yield 0, b""
    for offset in range(0, len(data), chunk_bytes):
        yield offset, data[offset : offset + chunk_bytes]


def _stream_chunks(
    stream: IO[bytes], start: int, digest: str, size: int, chunk_bytes: int, *, close: bool
) -> Iterator[tuple[int, bytes]]:
    try:
        stream.seek(start)
        check = hashlib.sha256()
        offset = 0
        while offset < size:
            data = _as_bytes(stream.read(min(chunk_bytes, size - offset)))
            if not data:
                break
            check.update(data)
            yield offset, data
            offset += len(data)
        if offset == 0:
            yield 0, b""
        if offset != size or check.hexdigest() != digest:
            raise StorageError("The file changed while it was being uploaded; its upload is incomplete.")
    finally:
        if close:
            stream.close()


# --- source files -------------------------------------------------------------------------------


def resolve_source_files(
    upload_source_files: str | Iterable[str] | None, *, entrypoint: str | None, cwd: str
) -> list[tuple[str, str]]:
    """The ``(absolute path, target name)`` pairs ``create_experiment`` uploads, sorted by target.

    ``None`` uploads the entry script under its basename when it is an existing file; ``[]`` uploads
    nothing; otherwise each pattern (a str is one pattern) is expanded with recursive glob relative
    to ``cwd``, matches are de-duplicated and directories expanded recursively. Targets are relative
    to the matches' common path (its parent when it is a file; ``cwd`` when it lies strictly inside
    ``cwd``), or each file's own absolute path when no common path exists (different drives).
    """
    cwd = os.path.abspath(cwd)
    if upload_source_files is None:
        if not entrypoint:
            return []
        script = os.path.join(cwd, entrypoint)
        return [(os.path.abspath(script), os.path.basename(script))] if os.path.isfile(script) else []
    patterns = [upload_source_files] if isinstance(upload_source_files, str) else list(upload_source_files)
    matches = sorted(
        {os.path.normpath(os.path.join(cwd, m)) for p in patterns for m in glob.glob(p, root_dir=cwd, recursive=True)}
    )
    if not matches:
        return []
    root = _source_root(matches, cwd)
    pairs: dict[str, str] = {}
    for match in matches:
        target = _to_posix(os.path.relpath(match, root) if root is not None else match)
        if os.path.isdir(match):
            for full, rel in _walk_files(match):
                pairs.setdefault(full, posixpath.normpath(f"{target}/{_to_posix(rel)}"))
        elif os.path.isfile(match):
            pairs.setdefault(match, target)
    return sorted(pairs.items(), key=lambda pair: pair[1])


def _source_root(matches: list[str], cwd: str) -> str | None:
    try:
        common = os.path.commonpath(matches)
    except ValueError:  # different drives
        return None
    if os.path.isfile(common):
        common = os.path.dirname(common)
    if common.startswith(cwd.rstrip(os.sep) + os.sep):
        common = cwd
    return common


def sources_total_size(files: Iterable[tuple[str, str]]) -> int:
    """Total size in bytes of the ``(absolute path, target)`` pairs of :func:`resolve_source_files`."""
    return sum(os.path.getsize(path) for path, _ in files)


def sources_size_warning(total_bytes: int) -> str | None:
    """The warning legacy logged before uploading 100 MB or more of sources, else ``None``."""
    if total_bytes < SOURCES_WARNING_BYTES:
        return None
    return (
        f"The source files to upload total {total_bytes / (1024 * 1024):.1f} MB (100 MB or more); "
        "this may take a while. Pass upload_source_files to choose fewer files."
    )
