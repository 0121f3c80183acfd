"""Numbering for one machine: a counter file per project, incremented under an exclusive flock."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from expstream.exceptions import TransportError
from expstream.producer.numbering.base import Numbering

__all__ = ["LocalFileNumbering"]


class LocalFileNumbering(Numbering):
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def next_number(self, project: str) -> int:
        digest = hashlib.sha1(project.encode()).hexdigest()[:16]
        folder = self.folder / digest
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "name").write_text(project)
            fd = os.open(folder / "counter", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TransportError(f"cannot open the experiment counter of {project!r}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0).strip()
            number = (int(raw) if raw else 0) + 1
            data = str(number).encode().ljust(20)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
            return number
        finally:
            os.close(fd)
