"""Micro-benchmark of the embedded log: append then read 1,000,000 small records.

Run: ``python bench/bench_local_log.py [--records N] [--batch B] [--size S] [--dir PATH]``.
Bytes per second count the records' framed bytes on disk (header + key + payload).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.records import EVENTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--size", type=int, default=40, help="payload bytes per record")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the log (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        run(Path(tmp) / "log", args.records, args.batch, args.size)


def run(root: Path, records: int, batch: int, size: int) -> None:
    log = LocalLog(root, partitions=1)
    key = "exp-0001"
    payloads = [i.to_bytes(8, "little") + bytes(size - 8) for i in range(batch)]

    start = time.perf_counter()
    for _ in range(records // batch):
        end = log.append(EVENTS, key, payloads)
    log.sync(EVENTS, 0)
    report("append+fsync", records, end, time.perf_counter() - start)

    reader = LocalLog(root)
    start = time.perf_counter()
    offset = count = 0
    while True:
        got = reader.read(EVENTS, 0, offset, max_records=10_000)
        if not got:
            break
        count += len(got)
        offset = got[-1].next_offset
    report("read", count, offset, time.perf_counter() - start)
    assert count == records // batch * batch, count


def report(what: str, records: int, nbytes: int, seconds: float) -> None:
    print(
        f"{what:>13}: {records:>9,} records, {nbytes / 1e6:7.1f} MB in {seconds:6.3f} s = "
        f"{nbytes / 1e6 / seconds:7.1f} MB/s, {records / seconds:11,.0f} records/s"
    )


if __name__ == "__main__":
    main()
