"""Source files of an experiment: which files (legacy rules) and their upload as blobs.

docs/legacy-behaviour.md#artifacts-and-sources
"""

from __future__ import annotations

import builtins
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from expstream.producer import blobs, uploads

if TYPE_CHECKING:
    from expstream.producer.stream import ExperimentStream
    from expstream.producer.writer import Writer

__all__ = ["Sources", "resolve", "upload"]

log = logging.getLogger("expstream")

_WARN_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Sources:
    entrypoint: str | None
    files: list[tuple[str, str]] = field(default_factory=list)  # (absolute path, target name)


def _entry_script() -> str | None:
    if hasattr(builtins, "get_ipython"):  # notebooks have no entry script
        return None
    script = sys.argv[0] if sys.argv else ""
    return script or None


def resolve(upload_source_files: Any) -> Sources:
    """``None`` → the entry script (if it is a file); ``[]`` → nothing; else glob patterns."""
    script = _entry_script()
    files = uploads.resolve_source_files(upload_source_files, entrypoint=script, cwd=os.getcwd())
    entrypoint = None
    if script and os.path.isfile(script):
        entrypoint = os.path.basename(script) if upload_source_files is None else script
    return Sources(entrypoint, files)


def upload(writer: Writer, stream: ExperimentStream, sources: Sources, chunk_bytes: int) -> None:
    """Send every file as a blob (chunks of ``chunk_bytes``), then one SourceFiles event naming them."""
    if not sources.files:
        return
    total = sum(os.path.getsize(p) for p, _ in sources.files if os.path.isfile(p))
    if total >= _WARN_BYTES:
        log.warning("Uploading %.1f MB of source files; this may take a while.", total / 2**20)
    listed = []
    for path, target in sources.files:
        try:
            with open(path, "rb") as handle:
                sha256, size = blobs.send_source(writer, stream, handle, chunk_bytes)
            mode = os.stat(path).st_mode & 0o7777
        except OSError as exc:
            log.warning("Source file %s not uploaded: %s", path, exc)
            continue
        listed.append({"path": target, "sha256": sha256, "size": size, "mode": mode})
    stream.add_event("SourceFiles", {"files": listed})
