"""get_numeric_channels_values on a channel of N points (target: 1M in <= 1 s).

    python bench/bench_query.py [--points 1000000] [--repeat 5]

Reports the first read in a fresh reader process (chdb load included) and the median of repeats.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from _common import fresh_home

READER = """
import sys, time
t = time.perf_counter()
import expstream
project = expstream.init("bench/query")
exp = project.get_experiments()[0]
df = exp.get_numeric_channels_values("loss")
first = time.perf_counter() - t
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    df = exp.get_numeric_channels_values("loss")
    times.append(time.perf_counter() - t)
assert len(df) == int(sys.argv[1]), len(df)
print(first, *times)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with fresh_home():
        import expstream

        expstream.init("bench/query")
        exp = expstream.create_experiment("query", upload_source_files=[], handle_uncaught_exceptions=False)
        for i in range(args.points):
            exp.log_metric("loss", i * 0.5)
        exp.stop()
        exp.sync()
        out = subprocess.run(
            [sys.executable, "-c", READER, str(args.points), str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        first, *times = map(float, out)
        print(
            f"get_numeric_channels_values, {args.points:,} points: first read in a new process "
            f"{first:.2f} s (chdb load included), then median {statistics.median(times):.3f} s"
        )


if __name__ == "__main__":
    main()
