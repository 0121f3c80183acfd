"""Artifact and source paths: one rule for the client that writes them and the consumer that stores them.

A path names a file inside one experiment's storage. The client cleans it before it sends an event,
and the consumer cleans it again, because an event in the log may come from anything that can write
to the log, not only from this client. Both use the functions here, so a path a good client sends is
stored exactly as sent, and a hostile event can neither place nor name a file outside its experiment.

What happens to each kind of path (the same on both sides):

====================================  ===========================================================
path                                  artifact (``ArtifactCommitted`` / ``ArtifactDeleted``)
====================================  ===========================================================
``a\\b`` (backslash)                   normalized to ``a/b``: keys are shared across OSes
``a//b``, ``a/./b``, ``a/x/../b``     normalized to ``a/b`` (``posixpath.normpath``)
``/a``, ``C:a``, ``C:\\a``, ``//h/s``   refused: absolute (the client never sends one)
``../a``, ``a/../../b``               refused: leaves the experiment
``''``, ``.``, ``a/..``               refused: names the root, not a file
NUL anywhere                          refused
====================================  ===========================================================

Source files (``SourceFiles``) follow the same rule except for absolute paths: legacy uploads a
source file under its own absolute path when the files have no common folder (different drives),
so ``/a`` and ``C:/a`` are made relative (``a``, ``C/a``) instead of refused.
"""

from __future__ import annotations

import posixpath
import re

from expstream.exceptions import ArtifactPathError

__all__ = ["clean_artifact_path", "clean_source_path", "to_posix"]

_DRIVE = re.compile(r"^[A-Za-z]:")


def to_posix(path: str) -> str:
    """Both separators become '/': keys are shared across OSes, so a backslash is never a name character."""
    return path.replace("\\", "/")


def clean_artifact_path(path: str) -> str:
    """The clean relative '/'-separated form of an artifact path, or ``ArtifactPathError`` (a ``ValueError``).

    Refuses paths that are absolute (a leading '/', a drive letter, a UNC share), escape the
    artifacts root after normalisation (``../x``, ``a/../../x``), name the root itself (``''``,
    ``'.'``) or contain NUL, so that no upload can land outside the experiment's storage.
    """
    if not isinstance(path, str):
        raise ArtifactPathError(f"Artifact path must be a str, not {type(path).__name__}.")
    if "\0" in path:
        raise ArtifactPathError(f"Artifact path {path!r} contains a NUL character.")
    posix = to_posix(path)
    if posix.startswith("/") or _DRIVE.match(posix):
        raise ArtifactPathError(f"Artifact path {path!r} is absolute; use a path relative to the artifacts root.")
    return _relative(posix, path)


def clean_source_path(path: str) -> str:
    """The stored form of a source file's path: like :func:`clean_artifact_path`, but an absolute
    path (legacy's target for files on different drives) is made relative instead of refused."""
    if not isinstance(path, str):
        raise ArtifactPathError(f"Source path must be a str, not {type(path).__name__}.")
    if "\0" in path:
        raise ArtifactPathError(f"Source path {path!r} contains a NUL character.")
    posix = to_posix(path)
    if _DRIVE.match(posix):
        posix = f"{posix[0]}/{posix[2:]}"
    return _relative(posix.lstrip("/"), path)


def _relative(posix: str, original: str) -> str:
    clean = posixpath.normpath(posix) if posix else "."
    if clean == ".":
        raise ArtifactPathError(f"Path {original!r} names the artifacts root, not a file.")
    if clean == ".." or clean.startswith("../"):
        raise ArtifactPathError(f"Path {original!r} points outside the artifacts root.")
    return clean
