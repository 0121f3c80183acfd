"""Files written by downloads: ZIP archives for ``download_artifacts`` / ``download_sources``, single
files for ``download_artifact``, and their destination folder.

Names and entry layout: docs/legacy-behaviour.md#zip-downloads. Every file is written by
:func:`write_into`: a new temporary file opened relative to the destination folder's own descriptor
(``O_EXCL | O_NOFOLLOW``), then renamed over the target. A symlink already at the target is
replaced, never written through, and nothing lands outside the folder, whatever the stored names
say. Stored paths that are not in their clean form (:mod:`expstream.paths`: ``../x``, absolute,
backslashes; only rows written before the consumer checked paths can hold them) are skipped with a
warning by :func:`safe_entries`, so one bad row never costs the rest of a download.
"""

from __future__ import annotations

import logging
import os
import posixpath
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TypeVar

from expstream.exceptions import ArtifactPathError, NotADirectory

__all__ = ["prepare_destination_dir", "safe_entries", "write_into", "write_zip", "zip_name"]

log = logging.getLogger("expstream")

V = TypeVar("V")
#: flags of a download's temporary file: new (never an existing file or link), never through a link
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def zip_name(path: str | None, default: str) -> str:
    """The archive's file name: ``default`` for everything (``None``, ``''``, ``'/'``), else last component + '.zip'.

    Callers pass ``default='output.zip'`` for artifacts and ``'source.zip'`` for sources
    (docs/legacy-behaviour.md#zip-downloads).
    """
    if path is None:
        return default
    last = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return f"{last}.zip" if last not in ("", ".", "..") else default


def prepare_destination_dir(destination_dir: str | os.PathLike[str] | None) -> Path:
    """The absolute folder to download into, created if missing; ``None`` is the current directory.

    Created before the download starts, as legacy did; an existing non-directory → ``NotADirectory``.
    """
    if destination_dir is None:
        return Path.cwd()
    folder = Path(os.path.abspath(destination_dir))
    if folder.exists() and not folder.is_dir():
        raise NotADirectory(os.fspath(destination_dir))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:  # a file appeared, or a parent is a file
        raise NotADirectory(os.fspath(destination_dir)) from e
    return folder


def safe_entries(files: Mapping[str, V], clean: Callable[[str], str], what: str) -> dict[str, V]:
    """The entries of ``files`` whose stored path is its own clean form by ``clean``; the others are
    skipped with a warning naming them (they could only name a file outside the download)."""
    kept: dict[str, V] = {}
    for path, value in files.items():
        try:
            ok = clean(path) == path
        except ArtifactPathError:
            ok = False
        if ok:
            kept[path] = value
        else:
            log.warning("expstream: stored %s path %r is not a clean relative path; it is not downloaded", what, path)
    return kept


def write_into(folder: Path, name: str, write: Callable[[IO[bytes]], object]) -> Path:
    """Write the file ``folder/name`` with ``write(file)``: complete or untouched, never through a link.

    ``name`` must be one plain path component. The temporary file and the rename are relative to a
    descriptor of ``folder`` (opened once, before anything is written), so the
    file cannot land outside it, and a symlink already at ``name`` is replaced, not followed.
    Not mkstemp: its 0600 mode would survive the rename; a new file here honours the umask.
    """
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ArtifactPathError(f"Download file name {name!r} must be one plain path component.")
    tmp = f".{name}.{uuid.uuid4().hex}.part"
    dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(tmp, _NEW_FILE, 0o666, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            raise
    finally:
        os.close(dir_fd)
    return folder / name


def write_zip(target: Path, entries: Iterable[tuple[str, Callable[[], bytes] | bytes]]) -> Path:
    """Write ``entries`` (archive name, bytes or a function returning them) as the ZIP file ``target``.

    Names are stored relative to the archive root: a leading '/' is dropped, and a name that is empty
    or contains '..' raises ``ArtifactPathError``, so extracting can never write outside the folder.
    The archive is written by :func:`write_into`, so ``target`` is either the complete archive or
    untouched, and a link at ``target`` is replaced, not written through. Returns ``target``.
    """
    target = Path(target)

    def write(f: IO[bytes]) -> None:
        seen: set[str] = set()
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content in entries:
                arcname = _entry_name(name)
                if arcname in seen:
                    raise ArtifactPathError(f"Archive entry {name!r} appears twice.")
                seen.add(arcname)
                archive.writestr(arcname, content() if callable(content) else content)

    return write_into(target.parent, target.name, write)


def _entry_name(name: str) -> str:
    clean = posixpath.normpath(name.replace("\\", "/")).lstrip("/") if name else ""
    if clean in ("", ".") or ".." in clean.split("/") or "\0" in clean:
        raise ArtifactPathError(f"Archive entry name {name!r} must be a non-empty relative path without '..'.")
    return clean
