"""Embedded end to end: N points logged, synced and read back as a DataFrame (target: 1M in <= 5 s).

python bench/bench_end_to_end.py [--points 1000000]
"""

from __future__ import annotations

import argparse
import time

from _common import fresh_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    with fresh_home():
        start = time.perf_counter()
        import expstream

        expstream.init("bench/e2e")
        exp = expstream.create_experiment("e2e", upload_source_files=[], handle_uncaught_exceptions=False)
        log = exp.log_metric
        for _ in range(args.points):
            log("loss", 0.25)
        logged = time.perf_counter()
        exp.sync()
        synced = time.perf_counter()
        df = exp.get_numeric_channels_values("loss")
        read = time.perf_counter()
        assert len(df) == args.points, len(df)
        assert df["x"].iloc[-1] == args.points - 1
        exp.stop()
        print(
            f"{args.points:,} points: log {logged - start:.2f} s, sync {synced - logged:.2f} s, "
            f"read {read - synced:.2f} s, total {read - start:.2f} s"
        )


if __name__ == "__main__":
    main()
