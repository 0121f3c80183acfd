"""log_metric hot path: median microseconds per call (target: <= 1 us on a 2-core machine).

Also the module-level ``expstream.log_metric`` of legacy scripts against ``exp.log_metric``
(target: within 1.3x; it resolves the current experiment on every call, without a lock), and
``exp.log_metric`` against a bare Python method that appends to a list, timed the same way in the
same run (target: within 2x): what the call costs beyond the least a Python method call can cost.

    python bench/bench_log_metric.py [--points 1000000]

Timed in blocks of 1,000 calls (timer overhead amortized), the cases taking turns block by block; the median
block is reported, with the background flusher running as it does in training.
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
        bare = _Bare()
        cases = (
            ("log_metric(name, value)", "exp"),
            ("log_metric(name, x, value)", "x"),
            ("module log_metric", "mod"),
            ("bare method appending", "bare"),
        )
        # the cases take turns block by block, so that what else the machine does (the flusher, the warm
        # materializer tailing the log) weighs on each case alike and the ratios compare like with like
        blocks: dict[str, list[float]] = {label: [] for label, _ in cases}
        for start in range(0, args.points, 1000):
            for label, case in cases:
                if case == "mod":
                    t = time.perf_counter()
                    for _ in range(1000):
                        expstream.log_metric("module", 0.5)
                elif case == "bare":
                    bare.points.clear()
                    t = time.perf_counter()
                    for _ in range(1000):
                        bare.log_metric("loss", 0.5)
                elif case == "x":
                    t = time.perf_counter()
                    for i in range(start, start + 1000):
                        exp.log_metric("acc", i, 0.5)
                else:
                    t = time.perf_counter()
                    for _ in range(1000):
                        exp.log_metric("loss", 0.5)
                blocks[label].append((time.perf_counter() - t) / 1000 * 1e6)
        for label, times in blocks.items():
            results[label] = (statistics.median(times), statistics.quantiles(times, n=100)[98])
        exp.stop()
        for label, (median, p99) in results.items():
            print(f"{label:32s} median {median:.3f} us/call   p99 block {p99:.3f} us/call")
        ratio = results["module log_metric"][0] / results["log_metric(name, value)"][0]
        print(f"module-level / exp.log_metric: {ratio:.2f}x")
        ratio = results["log_metric(name, value)"][0] / results["bare method appending"][0]
        print(f"exp.log_metric / bare method: {ratio:.2f}x")


class _Bare:
    """The least a logging method can do: append its arguments to a list."""

    def __init__(self) -> None:
        self.points: list[tuple[str, float]] = []

    def log_metric(self, name: str, value: float) -> None:
        self.points.append((name, value))


if __name__ == "__main__":
    main()
