"""Numbering for one machine: a counter file per project, incremented under an exclusive flock."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from expstream.exceptions import TransportError
from expstream.producer.numbering.base import Numbering

__all__ = ["LocalFileNumbering"]


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class LocalFileNumbering(Numbering):
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def next_number(self, project: str) -> int:
        return self._allocate(project, None)[0]

    def number_for_run(self, project: str, run_id: str) -> tuple[int, bool]:
        return self._allocate(project, run_id)

    def _allocate(self, project: str, run_id: str | None) -> tuple[int, bool]:
        folder = self.folder / _digest(project)
        try:
            (folder / "runs").mkdir(parents=True, exist_ok=True)
            (folder / "name").write_text(project)
            fd = os.open(folder / "counter", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TransportError(f"cannot open the experiment counter of {project!r}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            run_file = folder / "runs" / _digest(run_id) if run_id is not None else None
            if run_file is not None and run_file.exists():
                return int(run_file.read_text()), False
            raw = os.pread(fd, 64, 0).strip()
            number = (int(raw) if raw else 0) + 1
            os.pwrite(fd, str(number).encode().ljust(20), 0)
            os.fsync(fd)
            if run_file is not None:
                run_file.write_text(str(number))
            return number, True
        except OSError as exc:
            raise TransportError(f"cannot allocate an experiment number in {project!r}: {exc}") from exc
        finally:
            os.close(fd)
