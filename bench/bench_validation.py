"""What the consumer's validation gate (schemas/validation.py) costs beside decoding, per event and per point.

Every record a consumer reads is decoded, then validated before it reaches a sink. This measures both on
the events a training process writes most: NumericPoints batches of 10,000 points and small events (tags,
properties, heartbeats). Figures go to bench/README.md.

    .venv/bin/python bench/bench_validation.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from expstream import schemas
from expstream.schemas.validation import validate

E = "0a0a0a0a-0000-4000-8000-000000000001"


def header(seq: int) -> dict[str, Any]:
    return {"event_id": f"{seq:032x}", "experiment_id": E, "session_id": "b" * 32, "seq": seq,
            "ts": 1.7e9 + seq, "host": "node-1", "pid": 4242}  # fmt: skip


def median_us(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    xs = np.arange(10_000, dtype=np.float64)
    points = schemas.encode("NumericPoints", {"header": header(1), "series": [
        {"channel": f"m{c}", "namespace": "user", "generation": 0, "xs": xs, "ys": xs * 0.5, "ts": xs + 1.7e9}
        for c in range(1)
    ]})  # fmt: skip
    small = [
        schemas.encode("TagsAdded", {"header": header(2), "tags": ["resnet", "baseline"]}),
        schemas.encode("PropertySet", {"header": header(3), "key": "host-group", "value": "a100"}),
        schemas.encode("Heartbeat", {"header": header(4)}),
    ]
    kind, event = schemas.decode(points)
    decode = median_us(lambda: schemas.decode(points), rounds)
    check = median_us(lambda: validate(kind, event), rounds)
    print(f"NumericPoints, 10,000 points: decode {decode:.1f} µs, validate {check:.1f} µs "
          f"({check / 10_000 * 1000:.2f} ns per point, {check / decode:.0%} of decoding)")  # fmt: skip
    decoded = [schemas.decode(m) for m in small]
    decode = median_us(lambda: [schemas.decode(m) for m in small], rounds * 10) / len(small)
    check = median_us(lambda: [validate(k, e) for k, e in decoded], rounds * 10) / len(small)
    print(f"small events (tags, property, heartbeat): decode {decode:.1f} µs, validate {check:.1f} µs per event")


if __name__ == "__main__":
    main()
