"""Batches the store refused, waiting on disk, in order, until it takes them again.

Why on disk: a store that refuses writes (a full disk, a quota, permissions, a failing device) may do
so for hours. Batches kept in memory bound how long a run can go on and are lost when the process
ends. Here each refused batch is one file in this writer's own folder, written atomically and fsynced;
memory holds only its name and size. When the disk refuses that file too (the event log and this
folder share the full disk), the batch waits in memory instead, and the writer's memory bound and
backpressure apply to those bytes only.

Layout under ``root`` (``$EXPSTREAM_HOME/pending/<transport>``)::

    <started>-<host>-<pid>/lock            flock'ed by the writer that owns the folder while it lives
    <started>-<host>-<pid>/<seq:012d>.batch

A folder whose lock is free belongs to a process that ended (killed, or closed while the store still
refused): the next writer of the same home and transport adopts it and sends its batches first, in
the order they were refused. Delivery is at least once: a process killed between a send and the
file's removal sends that batch again, and the tables keep one of each point and event (their keys
include the session and sequence numbers, docs/architecture.md).

File format: a JSON header line (topic, key, message lengths, crc32 of the body) and the messages
back to back. A file that does not match its header is renamed ``*.damaged`` and reported, never sent.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from expstream.localfiles import write_atomically
from expstream.locking import open_lock_file, try_flock

__all__ = ["Batch", "PendingBatches"]

log = logging.getLogger("expstream")


@dataclass
class Batch:
    """One refused batch: where it is (``path``) or, when the disk refused it too, the messages."""

    topic: str
    key: str
    events: int
    size: int
    path: Path | None = None
    messages: list[bytes] | None = None


class PendingBatches:
    """The FIFO of one writer's refused batches (and the adopted ones of ended writers before them).

    Not thread-safe: the writer calls it under its send lock."""

    def __init__(self, root: Path | None) -> None:
        """``root=None`` keeps everything in memory (a transport with no disk of its own)."""
        self.root = root
        self._queue: deque[Batch] = deque()
        self._folder: Path | None = None
        self._lock_fd: int | None = None
        #: folder of an ended writer -> [its lock, batches of it still queued]; the lock is held until emptied
        self._adopted: dict[Path, list[int]] = {}
        self._seq = 0
        self.memory_bytes = 0
        self.events = 0
        self.bytes = 0

    def __bool__(self) -> bool:
        return bool(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def where(self) -> str:
        """Where the waiting batches are, for messages to the user."""
        on_disk = sum(1 for batch in self._queue if batch.path is not None)
        if self.root is None or not on_disk:
            return "in memory"
        if on_disk == len(self._queue):
            return f"on disk in {self.root}"
        return f"on disk in {self.root} and in memory (the disk refused the rest)"

    def adopt_ended(self) -> int:
        """Queue the batches that ended writers left under ``root``; returns how many."""
        if self.root is None:
            return 0
        try:
            folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.error("expstream: cannot look for batches that ended processes left in %s: %s", self.root, exc)
            return 0
        found = 0
        for folder in folders:
            if folder == self._folder or folder in self._adopted:
                continue
            try:
                fd = open_lock_file(folder / "lock")
            except OSError:
                continue
            if not try_flock(fd):  # its writer lives: the batches are its own
                os.close(fd)
                continue
            batches = sorted(folder.glob("*.batch"))
            if not batches:
                _remove_folder(folder, fd)
                continue
            entry = self._adopted[folder] = [fd, 0]
            for path in batches:
                batch = _read_header(path)
                if batch is not None:
                    self._append(batch)
                    entry[1] += 1
                    found += 1
            self._release_if_done(folder)
        if found:
            log.warning("expstream: %d batches that an ended process could not write are sent first", found)
        return found

    def put(self, topic: str, key: str, messages: list[bytes]) -> None:
        """Keep a refused batch behind the others: on disk when the disk takes it, else in memory."""
        size = sum(map(len, messages))
        path = self._write(topic, key, messages) if self.root is not None else None
        if path is None:
            self._append(Batch(topic, key, len(messages), size, messages=messages))
        else:
            self._append(Batch(topic, key, len(messages), size, path=path))

    def first(self) -> tuple[Batch, list[bytes]] | None:
        """The oldest batch and its messages; a damaged file is set aside (reported) and skipped."""
        while self._queue:
            batch = self._queue[0]
            if batch.messages is not None:
                return batch, batch.messages
            assert batch.path is not None
            messages = _read_messages(batch.path)
            if messages is not None:
                return batch, messages
            self._drop_first()  # set aside by the read
            self._done_with(batch.path)
        return None

    def pop(self) -> None:
        """The oldest batch was written: forget it (its file is removed)."""
        batch = self._drop_first()
        if batch.path is not None:
            batch.path.unlink(missing_ok=True)
            self._done_with(batch.path)

    def close(self) -> None:
        """Release the folders; what still waits stays on disk for the next writer of this home."""
        for fd, _ in self._adopted.values():  # each still has queued batches: emptied ones went at once
            os.close(fd)
        self._adopted.clear()
        if self._folder is not None and self._lock_fd is not None:
            if any(self._folder.glob("*.batch")):
                os.close(self._lock_fd)
            else:
                _remove_folder(self._folder, self._lock_fd)
        self._folder = self._lock_fd = None

    def forget_after_fork(self) -> None:
        """A forked child owns none of this: drop it without touching the parent's files or locks."""
        for fd, _ in self._adopted.values():
            os.close(fd)  # the child's copy only: the parent's descriptor keeps the flock
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self.root = None
        self._queue.clear()
        self._adopted.clear()
        self._folder = self._lock_fd = None
        self.memory_bytes = self.events = self.bytes = 0

    # --- internals -------------------------------------------------------------------------

    def _append(self, batch: Batch) -> None:
        self._queue.append(batch)
        self.events += batch.events
        self.bytes += batch.size
        if batch.messages is not None:
            self.memory_bytes += batch.size

    def _drop_first(self) -> Batch:
        batch = self._queue.popleft()
        self.events -= batch.events
        self.bytes -= batch.size
        if batch.messages is not None:
            self.memory_bytes -= batch.size
        return batch

    def _write(self, topic: str, key: str, messages: list[bytes]) -> Path | None:
        body = b"".join(messages)
        header = {"topic": topic, "key": key, "lengths": [len(m) for m in messages], "crc32": zlib.crc32(body)}
        try:
            folder = self._own_folder()
            self._seq += 1
            path = folder / f"{self._seq:012d}.batch"
            write_atomically(path, json.dumps(header).encode() + b"\n" + body)
        except OSError as exc:
            log.debug("expstream: cannot keep a refused batch on disk (%s); it waits in memory", exc)
            return None
        return path

    def _own_folder(self) -> Path:
        if self._folder is None:
            assert self.root is not None
            name = f"{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}"
            folder = self.root / name
            folder.mkdir(parents=True, exist_ok=True)
            fd = open_lock_file(folder / "lock")
            if not try_flock(fd):  # a fresh, unique name: nobody else can hold it
                os.close(fd)
                raise OSError(f"cannot lock {folder / 'lock'}")
            self._folder, self._lock_fd = folder, fd
        return self._folder

    def _done_with(self, path: Path) -> None:
        entry = self._adopted.get(path.parent)
        if entry is not None:
            entry[1] -= 1
            self._release_if_done(path.parent)

    def _release_if_done(self, folder: Path) -> None:
        """An adopted folder whose batches are all written (or set aside) is removed."""
        fd, left = self._adopted[folder]
        if left <= 0:
            del self._adopted[folder]
            _remove_folder(folder, fd)


def _remove_folder(folder: Path, fd: int) -> None:
    """Remove an empty pending folder whose lock ``fd`` we hold (then release it)."""
    try:
        (folder / "lock").unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        pass  # something else is in it: leave it
    finally:
        os.close(fd)


def _read_header(path: Path) -> Batch | None:
    try:
        with path.open("rb") as f:
            header = json.loads(f.readline())
        lengths = [int(n) for n in header["lengths"]]
        return Batch(str(header["topic"]), str(header["key"]), len(lengths), sum(lengths), path=path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _set_aside(path, exc)
        return None


def _read_messages(path: Path) -> list[bytes] | None:
    try:
        raw = path.read_bytes()
        line, _, body = raw.partition(b"\n")
        header = json.loads(line)
        lengths = [int(n) for n in header["lengths"]]
        if sum(lengths) != len(body) or zlib.crc32(body) != header["crc32"]:
            raise ValueError("the messages do not match the header (length or crc32)")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _set_aside(path, exc)
        return None
    messages, at = [], 0
    for n in lengths:
        messages.append(body[at : at + n])
        at += n
    return messages


def _set_aside(path: Path, problem: Exception) -> None:
    damaged = path.with_suffix(".damaged")
    try:
        os.replace(path, damaged)
    except OSError:
        damaged = path
    log.error("expstream: a pending batch file is damaged (%s) and was set aside, not sent: %s", problem, damaged)
