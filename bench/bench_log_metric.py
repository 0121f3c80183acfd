"""log_metric hot path: median microseconds per call (target: <= 1 us on a 2-core machine).

    python bench/bench_log_metric.py [--points 1000000]

Timed in blocks of 1,000 calls (timer overhead amortized); the median block is reported, with
the background flusher running as it does in training.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import fresh_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    with fresh_home():
        import expstream

        expstream.init("bench/hotpath")
        exp = expstream.create_experiment("hot path", upload_source_files=[], handle_uncaught_exceptions=False)
        results = {}
        for label, explicit_x in (("log_metric(name, value)", False), ("log_metric(name, x, value)", True)):
            blocks = []
            for start in range(0, args.points, 1000):
                if explicit_x:
                    t = time.perf_counter()
                    for i in range(start, start + 1000):
                        exp.log_metric("acc", i, 0.5)
                else:
                    t = time.perf_counter()
                    for _ in range(1000):
                        exp.log_metric("loss", 0.5)
                blocks.append((time.perf_counter() - t) / 1000 * 1e6)
            results[label] = (statistics.median(blocks), statistics.quantiles(blocks, n=100)[98])
        exp.stop()
        for label, (median, p99) in results.items():
            print(f"{label:32s} median {median:.3f} us/call   p99 block {p99:.3f} us/call")


if __name__ == "__main__":
    main()
