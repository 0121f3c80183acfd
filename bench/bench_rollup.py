"""The consumer's cost of the chart rollups (``consumers/rollup.py``): CPU time per 1,000,000 numeric points.

python bench/bench_rollup.py [--points 1000000] [--sizes 10000,1000,100,10] [--rounds 5]

Each event carries one series of ``size`` points (x = step, 1,000 points a second); a consumer batch holds up
to 20,000 events, as the runner polls them. The figure is ``Rollups.add`` for every series plus ``columns()``
per batch, what the materializer adds to a batch of points; median of ``--rounds``, in seconds of one core
(process time, so other work on the machine weighs less).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from expstream.consumers.rollup import Rollups

EVENTS_PER_BATCH = 20_000  # the runner's max_records


def once(points: int, size: int) -> tuple[float, int]:
    rng = np.random.default_rng(0)
    xs = np.arange(points, dtype="float64")
    ys = rng.normal(0, 1, points)
    ts = 1.7e9 + xs / 1000
    took, rows = 0.0, 0
    per_batch = EVENTS_PER_BATCH * size
    for batch in range(0, points, per_batch):
        t = time.process_time()
        summary = Rollups()
        for start in range(batch, min(points, batch + per_batch), size):
            end = min(points, start + size)
            summary.add("e", "user", "loss", 0, f"event-{start}", xs[start:end], ys[start:end], ts[start:end])
        columns = summary.columns()
        took += time.process_time() - t
        rows += sum(len(table["level"]) for table in columns.values())
    return took, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--sizes", default="10000,1000,100,10")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [once(args.points, size) for _ in range(args.rounds)]
        seconds = statistics.median(t for t, _ in runs)
        print(f"series of {size:,} points: {seconds:.3f} s a {args.points:,} points, {runs[0][1]:,} rollup rows")


if __name__ == "__main__":
    main()
