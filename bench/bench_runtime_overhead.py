"""CPU cost of the execution context (monitoring, output capture, heartbeats, flusher) while idle.

    python bench/bench_runtime_overhead.py [--seconds 30]

Target: under 1% of one core at default settings.
"""

from __future__ import annotations

import argparse
import time

import psutil
from _common import fresh_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with fresh_home():
        import expstream

        expstream.init("bench/overhead")
        exp = expstream.create_experiment("idle", upload_source_files=[])
        process = psutil.Process()
        time.sleep(1.0)  # past start-up
        before, wall = process.cpu_times(), time.perf_counter()
        end = wall + args.seconds
        while time.perf_counter() < end:
            print("a line of training output")  # mirrored into the stdout log, 1 per second
            time.sleep(1.0)
        after, elapsed = process.cpu_times(), time.perf_counter() - wall
        exp.stop()
        used = (after.user - before.user) + (after.system - before.system)
        print(f"execution context over {elapsed:.0f} s: {used / elapsed * 100:.2f}% of one core")


if __name__ == "__main__":
    main()
