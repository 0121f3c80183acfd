"""The embedded event log: append-only segment files with Kafka-like offsets.

Why a log of our own: the embedded default must work with nothing but a folder, yet keep the
semantics the Kafka deployment has (ordered per key, offsets that only grow, readers that resume
by position), so that producer and consumers are the same code in both deployments.

Layout under ``root``::

    meta.json                          {"partitions": N}, written once
    <topic>/<partition>/lock           flock'ed: exclusive to append, shared to read the end
    <topic>/<partition>/<base:020d>.seg

An offset is a byte position in the partition: segment base offset + position in that file.
Each record is framed as ``magic, payload length, key length, crc32(key + payload)`` (16 bytes,
little-endian) followed by the key (utf-8) and the payload. A writer appends a whole batch with
one ``write`` on an ``O_APPEND`` descriptor while holding the partition lock, so batches of
several processes never interleave. A batch that would take the active segment past
``segment_bytes`` starts a new segment whose base is the old one's end (records never span
segments); readers find segments by listing the folder and by that rule. A writer killed
mid-write leaves a torn record, which readers skip with a warning (see :meth:`LocalLog.read`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
import zlib
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from expstream.eventlog.records import Record
from expstream.localfiles import write_atomically
from expstream.locking import flock, unlock

__all__ = ["HEADER_SIZE", "MAGIC", "LocalLog", "frame_records"]

logger = logging.getLogger("expstream.log")

MAGIC = b"EXL1"
_HEADER = struct.Struct("<4sIII")  # magic, payload length, key length, crc32(key + payload)
HEADER_SIZE = _HEADER.size
#: Lengths above these are corruption, not data: they bound how far a bad header can send a reader.
MAX_KEY_BYTES = 1 << 16
MAX_PAYLOAD_BYTES = 1 << 30
_READ_CHUNK = 1 << 20
_SCAN_CHUNK = 1 << 20
_OPEN_SEGMENTS = 32  # read descriptors kept per partition
_TOPIC_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def frame_records(key: str, payloads: Sequence[bytes]) -> bytes:
    """The on-disk bytes of ``payloads`` under ``key``: what one append writes."""
    kb = key.encode()
    if len(kb) > MAX_KEY_BYTES:
        raise ValueError(f"key of {len(kb)} bytes is longer than {MAX_KEY_BYTES}")
    key_crc = zlib.crc32(kb)
    parts: list[bytes] = []
    for payload in payloads:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"message of {len(payload)} bytes is larger than {MAX_PAYLOAD_BYTES}")
        parts.append(_HEADER.pack(MAGIC, len(payload), len(kb), zlib.crc32(payload, key_crc)))
        parts.append(kb)
        parts.append(payload)
    return b"".join(parts)


def _segment_name(base: int) -> str:
    return f"{base:020d}.seg"


class _Partition:
    """One partition's files and what this process knows of them; guarded by ``mutex``.

    ``mutex`` also serializes flock calls: flock belongs to the open file, shared by our threads.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mutex = threading.Lock()
        self.bases: list[int] = []
        self.read_fds: OrderedDict[int, int] = OrderedDict()
        self.retired: list[int] = []  # evicted read fds, closed once no read is using them
        self.readers = 0
        self.write_base = -1
        self.write_fd = -1
        self.lock_fd = -1
        self.dirty = False
        folder.mkdir(parents=True, exist_ok=True)
        self.lock_fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)

    def path(self, base: int) -> Path:
        return self.folder / _segment_name(base)

    def read_fd(self, base: int) -> int:
        fd = self.read_fds.get(base)
        if fd is None:
            fd = os.open(self.path(base), os.O_RDONLY)
            self.read_fds[base] = fd
            while len(self.read_fds) > _OPEN_SEGMENTS:
                self.retired.append(self.read_fds.popitem(last=False)[1])
        else:
            self.read_fds.move_to_end(base)
        return fd

    def refresh(self) -> int:
        """Bring the segment list up to date; return the end offset. Call under the flock."""
        if not self.bases:
            names = (n for n in os.listdir(self.folder) if n.endswith(".seg") and n[:-4].isdigit())
            self.bases = sorted(int(n[:-4]) for n in names)
            if not self.bases:
                return 0
        while True:  # another process may have rolled: the next segment starts where this one ends
            size = os.fstat(self.read_fd(self.bases[-1])).st_size
            end = self.bases[-1] + size
            if size == 0 or not self.path(end).exists():
                return end
            self.roll_to(end)

    def roll_to(self, base: int) -> None:
        """``base`` is the new last segment. The previous one's read descriptor was only opened to
        find the end: let it go, or a process that only appends would keep one per segment ever
        rolled — unbounded, and holding the disk space of segments a spool deletes once shipped."""
        if self.bases:
            self.retire(self.bases[-1])
            self.release_retired()
        self.bases.append(base)

    def retire(self, base: int) -> None:
        fd = self.read_fds.pop(base, None)
        if fd is not None:
            self.retired.append(fd)

    def release_retired(self) -> None:
        if self.readers == 0:
            for fd in self.retired:
                os.close(fd)
            self.retired.clear()

    def __del__(self) -> None:  # like a file object: a forgotten log does not leak descriptors
        self.close()

    def close(self) -> None:
        for fd in [*self.read_fds.values(), *self.retired, self.write_fd, self.lock_fd]:
            if fd >= 0:
                os.close(fd)
        self.read_fds.clear()
        self.retired.clear()
        self.write_fd = self.lock_fd = self.write_base = -1


class LocalLog:
    """A folder of partitioned, append-only topics shared by any number of processes."""

    def __init__(
        self, root: Path, partitions: int = 4, segment_bytes: int = 256 << 20, lock_timeout: float | None = None
    ) -> None:
        self.root = Path(root)
        self.segment_bytes = segment_bytes
        #: seconds to wait for another process's partition lock (None: EXPSTREAM_LOCK_TIMEOUT)
        self.lock_timeout = lock_timeout
        self.root.mkdir(parents=True, exist_ok=True)
        self.partitions = self._load_or_create_meta(partitions)
        self._parts: dict[tuple[str, int], _Partition] = {}
        self._parts_mutex = threading.Lock()
        self._warned: set[tuple[str, int]] = set()

    def _load_or_create_meta(self, partitions: int) -> int:
        """The partition count is fixed at creation: keys must keep mapping to the same partition."""
        meta = self.root / "meta.json"
        if not meta.exists():
            if partitions < 1:
                raise ValueError(f"partitions must be at least 1, got {partitions}")
            tmp = self.root / f".meta.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "w") as f:
                json.dump({"partitions": partitions}, f)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, meta)  # atomic and exclusive: the first creator wins, others read its N
            except FileExistsError:
                pass
            except OSError:  # no hard links on this filesystem
                os.replace(tmp, meta)
            finally:
                tmp.unlink(missing_ok=True)
        try:
            count = json.loads(meta.read_bytes())["partitions"]
            if type(count) is int and count >= 1:
                return count
            problem = f"partitions is {count!r}"
        except (ValueError, KeyError, TypeError) as exc:  # garbage, a torn copy, not an object
            problem = f"{type(exc).__name__}: {exc}"
        return self._rebuild_meta(meta, partitions, problem)

    def _rebuild_meta(self, meta: Path, partitions: int, problem: str) -> int:
        """``meta.json`` only caches what the folders show: rebuild it from them, with a warning.

        Partition folders are created on first use, so the highest one seen is a lower bound; the
        configured count is taken when it covers every folder (the usual case: it made the log)."""
        seen = [
            int(p.name)
            for topic in self.root.iterdir()
            if topic.is_dir() and _TOPIC_RE.match(topic.name)
            for p in topic.iterdir()
            if p.is_dir() and p.name.isdigit()
        ]
        count = max(partitions, max(seen, default=-1) + 1, 1)
        logger.warning("damaged log metadata %s (%s): rebuilt it with %d partitions", meta, problem, count)
        write_atomically(meta, json.dumps({"partitions": count}).encode())
        return count

    def partition_for(self, key: str) -> int:
        """Stable across processes and runs (unlike ``hash``), so a key always lands in one partition."""
        return zlib.crc32(key.encode()) % self.partitions

    def _partition(self, topic: str, partition: int) -> _Partition:
        part = self._parts.get((topic, partition))
        if part is not None:
            return part
        if not _TOPIC_RE.match(topic):
            raise ValueError(f"invalid topic name {topic!r}")
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} out of range 0..{self.partitions - 1}")
        with self._parts_mutex:
            part = self._parts.get((topic, partition))
            if part is None:
                part = self._parts[(topic, partition)] = _Partition(self.root / topic / str(partition))
            return part

    # --- writing ------------------------------------------------------------------------------

    def append(self, topic: str, key: str, payloads: Sequence[bytes]) -> int:
        """Append in one write; return the partition's end offset right after it."""
        partition = self.partition_for(key)
        if not payloads:
            return self.end_offset(topic, partition)
        part = self._partition(topic, partition)
        data = frame_records(key, payloads)
        with part.mutex:
            flock(part.lock_fd, part.folder / "lock", timeout=self.lock_timeout)
            try:
                end = part.refresh()
                if not part.bases:
                    self._start_segment(part, 0)
                elif end > part.bases[-1] and end - part.bases[-1] + len(data) > self.segment_bytes:
                    self._start_segment(part, end)
                if part.write_base != part.bases[-1]:
                    self._open_writer(part, part.bases[-1])
                view = memoryview(data)
                written = 0
                try:
                    while written < len(data):  # one write, unless the kernel returns short
                        written += os.write(part.write_fd, view[written:])
                        part.dirty = True
                except OSError:
                    # Disk full, quota, I/O error: take back the part of the batch that made it, so a
                    # retry appends the whole batch once (no duplicate and no torn head of it).
                    if written:
                        os.ftruncate(part.write_fd, end - part.bases[-1])
                    raise
                return end + len(data)
            finally:
                unlock(part.lock_fd)

    def _start_segment(self, part: _Partition, base: int) -> None:
        """Roll: decided under the exclusive lock, so every writer agrees on the new base."""
        self._open_writer(part, base)
        part.roll_to(base)
        dir_fd = os.open(part.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new name must survive a crash as much as its data
        finally:
            os.close(dir_fd)

    def _open_writer(self, part: _Partition, base: int) -> None:
        if part.write_fd >= 0:
            if part.dirty:
                os.fsync(part.write_fd)  # a later sync() only sees the active segment
                part.dirty = False
            os.close(part.write_fd)
            part.write_fd = -1
        part.write_fd = os.open(part.path(base), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        part.write_base = base

    def sync(self, topic: str, partition: int) -> None:
        """Make what this process appended durable."""
        part = self._partition(topic, partition)
        with part.mutex:
            if part.dirty and part.write_fd >= 0:
                os.fsync(part.write_fd)
                part.dirty = False

    def drop_segments_before(self, topic: str, partition: int, offset: int) -> int:
        """Delete whole segments that end at or before ``offset`` (retention of a spool); the
        active segment is always kept. Returns how many were deleted."""
        part = self._partition(topic, partition)
        dropped = 0
        with part.mutex:
            flock(part.lock_fd, part.folder / "lock", timeout=self.lock_timeout)
            try:
                part.refresh()
                while len(part.bases) > 1 and part.bases[1] <= offset:
                    base = part.bases.pop(0)
                    part.retire(base)
                    if part.write_base == base:  # another process rolled since this one last wrote
                        os.close(part.write_fd)
                        part.write_fd = part.write_base = -1
                        part.dirty = False  # shipped, so read back: nothing of it left to sync
                    part.path(base).unlink(missing_ok=True)
                    dropped += 1
                part.release_retired()
            finally:
                unlock(part.lock_fd)
        return dropped

    # --- reading ------------------------------------------------------------------------------

    def end_offset(self, topic: str, partition: int) -> int:
        """End of the complete writes: taken under the shared lock, so never inside a batch."""
        part = self._partition(topic, partition)
        with part.mutex:
            flock(part.lock_fd, part.folder / "lock", shared=True, timeout=self.lock_timeout)
            try:
                return part.refresh()
            finally:
                unlock(part.lock_fd)

    def read(
        self, topic: str, partition: int, offset: int, max_records: int = 10_000, max_bytes: int = 16 << 20
    ) -> list[Record]:
        """Records from ``offset`` on, at most ``max_records`` and about ``max_bytes`` of payload.

        Corrupt or torn bytes are skipped with a warning up to the next valid record; when none
        follows yet, reading stops there (the last ``next_offset`` points at it) so that records
        appended later are still found.
        """
        end = self.end_offset(topic, partition)
        part = self._partition(topic, partition)
        with part.mutex:
            bases = list(part.bases)
            part.readers += 1
        try:
            return self._read(part, topic, partition, bases, end, offset, max_records, max_bytes)
        finally:
            with part.mutex:
                part.readers -= 1
                part.release_retired()

    def _read(
        self,
        part: _Partition,
        topic: str,
        partition: int,
        bases: list[int],
        end: int,
        offset: int,
        max_records: int,
        max_bytes: int,
    ) -> list[Record]:
        records: list[Record] = []
        want = _READ_CHUNK
        while offset < end and len(records) < max_records and max_bytes > 0:
            i = bisect_right(bases, offset) - 1
            if i < 0:  # before the first segment: nothing is there
                offset = bases[0]
                continue
            base = bases[i]
            seg_end = bases[i + 1] if i + 1 < len(bases) else end
            if offset >= seg_end:
                offset = seg_end
                continue
            with part.mutex:
                fd = part.read_fd(base)
            buf = os.pread(fd, min(seg_end - offset, want), offset - base)
            got, used, need = _parse(buf, topic, partition, offset, max_records - len(records), max_bytes)
            if got:
                records.extend(got)
                max_bytes -= used
                offset = got[-1].next_offset
                want = _READ_CHUNK
            elif need and offset + need <= seg_end and need > len(buf):
                want = need  # a record larger than what was read: read it whole
            else:
                found = _resync(fd, offset - base + 1, seg_end - base)
                last = i + 1 == len(bases)
                self._warn_corrupt(part.path(base), offset, base + found if found is not None else None, last)
                if found is not None:
                    offset = base + found
                elif last:
                    break  # stay here: a later append will be found after the torn bytes
                else:
                    offset = seg_end  # records never span segments: the rest of this one is lost
        return records

    def _warn_corrupt(self, path: Path, offset: int, resumed: int | None, last: bool) -> None:
        """Once per place, so a reader waiting at a torn tail does not flood the log."""
        if (str(path), offset) in self._warned:
            return
        self._warned.add((str(path), offset))
        if resumed is not None:
            what = f"skipped {resumed - offset} bytes, resuming at offset {resumed}"
        elif last:
            what = "no valid record follows yet; waiting there for more data"
        else:
            what = "no valid record follows in this segment; resuming at the next one"
        logger.warning("corrupt or torn record in %s at offset %d: %s", path, offset, what)

    def close(self) -> None:
        """Close every descriptor; the log can be reopened by constructing it again."""
        with self._parts_mutex:
            for part in self._parts.values():
                with part.mutex:
                    part.close()
            self._parts.clear()


def _parse(
    buf: bytes, topic: str, partition: int, offset: int, max_records: int, max_bytes: int
) -> tuple[list[Record], int, int]:
    """Valid records from the start of ``buf``: (records, payload bytes, bytes the next one needs).

    Stops at the first record that is incomplete in ``buf`` or invalid; ``need`` is 0 for invalid.
    """
    unpack = _HEADER.unpack_from
    crc32 = zlib.crc32
    keys: dict[bytes, str] = {}
    offsets: list[int] = []
    ends: list[int] = []
    names: list[str] = []
    values: list[bytes] = []
    pos = used = need = 0
    size = len(buf)
    while pos + HEADER_SIZE <= size and len(values) < max_records and used < max_bytes:
        magic, plen, klen, crc = unpack(buf, pos)
        if magic != MAGIC or klen > MAX_KEY_BYTES or plen > MAX_PAYLOAD_BYTES:
            break
        vstart = pos + HEADER_SIZE + klen
        rend = vstart + plen
        if rend > size:
            need = rend - pos
            break
        kb = buf[pos + HEADER_SIZE : vstart]
        value = buf[vstart:rend]
        if crc32(value, crc32(kb)) != crc:
            break
        name = keys.get(kb)
        if name is None:
            name = keys[kb] = kb.decode(errors="replace")
        offsets.append(offset + pos)
        ends.append(offset + rend)
        names.append(name)
        values.append(value)
        used += plen
        pos = rend
    if pos + HEADER_SIZE > size and pos < size and not values:
        need = HEADER_SIZE  # a header cut by the end of the buffer
    n = len(values)
    records = list(map(Record, [topic] * n, [partition] * n, offsets, ends, names, values))
    return records, used, need


def _valid_at(fd: int, pos: int, limit: int) -> bool:
    """Whether a complete record with a matching crc starts at file position ``pos``."""
    header = os.pread(fd, HEADER_SIZE, pos)
    if len(header) < HEADER_SIZE:
        return False
    magic, plen, klen, crc = _HEADER.unpack(header)
    if magic != MAGIC or klen > MAX_KEY_BYTES or plen > MAX_PAYLOAD_BYTES:
        return False
    if pos + HEADER_SIZE + klen + plen > limit:
        return False
    body = os.pread(fd, klen + plen, pos + HEADER_SIZE)
    return len(body) == klen + plen and zlib.crc32(body) == crc


def _resync(fd: int, start: int, limit: int) -> int | None:
    """File position of the first valid record at or after ``start`` and before ``limit``."""
    pos = start
    while pos < limit:
        block = os.pread(fd, min(_SCAN_CHUNK, limit - pos), pos)
        if not block:
            return None
        i = block.find(MAGIC)
        while i >= 0:
            if _valid_at(fd, pos + i, limit):
                return pos + i
            i = block.find(MAGIC, i + 1)
        if pos + len(block) >= limit:
            return None
        pos += len(block) - (len(MAGIC) - 1)  # overlap: a magic may straddle two blocks
    return None
