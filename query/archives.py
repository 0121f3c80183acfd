"""ZIP archives for ``download_artifacts`` / ``download_sources`` and their destination folder.

Names and entry layout: docs/legacy-behaviour.md#zip-downloads.
"""

from __future__ import annotations

import os
import posixpath
import uuid
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from expstream.exceptions import ArtifactPathError, NotADirectory

__all__ = ["prepare_destination_dir", "write_zip", "zip_name"]


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


def write_zip(target: Path, entries: Iterable[tuple[str, Callable[[], bytes] | bytes]]) -> Path:
    """Write ``entries`` (archive name, bytes or a function returning them) as the ZIP file ``target``.

    Names are stored relative to the archive root: a leading '/' is dropped, and a name that is empty
    or contains '..' raises ``ArtifactPathError``, so extracting can never write outside the folder.
    The archive is written to a temporary file and renamed into place, so ``target`` is either the
    complete archive or untouched. Returns ``target``.
    """
    target = Path(target)
    # Not mkstemp: its 0600 mode would survive the rename; "x" honours the umask like any new file.
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.part"
    try:
        seen: set[str] = set()
        with open(tmp, "xb") as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, content in entries:
                arcname = _entry_name(name)
                if arcname in seen:
                    raise ArtifactPathError(f"Archive entry {name!r} appears twice.")
                seen.add(arcname)
                archive.writestr(arcname, content() if callable(content) else content)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _entry_name(name: str) -> str:
    clean = posixpath.normpath(name.replace("\\", "/")).lstrip("/") if name else ""
    if clean in ("", ".") or ".." in clean.split("/") or "\0" in clean:
        raise ArtifactPathError(f"Archive entry name {name!r} must be a non-empty relative path without '..'.")
    return clean
