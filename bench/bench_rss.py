"""Memory of a logging process: peak RSS while logging N points (target: 10M points < 150 MB).

    python bench/bench_rss.py [--points 10000000]

Also checks that the logging process never loads chdb (nor pandas).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import psutil
from _common import fresh_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000_000)
    args = parser.parse_args()
    process = psutil.Process()
    peak = [process.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.05)

    with fresh_home():
        import expstream

        threading.Thread(target=sample, daemon=True).start()
        expstream.init("bench/rss")
        exp = expstream.create_experiment("rss", upload_source_files=[], handle_uncaught_exceptions=False)
        start = time.perf_counter()
        for _ in range(args.points):
            exp.log_metric("loss", 0.5)
        exp.wait()
        elapsed = time.perf_counter() - start
        exp.stop()
        done.set()
        loaded = [m for m in ("chdb", "pandas") if m in sys.modules]
        print(
            f"{args.points:,} points in {elapsed:.1f} s: peak RSS {peak[0] / 2**20:.0f} MB; "
            f"modules loaded that a logger must not load: {loaded or 'none'}"
        )


if __name__ == "__main__":
    main()
